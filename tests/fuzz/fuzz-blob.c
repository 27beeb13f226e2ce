/* Fuzz target: the key module's blob parsers, eta_blob_parse and
 * eta_blob_parse_layout (keymod/eta-blob.c). The input is the blob bytes,
 * as many as the caller may read: the auth token's data_len of them. */
#include <string.h>

#include "eta-blob.h"
#include "fuzz-common.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  eta_fuzz_init ();
  return 0;
}

/* What a blob the writer makes from the parsed fields must look like. The
 * writer writes version 2 only: one byte longer than a version 1 blob. */
static void
check_rewrite (const guint8 *blob, const EtaBlob *parsed)
{
  size_t size = eta_blob_size (parsed->spki_len, parsed->key_label, parsed->token_label);
  size_t v1_extra = blob[4] == 1 ? 1 : 0;
  g_autofree guint8 *copy = NULL;
  EtaBlob again;

  /* Labels are cut at their first NUL by the writer: only then smaller. */
  ETA_FUZZ_CHECK (size > 0 && size <= parsed->total_len + v1_extra);
  copy = g_malloc (size);
  ETA_FUZZ_CHECK (eta_blob_write_with_wrap (copy, parsed->padding, parsed->wrap, parsed->spki,
                                            parsed->spki_len, parsed->key_label,
                                            parsed->token_label) == size);
  ETA_FUZZ_CHECK (eta_blob_parse_layout (copy, size, &again) == ETA_BLOB_OK);
  ETA_FUZZ_CHECK (again.padding == parsed->padding);
  ETA_FUZZ_CHECK (again.wrap == parsed->wrap);
  ETA_FUZZ_CHECK (again.spki_len == parsed->spki_len
                  && memcmp (again.spki, parsed->spki, parsed->spki_len) == 0);
  ETA_FUZZ_CHECK (memcmp (again.fingerprint, parsed->fingerprint, ETA_FINGERPRINT_LEN) == 0);
  ETA_FUZZ_CHECK (strcmp (again.key_label, parsed->key_label) == 0);
  ETA_FUZZ_CHECK (strcmp (again.token_label, parsed->token_label) == 0);
  if (v1_extra == 0 && size == parsed->total_len)
    ETA_FUZZ_CHECK (memcmp (copy, blob, size) == 0);
}

static void
check_parse (const guint8 *blob, size_t size)
{
  EtaBlob layout, full;
  EtaBlobStatus layout_status = eta_blob_parse_layout (blob, size, &layout);
  EtaBlobStatus status = eta_blob_parse (blob, size, &full);

  /* The full parse is the layout parse plus the key check. */
  ETA_FUZZ_CHECK (status == layout_status
                  || (layout_status == ETA_BLOB_OK && status == ETA_BLOB_ERROR_KEY));
  ETA_FUZZ_CHECK (eta_blob_status_to_string (status) != NULL);
  if (layout_status != ETA_BLOB_OK)
    return;

  ETA_FUZZ_CHECK (layout.total_len <= size && layout.total_len <= ETA_BLOB_MAX_SIZE);
  ETA_FUZZ_CHECK (layout.padding == ETA_PADDING_OAEP || layout.padding == ETA_PADDING_PKCS1);
  ETA_FUZZ_CHECK (layout.wrap == ETA_WRAP_EPOCH || layout.wrap == ETA_WRAP_PER_FILE);
  /* Version 1 never names a wrap mode: it means epoch. */
  ETA_FUZZ_CHECK (blob[4] != 1 || layout.wrap == ETA_WRAP_EPOCH);
  ETA_FUZZ_CHECK (layout.spki_len > 0 && layout.spki >= blob + (blob[4] == 1 ? 42 : 43)
                  && layout.spki + layout.spki_len <= blob + layout.total_len);
  ETA_FUZZ_CHECK (memchr (layout.key_label, '\0', sizeof layout.key_label) != NULL);
  ETA_FUZZ_CHECK (memchr (layout.token_label, '\0', sizeof layout.token_label) != NULL);
  check_rewrite (blob, &layout);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree guint8 *blob = eta_fuzz_dup_exact (data, size);

  check_parse (blob, size);
  if (eta_fuzz_fix_blob_fingerprint (blob, size))
    check_parse (blob, size);
  return 0;
}

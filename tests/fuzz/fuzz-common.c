/* See fuzz-common.h. */
#include "fuzz-common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eta-blob.h"
#include "eta-key-id.h"

/* Offsets of the blob layout (keymod/eta-blob.h): version 2 has the wrap
 * byte at 40, before the SPKI length. */
#define BLOB_VERSION_OFFSET     4
#define BLOB_FINGERPRINT_OFFSET 8
#define BLOB_SPKI_LEN_OFFSET_V1 40
#define BLOB_SPKI_LEN_OFFSET    41

/* GLib breaks into a debugger (SIGTRAP) on a fatal message, which libFuzzer
 * does not catch: abort instead, so that it reports the input. */
static void
abort_on_message (const gchar *domain, GLogLevelFlags level, const gchar *message,
                  gpointer user_data)
{
  if ((level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) == 0)
    return;
  fprintf (stderr, "%s: %s\n", domain ? domain : "(no domain)", message);
  abort ();
}

static GLogWriterOutput
abort_on_structured_message (GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                             gpointer user_data)
{
  const gchar *domain = NULL, *message = "(no message)";

  for (gsize i = 0; i < n_fields; i++)
    if (g_str_equal (fields[i].key, "GLIB_DOMAIN"))
      domain = fields[i].value;
    else if (g_str_equal (fields[i].key, "MESSAGE"))
      message = fields[i].value;
  abort_on_message (domain, level, message, NULL);
  return G_LOG_WRITER_HANDLED;
}

void
eta_fuzz_init (void)
{
  /* Set before GLib reads them; a run by hand gets the same as the script. */
  g_setenv ("G_SLICE", "always-malloc", FALSE);
  g_setenv ("G_DEBUG", "gc-friendly", FALSE);
  g_setenv ("ECRYPTFS_TOKEN_AGENT_KEYMOD_CONF", "/nonexistent/keymod.conf", TRUE);
  g_unsetenv ("ECRYPTFS_TOKEN_AGENT_KEYMOD_STDERR");
  /* A warning or a g_return_if_fail that fires is a bug of the input's
   * making. */
  g_log_set_default_handler (abort_on_message, NULL);
  g_log_set_writer_func (abort_on_structured_message, NULL, NULL);
}

guint8 *
eta_fuzz_dup_exact (const uint8_t *data, size_t size)
{
  /* malloc, not g_malloc: g_malloc (0) returns NULL, and a NULL input is
   * another case than an empty one. */
  guint8 *copy = malloc (size);

  if (copy == NULL && size > 0)
    abort ();
  if (size > 0)
    memcpy (copy, data, size);
  return copy;
}

gboolean
eta_fuzz_fix_blob_fingerprint (guint8 *blob, size_t len)
{
  uint8_t fingerprint[ETA_FINGERPRINT_LEN];
  size_t spki_len, spki_len_offset, spki_offset;

  if (len <= BLOB_VERSION_OFFSET)
    return FALSE;
  spki_len_offset = blob[BLOB_VERSION_OFFSET] == 1 ? BLOB_SPKI_LEN_OFFSET_V1
                                                   : BLOB_SPKI_LEN_OFFSET;
  spki_offset = spki_len_offset + 2;
  if (len < spki_offset)
    return FALSE;
  spki_len = ((size_t) blob[spki_len_offset] << 8) | blob[spki_len_offset + 1];
  if (spki_len == 0 || spki_len > len - spki_offset
      || eta_key_fingerprint (blob + spki_offset, spki_len, fingerprint) != 0
      || memcmp (blob + BLOB_FINGERPRINT_OFFSET, fingerprint, sizeof fingerprint) == 0)
    return FALSE;
  memcpy (blob + BLOB_FINGERPRINT_OFFSET, fingerprint, sizeof fingerprint);
  return TRUE;
}

void
eta_fuzz_check_record (const EtaPublicKeyRecord *record)
{
  uint8_t fingerprint[ETA_FINGERPRINT_LEN];
  char hex[2 * ETA_FINGERPRINT_LEN + 1];
  const guint8 *spki;
  gsize spki_len;
  size_t blob_size;

  ETA_FUZZ_CHECK (record->spki != NULL);
  spki = g_bytes_get_data (record->spki, &spki_len);
  ETA_FUZZ_CHECK (eta_key_rsa_modulus_bytes (spki, spki_len) > 0);
  ETA_FUZZ_CHECK (eta_key_fingerprint (spki, spki_len, fingerprint) == 0);
  eta_key_to_hex (fingerprint, sizeof fingerprint, hex);
  ETA_FUZZ_CHECK (record->fingerprint_hex != NULL
                  && strcmp (record->fingerprint_hex, hex) == 0);
  /* Labels end up in prompts, D-Bus strings and blobs, all UTF-8. */
  ETA_FUZZ_CHECK (record->key_label != NULL && g_utf8_validate (record->key_label, -1, NULL));
  ETA_FUZZ_CHECK (record->token_label != NULL
                  && g_utf8_validate (record->token_label, -1, NULL));
  ETA_FUZZ_CHECK (record->padding == ETA_PADDING_OAEP || record->padding == ETA_PADDING_PKCS1);

  /* What the key module's get_blob does with a record. */
  blob_size = eta_blob_size (spki_len, record->key_label, record->token_label);
  if (blob_size > 0)
    {
      g_autofree guint8 *blob = g_malloc (blob_size);
      EtaBlob parsed;

      ETA_FUZZ_CHECK (eta_blob_write (blob, record->padding, spki, spki_len, record->key_label,
                                      record->token_label) == blob_size);
      ETA_FUZZ_CHECK (eta_blob_parse (blob, blob_size, &parsed) == ETA_BLOB_OK);
      ETA_FUZZ_CHECK (memcmp (parsed.fingerprint, fingerprint, sizeof fingerprint) == 0);
      ETA_FUZZ_CHECK (g_str_has_prefix (record->key_label, parsed.key_label));
      ETA_FUZZ_CHECK (g_str_has_prefix (record->token_label, parsed.token_label));
    }
}

void
eta_fuzz_fail (const char *what, const char *file, int line)
{
  fprintf (stderr, "%s:%d: invariant broken: %s\n", file, line, what);
  abort ();
}

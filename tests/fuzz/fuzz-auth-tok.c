/* Fuzz target: the auth token as the user keyring holds it, libecryptfs's
 * struct ecryptfs_auth_tok followed by the key module's blob (the blob at
 * byte 670, its length in token.private_key.data_len), read by
 *  - the agent: eta_user_keyring_parse_auth_tok (agent/eta-user-keyring.c),
 *    with the payload as keyctl_read returns it, of any length;
 *  - the key module (keymod/eta-keymod.c) as ecryptfsd calls it: get_key_sig,
 *    and encrypt with and without an output buffer. decrypt is left out: it
 *    asks the agent over D-Bus.
 * The input is the payload. For the module, data_len is set to the length of
 * the blob the input holds, as libecryptfs writes it when it makes the token
 * (the module's length contract), and the payload is exactly
 * sizeof (struct ecryptfs_auth_tok) + data_len bytes, as libecryptfs
 * allocates it, with the tail past the blob poisoned so that ASan reports a
 * read of any byte beyond data_len. */
#include <stdlib.h>
#include <string.h>

#include <ecryptfs.h>
#include <sanitizer/asan_interface.h>

#include "eta-blob.h"
#include "eta-user-keyring.h"
#include "fuzz-common.h"

G_STATIC_ASSERT (offsetof (struct ecryptfs_auth_tok, token.private_key.data)
                 == ETA_AUTH_TOK_BLOB_OFFSET);

struct ecryptfs_key_mod_ops *get_key_mod_ops (void);
int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static struct ecryptfs_key_mod_ops *ops;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  char *alias = NULL;

  eta_fuzz_init ();
  /* libecryptfs calls init once per process before any other op. */
  ops = get_key_mod_ops ();
  if (ops->init (&alias) != 0)
    abort ();
  free (alias);
  return 0;
}

/* What the kernel hands to encrypt: cipher code, file key, checksum. */
static void
fill_file_key (char *from, size_t len)
{
  for (size_t i = 0; i < len; i++)
    from[i] = (char) (0x09 + 7 * i);
}

static void
check_module (const guint8 *payload_bytes, size_t blob_len)
{
  size_t payload_len = sizeof (struct ecryptfs_auth_tok) + blob_len;
  g_autofree guint8 *token = eta_fuzz_dup_exact (payload_bytes, payload_len);
  struct ecryptfs_auth_tok *auth_tok = (struct ecryptfs_auth_tok *) token;
  unsigned char *blob = auth_tok->token.private_key.data;
  uint32_t data_len = (uint32_t) blob_len;
  char sig[ECRYPTFS_SIG_SIZE_HEX + 1];
  char from[ECRYPTFS_MAX_KEY_BYTES + 4];
  size_t to_size = 0, out_size;
  EtaBlob parsed;
  int rc;

  memcpy (&auth_tok->token.private_key.data_len, &data_len, sizeof data_len);
  ASAN_POISON_MEMORY_REGION (blob + blob_len, payload_len - ETA_AUTH_TOK_BLOB_OFFSET - blob_len);

  memset (sig, 0, sizeof sig);
  rc = ops->get_key_sig ((unsigned char *) sig, blob);
  if (rc == 0)
    {
      ETA_FUZZ_CHECK (strlen (sig) == ECRYPTFS_SIG_SIZE_HEX);
      for (size_t i = 0; i < ECRYPTFS_SIG_SIZE_HEX; i++)
        ETA_FUZZ_CHECK (g_ascii_isxdigit (sig[i]) && !g_ascii_isupper (sig[i]));
      /* A sig is only made for a blob the module can use. */
      ETA_FUZZ_CHECK (eta_blob_parse_layout (blob, blob_len, &parsed) == ETA_BLOB_OK);
    }

  /* The size query (no agent, no RSA operation), then the wrap. */
  fill_file_key (from, sizeof from);
  rc = ops->encrypt (NULL, &to_size, from, 35, blob, ECRYPTFS_BLOB_TYPE_BLOB);
  if (rc == 0)
    {
      g_autofree char *to = NULL;

      ETA_FUZZ_CHECK (eta_blob_parse_layout (blob, blob_len, &parsed) == ETA_BLOB_OK);
      ETA_FUZZ_CHECK (to_size > 0);
      to = g_malloc (to_size);
      for (size_t from_size = 19; from_size <= 35; from_size += 16)
        {
          out_size = to_size;
          if (ops->encrypt (to, &out_size, from, from_size, blob, ECRYPTFS_BLOB_TYPE_BLOB) == 0)
            ETA_FUZZ_CHECK (out_size > 0 && out_size <= to_size);
        }
      /* Longer than any file key the kernel sends: refused. */
      out_size = to_size;
      ETA_FUZZ_CHECK (ops->encrypt (to, &out_size, from, sizeof from, blob,
                                    ECRYPTFS_BLOB_TYPE_BLOB) != 0);
      /* A buffer smaller than the size query said: refused, not overrun. */
      out_size = to_size - 1;
      ETA_FUZZ_CHECK (ops->encrypt (to, &out_size, from, 35, blob, ECRYPTFS_BLOB_TYPE_BLOB) != 0);
      /* The size query names what the wrap writes: an epoch packet's size
       * depends on the payload, plain RSA's does not. */
      out_size = to_size;
      if (ops->encrypt (to, &out_size, from, 35, blob, ECRYPTFS_BLOB_TYPE_BLOB) == 0)
        ETA_FUZZ_CHECK (out_size == to_size);
    }

  ASAN_UNPOISON_MEMORY_REGION (blob + blob_len,
                               payload_len - ETA_AUTH_TOK_BLOB_OFFSET - blob_len);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree guint8 *payload = eta_fuzz_dup_exact (data, size);
  EtaBlob blob;
  size_t blob_len;

  if (eta_user_keyring_parse_auth_tok (payload, size, &blob))
    ETA_FUZZ_CHECK (size > ETA_AUTH_TOK_BLOB_OFFSET
                    && blob.total_len <= size - ETA_AUTH_TOK_BLOB_OFFSET);

  /* libecryptfs's tokens have the whole struct, then the blob. */
  if (size < sizeof (struct ecryptfs_auth_tok))
    return 0;
  blob_len = size - sizeof (struct ecryptfs_auth_tok);
  check_module (payload, blob_len);
  /* Again with a true fingerprint, so that mutated SPKIs reach the key
   * parsers of the module. */
  if (eta_fuzz_fix_blob_fingerprint (payload + ETA_AUTH_TOK_BLOB_OFFSET, blob_len))
    check_module (payload, blob_len);
  return 0;
}

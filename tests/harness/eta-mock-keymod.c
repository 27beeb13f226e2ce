/* eta-mock-keymod.c: a deterministic stand-in key module for the harness's
 * own tests. The passphrase module has no encrypt/decrypt, so it can only
 * show failure paths; this one lets the self-tests drive successful
 * wrap/unwrap through the real ecryptfsd, reply sizes of 192 bytes and more
 * (the two-byte length form), and a slow module (timeouts, late replies).
 *
 * Not cryptography: "wrapping" is XOR with 0xA5 behind a 4-byte magic,
 * followed by `etamock_pad` filler bytes.
 *
 * Parameters (get_params order; each has a default):
 *   etamock_sig       16 lowercase hex characters, the key's sig
 *   etamock_delay_ms  sleep before answering an encrypt/decrypt (not the
 *                     size queries)
 *   etamock_pad       filler bytes appended to a wrapped key
 *
 * Exports only get_key_mod_ops (built with -fvisibility=hidden) and uses
 * nothing from libecryptfs but its header.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <ecryptfs.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MOCK_ALIAS "etamock"
#define MOCK_MAGIC "ETAM"
#define MOCK_MAGIC_LEN 4
#define MOCK_XOR 0xA5
#define MOCK_BLOB_VERSION 1u

struct mock_blob
{
  uint32_t version;
  uint32_t delay_ms;
  uint32_t pad;
  char     sig[ECRYPTFS_SIG_SIZE_HEX + 1];
};

static struct key_mod_param mock_params[] = {
  { .id = 0, .option = (char *) "etamock_sig", .description = (char *) "Key signature (16 hex)",
    .suggested_val = (char *) "e7a0000000000001", .default_val = (char *) "e7a0000000000001" },
  { .id = 1, .option = (char *) "etamock_delay_ms", .description = (char *) "Answer delay in ms",
    .suggested_val = (char *) "0", .default_val = (char *) "0" },
  { .id = 2, .option = (char *) "etamock_pad", .description = (char *) "Filler bytes after the wrapped key",
    .suggested_val = (char *) "0", .default_val = (char *) "0" },
};
#define MOCK_NUM_PARAMS (sizeof mock_params / sizeof mock_params[0])

static int
mock_init (char **alias)
{
  *alias = strdup (MOCK_ALIAS);
  return *alias == NULL ? -ENOMEM : 0;
}

static int
mock_get_params (struct key_mod_param **params,
                 uint32_t              *num_params)
{
  *params = mock_params;
  *num_params = MOCK_NUM_PARAMS;
  return 0;
}

static int
parse_u32 (const char *s,
           uint32_t    max,
           uint32_t   *out)
{
  char *end = NULL;
  unsigned long v;

  errno = 0;
  v = strtoul (s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v > max)
    return -1;
  *out = (uint32_t) v;
  return 0;
}

static int
mock_get_blob (unsigned char            *blob,
               size_t                   *blob_size,
               struct key_mod_param_val *param_vals,
               uint32_t                  num_param_vals)
{
  struct mock_blob b;

  memset (&b, 0, sizeof b);
  b.version = MOCK_BLOB_VERSION;
  snprintf (b.sig, sizeof b.sig, "%s", mock_params[0].default_val);

  /* By position, like libecryptfs hands them over. */
  for (uint32_t i = 0; i < num_param_vals && i < MOCK_NUM_PARAMS; i++)
    {
      const char *v = param_vals[i].val;

      if (v == NULL)
        return ECRYPTFS_KEY_MOD_BADPARAM;
      switch (i)
        {
        case 0:
          if (strlen (v) != ECRYPTFS_SIG_SIZE_HEX || strspn (v, "0123456789abcdef") != ECRYPTFS_SIG_SIZE_HEX)
            return ECRYPTFS_KEY_MOD_BADPARAM;
          memcpy (b.sig, v, ECRYPTFS_SIG_SIZE_HEX + 1);
          break;
        case 1:
          if (parse_u32 (v, 600000, &b.delay_ms) != 0)
            return ECRYPTFS_KEY_MOD_BADPARAM;
          break;
        case 2:
          if (parse_u32 (v, ECRYPTFS_MAX_ENCRYPTED_KEY_BYTES, &b.pad) != 0)
            return ECRYPTFS_KEY_MOD_BADPARAM;
          break;
        default:
          break;
        }
    }

  *blob_size = sizeof b;
  if (blob != NULL)
    memcpy (blob, &b, sizeof b);
  return 0;
}

static int
mock_get_key_data (unsigned char *key_data,
                   size_t        *key_data_len,
                   unsigned char *blob)
{
  (void) key_data;
  (void) blob;
  *key_data_len = 0; /* ask libecryptfs to call get_key_sig */
  return 0;
}

static int
mock_get_key_sig (unsigned char *sig,
                  unsigned char *blob)
{
  struct mock_blob b;

  memcpy (&b, blob, sizeof b);
  if (b.version != MOCK_BLOB_VERSION)
    return -EINVAL;
  memcpy (sig, b.sig, ECRYPTFS_SIG_SIZE_HEX + 1);
  return 0;
}

static void
mock_sleep (uint32_t ms)
{
  struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };

  while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
    ;
}

static int
mock_encrypt (char          *to,
              size_t        *to_size,
              char          *from,
              size_t         from_size,
              unsigned char *blob,
              int            blob_type)
{
  struct mock_blob b;
  size_t need;

  if (blob_type != ECRYPTFS_BLOB_TYPE_BLOB)
    return -EINVAL;
  memcpy (&b, blob, sizeof b);
  if (b.version != MOCK_BLOB_VERSION)
    return -EINVAL;
  need = MOCK_MAGIC_LEN + from_size + b.pad;
  if (need > ECRYPTFS_MAX_ENCRYPTED_KEY_BYTES)
    return -EINVAL;
  if (to == NULL)
    {
      *to_size = need;
      return 0;
    }
  mock_sleep (b.delay_ms);
  memcpy (to, MOCK_MAGIC, MOCK_MAGIC_LEN);
  for (size_t i = 0; i < from_size; i++)
    to[MOCK_MAGIC_LEN + i] = (char) ((unsigned char) from[i] ^ MOCK_XOR);
  for (size_t i = 0; i < b.pad; i++)
    to[MOCK_MAGIC_LEN + from_size + i] = (char) (i & 0xff);
  *to_size = need;
  return 0;
}

static int
mock_decrypt (char          *to,
              size_t        *to_size,
              char          *from,
              size_t         from_size,
              unsigned char *blob,
              int            blob_type)
{
  struct mock_blob b;
  size_t out;

  if (blob_type != ECRYPTFS_BLOB_TYPE_BLOB)
    return -EINVAL;
  memcpy (&b, blob, sizeof b);
  if (b.version != MOCK_BLOB_VERSION)
    return -EINVAL;
  if (from_size < MOCK_MAGIC_LEN + b.pad || memcmp (from, MOCK_MAGIC, MOCK_MAGIC_LEN) != 0)
    return ECRYPTFS_KEY_MOD_DECRYPT_FAILED;
  out = from_size - MOCK_MAGIC_LEN - b.pad;
  if (to == NULL)
    {
      /* A bound, as an RSA module would answer without the token. */
      *to_size = from_size;
      return 0;
    }
  mock_sleep (b.delay_ms);
  for (size_t i = 0; i < out; i++)
    to[i] = (char) ((unsigned char) from[MOCK_MAGIC_LEN + i] ^ MOCK_XOR);
  *to_size = out;
  return 0;
}

static int
mock_destroy (unsigned char *blob)
{
  (void) blob;
  return 0;
}

static int
mock_finalize (void)
{
  return 0;
}

static struct ecryptfs_key_mod_ops mock_ops = {
  .init = mock_init,
  .get_params = mock_get_params,
  .get_blob = mock_get_blob,
  .get_key_data = mock_get_key_data,
  .get_key_sig = mock_get_key_sig,
  .encrypt = mock_encrypt,
  .decrypt = mock_decrypt,
  .destroy = mock_destroy,
  .finalize = mock_finalize,
};

__attribute__ ((visibility ("default")))
struct ecryptfs_key_mod_ops *get_key_mod_ops (void);

struct ecryptfs_key_mod_ops *
get_key_mod_ops (void)
{
  return &mock_ops;
}

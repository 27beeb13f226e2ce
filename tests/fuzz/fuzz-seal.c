/* Fuzz target: eta_seal_session_open (dbus/eta-seal.c), the key module's
 * reading of what the agent sends back from an Unwrap: the agent's public
 * key and the sealed file key, both byte arrays off the bus. Also the agent
 * side's reading of the caller's session key (eta_seal_key_new), and a round
 * trip through both sides with the input as the plaintext.
 *
 * Input: one byte N, then N bytes of agent public key (the bus allows any
 * length), then the sealed bytes. */
#include <stdlib.h>
#include <string.h>

#include "eta-seal.h"
#include "fuzz-common.h"

#define ASSOCIATED_DATA "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static EtaSealSession *session;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  eta_fuzz_init ();
  session = eta_seal_session_new ();
  if (session == NULL)
    abort ();
  return 0;
}

/* What the module does with a reply: a plaintext buffer of exactly the size
 * the sealed length allows. */
static int
open_sealed (const guint8 *agent_key, size_t agent_key_len, const guint8 *sealed,
             size_t sealed_len, guint8 **plaintext, size_t *plaintext_len)
{
  size_t room = sealed_len >= ETA_SEAL_OVERHEAD ? sealed_len - ETA_SEAL_OVERHEAD : 0;
  size_t len = (size_t) -1;
  int rc;

  *plaintext = malloc (room);
  rc = eta_seal_session_open (session, agent_key, agent_key_len, ASSOCIATED_DATA, sealed,
                              sealed_len, *plaintext, &len);
  if (rc == 0)
    ETA_FUZZ_CHECK (len <= room);
  else
    ETA_FUZZ_CHECK (len == (size_t) -1);
  *plaintext_len = len;
  return rc;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  size_t key_len = size > 0 ? MIN ((size_t) data[0], size - 1) : 0;
  g_autofree guint8 *agent_key = eta_fuzz_dup_exact (data + MIN (size, 1), key_len);
  size_t sealed_len = size - MIN (size, 1) - key_len;
  g_autofree guint8 *sealed = eta_fuzz_dup_exact (data + MIN (size, 1) + key_len, sealed_len);
  g_autofree guint8 *plaintext = NULL;
  size_t plaintext_len;
  EtaSealKey *seal_key;

  /* Nothing but the agent can seal to this session: authentication fails
   * for every input (or the input is malformed). */
  ETA_FUZZ_CHECK (open_sealed (agent_key, key_len, sealed, sealed_len, &plaintext,
                               &plaintext_len) != 0);
  g_clear_pointer (&plaintext, g_free);

  /* The agent reading a caller's session key. */
  seal_key = eta_seal_key_new (agent_key, key_len);
  if (seal_key != NULL)
    ETA_FUZZ_CHECK (key_len == ETA_SEAL_PUBLIC_KEY_LEN);
  eta_seal_key_free (seal_key);

  /* Both sides with the sealed bytes as the plaintext. */
  if (sealed_len <= ETA_SEAL_MAX_PLAINTEXT)
    {
      uint8_t reply_key[ETA_SEAL_PUBLIC_KEY_LEN];
      g_autofree guint8 *reply = g_malloc (sealed_len + ETA_SEAL_OVERHEAD);

      ETA_FUZZ_CHECK (eta_seal_to (eta_seal_session_get_public_key (session),
                                   ETA_SEAL_PUBLIC_KEY_LEN, ASSOCIATED_DATA, sealed, sealed_len,
                                   reply_key, reply) == 0);
      ETA_FUZZ_CHECK (open_sealed (reply_key, sizeof reply_key, reply,
                                   sealed_len + ETA_SEAL_OVERHEAD, &plaintext,
                                   &plaintext_len) == 0);
      ETA_FUZZ_CHECK (plaintext_len == sealed_len
                      && memcmp (plaintext, sealed, sealed_len) == 0);
      g_clear_pointer (&plaintext, g_free);
      /* One bit changed anywhere: refused. */
      reply[(size > 0 ? data[0] : 0) % (sealed_len + ETA_SEAL_OVERHEAD)] ^= 0x01;
      ETA_FUZZ_CHECK (open_sealed (reply_key, sizeof reply_key, reply,
                                   sealed_len + ETA_SEAL_OVERHEAD, &plaintext,
                                   &plaintext_len) != 0);
    }
  return 0;
}

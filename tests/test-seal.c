/* Sealing of unwrapped keys between the agent and the key module. */
#include <string.h>

#include <glib.h>

#include "eta-seal.h"

#define AAD "52b2144e5a46fc6d22084869895d3948702ed3f45f4f42b49059f69b7339c9c8"

static void
test_roundtrip (void)
{
  EtaSealSession *session = eta_seal_session_new ();
  const guint8 key[35] = { 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
  guint8 agent_key[ETA_SEAL_PUBLIC_KEY_LEN];
  guint8 sealed[sizeof key + ETA_SEAL_OVERHEAD];
  guint8 opened[sizeof key];
  size_t opened_len = 0;

  g_assert_nonnull (session);
  g_assert_cmpint (eta_seal_to (eta_seal_session_get_public_key (session),
                                ETA_SEAL_PUBLIC_KEY_LEN, AAD, key, sizeof key, agent_key,
                                sealed), ==, 0);
  /* The plaintext does not appear in what crosses the bus. */
  g_assert_null (memmem (sealed, sizeof sealed, key + 1, 10));
  g_assert_cmpint (eta_seal_session_open (session, agent_key, sizeof agent_key, AAD, sealed,
                                          sizeof sealed, opened, &opened_len), ==, 0);
  g_assert_cmpmem (opened, opened_len, key, sizeof key);
  eta_seal_session_free (session);
}

static void
test_tampering_detected (void)
{
  EtaSealSession *session = eta_seal_session_new ();
  const guint8 key[19] = { 0x07, 42 };
  guint8 agent_key[ETA_SEAL_PUBLIC_KEY_LEN];
  guint8 sealed[sizeof key + ETA_SEAL_OVERHEAD];
  guint8 opened[sizeof key];
  size_t opened_len = 0;

  g_assert_cmpint (eta_seal_to (eta_seal_session_get_public_key (session),
                                ETA_SEAL_PUBLIC_KEY_LEN, AAD, key, sizeof key, agent_key,
                                sealed), ==, 0);
  /* Another fingerprint as associated data. */
  g_assert_cmpint (eta_seal_session_open (session, agent_key, sizeof agent_key, "other",
                                          sealed, sizeof sealed, opened, &opened_len), ==, -1);
  /* A flipped bit. */
  sealed[ETA_SEAL_NONCE_LEN + 3] ^= 1;
  g_assert_cmpint (eta_seal_session_open (session, agent_key, sizeof agent_key, AAD, sealed,
                                          sizeof sealed, opened, &opened_len), ==, -1);
  sealed[ETA_SEAL_NONCE_LEN + 3] ^= 1;
  /* A short payload and a bad agent key length. */
  g_assert_cmpint (eta_seal_session_open (session, agent_key, sizeof agent_key, AAD, sealed,
                                          ETA_SEAL_OVERHEAD - 1, opened, &opened_len), ==, -1);
  g_assert_cmpint (eta_seal_session_open (session, agent_key, 31, AAD, sealed, sizeof sealed,
                                          opened, &opened_len), ==, -1);
  /* Another session cannot open it. */
  {
    EtaSealSession *other = eta_seal_session_new ();
    g_assert_cmpint (eta_seal_session_open (other, agent_key, sizeof agent_key, AAD, sealed,
                                            sizeof sealed, opened, &opened_len), ==, -1);
    eta_seal_session_free (other);
  }
  g_assert_cmpint (eta_seal_session_open (session, agent_key, sizeof agent_key, AAD, sealed,
                                          sizeof sealed, opened, &opened_len), ==, 0);
  eta_seal_session_free (session);
}

static void
test_bad_caller_key (void)
{
  guint8 agent_key[ETA_SEAL_PUBLIC_KEY_LEN];
  guint8 sealed[64];
  const guint8 key[16] = { 0 };

  g_assert_cmpint (eta_seal_to (key, 16, AAD, key, sizeof key, agent_key, sealed), ==, -1);
}

/* Points of small order give an all-zero shared secret: a peer sending one
 * would make the seal key known to everyone. Refused when the key is made. */
static void
test_low_order_caller_key (void)
{
  static const guint8 low_order[][ETA_SEAL_PUBLIC_KEY_LEN] = {
    { 0 },                                    /* u = 0 */
    { 1 },                                    /* u = 1 */
    { 0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
      0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
      0x5f, 0x49, 0xb8, 0x00 },               /* a point of order 8 */
  };
  EtaSealSession *session = eta_seal_session_new ();
  EtaSealKey *good = eta_seal_key_new (eta_seal_session_get_public_key (session),
                                       ETA_SEAL_PUBLIC_KEY_LEN);

  g_assert_nonnull (good);
  eta_seal_key_free (good);
  eta_seal_session_free (session);
  for (gsize i = 0; i < G_N_ELEMENTS (low_order); i++)
    g_assert_null (eta_seal_key_new (low_order[i], ETA_SEAL_PUBLIC_KEY_LEN));
  g_assert_null (eta_seal_key_new (NULL, 0));
}

/* One exchange as the key module and the agent make it: @session's key to
 * the agent, the agent's key and the sealed reply back, opened. Returns the
 * agent's public key in @agent_key. */
static void
exchange (EtaSealSession *session, guint8 agent_key[ETA_SEAL_PUBLIC_KEY_LEN],
          guint8 sealed_out[35 + ETA_SEAL_OVERHEAD])
{
  const guint8 key[35] = { 0x09, 7, 7, 7 };
  EtaSealKey *seal_key = eta_seal_key_new (eta_seal_session_get_public_key (session),
                                           ETA_SEAL_PUBLIC_KEY_LEN);
  guint8 opened[sizeof key];
  size_t opened_len = 0;

  g_assert_nonnull (seal_key);
  g_assert_cmpint (eta_seal_key_seal (seal_key, AAD, key, sizeof key, agent_key, sealed_out),
                   ==, 0);
  eta_seal_key_free (seal_key);
  g_assert_cmpint (eta_seal_session_open (session, agent_key, ETA_SEAL_PUBLIC_KEY_LEN, AAD,
                                          sealed_out, sizeof key + ETA_SEAL_OVERHEAD, opened,
                                          &opened_len), ==, 0);
  g_assert_cmpmem (opened, opened_len, key, sizeof key);
}

/* A stream of requests shares one key pair on each side, within the
 * bounds; every reply still gets a nonce of its own. */
static void
test_reuse_within_bounds (void)
{
  EtaSealSession *first = eta_seal_session_reuse ();
  EtaSealSession *second = eta_seal_session_reuse ();
  EtaSealSession *fresh = eta_seal_session_new ();
  guint8 agent_key[2][ETA_SEAL_PUBLIC_KEY_LEN];
  guint8 sealed[2][35 + ETA_SEAL_OVERHEAD];
  guint8 fresh_agent_key[ETA_SEAL_PUBLIC_KEY_LEN];
  guint8 fresh_sealed[35 + ETA_SEAL_OVERHEAD];

  g_assert_cmpmem (eta_seal_session_get_public_key (first), ETA_SEAL_PUBLIC_KEY_LEN,
                   eta_seal_session_get_public_key (second), ETA_SEAL_PUBLIC_KEY_LEN);
  /* eta_seal_session_new keeps making keys of their own. */
  g_assert_true (memcmp (eta_seal_session_get_public_key (first),
                         eta_seal_session_get_public_key (fresh), ETA_SEAL_PUBLIC_KEY_LEN) != 0);

  exchange (first, agent_key[0], sealed[0]);
  exchange (second, agent_key[1], sealed[1]);
  g_assert_cmpmem (agent_key[0], sizeof agent_key[0], agent_key[1], sizeof agent_key[1]);
  g_assert_true (memcmp (sealed[0], sealed[1], ETA_SEAL_NONCE_LEN) != 0);
  /* Another caller key: another agent key. */
  exchange (fresh, fresh_agent_key, fresh_sealed);
  g_assert_true (memcmp (fresh_agent_key, agent_key[0], ETA_SEAL_PUBLIC_KEY_LEN) != 0);
  /* A reply to one caller key does not open with another. */
  {
    guint8 opened[35];
    size_t opened_len = 0;
    g_assert_cmpint (eta_seal_session_open (fresh, agent_key[0], ETA_SEAL_PUBLIC_KEY_LEN, AAD,
                                            sealed[0], sizeof sealed[0], opened, &opened_len),
                     ==, -1);
  }
  eta_seal_session_free (first);
  eta_seal_session_free (second);
  eta_seal_session_free (fresh);
}

/* After ETA_SEAL_REUSE_EXCHANGES exchanges, and after ETA_SEAL_REUSE_SECONDS,
 * both sides make new key pairs. */
static void
test_reuse_ends (void)
{
  EtaSealSession *session;
  guint8 first_key[ETA_SEAL_PUBLIC_KEY_LEN];
  guint8 first_agent_key[ETA_SEAL_PUBLIC_KEY_LEN];
  guint8 agent_key[ETA_SEAL_PUBLIC_KEY_LEN];
  guint8 sealed[35 + ETA_SEAL_OVERHEAD];

  eta_seal_forget_prepared ();
  session = eta_seal_session_reuse ();
  memcpy (first_key, eta_seal_session_get_public_key (session), sizeof first_key);
  exchange (session, first_agent_key, sealed);
  eta_seal_session_free (session);
  for (guint i = 1; i < ETA_SEAL_REUSE_EXCHANGES; i++)
    {
      session = eta_seal_session_reuse ();
      g_assert_cmpmem (eta_seal_session_get_public_key (session), ETA_SEAL_PUBLIC_KEY_LEN,
                       first_key, sizeof first_key);
      exchange (session, agent_key, sealed);
      g_assert_cmpmem (agent_key, sizeof agent_key, first_agent_key, sizeof first_agent_key);
      eta_seal_session_free (session);
    }
  session = eta_seal_session_reuse ();
  g_assert_true (memcmp (eta_seal_session_get_public_key (session), first_key,
                         sizeof first_key) != 0);
  memcpy (first_key, eta_seal_session_get_public_key (session), sizeof first_key);
  exchange (session, first_agent_key, sealed);
  eta_seal_session_free (session);

  g_usleep ((gulong) (ETA_SEAL_REUSE_SECONDS * G_USEC_PER_SEC) + 100 * G_TIME_SPAN_MILLISECOND);
  session = eta_seal_session_reuse ();
  g_assert_true (memcmp (eta_seal_session_get_public_key (session), first_key,
                         sizeof first_key) != 0);
  eta_seal_session_free (session);
  /* The agent too: the old caller key gets a new agent key now. */
  {
    EtaSealSession *old = eta_seal_session_new ();
    guint8 old_agent_key[2][ETA_SEAL_PUBLIC_KEY_LEN];
    exchange (old, old_agent_key[0], sealed);
    g_usleep ((gulong) (ETA_SEAL_REUSE_SECONDS * G_USEC_PER_SEC)
              + 100 * G_TIME_SPAN_MILLISECOND);
    exchange (old, old_agent_key[1], sealed);
    g_assert_true (memcmp (old_agent_key[0], old_agent_key[1], ETA_SEAL_PUBLIC_KEY_LEN) != 0);
    eta_seal_session_free (old);
  }
}

/* With no call after them, the reused key pair and the agreement are
 * still wiped once their time is up. */
static void
test_wiped_when_time_is_up (void)
{
  EtaSealSession *session;
  guint8 agent_key[ETA_SEAL_PUBLIC_KEY_LEN];
  guint8 sealed[35 + ETA_SEAL_OVERHEAD];

  eta_seal_forget_prepared ();
  g_assert_cmpint (eta_seal_kept (), ==, 0);
  session = eta_seal_session_reuse ();
  exchange (session, agent_key, sealed);
  eta_seal_session_free (session);
  g_assert_cmpint (eta_seal_kept (), ==, 2);
  g_usleep ((gulong) (ETA_SEAL_REUSE_SECONDS * G_USEC_PER_SEC) + 300 * G_TIME_SPAN_MILLISECOND);
  g_assert_cmpint (eta_seal_kept (), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/dbus/seal/roundtrip", test_roundtrip);
  g_test_add_func ("/dbus/seal/tampering", test_tampering_detected);
  g_test_add_func ("/dbus/seal/bad-caller-key", test_bad_caller_key);
  g_test_add_func ("/dbus/seal/low-order-caller-key", test_low_order_caller_key);
  g_test_add_func ("/dbus/seal/reuse-within-bounds", test_reuse_within_bounds);
  g_test_add_func ("/dbus/seal/reuse-ends", test_reuse_ends);
  g_test_add_func ("/dbus/seal/wiped-when-time-is-up", test_wiped_when_time_is_up);
  return g_test_run ();
}

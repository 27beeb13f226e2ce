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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/dbus/seal/roundtrip", test_roundtrip);
  g_test_add_func ("/dbus/seal/tampering", test_tampering_detected);
  g_test_add_func ("/dbus/seal/bad-caller-key", test_bad_caller_key);
  return g_test_run ();
}

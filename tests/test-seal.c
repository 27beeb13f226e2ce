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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/dbus/seal/roundtrip", test_roundtrip);
  g_test_add_func ("/dbus/seal/tampering", test_tampering_detected);
  g_test_add_func ("/dbus/seal/bad-caller-key", test_bad_caller_key);
  g_test_add_func ("/dbus/seal/low-order-caller-key", test_low_order_caller_key);
  return g_test_run ();
}

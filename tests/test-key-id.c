/* The upstream-compatible key id (vectors from ECRYPTFS-FACTS.md) and the
 * fingerprint. */
#include <string.h>

#include <glib.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "eta-key-id.h"

/* n = 2^(bits-1) | low, big-endian. */
static guint8 *
make_modulus (guint bits, guint8 low, gsize *len)
{
  guint8 *n = g_malloc0 (bits / 8);
  n[0] = 0x80;
  n[bits / 8 - 1] |= low;
  *len = bits / 8;
  return n;
}

static void
test_vector_2048 (void)
{
  gsize n_len;
  g_autofree guint8 *n = make_modulus (2048, 0xf1, &n_len);
  const guint8 e[] = { 0x01, 0x00, 0x01 };
  char sig[ETA_KEY_SIG_HEX_LEN + 1];

  g_assert_cmpint (eta_key_sig_from_rsa (n, n_len, e, sizeof e, sig), ==, 0);
  g_assert_cmpstr (sig, ==, "e244166fe88486ac");
}

static void
test_vector_1024 (void)
{
  gsize n_len;
  g_autofree guint8 *n = make_modulus (1024, 0x01, &n_len);
  const guint8 e[] = { 0x03 };
  char sig[ETA_KEY_SIG_HEX_LEN + 1];

  g_assert_cmpint (eta_key_sig_from_rsa (n, n_len, e, sizeof e, sig), ==, 0);
  g_assert_cmpstr (sig, ==, "12263612046e807a");
}

static void
test_leading_zeros_ignored (void)
{
  gsize n_len;
  g_autofree guint8 *n = make_modulus (2048, 0xf1, &n_len);
  g_autofree guint8 *padded = g_malloc0 (n_len + 1);
  const guint8 e[] = { 0x00, 0x01, 0x00, 0x01 };
  char sig[ETA_KEY_SIG_HEX_LEN + 1];

  memcpy (padded + 1, n, n_len);
  g_assert_cmpint (eta_key_sig_from_rsa (padded, n_len + 1, e, sizeof e, sig), ==, 0);
  g_assert_cmpstr (sig, ==, "e244166fe88486ac");
}

/* The same vector through a DER SubjectPublicKeyInfo, as the blob holds it. */
static void
test_vector_through_spki (void)
{
  gsize n_len;
  g_autofree guint8 *n_bytes = make_modulus (2048, 0xf1, &n_len);
  OSSL_PARAM_BLD *builder = OSSL_PARAM_BLD_new ();
  BIGNUM *n = BN_bin2bn (n_bytes, (int) n_len, NULL);
  BIGNUM *e = BN_new ();
  OSSL_PARAM *params;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name (NULL, "RSA", NULL);
  EVP_PKEY *key = NULL;
  unsigned char *der = NULL;
  int der_len;
  char sig[ETA_KEY_SIG_HEX_LEN + 1];

  BN_set_word (e, 65537);
  OSSL_PARAM_BLD_push_BN (builder, OSSL_PKEY_PARAM_RSA_N, n);
  OSSL_PARAM_BLD_push_BN (builder, OSSL_PKEY_PARAM_RSA_E, e);
  params = OSSL_PARAM_BLD_to_param (builder);
  g_assert_cmpint (EVP_PKEY_fromdata_init (ctx), ==, 1);
  g_assert_cmpint (EVP_PKEY_fromdata (ctx, &key, EVP_PKEY_PUBLIC_KEY, params), ==, 1);
  der_len = i2d_PUBKEY (key, &der);
  g_assert_cmpint (der_len, >, 0);

  g_assert_cmpint (eta_key_sig_from_spki (der, (size_t) der_len, sig), ==, 0);
  g_assert_cmpstr (sig, ==, "e244166fe88486ac");
  g_assert_cmpuint (eta_key_rsa_modulus_bytes (der, (size_t) der_len), ==, 256);

  OPENSSL_free (der);
  EVP_PKEY_free (key);
  EVP_PKEY_CTX_free (ctx);
  OSSL_PARAM_free (params);
  OSSL_PARAM_BLD_free (builder);
  BN_free (n);
  BN_free (e);
}

static void
test_not_rsa_refused (void)
{
  EVP_PKEY *key = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
  unsigned char *der = NULL;
  int der_len = i2d_PUBKEY (key, &der);
  char sig[ETA_KEY_SIG_HEX_LEN + 1];

  g_assert_cmpint (eta_key_sig_from_spki (der, (size_t) der_len, sig), ==, -1);
  g_assert_cmpuint (eta_key_rsa_modulus_bytes (der, (size_t) der_len), ==, 0);
  /* Garbage and trailing bytes are refused too. */
  g_assert_cmpint (eta_key_sig_from_spki ((const uint8_t *) "garbage", 7, sig), ==, -1);
  OPENSSL_free (der);
  EVP_PKEY_free (key);
}

static void
test_fingerprint_is_sha256_of_spki (void)
{
  uint8_t fingerprint[ETA_FINGERPRINT_LEN];
  char hex[2 * ETA_FINGERPRINT_LEN + 1];

  g_assert_cmpint (eta_key_fingerprint ((const uint8_t *) "abc", 3, fingerprint), ==, 0);
  eta_key_to_hex (fingerprint, sizeof fingerprint, hex);
  g_assert_cmpstr (hex, ==, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/keymod/key-id/vector-2048", test_vector_2048);
  g_test_add_func ("/keymod/key-id/vector-1024", test_vector_1024);
  g_test_add_func ("/keymod/key-id/leading-zeros", test_leading_zeros_ignored);
  g_test_add_func ("/keymod/key-id/through-spki", test_vector_through_spki);
  g_test_add_func ("/keymod/key-id/not-rsa", test_not_rsa_refused);
  g_test_add_func ("/keymod/fingerprint/sha256", test_fingerprint_is_sha256_of_spki);
  return g_test_run ();
}

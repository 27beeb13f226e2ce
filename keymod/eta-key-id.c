/* Fingerprints and the upstream-compatible eCryptfs key id; see eta-key-id.h. */
#include "config.h"

#include "eta-key-id.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

int
eta_key_fingerprint (const uint8_t *spki_der, size_t spki_len,
                     uint8_t fingerprint[ETA_FINGERPRINT_LEN])
{
  if (spki_der == NULL || spki_len == 0)
    return -1;
  return EVP_Digest (spki_der, spki_len, fingerprint, NULL, EVP_sha256 (), NULL) == 1 ? 0 : -1;
}

void
eta_key_to_hex (const uint8_t *bytes, size_t len, char *hex)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++)
    {
      hex[2 * i] = digits[bytes[i] >> 4];
      hex[2 * i + 1] = digits[bytes[i] & 0xf];
    }
  hex[2 * len] = '\0';
}

/* Strips leading zero bytes: OpenPGP MPIs carry no leading zeros. */
static void
strip_leading_zeros (const uint8_t **bytes, size_t *len)
{
  while (*len > 0 && (*bytes)[0] == 0)
    {
      (*bytes)++;
      (*len)--;
    }
}

static unsigned
bit_count (const uint8_t *bytes, size_t len)
{
  unsigned top_bits = 0;
  if (len == 0)
    return 0;
  for (uint8_t b = bytes[0]; b != 0; b >>= 1)
    top_bits++;
  return (unsigned) (len - 1) * 8 + top_bits;
}

int
eta_key_sig_from_rsa (const uint8_t *modulus, size_t modulus_len,
                      const uint8_t *exponent, size_t exponent_len,
                      char sig[ETA_KEY_SIG_HEX_LEN + 1])
{
  uint8_t digest[SHA_DIGEST_LENGTH];
  uint8_t header[12];
  EVP_MD_CTX *sha;
  int ok;
  size_t body_len;
  unsigned nbits, ebits;

  strip_leading_zeros (&modulus, &modulus_len);
  strip_leading_zeros (&exponent, &exponent_len);
  if (modulus_len == 0 || exponent_len == 0 || modulus_len > 2048)
    return -1;
  nbits = bit_count (modulus, modulus_len);
  ebits = bit_count (exponent, exponent_len);
  body_len = 10 + modulus_len + exponent_len;

  /* 0x99 | len | v4 | time 0 | algo 2 (RSA encrypt-only) | nbits | n | ebits | e */
  header[0] = 0x99;
  header[1] = (uint8_t) (body_len >> 8);
  header[2] = (uint8_t) body_len;
  header[3] = 0x04;
  header[4] = header[5] = header[6] = header[7] = 0;
  header[8] = 0x02;
  header[9] = (uint8_t) (nbits >> 8);
  header[10] = (uint8_t) nbits;

  sha = EVP_MD_CTX_new ();
  ok = sha != NULL
       && EVP_DigestInit_ex (sha, EVP_sha1 (), NULL) == 1
       && EVP_DigestUpdate (sha, header, 11) == 1
       && EVP_DigestUpdate (sha, modulus, modulus_len) == 1;
  header[0] = (uint8_t) (ebits >> 8);
  header[1] = (uint8_t) ebits;
  ok = ok
       && EVP_DigestUpdate (sha, header, 2) == 1
       && EVP_DigestUpdate (sha, exponent, exponent_len) == 1
       && EVP_DigestFinal_ex (sha, digest, NULL) == 1;
  EVP_MD_CTX_free (sha);
  if (!ok)
    return -1;

  eta_key_to_hex (digest, ETA_KEY_SIG_HEX_LEN / 2, sig);
  return 0;
}

static EVP_PKEY *
rsa_from_spki (const uint8_t *spki_der, size_t spki_len)
{
  const uint8_t *p = spki_der;
  EVP_PKEY *key;

  if (spki_der == NULL || spki_len == 0 || spki_len > 4096)
    return NULL;
  key = d2i_PUBKEY (NULL, &p, (long) spki_len);
  if (key == NULL)
    return NULL;
  /* Trailing bytes mean the blob and the key disagree about its length. */
  if (p != spki_der + spki_len || EVP_PKEY_get_base_id (key) != EVP_PKEY_RSA)
    {
      EVP_PKEY_free (key);
      return NULL;
    }
  return key;
}

int
eta_key_sig_from_spki (const uint8_t *spki_der, size_t spki_len,
                       char sig[ETA_KEY_SIG_HEX_LEN + 1])
{
  EVP_PKEY *key = rsa_from_spki (spki_der, spki_len);
  BIGNUM *n = NULL, *e = NULL;
  uint8_t nbuf[1024], ebuf[16];
  int nlen, elen, ret = -1;

  if (key == NULL)
    return -1;
  if (EVP_PKEY_get_bn_param (key, OSSL_PKEY_PARAM_RSA_N, &n) != 1
      || EVP_PKEY_get_bn_param (key, OSSL_PKEY_PARAM_RSA_E, &e) != 1
      || BN_num_bytes (n) > (int) sizeof nbuf || BN_num_bytes (e) > (int) sizeof ebuf)
    goto out;
  nlen = BN_bn2bin (n, nbuf);
  elen = BN_bn2bin (e, ebuf);
  ret = eta_key_sig_from_rsa (nbuf, (size_t) nlen, ebuf, (size_t) elen, sig);

out:
  BN_free (n);
  BN_free (e);
  EVP_PKEY_free (key);
  return ret;
}

size_t
eta_key_rsa_modulus_bytes (const uint8_t *spki_der, size_t spki_len)
{
  EVP_PKEY *key = rsa_from_spki (spki_der, spki_len);
  size_t bytes;

  if (key == NULL)
    return 0;
  bytes = (size_t) EVP_PKEY_get_size (key);
  EVP_PKEY_free (key);
  return bytes;
}

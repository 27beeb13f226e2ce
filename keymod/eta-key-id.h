/* Names of a public key: the fingerprint people type, and the eCryptfs key
 * signature (the upstream-compatible RSA key id) the kernel stores. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define ETA_FINGERPRINT_LEN 32          /* raw SHA-256 */
#define ETA_KEY_SIG_HEX_LEN 16          /* 8 bytes, lowercase hex */

/* Fingerprint: SHA-256 of the DER SubjectPublicKeyInfo. Returns 0 or -1. */
int eta_key_fingerprint (const uint8_t *spki_der, size_t spki_len,
                         uint8_t fingerprint[ETA_FINGERPRINT_LEN]);

/* Lowercase hex of @len bytes into @hex (2 * len + 1 bytes). */
void eta_key_to_hex (const uint8_t *bytes, size_t len, char *hex);

/* The key signature the upstream openssl and pkcs11-helper modules compute for
 * an RSA key (OpenPGP v4-style packet over n and e, SHA-1, first 8 bytes), so
 * files they wrote keep opening. @sig receives 16 hex digits and a NUL.
 * Returns 0, or -1 when the key is not RSA or cannot be parsed. */
int eta_key_sig_from_rsa (const uint8_t *modulus, size_t modulus_len,
                          const uint8_t *exponent, size_t exponent_len,
                          char sig[ETA_KEY_SIG_HEX_LEN + 1]);
int eta_key_sig_from_spki (const uint8_t *spki_der, size_t spki_len,
                           char sig[ETA_KEY_SIG_HEX_LEN + 1]);

/* RSA modulus size in bytes of an SPKI, or 0 when it is not an RSA key. */
size_t eta_key_rsa_modulus_bytes (const uint8_t *spki_der, size_t spki_len);

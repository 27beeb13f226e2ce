/* The epoch packet: what the key module writes as a file's encrypted key
 * (the tag 1 packet's encrypted key) when it wraps per epoch.
 *
 * A real token takes 0.1-1 s per RSA operation, and ecryptfsd serves one
 * request at a time: one token operation per opened file cannot serve a
 * folder. So the key module draws a random 256-bit key K per public key and
 * epoch, encrypts K once with the public key, and wraps each file's payload
 * (cipher code | FEK | checksum, as the kernel hands it over) under K. The
 * agent decrypts K on the token once per epoch and keeps it while the token
 * is logged in. keymod/epoch-format.md has the format byte for byte, with
 * test vectors.
 *
 * Layout, integers big-endian:
 *   0  magic "ETAE"          4  version (1)        5  padding of RSA(K)
 *   6  RSA(K) length (u16)   8  RSA(K)
 *      nonce (12)            AES-256-GCM(K, nonce, payload) | tag (16)
 * Associated data: every byte before the nonce. A plain RSA ciphertext is
 * exactly as long as the modulus; an epoch packet is longer by at least
 * 8 + 12 + 16 + 1 bytes, and starts with the magic: the two never mix up.
 *
 * Plain C and OpenSSL: the key module and the agent both link it. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "eta-blob.h"

#define ETA_EPOCH_VERSION       1
#define ETA_EPOCH_KEY_LEN       32
#define ETA_EPOCH_NONCE_LEN     12
#define ETA_EPOCH_TAG_LEN       16
#define ETA_EPOCH_HEADER_LEN    8
#define ETA_EPOCH_ID_LEN        32      /* SHA-256 of RSA(K) */
/* The kernel's limit for a tag 1 packet's encrypted key. */
#define ETA_EPOCH_MAX_PACKET    512
#define ETA_EPOCH_MAX_PAYLOAD   67      /* cipher code, 64-byte FEK, checksum */

typedef enum
{
  ETA_EPOCH_OK = 0,
  ETA_EPOCH_ERROR_NOT_EPOCH,    /* no magic: a plain RSA ciphertext, perhaps */
  ETA_EPOCH_ERROR_VERSION,      /* written by a newer version */
  ETA_EPOCH_ERROR_MALFORMED,    /* lengths that do not add up, unknown padding */
} EtaEpochStatus;

/* A parsed packet; pointers point into the bytes it was parsed from. */
typedef struct
{
  EtaPadding padding;
  const uint8_t *rsa_ciphertext;
  size_t rsa_ciphertext_len;
  const uint8_t *associated_data;   /* the header and RSA(K) */
  size_t associated_data_len;
  const uint8_t *nonce;
  const uint8_t *sealed;            /* ciphertext of the payload, then the tag */
  size_t sealed_len;
} EtaEpochPacket;

/* TRUE when @data starts like an epoch packet (any version). */
int eta_epoch_packet_has_magic (const uint8_t *data, size_t len);

/* Parses @len bytes; checks every length before reading the field. */
EtaEpochStatus eta_epoch_packet_parse (const uint8_t *data, size_t len, EtaEpochPacket *packet);

/* The size of a packet for an RSA(K) of @rsa_len bytes and a payload of
 * @payload_len bytes, or 0 if above ETA_EPOCH_MAX_PACKET (the caller then
 * wraps per file). */
size_t eta_epoch_packet_size (size_t rsa_len, size_t payload_len);

/* Writes a packet into @out (eta_epoch_packet_size() bytes): RSA(K) as
 * given, @payload sealed under @key with a fresh random nonce. Returns the
 * size written, or 0. */
size_t eta_epoch_packet_write (uint8_t *out, EtaPadding padding,
                               const uint8_t *rsa_ciphertext, size_t rsa_len,
                               const uint8_t key[ETA_EPOCH_KEY_LEN],
                               const uint8_t *payload, size_t payload_len);

/* The same with a nonce of the caller's: for the format's test vectors. */
size_t eta_epoch_packet_write_with_nonce (uint8_t *out, EtaPadding padding,
                                          const uint8_t *rsa_ciphertext, size_t rsa_len,
                                          const uint8_t key[ETA_EPOCH_KEY_LEN],
                                          const uint8_t nonce[ETA_EPOCH_NONCE_LEN],
                                          const uint8_t *payload, size_t payload_len);

/* Opens @packet's payload with @key into @payload (sealed_len - tag bytes).
 * Returns 0, or -1 when it fails authentication (wrong epoch key, or a
 * packet changed anywhere); nothing is left in @payload then. */
int eta_epoch_packet_open (const EtaEpochPacket *packet, const uint8_t key[ETA_EPOCH_KEY_LEN],
                           uint8_t *payload, size_t *payload_len);

/* The epoch's name: SHA-256 of RSA(K). The agent finds K by it. */
int eta_epoch_packet_id (const EtaEpochPacket *packet, uint8_t id[ETA_EPOCH_ID_LEN]);

const char *eta_epoch_status_to_string (EtaEpochStatus status);

/* The epoch packet; the layout and why are in eta-epoch-packet.h. */
#include "config.h"

#include "eta-epoch-packet.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define MAGIC "ETAE"

int
eta_epoch_packet_has_magic (const uint8_t *data, size_t len)
{
  return data != NULL && len >= 4 && memcmp (data, MAGIC, 4) == 0;
}

EtaEpochStatus
eta_epoch_packet_parse (const uint8_t *data, size_t len, EtaEpochPacket *packet)
{
  size_t rsa_len;

  memset (packet, 0, sizeof *packet);
  if (!eta_epoch_packet_has_magic (data, len))
    return ETA_EPOCH_ERROR_NOT_EPOCH;
  if (len < ETA_EPOCH_HEADER_LEN)
    return ETA_EPOCH_ERROR_MALFORMED;
  if (data[4] != ETA_EPOCH_VERSION)
    return ETA_EPOCH_ERROR_VERSION;
  if (data[5] != ETA_PADDING_OAEP && data[5] != ETA_PADDING_PKCS1)
    return ETA_EPOCH_ERROR_MALFORMED;
  if (len > ETA_EPOCH_MAX_PACKET)
    return ETA_EPOCH_ERROR_MALFORMED;
  rsa_len = ((size_t) data[6] << 8) | data[7];
  /* At least one payload byte after the RSA(K), the nonce and the tag. */
  if (rsa_len == 0
      || len < ETA_EPOCH_HEADER_LEN + rsa_len + ETA_EPOCH_NONCE_LEN + ETA_EPOCH_TAG_LEN + 1)
    return ETA_EPOCH_ERROR_MALFORMED;

  packet->padding = (EtaPadding) data[5];
  packet->rsa_ciphertext = data + ETA_EPOCH_HEADER_LEN;
  packet->rsa_ciphertext_len = rsa_len;
  packet->associated_data = data;
  packet->associated_data_len = ETA_EPOCH_HEADER_LEN + rsa_len;
  packet->nonce = data + packet->associated_data_len;
  packet->sealed = packet->nonce + ETA_EPOCH_NONCE_LEN;
  packet->sealed_len = len - packet->associated_data_len - ETA_EPOCH_NONCE_LEN;
  if (packet->sealed_len - ETA_EPOCH_TAG_LEN > ETA_EPOCH_MAX_PAYLOAD)
    {
      memset (packet, 0, sizeof *packet);
      return ETA_EPOCH_ERROR_MALFORMED;
    }
  return ETA_EPOCH_OK;
}

size_t
eta_epoch_packet_size (size_t rsa_len, size_t payload_len)
{
  size_t size = ETA_EPOCH_HEADER_LEN + rsa_len + ETA_EPOCH_NONCE_LEN + payload_len
                + ETA_EPOCH_TAG_LEN;

  if (rsa_len == 0 || rsa_len > 0xffff || payload_len == 0
      || payload_len > ETA_EPOCH_MAX_PAYLOAD || size > ETA_EPOCH_MAX_PACKET)
    return 0;
  return size;
}

size_t
eta_epoch_packet_write_with_nonce (uint8_t *out, EtaPadding padding,
                                   const uint8_t *rsa_ciphertext, size_t rsa_len,
                                   const uint8_t key[ETA_EPOCH_KEY_LEN],
                                   const uint8_t nonce[ETA_EPOCH_NONCE_LEN],
                                   const uint8_t *payload, size_t payload_len)
{
  size_t size = eta_epoch_packet_size (rsa_len, payload_len);
  size_t aad_len = ETA_EPOCH_HEADER_LEN + rsa_len;
  EVP_CIPHER_CTX *ctx;
  int out_len = 0, final_len = 0;
  int ok;

  if (size == 0 || (padding != ETA_PADDING_OAEP && padding != ETA_PADDING_PKCS1))
    return 0;
  memcpy (out, MAGIC, 4);
  out[4] = ETA_EPOCH_VERSION;
  out[5] = (uint8_t) padding;
  out[6] = (uint8_t) (rsa_len >> 8);
  out[7] = (uint8_t) rsa_len;
  memcpy (out + ETA_EPOCH_HEADER_LEN, rsa_ciphertext, rsa_len);
  memcpy (out + aad_len, nonce, ETA_EPOCH_NONCE_LEN);

  ctx = EVP_CIPHER_CTX_new ();
  ok = ctx != NULL
       && EVP_EncryptInit_ex (ctx, EVP_aes_256_gcm (), NULL, key, nonce) == 1
       && EVP_EncryptUpdate (ctx, NULL, &out_len, out, (int) aad_len) == 1
       && EVP_EncryptUpdate (ctx, out + aad_len + ETA_EPOCH_NONCE_LEN, &out_len, payload,
                             (int) payload_len) == 1
       && EVP_EncryptFinal_ex (ctx, out + aad_len + ETA_EPOCH_NONCE_LEN + out_len,
                               &final_len) == 1
       && EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_GCM_GET_TAG, ETA_EPOCH_TAG_LEN,
                               out + aad_len + ETA_EPOCH_NONCE_LEN + payload_len) == 1;
  EVP_CIPHER_CTX_free (ctx);
  if (!ok)
    {
      OPENSSL_cleanse (out, size);
      return 0;
    }
  return size;
}

size_t
eta_epoch_packet_write (uint8_t *out, EtaPadding padding,
                        const uint8_t *rsa_ciphertext, size_t rsa_len,
                        const uint8_t key[ETA_EPOCH_KEY_LEN],
                        const uint8_t *payload, size_t payload_len)
{
  uint8_t nonce[ETA_EPOCH_NONCE_LEN];

  /* Random nonces: an epoch seals at most a few ten thousand payloads, far
   * below where 96-bit random nonces could collide. */
  if (RAND_bytes (nonce, sizeof nonce) != 1)
    return 0;
  return eta_epoch_packet_write_with_nonce (out, padding, rsa_ciphertext, rsa_len, key, nonce,
                                            payload, payload_len);
}

int
eta_epoch_packet_open (const EtaEpochPacket *packet, const uint8_t key[ETA_EPOCH_KEY_LEN],
                       uint8_t *payload, size_t *payload_len)
{
  size_t body_len;
  EVP_CIPHER_CTX *ctx;
  int out_len = 0, final_len = 0;
  int ok;

  if (packet->sealed == NULL || packet->sealed_len <= ETA_EPOCH_TAG_LEN)
    return -1;
  body_len = packet->sealed_len - ETA_EPOCH_TAG_LEN;
  ctx = EVP_CIPHER_CTX_new ();
  ok = ctx != NULL
       && EVP_DecryptInit_ex (ctx, EVP_aes_256_gcm (), NULL, key, packet->nonce) == 1
       && EVP_DecryptUpdate (ctx, NULL, &out_len, packet->associated_data,
                             (int) packet->associated_data_len) == 1
       && EVP_DecryptUpdate (ctx, payload, &out_len, packet->sealed, (int) body_len) == 1
       && EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_GCM_SET_TAG, ETA_EPOCH_TAG_LEN,
                               (void *) (packet->sealed + body_len)) == 1
       && EVP_DecryptFinal_ex (ctx, payload + out_len, &final_len) == 1;
  EVP_CIPHER_CTX_free (ctx);
  if (!ok)
    {
      OPENSSL_cleanse (payload, body_len);
      return -1;
    }
  *payload_len = (size_t) out_len + (size_t) final_len;
  return 0;
}

int
eta_epoch_packet_id (const EtaEpochPacket *packet, uint8_t id[ETA_EPOCH_ID_LEN])
{
  unsigned int len = 0;

  return EVP_Digest (packet->rsa_ciphertext, packet->rsa_ciphertext_len, id, &len,
                     EVP_sha256 (), NULL) == 1 && len == ETA_EPOCH_ID_LEN ? 0 : -1;
}

const char *
eta_epoch_status_to_string (EtaEpochStatus status)
{
  switch (status)
    {
    case ETA_EPOCH_OK: return "valid";
    case ETA_EPOCH_ERROR_NOT_EPOCH: return "not an epoch packet";
    case ETA_EPOCH_ERROR_VERSION: return "epoch packet written by an unsupported version";
    case ETA_EPOCH_ERROR_MALFORMED: return "epoch packet is malformed";
    }
  return "unknown epoch packet error";
}

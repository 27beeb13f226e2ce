/* Writing and checking the key module's blob; the layout is in eta-blob.h. */
#include "config.h"

#include "eta-blob.h"

#include <string.h>

/* The fixed header before the SPKI length: with the wrap byte in version 2. */
#define HEADER_LEN_V1 40
#define HEADER_LEN    41

static size_t
label_len (const char *label)
{
  size_t len = label ? strlen (label) : 0;
  return len > ETA_BLOB_LABEL_MAX ? ETA_BLOB_LABEL_MAX : len;
}

size_t
eta_blob_size (size_t spki_len, const char *key_label, const char *token_label)
{
  size_t size = HEADER_LEN + 2 + spki_len + 1 + label_len (key_label)
                + 1 + label_len (token_label);
  return size > ETA_BLOB_MAX_SIZE ? 0 : size;
}

static int
wrap_is_known (unsigned int wrap)
{
  return wrap == ETA_WRAP_EPOCH || wrap == ETA_WRAP_PER_FILE;
}

size_t
eta_blob_write_with_wrap (uint8_t *out, EtaPadding padding, EtaWrap wrap,
                          const uint8_t *spki, size_t spki_len,
                          const char *key_label, const char *token_label)
{
  size_t size = eta_blob_size (spki_len, key_label, token_label);
  size_t pos = HEADER_LEN, len;

  if (size == 0 || spki_len == 0
      || (padding != ETA_PADDING_OAEP && padding != ETA_PADDING_PKCS1)
      || !wrap_is_known (wrap))
    return 0;

  memcpy (out, "ETAK", 4);
  out[4] = ETA_BLOB_VERSION;
  out[5] = (uint8_t) padding;
  out[6] = (uint8_t) (size >> 8);
  out[7] = (uint8_t) size;
  if (eta_key_fingerprint (spki, spki_len, out + 8) != 0)
    return 0;
  out[40] = (uint8_t) wrap;

  out[pos++] = (uint8_t) (spki_len >> 8);
  out[pos++] = (uint8_t) spki_len;
  memcpy (out + pos, spki, spki_len);
  pos += spki_len;

  len = label_len (key_label);
  out[pos++] = (uint8_t) len;
  memcpy (out + pos, key_label ? key_label : "", len);
  pos += len;

  len = label_len (token_label);
  out[pos++] = (uint8_t) len;
  memcpy (out + pos, token_label ? token_label : "", len);
  pos += len;

  return pos;
}

size_t
eta_blob_write (uint8_t *out, EtaPadding padding,
                const uint8_t *spki, size_t spki_len,
                const char *key_label, const char *token_label)
{
  return eta_blob_write_with_wrap (out, padding, ETA_WRAP_EPOCH, spki, spki_len, key_label,
                                   token_label);
}

EtaBlobStatus
eta_blob_parse (const uint8_t *data, size_t len, EtaBlob *blob)
{
  EtaBlobStatus status = eta_blob_parse_layout (data, len, blob);

  if (status == ETA_BLOB_OK && eta_key_rsa_modulus_bytes (blob->spki, blob->spki_len) == 0)
    return ETA_BLOB_ERROR_KEY;
  return status;
}

EtaBlobStatus
eta_blob_parse_layout (const uint8_t *data, size_t available, EtaBlob *blob)
{
  uint8_t fingerprint[ETA_FINGERPRINT_LEN];
  size_t total, header, pos, len;

  memset (blob, 0, sizeof *blob);
  if (data == NULL || available < 4 || memcmp (data, "ETAK", 4) != 0)
    return ETA_BLOB_ERROR_MAGIC;
  if (available < HEADER_LEN_V1 + 4)
    return ETA_BLOB_ERROR_TRUNCATED;
  if (data[4] != 1 && data[4] != ETA_BLOB_VERSION)
    return ETA_BLOB_ERROR_VERSION;
  header = data[4] == 1 ? HEADER_LEN_V1 : HEADER_LEN;
  total = ((size_t) data[6] << 8) | data[7];
  if (total > ETA_BLOB_MAX_SIZE)
    return ETA_BLOB_ERROR_OVERSIZED;
  /* The stated length is the writer's word; the bytes there are the truth. */
  if (total < header + 4 || total > available)
    return ETA_BLOB_ERROR_TRUNCATED;
  if (data[5] != ETA_PADDING_OAEP && data[5] != ETA_PADDING_PKCS1)
    return ETA_BLOB_ERROR_PADDING;
  /* Version 1 was written before per-file wrapping could be chosen. */
  if (header == HEADER_LEN && !wrap_is_known (data[40]))
    return ETA_BLOB_ERROR_WRAP;
  blob->padding = (EtaPadding) data[5];
  blob->wrap = header == HEADER_LEN ? (EtaWrap) data[40] : ETA_WRAP_EPOCH;
  memcpy (blob->fingerprint, data + 8, ETA_FINGERPRINT_LEN);

  pos = header;

  len = ((size_t) data[pos] << 8) | data[pos + 1];
  pos += 2;
  if (len == 0 || pos + len + 2 > total)
    return ETA_BLOB_ERROR_TRUNCATED;
  blob->spki = data + pos;
  blob->spki_len = len;
  pos += len;

  len = data[pos++];
  if (pos + len + 1 > total)
    return ETA_BLOB_ERROR_TRUNCATED;
  memcpy (blob->key_label, data + pos, len);
  pos += len;

  len = data[pos++];
  if (pos + len != total)
    return ETA_BLOB_ERROR_TRUNCATED;
  memcpy (blob->token_label, data + pos, len);
  blob->total_len = total;

  if (eta_key_fingerprint (blob->spki, blob->spki_len, fingerprint) != 0
      || memcmp (fingerprint, blob->fingerprint, sizeof fingerprint) != 0)
    return ETA_BLOB_ERROR_KEY;
  return ETA_BLOB_OK;
}

const char *
eta_blob_status_to_string (EtaBlobStatus status)
{
  switch (status)
    {
    case ETA_BLOB_OK: return "valid";
    case ETA_BLOB_ERROR_MAGIC: return "not a token-agent key blob";
    case ETA_BLOB_ERROR_VERSION: return "key blob written by an unsupported version";
    case ETA_BLOB_ERROR_TRUNCATED: return "key blob is truncated or inconsistent";
    case ETA_BLOB_ERROR_OVERSIZED: return "key blob is larger than allowed";
    case ETA_BLOB_ERROR_PADDING: return "key blob names an unknown padding scheme";
    case ETA_BLOB_ERROR_KEY: return "key blob holds no valid RSA public key";
    case ETA_BLOB_ERROR_WRAP: return "key blob names an unknown wrap mode";
    }
  return "unknown key blob error";
}

const char *
eta_padding_to_string (EtaPadding padding)
{
  return padding == ETA_PADDING_PKCS1 ? "pkcs1" : "oaep";
}

EtaPadding
eta_padding_from_string (const char *name)
{
  if (name == NULL || strcmp (name, "oaep") == 0)
    return ETA_PADDING_OAEP;
  if (strcmp (name, "pkcs1") == 0)
    return ETA_PADDING_PKCS1;
  return 0;
}

const char *
eta_wrap_to_string (EtaWrap wrap)
{
  return wrap == ETA_WRAP_PER_FILE ? "per-file" : "epoch";
}

EtaWrap
eta_wrap_from_string (const char *name)
{
  if (name == NULL || strcmp (name, "epoch") == 0)
    return ETA_WRAP_EPOCH;
  if (strcmp (name, "per-file") == 0)
    return ETA_WRAP_PER_FILE;
  return 0;
}

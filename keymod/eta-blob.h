/* The key module's blob: what libecryptfs stores after the auth token in the
 * user keyring and hands back with every encrypt and decrypt.
 *
 * It holds only public data (the blob sits in a keyring the user's processes
 * can read): format version, padding scheme, how new files are wrapped, the
 * key's fingerprint, its SubjectPublicKeyInfo and labels for log messages and
 * prompts. The blob is all the encrypt op gets, so the wrap mode (a mount
 * parameter) has to travel in it.
 *
 * Layout, all integers big-endian:
 *   0  magic "ETAK"          4  version (2)        5  padding (1 oaep, 2 pkcs1)
 *   6  total length (u16)    8  fingerprint (32 bytes, SHA-256 of the SPKI)
 *   40 wrap (1 epoch, 2 per-file)          version 2 only
 *   41 SPKI length (u16), SPKI DER         (at 40 in version 1)
 *      key label length (u8), key label (UTF-8, no NUL)
 *      token label length (u8), token label (UTF-8, no NUL)
 * Version 1 blobs (no wrap byte) still parse, and mean epoch wrapping.
 * Every parser takes the number of bytes it may read: the stated total
 * length must fit in it and in ETA_BLOB_MAX_SIZE, and every field in the
 * stated total, before any field is read. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "eta-key-id.h"

#define ETA_BLOB_VERSION   2
#define ETA_BLOB_MAX_SIZE  4096
#define ETA_BLOB_LABEL_MAX 255

typedef enum
{
  ETA_PADDING_OAEP = 1,   /* RSA-OAEP, SHA-1, MGF1-SHA-1 (upstream openssl module) */
  ETA_PADDING_PKCS1 = 2,  /* PKCS#1 v1.5 (upstream pkcs11-helper module) */
} EtaPadding;

/* How the key module wraps the FEKs of new files (keymod/epoch-format.md). */
typedef enum
{
  ETA_WRAP_EPOCH = 1,     /* an epoch packet: FEK under an epoch key K, RSA(K) once per epoch */
  ETA_WRAP_PER_FILE = 2,  /* plain RSA of each FEK, as the upstream modules write */
} EtaWrap;

typedef enum
{
  ETA_BLOB_OK = 0,
  ETA_BLOB_ERROR_MAGIC,       /* not one of our blobs */
  ETA_BLOB_ERROR_VERSION,     /* written by a newer version */
  ETA_BLOB_ERROR_TRUNCATED,   /* fields run past the stated length */
  ETA_BLOB_ERROR_OVERSIZED,   /* stated length above ETA_BLOB_MAX_SIZE */
  ETA_BLOB_ERROR_PADDING,     /* unknown padding scheme */
  ETA_BLOB_ERROR_KEY,         /* the SPKI is not an RSA key, or fingerprint mismatch */
  ETA_BLOB_ERROR_WRAP,        /* unknown wrap mode */
} EtaBlobStatus;

/* A parsed blob. Pointers point into the blob it was parsed from. */
typedef struct
{
  EtaPadding padding;
  EtaWrap wrap;             /* ETA_WRAP_EPOCH for version 1 blobs */
  uint8_t fingerprint[ETA_FINGERPRINT_LEN];
  const uint8_t *spki;
  size_t spki_len;
  char key_label[ETA_BLOB_LABEL_MAX + 1];
  char token_label[ETA_BLOB_LABEL_MAX + 1];
  size_t total_len;
} EtaBlob;

/* Size of the blob eta_blob_write() would produce; 0 if it would be too big. */
size_t eta_blob_size (size_t spki_len, const char *key_label, const char *token_label);

/* Writes a blob for @spki into @out (eta_blob_size() bytes). Labels longer than
 * ETA_BLOB_LABEL_MAX bytes are cut. Returns the size written, or 0. */
size_t eta_blob_write_with_wrap (uint8_t *out, EtaPadding padding, EtaWrap wrap,
                                 const uint8_t *spki, size_t spki_len,
                                 const char *key_label, const char *token_label);
/* The same with ETA_WRAP_EPOCH. */
size_t eta_blob_write (uint8_t *out, EtaPadding padding,
                       const uint8_t *spki, size_t spki_len,
                       const char *key_label, const char *token_label);

/* Parses and checks a blob of which @len bytes may be read, including that
 * the fingerprint matches the SPKI and that the SPKI is an RSA key. */
EtaBlobStatus eta_blob_parse (const uint8_t *data, size_t len, EtaBlob *blob);

/* The same without parsing the SPKI as a key: for callers that parse it once
 * and keep it (parsing costs far more than the RSA operation). */
EtaBlobStatus eta_blob_parse_layout (const uint8_t *data, size_t len, EtaBlob *blob);

/* A sentence describing @status, for logs and error messages. */
const char *eta_blob_status_to_string (EtaBlobStatus status);

/* "oaep" / "pkcs1" and back; eta_padding_from_string returns 0 when unknown. */
const char *eta_padding_to_string (EtaPadding padding);
EtaPadding eta_padding_from_string (const char *name);

/* "epoch" / "per-file" and back; eta_wrap_from_string takes NULL for the
 * default (epoch) and returns 0 when unknown. */
const char *eta_wrap_to_string (EtaWrap wrap);
EtaWrap eta_wrap_from_string (const char *name);

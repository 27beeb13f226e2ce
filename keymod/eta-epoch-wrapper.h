/* EtaEpochWrapper: the key module's epochs, the writer side of the epoch
 * packet (eta-epoch-packet.h, keymod/epoch-format.md).
 *
 * Per public key (fingerprint and padding) one epoch at a time: a random
 * 256-bit key K on a locked, non-dumpable page, RSA(K) encrypted once with
 * that public key, its creation time (monotonic) and the number of files it
 * wrapped. Every file's payload is sealed under K; the token decrypts RSA(K)
 * once per epoch instead of once per file. An epoch ends (K wiped, a new K
 * drawn and encrypted) when it is older than epoch_seconds or has wrapped
 * epoch_files files, so K stays in the process for a bounded time and a K
 * that leaks exposes only its own epoch's files.
 *
 * libecryptfs may call the key module from any thread: every function takes
 * the wrapper's lock. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "eta-blob.h"
#include "eta-epoch-packet.h"

typedef struct _EtaEpochWrapper EtaEpochWrapper;

/* At most this many public keys hold an epoch at once; one more ends the
 * epoch used longest ago. */
#define ETA_EPOCH_WRAPPER_MAX_KEYS 64

/* A wrapper whose epochs last @epoch_seconds or @epoch_files files
 * (both at least 1). No memory is locked before the first wrap. */
EtaEpochWrapper *eta_epoch_wrapper_new (unsigned int epoch_seconds, unsigned int epoch_files);

/* Ends every epoch (each K wiped, its page unlocked and unmapped). */
void eta_epoch_wrapper_free (EtaEpochWrapper *self);

/* New limits, for the epochs to come and the current ones alike. */
void eta_epoch_wrapper_set_limits (EtaEpochWrapper *self, unsigned int epoch_seconds,
                                   unsigned int epoch_files);

/* The size eta_epoch_wrapper_wrap() writes for a key of @modulus_bytes and
 * a payload of @payload_len bytes, or 0 when the packet would not fit a tag 1
 * packet (RSA 4096): the caller then wraps per file. */
size_t eta_epoch_wrapper_packet_size (size_t modulus_bytes, size_t payload_len);

/* Seals @payload into an epoch packet in @out (@out_size bytes available) in
 * the current epoch of the RSA key @key, named by @fingerprint, used with
 * @padding; starts a new epoch first when there is none or it is used up.
 * Returns the size written, or 0. */
size_t eta_epoch_wrapper_wrap (EtaEpochWrapper *self,
                               const uint8_t fingerprint[ETA_FINGERPRINT_LEN],
                               EtaPadding padding, EVP_PKEY *key,
                               const uint8_t *payload, size_t payload_len,
                               uint8_t *out, size_t out_size);

/* Where the wrapper reports what the owner should log (memory that could
 * not be locked, a failed RSA encryption): syslog in the key module. Never
 * called with a secret. Without one, nothing is reported. */
typedef void (*EtaEpochWrapperLogFunc) (int priority, const char *format, ...)
  __attribute__ ((format (printf, 2, 3)));
void eta_epoch_wrapper_set_log_func (EtaEpochWrapper *self, EtaEpochWrapperLogFunc log);

/* How many epoch keys were wiped so far (epochs ended). */
uint64_t eta_epoch_wrapper_get_wipe_count (EtaEpochWrapper *self);

/* For tests: called with an ended epoch's page after K was wiped from it and
 * before the page is unmapped, so a test can see that it holds no K. */
typedef void (*EtaEpochWrapperReleaseHook) (const uint8_t *page, size_t page_len,
                                            void *user_data);
void eta_epoch_wrapper_set_release_hook (EtaEpochWrapper *self, EtaEpochWrapperReleaseHook hook,
                                         void *user_data);

/* The per-file wrap (and how an epoch encrypts its K): RSA with @padding,
 * OAEP with SHA-1 and MGF1-SHA-1 as the upstream openssl module, or PKCS#1
 * v1.5. @out_len holds the room in @out and receives the size written (the
 * modulus size). Returns 0 or -1. */
int eta_rsa_encrypt (EVP_PKEY *key, EtaPadding padding, const uint8_t *in, size_t in_len,
                     uint8_t *out, size_t *out_len);

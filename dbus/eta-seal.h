/* Sealing of an unwrapped key for its trip across the bus.
 *
 * The key module sends an ephemeral X25519 public key with each Unwrap; the
 * agent seals the recovered key to it (X25519 + HKDF-SHA256 + AES-256-GCM), so
 * a bus monitor never sees the plaintext. Plain C and OpenSSL only: the key
 * module links it as well.
 *
 * An agreement costs as much as a cached epoch unwrap itself, on each side,
 * and a folder read makes one Unwrap per file. So the key module's key pair
 * serves the Unwraps of at most ETA_SEAL_REUSE_SECONDS and
 * ETA_SEAL_REUSE_EXCHANGES (eta_seal_session_reuse), the agent answers a
 * caller key it has seen within the same bounds with the same agent key
 * pair, and each side keeps the AES key agreed: a fresh random nonce per
 * reply, and a thread of each process wipes the key pair and agreements
 * when their time is up (the agent's agreements sit on a locked page kept
 * out of core dumps). Whoever records the bus and later reads one
 * process's memory learns the replies of those few seconds, not more. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define ETA_SEAL_PUBLIC_KEY_LEN 32
#define ETA_SEAL_NONCE_LEN      12
#define ETA_SEAL_TAG_LEN        16
#define ETA_SEAL_OVERHEAD       (ETA_SEAL_NONCE_LEN + ETA_SEAL_TAG_LEN)
/* Sealed payloads larger than this are refused before any crypto. */
#define ETA_SEAL_MAX_PLAINTEXT  512
/* How long, and for how many replies, one key pair (and the AES key agreed
 * with it) may serve: a burst of opens, not a session. */
#define ETA_SEAL_REUSE_SECONDS   2.0
#define ETA_SEAL_REUSE_EXCHANGES 1000

typedef struct EtaSealSession EtaSealSession;

/* Caller side: a fresh ephemeral key pair (the one eta_seal_session_prepare
 * made, if any), or NULL when OpenSSL fails. */
EtaSealSession *eta_seal_session_new (void);
/* Makes the key pair for the next eta_seal_session_new() now, while the
 * caller has time (waiting for the agent's reply): every session still gets
 * a key of its own, used once. Any thread. */
void eta_seal_session_prepare (void);
/* Caller side, for a stream of requests: the key pair of the last call when
 * it is younger than ETA_SEAL_REUSE_SECONDS and has served fewer than
 * ETA_SEAL_REUSE_EXCHANGES (never across a fork()), else a new one
 * (eta_seal_session_new). NULL when OpenSSL fails. Any thread. */
EtaSealSession *eta_seal_session_reuse (void);
/* Drops the caller's reference; the last one wipes the key pair. */
void eta_seal_session_free (EtaSealSession *session);
/* The 32-byte public half to send with the request. */
const uint8_t *eta_seal_session_get_public_key (const EtaSealSession *session);
/* Opens what the agent sealed. @plaintext must hold sealed_len -
 * ETA_SEAL_OVERHEAD bytes. Returns 0, or -1 when the payload is malformed or
 * fails authentication (then nothing is written to @plaintext_len). */
int eta_seal_session_open (EtaSealSession *session,
                           const uint8_t *agent_public_key, size_t agent_public_key_len,
                           const char *associated_data,
                           const uint8_t *sealed, size_t sealed_len,
                           uint8_t *plaintext, size_t *plaintext_len);

/* Agent side, in two steps so that a caller's key is checked before any
 * token work: the ephemeral key and the AES key agreed with
 * @caller_public_key, or NULL when that key is malformed or of low order
 * (an all-zero shared secret, which OpenSSL refuses). A caller key seen
 * within the reuse bounds gets the agreement made then (the same agent
 * key). Any thread. */
typedef struct EtaSealKey EtaSealKey;
EtaSealKey *eta_seal_key_new (const uint8_t *caller_public_key, size_t caller_public_key_len);
/* Makes the ephemeral key pair for the next new agreement now (after a
 * reply went out), so that the agreement alone is left for the request.
 * Any thread. */
void eta_seal_key_prepare (void);
void eta_seal_key_free (EtaSealKey *key);
/* Seals @plaintext with @key. @agent_public_key receives 32 bytes, @sealed
 * plaintext_len + ETA_SEAL_OVERHEAD bytes. Returns 0 or -1. */
int eta_seal_key_seal (const EtaSealKey *key, const char *associated_data,
                       const uint8_t *plaintext, size_t plaintext_len,
                       uint8_t *agent_public_key, uint8_t *sealed);

/* How many reused key pairs and kept agreements this process holds now
 * (tests: the wiper's work). */
int eta_seal_kept (void);

/* Wipes the key pairs made ahead, the caller's reused one and the agent's
 * kept agreements (a module's finalize). */
void eta_seal_forget_prepared (void);

/* Both steps at once: seals @plaintext to @caller_public_key with a fresh
 * ephemeral key. Returns 0 or -1. */
int eta_seal_to (const uint8_t *caller_public_key, size_t caller_public_key_len,
                 const char *associated_data,
                 const uint8_t *plaintext, size_t plaintext_len,
                 uint8_t *agent_public_key, uint8_t *sealed);

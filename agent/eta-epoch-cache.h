/* The epoch keys the agent has recovered: K of an epoch packet
 * (keymod/epoch-format.md), found by the epoch's id (SHA-256 of RSA(K)).
 *
 * A real token takes 0.1-1 s per RSA operation; with K kept, every further
 * file of the epoch opens without one. K is as good as the token's login for
 * that epoch's files, so each entry belongs to the token that decrypted it
 * and goes when that token is locked, logged out or pulled out, and all of
 * them when the agent quits. The entries live on one locked, non-dumpable
 * slab (an EtaSecret), wiped in place; the cache is bounded, and the least
 * recently used entry makes room.
 *
 * Thread-safe; it never calls out, so callers may hold their own locks. */
#pragma once

#include <glib.h>

#include "eta-epoch-packet.h"
#include "eta-secret.h"

G_BEGIN_DECLS

typedef struct _EtaEpochCache EtaEpochCache;

#define ETA_EPOCH_CACHE_SLOTS 256
/* Longest fingerprint a request may name: 64 hex digits. */
#define ETA_EPOCH_CACHE_FINGERPRINT_MAX 64

EtaEpochCache *eta_epoch_cache_new (void);
void eta_epoch_cache_free (EtaEpochCache *cache);

/* K for epoch @id of the key @fingerprint (its full lowercase hex), and in
 * @token_out the token it belongs to; NULL when not kept. */
EtaSecret *eta_epoch_cache_lookup (EtaEpochCache *cache, const gchar *fingerprint,
                                   const guint8 id[ETA_EPOCH_ID_LEN], guint *token_out);

/* Keeps @key (ETA_EPOCH_KEY_LEN bytes) for epoch @id of @fingerprint,
 * belonging to @token (a number the caller gives each token). */
void eta_epoch_cache_insert (EtaEpochCache *cache, const gchar *fingerprint,
                             const guint8 id[ETA_EPOCH_ID_LEN], guint token,
                             const EtaSecret *key);

/* Wipes every entry of @token; returns how many went. */
guint eta_epoch_cache_forget_token (EtaEpochCache *cache, guint token);
/* Wipes every entry. */
guint eta_epoch_cache_forget_all (EtaEpochCache *cache);

/* How many entries are kept now. */
guint eta_epoch_cache_get_size (EtaEpochCache *cache);

G_END_DECLS

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

/* TRUE when K for epoch @id of @fingerprint is kept, and in @token_out the
 * token it belongs to. No copy of K is made. */
gboolean eta_epoch_cache_contains (EtaEpochCache *cache, const gchar *fingerprint,
                                   const guint8 id[ETA_EPOCH_ID_LEN], guint *token_out);

typedef enum
{
  ETA_EPOCH_CACHE_OPENED,     /* the payload is in @payload */
  ETA_EPOCH_CACHE_NOT_KEPT,   /* no K for that epoch and token (any more) */
  ETA_EPOCH_CACHE_REFUSED,    /* K is kept, and the packet does not open with it */
} EtaEpochCacheOpen;

/* Opens @packet, a packet of epoch @id, with the K of @fingerprint kept for
 * @token, where K is: no copy of it leaves the cache. @payload holds
 * @packet's sealed_len bytes; *@payload_len gets the payload's length. */
EtaEpochCacheOpen eta_epoch_cache_open (EtaEpochCache *cache, const gchar *fingerprint,
                                        const guint8 id[ETA_EPOCH_ID_LEN], guint token,
                                        const EtaEpochPacket *packet, guint8 *payload,
                                        gsize *payload_len);

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

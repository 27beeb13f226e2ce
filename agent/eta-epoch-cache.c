/* See eta-epoch-cache.h. */
#include "config.h"

#include "eta-epoch-cache.h"

#include <string.h>

typedef struct
{
  gboolean used;
  guint token;
  guint64 last_used;
  gchar fingerprint[ETA_EPOCH_CACHE_FINGERPRINT_MAX + 1];
  guint8 id[ETA_EPOCH_ID_LEN];
  guint8 key[ETA_EPOCH_KEY_LEN];
} Entry;

struct _EtaEpochCache
{
  GMutex lock;
  /* ETA_EPOCH_CACHE_SLOTS entries: ids and fingerprints are not secret, but
   * one slab keeps the layout simple and everything on locked pages. */
  EtaSecret *slab;
  guint64 clock;
};

static Entry *
entries (EtaEpochCache *cache)
{
  return (Entry *) eta_secret_get_data (cache->slab);
}

EtaEpochCache *
eta_epoch_cache_new (void)
{
  EtaEpochCache *cache = g_new0 (EtaEpochCache, 1);

  g_mutex_init (&cache->lock);
  cache->slab = eta_secret_new (ETA_EPOCH_CACHE_SLOTS * sizeof (Entry));
  return cache;
}

void
eta_epoch_cache_free (EtaEpochCache *cache)
{
  if (cache == NULL)
    return;
  /* eta_secret_unref wipes the slab before unmapping it. */
  eta_secret_unref (cache->slab);
  g_mutex_clear (&cache->lock);
  g_free (cache);
}

static void
wipe_entry (Entry *entry)
{
  explicit_bzero (entry, sizeof *entry);
}

/* Under the lock: the entry of epoch @id of @fingerprint, or NULL. */
static Entry *
find_entry (EtaEpochCache *cache, const gchar *fingerprint, const guint8 id[ETA_EPOCH_ID_LEN])
{
  for (guint i = 0; i < ETA_EPOCH_CACHE_SLOTS; i++)
    {
      Entry *entry = &entries (cache)[i];

      if (entry->used && memcmp (entry->id, id, ETA_EPOCH_ID_LEN) == 0
          && strcmp (entry->fingerprint, fingerprint) == 0)
        return entry;
    }
  return NULL;
}

gboolean
eta_epoch_cache_contains (EtaEpochCache *cache, const gchar *fingerprint,
                          const guint8 id[ETA_EPOCH_ID_LEN], guint *token_out)
{
  Entry *entry;

  g_mutex_lock (&cache->lock);
  entry = find_entry (cache, fingerprint, id);
  if (entry != NULL && token_out != NULL)
    *token_out = entry->token;
  g_mutex_unlock (&cache->lock);
  return entry != NULL;
}

EtaEpochCacheOpen
eta_epoch_cache_open (EtaEpochCache *cache, const gchar *fingerprint,
                      const guint8 id[ETA_EPOCH_ID_LEN], guint token,
                      const EtaEpochPacket *packet, guint8 *payload, gsize *payload_len)
{
  EtaEpochCacheOpen result = ETA_EPOCH_CACHE_NOT_KEPT;
  Entry *entry;

  g_mutex_lock (&cache->lock);
  entry = find_entry (cache, fingerprint, id);
  if (entry != NULL && entry->token == token)
    {
      entry->last_used = ++cache->clock;
      result = eta_epoch_packet_open (packet, entry->key, payload, payload_len) == 0
                 ? ETA_EPOCH_CACHE_OPENED : ETA_EPOCH_CACHE_REFUSED;
    }
  g_mutex_unlock (&cache->lock);
  return result;
}

EtaSecret *
eta_epoch_cache_lookup (EtaEpochCache *cache, const gchar *fingerprint,
                        const guint8 id[ETA_EPOCH_ID_LEN], guint *token_out)
{
  EtaSecret *key = NULL;
  Entry *entry;

  g_mutex_lock (&cache->lock);
  entry = find_entry (cache, fingerprint, id);
  if (entry != NULL)
    {
      entry->last_used = ++cache->clock;
      key = eta_secret_new_from_data (entry->key, ETA_EPOCH_KEY_LEN);
      if (token_out != NULL)
        *token_out = entry->token;
    }
  g_mutex_unlock (&cache->lock);
  return key;
}

void
eta_epoch_cache_insert (EtaEpochCache *cache, const gchar *fingerprint,
                        const guint8 id[ETA_EPOCH_ID_LEN], guint token, const EtaSecret *key)
{
  Entry *slot = NULL;
  gboolean same_epoch = FALSE;

  g_return_if_fail (eta_secret_get_length (key) == ETA_EPOCH_KEY_LEN);
  g_return_if_fail (strlen (fingerprint) <= ETA_EPOCH_CACHE_FINGERPRINT_MAX);

  g_mutex_lock (&cache->lock);
  /* The same epoch again (two requests raced to the token): replace. */
  slot = find_entry (cache, fingerprint, id);
  same_epoch = slot != NULL;
  /* Else a free slot, else the least recently used one. */
  for (guint i = 0; i < ETA_EPOCH_CACHE_SLOTS && !same_epoch && (slot == NULL || slot->used); i++)
    {
      Entry *entry = &entries (cache)[i];

      if (slot == NULL || !entry->used || entry->last_used < slot->last_used)
        slot = entry;
    }
  wipe_entry (slot);
  slot->used = TRUE;
  slot->token = token;
  slot->last_used = ++cache->clock;
  g_strlcpy (slot->fingerprint, fingerprint, sizeof slot->fingerprint);
  memcpy (slot->id, id, ETA_EPOCH_ID_LEN);
  memcpy (slot->key, eta_secret_get_data ((EtaSecret *) key), ETA_EPOCH_KEY_LEN);
  g_mutex_unlock (&cache->lock);
}

static guint
forget (EtaEpochCache *cache, gboolean all, guint token)
{
  guint forgotten = 0;

  g_mutex_lock (&cache->lock);
  for (guint i = 0; i < ETA_EPOCH_CACHE_SLOTS; i++)
    {
      Entry *entry = &entries (cache)[i];

      if (entry->used && (all || entry->token == token))
        {
          wipe_entry (entry);
          forgotten++;
        }
    }
  g_mutex_unlock (&cache->lock);
  return forgotten;
}

guint
eta_epoch_cache_forget_token (EtaEpochCache *cache, guint token)
{
  return forget (cache, FALSE, token);
}

guint
eta_epoch_cache_forget_all (EtaEpochCache *cache)
{
  return forget (cache, TRUE, 0);
}

guint
eta_epoch_cache_get_size (EtaEpochCache *cache)
{
  guint size = 0;

  g_mutex_lock (&cache->lock);
  for (guint i = 0; i < ETA_EPOCH_CACHE_SLOTS; i++)
    size += entries (cache)[i].used ? 1 : 0;
  g_mutex_unlock (&cache->lock);
  return size;
}

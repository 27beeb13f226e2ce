/* The key module's epochs; see eta-epoch-wrapper.h. */
#include "config.h"

#include "eta-epoch-wrapper.h"

#include <string.h>
#include <sys/mman.h>
#include <syslog.h>
#include <unistd.h>

#include <glib.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

typedef struct
{
  gboolean used;
  uint8_t fingerprint[ETA_FINGERPRINT_LEN];
  EtaPadding padding;
  /* K at the start of a page of its own: locked, left out of core dumps. */
  uint8_t *page;
  size_t page_len;
  gboolean locked;
  /* RSA(K): public, it goes into every packet of the epoch. */
  uint8_t rsa_key[ETA_EPOCH_MAX_PACKET];
  size_t rsa_key_len;
  gint64 created_us;
  gint64 used_us;
  uint64_t files;
} Epoch;

struct _EtaEpochWrapper
{
  GMutex lock;
  unsigned int epoch_seconds;
  unsigned int epoch_files;
  uint64_t wipes;
  EtaEpochWrapperLogFunc log;
  EtaEpochWrapperReleaseHook release_hook;
  void *release_hook_data;
  Epoch epochs[ETA_EPOCH_WRAPPER_MAX_KEYS];
};

EtaEpochWrapper *
eta_epoch_wrapper_new (unsigned int epoch_seconds, unsigned int epoch_files)
{
  EtaEpochWrapper *self = g_new0 (EtaEpochWrapper, 1);

  g_mutex_init (&self->lock);
  self->epoch_seconds = MAX (epoch_seconds, 1);
  self->epoch_files = MAX (epoch_files, 1);
  return self;
}

/* Ends @epoch: K wiped before its page goes back. Called with the lock held. */
static void
epoch_end (EtaEpochWrapper *self, Epoch *epoch)
{
  if (epoch->page != NULL)
    {
      OPENSSL_cleanse (epoch->page, epoch->page_len);
      self->wipes++;
      if (self->release_hook != NULL)
        self->release_hook (epoch->page, epoch->page_len, self->release_hook_data);
      if (epoch->locked)
        munlock (epoch->page, epoch->page_len);
      munmap (epoch->page, epoch->page_len);
    }
  memset (epoch, 0, sizeof *epoch);
}

void
eta_epoch_wrapper_free (EtaEpochWrapper *self)
{
  if (self == NULL)
    return;
  g_mutex_lock (&self->lock);
  for (size_t i = 0; i < G_N_ELEMENTS (self->epochs); i++)
    epoch_end (self, &self->epochs[i]);
  g_mutex_unlock (&self->lock);
  g_mutex_clear (&self->lock);
  g_free (self);
}

void
eta_epoch_wrapper_set_limits (EtaEpochWrapper *self, unsigned int epoch_seconds,
                              unsigned int epoch_files)
{
  g_mutex_lock (&self->lock);
  self->epoch_seconds = MAX (epoch_seconds, 1);
  self->epoch_files = MAX (epoch_files, 1);
  g_mutex_unlock (&self->lock);
}

void
eta_epoch_wrapper_set_log_func (EtaEpochWrapper *self, EtaEpochWrapperLogFunc log)
{
  g_mutex_lock (&self->lock);
  self->log = log;
  g_mutex_unlock (&self->lock);
}

void
eta_epoch_wrapper_set_release_hook (EtaEpochWrapper *self, EtaEpochWrapperReleaseHook hook,
                                    void *user_data)
{
  g_mutex_lock (&self->lock);
  self->release_hook = hook;
  self->release_hook_data = user_data;
  g_mutex_unlock (&self->lock);
}

uint64_t
eta_epoch_wrapper_get_wipe_count (EtaEpochWrapper *self)
{
  uint64_t wipes;

  g_mutex_lock (&self->lock);
  wipes = self->wipes;
  g_mutex_unlock (&self->lock);
  return wipes;
}

size_t
eta_epoch_wrapper_packet_size (size_t modulus_bytes, size_t payload_len)
{
  return eta_epoch_packet_size (modulus_bytes, payload_len);
}

int
eta_rsa_encrypt (EVP_PKEY *key, EtaPadding padding, const uint8_t *in, size_t in_len,
                 uint8_t *out, size_t *out_len)
{
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new (key, NULL);
  int ok = ctx != NULL && EVP_PKEY_encrypt_init (ctx) == 1;

  if (ok && padding == ETA_PADDING_OAEP)
    ok = EVP_PKEY_CTX_set_rsa_padding (ctx, RSA_PKCS1_OAEP_PADDING) == 1
         && EVP_PKEY_CTX_set_rsa_oaep_md (ctx, EVP_sha1 ()) == 1
         && EVP_PKEY_CTX_set_rsa_mgf1_md (ctx, EVP_sha1 ()) == 1;
  else if (ok && padding == ETA_PADDING_PKCS1)
    ok = EVP_PKEY_CTX_set_rsa_padding (ctx, RSA_PKCS1_PADDING) == 1;
  else
    ok = 0;
  ok = ok && EVP_PKEY_encrypt (ctx, out, out_len, in, in_len) == 1;
  EVP_PKEY_CTX_free (ctx);
  return ok ? 0 : -1;
}

/* Starts a new epoch in @epoch (which holds none): a fresh K on a page of
 * its own, encrypted once with @key. Called with the lock held. */
static int
epoch_start (EtaEpochWrapper *self, Epoch *epoch, const uint8_t *fingerprint,
             EtaPadding padding, EVP_PKEY *key)
{
  static gboolean warned_unlocked;
  long page_size = sysconf (_SC_PAGESIZE);
  void *page;

  epoch->page_len = page_size > 0 ? (size_t) page_size : 4096;
  page = mmap (NULL, epoch->page_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
               0);
  if (page == MAP_FAILED)
    {
      memset (epoch, 0, sizeof *epoch);
      if (self->log != NULL)
        self->log (LOG_ERR, "cannot map a page for an epoch key");
      return -1;
    }
  epoch->page = page;
  /* Out of swap and out of core dumps. A process without RLIMIT_MEMLOCK
   * room still wraps: the key is wiped all the same. */
  epoch->locked = mlock (page, epoch->page_len) == 0;
  if (!epoch->locked && !warned_unlocked && self->log != NULL)
    self->log (LOG_WARNING, "cannot lock memory for epoch keys (RLIMIT_MEMLOCK); "
                            "they may be swapped out");
  warned_unlocked = warned_unlocked || !epoch->locked;
  madvise (page, epoch->page_len, MADV_DONTDUMP);

  epoch->used = TRUE;
  memcpy (epoch->fingerprint, fingerprint, ETA_FINGERPRINT_LEN);
  epoch->padding = padding;
  epoch->rsa_key_len = sizeof epoch->rsa_key;
  if (RAND_priv_bytes (epoch->page, ETA_EPOCH_KEY_LEN) != 1
      || eta_rsa_encrypt (key, padding, epoch->page, ETA_EPOCH_KEY_LEN, epoch->rsa_key,
                          &epoch->rsa_key_len) != 0)
    {
      if (self->log != NULL)
        self->log (LOG_ERR, "cannot make an epoch key");
      epoch_end (self, epoch);
      return -1;
    }
  epoch->created_us = g_get_monotonic_time ();
  epoch->files = 0;
  return 0;
}

static gboolean
epoch_is_used_up (const EtaEpochWrapper *self, const Epoch *epoch, gint64 now)
{
  return epoch->files >= self->epoch_files
         || now - epoch->created_us >= (gint64) self->epoch_seconds * G_USEC_PER_SEC;
}

/* The slot of @fingerprint with @padding, else a free one, else the one
 * used longest ago (its epoch ended). Called with the lock held. */
static Epoch *
find_slot (EtaEpochWrapper *self, const uint8_t *fingerprint, EtaPadding padding)
{
  Epoch *free_slot = NULL, *oldest = NULL;

  for (size_t i = 0; i < G_N_ELEMENTS (self->epochs); i++)
    {
      Epoch *epoch = &self->epochs[i];

      if (!epoch->used)
        {
          if (free_slot == NULL)
            free_slot = epoch;
          continue;
        }
      if (epoch->padding == padding
          && memcmp (epoch->fingerprint, fingerprint, ETA_FINGERPRINT_LEN) == 0)
        return epoch;
      if (oldest == NULL || epoch->used_us < oldest->used_us)
        oldest = epoch;
    }
  if (free_slot != NULL)
    return free_slot;
  epoch_end (self, oldest);
  return oldest;
}

size_t
eta_epoch_wrapper_wrap (EtaEpochWrapper *self, const uint8_t fingerprint[ETA_FINGERPRINT_LEN],
                        EtaPadding padding, EVP_PKEY *key,
                        const uint8_t *payload, size_t payload_len,
                        uint8_t *out, size_t out_size)
{
  size_t size = eta_epoch_wrapper_packet_size ((size_t) EVP_PKEY_get_size (key), payload_len);
  gint64 now = g_get_monotonic_time ();
  Epoch *epoch;
  size_t written = 0;

  if (size == 0 || out_size < size)
    return 0;
  g_mutex_lock (&self->lock);
  epoch = find_slot (self, fingerprint, padding);
  if (epoch->used && epoch_is_used_up (self, epoch, now))
    epoch_end (self, epoch);
  if (epoch->used || epoch_start (self, epoch, fingerprint, padding, key) == 0)
    {
      if (eta_epoch_packet_size (epoch->rsa_key_len, payload_len) == size)
        written = eta_epoch_packet_write (out, padding, epoch->rsa_key, epoch->rsa_key_len,
                                          epoch->page, payload, payload_len);
      if (written != 0)
        {
          epoch->files++;
          epoch->used_us = now;
        }
    }
  g_mutex_unlock (&self->lock);
  return written;
}

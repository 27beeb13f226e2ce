/* X25519 + HKDF-SHA256 + AES-256-GCM sealing; see eta-seal.h for why. */
#include "config.h"

#include "eta-seal.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#define SEAL_INFO "org.ecryptfs.TokenAgent1 Unwrap v1"
#define SEAL_KEY_LEN 32

struct EtaSealSession
{
  int refs;   /* atomic */
  EVP_PKEY *key;
  uint8_t public_key[ETA_SEAL_PUBLIC_KEY_LEN];
  /* Reuse bounds (eta_seal_session_reuse). */
  pid_t pid;
  double made_at;
  unsigned exchanges;
  /* The last agreement, so that replies sealed with the same agent key cost
   * no second one. */
  pthread_mutex_t lock;
  int agreed;
  uint8_t agreed_agent_key[ETA_SEAL_PUBLIC_KEY_LEN];
  uint8_t agreed_aes_key[SEAL_KEY_LEN];
};

static double
seconds_now (void)
{
  struct timespec now;

  clock_gettime (CLOCK_MONOTONIC, &now);
  return (double) now.tv_sec + (double) now.tv_nsec / 1e9;
}

static int
within_reuse_bounds (pid_t pid, double made_at, unsigned exchanges)
{
  return pid == getpid () && exchanges < ETA_SEAL_REUSE_EXCHANGES
         && seconds_now () - made_at < ETA_SEAL_REUSE_SECONDS;
}

static EVP_PKEY *
generate_x25519 (uint8_t public_key[ETA_SEAL_PUBLIC_KEY_LEN])
{
  EVP_PKEY *key = EVP_PKEY_Q_keygen (NULL, NULL, "X25519");
  size_t len = ETA_SEAL_PUBLIC_KEY_LEN;

  if (key == NULL)
    return NULL;
  if (EVP_PKEY_get_raw_public_key (key, public_key, &len) != 1
      || len != ETA_SEAL_PUBLIC_KEY_LEN)
    {
      EVP_PKEY_free (key);
      return NULL;
    }
  return key;
}

/* Key pairs made ahead of their use, one for each side: a fresh key still
 * serves exactly one exchange, but its generation (an X25519 scalar
 * multiplication, as long as the agreement itself) happens while the caller
 * waits for the agent anyway, or after the agent has replied, instead of
 * on the way. A spare made before a fork() is never used after it: parent
 * and child would both hold it. */
typedef struct
{
  pthread_mutex_t lock;
  EVP_PKEY *key;
  uint8_t public_key[ETA_SEAL_PUBLIC_KEY_LEN];
  pid_t pid;
} Spare;

static Spare caller_spare = { PTHREAD_MUTEX_INITIALIZER, NULL, { 0 }, 0 };
static Spare agent_spare = { PTHREAD_MUTEX_INITIALIZER, NULL, { 0 }, 0 };

/* The spare key pair, or a new one when there is none. */
static EVP_PKEY *
take_key (Spare *spare, uint8_t public_key[ETA_SEAL_PUBLIC_KEY_LEN])
{
  EVP_PKEY *key = NULL;

  pthread_mutex_lock (&spare->lock);
  if (spare->key != NULL && spare->pid == getpid ())
    {
      key = spare->key;
      memcpy (public_key, spare->public_key, ETA_SEAL_PUBLIC_KEY_LEN);
    }
  else
    EVP_PKEY_free (spare->key);
  spare->key = NULL;
  pthread_mutex_unlock (&spare->lock);
  return key != NULL ? key : generate_x25519 (public_key);
}

static void
prepare_key (Spare *spare)
{
  uint8_t public_key[ETA_SEAL_PUBLIC_KEY_LEN];
  EVP_PKEY *key;
  int wanted;

  pthread_mutex_lock (&spare->lock);
  wanted = spare->key == NULL || spare->pid != getpid ();
  pthread_mutex_unlock (&spare->lock);
  if (!wanted)
    return;
  /* Outside the lock: another thread may take or make one meanwhile. */
  key = generate_x25519 (public_key);
  if (key == NULL)
    return;
  pthread_mutex_lock (&spare->lock);
  if (spare->key == NULL || spare->pid != getpid ())
    {
      EVP_PKEY_free (spare->key);
      spare->key = key;
      spare->pid = getpid ();
      memcpy (spare->public_key, public_key, ETA_SEAL_PUBLIC_KEY_LEN);
      key = NULL;
    }
  pthread_mutex_unlock (&spare->lock);
  EVP_PKEY_free (key);
}

static void
forget_key (Spare *spare)
{
  pthread_mutex_lock (&spare->lock);
  EVP_PKEY_free (spare->key);
  spare->key = NULL;
  pthread_mutex_unlock (&spare->lock);
}

void
eta_seal_session_prepare (void)
{
  prepare_key (&caller_spare);
}

void
eta_seal_key_prepare (void)
{
  prepare_key (&agent_spare);
}

/* Both sides derive the same AES key; the salt binds both public keys, so
 * a sealed payload opens only within the burst of exchanges between these
 * two key pairs (ETA_SEAL_REUSE_SECONDS). */
static int
derive_key (EVP_PKEY *own_key, const uint8_t *peer_public_key,
            const uint8_t *caller_public_key, const uint8_t *agent_public_key,
            uint8_t aes_key[SEAL_KEY_LEN])
{
  EVP_PKEY *peer = NULL;
  EVP_PKEY_CTX *derive = NULL;
  EVP_KDF *kdf = NULL;
  EVP_KDF_CTX *kdf_ctx = NULL;
  uint8_t shared[32];
  size_t shared_len = sizeof shared;
  uint8_t salt[2 * ETA_SEAL_PUBLIC_KEY_LEN];
  int ret = -1;

  peer = EVP_PKEY_new_raw_public_key (EVP_PKEY_X25519, NULL, peer_public_key,
                                      ETA_SEAL_PUBLIC_KEY_LEN);
  if (peer == NULL)
    goto out;
  derive = EVP_PKEY_CTX_new (own_key, NULL);
  if (derive == NULL || EVP_PKEY_derive_init (derive) != 1
      || EVP_PKEY_derive_set_peer (derive, peer) != 1
      || EVP_PKEY_derive (derive, shared, &shared_len) != 1
      || shared_len != sizeof shared)
    goto out;

  memcpy (salt, caller_public_key, ETA_SEAL_PUBLIC_KEY_LEN);
  memcpy (salt + ETA_SEAL_PUBLIC_KEY_LEN, agent_public_key, ETA_SEAL_PUBLIC_KEY_LEN);

  kdf = EVP_KDF_fetch (NULL, "HKDF", NULL);
  kdf_ctx = kdf ? EVP_KDF_CTX_new (kdf) : NULL;
  if (kdf_ctx == NULL)
    goto out;
  {
    OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string (OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0),
      OSSL_PARAM_construct_octet_string (OSSL_KDF_PARAM_KEY, shared, shared_len),
      OSSL_PARAM_construct_octet_string (OSSL_KDF_PARAM_SALT, salt, sizeof salt),
      OSSL_PARAM_construct_octet_string (OSSL_KDF_PARAM_INFO, (char *) SEAL_INFO,
                                         strlen (SEAL_INFO)),
      OSSL_PARAM_construct_end (),
    };
    if (EVP_KDF_derive (kdf_ctx, aes_key, SEAL_KEY_LEN, params) != 1)
      goto out;
  }
  ret = 0;

out:
  OPENSSL_cleanse (shared, sizeof shared);
  EVP_KDF_CTX_free (kdf_ctx);
  EVP_KDF_free (kdf);
  EVP_PKEY_CTX_free (derive);
  EVP_PKEY_free (peer);
  return ret;
}

EtaSealSession *
eta_seal_session_new (void)
{
  EtaSealSession *session = OPENSSL_secure_zalloc (sizeof *session);

  if (session == NULL)
    return NULL;
  session->key = take_key (&caller_spare, session->public_key);
  if (session->key == NULL)
    {
      OPENSSL_secure_free (session);
      return NULL;
    }
  session->refs = 1;
  session->pid = getpid ();
  session->made_at = seconds_now ();
  pthread_mutex_init (&session->lock, NULL);
  return session;
}

void
eta_seal_session_free (EtaSealSession *session)
{
  if (session == NULL || __atomic_sub_fetch (&session->refs, 1, __ATOMIC_ACQ_REL) != 0)
    return;
  EVP_PKEY_free (session->key);
  pthread_mutex_destroy (&session->lock);
  OPENSSL_secure_clear_free (session, sizeof *session);
}

/* The session eta_seal_session_reuse hands out. */
static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static EtaSealSession *current_session;

static void wake_wiper (void);

EtaSealSession *
eta_seal_session_reuse (void)
{
  EtaSealSession *session = NULL, *old = NULL;

  pthread_mutex_lock (&current_lock);
  if (current_session != NULL
      && within_reuse_bounds (current_session->pid, current_session->made_at,
                              current_session->exchanges))
    {
      session = current_session;
      session->exchanges++;
      __atomic_add_fetch (&session->refs, 1, __ATOMIC_RELAXED);
    }
  else
    {
      old = current_session;
      current_session = NULL;
    }
  pthread_mutex_unlock (&current_lock);
  /* Outside the lock: the last reference wipes the old key pair. */
  eta_seal_session_free (old);
  if (session != NULL)
    return session;

  session = eta_seal_session_new ();
  if (session == NULL)
    return NULL;
  session->exchanges = 1;
  pthread_mutex_lock (&current_lock);
  if (current_session == NULL)
    {
      current_session = session;
      __atomic_add_fetch (&session->refs, 1, __ATOMIC_RELAXED);
    }
  pthread_mutex_unlock (&current_lock);
  wake_wiper ();
  return session;
}

const uint8_t *
eta_seal_session_get_public_key (const EtaSealSession *session)
{
  return session->public_key;
}

int
eta_seal_session_open (EtaSealSession *session,
                       const uint8_t *agent_public_key, size_t agent_public_key_len,
                       const char *associated_data,
                       const uint8_t *sealed, size_t sealed_len,
                       uint8_t *plaintext, size_t *plaintext_len)
{
  uint8_t aes_key[SEAL_KEY_LEN];
  EVP_CIPHER_CTX *ctx = NULL;
  size_t body_len;
  int out_len = 0, final_len = 0;
  int ret = -1;

  if (agent_public_key_len != ETA_SEAL_PUBLIC_KEY_LEN
      || sealed_len < ETA_SEAL_OVERHEAD
      || sealed_len - ETA_SEAL_OVERHEAD > ETA_SEAL_MAX_PLAINTEXT)
    return -1;
  body_len = sealed_len - ETA_SEAL_OVERHEAD;

  pthread_mutex_lock (&session->lock);
  if (session->agreed
      && CRYPTO_memcmp (session->agreed_agent_key, agent_public_key, ETA_SEAL_PUBLIC_KEY_LEN) == 0)
    memcpy (aes_key, session->agreed_aes_key, SEAL_KEY_LEN);
  else if (derive_key (session->key, agent_public_key, session->public_key, agent_public_key,
                       aes_key) == 0)
    {
      memcpy (session->agreed_agent_key, agent_public_key, ETA_SEAL_PUBLIC_KEY_LEN);
      memcpy (session->agreed_aes_key, aes_key, SEAL_KEY_LEN);
      session->agreed = 1;
    }
  else
    {
      pthread_mutex_unlock (&session->lock);
      return -1;
    }
  pthread_mutex_unlock (&session->lock);

  ctx = EVP_CIPHER_CTX_new ();
  if (ctx == NULL
      || EVP_DecryptInit_ex (ctx, EVP_aes_256_gcm (), NULL, aes_key, sealed) != 1
      || EVP_DecryptUpdate (ctx, NULL, &out_len, (const uint8_t *) associated_data,
                            (int) strlen (associated_data)) != 1
      || EVP_DecryptUpdate (ctx, plaintext, &out_len, sealed + ETA_SEAL_NONCE_LEN,
                            (int) body_len) != 1
      || EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_GCM_SET_TAG, ETA_SEAL_TAG_LEN,
                              (void *) (sealed + ETA_SEAL_NONCE_LEN + body_len)) != 1
      || EVP_DecryptFinal_ex (ctx, plaintext + out_len, &final_len) != 1)
    {
      OPENSSL_cleanse (plaintext, body_len);
      goto out;
    }
  *plaintext_len = (size_t) out_len + (size_t) final_len;
  ret = 0;

out:
  OPENSSL_cleanse (aes_key, sizeof aes_key);
  EVP_CIPHER_CTX_free (ctx);
  return ret;
}

struct EtaSealKey
{
  uint8_t agent_public_key[ETA_SEAL_PUBLIC_KEY_LEN];
  uint8_t aes_key[SEAL_KEY_LEN];
};

/* The agent's side of recent agreements, by the caller's public key: a
 * caller that reuses its key pair (eta_seal_session_reuse) gets the same
 * agent key back, within the same bounds, and neither side agrees again. */
#define AGREEMENTS_KEPT 16

typedef struct
{
  int used;
  uint8_t caller_public_key[ETA_SEAL_PUBLIC_KEY_LEN];
  EtaSealKey key;
  pid_t pid;
  double made_at;
  unsigned exchanges;
} Agreement;

static pthread_mutex_t agreements_lock = PTHREAD_MUTEX_INITIALIZER;
/* AGREEMENTS_KEPT, on a locked page kept out of core dumps, made on first
 * use. */
static Agreement *agreements;
static size_t agreements_len;

/* Slot @i when it holds an agreement within its bounds, else NULL (and
 * the slot wiped). Called with agreements_lock held. */
static Agreement *
live_agreement (int i)
{
  Agreement *agreement = &agreements[i];

  if (!agreement->used)
    return NULL;
  if (within_reuse_bounds (agreement->pid, agreement->made_at, agreement->exchanges))
    return agreement;
  OPENSSL_cleanse (agreement, sizeof *agreement);
  return NULL;
}

/* Copies a live agreement with @caller_public_key into @key; wipes those
 * past their bounds on the way. Called with agreements_lock held. */
static int
find_agreement (const uint8_t *caller_public_key, EtaSealKey *key)
{
  int found = 0;

  for (int i = 0; agreements != NULL && i < AGREEMENTS_KEPT; i++)
    {
      Agreement *agreement = live_agreement (i);

      if (agreement == NULL)
        continue;
      if (!found
          && CRYPTO_memcmp (agreement->caller_public_key, caller_public_key,
                            ETA_SEAL_PUBLIC_KEY_LEN) == 0)
        {
          *key = agreement->key;
          agreement->exchanges++;
          found = 1;
        }
    }
  return found;
}

/* Keeps @key for @caller_public_key, in a free slot or the oldest one.
 * Called with agreements_lock held. */
static void
keep_agreement (const uint8_t *caller_public_key, const EtaSealKey *key)
{
  Agreement *slot = NULL;

  if (agreements == NULL)
    {
      long page = sysconf (_SC_PAGESIZE);
      size_t len = AGREEMENTS_KEPT * sizeof *agreements;
      void *map;

      len = (len + (size_t) page - 1) / (size_t) page * (size_t) page;
      map = mmap (NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (map == MAP_FAILED)
        return;
      /* Best effort, as for every locked secret here: RLIMIT_MEMLOCK may
       * refuse, the keys stay usable. */
      (void) mlock (map, len);
      (void) madvise (map, len, MADV_DONTDUMP);
      agreements = map;
      agreements_len = len;
    }
  for (int i = 0; i < AGREEMENTS_KEPT && (slot == NULL || slot->used); i++)
    if (slot == NULL || !agreements[i].used || agreements[i].made_at < slot->made_at)
      slot = &agreements[i];
  OPENSSL_cleanse (slot, sizeof *slot);
  slot->used = 1;
  memcpy (slot->caller_public_key, caller_public_key, ETA_SEAL_PUBLIC_KEY_LEN);
  slot->key = *key;
  slot->pid = getpid ();
  slot->made_at = seconds_now ();
  slot->exchanges = 1;
}

EtaSealKey *
eta_seal_key_new (const uint8_t *caller_public_key, size_t caller_public_key_len)
{
  EtaSealKey *key;
  EVP_PKEY *own_key;
  int rc;

  if (caller_public_key == NULL || caller_public_key_len != ETA_SEAL_PUBLIC_KEY_LEN)
    return NULL;
  /* The secure heap when the process set one up; wiped on free either way. */
  key = OPENSSL_secure_zalloc (sizeof *key);
  if (key == NULL)
    return NULL;
  pthread_mutex_lock (&agreements_lock);
  rc = find_agreement (caller_public_key, key);
  pthread_mutex_unlock (&agreements_lock);
  if (rc)
    return key;

  own_key = take_key (&agent_spare, key->agent_public_key);
  rc = own_key != NULL ? derive_key (own_key, caller_public_key, caller_public_key,
                                     key->agent_public_key, key->aes_key)
                       : -1;
  EVP_PKEY_free (own_key);
  if (rc != 0)
    {
      eta_seal_key_free (key);
      return NULL;
    }
  pthread_mutex_lock (&agreements_lock);
  keep_agreement (caller_public_key, key);
  pthread_mutex_unlock (&agreements_lock);
  wake_wiper ();
  return key;
}

void
eta_seal_key_free (EtaSealKey *key)
{
  if (key != NULL)
    OPENSSL_secure_clear_free (key, sizeof *key);
}

int
eta_seal_key_seal (const EtaSealKey *key, const char *associated_data,
                   const uint8_t *plaintext, size_t plaintext_len,
                   uint8_t *agent_public_key, uint8_t *sealed)
{
  EVP_CIPHER_CTX *ctx = NULL;
  int out_len = 0, final_len = 0;
  int ret = -1;

  if (key == NULL || plaintext_len > ETA_SEAL_MAX_PLAINTEXT)
    return -1;
  if (RAND_bytes (sealed, ETA_SEAL_NONCE_LEN) != 1)
    return -1;

  ctx = EVP_CIPHER_CTX_new ();
  if (ctx == NULL
      || EVP_EncryptInit_ex (ctx, EVP_aes_256_gcm (), NULL, key->aes_key, sealed) != 1
      || EVP_EncryptUpdate (ctx, NULL, &out_len, (const uint8_t *) associated_data,
                            (int) strlen (associated_data)) != 1
      || EVP_EncryptUpdate (ctx, sealed + ETA_SEAL_NONCE_LEN, &out_len, plaintext,
                            (int) plaintext_len) != 1
      || EVP_EncryptFinal_ex (ctx, sealed + ETA_SEAL_NONCE_LEN + out_len, &final_len) != 1
      || EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_GCM_GET_TAG, ETA_SEAL_TAG_LEN,
                              sealed + ETA_SEAL_NONCE_LEN + plaintext_len) != 1)
    goto out;
  memcpy (agent_public_key, key->agent_public_key, ETA_SEAL_PUBLIC_KEY_LEN);
  ret = 0;

out:
  EVP_CIPHER_CTX_free (ctx);
  return ret;
}

int
eta_seal_to (const uint8_t *caller_public_key, size_t caller_public_key_len,
             const char *associated_data,
             const uint8_t *plaintext, size_t plaintext_len,
             uint8_t *agent_public_key, uint8_t *sealed)
{
  EtaSealKey *key = eta_seal_key_new (caller_public_key, caller_public_key_len);
  int ret = eta_seal_key_seal (key, associated_data, plaintext, plaintext_len,
                               agent_public_key, sealed);

  eta_seal_key_free (key);
  return ret;
}

void
eta_seal_forget_prepared (void)
{
  EtaSealSession *session;

  forget_key (&caller_spare);
  forget_key (&agent_spare);
  pthread_mutex_lock (&current_lock);
  session = current_session;
  current_session = NULL;
  pthread_mutex_unlock (&current_lock);
  eta_seal_session_free (session);
  pthread_mutex_lock (&agreements_lock);
  if (agreements != NULL)
    {
      OPENSSL_cleanse (agreements, agreements_len);
      munlock (agreements, agreements_len);
      munmap (agreements, agreements_len);
    }
  agreements = NULL;
  pthread_mutex_unlock (&agreements_lock);
}

/* ---- the wiper: reused key pairs and agreements go when their time is up ---- */

/* A thread per process, started with the first key pair or agreement
 * kept, that wipes them at the end of their time even when no further
 * call comes (an idle ecryptfsd keeps its module loaded for days). */
static pthread_mutex_t wiper_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wiper_wake;
static pid_t wiper_pid;
static unsigned wiper_generation;

/* Wipes what is past its bounds; the monotonic time of the next end of
 * time, or 0 when nothing is kept. */
static double
forget_expired (void)
{
  EtaSealSession *expired = NULL;
  double next = 0;

  pthread_mutex_lock (&current_lock);
  if (current_session != NULL)
    {
      if (within_reuse_bounds (current_session->pid, current_session->made_at,
                               current_session->exchanges))
        next = current_session->made_at + ETA_SEAL_REUSE_SECONDS;
      else
        {
          expired = current_session;
          current_session = NULL;
        }
    }
  pthread_mutex_unlock (&current_lock);
  eta_seal_session_free (expired);

  pthread_mutex_lock (&agreements_lock);
  for (int i = 0; agreements != NULL && i < AGREEMENTS_KEPT; i++)
    {
      Agreement *agreement = live_agreement (i);

      if (agreement != NULL
          && (next == 0 || agreement->made_at + ETA_SEAL_REUSE_SECONDS < next))
        next = agreement->made_at + ETA_SEAL_REUSE_SECONDS;
    }
  pthread_mutex_unlock (&agreements_lock);
  return next;
}

static void *
wiper_main (void *unused)
{
  (void) unused;
  for (;;)
    {
      unsigned generation;
      double next;

      pthread_mutex_lock (&wiper_lock);
      generation = wiper_generation;
      pthread_mutex_unlock (&wiper_lock);
      /* A bit past the end, so that the bound has surely passed. */
      next = forget_expired ();
      pthread_mutex_lock (&wiper_lock);
      while (generation == wiper_generation)
        {
          if (next == 0)
            pthread_cond_wait (&wiper_wake, &wiper_lock);
          else
            {
              struct timespec until;
              double at = next + 0.01;

              until.tv_sec = (time_t) at;
              until.tv_nsec = (long) ((at - (double) until.tv_sec) * 1e9);
              if (pthread_cond_timedwait (&wiper_wake, &wiper_lock, &until) != 0)
                break;
            }
        }
      pthread_mutex_unlock (&wiper_lock);
    }
  return NULL;
}

int
eta_seal_kept (void)
{
  int kept = 0;

  pthread_mutex_lock (&current_lock);
  kept += current_session != NULL;
  pthread_mutex_unlock (&current_lock);
  pthread_mutex_lock (&agreements_lock);
  for (int i = 0; agreements != NULL && i < AGREEMENTS_KEPT; i++)
    kept += agreements[i].used;
  pthread_mutex_unlock (&agreements_lock);
  return kept;
}

/* Something was kept: the wiper (started in this process if need be) looks
 * again at when the next thing ends. */
static void
wake_wiper (void)
{
  pthread_mutex_lock (&wiper_lock);
  if (wiper_pid != getpid ())
    {
      pthread_condattr_t attributes;
      sigset_t all, old;
      pthread_t thread;

      /* After a fork() the parent's wiper is gone and its condition
       * variable may be in any state. */
      pthread_condattr_init (&attributes);
      pthread_condattr_setclock (&attributes, CLOCK_MONOTONIC);
      pthread_cond_init (&wiper_wake, &attributes);
      pthread_condattr_destroy (&attributes);
      /* Signals stay with the process's own threads (ecryptfsd's SIGTERM). */
      sigfillset (&all);
      pthread_sigmask (SIG_SETMASK, &all, &old);
      if (pthread_create (&thread, NULL, wiper_main, NULL) == 0)
        {
          pthread_detach (thread);
          wiper_pid = getpid ();
        }
      pthread_sigmask (SIG_SETMASK, &old, NULL);
    }
  wiper_generation++;
  pthread_cond_signal (&wiper_wake);
  pthread_mutex_unlock (&wiper_lock);
}

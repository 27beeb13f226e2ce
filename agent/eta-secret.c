/* Secrets on locked pages; see eta-secret.h. */
#define G_LOG_DOMAIN "eta-secret"

#include "config.h"

#include "eta-secret.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

/* Secrets up to this size share pages (PINs, unwrapped keys, epoch keys and
 * payloads: RSA 4096 plaintext buffers are 512 bytes); larger ones get
 * pages of their own. */
#define SLOT_BYTES 512

/* A page of SLOT_BYTES slots. Unwraps make and drop small secrets all the
 * time; with a mapping each, every one cost mmap, mlock, madvise and a
 * munmap, which in a threaded process interrupts every CPU running one of
 * its threads (TLB shootdown). A slot costs nothing of that; a page costs
 * one mlock when its first secret comes and one munlock when its last goes. */
typedef struct _SecretPage SecretPage;
struct _SecretPage
{
  guint8 *data;
  guint n_slots;
  guint used;
  gboolean locked;
  gboolean *in_use;
  SecretPage *next;
};

struct _EtaSecret
{
  gint ref_count;
  gsize length;
  gsize capacity;
  gsize mapped;        /* own mapping's size; 0 for a slot */
  gboolean locked;
  guint8 *data;
  SecretPage *page;    /* the page of its slot, or NULL */
};

G_DEFINE_BOXED_TYPE (EtaSecret, eta_secret, eta_secret_ref, eta_secret_unref)

/* The pages with slots in use, and at most one without (unlocked, wiped):
 * under pool_lock. */
static GMutex pool_lock;
static SecretPage *pool;

static gsize
page_size (void)
{
  static gsize size;

  if (g_once_init_enter (&size))
    g_once_init_leave (&size, (gsize) sysconf (_SC_PAGESIZE));
  return size;
}

/* Keep the pages out of swap and out of core dumps. */
static gboolean
lock_pages (guint8 *pages, gsize len)
{
  gboolean locked = mlock (pages, len) == 0;

  if (!locked)
    g_warning_once ("cannot lock memory for secrets (RLIMIT_MEMLOCK); "
                    "secrets may be swapped out");
  return locked;
}

static guint8 *
map_pages (gsize len)
{
  void *pages = mmap (NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

  if (pages == MAP_FAILED)
    g_error ("cannot map %zu bytes for a secret", len);
  madvise (pages, len, MADV_DONTDUMP);
  return pages;
}

/* Under pool_lock: a free slot, on a page that is locked if it can be. */
static guint8 *
take_slot (SecretPage **page_out)
{
  SecretPage *page;

  for (page = pool; page != NULL; page = page->next)
    if (page->used < page->n_slots)
      break;
  if (page == NULL)
    {
      page = g_new0 (SecretPage, 1);
      page->data = map_pages (page_size ());
      page->n_slots = (guint) (page_size () / SLOT_BYTES);
      page->in_use = g_new0 (gboolean, page->n_slots);
      page->next = pool;
      pool = page;
    }
  if (page->used == 0)
    page->locked = lock_pages (page->data, page_size ());
  for (guint i = 0; i < page->n_slots; i++)
    if (!page->in_use[i])
      {
        page->in_use[i] = TRUE;
        page->used++;
        *page_out = page;
        return page->data + (gsize) i * SLOT_BYTES;
      }
  g_assert_not_reached ();
}

/* Under pool_lock: the slot was wiped. A page left without secrets is
 * unlocked (nothing is locked while no secret lives); one such page is
 * kept for the next secret, others are unmapped. */
static void
give_slot (SecretPage *page, guint8 *slot)
{
  SecretPage **link;
  gboolean other_idle = FALSE;

  page->in_use[(slot - page->data) / SLOT_BYTES] = FALSE;
  if (--page->used > 0)
    return;
  if (page->locked)
    munlock (page->data, page_size ());
  page->locked = FALSE;
  for (SecretPage *p = pool; p != NULL; p = p->next)
    other_idle |= p != page && p->used == 0;
  if (!other_idle)
    return;
  for (link = &pool; *link != page; link = &(*link)->next)
    ;
  *link = page->next;
  munmap (page->data, page_size ());
  g_free (page->in_use);
  g_free (page);
}

EtaSecret *
eta_secret_new (gsize capacity)
{
  EtaSecret *secret = g_new0 (EtaSecret, 1);

  secret->ref_count = 1;
  secret->capacity = capacity;
  if (capacity <= SLOT_BYTES && SLOT_BYTES <= page_size ())
    {
      g_mutex_lock (&pool_lock);
      secret->data = take_slot (&secret->page);
      secret->locked = secret->page->locked;
      g_mutex_unlock (&pool_lock);
      return secret;
    }
  secret->mapped = MAX (page_size (), (capacity + page_size () - 1) / page_size () * page_size ());
  secret->data = map_pages (secret->mapped);
  secret->locked = lock_pages (secret->data, secret->mapped);
  return secret;
}

EtaSecret *
eta_secret_new_from_data (const guint8 *data, gsize len)
{
  EtaSecret *secret = eta_secret_new (len);
  memcpy (secret->data, data, len);
  secret->length = len;
  return secret;
}

EtaSecret *
eta_secret_ref (EtaSecret *secret)
{
  g_return_val_if_fail (secret != NULL, NULL);
  g_atomic_int_inc (&secret->ref_count);
  return secret;
}

void
eta_secret_unref (EtaSecret *secret)
{
  if (secret == NULL || !g_atomic_int_dec_and_test (&secret->ref_count))
    return;
  if (secret->page != NULL)
    {
      explicit_bzero (secret->data, SLOT_BYTES);
      g_mutex_lock (&pool_lock);
      give_slot (secret->page, secret->data);
      g_mutex_unlock (&pool_lock);
    }
  else
    {
      explicit_bzero (secret->data, secret->mapped);
      if (secret->locked)
        munlock (secret->data, secret->mapped);
      munmap (secret->data, secret->mapped);
    }
  g_free (secret);
}

guint8 *
eta_secret_get_data (EtaSecret *secret)
{
  return secret->data;
}

gsize
eta_secret_get_length (const EtaSecret *secret)
{
  return secret->length;
}

gsize
eta_secret_get_capacity (const EtaSecret *secret)
{
  return secret->capacity;
}

void
eta_secret_set_length (EtaSecret *secret, gsize length)
{
  g_return_if_fail (length <= secret->capacity);
  if (length < secret->length)
    explicit_bzero (secret->data + length, secret->length - length);
  secret->length = length;
}

gboolean
eta_secret_is_locked (const EtaSecret *secret)
{
  return secret->locked;
}

void
eta_secret_harden_process (void)
{
  struct rlimit no_core = { 0, 0 };

  if (prctl (PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
    g_warning ("cannot make the process undumpable: %s", g_strerror (errno));
  setrlimit (RLIMIT_CORE, &no_core);
}

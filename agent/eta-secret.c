/* Secrets on locked pages; see eta-secret.h. */
#define G_LOG_DOMAIN "eta-secret"

#include "eta-secret.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

struct _EtaSecret
{
  gint ref_count;
  gsize length;
  gsize capacity;
  gsize mapped;
  gboolean locked;
  guint8 *data;
};

G_DEFINE_BOXED_TYPE (EtaSecret, eta_secret, eta_secret_ref, eta_secret_unref)

EtaSecret *
eta_secret_new (gsize capacity)
{
  static gsize page_size;
  EtaSecret *secret = g_new0 (EtaSecret, 1);
  gsize mapped;
  void *pages;

  if (page_size == 0)
    page_size = (gsize) sysconf (_SC_PAGESIZE);
  mapped = MAX (page_size, (capacity + page_size - 1) / page_size * page_size);
  pages = mmap (NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (pages == MAP_FAILED)
    g_error ("cannot map %zu bytes for a secret", mapped);
  /* Keep the pages out of swap and out of core dumps. */
  secret->locked = mlock (pages, mapped) == 0;
  if (!secret->locked)
    g_warning_once ("cannot lock memory for secrets (RLIMIT_MEMLOCK); "
                    "secrets may be swapped out");
  madvise (pages, mapped, MADV_DONTDUMP);
  secret->ref_count = 1;
  secret->capacity = capacity;
  secret->mapped = mapped;
  secret->data = pages;
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
  explicit_bzero (secret->data, secret->mapped);
  if (secret->locked)
    munlock (secret->data, secret->mapped);
  munmap (secret->data, secret->mapped);
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

/* Secrets on locked pages, and a process that cannot be dumped. */
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <glib.h>

#include "eta-secret.h"

/* The VmLck line of /proc/self/status, in kB. */
static guint64
locked_kb (void)
{
  g_autofree gchar *status = NULL;
  const gchar *line;

  g_assert_true (g_file_get_contents ("/proc/self/status", &status, NULL, NULL));
  line = strstr (status, "VmLck:");
  g_assert_nonnull (line);
  return g_ascii_strtoull (line + strlen ("VmLck:"), NULL, 10);
}

static void
test_locked_and_sized (void)
{
  guint64 before = locked_kb ();
  EtaSecret *secret = eta_secret_new (100);

  g_assert_true (eta_secret_is_locked (secret));
  g_assert_cmpuint (locked_kb (), >, before);
  g_assert_cmpuint (eta_secret_get_capacity (secret), ==, 100);
  g_assert_cmpuint (eta_secret_get_length (secret), ==, 0);
  memset (eta_secret_get_data (secret), 'x', 100);
  eta_secret_set_length (secret, 100);
  eta_secret_unref (secret);
  /* Unlocked and unmapped once the last reference goes. */
  g_assert_cmpuint (locked_kb (), ==, before);
}

static void
test_shorten_wipes_tail (void)
{
  g_autoptr (EtaSecret) secret = eta_secret_new_from_data ((const guint8 *) "123456", 6);
  const guint8 *data = eta_secret_get_data (secret);

  eta_secret_set_length (secret, 2);
  g_assert_cmpmem (data, 2, "12", 2);
  for (int i = 2; i < 6; i++)
    g_assert_cmpuint (data[i], ==, 0);
}

static void
test_refcount (void)
{
  EtaSecret *secret = eta_secret_new (8);
  EtaSecret *other = eta_secret_ref (secret);

  g_assert_true (secret == other);
  eta_secret_unref (secret);
  /* Still usable through the second reference. */
  eta_secret_get_data (other)[0] = 1;
  eta_secret_unref (other);
}

static void
test_process_undumpable (void)
{
  struct rlimit core;

  eta_secret_harden_process ();
  g_assert_cmpint (prctl (PR_GET_DUMPABLE, 0, 0, 0, 0), ==, 0);
  g_assert_cmpint (getrlimit (RLIMIT_CORE, &core), ==, 0);
  g_assert_cmpuint (core.rlim_cur, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/agent/secret/locked", test_locked_and_sized);
  g_test_add_func ("/agent/secret/shorten-wipes", test_shorten_wipes_tail);
  g_test_add_func ("/agent/secret/refcount", test_refcount);
  g_test_add_func ("/agent/secret/undumpable", test_process_undumpable);
  return g_test_run ();
}

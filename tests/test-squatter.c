/* A bus name squatter: on a bus two uids can reach, a process of another uid
 * (nobody) owns org.ecryptfs.TokenAgent1 before the agent does. The key
 * module inside the real ecryptfsd and ecryptfs-token refuse it without
 * sending it anything, and the real agent refuses to start, naming who holds
 * the name. A peer of our own uid that answers ResolveKey with another key
 * than the one asked for is refused too. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <keyutils.h>

#include "eta-inprocess-daemon.h"
#include "eta-kernel-player.h"
#include "eta-key-id.h"
#include "eta-names.h"
#include "eta-test-cli.h"
#include "eta-test-open-bus.h"
#include "eta-test-token.h"

#define NOBODY 65534
#define AES256 0x09
#define KERNEL_WAIT_MS 3000

typedef struct
{
  const EtaTestToken *token;
  EtaTestOpenBus *bus;
  GSubprocess *squatter;
  GDataInputStream *squatter_out;
  gchar *data_home;
  gchar *sig[ETA_TEST_N_KEYS];
} Fixture;

static gchar *
to_hex (GBytes *bytes)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  gchar *hex = g_malloc (2 * len + 1);

  eta_key_to_hex (data, len, hex);
  return hex;
}

/* Starts the squatter as @uid, answering ResolveKey for the fingerprint of
 * key @claimed with the public key of key @answered, and waits until it
 * owns the name. */
static void
start_squatter (Fixture *fixture, uid_t uid, EtaTestKeyIndex claimed, EtaTestKeyIndex answered)
{
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GBytes) spki = eta_test_token_load_public_key (answered);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *line = NULL;

  if (uid != geteuid ())
    {
      g_ptr_array_add (argv, g_strdup ("setpriv"));
      g_ptr_array_add (argv, g_strdup_printf ("--reuid=%u", (guint) uid));
      g_ptr_array_add (argv, g_strdup_printf ("--regid=%u", (guint) uid));
      g_ptr_array_add (argv, g_strdup ("--clear-groups"));
    }
  g_ptr_array_add (argv, g_strdup (ETA_TEST_SQUATTER_PATH));
  g_ptr_array_add (argv, g_strdup (eta_test_open_bus_get_address (fixture->bus)));
  g_ptr_array_add (argv, g_strdup (fixture->token->fingerprint[claimed]));
  g_ptr_array_add (argv, to_hex (spki));
  g_ptr_array_add (argv, NULL);
  fixture->squatter = g_subprocess_launcher_spawnv (launcher,
                                                    (const gchar * const *) argv->pdata, &error);
  g_assert_no_error (error);
  fixture->squatter_out = g_data_input_stream_new (
      g_subprocess_get_stdout_pipe (fixture->squatter));
  line = g_data_input_stream_read_line (fixture->squatter_out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (line, ==, "owned");
}

/* Stops the squatter and returns everything it printed after "owned". */
static gchar *
stop_squatter (Fixture *fixture)
{
  g_autoptr (GString) rest = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  gchar *line;

  g_subprocess_send_signal (fixture->squatter, SIGTERM);
  g_subprocess_wait (fixture->squatter, NULL, &error);
  g_assert_no_error (error);
  while ((line = g_data_input_stream_read_line (fixture->squatter_out, NULL, NULL, NULL)))
    {
      g_string_append_printf (rest, "%s\n", line);
      g_free (line);
    }
  g_clear_object (&fixture->squatter_out);
  g_clear_object (&fixture->squatter);
  return g_string_free (g_steal_pointer (&rest), FALSE);
}

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  fixture->token = eta_test_token_get ();
  fixture->bus = eta_test_open_bus_start ();
  fixture->data_home = g_dir_make_tmp ("eta-data-XXXXXX", &error);
  g_assert_no_error (error);
  for (int i = 0; i < ETA_TEST_N_KEYS; i++)
    {
      g_autoptr (GBytes) spki = eta_test_token_load_public_key (i);
      char sig[ETA_KEY_SIG_HEX_LEN + 1];

      g_assert_cmpint (eta_key_sig_from_spki (g_bytes_get_data (spki, NULL),
                                              g_bytes_get_size (spki), sig), ==, 0);
      fixture->sig[i] = g_strdup (sig);
      eta_harness_remove_user_key (sig, NULL);
    }
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *command = g_strdup_printf ("rm -rf '%s'", fixture->data_home);

  if (fixture->squatter != NULL)
    g_free (stop_squatter (fixture));
  for (int i = 0; i < ETA_TEST_N_KEYS; i++)
    {
      eta_harness_remove_user_key (fixture->sig[i], NULL);
      g_free (fixture->sig[i]);
    }
  eta_test_open_bus_stop (fixture->bus);
  g_assert_cmpint (system (command), ==, 0);
  g_free (fixture->data_home);
}

static gboolean
user_key_exists (const gchar *sig)
{
  return keyctl_search (KEY_SPEC_USER_KEYRING, "user", sig, 0) >= 0;
}

static void
test_cli_add_key_refuses_other_uid (Fixture *fixture, gconstpointer data)
{
  const gchar *args[] = { "add-key", fixture->token->fingerprint[ETA_TEST_KEY_RSA2048], NULL };
  EtaTestCliResult result;
  g_autofree gchar *calls = NULL;
  g_autofree gchar *expected_uid = g_strdup_printf ("uid %u", NOBODY);

  start_squatter (fixture, NOBODY, ETA_TEST_KEY_RSA2048, ETA_TEST_KEY_RSA3072);
  result = eta_test_run_cli (fixture->data_home, args);
  g_assert_cmpint (result.exit_code, ==, 1);
  g_assert_nonnull (strstr (result.err, "is held by"));
  g_assert_nonnull (strstr (result.err, expected_uid));
  g_assert_nonnull (strstr (result.err, "nothing was sent to it"));
  g_assert_false (user_key_exists (fixture->sig[ETA_TEST_KEY_RSA2048]));
  g_assert_false (user_key_exists (fixture->sig[ETA_TEST_KEY_RSA3072]));
  eta_test_cli_result_clear (&result);

  /* Other commands refuse it the same way. */
  {
    const gchar *list[] = { "list", NULL };
    result = eta_test_run_cli (fixture->data_home, list);
    g_assert_cmpint (result.exit_code, ==, 1);
    g_assert_nonnull (strstr (result.err, "is held by"));
    eta_test_cli_result_clear (&result);
  }
  calls = stop_squatter (fixture);
  g_assert_cmpstr (calls, ==, "");
}

static void
test_keymod_refuses_other_uid (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (EtaInprocessDaemon) daemon = NULL;
  g_autoptr (EtaKernelPlayer) player = NULL;
  g_autoptr (GBytes) wrapped = NULL;
  g_autoptr (GBytes) fek = NULL;
  g_autofree gchar *module_dir = NULL;
  g_autofree gchar *sig = NULL;
  g_autofree gchar *calls = NULL;
  g_autofree gchar *expected_uid = g_strdup_printf ("uid %u", NOBODY);
  const gchar *with_agent[] = { "fingerprint", NULL };
  const gchar *with_agent_values[] = { fixture->token->fingerprint[ETA_TEST_KEY_RSA2048], NULL };
  const gchar *with_file[] = { "fingerprint", "pubkey", NULL };
  const gchar *with_file_values[] = { fixture->token->fingerprint[ETA_TEST_KEY_RSA2048],
                                      fixture->token->certificate_path[ETA_TEST_KEY_RSA2048],
                                      NULL };
  guint8 key[32];

  start_squatter (fixture, NOBODY, ETA_TEST_KEY_RSA2048, ETA_TEST_KEY_RSA3072);
  daemon = eta_inprocess_daemon_new (ETA_TEST_KEYMOD_PATH, &error);
  g_assert_no_error (error);

  /* Mounting with only the fingerprint: the key module asks for the public
   * key on the bus, finds the squatter, refuses it, and no key is added. */
  g_assert_null (eta_inprocess_daemon_add_key (daemon, ETA_KEYMOD_ALIAS, with_agent,
                                               with_agent_values, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_false (user_key_exists (fixture->sig[ETA_TEST_KEY_RSA2048]));
  g_assert_false (user_key_exists (fixture->sig[ETA_TEST_KEY_RSA3072]));

  /* With the key from a certificate files are written as usual; opening one
   * must not ask the squatter. */
  sig = eta_inprocess_daemon_add_key (daemon, ETA_KEYMOD_ALIAS, with_file, with_file_values,
                                      &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sig, ==, fixture->sig[ETA_TEST_KEY_RSA2048]);
  module_dir = eta_kernel_player_make_module_dir (ETA_TEST_KEYMOD_PATH, &error);
  g_assert_no_error (error);
  player = eta_kernel_player_start (module_dir, NULL, &error);
  g_assert_no_error (error);
  for (gsize i = 0; i < sizeof key; i++)
    key[i] = (guint8) g_random_int ();
  g_assert_true (eta_kernel_player_wrap (player, sig, AES256, key, sizeof key, KERNEL_WAIT_MS,
                                         &wrapped, &error));
  g_assert_no_error (error);
  g_assert_false (eta_kernel_player_unwrap (player, sig, g_bytes_get_data (wrapped, NULL),
                                            g_bytes_get_size (wrapped), KERNEL_WAIT_MS, NULL,
                                            &fek, &error));
  g_assert_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_FAILURE_REPLY);
  g_assert_null (fek);
  g_assert_true (eta_kernel_player_is_alive (player));
  g_assert_nonnull (strstr (eta_kernel_player_get_log (player),
                            "another user's process holds the agent's bus name"));
  g_assert_nonnull (strstr (eta_kernel_player_get_log (player), expected_uid));

  calls = stop_squatter (fixture);
  g_assert_cmpstr (calls, ==, "");
  g_clear_pointer (&player, eta_kernel_player_stop);
  eta_kernel_player_remove_module_dir (module_dir);
  g_clear_pointer (&daemon, eta_inprocess_daemon_free);
}

static void
test_agent_names_the_holder (Fixture *fixture, gconstpointer data)
{
  const gchar *argv[] = { "timeout", "30", ETA_TEST_AGENT_PATH, "--terminal", "--provider",
                          ETA_TEST_SOFTHSM_MODULE, NULL };
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  g_autofree gchar *calls = NULL;
  g_autofree gchar *expected = NULL;
  g_autoptr (GError) error = NULL;
  gint status = 0;

  start_squatter (fixture, NOBODY, ETA_TEST_KEY_RSA2048, ETA_TEST_KEY_RSA2048);
  expected = g_strdup_printf ("(pid %s, uid %u)",
                              g_subprocess_get_identifier (fixture->squatter), NOBODY);
  g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                &status, &error);
  g_assert_no_error (error);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 1);
  g_assert_nonnull (strstr (err, "the bus name " ETA_BUS_NAME " is held by"));
  g_assert_nonnull (strstr (err, "refusing to start"));
  /* setpriv execs the squatter: its pid is the one the bus reports. */
  g_assert_nonnull (strstr (err, expected));
  calls = stop_squatter (fixture);
  g_assert_cmpstr (calls, ==, "");
}

/* Same uid, so the owner check passes: the key it answers with must still
 * hash to the fingerprint asked for. */
static void
test_wrong_key_refused (Fixture *fixture, gconstpointer data)
{
  const gchar *args[] = { "add-key", fixture->token->fingerprint[ETA_TEST_KEY_RSA2048], NULL };
  g_autofree gchar *expected = g_strdup_printf (
      "fingerprint is %s, not", fixture->token->fingerprint[ETA_TEST_KEY_RSA3072]);
  g_autoptr (EtaInprocessDaemon) daemon = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *calls = NULL;
  const gchar *names[] = { "fingerprint", NULL };
  const gchar *values[] = { fixture->token->fingerprint[ETA_TEST_KEY_RSA2048], NULL };
  EtaTestCliResult result;

  start_squatter (fixture, geteuid (), ETA_TEST_KEY_RSA2048, ETA_TEST_KEY_RSA3072);
  result = eta_test_run_cli (fixture->data_home, args);
  g_assert_cmpint (result.exit_code, ==, 1);
  g_assert_nonnull (strstr (result.err, expected));
  g_assert_false (user_key_exists (fixture->sig[ETA_TEST_KEY_RSA2048]));
  g_assert_false (user_key_exists (fixture->sig[ETA_TEST_KEY_RSA3072]));
  eta_test_cli_result_clear (&result);

  /* The key module at mount time likewise. */
  daemon = eta_inprocess_daemon_new (ETA_TEST_KEYMOD_PATH, &error);
  g_assert_no_error (error);
  g_assert_null (eta_inprocess_daemon_add_key (daemon, ETA_KEYMOD_ALIAS, names, values, &error));
  g_assert_nonnull (error);
  g_assert_false (user_key_exists (fixture->sig[ETA_TEST_KEY_RSA3072]));

  calls = stop_squatter (fixture);
  g_assert_cmpstr (calls, ==, "call ResolveKey\ncall ResolveKey\n");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("/squatter/other-uid/cli-refuses", test_cli_add_key_refuses_other_uid);
  ADD ("/squatter/other-uid/keymod-refuses", test_keymod_refuses_other_uid);
  ADD ("/squatter/other-uid/agent-names-the-holder", test_agent_names_the_holder);
  ADD ("/squatter/same-uid/wrong-key-refused", test_wrong_key_refused);
  return g_test_run ();
}

/* Token events and early unlock, with the real agent: its only provider is
 * the fault-injecting module around SoftHSM2, so the test can pull the token
 * out and put it back; its settings come from GSettings' keyfile backend.
 * A key is in use through our auth token, put into the user keyring by the
 * real `ecryptfs-token add-key` and removed again at teardown, or through
 * an eCryptfs mount in a mount table the agent is given. */
#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "eta-agent-client.h"
#include "eta-fault-control.h"
#include "eta-inprocess-daemon.h"
#include "eta-key-id.h"
#include "eta-test-agent.h"
#include "eta-test-cli.h"
#include "eta-test-token.h"
#include "eta-test-unwrap.h"
#include "eta-token-manager.h"
#include "eta-user-keyring.h"

#define BUDGET_MS 30000
/* A change shows at the next look at the slots; the signal then crosses two
 * threads of the agent and the bus. */
#define EVENT_WAIT_MS (ETA_TOKEN_SLOT_POLL_MS + 2000)
/* How long "no prompt" is watched for: past a look at the slots and the
 * listing of the keys that would follow it. */
#define QUIET_MS (ETA_TOKEN_SLOT_POLL_MS + 2000)

typedef struct
{
  /* Lines of the keyfile's settings group. */
  const gchar *settings;
  /* Put the auth token of the 2048-bit key into the user keyring before
   * the agent starts (from its public key file: no agent needed). */
  gboolean enrol_before_start;
  /* Show the agent an eCryptfs mount using the 2048-bit key. */
  gboolean mounted;
} Scenario;

typedef struct
{
  const Scenario *scenario;
  const EtaTestToken *token;
  GTestDBus *bus;
  gchar *config_home;
  gchar *data_home;
  gchar *sig;                /* the auth token this test added, or NULL */
  EtaTestAgent *agent;
  GDBusConnection *connection;
  GPtrArray *states;         /* TokenStateChanged states, in order */
  guint states_checked;
  guint subscription;
} Fixture;

static gchar *
make_temp_dir (const gchar *template)
{
  g_autoptr (GError) error = NULL;
  gchar *dir = g_dir_make_tmp (template, &error);

  g_assert_no_error (error);
  return dir;
}

static void
remove_dir (const gchar *dir)
{
  g_autofree gchar *command = g_strdup_printf ("rm -rf '%s'", dir);
  g_assert_cmpint (system (command), ==, 0);
}

/* `ecryptfs-token add-key` for the 2048-bit key, as a person runs it; with
 * @pubkey_file the public key comes from that file, else from the agent. */
static void
enrol (Fixture *fixture, const gchar *pubkey_file)
{
  const gchar *args[] = { "add-key", fixture->token->fingerprint[ETA_TEST_KEY_RSA2048],
                          pubkey_file ? "--pubkey" : NULL, pubkey_file, NULL };
  EtaTestCliResult result = eta_test_run_cli (fixture->data_home, args);
  const gchar *line = strstr (result.out ? result.out : "", "ecryptfs_sig: ");

  if (result.exit_code != 0 || line == NULL)
    g_error ("add-key failed (%d): %s%s", result.exit_code, result.out, result.err);
  fixture->sig = g_strndup (line + strlen ("ecryptfs_sig: "), 16);
  eta_test_cli_result_clear (&result);
}

/* A mount table with an eCryptfs mount of the 2048-bit key, for the agent. */
static gchar *
write_mount_table (Fixture *fixture)
{
  g_autoptr (GBytes) spki = eta_test_token_load_public_key (ETA_TEST_KEY_RSA2048);
  g_autofree gchar *path = g_build_filename (fixture->data_home, "mountinfo", NULL);
  g_autofree gchar *contents = NULL;
  g_autoptr (GError) error = NULL;
  gchar sig[ETA_KEY_SIG_HEX_LEN + 1];

  g_assert_cmpint (eta_key_sig_from_spki (g_bytes_get_data (spki, NULL),
                                          g_bytes_get_size (spki), sig), ==, 0);
  contents = g_strdup_printf ("22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
                              "40 22 0:35 / /home/alice/Private rw shared:20 - ecryptfs "
                              "/home/alice/.Private rw,ecryptfs_sig=%s,ecryptfs_cipher=aes,"
                              "ecryptfs_key_bytes=32\n", sig);
  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
  return g_steal_pointer (&path);
}

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GPtrArray) env = g_ptr_array_new_with_free_func (g_free);

  fixture->scenario = data;
  fixture->token = eta_test_token_get ();
  eta_fault_control_reset ();
  fixture->config_home = make_temp_dir ("eta-events-config-XXXXXX");
  fixture->data_home = make_temp_dir ("eta-events-data-XXXXXX");
  eta_test_write_agent_settings (fixture->config_home, fixture->scenario->settings);
  g_ptr_array_add (env, g_strdup ("GSETTINGS_BACKEND=keyfile"));
  g_ptr_array_add (env, g_strconcat ("XDG_CONFIG_HOME=", fixture->config_home, NULL));
  if (fixture->scenario->mounted)
    {
      g_autofree gchar *mountinfo = write_mount_table (fixture);
      g_ptr_array_add (env, g_strconcat (ETA_TEST_AGENT_MOUNTINFO_ENV "=", mountinfo, NULL));
    }
  g_ptr_array_add (env, NULL);

  fixture->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fixture->bus);
  fixture->connection = eta_test_session_bus ();
  fixture->states = g_ptr_array_new_with_free_func (g_free);
  fixture->subscription = eta_test_watch_token_states (fixture->connection, fixture->states);
  if (fixture->scenario->enrol_before_start)
    enrol (fixture, fixture->token->public_key_path[ETA_TEST_KEY_RSA2048]);
  fixture->agent = eta_test_agent_start ((const gchar * const *) env->pdata);
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  eta_agent_client_disconnect ();
  g_dbus_connection_signal_unsubscribe (fixture->connection, fixture->subscription);
  g_clear_object (&fixture->connection);
  eta_test_agent_stop (fixture->agent);
  if (fixture->sig != NULL)
    {
      eta_harness_remove_user_key (fixture->sig, &error);
      g_assert_no_error (error);
      g_free (fixture->sig);
    }
  g_test_dbus_down (fixture->bus);
  g_clear_object (&fixture->bus);
  g_ptr_array_unref (fixture->states);
  remove_dir (fixture->config_home);
  remove_dir (fixture->data_home);
  g_free (fixture->config_home);
  g_free (fixture->data_home);
  eta_fault_control_reset ();
}

/* ---- what the agent shows ---- */

static void
fail_with_terminal (Fixture *fixture, const gchar *what)
{
  g_autofree gchar *terminal = eta_test_agent_dup_terminal_output (fixture->agent);

  g_printerr ("agent terminal:\n%s\n", terminal);
  g_error ("%s", what);
}

static void
expect_state (Fixture *fixture, const gchar *state, guint timeout_ms)
{
  eta_test_expect_token_state (fixture->agent, fixture->states, &fixture->states_checked, state,
                               timeout_ms);
}

static void
expect_prompts (Fixture *fixture, guint count, guint timeout_ms)
{
  if (!eta_test_agent_wait_for_prompts (fixture->agent, count, timeout_ms))
    {
      g_autofree gchar *what = g_strdup_printf ("%u PIN prompts expected within %u ms, %u seen",
                                                count, timeout_ms,
                                                eta_test_agent_get_prompt_count (fixture->agent));
      fail_with_terminal (fixture, what);
    }
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, count);
}

/* Watches for @timeout_ms that no PIN prompt beyond @count shows. */
static void
expect_no_more_prompts (Fixture *fixture, guint count, guint timeout_ms)
{
  if (eta_test_agent_wait_for_prompts (fixture->agent, count + 1, timeout_ms))
    fail_with_terminal (fixture, "an unexpected PIN prompt");
}

static void
unwrap (Fixture *fixture, gboolean expect_ok, const gchar *expect_error)
{
  EtaTestUnwrap *job = eta_test_unwrap_start (BUDGET_MS);
  g_autofree gchar *terminal = NULL;

  eta_test_unwrap_finish (job, expect_ok, expect_error, NULL);
  if (g_test_failed ())
    {
      terminal = eta_test_agent_dup_terminal_output (fixture->agent);
      g_printerr ("agent terminal:\n%s\n", terminal);
    }
}

static void
pull_out (Fixture *fixture)
{
  eta_fault_control_set ("present", "0");
}

static void
put_back (Fixture *fixture)
{
  eta_fault_control_set ("present", "1");
}

/* ---- the tests ---- */

/* Pulled out: the agent says so within a look at the slots, and forgets the
 * login; put back: it says so, and the next unwrap asks for the PIN. */
static void
test_remove_and_insert (Fixture *fixture, gconstpointer data)
{
  gint64 pulled;

  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  unwrap (fixture, TRUE, NULL);
  expect_state (fixture, "logged-in", 5000);

  pulled = g_get_monotonic_time ();
  pull_out (fixture);
  expect_state (fixture, "locked", EVENT_WAIT_MS);
  expect_state (fixture, "absent", 1000);
  g_assert_cmpint (g_get_monotonic_time () - pulled, <, (gint64) EVENT_WAIT_MS * 1000);

  put_back (fixture);
  expect_state (fixture, "present", EVENT_WAIT_MS);
  /* The login went with the token: the next unwrap asks for the PIN. */
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  unwrap (fixture, TRUE, NULL);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 2);
  expect_state (fixture, "logged-in", 5000);
}

/* The early PIN prompt shows, for @reason; once answered, the token is
 * logged in and an unwrap needs no prompt. */
static void
answer_early_prompt (Fixture *fixture, const gchar *reason, guint timeout_ms)
{
  expect_prompts (fixture, 1, timeout_ms);
  g_assert_true (eta_test_agent_wait_for_output (fixture->agent, reason, 1000));
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  expect_state (fixture, "logged-in", 5000);

  unwrap (fixture, TRUE, NULL);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
}

/* A token holding a key in use is put back: the PIN prompt comes at once,
 * with no unwrap, and the unwrap after it needs none. */
static void
test_unlock_on_insert (Fixture *fixture, gconstpointer data)
{
  g_auto (GStrv) sigs = NULL;

  enrol (fixture, NULL);
  sigs = eta_user_keyring_list_sigs ();
  g_assert_true (g_strv_contains ((const gchar * const *) sigs, fixture->sig));
  /* Enrolling alone asks for nothing. */
  expect_no_more_prompts (fixture, 0, 1000);

  pull_out (fixture);
  expect_state (fixture, "absent", EVENT_WAIT_MS);
  put_back (fixture);
  expect_state (fixture, "present", EVENT_WAIT_MS);
  answer_early_prompt (fixture, "token inserted", 5000);
}

/* The key is in use when the agent starts (enrolled, or mounted): the
 * prompt comes at start. */
static void
test_unlock_at_start (Fixture *fixture, gconstpointer data)
{
  answer_early_prompt (fixture, "token present at start", 10000);
}

/* unlock-early off: with the key enrolled and mounted, neither the start
 * nor an insertion asks; the first unwrap does. */
static void
test_unlock_early_off (Fixture *fixture, gconstpointer data)
{
  expect_no_more_prompts (fixture, 0, QUIET_MS);
  pull_out (fixture);
  expect_state (fixture, "absent", EVENT_WAIT_MS);
  put_back (fixture);
  expect_state (fixture, "present", EVENT_WAIT_MS);
  expect_no_more_prompts (fixture, 0, QUIET_MS);

  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  unwrap (fixture, TRUE, NULL);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
}

/* The early prompt cancelled: an unwrap made while it showed, and one made
 * after it, ask for the PIN themselves instead of failing with it. */
static void
test_early_cancel (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *during;

  expect_prompts (fixture, 1, 10000);
  during = eta_test_unwrap_start (BUDGET_MS);
  /* Let it reach the agent and wait behind the prompt. Were it slower, it
   * would come after the cancel: the outcome must be the same. */
  g_usleep (1000 * 1000);
  eta_test_agent_queue_answer (fixture->agent, NULL);
  expect_prompts (fixture, 2, 10000);
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  {
    g_autofree gchar *terminal = eta_test_agent_dup_terminal_output (fixture->agent);
    eta_test_unwrap_finish (during, TRUE, NULL, terminal);
  }
  expect_state (fixture, "logged-in", 5000);

  unwrap (fixture, TRUE, NULL);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 2);
}

int
main (int argc, char **argv)
{
  static const Scenario plain = { NULL, FALSE, FALSE };
  static const Scenario enrolled = { NULL, TRUE, FALSE };
  static const Scenario mounted = { NULL, FALSE, TRUE };
  static const Scenario in_use_early_off = { "unlock-early=false", TRUE, TRUE };

  g_test_init (&argc, &argv, NULL);
  g_set_prgname ("test-token-events");
  /* The agents see no session and no system bus of whatever runs the tests. */
  g_unsetenv ("XDG_SESSION_ID");
  g_setenv ("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/eta-test-events-system-bus",
            TRUE);
  eta_test_token_get ();
  eta_fault_control_setup ();
  g_setenv ("ETA_TEST_PROVIDER", eta_fault_control_get_module_path (), TRUE);

#define ADD(path, scenario, fn) \
  g_test_add (path, Fixture, &scenario, fixture_set_up, fn, fixture_tear_down)
  ADD ("/agent/token-events/remove-and-insert", plain, test_remove_and_insert);
  ADD ("/agent/token-events/unlock-on-insert", plain, test_unlock_on_insert);
  ADD ("/agent/token-events/unlock-at-start", enrolled, test_unlock_at_start);
  ADD ("/agent/token-events/unlock-at-start-mounted", mounted, test_unlock_at_start);
  ADD ("/agent/token-events/unlock-early-off", in_use_early_off, test_unlock_early_off);
  ADD ("/agent/token-events/early-cancel", enrolled, test_early_cancel);
  return g_test_run ();
}

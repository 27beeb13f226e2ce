/* Remembered PINs, end to end: the real agent on a pseudo terminal (its
 * terminal prompter), a real gnome-keyring-daemon as the Secret Service on
 * the test's private bus, and the fault-injecting module around SoftHSM2 as
 * the only provider, whose counters tell how often the agent logged in and
 * how often the token refused a PIN. */
#include <string.h>

#include <gio/gio.h>

#include "eta-agent-client.h"
#include "eta-fault-control.h"
#include "eta-names.h"
#include "eta-pin-store.h"
#include "eta-test-agent.h"
#include "eta-test-keyring.h"
#include "eta-test-token.h"
#include "eta-test-unwrap.h"

#define BUDGET_MS 30000
#define QUESTION "Remember this PIN in your login keyring? [y/N]"

typedef struct
{
  gboolean keyring;        /* a real gnome-keyring-daemon */
  gboolean hung_service;   /* a Secret Service that never answers */
  const gchar *settings;   /* lines of the policy keyfile; NULL: the defaults */
  const gchar *fault;      /* fault module settings */
} Scenario;

/* Owns org.freedesktop.secrets and swallows every call made to it. */
typedef struct
{
  GDBusConnection *connection;
  guint filter;
  gint calls;
} HungService;

typedef struct
{
  const Scenario *scenario;
  GTestDBus *bus;
  EtaTestKeyring *keyring;
  HungService *hung;
  gchar *config_home;
  GStrv env;
  EtaTestAgent *agent;
} Fixture;

/* ---- a Secret Service that never answers ---- */

static GDBusMessage *
swallow_calls (GDBusConnection *connection, GDBusMessage *message, gboolean incoming,
               gpointer user_data)
{
  HungService *hung = user_data;

  if (incoming && g_dbus_message_get_message_type (message) == G_DBUS_MESSAGE_TYPE_METHOD_CALL)
    {
      g_atomic_int_inc (&hung->calls);
      g_object_unref (message);
      return NULL;
    }
  return message;
}

static HungService *
hung_service_start (void)
{
  HungService *hung = g_new0 (HungService, 1);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  guint32 result = 0;

  hung->connection = eta_test_session_bus ();
  hung->filter = g_dbus_connection_add_filter (hung->connection, swallow_calls, hung, NULL);
  reply = g_dbus_connection_call_sync (hung->connection, "org.freedesktop.DBus",
                                       "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "RequestName",
                                       g_variant_new ("(su)", "org.freedesktop.secrets", 4),
                                       G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, 5000,
                                       NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(u)", &result);
  g_assert_cmpuint (result, ==, 1);   /* DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER */
  return hung;
}

static void
hung_service_stop (HungService *hung)
{
  if (hung == NULL)
    return;
  g_dbus_connection_remove_filter (hung->connection, hung->filter);
  g_dbus_connection_close_sync (hung->connection, NULL, NULL);
  g_object_unref (hung->connection);
  g_free (hung);
}

/* ---- the fixture ---- */

static void
write_settings (Fixture *fixture, const gchar *lines)
{
  g_autofree gchar *dir = g_build_filename (fixture->config_home, "glib-2.0", "settings", NULL);
  g_autofree gchar *path = g_build_filename (dir, "keyfile", NULL);
  g_autofree gchar *contents = g_strdup_printf ("[org/ecryptfs/TokenAgent]\n%s\n", lines);
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
}

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GStrvBuilder) env = g_strv_builder_new ();

  fixture->scenario = data;
  eta_test_token_get ();
  eta_fault_control_reset ();
  eta_fault_control_apply (fixture->scenario->fault);
  fixture->config_home = g_dir_make_tmp ("eta-remember-XXXXXX", &error);
  g_assert_no_error (error);
  if (fixture->scenario->settings != NULL)
    {
      g_autofree gchar *config_env = g_strconcat ("XDG_CONFIG_HOME=", fixture->config_home,
                                                  NULL);

      write_settings (fixture, fixture->scenario->settings);
      g_strv_builder_add (env, "GSETTINGS_BACKEND=keyfile");
      g_strv_builder_add (env, config_env);
    }
  fixture->env = g_strv_builder_end (env);

  fixture->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fixture->bus);
  if (fixture->scenario->keyring)
    fixture->keyring = eta_test_keyring_start ();
  if (fixture->scenario->hung_service)
    fixture->hung = hung_service_start ();
  fixture->agent = eta_test_agent_start ((const gchar * const *) fixture->env);
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *command = g_strdup_printf ("rm -rf '%s'", fixture->config_home);

  eta_agent_client_disconnect ();
  eta_test_agent_stop (fixture->agent);
  hung_service_stop (fixture->hung);
  eta_test_keyring_stop (fixture->keyring);
  g_test_dbus_down (fixture->bus);
  g_clear_object (&fixture->bus);
  g_assert_cmpint (system (command), ==, 0);
  g_free (fixture->config_home);
  g_strfreev (fixture->env);
}

/* ---- what the person and the agent do ---- */

static gchar *
terminal (Fixture *fixture)
{
  return eta_test_agent_dup_terminal_output (fixture->agent);
}

static guint
count_in_terminal (Fixture *fixture, const gchar *text)
{
  g_autofree gchar *output = terminal (fixture);
  guint count = 0;

  for (const gchar *p = strstr (output, text); p != NULL; p = strstr (p + 1, text))
    count++;
  return count;
}

/* Waits for the @n-th "remember?" question and answers it. */
static void
answer_question (Fixture *fixture, guint n, const gchar *answer)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  g_autofree gchar *line = g_strconcat (answer, "\n", NULL);

  while (count_in_terminal (fixture, QUESTION) < n && g_get_monotonic_time () < deadline)
    g_usleep (20 * 1000);
  if (count_in_terminal (fixture, QUESTION) < n)
    {
      g_autofree gchar *output = terminal (fixture);
      g_error ("the agent never asked whether to remember the PIN:\n%s", output);
    }
  eta_test_agent_type (fixture->agent, line);
}

static void
finish_unwrap (Fixture *fixture, EtaTestUnwrap *job)
{
  g_autofree gchar *output = terminal (fixture);
  eta_test_unwrap_finish (job, TRUE, NULL, output);
}

/* An unwrap that the person answers with the right PIN. */
static void
unwrap_with_pin (Fixture *fixture)
{
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  finish_unwrap (fixture, eta_test_unwrap_start (BUDGET_MS));
}

static void
lock_tokens (void)
{
  g_autoptr (GDBusConnection) bus = eta_test_session_bus ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
      bus, ETA_BUS_NAME, ETA_OBJECT_PATH, ETA_INTERFACE, "Lock", NULL, G_VARIANT_TYPE ("()"),
      G_DBUS_CALL_FLAGS_NONE, 20000, NULL, &error);

  g_assert_no_error (error);
}

static void
assert_remembered (const gchar *pin)
{
  g_autoptr (GHashTable) item = eta_test_keyring_lookup_pin ();

  g_assert_nonnull (item);
  g_assert_cmpstr (g_hash_table_lookup (item, "secret"), ==, pin);
}

static void
assert_counters (guint64 login_calls, guint64 login_failures)
{
  g_assert_cmpuint (eta_fault_control_get_counter ("login_calls"), ==, login_calls);
  g_assert_cmpuint (eta_fault_control_get_counter ("login_failures"), ==, login_failures);
}

/* ---- the tests ---- */

/* Remember chosen: the PIN is stored under the token's name, and the next
 * logins (after Lock, and in a new agent run) need no prompt. */
static void
test_remembered_and_used (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job;
  g_autoptr (GHashTable) item = NULL;
  g_autofree gchar *manufacturer = eta_test_keyring_token_field ("manufacturer");
  g_autofree gchar *model = eta_test_keyring_token_field ("model");
  g_autofree gchar *serial = eta_test_keyring_token_field ("serial");

  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  job = eta_test_unwrap_start (BUDGET_MS);
  answer_question (fixture, 1, "y");
  finish_unwrap (fixture, job);
  item = eta_test_keyring_wait_for_pin (5000);
  g_assert_nonnull (item);
  g_assert_cmpstr (g_hash_table_lookup (item, "xdg:schema"), ==, ETA_PIN_SCHEMA_NAME);
  g_assert_cmpstr (g_hash_table_lookup (item, "manufacturer"), ==, manufacturer);
  g_assert_cmpstr (g_hash_table_lookup (item, "model"), ==, model);
  g_assert_cmpstr (g_hash_table_lookup (item, "serial"), ==, serial);
  g_assert_cmpstr (g_hash_table_lookup (item, "label"), ==, ETA_TEST_TOKEN_LABEL);
  g_assert_cmpstr (g_hash_table_lookup (item, "item-label"), ==,
                   "PIN of token “" ETA_TEST_TOKEN_LABEL "”");
  g_assert_cmpstr (g_hash_table_lookup (item, "secret"), ==, ETA_TEST_TOKEN_PIN);
  g_assert_cmpstr (manufacturer, ==, "SoftHSM project");
  assert_counters (1, 0);

  /* Locked: the remembered PIN logs in again, nobody is asked. */
  lock_tokens ();
  finish_unwrap (fixture, eta_test_unwrap_start (BUDGET_MS));
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
  assert_counters (2, 0);

  /* A new run of the agent: the same. */
  eta_agent_client_disconnect ();
  eta_test_agent_stop (fixture->agent);
  eta_fault_control_reset ();
  fixture->agent = eta_test_agent_start ((const gchar * const *) fixture->env);
  finish_unwrap (fixture, eta_test_unwrap_start (BUDGET_MS));
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 0);
  assert_counters (1, 0);
}

/* Remember declined (Enter on the question): nothing is stored. */
static void
test_declined (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job;

  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  job = eta_test_unwrap_start (BUDGET_MS);
  answer_question (fixture, 1, "");
  finish_unwrap (fixture, job);
  g_usleep (300 * 1000);
  g_assert_null (eta_test_keyring_lookup_pin ());
}

/* A remembered PIN that is wrong: tried once, forgotten, and the person is
 * asked; the token saw exactly one wrong PIN. */
static void
test_wrong_remembered_pin (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job;

  eta_test_keyring_store_pin ("0000");
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  job = eta_test_unwrap_start (BUDGET_MS);
  answer_question (fixture, 1, "n");
  finish_unwrap (fixture, job);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
  g_assert_cmpuint (count_in_terminal (fixture, "Wrong PIN"), ==, 1);
  assert_counters (2, 1);
  g_assert_null (eta_test_keyring_lookup_pin ());
}

/* The token warns that the next wrong PIN blocks it: the remembered PIN is
 * not risked, the person is asked. */
static void
test_final_try_not_used (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job;

  eta_test_keyring_store_pin (ETA_TEST_TOKEN_PIN);
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  job = eta_test_unwrap_start (BUDGET_MS);
  answer_question (fixture, 1, "n");
  finish_unwrap (fixture, job);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
  g_assert_cmpuint (count_in_terminal (fixture, "Final try"), ==, 1);
  assert_counters (1, 0);
  assert_remembered (ETA_TEST_TOKEN_PIN);
}

/* The site forbids remembering: a remembered PIN is not used, and the
 * person is not offered to remember. */
static void
test_policy_forbids (Fixture *fixture, gconstpointer data)
{
  eta_test_keyring_store_pin (ETA_TEST_TOKEN_PIN);
  unwrap_with_pin (fixture);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
  g_assert_cmpuint (count_in_terminal (fixture, QUESTION), ==, 0);
  assert_counters (1, 0);
  assert_remembered (ETA_TEST_TOKEN_PIN);
}

/* No Secret Service on the bus: the agent asks at once, and offers nothing
 * it could not keep. */
static void
test_no_secret_service (Fixture *fixture, gconstpointer data)
{
  gint64 start = g_get_monotonic_time ();

  unwrap_with_pin (fixture);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 2000 * 1000);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
  g_assert_cmpuint (count_in_terminal (fixture, QUESTION), ==, 0);
}

/* A Secret Service that never answers: the prompt comes after the timeout,
 * and the agent keeps serving the bus meanwhile. */
static void
test_hung_secret_service (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GDBusConnection) bus = eta_test_session_bus ();
  gint64 start = g_get_monotonic_time ();
  EtaTestUnwrap *job;
  gint64 asked, waited;

  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  job = eta_test_unwrap_start (BUDGET_MS);
  g_usleep (500 * 1000);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 0);
  /* The main thread is free while the worker waits for the keyring. */
  asked = g_get_monotonic_time ();
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
        bus, ETA_BUS_NAME, ETA_OBJECT_PATH, "org.freedesktop.DBus.Introspectable", "Introspect",
        NULL, G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
    g_assert_no_error (error);
  }
  g_assert_cmpint (g_get_monotonic_time () - asked, <, 1000 * 1000);
  g_assert_true (eta_test_agent_wait_for_prompts (fixture->agent, 1,
                                                  ETA_PIN_STORE_TIMEOUT_MS + 5000));
  waited = g_get_monotonic_time () - start;
  g_assert_cmpint (waited, >=, (ETA_PIN_STORE_TIMEOUT_MS - 500) * 1000);
  g_assert_cmpint (waited, <, (ETA_PIN_STORE_TIMEOUT_MS + 5000) * 1000);
  finish_unwrap (fixture, job);
  g_assert_cmpint (g_atomic_int_get (&fixture->hung->calls), >, 0);
  g_assert_cmpuint (count_in_terminal (fixture, QUESTION), ==, 0);
  assert_counters (1, 0);
}

/* The keyring is locked: its PIN is not read (and no keyring prompt is
 * raised); the person is asked. */
static void
test_locked_keyring (Fixture *fixture, gconstpointer data)
{
  eta_test_keyring_store_pin (ETA_TEST_TOKEN_PIN);
  eta_test_keyring_lock ();
  unwrap_with_pin (fixture);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
  g_assert_cmpuint (count_in_terminal (fixture, QUESTION), ==, 0);
  assert_counters (1, 0);
}

static const Scenario with_keyring = { .keyring = TRUE };
static const Scenario final_try = { .keyring = TRUE, .fault = "pin_flags=final_try" };
static const Scenario forbidden = { .keyring = TRUE, .settings = "allow-remember-pin=false" };
static const Scenario no_service = { 0 };
static const Scenario hung = { .hung_service = TRUE };

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  eta_test_token_get ();
  eta_fault_control_setup ();
  g_setenv ("ETA_TEST_PROVIDER", eta_fault_control_get_module_path (), TRUE);
#define ADD(path, scenario, fn) \
  g_test_add (path, Fixture, &scenario, fixture_set_up, fn, fixture_tear_down)
  ADD ("/remember-pin/remembered-and-used", with_keyring, test_remembered_and_used);
  ADD ("/remember-pin/declined", with_keyring, test_declined);
  ADD ("/remember-pin/wrong-remembered-pin", with_keyring, test_wrong_remembered_pin);
  ADD ("/remember-pin/final-try-not-used", final_try, test_final_try_not_used);
  ADD ("/remember-pin/policy-forbids", forbidden, test_policy_forbids);
  ADD ("/remember-pin/no-secret-service", no_service, test_no_secret_service);
  ADD ("/remember-pin/hung-secret-service", hung, test_hung_secret_service);
  ADD ("/remember-pin/locked-keyring", with_keyring, test_locked_keyring);
  return g_test_run ();
}

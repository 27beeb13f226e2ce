/* The site policy (GSettings org.ecryptfs.TokenAgent) as the real agent
 * follows it. A real dbus-daemon per test (GTestDBus) is the session bus and
 * doubles as the system bus (DBUS_SYSTEM_BUS_ADDRESS); this process owns a
 * small fake systemd-logind and screen saver on it, in a thread of their own.
 * The agent reads its settings through GSettings' keyfile backend in a
 * temporary XDG_CONFIG_HOME, logs in to a real SoftHSM2 token and asks for
 * the PIN on its terminal. */
#include "config.h"

#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>

#include <openssl/rand.h>

#include "eta-agent-client.h"
#include "eta-epoch-packet.h"
#include "eta-names.h"
#include "eta-policy.h"
#include "eta-test-agent.h"
#include "eta-test-crypto.h"
#include "eta-test-token.h"
#include "eta-token-manager.h"

#define CALL_TIMEOUT_MS 20000
#define SIGNAL_TIMEOUT_MS 5000
#define FAKE_SESSION_ID "c7"
#define FAKE_SESSION_PATH "/org/freedesktop/login1/session/c7"

/* ---- a fake systemd-logind and screen saver ---- */

static const gchar logind_xml[] =
  "<node>"
  "  <interface name='org.freedesktop.login1.Manager'>"
  "    <method name='GetSession'>"
  "      <arg type='s' direction='in'/><arg type='o' direction='out'/>"
  "    </method>"
  "    <method name='GetSessionByPID'>"
  "      <arg type='u' direction='in'/><arg type='o' direction='out'/>"
  "    </method>"
  "    <method name='GetUser'>"
  "      <arg type='u' direction='in'/><arg type='o' direction='out'/>"
  "    </method>"
  "    <method name='Inhibit'>"
  "      <arg type='s' direction='in'/><arg type='s' direction='in'/>"
  "      <arg type='s' direction='in'/><arg type='s' direction='in'/>"
  "      <arg type='h' direction='out'/>"
  "    </method>"
  "    <signal name='PrepareForSleep'><arg type='b'/></signal>"
  "  </interface>"
  "</node>";

typedef struct
{
  gboolean with_logind;
  gchar *address;
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  GDBusConnection *connection;

  GMutex lock;
  GCond changed;
  gboolean ready;
  gchar *session_asked;      /* GetSession's argument */
  guint32 pid_asked;         /* GetSessionByPID's argument */
  gchar *inhibit_what;
  gchar *inhibit_mode;
  GArray *inhibitors;        /* int: our end of each delay lock handed out */
} FakeServices;

static void
on_logind_method (GDBusConnection *connection, const gchar *sender, const gchar *path,
                  const gchar *interface, const gchar *method, GVariant *parameters,
                  GDBusMethodInvocation *invocation, gpointer user_data)
{
  FakeServices *fakes = user_data;

  g_mutex_lock (&fakes->lock);
  if (g_str_equal (method, "GetSession"))
    {
      const gchar *id;

      g_variant_get (parameters, "(&s)", &id);
      g_free (fakes->session_asked);
      fakes->session_asked = g_strdup (id);
      if (g_str_equal (id, FAKE_SESSION_ID))
        g_dbus_method_invocation_return_value (invocation,
                                               g_variant_new ("(o)", FAKE_SESSION_PATH));
      else
        g_dbus_method_invocation_return_dbus_error (
            invocation, "org.freedesktop.login1.NoSuchSession", "No session by that ID");
    }
  else if (g_str_equal (method, "GetSessionByPID"))
    {
      g_variant_get (parameters, "(u)", &fakes->pid_asked);
      g_dbus_method_invocation_return_value (invocation,
                                             g_variant_new ("(o)", FAKE_SESSION_PATH));
    }
  else if (g_str_equal (method, "GetUser"))
    g_dbus_method_invocation_return_dbus_error (invocation, "org.freedesktop.login1.NoSuchUser",
                                                "No such user");
  else if (g_str_equal (method, "Inhibit"))
    {
      g_autoptr (GUnixFDList) fds = g_unix_fd_list_new ();
      const gchar *what, *who, *why, *mode;
      int ends[2];

      g_variant_get (parameters, "(&s&s&s&s)", &what, &who, &why, &mode);
      g_free (fakes->inhibit_what);
      g_free (fakes->inhibit_mode);
      fakes->inhibit_what = g_strdup (what);
      fakes->inhibit_mode = g_strdup (mode);
      /* Like logind: the lock lasts while the caller holds the write end. */
      g_assert_cmpint (pipe2 (ends, O_CLOEXEC), ==, 0);
      g_assert_cmpint (g_unix_fd_list_append (fds, ends[1], NULL), ==, 0);
      close (ends[1]);
      g_array_append_val (fakes->inhibitors, ends[0]);
      g_dbus_method_invocation_return_value_with_unix_fd_list (invocation,
                                                               g_variant_new ("(h)", 0), fds);
    }
  g_cond_broadcast (&fakes->changed);
  g_mutex_unlock (&fakes->lock);
}

static void
own_name (GDBusConnection *connection, const gchar *name)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
      connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
      "RequestName", g_variant_new ("(su)", name, 4 /* DO_NOT_QUEUE */), G_VARIANT_TYPE ("(u)"),
      G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  guint32 result = 0;

  g_assert_no_error (error);
  g_variant_get (reply, "(u)", &result);
  g_assert_cmpuint (result, ==, 1 /* PRIMARY_OWNER */);
}

static gpointer
run_fake_services (gpointer data)
{
  static const GDBusInterfaceVTable vtable = { on_logind_method, NULL, NULL, { NULL } };
  FakeServices *fakes = data;
  g_autoptr (GDBusNodeInfo) node = NULL;
  g_autoptr (GError) error = NULL;
  guint registration = 0;

  /* Method calls are served in this thread, whatever the test's does. */
  g_main_context_push_thread_default (fakes->context);
  fakes->connection = g_dbus_connection_new_for_address_sync (
      fakes->address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
      | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &error);
  g_assert_no_error (error);
  g_dbus_connection_set_exit_on_close (fakes->connection, FALSE);
  if (fakes->with_logind)
    {
      node = g_dbus_node_info_new_for_xml (logind_xml, &error);
      g_assert_no_error (error);
      registration = g_dbus_connection_register_object (fakes->connection,
                                                        "/org/freedesktop/login1",
                                                        node->interfaces[0], &vtable, fakes,
                                                        NULL, &error);
      g_assert_no_error (error);
      own_name (fakes->connection, "org.freedesktop.login1");
    }
  own_name (fakes->connection, "org.gnome.ScreenSaver");

  g_mutex_lock (&fakes->lock);
  fakes->ready = TRUE;
  g_cond_broadcast (&fakes->changed);
  g_mutex_unlock (&fakes->lock);

  g_main_loop_run (fakes->loop);
  if (registration != 0)
    g_dbus_connection_unregister_object (fakes->connection, registration);
  g_main_context_pop_thread_default (fakes->context);
  return NULL;
}

static FakeServices *
fake_services_start (const gchar *address, gboolean with_logind)
{
  FakeServices *fakes = g_new0 (FakeServices, 1);

  fakes->with_logind = with_logind;
  fakes->address = g_strdup (address);
  fakes->context = g_main_context_new ();
  fakes->loop = g_main_loop_new (fakes->context, FALSE);
  fakes->inhibitors = g_array_new (FALSE, FALSE, sizeof (int));
  g_mutex_init (&fakes->lock);
  g_cond_init (&fakes->changed);
  fakes->thread = g_thread_new ("fake-services", run_fake_services, fakes);
  g_mutex_lock (&fakes->lock);
  while (!fakes->ready)
    g_cond_wait (&fakes->changed, &fakes->lock);
  g_mutex_unlock (&fakes->lock);
  return fakes;
}

static void
fake_services_stop (FakeServices *fakes)
{
  if (fakes == NULL)
    return;
  g_main_loop_quit (fakes->loop);
  g_thread_join (fakes->thread);
  g_dbus_connection_close_sync (fakes->connection, NULL, NULL);
  g_object_unref (fakes->connection);
  for (guint i = 0; i < fakes->inhibitors->len; i++)
    close (g_array_index (fakes->inhibitors, int, i));
  g_array_unref (fakes->inhibitors);
  g_main_loop_unref (fakes->loop);
  g_main_context_unref (fakes->context);
  g_mutex_clear (&fakes->lock);
  g_cond_clear (&fakes->changed);
  g_free (fakes->session_asked);
  g_free (fakes->inhibit_what);
  g_free (fakes->inhibit_mode);
  g_free (fakes->address);
  g_free (fakes);
}

static void
fake_emit (FakeServices *fakes, const gchar *path, const gchar *interface,
           const gchar *signal_name, GVariant *args)
{
  g_autoptr (GError) error = NULL;

  g_dbus_connection_emit_signal (fakes->connection, NULL, path, interface, signal_name, args,
                                 &error);
  g_assert_no_error (error);
  g_dbus_connection_flush_sync (fakes->connection, NULL, &error);
  g_assert_no_error (error);
}

static void
fake_emit_screen_saver_active (FakeServices *fakes)
{
  fake_emit (fakes, "/org/gnome/ScreenSaver", "org.gnome.ScreenSaver", "ActiveChanged",
             g_variant_new ("(b)", TRUE));
}

static void
fake_emit_session_lock (FakeServices *fakes)
{
  fake_emit (fakes, FAKE_SESSION_PATH, "org.freedesktop.login1.Session", "Lock", NULL);
}

static void
fake_emit_prepare_for_sleep (FakeServices *fakes, gboolean start)
{
  fake_emit (fakes, "/org/freedesktop/login1", "org.freedesktop.login1.Manager",
             "PrepareForSleep", g_variant_new ("(b)", start));
}

/* Waits until @count delay locks have been handed out. The agent subscribes
 * to logind's signals before it asks for one: after this, it listens. */
static void
fake_wait_for_inhibitors (FakeServices *fakes, guint count)
{
  gint64 deadline = g_get_monotonic_time () + SIGNAL_TIMEOUT_MS * 1000;

  g_mutex_lock (&fakes->lock);
  while (fakes->inhibitors->len < count)
    if (!g_cond_wait_until (&fakes->changed, &fakes->lock, deadline))
      break;
  g_assert_cmpuint (fakes->inhibitors->len, ==, count);
  g_mutex_unlock (&fakes->lock);
}

/* Whether the agent closed delay lock @index within @timeout_ms. */
static gboolean
fake_inhibitor_released (FakeServices *fakes, guint index, gint timeout_ms)
{
  struct pollfd end = { 0 };

  g_mutex_lock (&fakes->lock);
  g_assert_cmpuint (index, <, fakes->inhibitors->len);
  end.fd = g_array_index (fakes->inhibitors, int, index);
  g_mutex_unlock (&fakes->lock);
  end.events = POLLIN;
  return poll (&end, 1, timeout_ms) == 1 && (end.revents & POLLHUP);
}

/* ---- the fixture ---- */

typedef struct
{
  /* Lines of the keyfile's [org/ecryptfs/TokenAgent] group. */
  const gchar *settings;
  /* A fake logind on the test's bus, which the agent takes for the system
   * bus; without it the agent's system bus does not exist. */
  gboolean logind;
  /* The agent's XDG_SESSION_ID, or NULL for none. */
  const gchar *session_id;
  /* Start the agent without --provider: its settings choose. */
  gboolean no_provider_option;
} Scenario;

typedef struct
{
  const Scenario *scenario;
  const EtaTestToken *token;
  GTestDBus *bus;
  gchar *config_home;
  FakeServices *fakes;
  EtaTestAgent *agent;
  GDBusConnection *connection;
  GPtrArray *states;         /* TokenStateChanged states, in order */
  guint states_checked;
  guint subscription;
} Fixture;

static void
write_settings (Fixture *fixture, const gchar *lines)
{
  eta_test_write_agent_settings (fixture->config_home, lines);
}

static void
remove_tree (const gchar *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const gchar *name;

  if (dir != NULL)
    {
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree gchar *child = g_build_filename (path, name, NULL);
          remove_tree (child);
        }
      g_dir_close (dir);
    }
  g_remove (path);
}

/* The environment that makes the agent read this test's settings and find
 * this test's system bus, or none. */
static GStrv
agent_environment (Fixture *fixture)
{
  GPtrArray *env = g_ptr_array_new ();

  g_ptr_array_add (env, g_strdup ("GSETTINGS_BACKEND=keyfile"));
  g_ptr_array_add (env, g_strconcat ("XDG_CONFIG_HOME=", fixture->config_home, NULL));
  if (fixture->scenario->logind)
    g_ptr_array_add (env, g_strconcat ("DBUS_SYSTEM_BUS_ADDRESS=",
                                       g_test_dbus_get_bus_address (fixture->bus), NULL));
  else
    g_ptr_array_add (env, g_strdup_printf ("DBUS_SYSTEM_BUS_ADDRESS=unix:path=%s/no-bus",
                                           fixture->config_home));
  if (fixture->scenario->session_id != NULL)
    g_ptr_array_add (env, g_strconcat ("XDG_SESSION_ID=", fixture->scenario->session_id, NULL));
  g_ptr_array_add (env, NULL);
  return (GStrv) g_ptr_array_free (env, FALSE);
}

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) env = NULL;

  fixture->scenario = data;
  fixture->token = eta_test_token_get ();
  fixture->config_home = g_dir_make_tmp ("eta-policy-XXXXXX", &error);
  g_assert_no_error (error);
  write_settings (fixture, fixture->scenario->settings);
  if (fixture->scenario->no_provider_option)
    g_setenv ("ETA_TEST_PROVIDER", "", TRUE);
  else
    g_unsetenv ("ETA_TEST_PROVIDER");

  fixture->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fixture->bus);
  fixture->fakes = fake_services_start (g_test_dbus_get_bus_address (fixture->bus),
                                        fixture->scenario->logind);
  fixture->connection = eta_test_session_bus ();
  fixture->states = g_ptr_array_new_with_free_func (g_free);
  fixture->subscription = eta_test_watch_token_states (fixture->connection, fixture->states);
  env = agent_environment (fixture);
  fixture->agent = eta_test_agent_start ((const gchar * const *) env);
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  eta_agent_client_disconnect ();
  g_dbus_connection_signal_unsubscribe (fixture->connection, fixture->subscription);
  g_clear_object (&fixture->connection);
  eta_test_agent_stop (fixture->agent);
  fake_services_stop (fixture->fakes);
  g_test_dbus_down (fixture->bus);
  g_clear_object (&fixture->bus);
  g_ptr_array_unref (fixture->states);
  remove_tree (fixture->config_home);
  g_free (fixture->config_home);
  g_unsetenv ("ETA_TEST_PROVIDER");
}

/* ---- what the agent does ---- */

static void
print_terminal (Fixture *fixture)
{
  g_autofree gchar *terminal = eta_test_agent_dup_terminal_output (fixture->agent);
  g_printerr ("agent terminal:\n%s\n", terminal);
}

/* Waits for the next TokenStateChanged and checks its state. */
static void
expect_state (Fixture *fixture, const gchar *state, guint timeout_ms)
{
  eta_test_expect_token_state (fixture->agent, fixture->states, &fixture->states_checked, state,
                               timeout_ms);
}

/* Lets signals in flight arrive, then checks none came. */
static void
expect_no_state_change (Fixture *fixture, guint settle_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) settle_ms * 1000;

  while (g_get_monotonic_time () < deadline)
    {
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (10 * 1000);
    }
  g_assert_cmpuint (fixture->states->len, ==, fixture->states_checked);
}

/* An unwrap through the key module's own client code, as ecryptfsd's; not
 * @interactive, it fails at once (Locked) where it would ask for the PIN. */
static void
unwrap (Fixture *fixture, gboolean interactive)
{
  g_autoptr (GBytes) public_key = eta_test_token_load_public_key (ETA_TEST_KEY_RSA2048);
  g_autoptr (GBytes) fek = eta_test_random_bytes (32);
  g_autoptr (GBytes) wrapped = eta_test_rsa_encrypt (public_key, ETA_PADDING_OAEP,
                                                     g_bytes_get_data (fek, NULL), 32);
  g_autoptr (GError) error = NULL;
  guint8 plaintext[512];
  gsize len = sizeof plaintext;
  gboolean ok;

  ok = eta_agent_client_unwrap (fixture->token->fingerprint[ETA_TEST_KEY_RSA2048],
                                ETA_PADDING_OAEP, NULL, NULL, interactive,
                                g_bytes_get_data (wrapped, NULL), g_bytes_get_size (wrapped),
                                CALL_TIMEOUT_MS, plaintext, &len, &error);
  if (!ok)
    print_terminal (fixture);
  g_assert_no_error (error);
  g_assert_true (ok);
  g_assert_cmpmem (plaintext, len, g_bytes_get_data (fek, NULL), g_bytes_get_size (fek));
}

/* An unwrap that has to ask for the PIN: the token was not logged in. */
static void
unwrap_with_pin (Fixture *fixture)
{
  guint prompts = eta_test_agent_get_prompt_count (fixture->agent);

  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  unwrap (fixture, TRUE);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, prompts + 1);
  expect_state (fixture, "logged-in", SIGNAL_TIMEOUT_MS);
}

/* An unwrap on a token still logged in. */
static void
unwrap_without_pin (Fixture *fixture)
{
  guint prompts = eta_test_agent_get_prompt_count (fixture->agent);

  unwrap (fixture, FALSE);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, prompts);
}

/* An unwrap of a file written in the epoch of @epoch_key (RSA(K) in
 * @rsa_epoch_key), as the key module writes files by default: with K kept,
 * the agent answers it without a token operation. */
static gboolean
unwrap_epoch (Fixture *fixture, const guint8 *epoch_key, GBytes *rsa_epoch_key,
              gboolean interactive)
{
  g_autoptr (GBytes) payload = eta_test_random_bytes (35);
  guint8 packet[ETA_EPOCH_MAX_PACKET];
  size_t packet_len = eta_epoch_packet_write (packet, ETA_PADDING_OAEP,
                                              g_bytes_get_data (rsa_epoch_key, NULL),
                                              g_bytes_get_size (rsa_epoch_key), epoch_key,
                                              g_bytes_get_data (payload, NULL), 35);
  g_autoptr (GError) error = NULL;
  guint8 plaintext[512];
  gsize len = sizeof plaintext;

  g_assert_cmpuint (packet_len, >, 0);
  if (!eta_agent_client_unwrap (fixture->token->fingerprint[ETA_TEST_KEY_RSA2048],
                                ETA_PADDING_OAEP, NULL, NULL, interactive, packet, packet_len,
                                CALL_TIMEOUT_MS, plaintext, &len, &error))
    return FALSE;
  g_assert_cmpmem (plaintext, len, g_bytes_get_data (payload, NULL), 35);
  return TRUE;
}

/* The test token's state in ListTokens, asked over @connection. */
static gchar *
token_state (GDBusConnection *connection)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
      connection, ETA_BUS_NAME, ETA_OBJECT_PATH, ETA_INTERFACE, "ListTokens", NULL,
      G_VARIANT_TYPE ("(aa{sv})"), G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, &error);
  g_autoptr (GVariant) tokens = NULL;

  g_assert_no_error (error);
  tokens = g_variant_get_child_value (reply, 0);
  for (gsize i = 0; i < g_variant_n_children (tokens); i++)
    {
      g_autoptr (GVariant) token = g_variant_get_child_value (tokens, i);
      const gchar *label = NULL, *state = NULL;

      if (g_variant_lookup (token, "label", "&s", &label)
          && g_str_equal (label, ETA_TEST_TOKEN_LABEL)
          && g_variant_lookup (token, "state", "&s", &state))
        return g_strdup (state);
    }
  return NULL;
}

static gboolean
agent_sees_test_key (GDBusConnection *connection, const gchar *fingerprint)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
      connection, ETA_BUS_NAME, ETA_OBJECT_PATH, ETA_INTERFACE, "ListKeys", NULL,
      G_VARIANT_TYPE ("(aa{sv})"), G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, &error);
  g_autoptr (GVariant) keys = NULL;

  g_assert_no_error (error);
  keys = g_variant_get_child_value (reply, 0);
  for (gsize i = 0; i < g_variant_n_children (keys); i++)
    {
      g_autoptr (GVariant) key = g_variant_get_child_value (keys, i);
      const gchar *found = NULL;

      if (g_variant_lookup (key, "fingerprint", "&s", &found) && g_str_equal (found, fingerprint))
        return TRUE;
    }
  return FALSE;
}

/* ---- the tests ---- */

static const Scenario no_logind = { NULL, FALSE, NULL, FALSE };

static void
test_screen_saver (Fixture *fixture, gconstpointer data)
{
  /* No system bus here: said once, and the rest of the policy still works. */
  if (!eta_test_agent_wait_for_output (fixture->agent, "systemd-logind is out of reach",
                                       SIGNAL_TIMEOUT_MS))
    {
      print_terminal (fixture);
      g_error ("the agent did not say that logind is out of reach");
    }
  unwrap_with_pin (fixture);
  fake_emit_screen_saver_active (fixture->fakes);
  expect_state (fixture, "locked", SIGNAL_TIMEOUT_MS);
  unwrap_with_pin (fixture);
}

static const Scenario session_c7 = { NULL, TRUE, FAKE_SESSION_ID, FALSE };

static void
test_session_lock (Fixture *fixture, gconstpointer data)
{
  fake_wait_for_inhibitors (fixture->fakes, 1);
  g_assert_cmpstr (fixture->fakes->session_asked, ==, FAKE_SESSION_ID);
  unwrap_with_pin (fixture);
  fake_emit_session_lock (fixture->fakes);
  expect_state (fixture, "locked", SIGNAL_TIMEOUT_MS);
  unwrap_with_pin (fixture);
}

static const Scenario session_by_pid = { NULL, TRUE, NULL, FALSE };

static void
test_suspend (Fixture *fixture, gconstpointer data)
{
  fake_wait_for_inhibitors (fixture->fakes, 1);
  /* No XDG_SESSION_ID: the session is the one the agent's process is in. */
  g_assert_null (fixture->fakes->session_asked);
  g_assert_cmpuint (fixture->fakes->pid_asked, ==, (guint32) eta_test_agent_get_pid (fixture->agent));
  g_assert_cmpstr (fixture->fakes->inhibit_what, ==, "sleep");
  g_assert_cmpstr (fixture->fakes->inhibit_mode, ==, "delay");
  g_assert_false (fake_inhibitor_released (fixture->fakes, 0, 0));

  /* Nothing logged in: the suspend is let go at once. */
  fake_emit_prepare_for_sleep (fixture->fakes, TRUE);
  g_assert_true (fake_inhibitor_released (fixture->fakes, 0, SIGNAL_TIMEOUT_MS));
  fake_emit_prepare_for_sleep (fixture->fakes, FALSE);
  fake_wait_for_inhibitors (fixture->fakes, 2);

  unwrap_with_pin (fixture);
  fake_emit_prepare_for_sleep (fixture->fakes, TRUE);
  expect_state (fixture, "locked", SIGNAL_TIMEOUT_MS);
  g_assert_true (fake_inhibitor_released (fixture->fakes, 1, SIGNAL_TIMEOUT_MS));
  /* Awake: ready for the next suspend. */
  fake_emit_prepare_for_sleep (fixture->fakes, FALSE);
  fake_wait_for_inhibitors (fixture->fakes, 3);
  g_assert_false (fake_inhibitor_released (fixture->fakes, 2, 0));
  unwrap_with_pin (fixture);
}

static const Scenario screen_lock_off = { "lock-on-screen-lock=false", TRUE, FAKE_SESSION_ID,
                                          FALSE };

static void
test_screen_lock_ignored (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *state = NULL;
  g_autofree gchar *state_later = NULL;

  fake_wait_for_inhibitors (fixture->fakes, 1);
  unwrap_with_pin (fixture);
  fake_emit_screen_saver_active (fixture->fakes);
  fake_emit_session_lock (fixture->fakes);
  /* Asked on the connection the signals left on: the agent has had them
   * before it answers. */
  state = token_state (fixture->fakes->connection);
  g_assert_cmpstr (state, ==, "logged-in");
  expect_no_state_change (fixture, 500);
  state_later = token_state (fixture->connection);
  g_assert_cmpstr (state_later, ==, "logged-in");
  unwrap_without_pin (fixture);
}

static const Scenario idle_2s = { "login-lifetime='idle-timeout'\nidle-timeout=2", FALSE, NULL,
                                  FALSE };

static void
test_idle_timeout (Fixture *fixture, gconstpointer data)
{
  gint64 last_use;

  unwrap_with_pin (fixture);
  /* Each unwrap restarts the 2 s: the second comes 2.4 s after the login. */
  for (int i = 0; i < 2; i++)
    {
      g_usleep (1200 * 1000);
      unwrap_without_pin (fixture);
    }
  last_use = g_get_monotonic_time ();
  expect_state (fixture, "locked", SIGNAL_TIMEOUT_MS);
  g_assert_cmpint (g_get_monotonic_time () - last_use, >=, 1800 * 1000);
  unwrap_with_pin (fixture);
}

/* The same with unwraps of one epoch, whose K the agent keeps: they are
 * answered without the main thread, and still count as uses. After the
 * idle lock, K is gone with the login. */
static void
test_idle_timeout_kept_epoch_key (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GBytes) public_key = eta_test_token_load_public_key (ETA_TEST_KEY_RSA2048);
  guint8 epoch_key[ETA_EPOCH_KEY_LEN];
  g_autoptr (GBytes) rsa_epoch_key = NULL;
  gint64 last_use;

  g_assert_cmpint (RAND_bytes (epoch_key, sizeof epoch_key), ==, 1);
  rsa_epoch_key = eta_test_rsa_encrypt (public_key, ETA_PADDING_OAEP, epoch_key,
                                        sizeof epoch_key);
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  g_assert_true (unwrap_epoch (fixture, epoch_key, rsa_epoch_key, TRUE));
  expect_state (fixture, "logged-in", SIGNAL_TIMEOUT_MS);
  for (int i = 0; i < 2; i++)
    {
      g_usleep (1200 * 1000);
      g_assert_true (unwrap_epoch (fixture, epoch_key, rsa_epoch_key, FALSE));
    }
  last_use = g_get_monotonic_time ();
  expect_state (fixture, "locked", SIGNAL_TIMEOUT_MS);
  g_assert_cmpint (g_get_monotonic_time () - last_use, >=, 1800 * 1000);
  /* Not interactive: with K forgotten it needs the PIN, so it fails. */
  g_assert_false (unwrap_epoch (fixture, epoch_key, rsa_epoch_key, FALSE));
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
}

static const Scenario lifetime_3s = {
  "login-lifetime='maximum-lifetime'\nmaximum-lifetime=3", FALSE, NULL, FALSE
};

static void
test_maximum_lifetime (Fixture *fixture, gconstpointer data)
{
  gint64 logged_in;
  gint64 elapsed;

  unwrap_with_pin (fixture);
  logged_in = g_get_monotonic_time ();
  /* Busy all along (idle-timeout is not in force), until the login ends
   * and an unwrap asks for the PIN again. */
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  while (eta_test_agent_get_prompt_count (fixture->agent) < 2
         && g_get_monotonic_time () - logged_in < 10 * G_USEC_PER_SEC)
    {
      unwrap (fixture, TRUE);
      g_usleep (250 * 1000);
    }
  elapsed = g_get_monotonic_time () - logged_in;
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 2);
  g_assert_cmpint (elapsed, >=, 2500 * 1000);
  g_assert_cmpint (elapsed, <, 6 * G_USEC_PER_SEC);
  expect_state (fixture, "locked", SIGNAL_TIMEOUT_MS);
  expect_state (fixture, "logged-in", SIGNAL_TIMEOUT_MS);
}

static void
test_settings_change (Fixture *fixture, gconstpointer data)
{
  unwrap_with_pin (fixture);
  /* until-removed: a second without use changes nothing... */
  expect_no_state_change (fixture, 1200);
  /* ...until the site says a second is enough: the agent follows at once. */
  write_settings (fixture, "login-lifetime='idle-timeout'\nidle-timeout=1");
  expect_state (fixture, "locked", 10000);
  unwrap_with_pin (fixture);
}

static const Scenario softhsm_allowed = {
  "allowed-providers=['" ETA_TEST_SOFTHSM_MODULE "']", FALSE, NULL, TRUE
};

static void
test_allowed_providers (Fixture *fixture, gconstpointer data)
{
  g_auto (GStrv) env = NULL;
  g_autofree gchar *out = NULL;
  g_autoptr (GError) error = NULL;
  const gchar *argv[] = { ETA_TEST_AGENT_PATH, "--terminal", NULL };
  gint status;

  /* Started without --provider: the site's list holds SoftHSM2 only. */
  g_assert_true (agent_sees_test_key (fixture->connection,
                                      fixture->token->fingerprint[ETA_TEST_KEY_RSA2048]));
  unwrap_with_pin (fixture);
  eta_test_agent_stop (fixture->agent);
  fixture->agent = NULL;
  eta_agent_client_disconnect ();

  /* The list is what gets loaded: a list of nothing loadable, no agent. */
  write_settings (fixture, "allowed-providers=['/nonexistent/libnothing.so']");
  env = agent_environment (fixture);
  {
    g_auto (GStrv) full_env = g_get_environ ();
    for (gsize i = 0; env[i] != NULL; i++)
      {
        g_auto (GStrv) pair = g_strsplit (env[i], "=", 2);
        full_env = g_environ_setenv (full_env, pair[0], pair[1], TRUE);
      }
    g_spawn_sync (NULL, (gchar **) argv, full_env, G_SPAWN_STDIN_FROM_DEV_NULL, NULL, NULL,
                  NULL, &out, &status, &error);
  }
  g_assert_no_error (error);
  g_assert_false (g_spawn_check_wait_status (status, NULL));
  g_assert_nonnull (strstr (out, "/nonexistent/libnothing.so"));

  /* --provider is the person's own choice and wins over the list. */
  g_unsetenv ("ETA_TEST_PROVIDER");
  fixture->agent = eta_test_agent_start ((const gchar * const *) env);
  g_assert_true (agent_sees_test_key (fixture->connection,
                                      fixture->token->fingerprint[ETA_TEST_KEY_RSA2048]));
}

/* ---- the deadline, in process ---- */

static void
count_notify (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  guint *count = user_data;
  (*count)++;
}

static void
flush_main_context (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static void
assert_deadline_near (EtaPolicy *policy, gint64 expected)
{
  gint64 deadline = eta_policy_get_lock_deadline (policy);

  g_assert_cmpint (deadline, >=, expected);
  g_assert_cmpint (deadline, <=, expected + 2);
}

static void
test_deadline (void)
{
  const gchar *providers[] = { ETA_TEST_SOFTHSM_MODULE, NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (EtaTokenManager) manager = NULL;
  g_autoptr (GSettings) settings = NULL;
  g_auto (GStrv) allowed = NULL;
  EtaPolicy *policy;
  gint64 login;
  guint notifications = 0;

  eta_test_token_get ();
  manager = eta_token_manager_new (providers, NULL, &error);
  g_assert_no_error (error);
  settings = g_settings_new (ETA_SETTINGS_SCHEMA);
  policy = eta_policy_new ();
  g_object_add_weak_pointer (G_OBJECT (policy), (gpointer *) &policy);
  g_signal_connect (policy, "notify::lock-deadline", G_CALLBACK (count_notify),
                    &notifications);
  eta_policy_start (policy, manager, NULL);

  /* The schema's defaults. */
  g_assert_cmpint (eta_policy_get_lock_deadline (policy), ==, 0);
  g_assert_true (eta_policy_get_unlock_early (policy));
  g_assert_true (eta_policy_get_allow_remember_pin (policy));
  allowed = eta_policy_dup_allowed_providers (policy);
  g_assert_nonnull (allowed);
  g_assert_cmpstr (allowed[0], ==, ETA_DEFAULT_PROVIDER);
  g_assert_null (allowed[1]);
  g_clear_pointer (&allowed, g_strfreev);

  /* until-removed: no deadline, logged in or not. */
  login = g_get_real_time () / G_USEC_PER_SEC;
  g_signal_emit_by_name (manager, "token-state-changed", "Token A", "1", "logged-in");
  g_assert_cmpint (eta_policy_get_lock_deadline (policy), ==, 0);

  g_settings_set_uint (settings, "idle-timeout", 600);
  g_settings_set_uint (settings, "maximum-lifetime", 60);
  g_settings_set_enum (settings, "login-lifetime", ETA_LOGIN_LIFETIME_IDLE_TIMEOUT);
  flush_main_context ();
  assert_deadline_near (policy, login + 600);
  g_assert_cmpuint (notifications, ==, 1);
  g_settings_set_enum (settings, "login-lifetime", ETA_LOGIN_LIFETIME_MAXIMUM_LIFETIME);
  flush_main_context ();
  assert_deadline_near (policy, login + 60);
  /* Whichever comes first. */
  g_settings_set_enum (settings, "login-lifetime", ETA_LOGIN_LIFETIME_IDLE_OR_MAXIMUM);
  flush_main_context ();
  assert_deadline_near (policy, login + 60);
  g_settings_set_uint (settings, "idle-timeout", 30);
  flush_main_context ();
  assert_deadline_near (policy, login + 30);

  /* A second token, or a use, does not stretch the maximum lifetime. */
  g_settings_set_uint (settings, "idle-timeout", 600);
  g_signal_emit_by_name (manager, "token-state-changed", "Token B", "2", "logged-in");
  g_signal_emit_by_name (manager, "unwrapped", "Token B", "2");
  flush_main_context ();
  assert_deadline_near (policy, login + 60);
  /* The login lasts while any token is logged in. */
  g_signal_emit_by_name (manager, "token-state-changed", "Token A", "1", "locked");
  assert_deadline_near (policy, login + 60);
  g_signal_emit_by_name (manager, "token-state-changed", "Token B", "2", "locked");
  g_assert_cmpint (eta_policy_get_lock_deadline (policy), ==, 0);

  /* The other keys, as they change. */
  g_settings_set_boolean (settings, "unlock-early", FALSE);
  g_settings_set_boolean (settings, "allow-remember-pin", FALSE);
  g_settings_set_strv (settings, "allowed-providers",
                       (const gchar * const[]) { "/opt/token/lib.so", NULL });
  flush_main_context ();
  g_assert_false (eta_policy_get_unlock_early (policy));
  g_assert_false (eta_policy_get_allow_remember_pin (policy));
  allowed = eta_policy_dup_allowed_providers (policy);
  g_assert_cmpstr (allowed[0], ==, "/opt/token/lib.so");
  g_clear_pointer (&allowed, g_strfreev);
  /* An empty list means the built-in default. */
  g_settings_set_strv (settings, "allowed-providers", NULL);
  g_assert_null (eta_policy_dup_allowed_providers (policy));

  for (const gchar *const *key = (const gchar * const[]) { "login-lifetime", "idle-timeout",
                                                           "maximum-lifetime", "unlock-early",
                                                           "allow-remember-pin",
                                                           "allowed-providers", NULL };
       *key != NULL; key++)
    g_settings_reset (settings, *key);

  /* Its lookup of logind (no system bus here) ends, then nothing holds it. */
  g_object_unref (policy);
  for (int i = 0; i < 500 && policy != NULL; i++)
    {
      flush_main_context ();
      g_usleep (10 * 1000);
    }
  g_assert_null (policy);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_set_prgname ("test-policy");
  /* Whatever session runs the tests, the agents see only what each test
   * sets up: no session id, and no system bus unless a test makes one. */
  g_unsetenv ("XDG_SESSION_ID");
  g_unsetenv ("ETA_TEST_PROVIDER");
  g_setenv ("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/eta-test-policy-system-bus",
            TRUE);

#define ADD(path, scenario, fn) \
  g_test_add (path, Fixture, &scenario, fixture_set_up, fn, fixture_tear_down)
  g_test_add_func ("/policy/deadline", test_deadline);
  ADD ("/policy/screen-saver", no_logind, test_screen_saver);
  ADD ("/policy/session-lock", session_c7, test_session_lock);
  ADD ("/policy/suspend", session_by_pid, test_suspend);
  ADD ("/policy/screen-lock-ignored", screen_lock_off, test_screen_lock_ignored);
  ADD ("/policy/idle-timeout", idle_2s, test_idle_timeout);
  ADD ("/policy/idle-timeout-kept-epoch-key", idle_2s, test_idle_timeout_kept_epoch_key);
  ADD ("/policy/maximum-lifetime", lifetime_3s, test_maximum_lifetime);
  ADD ("/policy/settings-change", no_logind, test_settings_change);
  ADD ("/policy/allowed-providers", softhsm_allowed, test_allowed_providers);
  return g_test_run ();
}

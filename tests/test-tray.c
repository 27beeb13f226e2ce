/* The tray icon of the real agent, as a StatusNotifierItem host sees it: the
 * test owns org.kde.StatusNotifierWatcher on its private bus, the agent runs
 * with its GTK prompts under Xvfb, the item's properties and signals are read
 * over D-Bus, its menu is clicked through com.canonical.dbusmenu, and the
 * agent's windows are read and worked through AT-SPI (tests/gui/). */
#include <string.h>
#include <sys/wait.h>

#include <glib/gstdio.h>
#include <gtk/gtk.h>

#include "eta-agent-client.h"
#include "eta-fault-control.h"
#include "eta-key-id.h"
#include "eta-kernel-player.h"
#include "eta-names.h"
#include "eta-test-agent.h"
#include "eta-test-cli.h"
#include "eta-test-gui.h"
#include "eta-test-keyring.h"
#include "eta-test-open-bus.h"
#include "eta-test-token.h"
#include "eta-test-unwrap.h"

#define KEYMOD_NAME "libecryptfs_key_mod_token_agent.so"

#define WATCHER_NAME "org.kde.StatusNotifierWatcher"
#define WATCHER_PATH "/StatusNotifierWatcher"
#define ITEM_INTERFACE "org.kde.StatusNotifierItem"
#define MENU_INTERFACE "com.canonical.dbusmenu"
#define PIN_DRIVER ETA_TEST_SOURCE_DIR "/gui/atspi-pin.py"
#define WINDOW_DRIVER ETA_TEST_SOURCE_DIR "/gui/atspi-window.py"
#define TOKENS_WINDOW "Tokens and Keys"
#define WAIT_MS 20000
#define UNWRAP_BUDGET_MS 30000
/* Where the mount table given to the agent says the RSA-2048 key is used. */
#define TEST_MOUNT "/home/eta-test/Private"

#define ICON_NO_TOKEN "ecryptfs-token-agent-no-token-symbolic"
#define ICON_LOCKED "ecryptfs-token-agent-locked-symbolic"
#define ICON_UNLOCKED "ecryptfs-token-agent-unlocked-symbolic"
#define ICON_ASKING "ecryptfs-token-agent-asking-symbolic"

/* GTestDBus unsets DISPLAY; the agent and the clipboard need Xvfb's. */
static gchar *display;

typedef struct
{
  /* Fault module settings when the agent starts. */
  const gchar *fault;
  /* The watcher appears only after the agent runs. */
  gboolean watcher_later;
  /* --terminal: the agent asks on its terminal, and has no tray icon. */
  gboolean terminal;
  /* Lines of the site policy (GSettings keyfile backend), or NULL. */
  const gchar *settings;
  /* A gnome-keyring-daemon on the test's bus. */
  gboolean keyring;
  /* The agent's mount table holds an eCryptfs mount of the RSA-2048 key. */
  gboolean mounts;
  /* The installed key module is a copy in a module directory of the
   * test's (module_dir), and the agent looks for ecryptfsd every second. */
  gboolean own_keymod;
} Scenario;

typedef struct
{
  const Scenario *scenario;
  const EtaTestToken *token;
  GTestDBus *bus;
  GDBusConnection *connection;
  EtaTestKeyring *keyring;
  gchar *config_home;
  gchar *mountinfo;
  gchar *module_dir;
  EtaTestAgent *agent;

  /* The watcher. */
  guint watcher_object;
  guint registrations;
  gchar *item_service;
  gchar *item_path;

  /* The item's and its menu's signals ("NewIcon", "NewStatus Active",
   * "LayoutUpdated", …) and the agent's TokenStateChanged states, in order. */
  GPtrArray *item_signals;
  guint item_subscription;
  guint menu_subscription;
  GPtrArray *states;
  guint state_subscription;
} Fixture;

/* ---- waiting ---- */

static void
fail (Fixture *fixture, const gchar *what)
{
  g_autofree gchar *terminal = eta_test_agent_dup_terminal_output (fixture->agent);
  g_error ("%s\nthe agent said:\n%s", what, terminal);
}

/* Runs the test's main loop (the watcher, the signals) until @done says so. */
#define WAIT_FOR(fixture, done, what) \
  G_STMT_START \
  { \
    gint64 wait_end_ = g_get_monotonic_time () + (gint64) WAIT_MS * 1000; \
    while (!(done)) \
      { \
        if (g_get_monotonic_time () > wait_end_) \
          fail ((fixture), "timed out waiting: " what); \
        while (g_main_context_iteration (NULL, FALSE)) \
          ; \
        g_usleep (20 * 1000); \
      } \
  } \
  G_STMT_END

static void
spin (guint ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) ms * 1000;

  while (g_get_monotonic_time () < end)
    {
      while (g_main_context_iteration (NULL, FALSE))
        ;
      g_usleep (20 * 1000);
    }
}

/* ---- the StatusNotifierWatcher ---- */

static const gchar watcher_xml[] =
  "<node>"
  " <interface name='org.kde.StatusNotifierWatcher'>"
  "  <method name='RegisterStatusNotifierItem'><arg name='service' type='s' direction='in'/></method>"
  "  <method name='RegisterStatusNotifierHost'><arg name='service' type='s' direction='in'/></method>"
  "  <property name='RegisteredStatusNotifierItems' type='as' access='read'/>"
  "  <property name='IsStatusNotifierHostRegistered' type='b' access='read'/>"
  "  <property name='ProtocolVersion' type='i' access='read'/>"
  "  <signal name='StatusNotifierItemRegistered'><arg type='s'/></signal>"
  "  <signal name='StatusNotifierItemUnregistered'><arg type='s'/></signal>"
  "  <signal name='StatusNotifierHostRegistered'/>"
  " </interface>"
  "</node>";

static void
on_watcher_call (GDBusConnection *connection, const gchar *sender, const gchar *path,
                 const gchar *interface, const gchar *method, GVariant *parameters,
                 GDBusMethodInvocation *invocation, gpointer user_data)
{
  Fixture *fixture = user_data;
  const gchar *service;

  g_variant_get (parameters, "(&s)", &service);
  if (g_str_equal (method, "RegisterStatusNotifierItem"))
    {
      /* Either form the specification allows: a bus name (the item at
       * /StatusNotifierItem) or an object path of the caller's. */
      g_free (fixture->item_service);
      g_free (fixture->item_path);
      fixture->item_service = g_strdup (service[0] == '/' ? sender : service);
      fixture->item_path = g_strdup (service[0] == '/' ? service : "/StatusNotifierItem");
      fixture->registrations++;
      g_dbus_connection_emit_signal (connection, NULL, WATCHER_PATH, interface,
                                     "StatusNotifierItemRegistered",
                                     g_variant_new ("(s)", service), NULL);
    }
  g_dbus_method_invocation_return_value (invocation, NULL);
}

static GVariant *
on_watcher_get (GDBusConnection *connection, const gchar *sender, const gchar *path,
                const gchar *interface, const gchar *property, GError **error,
                gpointer user_data)
{
  Fixture *fixture = user_data;

  if (g_str_equal (property, "RegisteredStatusNotifierItems"))
    {
      g_autofree gchar *item = fixture->item_service
                                 ? g_strconcat (fixture->item_service, fixture->item_path, NULL)
                                 : NULL;
      const gchar *items[] = { item, NULL };
      return g_variant_new_strv (items, item ? 1 : 0);
    }
  if (g_str_equal (property, "IsStatusNotifierHostRegistered"))
    return g_variant_new_boolean (TRUE);
  return g_variant_new_int32 (0);
}

static void
request_watcher_name (Fixture *fixture)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
      fixture->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
      "org.freedesktop.DBus", "RequestName", g_variant_new ("(su)", WATCHER_NAME, 4),
      G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  guint32 result;

  g_assert_no_error (error);
  g_variant_get (reply, "(u)", &result);
  g_assert_cmpuint (result, ==, 1);
}

static void
release_watcher_name (Fixture *fixture)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
      fixture->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
      "org.freedesktop.DBus", "ReleaseName", g_variant_new ("(s)", WATCHER_NAME),
      G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
}

static void
start_watcher (Fixture *fixture)
{
  static const GDBusInterfaceVTable vtable = { on_watcher_call, on_watcher_get, NULL };
  g_autoptr (GDBusNodeInfo) info = g_dbus_node_info_new_for_xml (watcher_xml, NULL);
  g_autoptr (GError) error = NULL;

  g_assert_nonnull (info);
  fixture->watcher_object = g_dbus_connection_register_object (
      fixture->connection, WATCHER_PATH, info->interfaces[0], &vtable, fixture, NULL, &error);
  g_assert_no_error (error);
  request_watcher_name (fixture);
}

static void
wait_for_registration (Fixture *fixture, guint count)
{
  WAIT_FOR (fixture, fixture->registrations >= count,
            "the agent never registered its StatusNotifierItem with the watcher");
}

/* ---- the item, read as a host reads it ---- */

static GVariant *
call (Fixture *fixture, const gchar *path, const gchar *interface, const gchar *method,
      GVariant *parameters, const GVariantType *reply_type, GError **error)
{
  return g_dbus_connection_call_sync (fixture->connection, fixture->item_service, path,
                                      interface, method, parameters, reply_type,
                                      G_DBUS_CALL_FLAGS_NONE, 10000, NULL, error);
}

static GVariant *
item_property (Fixture *fixture, const gchar *name)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = call (fixture, fixture->item_path,
                                     "org.freedesktop.DBus.Properties", "Get",
                                     g_variant_new ("(ss)", ITEM_INTERFACE, name),
                                     G_VARIANT_TYPE ("(v)"), &error);
  GVariant *value;

  g_assert_no_error (error);
  g_variant_get (reply, "(v)", &value);
  return value;
}

static gchar *
item_string (Fixture *fixture, const gchar *name)
{
  g_autoptr (GVariant) value = item_property (fixture, name);
  return g_variant_dup_string (value, NULL);
}

static gboolean
item_says (Fixture *fixture, const gchar *name, const gchar *expected)
{
  g_autofree gchar *value = item_string (fixture, name);
  return g_str_equal (value, expected);
}

/* The tooltip's title and description. */
static void
item_tooltip (Fixture *fixture, gchar **title, gchar **description)
{
  g_autoptr (GVariant) tooltip = item_property (fixture, "ToolTip");
  g_autoptr (GVariant) pixmaps = NULL;
  const gchar *icon;

  g_assert_cmpstr (g_variant_get_type_string (tooltip), ==, "(sa(iiay)ss)");
  g_variant_get (tooltip, "(&s@a(iiay)ss)", &icon, &pixmaps, title, description);
}

static gboolean
tooltip_says (Fixture *fixture, const gchar *text)
{
  g_autofree gchar *title = NULL;
  g_autofree gchar *description = NULL;

  item_tooltip (fixture, &title, &description);
  return strstr (title, text) != NULL || strstr (description, text) != NULL;
}

static void
on_item_signal (GDBusConnection *connection, const gchar *sender, const gchar *path,
                const gchar *interface, const gchar *name, GVariant *parameters,
                gpointer user_data)
{
  Fixture *fixture = user_data;

  if (g_str_equal (name, "NewStatus"))
    {
      const gchar *status;
      g_variant_get (parameters, "(&s)", &status);
      g_ptr_array_add (fixture->item_signals, g_strconcat (name, " ", status, NULL));
    }
  else
    g_ptr_array_add (fixture->item_signals, g_strdup (name));
}

static gboolean
item_signalled (Fixture *fixture, const gchar *signal)
{
  return g_ptr_array_find_with_equal_func (fixture->item_signals, signal, g_str_equal, NULL);
}

static gboolean
state_seen (Fixture *fixture, const gchar *state)
{
  return g_ptr_array_find_with_equal_func (fixture->states, state, g_str_equal, NULL);
}

/* Waits for the icon to show @icon, announced by NewIcon. */
static void
wait_for_icon (Fixture *fixture, const gchar *icon)
{
  WAIT_FOR (fixture, item_says (fixture, "IconName", icon), "the icon to change");
  WAIT_FOR (fixture, item_signalled (fixture, "NewIcon"), "NewIcon");
}

/* Waits for the status to become @status, announced by NewStatus. */
static void
wait_for_status (Fixture *fixture, const gchar *status)
{
  g_autofree gchar *new_status = g_strconcat ("NewStatus ", status, NULL);

  WAIT_FOR (fixture, item_says (fixture, "Status", status), "the status to change");
  WAIT_FOR (fixture, item_signalled (fixture, new_status), "NewStatus");
}

/* Forgets the signals seen so far. */
static void
clear_signals (Fixture *fixture)
{
  spin (100);
  g_ptr_array_set_size (fixture->item_signals, 0);
}

/* ---- the menu, clicked as a host clicks it ---- */

static gchar *
menu_path (Fixture *fixture)
{
  return item_string (fixture, "Menu");
}

static GVariant *
menu_layout (Fixture *fixture)
{
  g_autofree gchar *path = menu_path (fixture);
  const gchar *all[] = { NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = call (fixture, path, MENU_INTERFACE, "GetLayout",
                                     g_variant_new ("(ii^as)", 0, -1, all),
                                     G_VARIANT_TYPE ("(u(ia{sv}av))"), &error);
  GVariant *layout;

  g_assert_no_error (error);
  g_variant_get (reply, "(u@(ia{sv}av))", NULL, &layout);
  return layout;
}

/* Appends "label" (with " [disabled]", and indented by depth) for each item
 * under @node. */
static void
describe_menu (GVariant *node, guint depth, GString *out)
{
  g_autoptr (GVariant) properties = g_variant_get_child_value (node, 1);
  g_autoptr (GVariant) children = g_variant_get_child_value (node, 2);
  const gchar *label = NULL, *type = NULL;
  gboolean enabled = TRUE;

  if (depth > 0)
    {
      g_variant_lookup (properties, "label", "&s", &label);
      g_variant_lookup (properties, "type", "&s", &type);
      g_variant_lookup (properties, "enabled", "b", &enabled);
      for (guint i = 1; i < depth; i++)
        g_string_append (out, "  ");
      if (g_strcmp0 (type, "separator") == 0)
        g_string_append (out, "----\n");
      else
        {
          /* dbusmenu doubles a literal underscore. */
          g_auto (GStrv) parts = g_strsplit (label ? label : "", "__", -1);
          g_autofree gchar *text = g_strjoinv ("_", parts);
          g_string_append_printf (out, "%s%s\n", text, enabled ? "" : " [disabled]");
        }
    }
  for (gsize i = 0; i < g_variant_n_children (children); i++)
    {
      g_autoptr (GVariant) child = g_variant_get_child_value (children, i);
      g_autoptr (GVariant) inner = g_variant_get_variant (child);
      describe_menu (inner, depth + 1, out);
    }
}

static gchar *
menu_text (Fixture *fixture)
{
  g_autoptr (GVariant) layout = menu_layout (fixture);
  GString *out = g_string_new (NULL);

  describe_menu (layout, 0, out);
  return g_string_free (out, FALSE);
}

static gboolean
menu_says (Fixture *fixture, const gchar *line)
{
  g_autofree gchar *text = menu_text (fixture);
  g_autofree gchar *wanted = g_strconcat ("\n", line, "\n", NULL);
  g_autofree gchar *padded = g_strconcat ("\n", text, NULL);

  return strstr (padded, wanted) != NULL;
}

static gint
find_menu_item (GVariant *node, const gchar *label)
{
  g_autoptr (GVariant) properties = g_variant_get_child_value (node, 1);
  g_autoptr (GVariant) children = g_variant_get_child_value (node, 2);
  const gchar *own = NULL;
  gint32 id;

  g_variant_get_child (node, 0, "i", &id);
  if (g_variant_lookup (properties, "label", "&s", &own) && g_str_equal (own, label))
    return id;
  for (gsize i = 0; i < g_variant_n_children (children); i++)
    {
      g_autoptr (GVariant) child = g_variant_get_child_value (children, i);
      g_autoptr (GVariant) inner = g_variant_get_variant (child);
      gint found = find_menu_item (inner, label);
      if (found > 0)
        return found;
    }
  return -1;
}

static void
click (Fixture *fixture, const gchar *label)
{
  g_autoptr (GVariant) layout = menu_layout (fixture);
  g_autofree gchar *path = menu_path (fixture);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  gint id = find_menu_item (layout, label);

  if (id <= 0)
    {
      g_autofree gchar *text = menu_text (fixture);
      g_error ("the menu has no item \"%s\":\n%s", label, text);
    }
  reply = call (fixture, path, MENU_INTERFACE, "Event",
                g_variant_new ("(isvu)", id, "clicked", g_variant_new_int32 (0), 0), NULL,
                &error);
  g_assert_no_error (error);
}

/* ---- the person, through AT-SPI ---- */

static gint
run_driver (const gchar *script, const gchar * const *args, gchar **out)
{
  return eta_test_gui_run_driver (script, args, NULL, out);
}

/* What the tokens window shows, once it shows @text. */
static gchar *
wait_for_window_text (Fixture *fixture, const gchar *text)
{
  const gchar *describe[] = { "describe", TOKENS_WINDOW, NULL };
  gchar *shown = NULL;
  gint64 end = g_get_monotonic_time () + (gint64) WAIT_MS * 1000;

  while (g_get_monotonic_time () < end)
    {
      g_clear_pointer (&shown, g_free);
      if (run_driver (WINDOW_DRIVER, describe, &shown) == 0 && strstr (shown, text) != NULL)
        return shown;
      g_usleep (100 * 1000);
    }
  g_printerr ("the tokens window never showed \"%s\"; it shows:\n%s\n", text, shown);
  fail (fixture, "the tokens window");
  return NULL;
}

static guint
count_windows (void)
{
  const gchar *count[] = { "count", TOKENS_WINDOW, "--timeout", "0", NULL };
  g_autofree gchar *out = NULL;

  g_assert_cmpint (run_driver (WINDOW_DRIVER, count, &out), ==, 0);
  return (guint) g_ascii_strtoull (out, NULL, 10);
}

/* An unwrap that asks for the PIN, answered in the GTK dialog; the icon asks
 * for attention while the dialog is open. */
static void
unlock_with_dialog (Fixture *fixture)
{
  EtaTestUnwrap *job = eta_test_unwrap_start (UNWRAP_BUDGET_MS);
  const gchar *enter[] = { "enter", ETA_TEST_TOKEN_PIN, NULL };

  wait_for_icon (fixture, ICON_ASKING);
  wait_for_status (fixture, "NeedsAttention");
  g_assert_cmpint (run_driver (PIN_DRIVER, enter, NULL), ==, 0);
  eta_test_unwrap_finish (job, TRUE, NULL, NULL);
  WAIT_FOR (fixture, item_says (fixture, "IconName", ICON_UNLOCKED), "the unlocked icon");
}

/* ---- the fixture ---- */

static gchar *
write_mount_table (const EtaTestToken *token)
{
  g_autoptr (GBytes) spki = eta_test_token_load_public_key (ETA_TEST_KEY_RSA2048);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *contents = NULL;
  gchar sig[ETA_KEY_SIG_HEX_LEN + 1];
  gsize len;
  const guint8 *der = g_bytes_get_data (spki, &len);
  gchar *path = NULL;
  int fd;

  g_assert_cmpint (eta_key_sig_from_spki (der, len, sig), ==, 0);
  contents = g_strdup_printf (
      "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
      "61 22 0:52 /lower " TEST_MOUNT " rw,relatime shared:30 - ecryptfs "
      "/home/eta-test/.Private rw,ecryptfs_sig=%s,ecryptfs_cipher=aes,ecryptfs_key_bytes=32\n",
      sig);
  fd = g_file_open_tmp ("eta-tray-mountinfo-XXXXXX", &path, &error);
  g_assert_no_error (error);
  close (fd);
  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
  return path;
}

static void
start_agent (Fixture *fixture)
{
  g_autoptr (GPtrArray) env = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (env, g_strconcat ("DISPLAY=", display, NULL));
  g_ptr_array_add (env, g_strdup ("ECRYPTFS_TOKEN_AGENT_ICON_THEME_PATH=" ETA_TEST_ICON_DIR));
  if (fixture->config_home != NULL)
    {
      g_ptr_array_add (env, g_strdup ("GSETTINGS_BACKEND=keyfile"));
      g_ptr_array_add (env, g_strconcat ("XDG_CONFIG_HOME=", fixture->config_home, NULL));
    }
  if (fixture->mountinfo != NULL)
    g_ptr_array_add (env, g_strconcat (ETA_TEST_AGENT_MOUNTINFO_ENV "=", fixture->mountinfo,
                                       NULL));
  if (fixture->module_dir != NULL)
    {
      g_ptr_array_add (env, g_strdup ("ECRYPTFS_TOKEN_AGENT_ECRYPTFSD_LOOK_SECONDS=1"));
      g_ptr_array_add (env, g_strconcat ("ECRYPTFS_TOKEN_AGENT_KEYMOD_FILE=", fixture->module_dir,
                                         "/" KEYMOD_NAME, NULL));
    }
  g_ptr_array_add (env, NULL);
  fixture->agent = eta_test_agent_start_full ((const gchar * const *) env->pdata,
                                              fixture->scenario->terminal, NULL);
}

static void
remove_tree (const gchar *path)
{
  g_autofree gchar *command = g_strdup_printf ("rm -rf '%s'", path);
  g_assert_cmpint (system (command), ==, 0);
}

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  fixture->scenario = data;
  fixture->token = eta_test_token_get ();
  eta_fault_control_reset ();
  eta_fault_control_apply (fixture->scenario->fault);
  fixture->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fixture->bus);
  fixture->connection = eta_test_session_bus ();
  fixture->item_signals = g_ptr_array_new_with_free_func (g_free);
  fixture->item_subscription = g_dbus_connection_signal_subscribe (
      fixture->connection, NULL, ITEM_INTERFACE, NULL, NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
      on_item_signal, fixture, NULL);
  fixture->menu_subscription = g_dbus_connection_signal_subscribe (
      fixture->connection, NULL, MENU_INTERFACE, NULL, NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
      on_item_signal, fixture, NULL);
  fixture->states = g_ptr_array_new_with_free_func (g_free);
  fixture->state_subscription = eta_test_watch_token_states (fixture->connection,
                                                             fixture->states);
  if (fixture->scenario->keyring)
    fixture->keyring = eta_test_keyring_start ();
  if (fixture->scenario->settings != NULL)
    {
      fixture->config_home = g_dir_make_tmp ("eta-tray-XXXXXX", &error);
      g_assert_no_error (error);
      eta_test_write_agent_settings (fixture->config_home, fixture->scenario->settings);
    }
  if (fixture->scenario->mounts)
    fixture->mountinfo = write_mount_table (fixture->token);
  if (fixture->scenario->own_keymod)
    {
      fixture->module_dir = eta_kernel_player_make_module_dir (ETA_TEST_KEYMOD_PATH, &error);
      g_assert_no_error (error);
    }
  if (!fixture->scenario->watcher_later)
    start_watcher (fixture);
  start_agent (fixture);
  if (!fixture->scenario->watcher_later && !fixture->scenario->terminal)
    wait_for_registration (fixture, 1);
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  eta_agent_client_disconnect ();
  eta_test_agent_stop (fixture->agent);
  eta_test_keyring_stop (fixture->keyring);
  g_dbus_connection_signal_unsubscribe (fixture->connection, fixture->item_subscription);
  g_dbus_connection_signal_unsubscribe (fixture->connection, fixture->menu_subscription);
  g_dbus_connection_signal_unsubscribe (fixture->connection, fixture->state_subscription);
  if (fixture->watcher_object != 0)
    g_dbus_connection_unregister_object (fixture->connection, fixture->watcher_object);
  g_clear_object (&fixture->connection);
  g_test_dbus_down (fixture->bus);
  g_clear_object (&fixture->bus);
  g_ptr_array_unref (fixture->item_signals);
  g_ptr_array_unref (fixture->states);
  if (fixture->config_home != NULL)
    remove_tree (fixture->config_home);
  g_free (fixture->config_home);
  if (fixture->mountinfo != NULL)
    g_unlink (fixture->mountinfo);
  g_free (fixture->mountinfo);
  if (fixture->module_dir != NULL)
    eta_kernel_player_remove_module_dir (fixture->module_dir);
  g_free (fixture->module_dir);
  g_free (fixture->item_service);
  g_free (fixture->item_path);
}

/* ---- registration ---- */

static gchar *
bus_name_owner (Fixture *fixture, const gchar *name)
{
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
      fixture->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
      "org.freedesktop.DBus", "GetNameOwner", g_variant_new ("(s)", name),
      G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
  gchar *owner = NULL;

  if (reply != NULL)
    g_variant_get (reply, "(s)", &owner);
  return owner;
}

static void
test_registers (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *agent = bus_name_owner (fixture, ETA_BUS_NAME);
  g_autofree gchar *theme_path = item_string (fixture, "IconThemePath");
  g_autofree gchar *menu = menu_path (fixture);
  g_autoptr (GVariant) item_is_menu = item_property (fixture, "ItemIsMenu");
  const gchar *icons[] = { ICON_NO_TOKEN, ICON_LOCKED, ICON_UNLOCKED, ICON_ASKING };

  /* The item lives on the connection that serves the agent. */
  g_assert_cmpstr (fixture->item_service, ==, agent);
  g_assert_cmpstr (fixture->item_path, ==, "/StatusNotifierItem");
  g_assert_true (item_says (fixture, "Id", "ecryptfs-token-agent"));
  g_assert_true (item_says (fixture, "Category", "SystemServices"));
  g_assert_true (item_says (fixture, "Title", "eCryptfs Token Agent"));
  g_assert_true (item_says (fixture, "AttentionIconName", ICON_ASKING));
  g_assert_cmpstr (menu, ==, "/MenuBar");
  g_assert_false (g_variant_get_boolean (item_is_menu));
  /* Every state's icon is where IconThemePath says, in the hicolor theme. */
  for (gsize i = 0; i < G_N_ELEMENTS (icons); i++)
    {
      g_autofree gchar *file = g_strconcat (icons[i], ".svg", NULL);
      g_autofree gchar *path = g_build_filename (theme_path, "hicolor", "scalable", "status",
                                                 file, NULL);
      if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
        g_error ("icon %s is not at %s", icons[i], path);
    }

  /* The token is in and locked. */
  WAIT_FOR (fixture, item_says (fixture, "IconName", ICON_LOCKED), "the locked icon");
  g_assert_true (item_says (fixture, "Status", "Active"));
  WAIT_FOR (fixture, tooltip_says (fixture, ETA_TEST_TOKEN_LABEL), "the token in the tooltip");
  g_assert_true (tooltip_says (fixture, "Locked"));

  /* A watcher that restarts gets the item again. */
  release_watcher_name (fixture);
  spin (200);
  request_watcher_name (fixture);
  wait_for_registration (fixture, 2);
  g_assert_cmpstr (fixture->item_service, ==, agent);
}

static void
test_registers_when_watcher_appears (Fixture *fixture, gconstpointer data)
{
  /* No watcher: the agent serves without a tray. */
  spin (500);
  g_assert_cmpuint (fixture->registrations, ==, 0);
  start_watcher (fixture);
  wait_for_registration (fixture, 1);
  WAIT_FOR (fixture, item_says (fixture, "IconName", ICON_LOCKED), "the locked icon");
}

static void
test_no_tray_in_terminal_mode (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;

  spin (1000);
  g_assert_cmpuint (fixture->registrations, ==, 0);
  fixture->item_service = bus_name_owner (fixture, ETA_BUS_NAME);
  reply = call (fixture, "/StatusNotifierItem", "org.freedesktop.DBus.Properties", "Get",
                g_variant_new ("(ss)", ITEM_INTERFACE, "Status"), G_VARIANT_TYPE ("(v)"),
                &error);
  g_assert_null (reply);
  g_assert_nonnull (error);
}

/* ---- states ---- */

static void
test_asking_then_unlocked (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *title = NULL;
  g_autofree gchar *description = NULL;
  guint asking = 0, active = 0, icons = 0;

  WAIT_FOR (fixture, item_says (fixture, "IconName", ICON_LOCKED), "the locked icon");
  clear_signals (fixture);
  unlock_with_dialog (fixture);
  wait_for_icon (fixture, ICON_UNLOCKED);
  wait_for_status (fixture, "Active");
  WAIT_FOR (fixture, item_signalled (fixture, "NewToolTip"), "NewToolTip");
  /* The icon changed twice, and the status came back from NeedsAttention. */
  g_assert_true (g_ptr_array_find_with_equal_func (fixture->item_signals,
                                                   "NewStatus NeedsAttention", g_str_equal,
                                                   &asking));
  g_assert_true (g_ptr_array_find_with_equal_func (fixture->item_signals, "NewStatus Active",
                                                   g_str_equal, &active));
  g_assert_cmpuint (asking, <, active);
  for (guint i = 0; i < fixture->item_signals->len; i++)
    icons += g_str_equal (g_ptr_array_index (fixture->item_signals, i), "NewIcon");
  g_assert_cmpuint (icons, >=, 2);
  item_tooltip (fixture, &title, &description);
  g_assert_cmpstr (title, ==, ETA_TEST_TOKEN_LABEL);
  g_assert_cmpstr (description, ==, "Unlocked until the token is removed");
  WAIT_FOR (fixture, menu_says (fixture, ETA_TEST_TOKEN_LABEL " — unlocked [disabled]"),
            "the token unlocked in the menu");
  g_assert_true (menu_says (fixture, "Lock Now"));
}

static void
test_tooltip_says_when_the_unlock_ends (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) tokens = NULL;
  g_autoptr (GVariant) token = NULL;
  g_autoptr (GDateTime) deadline = NULL;
  g_autofree gchar *until = NULL;
  g_autofree gchar *expected = NULL;
  gint64 expires = 0;

  unlock_with_dialog (fixture);
  /* The agent's own word for when the login ends. */
  reply = g_dbus_connection_call_sync (fixture->connection, ETA_BUS_NAME, ETA_OBJECT_PATH,
                                       ETA_INTERFACE, "ListTokens", NULL,
                                       G_VARIANT_TYPE ("(aa{sv})"), G_DBUS_CALL_FLAGS_NONE,
                                       10000, NULL, NULL);
  g_assert_nonnull (reply);
  g_variant_get_child (reply, 0, "@aa{sv}", &tokens);
  g_assert_cmpuint (g_variant_n_children (tokens), ==, 1);
  token = g_variant_get_child_value (tokens, 0);
  g_assert_true (g_variant_lookup (token, "login-expires", "x", &expires));
  g_assert_cmpint (expires, >, g_get_real_time () / G_USEC_PER_SEC);
  deadline = g_date_time_new_from_unix_local (expires);
  until = g_date_time_format (deadline, "%H:%M");
  expected = g_strconcat ("Unlocked until ", until, NULL);
  WAIT_FOR (fixture, tooltip_says (fixture, expected), "the end of the unlock in the tooltip");
}

static void
test_insert_and_remove (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *title = NULL;
  g_autofree gchar *description = NULL;

  WAIT_FOR (fixture, item_says (fixture, "IconName", ICON_NO_TOKEN), "the no-token icon");
  g_assert_true (item_says (fixture, "Status", "Passive"));
  item_tooltip (fixture, &title, &description);
  g_assert_cmpstr (title, ==, "No token inserted");
  g_assert_true (menu_says (fixture, "No token inserted [disabled]"));

  clear_signals (fixture);
  eta_fault_control_set ("present", "true");
  wait_for_icon (fixture, ICON_LOCKED);
  wait_for_status (fixture, "Active");
  WAIT_FOR (fixture, tooltip_says (fixture, ETA_TEST_TOKEN_LABEL), "the token in the tooltip");
  WAIT_FOR (fixture, menu_says (fixture, ETA_TEST_TOKEN_LABEL " — locked [disabled]"),
            "the token in the menu");

  clear_signals (fixture);
  eta_fault_control_set ("present", "false");
  wait_for_icon (fixture, ICON_NO_TOKEN);
  wait_for_status (fixture, "Passive");
  WAIT_FOR (fixture, menu_says (fixture, "No token inserted [disabled]"),
            "the token gone from the menu");
}

/* ---- the menu ---- */

static void
test_menu_lock_now (Fixture *fixture, gconstpointer data)
{
  unlock_with_dialog (fixture);
  WAIT_FOR (fixture, state_seen (fixture, "logged-in"), "TokenStateChanged logged-in");
  g_ptr_array_set_size (fixture->states, 0);
  clear_signals (fixture);
  click (fixture, "Lock Now");
  WAIT_FOR (fixture, state_seen (fixture, "locked"), "TokenStateChanged locked");
  wait_for_icon (fixture, ICON_LOCKED);
  g_assert_true (item_says (fixture, "Status", "Active"));
  WAIT_FOR (fixture, item_signalled (fixture, "NewToolTip"), "NewToolTip");
  /* The same items with other labels: hosts are told what changed. */
  WAIT_FOR (fixture, item_signalled (fixture, "ItemsPropertiesUpdated"),
            "ItemsPropertiesUpdated");
  WAIT_FOR (fixture, menu_says (fixture, ETA_TEST_TOKEN_LABEL " — locked [disabled]"),
            "the token locked in the menu");
  /* Nothing left to lock. */
  g_assert_true (menu_says (fixture, "Lock Now [disabled]"));
}

static void
test_menu_forget_pins (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GHashTable) stored = NULL;
  gint64 end;

  eta_test_keyring_store_pin (ETA_TEST_TOKEN_PIN);
  stored = eta_test_keyring_lookup_pin ();
  g_assert_nonnull (stored);
  click (fixture, "Forget Remembered PINs");
  end = g_get_monotonic_time () + (gint64) WAIT_MS * 1000;
  for (;;)
    {
      g_autoptr (GHashTable) left = eta_test_keyring_lookup_pin ();
      if (left == NULL)
        break;
      if (g_get_monotonic_time () > end)
        fail (fixture, "the remembered PIN is still in the keyring");
      g_usleep (200 * 1000);
    }
}

static gchar *
cli_mount_options (const gchar *fingerprint)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *data_home = g_dir_make_tmp ("eta-tray-cli-XXXXXX", &error);
  const gchar *args[] = { "mount-options", fingerprint, NULL };
  EtaTestCliResult result;
  gchar *options;

  g_assert_no_error (error);
  result = eta_test_run_cli (data_home, args);
  g_assert_cmpint (result.exit_code, ==, 0);
  options = g_strdup (g_strstrip (result.out));
  eta_test_cli_result_clear (&result);
  remove_tree (data_home);
  return options;
}

static void
on_clipboard_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  gchar **text = user_data;
  g_autoptr (GError) error = NULL;

  *text = gdk_clipboard_read_text_finish (GDK_CLIPBOARD (source), result, &error);
  g_assert_no_error (error);
}

/* The X clipboard, read by this process as any other program would. */
static gchar *
read_clipboard (Fixture *fixture)
{
  GdkClipboard *clipboard = gdk_display_get_clipboard (gdk_display_get_default ());
  gchar *text = NULL;

  gdk_clipboard_read_text_async (clipboard, NULL, on_clipboard_read, &text);
  WAIT_FOR (fixture, text != NULL, "the clipboard's text");
  return text;
}

static void
test_menu_tokens_window (Fixture *fixture, gconstpointer data)
{
  const gchar *fpr = fixture->token->fingerprint[ETA_TEST_KEY_RSA2048];
  const gchar *other = fixture->token->fingerprint[ETA_TEST_KEY_RSA3072];
  g_autofree gchar *button = g_strdup_printf (
      "Copies the mount options for the key “%s” to the clipboard",
      fixture->token->label[ETA_TEST_KEY_RSA2048]);
  const gchar *press[] = { "press", TOKENS_WINDOW, "Copy Mount Options", "--description",
                           button, NULL };
  g_autofree gchar *fpr_line = g_strconcat ("label: ", fpr, "\n", NULL);
  g_autofree gchar *shown = NULL;
  g_autofree gchar *after = NULL;
  g_autofree gchar *expected = NULL;
  g_autofree gchar *copied = NULL;

  g_assert_cmpuint (count_windows (), ==, 0);
  click (fixture, "Tokens and Keys…");
  shown = wait_for_window_text (fixture, fpr_line);
  g_assert_nonnull (strstr (shown, "label: " ETA_TEST_TOKEN_LABEL "\n"));
  g_assert_nonnull (strstr (shown, fixture->token->label[ETA_TEST_KEY_RSA2048]));
  g_assert_nonnull (strstr (shown, other));
  /* The mount of the RSA-2048 key, under its fingerprint; none for the other. */
  g_assert_nonnull (strstr (strstr (shown, fpr_line), "label: " TEST_MOUNT "\n"));
  g_assert_nonnull (strstr (strstr (shown, other), "No eCryptfs mount uses this key"));
  g_assert_nonnull (strstr (strstr (shown, fpr_line), button));

  /* The button's options are what ecryptfs-token mount-options prints. */
  g_assert_cmpint (run_driver (WINDOW_DRIVER, press, NULL), ==, 0);
  after = wait_for_window_text (fixture, "are on the clipboard");
  expected = cli_mount_options (fpr);
  g_assert_true (g_str_has_prefix (expected, "key=token-agent:fingerprint="));
  copied = read_clipboard (fixture);
  g_assert_cmpstr (copied, ==, expected);
}

static void
test_activate_opens_window (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autofree gchar *shown = NULL;

  g_assert_cmpuint (count_windows (), ==, 0);
  reply = call (fixture, fixture->item_path, ITEM_INTERFACE, "Activate",
                g_variant_new ("(ii)", 10, 10), NULL, &error);
  g_assert_no_error (error);
  shown = wait_for_window_text (fixture, fixture->token->fingerprint[ETA_TEST_KEY_RSA2048]);
  g_assert_cmpuint (count_windows (), ==, 1);
  /* Again: the same window comes forward, no second one. */
  g_clear_pointer (&reply, g_variant_unref);
  reply = call (fixture, fixture->item_path, ITEM_INTERFACE, "Activate",
                g_variant_new ("(ii)", 10, 10), NULL, &error);
  g_assert_no_error (error);
  spin (500);
  g_assert_cmpuint (count_windows (), ==, 1);
}

static void
test_menu_recent_activity (Fixture *fixture, gconstpointer data)
{
  const gchar *key = fixture->token->label[ETA_TEST_KEY_RSA2048];
  g_autofree gchar *entry = g_strdup_printf ("“%s” for %s — " TEST_MOUNT " [disabled]", key,
                                             g_get_prgname ());
  g_autofree gchar *text = NULL;
  EtaTestUnwrap *job;
  guint entries = 0;

  g_assert_true (menu_says (fixture, "Recent Activity"));
  g_assert_true (menu_says (fixture, "  No encrypted file opened yet [disabled]"));
  clear_signals (fixture);
  unlock_with_dialog (fixture);
  /* A second unwrap, with the token logged in: no prompt. */
  job = eta_test_unwrap_start (UNWRAP_BUDGET_MS);
  eta_test_unwrap_finish (job, TRUE, NULL, NULL);
  WAIT_FOR (fixture, ({
              g_autofree gchar *now = menu_text (fixture);
              entries = 0;
              for (const gchar *p = strstr (now, entry); p != NULL; p = strstr (p + 1, entry))
                entries++;
              entries == 2;
            }),
            "two unwraps under Recent Activity");
  text = menu_text (fixture);
  g_assert_null (strstr (text, "No encrypted file opened yet"));
  /* New items: hosts are told to read the layout again. */
  WAIT_FOR (fixture, item_signalled (fixture, "LayoutUpdated"), "LayoutUpdated");
}

static void
test_menu_quit (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *agent = bus_name_owner (fixture, ETA_BUS_NAME);
  siginfo_t info = { 0 };

  g_assert_nonnull (agent);
  click (fixture, "Quit");
  WAIT_FOR (fixture, ({
              g_autofree gchar *owner = bus_name_owner (fixture, ETA_BUS_NAME);
              owner == NULL;
            }),
            "the agent to release its bus name");
  WAIT_FOR (fixture, ({
              g_autofree gchar *still = bus_name_owner (fixture, agent);
              still == NULL;
            }),
            "the agent's connection to close");
  /* It ended by itself, cleanly (left for the teardown to reap). */
  WAIT_FOR (fixture,
            waitid (P_PID, eta_test_agent_get_pid (fixture->agent), &info,
                    WEXITED | WNOHANG | WNOWAIT) == 0
              && info.si_pid != 0,
            "the agent to exit");
  if (info.si_code != CLD_EXITED || info.si_status != 0)
    {
      g_autofree gchar *what = g_strdup_printf ("the agent did not exit cleanly: %s %d",
                                                info.si_code == CLD_EXITED ? "exit status"
                                                                           : "signal",
                                                info.si_status);
      fail (fixture, what);
    }
}

/* The panel runs as the person; nobody else on the bus may drive the menu
 * (Quit, Lock Now, Forget) or read it (Recent Activity), nor the item. */
static void
test_other_uid_refused (void)
{
  g_autofree gchar *display_env = g_strconcat ("DISPLAY=", display, NULL);
  const gchar *env[] = { display_env, NULL };
  const gchar *layout_args[] = { "0", "1", "[]", NULL };
  const gchar *activate_args[] = { "0", "0", NULL };
  EtaTestOpenBus *bus = eta_test_open_bus_start ();
  EtaTestAgent *agent = eta_test_agent_start_full (env, FALSE, NULL);
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;

  g_assert_false (eta_test_open_bus_call (bus, TRUE, ETA_BUS_NAME, "/MenuBar",
                                          MENU_INTERFACE ".GetLayout", layout_args, &out, &err));
  if (strstr (err, "AccessDenied") == NULL)
    g_error ("GetLayout as nobody: %s", err);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_false (eta_test_open_bus_call (bus, TRUE, ETA_BUS_NAME, "/StatusNotifierItem",
                                          ITEM_INTERFACE ".Activate", activate_args, &out,
                                          &err));
  g_assert_nonnull (strstr (err, "AccessDenied"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  /* The person's own panel is served: the menu has its Quit item. */
  g_assert_true (eta_test_open_bus_call (bus, FALSE, ETA_BUS_NAME, "/MenuBar",
                                         MENU_INTERFACE ".GetLayout", layout_args, &out, &err));
  g_assert_nonnull (strstr (out, "Quit"));

  eta_test_agent_stop (agent);
  eta_test_open_bus_stop (bus);
}

/* ---- ecryptfsd ---- */

static gboolean
menu_mentions (Fixture *fixture, const gchar *text)
{
  g_autofree gchar *menu = menu_text (fixture);

  return strstr (menu, text) != NULL;
}

/* With an eCryptfs mount, the tooltip and the menu say first when no
 * ecryptfsd serves the files, or one with an older key module than the
 * installed one, and with what command it is fixed; the real ecryptfsd
 * (harness B) comes and goes. (Without a mount nothing is said: the other
 * tests see exact tooltips with no ecryptfsd running.) */
static void
test_ecryptfsd_state (Fixture *fixture, gconstpointer data)
{
  g_autoptr (EtaKernelPlayer) player = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (system ("! pgrep -x -r D,R,S,T,t -u \"$(id -u)\" ecryptfsd"), ==, 0);
  WAIT_FOR (fixture, tooltip_says (fixture, "ecryptfsd is not running"),
            "no ecryptfsd in the tooltip");
  g_assert_true (tooltip_says (fixture, "systemctl --user start ecryptfs-token-ecryptfsd.service"));
  g_assert_true (menu_mentions (fixture, "ecryptfsd is not running"));

  player = eta_kernel_player_start (fixture->module_dir, NULL, &error);
  g_assert_no_error (error);
  WAIT_FOR (fixture, !tooltip_says (fixture, "ecryptfsd"), "ecryptfsd running: nothing said");
  g_assert_false (menu_mentions (fixture, "ecryptfsd"));

  g_assert_true (eta_kernel_player_upgrade_module (fixture->module_dir, ETA_TEST_KEYMOD_PATH,
                                                   &error));
  g_assert_no_error (error);
  WAIT_FOR (fixture, tooltip_says (fixture, "older token key module"),
            "the old module in the tooltip");
  g_assert_true (tooltip_says (fixture,
                               "systemctl --user restart ecryptfs-token-ecryptfsd.service"));
  g_assert_true (menu_mentions (fixture, "older token key module"));

  /* It ends: the pidfd says so at once. */
  g_clear_pointer (&player, eta_kernel_player_stop);
  WAIT_FOR (fixture, tooltip_says (fixture, "ecryptfsd is not running"),
            "no ecryptfsd again in the tooltip");
}

int
main (int argc, char **argv)
{
  static const Scenario plain = { 0 };
  static const Scenario watcher_later = { .watcher_later = TRUE };
  static const Scenario terminal = { .terminal = TRUE };
  static const Scenario idle_timeout = {
    .settings = "login-lifetime='idle-timeout'\nidle-timeout=uint32 3600",
  };
  /* No early unlock: the token's insertion alone must not prompt. */
  static const Scenario token_out = { .fault = "present=false",
                                      .settings = "unlock-early=false" };
  static const Scenario keyring = { .keyring = TRUE };
  /* The key is in use: without this, the agent would ask for the PIN as
   * soon as it starts. */
  static const Scenario mounted = { .mounts = TRUE, .settings = "unlock-early=false" };
  static const Scenario own_keymod = { .own_keymod = TRUE, .mounts = TRUE,
                                       .settings = "unlock-early=false" };

  g_test_init (&argc, &argv, NULL);
  display = g_strdup (g_getenv ("DISPLAY"));
  if (display == NULL)
    g_error ("test-tray needs a display (tests/CMakeLists.txt runs it under Xvfb)");
  eta_test_gui_use_accessibility_bus ();
  eta_test_token_get ();
  eta_fault_control_setup ();
  g_setenv ("ETA_TEST_PROVIDER", eta_fault_control_get_module_path (), TRUE);
  /* For reading the clipboard. */
  if (!gtk_init_check ())
    g_error ("cannot open the display %s", display);
#define ADD(path, scenario, fn) \
  g_test_add (path, Fixture, &scenario, fixture_set_up, fn, fixture_tear_down)
  ADD ("/tray/registers", plain, test_registers);
  ADD ("/tray/registers-when-watcher-appears", watcher_later,
       test_registers_when_watcher_appears);
  ADD ("/tray/none-in-terminal-mode", terminal, test_no_tray_in_terminal_mode);
  ADD ("/tray/asking-then-unlocked", plain, test_asking_then_unlocked);
  ADD ("/tray/tooltip-unlock-ends", idle_timeout, test_tooltip_says_when_the_unlock_ends);
  ADD ("/tray/insert-and-remove", token_out, test_insert_and_remove);
  ADD ("/tray/menu/lock-now", plain, test_menu_lock_now);
  ADD ("/tray/menu/forget-pins", keyring, test_menu_forget_pins);
  ADD ("/tray/menu/tokens-window", mounted, test_menu_tokens_window);
  ADD ("/tray/activate-opens-window", plain, test_activate_opens_window);
  ADD ("/tray/menu/recent-activity", mounted, test_menu_recent_activity);
  ADD ("/tray/menu/quit", plain, test_menu_quit);
  ADD ("/tray/ecryptfsd-state", own_keymod, test_ecryptfsd_state);
  g_test_add_func ("/tray/other-uid-refused", test_other_uid_refused);
  return g_test_run ();
}

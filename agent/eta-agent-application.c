/* See eta-agent-application.h. */
#define G_LOG_DOMAIN "eta-agent"

#include "config.h"

#include "eta-agent-application.h"

#include <unistd.h>

#include <glib/gi18n.h>
#include <gtk/gtk.h>

#include "eta-agent-service.h"
#include "eta-ecryptfsd-watch.h"
#include "eta-caller-check.h"
#include "eta-early-unlock.h"
#include "eta-gtk-prompter.h"
#include "eta-names.h"
#include "eta-policy.h"
#include "eta-terminal-prompter.h"
#include "eta-token-manager.h"
#include "eta-tray.h"

struct _EtaAgentApplication
{
  GApplication parent_instance;

  GStrv providers;
  gboolean terminal;
  EtaTokenManager *manager;
  EtaPolicy *policy;
  EtaEarlyUnlock *early_unlock;
  EtaAgentService *service;
  EtaTray *tray;
  EtaEcryptfsdWatch *ecryptfsd;
  gboolean held;
  GDBusConnection *session_bus;
};

G_DEFINE_FINAL_TYPE (EtaAgentApplication, eta_agent_application, G_TYPE_APPLICATION)

/* GApplication exports these on the agent's object path. The agent has no
 * actions and opens nothing, and a second start is settled before
 * registering (below), so nobody needs them: refused for every caller. */
static const gchar * const gapplication_interfaces[] = {
  "org.gtk.Application",
  "org.gtk.Actions",
  "org.freedesktop.Application",
  NULL,
};

/* Before registering (and before any PKCS#11 module is loaded): who holds
 * the bus name already. Another user's process must not be mistaken for a
 * running agent, nor silently make this one exit. Returns -1 to go on, or
 * the exit status. */
static gint
eta_agent_application_claim_bus (EtaAgentApplication *self)
{
  g_autoptr (GError) error = NULL;
  GDBusConnection *connection;
  g_autoptr (GVariant) owner_reply = NULL;
  g_autoptr (GVariant) uid_reply = NULL;
  g_autoptr (GVariant) pid_reply = NULL;
  const gchar *owner;
  guint32 uid = (guint32) -1, pid = 0;

  /* The shared session bus GApplication registers on: kept, since it is a
   * singleton only for as long as someone holds it, and the filter must be
   * on that very connection. Without a bus, GApplication's own registration
   * says why. */
  self->session_bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  connection = self->session_bus;
  if (connection == NULL)
    return -1;
  eta_caller_check_refuse_interfaces (connection, gapplication_interfaces);

  owner_reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus",
                                             "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                             "GetNameOwner", g_variant_new ("(s)", ETA_BUS_NAME),
                                             G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE,
                                             5000, NULL, NULL);
  if (owner_reply == NULL)
    return -1;
  g_variant_get (owner_reply, "(&s)", &owner);
  uid_reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus",
                                           "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                           "GetConnectionUnixUser", g_variant_new ("(s)", owner),
                                           G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, 5000,
                                           NULL, NULL);
  pid_reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus",
                                           "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                           "GetConnectionUnixProcessID",
                                           g_variant_new ("(s)", owner), G_VARIANT_TYPE ("(u)"),
                                           G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
  if (uid_reply != NULL)
    g_variant_get (uid_reply, "(u)", &uid);
  if (pid_reply != NULL)
    g_variant_get (pid_reply, "(u)", &pid);
  if (uid == (guint32) geteuid ())
    {
      g_printerr (_("ecryptfs-token-agent: already running in this session (pid %u)\n"), pid);
      return 0;
    }
  g_printerr (_("ecryptfs-token-agent: the bus name %s is held by %s (pid %u, uid %d), not by "
                "this user (uid %u): refusing to start\n"),
              ETA_BUS_NAME, owner, pid, uid == (guint32) -1 ? -1 : (gint) uid,
              (guint) geteuid ());
  return 1;
}

static gint
eta_agent_application_handle_local_options (GApplication *application, GVariantDict *options)
{
  EtaAgentApplication *self = ETA_AGENT_APPLICATION (application);

  if (g_variant_dict_contains (options, "version"))
    {
      g_print ("ecryptfs-token-agent %s\n", ETA_VERSION);
      return 0;
    }
  g_variant_dict_lookup (options, "provider", "^aay", &self->providers);
  self->terminal = g_variant_dict_contains (options, "terminal");
  return eta_agent_application_claim_bus (self);
}

/* Dialogs on the session's display; the terminal when asked to, or when
 * there is no display (SSH, console). */
static EtaPrompter *
make_prompter (gboolean terminal)
{
  g_autoptr (GError) error = NULL;
  EtaTerminalPrompter *prompter;

  if (!terminal && gtk_init_check ())
    return ETA_PROMPTER (eta_gtk_prompter_new ());
  prompter = eta_terminal_prompter_new (&error);
  if (prompter == NULL)
    g_warning ("no display, and %s; unwraps that need a PIN will fail", error->message);
  return prompter ? ETA_PROMPTER (prompter) : NULL;
}

/* The tray icon, for an agent that shows its prompts on a display. It is no
 * part of serving: failing to export it only loses the icon. */
static void
start_tray (EtaAgentApplication *self, EtaPrompter *prompter, GDBusConnection *connection)
{
  g_autoptr (GError) error = NULL;

  if (!ETA_IS_GTK_PROMPTER (prompter))
    return;
  self->tray = eta_tray_new (self->manager, self->policy,
                             eta_agent_service_get_activity_log (self->service),
                             ETA_GTK_PROMPTER (prompter), self->ecryptfsd);
  if (!eta_tray_export (self->tray, connection, &error))
    {
      g_warning ("no tray icon: %s", error->message);
      g_clear_object (&self->tray);
    }
}

static gboolean
eta_agent_application_dbus_register (GApplication *application, GDBusConnection *connection,
                                     const gchar *object_path, GError **error)
{
  EtaAgentApplication *self = ETA_AGENT_APPLICATION (application);
  g_autoptr (EtaPrompter) prompter = NULL;

  if (!G_APPLICATION_CLASS (eta_agent_application_parent_class)
         ->dbus_register (application, connection, object_path, error))
    return FALSE;

  prompter = make_prompter (self->terminal);
  self->policy = eta_policy_new ();
  /* --provider is the user's own choice for this run (testing a module, say)
   * and replaces the site's allowed-providers list rather than being checked
   * against it: the list keeps the agent from loading what the site did not
   * choose by default, it is no sandbox against the user. */
  if (self->providers == NULL)
    self->providers = eta_policy_dup_allowed_providers (self->policy);
  self->manager = eta_token_manager_new ((const gchar * const *) self->providers, prompter,
                                         error);
  if (self->manager == NULL)
    return FALSE;
  eta_policy_start (self->policy, self->manager, connection);
  self->early_unlock = eta_early_unlock_new (self->manager, self->policy);
  g_object_bind_property (self->policy, "allow-remember-pin", self->manager,
                          "allow-remember-pin", G_BINDING_SYNC_CREATE);
  self->service = eta_agent_service_new (self->manager, self->policy);
  /* In both modes: without a systemd user manager it starts ecryptfsd. */
  self->ecryptfsd = eta_ecryptfsd_watch_new ();
  start_tray (self, prompter, connection);
  return eta_agent_service_export (self->service, connection, ETA_OBJECT_PATH, error);
}

static void
eta_agent_application_dbus_unregister (GApplication *application,
                                       GDBusConnection *connection,
                                       const gchar *object_path)
{
  EtaAgentApplication *self = ETA_AGENT_APPLICATION (application);

  if (self->tray != NULL)
    eta_tray_unexport (self->tray);
  if (self->service != NULL)
    eta_agent_service_unexport (self->service);
  G_APPLICATION_CLASS (eta_agent_application_parent_class)
    ->dbus_unregister (application, connection, object_path);
}

static void
eta_agent_application_activate (GApplication *application)
{
  EtaAgentApplication *self = ETA_AGENT_APPLICATION (application);

  /* A background agent: stay until the session ends, not until idle. */
  if (!self->held)
    {
      g_application_hold (application);
      self->held = TRUE;
      g_message ("serving %s on the session bus", ETA_BUS_NAME);
    }
}

static void
eta_agent_application_finalize (GObject *object)
{
  EtaAgentApplication *self = ETA_AGENT_APPLICATION (object);

  g_clear_object (&self->tray);
  g_clear_object (&self->ecryptfsd);
  g_clear_object (&self->service);
  g_clear_object (&self->early_unlock);
  g_clear_object (&self->policy);
  g_clear_object (&self->manager);
  g_clear_object (&self->session_bus);
  g_strfreev (self->providers);
  G_OBJECT_CLASS (eta_agent_application_parent_class)->finalize (object);
}

static void
eta_agent_application_class_init (EtaAgentApplicationClass *klass)
{
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = eta_agent_application_finalize;
  app_class->handle_local_options = eta_agent_application_handle_local_options;
  app_class->dbus_register = eta_agent_application_dbus_register;
  app_class->dbus_unregister = eta_agent_application_dbus_unregister;
  app_class->activate = eta_agent_application_activate;
}

static const GOptionEntry option_entries[] = {
  { "provider", 'p', 0, G_OPTION_ARG_FILENAME_ARRAY, NULL,
    N_("Load this PKCS#11 module (repeatable; replaces the default p11-kit proxy)"), N_("PATH") },
  { "terminal", 't', 0, G_OPTION_ARG_NONE, NULL,
    N_("Ask for PINs on this terminal even when a display is available"), NULL },
  { "version", 0, 0, G_OPTION_ARG_NONE, NULL, N_("Print the version and exit"), NULL },
  { NULL },
};

static void
eta_agent_application_init (EtaAgentApplication *self)
{
  g_application_add_main_option_entries (G_APPLICATION (self), option_entries);
  g_application_set_option_context_summary (
      G_APPLICATION (self),
      _("Unwraps eCryptfs file keys with a key on a smartcard or USB token, asking for its PIN."));
}

EtaAgentApplication *
eta_agent_application_new (void)
{
  return g_object_new (ETA_TYPE_AGENT_APPLICATION,
                       "application-id", ETA_BUS_NAME,
                       "flags", G_APPLICATION_DEFAULT_FLAGS,
                       NULL);
}

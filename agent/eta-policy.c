/* See eta-policy.h. */
#define G_LOG_DOMAIN "eta-policy"

#include "config.h"

#include "eta-policy.h"

#include <unistd.h>

#include <gio/gunixfdlist.h>

#define LOGIND_NAME "org.freedesktop.login1"
#define LOGIND_PATH "/org/freedesktop/login1"
#define LOGIND_MANAGER LOGIND_NAME ".Manager"
#define LOGIND_SESSION LOGIND_NAME ".Session"
#define LOGIND_USER LOGIND_NAME ".User"
#define LOGIND_CALL_TIMEOUT_MS 5000

/* GNOME's screen saver, and the freedesktop one (KDE, Xfce, LXQt...). */
static const gchar *const screen_saver_names[] = { "org.gnome.ScreenSaver",
                                                   "org.freedesktop.ScreenSaver" };

struct _EtaPolicy
{
  GObject parent_instance;

  /* The settings; NULL when the schema is not installed, and then the
   * fields keep the schema's defaults. */
  GSettings *settings;
  EtaLoginLifetime lifetime;
  guint idle_timeout;        /* seconds */
  guint maximum_lifetime;    /* seconds */
  gboolean lock_on_screen_lock;
  gboolean lock_before_suspend;
  gboolean unlock_early;
  gboolean allow_remember_pin;

  EtaTokenManager *manager;
  gulong state_handler;
  gulong unwrapped_handler;

  /* The login, as the manager's signals tell it. Wall-clock times, so that
   * time spent suspended counts and the deadline can be shown as a date. */
  GHashTable *logged_in;     /* "label\nserial" of the tokens logged in */
  gint64 login_time;         /* µs, first of those logins; 0 when none */
  gint64 last_use;           /* µs, last login or unwrap */
  gint64 lock_deadline;      /* seconds, as last announced */
  guint timer;
  guint pending_locks;

  GDBusConnection *session_bus;
  guint screen_saver_subscriptions[G_N_ELEMENTS (screen_saver_names)];

  /* systemd-logind, on the system bus; all unset when it is out of reach. */
  GCancellable *cancellable;
  GDBusConnection *system_bus;
  guint session_lock_subscription;
  guint sleep_subscription;
  gint inhibit_fd;           /* the delay inhibitor held, or -1 */
  gboolean inhibit_pending;
};

G_DEFINE_FINAL_TYPE (EtaPolicy, eta_policy, G_TYPE_OBJECT)

enum { PROP_0, PROP_LOCK_DEADLINE, PROP_ALLOW_REMEMBER_PIN, N_PROPS };
static GParamSpec *properties[N_PROPS];

static void take_inhibitor (EtaPolicy *self);

/* ---- the settings ---- */

static void
read_settings (EtaPolicy *self)
{
  gboolean allow_remember_pin = self->allow_remember_pin;

  if (self->settings == NULL)
    return;
  self->lifetime = g_settings_get_enum (self->settings, "login-lifetime");
  self->idle_timeout = g_settings_get_uint (self->settings, "idle-timeout");
  self->maximum_lifetime = g_settings_get_uint (self->settings, "maximum-lifetime");
  self->lock_on_screen_lock = g_settings_get_boolean (self->settings, "lock-on-screen-lock");
  self->lock_before_suspend = g_settings_get_boolean (self->settings, "lock-before-suspend");
  self->unlock_early = g_settings_get_boolean (self->settings, "unlock-early");
  self->allow_remember_pin = g_settings_get_boolean (self->settings, "allow-remember-pin");
  if (self->allow_remember_pin != allow_remember_pin)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ALLOW_REMEMBER_PIN]);
}

/* ---- locking ---- */

typedef struct
{
  EtaPolicy *self;
  gint inhibit_fd;   /* released once the tokens are locked, or -1 */
} LockCall;

static void reschedule (EtaPolicy *self);

static void
on_locked (GObject *source, GAsyncResult *result, gpointer user_data)
{
  LockCall *call = user_data;
  g_autoptr (GError) error = NULL;

  if (!eta_token_manager_lock_finish (ETA_TOKEN_MANAGER (source), result, &error))
    g_warning ("locking the tokens: %s", error->message);
  /* Logged out (or failed to): logind may suspend now. */
  if (call->inhibit_fd >= 0)
    close (call->inhibit_fd);
  call->self->pending_locks--;
  reschedule (call->self);
  g_object_unref (call->self);
  g_free (call);
}

/* Takes @inhibit_fd (may be -1) and closes it when done. */
static void
lock_tokens (EtaPolicy *self, gint inhibit_fd, const gchar *reason)
{
  LockCall *call = g_new0 (LockCall, 1);

  g_message ("locking the tokens: %s", reason);
  call->self = g_object_ref (self);
  call->inhibit_fd = inhibit_fd;
  self->pending_locks++;
  g_clear_handle_id (&self->timer, g_source_remove);
  eta_token_manager_lock_async (self->manager, NULL, on_locked, call);
}

static gboolean
anything_logged_in (EtaPolicy *self)
{
  return g_hash_table_size (self->logged_in) > 0;
}

/* ---- the login's lifetime ---- */

static gboolean
counts_idle_time (EtaLoginLifetime lifetime)
{
  return lifetime == ETA_LOGIN_LIFETIME_IDLE_TIMEOUT
         || lifetime == ETA_LOGIN_LIFETIME_IDLE_OR_MAXIMUM;
}

static gboolean
counts_lifetime (EtaLoginLifetime lifetime)
{
  return lifetime == ETA_LOGIN_LIFETIME_MAXIMUM_LIFETIME
         || lifetime == ETA_LOGIN_LIFETIME_IDLE_OR_MAXIMUM;
}

static gint64
idle_deadline_us (EtaPolicy *self)
{
  return self->last_use + (gint64) self->idle_timeout * G_USEC_PER_SEC;
}

static gint64
lifetime_deadline_us (EtaPolicy *self)
{
  return self->login_time + (gint64) self->maximum_lifetime * G_USEC_PER_SEC;
}

/* Wall-clock µs at which the login ends by policy, or 0. */
static gint64
deadline_us (EtaPolicy *self)
{
  gint64 deadline = 0;

  if (self->login_time == 0)
    return 0;
  if (counts_idle_time (self->lifetime))
    deadline = idle_deadline_us (self);
  if (counts_lifetime (self->lifetime))
    deadline = deadline == 0 ? lifetime_deadline_us (self)
                             : MIN (deadline, lifetime_deadline_us (self));
  return deadline;
}

static gboolean
on_timer (gpointer user_data)
{
  EtaPolicy *self = user_data;

  self->timer = 0;
  reschedule (self);
  return G_SOURCE_REMOVE;
}

/* Announces the deadline, and locks when it has passed or arms a timer for
 * it. The timer only wakes the agent up: the wall clock decides. */
static void
reschedule (EtaPolicy *self)
{
  gint64 deadline = deadline_us (self);
  gint64 seconds = (deadline + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC;
  gint64 now = g_get_real_time ();

  g_clear_handle_id (&self->timer, g_source_remove);
  if (seconds != self->lock_deadline)
    {
      self->lock_deadline = seconds;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LOCK_DEADLINE]);
    }
  if (deadline == 0 || self->pending_locks > 0 || self->manager == NULL)
    return;
  if (now >= deadline)
    {
      g_autofree gchar *reason = NULL;

      if (counts_idle_time (self->lifetime) && now >= idle_deadline_us (self))
        reason = g_strdup_printf ("no key was used for %u s (idle-timeout)", self->idle_timeout);
      else
        reason = g_strdup_printf ("the login is %u s old (maximum-lifetime)",
                                  self->maximum_lifetime);
      lock_tokens (self, -1, reason);
      return;
    }
  self->timer = g_timeout_add_full (G_PRIORITY_DEFAULT,
                                    (guint) MIN ((deadline - now + 999) / 1000, G_MAXUINT),
                                    on_timer, self, NULL);
}

static void
on_token_state_changed (EtaTokenManager *manager, const gchar *label, const gchar *serial,
                        const gchar *state, gpointer user_data)
{
  EtaPolicy *self = user_data;
  g_autofree gchar *token = g_strdup_printf ("%s\n%s", label, serial);
  gint64 now = g_get_real_time ();

  if (g_str_equal (state, "logged-in"))
    {
      if (!anything_logged_in (self))
        self->login_time = now;
      self->last_use = now;
      g_hash_table_add (self->logged_in, g_steal_pointer (&token));
    }
  else if (g_str_equal (state, "locked"))
    {
      g_hash_table_remove (self->logged_in, token);
      if (!anything_logged_in (self))
        self->login_time = 0;
    }
  reschedule (self);
}

static void
on_unwrapped (EtaTokenManager *manager, const gchar *label, const gchar *serial,
              gpointer user_data)
{
  EtaPolicy *self = user_data;

  self->last_use = g_get_real_time ();
  reschedule (self);
}

/* ---- screen lock and suspend ---- */

static void
on_screen_saver_active_changed (GDBusConnection *connection, const gchar *sender,
                                const gchar *path, const gchar *interface,
                                const gchar *signal, GVariant *parameters, gpointer user_data)
{
  EtaPolicy *self = user_data;
  gboolean active = FALSE;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(b)")))
    return;
  g_variant_get (parameters, "(b)", &active);
  if (active && self->lock_on_screen_lock && anything_logged_in (self))
    lock_tokens (self, -1, "the screen locked");
}

static void
on_session_lock (GDBusConnection *connection, const gchar *sender, const gchar *path,
                 const gchar *interface, const gchar *signal, GVariant *parameters,
                 gpointer user_data)
{
  EtaPolicy *self = user_data;

  if (self->lock_on_screen_lock && anything_logged_in (self))
    lock_tokens (self, -1, "systemd-logind locked the session");
}

static void
on_prepare_for_sleep (GDBusConnection *connection, const gchar *sender, const gchar *path,
                      const gchar *interface, const gchar *signal, GVariant *parameters,
                      gpointer user_data)
{
  EtaPolicy *self = user_data;
  gboolean going_to_sleep = FALSE;
  gint inhibit_fd;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(b)")))
    return;
  g_variant_get (parameters, "(b)", &going_to_sleep);
  if (!going_to_sleep)
    {
      /* Awake again: wait for the next suspend, and catch up with any
       * deadline that passed meanwhile. */
      take_inhibitor (self);
      reschedule (self);
      return;
    }
  inhibit_fd = self->inhibit_fd;
  self->inhibit_fd = -1;
  if (self->lock_before_suspend && anything_logged_in (self))
    lock_tokens (self, inhibit_fd, "the computer is about to suspend");
  else if (inhibit_fd >= 0)
    close (inhibit_fd);
}

static void
on_inhibited (GObject *source, GAsyncResult *result, gpointer user_data)
{
  EtaPolicy *self;
  g_autoptr (GUnixFDList) fds = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_with_unix_fd_list_finish (
      G_DBUS_CONNECTION (source), &fds, result, &error);
  gint32 handle = -1;
  gint fd = -1;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  self = user_data;
  self->inhibit_pending = FALSE;
  if (reply != NULL)
    {
      g_variant_get (reply, "(h)", &handle);
      if (fds == NULL)
        g_set_error (&error, G_IO_ERROR, G_IO_ERROR_FAILED, "the reply carried no descriptor");
      else
        fd = g_unix_fd_list_get (fds, handle, &error);
    }
  if (fd < 0)
    {
      g_message ("cannot ask systemd-logind to wait for the tokens to be locked before a "
                 "suspend: %s", error->message);
      return;
    }
  if (!self->lock_before_suspend || self->inhibit_fd >= 0)
    {
      close (fd);
      return;
    }
  self->inhibit_fd = fd;
}

/* A delay lock: logind waits (up to its InhibitDelayMaxSec) for the tokens to
 * be locked before suspending. Held while lock-before-suspend is on. */
static void
take_inhibitor (EtaPolicy *self)
{
  if (self->system_bus == NULL || !self->lock_before_suspend || self->inhibit_fd >= 0
      || self->inhibit_pending)
    return;
  self->inhibit_pending = TRUE;
  g_dbus_connection_call_with_unix_fd_list (
      self->system_bus, LOGIND_NAME, LOGIND_PATH, LOGIND_MANAGER, "Inhibit",
      g_variant_new ("(ssss)", "sleep", "eCryptfs token agent",
                     "Logging out of the PKCS#11 tokens before suspending", "delay"),
      G_VARIANT_TYPE ("(h)"), G_DBUS_CALL_FLAGS_NONE, LOGIND_CALL_TIMEOUT_MS, NULL,
      self->cancellable, on_inhibited, self);
}

static void
release_inhibitor (EtaPolicy *self)
{
  if (self->inhibit_fd >= 0)
    close (self->inhibit_fd);
  self->inhibit_fd = -1;
}

/* ---- finding logind and this session (worker thread) ---- */

typedef struct
{
  GDBusConnection *bus;
  gchar *session_path;       /* NULL when no session was found */
  gchar *no_session_reason;
} LogindLookup;

static void
logind_lookup_free (LogindLookup *lookup)
{
  g_clear_object (&lookup->bus);
  g_free (lookup->session_path);
  g_free (lookup->no_session_reason);
  g_free (lookup);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LogindLookup, logind_lookup_free)

static GVariant *
call_logind (GDBusConnection *bus, const gchar *path, const gchar *interface,
             const gchar *method, GVariant *args, const gchar *reply_type,
             GCancellable *cancellable, GError **error)
{
  return g_dbus_connection_call_sync (bus, LOGIND_NAME, path, interface, method, args,
                                      G_VARIANT_TYPE (reply_type), G_DBUS_CALL_FLAGS_NONE,
                                      LOGIND_CALL_TIMEOUT_MS, cancellable, error);
}

static gboolean
logind_is_missing (const GError *error)
{
  return g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN)
         || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER)
         || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* The session's object path: the one named by XDG_SESSION_ID, else the one
 * this process belongs to, else (a systemd user service belongs to none) the
 * user's graphical session. NULL with @error set only when logind is not
 * there at all; otherwise NULL with *reason set when no session matches. */
static gchar *
find_session (GDBusConnection *bus, GCancellable *cancellable, gchar **reason, GError **error)
{
  const gchar *session_id = g_getenv ("XDG_SESSION_ID");
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) display = NULL;
  g_autoptr (GError) local_error = NULL;
  const gchar *path = NULL;

  if (session_id != NULL && session_id[0] != '\0')
    {
      reply = call_logind (bus, LOGIND_PATH, LOGIND_MANAGER, "GetSession",
                           g_variant_new ("(s)", session_id), "(o)", cancellable, &local_error);
      if (reply != NULL)
        {
          g_variant_get (reply, "(&o)", &path);
          return g_strdup (path);
        }
      if (logind_is_missing (local_error))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return NULL;
        }
      g_debug ("no logind session %s: %s", session_id, local_error->message);
      g_clear_error (&local_error);
    }

  reply = call_logind (bus, LOGIND_PATH, LOGIND_MANAGER, "GetSessionByPID",
                       g_variant_new ("(u)", (guint32) getpid ()), "(o)", cancellable,
                       &local_error);
  if (reply != NULL)
    {
      g_variant_get (reply, "(&o)", &path);
      return g_strdup (path);
    }
  if (logind_is_missing (local_error))
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  g_debug ("no logind session for pid %d: %s", (gint) getpid (), local_error->message);
  g_clear_error (&local_error);

  reply = call_logind (bus, LOGIND_PATH, LOGIND_MANAGER, "GetUser",
                       g_variant_new ("(u)", (guint32) getuid ()), "(o)", cancellable,
                       &local_error);
  if (reply != NULL)
    {
      g_autoptr (GVariant) property = NULL;

      g_variant_get (reply, "(&o)", &path);
      property = call_logind (bus, path, "org.freedesktop.DBus.Properties", "Get",
                              g_variant_new ("(ss)", LOGIND_USER, "Display"), "(v)",
                              cancellable, &local_error);
      if (property != NULL)
        {
          g_variant_get (property, "(v)", &display);
          if (g_variant_is_of_type (display, G_VARIANT_TYPE ("(so)")))
            {
              g_variant_get (display, "(&s&o)", NULL, &path);
              if (!g_str_equal (path, "/"))
                return g_strdup (path);
            }
        }
    }
  *reason = g_strdup (local_error ? local_error->message
                                  : "neither this process nor its user has a session");
  return NULL;
}

static void
look_up_logind (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  g_autoptr (LogindLookup) lookup = g_new0 (LogindLookup, 1);
  g_autofree gchar *address = NULL;
  GError *error = NULL;

  /* A connection of its own (GDBus honours DBUS_SYSTEM_BUS_ADDRESS): the
   * shared one would end the agent if the system bus went away. */
  address = g_dbus_address_get_for_bus_sync (G_BUS_TYPE_SYSTEM, cancellable, &error);
  if (address != NULL)
    lookup->bus = g_dbus_connection_new_for_address_sync (
        address,
        G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
        | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
        NULL, cancellable, &error);
  if (lookup->bus == NULL)
    {
      g_prefix_error (&error, "no system bus: ");
      g_task_return_error (task, error);
      return;
    }
  lookup->session_path = find_session (lookup->bus, cancellable, &lookup->no_session_reason,
                                       &error);
  if (lookup->session_path == NULL && error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  g_task_return_pointer (task, g_steal_pointer (&lookup), (GDestroyNotify) logind_lookup_free);
}

static void
on_logind_looked_up (GObject *source, GAsyncResult *result, gpointer user_data)
{
  EtaPolicy *self = ETA_POLICY (source);
  g_autoptr (GError) error = NULL;
  g_autoptr (LogindLookup) lookup = g_task_propagate_pointer (G_TASK (result), &error);

  if (lookup == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_message ("systemd-logind is out of reach (%s): the tokens are not locked when "
                   "logind locks the session nor before a suspend",
                   error->message);
      return;
    }
  if (g_cancellable_is_cancelled (self->cancellable))
    return;
  self->system_bus = g_steal_pointer (&lookup->bus);
  /* Subscribed before the first call below is sent, so that whoever sees
   * the call knows the agent is listening. */
  if (lookup->session_path != NULL)
    {
      g_debug ("following logind session %s", lookup->session_path);
      self->session_lock_subscription = g_dbus_connection_signal_subscribe (
          self->system_bus, LOGIND_NAME, LOGIND_SESSION, "Lock", lookup->session_path, NULL,
          G_DBUS_SIGNAL_FLAGS_NONE, on_session_lock, self, NULL);
    }
  else
    g_message ("no systemd-logind session found for the agent (%s): its Lock signal is not "
               "followed", lookup->no_session_reason);
  self->sleep_subscription = g_dbus_connection_signal_subscribe (
      self->system_bus, LOGIND_NAME, LOGIND_MANAGER, "PrepareForSleep", LOGIND_PATH, NULL,
      G_DBUS_SIGNAL_FLAGS_NONE, on_prepare_for_sleep, self, NULL);
  take_inhibitor (self);
}

/* ---- public ---- */

static void
on_settings_changed (GSettings *settings, const gchar *key, gpointer user_data)
{
  EtaPolicy *self = user_data;

  read_settings (self);
  if (self->lock_before_suspend)
    take_inhibitor (self);
  else
    release_inhibitor (self);
  reschedule (self);
}

void
eta_policy_start (EtaPolicy *self, EtaTokenManager *manager, GDBusConnection *session_bus)
{
  g_autoptr (GTask) task = NULL;

  g_return_if_fail (ETA_IS_POLICY (self));
  g_return_if_fail (ETA_IS_TOKEN_MANAGER (manager));
  g_return_if_fail (self->manager == NULL);

  self->manager = g_object_ref (manager);
  self->state_handler = g_signal_connect (manager, "token-state-changed",
                                          G_CALLBACK (on_token_state_changed), self);
  self->unwrapped_handler = g_signal_connect (manager, "unwrapped", G_CALLBACK (on_unwrapped),
                                              self);
  if (session_bus != NULL)
    {
      self->session_bus = g_object_ref (session_bus);
      for (gsize i = 0; i < G_N_ELEMENTS (screen_saver_names); i++)
        self->screen_saver_subscriptions[i] = g_dbus_connection_signal_subscribe (
            session_bus, screen_saver_names[i], screen_saver_names[i], "ActiveChanged", NULL,
            NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_screen_saver_active_changed, self, NULL);
    }

  task = g_task_new (self, self->cancellable, on_logind_looked_up, NULL);
  g_task_set_source_tag (task, eta_policy_start);
  g_task_run_in_thread (task, look_up_logind);
}

gchar **
eta_policy_dup_allowed_providers (EtaPolicy *self)
{
  g_auto (GStrv) providers = NULL;

  g_return_val_if_fail (ETA_IS_POLICY (self), NULL);
  if (self->settings == NULL)
    return NULL;
  providers = g_settings_get_strv (self->settings, "allowed-providers");
  if (providers[0] == NULL)
    return NULL;
  return g_steal_pointer (&providers);
}

gint64
eta_policy_get_lock_deadline (EtaPolicy *self)
{
  g_return_val_if_fail (ETA_IS_POLICY (self), 0);
  return self->lock_deadline;
}

gboolean
eta_policy_get_unlock_early (EtaPolicy *self)
{
  g_return_val_if_fail (ETA_IS_POLICY (self), FALSE);
  return self->unlock_early;
}

gboolean
eta_policy_get_allow_remember_pin (EtaPolicy *self)
{
  g_return_val_if_fail (ETA_IS_POLICY (self), FALSE);
  return self->allow_remember_pin;
}

/* ---- life cycle ---- */

static void
eta_policy_dispose (GObject *object)
{
  EtaPolicy *self = ETA_POLICY (object);

  g_cancellable_cancel (self->cancellable);
  g_clear_handle_id (&self->timer, g_source_remove);
  if (self->manager != NULL)
    {
      g_clear_signal_handler (&self->state_handler, self->manager);
      g_clear_signal_handler (&self->unwrapped_handler, self->manager);
      g_clear_object (&self->manager);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (screen_saver_names); i++)
    if (self->screen_saver_subscriptions[i] != 0)
      {
        g_dbus_connection_signal_unsubscribe (self->session_bus,
                                              self->screen_saver_subscriptions[i]);
        self->screen_saver_subscriptions[i] = 0;
      }
  g_clear_object (&self->session_bus);
  if (self->system_bus != NULL)
    {
      if (self->session_lock_subscription != 0)
        g_dbus_connection_signal_unsubscribe (self->system_bus,
                                              self->session_lock_subscription);
      if (self->sleep_subscription != 0)
        g_dbus_connection_signal_unsubscribe (self->system_bus, self->sleep_subscription);
      self->session_lock_subscription = 0;
      self->sleep_subscription = 0;
      g_clear_object (&self->system_bus);
    }
  release_inhibitor (self);
  if (self->settings != NULL)
    g_signal_handlers_disconnect_by_data (self->settings, self);
  g_clear_object (&self->settings);
  G_OBJECT_CLASS (eta_policy_parent_class)->dispose (object);
}

static void
eta_policy_finalize (GObject *object)
{
  EtaPolicy *self = ETA_POLICY (object);

  g_hash_table_unref (self->logged_in);
  g_object_unref (self->cancellable);
  G_OBJECT_CLASS (eta_policy_parent_class)->finalize (object);
}

static void
eta_policy_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  EtaPolicy *self = ETA_POLICY (object);

  switch (prop_id)
    {
    case PROP_LOCK_DEADLINE:
      g_value_set_int64 (value, self->lock_deadline);
      break;
    case PROP_ALLOW_REMEMBER_PIN:
      g_value_set_boolean (value, self->allow_remember_pin);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
eta_policy_class_init (EtaPolicyClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = eta_policy_dispose;
  object_class->finalize = eta_policy_finalize;
  object_class->get_property = eta_policy_get_property;

  properties[PROP_LOCK_DEADLINE] =
    g_param_spec_int64 ("lock-deadline", NULL, NULL, 0, G_MAXINT64, 0,
                        G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_ALLOW_REMEMBER_PIN] =
    g_param_spec_boolean ("allow-remember-pin", NULL, NULL, TRUE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
eta_policy_init (EtaPolicy *self)
{
  /* The schema's defaults, for when it is not installed. */
  self->lifetime = ETA_LOGIN_LIFETIME_UNTIL_REMOVED;
  self->idle_timeout = 900;
  self->maximum_lifetime = 28800;
  self->lock_on_screen_lock = TRUE;
  self->lock_before_suspend = TRUE;
  self->unlock_early = TRUE;
  self->allow_remember_pin = TRUE;

  self->logged_in = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->cancellable = g_cancellable_new ();
  self->inhibit_fd = -1;
}

EtaPolicy *
eta_policy_new (void)
{
  EtaPolicy *self = g_object_new (ETA_TYPE_POLICY, NULL);
  GSettingsSchemaSource *source = g_settings_schema_source_get_default ();
  g_autoptr (GSettingsSchema) schema = NULL;

  if (source != NULL)
    schema = g_settings_schema_source_lookup (source, ETA_SETTINGS_SCHEMA, TRUE);
  if (schema == NULL)
    {
      g_message ("the settings schema %s is not installed: its defaults apply",
                 ETA_SETTINGS_SCHEMA);
      return self;
    }
  self->settings = g_settings_new_full (schema, NULL, NULL);
  g_signal_connect (self->settings, "changed", G_CALLBACK (on_settings_changed), self);
  read_settings (self);
  return self;
}

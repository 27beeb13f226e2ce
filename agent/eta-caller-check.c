/* See eta-caller-check.h. */
#define G_LOG_DOMAIN "eta-caller-check"

#include "config.h"

#include "eta-caller-check.h"

#include <unistd.h>

#include "eta-agent-error.h"

/* Unique names are never reused, so a sender's uid never changes; the cache
 * (of our own user's senders) only has to stay bounded. */
#define MAX_CACHED_SENDERS 256
/* The bus daemon answers GetConnectionUnixUser at once; a daemon that does
 * not is refused as a caller of unknown uid. */
#define BUS_ANSWER_TIMEOUT_MS 2000
/* Set on a held call let through after its sender's uid was looked up. */
#define ADMITTED_KEY "eta-caller-check-admitted"

struct _EtaCallerCheck
{
  GObject parent_instance;

  GMutex lock;               /* sender_uids: checks run in worker threads too */
  GHashTable *sender_uids;   /* unique name → uid */
  gboolean allow_anonymous;
};

G_DEFINE_FINAL_TYPE (EtaCallerCheck, eta_caller_check, G_TYPE_OBJECT)

typedef enum
{
  CALLER_ALLOWED,
  CALLER_REFUSED,   /* answered with AccessDenied already */
  CALLER_UNKNOWN,   /* a sender not seen before: ask the bus */
} CallerVerdict;

static CallerVerdict
refuse (GDBusMethodInvocation *invocation, const gchar *why, const gchar *reply)
{
  g_message ("refused %s from %s: %s", g_dbus_method_invocation_get_method_name (invocation),
             g_dbus_method_invocation_get_sender (invocation), why);
  g_dbus_method_invocation_return_error_literal (invocation, ETA_AGENT_ERROR,
                                                 ETA_AGENT_ERROR_ACCESS_DENIED, reply);
  return CALLER_REFUSED;
}

static CallerVerdict
judge_uid (GDBusMethodInvocation *invocation, guint32 uid)
{
  g_autofree gchar *why = NULL;
  g_autofree gchar *reply = NULL;

  if (uid == (guint32) geteuid ())
    return CALLER_ALLOWED;
  why = g_strdup_printf ("it runs as uid %u, not %u", uid, (guint) geteuid ());
  reply = g_strdup_printf ("the token agent serves only uid %u", (guint) geteuid ());
  return refuse (invocation, why, reply);
}

static CallerVerdict
judge_unknown_uid (EtaCallerCheck *self, GDBusMethodInvocation *invocation, const GError *error)
{
  g_autofree gchar *why = NULL;

  if (self->allow_anonymous)
    return CALLER_ALLOWED;
  why = g_strdup_printf ("cannot tell its uid: %s", error->message);
  return refuse (invocation, why, "cannot tell which user the caller runs as");
}

/* Only our own user's senders: another user's refused calls are asked
 * about each time, so that they cannot crowd ours out of the cache. */
static void
remember_uid (EtaCallerCheck *self, const gchar *sender, guint32 uid)
{
  if (uid != (guint32) geteuid ())
    return;
  if (g_hash_table_size (self->sender_uids) >= MAX_CACHED_SENDERS)
    g_hash_table_remove_all (self->sender_uids);
  g_hash_table_insert (self->sender_uids, g_strdup (sender), GUINT_TO_POINTER (uid));
}

/* Without asking the bus: the peer's credentials on a peer-to-peer
 * connection, or a sender's uid already known. */
static CallerVerdict
judge_at_once (EtaCallerCheck *self, GDBusMethodInvocation *invocation)
{
  const gchar *sender = g_dbus_method_invocation_get_sender (invocation);
  gpointer cached;

  if (sender == NULL)
    {
      GDBusConnection *connection = g_dbus_method_invocation_get_connection (invocation);
      GCredentials *credentials = g_dbus_connection_get_peer_credentials (connection);
      g_autoptr (GError) error = NULL;
      uid_t uid;

      if (credentials == NULL)
        {
          g_set_error_literal (&error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_ACCESS_DENIED,
                               "the peer's credentials are unknown");
          return judge_unknown_uid (self, invocation, error);
        }
      uid = g_credentials_get_unix_user (credentials, &error);
      return uid == (uid_t) -1 ? judge_unknown_uid (self, invocation, error)
                               : judge_uid (invocation, (guint32) uid);
    }
  if (g_hash_table_lookup_extended (self->sender_uids, sender, NULL, &cached))
    return judge_uid (invocation, GPOINTER_TO_UINT (cached));
  return CALLER_UNKNOWN;
}

static GVariant *
ask_bus_for_uid (GDBusMethodInvocation *invocation, GError **error)
{
  return g_dbus_connection_call_sync (g_dbus_method_invocation_get_connection (invocation),
                                      "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                      "org.freedesktop.DBus", "GetConnectionUnixUser",
                                      g_variant_new ("(s)",
                                                     g_dbus_method_invocation_get_sender (
                                                       invocation)),
                                      G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE,
                                      BUS_ANSWER_TIMEOUT_MS, NULL, error);
}

gboolean
eta_caller_check_serves_known_sender (EtaCallerCheck *self, const gchar *sender)
{
  gpointer cached = NULL;
  gboolean known;

  if (sender == NULL)
    return FALSE;
  g_mutex_lock (&self->lock);
  known = g_hash_table_lookup_extended (self->sender_uids, sender, NULL, &cached);
  g_mutex_unlock (&self->lock);
  return known && GPOINTER_TO_UINT (cached) == (guint32) geteuid ();
}

/* ---- skeletons with properties: g-authorize-method ---- */

/* Runs in a GLib worker thread (GDBusInterfaceSkeleton's dispatch), which
 * may wait for the bus. */
static gboolean
on_authorize_method (GDBusInterfaceSkeleton *skeleton, GDBusMethodInvocation *invocation,
                     gpointer user_data)
{
  EtaCallerCheck *self = user_data;
  CallerVerdict verdict;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GError) error = NULL;
  guint32 uid;

  g_mutex_lock (&self->lock);
  verdict = judge_at_once (self, invocation);
  g_mutex_unlock (&self->lock);
  if (verdict != CALLER_UNKNOWN)
    return verdict == CALLER_ALLOWED;
  reply = ask_bus_for_uid (invocation, &error);
  if (reply == NULL)
    return judge_unknown_uid (self, invocation, error) == CALLER_ALLOWED;
  g_variant_get (reply, "(u)", &uid);
  g_mutex_lock (&self->lock);
  remember_uid (self, g_dbus_method_invocation_get_sender (invocation), uid);
  g_mutex_unlock (&self->lock);
  return judge_uid (invocation, uid) == CALLER_ALLOWED;
}

/* ---- skeletons without properties: before each handle-* handler ---- */

/* A method call held while the bus says who sent it: the handle-* signal's
 * arguments, emitted again once the sender is known. */
typedef struct
{
  EtaCallerCheck *check;
  guint signal_id;
  guint n_values;
  GValue *values;
} HeldCall;

static void
held_call_free (HeldCall *held)
{
  for (guint i = 0; i < held->n_values; i++)
    g_value_unset (&held->values[i]);
  g_free (held->values);
  g_object_unref (held->check);
  g_free (held);
}

static GDBusMethodInvocation *
held_invocation (HeldCall *held)
{
  return g_value_get_object (&held->values[1]);
}

/* The call goes on to its handlers, past this check (ADMITTED_KEY). */
static void
admit (HeldCall *held)
{
  GDBusMethodInvocation *invocation = held_invocation (held);
  GValue handled = G_VALUE_INIT;

  g_object_set_data (G_OBJECT (invocation), ADMITTED_KEY, GINT_TO_POINTER (TRUE));
  g_value_init (&handled, G_TYPE_BOOLEAN);
  g_signal_emitv (held->values, held->signal_id, 0, &handled);
  if (!g_value_get_boolean (&handled))
    g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD,
                                           "Method %s is not implemented on interface %s",
                                           g_dbus_method_invocation_get_method_name (invocation),
                                           g_dbus_method_invocation_get_interface_name (
                                             invocation));
}

static void
on_sender_uid (GObject *source, GAsyncResult *result, gpointer user_data)
{
  HeldCall *held = user_data;
  GDBusMethodInvocation *invocation = held_invocation (held);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source),
                                                              result, &error);
  CallerVerdict verdict;
  guint32 uid;

  if (reply == NULL)
    verdict = judge_unknown_uid (held->check, invocation, error);
  else
    {
      g_variant_get (reply, "(u)", &uid);
      g_mutex_lock (&held->check->lock);
      remember_uid (held->check, g_dbus_method_invocation_get_sender (invocation), uid);
      g_mutex_unlock (&held->check->lock);
      verdict = judge_uid (invocation, uid);
    }
  if (verdict == CALLER_ALLOWED)
    admit (held);
  held_call_free (held);
}

/* The first handler of each handle-* signal, in the thread that dispatches
 * the call: returns TRUE (handled: refused, or held) to stop the emission,
 * FALSE to let the interface's own handler run. */
static void
marshal_method_check (GClosure *closure, GValue *return_value, guint n_param_values,
                      const GValue *param_values, gpointer invocation_hint,
                      gpointer marshal_data)
{
  EtaCallerCheck *self = closure->data;
  GDBusMethodInvocation *invocation = g_value_get_object (&param_values[1]);
  GSignalInvocationHint *hint = invocation_hint;
  CallerVerdict verdict;
  HeldCall *held;

  if (g_object_steal_data (G_OBJECT (invocation), ADMITTED_KEY) != NULL)
    {
      g_value_set_boolean (return_value, FALSE);
      return;
    }
  g_mutex_lock (&self->lock);
  verdict = judge_at_once (self, invocation);
  g_mutex_unlock (&self->lock);
  if (verdict != CALLER_UNKNOWN)
    {
      g_value_set_boolean (return_value, verdict == CALLER_REFUSED);
      return;
    }
  held = g_new0 (HeldCall, 1);
  held->check = g_object_ref (self);
  held->signal_id = hint->signal_id;
  held->n_values = n_param_values;
  held->values = g_new0 (GValue, n_param_values);
  for (guint i = 0; i < n_param_values; i++)
    {
      g_value_init (&held->values[i], G_VALUE_TYPE (&param_values[i]));
      g_value_copy (&param_values[i], &held->values[i]);
    }
  g_dbus_connection_call (g_dbus_method_invocation_get_connection (invocation),
                          "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                          "GetConnectionUnixUser",
                          g_variant_new ("(s)", g_dbus_method_invocation_get_sender (invocation)),
                          G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, BUS_ANSWER_TIMEOUT_MS,
                          NULL, on_sender_uid, held);
  g_value_set_boolean (return_value, TRUE);
}

static gboolean
is_method_signal (const GSignalQuery *query)
{
  return g_str_has_prefix (query->signal_name, "handle-")
         && query->return_type == G_TYPE_BOOLEAN && query->n_params >= 1
         && query->param_types[0] == G_TYPE_DBUS_METHOD_INVOCATION;
}

static void
release_check (gpointer data, GClosure *closure)
{
  g_object_unref (data);
}

static gboolean
connect_to_method_signals (EtaCallerCheck *self, GDBusInterfaceSkeleton *skeleton)
{
  g_autofree GType *interfaces = g_type_interfaces (G_TYPE_FROM_INSTANCE (skeleton), NULL);
  guint connected = 0;

  for (GType *type = interfaces; *type != 0; type++)
    {
      guint n_ids;
      g_autofree guint *ids = g_signal_list_ids (*type, &n_ids);

      for (guint i = 0; i < n_ids; i++)
        {
          GSignalQuery query;
          GClosure *closure;

          g_signal_query (ids[i], &query);
          if (!is_method_signal (&query))
            continue;
          /* Holds the check for as long as the skeleton keeps the handler. */
          closure = g_closure_new_simple (sizeof (GClosure), g_object_ref (self));
          g_closure_add_finalize_notifier (closure, self, release_check);
          g_closure_set_marshal (closure, marshal_method_check);
          g_signal_connect_closure_by_id (skeleton, ids[i], 0, closure, FALSE);
          connected++;
        }
    }
  return connected > 0;
}

static gboolean
has_properties (GDBusInterfaceSkeleton *skeleton)
{
  GDBusInterfaceInfo *info = g_dbus_interface_skeleton_get_info (skeleton);

  return info->properties != NULL && info->properties[0] != NULL;
}

void
eta_caller_check_guard (EtaCallerCheck *self, GDBusInterfaceSkeleton *skeleton)
{
  /* g-authorize-method also guards property reads, but sends every call
   * through a worker thread and back: two thread switches on each Unwrap,
   * a fifth of a cached epoch unwrap's time. An interface without
   * properties is checked in the dispatching thread instead. */
  if (!has_properties (skeleton) && connect_to_method_signals (self, skeleton))
    return;
  g_signal_connect_data (skeleton, "g-authorize-method", G_CALLBACK (on_authorize_method),
                         g_object_ref (self), (GClosureNotify) (void (*) (void)) g_object_unref,
                         0);
}

static gboolean
call_is_about (GDBusMessage *message, const gchar * const *interfaces)
{
  const gchar *interface = g_dbus_message_get_interface (message);
  GVariant *body;
  const gchar *about = NULL;

  if (interface == NULL)
    return FALSE;
  if (g_strv_contains (interfaces, interface))
    return TRUE;
  if (!g_str_equal (interface, "org.freedesktop.DBus.Properties"))
    return FALSE;
  body = g_dbus_message_get_body (message);
  if (body == NULL || !g_variant_is_of_type (body, G_VARIANT_TYPE_TUPLE)
      || g_variant_n_children (body) == 0)
    return FALSE;
  {
    g_autoptr (GVariant) first = g_variant_get_child_value (body, 0);
    if (g_variant_is_of_type (first, G_VARIANT_TYPE_STRING))
      about = g_variant_get_string (first, NULL);
  }
  return about != NULL && g_strv_contains (interfaces, about);
}

/* Runs in GDBus's worker thread, for every message, before dispatch. */
static GDBusMessage *
refuse_filter (GDBusConnection *connection, GDBusMessage *message, gboolean incoming,
               gpointer user_data)
{
  const gchar * const *interfaces = user_data;
  g_autoptr (GDBusMessage) reply = NULL;

  if (!incoming || g_dbus_message_get_message_type (message) != G_DBUS_MESSAGE_TYPE_METHOD_CALL
      || !call_is_about (message, interfaces))
    return message;
  if (!(g_dbus_message_get_flags (message) & G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED))
    {
      reply = g_dbus_message_new_method_error (message, "org.freedesktop.DBus.Error.AccessDenied",
                                               "%s is not served here",
                                               g_dbus_message_get_interface (message));
      g_dbus_connection_send_message (connection, reply, G_DBUS_SEND_MESSAGE_FLAGS_NONE, NULL,
                                      NULL);
    }
  g_object_unref (message);
  return NULL;
}

guint
eta_caller_check_refuse_interfaces (GDBusConnection *connection,
                                    const gchar * const *interfaces)
{
  return g_dbus_connection_add_filter (connection, refuse_filter, (gpointer) interfaces, NULL);
}

static void
eta_caller_check_finalize (GObject *object)
{
  EtaCallerCheck *self = ETA_CALLER_CHECK (object);

  g_hash_table_unref (self->sender_uids);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (eta_caller_check_parent_class)->finalize (object);
}

static void
eta_caller_check_class_init (EtaCallerCheckClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = eta_caller_check_finalize;
}

static void
eta_caller_check_init (EtaCallerCheck *self)
{
  g_mutex_init (&self->lock);
  self->sender_uids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  /* Test-only: a VM reaches the test bus with ANONYMOUS authentication, which
   * carries no uid. Never set in a real session. */
  self->allow_anonymous = g_getenv ("ECRYPTFS_TOKEN_AGENT_TEST_ALLOW_ANONYMOUS") != NULL;
}

EtaCallerCheck *
eta_caller_check_new (void)
{
  return g_object_new (ETA_TYPE_CALLER_CHECK, NULL);
}

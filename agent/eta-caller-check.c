/* See eta-caller-check.h. */
#define G_LOG_DOMAIN "eta-caller-check"

#include "eta-caller-check.h"

#include <unistd.h>

#include "eta-agent-error.h"

/* Unique names are never reused, so a sender's uid never changes; the cache
 * only has to stay bounded. */
#define MAX_CACHED_SENDERS 256

struct _EtaCallerCheck
{
  GObject parent_instance;

  GHashTable *sender_uids;   /* unique name → uid */
  gboolean allow_anonymous;
};

G_DEFINE_FINAL_TYPE (EtaCallerCheck, eta_caller_check, G_TYPE_OBJECT)

static gboolean
lookup_sender_uid (EtaCallerCheck *self, GDBusMethodInvocation *invocation, guint32 *uid,
                   GError **error)
{
  GDBusConnection *connection = g_dbus_method_invocation_get_connection (invocation);
  const gchar *sender = g_dbus_method_invocation_get_sender (invocation);
  g_autoptr (GVariant) reply = NULL;
  gpointer cached;

  if (sender == NULL)
    {
      GCredentials *credentials = g_dbus_connection_get_peer_credentials (connection);
      if (credentials == NULL)
        {
          g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_ACCESS_DENIED,
                       "the peer's credentials are unknown");
          return FALSE;
        }
      *uid = (guint32) g_credentials_get_unix_user (credentials, error);
      return *uid != (guint32) -1;
    }
  if (g_hash_table_lookup_extended (self->sender_uids, sender, NULL, &cached))
    {
      *uid = GPOINTER_TO_UINT (cached);
      return TRUE;
    }
  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus",
                                       "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "GetConnectionUnixUser", g_variant_new ("(s)", sender),
                                       G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, 2000,
                                       NULL, error);
  if (reply == NULL)
    return FALSE;
  g_variant_get (reply, "(u)", uid);
  if (g_hash_table_size (self->sender_uids) >= MAX_CACHED_SENDERS)
    g_hash_table_remove_all (self->sender_uids);
  g_hash_table_insert (self->sender_uids, g_strdup (sender), GUINT_TO_POINTER (*uid));
  return TRUE;
}

static gboolean
on_authorize_method (GDBusInterfaceSkeleton *skeleton, GDBusMethodInvocation *invocation,
                     gpointer user_data)
{
  EtaCallerCheck *self = user_data;
  g_autoptr (GError) error = NULL;
  guint32 uid;

  if (lookup_sender_uid (self, invocation, &uid, &error))
    {
      if (uid == (guint32) geteuid ())
        return TRUE;
      g_message ("refused %s from %s: it runs as uid %u, not %u",
                 g_dbus_method_invocation_get_method_name (invocation),
                 g_dbus_method_invocation_get_sender (invocation), uid, (guint) geteuid ());
      g_dbus_method_invocation_return_error (invocation, ETA_AGENT_ERROR,
                                             ETA_AGENT_ERROR_ACCESS_DENIED,
                                             "the token agent serves only uid %u",
                                             (guint) geteuid ());
      return FALSE;
    }
  if (self->allow_anonymous)
    return TRUE;
  g_message ("refused %s from %s: cannot tell its uid: %s",
             g_dbus_method_invocation_get_method_name (invocation),
             g_dbus_method_invocation_get_sender (invocation), error->message);
  g_dbus_method_invocation_return_error (invocation, ETA_AGENT_ERROR,
                                         ETA_AGENT_ERROR_ACCESS_DENIED,
                                         "cannot tell which user the caller runs as");
  return FALSE;
}

void
eta_caller_check_guard (EtaCallerCheck *self, GDBusInterfaceSkeleton *skeleton)
{
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

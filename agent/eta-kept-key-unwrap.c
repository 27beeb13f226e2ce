/* See eta-kept-key-unwrap.h. */
#define G_LOG_DOMAIN "eta-kept-key-unwrap"

#include "config.h"

#include "eta-kept-key-unwrap.h"

#include "eta-names.h"
#include "eta-seal.h"
#include "eta-secret.h"
#include "eta-unwrap-arguments.h"

/* One per install, shared by GDBus (its filter data) and the installer
 * (the handle): an atomic reference-counted box. */
struct _EtaKeptKeyUnwrap
{
  GDBusConnection *connection;
  guint filter_id;
  gchar *object_path;
  /* Borrowed; used only while serving is set and this call is counted in
   * in_flight (eta_kept_key_unwrap_uninstall waits for it to drop). */
  EtaTokenManager *manager;
  EtaCallerCheck *check;
  gpointer owner;
  EtaKeptKeyUnwrapped unwrapped;
  gint serving;
  gint in_flight;
  GMainContext *context;
  /* Served calls not reported yet; one idle source reports them all (a
   * folder read serves many while the main thread wakes once). */
  GMutex lock;
  GQueue unreported;
  gboolean report_scheduled;
};

/* One served call, on its way to the main context. */
typedef struct
{
  EtaTokenKey *key;
  gchar *requester;
  guint32 pid;
} ServedCall;

static void
served_call_free (gpointer data)
{
  ServedCall *served = data;

  g_object_unref (served->key);
  g_free (served->requester);
  g_free (served);
}

static void
kept_key_unwrap_clear (gpointer data)
{
  EtaKeptKeyUnwrap *self = data;

  g_object_unref (self->connection);
  g_free (self->object_path);
  g_main_context_unref (self->context);
  g_queue_clear_full (&self->unreported, served_call_free);
  g_mutex_clear (&self->lock);
}

static void
kept_key_unwrap_unref (gpointer data)
{
  g_atomic_rc_box_release_full (data, kept_key_unwrap_clear);
}

/* Main context. */
static gboolean
report_served (gpointer data)
{
  EtaKeptKeyUnwrap *self = data;
  GQueue served;
  ServedCall *call;

  g_mutex_lock (&self->lock);
  served = self->unreported;
  g_queue_init (&self->unreported);
  self->report_scheduled = FALSE;
  g_mutex_unlock (&self->lock);
  while ((call = g_queue_pop_head (&served)) != NULL)
    {
      /* Uninstalled meanwhile (in this context): the owner may be gone. */
      if (g_atomic_int_get (&self->serving))
        self->unwrapped (self->owner, call->key, call->requester, call->pid);
      served_call_free (call);
    }
  return G_SOURCE_REMOVE;
}

static void
report_later (EtaKeptKeyUnwrap *self, ServedCall *served)
{
  gboolean schedule;

  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->unreported, served);
  schedule = !self->report_scheduled;
  self->report_scheduled = TRUE;
  g_mutex_unlock (&self->lock);
  if (schedule)
    g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT, report_served,
                                g_atomic_rc_box_acquire (self), kept_key_unwrap_unref);
}

static gboolean
is_unwrap_for (EtaKeptKeyUnwrap *self, GDBusMessage *message)
{
  GVariant *body;

  if (g_dbus_message_get_message_type (message) != G_DBUS_MESSAGE_TYPE_METHOD_CALL
      || (g_dbus_message_get_flags (message) & G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED)
      || g_strcmp0 (g_dbus_message_get_path (message), self->object_path) != 0
      || g_strcmp0 (g_dbus_message_get_interface (message), ETA_INTERFACE) != 0
      || g_strcmp0 (g_dbus_message_get_member (message), "Unwrap") != 0)
    return FALSE;
  /* GDBus checks the signature only when it dispatches: a call of another
   * one goes there, to be refused. */
  body = g_dbus_message_get_body (message);
  return body != NULL && g_variant_is_of_type (body, G_VARIANT_TYPE ("(ssayaya{sv})"));
}

/* The reply to @message when K is kept, or NULL to let the call through;
 * @served_out receives what to report once the reply is out. */
static GDBusMessage *
answer_from_kept_key (EtaKeptKeyUnwrap *self, GDBusMessage *message, ServedCall **served_out)
{
  g_autoptr (EtaUnwrapArguments) arguments = NULL;
  g_autoptr (EtaSecret) plaintext = NULL;
  g_autoptr (EtaTokenKey) key = NULL;
  guint8 agent_key[ETA_SEAL_PUBLIC_KEY_LEN];
  g_autofree guint8 *sealed = NULL;
  gsize sealed_len;
  GDBusMessage *reply;
  ServedCall *served;

  if (!eta_caller_check_serves_known_sender (self->check, g_dbus_message_get_sender (message)))
    return NULL;
  arguments = eta_unwrap_arguments_parse (ETA_UNWRAP_METHOD_UNWRAP,
                                          g_dbus_message_get_body (message), NULL);
  if (arguments == NULL)
    return NULL;
  plaintext = eta_token_manager_unwrap_kept (self->manager, arguments->fingerprint,
                                             arguments->wrapped, &key);
  if (plaintext == NULL)
    return NULL;
  sealed_len = eta_secret_get_length (plaintext) + ETA_SEAL_OVERHEAD;
  sealed = g_malloc (sealed_len);
  if (eta_seal_key_seal (arguments->seal_key, eta_token_key_get_fingerprint (key),
                         eta_secret_get_data (plaintext), eta_secret_get_length (plaintext),
                         agent_key, sealed) != 0)
    return NULL;
  reply = g_dbus_message_new_method_reply (message);
  g_dbus_message_set_body (
      reply, g_variant_new ("(@ay@ay)",
                            g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, agent_key,
                                                       sizeof agent_key, 1),
                            g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, sealed, sealed_len,
                                                       1)));
  g_debug ("answered an unwrap for %s (pid %u) from a kept epoch key",
           arguments->requester != NULL ? arguments->requester : "a caller", arguments->pid);
  served = g_new0 (ServedCall, 1);
  served->key = g_steal_pointer (&key);
  served->requester = g_steal_pointer (&arguments->requester);
  served->pid = arguments->pid;
  *served_out = served;
  return reply;
}

/* GDBus's message thread, for every message of the connection. */
static GDBusMessage *
kept_key_filter (GDBusConnection *connection, GDBusMessage *message, gboolean incoming,
                 gpointer user_data)
{
  EtaKeptKeyUnwrap *self = user_data;
  g_autoptr (GDBusMessage) reply = NULL;
  ServedCall *served = NULL;

  if (!incoming || !is_unwrap_for (self, message))
    return message;
  /* Counted first, then the flag: uninstall clears the flag, then waits
   * for the count (both sequentially consistent). */
  g_atomic_int_inc (&self->in_flight);
  if (g_atomic_int_get (&self->serving))
    reply = answer_from_kept_key (self, message, &served);
  if (reply != NULL)
    {
      g_dbus_connection_send_message (connection, reply, G_DBUS_SEND_MESSAGE_FLAGS_NONE, NULL,
                                      NULL);
      report_later (self, served);
    }
  g_atomic_int_add (&self->in_flight, -1);
  if (reply == NULL)
    return message;
  g_object_unref (message);
  return NULL;
}

EtaKeptKeyUnwrap *
eta_kept_key_unwrap_install (GDBusConnection *connection, const gchar *object_path,
                             EtaTokenManager *manager, EtaCallerCheck *check, gpointer owner,
                             EtaKeptKeyUnwrapped unwrapped)
{
  EtaKeptKeyUnwrap *self = g_atomic_rc_box_new0 (EtaKeptKeyUnwrap);

  self->connection = g_object_ref (connection);
  self->object_path = g_strdup (object_path);
  self->manager = manager;
  self->check = check;
  self->owner = owner;
  self->unwrapped = unwrapped;
  self->serving = TRUE;
  self->context = g_main_context_ref_thread_default ();
  g_mutex_init (&self->lock);
  g_queue_init (&self->unreported);
  self->filter_id = g_dbus_connection_add_filter (connection, kept_key_filter,
                                                  g_atomic_rc_box_acquire (self),
                                                  kept_key_unwrap_unref);
  return self;
}

void
eta_kept_key_unwrap_uninstall (EtaKeptKeyUnwrap *self)
{
  g_atomic_int_set (&self->serving, FALSE);
  g_dbus_connection_remove_filter (self->connection, self->filter_id);
  /* A call being served takes microseconds: it waits for no token and no
   * other call (eta_token_manager_unwrap_kept). */
  while (g_atomic_int_get (&self->in_flight) > 0)
    g_usleep (50);
  kept_key_unwrap_unref (self);
}

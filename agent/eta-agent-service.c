/* See eta-agent-service.h. */
#define G_LOG_DOMAIN "eta-agent-service"

#include "config.h"

#include "eta-agent-service.h"

#include <string.h>
#include <unistd.h>

#include <glib/gi18n.h>

#include "eta-activity-log.h"
#include "eta-agent-error.h"
#include "eta-caller-check.h"
#include "eta-dbus-generated.h"
#include "eta-kept-key-unwrap.h"
#include "eta-names.h"
#include "eta-public-key-file.h"
#include "eta-seal.h"
#include "eta-unwrap-arguments.h"

/* How long an insert-token prompt waits before the request fails. */
#define ETA_INSERT_TOKEN_WAIT_MS 120000

struct _EtaAgentService
{
  GObject parent_instance;

  EtaTokenManager *manager;
  EtaPolicy *policy;
  EtaDBusTokenAgent1 *skeleton;
  EtaCallerCheck *caller_check;
  EtaKeptKeyUnwrap *kept_key_unwrap;
  EtaActivityLog *activity;
  gulong state_handler;
  /* Callers that have called Unwrap or Unlock: unique name → CallerWatch.
   * When one leaves the bus, its prompts end (nobody would read the answer).
   * A watch stays while its caller is on the bus (ecryptfsd calls once per
   * file), up to MAX_IDLE_WATCHES without calls in flight. */
  GHashTable *callers;
  GDBusConnection *connection;
  guint name_owner_changed;

  /* The last "unwrapped a key" line: a folder opened through ecryptfsd
   * would log one per file. Repeats for the same caller and key within a
   * second go to the debug log and are counted in the next line. */
  gchar *logged_requester;
  guint logged_pid;
  gchar *logged_fingerprint;
  gint64 logged_at;
  guint logged_quiet;
};

/* Watches of callers with nothing in flight kept at most. */
#define MAX_IDLE_WATCHES 32

typedef struct
{
  GCancellable *gone;
  guint calls;
} CallerWatch;

static void
caller_watch_free (CallerWatch *watch)
{
  g_object_unref (watch->gone);
  g_free (watch);
}

G_DEFINE_FINAL_TYPE (EtaAgentService, eta_agent_service, G_TYPE_OBJECT)

/* ---- argument checks ---- */

/* The call's arguments once checked (eta-unwrap-arguments.h), or NULL when
 * they are not and the error has been returned to the caller. */
static EtaUnwrapArguments *
parse_arguments (GDBusMethodInvocation *invocation, EtaUnwrapMethod method)
{
  g_autoptr (GError) error = NULL;
  EtaUnwrapArguments *arguments =
    eta_unwrap_arguments_parse (method, g_dbus_method_invocation_get_parameters (invocation),
                                &error);

  if (arguments == NULL)
    g_dbus_method_invocation_return_gerror (invocation, error);
  return arguments;
}

/* ---- ResolveKey ---- */

static void
on_key_found (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GDBusMethodInvocation) invocation = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (EtaTokenKey) key = eta_token_manager_find_key_finish (ETA_TOKEN_MANAGER (source),
                                                                   result, &error);
  GBytes *spki;

  if (key == NULL)
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return;
    }
  spki = eta_token_key_get_public_key (key);
  g_dbus_method_invocation_return_value (
      invocation,
      g_variant_new ("(s@ayss)", eta_token_key_get_fingerprint (key),
                     g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, spki, TRUE),
                     eta_token_key_get_label (key), eta_token_key_get_token_label (key)));
}

static gboolean
on_handle_resolve_key (EtaDBusTokenAgent1 *skeleton, GDBusMethodInvocation *invocation,
                       const gchar *fingerprint, gpointer user_data)
{
  EtaAgentService *self = user_data;
  g_autoptr (EtaUnwrapArguments) arguments = parse_arguments (invocation,
                                                              ETA_UNWRAP_METHOD_RESOLVE_KEY);

  if (arguments != NULL)
    eta_token_manager_find_key_async (self->manager, fingerprint, NULL, on_key_found,
                                      g_object_ref (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- Unwrap ---- */

typedef struct
{
  GDBusMethodInvocation *invocation;
  EtaSealKey *seal_key;     /* agreed with the caller's session key before the token works */
  gchar *requester;
  guint pid;
  gchar *key_label;
  gchar *token_label;
  gint64 caller_deadline;   /* monotonic µs; 0 when the caller did not say */
  EtaActivityLog *activity;
  EtaAgentService *service;
  gchar *sender;            /* NULL on a peer-to-peer connection */
  GCancellable *caller_gone;
} UnwrapCall;

/* Counts the call against its sender, whose departure cancels caller_gone. */
static void
watch_caller (EtaAgentService *self, UnwrapCall *call)
{
  const gchar *sender = g_dbus_method_invocation_get_sender (call->invocation);
  CallerWatch *watch;

  call->service = g_object_ref (self);
  if (sender == NULL || !g_dbus_is_unique_name (sender))
    {
      call->caller_gone = g_cancellable_new ();
      return;
    }
  watch = g_hash_table_lookup (self->callers, sender);
  if (watch == NULL)
    {
      if (g_hash_table_size (self->callers) >= MAX_IDLE_WATCHES)
        {
          GHashTableIter iter;
          gpointer value;

          g_hash_table_iter_init (&iter, self->callers);
          while (g_hash_table_iter_next (&iter, NULL, &value))
            if (((CallerWatch *) value)->calls == 0)
              g_hash_table_iter_remove (&iter);
        }
      watch = g_new0 (CallerWatch, 1);
      watch->gone = g_cancellable_new ();
      g_hash_table_insert (self->callers, g_strdup (sender), watch);
    }
  watch->calls++;
  call->sender = g_strdup (sender);
  call->caller_gone = g_object_ref (watch->gone);
}

static void
unwatch_caller (UnwrapCall *call)
{
  CallerWatch *watch;

  if (call->sender == NULL || call->service->callers == NULL)
    return;
  watch = g_hash_table_lookup (call->service->callers, call->sender);
  /* Kept with no calls: its caller's next call finds it. */
  if (watch != NULL && watch->gone == call->caller_gone)
    watch->calls--;
}

static void
on_name_owner_changed (GDBusConnection *connection, const gchar *sender_name,
                       const gchar *object_path, const gchar *interface_name,
                       const gchar *signal_name, GVariant *parameters, gpointer user_data)
{
  EtaAgentService *self = user_data;
  const gchar *name, *old_owner, *new_owner;
  CallerWatch *watch;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sss)")))
    return;
  g_variant_get (parameters, "(&s&s&s)", &name, &old_owner, &new_owner);
  if (new_owner[0] != '\0')
    return;
  watch = g_hash_table_lookup (self->callers, name);
  if (watch == NULL)
    return;
  if (watch->calls > 0)
    g_message ("%s left the bus: closing the prompts it waited for", name);
  g_cancellable_cancel (watch->gone);
  g_hash_table_remove (self->callers, name);
}

/* ---- the unwrap log ---- */

static void
log_unwrap (EtaAgentService *self, const gchar *requester, guint pid, const gchar *fingerprint)
{
  gint64 now = g_get_monotonic_time ();
  gboolean same = self->logged_fingerprint != NULL && self->logged_pid == pid
                  && g_str_equal (self->logged_requester, requester)
                  && g_str_equal (self->logged_fingerprint, fingerprint);

  if (same && now - self->logged_at < G_USEC_PER_SEC)
    {
      self->logged_quiet++;
      g_debug ("unwrapped a key for %s (pid %u) with key %.16s", requester, pid, fingerprint);
      return;
    }
  if (self->logged_quiet > 0)
    g_message ("unwrapped %u more keys for %s (pid %u) with key %.16s since the last such line",
               self->logged_quiet, self->logged_requester, self->logged_pid,
               self->logged_fingerprint);
  g_message ("unwrapped a key for %s (pid %u) with key %.16s", requester, pid, fingerprint);
  if (!same)
    {
      g_free (self->logged_requester);
      self->logged_requester = g_strdup (requester);
      self->logged_pid = pid;
      g_free (self->logged_fingerprint);
      self->logged_fingerprint = g_strdup (fingerprint);
    }
  self->logged_at = now;
  self->logged_quiet = 0;
}

static void
unwrap_call_free (UnwrapCall *call)
{
  if (call->service != NULL)
    unwatch_caller (call);
  g_clear_object (&call->service);
  g_free (call->sender);
  g_clear_object (&call->caller_gone);
  g_object_unref (call->invocation);
  eta_seal_key_free (call->seal_key);
  g_free (call->requester);
  g_free (call->key_label);
  g_free (call->token_label);
  g_clear_object (&call->activity);
  g_free (call);
}

/* What a caller that does not say its name is called. */
static gchar *
unnamed_program (void)
{
  /* The default is translated here: po/POTFILES.in lists this file. */
  return eta_unwrap_arguments_shown_text (_("an unnamed program"), ETA_UNWRAP_REQUESTER_MAX_BYTES);
}

/* Who asks, from an Unwrap's or Unlock's checked details (whose strings
 * and seal key it takes); @requester points into the call, which must
 * outlive it. */
static UnwrapCall *
unwrap_call_new (GDBusMethodInvocation *invocation, EtaUnwrapArguments *arguments,
                 EtaRequester *requester)
{
  UnwrapCall *call = g_new0 (UnwrapCall, 1);

  call->invocation = g_object_ref (invocation);
  call->seal_key = g_steal_pointer (&arguments->seal_key);
  call->requester = arguments->requester != NULL ? g_steal_pointer (&arguments->requester)
                                                 : unnamed_program ();
  call->pid = arguments->pid;
  if (arguments->timeout_ms > 0)
    call->caller_deadline = g_get_monotonic_time () + (gint64) arguments->timeout_ms * 1000;
  call->key_label = g_steal_pointer (&arguments->key_label);
  call->token_label = g_steal_pointer (&arguments->token_label);

  requester->requester = call->requester;
  requester->pid = call->pid;
  requester->key_label = call->key_label;
  requester->token_label = call->token_label;
  requester->interactive = arguments->interactive;
  requester->caller_deadline = call->caller_deadline;
  requester->insert_wait_ms = requester->interactive ? ETA_INSERT_TOKEN_WAIT_MS : 0;
  return call;
}

/* The PIN came after the caller (the kernel, through ecryptfsd) gave up: the
 * open failed, but the token is unlocked now and a retry will work. */
static void
notify_unlocked_late (UnwrapCall *call)
{
  GApplication *application = g_application_get_default ();
  g_autoptr (GNotification) notification = NULL;

  g_message ("the PIN came after %s stopped waiting; telling the person to retry",
             call->requester);
  if (application == NULL)
    return;
  notification = g_notification_new (_("Token unlocked — open the file again"));
  g_notification_set_body (notification,
                           _("The PIN was entered after the file open had already failed. "
                             "The token is unlocked now: open the file again."));
  g_notification_set_priority (notification, G_NOTIFICATION_PRIORITY_HIGH);
  g_application_send_notification (application, "unlocked-late", notification);
}

static void
on_unwrapped (GObject *source, GAsyncResult *result, gpointer user_data)
{
  UnwrapCall *call = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (EtaTokenKey) key = NULL;
  g_autoptr (EtaSecret) plaintext = eta_token_manager_unwrap_finish (ETA_TOKEN_MANAGER (source),
                                                                     result, &key, &error);
  const gchar *fingerprint;
  guint8 agent_key[ETA_SEAL_PUBLIC_KEY_LEN];
  g_autofree guint8 *sealed = NULL;
  gsize sealed_len;

  if (plaintext == NULL)
    {
      g_message ("unwrap for %s (pid %u) failed: %s", call->requester, call->pid,
                 error->message);
      g_dbus_method_invocation_return_gerror (call->invocation, error);
      unwrap_call_free (call);
      return;
    }

  fingerprint = eta_token_key_get_fingerprint (key);
  sealed_len = eta_secret_get_length (plaintext) + ETA_SEAL_OVERHEAD;
  sealed = g_malloc (sealed_len);
  if (eta_seal_key_seal (call->seal_key, fingerprint, eta_secret_get_data (plaintext),
                         eta_secret_get_length (plaintext), agent_key, sealed) != 0)
    {
      g_dbus_method_invocation_return_error (call->invocation, ETA_AGENT_ERROR,
                                             ETA_AGENT_ERROR_FAILED,
                                             "cannot seal the unwrapped key");
      unwrap_call_free (call);
      return;
    }
  /* The caller (ecryptfsd, the kernel behind it) waits for the reply; what
   * is only bookkeeping comes after it. */
  g_dbus_method_invocation_return_value (
      call->invocation,
      g_variant_new ("(@ay@ay)",
                     g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, agent_key,
                                                sizeof agent_key, 1),
                     g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, sealed, sealed_len, 1)));
  log_unwrap (call->service, call->requester, call->pid, fingerprint);
  eta_activity_log_record_unwrap (call->activity, key, call->requester);
  if (call->caller_deadline != 0 && g_get_monotonic_time () > call->caller_deadline)
    notify_unlocked_late (call);
  unwrap_call_free (call);
  /* The next request's ephemeral key, made now rather than on its way. */
  eta_seal_key_prepare ();
}

static gboolean
on_handle_unwrap (EtaDBusTokenAgent1 *skeleton, GDBusMethodInvocation *invocation,
                  const gchar *fingerprint, const gchar *padding_name, GVariant *wrapped_key,
                  GVariant *session_public_key, GVariant *details, gpointer user_data)
{
  EtaAgentService *self = user_data;
  /* The seal key is agreed in the checks, so that a key nothing could be
   * sealed to costs no token operation and no PIN prompt. */
  g_autoptr (EtaUnwrapArguments) arguments = parse_arguments (invocation,
                                                              ETA_UNWRAP_METHOD_UNWRAP);
  UnwrapCall *call;
  EtaRequester requester = { 0 };

  if (arguments == NULL)
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  call = unwrap_call_new (invocation, arguments, &requester);
  call->activity = g_object_ref (self->activity);
  watch_caller (self, call);
  eta_token_manager_unwrap_async (self->manager, fingerprint, arguments->padding,
                                  arguments->wrapped, &requester, call->caller_gone,
                                  on_unwrapped, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* An Unwrap that eta-kept-key-unwrap.c answered from a kept epoch key: what
 * on_unwrapped does after its reply. */
static void
on_unwrapped_from_kept_key (gpointer owner, EtaTokenKey *key, const gchar *requester,
                            guint32 pid)
{
  EtaAgentService *self = owner;
  g_autofree gchar *unnamed = requester == NULL ? unnamed_program () : NULL;

  log_unwrap (self, requester != NULL ? requester : unnamed, pid,
              eta_token_key_get_fingerprint (key));
  eta_activity_log_record_unwrap (self->activity, key, requester != NULL ? requester : unnamed);
  eta_seal_key_prepare ();
}

/* ---- Unlock ---- */

static void
on_unlocked (GObject *source, GAsyncResult *result, gpointer user_data)
{
  UnwrapCall *call = user_data;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *fingerprint = NULL;
  g_autofree gchar *token_label = NULL;

  if (!eta_token_manager_unlock_finish (ETA_TOKEN_MANAGER (source), result, &fingerprint,
                                        &token_label, &error))
    {
      g_message ("unlock for %s (pid %u) failed: %s", call->requester, call->pid,
                 error->message);
      g_dbus_method_invocation_return_gerror (call->invocation, error);
    }
  else
    {
      g_message ("token %s unlocked for %s (pid %u) with key %.16s", token_label,
                 call->requester, call->pid, fingerprint);
      g_dbus_method_invocation_return_value (call->invocation,
                                             g_variant_new ("(ss)", fingerprint, token_label));
    }
  unwrap_call_free (call);
}

static gboolean
on_handle_unlock (EtaDBusTokenAgent1 *skeleton, GDBusMethodInvocation *invocation,
                  const gchar *fingerprint, GVariant *details, gpointer user_data)
{
  EtaAgentService *self = user_data;
  g_autoptr (EtaUnwrapArguments) arguments = parse_arguments (invocation,
                                                              ETA_UNWRAP_METHOD_UNLOCK);
  EtaRequester requester = { 0 };
  UnwrapCall *call;

  if (arguments == NULL)
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  call = unwrap_call_new (invocation, arguments, &requester);
  watch_caller (self, call);
  eta_token_manager_unlock_async (self->manager, fingerprint, &requester, call->caller_gone,
                                  on_unlocked, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- ListKeys, ListTokens, Lock ---- */

static void
on_keys_listed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GDBusMethodInvocation) invocation = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) keys = eta_token_manager_list_keys_finish (ETA_TOKEN_MANAGER (source),
                                                                  result, &error);
  g_auto (GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));

  if (keys == NULL)
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return;
    }
  for (guint i = 0; i < keys->len; i++)
    {
      EtaTokenKey *key = g_ptr_array_index (keys, i);
      g_variant_builder_open (&builder, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&builder, "{sv}", "fingerprint",
                             g_variant_new_string (eta_token_key_get_fingerprint (key)));
      g_variant_builder_add (&builder, "{sv}", "key-label",
                             g_variant_new_string (eta_token_key_get_label (key)));
      g_variant_builder_add (&builder, "{sv}", "token-label",
                             g_variant_new_string (eta_token_key_get_token_label (key)));
      g_variant_builder_add (&builder, "{sv}", "token-serial",
                             g_variant_new_string (eta_token_key_get_token_serial (key)));
      g_variant_builder_add (&builder, "{sv}", "sig",
                             g_variant_new_string (eta_token_key_get_sig (key)));
      g_variant_builder_add (&builder, "{sv}", "bits",
                             g_variant_new_uint32 (eta_token_key_get_bits (key)));
      g_variant_builder_close (&builder);
    }
  g_dbus_method_invocation_return_value (invocation,
                                         g_variant_new ("(@aa{sv})",
                                                        g_variant_builder_end (&builder)));
}

static gboolean
on_handle_list_keys (EtaDBusTokenAgent1 *skeleton, GDBusMethodInvocation *invocation,
                     gpointer user_data)
{
  EtaAgentService *self = user_data;
  eta_token_manager_list_keys_async (self->manager, NULL, on_keys_listed,
                                     g_object_ref (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

typedef struct
{
  GDBusMethodInvocation *invocation;
  gint64 lock_deadline;
} ListTokensCall;

/* Each logged-in token gets "login-expires": when the policy ends its login. */
static void
on_tokens_listed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ListTokensCall *call = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) tokens = eta_token_manager_list_tokens_finish (ETA_TOKEN_MANAGER (source),
                                                                     result, &error);
  g_auto (GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));
  GVariantIter iter;
  GVariant *token;

  if (tokens == NULL)
    {
      g_dbus_method_invocation_return_gerror (call->invocation, error);
      g_object_unref (call->invocation);
      g_free (call);
      return;
    }
  g_variant_iter_init (&iter, tokens);
  while ((token = g_variant_iter_next_value (&iter)) != NULL)
    {
      g_auto (GVariantDict) dict;
      const gchar *state = NULL;

      g_variant_dict_init (&dict, token);
      if (g_variant_dict_lookup (&dict, "state", "&s", &state)
          && g_str_equal (state, "logged-in"))
        g_variant_dict_insert (&dict, "login-expires", "x", call->lock_deadline);
      g_variant_builder_add_value (&builder, g_variant_dict_end (&dict));
      g_variant_unref (token);
    }
  g_dbus_method_invocation_return_value (call->invocation,
                                         g_variant_new ("(@aa{sv})",
                                                        g_variant_builder_end (&builder)));
  g_object_unref (call->invocation);
  g_free (call);
}

static gboolean
on_handle_list_tokens (EtaDBusTokenAgent1 *skeleton, GDBusMethodInvocation *invocation,
                       gpointer user_data)
{
  EtaAgentService *self = user_data;
  ListTokensCall *call = g_new0 (ListTokensCall, 1);

  call->invocation = g_object_ref (invocation);
  call->lock_deadline = self->policy ? eta_policy_get_lock_deadline (self->policy) : 0;
  eta_token_manager_list_tokens_async (self->manager, NULL, on_tokens_listed, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
on_locked (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GDBusMethodInvocation) invocation = user_data;
  g_autoptr (GError) error = NULL;

  if (!eta_token_manager_lock_finish (ETA_TOKEN_MANAGER (source), result, &error))
    g_dbus_method_invocation_return_gerror (invocation, error);
  else
    g_dbus_method_invocation_return_value (invocation, NULL);
}

static gboolean
on_handle_lock (EtaDBusTokenAgent1 *skeleton, GDBusMethodInvocation *invocation,
                gpointer user_data)
{
  EtaAgentService *self = user_data;
  eta_token_manager_lock_async (self->manager, NULL, on_locked, g_object_ref (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
on_token_state_changed (EtaTokenManager *manager, const gchar *label, const gchar *serial,
                        const gchar *state, gpointer user_data)
{
  EtaAgentService *self = user_data;
  eta_dbus_token_agent1_emit_token_state_changed (self->skeleton, label, serial, state);
}

/* ---- life cycle ---- */

EtaActivityLog *
eta_agent_service_get_activity_log (EtaAgentService *self)
{
  return self->activity;
}

gboolean
eta_agent_service_export (EtaAgentService *self, GDBusConnection *connection,
                          const gchar *object_path, GError **error)
{
  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (self->skeleton),
                                         connection, object_path, error))
    return FALSE;
  g_set_object (&self->connection, connection);
  self->kept_key_unwrap = eta_kept_key_unwrap_install (connection, object_path, self->manager,
                                                       self->caller_check, self,
                                                       on_unwrapped_from_kept_key);
  self->name_owner_changed = g_dbus_connection_signal_subscribe (
      connection, "org.freedesktop.DBus", "org.freedesktop.DBus", "NameOwnerChanged",
      "/org/freedesktop/DBus", NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_name_owner_changed, self,
      NULL);
  return TRUE;
}

void
eta_agent_service_unexport (EtaAgentService *self)
{
  if (self->connection != NULL && self->name_owner_changed != 0)
    g_dbus_connection_signal_unsubscribe (self->connection, self->name_owner_changed);
  self->name_owner_changed = 0;
  g_clear_pointer (&self->kept_key_unwrap, eta_kept_key_unwrap_uninstall);
  g_clear_object (&self->connection);
  g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (self->skeleton));
}

static void
eta_agent_service_dispose (GObject *object)
{
  EtaAgentService *self = ETA_AGENT_SERVICE (object);

  if (self->manager != NULL)
    g_clear_signal_handler (&self->state_handler, self->manager);
  if (self->connection != NULL && self->name_owner_changed != 0)
    g_dbus_connection_signal_unsubscribe (self->connection, self->name_owner_changed);
  self->name_owner_changed = 0;
  g_clear_pointer (&self->kept_key_unwrap, eta_kept_key_unwrap_uninstall);
  g_clear_object (&self->connection);
  /* A call the caller check holds (its sender's uid asked) keeps the
   * skeleton: it must not reach this service's handlers any more. */
  if (self->skeleton != NULL)
    g_signal_handlers_disconnect_by_data (self->skeleton, self);
  g_clear_object (&self->caller_check);
  g_clear_pointer (&self->callers, g_hash_table_unref);
  g_clear_pointer (&self->logged_requester, g_free);
  g_clear_pointer (&self->logged_fingerprint, g_free);
  g_clear_object (&self->skeleton);
  g_clear_object (&self->activity);
  g_clear_object (&self->manager);
  g_clear_object (&self->policy);
  G_OBJECT_CLASS (eta_agent_service_parent_class)->dispose (object);
}

static void
eta_agent_service_class_init (EtaAgentServiceClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = eta_agent_service_dispose;
}

static void
eta_agent_service_init (EtaAgentService *self)
{
  self->callers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) caller_watch_free);
}

EtaAgentService *
eta_agent_service_new (EtaTokenManager *manager, EtaPolicy *policy)
{
  EtaAgentService *self = g_object_new (ETA_TYPE_AGENT_SERVICE, NULL);

  self->manager = g_object_ref (manager);
  self->policy = policy ? g_object_ref (policy) : NULL;
  self->activity = eta_activity_log_new ();
  self->skeleton = eta_dbus_token_agent1_skeleton_new ();
  /* Test-only: a VM reaches the test bus with ANONYMOUS authentication, which
   * carries no uid (EtaCallerCheck then lets it through). */
  if (g_getenv ("ECRYPTFS_TOKEN_AGENT_TEST_ALLOW_ANONYMOUS") != NULL)
    g_warning ("ECRYPTFS_TOKEN_AGENT_TEST_ALLOW_ANONYMOUS is set: callers of unknown uid "
               "are served. This is for tests only.");
  self->caller_check = eta_caller_check_new ();
  eta_caller_check_guard (self->caller_check, G_DBUS_INTERFACE_SKELETON (self->skeleton));
  g_signal_connect (self->skeleton, "handle-resolve-key", G_CALLBACK (on_handle_resolve_key), self);
  g_signal_connect (self->skeleton, "handle-unwrap", G_CALLBACK (on_handle_unwrap), self);
  g_signal_connect (self->skeleton, "handle-unlock", G_CALLBACK (on_handle_unlock), self);
  g_signal_connect (self->skeleton, "handle-list-keys", G_CALLBACK (on_handle_list_keys), self);
  g_signal_connect (self->skeleton, "handle-list-tokens", G_CALLBACK (on_handle_list_tokens), self);
  g_signal_connect (self->skeleton, "handle-lock", G_CALLBACK (on_handle_lock), self);
  self->state_handler = g_signal_connect (manager, "token-state-changed",
                                          G_CALLBACK (on_token_state_changed), self);
  return self;
}

/* See eta-agent-client.h. */
#include "config.h"

#include "eta-agent-client.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "eta-key-id.h"
#include "eta-names.h"
#include "eta-seal.h"

static GMutex connection_lock;
static GDBusConnection *cached_connection;
/* The unique name of the agent whose uid was checked, on cached_connection.
 * Unique names are never reused on a bus, so the check holds for as long as
 * that name answers; calls go to it, never to the well-known name, which
 * could change hands between the check and the call. */
static gchar *verified_agent;

static gboolean
socket_is_ours (const gchar *path)
{
  struct stat st;
  return stat (path, &st) == 0 && S_ISSOCK (st.st_mode) && st.st_uid == geteuid ();
}

gchar *
eta_agent_client_find_bus_address (GError **error)
{
  const gchar *address = g_getenv ("DBUS_SESSION_BUS_ADDRESS");
  const gchar *runtime_dir = g_getenv ("XDG_RUNTIME_DIR");
  g_autofree gchar *path = NULL;

  if (address != NULL && *address != '\0')
    return g_strdup (address);

  if (runtime_dir != NULL)
    {
      path = g_build_filename (runtime_dir, "bus", NULL);
      if (socket_is_ours (path))
        return g_strconcat ("unix:path=", path, NULL);
      g_clear_pointer (&path, g_free);
    }
  path = g_strdup_printf ("/run/user/%u/bus", (guint) geteuid ());
  if (socket_is_ours (path))
    return g_strconcat ("unix:path=", path, NULL);

  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
               "no session bus: DBUS_SESSION_BUS_ADDRESS is unset and no bus socket "
               "owned by uid %u was found in $XDG_RUNTIME_DIR or /run/user/%u",
               (guint) geteuid (), (guint) geteuid ());
  return NULL;
}

typedef struct
{
  GDBusConnection *connection;
  GError *error;
  gboolean done;
} ConnectResult;

static void
on_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ConnectResult *connect_result = user_data;
  connect_result->connection = g_dbus_connection_new_for_address_finish (result,
                                                                         &connect_result->error);
  connect_result->done = TRUE;
}

static gboolean
on_connect_timeout (gpointer user_data)
{
  g_cancellable_cancel (user_data);
  return G_SOURCE_REMOVE;
}

/* Connects with an upper bound on the wait: a bus that accepts but never
 * answers must not hold ecryptfsd past the kernel's deadline. */
static GDBusConnection *
connect_bounded (const gchar *address, guint timeout_ms, GError **error)
{
  g_autoptr (GMainContext) context = g_main_context_new ();
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GSource) timeout = g_timeout_source_new (timeout_ms);
  ConnectResult result = { NULL, NULL, FALSE };

  g_main_context_push_thread_default (context);
  g_source_set_callback (timeout, on_connect_timeout, cancellable, NULL);
  g_source_attach (timeout, context);
  g_dbus_connection_new_for_address (address,
                                     G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
                                     | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                     NULL, cancellable, on_connected, &result);
  while (!result.done)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (timeout);
  g_main_context_pop_thread_default (context);

  if (result.error != NULL)
    {
      if (g_error_matches (result.error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_clear_error (&result.error);
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                       "the session bus at %s did not answer within %u ms",
                       address, timeout_ms);
        }
      else
        g_propagate_error (error, result.error);
      return NULL;
    }
  /* ecryptfsd must outlive a bus that goes away. */
  g_dbus_connection_set_exit_on_close (result.connection, FALSE);
  return result.connection;
}

static GDBusConnection *
get_connection (guint timeout_ms, GError **error)
{
  g_autofree gchar *address = NULL;
  GDBusConnection *connection;

  g_mutex_lock (&connection_lock);
  if (cached_connection != NULL && g_dbus_connection_is_closed (cached_connection))
    g_clear_object (&cached_connection);
  if (cached_connection == NULL)
    {
      address = eta_agent_client_find_bus_address (error);
      if (address != NULL)
        cached_connection = connect_bounded (address, timeout_ms, error);
    }
  connection = cached_connection ? g_object_ref (cached_connection) : NULL;
  g_mutex_unlock (&connection_lock);
  return connection;
}

void
eta_agent_client_disconnect (void)
{
  g_mutex_lock (&connection_lock);
  g_clear_object (&cached_connection);
  g_clear_pointer (&verified_agent, g_free);
  g_mutex_unlock (&connection_lock);
  eta_seal_forget_prepared ();
}

static gint
remaining_ms (gint64 deadline)
{
  gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
  return left > 0 ? (gint) left : 0;
}

static GVariant *
call_bus_daemon (GDBusConnection *connection, const gchar *method, GVariant *parameters,
                 const gchar *reply_type, gint timeout_ms, GError **error)
{
  return g_dbus_connection_call_sync (connection, "org.freedesktop.DBus",
                                      "/org/freedesktop/DBus", "org.freedesktop.DBus", method,
                                      parameters, G_VARIANT_TYPE (reply_type),
                                      G_DBUS_CALL_FLAGS_NONE, timeout_ms, NULL, error);
}

static gboolean
error_is_remote (const GError *error, const gchar *name)
{
  g_autofree gchar *remote = g_dbus_error_get_remote_error (error);
  return remote != NULL && g_str_equal (remote, name);
}

gchar *
eta_agent_client_find_agent (GDBusConnection *connection, gboolean start_agent,
                             gint timeout_ms, GError **error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  g_autoptr (GVariant) owner_reply = NULL;
  g_autoptr (GVariant) uid_reply = NULL;
  g_autoptr (GVariant) pid_reply = NULL;
  g_autoptr (GError) owner_error = NULL;
  const gchar *owner;
  guint32 uid, pid = 0;

  owner_reply = call_bus_daemon (connection, "GetNameOwner", g_variant_new ("(s)", ETA_BUS_NAME),
                                 "(s)", remaining_ms (deadline), &owner_error);
  if (owner_reply == NULL && start_agent
      && error_is_remote (owner_error, "org.freedesktop.DBus.Error.NameHasNoOwner"))
    {
      /* Activation by the bus, as a call to the well-known name would do, but
       * without sending the request itself to whoever owns the name then. */
      g_autoptr (GVariant) started = call_bus_daemon (connection, "StartServiceByName",
                                                      g_variant_new ("(su)", ETA_BUS_NAME, 0),
                                                      "(u)", remaining_ms (deadline), error);
      if (started == NULL)
        return NULL;
      g_clear_error (&owner_error);
      owner_reply = call_bus_daemon (connection, "GetNameOwner",
                                     g_variant_new ("(s)", ETA_BUS_NAME), "(s)",
                                     remaining_ms (deadline), &owner_error);
    }
  if (owner_reply == NULL)
    {
      g_propagate_error (error, g_steal_pointer (&owner_error));
      return NULL;
    }
  g_variant_get (owner_reply, "(&s)", &owner);

  uid_reply = call_bus_daemon (connection, "GetConnectionUnixUser", g_variant_new ("(s)", owner),
                               "(u)", remaining_ms (deadline), error);
  if (uid_reply == NULL)
    return NULL;
  g_variant_get (uid_reply, "(u)", &uid);
  if (uid != (guint32) geteuid ())
    {
      /* Only for the message: who to look for. */
      pid_reply = call_bus_daemon (connection, "GetConnectionUnixProcessID",
                                   g_variant_new ("(s)", owner), "(u)", remaining_ms (deadline),
                                   NULL);
      if (pid_reply != NULL)
        g_variant_get (pid_reply, "(u)", &pid);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   "the bus name %s is held by %s (pid %u, uid %u), not by uid %u: "
                   "nothing was sent to it", ETA_BUS_NAME, owner, pid, uid, (guint) geteuid ());
      return NULL;
    }
  return g_strdup (owner);
}

/* The checked agent on the module's connection, asked for once per agent. */
static gchar *
get_agent (GDBusConnection *connection, gint64 deadline, GError **error)
{
  gchar *agent = NULL;

  g_mutex_lock (&connection_lock);
  if (verified_agent != NULL && connection == cached_connection)
    agent = g_strdup (verified_agent);
  g_mutex_unlock (&connection_lock);
  if (agent != NULL)
    return agent;

  agent = eta_agent_client_find_agent (connection, TRUE, remaining_ms (deadline), error);
  if (agent == NULL)
    return NULL;
  g_mutex_lock (&connection_lock);
  if (connection == cached_connection)
    {
      g_free (verified_agent);
      verified_agent = g_strdup (agent);
    }
  g_mutex_unlock (&connection_lock);
  return agent;
}

static void
forget_agent (const gchar *agent)
{
  g_mutex_lock (&connection_lock);
  if (g_strcmp0 (verified_agent, agent) == 0)
    g_clear_pointer (&verified_agent, g_free);
  g_mutex_unlock (&connection_lock);
}

typedef struct
{
  GVariant *reply;
  GError *error;
  gboolean done;
} CallResult;

static void
on_call_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CallResult *call = user_data;

  call->reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &call->error);
  call->done = TRUE;
}

/* Where a thread's calls get their replies: made once per thread, not once
 * per call as g_dbus_connection_call_sync() does (a context is an eventfd
 * and a few allocations). GLib is never unloaded (NODELETE), so the
 * contexts can outlive the module. */
static GPrivate reply_context = G_PRIVATE_INIT ((GDestroyNotify) g_main_context_unref);

/* g_dbus_connection_call_sync() to @agent, except that @while_waiting (may
 * be NULL) runs once the call is on its way: time the agent takes anyway. */
static GVariant *
call_and_wait (GDBusConnection *connection, const gchar *agent, const gchar *method,
               GVariant *parameters, const GVariantType *reply_type, gint timeout_ms,
               void (*while_waiting) (void), GError **error)
{
  GMainContext *context = g_private_get (&reply_context);
  CallResult result = { NULL, NULL, FALSE };

  if (context == NULL)
    {
      context = g_main_context_new ();
      g_private_set (&reply_context, context);
    }
  g_main_context_push_thread_default (context);
  g_dbus_connection_call (connection, agent, ETA_OBJECT_PATH, ETA_INTERFACE, method, parameters,
                          reply_type, G_DBUS_CALL_FLAGS_NONE, timeout_ms, NULL, on_call_done,
                          &result);
  if (while_waiting != NULL)
    while_waiting ();
  while (!result.done)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);
  if (result.reply == NULL)
    g_propagate_error (error, result.error);
  return result.reply;
}

/* Calls @method of the checked agent. When that agent has gone (a restart
 * gives the new one another unique name), finds and checks the new owner
 * once, within the same deadline. @while_waiting as in call_and_wait(). */
static GVariant *
call_agent (GDBusConnection *connection, const gchar *method, GVariant *parameters,
            const GVariantType *reply_type, gint64 deadline, void (*while_waiting) (void),
            GError **error)
{
  g_autoptr (GVariant) owned = g_variant_ref_sink (parameters);

  for (int attempt = 0;; attempt++)
    {
      g_autoptr (GError) call_error = NULL;
      g_autofree gchar *agent = get_agent (connection, deadline, error);
      GVariant *reply;

      if (agent == NULL)
        return NULL;
      if (remaining_ms (deadline) == 0)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "no time left to ask the agent");
          return NULL;
        }
      reply = call_and_wait (connection, agent, method, owned, reply_type,
                             remaining_ms (deadline), while_waiting, &call_error);
      if (reply != NULL)
        return reply;
      if (attempt == 0
          && error_is_remote (call_error, "org.freedesktop.DBus.Error.ServiceUnknown"))
        {
          forget_agent (agent);
          continue;
        }
      g_propagate_error (error, g_steal_pointer (&call_error));
      return NULL;
    }
}

EtaPublicKeyRecord *
eta_agent_client_resolve (const gchar *fingerprint, guint timeout_ms, GError **error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  g_autoptr (GDBusConnection) connection = get_connection (timeout_ms, error);
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) spki = NULL;
  g_autoptr (EtaPublicKeyRecord) record = NULL;
  const gchar *full = NULL, *key_label = NULL, *token_label = NULL;
  guint8 computed[ETA_FINGERPRINT_LEN];
  char computed_hex[2 * ETA_FINGERPRINT_LEN + 1];

  if (connection == NULL)
    return NULL;
  reply = call_agent (connection, "ResolveKey", g_variant_new ("(s)", fingerprint),
                      G_VARIANT_TYPE ("(sayss)"), deadline, NULL, error);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(&s@ay&s&s)", &full, &spki, &key_label, &token_label);

  /* The key goes into the auth token and wraps every new file: it must be
   * the one asked for, whatever the agent says. */
  if (eta_key_fingerprint (g_variant_get_data (spki), g_variant_get_size (spki), computed) != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "the agent answered with a public key that cannot be parsed");
      return NULL;
    }
  eta_key_to_hex (computed, sizeof computed, computed_hex);
  if (!g_str_equal (computed_hex, full) || !g_str_has_prefix (computed_hex, fingerprint))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "the agent answered with a public key whose fingerprint is %s, not the %s "
                   "asked for: refused", computed_hex, fingerprint);
      return NULL;
    }

  record = g_new0 (EtaPublicKeyRecord, 1);
  record->spki = g_variant_get_data_as_bytes (spki);
  record->fingerprint_hex = g_strdup (full);
  record->key_label = g_strdup (key_label);
  record->token_label = g_strdup (token_label);
  record->padding = ETA_PADDING_OAEP;
  return g_steal_pointer (&record);
}

static GVariant *
request_details (guint timeout_ms, const gchar *key_label, const gchar *token_label,
                 gboolean interactive)
{
  g_autoptr (GVariantBuilder) builder = g_variant_builder_new (G_VARIANT_TYPE_VARDICT);
  const gchar *name = g_get_prgname ();

  g_variant_builder_add (builder, "{sv}", "requester",
                         g_variant_new_string (name != NULL ? name : "ecryptfsd"));
  g_variant_builder_add (builder, "{sv}", "pid", g_variant_new_uint32 ((guint32) getpid ()));
  /* How long this caller waits: a PIN entered later is still worth telling
   * the person about, since the open itself has failed by then. */
  g_variant_builder_add (builder, "{sv}", "timeout-ms", g_variant_new_uint32 (timeout_ms));
  g_variant_builder_add (builder, "{sv}", "interactive", g_variant_new_boolean (interactive));
  if (key_label != NULL)
    g_variant_builder_add (builder, "{sv}", "key-label", g_variant_new_string (key_label));
  if (token_label != NULL)
    g_variant_builder_add (builder, "{sv}", "token-label", g_variant_new_string (token_label));
  return g_variant_builder_end (builder);
}

gboolean
eta_agent_client_unwrap (const gchar *fingerprint_hex, EtaPadding padding,
                         const gchar *key_label, const gchar *token_label,
                         gboolean interactive,
                         const guint8 *wrapped, gsize wrapped_len,
                         guint timeout_ms,
                         guint8 *plaintext, gsize *plaintext_len,
                         GError **error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  g_autoptr (GDBusConnection) connection = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) agent_key = NULL;
  g_autoptr (GVariant) sealed = NULL;
  EtaSealSession *session;
  gsize agent_key_len = 0, sealed_len = 0, opened_len = 0;
  const guint8 *agent_key_data, *sealed_data;
  guint8 opened[ETA_SEAL_MAX_PLAINTEXT];
  gboolean ok = FALSE;

  connection = get_connection (timeout_ms, error);
  if (connection == NULL)
    return FALSE;
  if (remaining_ms (deadline) == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                   "connecting to the session bus used up the %u ms budget", timeout_ms);
      return FALSE;
    }

  /* The key pair of the last unwraps, while young (a folder read), else the
   * one made while the last unwrap waited. */
  session = eta_seal_session_reuse ();
  if (session == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot make an X25519 key");
      return FALSE;
    }

  reply = call_agent (
      connection, "Unwrap",
      g_variant_new ("(ss@ay@ay@a{sv})", fingerprint_hex, eta_padding_to_string (padding),
                     g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, wrapped, wrapped_len, 1),
                     g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE,
                                                eta_seal_session_get_public_key (session),
                                                ETA_SEAL_PUBLIC_KEY_LEN, 1),
                     request_details ((guint) remaining_ms (deadline), key_label, token_label,
                                      interactive)),
      G_VARIANT_TYPE ("(ayay)"), deadline, eta_seal_session_prepare, error);
  if (reply == NULL)
    goto out;

  g_variant_get (reply, "(@ay@ay)", &agent_key, &sealed);
  agent_key_data = g_variant_get_fixed_array (agent_key, &agent_key_len, 1);
  sealed_data = g_variant_get_fixed_array (sealed, &sealed_len, 1);
  if (eta_seal_session_open (session, agent_key_data, agent_key_len, fingerprint_hex,
                             sealed_data, sealed_len, opened, &opened_len) != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "the agent's sealed reply failed authentication");
      goto out;
    }
  if (opened_len > *plaintext_len)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                   "the unwrapped key is %zu bytes, more than the %zu allowed",
                   opened_len, *plaintext_len);
      goto out;
    }
  memcpy (plaintext, opened, opened_len);
  *plaintext_len = opened_len;
  ok = TRUE;

out:
  OPENSSL_cleanse (opened, sizeof opened);
  eta_seal_session_free (session);
  return ok;
}

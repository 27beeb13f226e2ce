/* See eta-pin-store.h. */
#define G_LOG_DOMAIN "eta-pin-store"

#include "config.h"

#include "eta-pin-store.h"

#include <string.h>

#include <glib/gi18n.h>

/* Anything longer in the keyring is not a PIN this agent stored (the
 * prompters read at most 256 bytes). */
#define MAX_PIN_BYTES 256

const SecretSchema *
eta_pin_store_get_schema (void)
{
  static const SecretSchema schema = {
    ETA_PIN_SCHEMA_NAME,
    SECRET_SCHEMA_NONE,
    {
      { "manufacturer", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { "model", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { "serial", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { "label", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { NULL, 0 },
    },
  };
  return &schema;
}

/* One call: what the worker thread needs, and a cancellable of its own that
 * the timeout and the caller's cancellable both cancel. */
typedef struct
{
  GCancellable *cancellable;
  GCancellable *caller_cancellable;
  gulong caller_handler;
  GSource *timeout;

  GHashTable *attributes;          /* which items */
  SecretSearchFlags search_flags;  /* delete, forget_all */
  gchar *item_label;               /* store */
  EtaSecret *pin;                  /* store */
} StoreCall;

static void
store_call_free (StoreCall *call)
{
  if (call->timeout != NULL)
    {
      g_source_destroy (call->timeout);
      g_source_unref (call->timeout);
    }
  if (call->caller_cancellable != NULL)
    g_cancellable_disconnect (call->caller_cancellable, call->caller_handler);
  g_clear_object (&call->caller_cancellable);
  g_clear_object (&call->cancellable);
  g_clear_pointer (&call->attributes, g_hash_table_unref);
  g_free (call->item_label);
  g_clear_pointer (&call->pin, eta_secret_unref);
  g_free (call);
}

static gboolean
on_timeout (gpointer user_data)
{
  g_cancellable_cancel (user_data);
  return G_SOURCE_REMOVE;
}

static void
on_caller_cancelled (GCancellable *caller, gpointer user_data)
{
  g_cancellable_cancel (user_data);
}

static GHashTable *
token_attributes (const EtaPinStoreToken *token)
{
  GHashTable *attributes;

  g_return_val_if_fail (token->manufacturer != NULL && token->model != NULL
                        && token->serial != NULL && token->label != NULL, NULL);
  attributes = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  g_hash_table_insert (attributes, "manufacturer", g_strdup (token->manufacturer));
  g_hash_table_insert (attributes, "model", g_strdup (token->model));
  g_hash_table_insert (attributes, "serial", g_strdup (token->serial));
  g_hash_table_insert (attributes, "label", g_strdup (token->label));
  return attributes;
}

/* Runs @func in a thread; the result comes back in the thread-default main
 * context of the caller, where the timeout runs too. */
static void
start_call (StoreCall *call, GTaskThreadFunc func, gpointer source_tag, guint timeout_ms,
            GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = NULL;

  call->cancellable = g_cancellable_new ();
  if (cancellable != NULL)
    {
      call->caller_cancellable = g_object_ref (cancellable);
      call->caller_handler = g_cancellable_connect (cancellable,
                                                    G_CALLBACK (on_caller_cancelled),
                                                    call->cancellable, NULL);
    }
  /* The source holds the cancellable, not the call: it may fire on another
   * thread while the call is being freed. */
  call->timeout = g_timeout_source_new (timeout_ms);
  g_source_set_callback (call->timeout, on_timeout, g_object_ref (call->cancellable),
                         g_object_unref);
  g_source_attach (call->timeout, g_main_context_get_thread_default ());
  task = g_task_new (NULL, call->cancellable, callback, user_data);
  g_task_set_source_tag (task, source_tag);
  g_task_set_task_data (task, call, (GDestroyNotify) store_call_free);
  g_task_set_return_on_cancel (task, TRUE);
  g_task_run_in_thread (task, func);
}

/* Moves @local_error to @error, naming a cancellation by the timeout. */
static void
propagate_call_error (GAsyncResult *result, GError *local_error, GError **error)
{
  StoreCall *call = g_task_get_task_data (G_TASK (result));

  if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
      && (call->caller_cancellable == NULL
          || !g_cancellable_is_cancelled (call->caller_cancellable)))
    {
      g_clear_error (&local_error);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                   "the Secret Service did not answer in time");
    }
  else
    g_propagate_error (error, local_error);
}

/* Worker thread: the service, with a session that encrypts secrets on the
 * bus; a PIN is never sent or received in clear. */
static SecretService *
get_encrypting_service (GCancellable *cancellable, GError **error)
{
  g_autoptr (SecretService) service = secret_service_get_sync (SECRET_SERVICE_OPEN_SESSION,
                                                               cancellable, error);
  const gchar *algorithms;

  if (service == NULL)
    return NULL;
  algorithms = secret_service_get_session_algorithms (service);
  if (algorithms == NULL || g_str_equal (algorithms, "plain"))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "the Secret Service offers no encrypted session; "
                   "a PIN does not cross the bus in clear");
      return NULL;
    }
  return g_steal_pointer (&service);
}

/* ---- lookup ---- */

/* Worker thread. Only unlocked items are read: a lookup never unlocks. */
static void
lookup_in_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  StoreCall *call = data;
  g_autoptr (SecretService) service = NULL;
  g_autolist (SecretItem) items = NULL;
  GError *error = NULL;
  gboolean locked = FALSE;

  service = get_encrypting_service (cancellable, &error);
  if (service != NULL)
    items = secret_service_search_sync (service, eta_pin_store_get_schema (), call->attributes,
                                        SECRET_SEARCH_ALL | SECRET_SEARCH_LOAD_SECRETS,
                                        cancellable, &error);
  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  for (GList *l = items; l != NULL; l = l->next)
    {
      SecretValue *value = secret_item_get_secret (l->data);
      const gchar *bytes;
      gsize len = 0;
      EtaSecret *pin;

      if (value == NULL)
        {
          locked = locked || secret_item_get_locked (l->data);
          continue;
        }
      bytes = secret_value_get (value, &len);
      if (len == 0 || len >= MAX_PIN_BYTES || memchr (bytes, '\0', len) != NULL)
        {
          g_debug ("%s: a remembered item holds no usable PIN; ignored", G_STRFUNC);
          secret_value_unref (value);
          continue;
        }
      pin = eta_secret_new_from_data ((const guint8 *) bytes, len);
      secret_value_unref (value);
      g_task_return_pointer (task, pin, (GDestroyNotify) eta_secret_unref);
      return;
    }
  if (locked)
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                             "the keyring holding the remembered PIN is locked");
  else
    g_task_return_pointer (task, NULL, NULL);
}

void
eta_pin_store_lookup_async (const EtaPinStoreToken *token, guint timeout_ms,
                            GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data)
{
  StoreCall *call = g_new0 (StoreCall, 1);

  call->attributes = token_attributes (token);
  start_call (call, lookup_in_thread, eta_pin_store_lookup_async, timeout_ms, cancellable,
              callback, user_data);
}

EtaSecret *
eta_pin_store_lookup_finish (GAsyncResult *result, GError **error)
{
  GError *local_error = NULL;
  EtaSecret *pin;

  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == eta_pin_store_lookup_async,
                        NULL);
  pin = g_task_propagate_pointer (G_TASK (result), &local_error);
  if (local_error != NULL)
    propagate_call_error (result, local_error, error);
  return pin;
}

/* ---- store ---- */

/* Worker thread. A locked keyring is an error, not an unlock prompt: the
 * person has just answered the agent's own prompt. */
static void
store_in_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  StoreCall *call = data;
  g_autoptr (SecretService) service = NULL;
  g_autoptr (SecretCollection) collection = NULL;
  SecretValue *value;
  GError *error = NULL;
  gboolean stored;

  service = get_encrypting_service (cancellable, &error);
  if (service != NULL)
    collection = secret_collection_for_alias_sync (service, SECRET_COLLECTION_DEFAULT,
                                                   SECRET_COLLECTION_NONE, cancellable, &error);
  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (collection == NULL || secret_collection_get_locked (collection))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                               collection == NULL ? "the Secret Service has no default keyring"
                                                  : "the login keyring is locked");
      return;
    }
  value = secret_value_new ((const gchar *) eta_secret_get_data (call->pin),
                            (gssize) eta_secret_get_length (call->pin), "text/plain");
  stored = secret_service_store_sync (service, eta_pin_store_get_schema (), call->attributes,
                                      SECRET_COLLECTION_DEFAULT, call->item_label, value,
                                      cancellable, &error);
  secret_value_unref (value);
  if (!stored)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

void
eta_pin_store_store_async (const EtaPinStoreToken *token, EtaSecret *pin, guint timeout_ms,
                           GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data)
{
  StoreCall *call = g_new0 (StoreCall, 1);

  g_return_if_fail (pin != NULL);
  call->attributes = token_attributes (token);
  call->pin = eta_secret_ref (pin);
  /* TRANSLATORS: the name of the keyring item holding a token's PIN, as a
   * keyring manager (Seahorse) lists it; %s is the token's label. */
  call->item_label = g_strdup_printf (_("PIN of token “%s”"), token->label);
  start_call (call, store_in_thread, eta_pin_store_store_async, timeout_ms, cancellable,
              callback, user_data);
}

gboolean
eta_pin_store_store_finish (GAsyncResult *result, GError **error)
{
  GError *local_error = NULL;

  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == eta_pin_store_store_async,
                        FALSE);
  if (g_task_propagate_boolean (G_TASK (result), &local_error))
    return TRUE;
  propagate_call_error (result, local_error, error);
  return FALSE;
}

/* ---- delete, forget all ---- */

/* Worker thread: libsecret's synchronous calls honour the cancellable. */
static void
delete_in_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  StoreCall *call = data;
  g_autolist (SecretItem) items = NULL;
  GError *error = NULL;
  gint deleted = 0;

  items = secret_service_search_sync (NULL, eta_pin_store_get_schema (), call->attributes,
                                      call->search_flags, cancellable, &error);
  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  for (GList *l = items; l != NULL; l = l->next)
    {
      if (secret_item_get_locked (l->data))
        {
          g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                                   "the keyring holding a remembered PIN stayed locked; "
                                   "unlock it and try again");
          return;
        }
      if (!secret_item_delete_sync (l->data, cancellable, &error))
        {
          g_task_return_error (task, error);
          return;
        }
      deleted++;
    }
  g_task_return_int (task, deleted);
}

static gint
delete_finish (GAsyncResult *result, GError **error)
{
  GError *local_error = NULL;
  gint deleted = (gint) g_task_propagate_int (G_TASK (result), &local_error);

  if (local_error == NULL)
    return deleted;
  propagate_call_error (result, local_error, error);
  return -1;
}

void
eta_pin_store_delete_async (const EtaPinStoreToken *token, guint timeout_ms,
                            GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data)
{
  StoreCall *call = g_new0 (StoreCall, 1);

  call->attributes = token_attributes (token);
  call->search_flags = SECRET_SEARCH_ALL;
  start_call (call, delete_in_thread, eta_pin_store_delete_async, timeout_ms, cancellable,
              callback, user_data);
}

gint
eta_pin_store_delete_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == eta_pin_store_delete_async,
                        -1);
  return delete_finish (result, error);
}

void
eta_pin_store_forget_all_async (guint timeout_ms, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data)
{
  StoreCall *call = g_new0 (StoreCall, 1);

  call->attributes = g_hash_table_new (g_str_hash, g_str_equal);
  call->search_flags = SECRET_SEARCH_ALL | SECRET_SEARCH_UNLOCK;
  start_call (call, delete_in_thread, eta_pin_store_forget_all_async, timeout_ms, cancellable,
              callback, user_data);
}

gint
eta_pin_store_forget_all_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (
      g_task_get_source_tag (G_TASK (result)) == eta_pin_store_forget_all_async, -1);
  return delete_finish (result, error);
}

/* See eta-pin-store.h. */
#define G_LOG_DOMAIN "eta-pin-store"

#include "eta-pin-store.h"

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

/* The timeout cancels a cancellable of its own, chained to the caller's. */
typedef struct
{
  GCancellable *cancellable;
  GCancellable *caller_cancellable;
  gulong caller_handler;
  guint timeout_id;
  gboolean timed_out;
} ForgetCall;

static void
forget_call_free (ForgetCall *call)
{
  if (call->timeout_id != 0)
    g_source_remove (call->timeout_id);
  if (call->caller_cancellable != NULL)
    g_cancellable_disconnect (call->caller_cancellable, call->caller_handler);
  g_clear_object (&call->caller_cancellable);
  g_clear_object (&call->cancellable);
  g_free (call);
}

static gboolean
on_forget_timeout (gpointer user_data)
{
  ForgetCall *call = user_data;

  call->timeout_id = 0;
  call->timed_out = TRUE;
  g_cancellable_cancel (call->cancellable);
  return G_SOURCE_REMOVE;
}

static void
on_caller_cancelled (GCancellable *caller, gpointer user_data)
{
  g_cancellable_cancel (user_data);
}

/* Worker thread: libsecret's synchronous calls honour the cancellable. */
static void
forget_in_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  g_autoptr (GHashTable) attributes = g_hash_table_new (g_str_hash, g_str_equal);
  g_autolist (SecretItem) items = NULL;
  GError *error = NULL;
  gint deleted = 0;

  items = secret_service_search_sync (NULL, eta_pin_store_get_schema (), attributes,
                                      SECRET_SEARCH_ALL | SECRET_SEARCH_UNLOCK, cancellable,
                                      &error);
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

void
eta_pin_store_forget_all_async (guint timeout_ms, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data)
{
  ForgetCall *call = g_new0 (ForgetCall, 1);
  g_autoptr (GTask) task = NULL;

  call->cancellable = g_cancellable_new ();
  if (cancellable != NULL)
    {
      call->caller_cancellable = g_object_ref (cancellable);
      call->caller_handler = g_cancellable_connect (cancellable,
                                                    G_CALLBACK (on_caller_cancelled),
                                                    call->cancellable, NULL);
    }
  call->timeout_id = g_timeout_add (timeout_ms, on_forget_timeout, call);
  task = g_task_new (NULL, call->cancellable, callback, user_data);
  g_task_set_source_tag (task, eta_pin_store_forget_all_async);
  g_task_set_task_data (task, call, (GDestroyNotify) forget_call_free);
  g_task_set_return_on_cancel (task, TRUE);
  g_task_run_in_thread (task, forget_in_thread);
}

gint
eta_pin_store_forget_all_finish (GAsyncResult *result, GError **error)
{
  ForgetCall *call = g_task_get_task_data (G_TASK (result));
  GError *local_error = NULL;
  gint deleted = (gint) g_task_propagate_int (G_TASK (result), &local_error);

  if (local_error == NULL)
    return deleted;
  if (call->timed_out)
    {
      g_clear_error (&local_error);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                   "the Secret Service did not answer in time");
    }
  else
    g_propagate_error (error, local_error);
  return -1;
}

/* See eta-gtk-prompter.h. */
#define G_LOG_DOMAIN "eta-gtk-prompter"

#include "config.h"

#include "eta-gtk-prompter.h"

#include "eta-agent-error.h"
#include "eta-insert-token-dialog.h"
#include "eta-pin-dialog.h"

struct _EtaGtkPrompter
{
  GObject parent_instance;

  guint open_prompts;
};

static void eta_gtk_prompter_iface_init (EtaPrompterInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (EtaGtkPrompter, eta_gtk_prompter, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (ETA_TYPE_PROMPTER,
                                                      eta_gtk_prompter_iface_init))

enum { PROP_0, PROP_OPEN_PROMPTS, N_PROPS };
static GParamSpec *properties[N_PROPS];

static void
on_prompt_destroyed (EtaGtkPrompter *self)
{
  self->open_prompts--;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_OPEN_PROMPTS]);
}

/* Counts @window as an open prompt until it is destroyed. */
static void
count_prompt (EtaGtkPrompter *self, GtkWindow *window)
{
  self->open_prompts++;
  g_signal_connect_object (window, "destroy", G_CALLBACK (on_prompt_destroyed), self,
                           G_CONNECT_SWAPPED);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_OPEN_PROMPTS]);
}

guint
eta_gtk_prompter_get_open_prompts (EtaGtkPrompter *self)
{
  return self->open_prompts;
}

typedef struct
{
  EtaPinDialog *dialog;
  gulong cancelled_handler;
} PromptData;

static void
prompt_data_free (PromptData *data)
{
  if (data->dialog != NULL)
    gtk_window_destroy (GTK_WINDOW (data->dialog));
  g_free (data);
}

static void
on_response (EtaPinDialog *dialog, gboolean unlock, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  EtaSecret *pin = unlock ? eta_pin_dialog_take_pin (dialog) : NULL;

  g_cancellable_disconnect (g_task_get_cancellable (task),
                            ((PromptData *) g_task_get_task_data (task))->cancelled_handler);
  if (pin != NULL)
    g_task_return_pointer (task, pin, (GDestroyNotify) eta_secret_unref);
  else if (unlock)
    g_task_return_new_error (task, ETA_AGENT_ERROR, ETA_AGENT_ERROR_PIN_INCORRECT,
                             "the PIN must be entered on the reader's keypad");
  else
    g_task_return_new_error (task, ETA_AGENT_ERROR, ETA_AGENT_ERROR_CANCELLED,
                             "the PIN prompt was cancelled");
}

static gboolean
close_dialog (gpointer user_data)
{
  gtk_window_close (GTK_WINDOW (user_data));
  return G_SOURCE_REMOVE;
}

static void
on_cancelled (GCancellable *cancellable, gpointer user_data)
{
  PromptData *data = user_data;
  /* Cancelled from any thread (a worker whose PIN pad answered): close on
   * the main thread, which answers the task through "response". */
  g_idle_add_full (G_PRIORITY_DEFAULT, close_dialog, g_object_ref (data->dialog),
                   g_object_unref);
}

static void
eta_gtk_prompter_request_pin_async (EtaPrompter *prompter, EtaPinRequest *request,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data)
{
  GTask *task = g_task_new (prompter, cancellable, callback, user_data);
  PromptData *data = g_new0 (PromptData, 1);

  g_task_set_source_tag (task, eta_gtk_prompter_request_pin_async);
  data->dialog = eta_pin_dialog_new (request);
  g_task_set_task_data (task, data, (GDestroyNotify) prompt_data_free);
  /* The task reference is dropped by on_response. */
  g_signal_connect (data->dialog, "response", G_CALLBACK (on_response), task);
  if (cancellable != NULL)
    data->cancelled_handler = g_cancellable_connect (cancellable, G_CALLBACK (on_cancelled),
                                                     data, NULL);
  gtk_window_present (GTK_WINDOW (data->dialog));
  count_prompt (ETA_GTK_PROMPTER (prompter), GTK_WINDOW (data->dialog));
}

static EtaSecret *
eta_gtk_prompter_request_pin_finish (EtaPrompter *prompter, GAsyncResult *result,
                                     GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, prompter), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- insert token ---- */

typedef struct
{
  EtaInsertTokenDialog *dialog;
  gulong dismiss_handler;
  GCancellable *dismiss;
} TokenPromptData;

static void
token_prompt_data_free (TokenPromptData *data)
{
  if (data->dismiss_handler != 0)
    g_cancellable_disconnect (data->dismiss, data->dismiss_handler);
  g_clear_object (&data->dismiss);
  if (data->dialog != NULL)
    gtk_window_destroy (GTK_WINDOW (data->dialog));
  g_free (data);
}

static gboolean
finish_dismissed (gpointer user_data)
{
  GTask *task = user_data;
  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
  return G_SOURCE_REMOVE;
}

static void
on_dismiss (GCancellable *dismiss, gpointer user_data)
{
  GTask *task = user_data;
  TokenPromptData *data = g_task_get_task_data (task);

  /* From whatever thread cancelled: finish on the main thread; the signal
   * handler is disconnected there, so "cancelled" cannot fire any more. */
  g_signal_handlers_disconnect_by_data (data->dialog, task);
  g_idle_add (finish_dismissed, task);
}

static void
on_token_prompt_cancelled (EtaInsertTokenDialog *dialog, gpointer user_data)
{
  GTask *task = user_data;
  TokenPromptData *data = g_task_get_task_data (task);

  g_cancellable_disconnect (data->dismiss, data->dismiss_handler);
  data->dismiss_handler = 0;
  g_task_return_new_error (task, ETA_AGENT_ERROR, ETA_AGENT_ERROR_CANCELLED,
                           "the insert-token prompt was cancelled");
  g_object_unref (task);
}

static void
eta_gtk_prompter_ask_for_token_async (EtaPrompter *prompter, EtaPinRequest *request,
                                      GCancellable *dismiss, GAsyncReadyCallback callback,
                                      gpointer user_data)
{
  GTask *task = g_task_new (prompter, NULL, callback, user_data);
  TokenPromptData *data = g_new0 (TokenPromptData, 1);

  g_task_set_source_tag (task, eta_gtk_prompter_ask_for_token_async);
  data->dialog = eta_insert_token_dialog_new (request);
  data->dismiss = g_object_ref (dismiss);
  g_task_set_task_data (task, data, (GDestroyNotify) token_prompt_data_free);
  g_signal_connect (data->dialog, "cancelled", G_CALLBACK (on_token_prompt_cancelled), task);
  gtk_window_present (GTK_WINDOW (data->dialog));
  count_prompt (ETA_GTK_PROMPTER (prompter), GTK_WINDOW (data->dialog));
  data->dismiss_handler = g_cancellable_connect (dismiss, G_CALLBACK (on_dismiss), task, NULL);
}

static gboolean
eta_gtk_prompter_ask_for_token_finish (EtaPrompter *prompter, GAsyncResult *result,
                                       GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
eta_gtk_prompter_iface_init (EtaPrompterInterface *iface)
{
  iface->request_pin_async = eta_gtk_prompter_request_pin_async;
  iface->request_pin_finish = eta_gtk_prompter_request_pin_finish;
  iface->ask_for_token_async = eta_gtk_prompter_ask_for_token_async;
  iface->ask_for_token_finish = eta_gtk_prompter_ask_for_token_finish;
}

static void
eta_gtk_prompter_get_property (GObject *object, guint prop_id, GValue *value,
                               GParamSpec *pspec)
{
  if (prop_id == PROP_OPEN_PROMPTS)
    g_value_set_uint (value, ETA_GTK_PROMPTER (object)->open_prompts);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
eta_gtk_prompter_class_init (EtaGtkPrompterClass *klass)
{
  G_OBJECT_CLASS (klass)->get_property = eta_gtk_prompter_get_property;
  properties[PROP_OPEN_PROMPTS] =
    g_param_spec_uint ("open-prompts", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (G_OBJECT_CLASS (klass), N_PROPS, properties);
}

static void
eta_gtk_prompter_init (EtaGtkPrompter *self)
{
}

EtaGtkPrompter *
eta_gtk_prompter_new (void)
{
  return g_object_new (ETA_TYPE_GTK_PROMPTER, NULL);
}

/* See eta-pin-dialog.h. */
#define G_LOG_DOMAIN "eta-pin-dialog"

#include "eta-pin-dialog.h"

#include <glib/gi18n.h>
#include <string.h>

struct _EtaPinDialog
{
  GtkWindow parent_instance;

  /* template widgets */
  GtkLabel *heading_label;
  GtkLabel *details_label;
  GtkLabel *status_label;
  GtkPasswordEntry *pin_entry;
  GtkCheckButton *final_try_check;
  GtkButton *cancel_button;
  GtkButton *unlock_button;

  /* owned */
  EtaPinRequest *request;
  EtaPinDialogState state;
  gboolean responded;
};

G_DEFINE_FINAL_TYPE (EtaPinDialog, eta_pin_dialog, GTK_TYPE_WINDOW)

enum { SIGNAL_RESPONSE, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
respond (EtaPinDialog *self, gboolean unlock)
{
  if (self->responded)
    return;
  self->responded = TRUE;
  g_signal_emit (self, signals[SIGNAL_RESPONSE], 0, unlock);
}

static void
show_status (EtaPinDialog *self, const gchar *text)
{
  gtk_label_set_text (self->status_label, text);
  gtk_widget_set_visible (GTK_WIDGET (self->status_label), text != NULL);
}

static void
on_unlock_clicked (EtaPinDialog *self)
{
  const gchar *text = gtk_editable_get_text (GTK_EDITABLE (self->pin_entry));

  if (self->state == ETA_PIN_DIALOG_STATE_CONFIRM
      && !gtk_check_button_get_active (self->final_try_check))
    {
      show_status (self, _("This is the last try before the PIN is blocked. "
                           "Confirm that you want to try this PIN."));
      return;
    }
  if ((self->state == ETA_PIN_DIALOG_STATE_ENTER || self->state == ETA_PIN_DIALOG_STATE_CONFIRM)
      && (text == NULL || *text == '\0'))
    {
      show_status (self, _("Type the token's PIN."));
      gtk_widget_grab_focus (GTK_WIDGET (self->pin_entry));
      return;
    }
  respond (self, TRUE);
}

static void
on_cancel_clicked (EtaPinDialog *self)
{
  respond (self, FALSE);
}

static gboolean
eta_pin_dialog_close_request (GtkWindow *window)
{
  respond (ETA_PIN_DIALOG (window), FALSE);
  return GTK_WINDOW_CLASS (eta_pin_dialog_parent_class)->close_request (window);
}

EtaSecret *
eta_pin_dialog_take_pin (EtaPinDialog *self)
{
  const gchar *text = gtk_editable_get_text (GTK_EDITABLE (self->pin_entry));
  EtaSecret *pin;
  gsize len;

  if (text == NULL || *text == '\0')
    return NULL;
  len = strlen (text);
  pin = eta_secret_new_from_data ((const guint8 *) text, len);
  /* GtkPasswordEntry keeps its text in GTK's secure memory; clearing it
   * wipes that copy. */
  gtk_editable_set_text (GTK_EDITABLE (self->pin_entry), "");
  return pin;
}

EtaPinDialogState
eta_pin_dialog_get_state (EtaPinDialog *self)
{
  return self->state;
}

static gchar *
describe_details (EtaPinRequest *request)
{
  g_autofree gchar *short_fpr = eta_pin_request_dup_short_fingerprint (request);
  const gchar * const *mounts = eta_pin_request_get_mounts (request);
  GString *text = g_string_new (NULL);

  g_string_append_printf (text, _("Token: %s (serial %s)"),
                          eta_pin_request_get_token_label (request),
                          eta_pin_request_get_token_serial (request));
  g_string_append_c (text, '\n');
  g_string_append_printf (text, _("Key: %s (%s)"), eta_pin_request_get_key_label (request),
                          short_fpr);
  g_string_append_c (text, '\n');
  if (eta_pin_request_get_requester_pid (request) != 0)
    g_string_append_printf (text, _("Asked by: %s (process %u)"),
                            eta_pin_request_get_requester (request),
                            eta_pin_request_get_requester_pid (request));
  else
    g_string_append_printf (text, _("Asked by: %s"), eta_pin_request_get_requester (request));
  if (mounts[0] != NULL)
    {
      g_autofree gchar *list = g_strjoinv (", ", (gchar **) mounts);
      g_string_append_c (text, '\n');
      g_string_append_printf (text, _("For files in: %s"), list);
    }
  return g_string_free (text, FALSE);
}

static void
apply_request (EtaPinDialog *self)
{
  EtaPinFlags flags = eta_pin_request_get_flags (self->request);
  g_autofree gchar *heading = NULL;
  g_autofree gchar *details = describe_details (self->request);
  const gchar *status = NULL;
  g_autofree gchar *status_owned = NULL;

  if (flags & ETA_PIN_FLAG_LOCKED)
    self->state = ETA_PIN_DIALOG_STATE_LOCKED;
  else if (flags & ETA_PIN_FLAG_PROTECTED_PATH)
    self->state = ETA_PIN_DIALOG_STATE_PIN_PAD;
  else if (flags & ETA_PIN_FLAG_FINAL_TRY)
    self->state = ETA_PIN_DIALOG_STATE_CONFIRM;
  else
    self->state = ETA_PIN_DIALOG_STATE_ENTER;

  switch (self->state)
    {
    case ETA_PIN_DIALOG_STATE_LOCKED:
      heading = g_strdup_printf (_("The PIN of “%s” is blocked"),
                                 eta_pin_request_get_token_label (self->request));
      status = _("Too many wrong PINs were entered. Unblock the PIN with the token's "
                 "PUK or security officer PIN (for example with your token vendor's "
                 "tool), then try again.");
      break;
    case ETA_PIN_DIALOG_STATE_PIN_PAD:
      heading = g_strdup_printf (_("Enter the PIN of “%s” on the reader's keypad"),
                                 eta_pin_request_get_token_label (self->request));
      break;
    case ETA_PIN_DIALOG_STATE_ENTER:
    case ETA_PIN_DIALOG_STATE_CONFIRM:
      heading = g_strdup_printf (_("Enter the PIN of “%s” to open encrypted files"),
                                 eta_pin_request_get_token_label (self->request));
      break;
    }

  if (self->state == ETA_PIN_DIALOG_STATE_CONFIRM)
    status = _("Final try: if this PIN is wrong, the token blocks its PIN.");
  else if (self->state == ETA_PIN_DIALOG_STATE_ENTER && eta_pin_request_get_retry (self->request) > 0)
    status = (flags & ETA_PIN_FLAG_COUNT_LOW)
               ? _("Wrong PIN. Only a few tries are left before the token blocks its PIN.")
               : _("Wrong PIN. Try again.");
  else if (self->state == ETA_PIN_DIALOG_STATE_ENTER && (flags & ETA_PIN_FLAG_COUNT_LOW))
    status = _("A wrong PIN was entered before: only a few tries are left.");

  gtk_label_set_text (self->heading_label, heading);
  gtk_label_set_text (self->details_label, details);
  show_status (self, status);
  gtk_widget_set_visible (GTK_WIDGET (self->pin_entry),
                          self->state == ETA_PIN_DIALOG_STATE_ENTER
                          || self->state == ETA_PIN_DIALOG_STATE_CONFIRM);
  gtk_widget_set_visible (GTK_WIDGET (self->final_try_check),
                          self->state == ETA_PIN_DIALOG_STATE_CONFIRM);
  gtk_widget_set_visible (GTK_WIDGET (self->unlock_button),
                          self->state == ETA_PIN_DIALOG_STATE_ENTER
                          || self->state == ETA_PIN_DIALOG_STATE_CONFIRM);
  if (self->state == ETA_PIN_DIALOG_STATE_LOCKED)
    gtk_button_set_label (self->cancel_button, _("_Close"));
  gtk_window_set_default_widget (GTK_WINDOW (self),
                                 gtk_widget_get_visible (GTK_WIDGET (self->unlock_button))
                                   ? GTK_WIDGET (self->unlock_button)
                                   : GTK_WIDGET (self->cancel_button));
  if (gtk_widget_get_visible (GTK_WIDGET (self->pin_entry)))
    gtk_widget_grab_focus (GTK_WIDGET (self->pin_entry));
  else
    gtk_widget_grab_focus (GTK_WIDGET (self->cancel_button));
}

static void
eta_pin_dialog_dispose (GObject *object)
{
  EtaPinDialog *self = ETA_PIN_DIALOG (object);

  gtk_widget_dispose_template (GTK_WIDGET (self), ETA_TYPE_PIN_DIALOG);
  g_clear_object (&self->request);
  G_OBJECT_CLASS (eta_pin_dialog_parent_class)->dispose (object);
}

static void
eta_pin_dialog_class_init (EtaPinDialogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = eta_pin_dialog_dispose;
  GTK_WINDOW_CLASS (klass)->close_request = eta_pin_dialog_close_request;

  signals[SIGNAL_RESPONSE] = g_signal_new ("response", G_TYPE_FROM_CLASS (klass),
                                           G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                           G_TYPE_NONE, 1, G_TYPE_BOOLEAN);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/ecryptfs/TokenAgent/ui/eta-pin-dialog.ui");
  gtk_widget_class_bind_template_child (widget_class, EtaPinDialog, heading_label);
  gtk_widget_class_bind_template_child (widget_class, EtaPinDialog, details_label);
  gtk_widget_class_bind_template_child (widget_class, EtaPinDialog, status_label);
  gtk_widget_class_bind_template_child (widget_class, EtaPinDialog, pin_entry);
  gtk_widget_class_bind_template_child (widget_class, EtaPinDialog, final_try_check);
  gtk_widget_class_bind_template_child (widget_class, EtaPinDialog, cancel_button);
  gtk_widget_class_bind_template_child (widget_class, EtaPinDialog, unlock_button);
  gtk_widget_class_bind_template_callback (widget_class, on_unlock_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_cancel_clicked);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Escape, 0, "window.close", NULL);
}

static void
eta_pin_dialog_init (EtaPinDialog *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

EtaPinDialog *
eta_pin_dialog_new (EtaPinRequest *request)
{
  EtaPinDialog *self = g_object_new (ETA_TYPE_PIN_DIALOG, NULL);

  self->request = g_object_ref (request);
  apply_request (self);
  return self;
}

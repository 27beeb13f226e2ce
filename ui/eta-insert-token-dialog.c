/* See eta-insert-token-dialog.h. */
#define G_LOG_DOMAIN "eta-insert-token-dialog"

#include "config.h"

#include "eta-insert-token-dialog.h"

#include <glib/gi18n.h>

struct _EtaInsertTokenDialog
{
  GtkWindow parent_instance;

  /* template widgets */
  GtkLabel *heading_label;
  GtkLabel *details_label;
  GtkButton *cancel_button;

  gboolean cancelled;
};

G_DEFINE_FINAL_TYPE (EtaInsertTokenDialog, eta_insert_token_dialog, GTK_TYPE_WINDOW)

GResource *eta_ui_get_resource (void);

enum { SIGNAL_CANCELLED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
cancel (EtaInsertTokenDialog *self)
{
  if (self->cancelled)
    return;
  self->cancelled = TRUE;
  g_signal_emit (self, signals[SIGNAL_CANCELLED], 0);
}

static void
on_cancel_clicked (EtaInsertTokenDialog *self)
{
  cancel (self);
}

static gboolean
eta_insert_token_dialog_close_request (GtkWindow *window)
{
  cancel (ETA_INSERT_TOKEN_DIALOG (window));
  return GTK_WINDOW_CLASS (eta_insert_token_dialog_parent_class)->close_request (window);
}

static void
eta_insert_token_dialog_dispose (GObject *object)
{
  gtk_widget_dispose_template (GTK_WIDGET (object), ETA_TYPE_INSERT_TOKEN_DIALOG);
  G_OBJECT_CLASS (eta_insert_token_dialog_parent_class)->dispose (object);
}

static void
eta_insert_token_dialog_class_init (EtaInsertTokenDialogClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  G_OBJECT_CLASS (klass)->dispose = eta_insert_token_dialog_dispose;
  GTK_WINDOW_CLASS (klass)->close_request = eta_insert_token_dialog_close_request;
  signals[SIGNAL_CANCELLED] = g_signal_new ("cancelled", G_TYPE_FROM_CLASS (klass),
                                            G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                            G_TYPE_NONE, 0);
  g_resources_register (eta_ui_get_resource ());
  gtk_widget_class_set_template_from_resource (
      widget_class, "/org/ecryptfs/TokenAgent/ui/eta-insert-token-dialog.ui");
  gtk_widget_class_bind_template_child (widget_class, EtaInsertTokenDialog, heading_label);
  gtk_widget_class_bind_template_child (widget_class, EtaInsertTokenDialog, details_label);
  gtk_widget_class_bind_template_child (widget_class, EtaInsertTokenDialog, cancel_button);
  gtk_widget_class_bind_template_callback (widget_class, on_cancel_clicked);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Escape, 0, "window.close", NULL);
}

static void
eta_insert_token_dialog_init (EtaInsertTokenDialog *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

EtaInsertTokenDialog *
eta_insert_token_dialog_new (EtaPinRequest *request)
{
  EtaInsertTokenDialog *self = g_object_new (ETA_TYPE_INSERT_TOKEN_DIALOG, NULL);
  g_autofree gchar *short_fpr = eta_pin_request_dup_short_fingerprint (request);
  g_autofree gchar *heading = NULL;
  g_autofree gchar *details = NULL;
  const gchar *token = eta_pin_request_get_token_label (request);

  heading = *token != '\0'
              ? g_strdup_printf (_("Insert the token “%s”"), token)
              : g_strdup (_("Insert the token that holds your key"));
  details = g_strdup_printf (_("It holds the key “%s” (%s), which %s needs to open "
                               "encrypted files."),
                             eta_pin_request_get_key_label (request), short_fpr,
                             eta_pin_request_get_requester (request));
  gtk_label_set_text (self->heading_label, heading);
  gtk_label_set_text (self->details_label, details);
  gtk_widget_grab_focus (GTK_WIDGET (self->cancel_button));
  return self;
}

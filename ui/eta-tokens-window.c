/* See eta-tokens-window.h. */
#define G_LOG_DOMAIN "eta-tokens-window"

#include "config.h"

#include "eta-tokens-window.h"

#include <glib/gi18n.h>

#include "eta-mount-table.h"
#include "eta-public-key-file.h"

struct _EtaTokensWindow
{
  GtkWindow parent_instance;

  /* template widgets */
  GtkLabel *empty_label;
  GtkBox *tokens_box;
  GtkLabel *status_label;

  /* owned */
  EtaTokenManager *manager;
  GCancellable *cancellable;   /* the listing in flight */
  GVariant *tokens;            /* aa{sv} of the listing in flight */
};

G_DEFINE_FINAL_TYPE (EtaTokensWindow, eta_tokens_window, GTK_TYPE_WINDOW)

GResource *eta_ui_get_resource (void);

/* ---- copying mount options ---- */

static void
on_copy_clicked (GtkButton *button, EtaTokensWindow *self)
{
  const gchar *fingerprint = g_object_get_data (G_OBJECT (button), "fingerprint");
  const gchar *key_label = g_object_get_data (G_OBJECT (button), "key-label");
  g_autoptr (EtaPublicKeyRecord) record = eta_public_key_find_record (fingerprint, NULL);
  g_autofree gchar *options = NULL;
  g_autofree gchar *done = NULL;

  /* The padding the key was enrolled with (ecryptfs-token add-key), else the
   * default for new files. */
  options = eta_mount_table_options_for_key (
      fingerprint, eta_padding_to_string (record && record->padding ? record->padding
                                                                     : ETA_PADDING_OAEP));
  gdk_clipboard_set_text (gtk_widget_get_clipboard (GTK_WIDGET (button)), options);
  done = g_strdup_printf (_("The mount options for “%s” are on the clipboard."), key_label);
  gtk_label_set_text (self->status_label, done);
  gtk_widget_set_visible (GTK_WIDGET (self->status_label), TRUE);
}

/* ---- building the list ---- */

static GtkWidget *
make_label (const gchar *text, gboolean dim)
{
  GtkWidget *label = gtk_label_new (text);

  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_wrap (GTK_LABEL (label), TRUE);
  if (dim)
    gtk_widget_add_css_class (label, "dim-label");
  return label;
}

static void
add_field (GtkGrid *grid, gint row, const gchar *name, GtkWidget *value)
{
  GtkWidget *name_label = make_label (name, TRUE);

  gtk_widget_set_valign (name_label, GTK_ALIGN_START);
  gtk_grid_attach (grid, name_label, 0, row, 1, 1);
  gtk_widget_set_hexpand (value, TRUE);
  gtk_grid_attach (grid, value, 1, row, 1, 1);
}

static GtkWidget *
make_key_row (EtaTokensWindow *self, EtaTokenKey *key)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  GtkWidget *heading = make_label (eta_token_key_get_label (key), FALSE);
  GtkGrid *grid = GTK_GRID (gtk_grid_new ());
  GtkWidget *fingerprint = make_label (eta_token_key_get_fingerprint (key), FALSE);
  /* One per key, so no mnemonic; the description tells them apart. */
  GtkWidget *button = gtk_button_new_with_label (_("Copy Mount Options"));
  g_auto (GStrv) mounts = eta_mount_table_mounts_for_sig (NULL, eta_token_key_get_sig (key));
  g_autofree gchar *size = g_strdup_printf (_("RSA, %u bits"), eta_token_key_get_bits (key));
  g_autofree gchar *mount_list = g_strjoinv ("\n", mounts);
  g_autofree gchar *button_description = g_strdup_printf (
      _("Copies the mount options for the key “%s” to the clipboard"),
      eta_token_key_get_label (key));

  gtk_widget_add_css_class (heading, "heading");
  gtk_box_append (GTK_BOX (box), heading);

  gtk_grid_set_column_spacing (grid, 12);
  gtk_grid_set_row_spacing (grid, 4);
  gtk_label_set_wrap_mode (GTK_LABEL (fingerprint), PANGO_WRAP_CHAR);
  gtk_label_set_selectable (GTK_LABEL (fingerprint), TRUE);
  gtk_widget_add_css_class (fingerprint, "monospace");
  add_field (grid, 0, _("Fingerprint"), fingerprint);
  add_field (grid, 1, _("eCryptfs signature"), make_label (eta_token_key_get_sig (key), FALSE));
  add_field (grid, 2, _("Key"), make_label (size, FALSE));
  add_field (grid, 3, _("Mounted at"),
             make_label (mounts[0] != NULL ? mount_list : _("No eCryptfs mount uses this key"),
                         FALSE));
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (grid));

  gtk_widget_set_halign (button, GTK_ALIGN_START);
  gtk_widget_set_tooltip_text (button, button_description);
  gtk_accessible_update_property (GTK_ACCESSIBLE (button),
                                  GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, button_description, -1);
  g_object_set_data_full (G_OBJECT (button), "fingerprint",
                          g_strdup (eta_token_key_get_fingerprint (key)), g_free);
  g_object_set_data_full (G_OBJECT (button), "key-label",
                          g_strdup (eta_token_key_get_label (key)), g_free);
  g_signal_connect (button, "clicked", G_CALLBACK (on_copy_clicked), self);
  gtk_box_append (GTK_BOX (box), button);
  return box;
}

static void
add_token (EtaTokensWindow *self, GVariant *token, GPtrArray *keys)
{
  g_auto (GVariantDict) dict;
  const gchar *label = "", *serial = "", *state = "";
  GtkWidget *section = gtk_box_new (GTK_ORIENTATION_VERTICAL, 12);
  GtkWidget *heading;
  g_autofree gchar *details = NULL;
  guint shown = 0;

  g_variant_dict_init (&dict, token);
  g_variant_dict_lookup (&dict, "label", "&s", &label);
  g_variant_dict_lookup (&dict, "serial", "&s", &serial);
  g_variant_dict_lookup (&dict, "state", "&s", &state);
  heading = make_label (label, FALSE);
  gtk_widget_add_css_class (heading, "title-3");
  gtk_box_append (GTK_BOX (section), heading);
  details = g_strdup_printf (g_str_equal (state, "logged-in")
                               ? _("Serial number %s — unlocked")
                               : _("Serial number %s — locked"),
                             serial);
  gtk_box_append (GTK_BOX (section), make_label (details, TRUE));

  for (guint i = 0; i < keys->len; i++)
    {
      EtaTokenKey *key = g_ptr_array_index (keys, i);
      if (g_strcmp0 (eta_token_key_get_token_label (key), label) != 0
          || g_strcmp0 (eta_token_key_get_token_serial (key), serial) != 0)
        continue;
      gtk_box_append (GTK_BOX (section), make_key_row (self, key));
      shown++;
    }
  if (shown == 0)
    gtk_box_append (GTK_BOX (section), make_label (_("This token holds no RSA key with a "
                                                     "certificate."), TRUE));
  gtk_box_append (self->tokens_box, section);
}

static void
show (EtaTokensWindow *self, GVariant *tokens, GPtrArray *keys)
{
  GtkWidget *child;
  GVariantIter iter;
  GVariant *token;

  gtk_widget_set_visible (GTK_WIDGET (self->status_label), FALSE);
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->tokens_box))) != NULL)
    gtk_box_remove (self->tokens_box, child);
  gtk_widget_set_visible (GTK_WIDGET (self->empty_label), g_variant_n_children (tokens) == 0);
  g_variant_iter_init (&iter, tokens);
  while ((token = g_variant_iter_next_value (&iter)) != NULL)
    {
      add_token (self, token, keys);
      g_variant_unref (token);
    }
}

static void
on_keys_listed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) keys = eta_token_manager_list_keys_finish (ETA_TOKEN_MANAGER (source),
                                                                  result, &error);
  EtaTokensWindow *self;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  self = ETA_TOKENS_WINDOW (user_data);
  if (keys == NULL)
    {
      g_message ("cannot list the keys: %s", error->message);
      keys = g_ptr_array_new ();
    }
  show (self, self->tokens, keys);
}

static void
on_tokens_listed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  GVariant *tokens = eta_token_manager_list_tokens_finish (ETA_TOKEN_MANAGER (source), result,
                                                           &error);
  EtaTokensWindow *self;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  self = ETA_TOKENS_WINDOW (user_data);
  if (tokens == NULL)
    {
      g_message ("cannot list the tokens: %s", error->message);
      tokens = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE_VARDICT, NULL, 0));
    }
  g_clear_pointer (&self->tokens, g_variant_unref);
  self->tokens = tokens;
  eta_token_manager_list_keys_async (self->manager, self->cancellable, on_keys_listed, self);
}

void
eta_tokens_window_refresh (EtaTokensWindow *self)
{
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  eta_token_manager_list_tokens_async (self->manager, self->cancellable, on_tokens_listed,
                                       self);
}

/* ---- life cycle ---- */

static void
eta_tokens_window_dispose (GObject *object)
{
  EtaTokensWindow *self = ETA_TOKENS_WINDOW (object);

  /* The listings in flight must not reach a window that is gone. */
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  if (self->manager != NULL)
    g_signal_handlers_disconnect_by_data (self->manager, self);
  g_clear_object (&self->manager);
  g_clear_pointer (&self->tokens, g_variant_unref);
  gtk_widget_dispose_template (GTK_WIDGET (object), ETA_TYPE_TOKENS_WINDOW);
  G_OBJECT_CLASS (eta_tokens_window_parent_class)->dispose (object);
}

static void
eta_tokens_window_class_init (EtaTokensWindowClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  G_OBJECT_CLASS (klass)->dispose = eta_tokens_window_dispose;
  g_resources_register (eta_ui_get_resource ());
  gtk_widget_class_set_template_from_resource (
      widget_class, "/org/ecryptfs/TokenAgent/ui/eta-tokens-window.ui");
  gtk_widget_class_bind_template_child (widget_class, EtaTokensWindow, empty_label);
  gtk_widget_class_bind_template_child (widget_class, EtaTokensWindow, tokens_box);
  gtk_widget_class_bind_template_child (widget_class, EtaTokensWindow, status_label);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Escape, 0, "window.close", NULL);
}

static void
eta_tokens_window_init (EtaTokensWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

EtaTokensWindow *
eta_tokens_window_new (EtaTokenManager *manager)
{
  EtaTokensWindow *self = g_object_new (ETA_TYPE_TOKENS_WINDOW, NULL);

  self->manager = g_object_ref (manager);
  g_signal_connect_swapped (manager, "token-state-changed",
                            G_CALLBACK (eta_tokens_window_refresh), self);
  eta_tokens_window_refresh (self);
  return self;
}

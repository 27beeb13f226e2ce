/* The PIN dialog in process, one test per PIN state, with a screenshot of
 * each (artifacts in $ETA_TEST_SCREENSHOT_DIR). Runs under Xvfb. */
#include <string.h>

#include <gtk/gtk.h>

#include "eta-insert-token-dialog.h"
#include "eta-pin-dialog.h"

#define FINGERPRINT "52b2144e5a46fc6d22084869895d3948702ed3f45f4f42b49059f69b7339c9c8"

typedef struct
{
  EtaPinDialog *dialog;
  gint responses;
  gboolean last_response;
} Fixture;

static EtaPinRequest *
make_request (guint retry, EtaPinFlags flags)
{
  const gchar *mounts[] = { "/home/alice/Private", NULL };
  EtaPinRequest *request = eta_pin_request_new ("Alice's Token", "0a1b2c3d4e5f", "Alice key 2048",
                                                FINGERPRINT, "ecryptfsd", 4242, retry);
  eta_pin_request_set_flags (request, flags);
  eta_pin_request_set_mounts (request, mounts);
  return request;
}

static void
on_response (EtaPinDialog *dialog, gboolean unlock, gpointer user_data)
{
  Fixture *fixture = user_data;
  fixture->responses++;
  fixture->last_response = unlock;
}

static void
open_dialog (Fixture *fixture, guint retry, EtaPinFlags flags)
{
  g_autoptr (EtaPinRequest) request = make_request (retry, flags);

  fixture->dialog = eta_pin_dialog_new (request);
  g_signal_connect (fixture->dialog, "response", G_CALLBACK (on_response), fixture);
  gtk_window_present (GTK_WINDOW (fixture->dialog));
  gtk_test_widget_wait_for_draw (GTK_WIDGET (fixture->dialog));
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  if (fixture->dialog != NULL)
    gtk_window_destroy (GTK_WINDOW (fixture->dialog));
}

static void
save_screenshot (Fixture *fixture, const gchar *name)
{
  const gchar *dir = g_getenv ("ETA_TEST_SCREENSHOT_DIR");
  GtkWidget *widget = GTK_WIDGET (fixture->dialog);
  int width = gtk_widget_get_width (widget), height = gtk_widget_get_height (widget);
  g_autoptr (GdkPaintable) paintable = gtk_widget_paintable_new (widget);
  GtkSnapshot *snapshot = gtk_snapshot_new ();
  g_autoptr (GskRenderNode) node = NULL;
  g_autoptr (GdkTexture) texture = NULL;
  g_autofree gchar *file = NULL;
  g_autofree gchar *path = NULL;

  if (dir == NULL)
    return;
  g_mkdir_with_parents (dir, 0755);
  gdk_paintable_snapshot (paintable, snapshot, width, height);
  node = gtk_snapshot_free_to_node (snapshot);
  g_assert_nonnull (node);
  texture = gsk_renderer_render_texture (gtk_native_get_renderer (GTK_NATIVE (widget)), node,
                                         &GRAPHENE_RECT_INIT (0, 0, width, height));
  file = g_strdup_printf ("%s%s.png", g_str_has_prefix (name, "insert") ? "" : "pin-dialog-",
                          name);
  path = g_build_filename (dir, file, NULL);
  g_assert_true (gdk_texture_save_to_png (texture, path));
}

/* Walks the template for widgets by type, since they are private. */
static GtkWidget *
find_widget (GtkWidget *root, GType type, guint nth)
{
  g_autoptr (GPtrArray) queue = g_ptr_array_new ();
  g_ptr_array_add (queue, root);
  for (guint i = 0; i < queue->len; i++)
    {
      GtkWidget *widget = queue->pdata[i];
      if (G_TYPE_CHECK_INSTANCE_TYPE (widget, type) && nth-- == 0)
        return widget;
      for (GtkWidget *child = gtk_widget_get_first_child (widget); child != NULL;
           child = gtk_widget_get_next_sibling (child))
        g_ptr_array_add (queue, child);
    }
  return NULL;
}

static GtkWidget *
find_button (Fixture *fixture, const gchar *label)
{
  for (guint i = 0;; i++)
    {
      GtkWidget *button = find_widget (GTK_WIDGET (fixture->dialog), GTK_TYPE_BUTTON, i);
      if (button == NULL)
        return NULL;
      if (GTK_IS_CHECK_BUTTON (button) || gtk_button_get_label (GTK_BUTTON (button)) == NULL)
        continue;
      if (g_str_equal (gtk_button_get_label (GTK_BUTTON (button)), label))
        return button;
    }
}

static gchar *
all_label_text (Fixture *fixture)
{
  GString *text = g_string_new (NULL);
  for (guint i = 0;; i++)
    {
      GtkWidget *label = find_widget (GTK_WIDGET (fixture->dialog), GTK_TYPE_LABEL, i);
      if (label == NULL)
        break;
      if (gtk_widget_get_visible (label))
        g_string_append_printf (text, "%s\n", gtk_label_get_text (GTK_LABEL (label)));
    }
  return g_string_free (text, FALSE);
}

static GtkWidget *
pin_entry (Fixture *fixture)
{
  return find_widget (GTK_WIDGET (fixture->dialog), GTK_TYPE_PASSWORD_ENTRY, 0);
}

static void
test_enter (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *text = NULL;
  g_autoptr (EtaSecret) pin = NULL;

  open_dialog (fixture, 0, ETA_PIN_FLAG_NONE);
  save_screenshot (fixture, "enter");
  g_assert_cmpint (eta_pin_dialog_get_state (fixture->dialog), ==, ETA_PIN_DIALOG_STATE_ENTER);
  text = all_label_text (fixture);
  g_assert_nonnull (strstr (text, "Alice's Token"));
  g_assert_nonnull (strstr (text, "0a1b2c3d4e5f"));
  g_assert_nonnull (strstr (text, "Alice key 2048"));
  g_assert_nonnull (strstr (text, "52b2144e5a46fc6d"));
  g_assert_nonnull (strstr (text, "ecryptfsd"));
  g_assert_nonnull (strstr (text, "/home/alice/Private"));
  g_assert_null (strstr (text, "Wrong PIN"));
  g_assert_true (gtk_widget_get_visible (pin_entry (fixture)));
  /* Labelled for screen readers. */
  gtk_test_accessible_assert_property (GTK_ACCESSIBLE (pin_entry (fixture)),
                                       GTK_ACCESSIBLE_PROPERTY_LABEL, "PIN");

  gtk_editable_set_text (GTK_EDITABLE (pin_entry (fixture)), "1234");
  g_signal_emit_by_name (find_button (fixture, "_Unlock"), "clicked");
  g_assert_cmpint (fixture->responses, ==, 1);
  g_assert_true (fixture->last_response);
  pin = eta_pin_dialog_take_pin (fixture->dialog);
  g_assert_nonnull (pin);
  g_assert_cmpmem (eta_secret_get_data (pin), eta_secret_get_length (pin), "1234", 4);
  /* The entry no longer holds the PIN. */
  g_assert_cmpstr (gtk_editable_get_text (GTK_EDITABLE (pin_entry (fixture))), ==, "");
}

static void
test_empty_pin_not_sent (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *text = NULL;

  open_dialog (fixture, 0, ETA_PIN_FLAG_NONE);
  g_signal_emit_by_name (find_button (fixture, "_Unlock"), "clicked");
  g_assert_cmpint (fixture->responses, ==, 0);
  text = all_label_text (fixture);
  g_assert_nonnull (strstr (text, "Type the token's PIN"));
}

static void
test_wrong_pin (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *text = NULL;

  open_dialog (fixture, 1, ETA_PIN_FLAG_NONE);
  save_screenshot (fixture, "wrong-pin");
  text = all_label_text (fixture);
  g_assert_nonnull (strstr (text, "Wrong PIN. Try again."));
}

static void
test_count_low (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *text = NULL;

  open_dialog (fixture, 1, ETA_PIN_FLAG_COUNT_LOW);
  save_screenshot (fixture, "count-low");
  text = all_label_text (fixture);
  g_assert_nonnull (strstr (text, "few tries are left"));
}

static void
test_final_try_needs_confirmation (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *text = NULL;

  open_dialog (fixture, 1, ETA_PIN_FLAG_FINAL_TRY);
  save_screenshot (fixture, "final-try");
  g_assert_cmpint (eta_pin_dialog_get_state (fixture->dialog), ==, ETA_PIN_DIALOG_STATE_CONFIRM);
  gtk_editable_set_text (GTK_EDITABLE (pin_entry (fixture)), "1234");
  /* The first press only asks for confirmation. */
  g_signal_emit_by_name (find_button (fixture, "_Unlock"), "clicked");
  g_assert_cmpint (fixture->responses, ==, 0);
  text = all_label_text (fixture);
  g_assert_nonnull (strstr (text, "last try"));
  gtk_test_widget_wait_for_draw (GTK_WIDGET (fixture->dialog));
  save_screenshot (fixture, "final-try-confirm");
  g_signal_emit_by_name (find_button (fixture, "_Try Anyway"), "clicked");
  g_assert_cmpint (fixture->responses, ==, 1);
  g_assert_true (fixture->last_response);
}

static void
test_locked (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *text = NULL;

  open_dialog (fixture, 0, ETA_PIN_FLAG_LOCKED);
  save_screenshot (fixture, "locked");
  g_assert_cmpint (eta_pin_dialog_get_state (fixture->dialog), ==, ETA_PIN_DIALOG_STATE_LOCKED);
  g_assert_false (gtk_widget_get_visible (pin_entry (fixture)));
  g_assert_false (gtk_widget_get_visible (find_button (fixture, "_Unlock")));
  text = all_label_text (fixture);
  g_assert_nonnull (strstr (text, "is blocked"));
  g_assert_nonnull (strstr (text, "PUK"));
  g_signal_emit_by_name (find_button (fixture, "_Close"), "clicked");
  g_assert_cmpint (fixture->responses, ==, 1);
  g_assert_false (fixture->last_response);
}

static void
test_pin_pad (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *text = NULL;

  open_dialog (fixture, 0, ETA_PIN_FLAG_PROTECTED_PATH);
  save_screenshot (fixture, "pin-pad");
  g_assert_cmpint (eta_pin_dialog_get_state (fixture->dialog), ==, ETA_PIN_DIALOG_STATE_PIN_PAD);
  g_assert_false (gtk_widget_get_visible (pin_entry (fixture)));
  text = all_label_text (fixture);
  g_assert_nonnull (strstr (text, "keypad"));
  g_signal_emit_by_name (find_button (fixture, "_Cancel"), "clicked");
  g_assert_cmpint (fixture->responses, ==, 1);
  g_assert_false (fixture->last_response);
}

static void
test_close_is_cancel_once (Fixture *fixture, gconstpointer data)
{
  open_dialog (fixture, 0, ETA_PIN_FLAG_NONE);
  g_signal_emit_by_name (find_button (fixture, "_Cancel"), "clicked");
  gtk_window_close (GTK_WINDOW (fixture->dialog));
  fixture->dialog = NULL;
  g_assert_cmpint (fixture->responses, ==, 1);
  g_assert_false (fixture->last_response);
}

static void
on_insert_cancelled (EtaInsertTokenDialog *dialog, gpointer user_data)
{
  (*(gint *) user_data)++;
}

static void
test_insert_token (Fixture *fixture, gconstpointer data)
{
  g_autoptr (EtaPinRequest) request = make_request (0, ETA_PIN_FLAG_NONE);
  EtaInsertTokenDialog *dialog = eta_insert_token_dialog_new (request);
  g_autofree gchar *text = NULL;
  gint cancelled = 0;

  g_signal_connect (dialog, "cancelled", G_CALLBACK (on_insert_cancelled), &cancelled);
  gtk_window_present (GTK_WINDOW (dialog));
  gtk_test_widget_wait_for_draw (GTK_WIDGET (dialog));
  fixture->dialog = (EtaPinDialog *) dialog;
  save_screenshot (fixture, "insert-token");
  text = all_label_text (fixture);
  g_assert_nonnull (strstr (text, "Insert the token “Alice's Token”"));
  g_assert_nonnull (strstr (text, "Alice key 2048"));
  g_assert_nonnull (strstr (text, "52b2144e5a46fc6d"));
  g_signal_emit_by_name (find_button (fixture, "_Cancel"), "clicked");
  g_assert_cmpint (cancelled, ==, 1);
  /* Closing after Cancel does not cancel twice. */
  gtk_window_close (GTK_WINDOW (dialog));
  fixture->dialog = NULL;
  g_assert_cmpint (cancelled, ==, 1);
}

static void
test_insert_token_closed_by_agent (Fixture *fixture, gconstpointer data)
{
  g_autoptr (EtaPinRequest) request = make_request (0, ETA_PIN_FLAG_NONE);
  EtaInsertTokenDialog *dialog = eta_insert_token_dialog_new (request);
  gint cancelled = 0;

  g_signal_connect (dialog, "cancelled", G_CALLBACK (on_insert_cancelled), &cancelled);
  gtk_window_present (GTK_WINDOW (dialog));
  /* The token appeared: the agent destroys the dialog, which is no cancel. */
  gtk_window_destroy (GTK_WINDOW (dialog));
  g_assert_cmpint (cancelled, ==, 0);
}

int
main (int argc, char **argv)
{
  gtk_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, NULL, fn, fixture_tear_down)
  ADD ("/ui/pin-dialog/enter", test_enter);
  ADD ("/ui/pin-dialog/empty-pin-not-sent", test_empty_pin_not_sent);
  ADD ("/ui/pin-dialog/wrong-pin", test_wrong_pin);
  ADD ("/ui/pin-dialog/count-low", test_count_low);
  ADD ("/ui/pin-dialog/final-try", test_final_try_needs_confirmation);
  ADD ("/ui/pin-dialog/locked", test_locked);
  ADD ("/ui/pin-dialog/pin-pad", test_pin_pad);
  ADD ("/ui/pin-dialog/close-is-cancel-once", test_close_is_cancel_once);
  ADD ("/ui/insert-token-dialog/cancel", test_insert_token);
  ADD ("/ui/insert-token-dialog/closed-by-agent", test_insert_token_closed_by_agent);
  return g_test_run ();
}

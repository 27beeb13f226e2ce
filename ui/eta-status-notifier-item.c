/* See eta-status-notifier-item.h. */
#define G_LOG_DOMAIN "eta-status-notifier-item"

#include "config.h"

#include "eta-status-notifier-item.h"

#include "eta-caller-check.h"

#include "eta-sni-generated.h"

#define WATCHER_PATH "/StatusNotifierWatcher"
#define WATCHER_INTERFACE "org.kde.StatusNotifierWatcher"

struct _EtaStatusNotifierItem
{
  GObject parent_instance;

  EtaSniStatusNotifierItem *skeleton;
  GDBusConnection *connection;   /* while exported */
  guint watch_id;
  GCancellable *cancellable;     /* the registration in flight */
};

G_DEFINE_FINAL_TYPE (EtaStatusNotifierItem, eta_status_notifier_item, G_TYPE_OBJECT)

enum { SIGNAL_ACTIVATE, N_SIGNALS };
static guint signals[N_SIGNALS];

/* ---- registration ---- */

static void
on_registered (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source),
                                                              result, &error);

  if (reply != NULL)
    g_debug ("registered the tray icon with the status notifier watcher");
  else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_message ("the status notifier watcher refused the tray icon: %s", error->message);
}

static void
on_watcher_appeared (GDBusConnection *connection, const gchar *name, const gchar *owner,
                     gpointer user_data)
{
  EtaStatusNotifierItem *self = user_data;

  /* The object path form: the watcher takes our unique name from the call. */
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  g_dbus_connection_call (connection, owner, WATCHER_PATH, WATCHER_INTERFACE,
                          "RegisterStatusNotifierItem",
                          g_variant_new ("(s)", ETA_STATUS_NOTIFIER_ITEM_PATH), NULL,
                          G_DBUS_CALL_FLAGS_NONE, -1, self->cancellable, on_registered, NULL);
}

static void
on_watcher_vanished (GDBusConnection *connection, const gchar *name, gpointer user_data)
{
  /* Nothing to undo: the next watcher gets a registration of its own. */
}

/* ---- the interface ---- */

static gboolean
on_handle_activate (EtaSniStatusNotifierItem *skeleton, GDBusMethodInvocation *invocation,
                    gint x, gint y, gpointer user_data)
{
  eta_sni_status_notifier_item_complete_activate (skeleton, invocation);
  g_signal_emit (user_data, signals[SIGNAL_ACTIVATE], 0, x, y);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
on_handle_ignored (EtaSniStatusNotifierItem *skeleton, GDBusMethodInvocation *invocation)
{
  g_dbus_method_invocation_return_value (invocation, NULL);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- setters ---- */

void
eta_status_notifier_item_set_status (EtaStatusNotifierItem *self, const gchar *status)
{
  if (g_strcmp0 (eta_sni_status_notifier_item_get_status (self->skeleton), status) == 0)
    return;
  eta_sni_status_notifier_item_set_status (self->skeleton, status);
  eta_sni_status_notifier_item_emit_new_status (self->skeleton, status);
}

void
eta_status_notifier_item_set_icon_name (EtaStatusNotifierItem *self, const gchar *icon_name)
{
  if (g_strcmp0 (eta_sni_status_notifier_item_get_icon_name (self->skeleton), icon_name) == 0)
    return;
  eta_sni_status_notifier_item_set_icon_name (self->skeleton, icon_name);
  eta_sni_status_notifier_item_emit_new_icon (self->skeleton);
}

void
eta_status_notifier_item_set_attention_icon_name (EtaStatusNotifierItem *self,
                                                  const gchar *icon_name)
{
  if (g_strcmp0 (eta_sni_status_notifier_item_get_attention_icon_name (self->skeleton),
                 icon_name) == 0)
    return;
  eta_sni_status_notifier_item_set_attention_icon_name (self->skeleton, icon_name);
  eta_sni_status_notifier_item_emit_new_attention_icon (self->skeleton);
}

static GVariant *
no_pixmaps (void)
{
  return g_variant_new_array (G_VARIANT_TYPE ("(iiay)"), NULL, 0);
}

void
eta_status_notifier_item_set_tooltip (EtaStatusNotifierItem *self, const gchar *icon_name,
                                      const gchar *title, const gchar *description)
{
  g_autoptr (GVariant) tooltip = g_variant_ref_sink (
      g_variant_new ("(s@a(iiay)ss)", icon_name, no_pixmaps (), title, description));
  GVariant *current = eta_sni_status_notifier_item_get_tool_tip (self->skeleton);

  if (current != NULL && g_variant_equal (current, tooltip))
    return;
  eta_sni_status_notifier_item_set_tool_tip (self->skeleton, tooltip);
  eta_sni_status_notifier_item_emit_new_tool_tip (self->skeleton);
}

/* ---- life cycle ---- */

gboolean
eta_status_notifier_item_export (EtaStatusNotifierItem *self, GDBusConnection *connection,
                                 GError **error)
{
  g_return_val_if_fail (self->connection == NULL, FALSE);
  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (self->skeleton),
                                         connection, ETA_STATUS_NOTIFIER_ITEM_PATH, error))
    return FALSE;
  self->connection = g_object_ref (connection);
  self->watch_id = g_bus_watch_name_on_connection (connection,
                                                   ETA_STATUS_NOTIFIER_WATCHER_NAME,
                                                   G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                   on_watcher_appeared, on_watcher_vanished,
                                                   self, NULL);
  return TRUE;
}

void
eta_status_notifier_item_unexport (EtaStatusNotifierItem *self)
{
  if (self->connection == NULL)
    return;
  g_clear_handle_id (&self->watch_id, g_bus_unwatch_name);
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (self->skeleton));
  g_clear_object (&self->connection);
}

static void
eta_status_notifier_item_finalize (GObject *object)
{
  EtaStatusNotifierItem *self = ETA_STATUS_NOTIFIER_ITEM (object);

  eta_status_notifier_item_unexport (self);
  g_signal_handlers_disconnect_by_data (self->skeleton, self);
  g_object_unref (self->skeleton);
  G_OBJECT_CLASS (eta_status_notifier_item_parent_class)->finalize (object);
}

static void
eta_status_notifier_item_class_init (EtaStatusNotifierItemClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = eta_status_notifier_item_finalize;
  signals[SIGNAL_ACTIVATE] = g_signal_new ("activate", G_TYPE_FROM_CLASS (klass),
                                           G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                           G_TYPE_NONE, 2, G_TYPE_INT, G_TYPE_INT);
}

static void
eta_status_notifier_item_init (EtaStatusNotifierItem *self)
{
  EtaSniStatusNotifierItem *skeleton = eta_sni_status_notifier_item_skeleton_new ();

  self->skeleton = skeleton;
  /* The panel showing the item runs as this user; nobody else may drive the
   * menu (Quit, Lock, Forget) or read the recent activity. */
  {
    g_autoptr (EtaCallerCheck) check = eta_caller_check_new ();
    eta_caller_check_guard (check, G_DBUS_INTERFACE_SKELETON (skeleton));
  }
  eta_sni_status_notifier_item_set_category (skeleton, "SystemServices");
  eta_sni_status_notifier_item_set_status (skeleton, "Passive");
  eta_sni_status_notifier_item_set_menu (skeleton, "/");
  eta_sni_status_notifier_item_set_icon_theme_path (skeleton, "");
  eta_sni_status_notifier_item_set_icon_name (skeleton, "");
  eta_sni_status_notifier_item_set_overlay_icon_name (skeleton, "");
  eta_sni_status_notifier_item_set_attention_icon_name (skeleton, "");
  eta_sni_status_notifier_item_set_attention_movie_name (skeleton, "");
  eta_sni_status_notifier_item_set_icon_pixmap (skeleton, no_pixmaps ());
  eta_sni_status_notifier_item_set_overlay_icon_pixmap (skeleton, no_pixmaps ());
  eta_sni_status_notifier_item_set_attention_icon_pixmap (skeleton, no_pixmaps ());
  eta_sni_status_notifier_item_set_tool_tip (
      skeleton, g_variant_new ("(s@a(iiay)ss)", "", no_pixmaps (), "", ""));
  g_signal_connect (skeleton, "handle-activate", G_CALLBACK (on_handle_activate), self);
  g_signal_connect (skeleton, "handle-context-menu", G_CALLBACK (on_handle_ignored), NULL);
  g_signal_connect (skeleton, "handle-secondary-activate", G_CALLBACK (on_handle_ignored),
                    NULL);
  g_signal_connect (skeleton, "handle-scroll", G_CALLBACK (on_handle_ignored), NULL);
}

EtaStatusNotifierItem *
eta_status_notifier_item_new (const gchar *id, const gchar *title, const gchar *menu_path,
                              const gchar *icon_theme_path)
{
  EtaStatusNotifierItem *self = g_object_new (ETA_TYPE_STATUS_NOTIFIER_ITEM, NULL);

  eta_sni_status_notifier_item_set_id (self->skeleton, id);
  eta_sni_status_notifier_item_set_title (self->skeleton, title);
  if (menu_path != NULL)
    eta_sni_status_notifier_item_set_menu (self->skeleton, menu_path);
  eta_sni_status_notifier_item_set_item_is_menu (self->skeleton, FALSE);
  if (icon_theme_path != NULL)
    eta_sni_status_notifier_item_set_icon_theme_path (self->skeleton, icon_theme_path);
  return self;
}

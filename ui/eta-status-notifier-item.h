/* A tray icon: org.kde.StatusNotifierItem (dbus/org.kde.StatusNotifierItem.xml)
 * at /StatusNotifierItem, registered with org.kde.StatusNotifierWatcher
 * whenever a watcher owns that name (now or later). GIO only: without a
 * watcher nothing is shown and nothing fails. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ETA_STATUS_NOTIFIER_ITEM_PATH "/StatusNotifierItem"
#define ETA_STATUS_NOTIFIER_WATCHER_NAME "org.kde.StatusNotifierWatcher"

#define ETA_TYPE_STATUS_NOTIFIER_ITEM (eta_status_notifier_item_get_type ())
G_DECLARE_FINAL_TYPE (EtaStatusNotifierItem, eta_status_notifier_item, ETA,
                      STATUS_NOTIFIER_ITEM, GObject)

/* @id is the stable Id, @title the application's name; @menu_path the
 * com.canonical.dbusmenu object (on the same connection) or NULL;
 * @icon_theme_path the directory holding the icons' theme, or NULL. */
EtaStatusNotifierItem *eta_status_notifier_item_new (const gchar *id, const gchar *title,
                                                     const gchar *menu_path,
                                                     const gchar *icon_theme_path);

/* Exports the item on @connection and registers it with every watcher that
 * owns the name from now on. */
gboolean eta_status_notifier_item_export (EtaStatusNotifierItem *self,
                                          GDBusConnection *connection, GError **error);
void eta_status_notifier_item_unexport (EtaStatusNotifierItem *self);

/* Each setter announces a change (NewStatus, NewIcon, NewAttentionIcon,
 * NewToolTip) and does nothing when the value is the same. */
void eta_status_notifier_item_set_status (EtaStatusNotifierItem *self, const gchar *status);
void eta_status_notifier_item_set_icon_name (EtaStatusNotifierItem *self,
                                             const gchar *icon_name);
void eta_status_notifier_item_set_attention_icon_name (EtaStatusNotifierItem *self,
                                                       const gchar *icon_name);
void eta_status_notifier_item_set_tooltip (EtaStatusNotifierItem *self, const gchar *icon_name,
                                           const gchar *title, const gchar *description);

/* Signal "activate" (x, y): a primary click on the icon. */

G_END_DECLS

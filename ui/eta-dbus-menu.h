/* A menu exported as com.canonical.dbusmenu (dbus/com.canonical.dbusmenu.xml),
 * the way StatusNotifierItem hosts show a tray icon's menu. GIO only.
 *
 * The owner rebuilds the whole menu whenever something changes: between
 * eta_dbus_menu_begin() and eta_dbus_menu_commit() it adds the items again,
 * each named by an action string. An action keeps its item id from one
 * layout to the next, so a host clicking an item it showed a moment ago
 * still reaches it; the menu sends ItemsPropertiesUpdated when only labels or
 * sensitivity changed and LayoutUpdated otherwise. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ETA_TYPE_DBUS_MENU (eta_dbus_menu_get_type ())
G_DECLARE_FINAL_TYPE (EtaDBusMenu, eta_dbus_menu, ETA, DBUS_MENU, GObject)

EtaDBusMenu *eta_dbus_menu_new (void);

gboolean eta_dbus_menu_export (EtaDBusMenu *self, GDBusConnection *connection,
                               const gchar *object_path, GError **error);
void eta_dbus_menu_unexport (EtaDBusMenu *self);

/* Starts a new layout; the items added until eta_dbus_menu_commit() replace
 * the current ones. */
void eta_dbus_menu_begin (EtaDBusMenu *self);
/* Adds an item under the item named @parent (NULL: the top level), which then
 * shows as a submenu. @action names the item (unique within the layout);
 * @label is plain text (an underscore is shown as such). A disabled item only
 * informs. */
void eta_dbus_menu_add_item (EtaDBusMenu *self, const gchar *parent, const gchar *action,
                             const gchar *label, gboolean enabled);
void eta_dbus_menu_add_separator (EtaDBusMenu *self, const gchar *parent);
/* Publishes the new layout, telling hosts what changed (nothing when
 * nothing did). */
void eta_dbus_menu_commit (EtaDBusMenu *self);

/* Signals: "activated" (action) when a host clicks an enabled item;
 * "about-to-show" when a host is about to show the menu. */

G_END_DECLS

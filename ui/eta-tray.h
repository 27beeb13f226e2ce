/* The agent's tray icon: an EtaStatusNotifierItem showing whether a token is
 * inserted, locked, unlocked or being asked for, with a tooltip saying how
 * long the unlock lasts, and an EtaDBusMenu with the tokens, "Lock now",
 * "Forget remembered PINs", "Tokens and keys…", "Recent activity" and "Quit",
 * and first, when no ecryptfsd (or an old one) serves the files, what to do.
 * A click on the icon opens the tokens window.
 *
 * Only for an agent with a display (the GTK prompter): the prompts never
 * depend on it, and without a StatusNotifierWatcher it simply shows nowhere. */
#pragma once

#include <gio/gio.h>

#include "eta-activity-log.h"
#include "eta-ecryptfsd-watch.h"
#include "eta-gtk-prompter.h"
#include "eta-policy.h"
#include "eta-token-manager.h"

G_BEGIN_DECLS

/* The object path of the menu, next to ETA_STATUS_NOTIFIER_ITEM_PATH. */
#define ETA_TRAY_MENU_PATH "/MenuBar"

/* The icon names, one per state (data/icons/hicolor/scalable/status). */
#define ETA_TRAY_ICON_NO_TOKEN "ecryptfs-token-agent-no-token-symbolic"
#define ETA_TRAY_ICON_LOCKED "ecryptfs-token-agent-locked-symbolic"
#define ETA_TRAY_ICON_UNLOCKED "ecryptfs-token-agent-unlocked-symbolic"
#define ETA_TRAY_ICON_ASKING "ecryptfs-token-agent-asking-symbolic"

#define ETA_TYPE_TRAY (eta_tray_get_type ())
G_DECLARE_FINAL_TYPE (EtaTray, eta_tray, ETA, TRAY, GObject)

/* @ecryptfsd (may be NULL): what the tooltip and the menu say first when
 * no ecryptfsd, or one with an older key module, serves the files. */
EtaTray *eta_tray_new (EtaTokenManager *manager, EtaPolicy *policy, EtaActivityLog *activity,
                       EtaGtkPrompter *prompter, EtaEcryptfsdWatch *ecryptfsd);

/* Exports the item and its menu on @connection and registers with the
 * StatusNotifierWatcher whenever one runs. */
gboolean eta_tray_export (EtaTray *self, GDBusConnection *connection, GError **error);
void eta_tray_unexport (EtaTray *self);

G_END_DECLS

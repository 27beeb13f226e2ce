/* The site policy (GSettings schema org.ecryptfs.TokenAgent) and the agent
 * following it: logging out of the tokens when a login has been idle or
 * alive too long, when the screen locks (the screen saver's ActiveChanged,
 * systemd-logind's Lock for this session) and before the computer suspends
 * (logind's PrepareForSleep, with a delay inhibitor held until the tokens are
 * locked). Without the installed schema the schema's defaults apply; without
 * a system bus or logind, the logind parts are off. */
#pragma once

#include <gio/gio.h>

#include "eta-token-manager.h"

G_BEGIN_DECLS

#define ETA_SETTINGS_SCHEMA "org.ecryptfs.TokenAgent"

/* The values of the schema's login-lifetime key. */
typedef enum
{
  ETA_LOGIN_LIFETIME_UNTIL_REMOVED = 0,
  ETA_LOGIN_LIFETIME_IDLE_TIMEOUT = 1,
  ETA_LOGIN_LIFETIME_MAXIMUM_LIFETIME = 2,
  ETA_LOGIN_LIFETIME_IDLE_OR_MAXIMUM = 3,
} EtaLoginLifetime;

#define ETA_TYPE_POLICY (eta_policy_get_type ())
G_DECLARE_FINAL_TYPE (EtaPolicy, eta_policy, ETA, POLICY, GObject)

/* Reads the settings and follows their changes; does nothing else until
 * eta_policy_start(). */
EtaPolicy *eta_policy_new (void);

/* Starts enforcing the policy on @manager's tokens. @session_bus (may be
 * NULL) is where the screen saver is watched; the system bus (logind) is
 * found by itself. Call once. */
void eta_policy_start (EtaPolicy *self, EtaTokenManager *manager, GDBusConnection *session_bus);

/* The PKCS#11 modules the site allows, or NULL for the built-in default
 * (ETA_DEFAULT_PROVIDER). Read when the agent starts. */
gchar **eta_policy_dup_allowed_providers (EtaPolicy *self);

/* Wall-clock unix time (seconds) at which the current login ends by policy;
 * 0 when no token is logged in or a login lasts until the token is removed.
 * Changes are announced as notify::lock-deadline. */
gint64 eta_policy_get_lock_deadline (EtaPolicy *self);

/* The unlock-early and allow-remember-pin keys, as they are now; the latter
 * is also the property "allow-remember-pin", notified when it changes. */
gboolean eta_policy_get_unlock_early (EtaPolicy *self);
gboolean eta_policy_get_allow_remember_pin (EtaPolicy *self);

G_END_DECLS

/* The agent's error domain, registered as the named D-Bus errors of
 * org.ecryptfs.TokenAgent1 (documented in dbus/org.ecryptfs.TokenAgent1.xml),
 * and the one place PKCS#11 return values become errors. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum
{
  ETA_AGENT_ERROR_FAILED,
  ETA_AGENT_ERROR_INVALID_ARGUMENT,
  ETA_AGENT_ERROR_KEY_NOT_FOUND,
  ETA_AGENT_ERROR_AMBIGUOUS_KEY,
  ETA_AGENT_ERROR_CANCELLED,
  ETA_AGENT_ERROR_TIMED_OUT,
  ETA_AGENT_ERROR_PIN_INCORRECT,
  ETA_AGENT_ERROR_PIN_LOCKED,
  ETA_AGENT_ERROR_TOKEN_ABSENT,
  ETA_AGENT_ERROR_DECRYPT_FAILED,
  ETA_AGENT_ERROR_ACCESS_DENIED,
  ETA_AGENT_ERROR_LOCKED,
} EtaAgentError;

#define ETA_AGENT_ERROR (eta_agent_error_quark ())
GQuark eta_agent_error_quark (void);

/* Sets @error from a PKCS#11 return value, with @what saying what was being
 * done ("decrypting with key …"). */
void eta_agent_error_set_from_ckr (GError **error, unsigned long rv, const gchar *what);

G_END_DECLS

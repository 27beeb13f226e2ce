/* See eta-agent-error.h. */
#include "config.h"

#include "eta-agent-error.h"

#include <pkcs11-helper-1.0/pkcs11h-core.h>

#include "eta-names.h"

static const GDBusErrorEntry error_entries[] = {
  { ETA_AGENT_ERROR_FAILED, ETA_ERROR_PREFIX "Failed" },
  { ETA_AGENT_ERROR_INVALID_ARGUMENT, ETA_ERROR_PREFIX "InvalidArgument" },
  { ETA_AGENT_ERROR_KEY_NOT_FOUND, ETA_ERROR_PREFIX "KeyNotFound" },
  { ETA_AGENT_ERROR_AMBIGUOUS_KEY, ETA_ERROR_PREFIX "AmbiguousKey" },
  { ETA_AGENT_ERROR_CANCELLED, ETA_ERROR_PREFIX "Cancelled" },
  { ETA_AGENT_ERROR_TIMED_OUT, ETA_ERROR_PREFIX "TimedOut" },
  { ETA_AGENT_ERROR_PIN_INCORRECT, ETA_ERROR_PREFIX "PinIncorrect" },
  { ETA_AGENT_ERROR_PIN_LOCKED, ETA_ERROR_PREFIX "PinLocked" },
  { ETA_AGENT_ERROR_TOKEN_ABSENT, ETA_ERROR_PREFIX "TokenAbsent" },
  { ETA_AGENT_ERROR_DECRYPT_FAILED, ETA_ERROR_PREFIX "DecryptFailed" },
  { ETA_AGENT_ERROR_ACCESS_DENIED, ETA_ERROR_PREFIX "AccessDenied" },
  { ETA_AGENT_ERROR_LOCKED, ETA_ERROR_PREFIX "Locked" },
};

GQuark
eta_agent_error_quark (void)
{
  static gsize quark;
  g_dbus_error_register_error_domain ("eta-agent-error-quark", &quark, error_entries,
                                      G_N_ELEMENTS (error_entries));
  return (GQuark) quark;
}

/* Messages of this domain stay English on purpose: they cross D-Bus to
 * callers whose locale the agent does not know, and the key module writes
 * them to syslog. A client that shows one to a person picks its own
 * translated text from the error's name, in its own locale. */
void
eta_agent_error_set_from_ckr (GError **error, unsigned long rv, const gchar *what)
{
  EtaAgentError code;
  const gchar *reason;

  switch (rv)
    {
    case CKR_CANCEL:
    case CKR_FUNCTION_CANCELED:
      code = ETA_AGENT_ERROR_CANCELLED;
      reason = "the PIN prompt was cancelled";
      break;
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
      code = ETA_AGENT_ERROR_PIN_INCORRECT;
      reason = "PIN incorrect";
      break;
    case CKR_PIN_LOCKED:
    case CKR_PIN_EXPIRED:
      code = ETA_AGENT_ERROR_PIN_LOCKED;
      reason = "the token's PIN is blocked; unblock it with the SO PIN or PUK";
      break;
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_DEVICE_REMOVED:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SLOT_ID_INVALID:
      code = ETA_AGENT_ERROR_TOKEN_ABSENT;
      reason = "the token is not present";
      break;
    case CKR_ENCRYPTED_DATA_INVALID:
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_FUNCTION_FAILED:
      /* pkcs11-helper reports CKR_FUNCTION_FAILED for any failed private-key
       * operation, a wrong ciphertext among them. */
      code = ETA_AGENT_ERROR_DECRYPT_FAILED;
      reason = "the token could not decrypt this ciphertext with this key";
      break;
    default:
      code = ETA_AGENT_ERROR_FAILED;
      reason = pkcs11h_getMessage (rv);
      break;
    }
  g_set_error (error, ETA_AGENT_ERROR, code, "%s: %s (PKCS#11 0x%lx)", what, reason, rv);
}

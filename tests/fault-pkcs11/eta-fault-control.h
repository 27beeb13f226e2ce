/* Test-side control of libeta-fault-pkcs11.so, the PKCS#11 module that wraps
 * SoftHSM2 and fakes token removal, PIN-pad readers, tries-left flags and slow
 * or failing operations. The module and the test share two files: a control
 * file the test rewrites atomically, and a status file the module rewrites
 * after each call. Both paths go into the environment, so the module obeys
 * them in this process and in every process started afterwards (one process
 * at a time should load the module: the status file is not shared).
 * Keys and counters are listed in tests/fault-pkcs11/README.md. */
#pragma once

#include <glib.h>

#define ETA_FAULT_CONTROL_ENV "ETA_FAULT_PKCS11_CONTROL"
#define ETA_FAULT_STATUS_ENV "ETA_FAULT_PKCS11_STATUS"

/* Makes the control and status files in a temporary directory (removed at
 * exit) and exports their paths. Call before the module is initialised; the
 * other functions call it when needed. Idempotent. */
void eta_fault_control_setup (void);

/* Absolute path of libeta-fault-pkcs11.so. */
const gchar *eta_fault_control_get_module_path (void);

/* Sets @key to @value, or removes it when @value is NULL, and replaces the
 * control file. The module sees it at its next call. Keys are applied as a
 * whole file, so set prerequisites first (pinpad_pin before pinpad=enter). */
void eta_fault_control_set (const gchar *key, const gchar *value);

/* Removes every setting (plain forwarding, token present) and starts the
 * counters again from zero. Also brings back a token that remove_during took. */
void eta_fault_control_reset (void);
/* Sets several keys at once from "key=value;key=value" (NULL: nothing). */
void eta_fault_control_apply (const gchar *settings);

/* Counter @name ("login_calls", "login_failures", "decrypt_calls", or
 * "<op>_calls" / "<op>_failures" for any operation) since the last reset. */
guint64 eta_fault_control_get_counter (const gchar *name);

/* The module's current value for status @key ("present", "pinpad_waiting",
 * "delay_waiting", "sessions_open", "unknown_keys", …), or NULL. */
gchar *eta_fault_control_get_status (const gchar *key);

/* Waits up to @timeout_ms for status @key to read @value; TRUE if it did.
 * For example ("pinpad_waiting", "1") before pressing the PIN pad's key. */
gboolean eta_fault_control_wait_status (const gchar *key, const gchar *value,
                                        guint timeout_ms);

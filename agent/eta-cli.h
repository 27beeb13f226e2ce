/* What the commands of ecryptfs-token share: exit codes, the agent on the
 * session bus, output as text or JSON, and naming keys by fingerprint. */
#pragma once

#include <gio/gio.h>

#include "eta-public-key-file.h"

G_BEGIN_DECLS

typedef enum
{
  ETA_CLI_EXIT_OK = 0,
  ETA_CLI_EXIT_FAILED = 1,
  ETA_CLI_EXIT_USAGE = 2,
  /* The agent is not running and could not be started, or the session bus
   * is out of reach. */
  ETA_CLI_EXIT_NO_AGENT = 3,
} EtaCliExit;

/* Options every command sees. */
typedef struct
{
  gboolean json;
} EtaCliOptions;

typedef int (*EtaCliCommand) (const EtaCliOptions *options, int argc, char **argv);

int eta_cli_command_list (const EtaCliOptions *options, int argc, char **argv);
int eta_cli_command_add_key (const EtaCliOptions *options, int argc, char **argv);
int eta_cli_command_remove_key (const EtaCliOptions *options, int argc, char **argv);
int eta_cli_command_mount_options (const EtaCliOptions *options, int argc, char **argv);
int eta_cli_command_status (const EtaCliOptions *options, int argc, char **argv);
int eta_cli_command_unlock (const EtaCliOptions *options, int argc, char **argv);
int eta_cli_command_lock (const EtaCliOptions *options, int argc, char **argv);
int eta_cli_command_forget (const EtaCliOptions *options, int argc, char **argv);

/* "ecryptfs-token COMMAND: message" on stderr. */
void eta_cli_error (const gchar *command, const gchar *format, ...) G_GNUC_PRINTF (2, 3);

/* Calls a method of the agent and waits up to @timeout_ms. With
 * @start_agent FALSE the call never starts an agent that is not running.
 * On failure prints "COMMAND: @what: reason" and sets *exit_code. */
GVariant *eta_cli_call_agent (const gchar *command, const gchar *what, const gchar *method,
                              GVariant *parameters, const GVariantType *reply_type,
                              gint timeout_ms, gboolean start_agent, EtaCliExit *exit_code);

/* TRUE for errors that mean there is no agent to talk to (not running, no
 * session bus, no answer), as opposed to the agent refusing. */
gboolean eta_cli_error_means_no_agent (const GError *error);

/* TRUE if the agent's name has an owner on the session bus. */
gboolean eta_cli_agent_is_running (void);

/* The string @key of an a{sv} dictionary, or "" when it has none. */
const gchar *eta_cli_lookup_string (GVariant *dict, const gchar *key);

/* Prints @value (any GVariant, usually a{sv}) as pretty JSON on stdout. */
void eta_cli_print_json (GVariant *value);

/* Folds @text to lower case and checks it is a fingerprint (prefix); prints
 * a usage error and returns NULL if not. */
gchar *eta_cli_parse_fingerprint (const gchar *command, const gchar *text);

/* The public key named by @fingerprint: a saved enrolment record first (no
 * agent needed), else the agent. Prints the reason and sets *exit_code on
 * failure. */
EtaPublicKeyRecord *eta_cli_find_key (const gchar *command, const gchar *fingerprint,
                                      EtaCliExit *exit_code);

/* The eCryptfs key signature of @record. */
gboolean eta_cli_key_sig (const EtaPublicKeyRecord *record, gchar sig[17]);

/* Our auth token for @sig in the user keyring: its key serial (> 0), or 0.
 * Never calls out to request-key. *padding and *wrap (each may be NULL)
 * receive the blob's padding and wrap mode. */
gint32 eta_cli_keyring_find (const gchar *sig, gint *padding, gint *wrap);

G_END_DECLS

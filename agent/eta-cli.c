/* See eta-cli.h. */
#include "config.h"

#include "eta-cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <glib/gi18n.h>
#include <json-glib/json-glib.h>
#include <keyutils.h>

#include "eta-agent-client.h"
#include "eta-blob.h"
#include "eta-key-id.h"
#include "eta-names.h"
#include "eta-user-keyring.h"

void
eta_cli_error (const gchar *command, const gchar *format, ...)
{
  g_autofree gchar *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  if (command != NULL)
    g_printerr ("ecryptfs-token %s: %s\n", command, message);
  else
    g_printerr ("ecryptfs-token: %s\n", message);
}

/* One connection per run, made on first use. */
static GDBusConnection *
session_bus (GError **error)
{
  static GDBusConnection *connection;
  g_autofree gchar *address = NULL;

  if (connection != NULL)
    return connection;
  address = eta_agent_client_find_bus_address (error);
  if (address == NULL)
    return NULL;
  connection = g_dbus_connection_new_for_address_sync (
      address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
      | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, error);
  return connection;
}

gboolean
eta_cli_error_means_no_agent (const GError *error)
{
  static const gchar * const missing[] = {
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.NoReply",
    "org.freedesktop.DBus.Error.Timeout",
    "org.freedesktop.DBus.Error.TimedOut",
    "org.freedesktop.DBus.Error.Disconnected",
    NULL,
  };
  g_autofree gchar *name = NULL;

  /* The bus or the activation helper answered: the agent is not there. */
  if (g_dbus_error_is_remote_error (error))
    {
      name = g_dbus_error_get_remote_error (error);
      return g_strv_contains (missing, name)
             || g_str_has_prefix (name, "org.freedesktop.DBus.Error.Spawn.");
    }
  /* Our own timeout means an agent that is there but busy (a PIN prompt
   * holds it): that is a failure of the call, not a missing agent. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    return FALSE;
  /* Local failures: connecting, a broken connection. */
  return error->domain == G_IO_ERROR || error->domain == G_DBUS_ERROR;
}

GVariant *
eta_cli_call_agent (const gchar *command, const gchar *what, const gchar *method,
                    GVariant *parameters, const GVariantType *reply_type, gint timeout_ms,
                    gboolean start_agent, EtaCliExit *exit_code)
{
  g_autoptr (GError) error = NULL;
  GDBusConnection *connection = session_bus (&error);
  g_autofree gchar *agent = NULL;
  GVariant *reply;

  if (connection == NULL)
    {
      if (parameters != NULL)
        g_variant_unref (g_variant_ref_sink (parameters));
      eta_cli_error (command, _("%s: cannot reach the session bus: %s"), what, error->message);
      *exit_code = ETA_CLI_EXIT_NO_AGENT;
      return NULL;
    }
  /* Only to an owner of the name that runs as this user, by its unique
   * name, so the name cannot change hands between the check and the call. */
  agent = eta_agent_client_find_agent (connection, start_agent, timeout_ms, &error);
  if (agent == NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED))
    {
      if (parameters != NULL)
        g_variant_unref (g_variant_ref_sink (parameters));
      eta_cli_error (command, "%s: %s", what, error->message);
      *exit_code = ETA_CLI_EXIT_FAILED;
      return NULL;
    }
  if (agent != NULL)
    reply = g_dbus_connection_call_sync (connection, agent, ETA_OBJECT_PATH, ETA_INTERFACE,
                                         method, parameters, reply_type,
                                         G_DBUS_CALL_FLAGS_NO_AUTO_START, timeout_ms, NULL,
                                         &error);
  else
    {
      if (parameters != NULL)
        g_variant_unref (g_variant_ref_sink (parameters));
      reply = NULL;
    }
  if (reply != NULL)
    return reply;
  if (eta_cli_error_means_no_agent (error))
    {
      g_dbus_error_strip_remote_error (error);
      eta_cli_error (command, _("%s: the token agent is not running or does not answer (%s)"),
                     what, error->message);
      *exit_code = ETA_CLI_EXIT_NO_AGENT;
      return NULL;
    }
  g_dbus_error_strip_remote_error (error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    eta_cli_error (command, _("%s: the agent did not answer in time (is a PIN prompt open?)"),
                   what);
  else
    eta_cli_error (command, "%s: %s", what, error->message);
  *exit_code = ETA_CLI_EXIT_FAILED;
  return NULL;
}

gboolean
eta_cli_agent_is_running (void)
{
  g_autoptr (GVariant) reply = NULL;
  GDBusConnection *connection = session_bus (NULL);
  gboolean has_owner = FALSE;

  if (connection == NULL)
    return FALSE;
  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus",
                                       "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "NameHasOwner", g_variant_new ("(s)", ETA_BUS_NAME),
                                       G_VARIANT_TYPE ("(b)"), G_DBUS_CALL_FLAGS_NONE, 5000,
                                       NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &has_owner);
  return has_owner;
}

const gchar *
eta_cli_lookup_string (GVariant *dict, const gchar *key)
{
  const gchar *value = NULL;

  if (!g_variant_lookup (dict, key, "&s", &value))
    value = "";
  return value;
}

void
eta_cli_print_json (GVariant *value)
{
  g_autoptr (JsonNode) node = json_gvariant_serialize (value);
  g_autofree gchar *text = json_to_string (node, TRUE);

  g_print ("%s\n", text);
}

gchar *
eta_cli_parse_fingerprint (const gchar *command, const gchar *text)
{
  g_autofree gchar *fingerprint = g_ascii_strdown (text, -1);

  if (!eta_fingerprint_prefix_is_valid (fingerprint))
    {
      eta_cli_error (command,
                     _("%s is not a fingerprint (16 to 64 hex digits; see 'ecryptfs-token "
                       "list')"),
                     text);
      return NULL;
    }
  return g_steal_pointer (&fingerprint);
}

EtaPublicKeyRecord *
eta_cli_find_key (const gchar *command, const gchar *fingerprint, EtaCliExit *exit_code)
{
  g_autoptr (GError) record_error = NULL;
  g_autoptr (GError) error = NULL;
  EtaPublicKeyRecord *record = eta_public_key_find_record (fingerprint, &record_error);

  if (record != NULL)
    return record;
  if (g_error_matches (record_error, G_IO_ERROR, G_IO_ERROR_EXISTS))
    {
      eta_cli_error (command, "%s", record_error->message);
      *exit_code = ETA_CLI_EXIT_USAGE;
      return NULL;
    }
  record = eta_agent_client_resolve (fingerprint, 30000, &error);
  if (record != NULL)
    return record;
  *exit_code = eta_cli_error_means_no_agent (error) ? ETA_CLI_EXIT_NO_AGENT
                                                   : ETA_CLI_EXIT_FAILED;
  g_dbus_error_strip_remote_error (error);
  eta_cli_error (command, _("key %s is not enrolled here (no saved public key) and the agent "
                            "cannot find it: %s"),
                 fingerprint, error->message);
  return NULL;
}

gboolean
eta_cli_key_sig (const EtaPublicKeyRecord *record, gchar sig[17])
{
  gsize len;
  const guint8 *der = g_bytes_get_data (record->spki, &len);

  return eta_key_sig_from_spki (der, len, sig) == 0;
}

gint32
eta_cli_keyring_find (const gchar *sig, gint *padding, gint *wrap)
{
  key_serial_t key = keyctl_search (KEY_SPEC_USER_KEYRING, "user", sig, 0);
  g_autofree guint8 *payload = NULL;
  void *buffer = NULL;
  EtaBlob blob;
  long len;

  if (key < 0)
    return 0;
  len = keyctl_read_alloc (key, &buffer);
  payload = buffer;
  /* Only an auth token carrying our blob is ours to report or remove. */
  if (len < 0 || !eta_user_keyring_parse_auth_tok (payload, (gsize) len, &blob))
    return 0;
  if (padding != NULL)
    *padding = blob.padding;
  if (wrap != NULL)
    *wrap = blob.wrap;
  return key;
}

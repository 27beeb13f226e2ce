/* Reading keymod.conf; see eta-keymod-config.h. */
#include "eta-keymod-config.h"

#include "eta-keymod-log.h"

const gchar *
eta_keymod_config_path (void)
{
  const gchar *path = g_getenv ("ECRYPTFS_TOKEN_AGENT_KEYMOD_CONF");
  return path != NULL ? path : ETA_KEYMOD_CONF;
}

static guint
read_timeout (GKeyFile *file, const gchar *key, guint fallback)
{
  g_autoptr (GError) error = NULL;
  gint value = g_key_file_get_integer (file, "keymod", key, &error);

  if (error != NULL)
    {
      if (!g_error_matches (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND)
          && !g_error_matches (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND))
        eta_keymod_log (LOG_WARNING, "%s: %s: %s; using %u ms",
                        eta_keymod_config_path (), key, error->message, fallback);
      return fallback;
    }
  if (value < 100 || value > ETA_KEYMOD_MAX_TIMEOUT_MS)
    {
      eta_keymod_log (LOG_WARNING, "%s: %s=%d is out of range (100..%d); using %u ms",
                      eta_keymod_config_path (), key, value,
                      ETA_KEYMOD_MAX_TIMEOUT_MS, fallback);
      return fallback;
    }
  return (guint) value;
}

void
eta_keymod_config_load (EtaKeymodConfig *config)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();
  g_autoptr (GError) error = NULL;

  config->unwrap_timeout_ms = ETA_KEYMOD_DEFAULT_UNWRAP_TIMEOUT_MS;
  config->resolve_timeout_ms = ETA_KEYMOD_DEFAULT_RESOLVE_TIMEOUT_MS;
  if (!g_key_file_load_from_file (file, eta_keymod_config_path (), G_KEY_FILE_NONE, &error))
    {
      if (!g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        eta_keymod_log (LOG_WARNING, "cannot read %s: %s; using defaults",
                        eta_keymod_config_path (), error->message);
      return;
    }
  config->unwrap_timeout_ms = read_timeout (file, "unwrap_timeout_ms",
                                            config->unwrap_timeout_ms);
  config->resolve_timeout_ms = read_timeout (file, "resolve_timeout_ms",
                                             config->resolve_timeout_ms);
}

/* Reading keymod.conf; see eta-keymod-config.h. */
#include "config.h"

#include "eta-keymod-config.h"

#include "eta-keymod-log.h"

const gchar *
eta_keymod_config_path (void)
{
  const gchar *path = g_getenv ("ECRYPTFS_TOKEN_AGENT_KEYMOD_CONF");
  return path != NULL ? path : ETA_KEYMOD_CONF;
}

/* An integer in [@min, @max] with @unit for messages, else @fallback. */
static guint
read_number (GKeyFile *file, const gchar *key, gint min, gint max, const gchar *unit,
             guint fallback)
{
  g_autoptr (GError) error = NULL;
  gint value = g_key_file_get_integer (file, "keymod", key, &error);

  if (error != NULL)
    {
      if (!g_error_matches (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND)
          && !g_error_matches (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND))
        eta_keymod_log (LOG_WARNING, "%s: %s: %s; using %u%s",
                        eta_keymod_config_path (), key, error->message, fallback, unit);
      return fallback;
    }
  if (value < min || value > max)
    {
      eta_keymod_log (LOG_WARNING, "%s: %s=%d is out of range (%d..%d); using %u%s",
                      eta_keymod_config_path (), key, value, min, max, fallback, unit);
      return fallback;
    }
  return (guint) value;
}

static guint
read_timeout (GKeyFile *file, const gchar *key, guint fallback)
{
  return read_number (file, key, 100, ETA_KEYMOD_MAX_TIMEOUT_MS, " ms", fallback);
}

void
eta_keymod_config_load (EtaKeymodConfig *config)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();
  g_autoptr (GError) error = NULL;

  config->unwrap_timeout_ms = ETA_KEYMOD_DEFAULT_UNWRAP_TIMEOUT_MS;
  config->resolve_timeout_ms = ETA_KEYMOD_DEFAULT_RESOLVE_TIMEOUT_MS;
  config->epoch_seconds = ETA_KEYMOD_DEFAULT_EPOCH_SECONDS;
  config->epoch_files = ETA_KEYMOD_DEFAULT_EPOCH_FILES;
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
  config->epoch_seconds = read_number (file, "epoch_seconds", 1, ETA_KEYMOD_MAX_EPOCH_SECONDS,
                                       " s", config->epoch_seconds);
  config->epoch_files = read_number (file, "epoch_files", 1, ETA_KEYMOD_MAX_EPOCH_FILES, "",
                                     config->epoch_files);
}

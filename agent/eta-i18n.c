/* See eta-i18n.h. */
#define G_LOG_DOMAIN "eta-i18n"

#include "config.h"

#include "eta-i18n.h"

#include <libintl.h>
#include <locale.h>

void
eta_i18n_init (void)
{
  /* gettext has no variable of its own for where catalogues live, so a build
   * tree's catalogues (tests, running uninstalled) could not be used without
   * this. It only moves where translated text is read from; whoever controls
   * the agent's environment can already do far more (LD_PRELOAD). */
  const gchar *localedir = g_getenv ("ECRYPTFS_TOKEN_AGENT_LOCALEDIR");

  if (localedir == NULL || !g_path_is_absolute (localedir))
    localedir = ETA_LOCALEDIR;
  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, localedir);
  /* GTK, GLib and D-Bus all expect UTF-8, whatever the locale's charset. */
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
}

/* See eta-ecryptfsd-probe.h. */
#include "config.h"

#include "eta-ecryptfsd-probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <glib/gi18n.h>

#define KEYMOD_NAME "libecryptfs_key_mod_token_agent.so"

const gchar *
eta_ecryptfsd_installed_module (void)
{
  const gchar *override = g_getenv ("ECRYPTFS_TOKEN_AGENT_KEYMOD_FILE");

  return override != NULL && *override != '\0' ? override : ETA_KEYMOD_FILE;
}

/* The effective uid of a live process, from /proc/PID/status; FALSE for
 * one that is gone or a zombie (killed, not reaped yet: it serves nobody). */
static gboolean
read_euid (const gchar *pid, uid_t *uid_out)
{
  g_autofree gchar *path = g_build_filename ("/proc", pid, "status", NULL);
  g_autofree gchar *status = NULL;
  const gchar *line;
  guint64 real, effective;
  gchar state = '?';

  if (!g_file_get_contents (path, &status, NULL, NULL))
    return FALSE;
  line = strstr (status, "\nState:");
  if (line == NULL || sscanf (line, "\nState: %c", &state) != 1 || state == 'Z' || state == 'X')
    return FALSE;
  line = strstr (status, "\nUid:");
  if (line == NULL || sscanf (line, "\nUid: %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT, &real,
                              &effective) != 2)
    return FALSE;
  *uid_out = (uid_t) effective;
  return TRUE;
}

static gboolean
is_ecryptfsd (const gchar *pid)
{
  g_autofree gchar *path = g_build_filename ("/proc", pid, "comm", NULL);
  g_autofree gchar *comm = NULL;

  return g_file_get_contents (path, &comm, NULL, NULL) && g_str_equal (comm, "ecryptfsd\n");
}

/* Whether the process maps the installed key module file. A map we cannot
 * read (another policy than ours) counts as the right one: we cannot tell. */
static gboolean
maps_installed_module (const gchar *pid)
{
  g_autofree gchar *path = g_build_filename ("/proc", pid, "maps", NULL);
  g_autofree gchar *maps = NULL;
  g_auto (GStrv) lines = NULL;
  struct stat installed;

  if (!g_file_get_contents (path, &maps, NULL, NULL))
    return TRUE;
  if (stat (eta_ecryptfsd_installed_module (), &installed) != 0)
    return FALSE;
  lines = g_strsplit (maps, "\n", -1);
  for (gsize i = 0; lines[i] != NULL; i++)
    {
      guint major_number, minor_number;
      guint64 inode;

      /* address perms offset major:minor inode path */
      if (!g_str_has_suffix (lines[i], "/" KEYMOD_NAME)
          || sscanf (lines[i], "%*s %*s %*s %x:%x %" G_GUINT64_FORMAT, &major_number,
                     &minor_number, &inode) != 3)
        continue;
      /* A file replaced since it was loaded ends in " (deleted)" and fails
       * the suffix test; one changed in place has the same inode but that
       * is not how packages install. */
      if (inode == (guint64) installed.st_ino && major_number == major (installed.st_dev)
          && minor_number == minor (installed.st_dev))
        return TRUE;
    }
  return FALSE;
}

EtaEcryptfsdState
eta_ecryptfsd_probe (uid_t uid, pid_t *pid_out)
{
  g_autoptr (GDir) proc = g_dir_open ("/proc", 0, NULL);
  EtaEcryptfsdState state = ETA_ECRYPTFSD_NOT_RUNNING;
  pid_t found = 0;
  const gchar *name;

  while (proc != NULL && (name = g_dir_read_name (proc)) != NULL)
    {
      uid_t owner;

      if (!g_ascii_isdigit (name[0]) || !is_ecryptfsd (name) || !read_euid (name, &owner)
          || owner != uid)
        continue;
      found = (pid_t) atoi (name);
      if (maps_installed_module (name))
        {
          state = ETA_ECRYPTFSD_RUNNING;
          break;
        }
      state = ETA_ECRYPTFSD_OLD_MODULE;
    }
  if (pid_out != NULL)
    *pid_out = found;
  return state;
}

const gchar *
eta_ecryptfsd_state_to_string (EtaEcryptfsdState state)
{
  switch (state)
    {
    case ETA_ECRYPTFSD_RUNNING:
      return "running";
    case ETA_ECRYPTFSD_OLD_MODULE:
      return "old-module";
    case ETA_ECRYPTFSD_NOT_RUNNING:
    default:
      return "not-running";
    }
}

gchar *
eta_ecryptfsd_describe_problem (EtaEcryptfsdState state)
{
  switch (state)
    {
    case ETA_ECRYPTFSD_NOT_RUNNING:
      return g_strdup (_("Encrypted files cannot be opened: ecryptfsd is not running. Start it "
                         "with: systemctl --user start ecryptfs-token-ecryptfsd.service (or run "
                         "ecryptfsd)"));
    case ETA_ECRYPTFSD_OLD_MODULE:
      return g_strdup (_("ecryptfsd runs an older token key module than the one installed. "
                         "Restart it with: systemctl --user restart "
                         "ecryptfs-token-ecryptfsd.service"));
    case ETA_ECRYPTFSD_RUNNING:
    default:
      return NULL;
    }
}

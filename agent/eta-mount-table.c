/* See eta-mount-table.h. */
#include "eta-mount-table.h"

#include <string.h>

/* mountinfo escapes blanks in paths as \040 and friends. */
static gchar *
unescape_path (const gchar *field)
{
  GString *path = g_string_new (NULL);
  for (const gchar *p = field; *p != '\0'; p++)
    {
      if (p[0] == '\\' && g_ascii_isdigit (p[1]) && g_ascii_isdigit (p[2])
          && g_ascii_isdigit (p[3]))
        {
          g_string_append_c (path, (gchar) ((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0')));
          p += 3;
        }
      else
        g_string_append_c (path, *p);
    }
  return g_string_free (path, FALSE);
}

GStrv
eta_mount_table_mounts_for_sig (const gchar *mountinfo_path, const gchar *sig)
{
  g_autoptr (GStrvBuilder) mounts = g_strv_builder_new ();
  g_autofree gchar *contents = NULL;
  g_auto (GStrv) lines = NULL;
  g_autofree gchar *wanted = g_strconcat ("ecryptfs_sig=", sig, NULL);

  if (!g_file_get_contents (mountinfo_path ? mountinfo_path : "/proc/self/mountinfo",
                            &contents, NULL, NULL))
    return g_strv_builder_end (mounts);
  lines = g_strsplit (contents, "\n", -1);
  for (gsize i = 0; lines[i] != NULL; i++)
    {
      /* id parent major:minor root mountpoint options [optional...] - fstype source super */
      g_auto (GStrv) fields = g_strsplit (lines[i], " ", -1);
      gsize n = g_strv_length (fields), dash = 0;

      for (gsize f = 6; f < n; f++)
        if (g_str_equal (fields[f], "-"))
          {
            dash = f;
            break;
          }
      if (dash == 0 || dash + 3 >= n || !g_str_equal (fields[dash + 1], "ecryptfs"))
        continue;
      {
        g_auto (GStrv) options = g_strsplit (fields[dash + 3], ",", -1);
        if (g_strv_contains ((const gchar * const *) options, wanted))
          {
            g_autofree gchar *path = unescape_path (fields[4]);
            g_strv_builder_add (mounts, path);
          }
      }
    }
  return g_strv_builder_end (mounts);
}

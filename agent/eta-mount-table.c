/* See eta-mount-table.h. */
#include "config.h"

#include "eta-mount-table.h"

#include <string.h>

#include "eta-names.h"

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

/* Called for each eCryptfs mount with its (escaped) mount point and its
 * super options split at the commas. */
typedef void (*MountFunc) (const gchar *mount_point, const gchar * const *options,
                           gpointer user_data);

static void
for_each_ecryptfs_mount (const gchar *mountinfo_path, MountFunc func, gpointer user_data)
{
  g_autofree gchar *contents = NULL;
  g_auto (GStrv) lines = NULL;

  if (!g_file_get_contents (mountinfo_path ? mountinfo_path : "/proc/self/mountinfo",
                            &contents, NULL, NULL))
    return;
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
        func (fields[4], (const gchar * const *) options, user_data);
      }
    }
}

typedef struct
{
  const gchar *wanted;
  GStrvBuilder *mounts;
} MountsForSig;

static void
add_mount_if_uses_sig (const gchar *mount_point, const gchar * const *options,
                       gpointer user_data)
{
  MountsForSig *search = user_data;

  if (g_strv_contains (options, search->wanted))
    {
      g_autofree gchar *path = unescape_path (mount_point);
      /* A mount point is any bytes; what callers get goes into prompts, the
       * tray menu and JSON (GVariant strings), which take UTF-8 only. */
      g_autofree gchar *shown = g_filename_display_name (path);
      g_strv_builder_add (search->mounts, shown);
    }
}

GStrv
eta_mount_table_mounts_for_sig (const gchar *mountinfo_path, const gchar *sig)
{
  g_autoptr (GStrvBuilder) mounts = g_strv_builder_new ();
  g_autofree gchar *wanted = g_strconcat ("ecryptfs_sig=", sig, NULL);
  MountsForSig search = { wanted, mounts };

  for_each_ecryptfs_mount (mountinfo_path, add_mount_if_uses_sig, &search);
  return g_strv_builder_end (mounts);
}

static void
add_sigs (const gchar *mount_point, const gchar * const *options, gpointer user_data)
{
  GPtrArray *sigs = user_data;

  for (gsize i = 0; options[i] != NULL; i++)
    {
      const gchar *sig;

      if (!g_str_has_prefix (options[i], "ecryptfs_sig="))
        continue;
      sig = options[i] + strlen ("ecryptfs_sig=");
      if (!g_ptr_array_find_with_equal_func (sigs, sig, g_str_equal, NULL))
        g_ptr_array_add (sigs, g_strdup (sig));
    }
}

GStrv
eta_mount_table_list_sigs (const gchar *mountinfo_path)
{
  GPtrArray *sigs = g_ptr_array_new ();

  for_each_ecryptfs_mount (mountinfo_path, add_sigs, sigs);
  g_ptr_array_add (sigs, NULL);
  return (GStrv) g_ptr_array_free (sigs, FALSE);
}

gchar *
eta_mount_table_key_option (const gchar *fingerprint, const gchar *padding, const gchar *wrap)
{
  /* The key module's default is epoch: only the other choice is spelt out,
   * which keeps the option (at most 128 characters) short. */
  if (wrap != NULL && !g_str_equal (wrap, "epoch"))
    return g_strdup_printf ("key=%s:fingerprint=%s:padding=%s:wrap=%s", ETA_KEYMOD_ALIAS,
                            fingerprint, padding, wrap);
  return g_strdup_printf ("key=%s:fingerprint=%s:padding=%s", ETA_KEYMOD_ALIAS, fingerprint,
                          padding);
}

gchar *
eta_mount_table_options_for_key_with_wrap (const gchar *fingerprint, const gchar *padding,
                                           const gchar *wrap)
{
  g_autofree gchar *key_option = eta_mount_table_key_option (fingerprint, padding, wrap);

  return g_strconcat (key_option, ",", ETA_MOUNT_CIPHER_OPTIONS, ",no_sig_cache", NULL);
}

gchar *
eta_mount_table_options_for_key (const gchar *fingerprint, const gchar *padding)
{
  return eta_mount_table_options_for_key_with_wrap (fingerprint, padding, NULL);
}

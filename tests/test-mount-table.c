/* Finding the eCryptfs mounts that use a key, from mountinfo lines; the key
 * module option for a key. */
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "eta-mount-table.h"

static const gchar mountinfo[] =
  "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
  "40 22 0:35 / /home/alice/Private rw,nosuid shared:20 - ecryptfs /home/alice/.Private "
  "rw,ecryptfs_sig=939a34c74ce3d0d6,ecryptfs_cipher=aes,ecryptfs_key_bytes=32\n"
  "41 22 0:36 / /srv/My\\040Files rw - ecryptfs /srv/.lower "
  "rw,ecryptfs_sig=1111111111111111,ecryptfs_sig=939a34c74ce3d0d6,ecryptfs_cipher=aes\n"
  "42 22 0:37 / /mnt/other rw - ecryptfs /mnt/.other rw,ecryptfs_sig=2222222222222222\n"
  "43 22 0:38 / /mnt/tricky rw - ext4 /dev/sdb1 rw,ecryptfs_sig=939a34c74ce3d0d6\n";

static void
test_mounts_for_sig (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = NULL;
  int fd = g_file_open_tmp ("eta-mountinfo-XXXXXX", &path, &error);
  g_auto (GStrv) mounts = NULL;
  g_auto (GStrv) none = NULL;

  g_assert_no_error (error);
  close (fd);
  g_file_set_contents (path, mountinfo, -1, &error);
  g_assert_no_error (error);

  mounts = eta_mount_table_mounts_for_sig (path, "939a34c74ce3d0d6");
  g_assert_cmpuint (g_strv_length (mounts), ==, 2);
  g_assert_cmpstr (mounts[0], ==, "/home/alice/Private");
  /* Escaped blanks come back as blanks; a second sig on the mount counts. */
  g_assert_cmpstr (mounts[1], ==, "/srv/My Files");

  none = eta_mount_table_mounts_for_sig (path, "3333333333333333");
  g_assert_cmpuint (g_strv_length (none), ==, 0);
  g_unlink (path);
}

static void
test_missing_file (void)
{
  g_auto (GStrv) mounts = eta_mount_table_mounts_for_sig ("/nonexistent/mountinfo", "939a");
  g_auto (GStrv) sigs = eta_mount_table_list_sigs ("/nonexistent/mountinfo");
  g_assert_nonnull (mounts);
  g_assert_cmpuint (g_strv_length (mounts), ==, 0);
  g_assert_nonnull (sigs);
  g_assert_cmpuint (g_strv_length (sigs), ==, 0);
}

static void
test_list_sigs (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = NULL;
  int fd = g_file_open_tmp ("eta-mountinfo-XXXXXX", &path, &error);
  g_auto (GStrv) sigs = NULL;

  g_assert_no_error (error);
  close (fd);
  g_file_set_contents (path, mountinfo, -1, &error);
  g_assert_no_error (error);

  /* Each sig of each eCryptfs mount once, in order; not the ext4 mount's. */
  sigs = eta_mount_table_list_sigs (path);
  g_assert_cmpuint (g_strv_length (sigs), ==, 3);
  g_assert_cmpstr (sigs[0], ==, "939a34c74ce3d0d6");
  g_assert_cmpstr (sigs[1], ==, "1111111111111111");
  g_assert_cmpstr (sigs[2], ==, "2222222222222222");
  g_unlink (path);
}

/* Mount points are any bytes; what the agent shows (prompts, the tray menu,
 * JSON) takes UTF-8 only, so a Latin-1 name comes back displayable. */
static void
test_mount_point_not_utf8 (void)
{
  static const gchar latin1[] =
    "40 22 0:35 / /srv/caf\xe9 rw - ecryptfs /srv/.caf\xe9 rw,ecryptfs_sig=939a34c74ce3d0d6\n";
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = NULL;
  int fd = g_file_open_tmp ("eta-mountinfo-XXXXXX", &path, &error);
  g_auto (GStrv) mounts = NULL;

  g_assert_no_error (error);
  close (fd);
  g_file_set_contents (path, latin1, -1, &error);
  g_assert_no_error (error);

  mounts = eta_mount_table_mounts_for_sig (path, "939a34c74ce3d0d6");
  g_assert_cmpuint (g_strv_length (mounts), ==, 1);
  g_assert_true (g_utf8_validate (mounts[0], -1, NULL));
  g_assert_cmpstr (mounts[0], ==, "/srv/caf\xef\xbf\xbd");
  g_unlink (path);
}

/* The key option for mount, fstab and ~/.ecryptfsrc: wrap= only when it is
 * not the key module's default. */
static void
test_key_option (void)
{
  g_autofree gchar *plain = eta_mount_table_key_option ("0123456789abcdef", "oaep", NULL);
  g_autofree gchar *epoch = eta_mount_table_key_option ("0123456789abcdef", "pkcs1", "epoch");
  g_autofree gchar *per_file = eta_mount_table_key_option ("0123456789abcdef", "oaep",
                                                           "per-file");
  g_autofree gchar *all = eta_mount_table_options_for_key_with_wrap (
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "pkcs1", "per-file");
  g_autofree gchar *all_epoch = eta_mount_table_options_for_key ("0123456789abcdef", "oaep");
  g_auto (GStrv) options = g_strsplit (all, ",", -1);

  g_assert_cmpstr (plain, ==, "key=token-agent:fingerprint=0123456789abcdef:padding=oaep");
  g_assert_cmpstr (epoch, ==, "key=token-agent:fingerprint=0123456789abcdef:padding=pkcs1");
  g_assert_cmpstr (per_file, ==,
                   "key=token-agent:fingerprint=0123456789abcdef:padding=oaep:wrap=per-file");
  g_assert_true (g_str_has_suffix (options[0], ":padding=pkcs1:wrap=per-file"));
  /* Each comma-separated option fits mount's 128 characters, even with a
   * full fingerprint. */
  for (gsize i = 0; options[i] != NULL; i++)
    g_assert_cmpuint (strlen (options[i]), <=, 128);
  g_assert_true (g_str_has_prefix (all_epoch, plain));
  g_assert_true (g_str_has_suffix (all_epoch, ",no_sig_cache"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/agent/mount-table/mounts-for-sig", test_mounts_for_sig);
  g_test_add_func ("/agent/mount-table/missing-file", test_missing_file);
  g_test_add_func ("/agent/mount-table/list-sigs", test_list_sigs);
  g_test_add_func ("/agent/mount-table/mount-point-not-utf8", test_mount_point_not_utf8);
  g_test_add_func ("/agent/mount-table/key-option", test_key_option);
  return g_test_run ();
}

/* Which eCryptfs mounts use a key: the mounts whose ecryptfs_sig option is
 * the key's signature, read from /proc/self/mountinfo. Shown in prompts so
 * people know what they unlock. */
#pragma once

#include <glib.h>

/* Mount points (NULL-terminated, possibly empty) using @sig. @mountinfo_path
 * may be NULL for /proc/self/mountinfo. */
GStrv eta_mount_table_mounts_for_sig (const gchar *mountinfo_path, const gchar *sig);

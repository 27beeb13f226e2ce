/* Which eCryptfs mounts use a key: the mounts whose ecryptfs_sig option is
 * the key's signature, read from /proc/self/mountinfo. Shown in prompts so
 * people know what they unlock, and the agent unlocks early the tokens
 * holding keys that mounts use. */
#pragma once

#include <glib.h>

/* Mount points (NULL-terminated, possibly empty) using @sig, for display:
 * valid UTF-8, as g_filename_display_name() shows them. @mountinfo_path may
 * be NULL for /proc/self/mountinfo. */
GStrv eta_mount_table_mounts_for_sig (const gchar *mountinfo_path, const gchar *sig);

/* What every mount of a token key needs besides the key itself: AES-256,
 * no plaintext passthrough, no filename encryption (it would need a second,
 * passphrase key), and no question about an unknown signature. */
#define ETA_MOUNT_CIPHER_OPTIONS \
  "ecryptfs_cipher=aes,ecryptfs_key_bytes=32,ecryptfs_passthrough=n," \
  "ecryptfs_enable_filename_crypto=n"

/* The key module's option "key=token-agent:fingerprint=...:padding=..." for
 * the token key @fingerprint used with @padding ("oaep" or "pkcs1"), with
 * ":wrap=per-file" when @wrap is "per-file" (NULL or "epoch": the module's
 * default, left out). */
gchar *eta_mount_table_key_option (const gchar *fingerprint, const gchar *padding,
                                   const gchar *wrap);
/* All the options of `mount -t ecryptfs -o ...` for that key, wrapped per
 * epoch (the default). */
gchar *eta_mount_table_options_for_key (const gchar *fingerprint, const gchar *padding);
/* The same with the wrap mode @wrap, as eta_mount_table_key_option(). */
gchar *eta_mount_table_options_for_key_with_wrap (const gchar *fingerprint, const gchar *padding,
                                                  const gchar *wrap);

/* Every ecryptfs_sig of every eCryptfs mount, each once (NULL-terminated,
 * possibly empty): the keys mounted directories use. */
GStrv eta_mount_table_list_sigs (const gchar *mountinfo_path);

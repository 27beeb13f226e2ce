/* eta-kernel-player.h: plays the eCryptfs kernel module towards the real
 * /usr/bin/ecryptfsd (harness B). The daemon runs in a private mount
 * namespace with a chosen key-module directory bind-mounted over the fixed
 * libecryptfs one, and an LD_PRELOAD shim turns its /dev/ecryptfs into a
 * SOCK_SEQPACKET socket whose other end this player holds. The player sends
 * the kernel's REQUEST frames, enforces the kernel's reply timeout and
 * matches seq/index the way fs/ecryptfs/messaging.c does.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* ecryptfs_message_wait_timeout default, in milliseconds. */
#define ETA_KERNEL_PLAYER_DEFAULT_TIMEOUT_MS 3000

#define ETA_KERNEL_PLAYER_ERROR (eta_kernel_player_error_quark ())

typedef enum {
  ETA_KERNEL_PLAYER_ERROR_FAILURE_REPLY, /* daemon answered 41 ff / 43 ff */
  ETA_KERNEL_PLAYER_ERROR_TIMED_OUT,     /* no matching reply in time */
  ETA_KERNEL_PLAYER_ERROR_PROTOCOL,      /* reply the kernel would refuse */
  ETA_KERNEL_PLAYER_ERROR_DAEMON_EXITED, /* daemon died or closed the device */
  ETA_KERNEL_PLAYER_ERROR_SETUP,         /* could not start the daemon */
} EtaKernelPlayerError;

typedef struct _EtaKernelPlayer EtaKernelPlayer;

GQuark           eta_kernel_player_error_quark      (void);

/* Creates a temporary directory holding a copy of @keymod_path (a "*.so";
 * NULL for none) and of libecryptfs_key_mod_passphrase.so, whose absence
 * makes libecryptfs crash at daemon exit. Free with
 * eta_kernel_player_remove_module_dir(). */
gchar           *eta_kernel_player_make_module_dir  (const gchar *keymod_path,
                                                     GError     **error);
/* Deletes the files in @module_dir and the directory. */
void             eta_kernel_player_remove_module_dir (const gchar *module_dir);

/* Starts "ecryptfsd -f" with @module_dir (NULL: the system directory) over
 * the key-module directory, a fresh session keyring linking @u, the shim
 * preloaded, and @extra_env ("NAME=VALUE", NULL-terminated; may be NULL)
 * on top of the current environment. Returns once the daemon's HELO frame
 * arrived. Needs root (mount namespace, bind mount). */
EtaKernelPlayer *eta_kernel_player_start            (const gchar        *module_dir,
                                                     const gchar * const *extra_env,
                                                     GError            **error);

/* Tag 66 → tag 67: asks the daemon to wrap @fek (cipher code, FEK and
 * checksum, as the kernel sends them) for @sig. @timeout_ms 0 means the
 * kernel's 3000 ms. */
gboolean         eta_kernel_player_wrap             (EtaKernelPlayer *self,
                                                     const gchar     *sig,
                                                     guint8           cipher_code,
                                                     const guint8    *fek,
                                                     gsize            fek_len,
                                                     guint            timeout_ms,
                                                     GBytes         **wrapped_out,
                                                     GError         **error);
/* Tag 64 → tag 65: asks the daemon to unwrap @wrapped for @sig; checks the
 * reply's cipher code and checksum as the kernel does. */
gboolean         eta_kernel_player_unwrap           (EtaKernelPlayer *self,
                                                     const gchar     *sig,
                                                     const guint8    *wrapped,
                                                     gsize            wrapped_len,
                                                     guint            timeout_ms,
                                                     guint8          *cipher_code_out,
                                                     GBytes         **fek_out,
                                                     GError         **error);
/* Sends any request payload in a REQUEST frame with a fresh seq/index and
 * returns the payload of the matching RESPONSE, unchecked. For probing the
 * daemon with payloads the kernel would never send. */
gboolean         eta_kernel_player_request          (EtaKernelPlayer *self,
                                                     GBytes          *payload,
                                                     guint            timeout_ms,
                                                     GBytes         **reply_out,
                                                     GError         **error);
/* Sends the bare 5-byte REQUEST frame the kernel delivers for a request
 * that expired before the daemon read it (ecryptfsd counts it as a receive
 * error; 9 in a row end the daemon). */
gboolean         eta_kernel_player_send_stale_frame (EtaKernelPlayer *self,
                                                     GError         **error);

/* Waits until the daemon blocks reading its next frame (it has finished
 * start-up or the frames sent so far). TIMED_OUT or DAEMON_EXITED
 * otherwise. start() and stop() already do this. */
gboolean         eta_kernel_player_wait_idle        (EtaKernelPlayer *self,
                                                     guint            timeout_ms,
                                                     GError         **error);

/* Frames read and dropped so far because no request was waiting for them
 * (late replies to timed-out requests, HELO/QUIT, wrong seq). */
guint            eta_kernel_player_get_discarded_count (EtaKernelPlayer *self);

pid_t            eta_kernel_player_get_pid          (EtaKernelPlayer *self);
gboolean         eta_kernel_player_is_alive         (EtaKernelPlayer *self);
/* Waits up to @timeout_ms for the daemon to exit; on exit returns TRUE and
 * its waitpid() status. */
gboolean         eta_kernel_player_wait_exit        (EtaKernelPlayer *self,
                                                     guint            timeout_ms,
                                                     gint            *wait_status_out);
/* The daemon's stdout/stderr so far (ecryptfsd -f copies syslog there).
 * Owned by @self, valid until the next call or stop. */
const gchar     *eta_kernel_player_get_log          (EtaKernelPlayer *self);

/* SIGTERM (SIGKILL after 5 s), reap, free. NULL-safe. */
void             eta_kernel_player_stop             (EtaKernelPlayer *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EtaKernelPlayer, eta_kernel_player_stop)

G_END_DECLS

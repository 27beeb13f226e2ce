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
  ETA_KERNEL_PLAYER_ERROR_NO_CONTEXT,    /* all 32 message contexts are waiting */
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
/* Puts a fresh copy of @keymod_path in @module_dir as a package upgrade
 * does: a new file renamed over the old one, which a running daemon keeps
 * mapped. */
gboolean         eta_kernel_player_upgrade_module   (const gchar *module_dir,
                                                     const gchar *keymod_path,
                                                     GError     **error);

/* Starts "ecryptfsd -f" with @module_dir (NULL: the system directory) over
 * the key-module directory, a fresh session keyring linking @u, the shim
 * preloaded, and @extra_env ("NAME=VALUE", NULL-terminated; may be NULL)
 * on top of the current environment. Returns once the daemon's HELO frame
 * arrived. Needs root (mount namespace, bind mount). */
EtaKernelPlayer *eta_kernel_player_start            (const gchar        *module_dir,
                                                     const gchar * const *extra_env,
                                                     GError            **error);

/* As eta_kernel_player_start(), with @wrapper_argv (NULL-terminated; NULL
 * or empty for none) in front of the daemon's command line, e.g. valgrind
 * and its options. The wrapper must run the daemon in its own process (as
 * valgrind does), so that the pid it gets is the daemon's. */
EtaKernelPlayer *eta_kernel_player_start_wrapped    (const gchar        *module_dir,
                                                     const gchar * const *extra_env,
                                                     const gchar * const *wrapper_argv,
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
/* Several requests at once, as the kernel queues them when several
 * processes open files: each gets a free message context (index 0..31) and
 * a fresh seq, and waits in the daemon's queue behind the others; the
 * daemon still answers one at a time. The blocking calls above may be used
 * meanwhile: they keep the outcomes of other requests for collect(). */

/* The outcome of one submitted request. */
typedef struct {
  guint32  seq;
  guint32  index;
  GBytes  *reply;    /* the RESPONSE payload, unchecked; NULL when @error is set */
  GError  *error;    /* TIMED_OUT, PROTOCOL or DAEMON_EXITED; NULL with a reply */
  gint64   sent_us;  /* monotonic time the REQUEST frame was sent */
  gint64   done_us;  /* monotonic time the reply was read or the wait ended */
} EtaKernelPlayerResult;

void             eta_kernel_player_result_free      (EtaKernelPlayerResult *result);

/* Sends @payload in a REQUEST frame and returns at once with its seq in
 * @seq_out (may be NULL). @timeout_ms (0: 3000) counts from now, as the
 * kernel's wait does. NO_CONTEXT when 32 requests already wait, as the
 * kernel fails an open then. */
gboolean         eta_kernel_player_submit           (EtaKernelPlayer *self,
                                                     GBytes          *payload,
                                                     guint            timeout_ms,
                                                     guint32         *seq_out,
                                                     GError         **error);
/* Submits a tag 64 request for @wrapped and @sig. */
gboolean         eta_kernel_player_submit_unwrap    (EtaKernelPlayer *self,
                                                     const gchar     *sig,
                                                     const guint8    *wrapped,
                                                     gsize            wrapped_len,
                                                     guint            timeout_ms,
                                                     guint32         *seq_out,
                                                     GError         **error);
/* Waits up to @wait_ms for a submitted request to end: a matching reply,
 * its own deadline passing (TIMED_OUT; a reply coming later is dropped),
 * or the daemon going away (DAEMON_EXITED, for each request left). Outcomes
 * come out in the order they happened. NULL when none ended within @wait_ms
 * or nothing is outstanding. */
EtaKernelPlayerResult *eta_kernel_player_collect    (EtaKernelPlayer *self,
                                                     guint            wait_ms);
/* Requests submitted whose outcome collect() has not returned yet. */
guint            eta_kernel_player_get_outstanding_count (EtaKernelPlayer *self);
/* Checks @result as eta_kernel_player_unwrap() checks its reply:
 * FAILURE_REPLY for 41 ff, PROTOCOL for a reply the kernel would refuse,
 * the request's own error otherwise. */
gboolean         eta_kernel_player_result_get_unwrap (const EtaKernelPlayerResult *result,
                                                      guint8                *cipher_code_out,
                                                      GBytes               **fek_out,
                                                      GError               **error);

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

/* SIGTERM once the daemon is between requests, then waits up to
 * @timeout_ms for it to exit and gives its waitpid() status (the daemon's
 * own, or a wrapper's such as valgrind's exit code). TIMED_OUT if it is
 * still running; stop() then kills it. */
gboolean         eta_kernel_player_terminate        (EtaKernelPlayer *self,
                                                     guint            timeout_ms,
                                                     gint            *wait_status_out,
                                                     GError         **error);

/* SIGTERM (SIGKILL after 5 s), reap, free. NULL-safe. */
void             eta_kernel_player_stop             (EtaKernelPlayer *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EtaKernelPlayer, eta_kernel_player_stop)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EtaKernelPlayerResult, eta_kernel_player_result_free)

G_END_DECLS

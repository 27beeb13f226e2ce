/* eta-kernel-player.c: runs the real ecryptfsd against a socket instead of
 * /dev/ecryptfs and plays the kernel's side of the miscdev protocol, so key
 * modules can be tested through the daemon that will load them in
 * production, on machines without the eCryptfs filesystem.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define G_LOG_DOMAIN "eta-harness"

#include "eta-kernel-player.h"
#include "eta-ecryptfs-packet.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <keyutils.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* libecryptfs's module directory differs per architecture: only the build
 * knows it. */
#ifndef ETA_HARNESS_KEYMOD_DIR
#error "ETA_HARNESS_KEYMOD_DIR must be defined (tests/harness/CMakeLists.txt does)"
#endif
#ifndef ETA_HARNESS_SHIM_PATH
#define ETA_HARNESS_SHIM_PATH ""
#endif
#define ETA_HARNESS_SHIM_NAME "eta-ecryptfsd-shim.so"
#define ETA_HARNESS_ECRYPTFSD "/usr/bin/ecryptfsd"
#define PASSPHRASE_MODULE "libecryptfs_key_mod_passphrase.so"
/* The kernel's default ecryptfs_message_buf_len: indices 0..31. */
#define KERNEL_MSG_CTX_COUNT 32
#define START_TIMEOUT_MS 10000
#define STOP_GRACE_MS 5000

/* One kernel message context (fs/ecryptfs/messaging.c): a request sent
 * and waiting for its reply, or its outcome not yet collected. */
typedef struct {
  gboolean in_use;
  gboolean done;
  guint32  seq;
  gint64   sent_us;
  gint64   deadline_us;
  gint64   done_us;
  guint64  done_order;
  GBytes  *reply;
  GError  *error;
} MsgContext;

struct _EtaKernelPlayer
{
  pid_t    pid;
  int      sock_fd;
  int      pidfd;
  gboolean exited;
  gint     wait_status;
  gchar   *daemon_sock_link; /* "socket:[ino]" of the daemon's end */

  guint32  last_seq;
  guint32  next_index;
  guint    discarded;

  MsgContext contexts[KERNEL_MSG_CTX_COUNT];
  guint64    done_count;

  gchar   *log_dir;
  gchar   *log_path;
  gchar   *log_text;
};

G_DEFINE_QUARK (eta-kernel-player-error-quark, eta_kernel_player_error)

/* ---- module directory ------------------------------------------------- */

static gboolean
copy_file (const gchar *src,
           const gchar *dest,
           GError     **error)
{
  g_autoptr(GFile) s = g_file_new_for_path (src);
  g_autoptr(GFile) d = g_file_new_for_path (dest);

  return g_file_copy (s, d, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, error);
}

gchar *
eta_kernel_player_make_module_dir (const gchar *keymod_path,
                                   GError     **error)
{
  g_autofree gchar *dir = NULL;
  g_autofree gchar *pass_src = NULL;
  g_autofree gchar *pass_dest = NULL;

  if (keymod_path != NULL)
    {
      g_autofree gchar *base = g_path_get_basename (keymod_path);

      /* libecryptfs only loads names ending in ".so". */
      if (!g_str_has_suffix (base, ".so") || g_str_equal (base, PASSPHRASE_MODULE))
        {
          g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_SETUP,
                       "Key module “%s” must be named *.so and not %s",
                       keymod_path, PASSPHRASE_MODULE);
          return NULL;
        }
    }

  dir = g_dir_make_tmp ("eta-keymods-XXXXXX", error);
  if (dir == NULL)
    return NULL;
  /* ecryptfsd may run with another euid than the creator in later uses. */
  g_chmod (dir, 0755);

  pass_src = g_build_filename (ETA_HARNESS_KEYMOD_DIR, PASSPHRASE_MODULE, NULL);
  pass_dest = g_build_filename (dir, PASSPHRASE_MODULE, NULL);
  if (!copy_file (pass_src, pass_dest, error))
    goto fail;

  if (keymod_path != NULL)
    {
      g_autofree gchar *base = g_path_get_basename (keymod_path);
      g_autofree gchar *dest = g_build_filename (dir, base, NULL);

      if (!copy_file (keymod_path, dest, error))
        goto fail;
    }

  return g_steal_pointer (&dir);

fail:
  eta_kernel_player_remove_module_dir (dir);
  return NULL;
}

gboolean
eta_kernel_player_upgrade_module (const gchar *module_dir,
                                  const gchar *keymod_path,
                                  GError     **error)
{
  g_autofree gchar *base = g_path_get_basename (keymod_path);
  g_autofree gchar *dest = g_build_filename (module_dir, base, NULL);
  g_autofree gchar *fresh = g_strconcat (dest, ".new", NULL);

  if (!copy_file (keymod_path, fresh, error))
    return FALSE;
  if (g_rename (fresh, dest) != 0)
    {
      g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_SETUP,
                   "Cannot rename %s over %s: %s", fresh, dest, g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

void
eta_kernel_player_remove_module_dir (const gchar *module_dir)
{
  g_autoptr(GDir) d = NULL;
  const gchar *name;

  if (module_dir == NULL)
    return;
  d = g_dir_open (module_dir, 0, NULL);
  if (d != NULL)
    while ((name = g_dir_read_name (d)) != NULL)
      {
        g_autofree gchar *path = g_build_filename (module_dir, name, NULL);
        g_unlink (path);
      }
  g_rmdir (module_dir);
}

/* ---- process handling -------------------------------------------------- */

static gchar *
find_shim (GError **error)
{
  const gchar *env = g_getenv ("ETA_SHIM_PATH");
  g_autofree gchar *exe = NULL;
  g_autofree gchar *exe_dir = NULL;
  g_autofree gchar *beside = NULL;

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  if (*ETA_HARNESS_SHIM_PATH != '\0' && g_file_test (ETA_HARNESS_SHIM_PATH, G_FILE_TEST_EXISTS))
    return g_strdup (ETA_HARNESS_SHIM_PATH);

  exe = g_file_read_link ("/proc/self/exe", NULL);
  if (exe != NULL)
    {
      exe_dir = g_path_get_dirname (exe);
      beside = g_build_filename (exe_dir, ETA_HARNESS_SHIM_NAME, NULL);
      if (g_file_test (beside, G_FILE_TEST_EXISTS))
        return g_steal_pointer (&beside);
    }

  g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_SETUP,
               "Cannot find %s (set ETA_SHIM_PATH)", ETA_HARNESS_SHIM_NAME);
  return NULL;
}

static gboolean
reap (EtaKernelPlayer *self,
      gboolean         block)
{
  int status;
  pid_t r;

  if (self->exited)
    return TRUE;
  do
    r = waitpid (self->pid, &status, block ? 0 : WNOHANG);
  while (r == -1 && errno == EINTR);
  if (r == self->pid)
    {
      self->exited = TRUE;
      self->wait_status = status;
      return TRUE;
    }
  if (r == -1 && errno == ECHILD)
    {
      /* Someone else reaped it: still gone. */
      self->exited = TRUE;
      self->wait_status = -1;
      return TRUE;
    }
  return FALSE;
}

static gchar *
describe_status (gint status)
{
  if (status == -1)
    return g_strdup ("exited (status unknown)");
  if (WIFEXITED (status))
    return g_strdup_printf ("exited with status %d", WEXITSTATUS (status));
  if (WIFSIGNALED (status))
    return g_strdup_printf ("was killed by signal %d (%s)", WTERMSIG (status),
                            g_strsignal (WTERMSIG (status)));
  return g_strdup_printf ("ended with wait status 0x%x", (guint) status);
}

static void
set_exited_error (EtaKernelPlayer *self,
                  GError         **error)
{
  g_autofree gchar *how = NULL;

  reap (self, TRUE);
  how = describe_status (self->wait_status);
  g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_DAEMON_EXITED,
               "ecryptfsd (pid %d) %s", (int) self->pid, how);
}

/* What the child reports through the close-on-exec pipe if setup fails. */
typedef struct {
  int step;
  int err;
} ChildFailure;

enum {
  STEP_STDIO = 1,
  STEP_PDEATHSIG,
  STEP_UNSHARE,
  STEP_PRIVATE,
  STEP_BIND,
  STEP_SESSION_KEYRING,
  STEP_LINK_USER_KEYRING,
  STEP_FD_FLAGS,
  STEP_EXEC,
};

static const gchar *
step_name (int step)
{
  switch (step)
    {
    case STEP_STDIO: return "redirecting stdio";
    case STEP_PDEATHSIG: return "setting the parent-death signal";
    case STEP_UNSHARE: return "unshare(CLONE_NEWNS)";
    case STEP_PRIVATE: return "making / rprivate";
    case STEP_BIND: return "bind-mounting the module directory";
    case STEP_SESSION_KEYRING: return "joining a new session keyring";
    case STEP_LINK_USER_KEYRING: return "linking @u into the session keyring";
    case STEP_FD_FLAGS: return "setting up the miscdev fd";
    case STEP_EXEC: return "executing ecryptfsd";
    default: return "setting up the child";
    }
}

/* Runs between fork() and execve(): async-signal-safe calls only. */
G_GNUC_NORETURN static void
child_run (int                 err_fd,
           int                 log_fd,
           int                 null_fd,
           int                 misc_fd,
           pid_t               parent,
           const gchar        *module_dir,
           const gchar        *exec_path,
           gchar             **argv,
           gchar             **envp)
{
  ChildFailure f = { 0, 0 };
  int flags;

  if (dup2 (null_fd, 0) == -1 || dup2 (log_fd, 1) == -1 || dup2 (log_fd, 2) == -1)
    {
      f.step = STEP_STDIO;
      goto fail;
    }
  /* The daemon must not outlive a crashed test. SIGKILL, not SIGTERM:
   * ecryptfsd's SIGTERM handler can hang (see wait_until_idle()). */
  if (prctl (PR_SET_PDEATHSIG, SIGKILL) == -1)
    {
      f.step = STEP_PDEATHSIG;
      goto fail;
    }
  if (getppid () != parent)
    _exit (127);
  if (unshare (CLONE_NEWNS) == -1)
    {
      f.step = STEP_UNSHARE;
      goto fail;
    }
  if (mount ("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == -1)
    {
      f.step = STEP_PRIVATE;
      goto fail;
    }
  if (module_dir != NULL &&
      mount (module_dir, ETA_HARNESS_KEYMOD_DIR, "none", MS_BIND, NULL) == -1)
    {
      f.step = STEP_BIND;
      goto fail;
    }
  /* A session keyring of its own that links @u: the test adds auth
   * tokens to @u and ecryptfsd request_key()s in its own keyrings. Not
   * touching the test's session keyring keeps the test's view unchanged. */
  if (syscall (__NR_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) == -1)
    {
      f.step = STEP_SESSION_KEYRING;
      goto fail;
    }
  if (syscall (__NR_keyctl, KEYCTL_LINK, KEY_SPEC_USER_KEYRING, KEY_SPEC_SESSION_KEYRING) == -1)
    {
      f.step = STEP_LINK_USER_KEYRING;
      goto fail;
    }
  /* Everything above fd 2 closes at exec except the miscdev socket. */
  syscall (__NR_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
  flags = fcntl (misc_fd, F_GETFD);
  if (flags == -1 || fcntl (misc_fd, F_SETFD, flags & ~FD_CLOEXEC) == -1)
    {
      f.step = STEP_FD_FLAGS;
      goto fail;
    }

  execve (exec_path, argv, envp);
  f.step = STEP_EXEC;

fail:
  f.err = errno;
  (void) !write (err_fd, &f, sizeof f);
  _exit (127);
}

/* Reads one frame; waits until @deadline_us (monotonic) at most. */
static gboolean
recv_frame (EtaKernelPlayer *self,
            gint64           deadline_us,
            guint8          *buf,
            gsize            buf_size,
            gsize           *len_out,
            GError         **error)
{
  for (;;)
    {
      struct pollfd fds[2] = {
        { .fd = self->sock_fd, .events = POLLIN },
        { .fd = self->pidfd, .events = POLLIN },
      };
      gint64 now = g_get_monotonic_time ();
      int timeout_ms, r;
      ssize_t n;

      if (now >= deadline_us)
        {
          g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_TIMED_OUT,
                       "No reply from ecryptfsd in time");
          return FALSE;
        }
      timeout_ms = (int) MIN ((deadline_us - now + 999) / 1000, G_MAXINT);
      r = poll (fds, self->pidfd >= 0 ? 2 : 1, timeout_ms);
      if (r == -1)
        {
          if (errno == EINTR)
            continue;
          g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_PROTOCOL,
                       "poll() failed: %s", g_strerror (errno));
          return FALSE;
        }
      if (r == 0)
        continue;

      /* A reply written just before the daemon died still counts. */
      if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0)
        {
          n = recv (self->sock_fd, buf, buf_size, MSG_TRUNC | MSG_DONTWAIT);
          if (n == -1)
            {
              if (errno == EINTR || errno == EAGAIN)
                continue;
              if (errno == ECONNRESET)
                {
                  set_exited_error (self, error);
                  return FALSE;
                }
              g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_PROTOCOL,
                           "recv() failed: %s", g_strerror (errno));
              return FALSE;
            }
          if (n == 0)
            {
              set_exited_error (self, error);
              return FALSE;
            }
          *len_out = (gsize) n;
          return TRUE;
        }
      if ((fds[1].revents & POLLIN) != 0)
        {
          set_exited_error (self, error);
          return FALSE;
        }
    }
}

static gboolean
send_bytes (EtaKernelPlayer *self,
            GBytes          *frame,
            GError         **error)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (frame, &len);
  ssize_t n;

  if (self->exited || !eta_kernel_player_is_alive (self))
    {
      /* The kernel fails a request at once when no daemon is registered. */
      set_exited_error (self, error);
      return FALSE;
    }
  do
    n = send (self->sock_fd, data, len, MSG_NOSIGNAL);
  while (n == -1 && errno == EINTR);
  if (n == -1)
    {
      if (errno == EPIPE || errno == ECONNRESET)
        {
          set_exited_error (self, error);
          return FALSE;
        }
      g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_PROTOCOL,
                   "send() failed: %s", g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

/* TRUE if the daemon sits in read() on its miscdev socket, i.e. between
 * requests. -1 if /proc cannot tell. */
static int
daemon_is_idle (EtaKernelPlayer *self)
{
  g_autofree gchar *path = g_strdup_printf ("/proc/%d/syscall", (int) self->pid);
  g_autofree gchar *contents = NULL;
  g_autofree gchar *fd_path = NULL;
  g_autofree gchar *target = NULL;
  g_auto(GStrv) fields = NULL;
  guint64 nr, fd;

  if (self->daemon_sock_link == NULL ||
      !g_file_get_contents (path, &contents, NULL, NULL))
    return -1;
  fields = g_strsplit (g_strstrip (contents), " ", 3);
  if (fields[0] == NULL || fields[1] == NULL)
    return 0; /* "running" */
  nr = g_ascii_strtoull (fields[0], NULL, 10);
  fd = g_ascii_strtoull (fields[1], NULL, 16);
  if (nr != __NR_read)
    return 0;
  fd_path = g_strdup_printf ("/proc/%d/fd/%" G_GUINT64_FORMAT, (int) self->pid, fd);
  target = g_file_read_link (fd_path, NULL);
  return target != NULL && g_str_equal (target, self->daemon_sock_link);
}

/* Waits until the daemon blocks reading its next frame. After HELO it still
 * loads the key modules; a SIGTERM before it reaches read() can hang it
 * for good (its handler takes a mutex main() holds around the HELO write). */
static gboolean
wait_until_idle (EtaKernelPlayer *self,
                 guint            timeout_ms,
                 GError         **error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  for (;;)
    {
      int idle;

      if (reap (self, FALSE))
        {
          set_exited_error (self, error);
          return FALSE;
        }
      idle = daemon_is_idle (self);
      if (idle == 1)
        return TRUE;
      if (idle == -1)
        {
          /* No /proc/PID/syscall: give start-up a moment instead. */
          g_usleep (200 * 1000);
          return TRUE;
        }
      if (g_get_monotonic_time () >= deadline)
        {
          g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_TIMED_OUT,
                       "ecryptfsd did not get back to reading /dev/ecryptfs in %u ms",
                       timeout_ms);
          return FALSE;
        }
      g_usleep (2 * 1000);
    }
}

gboolean
eta_kernel_player_wait_idle (EtaKernelPlayer *self,
                             guint            timeout_ms,
                             GError         **error)
{
  g_return_val_if_fail (self != NULL, FALSE);
  return wait_until_idle (self, timeout_ms, error);
}

static gboolean
wait_for_helo (EtaKernelPlayer *self,
               guint            timeout_ms,
               GError         **error)
{
  guint8 buf[ETA_ECRYPTFS_DAEMON_READ_SIZE];
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  gsize len = 0;

  if (!recv_frame (self, deadline, buf, sizeof buf, &len, error))
    {
      g_prefix_error (error, "Waiting for HELO: ");
      return FALSE;
    }
  /* ecryptfs_send_miscdev(NULL, HELO, 0, 0): type and seq 0, no message. */
  if (len != ETA_ECRYPTFS_BARE_FRAME_SIZE || buf[0] != ETA_ECRYPTFS_MSG_HELO ||
      buf[1] != 0 || buf[2] != 0 || buf[3] != 0 || buf[4] != 0)
    {
      g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_PROTOCOL,
                   "Expected a 5-byte HELO frame (64 00 00 00 00), got %" G_GSIZE_FORMAT
                   " bytes starting 0x%02x", len, (guint) buf[0]);
      return FALSE;
    }
  return TRUE;
}

EtaKernelPlayer *
eta_kernel_player_start (const gchar        *module_dir,
                         const gchar * const *extra_env,
                         GError            **error)
{
  return eta_kernel_player_start_wrapped (module_dir, extra_env, NULL, error);
}

EtaKernelPlayer *
eta_kernel_player_start_wrapped (const gchar        *module_dir,
                                 const gchar * const *extra_env,
                                 const gchar * const *wrapper_argv,
                                 GError            **error)
{
  g_autoptr(EtaKernelPlayer) self = NULL;
  g_autofree gchar *shim = NULL;
  g_autofree gchar *fd_str = NULL;
  g_autofree gchar *preload = NULL;
  g_autofree gchar *wrapper = NULL;
  g_auto(GStrv) envp = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  const gchar *ecryptfsd;
  const gchar *old_preload;
  const gchar *exec_path;
  int sv[2] = { -1, -1 };
  int err_pipe[2] = { -1, -1 };
  int log_fd = -1, null_fd = -1;
  ChildFailure failure;
  ssize_t n;
  guint start_timeout = START_TIMEOUT_MS;
  const gchar *start_timeout_env;

  if (geteuid () != 0)
    {
      g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_SETUP,
                   "The kernel player needs root (mount namespace and bind mount)");
      return NULL;
    }
  if (module_dir != NULL && !g_file_test (module_dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_SETUP,
                   "Module directory “%s” does not exist", module_dir);
      return NULL;
    }
  ecryptfsd = g_getenv ("ETA_ECRYPTFSD");
  if (ecryptfsd == NULL || *ecryptfsd == '\0')
    ecryptfsd = ETA_HARNESS_ECRYPTFSD;
  if (!g_file_test (ecryptfsd, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_SETUP,
                   "%s is missing (install ecryptfs-utils)", ecryptfsd);
      return NULL;
    }
  if (wrapper_argv != NULL && wrapper_argv[0] != NULL)
    {
      /* execve() does not search PATH; the child must not allocate. */
      wrapper = g_find_program_in_path (wrapper_argv[0]);
      if (wrapper == NULL)
        {
          g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_SETUP,
                       "Wrapper “%s” for ecryptfsd is not installed", wrapper_argv[0]);
          return NULL;
        }
    }
  shim = find_shim (error);
  if (shim == NULL)
    return NULL;
  start_timeout_env = g_getenv ("ETA_KERNEL_PLAYER_START_TIMEOUT_MS");
  if (start_timeout_env != NULL && *start_timeout_env != '\0')
    start_timeout = (guint) g_ascii_strtoull (start_timeout_env, NULL, 10);

  self = g_new0 (EtaKernelPlayer, 1);
  self->pid = -1;
  self->sock_fd = -1;
  self->pidfd = -1;

  self->log_dir = g_dir_make_tmp ("eta-kernel-player-XXXXXX", error);
  if (self->log_dir == NULL)
    return NULL;
  self->log_path = g_build_filename (self->log_dir, "ecryptfsd.log", NULL);
  log_fd = open (self->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (log_fd == -1 || null_fd == -1)
    {
      g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_SETUP,
                   "Cannot open the daemon log: %s", g_strerror (errno));
      goto fail;
    }

  /* SEQPACKET keeps frame boundaries: one read() = one frame, as on the
   * miscdev. */
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1 ||
      pipe2 (err_pipe, O_CLOEXEC) == -1)
    {
      g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_SETUP,
                   "Cannot create the miscdev socket: %s", g_strerror (errno));
      goto fail;
    }

  envp = g_get_environ ();
  old_preload = g_environ_getenv (envp, "LD_PRELOAD");
  /* Sanitizer runtimes must stay first in the list. */
  if (old_preload != NULL && *old_preload != '\0')
    preload = g_strconcat (old_preload, ":", shim, NULL);
  else
    preload = g_strdup (shim);
  envp = g_environ_setenv (envp, "LD_PRELOAD", preload, TRUE);
  fd_str = g_strdup_printf ("%d", sv[1]);
  envp = g_environ_setenv (envp, "ETA_SHIM_MISCDEV_FD", fd_str, TRUE);
  /* The wrapper runs with the shim preloaded too; only the daemon may
   * take the fd. */
  if (wrapper != NULL)
    envp = g_environ_setenv (envp, "ETA_SHIM_ONLY_ARGV0", ecryptfsd, TRUE);
  for (gsize i = 0; extra_env != NULL && extra_env[i] != NULL; i++)
    {
      const gchar *eq = strchr (extra_env[i], '=');
      g_autofree gchar *name = NULL;

      if (eq == NULL || eq == extra_env[i])
        {
          g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_SETUP,
                       "Extra environment entry “%s” is not NAME=VALUE", extra_env[i]);
          goto fail;
        }
      name = g_strndup (extra_env[i], (gsize) (eq - extra_env[i]));
      envp = g_environ_setenv (envp, name, eq + 1, TRUE);
    }

  if (wrapper != NULL)
    for (gsize i = 0; wrapper_argv[i] != NULL; i++)
      g_ptr_array_add (argv, (gpointer) (i == 0 ? wrapper : wrapper_argv[i]));
  g_ptr_array_add (argv, (gpointer) ecryptfsd);
  g_ptr_array_add (argv, (gpointer) "-f");
  g_ptr_array_add (argv, NULL);
  exec_path = wrapper != NULL ? wrapper : ecryptfsd;

  {
    pid_t parent = getpid ();

    self->pid = fork ();
    if (self->pid == -1)
      {
        g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_SETUP,
                     "fork() failed: %s", g_strerror (errno));
        goto fail;
      }
    if (self->pid == 0)
      child_run (err_pipe[1], log_fd, null_fd, sv[1], parent, module_dir,
                 exec_path, (gchar **) argv->pdata, envp);
  }

  close (err_pipe[1]);
  err_pipe[1] = -1;
  {
    struct stat st;

    if (fstat (sv[1], &st) == 0)
      self->daemon_sock_link = g_strdup_printf ("socket:[%lu]", (unsigned long) st.st_ino);
  }
  close (sv[1]);
  sv[1] = -1;
  self->sock_fd = sv[0];
  sv[0] = -1;
  close (log_fd);
  log_fd = -1;
  close (null_fd);
  null_fd = -1;

  do
    n = read (err_pipe[0], &failure, sizeof failure);
  while (n == -1 && errno == EINTR);
  close (err_pipe[0]);
  err_pipe[0] = -1;
  if (n == (ssize_t) sizeof failure)
    {
      reap (self, TRUE);
      g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_SETUP,
                   "Starting ecryptfsd failed while %s: %s",
                   step_name (failure.step), g_strerror (failure.err));
      return NULL;
    }

  self->pidfd = (int) syscall (__NR_pidfd_open, self->pid, 0);
  if (self->pidfd == -1)
    g_debug ("pidfd_open() failed (%s); daemon death is seen through the socket only",
             g_strerror (errno));

  if (!wait_for_helo (self, start_timeout, error) ||
      !wait_until_idle (self, start_timeout, error))
    {
      const gchar *log = eta_kernel_player_get_log (self);

      g_prefix_error (error, "Starting ecryptfsd: ");
      if (error != NULL && *error != NULL && *log != '\0')
        {
          gsize len = strlen (log);
          const gchar *tail = len > 2000 ? log + len - 2000 : log;
          gchar *msg = g_strdup_printf ("%s\n---- ecryptfsd log ----\n%s", (*error)->message, tail);

          g_free ((*error)->message);
          (*error)->message = msg;
        }
      return NULL;
    }

  g_debug ("ecryptfsd pid %d is up; log in %s", (int) self->pid, self->log_path);
  return g_steal_pointer (&self);

fail:
  if (sv[0] != -1)
    close (sv[0]);
  if (sv[1] != -1)
    close (sv[1]);
  if (err_pipe[0] != -1)
    close (err_pipe[0]);
  if (err_pipe[1] != -1)
    close (err_pipe[1]);
  if (log_fd != -1)
    close (log_fd);
  if (null_fd != -1)
    close (null_fd);
  return NULL;
}

/* ---- requests --------------------------------------------------------- */

static void
context_clear (MsgContext *ctx)
{
  g_clear_pointer (&ctx->reply, g_bytes_unref);
  g_clear_error (&ctx->error);
  memset (ctx, 0, sizeof *ctx);
}

static void
context_finish (EtaKernelPlayer *self,
                MsgContext      *ctx,
                GBytes          *reply,
                GError          *error)
{
  ctx->done = TRUE;
  ctx->done_us = g_get_monotonic_time ();
  ctx->done_order = ++self->done_count;
  ctx->reply = reply;
  ctx->error = error;
}

static guint32
context_index (EtaKernelPlayer *self,
               MsgContext      *ctx)
{
  return (guint32) (ctx - self->contexts);
}

/* The context still waiting for the reply with @seq, if any. */
static MsgContext *
find_waiting (EtaKernelPlayer *self,
              guint32          seq)
{
  for (guint i = 0; i < KERNEL_MSG_CTX_COUNT; i++)
    if (self->contexts[i].in_use && !self->contexts[i].done && self->contexts[i].seq == seq)
      return &self->contexts[i];
  return NULL;
}

static void
set_timed_out_error (GError    **error,
                     guint32     seq,
                     guint32     index)
{
  g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_TIMED_OUT,
               "Request seq %u index %u: No reply from ecryptfsd in time", seq, index);
}

/* Sends a REQUEST in a free context; the kernel numbers requests from a
 * global counter and uses the index of a free message context. */
static MsgContext *
submit (EtaKernelPlayer *self,
        GBytes          *payload,
        guint            timeout_ms,
        GError         **error)
{
  g_autoptr(GBytes) frame = NULL;
  MsgContext *ctx = NULL;
  gsize payload_len;
  const guint8 *payload_data;
  guint32 seq, index = 0;

  if (timeout_ms == 0)
    timeout_ms = ETA_KERNEL_PLAYER_DEFAULT_TIMEOUT_MS;

  for (guint i = 0; i < KERNEL_MSG_CTX_COUNT; i++)
    {
      index = (self->next_index + i) % KERNEL_MSG_CTX_COUNT;
      if (!self->contexts[index].in_use)
        {
          ctx = &self->contexts[index];
          break;
        }
    }
  if (ctx == NULL)
    {
      g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_NO_CONTEXT,
                   "The eCryptfs free context list is empty (%d requests wait)",
                   KERNEL_MSG_CTX_COUNT);
      return NULL;
    }
  seq = ++self->last_seq;
  self->next_index = (index + 1) % KERNEL_MSG_CTX_COUNT;

  payload_data = g_bytes_get_data (payload, &payload_len);
  frame = eta_ecryptfs_frame_encode (ETA_ECRYPTFS_MSG_REQUEST, seq, index,
                                     payload_data, payload_len, error);
  if (frame == NULL)
    return NULL;
  ctx->sent_us = g_get_monotonic_time ();
  if (!send_bytes (self, frame, error))
    return NULL;

  ctx->in_use = TRUE;
  ctx->seq = seq;
  ctx->deadline_us = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  return ctx;
}

/* Reads one frame, waiting until @deadline_us at most, and gives it to the
 * context waiting for it: its reply, or the reason the kernel would refuse
 * it. Frames no context waits for are dropped. FALSE (TIMED_OUT when
 * nothing came, or why the device is gone) when no frame was read. */
static gboolean
receive_one (EtaKernelPlayer *self,
             gint64           deadline_us,
             GError         **error)
{
  g_autoptr(GError) local_error = NULL;
  guint8 buf[ETA_ECRYPTFS_DAEMON_READ_SIZE * 2];
  EtaEcryptfsFrame f;
  MsgContext *ctx;
  gsize len = 0;
  guint32 seq_be, seq, index;

  if (!recv_frame (self, deadline_us, buf, sizeof buf, &len, error))
    return FALSE;

  if (len < ETA_ECRYPTFS_BARE_FRAME_SIZE)
    {
      /* The kernel's write() refuses it; nothing can be matched. */
      self->discarded++;
      g_debug ("Dropping a %" G_GSIZE_FORMAT "-byte frame", len);
      return TRUE;
    }
  memcpy (&seq_be, buf + 1, 4);
  seq = GUINT32_FROM_BE (seq_be);
  ctx = buf[0] == ETA_ECRYPTFS_MSG_RESPONSE ? find_waiting (self, seq) : NULL;
  if (ctx == NULL)
    {
      /* A late reply to an expired request: the kernel rejects the
       * write (the context is no longer pending) and it is lost. */
      self->discarded++;
      g_debug ("Dropping frame type %u seq %u: no request waits for it",
               (guint) buf[0], seq);
      return TRUE;
    }
  index = context_index (self, ctx);

  if (len > sizeof buf || len > ETA_ECRYPTFS_MAX_DAEMON_FRAME_SIZE ||
      (len != ETA_ECRYPTFS_BARE_FRAME_SIZE && len < 6))
    {
      context_finish (self, ctx, NULL,
                      g_error_new (ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_PROTOCOL,
                                   "Reply frame of %" G_GSIZE_FORMAT " bytes is outside what the kernel accepts (5, or 6..%d)",
                                   len, ETA_ECRYPTFS_MAX_DAEMON_FRAME_SIZE));
      return TRUE;
    }
  if (!eta_ecryptfs_frame_decode (buf, len, &f, &local_error))
    {
      context_finish (self, ctx, NULL,
                      g_error_new (ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_PROTOCOL,
                                   "Malformed reply frame: %s", local_error->message));
      return TRUE;
    }
  if (!f.has_message)
    {
      context_finish (self, ctx, NULL,
                      g_error_new (ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_PROTOCOL,
                                   "RESPONSE frame without a message"));
      return TRUE;
    }
  if (f.index != index)
    {
      context_finish (self, ctx, NULL,
                      g_error_new (ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_PROTOCOL,
                                   "Reply for seq %u carries index %u, expected %u",
                                   seq, f.index, index));
      return TRUE;
    }
  context_finish (self, ctx, g_bytes_new (f.data, f.data_len), NULL);
  return TRUE;
}

/* The device is gone or broken: every request still waiting ends with
 * @error. */
static void
finish_all_waiting (EtaKernelPlayer *self,
                    const GError    *error)
{
  /* In seq order, the order the daemon would have answered them. */
  for (;;)
    {
      MsgContext *oldest = NULL;

      for (guint i = 0; i < KERNEL_MSG_CTX_COUNT; i++)
        {
          MsgContext *ctx = &self->contexts[i];

          if (ctx->in_use && !ctx->done && (oldest == NULL || ctx->seq < oldest->seq))
            oldest = ctx;
        }
      if (oldest == NULL)
        return;
      context_finish (self, oldest, NULL, g_error_copy (error));
    }
}

static EtaKernelPlayerResult *
take_result (EtaKernelPlayer *self,
             MsgContext      *ctx)
{
  EtaKernelPlayerResult *result = g_new0 (EtaKernelPlayerResult, 1);

  result->seq = ctx->seq;
  result->index = context_index (self, ctx);
  result->reply = g_steal_pointer (&ctx->reply);
  result->error = g_steal_pointer (&ctx->error);
  result->sent_us = ctx->sent_us;
  result->done_us = ctx->done_us;
  context_clear (ctx);
  return result;
}

void
eta_kernel_player_result_free (EtaKernelPlayerResult *result)
{
  if (result == NULL)
    return;
  g_clear_pointer (&result->reply, g_bytes_unref);
  g_clear_error (&result->error);
  g_free (result);
}

gboolean
eta_kernel_player_submit (EtaKernelPlayer *self,
                          GBytes          *payload,
                          guint            timeout_ms,
                          guint32         *seq_out,
                          GError         **error)
{
  MsgContext *ctx;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (payload != NULL, FALSE);

  ctx = submit (self, payload, timeout_ms, error);
  if (ctx == NULL)
    return FALSE;
  if (seq_out != NULL)
    *seq_out = ctx->seq;
  return TRUE;
}

gboolean
eta_kernel_player_submit_unwrap (EtaKernelPlayer *self,
                                 const gchar     *sig,
                                 const guint8    *wrapped,
                                 gsize            wrapped_len,
                                 guint            timeout_ms,
                                 guint32         *seq_out,
                                 GError         **error)
{
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (self != NULL, FALSE);

  payload = eta_ecryptfs_build_tag64 (sig, wrapped, wrapped_len, &local_error);
  if (payload == NULL)
    {
      g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_SETUP,
                   "%s", local_error->message);
      return FALSE;
    }
  return eta_kernel_player_submit (self, payload, timeout_ms, seq_out, error);
}

EtaKernelPlayerResult *
eta_kernel_player_collect (EtaKernelPlayer *self,
                           guint            wait_ms)
{
  gint64 wait_until;

  g_return_val_if_fail (self != NULL, NULL);

  wait_until = g_get_monotonic_time () + (gint64) wait_ms * 1000;
  for (;;)
    {
      g_autoptr(GError) local_error = NULL;
      MsgContext *first_done = NULL;
      MsgContext *first_deadline = NULL;
      gint64 now;

      for (guint i = 0; i < KERNEL_MSG_CTX_COUNT; i++)
        {
          MsgContext *ctx = &self->contexts[i];

          if (!ctx->in_use)
            continue;
          if (ctx->done)
            {
              if (first_done == NULL || ctx->done_order < first_done->done_order)
                first_done = ctx;
            }
          else if (first_deadline == NULL || ctx->deadline_us < first_deadline->deadline_us)
            first_deadline = ctx;
        }
      if (first_done != NULL)
        return take_result (self, first_done);
      if (first_deadline == NULL)
        return NULL;

      now = g_get_monotonic_time ();
      if (first_deadline->deadline_us <= now)
        {
          GError *timed_out = NULL;

          set_timed_out_error (&timed_out, first_deadline->seq,
                               context_index (self, first_deadline));
          context_finish (self, first_deadline, NULL, timed_out);
          continue;
        }
      if (now >= wait_until)
        return NULL;
      if (!receive_one (self, MIN (first_deadline->deadline_us, wait_until), &local_error))
        {
          if (g_error_matches (local_error, ETA_KERNEL_PLAYER_ERROR,
                               ETA_KERNEL_PLAYER_ERROR_TIMED_OUT))
            continue;
          /* The daemon exited, or the socket broke: nothing more will come. */
          finish_all_waiting (self, local_error);
        }
    }
}

guint
eta_kernel_player_get_outstanding_count (EtaKernelPlayer *self)
{
  guint count = 0;

  g_return_val_if_fail (self != NULL, 0);
  for (guint i = 0; i < KERNEL_MSG_CTX_COUNT; i++)
    if (self->contexts[i].in_use)
      count++;
  return count;
}

gboolean
eta_kernel_player_request (EtaKernelPlayer *self,
                           GBytes          *payload,
                           guint            timeout_ms,
                           GBytes         **reply_out,
                           GError         **error)
{
  g_autoptr(EtaKernelPlayerResult) result = NULL;
  MsgContext *ctx;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (payload != NULL, FALSE);

  ctx = submit (self, payload, timeout_ms, error);
  if (ctx == NULL)
    return FALSE;

  /* Replies to other submitted requests read meanwhile stay in their
   * contexts for collect(). */
  while (!ctx->done)
    {
      g_autoptr(GError) local_error = NULL;

      if (!receive_one (self, ctx->deadline_us, &local_error))
        {
          if (g_error_matches (local_error, ETA_KERNEL_PLAYER_ERROR,
                               ETA_KERNEL_PLAYER_ERROR_TIMED_OUT))
            {
              GError *timed_out = NULL;

              set_timed_out_error (&timed_out, ctx->seq, context_index (self, ctx));
              context_finish (self, ctx, NULL, timed_out);
            }
          else
            finish_all_waiting (self, local_error);
        }
    }

  result = take_result (self, ctx);
  if (result->error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&result->error));
      return FALSE;
    }
  if (reply_out != NULL)
    *reply_out = g_steal_pointer (&result->reply);
  return TRUE;
}

static void
set_reply_error (GError  **error,
                 GError   *packet_error)
{
  if (g_error_matches (packet_error, ETA_ECRYPTFS_PACKET_ERROR,
                       ETA_ECRYPTFS_PACKET_ERROR_FAILURE_STATUS))
    g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_FAILURE_REPLY,
                 "%s", packet_error->message);
  else
    g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_PROTOCOL,
                 "Reply the kernel would refuse: %s", packet_error->message);
}

gboolean
eta_kernel_player_result_get_unwrap (const EtaKernelPlayerResult *result,
                                     guint8                      *cipher_code_out,
                                     GBytes                     **fek_out,
                                     GError                     **error)
{
  g_autoptr(GError) local_error = NULL;
  const guint8 *data;
  gsize len;

  g_return_val_if_fail (result != NULL, FALSE);

  if (result->error != NULL)
    {
      g_propagate_error (error, g_error_copy (result->error));
      return FALSE;
    }
  data = g_bytes_get_data (result->reply, &len);
  if (!eta_ecryptfs_parse_tag65 (data, len, cipher_code_out, fek_out, &local_error))
    {
      set_reply_error (error, local_error);
      return FALSE;
    }
  return TRUE;
}

gboolean
eta_kernel_player_wrap (EtaKernelPlayer *self,
                        const gchar     *sig,
                        guint8           cipher_code,
                        const guint8    *fek,
                        gsize            fek_len,
                        guint            timeout_ms,
                        GBytes         **wrapped_out,
                        GError         **error)
{
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) local_error = NULL;
  const guint8 *data;
  gsize len;

  g_return_val_if_fail (self != NULL, FALSE);

  payload = eta_ecryptfs_build_tag66 (sig, cipher_code, fek, fek_len, &local_error);
  if (payload == NULL)
    {
      g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_SETUP,
                   "%s", local_error->message);
      return FALSE;
    }
  if (!eta_kernel_player_request (self, payload, timeout_ms, &reply, error))
    return FALSE;

  data = g_bytes_get_data (reply, &len);
  if (!eta_ecryptfs_parse_tag67 (data, len, wrapped_out, &local_error))
    {
      set_reply_error (error, local_error);
      return FALSE;
    }
  return TRUE;
}

gboolean
eta_kernel_player_unwrap (EtaKernelPlayer *self,
                          const gchar     *sig,
                          const guint8    *wrapped,
                          gsize            wrapped_len,
                          guint            timeout_ms,
                          guint8          *cipher_code_out,
                          GBytes         **fek_out,
                          GError         **error)
{
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) local_error = NULL;
  const guint8 *data;
  gsize len;

  g_return_val_if_fail (self != NULL, FALSE);

  payload = eta_ecryptfs_build_tag64 (sig, wrapped, wrapped_len, &local_error);
  if (payload == NULL)
    {
      g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_SETUP,
                   "%s", local_error->message);
      return FALSE;
    }
  if (!eta_kernel_player_request (self, payload, timeout_ms, &reply, error))
    return FALSE;

  data = g_bytes_get_data (reply, &len);
  if (!eta_ecryptfs_parse_tag65 (data, len, cipher_code_out, fek_out, &local_error))
    {
      set_reply_error (error, local_error);
      return FALSE;
    }
  return TRUE;
}

gboolean
eta_kernel_player_send_stale_frame (EtaKernelPlayer *self,
                                    GError         **error)
{
  g_autoptr(GBytes) frame = NULL;

  g_return_val_if_fail (self != NULL, FALSE);

  /* The expired context keeps its type (REQUEST) and counter; its message
   * was freed, so ecryptfs_miscdev_read() writes only type and seq. */
  frame = eta_ecryptfs_frame_encode_bare (ETA_ECRYPTFS_MSG_REQUEST, ++self->last_seq);
  return send_bytes (self, frame, error);
}

guint
eta_kernel_player_get_discarded_count (EtaKernelPlayer *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->discarded;
}

/* ---- lifecycle -------------------------------------------------------- */

pid_t
eta_kernel_player_get_pid (EtaKernelPlayer *self)
{
  g_return_val_if_fail (self != NULL, -1);
  return self->pid;
}

gboolean
eta_kernel_player_is_alive (EtaKernelPlayer *self)
{
  g_return_val_if_fail (self != NULL, FALSE);
  if (self->pid <= 0)
    return FALSE;
  return !reap (self, FALSE);
}

gboolean
eta_kernel_player_wait_exit (EtaKernelPlayer *self,
                             guint            timeout_ms,
                             gint            *wait_status_out)
{
  gint64 deadline;

  g_return_val_if_fail (self != NULL, FALSE);

  deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  while (!reap (self, FALSE))
    {
      gint64 now = g_get_monotonic_time ();

      if (now >= deadline)
        return FALSE;
      if (self->pidfd >= 0)
        {
          struct pollfd pfd = { .fd = self->pidfd, .events = POLLIN };
          poll (&pfd, 1, (int) MIN ((deadline - now + 999) / 1000, G_MAXINT));
        }
      else
        g_usleep (MIN (10000, deadline - now));
    }
  if (wait_status_out != NULL)
    *wait_status_out = self->wait_status;
  return TRUE;
}

const gchar *
eta_kernel_player_get_log (EtaKernelPlayer *self)
{
  gchar *text = NULL;

  g_return_val_if_fail (self != NULL, NULL);

  if (self->log_path != NULL && g_file_get_contents (self->log_path, &text, NULL, NULL))
    {
      g_free (self->log_text);
      self->log_text = text;
    }
  return self->log_text != NULL ? self->log_text : "";
}

gboolean
eta_kernel_player_terminate (EtaKernelPlayer *self,
                             guint            timeout_ms,
                             gint            *wait_status_out,
                             GError         **error)
{
  g_return_val_if_fail (self != NULL, FALSE);

  if (self->pid > 0 && !reap (self, FALSE))
    {
      /* As stop(): only between requests (see wait_until_idle()). */
      wait_until_idle (self, MIN (timeout_ms, STOP_GRACE_MS), NULL);
      kill (self->pid, SIGTERM);
    }
  if (!eta_kernel_player_wait_exit (self, timeout_ms, wait_status_out))
    {
      g_set_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_TIMED_OUT,
                   "ecryptfsd (pid %d) did not exit within %u ms of SIGTERM",
                   (int) self->pid, timeout_ms);
      return FALSE;
    }
  return TRUE;
}

void
eta_kernel_player_stop (EtaKernelPlayer *self)
{
  if (self == NULL)
    return;

  if (self->pid > 0 && !reap (self, FALSE))
    {
      /* Only signal it between requests (see wait_until_idle()); a busy
       * daemon gets the signal after a grace period anyway.
       * ecryptfsd's handler sends QUIT and exit()s: no key-module finalize. */
      wait_until_idle (self, STOP_GRACE_MS / 5, NULL);
      kill (self->pid, SIGTERM);
      if (!eta_kernel_player_wait_exit (self, STOP_GRACE_MS, NULL))
        {
          /* Not g_warning(): fatal in tests, it would leave the daemon. */
          g_message ("ecryptfsd pid %d ignored SIGTERM; killing it", (int) self->pid);
          kill (self->pid, SIGKILL);
          reap (self, TRUE);
        }
    }

  if (self->sock_fd >= 0)
    close (self->sock_fd);
  if (self->pidfd >= 0)
    close (self->pidfd);
  if (self->log_path != NULL)
    g_unlink (self->log_path);
  if (self->log_dir != NULL)
    g_rmdir (self->log_dir);
  g_free (self->log_path);
  g_free (self->log_dir);
  g_free (self->daemon_sock_link);
  g_free (self->log_text);
  for (guint i = 0; i < KERNEL_MSG_CTX_COUNT; i++)
    context_clear (&self->contexts[i]);
  g_free (self);
}

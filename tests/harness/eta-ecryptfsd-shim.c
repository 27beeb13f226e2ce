/* eta-ecryptfsd-shim.c: LD_PRELOAD object that lets the real
 * /usr/bin/ecryptfsd run where the eCryptfs kernel module is absent.
 *
 * - open("/dev/ecryptfs") or ("/dev/misc/ecryptfs") returns a dup of the
 *   inherited fd named by ETA_SHIM_MISCDEV_FD (one end of a SOCK_SEQPACKET
 *   socketpair: one read() = one frame, one write() = one frame, as on the
 *   miscdev), so plain read()/write()/close() need no interposing.
 * - open("<sysfs>/fs/ecryptfs/version") returns a pipe holding "375\n"
 *   (or ETA_SHIM_VERSION), so the daemon picks the miscdev channel and
 *   never runs "modprobe ecryptfs".
 *
 * ecryptfsd and libecryptfs import open64 and fopen64 (Debian 12); open,
 * openat*, the _FORTIFY_SOURCE __open*_2 entries and fopen are covered too
 * so a rebuilt daemon or a key module doing the same still goes through
 * here. glibc's fopen does not call an interposable open, so the stdio
 * entries are wrapped separately.
 *
 * - With ETA_SHIM_MISCDEV_SOCKET=PATH instead, the same channel comes from
 *   connecting to a listening SOCK_SEQPACKET socket at PATH when the
 *   daemon starts: for a daemon a service manager starts, which cannot
 *   inherit the test's fd (tests/test-ecryptfsd-unit.c).
 *
 * The shim only acts when ETA_SHIM_MISCDEV_FD (or _SOCKET) is set; it removes that
 * variable from the environment so programs ecryptfsd spawns (prompt
 * helpers, D-Bus autolaunch) see an inert shim. With ETA_SHIM_ONLY_ARGV0
 * set, it also stays inert in programs whose argv[0] differs: a wrapper
 * such as valgrind's launcher, which runs first with the same
 * environment, must leave the variable and the fd to the daemon it runs. No GLib: it is loaded into
 * a process that may load GLib itself later through a key module.
 */

/* Fortified glibc headers define open() inline; this file defines it. */
#undef _FORTIFY_SOURCE
#ifndef _GNU_SOURCE
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#endif

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SHIM_EXPORT __attribute__ ((visibility ("default")))

static int shim_miscdev_fd = -1;
static char shim_version[32] = "375\n";

__attribute__ ((constructor))
static void
shim_init (void)
{
  const char *fd_str = getenv ("ETA_SHIM_MISCDEV_FD");
  const char *socket_path = getenv ("ETA_SHIM_MISCDEV_SOCKET");
  const char *version = getenv ("ETA_SHIM_VERSION");
  const char *only = getenv ("ETA_SHIM_ONLY_ARGV0");
  char *end = NULL;
  long fd;

  if (only != NULL && *only != '\0' && strcmp (program_invocation_name, only) != 0)
    return;
  if (socket_path != NULL && *socket_path != '\0'
      && strlen (socket_path) < sizeof ((struct sockaddr_un *) 0)->sun_path)
    {
      struct sockaddr_un address = { .sun_family = AF_UNIX };
      int sock = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

      strcpy (address.sun_path, socket_path);
      if (sock >= 0 && connect (sock, (struct sockaddr *) &address, sizeof address) == 0)
        {
          char number[16];

          snprintf (number, sizeof number, "%d", sock);
          setenv ("ETA_SHIM_MISCDEV_FD", number, 1);
          fd_str = getenv ("ETA_SHIM_MISCDEV_FD");
        }
      else if (sock >= 0)
        close (sock);
      unsetenv ("ETA_SHIM_MISCDEV_SOCKET");
    }
  if (fd_str == NULL || *fd_str == '\0')
    return;
  errno = 0;
  fd = strtol (fd_str, &end, 10);
  if (errno != 0 || end == NULL || *end != '\0' || fd < 0 || fd > 1 << 20)
    return;
  if (fcntl ((int) fd, F_GETFD) == -1)
    return;
  shim_miscdev_fd = (int) fd;
  /* Children of the daemon must neither inherit nor re-adopt it. */
  fcntl (shim_miscdev_fd, F_SETFD, FD_CLOEXEC);
  unsetenv ("ETA_SHIM_MISCDEV_FD");
  unsetenv ("ETA_SHIM_ONLY_ARGV0");

  if (version != NULL && *version != '\0' && strlen (version) < sizeof shim_version - 2)
    snprintf (shim_version, sizeof shim_version, "%s\n", version);
}

static int
is_miscdev_path (const char *path)
{
  return path != NULL &&
         (strcmp (path, "/dev/ecryptfs") == 0 ||
          strcmp (path, "/dev/misc/ecryptfs") == 0);
}

/* Kept out of line of the nonnull-declared entry points: a NULL path must
 * reach the real call (EFAULT), not crash here. */
static int
is_absolute (const char *path)
{
  return path != NULL && path[0] == '/';
}

static int
is_version_path (const char *path)
{
  static const char suffix[] = "/fs/ecryptfs/version";
  size_t len, slen = sizeof suffix - 1;

  if (path == NULL)
    return 0;
  len = strlen (path);
  return len >= slen && strcmp (path + len - slen, suffix) == 0;
}

/* Returns -2 when the path is not ours, else the fd (or -1 with errno). */
static int
shim_try_open (const char *path,
               int         flags)
{
  if (shim_miscdev_fd < 0)
    return -2;

  if (is_miscdev_path (path))
    {
      if ((flags & O_CLOEXEC) != 0)
        return fcntl (shim_miscdev_fd, F_DUPFD_CLOEXEC, 0);
      return fcntl (shim_miscdev_fd, F_DUPFD, 0);
    }

  if (is_version_path (path))
    {
      int fds[2];
      size_t len = strlen (shim_version);

      if ((flags & O_ACCMODE) != O_RDONLY)
        {
          errno = EACCES;
          return -1;
        }
      if (pipe2 (fds, (flags & O_CLOEXEC) != 0 ? O_CLOEXEC : 0) == -1)
        return -1;
      if (write (fds[1], shim_version, len) != (ssize_t) len)
        {
          int saved = errno;
          close (fds[0]);
          close (fds[1]);
          errno = saved ? saved : EIO;
          return -1;
        }
      close (fds[1]);
      return fds[0];
    }

  return -2;
}

static int
needs_mode (int flags)
{
  return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
}

#define REAL(name) \
  static __typeof__ (name) *real_##name; \
  if (real_##name == NULL) \
    real_##name = (__typeof__ (name) *) dlsym (RTLD_NEXT, #name)

SHIM_EXPORT int
open (const char *path, int flags, ...)
{
  mode_t mode = 0;
  int fd;
  REAL (open);

  if (needs_mode (flags))
    {
      va_list ap;
      va_start (ap, flags);
      mode = va_arg (ap, mode_t);
      va_end (ap);
    }
  if ((fd = shim_try_open (path, flags)) != -2)
    return fd;
  return real_open (path, flags, mode);
}

SHIM_EXPORT int
open64 (const char *path, int flags, ...)
{
  mode_t mode = 0;
  int fd;
  REAL (open64);

  if (needs_mode (flags))
    {
      va_list ap;
      va_start (ap, flags);
      mode = va_arg (ap, mode_t);
      va_end (ap);
    }
  if ((fd = shim_try_open (path, flags)) != -2)
    return fd;
  return real_open64 (path, flags, mode);
}

SHIM_EXPORT int
openat (int dirfd, const char *path, int flags, ...)
{
  mode_t mode = 0;
  int fd;
  REAL (openat);

  if (needs_mode (flags))
    {
      va_list ap;
      va_start (ap, flags);
      mode = va_arg (ap, mode_t);
      va_end (ap);
    }
  if (is_absolute (path) && (fd = shim_try_open (path, flags)) != -2)
    return fd;
  return real_openat (dirfd, path, flags, mode);
}

SHIM_EXPORT int
openat64 (int dirfd, const char *path, int flags, ...)
{
  mode_t mode = 0;
  int fd;
  REAL (openat64);

  if (needs_mode (flags))
    {
      va_list ap;
      va_start (ap, flags);
      mode = va_arg (ap, mode_t);
      va_end (ap);
    }
  if (is_absolute (path) && (fd = shim_try_open (path, flags)) != -2)
    return fd;
  return real_openat64 (dirfd, path, flags, mode);
}

/* The entries _FORTIFY_SOURCE builds call when the mode is not needed. */
int __open_2 (const char *path, int flags);
int __open64_2 (const char *path, int flags);
int __openat_2 (int dirfd, const char *path, int flags);
int __openat64_2 (int dirfd, const char *path, int flags);

SHIM_EXPORT int
__open_2 (const char *path, int flags)
{
  int fd;
  REAL (__open_2);

  if ((fd = shim_try_open (path, flags)) != -2)
    return fd;
  return real___open_2 (path, flags);
}

SHIM_EXPORT int
__open64_2 (const char *path, int flags)
{
  int fd;
  REAL (__open64_2);

  if ((fd = shim_try_open (path, flags)) != -2)
    return fd;
  return real___open64_2 (path, flags);
}

SHIM_EXPORT int
__openat_2 (int dirfd, const char *path, int flags)
{
  int fd;
  REAL (__openat_2);

  if (is_absolute (path) && (fd = shim_try_open (path, flags)) != -2)
    return fd;
  return real___openat_2 (dirfd, path, flags);
}

SHIM_EXPORT int
__openat64_2 (int dirfd, const char *path, int flags)
{
  int fd;
  REAL (__openat64_2);

  if (is_absolute (path) && (fd = shim_try_open (path, flags)) != -2)
    return fd;
  return real___openat64_2 (dirfd, path, flags);
}

static int
fopen_mode_to_flags (const char *mode)
{
  int flags;

  switch (mode[0])
    {
    case 'r': flags = O_RDONLY; break;
    case 'w': flags = O_WRONLY; break;
    case 'a': flags = O_WRONLY; break;
    default: return -1;
    }
  for (const char *p = mode + 1; *p && *p != ','; p++)
    {
      if (*p == '+')
        flags = (flags & ~O_ACCMODE) | O_RDWR;
      else if (*p == 'e')
        flags |= O_CLOEXEC;
    }
  return flags;
}

static FILE *
shim_try_fopen (const char *path,
                const char *mode,
                int        *handled)
{
  int flags, fd;
  FILE *fp;

  *handled = 0;
  if (shim_miscdev_fd < 0 || mode == NULL)
    return NULL;
  if (!is_miscdev_path (path) && !is_version_path (path))
    return NULL;
  *handled = 1;
  if ((flags = fopen_mode_to_flags (mode)) == -1)
    {
      errno = EINVAL;
      return NULL;
    }
  if ((fd = shim_try_open (path, flags)) < 0)
    return NULL;
  if ((fp = fdopen (fd, mode)) == NULL)
    {
      int saved = errno;
      close (fd);
      errno = saved;
    }
  return fp;
}

SHIM_EXPORT FILE *
fopen (const char *path, const char *mode)
{
  int handled;
  FILE *fp;
  REAL (fopen);

  fp = shim_try_fopen (path, mode, &handled);
  if (handled)
    return fp;
  return real_fopen (path, mode);
}

SHIM_EXPORT FILE *
fopen64 (const char *path, const char *mode)
{
  int handled;
  FILE *fp;
  REAL (fopen64);

  fp = shim_try_fopen (path, mode, &handled);
  if (handled)
    return fp;
  return real_fopen64 (path, mode);
}

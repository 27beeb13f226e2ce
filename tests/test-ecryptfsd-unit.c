/* data/ecryptfs-token-ecryptfsd.{service,path} under a real systemd user
 * manager, running the real /usr/bin/ecryptfsd with the key module:
 *
 * - nothing runs before eCryptfs is loaded; once the device appears the
 *   path unit starts ecryptfsd, which wraps a file key with an auth token
 *   it finds in the user keyring through its own session keyring
 *   (KeyringMode=shared): the unit's command line and keyring set-up;
 * - killed (SIGKILL), or ending itself on nine stale kernel requests in a
 *   row (exit 251), ecryptfsd is running again within seconds and the next
 *   request is served; `systemctl --user restart` (after an upgrade)
 *   replaces it without a logout.
 *
 * What cannot exist here is stood in for: the manager runs in a private
 * mount namespace with /run/systemd/system made (this machine does not boot
 * with systemd), the key module directory bound over libecryptfs's, and a
 * drop-in of the test's points the units at a file standing for
 * /dev/ecryptfs and preloads tests/harness/eta-ecryptfsd-shim.c, which
 * connects the daemon's /dev/ecryptfs to a socket the test listens on (the
 * kernel's side, played here). The units' own lines stay as installed.
 *
 * Where no systemd user manager runs, the agent starts ecryptfsd itself
 * (agent/eta-ecryptfsd-watch.c): tested with the real agent and the real
 * ecryptfsd, the same shim and socket, and test overrides of the device
 * path; with a user manager it leaves that to the units. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "eta-ecryptfs-packet.h"
#include "eta-inprocess-daemon.h"
#include "eta-kernel-player.h"
#include "eta-test-agent.h"
#include "eta-test-token.h"

#define AES128 0x07
#define FRAME_REQUEST 102
#define FRAME_RESPONSE 103
#define FRAME_HELO 100
#define FRAME_QUIT 101
#define BACK_WITHIN_MS 8000

typedef struct
{
  gchar *dir;
  gchar *runtime_dir;
  gchar *socket_path;
  gchar *device;
  gchar *module_dir;
  gchar *sig;
  int listener;
  GPid manager;
  EtaInprocessDaemon *keyring_daemon;
} Fixture;

static gchar **
manager_environment (Fixture *fixture)
{
  gchar **env = g_get_environ ();
  g_autofree gchar *home = g_build_filename (fixture->dir, "home", NULL);

  env = g_environ_setenv (env, "HOME", home, TRUE);
  env = g_environ_unsetenv (env, "XDG_CONFIG_HOME");
  env = g_environ_setenv (env, "XDG_RUNTIME_DIR", fixture->runtime_dir, TRUE);
  return env;
}

/* systemctl --user ARGS… against the test's manager, in its mount
 * namespace (systemctl looks for /run/systemd/system too); its output. */
static gboolean
systemctl (Fixture *fixture, gchar **out, const gchar *first, ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_auto (GStrv) env = manager_environment (fixture);
  g_autofree gchar *target = g_strdup_printf ("--target=%d", (int) fixture->manager);
  g_autofree gchar *err = NULL;
  gint status = 0;
  va_list args;

  g_ptr_array_add (argv, (gpointer) "nsenter");
  g_ptr_array_add (argv, target);
  g_ptr_array_add (argv, (gpointer) "--mount");
  g_ptr_array_add (argv, (gpointer) "systemctl");
  g_ptr_array_add (argv, (gpointer) "--user");
  va_start (args, first);
  for (const gchar *arg = first; arg != NULL; arg = va_arg (args, const gchar *))
    g_ptr_array_add (argv, (gpointer) arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);
  if (!g_spawn_sync (NULL, (gchar **) argv->pdata, env, G_SPAWN_SEARCH_PATH, NULL, NULL, out,
                     &err, &status, NULL))
    return FALSE;
  return g_spawn_check_wait_status (status, NULL);
}

static void
write_file (const gchar *path, const gchar *text)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *dir = g_path_get_dirname (path);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
}

/* The installed units, a drop-in for each (see the top of the file), and
 * the path unit enabled as the install enables it. */
static void
install_units (Fixture *fixture)
{
  g_autofree gchar *units = g_build_filename (fixture->dir, "home", ".config", "systemd", "user",
                                              NULL);
  const gchar *names[] = { "ecryptfs-token-ecryptfsd.service", "ecryptfs-token-ecryptfsd.path" };

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree gchar *source = g_build_filename (ETA_TEST_DATA_BUILD_DIR, names[i], NULL);
      g_autofree gchar *dest = g_build_filename (units, names[i], NULL);
      g_autofree gchar *text = NULL;

      g_assert_true (g_file_get_contents (source, &text, NULL, NULL));
      write_file (dest, text);
    }
  {
    g_autofree gchar *dropin = g_build_filename (units, "ecryptfs-token-ecryptfsd.service.d",
                                                 "test.conf", NULL);
    g_autofree gchar *text = g_strdup_printf (
        "[Unit]\nConditionPathExists=\nConditionPathExists=%s/%s\nConditionPathExists=%s\n"
        "[Service]\nEnvironment=LD_PRELOAD=%s ETA_SHIM_MISCDEV_SOCKET=%s\n",
        ETA_TEST_KEYMOD_DIR, "libecryptfs_key_mod_token_agent.so", fixture->device,
        ETA_TEST_SHIM_PATH, fixture->socket_path);
    write_file (dropin, text);
  }
  {
    g_autofree gchar *dropin = g_build_filename (units, "ecryptfs-token-ecryptfsd.path.d",
                                                 "test.conf", NULL);
    g_autofree gchar *text = g_strdup_printf ("[Path]\nPathExists=\nPathExists=%s\n",
                                              fixture->device);
    g_autofree gchar *wants = g_build_filename (units, "default.target.wants", NULL);
    g_autofree gchar *link = g_build_filename (wants, "ecryptfs-token-ecryptfsd.path", NULL);

    write_file (dropin, text);
    g_assert_cmpint (g_mkdir_with_parents (wants, 0755), ==, 0);
    g_assert_cmpint (symlink ("../ecryptfs-token-ecryptfsd.path", link), ==, 0);
  }
}

/* A test that aborts takes its manager with it. */
static void
die_with_the_test (gpointer unused)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static void
start_manager (Fixture *fixture)
{
  g_auto (GStrv) env = manager_environment (fixture);
  g_autofree gchar *script = g_strdup_printf (
      "set -e; mkdir -p /run/systemd; mount -t tmpfs tmpfs /run/systemd;"
      " mkdir /run/systemd/system; mount --bind '%s' '%s';"
      " exec /lib/systemd/systemd --user --log-target=console",
      fixture->module_dir, ETA_TEST_KEYMOD_DIR);
  const gchar *argv[] = { "unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                          NULL };
  g_autoptr (GError) error = NULL;
  gint64 give_up = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  gboolean running = FALSE;

  g_spawn_async (NULL, (gchar **) argv, env, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                 die_with_the_test, NULL, &fixture->manager, &error);
  g_assert_no_error (error);
  while (!running && g_get_monotonic_time () < give_up)
    {
      g_autofree gchar *out = NULL;

      systemctl (fixture, &out, "is-system-running", NULL);
      running = out != NULL && (g_str_has_prefix (out, "running")
                                || g_str_has_prefix (out, "degraded"));
      if (!running)
        g_usleep (100 * G_TIME_SPAN_MILLISECOND);
    }
  g_assert_true (running);
}

/* A listening socket standing for the kernel's side of /dev/ecryptfs. */
static int
listen_at (const gchar *path)
{
  struct sockaddr_un address = { .sun_family = AF_UNIX };
  int listener = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

  g_assert_cmpint (listener, >=, 0);
  g_assert_cmpuint (strlen (path), <, sizeof address.sun_path);
  strcpy (address.sun_path, path);
  g_assert_cmpint (bind (listener, (struct sockaddr *) &address, sizeof address), ==, 0);
  g_assert_cmpint (listen (listener, 4), ==, 0);
  return listener;
}

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  const EtaTestToken *token = eta_test_token_get ();
  const gchar *names[] = { "fingerprint", "pubkey", NULL };
  const gchar *values[] = { token->fingerprint[ETA_TEST_KEY_RSA2048],
                            token->certificate_path[ETA_TEST_KEY_RSA2048], NULL };
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (geteuid (), ==, 0);
  fixture->dir = g_dir_make_tmp ("eta-unit-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->runtime_dir = g_build_filename (fixture->dir, "run", NULL);
  g_assert_cmpint (g_mkdir (fixture->runtime_dir, 0700), ==, 0);
  fixture->socket_path = g_build_filename (fixture->dir, "miscdev", NULL);
  fixture->device = g_build_filename (fixture->dir, "ecryptfs-device", NULL);

  /* The auth token in the user keyring, as a mount puts it there. */
  fixture->keyring_daemon = eta_inprocess_daemon_new (ETA_TEST_KEYMOD_PATH, &error);
  g_assert_no_error (error);
  fixture->sig = eta_inprocess_daemon_add_key (fixture->keyring_daemon, "token-agent", names,
                                               values, &error);
  g_assert_no_error (error);
  fixture->module_dir = eta_kernel_player_make_module_dir (ETA_TEST_KEYMOD_PATH, &error);
  g_assert_no_error (error);

  fixture->listener = listen_at (fixture->socket_path);

  install_units (fixture);
  start_manager (fixture);
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *command = g_strdup_printf ("rm -rf '%s'", fixture->dir);

  systemctl (fixture, NULL, "exit", NULL);
  for (int i = 0; i < 100 && waitpid (fixture->manager, NULL, WNOHANG) == 0; i++)
    g_usleep (50 * G_TIME_SPAN_MILLISECOND);
  kill (fixture->manager, SIGKILL);
  waitpid (fixture->manager, NULL, 0);
  g_spawn_close_pid (fixture->manager);
  close (fixture->listener);
  eta_harness_remove_user_key (fixture->sig, NULL);
  eta_inprocess_daemon_free (fixture->keyring_daemon);
  eta_kernel_player_remove_module_dir (fixture->module_dir);
  g_assert_cmpint (system (command), ==, 0);
  g_free (fixture->sig);
  g_free (fixture->module_dir);
  g_free (fixture->device);
  g_free (fixture->socket_path);
  g_free (fixture->runtime_dir);
  g_free (fixture->dir);
}

static gboolean
readable_within (int fd, guint timeout_ms)
{
  struct pollfd pfd = { .fd = fd, .events = POLLIN };
  int r;

  do
    r = poll (&pfd, 1, (int) timeout_ms);
  while (r == -1 && errno == EINTR);
  return r == 1;
}

/* A daemon's connection within @timeout_ms, its HELO read; -1 if none
 * came. @pid_out gets the daemon's pid. */
static int
accept_daemon (Fixture *fixture, guint timeout_ms, pid_t *pid_out)
{
  guint8 frame[64];
  struct ucred credentials;
  socklen_t len = sizeof credentials;
  int fd;
  ssize_t n;

  if (!readable_within (fixture->listener, timeout_ms))
    return -1;
  fd = accept4 (fixture->listener, NULL, NULL, SOCK_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &credentials, &len), ==, 0);
  *pid_out = credentials.pid;
  g_assert_true (readable_within (fd, 10000));
  n = read (fd, frame, sizeof frame);
  g_assert_cmpint (n, ==, 5);
  g_assert_cmpint (frame[0], ==, FRAME_HELO);
  return fd;
}

/* One tag 66 request (a new file's key to wrap) and its tag 67 reply. */
static void
assert_wrap_served (Fixture *fixture, int fd, guint32 seq)
{
  const guint8 fek[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) request = eta_ecryptfs_build_tag66 (fixture->sig, AES128, fek, sizeof fek,
                                                         &error);
  g_autoptr (GBytes) frame = NULL;
  g_autoptr (GBytes) wrapped = NULL;
  EtaEcryptfsFrame reply;
  guint8 buf[1024];
  ssize_t n;

  g_assert_no_error (error);
  frame = eta_ecryptfs_frame_encode (FRAME_REQUEST, seq, 0, g_bytes_get_data (request, NULL),
                                     g_bytes_get_size (request), &error);
  g_assert_no_error (error);
  g_assert_cmpint (write (fd, g_bytes_get_data (frame, NULL), g_bytes_get_size (frame)), ==,
                   (gssize) g_bytes_get_size (frame));
  g_assert_true (readable_within (fd, 10000));
  n = read (fd, buf, sizeof buf);
  g_assert_cmpint (n, >, 0);
  g_assert_true (eta_ecryptfs_frame_decode (buf, (gsize) n, &reply, &error));
  g_assert_no_error (error);
  g_assert_cmpint (reply.type, ==, FRAME_RESPONSE);
  g_assert_cmpuint (reply.seq, ==, seq);
  g_assert_true (eta_ecryptfs_parse_tag67 (reply.data, reply.data_len, &wrapped, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (wrapped), >, sizeof fek);
}

/* The old connection ends: the daemon behind it is gone (a daemon that
 * ends itself says QUIT first). */
static void
assert_connection_ends (int fd)
{
  guint8 buf[64];
  ssize_t n;

  g_assert_true (readable_within (fd, 10000));
  n = read (fd, buf, sizeof buf);
  if (n == 5 && buf[0] == FRAME_QUIT)
    {
      g_assert_true (readable_within (fd, 10000));
      n = read (fd, buf, sizeof buf);
    }
  g_assert_cmpint (n, <=, 0);
  close (fd);
}

static void
test_started_when_ecryptfs_loads (Fixture *fixture, gconstpointer data)
{
  pid_t pid = 0;
  int fd;

  /* No eCryptfs yet: nothing starts (and nothing fails). */
  g_assert_cmpint (accept_daemon (fixture, 1500, &pid), ==, -1);
  write_file (fixture->device, "");
  fd = accept_daemon (fixture, 10000, &pid);
  g_assert_cmpint (fd, >=, 0);
  assert_wrap_served (fixture, fd, 1);
  close (fd);
}

static void
test_comes_back (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *restarts = NULL;
  pid_t first = 0, second = 0, third = 0;
  int fd;

  write_file (fixture->device, "");
  fd = accept_daemon (fixture, 10000, &first);
  g_assert_cmpint (fd, >=, 0);
  assert_wrap_served (fixture, fd, 1);

  /* Killed. */
  g_assert_cmpint (kill (first, SIGKILL), ==, 0);
  assert_connection_ends (fd);
  fd = accept_daemon (fixture, BACK_WITHIN_MS, &second);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (second, !=, first);
  assert_wrap_served (fixture, fd, 1);

  /* Its own end: nine requests the kernel gave up on, in a row. */
  for (guint32 seq = 2; seq < 11; seq++)
    {
      g_autoptr (GBytes) stale = eta_ecryptfs_frame_encode_bare (FRAME_REQUEST, seq);
      g_assert_cmpint (write (fd, g_bytes_get_data (stale, NULL), 5), ==, 5);
    }
  assert_connection_ends (fd);
  fd = accept_daemon (fixture, BACK_WITHIN_MS, &third);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (third, !=, second);
  assert_wrap_served (fixture, fd, 1);
  g_assert_true (systemctl (fixture, &restarts, "show", "--property=NRestarts",
                            "ecryptfs-token-ecryptfsd.service", NULL));
  g_assert_cmpstr (restarts, ==, "NRestarts=2\n");

  /* After an upgrade: the unit's restart, no logout. */
  g_assert_true (systemctl (fixture, NULL, "restart", "ecryptfs-token-ecryptfsd.service", NULL));
  assert_connection_ends (fd);
  fd = accept_daemon (fixture, BACK_WITHIN_MS, &second);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (second, !=, third);
  assert_wrap_served (fixture, fd, 1);
  close (fd);
}

/* ---- the agent starts it where no systemd user manager runs ---- */

typedef struct
{
  gchar *dir;
  gchar *runtime_dir;
  gchar *socket_path;
  gchar *device;
  gchar *mountinfo;
  int listener;
  GTestDBus *bus;
  EtaTestAgent *agent;
} AgentFixture;

static void
agent_fixture_set_up (AgentFixture *fixture, gconstpointer data)
{
  gboolean user_manager = GPOINTER_TO_INT (data);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *runtime_env = NULL;
  g_autofree gchar *device_env = NULL;
  g_autofree gchar *socket_env = NULL;
  g_autofree gchar *mountinfo_env = NULL;

  g_assert_cmpint (geteuid (), ==, 0);
  /* The test starts the only ecryptfsd of this user. */
  g_assert_cmpint (system ("! pgrep -x -r D,R,S,T,t -u \"$(id -u)\" ecryptfsd"), ==, 0);
  fixture->dir = g_dir_make_tmp ("eta-fallback-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->runtime_dir = g_build_filename (fixture->dir, "run", NULL);
  g_assert_cmpint (g_mkdir (fixture->runtime_dir, 0700), ==, 0);
  if (user_manager)
    {
      /* Where a user manager has its socket. */
      g_autofree gchar *private = g_build_filename (fixture->runtime_dir, "systemd", "private",
                                                    NULL);
      write_file (private, "");
    }
  fixture->socket_path = g_build_filename (fixture->dir, "miscdev", NULL);
  fixture->listener = listen_at (fixture->socket_path);
  fixture->device = g_build_filename (fixture->dir, "ecryptfs-device", NULL);
  write_file (fixture->device, "");
  /* An eCryptfs mount: someone needs ecryptfsd. */
  fixture->mountinfo = g_build_filename (fixture->dir, "mountinfo", NULL);
  write_file (fixture->mountinfo,
              "61 22 0:52 /lower /home/eta-test/Private rw,relatime shared:30 - ecryptfs "
              "/home/eta-test/.Private rw,ecryptfs_sig=0123456789abcdef,ecryptfs_cipher=aes,"
              "ecryptfs_key_bytes=32\n");

  fixture->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fixture->bus);
  runtime_env = g_strconcat ("XDG_RUNTIME_DIR=", fixture->runtime_dir, NULL);
  device_env = g_strconcat ("ECRYPTFS_TOKEN_AGENT_ECRYPTFS_DEVICE=", fixture->device, NULL);
  socket_env = g_strconcat ("ETA_SHIM_MISCDEV_SOCKET=", fixture->socket_path, NULL);
  mountinfo_env = g_strconcat (ETA_TEST_AGENT_MOUNTINFO_ENV "=", fixture->mountinfo, NULL);
  {
    const gchar *env[] = { runtime_env, device_env, mountinfo_env,
                           "ECRYPTFS_TOKEN_AGENT_ECRYPTFSD_LOOK_SECONDS=1",
                           "LD_PRELOAD=" ETA_TEST_SHIM_PATH,
                           /* The shim acts in the daemon the agent starts only. */
                           "ETA_SHIM_ONLY_ARGV0=/usr/bin/ecryptfsd", socket_env, NULL };
    fixture->agent = eta_test_agent_start (env);
  }
}

static void
agent_fixture_tear_down (AgentFixture *fixture, gconstpointer data)
{
  g_autofree gchar *command = g_strdup_printf ("rm -rf '%s'", fixture->dir);

  eta_test_agent_stop (fixture->agent);
  g_test_dbus_down (fixture->bus);
  g_clear_object (&fixture->bus);
  close (fixture->listener);
  g_assert_cmpint (system (command), ==, 0);
  g_free (fixture->mountinfo);
  g_free (fixture->device);
  g_free (fixture->socket_path);
  g_free (fixture->runtime_dir);
  g_free (fixture->dir);
}

static void
test_agent_starts_it (AgentFixture *fixture, gconstpointer data)
{
  Fixture listening = { .listener = fixture->listener };
  pid_t pid = 0;
  int fd = accept_daemon (&listening, 10000, &pid);

  g_assert_cmpint (fd, >=, 0);
  g_assert_true (eta_test_agent_wait_for_output (fixture->agent,
                                                 "no systemd user manager: started", 5000));
  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  close (fd);
}

static void
test_agent_leaves_it_to_the_user_manager (AgentFixture *fixture, gconstpointer data)
{
  Fixture listening = { .listener = fixture->listener };
  pid_t pid = 0;

  g_assert_cmpint (accept_daemon (&listening, 3000, &pid), ==, -1);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/ecryptfsd-unit/started-when-ecryptfs-loads", Fixture, NULL, fixture_set_up,
              test_started_when_ecryptfs_loads, fixture_tear_down);
  g_test_add ("/ecryptfsd-unit/comes-back", Fixture, NULL, fixture_set_up, test_comes_back,
              fixture_tear_down);
  g_test_add ("/ecryptfsd-unit/agent-starts-it-without-a-user-manager", AgentFixture,
              GINT_TO_POINTER (FALSE), agent_fixture_set_up, test_agent_starts_it,
              agent_fixture_tear_down);
  g_test_add ("/ecryptfsd-unit/agent-leaves-it-to-the-user-manager", AgentFixture,
              GINT_TO_POINTER (TRUE), agent_fixture_set_up,
              test_agent_leaves_it_to_the_user_manager, agent_fixture_tear_down);
  return g_test_run ();
}

/* The real agent process cannot be dumped, seen from outside it: started as
 * a session starts it but with core dumps allowed (RLIMIT_CORE unlimited)
 * and its working directory in an empty scratch directory, the agent has
 * made itself undumpable (PR_SET_DUMPABLE 0: a root process without
 * CAP_SYS_PTRACE in effect may not trace it) and lowered its own
 * core limit to 0 (/proc/PID/limits); and when it crashes (SIGSEGV) it dies
 * of that signal without a core: the kernel reports no dump in the wait
 * status and no core file appears. A control process started the same way
 * (sleep) may be traced and does dump core, so the checks can tell.
 */
#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "eta-test-agent.h"
#include "eta-test-token.h"

#define CORE_PATTERN_PATH "/proc/sys/kernel/core_pattern"

typedef struct
{
  GTestDBus *bus;
  gchar *agent_dir;   /* the agent's working directory */
  gchar *control_dir; /* the control process's */
  EtaTestAgent *agent;
  GPid control;
} Fixture;

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  eta_test_token_get ();
  fixture->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fixture->bus);
  fixture->agent_dir = g_dir_make_tmp ("eta-agent-cwd-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->control_dir = g_dir_make_tmp ("eta-control-cwd-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
remove_dir (const gchar *dir)
{
  g_autofree gchar *command = g_strdup_printf ("rm -rf '%s'", dir);
  g_assert_cmpint (system (command), ==, 0);
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  if (fixture->control > 0)
    {
      kill (fixture->control, SIGKILL);
      waitpid (fixture->control, NULL, 0);
    }
  eta_test_agent_stop (fixture->agent);
  remove_dir (fixture->agent_dir);
  remove_dir (fixture->control_dir);
  g_free (fixture->agent_dir);
  g_free (fixture->control_dir);
  g_test_dbus_down (fixture->bus);
  g_clear_object (&fixture->bus);
}

/* The agent as a session starts it, except that a crash may dump core
 * into an empty directory of the test's. */
static void
start_agent (Fixture *fixture)
{
  EtaTestAgentOptions options = {
    .terminal = TRUE,
    .working_directory = fixture->agent_dir,
    .unlimited_core = TRUE,
  };

  /* Owning the bus name comes after main() hardened the process. */
  fixture->agent = eta_test_agent_start_with_options (&options);
}

static void
control_setup (gpointer data)
{
  struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };

  /* After fork(): failures show as a control that does not dump. */
  if (chdir (data) != 0 || setrlimit (RLIMIT_CORE, &unlimited) != 0)
    _exit (126);
}

/* A process started like the agent that does nothing to protect itself. */
static void
start_control (Fixture *fixture)
{
  const gchar *argv[] = { "sleep", "300", NULL };
  g_autoptr (GError) error = NULL;

  g_spawn_async (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                 control_setup, fixture->control_dir, &fixture->control, &error);
  g_assert_no_error (error);
  /* Past its exec: its /proc entries are sleep's. */
  for (int i = 0; i < 500; i++)
    {
      g_autofree gchar *exe_path = g_strdup_printf ("/proc/%d/exe", (int) fixture->control);
      g_autofree gchar *exe = g_file_read_link (exe_path, NULL);

      if (exe != NULL && g_str_has_suffix (exe, "/sleep"))
        return;
      g_usleep (10 * 1000);
    }
  g_error ("the control process (sleep) did not start");
}

/* The soft "Max core file size" of @pid from /proc/PID/limits: readable by
 * anyone, and what the kernel will use when the process crashes. */
static gchar *
core_limit (pid_t pid)
{
  g_autofree gchar *path = g_strdup_printf ("/proc/%d/limits", (int) pid);
  g_autofree gchar *limits = NULL;
  g_auto (GStrv) fields = NULL;
  const gchar *line;
  g_autoptr (GError) error = NULL;

  g_file_get_contents (path, &limits, NULL, &error);
  g_assert_no_error (error);
  line = strstr (limits, "Max core file size");
  g_assert_nonnull (line);
  fields = g_strsplit_set (line + strlen ("Max core file size"), " \n", -1);
  for (gsize i = 0; fields[i] != NULL; i++)
    if (*fields[i] != '\0')
      return g_strdup (fields[i]);
  g_assert_not_reached ();
}

/* Asks the kernel whether a root process without CAP_SYS_PTRACE in effect
 * may trace @pid, a process of the same user and capabilities: yes when
 * the target is dumpable, no when not. The probe is a child that seizes
 * @pid (which does not stop it) and exits, which detaches it. Returns 0 or
 * the errno of PTRACE_SEIZE. */
static int
probe_ptrace_access (pid_t pid)
{
  int status = 0;
  pid_t child = fork ();

  g_assert_cmpint (child, >=, 0);
  if (child == 0)
    {
      struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
      struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];

      /* Async-signal-safe calls only: the test process has threads. The
       * permitted set stays whole: the kernel also refuses a tracer whose
       * permitted capabilities lack some of the target's. */
      if (syscall (SYS_capget, &header, caps) != 0)
        _exit (200);
      caps[CAP_TO_INDEX (CAP_SYS_PTRACE)].effective &= ~CAP_TO_MASK (CAP_SYS_PTRACE);
      if (syscall (SYS_capset, &header, caps) != 0)
        _exit (201);
      if (ptrace (PTRACE_SEIZE, pid, NULL, NULL) != 0)
        _exit (errno);
      _exit (0);
    }
  g_assert_cmpint (waitpid (child, &status, 0), ==, child);
  g_assert_true (WIFEXITED (status));
  /* 200, 201: capget or capset failed in the probe itself. */
  g_assert_cmpint (WEXITSTATUS (status), <, 200);
  return WEXITSTATUS (status);
}

static void
test_undumpable (Fixture *fixture, gconstpointer data)
{
  pid_t pid;
  int agent_errno, control_errno;
  g_autofree gchar *agent_limit = NULL;
  g_autofree gchar *control_limit = NULL;

  start_agent (fixture);
  start_control (fixture);
  pid = eta_test_agent_get_pid (fixture->agent);

  /* The probe may trace a dumpable process started the same way... */
  control_errno = probe_ptrace_access (fixture->control);
  if (control_errno != 0)
    g_error ("the probe may not trace a dumpable process either (%s; Yama's "
             "ptrace_scope?): it cannot tell whether the agent is dumpable",
             g_strerror (control_errno));
  /* ...and not the agent. */
  agent_errno = probe_ptrace_access (pid);
  if (agent_errno == 0)
    g_test_fail_printf ("a root process without CAP_SYS_PTRACE may trace the agent "
                        "(pid %d): the agent is dumpable", (int) pid);
  else if (agent_errno != EPERM)
    g_test_fail_printf ("PTRACE_SEIZE of the agent failed with %s, not for want of access",
                        g_strerror (agent_errno));

  /* Both started with an unlimited core size; the agent lowered its own. */
  control_limit = core_limit (fixture->control);
  g_assert_cmpstr (control_limit, ==, "unlimited");
  agent_limit = core_limit (pid);
  g_assert_cmpstr (agent_limit, ==, "0");
}

/* Kills @pid with SIGSEGV and waits for its status. */
static gint
crash (pid_t pid, gboolean (*wait_exit) (gpointer, guint, gint *), gpointer data)
{
  gint status = 0;

  g_assert_cmpint (kill (pid, SIGSEGV), ==, 0);
  /* Writing a core takes a moment; a large one longer. */
  g_assert_true (wait_exit (data, 30000, &status));
  return status;
}

static gboolean
wait_control (gpointer data, guint timeout_ms, gint *status)
{
  Fixture *fixture = data;
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  while (waitpid (fixture->control, status, WNOHANG) == 0)
    {
      if (g_get_monotonic_time () > deadline)
        return FALSE;
      g_usleep (10 * 1000);
    }
  fixture->control = 0;
  return TRUE;
}

static gboolean
wait_agent (gpointer data, guint timeout_ms, gint *status)
{
  return eta_test_agent_wait_exit (data, timeout_ms, status);
}

/* Names of the entries in @dir, sorted, comma-separated. */
static gchar *
list_dir (const gchar *dir)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDir) d = g_dir_open (dir, 0, &error);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const gchar *name;

  g_assert_no_error (error);
  while ((name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, (GCompareFunc) g_strcmp0);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (",", (gchar **) names->pdata);
}

static void
test_crash_leaves_no_core (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *pattern = NULL;
  g_autofree gchar *watched_dir = NULL;
  g_autofree gchar *before = NULL;
  g_autofree gchar *after = NULL;
  g_autofree gchar *control_files = NULL;
  g_autofree gchar *agent_files = NULL;
  gboolean piped;
  gint status;

  /* Where a core would go: a pipe to a handler (systemd-coredump, apport)
   * leaves no file of ours to look for, but the kernel still reports in the
   * wait status whether it wrote a dump; a relative path lands in the
   * crashing process's working directory; an absolute one in its
   * directory, watched for new entries. */
  g_file_get_contents (CORE_PATTERN_PATH, &pattern, NULL, &error);
  g_assert_no_error (error);
  g_strchomp (pattern);
  piped = pattern[0] == '|';
  if (pattern[0] == '\0')
    g_error ("%s is empty: this machine writes no core dumps, so their absence proves "
             "nothing", CORE_PATTERN_PATH);
  if (pattern[0] == '/')
    {
      watched_dir = g_path_get_dirname (pattern);
      if (strchr (watched_dir, '%') != NULL)
        g_clear_pointer (&watched_dir, g_free);
    }
  g_test_message ("core_pattern: %s", pattern);

  /* The control shows that a crash here, set up like this, dumps core. */
  start_control (fixture);
  if (watched_dir != NULL)
    before = list_dir (watched_dir);
  status = crash (fixture->control, wait_control, fixture);
  g_assert_true (WIFSIGNALED (status));
  g_assert_cmpint (WTERMSIG (status), ==, SIGSEGV);
  if (!WCOREDUMP (status))
    g_error ("a process with RLIMIT_CORE unlimited dumped no core on SIGSEGV (core_pattern "
             "\"%s\"): this machine cannot show that the agent leaves none", pattern);
  control_files = list_dir (fixture->control_dir);
  if (!piped && watched_dir == NULL && pattern[0] != '/')
    g_assert_cmpstr (control_files, !=, "");

  /* The agent, set up the same way. */
  start_agent (fixture);
  if (watched_dir != NULL)
    {
      g_free (before);
      before = list_dir (watched_dir);
    }
  status = crash (eta_test_agent_get_pid (fixture->agent), wait_agent, fixture->agent);
  g_assert_true (WIFSIGNALED (status));
  g_assert_cmpint (WTERMSIG (status), ==, SIGSEGV);
  if (WCOREDUMP (status))
    g_test_fail_printf ("the kernel dumped the agent's core (core_pattern \"%s\")", pattern);
  agent_files = list_dir (fixture->agent_dir);
  g_assert_cmpstr (agent_files, ==, "");
  if (watched_dir != NULL)
    {
      after = list_dir (watched_dir);
      g_assert_cmpstr (after, ==, before);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/agent/secret/process/undumpable", Fixture, NULL, fixture_set_up,
              test_undumpable, fixture_tear_down);
  g_test_add ("/agent/secret/process/crash-leaves-no-core", Fixture, NULL, fixture_set_up,
              test_crash_leaves_no_core, fixture_tear_down);
  return g_test_run ();
}

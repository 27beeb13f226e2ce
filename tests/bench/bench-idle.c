/* bench-idle: what an idle agent costs — wakeups per second and memory over
 * a quiet minute with a token present — against a baseline measured in the
 * same run: a process doing only the slot polling the provider needs
 * (bench-idle-baseline), and, for scale, a bare GLib main loop.
 *
 * A wakeup is counted as a context switch of any of the process's threads
 * (/proc/PID/task/TID/status): each time a sleeping thread runs again.
 *
 * usage: bench-idle [SECONDS]   (default 60; the agent uses its dialogs'
 *        GTK mode when DISPLAY is set, else its terminal mode) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>

#include "eta-test-agent.h"
#include "eta-token-manager.h"
#include "eta-test-token.h"

typedef struct
{
  guint64 switches;
  guint64 rss_kb;
  guint64 peak_kb;
  guint threads;
} ProcessSample;

static guint64
status_field (const gchar *status, const gchar *name)
{
  const gchar *line = strstr (status, name);
  return line ? g_ascii_strtoull (line + strlen (name), NULL, 10) : 0;
}

static ProcessSample
sample (pid_t pid)
{
  ProcessSample result = { 0 };
  g_autofree gchar *task_dir = g_strdup_printf ("/proc/%d/task", pid);
  g_autofree gchar *status_path = g_strdup_printf ("/proc/%d/status", pid);
  g_autofree gchar *status = NULL;
  g_autoptr (GDir) dir = g_dir_open (task_dir, 0, NULL);
  const gchar *tid;

  while (dir != NULL && (tid = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *path = g_build_filename (task_dir, tid, "status", NULL);
      g_autofree gchar *text = NULL;

      if (!g_file_get_contents (path, &text, NULL, NULL))
        continue;
      result.switches += status_field (text, "\nvoluntary_ctxt_switches:")
                         + status_field (text, "\nnonvoluntary_ctxt_switches:");
      result.threads++;
    }
  if (g_file_get_contents (status_path, &status, NULL, NULL))
    {
      result.rss_kb = status_field (status, "\nVmRSS:");
      result.peak_kb = status_field (status, "\nVmHWM:");
    }
  return result;
}

typedef struct
{
  const gchar *name;
  double wakeups_per_s;
  double rss_mb;
  double peak_mb;
  guint threads;
} Measure;

static Measure
measure (const gchar *name, pid_t pid, guint seconds)
{
  ProcessSample before, after;
  Measure m = { name, 0, 0, 0, 0 };

  /* Let start-up settle: the first enumeration, the bus name, GTK. */
  g_usleep (3 * G_USEC_PER_SEC);
  before = sample (pid);
  g_usleep ((gulong) seconds * G_USEC_PER_SEC);
  after = sample (pid);
  m.wakeups_per_s = (double) (after.switches - before.switches) / seconds;
  m.rss_mb = after.rss_kb / 1024.0;
  m.peak_mb = after.peak_kb / 1024.0;
  m.threads = after.threads;
  return m;
}

static pid_t
spawn (const gchar * const *argv)
{
  g_autoptr (GError) error = NULL;
  GPid pid;
  gint out_fd;
  gchar buffer[16];

  g_spawn_async_with_pipes (NULL, (gchar **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                            NULL, &pid, NULL, &out_fd, NULL, &error);
  if (error != NULL)
    {
      fprintf (stderr, "bench-idle: cannot start %s: %s\n", argv[0], error->message);
      exit (1);
    }
  /* Each baseline says "ready" once it runs its main loop. */
  if (read (out_fd, buffer, sizeof buffer) <= 0)
    {
      fprintf (stderr, "bench-idle: %s did not start\n", argv[0]);
      exit (1);
    }
  close (out_fd);
  return pid;
}

static void
stop (pid_t pid)
{
  int status;
  kill (pid, SIGTERM);
  waitpid (pid, &status, 0);
}

static void
print_measure (const Measure *m)
{
  printf ("  %-44s %8.2f wakeups/s  RSS %6.1f MB (peak %6.1f MB)  %u threads\n", m->name,
          m->wakeups_per_s, m->rss_mb, m->peak_mb, m->threads);
}

int
main (int argc, char **argv)
{
  guint seconds = argc > 1 ? (guint) atoi (argv[1]) : 60;
  g_autofree gchar *poll_ms = g_strdup_printf ("%u", ETA_TOKEN_SLOT_POLL_MS);
  g_autofree gchar *baseline_path = g_build_filename (ETA_BENCH_DIR, "bench-idle-baseline",
                                                      NULL);
  g_autofree gchar *loop_path = g_build_filename (ETA_BENCH_DIR, "bench-idle-loop", NULL);
  const gchar *baseline_argv[] = { baseline_path, ETA_TEST_SOFTHSM_MODULE, poll_ms, NULL };
  const gchar *loop_argv[] = { loop_path, NULL };
  gboolean gtk = g_getenv ("DISPLAY") != NULL;
  g_autoptr (GTestDBus) bus = NULL;
  g_autofree gchar *config_env = NULL;
  EtaTestAgent *agent;
  Measure agent_m, baseline_m, loop_m;
  pid_t pid;

  if (seconds == 0)
    {
      fprintf (stderr, "usage: bench-idle [SECONDS]\n");
      return 2;
    }
  config_env = g_strconcat ("SOFTHSM2_CONF=", eta_test_token_get ()->config_path, NULL);
  g_setenv ("SOFTHSM2_CONF", eta_test_token_get ()->config_path, TRUE);

  bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (bus);
  agent = eta_test_agent_start_full (NULL, !gtk, NULL);
  agent_m = measure (gtk ? "agent (GTK dialogs), token present" : "agent (terminal), token present",
                     eta_test_agent_get_pid (agent), seconds);
  eta_test_agent_stop (agent);
  g_test_dbus_down (bus);

  pid = spawn (baseline_argv);
  baseline_m = measure ("baseline: slot polling alone", pid, seconds);
  stop (pid);
  pid = spawn (loop_argv);
  loop_m = measure ("bare GLib main loop", pid, seconds);
  stop (pid);

  printf ("bench-idle: %u s idle each, SoftHSM2 token present, slot poll every %s ms\n",
          seconds, poll_ms);
  print_measure (&agent_m);
  print_measure (&baseline_m);
  print_measure (&loop_m);
  printf ("  agent / baseline wakeups: %.2fx (target: no wakeups beyond the polling, ~1x): %s\n",
          baseline_m.wakeups_per_s > 0 ? agent_m.wakeups_per_s / baseline_m.wakeups_per_s : 0,
          agent_m.wakeups_per_s <= baseline_m.wakeups_per_s * 1.1 + 0.1 ? "met" : "MISSED");
  printf ("  agent RSS: %.1f MB (target <= 40 MB): %s\n", agent_m.rss_mb,
          agent_m.rss_mb <= 40 ? "met" : "MISSED");
  return 0;
}

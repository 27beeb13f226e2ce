/* See eta-ecryptfsd-watch.h. */
#define G_LOG_DOMAIN "eta-ecryptfsd-watch"

#include "config.h"

#include "eta-ecryptfsd-watch.h"

#include "eta-mount-table.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gio/gunixmounts.h>
#include <glib-unix.h>

struct _EtaEcryptfsdWatch
{
  GObject parent_instance;

  EtaEcryptfsdState state;
  gboolean needed;       /* an eCryptfs mount exists */
  pid_t pid;
  int pidfd;
  guint exit_source;     /* the daemon's pidfd readable: it ended */
  guint look_source;     /* while none runs */
  guint look_seconds;
  GFileMonitor *module_monitor;
  GUnixMountMonitor *mount_monitor;
  gint64 started_at;     /* when the agent last started an ecryptfsd itself */
};

enum
{
  PROP_0,
  PROP_STATE,
  PROP_NEEDED,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (EtaEcryptfsdWatch, eta_ecryptfsd_watch, G_TYPE_OBJECT)

static void look (EtaEcryptfsdWatch *self);

static void
stop_watching_daemon (EtaEcryptfsdWatch *self)
{
  g_clear_handle_id (&self->exit_source, g_source_remove);
  g_clear_handle_id (&self->look_source, g_source_remove);
  if (self->pidfd >= 0)
    close (self->pidfd);
  self->pidfd = -1;
}

static gboolean
on_daemon_ended (gint fd, GIOCondition condition, gpointer user_data)
{
  EtaEcryptfsdWatch *self = user_data;

  self->exit_source = 0;
  look (self);
  return G_SOURCE_REMOVE;
}

static gboolean
on_look_again (gpointer user_data)
{
  EtaEcryptfsdWatch *self = user_data;

  self->look_source = 0;
  look (self);
  return G_SOURCE_REMOVE;
}

/* A systemd user manager runs for this user: then
 * ecryptfs-token-ecryptfsd.path starts and restarts ecryptfsd, not us. */
static gboolean
has_user_manager (void)
{
  g_autofree gchar *socket = g_build_filename (g_get_user_runtime_dir (), "systemd", "private",
                                               NULL);

  return g_file_test (socket, G_FILE_TEST_EXISTS);
}

static const gchar *
setting (const gchar *variable, const gchar *fallback)
{
  const gchar *value = g_getenv (variable);

  return value != NULL && *value != '\0' ? value : fallback;
}

static void
reap_daemon (GPid pid, gint status, gpointer unused)
{
  g_spawn_close_pid (pid);
}

/* Without a systemd user manager nobody else starts ecryptfsd: the agent
 * does, while a mount needs it and eCryptfs is loaded, at most once a
 * minute (a daemon that cannot start is not started in a loop). In the
 * foreground, as the unit runs it: no fork of its own to race with, and the
 * agent reaps it (the pidfd watch notices its end). It outlives an agent
 * that quits. */
static void
maybe_start_daemon (EtaEcryptfsdWatch *self)
{
  const gchar *daemon = setting ("ECRYPTFS_TOKEN_AGENT_ECRYPTFSD", ETA_ECRYPTFSD);
  const gchar *device = setting ("ECRYPTFS_TOKEN_AGENT_ECRYPTFS_DEVICE", "/dev/ecryptfs");
  const gchar *argv[] = { daemon, "-f", NULL };
  g_autoptr (GError) error = NULL;
  gint64 now = g_get_monotonic_time ();
  GPid pid;

  if (!self->needed || self->state != ETA_ECRYPTFSD_NOT_RUNNING || has_user_manager ()
      || !g_file_test (device, G_FILE_TEST_EXISTS)
      || (self->started_at != 0 && now - self->started_at < 60 * G_USEC_PER_SEC))
    return;
  self->started_at = now;
  if (!g_spawn_async (NULL, (gchar **) argv, NULL,
                      G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL
                        | G_SPAWN_STDERR_TO_DEV_NULL,
                      NULL, NULL, &pid, &error))
    {
      g_warning ("no systemd user manager, and %s does not start: %s", daemon, error->message);
      return;
    }
  g_child_watch_add (pid, reap_daemon, NULL);
  g_message ("no systemd user manager: started %s (pid %d)", daemon, (int) pid);
  /* A second later it has run its own program: the next look finds it. */
  g_clear_handle_id (&self->look_source, g_source_remove);
  self->look_source = g_timeout_add_seconds (1, on_look_again, self);
}

static void
look (EtaEcryptfsdWatch *self)
{
  pid_t pid = 0;
  EtaEcryptfsdState state = eta_ecryptfsd_probe (geteuid (), &pid);
  g_auto (GStrv) mounted = eta_mount_table_list_sigs (NULL);
  gboolean needed = mounted[0] != NULL;

  stop_watching_daemon (self);
  self->pid = pid;
  if (pid > 0)
    self->pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
  if (self->pidfd >= 0)
    self->exit_source = g_unix_fd_add (self->pidfd, G_IO_IN, on_daemon_ended, self);
  else if (needed)
    /* Without a mount nobody waits for it: no look until one appears. */
    self->look_source = g_timeout_add_seconds (self->look_seconds, on_look_again, self);
  if (needed != self->needed)
    {
      self->needed = needed;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_NEEDED]);
    }
  if (state != self->state)
    {
      if (state != ETA_ECRYPTFSD_RUNNING && needed)
        {
          g_autofree gchar *problem = eta_ecryptfsd_describe_problem (state);
          g_message ("%s", problem);
        }
      self->state = state;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
    }
  maybe_start_daemon (self);
}

static void
on_module_changed (GFileMonitor *monitor, GFile *file, GFile *other, GFileMonitorEvent event,
                   gpointer user_data)
{
  look (user_data);
}

static void
on_mounts_changed (GUnixMountMonitor *monitor, gpointer user_data)
{
  look (user_data);
}

gboolean
eta_ecryptfsd_watch_get_needed (EtaEcryptfsdWatch *self)
{
  return self->needed;
}

EtaEcryptfsdState
eta_ecryptfsd_watch_get_state (EtaEcryptfsdWatch *self)
{
  return self->state;
}

static void
eta_ecryptfsd_watch_get_property (GObject *object, guint prop_id, GValue *value,
                                  GParamSpec *pspec)
{
  EtaEcryptfsdWatch *self = ETA_ECRYPTFSD_WATCH (object);

  switch (prop_id)
    {
    case PROP_STATE:
      g_value_set_int (value, (gint) self->state);
      break;
    case PROP_NEEDED:
      g_value_set_boolean (value, self->needed);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
eta_ecryptfsd_watch_dispose (GObject *object)
{
  EtaEcryptfsdWatch *self = ETA_ECRYPTFSD_WATCH (object);

  stop_watching_daemon (self);
  g_clear_object (&self->module_monitor);
  g_clear_object (&self->mount_monitor);
  G_OBJECT_CLASS (eta_ecryptfsd_watch_parent_class)->dispose (object);
}

static void
eta_ecryptfsd_watch_class_init (EtaEcryptfsdWatchClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = eta_ecryptfsd_watch_get_property;
  object_class->dispose = eta_ecryptfsd_watch_dispose;
  properties[PROP_STATE] = g_param_spec_int ("state", NULL, NULL, 0, G_MAXINT,
                                             ETA_ECRYPTFSD_NOT_RUNNING,
                                             G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_NEEDED] = g_param_spec_boolean ("needed", NULL, NULL, FALSE,
                                                  G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
eta_ecryptfsd_watch_init (EtaEcryptfsdWatch *self)
{
  const gchar *seconds = g_getenv ("ECRYPTFS_TOKEN_AGENT_ECRYPTFSD_LOOK_SECONDS");
  g_autoptr (GFile) module = g_file_new_for_path (eta_ecryptfsd_installed_module ());

  self->pidfd = -1;
  self->look_seconds = ETA_ECRYPTFSD_LOOK_SECONDS;
  if (seconds != NULL && g_ascii_strtoull (seconds, NULL, 10) > 0)
    self->look_seconds = (guint) g_ascii_strtoull (seconds, NULL, 10);
  /* An upgrade replaces the file while the daemon keeps the old one. */
  self->module_monitor = g_file_monitor_file (module, G_FILE_MONITOR_WATCH_MOVES, NULL, NULL);
  if (self->module_monitor != NULL)
    g_signal_connect_object (self->module_monitor, "changed", G_CALLBACK (on_module_changed),
                             self, 0);
  /* A mount appearing is when an ecryptfsd starts to matter. */
  self->mount_monitor = g_unix_mount_monitor_get ();
  g_signal_connect_object (self->mount_monitor, "mounts-changed",
                           G_CALLBACK (on_mounts_changed), self, 0);
  /* Unknown until the first look, so that it notifies. */
  self->state = (EtaEcryptfsdState) -1;
  look (self);
}

EtaEcryptfsdWatch *
eta_ecryptfsd_watch_new (void)
{
  return g_object_new (ETA_TYPE_ECRYPTFSD_WATCH, NULL);
}

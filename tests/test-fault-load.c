/* The unwrap path under load while the agent fails: the real
 * /usr/bin/ecryptfsd played by the kernel harness (B) with several requests
 * queued at once, as the kernel queues them for several openers, the key
 * module inside it, the real agent and SoftHSM2, logged in.
 *
 * /load/faults: thousands of unwraps of file keys the key module wrapped,
 * while the agent is SIGKILLed (and started again) and SIGSTOPped (and
 * SIGCONTed) at random moments. Every answer is the file key that was
 * wrapped, or a failure reply within the key module's budget: never a wrong
 * key, never a reply the kernel would refuse, never a kernel timeout, and
 * ecryptfsd lives through it all. Each phase (one fault and its end) has
 * successes after the agent is back, so failing everything cannot pass.
 * ETA_FAULT_LOAD_SEED=N replays the fault schedule the log names.
 *
 * /load/valgrind: a few hundred unwraps the same way, with a freeze and
 * thaw among them, while the agent and ecryptfsd (with the key module in
 * it) run under valgrind: no memory error and no definite leak in either.
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "eta-inprocess-daemon.h"
#include "eta-kernel-player.h"
#include "eta-names.h"
#include "eta-test-agent.h"
#include "eta-test-cli.h"
#include "eta-test-token.h"

#define AES128 0x07
#define AES256 0x09
/* Requests queued in ecryptfsd at once. */
#define CONCURRENCY 4
/* The file keys the load unwraps, each wrapped once by the key module. */
#define N_FEKS 32

/* /load/faults: a small budget keeps frozen-agent phases short. The kernel
 * waits its default 3 s: CONCURRENCY whole budgets fit in it. */
#define LOAD_UNWRAPS 3000
#define LOAD_PHASES 12
#define LOAD_BUDGET_MS 500
#define LOAD_KERNEL_WAIT_MS 3000
/* What ecryptfsd adds around the module's budget (keyring look-up,
 * parsing, the reply) plus scheduling on a busy two-core machine. */
#define LOAD_SLACK_MS 250

/* /load/valgrind: valgrind makes the agent and the module some twenty
 * times slower; the kernel wait is raised as
 * `options ecryptfs ecryptfs_message_wait_timeout=…` would. */
#define VALGRIND_UNWRAPS 300
#define VALGRIND_BUDGET_MS 4000
#define VALGRIND_KERNEL_WAIT_MS 30000
#define VALGRIND_SLACK_MS 2000
#define VALGRIND_START_MS 60000

typedef struct
{
  EtaTestKeyIndex key;
  guint8 code;
  GBytes *fek;
  GBytes *wrapped;
} FileKey;

typedef struct _Restarter Restarter;
static void restarter_free (Restarter *restarter);

typedef struct
{
  GTestDBus *bus;
  const EtaTestToken *token;
  gchar *work_dir;     /* data home, keymod.conf, valgrind logs */
  gchar *data_home;
  gchar *module_dir;
  gchar *keymod_conf;
  gchar *sig[ETA_TEST_N_KEYS];
  EtaTestAgent *agent;
  Restarter *restarter;
  EtaKernelPlayer *player;
  FileKey feks[N_FEKS];
} Fixture;

/* ---- set-up ------------------------------------------------------------ */

/* `ecryptfs-token add-key` as a person would run it; returns the sig. */
static gchar *
add_key (Fixture *fixture, EtaTestKeyIndex index)
{
  const gchar *args[] = { "add-key", fixture->token->fingerprint[index], "--padding", "oaep",
                          NULL };
  EtaTestCliResult result = eta_test_run_cli (fixture->data_home, args);
  const gchar *line;
  gchar *sig;

  if (result.exit_code != 0)
    g_printerr ("ecryptfs-token add-key:\n%s%s\n", result.out, result.err);
  g_assert_cmpint (result.exit_code, ==, 0);
  line = strstr (result.out, "ecryptfs_sig: ");
  g_assert_nonnull (line);
  sig = g_strndup (line + strlen ("ecryptfs_sig: "), 16);
  eta_test_cli_result_clear (&result);
  return sig;
}

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  fixture->token = eta_test_token_get ();
  fixture->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fixture->bus);
  fixture->work_dir = g_dir_make_tmp ("eta-fault-load-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->data_home = g_build_filename (fixture->work_dir, "data", NULL);
  g_assert_cmpint (g_mkdir (fixture->data_home, 0700), ==, 0);
  fixture->keymod_conf = g_build_filename (fixture->work_dir, "keymod.conf", NULL);
  fixture->module_dir = eta_kernel_player_make_module_dir (ETA_TEST_KEYMOD_PATH, &error);
  g_assert_no_error (error);
  /* add-key asks the agent for the key; each test starts its own agent
   * afterwards. An auth token with this sig may remain from another test
   * with another padding: replace it. */
  fixture->agent = eta_test_agent_start (NULL);
  for (int i = 0; i < ETA_TEST_N_KEYS; i++)
    {
      g_autofree gchar *sig = add_key (fixture, i);
      eta_harness_remove_user_key (sig, NULL);
      fixture->sig[i] = add_key (fixture, i);
    }
  g_clear_pointer (&fixture->agent, eta_test_agent_stop);
}

static void
print_logs (Fixture *fixture)
{
  if (fixture->player != NULL)
    {
      const gchar *log = eta_kernel_player_get_log (fixture->player);
      gsize len = strlen (log);

      /* The tail: the whole log of a long run drowns the failure. */
      g_printerr ("ecryptfsd log (last 20000 bytes):\n%s\n",
                  len > 20000 ? log + len - 20000 : log);
    }
  if (fixture->agent != NULL)
    {
      g_autofree gchar *terminal = eta_test_agent_dup_terminal_output (fixture->agent);
      gsize len = strlen (terminal);

      g_printerr ("agent terminal (last 8000 bytes):\n%s\n",
                  len > 8000 ? terminal + len - 8000 : terminal);
    }
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  if (g_test_failed ())
    print_logs (fixture);
  eta_kernel_player_stop (fixture->player);
  eta_test_agent_stop (fixture->agent);
  g_clear_pointer (&fixture->restarter, restarter_free);
  for (int i = 0; i < ETA_TEST_N_KEYS; i++)
    {
      eta_harness_remove_user_key (fixture->sig[i], NULL);
      g_free (fixture->sig[i]);
    }
  for (int i = 0; i < N_FEKS; i++)
    {
      g_clear_pointer (&fixture->feks[i].fek, g_bytes_unref);
      g_clear_pointer (&fixture->feks[i].wrapped, g_bytes_unref);
    }
  eta_kernel_player_remove_module_dir (fixture->module_dir);
  g_free (fixture->module_dir);
  {
    g_autofree gchar *command = g_strdup_printf ("rm -rf '%s'", fixture->work_dir);
    g_assert_cmpint (system (command), ==, 0);
  }
  g_free (fixture->work_dir);
  g_free (fixture->data_home);
  g_free (fixture->keymod_conf);
  g_test_dbus_down (fixture->bus);
  g_clear_object (&fixture->bus);
}

/* The key module reads its budget from the file ECRYPTFS_TOKEN_AGENT_KEYMOD_CONF
 * names, as an administrator sets it in keymod.conf. */
static void
start_daemon (Fixture *fixture, guint budget_ms, const gchar * const *wrapper)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *conf = g_strdup_printf ("[keymod]\nunwrap_timeout_ms=%u\n", budget_ms);
  g_autofree gchar *conf_env = g_strconcat ("ECRYPTFS_TOKEN_AGENT_KEYMOD_CONF=",
                                            fixture->keymod_conf, NULL);
  const gchar *env[] = { conf_env, NULL };

  g_file_set_contents (fixture->keymod_conf, conf, -1, &error);
  g_assert_no_error (error);
  fixture->player = eta_kernel_player_start_wrapped (fixture->module_dir, env, wrapper, &error);
  g_assert_no_error (error);
}

/* Wraps N_FEKS fresh file keys through ecryptfsd, as the kernel asks for
 * new files: both RSA keys, AES-128 and AES-256. Needs no agent. */
static void
wrap_file_keys (Fixture *fixture, guint timeout_ms)
{
  for (int i = 0; i < N_FEKS; i++)
    {
      FileKey *key = &fixture->feks[i];
      g_autoptr (GError) error = NULL;
      gsize len;
      guint8 *data;

      key->key = i % 2 == 0 ? ETA_TEST_KEY_RSA2048 : ETA_TEST_KEY_RSA3072;
      key->code = i % 4 < 2 ? AES128 : AES256;
      len = key->code == AES128 ? 16 : 32;
      data = g_malloc (len);
      for (gsize j = 0; j < len; j++)
        data[j] = (guint8) g_random_int_range (0, 256);
      key->fek = g_bytes_new_take (data, len);
      g_assert_true (eta_kernel_player_wrap (fixture->player, fixture->sig[key->key], key->code,
                                             data, len, timeout_ms, &key->wrapped, &error));
      g_assert_no_error (error);
    }
}

static gboolean
name_has_owner (GDBusConnection *bus)
{
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
      bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
      "NameHasOwner", g_variant_new ("(s)", ETA_BUS_NAME), G_VARIANT_TYPE ("(b)"),
      G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
  gboolean owned = FALSE;

  g_assert_nonnull (reply);
  g_variant_get (reply, "(b)", &owned);
  return owned;
}

/* Logs the agent in to the token through its Unlock method, the PIN typed
 * at its terminal prompt, so that the load never waits for a person. */
static void
unlock (EtaTestAgent *agent, const EtaTestToken *token, guint timeout_ms)
{
  g_autoptr (GDBusConnection) bus = eta_test_session_bus ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  GVariantBuilder details;

  g_variant_builder_init (&details, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&details, "{sv}", "requester", g_variant_new_string ("test-fault-load"));
  eta_test_agent_queue_answer (agent, ETA_TEST_TOKEN_PIN);
  reply = g_dbus_connection_call_sync (bus, ETA_BUS_NAME, ETA_OBJECT_PATH, ETA_INTERFACE,
                                       "Unlock",
                                       g_variant_new ("(sa{sv})",
                                                      token->fingerprint[ETA_TEST_KEY_RSA2048],
                                                      &details),
                                       G_VARIANT_TYPE ("(ss)"), G_DBUS_CALL_FLAGS_NONE,
                                       (gint) timeout_ms, NULL, &error);
  if (error != NULL)
    {
      g_autofree gchar *terminal = eta_test_agent_dup_terminal_output (agent);
      g_printerr ("agent terminal:\n%s\n", terminal);
    }
  g_assert_no_error (error);
}

/* Starts new agents while the load goes on, as a person's session would
 * restart one. One thread for the whole test: the agent's parent-death
 * signal follows the thread that forked it, so a thread per restart would
 * take its agent with it when it ends. */
struct _Restarter
{
  const EtaTestToken *token;
  GThread *thread;
  GAsyncQueue *requests; /* RESTART_START or RESTART_QUIT */
  GAsyncQueue *agents;   /* EtaTestAgent *, started and logged in */
};

#define RESTART_START GINT_TO_POINTER (1)
#define RESTART_QUIT GINT_TO_POINTER (2)

static gpointer
restarter_thread (gpointer data)
{
  Restarter *restarter = data;
  g_autoptr (GDBusConnection) bus = eta_test_session_bus ();

  while (g_async_queue_pop (restarter->requests) == RESTART_START)
    {
      gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
      EtaTestAgent *agent;

      /* The bus drops a dead agent's name when it notices the closed
       * socket; an agent started before that would find the name taken. */
      while (name_has_owner (bus))
        {
          if (g_get_monotonic_time () > deadline)
            g_error ("the killed agent still owns %s after 10 s", ETA_BUS_NAME);
          g_usleep (5 * 1000);
        }
      agent = eta_test_agent_start (NULL);
      unlock (agent, restarter->token, 10000);
      g_async_queue_push (restarter->agents, agent);
    }
  return NULL;
}

static Restarter *
restarter_new (const EtaTestToken *token)
{
  Restarter *restarter = g_new0 (Restarter, 1);

  restarter->token = token;
  restarter->requests = g_async_queue_new ();
  restarter->agents = g_async_queue_new ();
  restarter->thread = g_thread_new ("restart-agent", restarter_thread, restarter);
  return restarter;
}

/* After the agents it started were stopped. */
static void
restarter_free (Restarter *restarter)
{
  if (restarter == NULL)
    return;
  g_async_queue_push (restarter->requests, RESTART_QUIT);
  g_thread_join (restarter->thread);
  g_assert_null (g_async_queue_try_pop (restarter->agents));
  g_async_queue_unref (restarter->requests);
  g_async_queue_unref (restarter->agents);
  g_free (restarter);
}

/* ---- the load ---------------------------------------------------------- */

typedef enum
{
  FAULT_NONE,
  FAULT_KILL,      /* SIGKILL; a new agent some time later */
  FAULT_STOP,      /* SIGSTOP; SIGCONT some time later */
  FAULT_STOP_KILL, /* frozen, then killed and replaced: a hung agent given up on */
} FaultKind;

static const gchar *
fault_name (FaultKind kind)
{
  switch (kind)
    {
    case FAULT_NONE: return "no fault";
    case FAULT_KILL: return "kill, restart";
    case FAULT_STOP: return "stop, continue";
    case FAULT_STOP_KILL: return "stop, kill, restart";
    default: g_assert_not_reached ();
    }
}

typedef enum
{
  STEP_BEFORE,     /* not injected yet */
  STEP_STOPPED,    /* SIGSTOPped until step_at */
  STEP_DOWN,       /* killed; the next agent starts at step_at */
  STEP_RESTARTING, /* the restart thread runs */
  STEP_OVER,       /* the agent is back */
} FaultStep;

typedef struct
{
  FaultKind kind;
  guint inject_after;   /* answers in this phase before the fault */
  guint stop_ms;        /* how long the agent stays frozen */
  guint down_ms;        /* how long no agent runs after a kill */
  /* Outcomes of the requests sent in this phase. */
  guint sent;
  guint answered;
  guint ok;
  guint failed;
  guint ok_after;       /* successes sent once the agent was back */
  guint failed_after;
  gint64 max_service_us;
} Phase;

typedef struct
{
  Fixture *fixture;
  GRand *rand;
  guint budget_ms;
  guint kernel_wait_ms;
  guint slack_ms;
  /* Requests sent, by seq. */
  GHashTable *in_flight;
  gint64 last_done_us;
  guint wrong;
  guint bad;
  GString *problems;
} Load;

typedef struct
{
  guint fek;
  guint phase;
  gboolean after; /* sent once the agent was back from the phase's fault */
} Sent;

static void problem (Load *load, const gchar *format, ...) G_GNUC_PRINTF (2, 3);

static void
problem (Load *load, const gchar *format, ...)
{
  va_list args;

  /* The first ones in full; the counts tell the rest. */
  if (load->problems->len > 8000)
    return;
  va_start (args, format);
  g_string_append_vprintf (load->problems, format, args);
  va_end (args);
  g_string_append_c (load->problems, '\n');
}

static void
submit_one (Load *load, Phase *phases, guint phase, gboolean after)
{
  Fixture *fixture = load->fixture;
  g_autoptr (GError) error = NULL;
  Sent *sent = g_new0 (Sent, 1);
  guint32 seq = 0;
  FileKey *key;

  sent->fek = (guint) g_rand_int_range (load->rand, 0, N_FEKS);
  sent->phase = phase;
  sent->after = after;
  key = &fixture->feks[sent->fek];
  eta_kernel_player_submit_unwrap (fixture->player, fixture->sig[key->key],
                                   g_bytes_get_data (key->wrapped, NULL),
                                   g_bytes_get_size (key->wrapped), load->kernel_wait_ms, &seq,
                                   &error);
  /* DAEMON_EXITED names ecryptfsd's exit status. */
  g_assert_no_error (error);
  g_hash_table_insert (load->in_flight, GUINT_TO_POINTER (seq), sent);
  phases[phase].sent++;
}

/* One outcome: the exact file key, or a failure reply within the module's
 * budget. Anything else is counted and described. */
static void
check_result (Load *load, Phase *phases, EtaKernelPlayerResult *result)
{
  Fixture *fixture = load->fixture;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) fek = NULL;
  Sent *sent = g_hash_table_lookup (load->in_flight, GUINT_TO_POINTER (result->seq));
  FileKey *key;
  Phase *phase;
  guint8 code = 0;
  gint64 service_us;

  g_assert_nonnull (sent);
  key = &fixture->feks[sent->fek];
  phase = &phases[sent->phase];
  phase->answered++;

  /* Fatal at once: nothing after it would mean anything. */
  if (g_error_matches (result->error, ETA_KERNEL_PLAYER_ERROR,
                       ETA_KERNEL_PLAYER_ERROR_DAEMON_EXITED))
    g_error ("seq %u (phase %u): %s", result->seq, sent->phase, result->error->message);

  /* ecryptfsd answers one request at a time, in the order sent: this one's
   * turn began when it was sent or when the one before was answered. */
  service_us = result->done_us - MAX (result->sent_us, load->last_done_us);
  load->last_done_us = result->done_us;
  phase->max_service_us = MAX (phase->max_service_us, service_us);

  if (eta_kernel_player_result_get_unwrap (result, &code, &fek, &error))
    {
      if (code != key->code || !g_bytes_equal (fek, key->fek))
        {
          load->wrong++;
          problem (load, "seq %u (phase %u): file key %u came back WRONG: cipher 0x%02x, %"
                   G_GSIZE_FORMAT " bytes; wrapped: 0x%02x, %" G_GSIZE_FORMAT " bytes",
                   result->seq, sent->phase, sent->fek, code, g_bytes_get_size (fek),
                   key->code, g_bytes_get_size (key->fek));
        }
      else
        {
          phase->ok++;
          phase->ok_after += sent->after;
        }
    }
  else if (g_error_matches (error, ETA_KERNEL_PLAYER_ERROR,
                            ETA_KERNEL_PLAYER_ERROR_FAILURE_REPLY))
    {
      phase->failed++;
      phase->failed_after += sent->after;
    }
  else
    {
      /* A kernel timeout, or a reply the kernel would refuse (where a wrong
       * key would most likely fail its checksum). */
      load->bad++;
      problem (load, "seq %u (phase %u, file key %u): %s", result->seq, sent->phase, sent->fek,
               error->message);
    }
  if (service_us > (gint64) (load->budget_ms + load->slack_ms) * 1000)
    {
      load->bad++;
      problem (load, "seq %u (phase %u): ecryptfsd spent %" G_GINT64_FORMAT " ms on it: more "
               "than the %u ms budget and %u ms slack", result->seq, sent->phase,
               service_us / 1000, load->budget_ms, load->slack_ms);
    }
  g_hash_table_remove (load->in_flight, GUINT_TO_POINTER (result->seq));
}

static guint
random_ms (GRand *rand, guint low, guint high)
{
  return (guint) g_rand_int_range (rand, (gint32) low, (gint32) high + 1);
}

static void
kill_agent (Fixture *fixture)
{
  gint status = 0;

  g_assert_cmpint (kill (eta_test_agent_get_pid (fixture->agent), SIGKILL), ==, 0);
  g_assert_true (eta_test_agent_wait_exit (fixture->agent, 5000, &status));
  g_assert_true (WIFSIGNALED (status));
  g_assert_cmpint (WTERMSIG (status), ==, SIGKILL);
  g_clear_pointer (&fixture->agent, eta_test_agent_stop);
}

/* Sends @per_phase unwraps per phase, CONCURRENCY outstanding at a time,
 * and plays each phase's fault among them. */
static void
run_load (Load *load, Phase *phases, guint n_phases, guint per_phase)
{
  Fixture *fixture = load->fixture;

  for (guint p = 0; p < n_phases; p++)
    {
      Phase *phase = &phases[p];
      FaultStep step = phase->kind == FAULT_NONE ? STEP_OVER : STEP_BEFORE;
      /* The last 40 % of a phase is sent with the agent back: the proof
       * that it recovers. */
      guint hold_at = per_phase * 6 / 10;
      guint submitted = 0;
      gint64 step_at = 0;

      g_assert_cmpuint (phase->inject_after + CONCURRENCY, <, hold_at);
      while (submitted < per_phase || eta_kernel_player_get_outstanding_count (fixture->player) > 0)
        {
          g_autoptr (EtaKernelPlayerResult) result = NULL;
          gint64 now = g_get_monotonic_time ();
          gint status = 0;

          /* Only the test ends an agent. */
          if (fixture->agent != NULL && eta_test_agent_wait_exit (fixture->agent, 0, &status))
            {
              g_autofree gchar *terminal = eta_test_agent_dup_terminal_output (fixture->agent);

              g_printerr ("agent terminal:\n%s\n", terminal);
              if (WIFSIGNALED (status))
                g_error ("phase %u (%s): the agent (pid %d) died of signal %d (%s)", p,
                         fault_name (phase->kind), (int) eta_test_agent_get_pid (fixture->agent),
                         WTERMSIG (status), g_strsignal (WTERMSIG (status)));
              g_error ("phase %u (%s): the agent (pid %d) exited with status %d", p,
                       fault_name (phase->kind), (int) eta_test_agent_get_pid (fixture->agent),
                       WEXITSTATUS (status));
            }

          if (step == STEP_BEFORE && phase->answered >= phase->inject_after)
            {
              g_test_message ("phase %u: %s after %u answers (frozen %u ms, down %u ms)", p,
                              fault_name (phase->kind), phase->answered, phase->stop_ms,
                              phase->down_ms);
              if (phase->kind == FAULT_KILL)
                {
                  kill_agent (fixture);
                  step = STEP_DOWN;
                  step_at = now + (gint64) phase->down_ms * 1000;
                }
              else
                {
                  g_assert_cmpint (kill (eta_test_agent_get_pid (fixture->agent), SIGSTOP), ==, 0);
                  step = STEP_STOPPED;
                  step_at = now + (gint64) phase->stop_ms * 1000;
                }
            }
          else if (step == STEP_STOPPED && now >= step_at)
            {
              if (phase->kind == FAULT_STOP)
                {
                  g_assert_cmpint (kill (eta_test_agent_get_pid (fixture->agent), SIGCONT), ==, 0);
                  step = STEP_OVER;
                }
              else
                {
                  kill_agent (fixture);
                  step = STEP_DOWN;
                  step_at = now + (gint64) phase->down_ms * 1000;
                }
            }
          else if (step == STEP_DOWN && now >= step_at)
            {
              if (fixture->restarter == NULL)
                fixture->restarter = restarter_new (fixture->token);
              g_async_queue_push (fixture->restarter->requests, RESTART_START);
              step = STEP_RESTARTING;
            }
          else if (step == STEP_RESTARTING
                   && (fixture->agent = g_async_queue_try_pop (fixture->restarter->agents)) != NULL)
            step = STEP_OVER;

          while ((step == STEP_OVER || submitted < hold_at) && submitted < per_phase
                 && eta_kernel_player_get_outstanding_count (fixture->player) < CONCURRENCY)
            {
              submit_one (load, phases, p, step == STEP_OVER);
              submitted++;
            }
          if (eta_kernel_player_get_outstanding_count (fixture->player) == 0)
            {
              /* Holding until the agent is back. */
              g_usleep (2 * 1000);
              continue;
            }
          result = eta_kernel_player_collect (fixture->player, 5);
          if (result != NULL)
            check_result (load, phases, result);
        }
    }
}

static void
load_init (Load *load, Fixture *fixture, guint32 seed, guint budget_ms, guint kernel_wait_ms,
           guint slack_ms)
{
  load->fixture = fixture;
  load->rand = g_rand_new_with_seed (seed);
  load->budget_ms = budget_ms;
  load->kernel_wait_ms = kernel_wait_ms;
  load->slack_ms = slack_ms;
  load->in_flight = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  load->problems = g_string_new (NULL);
}

static void
load_clear (Load *load)
{
  g_rand_free (load->rand);
  g_hash_table_unref (load->in_flight);
  g_string_free (load->problems, TRUE);
}

/* The outcome of each phase in the log, then the assertions. */
static void
assert_load (Load *load, Phase *phases, guint n_phases)
{
  for (guint p = 0; p < n_phases; p++)
    g_test_message ("phase %u (%s): %u sent, %u keys right, %u failure replies; once the "
                    "agent was back %u right, %u failed; longest turn in ecryptfsd %"
                    G_GINT64_FORMAT " ms",
                    p, fault_name (phases[p].kind), phases[p].sent, phases[p].ok,
                    phases[p].failed, phases[p].ok_after, phases[p].failed_after,
                    phases[p].max_service_us / 1000);
  if (load->wrong > 0 || load->bad > 0)
    g_printerr ("%u wrong keys, %u bad outcomes:\n%s", load->wrong, load->bad,
                load->problems->str);
  for (guint p = 0; p < n_phases; p++)
    if (phases[p].ok_after == 0)
      g_printerr ("phase %u (%s): no key came back once the agent was back\n", p,
                  fault_name (phases[p].kind));
  /* The assertions abort: the logs now, not at teardown. */
  if (load->wrong > 0 || load->bad > 0 || g_test_failed ())
    print_logs (load->fixture);
  else
    for (guint p = 0; p < n_phases; p++)
      if (phases[p].ok_after == 0)
        {
          print_logs (load->fixture);
          break;
        }
  g_assert_cmpuint (load->wrong, ==, 0);
  g_assert_cmpuint (load->bad, ==, 0);
  for (guint p = 0; p < n_phases; p++)
    {
      g_assert_cmpuint (phases[p].answered, ==, phases[p].sent);
      /* Failing everything would pass the checks above. */
      g_assert_cmpuint (phases[p].ok, >, 0);
      g_assert_cmpuint (phases[p].ok_after, >, 0);
    }
  g_assert_true (eta_kernel_player_is_alive (load->fixture->player));
}

static guint32
choose_seed (void)
{
  const gchar *env = g_getenv ("ETA_FAULT_LOAD_SEED");
  guint32 seed = env != NULL && *env != '\0' ? (guint32) g_ascii_strtoull (env, NULL, 10)
                                             : g_random_int ();

  g_test_message ("fault schedule seed %u (replay: ETA_FAULT_LOAD_SEED=%u)", seed, seed);
  g_printerr ("# fault schedule seed %u (replay: ETA_FAULT_LOAD_SEED=%u)\n", seed, seed);
  return seed;
}

static void
test_faults (Fixture *fixture, gconstpointer data)
{
  Phase phases[LOAD_PHASES] = { { 0 } };
  guint per_phase = LOAD_UNWRAPS / LOAD_PHASES;
  guint32 seed = choose_seed ();
  Load load = { 0 };
  gint64 started = g_get_monotonic_time ();
  guint n_stops = 0;

  load_init (&load, fixture, seed, LOAD_BUDGET_MS, LOAD_KERNEL_WAIT_MS, LOAD_SLACK_MS);
  /* The first phase without a fault: the baseline. Then each kind of fault
   * as often as the others, in a random order. */
  for (guint p = 1; p < LOAD_PHASES; p++)
    phases[p].kind = FAULT_KILL + (p - 1) % 3;
  for (guint p = LOAD_PHASES - 1; p > 1; p--)
    {
      guint other = (guint) g_rand_int_range (load.rand, 1, (gint32) p + 1);
      FaultKind kind = phases[p].kind;

      phases[p].kind = phases[other].kind;
      phases[other].kind = kind;
    }
  for (guint p = 1; p < LOAD_PHASES; p++)
    {
      Phase *phase = &phases[p];

      phase->inject_after = (guint) g_rand_int_range (load.rand, 1, (gint32) per_phase / 3);
      /* A freeze ends within the budget (the waiting opens still succeed)
       * or outlasts it (they fail, and the agent answers them into the
       * void when it wakes), alternately. */
      if (phase->kind == FAULT_STOP && n_stops++ % 2 == 0)
        phase->stop_ms = random_ms (load.rand, 100, LOAD_BUDGET_MS - 100);
      else
        phase->stop_ms = random_ms (load.rand, LOAD_BUDGET_MS + 100, 3 * LOAD_BUDGET_MS);
      /* From no time at all (restarted at once) to a while. */
      phase->down_ms = random_ms (load.rand, 0, 500);
    }

  start_daemon (fixture, LOAD_BUDGET_MS, NULL);
  wrap_file_keys (fixture, LOAD_KERNEL_WAIT_MS);
  fixture->agent = eta_test_agent_start (NULL);
  unlock (fixture->agent, fixture->token, 10000);

  run_load (&load, phases, LOAD_PHASES, per_phase);
  g_test_message ("%u unwraps in %.1f s", per_phase * LOAD_PHASES,
                  (g_get_monotonic_time () - started) / 1e6);
  assert_load (&load, phases, LOAD_PHASES);
  load_clear (&load);
}

/* ---- under valgrind ---------------------------------------------------- */

/* A number as valgrind prints it, with thousands separators. */
static guint64
parse_count (const gchar *text)
{
  g_autoptr (GString) digits = g_string_new (NULL);

  for (; g_ascii_isdigit (*text) || *text == ','; text++)
    if (*text != ',')
      g_string_append_c (digits, *text);
  return g_ascii_strtoull (digits->str, NULL, 10);
}

/* Checks a valgrind log: no error of any kind, which with
 * --errors-for-leak-kinds=definite includes definite leaks. */
static void
assert_valgrind_clean (const gchar *what, const gchar *log_path, gint wait_status)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *log = NULL;
  g_autofree gchar *how = NULL;
  const gchar *summary, *definite;
  guint64 errors, lost;

  g_file_get_contents (log_path, &log, NULL, &error);
  g_assert_no_error (error);
  if (WIFEXITED (wait_status))
    how = g_strdup_printf ("exited with %d", WEXITSTATUS (wait_status));
  else if (WIFSIGNALED (wait_status))
    how = g_strdup_printf ("died of signal %d", WTERMSIG (wait_status));
  else
    how = g_strdup_printf ("wait status 0x%x", (guint) wait_status);
  summary = strstr (log, "ERROR SUMMARY: ");
  definite = strstr (log, "definitely lost: ");
  errors = summary ? parse_count (summary + strlen ("ERROR SUMMARY: ")) : 1;
  lost = definite ? parse_count (definite + strlen ("definitely lost: ")) : 0;
  g_test_message ("%s under valgrind %s: %" G_GUINT64_FORMAT " errors, %" G_GUINT64_FORMAT
                  " bytes definitely lost", what, how, errors, lost);
  if (summary == NULL || errors != 0 || lost != 0
      || (WIFEXITED (wait_status) && WEXITSTATUS (wait_status) == 99))
    g_printerr ("---- %s: valgrind log %s ----\n%s\n---- end ----\n", what, log_path, log);
  /* No summary: valgrind did not get to its report. */
  g_assert_nonnull (summary);
  g_assert_cmpuint (errors, ==, 0);
  g_assert_cmpuint (lost, ==, 0);
  g_assert_false (WIFEXITED (wait_status) && WEXITSTATUS (wait_status) == 99);
}

static void
test_valgrind (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *agent_log = g_build_filename (fixture->work_dir, "agent.valgrind", NULL);
  g_autofree gchar *daemon_log = g_build_filename (fixture->work_dir, "ecryptfsd.valgrind", NULL);
  g_autofree gchar *agent_log_arg = g_strconcat ("--log-file=", agent_log, NULL);
  g_autofree gchar *daemon_log_arg = g_strconcat ("--log-file=", daemon_log, NULL);
  const gchar *agent_wrapper[] = { "valgrind", "--leak-check=full",
                                   "--errors-for-leak-kinds=definite", "--error-exitcode=99",
                                   "--num-callers=40", agent_log_arg, NULL };
  /* Only leaks of ecryptfsd's own, allocated in libecryptfs. */
  const gchar *daemon_wrapper[] = { "valgrind", "--leak-check=full",
                                    "--errors-for-leak-kinds=definite", "--error-exitcode=99",
                                    "--num-callers=40",
                                    "--suppressions=" ETA_TEST_SOURCE_DIR "/harness/libecryptfs.supp",
                                    daemon_log_arg, NULL };
  EtaTestAgentOptions options = {
    .terminal = TRUE,
    .wrapper_argv = agent_wrapper,
    .start_timeout_ms = VALGRIND_START_MS,
  };
  /* Before, during and after a freeze longer than the budget: requests the
   * module gave up on are answered late, into the void. */
  Phase phases[3] = { { .kind = FAULT_NONE },
                      { .kind = FAULT_STOP, .inject_after = 10,
                        .stop_ms = VALGRIND_BUDGET_MS + 1000 },
                      { .kind = FAULT_NONE } };
  guint32 seed = choose_seed ();
  Load load = { 0 };
  gint status = 0;
  gint64 started = g_get_monotonic_time ();
  g_autoptr (GError) error = NULL;

  load_init (&load, fixture, seed, VALGRIND_BUDGET_MS, VALGRIND_KERNEL_WAIT_MS,
             VALGRIND_SLACK_MS);
  start_daemon (fixture, VALGRIND_BUDGET_MS, daemon_wrapper);
  wrap_file_keys (fixture, VALGRIND_KERNEL_WAIT_MS);
  fixture->agent = eta_test_agent_start_with_options (&options);
  unlock (fixture->agent, fixture->token, VALGRIND_START_MS);

  run_load (&load, phases, G_N_ELEMENTS (phases), VALGRIND_UNWRAPS / G_N_ELEMENTS (phases));
  g_test_message ("%u unwraps under valgrind in %.1f s", VALGRIND_UNWRAPS,
                  (g_get_monotonic_time () - started) / 1e6);
  assert_load (&load, phases, G_N_ELEMENTS (phases));
  load_clear (&load);

  /* The agent has no SIGTERM handler: it dies of it, and valgrind reports
   * before passing the signal on. */
  status = eta_test_agent_terminate (fixture->agent, VALGRIND_START_MS);
  assert_valgrind_clean ("the agent", agent_log, status);
  /* ecryptfsd exit()s from its SIGTERM handler. */
  g_assert_true (eta_kernel_player_terminate (fixture->player, VALGRIND_START_MS, &status,
                                              &error));
  g_assert_no_error (error);
  assert_valgrind_clean ("ecryptfsd with the key module", daemon_log, status);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/load/faults", Fixture, NULL, fixture_set_up, test_faults, fixture_tear_down);
  g_test_add ("/load/valgrind", Fixture, NULL, fixture_set_up, test_valgrind,
              fixture_tear_down);
  return g_test_run ();
}

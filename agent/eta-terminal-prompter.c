/* See eta-terminal-prompter.h. */
#define G_LOG_DOMAIN "eta-terminal-prompter"

#include "config.h"

#include "eta-terminal-prompter.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <glib/gi18n.h>

#include "eta-agent-error.h"

#define MAX_PIN_BYTES 256

struct _EtaTerminalPrompter
{
  GObject parent_instance;

  int fd;
  gboolean own_fd;
  GMutex one_prompt_at_a_time;
  /* An insert-token prompt waits for a token, not for the person: it gives
   * the terminal up to any PIN prompt (of another key, say) and comes back
   * after. PIN prompts waiting for the terminal, and the open token
   * prompt's way to be told, under yield_lock. */
  GMutex yield_lock;
  guint pin_prompts_waiting;
  GCancellable *token_prompt_yield;
};

static void eta_terminal_prompter_iface_init (EtaPrompterInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (EtaTerminalPrompter, eta_terminal_prompter, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (ETA_TYPE_PROMPTER,
                                                      eta_terminal_prompter_iface_init))

static void
write_text (int fd, const gchar *text)
{
  gsize left = strlen (text);
  while (left > 0)
    {
      ssize_t n = write (fd, text, left);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return;
      text += n;
      left -= (gsize) n;
    }
}

static gchar *
describe_request (EtaPinRequest *request)
{
  g_autofree gchar *short_fpr = eta_pin_request_dup_short_fingerprint (request);
  GString *text = g_string_new ("\n");

  /* TRANSLATORS: the program asking, its process id, the key's label and
   * the start of its fingerprint. */
  g_string_append_printf (text, _("ecryptfs-token-agent: %s (pid %u) needs the key \"%s\" (%s)\n"),
                          eta_pin_request_get_requester (request),
                          eta_pin_request_get_requester_pid (request),
                          eta_pin_request_get_key_label (request), short_fpr);
  g_string_append_printf (text, _("  on token \"%s\" (serial %s).\n"),
                          eta_pin_request_get_token_label (request),
                          eta_pin_request_get_token_serial (request));
  if (eta_pin_request_get_retry (request) > 0)
    g_string_append (text, _("Wrong PIN, try again.\n"));
  if (eta_pin_request_get_flags (request) & ETA_PIN_FLAG_FINAL_TRY)
    g_string_append (text, _("Final try: if this PIN is wrong, the token blocks its PIN.\n"));
  else if (eta_pin_request_get_flags (request) & ETA_PIN_FLAG_COUNT_LOW)
    g_string_append (text, _("Only a few tries are left before the token blocks its PIN.\n"));
  if (eta_pin_request_get_flags (request) & ETA_PIN_FLAG_PROTECTED_PATH)
    g_string_append_printf (text, _("Enter the PIN of %s on the reader's keypad "
                                    "(press Enter here to cancel): "),
                            eta_pin_request_get_token_label (request));
  else
    g_string_append_printf (text, _("PIN for %s (empty line cancels): "),
                            eta_pin_request_get_token_label (request));
  return g_string_free (text, FALSE);
}

/* Reads one line into @pin, waiting on the terminal and @cancellable.
 * Returns 1 for a line, 0 for an empty line or end of input, -1 on error or
 * cancellation (errno set). */
static int
read_line_or_yield (int fd, EtaSecret *pin, GCancellable *cancellable, GCancellable *yield)
{
  guint8 *data = eta_secret_get_data (pin);
  gsize len = 0;
  struct pollfd fds[3] = { { .fd = fd, .events = POLLIN } };
  int nfds = 1;

  for (GCancellable **c = (GCancellable *[]) { cancellable, yield, NULL }; *c != NULL; c++)
    {
      fds[nfds].fd = g_cancellable_get_fd (*c);
      if (fds[nfds].fd >= 0)
        fds[nfds++].events = POLLIN;
    }
  for (;;)
    {
      char c;
      ssize_t n;

      if (poll (fds, (nfds_t) nfds, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          return -1;
        }
      if (g_cancellable_is_cancelled (cancellable))
        {
          errno = ECANCELED;
          return -1;
        }
      if (g_cancellable_is_cancelled (yield))
        {
          errno = EAGAIN;
          return -1;
        }
      n = read (fd, &c, 1);
      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (n < 0)
        return -1;
      if (n == 0 || c == '\n' || c == '\r' || c == 4 /* Ctrl-D, raw mode */)
        break;
      if (len < eta_secret_get_capacity (pin))
        data[len++] = (guint8) c;
    }
  eta_secret_set_length (pin, len);
  return len > 0 ? 1 : 0;
}

static int
read_line (int fd, EtaSecret *pin, GCancellable *cancellable)
{
  return read_line_or_yield (fd, pin, cancellable, NULL);
}

/* The question after a PIN, when the request allows it: 1 for yes, 0 for
 * no (an empty line, anything else, or the prompt dismissed). Echo is on. */
static int
ask_remember (int fd, GCancellable *cancellable)
{
  g_autoptr (EtaSecret) answer = eta_secret_new (16);
  /* TRANSLATORS: the letter that answers "yes" to the question below. */
  const gchar *yes = _("y");
  gunichar first;

  /* TRANSLATORS: asked on the terminal after the PIN was typed; the person
   * answers with the letter above for yes, anything else means no. */
  write_text (fd, _("Remember this PIN in your login keyring? [y/N] "));
  if (read_line (fd, answer, cancellable) != 1)
    return 0;
  /* Whole characters: a translation's "yes" letter need not be ASCII. */
  if (!g_utf8_validate ((const gchar *) eta_secret_get_data (answer),
                        (gssize) eta_secret_get_length (answer), NULL))
    return 0;
  first = g_unichar_tolower (g_utf8_get_char ((const gchar *) eta_secret_get_data (answer)));
  return first == 'y' || first == g_unichar_tolower (g_utf8_get_char (yes));
}

typedef struct
{
  EtaTerminalPrompter *prompter;
  EtaPinRequest *request;
} PromptJob;

static void
prompt_job_free (PromptJob *job)
{
  g_object_unref (job->request);
  g_free (job);
}

static void
prompt_in_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  PromptJob *job = task_data;
  EtaTerminalPrompter *self = job->prompter;
  g_autoptr (EtaSecret) pin = eta_secret_new (MAX_PIN_BYTES);
  g_autofree gchar *text = describe_request (job->request);
  struct termios saved, quiet;
  gboolean restore = FALSE;
  int result;

  if (eta_pin_request_get_flags (job->request) & ETA_PIN_FLAG_LOCKED)
    {
      g_autofree gchar *locked = g_strdup_printf (
          _("\necryptfs-token-agent: the PIN of token \"%s\" is blocked. Unblock it with the "
            "token's PUK or security officer PIN, then try again.\n"),
          eta_pin_request_get_token_label (job->request));
      write_text (self->fd, locked);
      g_task_return_new_error (task, ETA_AGENT_ERROR, ETA_AGENT_ERROR_PIN_LOCKED,
                               "the token's PIN is blocked");
      return;
    }
  g_mutex_lock (&self->yield_lock);
  self->pin_prompts_waiting++;
  if (self->token_prompt_yield != NULL)
    g_cancellable_cancel (self->token_prompt_yield);
  g_mutex_unlock (&self->yield_lock);
  g_mutex_lock (&self->one_prompt_at_a_time);
  g_mutex_lock (&self->yield_lock);
  self->pin_prompts_waiting--;
  g_mutex_unlock (&self->yield_lock);
  /* Echo goes off before the prompt appears, so nothing typed in answer to
   * it can ever be shown. */
  if (tcgetattr (self->fd, &saved) == 0)
    {
      quiet = saved;
      quiet.c_lflag &= ~(tcflag_t) (ECHO | ECHONL);
      restore = tcsetattr (self->fd, TCSANOW, &quiet) == 0;
    }
  write_text (self->fd, text);
  result = read_line (self->fd, pin, cancellable);
  if (restore)
    tcsetattr (self->fd, TCSANOW, &saved);
  /* Dismissed by the agent (a PIN pad finished): no "Cancelled" then. */
  write_text (self->fd, result == 1 || (result < 0 && errno == ECANCELED) ? "\n"
                                                                         : _("\nCancelled.\n"));
  if (result == 1 && eta_pin_request_get_may_remember (job->request))
    eta_pin_request_set_remember (job->request, ask_remember (self->fd, cancellable) == 1);
  g_mutex_unlock (&self->one_prompt_at_a_time);

  if (result == 1)
    g_task_return_pointer (task, g_steal_pointer (&pin), (GDestroyNotify) eta_secret_unref);
  else if (result == 0 || errno == ECANCELED)
    g_task_return_new_error (task, ETA_AGENT_ERROR, ETA_AGENT_ERROR_CANCELLED,
                             "the PIN prompt was cancelled");
  else
    g_task_return_new_error (task, ETA_AGENT_ERROR, ETA_AGENT_ERROR_FAILED,
                             "cannot read the PIN from the terminal: %s", g_strerror (errno));
}

static gpointer
prompt_thread (gpointer data)
{
  g_autoptr (GTask) task = data;
  prompt_in_thread (task, g_task_get_source_object (task), g_task_get_task_data (task),
                    g_task_get_cancellable (task));
  return NULL;
}

static void
eta_terminal_prompter_request_pin_async (EtaPrompter *prompter, EtaPinRequest *request,
                                         GCancellable *cancellable,
                                         GAsyncReadyCallback callback, gpointer user_data)
{
  EtaTerminalPrompter *self = ETA_TERMINAL_PROMPTER (prompter);
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  PromptJob *job = g_new0 (PromptJob, 1);

  g_task_set_source_tag (task, eta_terminal_prompter_request_pin_async);
  job->prompter = self;
  job->request = g_object_ref (request);
  g_task_set_task_data (task, job, (GDestroyNotify) prompt_job_free);
  /* A thread of its own, not GTask's pool: the pool may be full of unwraps
   * that wait for this very prompt. Cancellation is seen by poll() on the
   * cancellable's fd. */
  g_thread_unref (g_thread_new ("pin-prompt", prompt_thread, g_steal_pointer (&task)));
}

static EtaSecret *
eta_terminal_prompter_request_pin_finish (EtaPrompter *prompter, GAsyncResult *result,
                                          GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, prompter), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Insert-token: the line read waits on the terminal and on @dismiss; a line
 * or end of input means the person cancels. */
static void
ask_for_token_in_thread (GTask *task, gpointer source, gpointer task_data,
                         GCancellable *dismiss)
{
  PromptJob *job = task_data;
  EtaTerminalPrompter *self = job->prompter;
  g_autoptr (EtaSecret) line = eta_secret_new (MAX_PIN_BYTES);
  g_autofree gchar *short_fpr = eta_pin_request_dup_short_fingerprint (job->request);
  g_autofree gchar *text = NULL;
  gboolean dismissed = FALSE;
  int result;

  /* TRANSLATORS: the program asking, its process id, the key's label, the
   * start of its fingerprint and the token's label. */
  text = g_strdup_printf (_("\necryptfs-token-agent: %s (pid %u) needs the key \"%s\" (%s).\n"
                            "Insert the token \"%s\" that holds it (press Enter to cancel): "),
                          eta_pin_request_get_requester (job->request),
                          eta_pin_request_get_requester_pid (job->request),
                          eta_pin_request_get_key_label (job->request), short_fpr,
                          eta_pin_request_get_token_label (job->request));
  for (;;)
    {
      g_autoptr (GCancellable) yield = g_cancellable_new ();
      gboolean pin_prompts_first;

      g_mutex_lock (&self->one_prompt_at_a_time);
      g_mutex_lock (&self->yield_lock);
      pin_prompts_first = self->pin_prompts_waiting > 0;
      if (!pin_prompts_first)
        self->token_prompt_yield = yield;
      g_mutex_unlock (&self->yield_lock);
      if (pin_prompts_first)
        {
          /* Let the PIN prompts have the terminal; look again shortly, or
           * end when dismissed meanwhile. */
          g_mutex_unlock (&self->one_prompt_at_a_time);
          if (g_cancellable_is_cancelled (dismiss))
            {
              dismissed = TRUE;
              break;
            }
          g_usleep (50 * 1000);
          continue;
        }
      write_text (self->fd, text);
      result = read_line_or_yield (self->fd, line, dismiss, yield);
      g_mutex_lock (&self->yield_lock);
      self->token_prompt_yield = NULL;
      g_mutex_unlock (&self->yield_lock);
      if (result < 0 && errno == EAGAIN)
        {
          write_text (self->fd, _("\n(Still waiting for the token; first another prompt.)\n"));
          g_mutex_unlock (&self->one_prompt_at_a_time);
          continue;
        }
      dismissed = result < 0 && errno == ECANCELED;
      if (dismissed)
        write_text (self->fd, eta_pin_request_get_token_found (job->request)
                                ? _("\nToken found.\n")
                                : _("\nNo longer waiting for the token.\n"));
      else
        write_text (self->fd, _("\nCancelled.\n"));
      g_mutex_unlock (&self->one_prompt_at_a_time);
      break;
    }

  if (dismissed)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_new_error (task, ETA_AGENT_ERROR, ETA_AGENT_ERROR_CANCELLED,
                             "the insert-token prompt was cancelled");
}

static gpointer
ask_for_token_thread (gpointer data)
{
  g_autoptr (GTask) task = data;
  ask_for_token_in_thread (task, g_task_get_source_object (task), g_task_get_task_data (task),
                           g_task_get_cancellable (task));
  return NULL;
}

static void
eta_terminal_prompter_ask_for_token_async (EtaPrompter *prompter, EtaPinRequest *request,
                                           GCancellable *dismiss, GAsyncReadyCallback callback,
                                           gpointer user_data)
{
  EtaTerminalPrompter *self = ETA_TERMINAL_PROMPTER (prompter);
  g_autoptr (GTask) task = g_task_new (self, dismiss, callback, user_data);
  PromptJob *job = g_new0 (PromptJob, 1);

  g_task_set_source_tag (task, eta_terminal_prompter_ask_for_token_async);
  g_task_set_check_cancellable (task, FALSE);
  job->prompter = self;
  job->request = g_object_ref (request);
  g_task_set_task_data (task, job, (GDestroyNotify) prompt_job_free);
  g_thread_unref (g_thread_new ("token-prompt", ask_for_token_thread, g_steal_pointer (&task)));
}

static gboolean
eta_terminal_prompter_ask_for_token_finish (EtaPrompter *prompter, GAsyncResult *result,
                                            GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
eta_terminal_prompter_iface_init (EtaPrompterInterface *iface)
{
  iface->request_pin_async = eta_terminal_prompter_request_pin_async;
  iface->request_pin_finish = eta_terminal_prompter_request_pin_finish;
  iface->ask_for_token_async = eta_terminal_prompter_ask_for_token_async;
  iface->ask_for_token_finish = eta_terminal_prompter_ask_for_token_finish;
}

static void
eta_terminal_prompter_finalize (GObject *object)
{
  EtaTerminalPrompter *self = ETA_TERMINAL_PROMPTER (object);

  if (self->own_fd)
    close (self->fd);
  g_mutex_clear (&self->one_prompt_at_a_time);
  g_mutex_clear (&self->yield_lock);
  G_OBJECT_CLASS (eta_terminal_prompter_parent_class)->finalize (object);
}

static void
eta_terminal_prompter_class_init (EtaTerminalPrompterClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = eta_terminal_prompter_finalize;
}

static void
eta_terminal_prompter_init (EtaTerminalPrompter *self)
{
  g_mutex_init (&self->one_prompt_at_a_time);
  g_mutex_init (&self->yield_lock);
  self->fd = -1;
}

EtaTerminalPrompter *
eta_terminal_prompter_new (GError **error)
{
  g_autoptr (EtaTerminalPrompter) self = g_object_new (ETA_TYPE_TERMINAL_PROMPTER, NULL);

  self->fd = open ("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  self->own_fd = self->fd >= 0;
  if (self->fd < 0 && isatty (STDIN_FILENO))
    self->fd = STDIN_FILENO;
  if (self->fd < 0)
    {
      g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_FAILED,
                   "no terminal to ask for PINs on (no controlling terminal, and "
                   "standard input is not a terminal)");
      return NULL;
    }
  return g_steal_pointer (&self);
}

/* See eta-token-manager.h. */
#define G_LOG_DOMAIN "eta-token-manager"

#include "config.h"

#include "eta-token-manager.h"

#include <dlfcn.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gi18n.h>
#include <pkcs11-helper-1.0/pkcs11h-certificate.h>
#include <pkcs11-helper-1.0/pkcs11h-core.h>
#include <pkcs11-helper-1.0/pkcs11h-token.h>

#include "eta-agent-error.h"
#include "eta-epoch-cache.h"
#include "eta-mount-table.h"
#include "eta-pin-store.h"
#include "eta-prompt-handoff.h"
#include "eta-token-session.h"

/* pkcs11-helper's own retry loop: the person gets this many tries per unwrap. */
#define MAX_LOGIN_TRIES 3
/* How often to look for an inserted token while the insert prompt shows:
 * more often than the slot events below, as a person is waiting. */
#define ETA_TOKEN_POLL_MS 500
/* The longest a PIN prompt stays open unanswered: as long as the key module
 * keeps later opens from queueing behind it (PROMPT_PENDING_US there). */
#define ETA_PIN_PROMPT_MAX_MS (120 * 1000)
/* How often a prompt's waiter looks whether its caller is still there. */
#define ETA_PROMPT_CHECK_MS 200

typedef struct
{
  gchar *label;
  gchar *serial;
  gboolean logged_in;
  /* Requests numbered up to this one waited on a prompt that was cancelled:
   * they fail too instead of prompting again. */
  guint64 cancelled_through;
  /* Its remembered PIN was refused in this run: never fed again, even if
   * it could not be deleted, until the person remembers a new one. */
  gboolean remembered_pin_rejected;
  /* One operation at a time per token: pkcs11-helper shares one session per
   * token between keys, and its session lock cannot cover the login. */
  GMutex operation_lock;
  /* The agent's own sessions (eta-token-session.h), opened on first use:
   * decrypts in one, under operation_lock; a cached epoch key's "still
   * logged in?" look in the other, under probe_lock, so that it never waits
   * for a slow decrypt or a PIN prompt. */
  EtaTokenSession *decrypt_session;
  GMutex probe_lock;
  EtaTokenSession *probe_session;
  /* Names the token in the epoch cache. */
  guint number;
  /* An "unwrapped" signal is on its way to the main thread: uses meanwhile
   * ride on it (a folder read makes one per file). Atomic. */
  gint unwrap_announced;
} TokenState;

/* What pkcs11-helper's slot-event thread calls back with. It may fire while
 * the manager is being finalised, so it holds only a weak reference. */
typedef struct
{
  GWeakRef manager;
  GMainContext *main_context;
} SlotWatch;

struct _EtaTokenManager
{
  GObject parent_instance;

  EtaPrompter *prompter;
  GMainContext *main_context;
  GStrv providers;           /* the ones that loaded */
  gint allow_remember_pin;   /* atomic */

  GMutex lock;               /* guards the fields below */
  GPtrArray *keys;           /* EtaTokenKey from the last enumeration, or NULL */
  GHashTable *certificates;  /* "fingerprint token-identity" → pkcs11h_certificate_t */
  GHashTable *token_states;  /* token identity → TokenState */
  guint64 last_sequence;
  guint last_token_number;

  /* Recovered epoch keys, each bound to its token's login. */
  EtaEpochCache *epoch_cache;

  /* Token operations wait for PINs and for each other; they get a pool of
   * their own so they never starve GTask's shared pool. */
  GThreadPool *workers;

  /* Enumerating (which may reload pkcs11-helper's per-session object caches)
   * and logging out take it exclusively; token operations share it. */
  GRWLock pkcs11_lock;
  GMutex first_enumeration;

  /* Insert-token prompts, one per key at a time (fingerprint as asked →
   * InsertState, under lock); insert_prompt_ended is signalled when one
   * closes. */
  GHashTable *insert_states;
  GCond insert_prompt_ended;

  /* Token events: pkcs11-helper's thread calls back through slot_watch; the
   * tokens present at the last look (identity → pkcs11h_token_id_t, NULL
   * before the first look), one look at a time under scan_lock. */
  SlotWatch *slot_watch;
  GMutex scan_lock;
  GHashTable *present_tokens;
};

G_DEFINE_FINAL_TYPE (EtaTokenManager, eta_token_manager, G_TYPE_OBJECT)

enum { SIGNAL_TOKEN_STATE_CHANGED, SIGNAL_UNWRAPPED, N_SIGNALS };
static guint signals[N_SIGNALS];

/* The unwrap a worker thread is doing, for the PIN hook, which pkcs11-helper
 * calls on that same thread with no way to pass per-call data. */
typedef struct
{
  guint64 sequence;
  EtaTokenKey *key;
  const EtaRequester *requester;
  GCancellable *caller_gone;
  gboolean logged_in_phase_done;
  gboolean relogin_refused;
  GError *prompt_error;
  /* Remembered PINs: the keyring is asked once per request, and its PIN
   * fed at most once; a PIN the person chose to remember waits here until
   * the token has taken it. */
  gboolean keyring_asked;
  gboolean keyring_answers;
  gboolean remembered_pin_fed;
  EtaSecret *pin_to_remember;
} UnwrapContext;

static GPrivate current_unwrap;

static void
token_state_free (TokenState *state)
{
  eta_token_session_free (state->decrypt_session);
  eta_token_session_free (state->probe_session);
  g_mutex_clear (&state->probe_lock);
  g_mutex_clear (&state->operation_lock);
  g_free (state->label);
  g_free (state->serial);
  g_free (state);
}

static gchar *
token_identity (const pkcs11h_token_id_t token)
{
  return g_strdup_printf ("%s/%s/%s/%s", token->manufacturerID, token->model,
                          token->serialNumber, token->label);
}

/* Called with self->lock held. */
static TokenState *
token_state_lookup (EtaTokenManager *self, const pkcs11h_token_id_t token)
{
  g_autofree gchar *identity = token_identity (token);
  TokenState *state = g_hash_table_lookup (self->token_states, identity);

  if (state == NULL)
    {
      state = g_new0 (TokenState, 1);
      g_mutex_init (&state->operation_lock);
      g_mutex_init (&state->probe_lock);
      state->number = ++self->last_token_number;
      state->label = g_strstrip (g_strdup (token->label));
      state->serial = g_strstrip (g_strdup (token->serialNumber));
      g_hash_table_insert (self->token_states, g_steal_pointer (&identity), state);
    }
  return state;
}

/* A signal about a token, sent from a worker thread to the main thread. */
typedef struct
{
  EtaTokenManager *self;
  guint signal;
  gchar *label;
  gchar *serial;
  const gchar *state;   /* token-state-changed only */
  TokenState *token;    /* lives as long as the manager, which the event holds */
} TokenSignal;

static gboolean
emit_token_signal (gpointer data)
{
  TokenSignal *event = data;

  /* Without the manager's lock: a main-thread sender holds it. */
  if (event->signal == signals[SIGNAL_UNWRAPPED])
    g_atomic_int_set (&event->token->unwrap_announced, FALSE);
  if (event->signal == signals[SIGNAL_TOKEN_STATE_CHANGED])
    g_signal_emit (event->self, event->signal, 0, event->label, event->serial, event->state);
  else
    g_signal_emit (event->self, event->signal, 0, event->label, event->serial);
  g_object_unref (event->self);
  g_free (event->label);
  g_free (event->serial);
  g_free (event);
  return G_SOURCE_REMOVE;
}

/* Called with self->lock held; the signal goes out on the main thread. */
static void
send_token_signal (EtaTokenManager *self, TokenState *state, guint signal,
                   const gchar *state_name)
{
  TokenSignal *event = g_new0 (TokenSignal, 1);

  event->self = g_object_ref (self);
  event->signal = signal;
  event->label = g_strdup (state->label);
  event->serial = g_strdup (state->serial);
  event->state = state_name;
  event->token = state;
  g_main_context_invoke (self->main_context, emit_token_signal, event);
}

/* Called with self->lock held. */
static void
set_logged_in (EtaTokenManager *self, TokenState *state, gboolean logged_in)
{
  /* An epoch key is as good as the login: it goes with it, even when the
   * agent had not noticed the login (a lock right after start). */
  if (!logged_in)
    eta_epoch_cache_forget_token (self->epoch_cache, state->number);
  if (state->logged_in == logged_in)
    return;
  state->logged_in = logged_in;
  send_token_signal (self, state, signals[SIGNAL_TOKEN_STATE_CHANGED],
                     logged_in ? "logged-in" : "locked");
}

/* Called with self->lock held: a key on this token was just used (the
 * policy's idle timeout counts from here). */
static void
announce_unwrap (EtaTokenManager *self, TokenState *state)
{
  if (!g_atomic_int_compare_and_exchange (&state->unwrap_announced, FALSE, TRUE))
    return;
  send_token_signal (self, state, signals[SIGNAL_UNWRAPPED], NULL);
}

/* ---- the PIN hook: a worker thread waits while the main thread prompts ---- */

/* pkcs11-helper does not show a token's flags; ask the providers directly
 * (eta-token-session.h: the modules pkcs11-helper loaded). */
static EtaPinFlags
read_pin_flags (EtaTokenManager *self, const pkcs11h_token_id_t token)
{
  EtaPinFlags flags = ETA_PIN_FLAG_NONE;
  CK_FUNCTION_LIST_PTR functions;
  CK_TOKEN_INFO info;
  CK_SLOT_ID slot;

  if (!eta_token_slot_find ((const gchar * const *) self->providers, token->serialNumber,
                            token->label, &functions, &slot, &info))
    return flags;
  if (info.flags & CKF_USER_PIN_COUNT_LOW)
    flags |= ETA_PIN_FLAG_COUNT_LOW;
  if (info.flags & CKF_USER_PIN_FINAL_TRY)
    flags |= ETA_PIN_FLAG_FINAL_TRY;
  if (info.flags & CKF_USER_PIN_LOCKED)
    flags |= ETA_PIN_FLAG_LOCKED;
  if (info.flags & CKF_PROTECTED_AUTHENTICATION_PATH)
    flags |= ETA_PIN_FLAG_PROTECTED_PATH;
  return flags;
}

/* -- remembered PINs: looked up and deleted from the worker with a bounded
 * wait, stored in the background once the token took the PIN -- */

enum { PROP_0, PROP_ALLOW_REMEMBER_PIN, N_PROPS };

void
eta_token_manager_set_allow_remember_pin (EtaTokenManager *self, gboolean allow)
{
  g_return_if_fail (ETA_IS_TOKEN_MANAGER (self));
  if (g_atomic_int_exchange (&self->allow_remember_pin, allow ? 1 : 0) != (allow ? 1 : 0))
    g_object_notify (G_OBJECT (self), "allow-remember-pin");
}

gboolean
eta_token_manager_get_allow_remember_pin (EtaTokenManager *self)
{
  g_return_val_if_fail (ETA_IS_TOKEN_MANAGER (self), FALSE);
  return g_atomic_int_get (&self->allow_remember_pin) != 0;
}

static void
eta_token_manager_set_property (GObject *object, guint prop_id, const GValue *value,
                                GParamSpec *pspec)
{
  if (prop_id == PROP_ALLOW_REMEMBER_PIN)
    eta_token_manager_set_allow_remember_pin (ETA_TOKEN_MANAGER (object),
                                              g_value_get_boolean (value));
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
eta_token_manager_get_property (GObject *object, guint prop_id, GValue *value,
                                GParamSpec *pspec)
{
  if (prop_id == PROP_ALLOW_REMEMBER_PIN)
    g_value_set_boolean (value,
                         eta_token_manager_get_allow_remember_pin (ETA_TOKEN_MANAGER (object)));
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static EtaPinStoreToken
pin_store_token (const pkcs11h_token_id_t token)
{
  EtaPinStoreToken store_token = { token->manufacturerID, token->model, token->serialNumber,
                                   token->label };
  return store_token;
}

typedef void (*PinStoreCall) (const EtaPinStoreToken *token, guint timeout_ms,
                              GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data);

static void
on_pin_store_answered (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* Worker thread: runs a lookup or delete in a main context of its own and
 * waits for it; the call's timeout bounds the wait. */
static GAsyncResult *
run_pin_store_call (PinStoreCall call, const pkcs11h_token_id_t token)
{
  g_autoptr (GMainContext) context = g_main_context_new ();
  EtaPinStoreToken store_token = pin_store_token (token);
  GAsyncResult *result = NULL;

  g_main_context_push_thread_default (context);
  call (&store_token, ETA_PIN_STORE_TIMEOUT_MS, NULL, on_pin_store_answered, &result);
  while (result == NULL)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);
  return result;
}

/* Worker thread: the remembered PIN to feed before prompting, or NULL. The
 * keyring is asked once per request, which also says whether the prompt
 * may offer to remember; its PIN goes only into a first try, on a token
 * that does not warn of a final try, and never twice in a run once refused. */
static EtaSecret *
take_remembered_pin (EtaTokenManager *self, UnwrapContext *context,
                     const pkcs11h_token_id_t token, unsigned retry, EtaPinFlags flags)
{
  g_autoptr (GAsyncResult) result = NULL;
  g_autoptr (EtaSecret) pin = NULL;
  g_autoptr (GError) error = NULL;
  gboolean rejected;

  if (context->keyring_asked || !eta_token_manager_get_allow_remember_pin (self)
      || (flags & (ETA_PIN_FLAG_LOCKED | ETA_PIN_FLAG_PROTECTED_PATH)))
    return NULL;
  context->keyring_asked = TRUE;
  result = run_pin_store_call (eta_pin_store_lookup_async, token);
  pin = eta_pin_store_lookup_finish (result, &error);
  context->keyring_answers = error == NULL;
  if (error != NULL)
    g_debug ("%s: no remembered PIN for token %s: %s", G_STRFUNC, token->label, error->message);
  g_mutex_lock (&self->lock);
  rejected = token_state_lookup (self, token)->remembered_pin_rejected;
  g_mutex_unlock (&self->lock);
  /* COUNT_LOW too: a stale PIN whose deletion failed would otherwise cost a
   * try at each start, on tokens that never report the final try. */
  if (pin == NULL || retry > 0 || rejected
      || (flags & (ETA_PIN_FLAG_FINAL_TRY | ETA_PIN_FLAG_COUNT_LOW)))
    return NULL;
  return g_steal_pointer (&pin);
}

/* Worker thread: the token refused the remembered PIN. */
static void
forget_remembered_pin (EtaTokenManager *self, const pkcs11h_token_id_t token)
{
  g_autoptr (GAsyncResult) result = NULL;
  g_autoptr (GError) error = NULL;

  g_mutex_lock (&self->lock);
  token_state_lookup (self, token)->remembered_pin_rejected = TRUE;
  g_mutex_unlock (&self->lock);
  result = run_pin_store_call (eta_pin_store_delete_async, token);
  if (eta_pin_store_delete_finish (result, &error) < 0)
    g_message ("token %s refused its remembered PIN, which could not be forgotten: %s",
               token->label, error->message);
  else
    g_message ("token %s refused its remembered PIN; it is forgotten", token->label);
}

typedef struct
{
  GWeakRef manager;
  gchar *identity;
  gchar *label;
} StorePinCall;

/* Main thread. */
static void
on_pin_stored (GObject *source, GAsyncResult *result, gpointer user_data)
{
  StorePinCall *call = user_data;
  g_autoptr (EtaTokenManager) self = g_weak_ref_get (&call->manager);
  g_autoptr (GError) error = NULL;

  if (!eta_pin_store_store_finish (result, &error))
    g_message ("the PIN of token %s could not be remembered: %s", call->label, error->message);
  else if (self != NULL)
    {
      TokenState *state;

      g_mutex_lock (&self->lock);
      state = g_hash_table_lookup (self->token_states, call->identity);
      if (state != NULL)
        state->remembered_pin_rejected = FALSE;
      g_mutex_unlock (&self->lock);
      g_message ("remembered the PIN of token %s in the login keyring", call->label);
    }
  g_weak_ref_clear (&call->manager);
  g_free (call->identity);
  g_free (call->label);
  g_free (call);
}

/* Worker thread, right after a login attempt of a request (@rv): the PIN
 * the person chose to remember is stored once the token took it; a
 * remembered PIN the token refused without asking again is forgotten. */
static void
remembered_pin_after_login (EtaTokenManager *self, UnwrapContext *context,
                            const pkcs11h_token_id_t token, CK_RV rv)
{
  g_autoptr (EtaSecret) pin = g_steal_pointer (&context->pin_to_remember);
  EtaPinStoreToken store_token = pin_store_token (token);
  StorePinCall *call;

  if (context->remembered_pin_fed
      && (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE
          || rv == CKR_PIN_LOCKED))
    forget_remembered_pin (self, token);
  context->remembered_pin_fed = FALSE;
  if (pin == NULL || rv != CKR_OK)
    return;
  call = g_new0 (StorePinCall, 1);
  g_weak_ref_init (&call->manager, self);
  call->identity = token_identity (token);
  call->label = g_strdup (token->label);
  /* The answer comes on the main thread; nothing waits for it. */
  eta_pin_store_store_async (&store_token, pin, ETA_PIN_STORE_TIMEOUT_MS, NULL, on_pin_stored,
                             call);
}

/* Waits for @prompt to end by itself: TRUE then. FALSE when @until
 * (monotonic µs, 0: no bound) passed or the caller went away first; the
 * prompt is dismissed then, so that it holds up no later prompt. */
static gboolean
wait_for_prompt (EtaPromptHandoff *prompt, gint64 until, GCancellable *caller_gone)
{
  for (;;)
    {
      gint64 step = g_get_monotonic_time () + ETA_PROMPT_CHECK_MS * 1000;

      if (eta_prompt_handoff_wait (prompt, until > 0 ? MIN (step, until) : step))
        return TRUE;
      if ((until > 0 && g_get_monotonic_time () >= until)
          || g_cancellable_is_cancelled (caller_gone))
        {
          eta_prompt_handoff_dismiss (prompt);
          return FALSE;
        }
    }
}

static PKCS11H_BOOL
on_pin_prompt (void *global_data, void *user_data, const pkcs11h_token_id_t token,
               const unsigned retry, char *const pin, const size_t pin_max)
{
  EtaTokenManager *self = global_data;
  UnwrapContext *context = g_private_get (&current_unwrap);
  g_autoptr (EtaPinRequest) request = NULL;
  g_autoptr (EtaSecret) typed = NULL;
  g_autoptr (GError) prompt_error = NULL;
  g_autoptr (EtaSecret) remembered = NULL;
  EtaPromptHandoff *prompt;
  gboolean waited_on_cancelled;
  EtaPinFlags flags;
  gsize len;

  /* Enumerations and lock never prompt. */
  if (context == NULL)
    return FALSE;

  /* pkcs11-helper logs in again by itself after a failed operation; the
   * person already answered for this request, so do not ask twice. */
  if (context->logged_in_phase_done)
    {
      context->relogin_refused = TRUE;
      return FALSE;
    }

  g_mutex_lock (&self->lock);
  waited_on_cancelled = context->sequence <= token_state_lookup (self, token)->cancelled_through;
  g_mutex_unlock (&self->lock);
  if (waited_on_cancelled)
    {
      g_set_error (&context->prompt_error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_CANCELLED,
                   "the PIN prompt for token %s was cancelled", token->label);
      return FALSE;
    }
  if (!context->requester->interactive)
    {
      g_set_error (&context->prompt_error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_LOCKED,
                   "token %s needs its PIN and the caller asked not to be prompted",
                   token->label);
      return FALSE;
    }

  /* Called again: the PIN just fed was wrong. */
  g_clear_pointer (&context->pin_to_remember, eta_secret_unref);
  if (context->remembered_pin_fed)
    {
      context->remembered_pin_fed = FALSE;
      forget_remembered_pin (self, token);
    }
  flags = read_pin_flags (self, token);
  remembered = take_remembered_pin (self, context, token, retry, flags);
  if (remembered != NULL && eta_secret_get_length (remembered) + 1 <= pin_max)
    {
      memcpy (pin, eta_secret_get_data (remembered), eta_secret_get_length (remembered));
      pin[eta_secret_get_length (remembered)] = '\0';
      context->remembered_pin_fed = TRUE;
      return TRUE;
    }

  if (self->prompter == NULL)
    {
      g_set_error (&context->prompt_error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_FAILED,
                   "token %s needs its PIN, and the agent has no way to ask for it "
                   "(no display and no terminal)", token->label);
      return FALSE;
    }

  request = eta_pin_request_new (eta_token_key_get_token_label (context->key),
                                 eta_token_key_get_token_serial (context->key),
                                 eta_token_key_get_label (context->key),
                                 eta_token_key_get_fingerprint (context->key),
                                 context->requester->requester, context->requester->pid, retry);
  {
    g_auto (GStrv) mounts = eta_mount_table_mounts_for_sig (NULL,
                                                            eta_token_key_get_sig (context->key));
    eta_pin_request_set_mounts (request, (const gchar * const *) mounts);
  }
  eta_pin_request_set_flags (request, flags);
  eta_pin_request_set_may_remember (request, context->keyring_answers);
  prompt = eta_prompt_handoff_start (self->main_context, self->prompter,
                                     ETA_PROMPT_HANDOFF_PIN, request);
  if (wait_for_prompt (prompt, g_get_monotonic_time () + (gint64) ETA_PIN_PROMPT_MAX_MS * 1000,
                       context->caller_gone))
    {
      typed = eta_prompt_handoff_take_pin (prompt);
      prompt_error = eta_prompt_handoff_take_error (prompt);
    }
  else if (g_cancellable_is_cancelled (context->caller_gone))
    g_set_error (&prompt_error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_TIMED_OUT,
                 "the PIN prompt for token %s was closed: its caller went away", token->label);
  else
    g_set_error (&prompt_error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_TIMED_OUT,
                 "nobody answered the PIN prompt for token %s within %u s", token->label,
                 ETA_PIN_PROMPT_MAX_MS / 1000);
  eta_prompt_handoff_free (prompt);

  if (typed == NULL && (eta_pin_request_get_flags (request) & ETA_PIN_FLAG_LOCKED))
    {
      /* Whatever the dialog answered, the reason is the blocked PIN. */
      g_clear_error (&prompt_error);
      g_set_error (&prompt_error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_PIN_LOCKED,
                   "the PIN of token %s is blocked; unblock it with the PUK or SO PIN",
                   eta_token_key_get_token_label (context->key));
    }
  if (typed == NULL)
    {
      if (g_error_matches (prompt_error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_CANCELLED))
        {
          g_mutex_lock (&self->lock);
          token_state_lookup (self, token)->cancelled_through = self->last_sequence;
          g_mutex_unlock (&self->lock);
        }
      g_clear_error (&context->prompt_error);
      context->prompt_error = g_steal_pointer (&prompt_error);
      return FALSE;
    }

  len = eta_secret_get_length (typed);
  if (len + 1 > pin_max)
    {
      g_set_error (&context->prompt_error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_PIN_INCORRECT,
                   "the PIN is longer than the token accepts");
      return FALSE;
    }
  memcpy (pin, eta_secret_get_data (typed), len);
  pin[len] = '\0';
  if (eta_pin_request_get_remember (request))
    context->pin_to_remember = g_steal_pointer (&typed);
  return TRUE;
}

static PKCS11H_BOOL
on_token_prompt (void *global_data, void *user_data, const pkcs11h_token_id_t token,
                 const unsigned retry)
{
  /* The insert-token dialog belongs to the UI; until then, fail at once. */
  return FALSE;
}

static void
on_pkcs11h_log (void *global_data, unsigned flags, const char *format, va_list args)
{
  g_autofree gchar *message = g_strdup_vprintf (format, args);
  g_debug ("pkcs11-helper: %s", message);
}

/* ---- worker threads ---- */

typedef void (*WorkerFunc) (GTask *task, gpointer source, gpointer data,
                            GCancellable *cancellable);

static void
run_worker_job (gpointer job, gpointer user_data)
{
  g_autoptr (GTask) task = job;
  WorkerFunc func = g_object_get_data (G_OBJECT (task), "eta-worker-func");

  func (task, g_task_get_source_object (task), g_task_get_task_data (task),
        g_task_get_cancellable (task));
}

static void
run_in_worker (EtaTokenManager *self, GTask *task, WorkerFunc func)
{
  g_object_set_data (G_OBJECT (task), "eta-worker-func", func);
  g_thread_pool_push (self->workers, g_object_ref (task), NULL);
}

/* ---- key enumeration ---- */

/* Worker thread. Replaces self->keys with what the tokens show now. */
static gboolean
refresh_keys (EtaTokenManager *self, unsigned method, GError **error)
{
  pkcs11h_certificate_id_list_t certificates = NULL;
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func (g_object_unref);
  CK_RV rv;

  g_rw_lock_writer_lock (&self->pkcs11_lock);
  rv = pkcs11h_certificate_enumCertificateIds (method, NULL, 0, NULL, &certificates);
  g_rw_lock_writer_unlock (&self->pkcs11_lock);
  if (rv != CKR_OK)
    {
      eta_agent_error_set_from_ckr (error, rv, "listing the certificates on the tokens");
      return FALSE;
    }
  for (pkcs11h_certificate_id_list_t item = certificates; item != NULL; item = item->next)
    {
      EtaTokenKey *key = eta_token_key_new_from_certificate (item->certificate_id);
      if (key != NULL)
        g_ptr_array_add (keys, key);
    }
  pkcs11h_certificate_freeCertificateIdList (certificates);

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->keys, g_ptr_array_unref);
  self->keys = g_steal_pointer (&keys);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

/* Worker thread. */
static EtaTokenKey *
find_key (EtaTokenManager *self, const gchar *fingerprint, GError **error)
{
  EtaTokenKey *key = NULL;
  g_autoptr (GError) local_error = NULL;
  gboolean have_keys;

  /* The first requests all arrive before any enumeration: one of them does it. */
  g_mutex_lock (&self->first_enumeration);
  g_mutex_lock (&self->lock);
  have_keys = self->keys != NULL;
  g_mutex_unlock (&self->lock);
  if (!have_keys && !refresh_keys (self, PKCS11H_ENUM_METHOD_CACHE_EXIST, error))
    {
      g_mutex_unlock (&self->first_enumeration);
      return NULL;
    }
  g_mutex_unlock (&self->first_enumeration);

  for (int attempt = 0; attempt < 2; attempt++)
    {
      g_clear_error (&local_error);
      g_mutex_lock (&self->lock);
      key = eta_token_key_find (self->keys, fingerprint, &local_error);
      if (key != NULL)
        g_object_ref (key);
      g_mutex_unlock (&self->lock);
      if (key != NULL
          || !g_error_matches (local_error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_KEY_NOT_FOUND))
        break;
      /* Not seen yet: a token may have been inserted since the last look. */
      if (attempt == 0 && !refresh_keys (self, PKCS11H_ENUM_METHOD_RELOAD, error))
        return NULL;
    }
  if (key == NULL)
    g_propagate_error (error, g_steal_pointer (&local_error));
  return key;
}

static void
list_keys_in_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  EtaTokenManager *self = source;
  GError *error = NULL;
  GPtrArray *keys;

  if (!refresh_keys (self, PKCS11H_ENUM_METHOD_RELOAD, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  g_mutex_lock (&self->lock);
  keys = g_ptr_array_ref (self->keys);
  g_mutex_unlock (&self->lock);
  g_task_return_pointer (task, keys, (GDestroyNotify) g_ptr_array_unref);
}

void
eta_token_manager_list_keys_async (EtaTokenManager *self, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, eta_token_manager_list_keys_async);
  run_in_worker (self, task, list_keys_in_thread);
}

GPtrArray *
eta_token_manager_list_keys_finish (EtaTokenManager *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
find_key_in_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  GError *error = NULL;
  EtaTokenKey *key = find_key (source, data, &error);

  if (key == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, key, g_object_unref);
}

void
eta_token_manager_find_key_async (EtaTokenManager *self, const gchar *fingerprint,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, eta_token_manager_find_key_async);
  g_task_set_task_data (task, g_strdup (fingerprint), g_free);
  run_in_worker (self, task, find_key_in_thread);
}

EtaTokenKey *
eta_token_manager_find_key_finish (EtaTokenManager *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
list_tokens_in_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  EtaTokenManager *self = source;
  pkcs11h_token_id_list_t tokens = NULL;
  g_auto (GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));
  CK_RV rv;

  /* Without the exclusive lock, as the slot scan does: enumerating tokens
   * takes only pkcs11-helper's global mutex, and waiting for the exclusive
   * lock would wait behind an open PIN prompt (status, the tray's menu). */
  rv = pkcs11h_token_enumTokenIds (PKCS11H_ENUM_METHOD_RELOAD, &tokens);
  if (rv != CKR_OK)
    {
      GError *error = NULL;
      eta_agent_error_set_from_ckr (&error, rv, "listing the tokens");
      g_task_return_error (task, error);
      return;
    }
  g_mutex_lock (&self->lock);
  for (pkcs11h_token_id_list_t item = tokens; item != NULL; item = item->next)
    {
      pkcs11h_token_id_t token = item->token_id;
      TokenState *state;

      /* An empty slot's placeholder (SoftHSM2 always shows one) is no token. */
      if (token->label[0] == '\0' && token->serialNumber[0] == '\0')
        continue;
      state = token_state_lookup (self, token);
      g_autofree gchar *manufacturer = g_strstrip (g_strdup (token->manufacturerID));
      g_autofree gchar *model = g_strstrip (g_strdup (token->model));

      g_variant_builder_open (&builder, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&builder, "{sv}", "label", g_variant_new_string (state->label));
      g_variant_builder_add (&builder, "{sv}", "serial", g_variant_new_string (state->serial));
      g_variant_builder_add (&builder, "{sv}", "manufacturer", g_variant_new_string (manufacturer));
      g_variant_builder_add (&builder, "{sv}", "model", g_variant_new_string (model));
      g_variant_builder_add (&builder, "{sv}", "state",
                             g_variant_new_string (state->logged_in ? "logged-in" : "present"));
      g_variant_builder_close (&builder);
    }
  g_mutex_unlock (&self->lock);
  pkcs11h_token_freeTokenIdList (tokens);
  g_task_return_pointer (task, g_variant_ref_sink (g_variant_builder_end (&builder)),
                         (GDestroyNotify) g_variant_unref);
}

void
eta_token_manager_list_tokens_async (EtaTokenManager *self, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, eta_token_manager_list_tokens_async);
  run_in_worker (self, task, list_tokens_in_thread);
}

GVariant *
eta_token_manager_list_tokens_finish (EtaTokenManager *self, GAsyncResult *result,
                                      GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- unwrap ---- */

typedef struct
{
  gchar *fingerprint;
  EtaPadding padding;
  GBytes *wrapped;
  gchar *requester;
  gchar *key_label;
  gchar *token_label;
  EtaRequester requester_info;
  guint64 sequence;
  EtaTokenKey *key;         /* the key used, once found */
  GCancellable *caller_gone;
  /* An epoch packet: the whole of it, its id; wrapped is then its RSA(K)
   * and padding that of RSA(K). */
  GBytes *epoch_packet;
  guint8 epoch_id[ETA_EPOCH_ID_LEN];
  /* The last decrypt ran in the agent's own session: a refusal there left
   * the login alone, so another padding may be tried without a prompt. */
  gboolean decrypted_in_own_session;
  /* The token whose kept epoch key served the unwrap (0: none), announced
   * once the result is on its way. */
  guint kept_key_token;
} UnwrapJob;

static void
unwrap_job_free (UnwrapJob *job)
{
  g_free (job->fingerprint);
  g_clear_pointer (&job->wrapped, g_bytes_unref);
  g_clear_pointer (&job->epoch_packet, g_bytes_unref);
  g_free (job->requester);
  g_free (job->key_label);
  g_free (job->token_label);
  g_clear_object (&job->key);
  g_clear_object (&job->caller_gone);
  g_free (job);
}

/* Worker thread. One certificate object per key and token, kept: it holds the
 * token session that stays logged in. */
static pkcs11h_certificate_t
get_certificate (EtaTokenManager *self, EtaTokenKey *key, GError **error)
{
  g_autofree gchar *cache_key = g_strdup_printf ("%s %s", eta_token_key_get_fingerprint (key),
                                                 eta_token_key_get_token_identity (key));
  pkcs11h_certificate_t certificate, existing;
  CK_RV rv;

  g_mutex_lock (&self->lock);
  certificate = g_hash_table_lookup (self->certificates, cache_key);
  g_mutex_unlock (&self->lock);
  if (certificate != NULL)
    return certificate;

  /* Not under self->lock: the writer lock waits for PIN prompts in
   * progress, and their PIN hook takes self->lock. */
  g_rw_lock_writer_lock (&self->pkcs11_lock);
  rv = pkcs11h_certificate_create (eta_token_key_get_certificate_id (key), NULL,
                                   PKCS11H_PROMPT_MASK_ALLOW_PIN_PROMPT,
                                   PKCS11H_PIN_CACHE_INFINITE, &certificate);
  g_rw_lock_writer_unlock (&self->pkcs11_lock);
  if (rv != CKR_OK)
    {
      eta_agent_error_set_from_ckr (error, rv, "opening the key on its token");
      return NULL;
    }
  g_mutex_lock (&self->lock);
  existing = g_hash_table_lookup (self->certificates, cache_key);
  if (existing == NULL)
    g_hash_table_insert (self->certificates, g_steal_pointer (&cache_key), certificate);
  g_mutex_unlock (&self->lock);
  if (existing == NULL)
    return certificate;
  /* Another request made one meanwhile. */
  pkcs11h_certificate_freeCertificate (certificate);
  return existing;
}

/* ---- PIN-pad readers ---- */

/* pkcs11-helper logs in on a PIN-pad reader without calling the PIN hook, so
 * the agent shows the "use the keypad" prompt itself while the login runs.
 * Worker thread; NULL when the token has no PIN pad or is logged in. */
static EtaPromptHandoff *
pin_pad_prompt_start (EtaTokenManager *self, EtaTokenKey *key, TokenState *state,
                      const UnwrapJob *job)
{
  g_autoptr (EtaPinRequest) request = NULL;
  gboolean logged_in;

  g_mutex_lock (&self->lock);
  logged_in = state->logged_in;
  g_mutex_unlock (&self->lock);
  if (logged_in || self->prompter == NULL
      || !(read_pin_flags (self, eta_token_key_get_certificate_id (key)->token_id)
           & ETA_PIN_FLAG_PROTECTED_PATH))
    return NULL;

  request = eta_pin_request_new (eta_token_key_get_token_label (key),
                                 eta_token_key_get_token_serial (key),
                                 eta_token_key_get_label (key),
                                 eta_token_key_get_fingerprint (key), job->requester,
                                 job->requester_info.pid, 0);
  eta_pin_request_set_flags (request, ETA_PIN_FLAG_PROTECTED_PATH);
  return eta_prompt_handoff_start (self->main_context, self->prompter, ETA_PROMPT_HANDOFF_PIN,
                                   request);
}

/* Closes the prompt; TRUE if the person had pressed Cancel. */
static gboolean
pin_pad_prompt_finish (EtaPromptHandoff *prompt)
{
  gboolean person_cancelled;

  eta_prompt_handoff_dismiss (prompt);
  person_cancelled = eta_prompt_handoff_person_cancelled (prompt);
  eta_prompt_handoff_free (prompt);
  return person_cancelled;
}

/* ---- waiting for a token to be inserted ---- */

typedef struct
{
  gboolean prompting;
  /* Requests for this key numbered up to this one waited on an insert
   * prompt that the person cancelled: they fail with it. */
  guint64 cancelled_through;
} InsertState;

#define MAX_INSERT_STATES 256

/* Under self->lock. */
static InsertState *
insert_state_lookup (EtaTokenManager *self, const gchar *fingerprint)
{
  InsertState *state = g_hash_table_lookup (self->insert_states, fingerprint);
  GHashTableIter iter;
  gpointer value;

  if (state != NULL)
    return state;
  /* Fingerprints come from callers: keep the table bounded. */
  if (g_hash_table_size (self->insert_states) >= MAX_INSERT_STATES)
    {
      g_hash_table_iter_init (&iter, self->insert_states);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (!((InsertState *) value)->prompting)
          g_hash_table_iter_remove (&iter);
    }
  state = g_new0 (InsertState, 1);
  g_hash_table_insert (self->insert_states, g_strdup (fingerprint), state);
  return state;
}

/* Worker thread: asks for the token and looks for the key every half second
 * until it appears, the person cancels, the wait runs out (the agent's bound
 * or the caller's deadline, whichever comes first) or the caller goes away.
 * One prompt per key at a time: later requests for the same key wait for
 * it and fail with it if the person cancels; requests for other keys do not
 * wait for it. */
static EtaTokenKey *
wait_for_token (EtaTokenManager *self, UnwrapJob *job, GError **error)
{
  g_autoptr (EtaPinRequest) request = NULL;
  EtaPromptHandoff *prompt;
  EtaTokenKey *key = NULL;
  InsertState *state;
  gint64 give_up;
  gboolean cancelled_before, person_cancelled = FALSE;

  give_up = g_get_monotonic_time () + (gint64) job->requester_info.insert_wait_ms * 1000;
  if (job->requester_info.caller_deadline > 0)
    give_up = MIN (give_up, job->requester_info.caller_deadline);

  g_mutex_lock (&self->lock);
  state = insert_state_lookup (self, job->fingerprint);
  while (state->prompting && g_get_monotonic_time () < give_up
         && !g_cancellable_is_cancelled (job->caller_gone))
    {
      g_cond_wait_until (&self->insert_prompt_ended, &self->lock,
                         MIN (give_up, g_get_monotonic_time () + ETA_PROMPT_CHECK_MS * 1000));
      state = insert_state_lookup (self, job->fingerprint);
    }
  if (state->prompting)
    {
      g_mutex_unlock (&self->lock);
      g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_TOKEN_ABSENT,
                   "no token holding key %.16s was inserted while the caller waited",
                   job->fingerprint);
      return NULL;
    }
  cancelled_before = job->sequence <= state->cancelled_through;
  if (!cancelled_before)
    state->prompting = TRUE;
  g_mutex_unlock (&self->lock);
  if (cancelled_before)
    {
      g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_CANCELLED,
                   "the request to insert the token was cancelled");
      return NULL;
    }

  /* It may have come while this request waited for the prompt. */
  key = find_key (self, job->fingerprint, NULL);
  if (key == NULL && g_get_monotonic_time () < give_up
      && !g_cancellable_is_cancelled (job->caller_gone))
    {
      request = eta_pin_request_new (job->token_label, "", job->key_label ? job->key_label : "",
                                     job->fingerprint, job->requester, job->requester_info.pid,
                                     0);
      prompt = eta_prompt_handoff_start (self->main_context, self->prompter,
                                         ETA_PROMPT_HANDOFF_TOKEN, request);
      while (!eta_prompt_handoff_wait (prompt, MIN (give_up, g_get_monotonic_time ()
                                                               + ETA_TOKEN_POLL_MS * 1000)))
        {
          if (refresh_keys (self, PKCS11H_ENUM_METHOD_RELOAD, NULL))
            {
              g_mutex_lock (&self->lock);
              key = eta_token_key_find (self->keys, job->fingerprint, NULL);
              if (key != NULL)
                g_object_ref (key);
              g_mutex_unlock (&self->lock);
            }
          if (key != NULL || g_get_monotonic_time () >= give_up
              || g_cancellable_is_cancelled (job->caller_gone))
            break;
        }
      eta_pin_request_set_token_found (request, key != NULL);
      eta_prompt_handoff_dismiss (prompt);
      person_cancelled = key == NULL && eta_prompt_handoff_person_cancelled (prompt);
      eta_prompt_handoff_free (prompt);
    }

  g_mutex_lock (&self->lock);
  state = insert_state_lookup (self, job->fingerprint);
  state->prompting = FALSE;
  if (person_cancelled)
    state->cancelled_through = self->last_sequence;
  g_cond_broadcast (&self->insert_prompt_ended);
  g_mutex_unlock (&self->lock);

  if (key != NULL)
    return key;
  if (person_cancelled)
    g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_CANCELLED,
                 "the request to insert the token was cancelled");
  else if (g_cancellable_is_cancelled (job->caller_gone))
    g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_TIMED_OUT,
                 "the insert-token prompt for key %.16s was closed: its caller went away",
                 job->fingerprint);
  else
    g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_TOKEN_ABSENT,
                 "no token holding key %.16s was inserted while the caller waited",
                 job->fingerprint);
  return NULL;
}

static gboolean
token_went_away (CK_RV rv)
{
  return rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_REMOVED
         || rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED
         || rv == CKR_DEVICE_ERROR || rv == CKR_SLOT_ID_INVALID;
}

/* After a token was pulled out: its certificate object holds a dead session,
 * and the key list still names it. */
static void
forget_token (EtaTokenManager *self, EtaTokenKey *key)
{
  g_autofree gchar *cache_key = g_strdup_printf ("%s %s", eta_token_key_get_fingerprint (key),
                                                 eta_token_key_get_token_identity (key));
  g_rw_lock_writer_lock (&self->pkcs11_lock);
  g_mutex_lock (&self->lock);
  g_hash_table_remove (self->certificates, cache_key);
  set_logged_in (self, token_state_lookup (self, eta_token_key_get_certificate_id (key)->token_id),
                 FALSE);
  g_mutex_unlock (&self->lock);
  g_rw_lock_writer_unlock (&self->pkcs11_lock);
}

/* After the login of a background request (an early unlock): if its
 * prompt was cancelled, only it and the requests numbered before it (which
 * waited on it) fail, not those that came after it: someone opening a file
 * now gets a prompt of their own. The token's operation lock is held, so no
 * other prompt of this token ran meanwhile. */
static void
confine_cancel (EtaTokenManager *self, TokenState *state, guint64 cancelled_before,
                guint64 sequence)
{
  g_mutex_lock (&self->lock);
  if (state->cancelled_through > sequence)
    state->cancelled_through = MAX (cancelled_before, sequence);
  g_mutex_unlock (&self->lock);
}

static gboolean
session_is_dead (CK_RV rv)
{
  return token_went_away (rv) || rv == CKR_CRYPTOKI_NOT_INITIALIZED;
}

/* Worker thread, under the token's operation lock and after the login:
 * decrypts in the agent's own session, so that a ciphertext the key refuses
 * costs nothing but the refusal; *own_session tells whether it did. Where
 * the module gives no session of its own (a module that hands out a fresh,
 * uninitialised function list per call), pkcs11-helper decrypts. */
static CK_RV
decrypt_on_token (EtaTokenManager *self, TokenState *state, EtaTokenKey *key,
                  pkcs11h_certificate_t certificate, CK_MECHANISM *mechanism, GBytes *wrapped,
                  EtaSecret *plaintext, size_t *size, gboolean *own_session)
{
  pkcs11h_certificate_id_t id = eta_token_key_get_certificate_id (key);
  CK_RV rv;

  *own_session = FALSE;
  /* A session opened before the token was pulled out stays dead after it
   * is back, though pkcs11-helper has just logged in again: open another. */
  for (int attempt = 0; attempt < 2; attempt++)
    {
      gsize len = *size;

      if (state->decrypt_session == NULL)
        state->decrypt_session = eta_token_session_open ((const gchar * const *) self->providers,
                                                         state->serial, state->label, &rv);
      if (state->decrypt_session == NULL)
        break;
      rv = eta_token_session_decrypt (state->decrypt_session, id->attrCKA_ID,
                                      id->attrCKA_ID_size, mechanism,
                                      g_bytes_get_data (wrapped, NULL),
                                      g_bytes_get_size (wrapped),
                                      eta_secret_get_data (plaintext), &len);
      if (session_is_dead (rv))
        {
          g_clear_pointer (&state->decrypt_session, eta_token_session_free);
          continue;
        }
      if (rv == CKR_USER_NOT_LOGGED_IN)
        break;
      *size = len;
      *own_session = TRUE;
      return rv;
    }

  rv = pkcs11h_certificate_lockSession (certificate);
  if (rv != CKR_OK)
    return rv;
  rv = pkcs11h_certificate_decrypt_ex (certificate, mechanism,
                                       g_bytes_get_data (wrapped, NULL),
                                       g_bytes_get_size (wrapped),
                                       eta_secret_get_data (plaintext), size);
  pkcs11h_certificate_releaseSession (certificate);
  return rv;
}

/* An epoch key another request recovered while this one waited for the
 * token's operation lock: concurrent opens of one epoch share one token
 * operation. */
static EtaSecret *
epoch_key_recovered_meanwhile (EtaTokenManager *self, const UnwrapJob *job)
{
  if (job->epoch_packet == NULL)
    return NULL;
  return eta_epoch_cache_lookup (self->epoch_cache, job->fingerprint, job->epoch_id, NULL);
}

/* One attempt on the key's token: log in (prompting when needed), then
 * decrypt job->wrapped into *plaintext_out; a job without a ciphertext only
 * logs in. *token_gone tells that the token vanished, so that the caller can
 * ask for it and try again. */
static gboolean
unwrap_once (EtaTokenManager *self, UnwrapJob *job, EtaSecret **plaintext_out,
             gboolean *token_gone, GError **error)
{
  g_autoptr (EtaTokenKey) key = NULL;
  g_autoptr (EtaSecret) plaintext = NULL;
  UnwrapContext context = { 0 };
  CK_RSA_PKCS_OAEP_PARAMS oaep = { CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0 };
  CK_MECHANISM mechanism = { CKM_RSA_PKCS, NULL, 0 };
  pkcs11h_certificate_t certificate;
  TokenState *token_state;
  EtaPromptHandoff *pin_pad;
  g_autofree gchar *what = NULL;
  GError *local_error = NULL;
  size_t size;
  gsize modulus_bytes;
  guint64 cancelled_before;
  CK_RV rv, login_rv;

  *token_gone = FALSE;
  key = find_key (self, job->fingerprint, &local_error);
  if (key == NULL && self->prompter != NULL && job->requester_info.insert_wait_ms > 0
      && g_error_matches (local_error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_KEY_NOT_FOUND))
    {
      g_clear_error (&local_error);
      key = wait_for_token (self, job, &local_error);
    }
  if (key == NULL)
    {
      g_propagate_error (error, local_error);
      return FALSE;
    }
  g_set_object (&job->key, key);
  what = g_strdup_printf ("decrypting with key %.16s (%s) on token %s",
                          eta_token_key_get_fingerprint (key), eta_token_key_get_label (key),
                          eta_token_key_get_token_label (key));

  /* RSA ciphertexts are exactly as long as the modulus; anything else would
   * only make the token fail (and pkcs11-helper log in again). */
  modulus_bytes = (eta_token_key_get_bits (key) + 7) / 8;
  if (job->wrapped != NULL && g_bytes_get_size (job->wrapped) != modulus_bytes)
    {
      g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_INVALID_ARGUMENT,
                   "the wrapped key is %zu bytes; key %.16s needs exactly %zu",
                   g_bytes_get_size (job->wrapped), eta_token_key_get_fingerprint (key),
                   modulus_bytes);
      return FALSE;
    }

  certificate = get_certificate (self, key, error);
  if (certificate == NULL)
    return FALSE;
  if (job->padding == ETA_PADDING_OAEP)
    {
      mechanism.mechanism = CKM_RSA_PKCS_OAEP;
      mechanism.pParameter = &oaep;
      mechanism.ulParameterLen = sizeof oaep;
    }

  context.sequence = job->sequence;
  context.key = key;
  context.requester = &job->requester_info;
  context.caller_gone = job->caller_gone;
  g_private_set (&current_unwrap, &context);

  if (job->wrapped != NULL)
    plaintext = eta_secret_new (modulus_bytes);
  size = modulus_bytes;
  /* Log in first (the only place a PIN is asked for), then decrypt under
   * the session lock. ensureKeyAccess takes the session lock itself, and
   * pkcs11-helper's locks are not recursive. */
  g_mutex_lock (&self->lock);
  token_state = token_state_lookup (self, eta_token_key_get_certificate_id (key)->token_id);
  g_mutex_unlock (&self->lock);
  if (!job->requester_info.interactive && !g_mutex_trylock (&token_state->operation_lock))
    {
      gboolean logged_in;

      g_mutex_lock (&self->lock);
      logged_in = token_state->logged_in;
      g_mutex_unlock (&self->lock);
      if (!logged_in)
        {
          g_private_set (&current_unwrap, NULL);
          g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_LOCKED,
                       "token %s is locked and its PIN prompt is open; not waiting for it",
                       eta_token_key_get_token_label (key));
          return FALSE;
        }
      g_mutex_lock (&token_state->operation_lock);
    }
  else if (job->requester_info.interactive)
    g_mutex_lock (&token_state->operation_lock);
  {
    EtaSecret *recovered = epoch_key_recovered_meanwhile (self, job);

    if (recovered != NULL)
      {
        g_mutex_unlock (&token_state->operation_lock);
        g_private_set (&current_unwrap, NULL);
        *plaintext_out = recovered;
        return TRUE;
      }
  }
  g_mutex_lock (&self->lock);
  cancelled_before = token_state->cancelled_through;
  g_mutex_unlock (&self->lock);
  pin_pad = job->requester_info.interactive
              ? pin_pad_prompt_start (self, key, token_state, job) : NULL;
  g_rw_lock_reader_lock (&self->pkcs11_lock);
  rv = pkcs11h_certificate_ensureKeyAccess (certificate);
  context.logged_in_phase_done = TRUE;
  if (job->requester_info.background)
    confine_cancel (self, token_state, cancelled_before, job->sequence);
  remembered_pin_after_login (self, &context, eta_token_key_get_certificate_id (key)->token_id,
                              rv);
  if (pin_pad != NULL && pin_pad_prompt_finish (pin_pad) && rv != CKR_OK)
    g_set_error (&context.prompt_error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_CANCELLED,
                 "the PIN-pad prompt was cancelled");
  login_rv = rv;
  job->decrypted_in_own_session = FALSE;
  if (rv == CKR_OK && job->wrapped != NULL)
    rv = decrypt_on_token (self, token_state, key, certificate, &mechanism, job->wrapped,
                           plaintext, &size, &job->decrypted_in_own_session);
  /* Kept before the operation lock goes, so that the requests for this
   * epoch waiting for the lock find it (epoch_key_recovered_meanwhile). */
  if (rv == CKR_OK && job->epoch_packet != NULL && size == ETA_EPOCH_KEY_LEN)
    {
      eta_secret_set_length (plaintext, size);
      g_mutex_lock (&self->lock);
      set_logged_in (self, token_state, TRUE);
      g_mutex_unlock (&self->lock);
      eta_epoch_cache_insert (self->epoch_cache, job->fingerprint, job->epoch_id,
                              token_state->number, plaintext);
    }
  g_rw_lock_reader_unlock (&self->pkcs11_lock);
  g_mutex_unlock (&token_state->operation_lock);
  g_private_set (&current_unwrap, NULL);

  if (token_went_away (rv))
    {
      g_clear_error (&context.prompt_error);
      forget_token (self, key);
      *token_gone = TRUE;
      eta_agent_error_set_from_ckr (error, rv, what);
      return FALSE;
    }

  g_mutex_lock (&self->lock);
  if (rv == CKR_OK || (login_rv == CKR_OK && job->decrypted_in_own_session))
    {
      set_logged_in (self, token_state, TRUE);
      if (job->wrapped != NULL && rv == CKR_OK)
        announce_unwrap (self, token_state);
    }
  else if (context.prompt_error != NULL || context.relogin_refused || rv == CKR_PIN_INCORRECT)
    set_logged_in (self, token_state, FALSE);
  g_mutex_unlock (&self->lock);

  if (rv != CKR_OK)
    {
      if (login_rv == CKR_OK && job->decrypted_in_own_session)
        {
          /* Refused in the agent's own session: the login stays. */
          g_clear_error (&context.prompt_error);
          g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_DECRYPT_FAILED,
                       "%s: the token could not decrypt this ciphertext with this key (%s)",
                       what, pkcs11h_getMessage (rv));
        }
      else if (context.relogin_refused)
        {
          /* The operation failed and pkcs11-helper dropped the login to
           * retry; the real cause is the ciphertext, not the PIN. */
          g_clear_error (&context.prompt_error);
          g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_DECRYPT_FAILED,
                       "%s: the token could not decrypt this ciphertext with this key", what);
        }
      else if (context.prompt_error != NULL)
        {
          g_prefix_error (&context.prompt_error, "%s: ", what);
          g_propagate_error (error, context.prompt_error);
        }
      else
        eta_agent_error_set_from_ckr (error, rv, what);
      return FALSE;
    }
  g_clear_error (&context.prompt_error);
  if (plaintext != NULL)
    eta_secret_set_length (plaintext, size);
  *plaintext_out = g_steal_pointer (&plaintext);
  return TRUE;
}

/* unwrap_once, and once more if the token was pulled out since the last
 * look: then it is asked for as if it had never been seen. */
static gboolean
unwrap_on_token (EtaTokenManager *self, UnwrapJob *job, EtaSecret **plaintext, GError **error)
{
  gboolean token_gone = FALSE;

  if (unwrap_once (self, job, plaintext, &token_gone, error))
    return TRUE;
  if (!token_gone)
    return FALSE;
  g_clear_error (error);
  refresh_keys (self, PKCS11H_ENUM_METHOD_RELOAD, NULL);
  return unwrap_once (self, job, plaintext, &token_gone, error);
}

static TokenState *
token_state_by_number (EtaTokenManager *self, guint number)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->token_states);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((TokenState *) value)->number == number)
      return value;
  return NULL;
}

/* Worker thread: whether the epoch key for this packet is kept and the
 * token it came from is still there and logged in; *@token_out gets that
 * token's number. That costs one C_GetSessionInfo, no token operation, and
 * waits for no prompt or decrypt of that token. A token found locked or
 * gone loses its epoch keys on the spot. */
static gboolean
epoch_key_is_kept (EtaTokenManager *self, const gchar *fingerprint, const guint8 *epoch_id,
                   gboolean without_waiting, guint *token_out)
{
  TokenState *state;
  guint number = 0;
  CK_RV rv;

  if (!eta_epoch_cache_contains (self->epoch_cache, fingerprint, epoch_id, &number))
    return FALSE;
  g_mutex_lock (&self->lock);
  state = token_state_by_number (self, number);
  if (state != NULL && !state->logged_in)
    {
      set_logged_in (self, state, FALSE);
      state = NULL;
    }
  g_mutex_unlock (&self->lock);
  if (state == NULL)
    return FALSE;

  if (without_waiting)
    {
      if (!g_mutex_trylock (&state->probe_lock))
        return FALSE;
      /* Opening a session is not for a caller that must not wait. */
      if (state->probe_session == NULL)
        {
          g_mutex_unlock (&state->probe_lock);
          return FALSE;
        }
    }
  else
    g_mutex_lock (&state->probe_lock);
  if (state->probe_session == NULL)
    state->probe_session = eta_token_session_open ((const gchar * const *) self->providers,
                                                   state->serial, state->label, &rv);
  rv = state->probe_session != NULL ? eta_token_session_check_login (state->probe_session)
                                    : CKR_TOKEN_NOT_PRESENT;
  if (state->probe_session != NULL && session_is_dead (rv))
    g_clear_pointer (&state->probe_session, eta_token_session_free);
  g_mutex_unlock (&state->probe_lock);

  if (rv != CKR_OK)
    {
      g_mutex_lock (&self->lock);
      set_logged_in (self, state, FALSE);
      g_mutex_unlock (&self->lock);
      g_debug ("token %s is no longer logged in (%s): its epoch keys are gone", state->label,
               pkcs11h_getMessage (rv));
      return FALSE;
    }
  *token_out = number;
  return TRUE;
}

/* The key the service names in its log and activity list, as the keys
 * were last listed: no token enumeration. */
static EtaTokenKey *
known_key (EtaTokenManager *self, const gchar *fingerprint)
{
  EtaTokenKey *key;

  g_mutex_lock (&self->lock);
  key = self->keys != NULL ? eta_token_key_find (self->keys, fingerprint, NULL) : NULL;
  if (key != NULL)
    g_object_ref (key);
  g_mutex_unlock (&self->lock);
  return key;
}

static void
announce_unwrap_on (EtaTokenManager *self, guint token)
{
  TokenState *state;

  g_mutex_lock (&self->lock);
  state = token_state_by_number (self, token);
  if (state != NULL)
    announce_unwrap (self, state);
  g_mutex_unlock (&self->lock);
}

EtaSecret *
eta_token_manager_unwrap_kept (EtaTokenManager *self, const gchar *fingerprint,
                               GBytes *wrapped, EtaTokenKey **key_out)
{
  g_autoptr (EtaSecret) payload = NULL;
  g_autoptr (EtaTokenKey) key = NULL;
  EtaEpochPacket packet;
  guint8 epoch_id[ETA_EPOCH_ID_LEN];
  gsize payload_len = 0;
  guint token;

  gboolean kept;

  if (eta_epoch_packet_parse (g_bytes_get_data (wrapped, NULL), g_bytes_get_size (wrapped),
                              &packet) != ETA_EPOCH_OK
      || eta_epoch_packet_id (&packet, epoch_id) != 0)
    return NULL;
  /* The one PKCS#11 call (C_GetSessionInfo) made only while no other call
   * of the agent's is under way: a module such as OpenSC serialises its
   * calls, and C_GetSessionInfo would wait behind a decrypt, a login or a
   * PIN-pad entry. Those that can take long (login, decrypt, listing,
   * logout) all hold this lock. */
  if (!g_rw_lock_writer_trylock (&self->pkcs11_lock))
    return NULL;
  kept = epoch_key_is_kept (self, fingerprint, epoch_id, TRUE, &token);
  g_rw_lock_writer_unlock (&self->pkcs11_lock);
  if (!kept)
    return NULL;
  key = known_key (self, fingerprint);
  if (key == NULL)
    return NULL;
  payload = eta_secret_new (packet.sealed_len);
  if (eta_epoch_cache_open (self->epoch_cache, fingerprint, epoch_id, token, &packet,
                            eta_secret_get_data (payload), &payload_len)
      != ETA_EPOCH_CACHE_OPENED)
    return NULL;
  eta_secret_set_length (payload, payload_len);
  announce_unwrap_on (self, token);
  *key_out = g_steal_pointer (&key);
  return g_steal_pointer (&payload);
}

/* Worker thread: epoch_key_is_kept, and the key it belongs to in job->key. */
static gboolean
epoch_key_is_kept_for_job (EtaTokenManager *self, UnwrapJob *job, guint *token_out)
{
  if (!epoch_key_is_kept (self, job->fingerprint, job->epoch_id, FALSE, token_out))
    return FALSE;
  /* The service names the key in its log and activity list. */
  g_clear_object (&job->key);
  job->key = find_key (self, job->fingerprint, NULL);
  return job->key != NULL;
}

/* Worker thread: the file's payload, opened with K kept in the epoch cache
 * (K never leaves it), or else with K decrypted on the token, once per
 * epoch. */
static EtaSecret *
unwrap_epoch_packet (EtaTokenManager *self, UnwrapJob *job, GError **error)
{
  g_autoptr (EtaSecret) key = NULL;
  g_autoptr (EtaSecret) payload = NULL;
  EtaEpochPacket packet;
  gsize payload_len = 0;
  gboolean opened = FALSE;
  guint token;

  if (eta_epoch_packet_parse (g_bytes_get_data (job->epoch_packet, NULL),
                              g_bytes_get_size (job->epoch_packet), &packet) != ETA_EPOCH_OK)
    g_assert_not_reached ();  /* parsed before the job started */
  payload = eta_secret_new (packet.sealed_len);

  if (epoch_key_is_kept_for_job (self, job, &token))
    switch (eta_epoch_cache_open (self->epoch_cache, job->fingerprint, job->epoch_id, token,
                                  &packet, eta_secret_get_data (payload), &payload_len))
      {
      case ETA_EPOCH_CACHE_OPENED:
        opened = TRUE;
        job->kept_key_token = token;
        break;
      case ETA_EPOCH_CACHE_REFUSED:
        goto refused;
      case ETA_EPOCH_CACHE_NOT_KEPT:
        /* Forgotten since (a lock, a logout): the token again. */
        break;
      }

  if (!opened)
    {
      if (!unwrap_on_token (self, job, &key, error))
        return NULL;
      if (eta_secret_get_length (key) != ETA_EPOCH_KEY_LEN)
        {
          g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_DECRYPT_FAILED,
                       "the epoch packet's RSA(K) holds %zu bytes, not a %d-byte epoch key",
                       eta_secret_get_length (key), ETA_EPOCH_KEY_LEN);
          return NULL;
        }
      if (eta_epoch_packet_open (&packet, eta_secret_get_data (key),
                                 eta_secret_get_data (payload), &payload_len) != 0)
        goto refused;
    }
  eta_secret_set_length (payload, payload_len);
  return g_steal_pointer (&payload);

refused:
  g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_DECRYPT_FAILED,
               "the epoch packet does not open with its epoch's key: it was changed or "
               "damaged");
  return NULL;
}

static void
unwrap_in_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  EtaTokenManager *self = source;
  UnwrapJob *job = data;
  GError *error = NULL;
  EtaSecret *plaintext = NULL;
  gboolean done;

  if (job->epoch_packet != NULL)
    {
      plaintext = unwrap_epoch_packet (self, job, &error);
      done = plaintext != NULL;
    }
  else
    {
      done = unwrap_on_token (self, job, &plaintext, &error);
      /* A plain ciphertext of another padding than the auth token says
       * (files written under another mount's options): refused in the
       * agent's own session, so trying the other one costs no prompt. */
      if (!done && job->wrapped != NULL && job->decrypted_in_own_session
          && g_error_matches (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_DECRYPT_FAILED))
        {
          GError *other_error = NULL;

          job->padding = job->padding == ETA_PADDING_OAEP ? ETA_PADDING_PKCS1
                                                          : ETA_PADDING_OAEP;
          done = unwrap_on_token (self, job, &plaintext, &other_error);
          if (done)
            {
              g_message ("key %.16s: the ciphertext opened with %s padding, not the mount's",
                         job->fingerprint, eta_padding_to_string (job->padding));
              g_clear_error (&error);
            }
          else
            g_clear_error (&other_error);
        }
    }
  if (!done)
    g_task_return_error (task, error);
  else if (plaintext == NULL)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_pointer (task, plaintext, (GDestroyNotify) eta_secret_unref);
  /* After the result: the caller waits for it, the policy's idle timer
   * does not. (The task, and so the job, live until this returns.) */
  if (job->kept_key_token != 0)
    announce_unwrap_on (self, job->kept_key_token);
}

/* An unwrap, or with @wrapped NULL a login only. */
static void
start_unwrap_job (EtaTokenManager *self, GTask *task, const gchar *fingerprint,
                  EtaPadding padding, GBytes *wrapped, const EtaRequester *requester)
{
  UnwrapJob *job;
  EtaEpochPacket packet;
  EtaEpochStatus status = ETA_EPOCH_ERROR_NOT_EPOCH;

  if (wrapped != NULL)
    status = eta_epoch_packet_parse (g_bytes_get_data (wrapped, NULL),
                                     g_bytes_get_size (wrapped), &packet);
  /* Starts with the magic but does not parse: a damaged or newer packet,
   * refused before any token use. Unless it is as long as a modulus (a
   * multiple of 64 bytes, which no epoch packet is): one plain RSA
   * ciphertext in 2^32 starts with the magic too (keymod/epoch-format.md). */
  if (status != ETA_EPOCH_OK && status != ETA_EPOCH_ERROR_NOT_EPOCH
      && g_bytes_get_size (wrapped) % 64 != 0)
    {
      g_task_return_new_error (task, ETA_AGENT_ERROR, ETA_AGENT_ERROR_DECRYPT_FAILED,
                               "not a usable epoch packet: %s",
                               eta_epoch_status_to_string (status));
      return;
    }

  job = g_new0 (UnwrapJob, 1);
  job->fingerprint = g_strdup (fingerprint);
  job->padding = padding;
  job->wrapped = wrapped ? g_bytes_ref (wrapped) : NULL;
  /* An epoch packet names its own padding; the token decrypts its RSA(K). */
  if (status == ETA_EPOCH_OK && eta_epoch_packet_id (&packet, job->epoch_id) == 0)
    {
      job->epoch_packet = g_steal_pointer (&job->wrapped);
      job->wrapped = g_bytes_new_from_bytes (job->epoch_packet,
                                             packet.rsa_ciphertext
                                               - (const guint8 *) g_bytes_get_data (
                                                 job->epoch_packet, NULL),
                                             packet.rsa_ciphertext_len);
      job->padding = packet.padding;
    }
  job->requester = g_strdup (requester && requester->requester ? requester->requester
                                                               : _("unknown program"));
  job->requester_info.requester = job->requester;
  job->requester_info.pid = requester ? requester->pid : 0;
  job->key_label = g_strdup (requester ? requester->key_label : NULL);
  job->token_label = g_strdup (requester ? requester->token_label : NULL);
  job->requester_info.key_label = job->key_label;
  job->requester_info.token_label = job->token_label;
  job->requester_info.insert_wait_ms = requester ? requester->insert_wait_ms : 0;
  job->requester_info.interactive = requester ? requester->interactive : TRUE;
  job->requester_info.background = requester ? requester->background : FALSE;
  job->requester_info.caller_deadline = requester ? requester->caller_deadline : 0;
  job->caller_gone = g_task_get_cancellable (task) ? g_object_ref (g_task_get_cancellable (task))
                                                   : g_cancellable_new ();
  /* A caller gone still gets its answer from the token operation it may be
   * in; only its prompts end early. */
  g_task_set_check_cancellable (task, FALSE);
  g_mutex_lock (&self->lock);
  job->sequence = ++self->last_sequence;
  g_mutex_unlock (&self->lock);
  g_task_set_task_data (task, job, (GDestroyNotify) unwrap_job_free);
  run_in_worker (self, task, unwrap_in_thread);
}

void
eta_token_manager_unwrap_async (EtaTokenManager *self, const gchar *fingerprint,
                                EtaPadding padding, GBytes *wrapped,
                                const EtaRequester *requester,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_return_if_fail (wrapped != NULL);
  g_task_set_source_tag (task, eta_token_manager_unwrap_async);
  start_unwrap_job (self, task, fingerprint, padding, wrapped, requester);
}

void
eta_token_manager_unlock_async (EtaTokenManager *self, const gchar *fingerprint,
                                const EtaRequester *requester, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, eta_token_manager_unlock_async);
  start_unwrap_job (self, task, fingerprint, ETA_PADDING_OAEP, NULL, requester);
}

gboolean
eta_token_manager_unlock_finish (EtaTokenManager *self, GAsyncResult *result,
                                 gchar **fingerprint_out, gchar **token_label_out,
                                 GError **error)
{
  UnwrapJob *job = g_task_get_task_data (G_TASK (result));

  if (!g_task_propagate_boolean (G_TASK (result), error))
    return FALSE;
  if (fingerprint_out != NULL)
    *fingerprint_out = g_strdup (eta_token_key_get_fingerprint (job->key));
  if (token_label_out != NULL)
    *token_label_out = g_strdup (eta_token_key_get_token_label (job->key));
  return TRUE;
}

EtaSecret *
eta_token_manager_unwrap_finish (EtaTokenManager *self, GAsyncResult *result,
                                 EtaTokenKey **key_out, GError **error)
{
  EtaSecret *secret = g_task_propagate_pointer (G_TASK (result), error);
  UnwrapJob *job = g_task_get_task_data (G_TASK (result));

  if (secret != NULL && key_out != NULL)
    *key_out = g_object_ref (job->key);
  return secret;
}

/* ---- lock ---- */

static void
lock_in_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  EtaTokenManager *self = source;
  GHashTableIter iter;
  gpointer value;
  CK_RV rv;

  g_rw_lock_writer_lock (&self->pkcs11_lock);
  rv = pkcs11h_logout ();
  g_rw_lock_writer_unlock (&self->pkcs11_lock);

  g_mutex_lock (&self->lock);
  g_hash_table_iter_init (&iter, self->token_states);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    set_logged_in (self, value, FALSE);
  g_mutex_unlock (&self->lock);
  eta_epoch_cache_forget_all (self->epoch_cache);

  if (rv != CKR_OK)
    {
      GError *error = NULL;
      eta_agent_error_set_from_ckr (&error, rv, "logging out of the tokens");
      g_task_return_error (task, error);
      return;
    }
  g_task_return_boolean (task, TRUE);
}

void
eta_token_manager_lock_async (EtaTokenManager *self, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, eta_token_manager_lock_async);
  run_in_worker (self, task, lock_in_thread);
}

gboolean
eta_token_manager_lock_finish (EtaTokenManager *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- token events ---- */

static void
free_token_id (gpointer token)
{
  pkcs11h_token_freeTokenId (token);
}

/* Worker thread, after a token was pulled out: pkcs11-helper still holds
 * its session, dead now, and counts it logged in. Logging it out (as Lock
 * does for all tokens) drops both, so that its next use opens a new session
 * and asks for the PIN again; the certificate objects stay, as after Lock,
 * since a request may hold one. Waits for operations in progress to end. */
static void
forget_removed_token (EtaTokenManager *self, pkcs11h_token_id_t token)
{
  CK_RV rv;

  g_rw_lock_writer_lock (&self->pkcs11_lock);
  rv = pkcs11h_token_logout (token);
  g_rw_lock_writer_unlock (&self->pkcs11_lock);
  if (rv != CKR_OK)
    g_debug ("%s: logging out of token %s: %s", G_STRFUNC, token->label,
             pkcs11h_getMessage (rv));
}

/* Worker thread: compares the tokens present with the last look and
 * announces the difference: "locked" (if it was logged in) and "absent" for
 * a token pulled out, "present" for one inserted. The first look only
 * learns what is there; ListTokens tells the tokens present at any time. */
static void
scan_tokens_in_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  EtaTokenManager *self = source;
  g_autoptr (GHashTable) now = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                      free_token_id);
  g_autoptr (GHashTable) gone = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                       free_token_id);
  g_autoptr (GHashTable) before = NULL;
  pkcs11h_token_id_list_t tokens = NULL;
  GHashTableIter iter;
  gpointer identity, token;
  CK_RV rv;

  g_mutex_lock (&self->scan_lock);
  /* Reads slot and token information only (under pkcs11-helper's own
   * lock): it waits for no token operation, nor for a prompt. */
  rv = pkcs11h_token_enumTokenIds (PKCS11H_ENUM_METHOD_RELOAD, &tokens);
  if (rv != CKR_OK)
    {
      g_mutex_unlock (&self->scan_lock);
      g_debug ("%s: cannot list the tokens: %s", G_STRFUNC, pkcs11h_getMessage (rv));
      g_task_return_boolean (task, FALSE);
      return;
    }
  for (pkcs11h_token_id_list_t item = tokens; item != NULL; item = item->next)
    {
      gchar *key;

      /* An empty slot's placeholder (SoftHSM2 always shows one) is no token. */
      if (item->token_id->label[0] == '\0' && item->token_id->serialNumber[0] == '\0')
        continue;
      key = token_identity (item->token_id);
      g_hash_table_replace (now, key, g_steal_pointer (&item->token_id));
    }
  pkcs11h_token_freeTokenIdList (tokens);

  before = g_steal_pointer (&self->present_tokens);
  g_mutex_lock (&self->lock);
  if (before != NULL)
    {
      g_hash_table_iter_init (&iter, before);
      while (g_hash_table_iter_next (&iter, &identity, &token))
        if (!g_hash_table_contains (now, identity))
          {
            TokenState *state = token_state_lookup (self, token);

            set_logged_in (self, state, FALSE);
            send_token_signal (self, state, signals[SIGNAL_TOKEN_STATE_CHANGED], "absent");
            g_hash_table_iter_steal (&iter);
            g_hash_table_insert (gone, identity, token);
          }
      g_hash_table_iter_init (&iter, now);
      while (g_hash_table_iter_next (&iter, &identity, &token))
        if (!g_hash_table_contains (before, identity))
          send_token_signal (self, token_state_lookup (self, token),
                             signals[SIGNAL_TOKEN_STATE_CHANGED], "present");
    }
  g_mutex_unlock (&self->lock);
  self->present_tokens = g_steal_pointer (&now);
  g_mutex_unlock (&self->scan_lock);

  g_hash_table_iter_init (&iter, gone);
  while (g_hash_table_iter_next (&iter, NULL, &token))
    forget_removed_token (self, token);
  g_task_return_boolean (task, TRUE);
}

static gboolean
start_token_scan (gpointer data)
{
  EtaTokenManager *self = data;
  g_autoptr (GTask) task = g_task_new (self, NULL, NULL, NULL);

  g_task_set_source_tag (task, start_token_scan);
  run_in_worker (self, task, scan_tokens_in_thread);
  return G_SOURCE_REMOVE;
}

/* pkcs11-helper's slot-event thread, when the slots look different (and
 * once when it starts). Nothing of pkcs11-helper may be called here: that
 * thread holds its event lock while the hook runs. So the main thread takes
 * over, and from there a worker looks at the tokens. */
static void
on_slot_event (void *global_data)
{
  SlotWatch *watch = global_data;
  EtaTokenManager *self = g_weak_ref_get (&watch->manager);
  GSource *source;

  if (self == NULL)
    return;
  source = g_idle_source_new ();
  g_source_set_callback (source, start_token_scan, self, g_object_unref);
  g_source_attach (source, watch->main_context);
  g_source_unref (source);
}

/* Starts token events: pkcs11-helper's thread looks at the slots every
 * ETA_TOKEN_SLOT_POLL_MS (see add_provider), and on a change calls
 * on_slot_event. */
static void
watch_slots (EtaTokenManager *self)
{
  const unsigned needed = PKCS11H_FEATURE_MASK_THREADING | PKCS11H_FEATURE_MASK_SLOTEVENT;
  CK_RV rv;

  if ((pkcs11h_getFeatures () & needed) != needed)
    {
      g_message ("pkcs11-helper has no slot events: tokens inserted or pulled out are "
                 "noticed only when used");
      return;
    }
  self->slot_watch = g_new0 (SlotWatch, 1);
  g_weak_ref_init (&self->slot_watch->manager, self);
  self->slot_watch->main_context = g_main_context_ref (self->main_context);
  rv = pkcs11h_setSlotEventHook (on_slot_event, self->slot_watch);
  if (rv != CKR_OK)
    g_warning ("cannot follow tokens being inserted and pulled out: %s",
               pkcs11h_getMessage (rv));
}

static void
slot_watch_free (SlotWatch *watch)
{
  g_weak_ref_clear (&watch->manager);
  g_main_context_unref (watch->main_context);
  g_free (watch);
}

/* ---- life cycle ---- */

static void
eta_token_manager_finalize (GObject *object)
{
  EtaTokenManager *self = ETA_TOKEN_MANAGER (object);

  g_thread_pool_free (self->workers, FALSE, TRUE);
  g_hash_table_destroy (self->certificates);
  g_clear_pointer (&self->keys, g_ptr_array_unref);
  g_hash_table_destroy (self->token_states);
  /* Quit: every epoch key is wiped here. */
  g_clear_pointer (&self->epoch_cache, eta_epoch_cache_free);
  g_clear_pointer (&self->present_tokens, g_hash_table_unref);
  eta_token_session_forget_providers ();
  /* Joins pkcs11-helper's slot-event threads: up to ETA_TOKEN_SLOT_POLL_MS. */
  pkcs11h_terminate ();
  g_clear_pointer (&self->slot_watch, slot_watch_free);
  g_clear_object (&self->prompter);
  g_strfreev (self->providers);
  g_main_context_unref (self->main_context);
  g_mutex_clear (&self->lock);
  g_mutex_clear (&self->first_enumeration);
  g_hash_table_unref (self->insert_states);
  g_cond_clear (&self->insert_prompt_ended);
  g_mutex_clear (&self->scan_lock);
  g_rw_lock_clear (&self->pkcs11_lock);
  G_OBJECT_CLASS (eta_token_manager_parent_class)->finalize (object);
}

static void
eta_token_manager_class_init (EtaTokenManagerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = eta_token_manager_finalize;
  G_OBJECT_CLASS (klass)->set_property = eta_token_manager_set_property;
  G_OBJECT_CLASS (klass)->get_property = eta_token_manager_get_property;
  g_object_class_install_property (
      G_OBJECT_CLASS (klass), PROP_ALLOW_REMEMBER_PIN,
      g_param_spec_boolean ("allow-remember-pin", NULL, NULL, FALSE,
                            G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY
                            | G_PARAM_STATIC_STRINGS));

  signals[SIGNAL_TOKEN_STATE_CHANGED] =
    g_signal_new ("token-state-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING,
                  G_TYPE_STRING);
  signals[SIGNAL_UNWRAPPED] =
    g_signal_new ("unwrapped", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                  NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
}

static void
free_certificate (gpointer certificate)
{
  pkcs11h_certificate_freeCertificate (certificate);
}

static void
eta_token_manager_init (EtaTokenManager *self)
{
  g_mutex_init (&self->lock);
  g_mutex_init (&self->first_enumeration);
  self->insert_states = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_cond_init (&self->insert_prompt_ended);
  g_mutex_init (&self->scan_lock);
  g_rw_lock_init (&self->pkcs11_lock);
  self->workers = g_thread_pool_new (run_worker_job, NULL, 64, FALSE, NULL);
  self->certificates = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, free_certificate);
  self->token_states = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                              (GDestroyNotify) token_state_free);
  self->epoch_cache = eta_epoch_cache_new ();
}

/* A provider is a shared object the agent will run code from: refuse one that
 * someone other than root or this user could have replaced. */
static gboolean
provider_is_trustworthy (const gchar *path, GError **error)
{
  struct stat st;

  if (!g_path_is_absolute (path) || stat (path, &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_INVALID_ARGUMENT,
                   "PKCS#11 provider %s is not an absolute path to a file", path);
      return FALSE;
    }
  if ((st.st_uid != 0 && st.st_uid != geteuid ()) || (st.st_mode & (S_IWGRP | S_IWOTH)))
    {
      g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_ACCESS_DENIED,
                   "PKCS#11 provider %s is writable by others or owned by another user; "
                   "refusing to load it", path);
      return FALSE;
    }
  return TRUE;
}

/* pkcs11h_addProvider initialises modules with NULL arguments, which tells
 * SoftHSM2 (and others) that the application never calls it from two
 * threads. The agent does, so it asks for the OS's locking. */
static CK_RV
add_provider (const gchar *reference, const gchar *path)
{
  static CK_C_INITIALIZE_ARGS os_locking = { NULL, NULL, NULL, NULL, CKF_OS_LOCKING_OK, NULL };
  CK_C_INITIALIZE_ARGS_PTR init_args = &os_locking;
  PKCS11H_BOOL allow_protected_auth = TRUE;
  /* Slot events by looking (C_GetSlotList, C_GetTokenInfo): the default
   * (AUTO) waits in C_WaitForSlotEvent whenever a module does not refuse
   * it outright, and SoftHSM2 then never reports anything; looking works
   * with every module. */
  unsigned slot_event_method = PKCS11H_SLOTEVENT_METHOD_FETCH;
  unsigned slot_poll_interval = ETA_TOKEN_SLOT_POLL_MS;
  CK_RV rv;

  rv = pkcs11h_registerProvider (reference);
  if (rv == CKR_OK)
    rv = pkcs11h_setProviderProperty (reference, PKCS11H_PROVIDER_PROPERTY_LOCATION, path,
                                      strlen (path) + 1);
  if (rv == CKR_OK)
    rv = pkcs11h_setProviderProperty (reference, PKCS11H_PROVIDER_PROPERTY_ALLOW_PROTECTED_AUTH,
                                      &allow_protected_auth, sizeof allow_protected_auth);
  if (rv == CKR_OK)
    rv = pkcs11h_setProviderProperty (reference, PKCS11H_PROVIDER_PROPERTY_INIT_ARGS,
                                      &init_args, sizeof init_args);
  if (rv == CKR_OK)
    rv = pkcs11h_setProviderProperty (reference, PKCS11H_PROVIDER_PROPERTY_SLOT_EVENT_METHOD,
                                      &slot_event_method, sizeof slot_event_method);
  if (rv == CKR_OK)
    rv = pkcs11h_setProviderProperty (reference, PKCS11H_PROVIDER_PROPERTY_SLOT_POLL_INTERVAL,
                                      &slot_poll_interval, sizeof slot_poll_interval);
  if (rv == CKR_OK)
    rv = pkcs11h_initializeProvider (reference);
  if (rv != CKR_OK)
    pkcs11h_removeProvider (reference);
  return rv;
}

EtaTokenManager *
eta_token_manager_new (const gchar * const *providers, EtaPrompter *prompter, GError **error)
{
  static const gchar *default_providers[] = { ETA_DEFAULT_PROVIDER, NULL };
  g_autoptr (EtaTokenManager) self = g_object_new (ETA_TYPE_TOKEN_MANAGER, NULL);
  g_autoptr (GStrvBuilder) loaded_providers = g_strv_builder_new ();
  guint loaded = 0;
  CK_RV rv;

  self->prompter = prompter ? g_object_ref (prompter) : NULL;
  self->main_context = g_main_context_ref_thread_default ();
  if (providers == NULL || providers[0] == NULL)
    providers = default_providers;

  rv = pkcs11h_initialize ();
  if (rv != CKR_OK)
    {
      eta_agent_error_set_from_ckr (error, rv, "starting pkcs11-helper");
      return NULL;
    }
  pkcs11h_setLogHook (on_pkcs11h_log, self);
  pkcs11h_setLogLevel (g_getenv ("G_MESSAGES_DEBUG") ? PKCS11H_LOG_DEBUG1 : PKCS11H_LOG_ERROR);
  pkcs11h_setPINPromptHook (on_pin_prompt, self);
  pkcs11h_setTokenPromptHook (on_token_prompt, self);
  pkcs11h_setProtectedAuthentication (TRUE);
  pkcs11h_setMaxLoginRetries (MAX_LOGIN_TRIES);
  pkcs11h_setPINCachePeriod (PKCS11H_PIN_CACHE_INFINITE);

  for (gsize i = 0; providers[i] != NULL; i++)
    {
      g_autoptr (GError) provider_error = NULL;
      g_autofree gchar *reference = g_path_get_basename (providers[i]);

      if (!provider_is_trustworthy (providers[i], &provider_error))
        {
          g_warning ("%s", provider_error->message);
          continue;
        }
      rv = add_provider (reference, providers[i]);
      if (rv != CKR_OK)
        {
          g_warning ("cannot load PKCS#11 provider %s: %s", providers[i],
                     pkcs11h_getMessage (rv));
          continue;
        }
      loaded++;
      g_strv_builder_add (loaded_providers, providers[i]);
    }
  self->providers = g_strv_builder_end (loaded_providers);
  if (loaded == 0)
    {
      g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_FAILED,
                   "none of the allowed PKCS#11 providers could be loaded");
      return NULL;
    }
  watch_slots (self);
  return g_steal_pointer (&self);
}

/* See eta-token-manager.h. */
#define G_LOG_DOMAIN "eta-token-manager"

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
#include "eta-mount-table.h"
#include "eta-prompt-handoff.h"

/* pkcs11-helper's own retry loop: the person gets this many tries per unwrap. */
#define MAX_LOGIN_TRIES 3
/* How often to look for an inserted token while the insert prompt shows.
 * Slot events would be faster, but SoftHSM2 and many readers only support
 * polling through pkcs11-helper anyway. */
#define ETA_TOKEN_POLL_MS 500

typedef struct
{
  gchar *label;
  gchar *serial;
  gboolean logged_in;
  /* Requests numbered up to this one waited on a prompt that was cancelled:
   * they fail too instead of prompting again. */
  guint64 cancelled_through;
  /* One operation at a time per token: pkcs11-helper shares one session per
   * token between keys, and its session lock cannot cover the login. */
  GMutex operation_lock;
} TokenState;

struct _EtaTokenManager
{
  GObject parent_instance;

  EtaPrompter *prompter;
  GMainContext *main_context;
  GStrv providers;           /* the ones that loaded */

  GMutex lock;               /* guards the fields below */
  GPtrArray *keys;           /* EtaTokenKey from the last enumeration, or NULL */
  GHashTable *certificates;  /* "fingerprint token-identity" → pkcs11h_certificate_t */
  GHashTable *token_states;  /* token identity → TokenState */
  guint64 last_sequence;

  /* Token operations wait for PINs and for each other; they get a pool of
   * their own so they never starve GTask's shared pool. */
  GThreadPool *workers;

  /* Enumerating (which may reload pkcs11-helper's per-session object caches)
   * and logging out take it exclusively; token operations share it. */
  GRWLock pkcs11_lock;
  GMutex first_enumeration;

  /* One insert-token prompt at a time, and which requests it answered. */
  GMutex insert_prompt_lock;
  guint64 insert_cancelled_through;
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
  gboolean logged_in_phase_done;
  gboolean relogin_refused;
  GError *prompt_error;
} UnwrapContext;

static GPrivate current_unwrap;

static void
token_state_free (TokenState *state)
{
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
} TokenSignal;

static gboolean
emit_token_signal (gpointer data)
{
  TokenSignal *event = data;

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
  g_main_context_invoke (self->main_context, emit_token_signal, event);
}

/* Called with self->lock held. */
static void
set_logged_in (EtaTokenManager *self, TokenState *state, gboolean logged_in)
{
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
  send_token_signal (self, state, signals[SIGNAL_UNWRAPPED], NULL);
}

/* ---- the PIN hook: a worker thread waits while the main thread prompts ---- */

/* pkcs11-helper does not show a token's flags; ask the providers directly
 * (the same loaded modules, so no second initialisation happens). */
static EtaPinFlags
read_pin_flags (EtaTokenManager *self, const pkcs11h_token_id_t token)
{
  EtaPinFlags flags = ETA_PIN_FLAG_NONE;
  g_autofree gchar *token_serial = g_strstrip (g_strdup (token->serialNumber));
  g_autofree gchar *token_label = g_strstrip (g_strdup (token->label));

  for (gsize p = 0; self->providers[p] != NULL; p++)
    {
      void *module = dlopen (self->providers[p], RTLD_NOW | RTLD_NOLOAD);
      CK_C_GetFunctionList get_function_list;
      CK_FUNCTION_LIST_PTR functions = NULL;
      CK_SLOT_ID slots[64];
      CK_ULONG count = G_N_ELEMENTS (slots);

      if (module == NULL)
        continue;
      get_function_list = (CK_C_GetFunctionList) dlsym (module, "C_GetFunctionList");
      if (get_function_list == NULL || get_function_list (&functions) != CKR_OK
          || functions->C_GetSlotList (CK_TRUE, slots, &count) != CKR_OK)
        {
          dlclose (module);
          continue;
        }
      for (CK_ULONG s = 0; s < count; s++)
        {
          CK_TOKEN_INFO info;
          g_autofree gchar *serial = NULL;
          g_autofree gchar *label = NULL;

          if (functions->C_GetTokenInfo (slots[s], &info) != CKR_OK)
            continue;
          serial = g_strstrip (g_strndup ((const gchar *) info.serialNumber,
                                          sizeof info.serialNumber));
          label = g_strstrip (g_strndup ((const gchar *) info.label, sizeof info.label));
          if (g_strcmp0 (serial, token_serial) != 0 || g_strcmp0 (label, token_label) != 0)
            continue;
          if (info.flags & CKF_USER_PIN_COUNT_LOW)
            flags |= ETA_PIN_FLAG_COUNT_LOW;
          if (info.flags & CKF_USER_PIN_FINAL_TRY)
            flags |= ETA_PIN_FLAG_FINAL_TRY;
          if (info.flags & CKF_USER_PIN_LOCKED)
            flags |= ETA_PIN_FLAG_LOCKED;
          if (info.flags & CKF_PROTECTED_AUTHENTICATION_PATH)
            flags |= ETA_PIN_FLAG_PROTECTED_PATH;
          break;
        }
      dlclose (module);
    }
  return flags;
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
  EtaPromptHandoff *prompt;
  gboolean waited_on_cancelled;
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
  eta_pin_request_set_flags (request, read_pin_flags (self, token));
  prompt = eta_prompt_handoff_start (self->main_context, self->prompter,
                                     ETA_PROMPT_HANDOFF_PIN, request);
  eta_prompt_handoff_wait (prompt, -1);
  typed = eta_prompt_handoff_take_pin (prompt);
  prompt_error = eta_prompt_handoff_take_error (prompt);
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

  g_rw_lock_writer_lock (&self->pkcs11_lock);
  rv = pkcs11h_token_enumTokenIds (PKCS11H_ENUM_METHOD_RELOAD, &tokens);
  g_rw_lock_writer_unlock (&self->pkcs11_lock);
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
  gchar *full_fingerprint;
  gchar *found_token_label;
} UnwrapJob;

static void
unwrap_job_free (UnwrapJob *job)
{
  g_free (job->fingerprint);
  g_bytes_unref (job->wrapped);
  g_free (job->requester);
  g_free (job->key_label);
  g_free (job->token_label);
  g_free (job->full_fingerprint);
  g_free (job->found_token_label);
  g_free (job);
}

/* Worker thread. One certificate object per key and token, kept: it holds the
 * token session that stays logged in. */
static pkcs11h_certificate_t
get_certificate (EtaTokenManager *self, EtaTokenKey *key, GError **error)
{
  g_autofree gchar *cache_key = g_strdup_printf ("%s %s", eta_token_key_get_fingerprint (key),
                                                 eta_token_key_get_token_identity (key));
  pkcs11h_certificate_t certificate;
  CK_RV rv;

  g_mutex_lock (&self->lock);
  certificate = g_hash_table_lookup (self->certificates, cache_key);
  if (certificate == NULL)
    {
      g_rw_lock_writer_lock (&self->pkcs11_lock);
      rv = pkcs11h_certificate_create (eta_token_key_get_certificate_id (key), NULL,
                                       PKCS11H_PROMPT_MASK_ALLOW_PIN_PROMPT,
                                       PKCS11H_PIN_CACHE_INFINITE, &certificate);
      g_rw_lock_writer_unlock (&self->pkcs11_lock);
      if (rv != CKR_OK)
        {
          g_mutex_unlock (&self->lock);
          eta_agent_error_set_from_ckr (error, rv, "opening the key on its token");
          return NULL;
        }
      g_hash_table_insert (self->certificates, g_steal_pointer (&cache_key), certificate);
    }
  g_mutex_unlock (&self->lock);
  return certificate;
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

/* Worker thread: asks for the token and looks for the key every half second
 * until it appears, the person cancels, or the wait runs out. One prompt at
 * a time; requests that waited behind a cancelled one fail with it. */
static EtaTokenKey *
wait_for_token (EtaTokenManager *self, UnwrapJob *job, GError **error)
{
  g_autoptr (EtaPinRequest) request = NULL;
  EtaPromptHandoff *prompt;
  EtaTokenKey *key = NULL;
  gint64 deadline;
  gboolean cancelled_before;

  g_mutex_lock (&self->insert_prompt_lock);
  g_mutex_lock (&self->lock);
  cancelled_before = job->sequence <= self->insert_cancelled_through;
  g_mutex_unlock (&self->lock);
  if (cancelled_before)
    {
      g_mutex_unlock (&self->insert_prompt_lock);
      g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_CANCELLED,
                   "the request to insert the token was cancelled");
      return NULL;
    }
  /* It may have come while this request waited for the prompt. */
  key = find_key (self, job->fingerprint, NULL);
  if (key != NULL)
    {
      g_mutex_unlock (&self->insert_prompt_lock);
      return key;
    }

  request = eta_pin_request_new (job->token_label, "", job->key_label ? job->key_label : "",
                                 job->fingerprint, job->requester, job->requester_info.pid, 0);
  prompt = eta_prompt_handoff_start (self->main_context, self->prompter,
                                     ETA_PROMPT_HANDOFF_TOKEN, request);

  deadline = g_get_monotonic_time () + (gint64) job->requester_info.insert_wait_ms * 1000;
  while (!eta_prompt_handoff_wait (prompt, g_get_monotonic_time () + ETA_TOKEN_POLL_MS * 1000))
    {
      if (refresh_keys (self, PKCS11H_ENUM_METHOD_RELOAD, NULL))
        {
          g_mutex_lock (&self->lock);
          key = eta_token_key_find (self->keys, job->fingerprint, NULL);
          if (key != NULL)
            g_object_ref (key);
          g_mutex_unlock (&self->lock);
        }
      if (key != NULL || g_get_monotonic_time () > deadline)
        break;
    }
  eta_prompt_handoff_dismiss (prompt);

  if (key == NULL)
    {
      if (eta_prompt_handoff_person_cancelled (prompt))
        {
          g_mutex_lock (&self->lock);
          self->insert_cancelled_through = self->last_sequence;
          g_mutex_unlock (&self->lock);
          g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_CANCELLED,
                       "the request to insert the token was cancelled");
        }
      else
        g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_TOKEN_ABSENT,
                     "no token holding key %.16s was inserted within %u s", job->fingerprint,
                     job->requester_info.insert_wait_ms / 1000);
    }
  g_mutex_unlock (&self->insert_prompt_lock);
  eta_prompt_handoff_free (prompt);
  return key;
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
  CK_RV rv;

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
  g_free (job->full_fingerprint);
  job->full_fingerprint = g_strdup (eta_token_key_get_fingerprint (key));
  g_free (job->found_token_label);
  job->found_token_label = g_strdup (eta_token_key_get_token_label (key));
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
  pin_pad = job->requester_info.interactive
              ? pin_pad_prompt_start (self, key, token_state, job) : NULL;
  g_rw_lock_reader_lock (&self->pkcs11_lock);
  rv = pkcs11h_certificate_ensureKeyAccess (certificate);
  context.logged_in_phase_done = TRUE;
  if (pin_pad != NULL && pin_pad_prompt_finish (pin_pad) && rv != CKR_OK)
    g_set_error (&context.prompt_error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_CANCELLED,
                 "the PIN-pad prompt was cancelled");
  if (rv == CKR_OK && job->wrapped != NULL)
    rv = pkcs11h_certificate_lockSession (certificate);
  if (rv == CKR_OK && job->wrapped != NULL)
    {
      rv = pkcs11h_certificate_decrypt_ex (certificate, &mechanism,
                                           g_bytes_get_data (job->wrapped, NULL),
                                           g_bytes_get_size (job->wrapped),
                                           eta_secret_get_data (plaintext), &size);
      pkcs11h_certificate_releaseSession (certificate);
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
  if (rv == CKR_OK)
    {
      set_logged_in (self, token_state, TRUE);
      if (job->wrapped != NULL)
        announce_unwrap (self, token_state);
    }
  else if (context.prompt_error != NULL || context.relogin_refused || rv == CKR_PIN_INCORRECT)
    set_logged_in (self, token_state, FALSE);
  g_mutex_unlock (&self->lock);

  if (rv != CKR_OK)
    {
      if (context.relogin_refused)
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

static void
unwrap_in_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  EtaTokenManager *self = source;
  UnwrapJob *job = data;
  GError *error = NULL;
  gboolean token_gone = FALSE;
  EtaSecret *plaintext = NULL;
  gboolean done = unwrap_once (self, job, &plaintext, &token_gone, &error);

  /* A token pulled out since the last look: ask for it once, as if it had
   * never been seen. */
  if (!done && token_gone)
    {
      g_clear_error (&error);
      refresh_keys (self, PKCS11H_ENUM_METHOD_RELOAD, NULL);
      done = unwrap_once (self, job, &plaintext, &token_gone, &error);
    }
  if (!done)
    g_task_return_error (task, error);
  else if (plaintext == NULL)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_pointer (task, plaintext, (GDestroyNotify) eta_secret_unref);
}

/* An unwrap, or with @wrapped NULL a login only. */
static void
start_unwrap_job (EtaTokenManager *self, GTask *task, const gchar *fingerprint,
                  EtaPadding padding, GBytes *wrapped, const EtaRequester *requester)
{
  UnwrapJob *job = g_new0 (UnwrapJob, 1);

  job->fingerprint = g_strdup (fingerprint);
  job->padding = padding;
  job->wrapped = wrapped ? g_bytes_ref (wrapped) : NULL;
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
    *fingerprint_out = g_strdup (job->full_fingerprint);
  if (token_label_out != NULL)
    *token_label_out = g_strdup (job->found_token_label);
  return TRUE;
}

EtaSecret *
eta_token_manager_unwrap_finish (EtaTokenManager *self, GAsyncResult *result,
                                 gchar **fingerprint_out, GError **error)
{
  EtaSecret *secret = g_task_propagate_pointer (G_TASK (result), error);
  UnwrapJob *job = g_task_get_task_data (G_TASK (result));

  if (secret != NULL && fingerprint_out != NULL)
    *fingerprint_out = g_strdup (job->full_fingerprint);
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

/* ---- life cycle ---- */

static void
eta_token_manager_finalize (GObject *object)
{
  EtaTokenManager *self = ETA_TOKEN_MANAGER (object);

  g_thread_pool_free (self->workers, FALSE, TRUE);
  g_hash_table_destroy (self->certificates);
  g_clear_pointer (&self->keys, g_ptr_array_unref);
  g_hash_table_destroy (self->token_states);
  pkcs11h_terminate ();
  g_clear_object (&self->prompter);
  g_strfreev (self->providers);
  g_main_context_unref (self->main_context);
  g_mutex_clear (&self->lock);
  g_mutex_clear (&self->first_enumeration);
  g_mutex_clear (&self->insert_prompt_lock);
  g_rw_lock_clear (&self->pkcs11_lock);
  G_OBJECT_CLASS (eta_token_manager_parent_class)->finalize (object);
}

static void
eta_token_manager_class_init (EtaTokenManagerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = eta_token_manager_finalize;

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
  g_mutex_init (&self->insert_prompt_lock);
  g_rw_lock_init (&self->pkcs11_lock);
  self->workers = g_thread_pool_new (run_worker_job, NULL, 64, FALSE, NULL);
  self->certificates = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, free_certificate);
  self->token_states = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                              (GDestroyNotify) token_state_free);
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
  return g_steal_pointer (&self);
}

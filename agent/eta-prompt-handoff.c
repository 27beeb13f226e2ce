/* See eta-prompt-handoff.h. */
#include "config.h"

#include "eta-prompt-handoff.h"

struct _EtaPromptHandoff
{
  EtaPrompter *prompter;
  EtaPromptHandoffKind kind;
  EtaPinRequest *request;
  GCancellable *dismiss;

  GMutex mutex;       /* guards the fields below */
  GCond ended_cond;
  gboolean ended;
  gboolean answered;  /* a PIN, or the token prompt finished by dismissal */
  gboolean dismissed;
  EtaSecret *pin;
  GError *error;
};

static void
on_prompt_ended (GObject *source, GAsyncResult *result, gpointer user_data)
{
  EtaPromptHandoff *self = user_data;
  GError *error = NULL;
  EtaSecret *pin = NULL;
  gboolean answered;

  if (self->kind == ETA_PROMPT_HANDOFF_PIN)
    answered = (pin = eta_prompter_request_pin_finish (self->prompter, result, &error)) != NULL;
  else
    answered = eta_prompter_ask_for_token_finish (self->prompter, result, &error);

  g_mutex_lock (&self->mutex);
  self->pin = pin;
  self->error = error;
  self->answered = answered;
  self->dismissed = g_cancellable_is_cancelled (self->dismiss);
  self->ended = TRUE;
  g_cond_signal (&self->ended_cond);
  g_mutex_unlock (&self->mutex);
}

static gboolean
start_on_main_thread (gpointer user_data)
{
  EtaPromptHandoff *self = user_data;

  if (self->kind == ETA_PROMPT_HANDOFF_PIN)
    eta_prompter_request_pin_async (self->prompter, self->request, self->dismiss,
                                    on_prompt_ended, self);
  else
    eta_prompter_ask_for_token_async (self->prompter, self->request, self->dismiss,
                                      on_prompt_ended, self);
  return G_SOURCE_REMOVE;
}

EtaPromptHandoff *
eta_prompt_handoff_start (GMainContext *main_context, EtaPrompter *prompter,
                          EtaPromptHandoffKind kind, EtaPinRequest *request)
{
  EtaPromptHandoff *self = g_new0 (EtaPromptHandoff, 1);

  self->prompter = g_object_ref (prompter);
  self->kind = kind;
  self->request = g_object_ref (request);
  self->dismiss = g_cancellable_new ();
  g_mutex_init (&self->mutex);
  g_cond_init (&self->ended_cond);
  g_main_context_invoke (main_context, start_on_main_thread, self);
  return self;
}

gboolean
eta_prompt_handoff_wait (EtaPromptHandoff *self, gint64 end_time)
{
  gboolean ended;

  g_mutex_lock (&self->mutex);
  while (!self->ended)
    {
      if (end_time < 0)
        g_cond_wait (&self->ended_cond, &self->mutex);
      else if (!g_cond_wait_until (&self->ended_cond, &self->mutex, end_time))
        break;
    }
  ended = self->ended;
  g_mutex_unlock (&self->mutex);
  return ended;
}

void
eta_prompt_handoff_dismiss (EtaPromptHandoff *self)
{
  g_cancellable_cancel (self->dismiss);
  eta_prompt_handoff_wait (self, -1);
}

gboolean
eta_prompt_handoff_person_cancelled (EtaPromptHandoff *self)
{
  return self->ended && !self->answered && !self->dismissed;
}

EtaSecret *
eta_prompt_handoff_take_pin (EtaPromptHandoff *self)
{
  return g_steal_pointer (&self->pin);
}

GError *
eta_prompt_handoff_take_error (EtaPromptHandoff *self)
{
  return g_steal_pointer (&self->error);
}

void
eta_prompt_handoff_free (EtaPromptHandoff *self)
{
  /* Never while the prompt is open: its callback points here. */
  g_assert (self->ended);
  g_clear_pointer (&self->pin, eta_secret_unref);
  g_clear_error (&self->error);
  g_object_unref (self->dismiss);
  g_object_unref (self->request);
  g_object_unref (self->prompter);
  g_mutex_clear (&self->mutex);
  g_cond_clear (&self->ended_cond);
  g_free (self);
}

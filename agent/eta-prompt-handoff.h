/* A prompt a worker thread needs: started on the main thread (where the
 * prompter lives) and waited for from the worker. PIN prompts, PIN-pad
 * notices and insert-token prompts all go through it. */
#pragma once

#include "eta-prompter.h"

G_BEGIN_DECLS

typedef enum
{
  ETA_PROMPT_HANDOFF_PIN,     /* eta_prompter_request_pin_async */
  ETA_PROMPT_HANDOFF_TOKEN,   /* eta_prompter_ask_for_token_async */
} EtaPromptHandoffKind;

typedef struct _EtaPromptHandoff EtaPromptHandoff;

/* Worker thread: shows the prompt on @main_context's thread. */
EtaPromptHandoff *eta_prompt_handoff_start (GMainContext *main_context, EtaPrompter *prompter,
                                            EtaPromptHandoffKind kind,
                                            EtaPinRequest *request);
/* Waits until the prompt ends, or until @end_time (monotonic µs; -1: no
 * limit). TRUE when it has ended. */
gboolean eta_prompt_handoff_wait (EtaPromptHandoff *self, gint64 end_time);
/* The agent ends the prompt itself (the token appeared, the PIN pad
 * answered) and waits for it to close. */
void eta_prompt_handoff_dismiss (EtaPromptHandoff *self);

/* After it ended: the person closed it without an answer. */
gboolean eta_prompt_handoff_person_cancelled (EtaPromptHandoff *self);
/* After it ended: the PIN typed (ETA_PROMPT_HANDOFF_PIN), or NULL. */
EtaSecret *eta_prompt_handoff_take_pin (EtaPromptHandoff *self);
/* After it ended: why there is no PIN, or NULL. */
GError *eta_prompt_handoff_take_error (EtaPromptHandoff *self);
void eta_prompt_handoff_free (EtaPromptHandoff *self);

G_END_DECLS

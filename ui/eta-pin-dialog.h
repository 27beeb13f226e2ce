/* The PIN dialog: says which token and key, who asks and for which mounts,
 * and handles every PIN state a token reports — wrong PIN, few tries left,
 * final try (explicit confirmation), blocked PIN, PIN-pad readers. */
#pragma once

#include <gtk/gtk.h>

#include "eta-pin-request.h"
#include "eta-secret.h"

G_BEGIN_DECLS

#define ETA_TYPE_PIN_DIALOG (eta_pin_dialog_get_type ())
G_DECLARE_FINAL_TYPE (EtaPinDialog, eta_pin_dialog, ETA, PIN_DIALOG, GtkWindow)

typedef enum
{
  ETA_PIN_DIALOG_STATE_ENTER,        /* type the PIN */
  ETA_PIN_DIALOG_STATE_CONFIRM,      /* final try: the person must confirm */
  ETA_PIN_DIALOG_STATE_LOCKED,       /* nothing to type: the PIN is blocked */
  ETA_PIN_DIALOG_STATE_PIN_PAD,      /* type the PIN on the reader */
} EtaPinDialogState;

EtaPinDialog *eta_pin_dialog_new (EtaPinRequest *request);
EtaPinDialogState eta_pin_dialog_get_state (EtaPinDialog *self);

/* The typed PIN, moved into locked memory; the entry is cleared. NULL when
 * nothing was typed. Call from the "response" handler. */
EtaSecret *eta_pin_dialog_take_pin (EtaPinDialog *self);

/* Signal "response" (gboolean unlock): Unlock pressed with a confirmed PIN
 * (TRUE), or Cancel / the window closed (FALSE). Emitted once. On Unlock the
 * "Remember PIN" switch (shown when the request may remember) goes into the
 * request (eta_pin_request_set_remember). */

G_END_DECLS

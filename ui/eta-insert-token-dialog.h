/* "Insert the token ‹label› that holds ‹key›": shown while the agent waits
 * for the token. The agent closes it itself when the token appears; the
 * person can always cancel. */
#pragma once

#include <gtk/gtk.h>

#include "eta-pin-request.h"

G_BEGIN_DECLS

#define ETA_TYPE_INSERT_TOKEN_DIALOG (eta_insert_token_dialog_get_type ())
G_DECLARE_FINAL_TYPE (EtaInsertTokenDialog, eta_insert_token_dialog, ETA, INSERT_TOKEN_DIALOG,
                      GtkWindow)

EtaInsertTokenDialog *eta_insert_token_dialog_new (EtaPinRequest *request);

/* Signal "cancelled": the person pressed Cancel or closed the window. Not
 * emitted when the agent destroys the dialog. */

G_END_DECLS

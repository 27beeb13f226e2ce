/* "Tokens and keys": every inserted token with its state, and for each key on
 * it the label, fingerprint, eCryptfs signature, the mounts using it, and a
 * button that copies its mount options to the clipboard. Follows the token
 * manager's changes while it is open. */
#pragma once

#include <gtk/gtk.h>

#include "eta-token-manager.h"

G_BEGIN_DECLS

#define ETA_TYPE_TOKENS_WINDOW (eta_tokens_window_get_type ())
G_DECLARE_FINAL_TYPE (EtaTokensWindow, eta_tokens_window, ETA, TOKENS_WINDOW, GtkWindow)

EtaTokensWindow *eta_tokens_window_new (EtaTokenManager *manager);

/* Lists the tokens and keys again (it does by itself when a token changes). */
void eta_tokens_window_refresh (EtaTokensWindow *self);

G_END_DECLS

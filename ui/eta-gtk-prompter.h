/* Asks for PINs with EtaPinDialog on the session's display. One dialog per
 * prompt; the token manager already makes concurrent requests for one token
 * share a single prompt. */
#pragma once

#include "eta-prompter.h"

G_BEGIN_DECLS

#define ETA_TYPE_GTK_PROMPTER (eta_gtk_prompter_get_type ())
G_DECLARE_FINAL_TYPE (EtaGtkPrompter, eta_gtk_prompter, ETA, GTK_PROMPTER, GObject)

/* Call after gtk_init_check() succeeded. */
EtaGtkPrompter *eta_gtk_prompter_new (void);

/* How many prompts (PIN or insert-token dialogs) are on screen now; changes
 * are announced as notify::open-prompts. */
guint eta_gtk_prompter_get_open_prompts (EtaGtkPrompter *self);

G_END_DECLS

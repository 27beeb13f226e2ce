/* Asks for PINs on a terminal: for sessions without a display (SSH, console)
 * and for the demo. Uses the controlling terminal, or standard input when that
 * is a terminal. Echo is off while the PIN is typed; an empty line or Ctrl-D
 * cancels. One prompt at a time. */
#pragma once

#include "eta-prompter.h"

G_BEGIN_DECLS

#define ETA_TYPE_TERMINAL_PROMPTER (eta_terminal_prompter_get_type ())
G_DECLARE_FINAL_TYPE (EtaTerminalPrompter, eta_terminal_prompter, ETA, TERMINAL_PROMPTER,
                      GObject)

/* NULL with an error when this process has no terminal to ask on. */
EtaTerminalPrompter *eta_terminal_prompter_new (GError **error);

G_END_DECLS

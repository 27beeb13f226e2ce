/* Translations: the agent's message catalogues (GETTEXT_PACKAGE), bound once
 * at start-up before any translated string is used. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Sets the locale from the environment and binds the catalogues, as UTF-8,
 * from the installed locale directory, or from the one named by
 * ECRYPTFS_TOKEN_AGENT_LOCALEDIR. Call first thing in main(). */
void eta_i18n_init (void);

G_END_DECLS

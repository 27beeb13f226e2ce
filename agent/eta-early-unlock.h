/* Early unlock: while the site policy's unlock-early is on, the agent logs
 * in to a token holding a key in use as soon as the token is inserted, or
 * when the agent starts with it present, so that the PIN prompt comes before
 * the first file is opened (the kernel waits only seconds for a file key).
 * A key is in use when our auth token for it is in the user keyring or an
 * eCryptfs mount names its sig. */
#pragma once

#include <glib-object.h>

#include "eta-policy.h"
#include "eta-token-manager.h"

G_BEGIN_DECLS

#define ETA_TYPE_EARLY_UNLOCK (eta_early_unlock_get_type ())
G_DECLARE_FINAL_TYPE (EtaEarlyUnlock, eta_early_unlock, ETA, EARLY_UNLOCK, GObject)

/* Looks at the tokens present now and follows @manager's "present" events;
 * asks nothing while @policy's unlock-early is off. */
EtaEarlyUnlock *eta_early_unlock_new (EtaTokenManager *manager, EtaPolicy *policy);

G_END_DECLS

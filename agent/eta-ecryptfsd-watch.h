/* Watches whether an ecryptfsd serves this user's files with the installed
 * key module (eta-ecryptfsd-probe.h), for the tray: "state" changes when
 * the daemon ends (a pidfd, no wakeups meanwhile), when the installed module
 * file changes (an upgrade), when mounts change, and, while none runs and an
 * eCryptfs mount exists ("needed": only then does anyone wait for it), at a
 * slow look every ETA_ECRYPTFSD_LOOK_SECONDS
 * (ECRYPTFS_TOKEN_AGENT_ECRYPTFSD_LOOK_SECONDS overrides it, for tests).
 *
 * Where no systemd user manager runs (nothing else would), it also starts
 * ecryptfsd when a mount needs one, none runs and /dev/ecryptfs exists, at
 * most once a minute (ECRYPTFS_TOKEN_AGENT_ECRYPTFSD and
 * ECRYPTFS_TOKEN_AGENT_ECRYPTFS_DEVICE override the daemon and the device,
 * for tests). */
#pragma once

#include <glib-object.h>

#include "eta-ecryptfsd-probe.h"

G_BEGIN_DECLS

#define ETA_ECRYPTFSD_LOOK_SECONDS 30

#define ETA_TYPE_ECRYPTFSD_WATCH (eta_ecryptfsd_watch_get_type ())
G_DECLARE_FINAL_TYPE (EtaEcryptfsdWatch, eta_ecryptfsd_watch, ETA, ECRYPTFSD_WATCH, GObject)

EtaEcryptfsdWatch *eta_ecryptfsd_watch_new (void);
/* Also the "state" property (notify::state). */
EtaEcryptfsdState eta_ecryptfsd_watch_get_state (EtaEcryptfsdWatch *self);
/* Also the "needed" property: an eCryptfs mount exists. */
gboolean eta_ecryptfsd_watch_get_needed (EtaEcryptfsdWatch *self);

G_END_DECLS

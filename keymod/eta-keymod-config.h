/* The key module's settings, read from its config file (keymod.conf under the
 * system configuration directory, or the file named by
 * $ECRYPTFS_TOKEN_AGENT_KEYMOD_CONF). A missing file means the defaults. */
#pragma once

#include <glib.h>

/* The kernel waits ecryptfs_message_wait_timeout (3 s by default) for
 * ecryptfsd; the module must answer before that or the answer is lost. */
#define ETA_KEYMOD_DEFAULT_UNWRAP_TIMEOUT_MS  2500
#define ETA_KEYMOD_DEFAULT_RESOLVE_TIMEOUT_MS 5000
#define ETA_KEYMOD_MAX_TIMEOUT_MS             600000

/* An epoch key K lives in the ecryptfsd process for at most ten minutes, and
 * a compromise of K exposes only the files of its epoch. */
#define ETA_KEYMOD_DEFAULT_EPOCH_SECONDS      600
#define ETA_KEYMOD_MAX_EPOCH_SECONDS          86400
/* One token operation per 10 000 files: even a token taking 1 s per RSA
 * decryption costs 0.1 ms per file opened. */
#define ETA_KEYMOD_DEFAULT_EPOCH_FILES        10000
/* Far below where 96-bit random GCM nonces under one key could collide. */
#define ETA_KEYMOD_MAX_EPOCH_FILES            1000000

typedef struct
{
  guint unwrap_timeout_ms;   /* whole budget of one unwrap, connect included */
  guint resolve_timeout_ms;  /* ResolveKey at mount / add-key time */
  guint epoch_seconds;       /* a new epoch key after this long ... */
  guint epoch_files;         /* ... or after wrapping this many files */
} EtaKeymodConfig;

/* Fills @config from the config file; bad values are logged and replaced by
 * the defaults, so this never fails. */
void eta_keymod_config_load (EtaKeymodConfig *config);
const gchar *eta_keymod_config_path (void);

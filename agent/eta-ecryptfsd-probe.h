/* Whether an ecryptfsd serves this user's eCryptfs files, and with the key
 * module that is installed: the kernel asks the ecryptfsd of the user who
 * opens a file, and without one every open of a token-protected file fails
 * with EIO; ecryptfsd loads key modules only when it starts, so after an
 * upgrade it keeps running the old one until restarted.
 *
 * Read from /proc: each process named ecryptfsd of the user (effective
 * uid, as the kernel's /dev/ecryptfs sees it), and in its memory map the
 * key module file it loaded, compared (device and inode) with the
 * installed file. */
#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

typedef enum
{
  ETA_ECRYPTFSD_NOT_RUNNING,
  ETA_ECRYPTFSD_RUNNING,      /* with the installed key module */
  ETA_ECRYPTFSD_OLD_MODULE,   /* with another file than the installed one, or none */
} EtaEcryptfsdState;

/* The installed key module, which a running ecryptfsd should have loaded.
 * ECRYPTFS_TOKEN_AGENT_KEYMOD_FILE overrides it (tests). */
const gchar *eta_ecryptfsd_installed_module (void);

/* The state for @uid; *@pid_out (may be NULL) gets the ecryptfsd's pid, or
 * 0. One with the installed module wins over one without. */
EtaEcryptfsdState eta_ecryptfsd_probe (uid_t uid, pid_t *pid_out);

/* "running", "not-running" or "old-module" (JSON, D-Bus). */
const gchar *eta_ecryptfsd_state_to_string (EtaEcryptfsdState state);

/* What to tell the person, translated, with the command that fixes it;
 * NULL for ETA_ECRYPTFSD_RUNNING. */
gchar *eta_ecryptfsd_describe_problem (EtaEcryptfsdState state);

G_END_DECLS

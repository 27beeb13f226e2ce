/* eta-inprocess-daemon.h: harness A. Loads a key module the way libecryptfs
 * does and feeds kernel-format packets to libecryptfs's own parse_packet(),
 * so a module can be exercised in-process, under a debugger or valgrind,
 * without ecryptfsd or the kernel filesystem.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

struct ecryptfs_ctx;
struct ecryptfs_key_mod;

#define ETA_INPROCESS_DAEMON_ERROR (eta_inprocess_daemon_error_quark ())

typedef enum {
  ETA_INPROCESS_DAEMON_ERROR_FAILED,        /* loading, keyring, bad input */
  ETA_INPROCESS_DAEMON_ERROR_NO_REPLY,      /* parse_packet() failed: ecryptfsd would send nothing */
  ETA_INPROCESS_DAEMON_ERROR_FAILURE_REPLY, /* 41 ff / 43 ff */
  ETA_INPROCESS_DAEMON_ERROR_PROTOCOL,      /* reply the kernel would refuse */
} EtaInprocessDaemonError;

typedef struct _EtaInprocessDaemon EtaInprocessDaemon;

GQuark              eta_inprocess_daemon_error_quark (void);

/* dlopen()s @keymod_path (NULL: no module) like
 * ecryptfs_register_key_modules() does: get_key_mod_ops(), dummies for
 * NULL ops, init(&alias), linked into a struct ecryptfs_ctx. Then
 * ecryptfs_validate_keyring() links @u into this process's session
 * keyring, as ecryptfsd's environment needs. */
EtaInprocessDaemon *eta_inprocess_daemon_new         (const gchar        *keymod_path,
                                                      GError            **error);
/* Loads one more module into the same context. */
gboolean            eta_inprocess_daemon_load_module (EtaInprocessDaemon *self,
                                                      const gchar        *keymod_path,
                                                      GError            **error);
/* Alias the first loaded module gave at init, or NULL. */
const gchar        *eta_inprocess_daemon_get_alias   (EtaInprocessDaemon *self);
struct ecryptfs_ctx *eta_inprocess_daemon_get_ctx    (EtaInprocessDaemon *self);
/* The module registered under @alias (prefix compare, as libecryptfs). */
struct ecryptfs_key_mod *eta_inprocess_daemon_find_module (EtaInprocessDaemon *self,
                                                           const gchar        *alias);

/* Adds an auth token for the module @alias (NULL: first module) to @u with
 * ecryptfs_add_key_module_key_to_keyring(). @names/@values are parallel
 * NULL-terminated lists of get_params() options; parameters given no value
 * take their default_val, then every parameter with a value is passed in
 * get_params() order. Returns the sig (an existing key with that sig is
 * kept, not replaced, as libecryptfs does). */
gchar              *eta_inprocess_daemon_add_key     (EtaInprocessDaemon *self,
                                                      const gchar        *alias,
                                                      const gchar * const *names,
                                                      const gchar * const *values,
                                                      GError            **error);

/* Runs a tag 64/66 request payload through parse_packet() and returns the
 * reply payload (tag 65/67) ecryptfsd would send. */
GBytes             *eta_inprocess_daemon_process     (EtaInprocessDaemon *self,
                                                      GBytes             *request,
                                                      GError            **error);
/* Tag 66 → 67 and tag 64 → 65 with the kernel's checks on the reply. */
gboolean            eta_inprocess_daemon_wrap        (EtaInprocessDaemon *self,
                                                      const gchar        *sig,
                                                      guint8              cipher_code,
                                                      const guint8       *fek,
                                                      gsize               fek_len,
                                                      GBytes            **wrapped_out,
                                                      GError            **error);
gboolean            eta_inprocess_daemon_unwrap      (EtaInprocessDaemon *self,
                                                      const gchar        *sig,
                                                      const guint8       *wrapped,
                                                      gsize               wrapped_len,
                                                      guint8             *cipher_code_out,
                                                      GBytes            **fek_out,
                                                      GError            **error);

/* finalize() and dlclose() every module, as ecryptfsd does at exit. */
void                eta_inprocess_daemon_free        (EtaInprocessDaemon *self);

/* Unlinks the "user" key described by @sig from @u and invalidates it, so
 * reruns start clean. TRUE if gone (or never there). */
gboolean            eta_harness_remove_user_key      (const gchar        *sig,
                                                      GError            **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EtaInprocessDaemon, eta_inprocess_daemon_free)

G_END_DECLS

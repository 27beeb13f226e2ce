/* Unwraps answered where they arrive: a GDBus filter that serves an Unwrap
 * of an epoch packet whose key the agent keeps, in GDBus's message thread,
 * before the call is dispatched.
 *
 * Why: with K kept, an unwrap is an AES-GCM open and a seal, a few
 * microseconds; the trip to the main thread and back costs more than that,
 * and a folder read through ecryptfsd makes one call per file. Everything
 * else (a sender whose uid is not known yet, another method, K not kept, a
 * token no longer logged in, a PKCS#11 call of the agent's under way, bad
 * arguments, a packet that does not open) passes through untouched to the
 * skeleton, whose handler answers it in full, errors included. */
#pragma once

#include <gio/gio.h>

#include "eta-caller-check.h"
#include "eta-token-key.h"
#include "eta-token-manager.h"

G_BEGIN_DECLS

typedef struct _EtaKeptKeyUnwrap EtaKeptKeyUnwrap;

/* Called in the main context of the thread that installed the filter,
 * after the reply went out, for the log and the activity list; never after
 * eta_kept_key_unwrap_uninstall(). @requester and @pid are what the caller
 * said (NULL and 0 when it did not). */
typedef void (*EtaKeptKeyUnwrapped) (gpointer owner, EtaTokenKey *key, const gchar *requester,
                                     guint32 pid);

/* Serves Unwrap of @object_path (interface org.ecryptfs.TokenAgent1) on
 * @connection from senders @check already knows to run as the agent's
 * user. @owner, @manager and @check are borrowed: they must outlive the
 * filter until eta_kept_key_unwrap_uninstall(). */
EtaKeptKeyUnwrap *eta_kept_key_unwrap_install (GDBusConnection *connection,
                                               const gchar *object_path,
                                               EtaTokenManager *manager, EtaCallerCheck *check,
                                               gpointer owner, EtaKeptKeyUnwrapped unwrapped);
/* Main context: stops serving, and returns once no call is being served
 * any more, so that nothing borrowed is used after it. */
void eta_kept_key_unwrap_uninstall (EtaKeptKeyUnwrap *self);

G_END_DECLS

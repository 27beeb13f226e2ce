/* What the agent unwrapped lately, for the tray's "Recent activity": when,
 * with which key, for whom and for which mounts. Kept in memory only, and
 * only the last few entries; no file key or PIN goes in. */
#pragma once

#include <gio/gio.h>

#include "eta-token-manager.h"

G_BEGIN_DECLS

/* How many unwraps the log keeps. */
#define ETA_ACTIVITY_LOG_SIZE 10

typedef struct
{
  gint64 time;            /* wall clock, unix seconds */
  gchar *fingerprint;
  gchar *key_label;
  gchar *token_label;
  gchar *requester;
  GStrv mounts;           /* the eCryptfs mounts using the key, read when the
                           * entry is first looked at; may be empty */
} EtaActivity;

#define ETA_TYPE_ACTIVITY_LOG (eta_activity_log_get_type ())
G_DECLARE_FINAL_TYPE (EtaActivityLog, eta_activity_log, ETA, ACTIVITY_LOG, GObject)

EtaActivityLog *eta_activity_log_new (void);

/* Notes a successful unwrap with @key for @requester, now, and fires
 * "changed". Main thread. */
void eta_activity_log_record_unwrap (EtaActivityLog *self, EtaTokenKey *key,
                                     const gchar *requester);

/* The entries, newest first (borrowed: valid until the next "changed"). */
guint eta_activity_log_get_length (EtaActivityLog *self);
const EtaActivity *eta_activity_log_get (EtaActivityLog *self, guint index);

/* Signal "changed": an entry came in (and the oldest may have gone). */

G_END_DECLS

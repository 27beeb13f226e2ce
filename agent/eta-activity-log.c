/* See eta-activity-log.h. */
#define G_LOG_DOMAIN "eta-activity-log"

#include "config.h"

#include "eta-activity-log.h"

#include "eta-mount-table.h"

typedef struct
{
  EtaActivity public;
  gchar *sig;             /* to find the mounts when someone looks */
} Entry;

struct _EtaActivityLog
{
  GObject parent_instance;

  GQueue entries;         /* Entry, newest first */
};

G_DEFINE_FINAL_TYPE (EtaActivityLog, eta_activity_log, G_TYPE_OBJECT)

enum { SIGNAL_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
entry_free (Entry *entry)
{
  g_free (entry->public.fingerprint);
  g_free (entry->public.key_label);
  g_free (entry->public.token_label);
  g_free (entry->public.requester);
  g_strfreev (entry->public.mounts);
  g_free (entry->sig);
  g_free (entry);
}

void
eta_activity_log_record_unwrap (EtaActivityLog *self, EtaTokenKey *key, const gchar *requester)
{
  Entry *entry = g_new0 (Entry, 1);

  entry->public.time = g_get_real_time () / G_USEC_PER_SEC;
  entry->public.fingerprint = g_strdup (eta_token_key_get_fingerprint (key));
  entry->public.key_label = g_strdup (eta_token_key_get_label (key));
  entry->public.token_label = g_strdup (eta_token_key_get_token_label (key));
  entry->public.requester = g_strdup (requester);
  entry->sig = g_strdup (eta_token_key_get_sig (key));
  g_queue_push_head (&self->entries, entry);
  while (g_queue_get_length (&self->entries) > ETA_ACTIVITY_LOG_SIZE)
    entry_free (g_queue_pop_tail (&self->entries));
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
}

guint
eta_activity_log_get_length (EtaActivityLog *self)
{
  return g_queue_get_length (&self->entries);
}

const EtaActivity *
eta_activity_log_get (EtaActivityLog *self, guint index)
{
  Entry *entry = g_queue_peek_nth (&self->entries, index);

  g_return_val_if_fail (entry != NULL, NULL);
  /* Read when someone looks, not on the unwrap path: an unwrap answers the
   * kernel's clock, the menu does not. */
  if (entry->public.mounts == NULL)
    entry->public.mounts = eta_mount_table_mounts_for_sig (NULL, entry->sig);
  return &entry->public;
}

static void
eta_activity_log_finalize (GObject *object)
{
  EtaActivityLog *self = ETA_ACTIVITY_LOG (object);

  g_queue_clear_full (&self->entries, (GDestroyNotify) entry_free);
  G_OBJECT_CLASS (eta_activity_log_parent_class)->finalize (object);
}

static void
eta_activity_log_class_init (EtaActivityLogClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = eta_activity_log_finalize;
  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass),
                                          G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                          G_TYPE_NONE, 0);
}

static void
eta_activity_log_init (EtaActivityLog *self)
{
  g_queue_init (&self->entries);
}

EtaActivityLog *
eta_activity_log_new (void)
{
  return g_object_new (ETA_TYPE_ACTIVITY_LOG, NULL);
}

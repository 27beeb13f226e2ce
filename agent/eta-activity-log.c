/* See eta-activity-log.h. */
#define G_LOG_DOMAIN "eta-activity-log"

#include "eta-activity-log.h"

#include "eta-mount-table.h"

typedef struct
{
  EtaActivity public;
  guint64 sequence;       /* the order unwraps were recorded in */
} Entry;

struct _EtaActivityLog
{
  GObject parent_instance;

  EtaTokenManager *manager;
  GQueue entries;         /* Entry, newest first */
  guint64 last_sequence;
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
  g_free (entry);
}

static gint
newer_first (gconstpointer a, gconstpointer b, gpointer user_data)
{
  guint64 x = ((const Entry *) a)->sequence, y = ((const Entry *) b)->sequence;
  return x > y ? -1 : x < y;
}

typedef struct
{
  EtaActivityLog *self;
  Entry *entry;
} Lookup;

static void
on_key_found (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Lookup *lookup = user_data;
  EtaActivityLog *self = lookup->self;
  Entry *entry = lookup->entry;
  g_autoptr (EtaTokenKey) key = eta_token_manager_find_key_finish (ETA_TOKEN_MANAGER (source),
                                                                   result, NULL);

  if (key != NULL)
    {
      entry->public.key_label = g_strdup (eta_token_key_get_label (key));
      entry->public.token_label = g_strdup (eta_token_key_get_token_label (key));
      entry->public.mounts = eta_mount_table_mounts_for_sig (NULL, eta_token_key_get_sig (key));
    }
  else
    {
      /* Pulled out meanwhile: the entry still says when and for whom. */
      entry->public.key_label = g_strndup (entry->public.fingerprint, 16);
      entry->public.token_label = g_strdup ("");
      entry->public.mounts = g_new0 (gchar *, 1);
    }
  /* Lookups may finish out of order. */
  g_queue_insert_sorted (&self->entries, entry, newer_first, NULL);
  while (g_queue_get_length (&self->entries) > ETA_ACTIVITY_LOG_SIZE)
    entry_free (g_queue_pop_tail (&self->entries));
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
  g_object_unref (self);
  g_free (lookup);
}

void
eta_activity_log_record_unwrap (EtaActivityLog *self, const gchar *fingerprint,
                                const gchar *requester)
{
  Lookup *lookup = g_new0 (Lookup, 1);
  Entry *entry = g_new0 (Entry, 1);

  entry->public.time = g_get_real_time () / G_USEC_PER_SEC;
  entry->public.fingerprint = g_strdup (fingerprint);
  entry->public.requester = g_strdup (requester);
  entry->sequence = ++self->last_sequence;
  lookup->self = g_object_ref (self);
  lookup->entry = entry;
  eta_token_manager_find_key_async (self->manager, fingerprint, NULL, on_key_found, lookup);
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
  return &entry->public;
}

static void
eta_activity_log_finalize (GObject *object)
{
  EtaActivityLog *self = ETA_ACTIVITY_LOG (object);

  g_queue_clear_full (&self->entries, (GDestroyNotify) entry_free);
  g_object_unref (self->manager);
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
eta_activity_log_new (EtaTokenManager *manager)
{
  EtaActivityLog *self = g_object_new (ETA_TYPE_ACTIVITY_LOG, NULL);

  self->manager = g_object_ref (manager);
  return self;
}

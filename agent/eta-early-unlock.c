/* See eta-early-unlock.h. */
#define G_LOG_DOMAIN "eta-early-unlock"

#include "config.h"

#include "eta-early-unlock.h"

#include <unistd.h>

#include <glib/gi18n.h>

#include "eta-mount-table.h"
#include "eta-user-keyring.h"

struct _EtaEarlyUnlock
{
  GObject parent_instance;

  EtaTokenManager *manager;
  EtaPolicy *policy;
  gulong state_handler;
  /* "label\nserial" of the tokens an early login is under way for: one
   * prompt per token, its other keys share the login. */
  GHashTable *unlocking;
};

G_DEFINE_FINAL_TYPE (EtaEarlyUnlock, eta_early_unlock, G_TYPE_OBJECT)

/* A look at the keys of one token (or of all), and why. */
typedef struct
{
  EtaEarlyUnlock *self;
  gchar *token_label;      /* NULL: every token */
  gchar *token_serial;
  const gchar *requester;  /* for the prompt */
  GStrv in_use;            /* sigs */
} Look;

static void
look_free (Look *look)
{
  g_object_unref (look->self);
  g_free (look->token_label);
  g_free (look->token_serial);
  g_strfreev (look->in_use);
  g_free (look);
}

/* An early login under way. */
typedef struct
{
  EtaEarlyUnlock *self;
  gchar *token;            /* "label\nserial" */
} Unlock;

static void
on_unlocked (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Unlock *unlock = user_data;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *token_label = NULL;

  if (eta_token_manager_unlock_finish (ETA_TOKEN_MANAGER (source), result, NULL, &token_label,
                                       &error))
    g_message ("unlocked token %s early", token_label);
  else
    g_message ("did not unlock a token early: %s", error->message);
  g_hash_table_remove (unlock->self->unlocking, unlock->token);
  g_object_unref (unlock->self);
  g_free (unlock->token);
  g_free (unlock);
}

static void
unlock_token (EtaEarlyUnlock *self, EtaTokenKey *key, const gchar *requester)
{
  EtaRequester who = { 0 };
  Unlock *unlock;
  gchar *token = g_strdup_printf ("%s\n%s", eta_token_key_get_token_label (key),
                                  eta_token_key_get_token_serial (key));

  if (!g_hash_table_add (self->unlocking, token))
    return;
  who.requester = requester;
  who.pid = (guint) getpid ();
  who.key_label = eta_token_key_get_label (key);
  who.token_label = eta_token_key_get_token_label (key);
  who.interactive = TRUE;
  who.background = TRUE;
  unlock = g_new0 (Unlock, 1);
  unlock->self = g_object_ref (self);
  unlock->token = g_strdup (token);
  g_message ("key %.16s on token %s is in use: unlocking the token early",
             eta_token_key_get_fingerprint (key), eta_token_key_get_token_label (key));
  eta_token_manager_unlock_async (self->manager, eta_token_key_get_fingerprint (key), &who,
                                  NULL, on_unlocked, unlock);
}

static void
on_keys_listed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Look *look = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) keys = eta_token_manager_list_keys_finish (ETA_TOKEN_MANAGER (source),
                                                                   result, &error);

  if (keys == NULL)
    g_message ("cannot look for keys in use on the tokens: %s", error->message);
  for (guint i = 0; keys != NULL && i < keys->len; i++)
    {
      EtaTokenKey *key = g_ptr_array_index (keys, i);

      if (look->token_label != NULL
          && (g_strcmp0 (eta_token_key_get_token_label (key), look->token_label) != 0
              || g_strcmp0 (eta_token_key_get_token_serial (key), look->token_serial) != 0))
        continue;
      if (g_strv_contains ((const gchar * const *) look->in_use, eta_token_key_get_sig (key)))
        unlock_token (look->self, key, look->requester);
    }
  look_free (look);
}

/* Looks for keys in use on the token @label/@serial (NULL: on every token)
 * and logs in to the tokens holding one. */
static void
look_at_tokens (EtaEarlyUnlock *self, const gchar *label, const gchar *serial,
                const gchar *requester)
{
  g_autoptr (GStrvBuilder) in_use = g_strv_builder_new ();
  g_auto (GStrv) keyring_sigs = NULL;
  g_auto (GStrv) mount_sigs = NULL;
  Look *look;

  if (!eta_policy_get_unlock_early (self->policy))
    return;
  keyring_sigs = eta_user_keyring_list_sigs ();
  mount_sigs = eta_mount_table_list_sigs (NULL);
  /* Nothing in use: no need to list the keys on the tokens. */
  if (keyring_sigs[0] == NULL && mount_sigs[0] == NULL)
    return;
  g_strv_builder_addv (in_use, (const gchar **) keyring_sigs);
  g_strv_builder_addv (in_use, (const gchar **) mount_sigs);
  look = g_new0 (Look, 1);
  look->self = g_object_ref (self);
  look->token_label = g_strdup (label);
  look->token_serial = g_strdup (serial);
  look->requester = requester;
  look->in_use = g_strv_builder_end (in_use);
  eta_token_manager_list_keys_async (self->manager, NULL, on_keys_listed, look);
}

static void
on_token_state_changed (EtaTokenManager *manager, const gchar *label, const gchar *serial,
                        const gchar *state, gpointer user_data)
{
  /* TRANSLATORS: shown as who asks for the PIN when the agent logs in to
   * a token as soon as it is inserted. */
  if (g_str_equal (state, "present"))
    look_at_tokens (user_data, label, serial, _("ecryptfs-token-agent: token inserted"));
}

static void
eta_early_unlock_dispose (GObject *object)
{
  EtaEarlyUnlock *self = ETA_EARLY_UNLOCK (object);

  g_clear_signal_handler (&self->state_handler, self->manager);
  g_clear_object (&self->manager);
  g_clear_object (&self->policy);
  G_OBJECT_CLASS (eta_early_unlock_parent_class)->dispose (object);
}

static void
eta_early_unlock_finalize (GObject *object)
{
  EtaEarlyUnlock *self = ETA_EARLY_UNLOCK (object);

  g_hash_table_destroy (self->unlocking);
  G_OBJECT_CLASS (eta_early_unlock_parent_class)->finalize (object);
}

static void
eta_early_unlock_class_init (EtaEarlyUnlockClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = eta_early_unlock_dispose;
  G_OBJECT_CLASS (klass)->finalize = eta_early_unlock_finalize;
}

static void
eta_early_unlock_init (EtaEarlyUnlock *self)
{
  self->unlocking = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

EtaEarlyUnlock *
eta_early_unlock_new (EtaTokenManager *manager, EtaPolicy *policy)
{
  EtaEarlyUnlock *self = g_object_new (ETA_TYPE_EARLY_UNLOCK, NULL);

  self->manager = g_object_ref (manager);
  self->policy = g_object_ref (policy);
  self->state_handler = g_signal_connect (manager, "token-state-changed",
                                          G_CALLBACK (on_token_state_changed), self);
  /* TRANSLATORS: shown as who asks for the PIN when the agent logs in to
   * a token that is present when it starts. */
  look_at_tokens (self, NULL, NULL, _("ecryptfs-token-agent: token present at start"));
  return self;
}

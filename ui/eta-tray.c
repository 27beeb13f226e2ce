/* See eta-tray.h. */
#define G_LOG_DOMAIN "eta-tray"

#include "config.h"

#include "eta-tray.h"

#include <glib/gi18n.h>

#include "eta-dbus-menu.h"
#include "eta-pin-store.h"
#include "eta-status-notifier-item.h"
#include "eta-tokens-window.h"

/* How long "Forget remembered PINs" waits for the Secret Service. */
#define FORGET_TIMEOUT_MS 10000

typedef struct
{
  gchar *label;
  gchar *serial;
  gboolean logged_in;
} Token;

struct _EtaTray
{
  GObject parent_instance;

  /* borrowed from the agent, referenced */
  EtaTokenManager *manager;
  EtaPolicy *policy;
  EtaActivityLog *activity;
  EtaGtkPrompter *prompter;
  EtaEcryptfsdWatch *ecryptfsd;

  /* owned */
  EtaStatusNotifierItem *item;
  EtaDBusMenu *menu;
  GPtrArray *tokens;             /* Token, as the manager last said */
  GCancellable *cancellable;     /* the token listing in flight */
  guint64 token_changes;         /* token-state-changed signals seen */
  guint64 listed_changes;        /* token_changes when the listing started */
  EtaTokensWindow *window;       /* weak; NULL when closed */
};

G_DEFINE_FINAL_TYPE (EtaTray, eta_tray, G_TYPE_OBJECT)

static void
token_free (Token *token)
{
  g_free (token->label);
  g_free (token->serial);
  g_free (token);
}

static Token *
find_token (EtaTray *self, const gchar *label, const gchar *serial, guint *index)
{
  for (guint i = 0; i < self->tokens->len; i++)
    {
      Token *token = g_ptr_array_index (self->tokens, i);
      if (g_str_equal (token->label, label) && g_str_equal (token->serial, serial))
        {
          if (index != NULL)
            *index = i;
          return token;
        }
    }
  return NULL;
}

static Token *
add_token (EtaTray *self, const gchar *label, const gchar *serial)
{
  Token *token = g_new0 (Token, 1);

  token->label = g_strdup (label);
  token->serial = g_strdup (serial);
  g_ptr_array_add (self->tokens, token);
  return token;
}

static gboolean
any_logged_in (EtaTray *self)
{
  for (guint i = 0; i < self->tokens->len; i++)
    if (((Token *) g_ptr_array_index (self->tokens, i))->logged_in)
      return TRUE;
  return FALSE;
}

/* ---- the icon and its tooltip ---- */

/* "14:05" today, with the date on another day. */
static gchar *
format_time (gint64 unix_time)
{
  g_autoptr (GDateTime) when = g_date_time_new_from_unix_local (unix_time);
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();

  if (g_date_time_get_year (when) == g_date_time_get_year (now)
      && g_date_time_get_day_of_year (when) == g_date_time_get_day_of_year (now))
    /* TRANSLATORS: a time of day today, in g_date_time_format()'s notation. */
    return g_date_time_format (when, C_("time today", "%H:%M"));
  /* TRANSLATORS: a date and time, in g_date_time_format()'s notation. */
  return g_date_time_format (when, C_("date and time", "%b %-d, %H:%M"));
}

static gchar *
describe_token (EtaTray *self, const Token *token)
{
  gint64 deadline = self->policy ? eta_policy_get_lock_deadline (self->policy) : 0;
  g_autofree gchar *until = NULL;

  if (!token->logged_in)
    return g_strdup (_("Locked: the PIN is asked for when a file is opened"));
  if (deadline == 0)
    return g_strdup (_("Unlocked until the token is removed"));
  until = format_time (deadline);
  return g_strdup_printf (_("Unlocked until %s"), until);
}

/* What is wrong with ecryptfsd while an eCryptfs mount needs it, or NULL. */
static gchar *
daemon_problem (EtaTray *self)
{
  return self->ecryptfsd != NULL && eta_ecryptfsd_watch_get_needed (self->ecryptfsd)
           ? eta_ecryptfsd_describe_problem (eta_ecryptfsd_watch_get_state (self->ecryptfsd))
           : NULL;
}

static void
update_item (EtaTray *self)
{
  g_autoptr (GString) title = g_string_new (NULL);
  g_autoptr (GString) description = g_string_new (NULL);
  gboolean asking = self->prompter && eta_gtk_prompter_get_open_prompts (self->prompter) > 0;
  const gchar *icon;

  if (asking)
    icon = ETA_TRAY_ICON_ASKING;
  else if (any_logged_in (self))
    icon = ETA_TRAY_ICON_UNLOCKED;
  else if (self->tokens->len > 0)
    icon = ETA_TRAY_ICON_LOCKED;
  else
    icon = ETA_TRAY_ICON_NO_TOKEN;

  if (asking)
    g_string_append (description, _("A prompt is waiting for your PIN or your token."));
  for (guint i = 0; i < self->tokens->len; i++)
    {
      Token *token = g_ptr_array_index (self->tokens, i);
      g_autofree gchar *state = describe_token (self, token);

      g_string_append_printf (title, "%s%s", i > 0 ? ", " : "", token->label);
      if (description->len > 0)
        g_string_append_c (description, '\n');
      if (self->tokens->len > 1)
        g_string_append_printf (description, "%s: %s", token->label, state);
      else
        g_string_append (description, state);
    }
  if (self->tokens->len == 0)
    {
      g_string_assign (title, _("No token inserted"));
      if (!asking)
        g_string_assign (description, _("Insert your token to open encrypted files."));
    }
  /* Whatever the tokens: without the daemon no file opens. */
  {
    g_autofree gchar *problem = daemon_problem (self);

    if (problem != NULL)
      {
        g_string_prepend_c (description, '\n');
        g_string_prepend (description, problem);
      }
  }

  eta_status_notifier_item_set_icon_name (self->item, icon);
  eta_status_notifier_item_set_tooltip (self->item, icon, title->str, description->str);
  eta_status_notifier_item_set_status (self->item,
                                       asking ? "NeedsAttention"
                                       : self->tokens->len > 0 ? "Active" : "Passive");
}

/* ---- the menu ---- */

static void
add_activity (EtaTray *self)
{
  guint n = eta_activity_log_get_length (self->activity);

  eta_dbus_menu_add_item (self->menu, NULL, "activity", _("Recent Activity"), TRUE);
  if (n == 0)
    eta_dbus_menu_add_item (self->menu, "activity", "activity none",
                            _("No encrypted file opened yet"), FALSE);
  for (guint i = 0; i < n; i++)
    {
      const EtaActivity *entry = eta_activity_log_get (self->activity, i);
      g_autofree gchar *action = g_strdup_printf ("activity %u", i);
      g_autofree gchar *when = format_time (entry->time);
      g_autofree gchar *mounts = g_strjoinv (", ", entry->mounts);
      g_autofree gchar *label = NULL;

      /* TRANSLATORS: time, key label, the program that asked, the mounts. */
      label = g_strdup_printf (_("%s — “%s” for %s — %s"), when, entry->key_label,
                               entry->requester, *mounts ? mounts : _("no mount"));
      eta_dbus_menu_add_item (self->menu, "activity", action, label, FALSE);
    }
}

static void
update_menu (EtaTray *self)
{
  g_autofree gchar *problem = daemon_problem (self);

  eta_dbus_menu_begin (self->menu);
  if (problem != NULL)
    eta_dbus_menu_add_item (self->menu, NULL, "ecryptfsd", problem, FALSE);
  for (guint i = 0; i < self->tokens->len; i++)
    {
      Token *token = g_ptr_array_index (self->tokens, i);
      g_autofree gchar *action = g_strdup_printf ("token %s %s", token->label, token->serial);
      g_autofree gchar *label = g_strdup_printf (token->logged_in ? _("%s — unlocked")
                                                                  : _("%s — locked"),
                                                 token->label);
      eta_dbus_menu_add_item (self->menu, NULL, action, label, FALSE);
    }
  if (self->tokens->len == 0)
    eta_dbus_menu_add_item (self->menu, NULL, "no token", _("No token inserted"), FALSE);
  eta_dbus_menu_add_separator (self->menu, NULL);
  eta_dbus_menu_add_item (self->menu, NULL, "lock", _("Lock Now"), any_logged_in (self));
  eta_dbus_menu_add_item (self->menu, NULL, "forget", _("Forget Remembered PINs"), TRUE);
  eta_dbus_menu_add_separator (self->menu, NULL);
  eta_dbus_menu_add_item (self->menu, NULL, "tokens", _("Tokens and Keys…"), TRUE);
  add_activity (self);
  eta_dbus_menu_add_separator (self->menu, NULL);
  eta_dbus_menu_add_item (self->menu, NULL, "quit", _("Quit"), TRUE);
  eta_dbus_menu_commit (self->menu);
}

static void
update (EtaTray *self)
{
  update_item (self);
  update_menu (self);
}

/* ---- following the tokens ---- */

static void list_tokens (EtaTray *self);

static void
on_tokens_listed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) tokens = eta_token_manager_list_tokens_finish (ETA_TOKEN_MANAGER (source),
                                                                     result, &error);
  EtaTray *self;
  GVariantIter iter;
  const gchar *label, *serial, *state;
  GVariant *token;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  self = ETA_TRAY (user_data);
  if (tokens == NULL)
    {
      g_message ("cannot list the tokens: %s", error->message);
      return;
    }
  /* A token changed while the list was made: it may be out of date. */
  if (self->listed_changes != self->token_changes)
    {
      list_tokens (self);
      return;
    }
  g_ptr_array_set_size (self->tokens, 0);
  g_variant_iter_init (&iter, tokens);
  while ((token = g_variant_iter_next_value (&iter)) != NULL)
    {
      if (g_variant_lookup (token, "label", "&s", &label)
          && g_variant_lookup (token, "serial", "&s", &serial)
          && g_variant_lookup (token, "state", "&s", &state))
        add_token (self, label, serial)->logged_in = g_str_equal (state, "logged-in");
      g_variant_unref (token);
    }
  update (self);
}

static void
list_tokens (EtaTray *self)
{
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  self->listed_changes = self->token_changes;
  eta_token_manager_list_tokens_async (self->manager, self->cancellable, on_tokens_listed, self);
}

static void
on_token_state_changed (EtaTokenManager *manager, const gchar *label, const gchar *serial,
                        const gchar *state, EtaTray *self)
{
  guint index;
  Token *token = find_token (self, label, serial, &index);

  self->token_changes++;
  if (g_str_equal (state, "absent"))
    {
      if (token != NULL)
        g_ptr_array_remove_index (self->tokens, index);
    }
  else
    {
      if (token == NULL)
        token = add_token (self, label, serial);
      token->logged_in = g_str_equal (state, "logged-in");
    }
  update (self);
}

/* ---- what the menu does ---- */

static void
open_window (EtaTray *self)
{
  if (self->window == NULL)
    {
      self->window = eta_tokens_window_new (self->manager);
      g_object_add_weak_pointer (G_OBJECT (self->window), (gpointer *) &self->window);
    }
  else
    eta_tokens_window_refresh (self->window);
  gtk_window_present (GTK_WINDOW (self->window));
}

static void
on_locked (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;

  if (!eta_token_manager_lock_finish (ETA_TOKEN_MANAGER (source), result, &error))
    g_warning ("locking the tokens from the tray failed: %s", error->message);
}

static void
on_pins_forgotten (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GNotification) notification = NULL;
  GApplication *application = g_application_get_default ();
  gint forgotten = eta_pin_store_forget_all_finish (result, &error);

  if (forgotten < 0)
    {
      g_message ("cannot forget the remembered PINs: %s", error->message);
      notification = g_notification_new (_("The remembered PINs could not be forgotten"));
      g_notification_set_body (notification, error->message);
    }
  else
    {
      g_autofree gchar *title = g_strdup_printf (ngettext ("Forgot %d remembered PIN",
                                                           "Forgot %d remembered PINs",
                                                           forgotten),
                                                 forgotten);
      g_message ("forgot %d remembered PINs", forgotten);
      notification = g_notification_new (forgotten > 0 ? title : _("No PIN was remembered"));
    }
  if (application != NULL)
    g_application_send_notification (application, "pins-forgotten", notification);
}

static void
on_menu_activated (EtaDBusMenu *menu, const gchar *action, EtaTray *self)
{
  GApplication *application = g_application_get_default ();

  if (g_str_equal (action, "lock"))
    eta_token_manager_lock_async (self->manager, NULL, on_locked, NULL);
  else if (g_str_equal (action, "forget"))
    eta_pin_store_forget_all_async (FORGET_TIMEOUT_MS, NULL, on_pins_forgotten, NULL);
  else if (g_str_equal (action, "tokens"))
    open_window (self);
  else if (g_str_equal (action, "quit") && application != NULL)
    {
      g_message ("quitting, as asked from the tray");
      g_application_quit (application);
    }
}

/* ---- life cycle ---- */

gboolean
eta_tray_export (EtaTray *self, GDBusConnection *connection, GError **error)
{
  if (!eta_dbus_menu_export (self->menu, connection, ETA_TRAY_MENU_PATH, error))
    return FALSE;
  if (!eta_status_notifier_item_export (self->item, connection, error))
    {
      eta_dbus_menu_unexport (self->menu);
      return FALSE;
    }
  list_tokens (self);
  return TRUE;
}

void
eta_tray_unexport (EtaTray *self)
{
  eta_status_notifier_item_unexport (self->item);
  eta_dbus_menu_unexport (self->menu);
}

static void
eta_tray_dispose (GObject *object)
{
  EtaTray *self = ETA_TRAY (object);

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  if (self->window != NULL)
    {
      g_object_remove_weak_pointer (G_OBJECT (self->window), (gpointer *) &self->window);
      gtk_window_destroy (GTK_WINDOW (g_steal_pointer (&self->window)));
    }
  g_clear_object (&self->item);
  g_clear_object (&self->menu);
  g_clear_object (&self->prompter);
  g_clear_object (&self->ecryptfsd);
  g_clear_object (&self->activity);
  g_clear_object (&self->policy);
  g_clear_object (&self->manager);
  g_clear_pointer (&self->tokens, g_ptr_array_unref);
  G_OBJECT_CLASS (eta_tray_parent_class)->dispose (object);
}

static void
eta_tray_class_init (EtaTrayClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = eta_tray_dispose;
}

static void
eta_tray_init (EtaTray *self)
{
  self->tokens = g_ptr_array_new_with_free_func ((GDestroyNotify) token_free);
}

EtaTray *
eta_tray_new (EtaTokenManager *manager, EtaPolicy *policy, EtaActivityLog *activity,
              EtaGtkPrompter *prompter, EtaEcryptfsdWatch *ecryptfsd)
{
  EtaTray *self = g_object_new (ETA_TYPE_TRAY, NULL);
  /* Hosts look the icons up in the installed theme; an uninstalled agent
   * (tests) is pointed at the source tree's data/icons. */
  const gchar *theme_path = g_getenv ("ECRYPTFS_TOKEN_AGENT_ICON_THEME_PATH");

  self->manager = g_object_ref (manager);
  self->policy = policy ? g_object_ref (policy) : NULL;
  self->activity = g_object_ref (activity);
  self->prompter = prompter ? g_object_ref (prompter) : NULL;
  self->ecryptfsd = ecryptfsd ? g_object_ref (ecryptfsd) : NULL;
  self->item = eta_status_notifier_item_new ("ecryptfs-token-agent",
                                             _("eCryptfs Token Agent"), ETA_TRAY_MENU_PATH,
                                             theme_path ? theme_path : ETA_ICON_THEME_PATH);
  eta_status_notifier_item_set_attention_icon_name (self->item, ETA_TRAY_ICON_ASKING);
  self->menu = eta_dbus_menu_new ();

  g_signal_connect_object (manager, "token-state-changed",
                           G_CALLBACK (on_token_state_changed), self, 0);
  if (policy != NULL)
    g_signal_connect_object (policy, "notify::lock-deadline", G_CALLBACK (update_item), self,
                             G_CONNECT_SWAPPED);
  if (prompter != NULL)
    g_signal_connect_object (prompter, "notify::open-prompts", G_CALLBACK (update), self,
                             G_CONNECT_SWAPPED);
  g_signal_connect_object (activity, "changed", G_CALLBACK (update_menu), self,
                           G_CONNECT_SWAPPED);
  if (ecryptfsd != NULL)
    {
      g_signal_connect_object (ecryptfsd, "notify::state", G_CALLBACK (update), self,
                               G_CONNECT_SWAPPED);
      g_signal_connect_object (ecryptfsd, "notify::needed", G_CALLBACK (update), self,
                               G_CONNECT_SWAPPED);
    }
  g_signal_connect_object (self->item, "activate", G_CALLBACK (open_window), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->menu, "activated", G_CALLBACK (on_menu_activated), self, 0);
  g_signal_connect_object (self->menu, "about-to-show", G_CALLBACK (list_tokens), self,
                           G_CONNECT_SWAPPED);
  update (self);
  return self;
}

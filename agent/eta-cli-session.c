/* ecryptfs-token's session commands: status, unlock, lock, forget. */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include <glib/gi18n.h>

#include "eta-cli.h"
#include "eta-ecryptfsd-probe.h"
#include "eta-key-id.h"
#include "eta-mount-table.h"
#include "eta-pin-store.h"

/* Who asks, for the agent's prompt. */
static GVariant *
requester_details (void)
{
  g_auto (GVariantBuilder) details = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (&details, "{sv}", "requester", g_variant_new_string ("ecryptfs-token"));
  g_variant_builder_add (&details, "{sv}", "pid", g_variant_new_uint32 ((guint32) getpid ()));
  return g_variant_builder_end (&details);
}

/* ---- status ---- */

/* A key we know by its sig: from the agent's list or an enrolment record. */
typedef struct
{
  gchar *fingerprint;
  gchar *key_label;
} KnownKey;

static void
known_key_free (KnownKey *key)
{
  g_free (key->fingerprint);
  g_free (key->key_label);
  g_free (key);
}

static void
know_key (GHashTable *known, const gchar *sig, const gchar *fingerprint, const gchar *label)
{
  KnownKey *key;

  if (g_hash_table_contains (known, sig))
    return;
  key = g_new0 (KnownKey, 1);
  key->fingerprint = g_strdup (fingerprint);
  key->key_label = g_strdup (label);
  g_hash_table_insert (known, g_strdup (sig), key);
}

static gchar *
describe_login (GVariant *token)
{
  gint64 expires = 0;
  g_autoptr (GDateTime) when = NULL;
  g_autofree gchar *time = NULL;

  if (!g_str_equal (eta_cli_lookup_string (token, "state"), "logged-in"))
    return g_strdup (_("locked"));
  if (!g_variant_lookup (token, "login-expires", "x", &expires) || expires <= 0)
    return g_strdup (_("unlocked until the token is removed or locked"));
  when = g_date_time_new_from_unix_local (expires);
  time = g_date_time_format (when, "%Y-%m-%d %H:%M:%S");
  return g_strdup_printf (_("unlocked until %s"), time);
}

int
eta_cli_command_status (const EtaCliOptions *options, int argc, char **argv)
{
  g_autoptr (GHashTable) known = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                       (GDestroyNotify) known_key_free);
  g_autoptr (GVariant) tokens_reply = NULL;
  g_autoptr (GVariant) keys_reply = NULL;
  g_autoptr (GVariant) tokens = NULL;
  g_autoptr (GPtrArray) records = eta_public_key_list_records ();
  g_auto (GVariantBuilder) json_mounts = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));
  g_autoptr (GString) mounts_text = g_string_new (NULL);
  EtaCliExit exit_code = ETA_CLI_EXIT_OK;
  gboolean running;
  GHashTableIter iter;
  gpointer sig, value;
  pid_t daemon_pid = 0;
  EtaEcryptfsdState daemon = eta_ecryptfsd_probe (geteuid (), &daemon_pid);
  g_autofree gchar *daemon_problem = eta_ecryptfsd_describe_problem (daemon);

  if (argc != 1)
    {
      eta_cli_error ("status", _("takes no arguments"));
      return ETA_CLI_EXIT_USAGE;
    }
  /* Asking must not start an agent: the answer would always be yes. */
  running = eta_cli_agent_is_running ();
  if (running)
    {
      tokens_reply = eta_cli_call_agent ("status", _("listing tokens"), "ListTokens", NULL,
                                         G_VARIANT_TYPE ("(aa{sv})"), 30000, FALSE, &exit_code);
      keys_reply = eta_cli_call_agent ("status", _("listing keys"), "ListKeys", NULL,
                                       G_VARIANT_TYPE ("(aa{sv})"), 30000, FALSE, &exit_code);
      if (tokens_reply == NULL || keys_reply == NULL)
        return exit_code;
      tokens = g_variant_get_child_value (tokens_reply, 0);
    }
  else
    tokens = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE_VARDICT, NULL, 0));

  if (keys_reply != NULL)
    {
      g_autoptr (GVariant) keys = g_variant_get_child_value (keys_reply, 0);
      GVariantIter key_iter;
      GVariant *key;

      g_variant_iter_init (&key_iter, keys);
      while ((key = g_variant_iter_next_value (&key_iter)) != NULL)
        {
          know_key (known, eta_cli_lookup_string (key, "sig"), eta_cli_lookup_string (key, "fingerprint"),
                    eta_cli_lookup_string (key, "key-label"));
          g_variant_unref (key);
        }
    }
  for (guint i = 0; i < records->len; i++)
    {
      EtaPublicKeyRecord *record = g_ptr_array_index (records, i);
      gchar record_sig[ETA_KEY_SIG_HEX_LEN + 1];

      if (eta_cli_key_sig (record, record_sig))
        know_key (known, record_sig, record->fingerprint_hex, record->key_label);
    }

  g_hash_table_iter_init (&iter, known);
  while (g_hash_table_iter_next (&iter, &sig, &value))
    {
      KnownKey *key = value;
      g_auto (GStrv) mounts = eta_mount_table_mounts_for_sig (NULL, sig);

      for (gsize i = 0; mounts[i] != NULL; i++)
        {
          g_variant_builder_open (&json_mounts, G_VARIANT_TYPE_VARDICT);
          g_variant_builder_add (&json_mounts, "{sv}", "mount-point",
                                 g_variant_new_string (mounts[i]));
          g_variant_builder_add (&json_mounts, "{sv}", "sig", g_variant_new_string (sig));
          g_variant_builder_add (&json_mounts, "{sv}", "fingerprint",
                                 g_variant_new_string (key->fingerprint));
          g_variant_builder_add (&json_mounts, "{sv}", "key-label",
                                 g_variant_new_string (key->key_label));
          g_variant_builder_close (&json_mounts);
          g_string_append_printf (mounts_text, "  %s  %.16s  (%s)\n", mounts[i], key->fingerprint,
                                  key->key_label);
        }
    }

  if (options->json)
    {
      g_auto (GVariantBuilder) all = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
      g_autoptr (GVariant) result = NULL;
      g_variant_builder_add (&all, "{sv}", "agent-running", g_variant_new_boolean (running));
      g_variant_builder_add (&all, "{sv}", "ecryptfsd",
                             g_variant_new_string (eta_ecryptfsd_state_to_string (daemon)));
      if (daemon_pid > 0)
        g_variant_builder_add (&all, "{sv}", "ecryptfsd-pid",
                               g_variant_new_uint32 ((guint32) daemon_pid));
      g_variant_builder_add (&all, "{sv}", "tokens", tokens);
      g_variant_builder_add (&all, "{sv}", "mounts", g_variant_builder_end (&json_mounts));
      result = g_variant_ref_sink (g_variant_builder_end (&all));
      eta_cli_print_json (result);
    }
  else
    {
      GVariantIter token_iter;
      GVariant *token;

      g_print ("%s\n", running ? _("Agent: running") : _("Agent: not running"));
      if (daemon == ETA_ECRYPTFSD_RUNNING)
        g_print (_("ecryptfsd: running (pid %d)\n"), (int) daemon_pid);
      else
        g_print (_("ecryptfsd: %s\n"), daemon_problem);
      g_print ("%s\n", _("Tokens:"));
      if (g_variant_n_children (tokens) == 0)
        g_print ("  %s\n", running ? _("(no token present)") : _("(unknown without the agent)"));
      g_variant_iter_init (&token_iter, tokens);
      while ((token = g_variant_iter_next_value (&token_iter)) != NULL)
        {
          g_autofree gchar *login = describe_login (token);
          g_print ("  \"%s\" (%s %s): %s\n", eta_cli_lookup_string (token, "label"), _("serial"),
                   eta_cli_lookup_string (token, "serial"), login);
          g_variant_unref (token);
        }
      g_print ("%s\n", _("Mounts using token keys:"));
      g_print ("%s", mounts_text->len ? mounts_text->str : "  -\n");
    }
  return running ? ETA_CLI_EXIT_OK : ETA_CLI_EXIT_NO_AGENT;
}

/* ---- unlock ---- */

static EtaCliExit
unlock_key (const gchar *fingerprint)
{
  g_autoptr (GVariant) reply = NULL;
  EtaCliExit exit_code = ETA_CLI_EXIT_OK;
  const gchar *full_fingerprint, *token_label;

  /* No timeout of our own: the person is typing a PIN or finding a token. */
  reply = eta_cli_call_agent ("unlock", _("unlocking"), "Unlock",
                              g_variant_new ("(s@a{sv})", fingerprint, requester_details ()),
                              G_VARIANT_TYPE ("(ss)"), G_MAXINT, TRUE, &exit_code);
  if (reply == NULL)
    return exit_code;
  g_variant_get (reply, "(&s&s)", &full_fingerprint, &token_label);
  g_print (_("Token \"%s\" is unlocked (key %.16s).\n"), token_label, full_fingerprint);
  return ETA_CLI_EXIT_OK;
}

int
eta_cli_command_unlock (const EtaCliOptions *options, int argc, char **argv)
{
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) keys = NULL;
  g_autoptr (GPtrArray) chosen = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) tokens_seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                             NULL);
  EtaCliExit exit_code = ETA_CLI_EXIT_OK;
  gboolean any_in_use = FALSE;
  GVariantIter iter;
  GVariant *key;

  if (argc > 2)
    {
      g_printerr (_("usage: ecryptfs-token unlock [FINGERPRINT]\n"));
      return ETA_CLI_EXIT_USAGE;
    }
  if (argc == 2)
    {
      g_autofree gchar *fingerprint = eta_cli_parse_fingerprint ("unlock", argv[1]);
      return fingerprint ? unlock_key (fingerprint) : ETA_CLI_EXIT_USAGE;
    }

  /* Without a fingerprint: the tokens of the keys in use (in the keyring or
   * mounted), or every token with a key when none is in use yet. */
  reply = eta_cli_call_agent ("unlock", _("listing keys"), "ListKeys", NULL,
                              G_VARIANT_TYPE ("(aa{sv})"), 30000, TRUE, &exit_code);
  if (reply == NULL)
    return exit_code;
  keys = g_variant_get_child_value (reply, 0);
  for (int pass = 0; pass < 2 && chosen->len == 0; pass++)
    {
      g_variant_iter_init (&iter, keys);
      while ((key = g_variant_iter_next_value (&iter)) != NULL)
        {
          const gchar *sig = eta_cli_lookup_string (key, "sig");
          g_auto (GStrv) mounts = eta_mount_table_mounts_for_sig (NULL, sig);
          gboolean in_use = eta_cli_keyring_find (sig, NULL, NULL) > 0 || mounts[0] != NULL;
          g_autofree gchar *token = g_strdup_printf ("%s\n%s", eta_cli_lookup_string (key, "token-label"),
                                                     eta_cli_lookup_string (key, "token-serial"));

          any_in_use |= in_use;
          if ((in_use || pass == 1) && !g_hash_table_contains (tokens_seen, token))
            {
              g_hash_table_add (tokens_seen, g_steal_pointer (&token));
              g_ptr_array_add (chosen, g_strdup (eta_cli_lookup_string (key, "fingerprint")));
            }
          g_variant_unref (key);
        }
    }
  if (chosen->len == 0)
    {
      eta_cli_error ("unlock", _("no token with a usable key is present; insert the token, or "
                                 "name the key: ecryptfs-token unlock FINGERPRINT"));
      return ETA_CLI_EXIT_FAILED;
    }
  for (guint i = 0; i < chosen->len; i++)
    {
      EtaCliExit result = unlock_key (g_ptr_array_index (chosen, i));
      if (result != ETA_CLI_EXIT_OK)
        return result;
    }
  return ETA_CLI_EXIT_OK;
}

/* ---- lock ---- */

int
eta_cli_command_lock (const EtaCliOptions *options, int argc, char **argv)
{
  g_autoptr (GVariant) reply = NULL;
  EtaCliExit exit_code = ETA_CLI_EXIT_OK;

  if (argc != 1)
    {
      eta_cli_error ("lock", _("takes no arguments"));
      return ETA_CLI_EXIT_USAGE;
    }
  /* Starting an agent only to lock would be pointless: without one, no token
   * is unlocked. */
  if (!eta_cli_agent_is_running ())
    {
      g_print ("%s\n", _("The token agent is not running: no token is unlocked."));
      return ETA_CLI_EXIT_OK;
    }
  reply = eta_cli_call_agent ("lock", _("locking"), "Lock", NULL, NULL, 30000, FALSE,
                              &exit_code);
  if (reply == NULL)
    return exit_code;
  g_print ("%s\n", _("Logged out of every token; the next file open asks for the PIN."));
  return ETA_CLI_EXIT_OK;
}

/* ---- forget ---- */

typedef struct
{
  GMainLoop *loop;
  gint deleted;
  GError *error;
} ForgetWait;

static void
on_forgotten (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ForgetWait *wait = user_data;

  wait->deleted = eta_pin_store_forget_all_finish (result, &wait->error);
  g_main_loop_quit (wait->loop);
}

int
eta_cli_command_forget (const EtaCliOptions *options, int argc, char **argv)
{
  ForgetWait wait = { 0 };

  if (argc != 1)
    {
      eta_cli_error ("forget", _("takes no arguments"));
      return ETA_CLI_EXIT_USAGE;
    }
  wait.loop = g_main_loop_new (NULL, FALSE);
  /* Long enough for the person to answer the keyring's unlock prompt. */
  eta_pin_store_forget_all_async (60000, NULL, on_forgotten, &wait);
  g_main_loop_run (wait.loop);
  g_main_loop_unref (wait.loop);
  if (wait.deleted < 0)
    {
      eta_cli_error ("forget", _("cannot reach the login keyring (Secret Service): %s"),
                     wait.error->message);
      g_error_free (wait.error);
      return ETA_CLI_EXIT_FAILED;
    }
  g_print (g_dngettext (GETTEXT_PACKAGE, "Forgot %d remembered PIN.\n",
                        "Forgot %d remembered PINs.\n", wait.deleted),
           wait.deleted);
  return ETA_CLI_EXIT_OK;
}

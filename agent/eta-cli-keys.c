/* ecryptfs-token's key commands: list, add-key, remove-key, mount-options. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <ecryptfs.h>
#include <glib/gi18n.h>
#include <keyutils.h>

#include "eta-agent-client.h"
#include "eta-blob.h"
#include "eta-cli.h"
#include "eta-key-id.h"
#include "eta-mount-table.h"
#include "eta-names.h"

struct ecryptfs_key_mod_ops *get_key_mod_ops (void);

/* ---- list ---- */

/* Where the key with @sig is in use: our auth token in the user keyring,
 * and the eCryptfs mounts made with it. */
static void
key_usage (const gchar *sig, gboolean *in_keyring, GStrv *mounts)
{
  *in_keyring = eta_cli_keyring_find (sig, NULL, NULL) > 0;
  *mounts = eta_mount_table_mounts_for_sig (NULL, sig);
}

int
eta_cli_command_list (const EtaCliOptions *options, int argc, char **argv)
{
  g_autoptr (GVariant) keys_reply = NULL;
  g_autoptr (GVariant) tokens_reply = NULL;
  g_autoptr (GVariant) keys = NULL;
  g_autoptr (GVariant) tokens = NULL;
  g_auto (GVariantBuilder) json_keys = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));
  EtaCliExit exit_code = ETA_CLI_EXIT_OK;
  GVariantIter iter;
  GVariant *entry;

  if (argc != 1)
    {
      eta_cli_error ("list", _("takes no arguments"));
      return ETA_CLI_EXIT_USAGE;
    }
  tokens_reply = eta_cli_call_agent ("list", _("listing tokens"), "ListTokens", NULL,
                                     G_VARIANT_TYPE ("(aa{sv})"), 30000, TRUE, &exit_code);
  if (tokens_reply == NULL)
    return exit_code;
  keys_reply = eta_cli_call_agent ("list", _("listing keys"), "ListKeys", NULL,
                                   G_VARIANT_TYPE ("(aa{sv})"), 30000, TRUE, &exit_code);
  if (keys_reply == NULL)
    return exit_code;
  tokens = g_variant_get_child_value (tokens_reply, 0);
  keys = g_variant_get_child_value (keys_reply, 0);

  if (!options->json)
    {
      if (g_variant_n_children (keys) == 0)
        g_print ("%s\n", _("No RSA keys with certificates found on any present token."));
      else
        g_print ("%-64s  %-16s  %5s  %-16s  %-16s  %s\n", _("FINGERPRINT"), _("ECRYPTFS_SIG"),
                 _("BITS"), _("TOKEN"), _("KEY"), _("IN USE"));
    }
  g_variant_iter_init (&iter, keys);
  while ((entry = g_variant_iter_next_value (&iter)) != NULL)
    {
      const gchar *sig = eta_cli_lookup_string (entry, "sig");
      g_auto (GStrv) mounts = NULL;
      gboolean in_keyring;
      guint32 bits = 0;

      key_usage (sig, &in_keyring, &mounts);
      g_variant_lookup (entry, "bits", "u", &bits);
      if (options->json)
        {
          GVariantIter fields;
          const gchar *name;
          GVariant *value;

          g_variant_builder_open (&json_keys, G_VARIANT_TYPE_VARDICT);
          g_variant_iter_init (&fields, entry);
          while (g_variant_iter_next (&fields, "{&sv}", &name, &value))
            {
              g_variant_builder_add (&json_keys, "{sv}", name, value);
              g_variant_unref (value);
            }
          g_variant_builder_add (&json_keys, "{sv}", "in-keyring",
                                 g_variant_new_boolean (in_keyring));
          g_variant_builder_add (&json_keys, "{sv}", "mounts",
                                 g_variant_new_strv ((const gchar * const *) mounts, -1));
          g_variant_builder_close (&json_keys);
        }
      else
        {
          g_autoptr (GString) usage = g_string_new (NULL);
          if (in_keyring)
            g_string_append (usage, _("keyring"));
          for (gsize i = 0; mounts[i] != NULL; i++)
            g_string_append_printf (usage, "%s%s", usage->len ? ", " : "", mounts[i]);
          g_print ("%-64s  %-16s  %5u  %-16s  %-16s  %s\n", eta_cli_lookup_string (entry, "fingerprint"),
                   sig, bits, eta_cli_lookup_string (entry, "token-label"),
                   eta_cli_lookup_string (entry, "key-label"), usage->len ? usage->str : "-");
        }
      g_variant_unref (entry);
    }

  if (options->json)
    {
      g_auto (GVariantBuilder) all = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
      g_autoptr (GVariant) result = NULL;
      g_variant_builder_add (&all, "{sv}", "tokens", tokens);
      g_variant_builder_add (&all, "{sv}", "keys", g_variant_builder_end (&json_keys));
      result = g_variant_ref_sink (g_variant_builder_end (&all));
      eta_cli_print_json (result);
      return ETA_CLI_EXIT_OK;
    }

  g_print ("\n%-20s  %-18s  %s\n", _("TOKEN"), _("SERIAL"), _("STATE"));
  if (g_variant_n_children (tokens) == 0)
    g_print ("%s\n", _("(no token present)"));
  g_variant_iter_init (&iter, tokens);
  while ((entry = g_variant_iter_next_value (&iter)) != NULL)
    {
      const gchar *state = eta_cli_lookup_string (entry, "state");
      g_print ("%-20s  %-18s  %s\n", eta_cli_lookup_string (entry, "label"),
               eta_cli_lookup_string (entry, "serial"),
               g_str_equal (state, "logged-in") ? _("unlocked") : _("locked"));
      g_variant_unref (entry);
    }
  return ETA_CLI_EXIT_OK;
}

/* ---- add-key ---- */

static void
print_mount_options (const gchar *fingerprint, const gchar *sig, EtaPadding padding,
                     EtaWrap wrap)
{
  g_autofree gchar *options = eta_mount_table_options_for_key_with_wrap (
      fingerprint, eta_padding_to_string (padding), eta_wrap_to_string (wrap));

  g_print (_("mount options (mount -t ecryptfs, fstab, ~/.ecryptfsrc):\n"));
  g_print ("  %s\n", options);
  g_print (_("with the key already in the keyring (mount -i):\n"));
  g_print ("  ecryptfs_sig=%s,ecryptfs_cipher=aes,ecryptfs_key_bytes=32,ecryptfs_unlink_sigs\n",
           sig);
}

int
eta_cli_command_add_key (const EtaCliOptions *options, int argc, char **argv)
{
  g_autofree gchar *padding_name = NULL;
  g_autofree gchar *wrap_name = NULL;
  g_autofree gchar *pubkey_file = NULL;
  g_autofree gchar *fingerprint = NULL;
  g_autofree gchar *record_dir = NULL;
  g_autofree gchar *record_path = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (EtaPublicKeyRecord) record = NULL;
  GOptionEntry entries[] = {
    { "padding", 0, 0, G_OPTION_ARG_STRING, &padding_name,
      N_("RSA padding: oaep (default) or pkcs1 (files of the pkcs11-helper module)"), "NAME" },
    { "pubkey", 0, 0, G_OPTION_ARG_FILENAME, &pubkey_file,
      N_("Take the public key from this certificate or key file instead of the agent"),
      "FILE" },
    { "wrap", 0, 0, G_OPTION_ARG_STRING, &wrap_name,
      N_("How new files' keys are wrapped: epoch (default: one token operation per epoch) or "
         "per-file (one per file)"), "MODE" },
    { NULL },
  };
  struct key_mod_param_val values[4];
  struct ecryptfs_key_mod key_mod = { 0 };
  char sig[ETA_KEY_SIG_HEX_LEN + 1] = { 0 };
  char alias[] = ETA_KEYMOD_ALIAS;
  char none[] = "none";
  EtaPadding padding;
  EtaWrap wrap;
  gint padding_before = 0;
  gint wrap_before = 0;
  int rc;

  context = g_option_context_new (_("FINGERPRINT — add a token key to your keyring"));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      eta_cli_error ("add-key", "%s", error->message);
      return ETA_CLI_EXIT_USAGE;
    }
  if (argc != 2)
    {
      g_printerr (_("usage: ecryptfs-token add-key FINGERPRINT [--padding oaep|pkcs1] "
                    "[--pubkey FILE] [--wrap epoch|per-file]\n"));
      return ETA_CLI_EXIT_USAGE;
    }
  fingerprint = eta_cli_parse_fingerprint ("add-key", argv[1]);
  if (fingerprint == NULL)
    return ETA_CLI_EXIT_USAGE;
  padding = eta_padding_from_string (padding_name);
  if (padding == 0)
    {
      eta_cli_error ("add-key", _("--padding must be oaep or pkcs1"));
      return ETA_CLI_EXIT_USAGE;
    }
  wrap = eta_wrap_from_string (wrap_name);
  if (wrap == 0)
    {
      eta_cli_error ("add-key", _("--wrap must be epoch or per-file"));
      return ETA_CLI_EXIT_USAGE;
    }

  record = pubkey_file ? eta_public_key_load_file (pubkey_file, &error)
                       : eta_agent_client_resolve (fingerprint, 30000, &error);
  if (record == NULL)
    {
      gboolean no_agent = pubkey_file == NULL && eta_cli_error_means_no_agent (error)
                          && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED)
                          && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
      g_dbus_error_strip_remote_error (error);
      eta_cli_error ("add-key", "%s", error->message);
      return no_agent ? ETA_CLI_EXIT_NO_AGENT : ETA_CLI_EXIT_FAILED;
    }
  if (!g_str_has_prefix (record->fingerprint_hex, fingerprint))
    {
      eta_cli_error ("add-key", _("%s has fingerprint %s, not %s"),
                     pubkey_file ? pubkey_file : _("the agent's key"),
                     record->fingerprint_hex, fingerprint);
      return ETA_CLI_EXIT_FAILED;
    }
  record->padding = padding;

  /* The padding and the wrap mode are in the auth token, not in the sig: an
   * existing token with another one would silently win at mount time. */
  if (eta_cli_key_sig (record, sig)
      && eta_cli_keyring_find (sig, &padding_before, &wrap_before) > 0)
    {
      if (padding_before != (gint) padding)
        {
          eta_cli_error ("add-key",
                         _("key %.16s is already in your keyring with padding %s; one key is "
                           "used with one padding at a time. To switch, remove it first: "
                           "ecryptfs-token remove-key %.16s"),
                         record->fingerprint_hex, eta_padding_to_string (padding_before),
                         record->fingerprint_hex);
          return ETA_CLI_EXIT_FAILED;
        }
      if (wrap_before != (gint) wrap)
        {
          eta_cli_error ("add-key",
                         _("key %.16s is already in your keyring with wrap mode %s; one key is "
                           "used with one wrap mode at a time. To switch, remove it first: "
                           "ecryptfs-token remove-key %.16s"),
                         record->fingerprint_hex, eta_wrap_to_string (wrap_before),
                         record->fingerprint_hex);
          return ETA_CLI_EXIT_FAILED;
        }
    }

  /* The auth token is made by the key module's own get_blob, as at mount. */
  values[0].val = record->fingerprint_hex;
  values[1].val = (char *) eta_padding_to_string (padding);
  values[2].val = pubkey_file ? pubkey_file : none;
  values[3].val = (char *) eta_wrap_to_string (wrap);
  key_mod.alias = alias;
  key_mod.ops = get_key_mod_ops ();
  key_mod.ops->init (&key_mod.alias);
  key_mod.param_vals = values;
  key_mod.num_param_vals = G_N_ELEMENTS (values);
  rc = ecryptfs_add_key_module_key_to_keyring (sig, &key_mod);
  if (rc < 0)
    {
      eta_cli_error ("add-key", _("could not add the key to the user keyring (error %d); see "
                                  "the system log for the key module's reason"), rc);
      return ETA_CLI_EXIT_FAILED;
    }

  record_dir = g_build_filename (g_get_user_data_dir (), "ecryptfs-token-agent", "keys", NULL);
  if (!eta_public_key_save_record (record, record_dir, &record_path, &error))
    eta_cli_error ("add-key", _("warning: could not save the public key for mount helpers: %s"),
                   error->message);

  if (rc == 1)
    g_print (_("The key %.16s (\"%s\" on token \"%s\") was already in your user keyring.\n"),
             record->fingerprint_hex, record->key_label, record->token_label);
  else
    g_print (_("Added key %.16s (\"%s\" on token \"%s\") to your user keyring.\n"),
             record->fingerprint_hex, record->key_label, record->token_label);
  g_print ("ecryptfs_sig: %s\n", sig);
  if (record_path != NULL)
    g_print (_("public key saved for mount helpers: %s\n"), record_path);
  print_mount_options (record->fingerprint_hex, sig, padding, wrap);
  return ETA_CLI_EXIT_OK;
}

/* ---- remove-key ---- */

int
eta_cli_command_remove_key (const EtaCliOptions *options, int argc, char **argv)
{
  g_autofree gchar *fingerprint = NULL;
  g_autoptr (EtaPublicKeyRecord) record = NULL;
  g_auto (GStrv) mounts = NULL;
  EtaCliExit exit_code = ETA_CLI_EXIT_OK;
  gchar sig[ETA_KEY_SIG_HEX_LEN + 1];
  gint32 key;

  if (argc != 2)
    {
      g_printerr (_("usage: ecryptfs-token remove-key FINGERPRINT\n"));
      return ETA_CLI_EXIT_USAGE;
    }
  fingerprint = eta_cli_parse_fingerprint ("remove-key", argv[1]);
  if (fingerprint == NULL)
    return ETA_CLI_EXIT_USAGE;
  record = eta_cli_find_key ("remove-key", fingerprint, &exit_code);
  if (record == NULL)
    return exit_code;
  if (!eta_cli_key_sig (record, sig))
    {
      eta_cli_error ("remove-key", _("key %.16s is not an RSA key"), record->fingerprint_hex);
      return ETA_CLI_EXIT_FAILED;
    }
  key = eta_cli_keyring_find (sig, NULL, NULL);
  if (key <= 0)
    {
      eta_cli_error ("remove-key", _("key %.16s (ecryptfs_sig %s) is not in your user keyring"),
                     record->fingerprint_hex, sig);
      return ETA_CLI_EXIT_FAILED;
    }
  /* Unlinked, not invalidated: a mount holding the key keeps working until
   * it is unmounted, and the next mount or add-key no longer finds it. */
  if (keyctl_unlink (key, KEY_SPEC_USER_KEYRING) < 0)
    {
      eta_cli_error ("remove-key", _("could not remove key %.16s from the keyring: %s"),
                     record->fingerprint_hex, g_strerror (errno));
      return ETA_CLI_EXIT_FAILED;
    }
  g_print (_("Removed key %.16s (ecryptfs_sig %s) from your user keyring.\n"),
           record->fingerprint_hex, sig);
  mounts = eta_mount_table_mounts_for_sig (NULL, sig);
  for (gsize i = 0; mounts[i] != NULL; i++)
    g_print (_("%s still uses it: the kernel keeps the key until it is unmounted.\n"),
             mounts[i]);
  return ETA_CLI_EXIT_OK;
}

/* ---- mount-options ---- */

/* fstab fields are separated by blanks: they are written as octal escapes. */
static gchar *
fstab_escape (const gchar *path)
{
  GString *escaped = g_string_new (NULL);

  for (const gchar *p = path; *p != '\0'; p++)
    {
      if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\\')
        g_string_append_printf (escaped, "\\%03o", (guint) (guchar) *p);
      else
        g_string_append_c (escaped, *p);
    }
  return g_string_free (escaped, FALSE);
}

int
eta_cli_command_mount_options (const EtaCliOptions *options, int argc, char **argv)
{
  g_autofree gchar *padding_name = NULL;
  g_autofree gchar *wrap_name = NULL;
  g_autofree gchar *format = NULL;
  g_autofree gchar *fingerprint = NULL;
  g_autofree gchar *key_option = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (EtaPublicKeyRecord) record = NULL;
  GOptionEntry entries[] = {
    { "padding", 0, 0, G_OPTION_ARG_STRING, &padding_name,
      N_("RSA padding: oaep or pkcs1 (default: as enrolled, else oaep)"), "NAME" },
    { "format", 0, 0, G_OPTION_ARG_STRING, &format,
      N_("mount (default: the -o argument), fstab (a line for /etc/fstab) or ecryptfsrc "
         "(lines for ~/.ecryptfsrc)"), "FORMAT" },
    { "wrap", 0, 0, G_OPTION_ARG_STRING, &wrap_name,
      N_("How new files' keys are wrapped: epoch or per-file (default: as in the keyring, "
         "else epoch)"), "MODE" },
    { NULL },
  };
  EtaCliExit exit_code = ETA_CLI_EXIT_OK;
  gchar sig[ETA_KEY_SIG_HEX_LEN + 1];
  gint padding_in_keyring = 0;
  gint wrap_in_keyring = 0;
  EtaPadding padding;
  EtaWrap wrap;

  context = g_option_context_new (_("FINGERPRINT [LOWER_DIR MOUNT_POINT] — print mount "
                                    "options for a token key"));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      eta_cli_error ("mount-options", "%s", error->message);
      return ETA_CLI_EXIT_USAGE;
    }
  if (format == NULL)
    format = g_strdup ("mount");
  if ((argc != 2 && argc != 4)
      || !(g_str_equal (format, "mount") || g_str_equal (format, "fstab")
           || g_str_equal (format, "ecryptfsrc")))
    {
      g_printerr (_("usage: ecryptfs-token mount-options FINGERPRINT [--padding oaep|pkcs1] "
                    "[--wrap epoch|per-file] [--format mount|fstab|ecryptfsrc] "
                    "[LOWER_DIR MOUNT_POINT]\n"));
      return ETA_CLI_EXIT_USAGE;
    }
  fingerprint = eta_cli_parse_fingerprint ("mount-options", argv[1]);
  if (fingerprint == NULL)
    return ETA_CLI_EXIT_USAGE;
  if (padding_name != NULL && eta_padding_from_string (padding_name) == 0)
    {
      eta_cli_error ("mount-options", _("--padding must be oaep or pkcs1"));
      return ETA_CLI_EXIT_USAGE;
    }
  if (wrap_name != NULL && eta_wrap_from_string (wrap_name) == 0)
    {
      eta_cli_error ("mount-options", _("--wrap must be epoch or per-file"));
      return ETA_CLI_EXIT_USAGE;
    }
  record = eta_cli_find_key ("mount-options", fingerprint, &exit_code);
  if (record == NULL)
    return exit_code;
  if (!eta_cli_key_sig (record, sig))
    {
      eta_cli_error ("mount-options", _("key %.16s is not an RSA key"), record->fingerprint_hex);
      return ETA_CLI_EXIT_FAILED;
    }
  /* The padding and wrap mode the key is used with: the ones asked for, else
   * the ones its auth token in the keyring carries (which win at mount),
   * else the enrolled padding and epoch wrapping. */
  if (eta_cli_keyring_find (sig, &padding_in_keyring, &wrap_in_keyring) <= 0)
    {
      padding_in_keyring = record->padding ? record->padding : ETA_PADDING_OAEP;
      wrap_in_keyring = ETA_WRAP_EPOCH;
    }
  padding = padding_name != NULL ? eta_padding_from_string (padding_name)
                                 : (EtaPadding) padding_in_keyring;
  wrap = wrap_name != NULL ? eta_wrap_from_string (wrap_name) : (EtaWrap) wrap_in_keyring;

  key_option = eta_mount_table_key_option (record->fingerprint_hex,
                                           eta_padding_to_string (padding),
                                           eta_wrap_to_string (wrap));
  if (g_str_equal (format, "mount"))
    g_print ("%s,%s,no_sig_cache\n", key_option, ETA_MOUNT_CIPHER_OPTIONS);
  else if (g_str_equal (format, "fstab"))
    {
      g_autofree gchar *lower = fstab_escape (argc == 4 ? argv[2] : "/path/to/lower");
      g_autofree gchar *target = fstab_escape (argc == 4 ? argv[3] : "/path/to/mountpoint");

      /* noauto: the key module needs the person's session and token, which
       * boot does not have; mount it after logging in. */
      g_print ("%s %s ecryptfs noauto,%s,%s,no_sig_cache 0 0\n", lower, target, key_option,
               ETA_MOUNT_CIPHER_OPTIONS);
    }
  else
    {
      g_auto (GStrv) cipher_options = g_strsplit (ETA_MOUNT_CIPHER_OPTIONS, ",", -1);
      g_print ("%s\n", key_option);
      for (gsize i = 0; cipher_options[i] != NULL; i++)
        g_print ("%s\n", cipher_options[i]);
      g_print ("no_sig_cache\n");
    }
  return ETA_CLI_EXIT_OK;
}

/* ecryptfs-token: the command-line tool. Lists the keys the agent sees and
 * enrols a key: adds its auth token to the user keyring (through the key
 * module's own code, exactly as mount.ecryptfs would), saves its public key
 * for root's mount helper, and prints the mount options to use.
 *
 * Exit codes: 0 success, 1 failure, 2 usage error. */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include <ecryptfs.h>
#include <gio/gio.h>
#include <keyutils.h>

#include "eta-agent-client.h"
#include "eta-blob.h"
#include "eta-key-id.h"
#include "eta-names.h"
#include "eta-public-key-file.h"

#define EXIT_USAGE 2

struct ecryptfs_key_mod_ops *get_key_mod_ops (void);

static GDBusConnection *
connect_session_bus (GError **error)
{
  g_autofree gchar *address = eta_agent_client_find_bus_address (error);
  GDBusConnection *connection;

  if (address == NULL)
    return NULL;
  connection = g_dbus_connection_new_for_address_sync (
      address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
      | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, error);
  return connection;
}

static const gchar *
lookup_string (GVariant *dict, const gchar *key)
{
  const gchar *value = NULL;
  if (!g_variant_lookup (dict, key, "&s", &value))
    value = "";
  return value;
}

/* The auth token payload starts with libecryptfs's struct ecryptfs_auth_tok;
 * the key module's blob follows it. */
#define AUTH_TOK_BLOB_OFFSET 670

/* The padding of the auth token already in the user keyring under @sig, or 0. */
static EtaPadding
padding_in_keyring (const char *sig)
{
  key_serial_t key = request_key ("user", sig, NULL, KEY_SPEC_USER_KEYRING);
  g_autofree guint8 *payload = NULL;
  void *buffer = NULL;
  EtaBlob blob;
  long len;

  if (key < 0)
    return 0;
  len = keyctl_read_alloc (key, &buffer);
  payload = buffer;
  if (len <= AUTH_TOK_BLOB_OFFSET + 8
      || eta_blob_parse (payload + AUTH_TOK_BLOB_OFFSET, &blob) != ETA_BLOB_OK)
    return 0;
  return blob.padding;
}

static int
command_list (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusConnection) connection = connect_session_bus (&error);
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) keys = NULL;
  GVariantIter iter;
  GVariant *key;

  if (connection == NULL)
    {
      g_printerr ("ecryptfs-token: cannot reach the session bus: %s\n", error->message);
      return 1;
    }
  reply = g_dbus_connection_call_sync (connection, ETA_BUS_NAME, ETA_OBJECT_PATH,
                                       ETA_INTERFACE, "ListKeys", NULL,
                                       G_VARIANT_TYPE ("(aa{sv})"), G_DBUS_CALL_FLAGS_NONE,
                                       30000, NULL, &error);
  if (reply == NULL)
    {
      g_dbus_error_strip_remote_error (error);
      g_printerr ("ecryptfs-token: the agent could not list keys: %s\n", error->message);
      return 1;
    }
  keys = g_variant_get_child_value (reply, 0);
  if (g_variant_n_children (keys) == 0)
    {
      g_print ("No RSA keys with certificates found on any present token.\n");
      return 0;
    }
  g_print ("%-64s  %-16s  %5s  %-20s  %s\n", "FINGERPRINT", "ECRYPTFS_SIG", "BITS", "TOKEN",
           "KEY");
  g_variant_iter_init (&iter, keys);
  while ((key = g_variant_iter_next_value (&iter)) != NULL)
    {
      guint32 bits = 0;
      g_variant_lookup (key, "bits", "u", &bits);
      g_print ("%-64s  %-16s  %5u  %-20s  %s\n", lookup_string (key, "fingerprint"),
               lookup_string (key, "sig"), bits, lookup_string (key, "token-label"),
               lookup_string (key, "key-label"));
      g_variant_unref (key);
    }
  return 0;
}

static int
command_add_key (int argc, char **argv)
{
  g_autofree gchar *padding_name = NULL;
  g_autofree gchar *pubkey_file = NULL;
  g_autofree gchar *fingerprint = NULL;
  g_autofree gchar *record_dir = NULL;
  g_autofree gchar *record_path = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (EtaPublicKeyRecord) record = NULL;
  GOptionEntry entries[] = {
    { "padding", 0, 0, G_OPTION_ARG_STRING, &padding_name,
      "RSA padding: oaep (default) or pkcs1 (files of the pkcs11-helper module)", "NAME" },
    { "pubkey", 0, 0, G_OPTION_ARG_FILENAME, &pubkey_file,
      "Take the public key from this certificate or key file instead of the agent", "FILE" },
    { NULL },
  };
  struct key_mod_param_val values[3];
  struct ecryptfs_key_mod key_mod = { 0 };
  char sig[ETA_KEY_SIG_HEX_LEN + 1] = { 0 };
  char alias[] = ETA_KEYMOD_ALIAS;
  char none[] = "none";
  EtaPadding padding;
  int rc;

  context = g_option_context_new ("FINGERPRINT — add a token key to your keyring");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("ecryptfs-token add-key: %s\n", error->message);
      return EXIT_USAGE;
    }
  if (argc != 2)
    {
      g_printerr ("usage: ecryptfs-token add-key FINGERPRINT [--padding oaep|pkcs1] "
                  "[--pubkey FILE]\n");
      return EXIT_USAGE;
    }
  fingerprint = g_ascii_strdown (argv[1], -1);
  if (!eta_fingerprint_prefix_is_valid (fingerprint))
    {
      g_printerr ("ecryptfs-token add-key: %s is not a fingerprint (16 to 64 hex digits; "
                  "see 'ecryptfs-token list')\n", argv[1]);
      return EXIT_USAGE;
    }
  padding = eta_padding_from_string (padding_name);
  if (padding == 0)
    {
      g_printerr ("ecryptfs-token add-key: --padding must be oaep or pkcs1\n");
      return EXIT_USAGE;
    }

  record = pubkey_file ? eta_public_key_load_file (pubkey_file, &error)
                       : eta_agent_client_resolve (fingerprint, 30000, &error);
  if (record == NULL)
    {
      g_dbus_error_strip_remote_error (error);
      g_printerr ("ecryptfs-token add-key: %s\n", error->message);
      return 1;
    }
  if (!g_str_has_prefix (record->fingerprint_hex, fingerprint))
    {
      g_printerr ("ecryptfs-token add-key: %s has fingerprint %s, not %s\n", pubkey_file,
                  record->fingerprint_hex, fingerprint);
      return 1;
    }
  record->padding = padding;

  /* The auth token is made by the key module's own get_blob, as at mount. */
  values[0].val = record->fingerprint_hex;
  values[1].val = (char *) eta_padding_to_string (padding);
  values[2].val = pubkey_file ? pubkey_file : none;
  key_mod.alias = alias;
  key_mod.ops = get_key_mod_ops ();
  key_mod.ops->init (&key_mod.alias);
  key_mod.param_vals = values;
  key_mod.num_param_vals = 3;
  rc = ecryptfs_add_key_module_key_to_keyring (sig, &key_mod);
  if (rc < 0)
    {
      g_printerr ("ecryptfs-token add-key: could not add the key to the user keyring "
                  "(error %d); see the system log for the key module's reason\n", rc);
      return 1;
    }

  /* The padding is in the auth token, not in the sig: an existing token with
   * the other padding would silently win at mount time. */
  if (rc == 1 && padding_in_keyring (sig) != 0 && padding_in_keyring (sig) != padding)
    {
      g_printerr ("ecryptfs-token add-key: key %.16s is already in your keyring with padding "
                  "%s; one key is used with one padding at a time. To switch, remove it first: "
                  "keyctl purge user %s\n", record->fingerprint_hex,
                  eta_padding_to_string (padding_in_keyring (sig)), sig);
      return 1;
    }

  record_dir = g_build_filename (g_get_user_data_dir (), "ecryptfs-token-agent", "keys", NULL);
  if (!eta_public_key_save_record (record, record_dir, &record_path, &error))
    g_printerr ("ecryptfs-token add-key: warning: could not save the public key for "
                "mount helpers: %s\n", error->message);

  g_print ("%s key %.16s (\"%s\" on token \"%s\") %s your user keyring.\n",
           rc == 1 ? "The" : "Added", record->fingerprint_hex, record->key_label,
           record->token_label, rc == 1 ? "was already in" : "to");
  g_print ("ecryptfs_sig: %s\n", sig);
  if (record_path != NULL)
    g_print ("public key saved for mount helpers: %s\n", record_path);
  g_print ("mount options (mount -t ecryptfs, fstab, ~/.ecryptfsrc):\n"
           "  key=%s:fingerprint=%s:padding=%s,ecryptfs_cipher=aes,ecryptfs_key_bytes=32,"
           "ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n\n",
           ETA_KEYMOD_ALIAS, record->fingerprint_hex, eta_padding_to_string (padding));
  g_print ("with the key already in the keyring (mount -i):\n"
           "  ecryptfs_sig=%s,ecryptfs_cipher=aes,ecryptfs_key_bytes=32,"
           "ecryptfs_unlink_sigs\n", sig);
  return 0;
}

static void
print_usage (FILE *stream)
{
  fprintf (stream,
           "usage: ecryptfs-token COMMAND [ARGS]\n"
           "\n"
           "Commands:\n"
           "  list                      keys on the present tokens, with fingerprints\n"
           "  add-key FINGERPRINT       add a token key to your keyring for eCryptfs\n"
           "          [--padding oaep|pkcs1] [--pubkey FILE]\n"
           "  help                      this text\n");
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  g_set_prgname ("ecryptfs-token");
  if (argc < 2)
    {
      print_usage (stderr);
      return EXIT_USAGE;
    }
  if (strcmp (argv[1], "list") == 0)
    return command_list (argc - 1, argv + 1);
  if (strcmp (argv[1], "add-key") == 0)
    return command_add_key (argc - 1, argv + 1);
  if (strcmp (argv[1], "help") == 0 || strcmp (argv[1], "--help") == 0
      || strcmp (argv[1], "-h") == 0)
    {
      print_usage (stdout);
      return 0;
    }
  fprintf (stderr, "ecryptfs-token: unknown command '%s'\n", argv[1]);
  print_usage (stderr);
  return EXIT_USAGE;
}

/* ecryptfs-token as a shell user meets it: output, exit codes, messages. */
#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <keyutils.h>
#include <libsecret/secret.h>

#include "eta-blob.h"
#include "eta-pin-store.h"

#include "eta-ecryptfsd-probe.h"
#include "eta-inprocess-daemon.h"
#include "eta-kernel-player.h"
#include "eta-test-cli.h"
#include "eta-test-agent.h"
#include "eta-test-keyring.h"
#include "eta-test-token.h"

typedef struct
{
  GTestDBus *bus;
  EtaTestAgent *agent;
  const EtaTestToken *token;
  gchar *data_home;
} Fixture;

static EtaTestCliResult
run_cli (Fixture *fixture, const gchar * const *args)
{
  return eta_test_run_cli (fixture->data_home, args);
}

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  fixture->token = eta_test_token_get ();
  fixture->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fixture->bus);
  fixture->data_home = g_dir_make_tmp ("eta-data-XXXXXX", &error);
  g_assert_no_error (error);
  if (data == NULL)
    fixture->agent = eta_test_agent_start (NULL);
  else if (g_str_equal (data, "maximum lifetime"))
    {
      /* The site policy through GSettings' keyfile backend, as a person's
       * dconf would hold it. */
      g_autofree gchar *dir = g_build_filename (fixture->data_home, "config", "glib-2.0",
                                                "settings", NULL);
      g_autofree gchar *keyfile = g_build_filename (dir, "keyfile", NULL);
      g_autofree gchar *config_home = g_build_filename (fixture->data_home, "config", NULL);
      g_autofree gchar *config_env = g_strconcat ("XDG_CONFIG_HOME=", config_home, NULL);
      const gchar *env[] = { "GSETTINGS_BACKEND=keyfile", config_env, NULL };

      g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
      g_file_set_contents (keyfile,
                           "[org/ecryptfs/TokenAgent]\n"
                           "login-lifetime='maximum-lifetime'\n"
                           "maximum-lifetime=uint32 3600\n",
                           -1, &error);
      g_assert_no_error (error);
      fixture->agent = eta_test_agent_start (env);
    }
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *command = g_strdup_printf ("rm -rf '%s'", fixture->data_home);

  eta_test_agent_stop (fixture->agent);
  g_assert_cmpint (system (command), ==, 0);
  g_free (fixture->data_home);
  g_test_dbus_down (fixture->bus);
  g_clear_object (&fixture->bus);
}

static void
test_list (Fixture *fixture, gconstpointer data)
{
  const gchar *args[] = { "list", NULL };
  EtaTestCliResult result = run_cli (fixture, args);

  g_assert_cmpint (result.exit_code, ==, 0);
  g_assert_nonnull (strstr (result.out, "FINGERPRINT"));
  for (int i = 0; i < ETA_TEST_N_KEYS; i++)
    {
      g_assert_nonnull (strstr (result.out, fixture->token->fingerprint[i]));
      g_assert_nonnull (strstr (result.out, fixture->token->label[i]));
    }
  g_assert_nonnull (strstr (result.out, ETA_TEST_TOKEN_LABEL));
  eta_test_cli_result_clear (&result);
}

static void
test_add_key (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *prefix = g_strndup (fixture->token->fingerprint[ETA_TEST_KEY_RSA2048], 16);
  const gchar *args[] = { "add-key", prefix, NULL };
  EtaTestCliResult result;
  g_autofree gchar *record = NULL;
  g_autofree gchar *sig = NULL;
  g_autofree gchar *option = NULL;
  const gchar *line;

  result = run_cli (fixture, args);
  g_assert_cmpint (result.exit_code, ==, 0);
  line = strstr (result.out, "ecryptfs_sig: ");
  g_assert_nonnull (line);
  sig = g_strndup (line + strlen ("ecryptfs_sig: "), 16);
  option = g_strdup_printf ("key=token-agent:fingerprint=%s:padding=oaep",
                            fixture->token->fingerprint[ETA_TEST_KEY_RSA2048]);
  g_assert_nonnull (strstr (result.out, option));
  g_assert_nonnull (strstr (result.out, "ecryptfs_cipher=aes"));
  /* The public key is saved for root's mount helper. */
  record = g_strdup_printf ("%s/ecryptfs-token-agent/keys/%s.key", fixture->data_home,
                            fixture->token->fingerprint[ETA_TEST_KEY_RSA2048]);
  g_assert_true (g_file_test (record, G_FILE_TEST_IS_REGULAR));
  eta_test_cli_result_clear (&result);

  /* Again: already there, still success. */
  result = run_cli (fixture, args);
  g_assert_cmpint (result.exit_code, ==, 0);
  g_assert_nonnull (strstr (result.out, "already"));
  eta_test_cli_result_clear (&result);
  g_assert_true (eta_harness_remove_user_key (sig, NULL));
}

static void
test_add_key_other_padding (Fixture *fixture, gconstpointer data)
{
  const gchar *oaep[] = { "add-key", fixture->token->fingerprint[ETA_TEST_KEY_RSA3072], NULL };
  const gchar *pkcs1[] = { "add-key", fixture->token->fingerprint[ETA_TEST_KEY_RSA3072],
                           "--padding", "pkcs1", NULL };
  EtaTestCliResult result = run_cli (fixture, oaep);
  g_autofree gchar *sig = NULL;

  g_assert_cmpint (result.exit_code, ==, 0);
  sig = g_strndup (strstr (result.out, "ecryptfs_sig: ") + strlen ("ecryptfs_sig: "), 16);
  eta_test_cli_result_clear (&result);
  /* The same key with the other padding would be ignored at mount: refused. */
  result = run_cli (fixture, pkcs1);
  g_assert_cmpint (result.exit_code, ==, 1);
  g_assert_nonnull (strstr (result.err, "already in your keyring with padding oaep"));
  g_assert_nonnull (strstr (result.err, "ecryptfs-token remove-key"));
  eta_test_cli_result_clear (&result);
  g_assert_true (eta_harness_remove_user_key (sig, NULL));
}

/* --wrap per-file: into the auth token (encrypt gets nothing else) and into
 * the printed options; epoch, the default, is never spelt out. */
static void
test_add_key_per_file (Fixture *fixture, gconstpointer data)
{
  const gchar *fpr = fixture->token->fingerprint[ETA_TEST_KEY_RSA2048];
  const gchar *per_file[] = { "add-key", fpr, "--wrap", "per-file", NULL };
  const gchar *epoch[] = { "add-key", fpr, "--wrap", "epoch", NULL };
  const gchar *options[] = { "mount-options", fpr, NULL };
  const gchar *options_epoch[] = { "mount-options", fpr, "--wrap", "epoch", NULL };
  const gchar *bad_wrap[] = { "add-key", fpr, "--wrap", "sometimes", NULL };
  const gchar *bad_options[] = { "mount-options", fpr, "--wrap", "sometimes", NULL };
  g_autofree gchar *option = g_strdup_printf (
      "key=token-agent:fingerprint=%s:padding=oaep:wrap=per-file,", fpr);
  g_autofree gchar *epoch_option = g_strdup_printf (
      "key=token-agent:fingerprint=%s:padding=oaep,", fpr);
  EtaTestCliResult result = run_cli (fixture, per_file);
  g_autofree gchar *sig = NULL;
  g_autofree guint8 *payload = NULL;
  void *buffer = NULL;
  key_serial_t key;
  EtaBlob blob;
  long len;

  g_assert_cmpint (result.exit_code, ==, 0);
  sig = g_strndup (strstr (result.out, "ecryptfs_sig: ") + strlen ("ecryptfs_sig: "), 16);
  g_assert_nonnull (strstr (result.out, option));
  eta_test_cli_result_clear (&result);
  key = keyctl_search (KEY_SPEC_USER_KEYRING, "user", sig, 0);
  g_assert_cmpint (key, >, 0);
  len = keyctl_read_alloc (key, &buffer);
  payload = buffer;
  g_assert_cmpint (len, >, 670);
  g_assert_cmpint (eta_blob_parse (payload + 670, (gsize) len - 670, &blob), ==, ETA_BLOB_OK);
  g_assert_cmpint (blob.wrap, ==, ETA_WRAP_PER_FILE);

  /* mount-options follows the auth token in the keyring, or --wrap. */
  result = run_cli (fixture, options);
  g_assert_cmpint (result.exit_code, ==, 0);
  g_assert_true (g_str_has_prefix (result.out, option));
  eta_test_cli_result_clear (&result);
  result = run_cli (fixture, options_epoch);
  g_assert_cmpint (result.exit_code, ==, 0);
  g_assert_true (g_str_has_prefix (result.out, epoch_option));
  g_assert_null (strstr (result.out, "wrap="));
  eta_test_cli_result_clear (&result);

  /* The same key wrapped per epoch would be ignored at mount: refused. */
  result = run_cli (fixture, epoch);
  g_assert_cmpint (result.exit_code, ==, 1);
  g_assert_nonnull (strstr (result.err, "already in your keyring with wrap mode per-file"));
  eta_test_cli_result_clear (&result);

  result = run_cli (fixture, bad_wrap);
  g_assert_cmpint (result.exit_code, ==, 2);
  g_assert_nonnull (strstr (result.err, "--wrap must be epoch or per-file"));
  eta_test_cli_result_clear (&result);
  result = run_cli (fixture, bad_options);
  g_assert_cmpint (result.exit_code, ==, 2);
  eta_test_cli_result_clear (&result);
  g_assert_true (eta_harness_remove_user_key (sig, NULL));

  /* Without a token in the keyring, epoch. */
  result = run_cli (fixture, options);
  g_assert_cmpint (result.exit_code, ==, 0);
  g_assert_true (g_str_has_prefix (result.out, epoch_option));
  eta_test_cli_result_clear (&result);
}

static void
test_add_unknown_key (Fixture *fixture, gconstpointer data)
{
  const gchar *args[] = { "add-key", "00000000000000000000", NULL };
  EtaTestCliResult result = run_cli (fixture, args);

  g_assert_cmpint (result.exit_code, ==, 1);
  g_assert_nonnull (strstr (result.err, "no present token holds a key"));
  g_assert_null (strstr (result.err, "GDBus.Error"));
  eta_test_cli_result_clear (&result);
}

static void
test_usage_errors (Fixture *fixture, gconstpointer data)
{
  const gchar *no_command[] = { NULL };
  const gchar *unknown[] = { "frobnicate", NULL };
  const gchar *bad_fpr[] = { "add-key", "xyz", NULL };
  const gchar *bad_padding[] = { "add-key", "0123456789abcdef", "--padding", "raw", NULL };
  const gchar *help[] = { "--help", NULL };
  const gchar * const *cases[] = { no_command, unknown, bad_fpr, bad_padding };
  EtaTestCliResult result;

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      result = run_cli (fixture, cases[i]);
      g_assert_cmpint (result.exit_code, ==, 2);
      g_assert_cmpstr (result.err, !=, "");
      eta_test_cli_result_clear (&result);
    }
  result = run_cli (fixture, help);
  g_assert_cmpint (result.exit_code, ==, 0);
  g_assert_nonnull (strstr (result.out, "add-key"));
  eta_test_cli_result_clear (&result);
}

static void
test_agent_not_running (Fixture *fixture, gconstpointer data)
{
  const gchar *list[] = { "list", NULL };
  const gchar *status[] = { "status", NULL };
  const gchar *lock[] = { "lock", NULL };
  const gchar *unlock[] = { "unlock", "0123456789abcdef", NULL };
  const gchar *options[] = { "mount-options", "0123456789abcdef", NULL };
  const gchar * const *no_agent[] = { list, status, unlock, options };
  EtaTestCliResult result;

  /* Exit status 3 and a sentence, never a D-Bus error name. */
  for (gsize i = 0; i < G_N_ELEMENTS (no_agent); i++)
    {
      result = run_cli (fixture, no_agent[i]);
      g_assert_cmpint (result.exit_code, ==, 3);
      g_assert_null (strstr (result.err, "GDBus.Error"));
      g_assert_null (strstr (result.err, "org.freedesktop.DBus.Error"));
      eta_test_cli_result_clear (&result);
    }
  result = run_cli (fixture, list);
  g_assert_nonnull (strstr (result.err, "the token agent is not running"));
  eta_test_cli_result_clear (&result);
  result = run_cli (fixture, status);
  g_assert_nonnull (strstr (result.out, "Agent: not running"));
  eta_test_cli_result_clear (&result);
  /* Nothing to lock without an agent: that is success. */
  result = run_cli (fixture, lock);
  g_assert_cmpint (result.exit_code, ==, 0);
  g_assert_nonnull (strstr (result.out, "not running"));
  eta_test_cli_result_clear (&result);
}

/* Parses the CLI's stdout as JSON; aborts the test if it is not. */
static JsonNode *
parse_json (const gchar *text)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  return json_node_copy (json_parser_get_root (parser));
}

static JsonObject *
find_by_member (JsonArray *array, const gchar *member, const gchar *value)
{
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonObject *object = json_array_get_object_element (array, i);
      if (g_strcmp0 (json_object_get_string_member_with_default (object, member, NULL), value)
          == 0)
        return object;
    }
  return NULL;
}

static gchar *
enrol_key (Fixture *fixture, EtaTestKeyIndex index)
{
  const gchar *args[] = { "add-key", fixture->token->fingerprint[index], NULL };
  EtaTestCliResult result = run_cli (fixture, args);
  gchar *sig;

  g_assert_cmpint (result.exit_code, ==, 0);
  sig = g_strndup (strstr (result.out, "ecryptfs_sig: ") + strlen ("ecryptfs_sig: "), 16);
  eta_test_cli_result_clear (&result);
  return sig;
}

static void
test_list_json (Fixture *fixture, gconstpointer data)
{
  const gchar *args[] = { "list", "--json", NULL };
  const gchar *before[] = { "--json", "list", NULL };
  const gchar *fpr = fixture->token->fingerprint[ETA_TEST_KEY_RSA2048];
  g_autofree gchar *sig = enrol_key (fixture, ETA_TEST_KEY_RSA2048);
  EtaTestCliResult result = run_cli (fixture, args);
  g_autoptr (JsonNode) root = NULL;
  JsonObject *key, *other, *token;

  g_assert_cmpint (result.exit_code, ==, 0);
  root = parse_json (result.out);
  key = find_by_member (json_object_get_array_member (json_node_get_object (root), "keys"),
                        "fingerprint", fpr);
  g_assert_nonnull (key);
  g_assert_cmpstr (json_object_get_string_member (key, "sig"), ==, sig);
  g_assert_cmpint (json_object_get_int_member (key, "bits"), ==, 2048);
  g_assert_cmpstr (json_object_get_string_member (key, "token-label"), ==, ETA_TEST_TOKEN_LABEL);
  /* The enrolled key is in use (its auth token is in the keyring), the other is not. */
  g_assert_true (json_object_get_boolean_member (key, "in-keyring"));
  other = find_by_member (json_object_get_array_member (json_node_get_object (root), "keys"),
                          "fingerprint", fixture->token->fingerprint[ETA_TEST_KEY_RSA3072]);
  g_assert_nonnull (other);
  g_assert_false (json_object_get_boolean_member (other, "in-keyring"));
  token = find_by_member (json_object_get_array_member (json_node_get_object (root), "tokens"),
                          "label", ETA_TEST_TOKEN_LABEL);
  g_assert_nonnull (token);
  g_assert_cmpstr (json_object_get_string_member (token, "state"), ==, "present");
  eta_test_cli_result_clear (&result);

  /* --json before the command means the same; the text list says "keyring". */
  result = run_cli (fixture, before);
  g_assert_cmpint (result.exit_code, ==, 0);
  g_clear_pointer (&root, json_node_unref);
  root = parse_json (result.out);
  eta_test_cli_result_clear (&result);
  args[1] = NULL;
  result = run_cli (fixture, args);
  g_assert_nonnull (strstr (result.out, "keyring"));
  eta_test_cli_result_clear (&result);
  g_assert_true (eta_harness_remove_user_key (sig, NULL));
}

static void
test_remove_key (Fixture *fixture, gconstpointer data)
{
  const gchar *fpr = fixture->token->fingerprint[ETA_TEST_KEY_RSA2048];
  g_autofree gchar *prefix = g_strndup (fpr, 20);
  const gchar *args[] = { "remove-key", prefix, NULL };
  const gchar *unknown[] = { "remove-key", "ffffffffffffffffffff", NULL };
  g_autofree gchar *sig = enrol_key (fixture, ETA_TEST_KEY_RSA2048);
  EtaTestCliResult result;

  g_assert_cmpint (keyctl_search (KEY_SPEC_USER_KEYRING, "user", sig, 0), >, 0);
  result = run_cli (fixture, args);
  g_assert_cmpint (result.exit_code, ==, 0);
  g_assert_nonnull (strstr (result.out, sig));
  eta_test_cli_result_clear (&result);
  g_assert_cmpint (keyctl_search (KEY_SPEC_USER_KEYRING, "user", sig, 0), <, 0);

  /* Gone already: a clear failure. */
  result = run_cli (fixture, args);
  g_assert_cmpint (result.exit_code, ==, 1);
  g_assert_nonnull (strstr (result.err, "is not in your user keyring"));
  eta_test_cli_result_clear (&result);
  /* A key nobody knows. */
  result = run_cli (fixture, unknown);
  g_assert_cmpint (result.exit_code, ==, 1);
  g_assert_nonnull (strstr (result.err, "no present token holds a key"));
  eta_test_cli_result_clear (&result);
}

static void
test_mount_options (Fixture *fixture, gconstpointer data)
{
  const gchar *fpr = fixture->token->fingerprint[ETA_TEST_KEY_RSA3072];
  const gchar *mount[] = { "mount-options", fpr, NULL };
  const gchar *fstab[] = { "mount-options", fpr, "--format", "fstab", "/srv/lower",
                           "/srv/files", NULL };
  const gchar *rc[] = { "mount-options", "--format=ecryptfsrc", fpr, "--padding", "pkcs1", NULL };
  const gchar *bad_format[] = { "mount-options", fpr, "--format", "xml", NULL };
  g_autofree gchar *sig = enrol_key (fixture, ETA_TEST_KEY_RSA3072);
  g_autofree gchar *key_option = g_strdup_printf ("key=token-agent:fingerprint=%s:padding=oaep",
                                                  fpr);
  g_autofree gchar *fstab_line = NULL;
  g_autofree gchar *rc_first = g_strdup_printf ("key=token-agent:fingerprint=%s:padding=pkcs1\n",
                                                fpr);
  EtaTestCliResult result;

  /* Enrolled keys need no agent: the saved public key names them. */
  eta_test_agent_stop (fixture->agent);
  fixture->agent = NULL;

  result = run_cli (fixture, mount);
  g_assert_cmpint (result.exit_code, ==, 0);
  g_assert_true (g_str_has_prefix (result.out, key_option));
  g_assert_nonnull (strstr (result.out, ",ecryptfs_cipher=aes,ecryptfs_key_bytes=32,"));
  g_assert_nonnull (strstr (result.out, "no_sig_cache"));
  g_assert_null (strchr (result.out, ' '));
  eta_test_cli_result_clear (&result);

  result = run_cli (fixture, fstab);
  g_assert_cmpint (result.exit_code, ==, 0);
  fstab_line = g_strdup_printf ("/srv/lower /srv/files ecryptfs noauto,%s,", key_option);
  g_assert_true (g_str_has_prefix (result.out, fstab_line));
  g_assert_true (g_str_has_suffix (result.out, " 0 0\n"));
  eta_test_cli_result_clear (&result);

  /* One option per line, as mount.ecryptfs reads ~/.ecryptfsrc. */
  result = run_cli (fixture, rc);
  g_assert_cmpint (result.exit_code, ==, 0);
  g_assert_true (g_str_has_prefix (result.out, rc_first));
  g_assert_nonnull (strstr (result.out, "\necryptfs_key_bytes=32\n"));
  g_assert_null (strchr (result.out, ','));
  eta_test_cli_result_clear (&result);

  /* Blanks in paths would split the fstab line: written as octal escapes. */
  {
    const gchar *blank[] = { "mount-options", fpr, "--format", "fstab", "/srv/my files",
                             "/srv/open\tfiles", NULL };
    result = run_cli (fixture, blank);
    g_assert_cmpint (result.exit_code, ==, 0);
    g_assert_true (g_str_has_prefix (result.out, "/srv/my\\040files /srv/open\\011files ecryptfs "));
    eta_test_cli_result_clear (&result);
  }

  result = run_cli (fixture, bad_format);
  g_assert_cmpint (result.exit_code, ==, 2);
  eta_test_cli_result_clear (&result);
  g_assert_true (eta_harness_remove_user_key (sig, NULL));
}

static const gchar *
token_state (Fixture *fixture)
{
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
      eta_test_session_bus (), "org.ecryptfs.TokenAgent1", "/org/ecryptfs/TokenAgent1",
      "org.ecryptfs.TokenAgent1", "ListTokens", NULL, G_VARIANT_TYPE ("(aa{sv})"),
      G_DBUS_CALL_FLAGS_NONE, 30000, NULL, NULL);
  g_autoptr (GVariant) tokens = NULL;
  g_autoptr (GVariant) token = NULL;
  const gchar *state = NULL;

  g_assert_nonnull (reply);
  tokens = g_variant_get_child_value (reply, 0);
  g_assert_cmpuint (g_variant_n_children (tokens), >=, 1);
  token = g_variant_get_child_value (tokens, 0);
  g_assert_true (g_variant_lookup (token, "state", "&s", &state));
  return g_intern_string (state);
}

static void
test_unlock_status_lock (Fixture *fixture, gconstpointer data)
{
  const gchar *fpr = fixture->token->fingerprint[ETA_TEST_KEY_RSA2048];
  const gchar *unlock[] = { "unlock", fpr, NULL };
  const gchar *status[] = { "status", NULL };
  const gchar *status_json[] = { "status", "--json", NULL };
  const gchar *lock[] = { "lock", NULL };
  EtaTestCliResult result;
  g_autoptr (JsonNode) root = NULL;
  JsonObject *token;

  result = run_cli (fixture, status);
  g_assert_cmpint (result.exit_code, ==, 0);
  g_assert_nonnull (strstr (result.out, "Agent: running"));
  g_assert_nonnull (strstr (result.out, ETA_TEST_TOKEN_LABEL));
  g_assert_nonnull (strstr (result.out, "locked"));
  eta_test_cli_result_clear (&result);

  /* unlock asks for the PIN through the agent's prompt, once. */
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  result = run_cli (fixture, unlock);
  g_assert_cmpint (result.exit_code, ==, 0);
  g_assert_nonnull (strstr (result.out, "is unlocked"));
  g_assert_nonnull (strstr (result.out, ETA_TEST_TOKEN_LABEL));
  eta_test_cli_result_clear (&result);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
  g_assert_cmpstr (token_state (fixture), ==, "logged-in");

  /* Unlocked already: no second prompt. */
  result = run_cli (fixture, unlock);
  g_assert_cmpint (result.exit_code, ==, 0);
  eta_test_cli_result_clear (&result);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);

  result = run_cli (fixture, status_json);
  g_assert_cmpint (result.exit_code, ==, 0);
  root = parse_json (result.out);
  g_assert_true (json_object_get_boolean_member (json_node_get_object (root), "agent-running"));
  token = find_by_member (json_object_get_array_member (json_node_get_object (root), "tokens"),
                          "label", ETA_TEST_TOKEN_LABEL);
  g_assert_nonnull (token);
  g_assert_cmpstr (json_object_get_string_member (token, "state"), ==, "logged-in");
  /* The default policy: logged in until the token is removed or locked. */
  g_assert_cmpint (json_object_get_int_member (token, "login-expires"), ==, 0);
  eta_test_cli_result_clear (&result);
  result = run_cli (fixture, status);
  g_assert_nonnull (strstr (result.out, "unlocked until the token is removed"));
  eta_test_cli_result_clear (&result);

  result = run_cli (fixture, lock);
  g_assert_cmpint (result.exit_code, ==, 0);
  eta_test_cli_result_clear (&result);
  g_assert_cmpstr (token_state (fixture), ==, "present");
}

/* The person who answers the insert-token prompt with Cancel (Enter). */
static gpointer
cancel_insert_prompt (gpointer agent)
{
  g_assert_true (eta_test_agent_wait_for_output (agent, "Insert the token", 30000));
  eta_test_agent_type (agent, "\n");
  return NULL;
}

static void
test_status_login_expiry (Fixture *fixture, gconstpointer data)
{
  const gchar *unlock[] = { "unlock", fixture->token->fingerprint[ETA_TEST_KEY_RSA2048], NULL };
  const gchar *status_json[] = { "--json", "status", NULL };
  const gchar *status[] = { "status", NULL };
  g_autoptr (JsonNode) root = NULL;
  EtaTestCliResult result;
  JsonObject *token;
  gint64 before = g_get_real_time () / G_USEC_PER_SEC, expires;

  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  result = run_cli (fixture, unlock);
  g_assert_cmpint (result.exit_code, ==, 0);
  eta_test_cli_result_clear (&result);

  /* Logged in for at most an hour by policy: status says until when. */
  result = run_cli (fixture, status_json);
  g_assert_cmpint (result.exit_code, ==, 0);
  root = parse_json (result.out);
  token = find_by_member (json_object_get_array_member (json_node_get_object (root), "tokens"),
                          "label", ETA_TEST_TOKEN_LABEL);
  g_assert_nonnull (token);
  expires = json_object_get_int_member (token, "login-expires");
  g_assert_cmpint (expires, >=, before + 3600);
  /* A second of slack: the policy rounds its deadline up. */
  g_assert_cmpint (expires, <=, g_get_real_time () / G_USEC_PER_SEC + 3601);
  eta_test_cli_result_clear (&result);

  result = run_cli (fixture, status);
  {
    g_autoptr (GDateTime) when = g_date_time_new_from_unix_local (expires);
    g_autofree gchar *text = g_date_time_format (when, "unlocked until %Y-%m-%d %H:%M:%S");
    g_assert_nonnull (strstr (result.out, text));
  }
  eta_test_cli_result_clear (&result);
}

static void
test_unlock_failures (Fixture *fixture, gconstpointer data)
{
  const gchar *unlock[] = { "unlock", NULL };
  const gchar *unknown[] = { "unlock", "ffffffffffffffffffff", NULL };
  EtaTestCliResult result;

  /* No key in use: every token with a key is unlocked; cancelled here. */
  eta_test_agent_queue_answer (fixture->agent, NULL);
  result = run_cli (fixture, unlock);
  g_assert_cmpint (result.exit_code, ==, 1);
  g_assert_nonnull (strstr (result.err, "cancel"));
  eta_test_cli_result_clear (&result);
  g_assert_cmpstr (token_state (fixture), ==, "present");

  /* A wrong PIN, then the right one: the prompt asks again. */
  eta_test_agent_queue_answer (fixture->agent, "0000");
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  result = run_cli (fixture, unlock);
  g_assert_cmpint (result.exit_code, ==, 0);
  eta_test_cli_result_clear (&result);
  g_assert_cmpstr (token_state (fixture), ==, "logged-in");

  /* A key on no present token: the agent asks for the token; cancelled. */
  {
    GThread *person = g_thread_new ("person", cancel_insert_prompt, fixture->agent);
    result = run_cli (fixture, unknown);
    g_thread_join (person);
  }
  g_assert_cmpint (result.exit_code, ==, 1);
  g_assert_nonnull (strstr (result.err, "cancelled"));
  eta_test_cli_result_clear (&result);
}

static const SecretSchema other_schema = {
  "org.example.Other", SECRET_SCHEMA_NONE,
  { { "manufacturer", SECRET_SCHEMA_ATTRIBUTE_STRING },
    { "model", SECRET_SCHEMA_ATTRIBUTE_STRING },
    { "serial", SECRET_SCHEMA_ATTRIBUTE_STRING },
    { "label", SECRET_SCHEMA_ATTRIBUTE_STRING },
    { NULL, 0 } },
};

/* The keyring is driven from a child process (this program, run with
 * --secret): libsecret keeps the session bus connection for the life of the
 * process, and the private bus cannot be torn down under it. */
static int
secret_helper (const gchar *operation, const gchar *schema_name, const gchar *serial,
               const gchar *pin)
{
  const SecretSchema *schema = g_str_equal (schema_name, "ours") ? eta_pin_store_get_schema ()
                                                                 : &other_schema;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *found = NULL;

  if (g_str_equal (operation, "store"))
    {
      secret_password_store_sync (schema, SECRET_COLLECTION_DEFAULT, "test PIN", pin, NULL,
                                  &error, "manufacturer", "SoftHSM project", "model",
                                  "SoftHSM v2", "serial", serial, "label",
                                  ETA_TEST_TOKEN_LABEL, NULL);
      return error == NULL ? 0 : 1;
    }
  found = secret_password_lookup_sync (schema, NULL, &error, "serial", serial, NULL);
  if (error != NULL)
    return 1;
  g_print ("%s", found ? found : "(none)");
  return 0;
}

static gchar *
run_secret_helper (const gchar *operation, const gchar *schema, const gchar *serial,
                   const gchar *pin)
{
  const gchar *argv[] = { NULL, "--secret", operation,
                          schema, serial, pin, NULL };
  g_autofree gchar *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autoptr (GError) error = NULL;
  gchar *out = NULL;
  gint status = 0;

  argv[0] = self;
  g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, &status,
                &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  return out;
}

static void
test_forget (Fixture *fixture, gconstpointer data)
{
  const gchar *forget[] = { "forget", NULL };
  EtaTestKeyring *keyring = eta_test_keyring_start ();
  EtaTestCliResult result;

  g_free (run_secret_helper ("store", "ours", "1111", "1234"));
  g_free (run_secret_helper ("store", "ours", "2222", "5678"));
  g_free (run_secret_helper ("store", "other", "1111", "not ours"));
  {
    g_autofree gchar *stored = run_secret_helper ("lookup", "ours", "2222", "");
    g_assert_cmpstr (stored, ==, "5678");
  }

  result = run_cli (fixture, forget);
  g_assert_cmpint (result.exit_code, ==, 0);
  g_assert_nonnull (strstr (result.out, "Forgot 2 remembered PINs"));
  eta_test_cli_result_clear (&result);
  {
    g_autofree gchar *first = run_secret_helper ("lookup", "ours", "1111", "");
    g_autofree gchar *second = run_secret_helper ("lookup", "ours", "2222", "");
    /* Another program's secret with the same attributes stays. */
    g_autofree gchar *other = run_secret_helper ("lookup", "other", "1111", "");
    g_assert_cmpstr (first, ==, "(none)");
    g_assert_cmpstr (second, ==, "(none)");
    g_assert_cmpstr (other, ==, "not ours");
  }

  result = run_cli (fixture, forget);
  g_assert_cmpint (result.exit_code, ==, 0);
  g_assert_nonnull (strstr (result.out, "Forgot 0 remembered PINs"));
  eta_test_cli_result_clear (&result);
  eta_test_keyring_stop (keyring);
}

static void
test_forget_without_secret_service (Fixture *fixture, gconstpointer data)
{
  const gchar *forget[] = { "forget", NULL };
  EtaTestCliResult result = run_cli (fixture, forget);

  g_assert_cmpint (result.exit_code, ==, 1);
  g_assert_nonnull (strstr (result.err, "cannot reach the login keyring"));
  eta_test_cli_result_clear (&result);
}

/* status says whether an ecryptfsd serves the user's files, and whether it
 * runs the installed key module: none, then the real ecryptfsd (harness B)
 * with the module, then the same daemon after the module file was replaced
 * as an upgrade replaces it. */
static void
test_status_ecryptfsd (Fixture *fixture, gconstpointer data)
{
  const gchar *status[] = { "status", NULL };
  const gchar *status_json[] = { "--json", "status", NULL };
  g_autoptr (GError) error = NULL;
  g_autofree gchar *module_dir = NULL;
  g_autofree gchar *module = NULL;
  g_autofree gchar *running = NULL;
  g_autofree gchar *pid_json = NULL;
  g_autoptr (EtaKernelPlayer) player = NULL;
  EtaTestCliResult result;

  /* The test starts the only ecryptfsd of this user. */
  g_assert_cmpint (system ("! pgrep -x -r D,R,S,T,t -u \"$(id -u)\" ecryptfsd"), ==, 0);
  result = run_cli (fixture, status);
  g_assert_nonnull (strstr (result.out, "ecryptfsd is not running"));
  g_assert_nonnull (strstr (result.out, "systemctl --user start ecryptfs-token-ecryptfsd.service"));
  eta_test_cli_result_clear (&result);
  result = run_cli (fixture, status_json);
  g_assert_nonnull (strstr (result.out, "\"ecryptfsd\" : \"not-running\""));
  eta_test_cli_result_clear (&result);

  module_dir = eta_kernel_player_make_module_dir (ETA_TEST_KEYMOD_PATH, &error);
  g_assert_no_error (error);
  module = g_build_filename (module_dir, "libecryptfs_key_mod_token_agent.so", NULL);
  g_setenv ("ECRYPTFS_TOKEN_AGENT_KEYMOD_FILE", module, TRUE);
  player = eta_kernel_player_start (module_dir, NULL, &error);
  g_assert_no_error (error);
  running = g_strdup_printf ("ecryptfsd: running (pid %d)",
                             (int) eta_kernel_player_get_pid (player));
  pid_json = g_strdup_printf ("\"ecryptfsd-pid\" : %d", (int) eta_kernel_player_get_pid (player));
  result = run_cli (fixture, status);
  g_assert_nonnull (strstr (result.out, running));
  eta_test_cli_result_clear (&result);

  g_assert_true (eta_kernel_player_upgrade_module (module_dir, ETA_TEST_KEYMOD_PATH, &error));
  g_assert_no_error (error);
  result = run_cli (fixture, status);
  g_assert_nonnull (strstr (result.out, "ecryptfsd runs an older token key module"));
  g_assert_nonnull (strstr (result.out,
                            "systemctl --user restart ecryptfs-token-ecryptfsd.service"));
  eta_test_cli_result_clear (&result);
  result = run_cli (fixture, status_json);
  g_assert_nonnull (strstr (result.out, "\"ecryptfsd\" : \"old-module\""));
  g_assert_nonnull (strstr (result.out, pid_json));
  eta_test_cli_result_clear (&result);

  g_clear_pointer (&player, eta_kernel_player_stop);
  g_unsetenv ("ECRYPTFS_TOKEN_AGENT_KEYMOD_FILE");
  eta_kernel_player_remove_module_dir (module_dir);
}

int
main (int argc, char **argv)
{
  if (argc == 6 && g_str_equal (argv[1], "--secret"))
    return secret_helper (argv[2], argv[3], argv[4], argv[5]);
  g_test_init (&argc, &argv, NULL);
#define ADD(path, data, fn) \
  g_test_add (path, Fixture, data, fixture_set_up, fn, fixture_tear_down)
  ADD ("/cli/list", NULL, test_list);
  ADD ("/cli/add-key", NULL, test_add_key);
  ADD ("/cli/add-key-other-padding", NULL, test_add_key_other_padding);
  ADD ("/cli/add-key-per-file", NULL, test_add_key_per_file);
  ADD ("/cli/add-unknown-key", NULL, test_add_unknown_key);
  ADD ("/cli/usage-errors", NULL, test_usage_errors);
  ADD ("/cli/agent-not-running", "no agent", test_agent_not_running);
  ADD ("/cli/list-json", NULL, test_list_json);
  ADD ("/cli/remove-key", NULL, test_remove_key);
  ADD ("/cli/mount-options", NULL, test_mount_options);
  ADD ("/cli/unlock-status-lock", NULL, test_unlock_status_lock);
  ADD ("/cli/unlock-failures", NULL, test_unlock_failures);
  ADD ("/cli/status-login-expiry", "maximum lifetime", test_status_login_expiry);
  ADD ("/cli/status-ecryptfsd", "no agent", test_status_ecryptfsd);
  ADD ("/cli/forget", "no agent", test_forget);
  ADD ("/cli/forget-without-secret-service", "no agent", test_forget_without_secret_service);
  return g_test_run ();
}

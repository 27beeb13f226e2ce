/* ecryptfs-token as a shell user meets it: output, exit codes, messages. */
#include <string.h>

#include <gio/gio.h>

#include "eta-inprocess-daemon.h"
#include "eta-test-cli.h"
#include "eta-test-agent.h"
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
  g_assert_nonnull (strstr (result.err, "keyctl purge user"));
  eta_test_cli_result_clear (&result);
  g_assert_true (eta_harness_remove_user_key (sig, NULL));
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
  const gchar *args[] = { "list", NULL };
  EtaTestCliResult result = run_cli (fixture, args);

  g_assert_cmpint (result.exit_code, ==, 1);
  g_assert_nonnull (strstr (result.err, "could not list keys"));
  eta_test_cli_result_clear (&result);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, data, fn) \
  g_test_add (path, Fixture, data, fixture_set_up, fn, fixture_tear_down)
  ADD ("/cli/list", NULL, test_list);
  ADD ("/cli/add-key", NULL, test_add_key);
  ADD ("/cli/add-key-other-padding", NULL, test_add_key_other_padding);
  ADD ("/cli/add-unknown-key", NULL, test_add_unknown_key);
  ADD ("/cli/usage-errors", NULL, test_usage_errors);
  ADD ("/cli/agent-not-running", "no agent", test_agent_not_running);
  return g_test_run ();
}

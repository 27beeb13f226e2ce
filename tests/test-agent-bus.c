/* The agent over D-Bus: a real dbus-daemon per test (GTestDBus), the real
 * agent binary, a real SoftHSM2 token, PINs typed on the agent's terminal. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "eta-agent-client.h"
#include "eta-epoch-packet.h"
#include "eta-names.h"
#include "eta-seal.h"
#include "eta-test-agent.h"
#include "eta-test-open-bus.h"
#include "eta-test-crypto.h"
#include "eta-test-token.h"

#define CALL_TIMEOUT_MS 20000

typedef struct
{
  GTestDBus *bus;
  EtaTestAgent *agent;
  GDBusConnection *connection;
  const EtaTestToken *token;
} Fixture;

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  fixture->token = eta_test_token_get ();
  fixture->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fixture->bus);
  fixture->agent = eta_test_agent_start (NULL);
  fixture->connection = eta_test_session_bus ();
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  eta_agent_client_disconnect ();
  g_clear_object (&fixture->connection);
  eta_test_agent_stop (fixture->agent);
  g_test_dbus_down (fixture->bus);
  g_clear_object (&fixture->bus);
}

static GVariant *
call_agent (Fixture *fixture, const gchar *method, GVariant *args, const gchar *reply_type,
            GError **error)
{
  return g_dbus_connection_call_sync (fixture->connection, ETA_BUS_NAME, ETA_OBJECT_PATH,
                                      ETA_INTERFACE, method, args,
                                      reply_type ? G_VARIANT_TYPE (reply_type) : NULL,
                                      G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, error);
}

static void
assert_remote_error (GError *error, const gchar *name)
{
  g_autofree gchar *remote = NULL;
  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  g_assert_cmpstr (remote, ==, name);
}

/* Unwraps through the key module's own client code, as ecryptfsd would. */
static gboolean
unwrap (Fixture *fixture, EtaTestKeyIndex index, EtaPadding padding, GBytes *wrapped,
        GBytes **plaintext_out, GError **error)
{
  guint8 plaintext[512];
  gsize len = sizeof plaintext;

  if (!eta_agent_client_unwrap (fixture->token->fingerprint[index], padding, NULL, NULL, TRUE,
                                g_bytes_get_data (wrapped, NULL), g_bytes_get_size (wrapped),
                                CALL_TIMEOUT_MS, plaintext, &len, error))
    return FALSE;
  *plaintext_out = g_bytes_new (plaintext, len);
  return TRUE;
}

static void
test_resolve (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *prefix = g_strndup (fixture->token->fingerprint[ETA_TEST_KEY_RSA2048], 16);
  g_autoptr (GVariant) reply = call_agent (fixture, "ResolveKey", g_variant_new ("(s)", prefix),
                                           "(sayss)", &error);
  g_autoptr (GBytes) expected = eta_test_token_load_public_key (ETA_TEST_KEY_RSA2048);
  g_autoptr (GVariant) spki = NULL;
  const gchar *full, *key_label, *token_label;

  g_assert_no_error (error);
  g_variant_get (reply, "(&s@ay&s&s)", &full, &spki, &key_label, &token_label);
  g_assert_cmpstr (full, ==, fixture->token->fingerprint[ETA_TEST_KEY_RSA2048]);
  g_assert_cmpmem (g_variant_get_data (spki), g_variant_get_size (spki),
                   g_bytes_get_data (expected, NULL), g_bytes_get_size (expected));
  g_assert_cmpstr (key_label, ==, fixture->token->label[ETA_TEST_KEY_RSA2048]);
  g_assert_cmpstr (token_label, ==, ETA_TEST_TOKEN_LABEL);
  /* Resolving never asks for a PIN. */
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 0);
}

static void
test_resolve_unknown (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = call_agent (fixture, "ResolveKey",
                                           g_variant_new ("(s)", "0123456789abcdef0123"),
                                           "(sayss)", &error);
  g_assert_null (reply);
  assert_remote_error (error, ETA_ERROR_PREFIX "KeyNotFound");
  g_assert_nonnull (strstr (error->message, "0123456789abcdef0123"));
}

static void
test_invalid_fingerprints (Fixture *fixture, gconstpointer data)
{
  const gchar *bad[] = { "", "0123", "0123456789ABCDEF", "zz23456789abcdef",
                         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef00" };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GVariant) reply = call_agent (fixture, "ResolveKey",
                                               g_variant_new ("(s)", bad[i]), "(sayss)",
                                               &error);
      g_assert_null (reply);
      assert_remote_error (error, ETA_ERROR_PREFIX "InvalidArgument");
    }
}

static void
test_list_keys (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = call_agent (fixture, "ListKeys", NULL, "(aa{sv})", &error);
  g_autoptr (GVariant) keys = NULL;
  gboolean seen[ETA_TEST_N_KEYS] = { FALSE };

  g_assert_no_error (error);
  keys = g_variant_get_child_value (reply, 0);
  for (gsize i = 0; i < g_variant_n_children (keys); i++)
    {
      g_autoptr (GVariant) key = g_variant_get_child_value (keys, i);
      const gchar *fingerprint = NULL, *sig = NULL;
      guint32 bits = 0;

      g_assert_true (g_variant_lookup (key, "fingerprint", "&s", &fingerprint));
      g_assert_true (g_variant_lookup (key, "sig", "&s", &sig));
      g_assert_true (g_variant_lookup (key, "bits", "u", &bits));
      g_assert_cmpuint (strlen (sig), ==, 16);
      for (int k = 0; k < ETA_TEST_N_KEYS; k++)
        if (g_str_equal (fingerprint, fixture->token->fingerprint[k]))
          {
            seen[k] = TRUE;
            g_assert_cmpuint (bits, ==, k == ETA_TEST_KEY_RSA2048 ? 2048 : 3072);
          }
    }
  g_assert_true (seen[ETA_TEST_KEY_RSA2048]);
  g_assert_true (seen[ETA_TEST_KEY_RSA3072]);
}

static void
test_list_tokens (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = call_agent (fixture, "ListTokens", NULL, "(aa{sv})", &error);
  g_autoptr (GVariant) tokens = NULL;
  g_autoptr (GVariant) token = NULL;
  const gchar *label = NULL, *state = NULL;

  g_assert_no_error (error);
  tokens = g_variant_get_child_value (reply, 0);
  g_assert_cmpuint (g_variant_n_children (tokens), ==, 1);
  token = g_variant_get_child_value (tokens, 0);
  g_assert_true (g_variant_lookup (token, "label", "&s", &label));
  g_assert_true (g_variant_lookup (token, "state", "&s", &state));
  g_assert_cmpstr (label, ==, ETA_TEST_TOKEN_LABEL);
  g_assert_cmpstr (state, ==, "present");
}

static void
roundtrip (Fixture *fixture, EtaTestKeyIndex index, EtaPadding padding, gsize fek_len)
{
  g_autoptr (GBytes) public_key = eta_test_token_load_public_key (index);
  g_autoptr (GBytes) fek = eta_test_random_bytes (fek_len);
  g_autoptr (GBytes) wrapped = eta_test_rsa_encrypt (public_key, padding,
                                                     g_bytes_get_data (fek, NULL), fek_len);
  g_autoptr (GBytes) recovered = NULL;
  g_autoptr (GError) error = NULL;

  gboolean ok = unwrap (fixture, index, padding, wrapped, &recovered, &error);

  if (error != NULL)
    {
      g_autofree gchar *terminal = eta_test_agent_dup_terminal_output (fixture->agent);
      g_printerr ("agent terminal:\n%s\n", terminal);
    }
  g_assert_no_error (error);
  g_assert_true (ok);
  g_assert_true (g_bytes_equal (recovered, fek));
}

static void
test_unwrap_prompts_once (Fixture *fixture, gconstpointer data)
{
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  roundtrip (fixture, ETA_TEST_KEY_RSA2048, ETA_PADDING_OAEP, 35);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
  /* Logged in now: both keys, both paddings, no more prompts. */
  roundtrip (fixture, ETA_TEST_KEY_RSA2048, ETA_PADDING_PKCS1, 19);
  roundtrip (fixture, ETA_TEST_KEY_RSA3072, ETA_PADDING_OAEP, 35);
  roundtrip (fixture, ETA_TEST_KEY_RSA3072, ETA_PADDING_PKCS1, 19);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
}

/* SSH and console sessions: without a display the agent asks on its own
 * terminal, with no --terminal needed, and coalesces as the dialogs do. */
static void
test_no_display_prompts_on_terminal (Fixture *fixture, gconstpointer data)
{
  const gchar *no_display[] = { "DISPLAY=", "WAYLAND_DISPLAY=", NULL };
  g_autofree gchar *output = NULL;

  eta_agent_client_disconnect ();
  eta_test_agent_stop (fixture->agent);
  fixture->agent = eta_test_agent_start_full (no_display, FALSE, NULL);
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  roundtrip (fixture, ETA_TEST_KEY_RSA2048, ETA_PADDING_OAEP, 35);
  roundtrip (fixture, ETA_TEST_KEY_RSA3072, ETA_PADDING_PKCS1, 19);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
  output = eta_test_agent_dup_terminal_output (fixture->agent);
  g_assert_nonnull (strstr (output, ETA_TEST_TOKEN_LABEL));
  g_assert_null (strstr (output, ETA_TEST_TOKEN_PIN));
}

static void
test_prompt_shows_who_and_what (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *output = NULL;
  g_autofree gchar *short_fpr = g_strndup (fixture->token->fingerprint[ETA_TEST_KEY_RSA2048], 16);

  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  roundtrip (fixture, ETA_TEST_KEY_RSA2048, ETA_PADDING_OAEP, 19);
  output = eta_test_agent_dup_terminal_output (fixture->agent);
  g_assert_nonnull (strstr (output, fixture->token->label[ETA_TEST_KEY_RSA2048]));
  g_assert_nonnull (strstr (output, short_fpr));
  g_assert_nonnull (strstr (output, ETA_TEST_TOKEN_LABEL));
  g_assert_nonnull (strstr (output, g_get_prgname ()));
  /* The PIN was typed with echo off: it never shows on the terminal. */
  g_assert_null (strstr (output, ETA_TEST_TOKEN_PIN));
}

static void
test_wrong_then_right_pin (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *output = NULL;

  eta_test_agent_queue_answer (fixture->agent, "9999");
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  roundtrip (fixture, ETA_TEST_KEY_RSA2048, ETA_PADDING_OAEP, 35);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 2);
  output = eta_test_agent_dup_terminal_output (fixture->agent);
  g_assert_nonnull (strstr (output, "Wrong PIN"));
}

static void
test_wrong_pin_three_times (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GBytes) public_key = eta_test_token_load_public_key (ETA_TEST_KEY_RSA2048);
  g_autoptr (GBytes) wrapped = eta_test_rsa_encrypt (public_key, ETA_PADDING_OAEP,
                                                     (const guint8 *) "0123456789abcdef", 16);
  g_autoptr (GBytes) recovered = NULL;
  g_autoptr (GError) error = NULL;

  for (int i = 0; i < 3; i++)
    eta_test_agent_queue_answer (fixture->agent, "0000");
  g_assert_false (unwrap (fixture, ETA_TEST_KEY_RSA2048, ETA_PADDING_OAEP, wrapped, &recovered,
                          &error));
  assert_remote_error (error, ETA_ERROR_PREFIX "PinIncorrect");
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 3);
  g_clear_error (&error);
  /* The token's counter: reset it with the right PIN before SoftHSM2 locks. */
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  g_assert_true (unwrap (fixture, ETA_TEST_KEY_RSA2048, ETA_PADDING_OAEP, wrapped, &recovered,
                         &error));
  g_assert_no_error (error);
}

static void
test_cancel (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GBytes) public_key = eta_test_token_load_public_key (ETA_TEST_KEY_RSA2048);
  g_autoptr (GBytes) wrapped = eta_test_rsa_encrypt (public_key, ETA_PADDING_OAEP,
                                                     (const guint8 *) "0123456789abcdef", 16);
  g_autoptr (GBytes) recovered = NULL;
  g_autoptr (GError) error = NULL;

  eta_test_agent_queue_answer (fixture->agent, NULL);
  g_assert_false (unwrap (fixture, ETA_TEST_KEY_RSA2048, ETA_PADDING_OAEP, wrapped, &recovered,
                          &error));
  assert_remote_error (error, ETA_ERROR_PREFIX "Cancelled");
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
  /* Cancelling is not a failure of the agent: the next request prompts again. */
  g_clear_error (&error);
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  unwrap (fixture, ETA_TEST_KEY_RSA2048, ETA_PADDING_OAEP, wrapped, &recovered, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 2);
}

typedef struct
{
  Fixture *fixture;
  GBytes *wrapped;
  GBytes *expected;
  gboolean ok;
  gchar *remote_error;
} ConcurrentUnwrap;

static gpointer
concurrent_unwrap (gpointer data)
{
  ConcurrentUnwrap *job = data;
  g_autoptr (GBytes) recovered = NULL;
  g_autoptr (GError) error = NULL;

  job->ok = unwrap (job->fixture, ETA_TEST_KEY_RSA2048, ETA_PADDING_OAEP, job->wrapped,
                    &recovered, &error)
            && g_bytes_equal (recovered, job->expected);
  if (error != NULL)
    job->remote_error = g_dbus_error_get_remote_error (error);
  return NULL;
}

static void
run_concurrent (Fixture *fixture, guint count, const gchar *answer, gboolean expect_ok)
{
  g_autoptr (GBytes) public_key = eta_test_token_load_public_key (ETA_TEST_KEY_RSA2048);
  ConcurrentUnwrap *jobs = g_new0 (ConcurrentUnwrap, count);
  GThread **threads = g_new0 (GThread *, count);

  for (guint i = 0; i < count; i++)
    {
      jobs[i].fixture = fixture;
      jobs[i].expected = eta_test_random_bytes (35);
      jobs[i].wrapped = eta_test_rsa_encrypt (public_key, ETA_PADDING_OAEP,
                                              g_bytes_get_data (jobs[i].expected, NULL), 35);
      threads[i] = g_thread_new ("unwrap", concurrent_unwrap, &jobs[i]);
    }
  /* Answer only once every request is in: they must all wait on one prompt. */
  g_assert_true (eta_test_agent_wait_for_prompts (fixture->agent, 1, 10000));
  g_usleep (300 * 1000);
  eta_test_agent_queue_answer (fixture->agent, answer);
  for (guint i = 0; i < count; i++)
    {
      g_thread_join (threads[i]);
      if (jobs[i].ok != expect_ok)
        {
          g_autofree gchar *terminal = eta_test_agent_dup_terminal_output (fixture->agent);
          g_printerr ("request %u: %s\nagent terminal:\n%s\n", i, jobs[i].remote_error,
                      terminal);
        }
      g_assert_cmpint (jobs[i].ok, ==, expect_ok);
      if (!expect_ok)
        g_assert_cmpstr (jobs[i].remote_error, ==, ETA_ERROR_PREFIX "Cancelled");
      g_bytes_unref (jobs[i].wrapped);
      g_bytes_unref (jobs[i].expected);
      g_free (jobs[i].remote_error);
    }
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
  g_free (jobs);
  g_free (threads);
}

static void
test_concurrent_one_prompt (Fixture *fixture, gconstpointer data)
{
  run_concurrent (fixture, 20, ETA_TEST_TOKEN_PIN, TRUE);
}

static void
test_concurrent_cancel_fails_all (Fixture *fixture, gconstpointer data)
{
  run_concurrent (fixture, 6, NULL, FALSE);
}

static void
test_lock (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GPtrArray) states = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  guint subscription;
  gint64 deadline;

  subscription = eta_test_watch_token_states (fixture->connection, states);
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  roundtrip (fixture, ETA_TEST_KEY_RSA2048, ETA_PADDING_OAEP, 35);
  reply = call_agent (fixture, "Lock", NULL, "()", &error);
  g_assert_no_error (error);
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  roundtrip (fixture, ETA_TEST_KEY_RSA2048, ETA_PADDING_OAEP, 35);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 2);

  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (states->len < 3 && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, FALSE);
  g_dbus_connection_signal_unsubscribe (fixture->connection, subscription);
  g_assert_cmpuint (states->len, ==, 3);
  g_assert_cmpstr (g_ptr_array_index (states, 0), ==, "logged-in");
  g_assert_cmpstr (g_ptr_array_index (states, 1), ==, "locked");
  g_assert_cmpstr (g_ptr_array_index (states, 2), ==, "logged-in");
}

static void
test_bad_ciphertexts (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GBytes) oversized = eta_test_random_bytes (600);
  g_autoptr (GBytes) short_one = eta_test_random_bytes (100);
  g_autoptr (GBytes) wrong_key = NULL;
  g_autoptr (GBytes) public_key = eta_test_token_load_public_key (ETA_TEST_KEY_RSA3072);
  g_autoptr (GBytes) recovered = NULL;
  GError *error = NULL;

  wrong_key = eta_test_rsa_encrypt (public_key, ETA_PADDING_OAEP, (const guint8 *) "x", 1);

  /* The key module refuses the oversized one itself. */
  g_assert_false (unwrap (fixture, ETA_TEST_KEY_RSA2048, ETA_PADDING_OAEP, oversized,
                          &recovered, &error));
  g_clear_error (&error);
  {
    g_autoptr (GVariant) reply = call_agent (
        fixture, "Unwrap",
        g_variant_new ("(ss@ay@ay@a{sv})", fixture->token->fingerprint[ETA_TEST_KEY_RSA2048],
                       "oaep",
                       g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, oversized, TRUE),
                       g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING,
                                                 eta_test_random_bytes (32), TRUE),
                       g_variant_new ("a{sv}", NULL)),
        "(ayay)", &error);
    g_assert_null (reply);
    assert_remote_error (error, ETA_ERROR_PREFIX "InvalidArgument");
    g_clear_error (&error);
  }
  g_assert_false (unwrap (fixture, ETA_TEST_KEY_RSA2048, ETA_PADDING_OAEP, short_one,
                          &recovered, &error));
  assert_remote_error (error, ETA_ERROR_PREFIX "InvalidArgument");
  g_clear_error (&error);

  /* A ciphertext for another key, of the right size: the token refuses it. */
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  {
    g_autoptr (GBytes) public_2048 = eta_test_token_load_public_key (ETA_TEST_KEY_RSA2048);
    g_autoptr (GBytes) other = NULL;
    EVP_PKEY *unrelated = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) 2048);
    unsigned char *der = NULL;
    int der_len = i2d_PUBKEY (unrelated, &der);
    g_autoptr (GBytes) unrelated_public = g_bytes_new (der, (gsize) der_len);

    OPENSSL_free (der);
    EVP_PKEY_free (unrelated);
    other = eta_test_rsa_encrypt (unrelated_public, ETA_PADDING_OAEP, (const guint8 *) "x", 1);
    g_assert_false (unwrap (fixture, ETA_TEST_KEY_RSA2048, ETA_PADDING_OAEP, other, &recovered,
                            &error));
    assert_remote_error (error, ETA_ERROR_PREFIX "DecryptFailed");
    g_clear_error (&error);
  }
  g_assert_nonnull (wrong_key);
}

static void
test_malformed_arguments (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) keys = NULL;

  /* Wrong signature: the bus library refuses it, the agent carries on. */
  reply = call_agent (fixture, "Unwrap", g_variant_new ("(s)", "nonsense"), NULL, &error);
  g_assert_null (reply);
  assert_remote_error (error, "org.freedesktop.DBus.Error.InvalidArgs");
  g_clear_error (&error);

  reply = call_agent (fixture, "Unwrap",
                      g_variant_new ("(ss@ay@ay@a{sv})",
                                     fixture->token->fingerprint[ETA_TEST_KEY_RSA2048], "rsa-raw",
                                     g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING,
                                                               eta_test_random_bytes (256), TRUE),
                                     g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING,
                                                               eta_test_random_bytes (32), TRUE),
                                     g_variant_new ("a{sv}", NULL)),
                      NULL, &error);
  g_assert_null (reply);
  assert_remote_error (error, ETA_ERROR_PREFIX "InvalidArgument");
  g_clear_error (&error);

  reply = call_agent (fixture, "Unwrap",
                      g_variant_new ("(ss@ay@ay@a{sv})",
                                     fixture->token->fingerprint[ETA_TEST_KEY_RSA2048], "oaep",
                                     g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING,
                                                               eta_test_random_bytes (256), TRUE),
                                     g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING,
                                                               eta_test_random_bytes (7), TRUE),
                                     g_variant_new ("a{sv}", NULL)),
                      NULL, &error);
  g_assert_null (reply);
  assert_remote_error (error, ETA_ERROR_PREFIX "InvalidArgument");
  g_clear_error (&error);

  /* A session key of small order: refused before the locked token is
   * asked for anything, so no PIN prompt either. */
  {
    const guint8 low_order[ETA_SEAL_PUBLIC_KEY_LEN] = { 1 };
    g_autoptr (GBytes) ciphertext = eta_test_random_bytes (256);

    reply = call_agent (fixture, "Unwrap",
                        g_variant_new ("(ss@ay@ay@a{sv})",
                                       fixture->token->fingerprint[ETA_TEST_KEY_RSA2048], "oaep",
                                       g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING,
                                                                 ciphertext, TRUE),
                                       g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, low_order,
                                                                  sizeof low_order, 1),
                                       g_variant_new ("a{sv}", NULL)),
                        NULL, &error);
    g_assert_null (reply);
    assert_remote_error (error, ETA_ERROR_PREFIX "InvalidArgument");
    g_assert_nonnull (strstr (error->message, "X25519"));
    g_clear_error (&error);
  }

  keys = call_agent (fixture, "ListKeys", NULL, "(aa{sv})", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 0);
}

/* ---- the plaintext never crosses the bus in clear ---- */

/* Splits dbus-monitor --binary output into messages. */
static GPtrArray *
split_capture (const guint8 *data, gsize len)
{
  GPtrArray *messages = g_ptr_array_new_with_free_func (g_object_unref);
  gsize offset = 0;

  while (offset + 16 <= len)
    {
      gssize needed = g_dbus_message_bytes_needed ((guchar *) data + offset, 16, NULL);
      GDBusMessage *message;

      if (needed <= 0 || offset + (gsize) needed > len)
        break;
      message = g_dbus_message_new_from_blob ((guchar *) data + offset, (gsize) needed,
                                              G_DBUS_CAPABILITY_FLAGS_UNIX_FD_PASSING, NULL);
      if (message != NULL)
        g_ptr_array_add (messages, message);
      offset += (gsize) needed;
    }
  return messages;
}

static void
test_bus_capture_has_no_plaintext (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) public_key = eta_test_token_load_public_key (ETA_TEST_KEY_RSA2048);
  g_autoptr (GPtrArray) messages = NULL;
  g_autofree gchar *capture_path = NULL;
  g_autofree gchar *capture = NULL;
  gsize capture_len = 0;
  const gchar *monitor_argv[] = { "dbus-monitor", "--address",
                                  g_getenv ("DBUS_SESSION_BUS_ADDRESS"), "--binary", NULL };
  GBytes *feks[4];
  guint8 epoch_key[ETA_EPOCH_KEY_LEN];
  g_autoptr (GBytes) epoch_rsa = NULL;
  g_autofree gchar *epoch_key_base64 = NULL;
  g_autofree gchar *agent_output = NULL;
  guint unwrap_replies = 0;
  GPid monitor;
  gint out_fd;
  int fd, status;

  /* A real bus monitor, as an attacker with the user's rights would run. */
  g_spawn_async_with_pipes (NULL, (gchar **) monitor_argv, NULL,
                            G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                            &monitor, NULL, &out_fd, NULL, &error);
  g_assert_no_error (error);
  fd = g_file_open_tmp ("eta-capture-XXXXXX", &capture_path, &error);
  g_assert_no_error (error);
  close (fd);
  g_usleep (500 * 1000);

  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  for (int i = 0; i < 4; i++)
    {
      g_autoptr (GBytes) wrapped = NULL;
      g_autoptr (GBytes) recovered = NULL;

      feks[i] = eta_test_random_bytes (i % 2 ? 35 : 19);
      wrapped = eta_test_rsa_encrypt (public_key, ETA_PADDING_OAEP,
                                      g_bytes_get_data (feks[i], NULL),
                                      g_bytes_get_size (feks[i]));
      g_assert_true (unwrap (fixture, ETA_TEST_KEY_RSA2048, ETA_PADDING_OAEP, wrapped,
                             &recovered, &error));
      g_assert_true (g_bytes_equal (recovered, feks[i]));
    }
  /* And an epoch: K goes to the agent as RSA(K) and stays there. */
  {
    g_autoptr (GBytes) epoch_key_bytes = eta_test_random_bytes (ETA_EPOCH_KEY_LEN);

    memcpy (epoch_key, g_bytes_get_data (epoch_key_bytes, NULL), ETA_EPOCH_KEY_LEN);
    epoch_rsa = eta_test_rsa_encrypt (public_key, ETA_PADDING_OAEP, epoch_key,
                                      ETA_EPOCH_KEY_LEN);
    epoch_key_base64 = g_base64_encode (epoch_key, ETA_EPOCH_KEY_LEN);
  }
  for (int i = 0; i < 3; i++)
    {
      g_autoptr (GBytes) payload = eta_test_random_bytes (35);
      g_autoptr (GBytes) packet = NULL;
      g_autoptr (GBytes) recovered = NULL;
      guint8 bytes[ETA_EPOCH_MAX_PACKET];
      size_t len = eta_epoch_packet_write (bytes, ETA_PADDING_OAEP,
                                           g_bytes_get_data (epoch_rsa, NULL),
                                           g_bytes_get_size (epoch_rsa), epoch_key,
                                           g_bytes_get_data (payload, NULL), 35);

      g_assert_cmpuint (len, >, 0);
      packet = g_bytes_new (bytes, len);
      g_assert_true (unwrap (fixture, ETA_TEST_KEY_RSA2048, ETA_PADDING_OAEP, packet,
                             &recovered, &error));
      g_assert_true (g_bytes_equal (recovered, payload));
    }
  g_usleep (500 * 1000);
  kill (monitor, SIGTERM);
  {
    GString *all = g_string_new (NULL);
    char buffer[8192];
    ssize_t n;
    while ((n = read (out_fd, buffer, sizeof buffer)) > 0)
      g_string_append_len (all, buffer, n);
    capture_len = all->len;
    capture = g_string_free (all, FALSE);
  }
  close (out_fd);
  waitpid (monitor, &status, 0);
  g_unlink (capture_path);

  messages = split_capture ((const guint8 *) capture, capture_len);
  for (guint m = 0; m < messages->len; m++)
    {
      GDBusMessage *message = messages->pdata[m];
      GVariant *body = g_dbus_message_get_body (message);
      if (g_dbus_message_get_message_type (message) == G_DBUS_MESSAGE_TYPE_METHOD_RETURN
          && body != NULL && g_variant_is_of_type (body, G_VARIANT_TYPE ("(ayay)")))
        unwrap_replies++;
    }
  /* The capture saw every reply, so an absent key is a real absence. */
  g_assert_cmpuint (unwrap_replies, ==, 4 + 3);
  /* No 12 bytes of K in any message, nor K in the agent's log, raw, in
   * hex or in base64. */
  agent_output = eta_test_agent_dup_terminal_output (fixture->agent);
  for (int at = 0; at + 12 <= ETA_EPOCH_KEY_LEN; at += 4)
    {
      char hex[2 * 12 + 1];

      g_assert_null (memmem (capture, capture_len, epoch_key + at, 12));
      g_assert_null (memmem (agent_output, strlen (agent_output), epoch_key + at, 12));
      for (int b = 0; b < 12; b++)
        g_snprintf (hex + 2 * b, 3, "%02x", epoch_key[at + b]);
      g_assert_null (g_strstr_len (agent_output, -1, hex));
      g_assert_null (memmem (capture, capture_len, hex, 24));
    }
  g_assert_null (g_strstr_len (agent_output, -1, epoch_key_base64));
  for (int i = 0; i < 4; i++)
    {
      /* The FEK without its cipher code and checksum framing: any 12 bytes. */
      const guint8 *fek = g_bytes_get_data (feks[i], NULL);
      g_assert_null (memmem (capture, capture_len, fek + 1, 12));
      g_bytes_unref (feks[i]);
    }
}

/* ---- a PIN that comes after the caller stopped waiting ---- */

static const gchar notifications_xml[] =
  "<node><interface name='org.freedesktop.Notifications'>"
  "<method name='Notify'><arg type='s' direction='in'/><arg type='u' direction='in'/>"
  "<arg type='s' direction='in'/><arg type='s' direction='in'/><arg type='s' direction='in'/>"
  "<arg type='as' direction='in'/><arg type='a{sv}' direction='in'/>"
  "<arg type='i' direction='in'/><arg type='u' direction='out'/></method>"
  "<method name='GetCapabilities'><arg type='as' direction='out'/></method>"
  "</interface></node>";

static void
on_notification_call (GDBusConnection *connection, const gchar *sender, const gchar *path,
                      const gchar *interface, const gchar *method, GVariant *parameters,
                      GDBusMethodInvocation *invocation, gpointer user_data)
{
  GPtrArray *summaries = user_data;

  if (g_str_equal (method, "Notify"))
    {
      const gchar *summary = NULL;
      g_variant_get_child (parameters, 3, "&s", &summary);
      g_ptr_array_add (summaries, g_strdup (summary));
      g_dbus_method_invocation_return_value (invocation, g_variant_new ("(u)", 1));
    }
  else
    g_dbus_method_invocation_return_value (invocation,
                                           g_variant_new_parsed ("(@as ['body'],)"));
}

typedef struct
{
  Fixture *fixture;
  GBytes *wrapped;
  gboolean ok;
  gboolean done;
} LateUnwrap;

static gpointer
late_unwrap_thread (gpointer data)
{
  LateUnwrap *job = data;
  g_autoptr (GDBusConnection) connection = eta_test_session_bus ();
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariantBuilder) details = g_variant_builder_new (G_VARIANT_TYPE_VARDICT);
  g_autoptr (GBytes) session_key = eta_test_random_bytes (32);

  /* The caller says it waits 100 ms; the PIN comes much later. */
  g_variant_builder_add (details, "{sv}", "timeout-ms", g_variant_new_uint32 (100));
  reply = g_dbus_connection_call_sync (
      connection, ETA_BUS_NAME, ETA_OBJECT_PATH, ETA_INTERFACE, "Unwrap",
      g_variant_new ("(ss@ay@ay@a{sv})",
                     job->fixture->token->fingerprint[ETA_TEST_KEY_RSA2048], "oaep",
                     g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, job->wrapped, TRUE),
                     g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, session_key, TRUE),
                     g_variant_builder_end (details)),
      G_VARIANT_TYPE ("(ayay)"), G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, NULL);
  job->ok = reply != NULL;
  g_atomic_int_set (&job->done, TRUE);
  return NULL;
}

static void
test_late_pin_notifies (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GPtrArray) summaries = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GDBusNodeInfo) info = g_dbus_node_info_new_for_xml (notifications_xml, NULL);
  g_autoptr (GBytes) public_key = eta_test_token_load_public_key (ETA_TEST_KEY_RSA2048);
  const GDBusInterfaceVTable vtable = { on_notification_call, NULL, NULL };
  LateUnwrap job = { fixture, NULL, FALSE, FALSE };
  GThread *thread;
  gint64 deadline;
  guint owner, registration;

  registration = g_dbus_connection_register_object (fixture->connection,
                                                    "/org/freedesktop/Notifications",
                                                    info->interfaces[0], &vtable, summaries,
                                                    NULL, NULL);
  owner = g_bus_own_name_on_connection (fixture->connection, "org.freedesktop.Notifications",
                                        G_BUS_NAME_OWNER_FLAGS_NONE, NULL, NULL, NULL, NULL);
  job.wrapped = eta_test_rsa_encrypt (public_key, ETA_PADDING_OAEP, (const guint8 *) "k", 1);
  thread = g_thread_new ("late-unwrap", late_unwrap_thread, &job);
  g_assert_true (eta_test_agent_wait_for_prompts (fixture->agent, 1, 10000));
  g_usleep (500 * 1000);
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);

  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while ((summaries->len == 0 || !g_atomic_int_get (&job.done))
         && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, FALSE);
  g_thread_join (thread);
  g_assert_true (job.ok);
  g_assert_cmpuint (summaries->len, ==, 1);
  g_assert_nonnull (strstr (g_ptr_array_index (summaries, 0), "open the file again"));

  /* In time: no notification. */
  g_ptr_array_set_size (summaries, 0);
  roundtrip (fixture, ETA_TEST_KEY_RSA2048, ETA_PADDING_OAEP, 19);
  for (int i = 0; i < 20; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_cmpuint (summaries->len, ==, 0);

  g_bus_unown_name (owner);
  g_dbus_connection_unregister_object (fixture->connection, registration);
  g_bytes_unref (job.wrapped);
}

/* ---- callers running as another user are refused ---- */

static void
test_other_uid_refused (void)
{
  EtaTestOpenBus *bus;
  EtaTestAgent *agent;
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;

  const EtaTestToken *token = eta_test_token_get ();
  g_autofree gchar *fingerprint = g_strdup_printf ("'%s'", token->fingerprint[0]);
  /* Every method of the interface, with arguments it would serve. */
  const struct { const gchar *method; const gchar *args[6]; } agent_calls[] = {
    { "ResolveKey", { fingerprint, NULL } },
    { "Unwrap", { fingerprint, "'oaep'", "[byte 1, 2, 3]", "[byte 9, 9]", "{}", NULL } },
    { "Unlock", { fingerprint, "{}", NULL } },
    { "ListTokens", { NULL } },
    { "ListKeys", { NULL } },
    { "Lock", { NULL } },
  };

  bus = eta_test_open_bus_start ();
  agent = eta_test_agent_start (NULL);

  /* nobody: a different user on the same bus, refused before any handler
   * runs (no prompt, no lock, nothing listed). */
  for (gsize i = 0; i < G_N_ELEMENTS (agent_calls); i++)
    {
      g_autofree gchar *method = g_strconcat (ETA_INTERFACE ".", agent_calls[i].method, NULL);

      g_assert_false (eta_test_open_bus_call (bus, TRUE, ETA_BUS_NAME, ETA_OBJECT_PATH, method,
                                              agent_calls[i].args, &out, &err));
      g_assert_nonnull (strstr (err, ETA_ERROR_PREFIX "AccessDenied"));
      g_assert_null (strstr (out, "fingerprint"));
      g_clear_pointer (&out, g_free);
      g_clear_pointer (&err, g_free);
    }
  /* GApplication's own interfaces on the same object, for nobody and for
   * the agent's user alike: the agent serves none of them. */
  for (int as_nobody = 1; as_nobody >= 0; as_nobody--)
    {
      static const struct { const gchar *method; const gchar *args[4]; } calls[] = {
        { "org.gtk.Application.Activate", { "{}", NULL } },
        { "org.freedesktop.Application.Activate", { "{}", NULL } },
        { "org.gtk.Actions.List", { NULL } },
        { "org.freedesktop.DBus.Properties.GetAll", { "org.gtk.Application", NULL } },
      };
      for (gsize i = 0; i < G_N_ELEMENTS (calls); i++)
        {
          g_assert_false (eta_test_open_bus_call (bus, as_nobody, ETA_BUS_NAME, ETA_OBJECT_PATH,
                                                  calls[i].method, calls[i].args, &out, &err));
          g_assert_nonnull (strstr (err, "org.freedesktop.DBus.Error.AccessDenied"));
          g_clear_pointer (&out, g_free);
          g_clear_pointer (&err, g_free);
        }
    }
  /* The same call as the agent's own user is served. */
  g_assert_true (eta_test_open_bus_call (bus, FALSE, ETA_BUS_NAME, ETA_OBJECT_PATH,
                                         ETA_INTERFACE ".ListKeys", NULL, &out, &err));
  g_assert_nonnull (strstr (out, "fingerprint"));

  eta_test_agent_stop (agent);
  eta_test_open_bus_stop (bus);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_set_prgname ("test-agent-bus");
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("/agent/bus/resolve", test_resolve);
  ADD ("/agent/bus/resolve-unknown", test_resolve_unknown);
  ADD ("/agent/bus/invalid-fingerprints", test_invalid_fingerprints);
  ADD ("/agent/bus/list-keys", test_list_keys);
  ADD ("/agent/bus/list-tokens", test_list_tokens);
  ADD ("/agent/bus/unwrap-prompts-once", test_unwrap_prompts_once);
  ADD ("/agent/bus/prompt-says-who-and-what", test_prompt_shows_who_and_what);
  ADD ("/agent/bus/no-display-prompts-on-terminal", test_no_display_prompts_on_terminal);
  ADD ("/agent/bus/wrong-then-right-pin", test_wrong_then_right_pin);
  ADD ("/agent/bus/wrong-pin-three-times", test_wrong_pin_three_times);
  ADD ("/agent/bus/cancel", test_cancel);
  ADD ("/agent/bus/concurrent-one-prompt", test_concurrent_one_prompt);
  ADD ("/agent/bus/concurrent-cancel-fails-all", test_concurrent_cancel_fails_all);
  ADD ("/agent/bus/lock", test_lock);
  ADD ("/agent/bus/bad-ciphertexts", test_bad_ciphertexts);
  ADD ("/agent/bus/malformed-arguments", test_malformed_arguments);
  ADD ("/agent/bus/capture-has-no-plaintext", test_bus_capture_has_no_plaintext);
  ADD ("/agent/bus/late-pin-notifies", test_late_pin_notifies);
  g_test_add_func ("/agent/bus/other-uid-refused", test_other_uid_refused);
  return g_test_run ();
}

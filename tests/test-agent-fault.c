/* The agent facing what real tokens do and SoftHSM2 cannot: a token that is
 * absent, inserted, pulled out, or whose PIN is blocked. The agent's only
 * provider is the fault-injecting module around SoftHSM2. */
#include <string.h>

#include <gio/gio.h>

#include "eta-agent-client.h"
#include "eta-fault-control.h"
#include "eta-names.h"
#include "eta-seal.h"
#include "eta-test-agent.h"
#include "eta-test-crypto.h"
#include "eta-test-token.h"
#include "eta-test-unwrap.h"

#define BUDGET_MS 30000

typedef struct
{
  GTestDBus *bus;
  EtaTestAgent *agent;
  const EtaTestToken *token;
} Fixture;

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  fixture->token = eta_test_token_get ();
  eta_fault_control_reset ();
  /* Settings pkcs11-helper reads only when it first meets the token. */
  eta_fault_control_apply (data);
  fixture->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fixture->bus);
  fixture->agent = eta_test_agent_start (NULL);
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  eta_agent_client_disconnect ();
  eta_test_agent_stop (fixture->agent);
  g_test_dbus_down (fixture->bus);
  g_clear_object (&fixture->bus);
}

static EtaTestUnwrap *
start_unwrap (Fixture *fixture)
{
  return eta_test_unwrap_start (BUDGET_MS);
}

static void
finish_unwrap (Fixture *fixture, EtaTestUnwrap *job, gboolean expect_ok,
               const gchar *expect_error)
{
  g_autofree gchar *terminal = eta_test_agent_dup_terminal_output (fixture->agent);
  eta_test_unwrap_finish (job, expect_ok, expect_error, terminal);
}

static void
test_insert_token_continues (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job;

  eta_fault_control_set ("present", "false");
  job = start_unwrap (fixture);
  g_assert_true (eta_test_agent_wait_for_output (fixture->agent, "Insert the token", 10000));
  {
    g_autofree gchar *terminal = eta_test_agent_dup_terminal_output (fixture->agent);
    g_assert_nonnull (strstr (terminal, "\"" ETA_TEST_TOKEN_LABEL "\""));
    g_assert_nonnull (strstr (terminal, "Test key 2048"));
  }
  /* The person plugs the token in: the prompt goes away by itself. */
  eta_fault_control_set ("present", "true");
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  finish_unwrap (fixture, job, TRUE, NULL);
  g_assert_true (eta_test_agent_wait_for_output (fixture->agent, "Token found", 1000));
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
}

static void
test_insert_token_cancel (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job;

  eta_fault_control_set ("present", "false");
  job = start_unwrap (fixture);
  g_assert_true (eta_test_agent_wait_for_output (fixture->agent, "Insert the token", 10000));
  eta_test_agent_type (fixture->agent, "\n");
  finish_unwrap (fixture, job, FALSE, "org.ecryptfs.TokenAgent1.Error.Cancelled");
}

static void
test_token_pulled_out (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job;

  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  finish_unwrap (fixture, start_unwrap (fixture), TRUE, NULL);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);

  /* Pulled out: the next open asks for the token, and for the PIN again
   * once it is back (removal logs a token out). */
  eta_fault_control_set ("present", "false");
  job = start_unwrap (fixture);
  g_assert_true (eta_test_agent_wait_for_output (fixture->agent, "Insert the token", 10000));
  eta_fault_control_set ("present", "true");
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  finish_unwrap (fixture, job, TRUE, NULL);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 2);
}

static void
test_pin_locked (Fixture *fixture, gconstpointer data)
{
  eta_fault_control_set ("pin_flags", "locked");
  finish_unwrap (fixture, start_unwrap (fixture), FALSE,
                 "org.ecryptfs.TokenAgent1.Error.PinLocked");
  /* No PIN was asked for: only the explanation. */
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 0);
  g_assert_true (eta_test_agent_wait_for_output (fixture->agent, "is blocked", 1000));
}

static void
test_final_try_warned (Fixture *fixture, gconstpointer data)
{
  eta_fault_control_set ("pin_flags", "final_try");
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  finish_unwrap (fixture, start_unwrap (fixture), TRUE, NULL);
  g_assert_true (eta_test_agent_wait_for_output (fixture->agent, "Final try", 1000));
}

static void
test_pin_pad_enter (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job = start_unwrap (fixture);

  g_assert_true (eta_test_agent_wait_for_output (fixture->agent, "keypad", 10000));
  g_assert_true (eta_fault_control_wait_status ("pinpad_waiting", "1", 10000));
  eta_fault_control_set ("pinpad", "enter");
  finish_unwrap (fixture, job, TRUE, NULL);
  /* The PIN never went through the agent. */
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 0);
}

static void
test_pin_pad_cancel_on_reader (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job = start_unwrap (fixture);

  g_assert_true (eta_fault_control_wait_status ("pinpad_waiting", "1", 10000));
  eta_fault_control_set ("pinpad", "cancel");
  finish_unwrap (fixture, job, FALSE, "org.ecryptfs.TokenAgent1.Error.Cancelled");
}

/* ---- prompts end with their callers, and hold up no other key ---- */

/* An Unwrap for a key no token holds, from the key module's own client in
 * a thread, waiting @budget_ms (sent to the agent as timeout-ms). */
typedef struct
{
  guint budget_ms;
  gchar *remote_error;
  GThread *thread;
} AbsentKeyUnwrap;

#define ABSENT_FINGERPRINT "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static gpointer
absent_key_thread (gpointer data)
{
  AbsentKeyUnwrap *job = data;
  g_autoptr (GBytes) ciphertext = eta_test_random_bytes (256);
  g_autoptr (GError) error = NULL;
  guint8 plaintext[512];
  gsize len = sizeof plaintext;

  g_assert_false (eta_agent_client_unwrap (ABSENT_FINGERPRINT, ETA_PADDING_OAEP, "Absent key",
                                           "Absent token", TRUE,
                                           g_bytes_get_data (ciphertext, NULL), 256,
                                           job->budget_ms, plaintext, &len, &error));
  job->remote_error = g_dbus_error_get_remote_error (error);
  return NULL;
}

static AbsentKeyUnwrap *
absent_key_unwrap_start (guint budget_ms)
{
  AbsentKeyUnwrap *job = g_new0 (AbsentKeyUnwrap, 1);

  job->budget_ms = budget_ms;
  job->thread = g_thread_new ("absent-key", absent_key_thread, job);
  return job;
}

/* The remote error it ended with (NULL for a local one, such as its own
 * timeout). */
static gchar *
absent_key_unwrap_finish (AbsentKeyUnwrap *job)
{
  gchar *remote_error;

  g_thread_join (job->thread);
  remote_error = job->remote_error;
  g_free (job);
  return remote_error;
}

static void
test_insert_prompt_ends_at_caller_deadline (Fixture *fixture, gconstpointer data)
{
  AbsentKeyUnwrap *absent;
  g_autofree gchar *remote_error = NULL;
  EtaTestUnwrap *job;
  gint64 started;

  absent = absent_key_unwrap_start (1500);
  g_assert_true (eta_test_agent_wait_for_output (fixture->agent, "Insert the token", 10000));
  started = g_get_monotonic_time ();
  /* The caller said it waits 1.5 s: the prompt ends about then, not after
   * the agent's own two minutes. */
  g_assert_true (eta_test_agent_wait_for_output (fixture->agent,
                                                 "No longer waiting for the token", 5000));
  g_assert_cmpint (g_get_monotonic_time () - started, <, 4 * G_USEC_PER_SEC);
  remote_error = absent_key_unwrap_finish (absent);
  g_assert_null (remote_error);

  /* A PIN prompt needed next is not held up. */
  job = start_unwrap (fixture);
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  finish_unwrap (fixture, job, TRUE, NULL);
}

static void
test_insert_prompt_ends_when_caller_leaves (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GDBusConnection) caller = NULL;
  g_autoptr (GBytes) ciphertext = eta_test_random_bytes (256);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *address = g_dbus_address_get_for_bus_sync (G_BUS_TYPE_SESSION, NULL, &error);
  guint8 session_key[32];
  gint64 left;

  g_assert_no_error (error);
  caller = g_dbus_connection_new_for_address_sync (
      address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
      | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &error);
  g_assert_no_error (error);
  {
    /* A usable X25519 key: the agent checks it before anything else. */
    EtaSealSession *session = eta_seal_session_new ();
    memcpy (session_key, eta_seal_session_get_public_key (session), sizeof session_key);
    eta_seal_session_free (session);
  }
  /* No timeout-ms: only the agent's own bound, or the caller leaving. */
  g_dbus_connection_call (caller, ETA_BUS_NAME, ETA_OBJECT_PATH, ETA_INTERFACE, "Unwrap",
                          g_variant_new ("(ss@ay@ay@a{sv})", ABSENT_FINGERPRINT, "oaep",
                                         g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING,
                                                                   ciphertext, TRUE),
                                         g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE,
                                                                    session_key,
                                                                    sizeof session_key, 1),
                                         g_variant_new ("a{sv}", NULL)),
                          NULL, G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, NULL, NULL);
  g_assert_true (eta_test_agent_wait_for_output (fixture->agent, "Insert the token", 10000));
  g_dbus_connection_close_sync (caller, NULL, &error);
  g_assert_no_error (error);
  left = g_get_monotonic_time ();
  g_assert_true (eta_test_agent_wait_for_output (fixture->agent,
                                                 "No longer waiting for the token", 5000));
  g_assert_cmpint (g_get_monotonic_time () - left, <, 3 * G_USEC_PER_SEC);

  /* And the agent serves the next request at once. */
  {
    EtaTestUnwrap *job = start_unwrap (fixture);
    eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
    finish_unwrap (fixture, job, TRUE, NULL);
  }
}

static void
test_insert_prompt_yields_to_other_key (Fixture *fixture, gconstpointer data)
{
  AbsentKeyUnwrap *absent;
  g_autofree gchar *remote_error = NULL;
  EtaTestUnwrap *job;

  /* A prompt for a key no token holds stays open (its caller waits a
   * minute)... */
  absent = absent_key_unwrap_start (60000);
  g_assert_true (eta_test_agent_wait_for_output (fixture->agent, "Insert the token", 10000));
  /* ...and a PIN prompt for the key of the present token still comes at
   * once, on the same terminal. */
  job = start_unwrap (fixture);
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  finish_unwrap (fixture, job, TRUE, NULL);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
  {
    g_autofree gchar *terminal = eta_test_agent_dup_terminal_output (fixture->agent);
    g_assert_nonnull (strstr (terminal, "Still waiting for the token"));
  }
  /* The insert-token prompt comes back, and Enter still cancels it. */
  g_assert_true (eta_test_agent_wait_for_output (fixture->agent, "Absent token", 5000));
  g_usleep (300 * 1000);
  eta_test_agent_type (fixture->agent, "\n");
  remote_error = absent_key_unwrap_finish (absent);
  g_assert_cmpstr (remote_error, ==, "org.ecryptfs.TokenAgent1.Error.Cancelled");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  eta_test_token_get ();
  eta_fault_control_setup ();
  g_setenv ("ETA_TEST_PROVIDER", eta_fault_control_get_module_path (), TRUE);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
#define ADD_WITH(path, settings, fn) \
  g_test_add (path, Fixture, settings, fixture_set_up, fn, fixture_tear_down)
  ADD ("/agent/fault/insert-token-continues", test_insert_token_continues);
  ADD ("/agent/fault/insert-token-cancel", test_insert_token_cancel);
  ADD ("/agent/fault/token-pulled-out", test_token_pulled_out);
  ADD ("/agent/fault/pin-locked", test_pin_locked);
  ADD ("/agent/fault/final-try-warned", test_final_try_warned);
  ADD_WITH ("/agent/fault/pin-pad-enter", "protected_auth_path=true;pinpad_pin=" ETA_TEST_TOKEN_PIN,
            test_pin_pad_enter);
  ADD_WITH ("/agent/fault/pin-pad-cancel-on-reader",
            "protected_auth_path=true;pinpad_pin=" ETA_TEST_TOKEN_PIN,
            test_pin_pad_cancel_on_reader);
  ADD ("/agent/fault/insert-prompt-ends-at-caller-deadline",
       test_insert_prompt_ends_at_caller_deadline);
  ADD ("/agent/fault/insert-prompt-ends-when-caller-leaves",
       test_insert_prompt_ends_when_caller_leaves);
  ADD ("/agent/fault/insert-prompt-yields-to-other-key", test_insert_prompt_yields_to_other_key);
  return g_test_run ();
}

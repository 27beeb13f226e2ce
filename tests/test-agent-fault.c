/* The agent facing what real tokens do and SoftHSM2 cannot: a token that is
 * absent, inserted, pulled out, or whose PIN is blocked. The agent's only
 * provider is the fault-injecting module around SoftHSM2. */
#include <string.h>

#include <gio/gio.h>

#include "eta-agent-client.h"
#include "eta-fault-control.h"
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
  return g_test_run ();
}

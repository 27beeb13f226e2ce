/* The real agent with its GTK dialog, driven from outside through AT-SPI as
 * a screen reader would (tests/gui/atspi-pin.py), under Xvfb.
 *
 * With ETA_TEST_GUI_LANGUAGE=de the German suite runs instead: the agent
 * inherits LANGUAGE=de and ECRYPTFS_TOKEN_AGENT_LOCALEDIR (the build tree's
 * catalogues) from the test's environment, and the dialogs must speak German. */
#include <locale.h>
#include <string.h>
#include <sys/wait.h>

#include <gio/gio.h>

#include "eta-agent-client.h"
#include "eta-fault-control.h"
#include "eta-test-agent.h"
#include "eta-test-crypto.h"
#include "eta-test-gui.h"
#include "eta-test-keyring.h"
#include "eta-test-token.h"
#include "eta-test-unwrap.h"

#define DRIVER ETA_TEST_SOURCE_DIR "/gui/atspi-pin.py"
#define UNWRAP_BUDGET_MS 30000

/* GTestDBus unsets DISPLAY; the agent and screenshots need Xvfb's. */
static gchar *display;
/* Extra arguments for the driver: the buttons' labels when they are not
 * English. */
static const gchar * const *driver_options;

typedef struct
{
  GTestDBus *bus;
  EtaTestAgent *agent;
  const EtaTestToken *token;
} Fixture;

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *display_env = g_strconcat ("DISPLAY=", display, NULL);
  const gchar *env[] = { display_env, NULL };

  fixture->token = eta_test_token_get ();
  eta_fault_control_reset ();
  eta_fault_control_apply (data);
  fixture->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fixture->bus);
  fixture->agent = eta_test_agent_start_full (env, FALSE, NULL);
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  eta_agent_client_disconnect ();
  eta_test_agent_stop (fixture->agent);
  g_test_dbus_down (fixture->bus);
  g_clear_object (&fixture->bus);
}

/* Runs the AT-SPI driver; returns its exit code and its output. */
static gint
run_driver (const gchar * const *args, gchar **out)
{
  return eta_test_gui_run_driver (DRIVER, args, driver_options, out);
}

static void
screenshot (const gchar *name)
{
  const gchar *dir = g_getenv ("ETA_TEST_SCREENSHOT_DIR");
  g_autofree gchar *file = NULL;
  g_autofree gchar *path = NULL;

  if (dir == NULL)
    return;
  g_mkdir_with_parents (dir, 0755);
  file = g_strdup_printf ("agent-%s.png", name);
  path = g_build_filename (dir, file, NULL);
  {
    const gchar *argv[] = { "import", "-window", "root", path, NULL };
    g_auto (GStrv) env = g_environ_setenv (g_get_environ (), "DISPLAY", display, TRUE);
    g_autoptr (GError) error = NULL;
    gint status;

    g_spawn_sync (NULL, (gchar **) argv, env, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                  &status, &error);
    g_assert_no_error (error);
    g_assert_true (g_spawn_check_wait_status (status, NULL));
  }
}

static EtaTestUnwrap *
start_unwrap (Fixture *fixture)
{
  return eta_test_unwrap_start (UNWRAP_BUDGET_MS);
}

static void
finish_unwrap (EtaTestUnwrap *job, gboolean expect_ok, const gchar *expect_error)
{
  eta_test_unwrap_finish (job, expect_ok, expect_error, NULL);
}

static void
test_right_pin (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job = start_unwrap (fixture);
  const gchar *describe[] = { "describe", NULL };
  const gchar *enter[] = { "enter", ETA_TEST_TOKEN_PIN, NULL };
  g_autofree gchar *shown = NULL;

  if (run_driver (describe, &shown) != 0)
    {
      g_autofree gchar *terminal = eta_test_agent_dup_terminal_output (fixture->agent);
      g_printerr ("agent output:\n%s\n", terminal);
      g_assert_not_reached ();
    }
  g_assert_nonnull (strstr (shown, ETA_TEST_TOKEN_LABEL));
  g_assert_nonnull (strstr (shown, fixture->token->label[ETA_TEST_KEY_RSA2048]));
  g_assert_nonnull (strstr (shown, "password text"));
  /* No keyring answers on this bus: nothing to remember the PIN in. */
  g_assert_null (strstr (shown, "Remember"));
  screenshot ("pin-dialog");
  g_assert_cmpint (run_driver (enter, NULL), ==, 0);
  finish_unwrap (job, TRUE, NULL);
}

static void
test_wrong_then_right_pin (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job = start_unwrap (fixture);
  const gchar *wrong[] = { "enter", "0000", NULL };
  const gchar *describe[] = { "describe", NULL };
  const gchar *right[] = { "enter", ETA_TEST_TOKEN_PIN, NULL };
  g_autofree gchar *shown = NULL;

  g_assert_cmpint (run_driver (wrong, NULL), ==, 0);
  /* The dialog comes back and says so. The first one may vanish while the
   * driver reads it ("the application no longer exists"): look again. */
  for (int i = 0; i < 50; i++)
    {
      g_clear_pointer (&shown, g_free);
      if (run_driver (describe, &shown) == 0 && strstr (shown, "Wrong PIN") != NULL)
        break;
      g_usleep (100 * 1000);
    }
  g_assert_nonnull (shown);
  g_assert_nonnull (strstr (shown, "Wrong PIN"));
  screenshot ("wrong-pin");
  g_assert_cmpint (run_driver (right, NULL), ==, 0);
  finish_unwrap (job, TRUE, NULL);
}

static void
test_cancel (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job = start_unwrap (fixture);
  const gchar *cancel[] = { "cancel", NULL };

  g_assert_cmpint (run_driver (cancel, NULL), ==, 0);
  finish_unwrap (job, FALSE, "org.ecryptfs.TokenAgent1.Error.Cancelled");
}

static void
test_twenty_requests_one_dialog (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *jobs[20];
  const gchar *count[] = { "count", "--settle", "1.5", NULL };
  const gchar *enter[] = { "enter", ETA_TEST_TOKEN_PIN, NULL };
  g_autofree gchar *dialogs = NULL;

  for (int i = 0; i < 20; i++)
    jobs[i] = start_unwrap (fixture);
  g_assert_cmpint (run_driver (count, &dialogs), ==, 0);
  g_assert_cmpstr (g_strstrip (dialogs), ==, "1");
  g_assert_cmpint (run_driver (enter, NULL), ==, 0);
  for (int i = 0; i < 20; i++)
    finish_unwrap (jobs[i], TRUE, NULL);
}

/* Polls the dialog until its text contains @text. */
static gchar *
wait_for_dialog_text (const gchar *text)
{
  const gchar *describe[] = { "describe", "--timeout", "2", NULL };
  gchar *shown = NULL;

  for (int i = 0; i < 100; i++)
    {
      g_clear_pointer (&shown, g_free);
      if (run_driver (describe, &shown) == 0 && strstr (shown, text) != NULL)
        return shown;
      g_usleep (100 * 1000);
    }
  g_printerr ("the dialog never said \"%s\"; last seen:\n%s\n", text, shown);
  g_assert_not_reached ();
}

static void
test_final_try_needs_confirmation (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job = start_unwrap (fixture);
  const gchar *unconfirmed[] = { "enter", ETA_TEST_TOKEN_PIN, NULL };
  const gchar *confirm[] = { "press", "Try Anyway", NULL };
  g_autofree gchar *shown = wait_for_dialog_text ("Final try");
  g_autofree gchar *after = NULL;

  screenshot ("final-try");
  /* One press of Unlock sends nothing and asks to confirm. */
  g_assert_cmpint (run_driver (unconfirmed, NULL), ==, 0);
  after = wait_for_dialog_text ("Try Anyway");
  g_assert_cmpuint (eta_fault_control_get_counter ("login_calls"), ==, 0);
  g_assert_cmpint (run_driver (confirm, NULL), ==, 0);
  finish_unwrap (job, TRUE, NULL);
}

static void
test_locked (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job = start_unwrap (fixture);
  const gchar *close_it[] = { "cancel", NULL };
  g_autofree gchar *shown = wait_for_dialog_text ("is blocked");

  g_assert_null (strstr (shown, "password text"));
  screenshot ("locked");
  g_assert_cmpint (run_driver (close_it, NULL), ==, 0);
  finish_unwrap (job, FALSE, "org.ecryptfs.TokenAgent1.Error.PinLocked");
}

static void
test_insert_token_continues (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job = start_unwrap (fixture);
  const gchar *enter[] = { "enter", ETA_TEST_TOKEN_PIN, NULL };
  g_autofree gchar *shown = wait_for_dialog_text ("Insert the token");
  g_autofree gchar *next = NULL;

  screenshot ("insert-token");
  eta_fault_control_set ("present", "true");
  /* The insert dialog goes by itself; the PIN dialog follows. */
  next = wait_for_dialog_text ("Enter the PIN");
  g_assert_null (strstr (next, "Insert the token"));
  g_assert_cmpint (run_driver (enter, NULL), ==, 0);
  finish_unwrap (job, TRUE, NULL);
}

static void
test_pin_pad (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job = start_unwrap (fixture);
  g_autofree gchar *shown = wait_for_dialog_text ("keypad");
  const gchar *count[] = { "count", "--timeout", "0", NULL };
  g_autofree gchar *left = NULL;

  g_assert_null (strstr (shown, "password text"));
  screenshot ("pin-pad");
  g_assert_true (eta_fault_control_wait_status ("pinpad_waiting", "1", 10000));
  eta_fault_control_set ("pinpad", "enter");
  finish_unwrap (job, TRUE, NULL);
  /* The reader answered: no dialog is left behind. */
  g_usleep (300 * 1000);
  g_assert_cmpint (run_driver (count, &left), ==, 0);
  g_assert_cmpstr (g_strstrip (left), ==, "0");
}

/* The token is pulled out while its PIN dialog is open: the dialog can
 * still be dismissed, and nothing is left on screen. */
static void
test_token_removed_while_dialog_open (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job = start_unwrap (fixture);
  const gchar *cancel[] = { "cancel", NULL };
  const gchar *count[] = { "count", "--timeout", "0", NULL };
  g_autofree gchar *shown = wait_for_dialog_text ("Enter the PIN");
  g_autofree gchar *left = NULL;

  eta_fault_control_set ("present", "false");
  g_assert_cmpint (run_driver (cancel, NULL), ==, 0);
  finish_unwrap (job, FALSE, "org.ecryptfs.TokenAgent1.Error.Cancelled");
  g_usleep (300 * 1000);
  g_assert_cmpint (run_driver (count, &left), ==, 0);
  g_assert_cmpstr (g_strstrip (left), ==, "0");
}

/* How AT-SPI shows a GtkSwitch in GTK 4.8. */
#define SWITCH_ROLE "check box"

/* "Remember PIN" switched on as a screen reader user would: the PIN goes
 * into the login keyring (a real gnome-keyring-daemon on the test's bus). */
static void
test_remember_pin (Fixture *fixture, gconstpointer data)
{
  EtaTestKeyring *keyring = eta_test_keyring_start ();
  EtaTestUnwrap *job = start_unwrap (fixture);
  const gchar *enter[] = { "enter", ETA_TEST_TOKEN_PIN, "--remember", NULL };
  g_autofree gchar *shown = wait_for_dialog_text ("Remember PIN");
  g_autoptr (GHashTable) item = NULL;

  if (strstr (shown, SWITCH_ROLE ": Remember PIN") == NULL || strstr (shown, "(off)") == NULL)
    g_error ("no \"Remember PIN\" switch, off, in the dialog:\n%s", shown);
  screenshot ("remember-pin");
  g_assert_cmpint (run_driver (enter, NULL), ==, 0);
  finish_unwrap (job, TRUE, NULL);
  item = eta_test_keyring_wait_for_pin (5000);
  g_assert_nonnull (item);
  g_assert_cmpstr (g_hash_table_lookup (item, "secret"), ==, ETA_TEST_TOKEN_PIN);
  eta_test_keyring_stop (keyring);
}

/* --- German ----------------------------------------------------------------- */

static const gchar * const german_labels[] = {
  "--cancel-label", "Abbrechen", "--close-label", "Schließen",
  "--unlock-label", "Entsperren", "--confirm-label", "Trotzdem versuchen", NULL,
};

/* Fails unless @shown holds every one of @texts and none of @english. */
static void
assert_shown (const gchar *shown, const gchar * const *texts, const gchar * const *english)
{
  for (gsize i = 0; texts[i] != NULL; i++)
    if (strstr (shown, texts[i]) == NULL)
      g_error ("the dialog does not say \"%s\"; it shows:\n%s", texts[i], shown);
  for (gsize i = 0; english[i] != NULL; i++)
    if (strstr (shown, english[i]) != NULL)
      g_error ("the dialog still says \"%s\" in English; it shows:\n%s", english[i], shown);
}

static void
test_german_pin_dialog (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job = start_unwrap (fixture);
  const gchar *empty[] = { "enter", "", NULL };
  const gchar *wrong[] = { "enter", "0000", NULL };
  const gchar *right[] = { "enter", ETA_TEST_TOKEN_PIN, NULL };
  const gchar *german[] = {
    "window: Token entsperren",
    "Geben Sie die PIN von „" ETA_TEST_TOKEN_LABEL "“ ein, um verschlüsselte Dateien zu öffnen",
    "Token: " ETA_TEST_TOKEN_LABEL " (Seriennummer ",
    "Schlüssel: ",
    "Angefragt von: ",
    "password text: PIN",
    "push button: _Abbrechen",
    "push button: _Entsperren",
    NULL,
  };
  const gchar *english[] = { "Unlock", "Cancel", "Enter the PIN", "Key:", "Asked by", NULL };
  g_autofree gchar *shown = wait_for_dialog_text ("Geben Sie die PIN");
  g_autofree gchar *empty_shown = NULL;
  g_autofree gchar *again = NULL;

  assert_shown (shown, german, english);
  g_assert_nonnull (strstr (shown, fixture->token->label[ETA_TEST_KEY_RSA2048]));
  screenshot ("pin-dialog-de");
  /* Unlock with nothing typed asks for the PIN. */
  g_assert_cmpint (run_driver (empty, NULL), ==, 0);
  empty_shown = wait_for_dialog_text ("Geben Sie die PIN des Tokens ein.");
  g_assert_null (strstr (empty_shown, "Type the token"));
  /* A wrong PIN: the dialog comes back and says so in German. */
  g_assert_cmpint (run_driver (wrong, NULL), ==, 0);
  /* SoftHSM2 then reports few tries left: either German sentence will do. */
  again = wait_for_dialog_text ("Falsche PIN. ");
  g_assert_null (strstr (again, "Wrong PIN"));
  g_assert_cmpint (run_driver (right, NULL), ==, 0);
  finish_unwrap (job, TRUE, NULL);
}

static void
test_german_final_try (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job = start_unwrap (fixture);
  const gchar *unconfirmed[] = { "enter", ETA_TEST_TOKEN_PIN, NULL };
  const gchar *confirm[] = { "press", "Trotzdem versuchen", NULL };
  const gchar *german[] = {
    "Letzter Versuch: Ist diese PIN falsch, sperrt das Token seine PIN.", NULL,
  };
  const gchar *english[] = { "Final try", NULL };
  g_autofree gchar *shown = wait_for_dialog_text ("Letzter Versuch");
  g_autofree gchar *after = NULL;

  assert_shown (shown, german, english);
  g_assert_cmpint (run_driver (unconfirmed, NULL), ==, 0);
  /* The button and the sentence change in one update, but the driver may
   * read the dialog between the two: wait for each. */
  after = wait_for_dialog_text ("push button: _Trotzdem versuchen");
  g_free (after);
  after = wait_for_dialog_text ("Bestätigen Sie mit „Trotzdem versuchen“");
  g_assert_cmpuint (eta_fault_control_get_counter ("login_calls"), ==, 0);
  g_assert_cmpint (run_driver (confirm, NULL), ==, 0);
  finish_unwrap (job, TRUE, NULL);
}

static void
test_german_insert_token (Fixture *fixture, gconstpointer data)
{
  EtaTestUnwrap *job = start_unwrap (fixture);
  const gchar *cancel[] = { "cancel", NULL };
  const gchar *german[] = {
    "window: Token einstecken",
    "Stecken Sie das Token „" ETA_TEST_TOKEN_LABEL "“ ein",
    "Warten auf das Token …",
    "push button: _Abbrechen",
    NULL,
  };
  const gchar *english[] = { "Insert the token", "Waiting", "Cancel", NULL };
  g_autofree gchar *shown = wait_for_dialog_text ("Stecken Sie das Token");

  assert_shown (shown, german, english);
  screenshot ("insert-token-de");
  g_assert_cmpint (run_driver (cancel, NULL), ==, 0);
  finish_unwrap (job, FALSE, "org.ecryptfs.TokenAgent1.Error.Cancelled");
}

/* The German suite needs the build tree's catalogue and a locale in which
 * gettext honours LANGUAGE; anything else is a broken setup, not a skip. */
static void
check_german_setup (void)
{
  const gchar *localedir = g_getenv ("ECRYPTFS_TOKEN_AGENT_LOCALEDIR");
  g_autofree gchar *mo = NULL;

  if (g_strcmp0 (g_getenv ("LANGUAGE"), "de") != 0)
    g_error ("the German suite needs LANGUAGE=de");
  if (localedir == NULL)
    g_error ("the German suite needs ECRYPTFS_TOKEN_AGENT_LOCALEDIR (the build's locale/)");
  mo = g_build_filename (localedir, "de", "LC_MESSAGES", "ecryptfs-token-agent.mo", NULL);
  if (!g_file_test (mo, G_FILE_TEST_IS_REGULAR))
    g_error ("no German catalogue at %s (the build makes it)", mo);
  if (g_getenv ("LC_ALL") != NULL || g_getenv ("LC_MESSAGES") != NULL)
    g_error ("LC_ALL and LC_MESSAGES must be unset for LANG to decide");
  driver_options = german_labels;
  /* Only for this program's own messages, which quote German text. */
  setlocale (LC_ALL, "");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  display = g_strdup (g_getenv ("DISPLAY"));
  g_assert_nonnull (display);
  eta_test_gui_use_accessibility_bus ();
  eta_test_token_get ();
  eta_fault_control_setup ();
  g_setenv ("ETA_TEST_PROVIDER", eta_fault_control_get_module_path (), TRUE);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
#define ADD_WITH(path, settings, fn) \
  g_test_add (path, Fixture, settings, fixture_set_up, fn, fixture_tear_down)
  if (g_strcmp0 (g_getenv ("ETA_TEST_GUI_LANGUAGE"), "de") == 0)
    {
      check_german_setup ();
      ADD ("/gui/agent/de/pin-dialog", test_german_pin_dialog);
      ADD_WITH ("/gui/agent/de/final-try", "pin_flags=final_try", test_german_final_try);
      ADD_WITH ("/gui/agent/de/insert-token", "present=false", test_german_insert_token);
      return g_test_run ();
    }
  if (g_getenv ("ETA_TEST_GUI_LANGUAGE") != NULL)
    g_error ("ETA_TEST_GUI_LANGUAGE=%s: only de has a suite", g_getenv ("ETA_TEST_GUI_LANGUAGE"));
  ADD ("/gui/agent/right-pin", test_right_pin);
  ADD ("/gui/agent/wrong-then-right-pin", test_wrong_then_right_pin);
  ADD ("/gui/agent/cancel", test_cancel);
  ADD ("/gui/agent/twenty-requests-one-dialog", test_twenty_requests_one_dialog);
  ADD_WITH ("/gui/agent/final-try-needs-confirmation", "pin_flags=final_try",
            test_final_try_needs_confirmation);
  ADD_WITH ("/gui/agent/locked", "pin_flags=locked", test_locked);
  ADD_WITH ("/gui/agent/insert-token-continues", "present=false", test_insert_token_continues);
  ADD ("/gui/agent/token-removed-while-dialog-open", test_token_removed_while_dialog_open);
  ADD ("/gui/agent/remember-pin", test_remember_pin);
  ADD_WITH ("/gui/agent/pin-pad", "protected_auth_path=true;pinpad_pin=" ETA_TEST_TOKEN_PIN,
            test_pin_pad);
  return g_test_run ();
}

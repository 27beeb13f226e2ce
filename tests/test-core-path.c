/* The core path end to end, with the real /usr/bin/ecryptfsd played by the
 * kernel harness (B): auth token added by `ecryptfs-token add-key`, wrap in
 * the key module, unwrap through the session bus, the agent and SoftHSM2. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "eta-ecryptfs-packet.h"
#include "eta-epoch-packet.h"
#include "eta-inprocess-daemon.h"
#include "eta-kernel-player.h"
#include "eta-test-cli.h"
#include "eta-test-agent.h"
#include "eta-test-token.h"

#define KERNEL_WAIT_MS 3000
#define AES128 0x07
#define AES256 0x09

typedef struct
{
  GTestDBus *bus;
  EtaTestAgent *agent;
  const EtaTestToken *token;
  gchar *module_dir;
  gchar *data_home;
  gchar *sig[ETA_TEST_N_KEYS];
  EtaKernelPlayer *player;
} Fixture;

/* `ecryptfs-token add-key` as a person would run it; returns the sig. */
static gchar *
add_key (Fixture *fixture, EtaTestKeyIndex index, const gchar *padding, const gchar *wrap)
{
  const gchar *args[] = { "add-key", fixture->token->fingerprint[index], "--padding", padding,
                          "--wrap", wrap, NULL };
  EtaTestCliResult result = eta_test_run_cli (fixture->data_home, args);
  const gchar *line;
  gchar *sig;

  g_assert_cmpint (result.exit_code, ==, 0);
  line = strstr (result.out, "ecryptfs_sig: ");
  g_assert_nonnull (line);
  sig = g_strndup (line + strlen ("ecryptfs_sig: "), 16);
  eta_test_cli_result_clear (&result);
  return sig;
}

static void
remove_test_keys (Fixture *fixture)
{
  for (int i = 0; i < ETA_TEST_N_KEYS; i++)
    if (fixture->sig[i] != NULL)
      eta_harness_remove_user_key (fixture->sig[i], NULL);
}

static void
start_daemon (Fixture *fixture, const gchar * const *extra_env)
{
  g_autoptr (GError) error = NULL;
  fixture->player = eta_kernel_player_start (fixture->module_dir, extra_env, &error);
  g_assert_no_error (error);
}

/* The fixture's data: "PADDING" or "PADDING,WRAP". */
static void
parse_fixture_data (gconstpointer data, gchar **padding, gchar **wrap)
{
  g_auto (GStrv) fields = g_strsplit (data ? data : "oaep", ",", 2);

  *padding = g_strdup (fields[0]);
  *wrap = g_strdup (fields[1] ? fields[1] : "epoch");
}

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *padding = NULL;
  g_autofree gchar *wrap = NULL;
  g_autoptr (GError) error = NULL;

  parse_fixture_data (data, &padding, &wrap);
  fixture->token = eta_test_token_get ();
  fixture->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fixture->bus);
  fixture->data_home = g_dir_make_tmp ("eta-data-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->module_dir = eta_kernel_player_make_module_dir (ETA_TEST_KEYMOD_PATH, &error);
  g_assert_no_error (error);
  fixture->agent = eta_test_agent_start (NULL);
  /* Auth tokens with this sig may remain from another test with another padding. */
  for (int i = 0; i < ETA_TEST_N_KEYS; i++)
    {
      g_autofree gchar *sig = add_key (fixture, i, padding, wrap);
      eta_harness_remove_user_key (sig, NULL);
      fixture->sig[i] = add_key (fixture, i, padding, wrap);
    }
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  if (fixture->player != NULL)
    {
      if (g_test_failed ())
        g_printerr ("ecryptfsd log:\n%s\n", eta_kernel_player_get_log (fixture->player));
      eta_kernel_player_stop (fixture->player);
    }
  eta_test_agent_stop (fixture->agent);
  remove_test_keys (fixture);
  for (int i = 0; i < ETA_TEST_N_KEYS; i++)
    g_free (fixture->sig[i]);
  eta_kernel_player_remove_module_dir (fixture->module_dir);
  g_free (fixture->module_dir);
  {
    g_autofree gchar *command = g_strdup_printf ("rm -rf '%s'", fixture->data_home);
    g_assert_cmpint (system (command), ==, 0);
  }
  g_free (fixture->data_home);
  g_test_dbus_down (fixture->bus);
  g_clear_object (&fixture->bus);
}

static GBytes *
random_fek (gsize len)
{
  guint8 *data = g_malloc (len);
  for (gsize i = 0; i < len; i++)
    data[i] = (guint8) g_random_int_range (0, 256);
  return g_bytes_new_take (data, len);
}

static GBytes *
wrap (Fixture *fixture, EtaTestKeyIndex index, guint8 cipher_code, GBytes *fek)
{
  g_autoptr (GError) error = NULL;
  GBytes *wrapped = NULL;

  g_assert_true (eta_kernel_player_wrap (fixture->player, fixture->sig[index], cipher_code,
                                         g_bytes_get_data (fek, NULL), g_bytes_get_size (fek),
                                         KERNEL_WAIT_MS, &wrapped, &error));
  g_assert_no_error (error);
  return wrapped;
}

static gboolean
unwrap (Fixture *fixture, EtaTestKeyIndex index, GBytes *wrapped, guint8 *cipher_code,
        GBytes **fek, GError **error)
{
  return eta_kernel_player_unwrap (fixture->player, fixture->sig[index],
                                   g_bytes_get_data (wrapped, NULL), g_bytes_get_size (wrapped),
                                   KERNEL_WAIT_MS, cipher_code, fek, error);
}

static void
assert_unwraps_to (Fixture *fixture, EtaTestKeyIndex index, GBytes *wrapped, guint8 code,
                   GBytes *expected)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) fek = NULL;
  guint8 got_code = 0;

  unwrap (fixture, index, wrapped, &got_code, &fek, &error);
  if (error != NULL)
    {
      g_autofree gchar *terminal = eta_test_agent_dup_terminal_output (fixture->agent);
      g_printerr ("ecryptfsd log:\n%s\nagent terminal:\n%s\n",
                  eta_kernel_player_get_log (fixture->player), terminal);
    }
  g_assert_no_error (error);
  g_assert_cmpuint (got_code, ==, code);
  g_assert_true (g_bytes_equal (fek, expected));
}

/* The kernel gets a failure reply in time (not a timeout: the player enforces
 * the 3 s wait) and ecryptfsd lives on. */
static void
assert_unwrap_fails (Fixture *fixture, EtaTestKeyIndex index, GBytes *wrapped)
{
  g_autoptr (GBytes) got = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_false (unwrap (fixture, index, wrapped, NULL, &got, &error));
  g_assert_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_FAILURE_REPLY);
  g_assert_true (eta_kernel_player_is_alive (fixture->player));
}

/* add key → wrap with the agent stopped → unwrap via the agent: identical
 * FEKs, AES-128 and AES-256, RSA 2048 and 3072, the padding and wrap mode
 * of the fixture. */
static void
test_roundtrip (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *padding = NULL;
  g_autofree gchar *wrap_mode = NULL;
  struct { EtaTestKeyIndex key; guint8 code; gsize len; } cases[] = {
    { ETA_TEST_KEY_RSA2048, AES128, 16 }, { ETA_TEST_KEY_RSA2048, AES256, 32 },
    { ETA_TEST_KEY_RSA3072, AES128, 16 }, { ETA_TEST_KEY_RSA3072, AES256, 32 },
  };
  GBytes *feks[G_N_ELEMENTS (cases)];
  GBytes *wrapped[G_N_ELEMENTS (cases)];

  parse_fixture_data (data, &padding, &wrap_mode);
  /* Wrapping needs no agent and no token. */
  eta_test_agent_stop (fixture->agent);
  start_daemon (fixture, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gsize modulus = cases[i].key == ETA_TEST_KEY_RSA2048 ? 256 : 384;

      feks[i] = random_fek (cases[i].len);
      wrapped[i] = wrap (fixture, cases[i].key, cases[i].code, feks[i]);
      if (g_str_equal (wrap_mode, "per-file"))
        g_assert_cmpuint (g_bytes_get_size (wrapped[i]), ==, modulus);
      else
        {
          /* Cipher code, FEK and checksum sealed in an epoch packet. */
          g_assert_cmpuint (g_bytes_get_size (wrapped[i]), ==,
                            eta_epoch_packet_size (modulus, cases[i].len + 3));
          g_assert_true (eta_epoch_packet_has_magic (g_bytes_get_data (wrapped[i], NULL),
                                                     g_bytes_get_size (wrapped[i])));
        }
      /* The FEK is not in the wrapped key in clear. */
      g_assert_null (memmem (g_bytes_get_data (wrapped[i], NULL),
                             g_bytes_get_size (wrapped[i]),
                             g_bytes_get_data (feks[i], NULL), 12));
    }

  fixture->agent = eta_test_agent_start (NULL);
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      assert_unwraps_to (fixture, cases[i].key, wrapped[i], cases[i].code, feks[i]);
      g_bytes_unref (feks[i]);
      g_bytes_unref (wrapped[i]);
    }
  /* One PIN for the whole session. */
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
}

static void
test_wrong_then_right_pin (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GBytes) fek = random_fek (32);
  g_autoptr (GBytes) wrapped = NULL;

  start_daemon (fixture, NULL);
  wrapped = wrap (fixture, ETA_TEST_KEY_RSA2048, AES256, fek);
  eta_test_agent_queue_answer (fixture->agent, "0000");
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  assert_unwraps_to (fixture, ETA_TEST_KEY_RSA2048, wrapped, AES256, fek);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 2);
}

static void
test_cancel (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GBytes) fek = random_fek (16);
  g_autoptr (GBytes) wrapped = NULL;

  start_daemon (fixture, NULL);
  wrapped = wrap (fixture, ETA_TEST_KEY_RSA2048, AES128, fek);
  eta_test_agent_queue_answer (fixture->agent, NULL);
  assert_unwrap_fails (fixture, ETA_TEST_KEY_RSA2048, wrapped);
  /* The file opens once the person unlocks. */
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  assert_unwraps_to (fixture, ETA_TEST_KEY_RSA2048, wrapped, AES128, fek);
}

static void
test_agent_not_running (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GBytes) fek = random_fek (32);
  g_autoptr (GBytes) wrapped = NULL;

  start_daemon (fixture, NULL);
  wrapped = wrap (fixture, ETA_TEST_KEY_RSA3072, AES256, fek);
  eta_test_agent_stop (fixture->agent);
  fixture->agent = NULL;
  assert_unwrap_fails (fixture, ETA_TEST_KEY_RSA3072, wrapped);
  g_assert_nonnull (strstr (eta_kernel_player_get_log (fixture->player),
                            "the agent is not running"));
  /* The agent comes back: the same daemon serves the next open. */
  fixture->agent = eta_test_agent_start (NULL);
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  assert_unwraps_to (fixture, ETA_TEST_KEY_RSA3072, wrapped, AES256, fek);
}

static void
test_agent_hung (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GBytes) fek = random_fek (32);
  g_autoptr (GBytes) wrapped = NULL;

  start_daemon (fixture, NULL);
  wrapped = wrap (fixture, ETA_TEST_KEY_RSA2048, AES256, fek);
  kill (eta_test_agent_get_pid (fixture->agent), SIGSTOP);
  assert_unwrap_fails (fixture, ETA_TEST_KEY_RSA2048, wrapped);
  /* Still serving while the agent hangs: a wrap is local. */
  {
    g_autoptr (GBytes) other = random_fek (16);
    g_autoptr (GBytes) other_wrapped = wrap (fixture, ETA_TEST_KEY_RSA2048, AES128, other);
    g_assert_nonnull (other_wrapped);
  }
  /* The agent wakes up and finishes the request the kernel gave up on: the
   * PIN prompt. Until it is answered, opens fail at once instead of waiting
   * behind it; once it is, they work. */
  kill (eta_test_agent_get_pid (fixture->agent), SIGCONT);
  g_assert_true (eta_test_agent_wait_for_prompts (fixture->agent, 1, 10000));
  assert_unwrap_fails (fixture, ETA_TEST_KEY_RSA2048, wrapped);
  g_assert_nonnull (strstr (eta_kernel_player_get_log (fixture->player),
                            "its PIN prompt is still open"));
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  g_assert_true (eta_test_agent_wait_for_output (fixture->agent, "unwrapped a key", 10000));
  assert_unwraps_to (fixture, ETA_TEST_KEY_RSA2048, wrapped, AES256, fek);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
}

/* Many opens while a PIN prompt is open: after the first runs out of time,
 * the rest are answered at once, so the kernel's queue never expires into
 * the error frames that would end ecryptfsd. */
static void
test_burst_during_prompt (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GBytes) fek = random_fek (32);
  g_autoptr (GBytes) wrapped = NULL;

  start_daemon (fixture, NULL);
  wrapped = wrap (fixture, ETA_TEST_KEY_RSA2048, AES256, fek);
  /* Nobody answers the prompt yet. */
  assert_unwrap_fails (fixture, ETA_TEST_KEY_RSA2048, wrapped);
  for (int i = 0; i < 12; i++)
    {
      g_autoptr (GBytes) got = NULL;
      g_autoptr (GError) error = NULL;

      /* A kernel wait far below the module's 2.5 s budget: only an answer
       * that does not wait behind the prompt arrives in time. */
      g_assert_false (eta_kernel_player_unwrap (fixture->player, fixture->sig[ETA_TEST_KEY_RSA2048],
                                                g_bytes_get_data (wrapped, NULL),
                                                g_bytes_get_size (wrapped), 1000, NULL, &got,
                                                &error));
      g_assert_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_FAILURE_REPLY);
    }
  g_assert_true (eta_kernel_player_is_alive (fixture->player));
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  g_assert_true (eta_test_agent_wait_for_output (fixture->agent, "unwrapped a key", 10000));
  assert_unwraps_to (fixture, ETA_TEST_KEY_RSA2048, wrapped, AES256, fek);
}

/* What ecryptfs-utils' pkcs11-helper module wrote: PKCS#1 v1.5, made here by
 * the openssl command line from the certificate. */
static void
test_upstream_pkcs1_ciphertext (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GBytes) fek = random_fek (32);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *dir = g_dir_make_tmp ("eta-pkeyutl-XXXXXX", &error);
  g_autofree gchar *in = g_build_filename (dir, "in", NULL);
  g_autofree gchar *out = g_build_filename (dir, "out", NULL);
  g_autofree gchar *wrapped_data = NULL;
  gsize wrapped_len = 0;
  g_autoptr (GBytes) wrapped = NULL;
  guint8 payload[35];
  guint sum = 0;
  gint status;
  const gchar *argv[] = { "openssl", "pkeyutl", "-encrypt", "-certin", "-inkey",
                          fixture->token->certificate_path[ETA_TEST_KEY_RSA2048],
                          "-pkeyopt", "rsa_padding_mode:pkcs1", "-in", in, "-out", out, NULL };

  payload[0] = AES256;
  memcpy (payload + 1, g_bytes_get_data (fek, NULL), 32);
  for (int i = 0; i < 32; i++)
    sum += payload[1 + i];
  payload[33] = (guint8) (sum >> 8);
  payload[34] = (guint8) sum;
  g_file_set_contents (in, (const gchar *) payload, sizeof payload, &error);
  g_assert_no_error (error);
  g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_file_get_contents (out, &wrapped_data, &wrapped_len, &error);
  g_assert_no_error (error);
  wrapped = g_bytes_new (wrapped_data, wrapped_len);
  g_unlink (in);
  g_unlink (out);
  g_rmdir (dir);

  start_daemon (fixture, NULL);
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  assert_unwraps_to (fixture, ETA_TEST_KEY_RSA2048, wrapped, AES256, fek);
}

/* ecryptfsd started without DBUS_SESSION_BUS_ADDRESS finds the user's bus at
 * $XDG_RUNTIME_DIR/bus. */
static void
test_finds_bus_without_address (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *runtime_dir = g_dir_make_tmp ("eta-runtime-XXXXXX", &error);
  g_autofree gchar *link = g_build_filename (runtime_dir, "bus", NULL);
  const gchar *address = g_test_dbus_get_bus_address (fixture->bus);
  g_autofree gchar *socket_path = NULL;
  g_autofree gchar *env_runtime = g_strconcat ("XDG_RUNTIME_DIR=", runtime_dir, NULL);
  const gchar *env[] = { "DBUS_SESSION_BUS_ADDRESS=", env_runtime, NULL };
  g_autoptr (GBytes) fek = random_fek (16);
  g_autoptr (GBytes) wrapped = NULL;

  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (address, "unix:path="));
  socket_path = g_strndup (address + strlen ("unix:path="),
                           strcspn (address + strlen ("unix:path="), ","));
  g_assert_cmpint (symlink (socket_path, link), ==, 0);

  start_daemon (fixture, env);
  wrapped = wrap (fixture, ETA_TEST_KEY_RSA2048, AES128, fek);
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  assert_unwraps_to (fixture, ETA_TEST_KEY_RSA2048, wrapped, AES128, fek);
  g_unlink (link);
  g_rmdir (runtime_dir);
}

/* A key the blob names but no token holds: a clear failure, nothing lost. */
static void
test_unknown_sig (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GBytes) fek = random_fek (16);
  g_autoptr (GBytes) wrapped = NULL;
  g_autoptr (GBytes) got = NULL;
  g_autoptr (GError) error = NULL;

  start_daemon (fixture, NULL);
  wrapped = wrap (fixture, ETA_TEST_KEY_RSA2048, AES128, fek);
  g_assert_false (eta_kernel_player_unwrap (fixture->player, "0123456789abcdef",
                                            g_bytes_get_data (wrapped, NULL),
                                            g_bytes_get_size (wrapped), KERNEL_WAIT_MS, NULL,
                                            &got, &error));
  g_assert_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_FAILURE_REPLY);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, data, fn) \
  g_test_add (path, Fixture, data, fixture_set_up, fn, fixture_tear_down)
  ADD ("/core/roundtrip/oaep", "oaep", test_roundtrip);
  ADD ("/core/roundtrip/pkcs1", "pkcs1", test_roundtrip);
  ADD ("/core/roundtrip/oaep-per-file", "oaep,per-file", test_roundtrip);
  ADD ("/core/roundtrip/pkcs1-per-file", "pkcs1,per-file", test_roundtrip);
  ADD ("/core/wrong-then-right-pin", NULL, test_wrong_then_right_pin);
  ADD ("/core/cancel", NULL, test_cancel);
  ADD ("/core/agent-not-running", NULL, test_agent_not_running);
  ADD ("/core/agent-hung", NULL, test_agent_hung);
  ADD ("/core/burst-during-prompt", NULL, test_burst_during_prompt);
  ADD ("/core/upstream-pkcs1-ciphertext", "pkcs1", test_upstream_pkcs1_ciphertext);
  ADD ("/core/finds-bus-without-address", NULL, test_finds_bus_without_address);
  ADD ("/core/unknown-sig", NULL, test_unknown_sig);
  return g_test_run ();
}

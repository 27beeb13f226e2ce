/* The agent's side of epoch wrapping: one token operation per epoch, shared
 * by concurrent requests, bound to the token's login; and a ciphertext the
 * key refuses costs nothing but the refusal. The agent runs on the fault
 * module around SoftHSM2, whose counters tell how many token operations
 * (C_Decrypt calls) happened and whose delay_ms makes it as slow as a real
 * token. */
#include <string.h>

#include <gio/gio.h>
#include <openssl/rand.h>

#include "eta-agent-client.h"
#include "eta-epoch-packet.h"
#include "eta-key-id.h"
#include "eta-fault-control.h"
#include "eta-names.h"
#include "eta-test-agent.h"
#include "eta-seal.h"
#include "eta-test-crypto.h"
#include "eta-test-open-bus.h"
#include "eta-test-token.h"

#define BUDGET_MS 30000

typedef struct
{
  GTestDBus *bus;
  EtaTestOpenBus *open_bus;   /* instead of bus: one other users can join */
  EtaTestAgent *agent;
  const EtaTestToken *token;
  GBytes *public_key;
} Fixture;

/* An epoch as the key module makes it: K, and RSA(K) to the test key. */
typedef struct
{
  guint8 key[ETA_EPOCH_KEY_LEN];
  GBytes *rsa;
} Epoch;

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  fixture->token = eta_test_token_get ();
  eta_fault_control_reset ();
  eta_fault_control_apply (data);
  fixture->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fixture->bus);
  fixture->agent = eta_test_agent_start (NULL);
  fixture->public_key = eta_test_token_load_public_key (ETA_TEST_KEY_RSA2048);
}

static void
open_bus_set_up (Fixture *fixture, gconstpointer data)
{
  fixture->token = eta_test_token_get ();
  eta_fault_control_reset ();
  const gchar *env[] = { "G_MESSAGES_DEBUG=eta-kept-key-unwrap", NULL };

  fixture->open_bus = eta_test_open_bus_start ();
  fixture->agent = eta_test_agent_start (env);
  fixture->public_key = eta_test_token_load_public_key (ETA_TEST_KEY_RSA2048);
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  eta_agent_client_disconnect ();
  eta_test_agent_stop (fixture->agent);
  if (fixture->bus != NULL)
    g_test_dbus_down (fixture->bus);
  g_clear_object (&fixture->bus);
  if (fixture->open_bus != NULL)
    eta_test_open_bus_stop (fixture->open_bus);
  g_bytes_unref (fixture->public_key);
}

static Epoch *
epoch_new (Fixture *fixture)
{
  Epoch *epoch = g_new0 (Epoch, 1);

  g_assert_cmpint (RAND_bytes (epoch->key, sizeof epoch->key), ==, 1);
  epoch->rsa = eta_test_rsa_encrypt (fixture->public_key, ETA_PADDING_OAEP, epoch->key,
                                     sizeof epoch->key);
  return epoch;
}

static void
epoch_free (Epoch *epoch)
{
  g_bytes_unref (epoch->rsa);
  g_free (epoch);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Epoch, epoch_free)

/* A file's payload (cipher code | FEK | checksum, 35 bytes) sealed in @epoch. */
static GBytes *
epoch_packet (const Epoch *epoch, GBytes *payload)
{
  guint8 packet[ETA_EPOCH_MAX_PACKET];
  size_t len = eta_epoch_packet_write (packet, ETA_PADDING_OAEP,
                                       g_bytes_get_data (epoch->rsa, NULL),
                                       g_bytes_get_size (epoch->rsa), epoch->key,
                                       g_bytes_get_data (payload, NULL),
                                       g_bytes_get_size (payload));
  g_assert_cmpuint (len, >, 0);
  return g_bytes_new (packet, len);
}

/* One Unwrap through the key module's client; the payload, or NULL with the
 * remote error's name in @remote_error. */
static GBytes *
unwrap_bytes (Fixture *fixture, EtaPadding padding, GBytes *wrapped, gchar **remote_error)
{
  g_autoptr (GError) error = NULL;
  guint8 plaintext[512];
  gsize len = sizeof plaintext;

  if (!eta_agent_client_unwrap (fixture->token->fingerprint[ETA_TEST_KEY_RSA2048], padding,
                                NULL, NULL, TRUE, g_bytes_get_data (wrapped, NULL),
                                g_bytes_get_size (wrapped), BUDGET_MS, plaintext, &len, &error))
    {
      if (remote_error != NULL)
        *remote_error = g_dbus_error_get_remote_error (error);
      else
        g_printerr ("unwrap failed: %s\n", error->message);
      return NULL;
    }
  return g_bytes_new (plaintext, len);
}

/* Asserts that @payload, sealed in @epoch, comes back. */
static void
assert_epoch_opens (Fixture *fixture, const Epoch *epoch)
{
  g_autoptr (GBytes) payload = eta_test_random_bytes (35);
  g_autoptr (GBytes) packet = epoch_packet (epoch, payload);
  g_autoptr (GBytes) recovered = unwrap_bytes (fixture, ETA_PADDING_OAEP, packet, NULL);

  g_assert_nonnull (recovered);
  g_assert_true (g_bytes_equal (recovered, payload));
}

static void
assert_refused (Fixture *fixture, EtaPadding padding, GBytes *wrapped, const gchar *expected)
{
  g_autofree gchar *remote_error = NULL;
  g_autoptr (GBytes) recovered = unwrap_bytes (fixture, padding, wrapped, &remote_error);

  g_assert_null (recovered);
  g_assert_cmpstr (remote_error, ==, expected);
}

static guint64
token_operations (void)
{
  return eta_fault_control_get_counter ("decrypt_calls");
}

static void
lock_agent (Fixture *fixture)
{
  g_autoptr (GDBusConnection) bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
    bus, ETA_BUS_NAME, ETA_OBJECT_PATH, ETA_INTERFACE, "Lock", NULL, NULL,
    G_DBUS_CALL_FLAGS_NONE, BUDGET_MS, NULL, &error);

  g_assert_no_error (error);
}

/* ---- one token operation per epoch ---- */

static void
test_one_operation_per_epoch (Fixture *fixture, gconstpointer data)
{
  g_autoptr (Epoch) first = epoch_new (fixture);
  g_autoptr (Epoch) second = epoch_new (fixture);

  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  for (int i = 0; i < 20; i++)
    assert_epoch_opens (fixture, first);
  g_assert_cmpuint (token_operations (), ==, 1);
  for (int i = 0; i < 5; i++)
    assert_epoch_opens (fixture, second);
  g_assert_cmpuint (token_operations (), ==, 2);
  /* The first epoch is still kept. */
  assert_epoch_opens (fixture, first);
  g_assert_cmpuint (token_operations (), ==, 2);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
}

typedef struct
{
  Fixture *fixture;
  const Epoch *epoch;
  gboolean ok;
} ConcurrentOpen;

static gpointer
concurrent_open_thread (gpointer data)
{
  ConcurrentOpen *open = data;
  g_autoptr (GBytes) payload = eta_test_random_bytes (35);
  g_autoptr (GBytes) packet = epoch_packet (open->epoch, payload);
  g_autoptr (GBytes) recovered = unwrap_bytes (open->fixture, ETA_PADDING_OAEP, packet, NULL);

  open->ok = recovered != NULL && g_bytes_equal (recovered, payload);
  return NULL;
}

/* Eight opens of one epoch at once, on a token as slow as a YubiKey: they
 * wait for the one decrypt the first of them started. */
static void
test_concurrent_opens_share_one_operation (Fixture *fixture, gconstpointer data)
{
  g_autoptr (Epoch) epoch = epoch_new (fixture);
  ConcurrentOpen opens[8];
  GThread *threads[8];

  /* Logged in first, so that the opens race for the decrypt, not the PIN. */
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  {
    g_autoptr (GBytes) plain = eta_test_random_bytes (35);
    g_autoptr (GBytes) wrapped = eta_test_rsa_encrypt (fixture->public_key, ETA_PADDING_OAEP,
                                                       g_bytes_get_data (plain, NULL), 35);
    g_autoptr (GBytes) recovered = unwrap_bytes (fixture, ETA_PADDING_OAEP, wrapped, NULL);
    g_assert_true (g_bytes_equal (recovered, plain));
  }
  g_assert_cmpuint (token_operations (), ==, 1);

  for (guint i = 0; i < G_N_ELEMENTS (opens); i++)
    {
      opens[i] = (ConcurrentOpen) { fixture, epoch, FALSE };
      threads[i] = g_thread_new ("open", concurrent_open_thread, &opens[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (opens); i++)
    {
      g_thread_join (threads[i]);
      g_assert_true (opens[i].ok);
    }
  g_assert_cmpuint (token_operations (), ==, 2);
}

/* ---- bound to the login ---- */

static void
test_lock_empties_the_cache (Fixture *fixture, gconstpointer data)
{
  g_autoptr (Epoch) epoch = epoch_new (fixture);

  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  assert_epoch_opens (fixture, epoch);
  assert_epoch_opens (fixture, epoch);
  g_assert_cmpuint (token_operations (), ==, 1);

  lock_agent (fixture);
  /* The next open of the same epoch needs the token and the PIN again. */
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  assert_epoch_opens (fixture, epoch);
  g_assert_cmpuint (token_operations (), ==, 2);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 2);
}

static void
test_token_pulled_out_ends_the_epoch (Fixture *fixture, gconstpointer data)
{
  g_autoptr (Epoch) epoch = epoch_new (fixture);
  g_autoptr (GBytes) payload = eta_test_random_bytes (35);
  g_autoptr (GBytes) packet = epoch_packet (epoch, payload);
  g_autoptr (GBytes) recovered = NULL;

  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  assert_epoch_opens (fixture, epoch);

  /* Out: the kept key is no answer; the agent asks for the token. */
  eta_fault_control_set ("present", "false");
  {
    g_autofree gchar *remote_error = NULL;
    g_autoptr (GError) error = NULL;
    guint8 plaintext[512];
    gsize len = sizeof plaintext;

    /* Not interactive: fail at once rather than show the insert prompt. */
    g_assert_false (eta_agent_client_unwrap (
      fixture->token->fingerprint[ETA_TEST_KEY_RSA2048], ETA_PADDING_OAEP, NULL, NULL, FALSE,
      g_bytes_get_data (packet, NULL), g_bytes_get_size (packet), BUDGET_MS, plaintext, &len,
      &error));
    remote_error = g_dbus_error_get_remote_error (error);
    g_assert_nonnull (remote_error);
  }
  /* Back in: logged out by the removal, so the PIN again, and one decrypt. */
  eta_fault_control_set ("present", "true");
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  recovered = unwrap_bytes (fixture, ETA_PADDING_OAEP, packet, NULL);
  g_assert_true (g_bytes_equal (recovered, payload));
  g_assert_cmpuint (token_operations (), ==, 2);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 2);
}

/* ---- packets that do not open ---- */

static void
test_tampered_packet_refused (Fixture *fixture, gconstpointer data)
{
  g_autoptr (Epoch) epoch = epoch_new (fixture);
  g_autoptr (GBytes) payload = eta_test_random_bytes (35);
  g_autoptr (GBytes) packet = epoch_packet (epoch, payload);
  gsize len = g_bytes_get_size (packet);

  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  assert_epoch_opens (fixture, epoch);

  /* Any byte after the RSA ciphertext changed: the nonce, the sealed
   * payload, the tag. With K kept, no token operation and no prompt. */
  for (gsize at = len - ETA_EPOCH_TAG_LEN - 35 - ETA_EPOCH_NONCE_LEN; at < len; at += 7)
    {
      g_autofree guint8 *bytes = g_memdup2 (g_bytes_get_data (packet, NULL), len);
      g_autoptr (GBytes) tampered = NULL;

      bytes[at] ^= 0x01;
      tampered = g_bytes_new (bytes, len);
      assert_refused (fixture, ETA_PADDING_OAEP, tampered, ETA_ERROR_PREFIX "DecryptFailed");
    }
  g_assert_cmpuint (token_operations (), ==, 1);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);

  /* Cut short or claiming another version: refused before any token use. */
  {
    g_autoptr (GBytes) truncated = g_bytes_new_from_bytes (packet, 0, len - 20);
    g_autofree guint8 *bytes = g_memdup2 (g_bytes_get_data (packet, NULL), len);
    g_autoptr (GBytes) newer = NULL;

    assert_refused (fixture, ETA_PADDING_OAEP, truncated, ETA_ERROR_PREFIX "DecryptFailed");
    bytes[4] = ETA_EPOCH_VERSION + 1;
    newer = g_bytes_new (bytes, len);
    assert_refused (fixture, ETA_PADDING_OAEP, newer, ETA_ERROR_PREFIX "DecryptFailed");
  }
  g_assert_cmpuint (token_operations (), ==, 1);

  /* As long as the modulus, an ETAE start that does not parse is plain RSA
   * (one ciphertext in 2^32 begins so): the token tries it, with both
   * paddings, and refuses it. */
  {
    g_autoptr (GBytes) garbage = eta_test_random_bytes (256);
    g_autofree guint8 *bytes = g_memdup2 (g_bytes_get_data (garbage, NULL), 256);
    g_autoptr (GBytes) plain_with_magic = NULL;

    memcpy (bytes, "ETAE", 4);
    bytes[4] = 0xff;   /* no version of ours */
    plain_with_magic = g_bytes_new (bytes, 256);
    assert_refused (fixture, ETA_PADDING_OAEP, plain_with_magic,
                    ETA_ERROR_PREFIX "DecryptFailed");
  }
  g_assert_cmpuint (token_operations (), ==, 3);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
}

/* A file of one epoch whose RSA(K) is swapped for another epoch's: the
 * associated data binds RSA(K), and the other K does not open it. */
static void
test_other_epochs_key_does_not_open (Fixture *fixture, gconstpointer data)
{
  g_autoptr (Epoch) first = epoch_new (fixture);
  g_autoptr (Epoch) second = epoch_new (fixture);
  g_autoptr (GBytes) payload = eta_test_random_bytes (35);
  g_autoptr (GBytes) packet = epoch_packet (first, payload);
  g_autofree guint8 *bytes = g_memdup2 (g_bytes_get_data (packet, NULL),
                                        g_bytes_get_size (packet));
  g_autoptr (GBytes) swapped = NULL;

  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  assert_epoch_opens (fixture, first);
  assert_epoch_opens (fixture, second);
  memcpy (bytes + ETA_EPOCH_HEADER_LEN, g_bytes_get_data (second->rsa, NULL),
          g_bytes_get_size (second->rsa));
  swapped = g_bytes_new (bytes, g_bytes_get_size (packet));
  assert_refused (fixture, ETA_PADDING_OAEP, swapped, ETA_ERROR_PREFIX "DecryptFailed");
  g_assert_cmpuint (token_operations (), ==, 2);
}

/* ---- a refused ciphertext keeps the login ---- */

static void
test_refused_ciphertext_keeps_login (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GBytes) plain = eta_test_random_bytes (35);
  g_autoptr (GBytes) wrapped = eta_test_rsa_encrypt (fixture->public_key, ETA_PADDING_OAEP,
                                                     g_bytes_get_data (plain, NULL), 35);
  g_autoptr (GBytes) recovered = NULL;

  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  recovered = unwrap_bytes (fixture, ETA_PADDING_OAEP, wrapped, NULL);
  g_assert_true (g_bytes_equal (recovered, plain));

  /* Five ciphertexts the key cannot decrypt (with either padding). */
  for (int i = 0; i < 5; i++)
    {
      g_autoptr (GBytes) garbage = eta_test_random_bytes (256);
      g_autofree guint8 *bytes = g_memdup2 (g_bytes_get_data (garbage, NULL), 256);
      g_autoptr (GBytes) below_modulus = NULL;

      bytes[0] = 0x01;   /* below any 2048-bit modulus: the token really tries */
      below_modulus = g_bytes_new (bytes, 256);
      assert_refused (fixture, ETA_PADDING_OAEP, below_modulus, ETA_ERROR_PREFIX "DecryptFailed");
    }
  /* Still logged in: the next file opens without a prompt. */
  g_clear_pointer (&recovered, g_bytes_unref);
  recovered = unwrap_bytes (fixture, ETA_PADDING_OAEP, wrapped, NULL);
  g_assert_true (g_bytes_equal (recovered, plain));
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
  g_assert_cmpuint (eta_fault_control_get_counter ("login_calls"), ==, 1);
}

/* A plain ciphertext written with PKCS#1 v1.5 under a mount that says OAEP
 * (or the other way round) opens with the other padding, without a prompt. */
static void
test_other_padding_tried (Fixture *fixture, gconstpointer data)
{
  const EtaPadding paddings[] = { ETA_PADDING_PKCS1, ETA_PADDING_OAEP };

  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  for (guint i = 0; i < G_N_ELEMENTS (paddings); i++)
    {
      g_autoptr (GBytes) plain = eta_test_random_bytes (35);
      g_autoptr (GBytes) wrapped = eta_test_rsa_encrypt (fixture->public_key, paddings[i],
                                                         g_bytes_get_data (plain, NULL), 35);
      EtaPadding claimed = paddings[i] == ETA_PADDING_OAEP ? ETA_PADDING_PKCS1
                                                            : ETA_PADDING_OAEP;
      g_autoptr (GBytes) recovered = unwrap_bytes (fixture, claimed, wrapped, NULL);

      g_assert_nonnull (recovered);
      g_assert_true (g_bytes_equal (recovered, plain));
    }
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
  g_assert_cmpuint (eta_fault_control_get_counter ("login_calls"), ==, 1);
}

/* The same through p11-kit's proxy, the agent's default provider, which
 * gives the agent's own session an instance of its own: the login made
 * through pkcs11-helper must hold there too. */
/* ---- kept keys, answered without the main thread ---- */

/* The unwraps the agent's log accounts for so far: its rate-limited lines
 * say "unwrapped a key for ..." once, and "unwrapped N more keys for ..."
 * for the ones in between. */
static guint
unwraps_logged (Fixture *fixture)
{
  g_autofree gchar *terminal = eta_test_agent_dup_terminal_output (fixture->agent);
  guint count = 0;

  for (const gchar *at = terminal; (at = strstr (at, "unwrapped ")) != NULL; at++)
    {
      guint64 more = 0;
      gchar *end = NULL;

      if (g_str_has_prefix (at, "unwrapped a key for "))
        count++;
      else if ((more = g_ascii_strtoull (at + strlen ("unwrapped "), &end, 10)) > 0
               && g_str_has_prefix (end, " more keys"))
        count += (guint) more;
    }
  return count;
}

/* Unwraps answered from a kept K (eta-kept-key-unwrap.c) still reach the
 * log, each counted once. */
static void
test_kept_key_unwraps_logged (Fixture *fixture, gconstpointer data)
{
  g_autoptr (Epoch) epoch = epoch_new (fixture);
  gint64 give_up;

  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  for (int i = 0; i < 10; i++)
    assert_epoch_opens (fixture, epoch);
  /* The quiet ones are counted in the next line, a second later at least. */
  g_usleep (1200 * G_TIME_SPAN_MILLISECOND);
  assert_epoch_opens (fixture, epoch);
  give_up = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (unwraps_logged (fixture) < 11 && g_get_monotonic_time () < give_up)
    g_usleep (50 * G_TIME_SPAN_MILLISECOND);
  g_assert_cmpuint (unwraps_logged (fixture), ==, 11);
  g_assert_true (eta_test_agent_wait_for_output (fixture->agent, "more keys", 1000));
  g_assert_cmpuint (token_operations (), ==, 1);
}

/* Calls Unwrap twice on one connection to @address, as user nobody; one
 * line per call: "served", or the D-Bus error's name. The second call comes
 * from a sender the agent has seen before. */
static const gchar NOBODY_CALLS_TWICE[] =
  "import sys\n"
  "from gi.repository import Gio, GLib\n"
  "address, fingerprint, packet, key = sys.argv[1:5]\n"
  "flags = (Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT\n"
  "         | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION)\n"
  "bus = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)\n"
  "args = GLib.Variant('(ssayaya{sv})', (fingerprint, 'oaep', bytes.fromhex(packet),\n"
  "                                      bytes.fromhex(key), {}))\n"
  "for _ in range(2):\n"
  "    try:\n"
  "        bus.call_sync('" ETA_BUS_NAME "', '" ETA_OBJECT_PATH "', '" ETA_INTERFACE "',\n"
  "                      'Unwrap', args, GLib.VariantType('(ayay)'), 0, 10000, None)\n"
  "        print('served')\n"
  "    except GLib.Error as e:\n"
  "        print(Gio.DBusError.get_remote_error(e))\n";

static gchar *
hex (const guint8 *data, gsize len)
{
  gchar *text = g_malloc (2 * len + 1);

  eta_key_to_hex (data, len, text);
  return text;
}

/* With K kept, the fast path (eta-kept-key-unwrap.c) serves a sender of
 * the agent's user it has seen, and nobody else: not another user's
 * sender, not even on its second call, and not a sender not seen yet,
 * whom the skeleton's caller check admits first. */
static void
test_kept_key_serves_only_its_user (Fixture *fixture, gconstpointer data)
{
  g_autoptr (Epoch) epoch = epoch_new (fixture);
  g_autoptr (GBytes) payload = eta_test_random_bytes (35);
  g_autoptr (GBytes) packet = epoch_packet (epoch, payload);
  EtaSealSession *session = eta_seal_session_new ();
  g_autofree gchar *packet_hex = hex (g_bytes_get_data (packet, NULL), g_bytes_get_size (packet));
  g_autofree gchar *key_hex = hex (eta_seal_session_get_public_key (session),
                                   ETA_SEAL_PUBLIC_KEY_LEN);
  const gchar *argv[] = { "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          "/usr/bin/python3", "-c", NOBODY_CALLS_TWICE,
                          eta_test_open_bus_get_address (fixture->open_bus),
                          fixture->token->fingerprint[ETA_TEST_KEY_RSA2048], packet_hex, key_hex,
                          NULL };
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  g_autofree gchar *terminal = NULL;
  g_autoptr (GError) error = NULL;
  gint status = 0;

  /* The first unwrap goes the whole way (the token), the second too (it
   * opens the session that checks the login), the third is ours from a
   * sender now known: answered from the kept K. */
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  for (int i = 0; i < 3; i++)
    assert_epoch_opens (fixture, epoch);
  g_assert_true (eta_test_agent_wait_for_output (fixture->agent, "from a kept epoch key", 10000));
  g_assert_cmpuint (token_operations (), ==, 1);

  g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                &status, &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("the client as nobody failed: %s", err);
  g_assert_cmpstr (out, ==, ETA_ERROR_PREFIX "AccessDenied\n" ETA_ERROR_PREFIX "AccessDenied\n");
  terminal = eta_test_agent_dup_terminal_output (fixture->agent);
  g_assert_cmpuint (token_operations (), ==, 1);
  /* One fast-path answer: ours. */
  g_assert_nonnull (strstr (terminal, "from a kept epoch key"));
  g_assert_null (strstr (strstr (terminal, "from a kept epoch key") + 1,
                         "from a kept epoch key"));
  eta_seal_session_free (session);
}

static void
proxy_set_up (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *provider = g_strdup (g_getenv ("ETA_TEST_PROVIDER"));

  /* Empty: the agent's own default, p11-kit-proxy.so. */
  g_setenv ("ETA_TEST_PROVIDER", "", TRUE);
  fixture_set_up (fixture, data);
  g_setenv ("ETA_TEST_PROVIDER", provider, TRUE);
}

static void
test_through_proxy (Fixture *fixture, gconstpointer data)
{
  g_autoptr (Epoch) epoch = epoch_new (fixture);
  g_autoptr (GBytes) garbage = eta_test_random_bytes (256);
  g_autofree guint8 *bytes = g_memdup2 (g_bytes_get_data (garbage, NULL), 256);
  g_autoptr (GBytes) below_modulus = NULL;

  bytes[0] = 0x01;
  below_modulus = g_bytes_new (bytes, 256);
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  assert_epoch_opens (fixture, epoch);
  assert_refused (fixture, ETA_PADDING_OAEP, below_modulus, ETA_ERROR_PREFIX "DecryptFailed");
  assert_epoch_opens (fixture, epoch);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 1);
  lock_agent (fixture);
  eta_test_agent_queue_answer (fixture->agent, ETA_TEST_TOKEN_PIN);
  assert_epoch_opens (fixture, epoch);
  g_assert_cmpuint (eta_test_agent_get_prompt_count (fixture->agent), ==, 2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  eta_fault_control_setup ();
  g_setenv ("ETA_TEST_PROVIDER", eta_fault_control_get_module_path (), TRUE);
#define ADD(path, settings, fn) \
  g_test_add (path, Fixture, settings, fixture_set_up, fn, fixture_tear_down)
  ADD ("/agent/epoch/one-operation-per-epoch", NULL, test_one_operation_per_epoch);
  ADD ("/agent/epoch/one-operation-per-epoch-at-140ms", "delay_ms=140;delay_ops=decrypt",
       test_one_operation_per_epoch);
  ADD ("/agent/epoch/concurrent-opens-share-one-operation", "delay_ms=140;delay_ops=decrypt",
       test_concurrent_opens_share_one_operation);
  ADD ("/agent/epoch/lock-empties-the-cache", NULL, test_lock_empties_the_cache);
  ADD ("/agent/epoch/token-pulled-out-ends-the-epoch", NULL,
       test_token_pulled_out_ends_the_epoch);
  ADD ("/agent/epoch/tampered-packet-refused", NULL, test_tampered_packet_refused);
  ADD ("/agent/epoch/other-epochs-key-does-not-open", NULL,
       test_other_epochs_key_does_not_open);
  ADD ("/agent/epoch/kept-key-unwraps-logged", NULL, test_kept_key_unwraps_logged);
  g_test_add ("/agent/epoch/kept-key-serves-only-its-user", Fixture, NULL, open_bus_set_up,
              test_kept_key_serves_only_its_user, fixture_tear_down);
  ADD ("/agent/decrypt/refused-ciphertext-keeps-login", NULL,
       test_refused_ciphertext_keeps_login);
  ADD ("/agent/decrypt/other-padding-tried", NULL, test_other_padding_tried);
  g_test_add ("/agent/decrypt/through-p11-kit-proxy", Fixture, NULL, proxy_set_up,
              test_through_proxy, fixture_tear_down);
  return g_test_run ();
}

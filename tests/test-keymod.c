/* The key module on its own: parameters, where get_blob finds the public key,
 * corrupted blobs in the keyring, oversized ciphertexts, a missing bus. Uses
 * libecryptfs in process (harness A) and the real ecryptfsd (harness B). */
#include <dlfcn.h>
#include <keyutils.h>
#include <string.h>
#include <unistd.h>

#include <ecryptfs.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "eta-blob.h"
#include "eta-epoch-packet.h"
#include "eta-inprocess-daemon.h"
#include "eta-kernel-player.h"
#include "eta-key-id.h"
#include "eta-public-key-file.h"
#include "eta-test-agent.h"
#include "eta-test-token.h"

#define AUTH_TOK_BLOB_OFFSET 670
#define AES128 0x07

/* GLib reads XDG_DATA_HOME once per process: one directory for the whole
 * program, emptied after each test. */
static gchar *data_home;

typedef struct
{
  GTestDBus *bus;
  EtaInprocessDaemon *daemon;
  const EtaTestToken *token;
  gchar *data_home;
  gchar *expected_sig[ETA_TEST_N_KEYS];
} Fixture;

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  fixture->token = eta_test_token_get ();
  fixture->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fixture->bus);
  fixture->data_home = g_strdup (data_home);
  fixture->daemon = eta_inprocess_daemon_new (ETA_TEST_KEYMOD_PATH, &error);
  g_assert_no_error (error);
  for (int i = 0; i < ETA_TEST_N_KEYS; i++)
    {
      g_autoptr (GBytes) spki = eta_test_token_load_public_key (i);
      char sig[ETA_KEY_SIG_HEX_LEN + 1];
      g_assert_cmpint (eta_key_sig_from_spki (g_bytes_get_data (spki, NULL),
                                              g_bytes_get_size (spki), sig), ==, 0);
      fixture->expected_sig[i] = g_strdup (sig);
      eta_harness_remove_user_key (sig, NULL);
    }
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *command = g_strdup_printf ("rm -rf '%s'/*", fixture->data_home);

  for (int i = 0; i < ETA_TEST_N_KEYS; i++)
    {
      eta_harness_remove_user_key (fixture->expected_sig[i], NULL);
      g_free (fixture->expected_sig[i]);
    }
  eta_inprocess_daemon_free (fixture->daemon);
  g_assert_cmpint (system (command), ==, 0);
  g_free (fixture->data_home);
  g_test_dbus_down (fixture->bus);
  g_clear_object (&fixture->bus);
}

static gchar *
add_token_key_wrap (Fixture *fixture, const gchar *fingerprint, const gchar *padding,
                    const gchar *pubkey, const gchar *wrap, GError **error)
{
  const gchar *names[5] = { NULL }, *values[5] = { NULL };
  int n = 0;

  if (fingerprint)
    names[n] = "fingerprint", values[n++] = fingerprint;
  if (padding)
    names[n] = "padding", values[n++] = padding;
  if (pubkey)
    names[n] = "pubkey", values[n++] = pubkey;
  if (wrap)
    names[n] = "wrap", values[n++] = wrap;
  return eta_inprocess_daemon_add_key (fixture->daemon, "token-agent", names, values, error);
}

static gchar *
add_token_key (Fixture *fixture, const gchar *fingerprint, const gchar *padding, const gchar *pubkey,
         GError **error)
{
  return add_token_key_wrap (fixture, fingerprint, padding, pubkey, NULL, error);
}

static void
test_only_one_symbol_exported (void)
{
  void *module = dlopen (ETA_TEST_KEYMOD_PATH, RTLD_LAZY | RTLD_LOCAL);
  g_assert_nonnull (module);
  g_assert_nonnull (dlsym (module, "get_key_mod_ops"));
  /* Neither our helpers nor anything that could shadow libecryptfs. */
  g_assert_null (dlsym (module, "eta_blob_parse"));
  g_assert_null (dlsym (module, "eta_seal_to"));
  g_assert_null (dlsym (module, "eta_agent_client_unwrap"));
  g_assert_null (dlsym (module, "to_hex"));
}

static void
test_parameters (Fixture *fixture, gconstpointer data)
{
  struct ecryptfs_key_mod *module = eta_inprocess_daemon_find_module (fixture->daemon,
                                                                      "token-agent");
  struct key_mod_param *params = NULL;
  uint32_t count = 0;

  g_assert_nonnull (module);
  g_assert_cmpint (module->ops->get_params (&params, &count), ==, 0);
  g_assert_cmpuint (count, ==, 4);
  g_assert_cmpstr (params[0].option, ==, "fingerprint");
  g_assert_cmpstr (params[1].option, ==, "padding");
  g_assert_cmpstr (params[2].option, ==, "pubkey");
  g_assert_cmpstr (params[3].option, ==, "wrap");
  /* Every parameter has a default: libecryptfs matches values by position. */
  for (uint32_t i = 0; i < count; i++)
    g_assert_nonnull (params[i].default_val);
  g_assert_cmpstr (params[1].default_val, ==, "oaep");
  g_assert_cmpstr (params[3].default_val, ==, "epoch");
}

static void
test_add_through_agent (Fixture *fixture, gconstpointer data)
{
  EtaTestAgent *agent = eta_test_agent_start (NULL);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *prefix = g_strndup (fixture->token->fingerprint[ETA_TEST_KEY_RSA3072], 16);
  g_autofree gchar *sig = add_token_key (fixture, prefix, NULL, NULL, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (sig, ==, fixture->expected_sig[ETA_TEST_KEY_RSA3072]);
  /* Resolving is public: no PIN asked. */
  g_assert_cmpuint (eta_test_agent_get_prompt_count (agent), ==, 0);
  eta_test_agent_stop (agent);
}

static void
test_bad_parameters (Fixture *fixture, gconstpointer data)
{
  const struct { const gchar *fingerprint, *padding; } cases[] = {
    { NULL, "oaep" },                       /* no fingerprint at all */
    { "xyz", "oaep" },                      /* not hex */
    { "0123456789abc", "oaep" },            /* too short a prefix */
    { "0123456789abcdef", "rsa-raw" },      /* unknown padding */
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree gchar *sig = add_token_key (fixture, cases[i].fingerprint, cases[i].padding, NULL,
                                       &error);
      g_assert_null (sig);
      g_assert_nonnull (error);
    }

  /* An unknown wrap mode, with a key that is otherwise fine. */
  {
    g_autoptr (GError) error = NULL;
    g_autofree gchar *sig = add_token_key_wrap (
        fixture, fixture->token->fingerprint[ETA_TEST_KEY_RSA2048], NULL,
        fixture->token->certificate_path[ETA_TEST_KEY_RSA2048], "sometimes", &error);
    g_assert_null (sig);
    g_assert_nonnull (error);
  }
}

static void
test_unknown_fingerprint (Fixture *fixture, gconstpointer data)
{
  EtaTestAgent *agent = eta_test_agent_start (NULL);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *sig = add_token_key (fixture, "0123456789abcdef0123", NULL, NULL, &error);

  g_assert_null (sig);
  g_assert_nonnull (error);
  eta_test_agent_stop (agent);
}

/* Root's mount.ecryptfs cannot reach the user's agent: a certificate file. */
static void
test_pubkey_file_without_agent (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *sig = add_token_key (fixture, fixture->token->fingerprint[ETA_TEST_KEY_RSA2048],
                                   "pkcs1", fixture->token->certificate_path[ETA_TEST_KEY_RSA2048],
                                   &error);
  g_autoptr (GBytes) wrapped = NULL;
  const guint8 fek[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

  g_assert_no_error (error);
  g_assert_cmpstr (sig, ==, fixture->expected_sig[ETA_TEST_KEY_RSA2048]);
  /* And the module wraps with it, no agent anywhere. */
  g_assert_true (eta_inprocess_daemon_wrap (fixture->daemon, sig, AES128, fek, sizeof fek,
                                            &wrapped, &error));
  g_assert_no_error (error);
  /* An epoch packet (the default) around RSA-2048 of the epoch key. */
  g_assert_cmpuint (g_bytes_get_size (wrapped), ==, eta_epoch_packet_size (256, 3 + sizeof fek));
  g_assert_true (eta_epoch_packet_has_magic (g_bytes_get_data (wrapped, NULL),
                                             g_bytes_get_size (wrapped)));
}

/* The wrap mode goes into the blob: encrypt gets nothing else. */
static void
test_wrap_mode_in_blob (Fixture *fixture, gconstpointer data)
{
  const gchar *wraps[] = { NULL, "epoch", "per-file" };

  for (gsize i = 0; i < G_N_ELEMENTS (wraps); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree gchar *sig = add_token_key_wrap (
          fixture, fixture->token->fingerprint[ETA_TEST_KEY_RSA2048], NULL,
          fixture->token->certificate_path[ETA_TEST_KEY_RSA2048], wraps[i], &error);
      key_serial_t key;
      g_autofree guint8 *payload = NULL;
      void *buffer = NULL;
      EtaBlob blob;
      long len;

      g_assert_no_error (error);
      key = request_key ("user", sig, NULL, KEY_SPEC_USER_KEYRING);
      g_assert_cmpint (key, >, 0);
      len = keyctl_read_alloc (key, &buffer);
      payload = buffer;
      g_assert_cmpint (len, >, AUTH_TOK_BLOB_OFFSET);
      g_assert_cmpint (eta_blob_parse (payload + AUTH_TOK_BLOB_OFFSET,
                                       (gsize) len - AUTH_TOK_BLOB_OFFSET, &blob), ==,
                       ETA_BLOB_OK);
      g_assert_cmpint (blob.wrap, ==, i == 2 ? ETA_WRAP_PER_FILE : ETA_WRAP_EPOCH);
      eta_harness_remove_user_key (sig, NULL);
    }
}

static void
test_pubkey_file_of_another_key (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *sig = add_token_key (fixture, fixture->token->fingerprint[ETA_TEST_KEY_RSA2048],
                                   NULL, fixture->token->certificate_path[ETA_TEST_KEY_RSA3072],
                                   &error);
  g_assert_null (sig);
  g_assert_nonnull (error);
}

/* The public key saved at enrolment serves when the agent is out of reach. */
static void
test_saved_record_without_agent (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (EtaPublicKeyRecord) record =
    eta_public_key_load_file (fixture->token->certificate_path[ETA_TEST_KEY_RSA3072], &error);
  g_autofree gchar *dir = g_build_filename (fixture->data_home, "ecryptfs-token-agent", "keys",
                                            NULL);
  g_autofree gchar *sig = NULL;
  g_autofree gchar *prefix = g_strndup (fixture->token->fingerprint[ETA_TEST_KEY_RSA3072], 20);

  g_assert_no_error (error);
  g_assert_true (eta_public_key_save_record (record, dir, NULL, &error));
  sig = add_token_key (fixture, prefix, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sig, ==, fixture->expected_sig[ETA_TEST_KEY_RSA3072]);
}

static void
test_saved_records_ambiguous (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (EtaPublicKeyRecord) record =
    eta_public_key_load_file (fixture->token->certificate_path[ETA_TEST_KEY_RSA2048], &error);
  g_autofree gchar *dir = g_build_filename (fixture->data_home, "ecryptfs-token-agent", "keys",
                                            NULL);
  g_autoptr (EtaPublicKeyRecord) found = NULL;
  g_autofree gchar *original = NULL;
  g_autofree gchar *copy = NULL;

  g_assert_true (eta_public_key_save_record (record, dir, &original, &error));
  /* A second record whose name shares the first 20 digits. */
  copy = g_strdup_printf ("%s/%.20sffffffffffffffffffffffffffffffffffffffffffff.key", dir,
                          record->fingerprint_hex);
  g_assert_cmpint (link (original, copy), ==, 0);
  found = eta_public_key_find_record (record->fingerprint_hex, &error);
  g_assert_no_error (error);
  g_clear_pointer (&found, eta_public_key_record_free);
  {
    g_autofree gchar *prefix = g_strndup (record->fingerprint_hex, 20);
    found = eta_public_key_find_record (prefix, &error);
  }
  g_assert_null (found);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS);
}

static void
test_no_agent_no_record (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *sig = add_token_key (fixture, fixture->token->fingerprint[ETA_TEST_KEY_RSA2048],
                                   NULL, NULL, &error);
  g_assert_null (sig);
  g_assert_nonnull (error);
}

/* A saved record whose public key has a bad escape sequence: GKeyFile
 * returns the value cut short and an error; the record is refused with that
 * one error (setting a second over it was a GLib warning). */
static void
test_record_bad_escape (void)
{
  static const gchar record_text[] =
    "[key]\n"
    "public-key=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDWfqOb\\+lO8xAVhy8Sd0qFSfck\n"
    "key-label=Old card\n";
  g_autoptr (GError) error = NULL;
  g_autoptr (EtaPublicKeyRecord) record =
    eta_public_key_parse_record (record_text, strlen (record_text), "bad.key", &error);

  g_assert_null (record);
  g_assert_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE);
}

/* A certificate whose subject CN is a BMPString (UCS-2, as some smart card
 * CAs issue them): the label is the name in UTF-8, not its raw bytes (which
 * start with a NUL and made an empty label). */
static void
test_pubkey_bmpstring_name (void)
{
  static const unsigned char joerg_ucs2[] = { 0x00, 'J', 0x00, 0xf6, 0x00, 'r', 0x00, 'g' };
  EVP_PKEY *key = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) 1024);
  X509 *cert = X509_new ();
  X509_NAME *name = X509_get_subject_name (cert);
  g_autoptr (GError) error = NULL;
  g_autoptr (EtaPublicKeyRecord) record = NULL;
  unsigned char *der = NULL;
  int der_len;

  X509_set_version (cert, 2);
  ASN1_INTEGER_set (X509_get_serialNumber (cert), 1);
  X509_gmtime_adj (X509_getm_notBefore (cert), 0);
  X509_gmtime_adj (X509_getm_notAfter (cert), 3600);
  X509_set_pubkey (cert, key);
  g_assert_cmpint (X509_NAME_add_entry_by_NID (name, NID_commonName, V_ASN1_BMPSTRING,
                                               joerg_ucs2, sizeof joerg_ucs2, -1, 0), ==, 1);
  X509_set_issuer_name (cert, name);
  g_assert_cmpint (X509_sign (cert, key, EVP_sha256 ()), >, 0);
  der_len = i2d_X509 (cert, &der);
  g_assert_cmpint (der_len, >, 0);

  record = eta_public_key_load_data (der, (gsize) der_len, "/keys/card.der", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (record->key_label, ==, "J\xc3\xb6rg");
  OPENSSL_free (der);
  X509_free (cert);
  EVP_PKEY_free (key);
}

/* ---- blobs corrupted in the keyring, through the real ecryptfsd ---- */

typedef enum
{
  CORRUPT_VERSION,
  CORRUPT_TRUNCATED,
  CORRUPT_OVERSIZED,
  CORRUPT_STATED_PAST_PAYLOAD,  /* the review's overflow: more than the payload holds */
} Corruption;

static void
corrupt_blob (const gchar *sig, Corruption corruption)
{
  key_serial_t key = request_key ("user", sig, NULL, KEY_SPEC_USER_KEYRING);
  g_autofree guint8 *payload = NULL;
  void *buffer = NULL;
  long len;
  guint8 *blob;

  g_assert_cmpint (key, >, 0);
  len = keyctl_read_alloc (key, &buffer);
  g_assert_cmpint (len, >, AUTH_TOK_BLOB_OFFSET + 40);
  payload = buffer;
  blob = payload + AUTH_TOK_BLOB_OFFSET;
  g_assert_cmpmem (blob, 4, "ETAK", 4);
  switch (corruption)
    {
    case CORRUPT_VERSION:
      blob[4] = 9;
      break;
    case CORRUPT_TRUNCATED:
      blob[6] = 0;
      blob[7] = 60;
      break;
    case CORRUPT_OVERSIZED:
      blob[6] = 0x7f;
      blob[7] = 0xff;
      break;
    case CORRUPT_STATED_PAST_PAYLOAD:
      {
        gsize stated = (((gsize) blob[6] << 8) | blob[7]) + 255;
        blob[6] = (guint8) (stated >> 8);
        blob[7] = (guint8) stated;
      }
      break;
    }
  g_assert_cmpint (keyctl_update (key, payload, (size_t) len), ==, 0);
}

static void
test_corrupted_blob (Fixture *fixture, gconstpointer data)
{
  Corruption corruption = GPOINTER_TO_INT (data);
  static const gchar *expected_log[] = { "unsupported version", "truncated", "larger than allowed",
                                         "truncated" };
  g_autoptr (GError) error = NULL;
  g_autofree gchar *module_dir = eta_kernel_player_make_module_dir (ETA_TEST_KEYMOD_PATH, &error);
  g_autofree gchar *sig = add_token_key (fixture, fixture->token->fingerprint[ETA_TEST_KEY_RSA2048],
                                   NULL, fixture->token->certificate_path[ETA_TEST_KEY_RSA2048],
                                   &error);
  g_autoptr (EtaKernelPlayer) player = NULL;
  g_autoptr (GBytes) wrapped = NULL;
  g_autoptr (GBytes) fek = NULL;
  const guint8 key[16] = { 0 };
  guint8 fake[256] = { 0 };

  g_assert_no_error (error);
  corrupt_blob (sig, corruption);
  player = eta_kernel_player_start (module_dir, NULL, &error);
  g_assert_no_error (error);

  g_assert_false (eta_kernel_player_wrap (player, sig, AES128, key, sizeof key, 3000, &wrapped,
                                          &error));
  g_assert_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_FAILURE_REPLY);
  g_clear_error (&error);
  g_assert_false (eta_kernel_player_unwrap (player, sig, fake, sizeof fake, 3000, NULL, &fek,
                                            &error));
  g_assert_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_FAILURE_REPLY);
  g_assert_true (eta_kernel_player_is_alive (player));
  g_assert_nonnull (strstr (eta_kernel_player_get_log (player), expected_log[corruption]));
  eta_kernel_player_remove_module_dir (module_dir);
}

static void
test_oversized_ciphertext (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *sig = add_token_key (fixture, fixture->token->fingerprint[ETA_TEST_KEY_RSA2048],
                                   NULL, fixture->token->certificate_path[ETA_TEST_KEY_RSA2048],
                                   &error);
  g_autoptr (GBytes) fek = NULL;
  guint8 huge[600] = { 0 };

  g_assert_no_error (error);
  g_assert_false (eta_inprocess_daemon_unwrap (fixture->daemon, sig, huge, sizeof huge, NULL,
                                               &fek, &error));
  g_assert_nonnull (error);
}

/* No bus at all: the unwrap fails at once with a failure reply. */
static void
test_no_session_bus (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *sig = add_token_key (fixture, fixture->token->fingerprint[ETA_TEST_KEY_RSA2048],
                                   NULL, fixture->token->certificate_path[ETA_TEST_KEY_RSA2048],
                                   &error);
  g_autofree gchar *module_dir = eta_kernel_player_make_module_dir (ETA_TEST_KEYMOD_PATH, &error);
  g_autofree gchar *runtime_dir = g_dir_make_tmp ("eta-runtime-XXXXXX", &error);
  g_autofree gchar *env_runtime = g_strconcat ("XDG_RUNTIME_DIR=", runtime_dir, NULL);
  const gchar *env[] = { "DBUS_SESSION_BUS_ADDRESS=", env_runtime, NULL };
  g_autoptr (EtaKernelPlayer) player = NULL;
  g_autoptr (GBytes) wrapped = NULL;
  g_autoptr (GBytes) fek = NULL;
  const guint8 key[16] = { 7 };

  g_assert_no_error (error);
  player = eta_kernel_player_start (module_dir, env, &error);
  g_assert_no_error (error);
  g_assert_true (eta_kernel_player_wrap (player, sig, AES128, key, sizeof key, 3000, &wrapped,
                                         &error));
  g_assert_false (eta_kernel_player_unwrap (player, sig, g_bytes_get_data (wrapped, NULL),
                                            g_bytes_get_size (wrapped), 3000, NULL, &fek,
                                            &error));
  g_assert_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_FAILURE_REPLY);
  g_assert_nonnull (strstr (eta_kernel_player_get_log (player), "no session bus"));
  g_assert_true (eta_kernel_player_is_alive (player));
  eta_kernel_player_remove_module_dir (module_dir);
  g_rmdir (runtime_dir);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  data_home = g_dir_make_tmp ("eta-data-XXXXXX", &error);
  g_assert_no_error (error);
  g_setenv ("XDG_DATA_HOME", data_home, TRUE);
#define ADD(path, data, fn) \
  g_test_add (path, Fixture, data, fixture_set_up, fn, fixture_tear_down)
  g_test_add_func ("/keymod/exports", test_only_one_symbol_exported);
  ADD ("/keymod/parameters", NULL, test_parameters);
  ADD ("/keymod/add/through-agent", NULL, test_add_through_agent);
  ADD ("/keymod/add/bad-parameters", NULL, test_bad_parameters);
  ADD ("/keymod/add/unknown-fingerprint", NULL, test_unknown_fingerprint);
  ADD ("/keymod/add/pubkey-file-without-agent", NULL, test_pubkey_file_without_agent);
  ADD ("/keymod/add/pubkey-file-of-another-key", NULL, test_pubkey_file_of_another_key);
  ADD ("/keymod/add/wrap-mode-in-blob", NULL, test_wrap_mode_in_blob);
  ADD ("/keymod/add/saved-record-without-agent", NULL, test_saved_record_without_agent);
  ADD ("/keymod/add/saved-records-ambiguous", NULL, test_saved_records_ambiguous);
  ADD ("/keymod/add/no-agent-no-record", NULL, test_no_agent_no_record);
  g_test_add_func ("/keymod/record/bad-escape", test_record_bad_escape);
  g_test_add_func ("/keymod/pubkey/bmpstring-name", test_pubkey_bmpstring_name);
  ADD ("/keymod/blob/wrong-version-in-keyring", GINT_TO_POINTER (CORRUPT_VERSION),
       test_corrupted_blob);
  ADD ("/keymod/blob/truncated-in-keyring", GINT_TO_POINTER (CORRUPT_TRUNCATED),
       test_corrupted_blob);
  ADD ("/keymod/blob/oversized-in-keyring", GINT_TO_POINTER (CORRUPT_OVERSIZED),
       test_corrupted_blob);
  ADD ("/keymod/blob/stated-past-payload-in-keyring",
       GINT_TO_POINTER (CORRUPT_STATED_PAST_PAYLOAD), test_corrupted_blob);
  ADD ("/keymod/decrypt/oversized-ciphertext", NULL, test_oversized_ciphertext);
  ADD ("/keymod/decrypt/no-session-bus", NULL, test_no_session_bus);
  status = g_test_run ();
  g_rmdir (data_home);
  return status;
}

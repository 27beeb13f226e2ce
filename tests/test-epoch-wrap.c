/* The writer side of epoch wrapping: EtaEpochWrapper on its own, and the key
 * module's encrypt op (called directly, and through libecryptfs with harness
 * A). RSA keys are made here, and RSA(K) is decrypted here with OpenSSL, so
 * every packet is checked against a second implementation of the reader. */
#include <dlfcn.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <ecryptfs.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "eta-blob.h"
#include "eta-epoch-packet.h"
#include "eta-epoch-wrapper.h"
#include "eta-inprocess-daemon.h"
#include "eta-key-id.h"

#define AES128 0x07
#define AES256 0x09

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EtaEpochWrapper, eta_epoch_wrapper_free)

/* ---- keys and payloads ---- */

static EVP_PKEY *
new_rsa_key (unsigned int bits)
{
  EVP_PKEY *key = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) bits);

  g_assert_nonnull (key);
  return key;
}

/* One key of each size for the whole program: making them is the slow part. */
static EVP_PKEY *
shared_key (unsigned int bits)
{
  static EVP_PKEY *rsa2048, *rsa4096;
  EVP_PKEY **slot = bits == 4096 ? &rsa4096 : &rsa2048;

  if (*slot == NULL)
    *slot = new_rsa_key (bits);
  return *slot;
}

static GBytes *
spki_of (EVP_PKEY *key)
{
  unsigned char *der = NULL;
  int len = i2d_PUBKEY (key, &der);
  GBytes *spki;

  g_assert_cmpint (len, >, 0);
  spki = g_bytes_new (der, (gsize) len);
  OPENSSL_free (der);
  return spki;
}

static void
fingerprint_of (EVP_PKEY *key, uint8_t fingerprint[ETA_FINGERPRINT_LEN])
{
  g_autoptr (GBytes) spki = spki_of (key);

  g_assert_cmpint (eta_key_fingerprint (g_bytes_get_data (spki, NULL), g_bytes_get_size (spki),
                                        fingerprint), ==, 0);
}

/* What the kernel hands over: cipher code | FEK | checksum (BE16 sum). */
static gsize
make_payload (guint8 code, gsize fek_len, guint8 *payload)
{
  guint sum = 0;

  payload[0] = code;
  for (gsize i = 0; i < fek_len; i++)
    {
      payload[1 + i] = (guint8) g_random_int_range (0, 256);
      sum += payload[1 + i];
    }
  payload[1 + fek_len] = (guint8) (sum >> 8);
  payload[2 + fek_len] = (guint8) sum;
  return fek_len + 3;
}

/* The token's part, done here with the private key. */
static GBytes *
rsa_decrypt (EVP_PKEY *key, EtaPadding padding, const guint8 *in, gsize in_len)
{
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new (key, NULL);
  guint8 out[512];
  size_t out_len = sizeof out;

  g_assert_nonnull (ctx);
  g_assert_cmpint (EVP_PKEY_decrypt_init (ctx), ==, 1);
  if (padding == ETA_PADDING_OAEP)
    {
      g_assert_cmpint (EVP_PKEY_CTX_set_rsa_padding (ctx, RSA_PKCS1_OAEP_PADDING), ==, 1);
      g_assert_cmpint (EVP_PKEY_CTX_set_rsa_oaep_md (ctx, EVP_sha1 ()), ==, 1);
      g_assert_cmpint (EVP_PKEY_CTX_set_rsa_mgf1_md (ctx, EVP_sha1 ()), ==, 1);
    }
  else
    g_assert_cmpint (EVP_PKEY_CTX_set_rsa_padding (ctx, RSA_PKCS1_PADDING), ==, 1);
  g_assert_cmpint (EVP_PKEY_decrypt (ctx, out, &out_len, in, in_len), ==, 1);
  EVP_PKEY_CTX_free (ctx);
  return g_bytes_new (out, out_len);
}

static void
parse_epoch_packet (GBytes *packet, EtaEpochPacket *parsed)
{
  g_assert_cmpint (eta_epoch_packet_parse (g_bytes_get_data (packet, NULL),
                                           g_bytes_get_size (packet), parsed), ==, ETA_EPOCH_OK);
}

/* RSA(K) of @packet. */
static GBytes *
rsa_key_of (GBytes *packet)
{
  EtaEpochPacket parsed;

  parse_epoch_packet (packet, &parsed);
  return g_bytes_new (parsed.rsa_ciphertext, parsed.rsa_ciphertext_len);
}

/* K of @packet's epoch, recovered as the agent would (from RSA(K)). */
static GBytes *
epoch_key_of (EVP_PKEY *key, GBytes *packet)
{
  EtaEpochPacket parsed;
  GBytes *epoch_key;

  parse_epoch_packet (packet, &parsed);
  epoch_key = rsa_decrypt (key, parsed.padding, parsed.rsa_ciphertext,
                           parsed.rsa_ciphertext_len);
  g_assert_cmpuint (g_bytes_get_size (epoch_key), ==, ETA_EPOCH_KEY_LEN);
  return epoch_key;
}

static gboolean
opens_with (GBytes *packet, GBytes *epoch_key, const guint8 *expected, gsize expected_len)
{
  EtaEpochPacket parsed;
  guint8 payload[ETA_EPOCH_MAX_PAYLOAD];
  size_t payload_len = 0;

  parse_epoch_packet (packet, &parsed);
  if (eta_epoch_packet_open (&parsed, g_bytes_get_data (epoch_key, NULL), payload,
                             &payload_len) != 0)
    return FALSE;
  g_assert_cmpmem (payload, payload_len, expected, expected_len);
  return TRUE;
}

/* ---- EtaEpochWrapper ---- */

static GBytes *
wrap_one (EtaEpochWrapper *wrapper, EVP_PKEY *key, EtaPadding padding, const guint8 *payload,
          gsize payload_len)
{
  uint8_t fingerprint[ETA_FINGERPRINT_LEN];
  guint8 out[ETA_EPOCH_MAX_PACKET];
  size_t expected = eta_epoch_wrapper_packet_size ((size_t) EVP_PKEY_get_size (key),
                                                   payload_len);
  size_t len;

  fingerprint_of (key, fingerprint);
  len = eta_epoch_wrapper_wrap (wrapper, fingerprint, padding, key, payload, payload_len, out,
                                sizeof out);
  g_assert_cmpuint (len, >, 0);
  g_assert_cmpuint (len, ==, expected);
  return g_bytes_new (out, len);
}

static void
test_one_epoch_shares_rsa_key (void)
{
  g_autoptr (EtaEpochWrapper) wrapper = eta_epoch_wrapper_new (600, 10000);
  EVP_PKEY *key = shared_key (2048);
  GBytes *packets[5];
  guint8 payloads[5][ETA_EPOCH_MAX_PAYLOAD];
  gsize lens[5];
  g_autoptr (GBytes) rsa_key = NULL;
  g_autoptr (GBytes) epoch_key = NULL;

  for (int i = 0; i < 5; i++)
    {
      lens[i] = make_payload (i % 2 ? AES128 : AES256, i % 2 ? 16 : 32, payloads[i]);
      packets[i] = wrap_one (wrapper, key, ETA_PADDING_OAEP, payloads[i], lens[i]);
    }
  rsa_key = rsa_key_of (packets[0]);
  g_assert_cmpuint (g_bytes_get_size (rsa_key), ==, 256);
  epoch_key = epoch_key_of (key, packets[0]);
  for (int i = 0; i < 5; i++)
    {
      g_autoptr (GBytes) other = rsa_key_of (packets[i]);
      EtaEpochPacket parsed;

      /* One RSA operation (on the token) opens them all. */
      g_assert_true (g_bytes_equal (other, rsa_key));
      g_assert_true (opens_with (packets[i], epoch_key, payloads[i], lens[i]));
      parse_epoch_packet (packets[i], &parsed);
      g_assert_cmpint (parsed.padding, ==, ETA_PADDING_OAEP);
      /* The payload is not in the packet in clear; the nonces differ. */
      g_assert_null (memmem (g_bytes_get_data (packets[i], NULL), g_bytes_get_size (packets[i]),
                             payloads[i] + 1, 12));
      if (i > 0)
        {
          EtaEpochPacket previous;
          parse_epoch_packet (packets[i - 1], &previous);
          g_assert_false (memcmp (parsed.nonce, previous.nonce, ETA_EPOCH_NONCE_LEN) == 0);
        }
    }
  g_assert_cmpuint (eta_epoch_wrapper_get_wipe_count (wrapper), ==, 0);
  for (int i = 0; i < 5; i++)
    g_bytes_unref (packets[i]);
}

/* Keys and paddings have epochs of their own. */
static void
test_epoch_per_key_and_padding (void)
{
  g_autoptr (EtaEpochWrapper) wrapper = eta_epoch_wrapper_new (600, 10000);
  EVP_PKEY *key = shared_key (2048);
  EVP_PKEY *other_key = new_rsa_key (2048);
  guint8 payload[ETA_EPOCH_MAX_PAYLOAD];
  gsize len = make_payload (AES256, 32, payload);
  g_autoptr (GBytes) oaep = wrap_one (wrapper, key, ETA_PADDING_OAEP, payload, len);
  g_autoptr (GBytes) pkcs1 = wrap_one (wrapper, key, ETA_PADDING_PKCS1, payload, len);
  g_autoptr (GBytes) other = wrap_one (wrapper, other_key, ETA_PADDING_OAEP, payload, len);
  g_autoptr (GBytes) oaep_key = epoch_key_of (key, oaep);
  g_autoptr (GBytes) pkcs1_key = epoch_key_of (key, pkcs1);
  g_autoptr (GBytes) other_epoch_key = epoch_key_of (other_key, other);
  EtaEpochPacket parsed;

  parse_epoch_packet (pkcs1, &parsed);
  g_assert_cmpint (parsed.padding, ==, ETA_PADDING_PKCS1);
  g_assert_false (g_bytes_equal (oaep_key, pkcs1_key));
  g_assert_false (g_bytes_equal (oaep_key, other_epoch_key));
  g_assert_true (opens_with (pkcs1, pkcs1_key, payload, len));
  g_assert_true (opens_with (other, other_epoch_key, payload, len));
  g_assert_false (opens_with (oaep, pkcs1_key, payload, len));
  g_assert_false (opens_with (oaep, other_epoch_key, payload, len));
  EVP_PKEY_free (other_key);
}

static void
test_rotation_after_files (void)
{
  g_autoptr (EtaEpochWrapper) wrapper = eta_epoch_wrapper_new (600, 3);
  EVP_PKEY *key = shared_key (2048);
  GBytes *packets[7];
  guint8 payloads[7][ETA_EPOCH_MAX_PAYLOAD];
  gsize lens[7];
  g_autoptr (GBytes) first_key = NULL;
  g_autoptr (GBytes) second_key = NULL;
  g_autoptr (GBytes) third_key = NULL;

  for (int i = 0; i < 7; i++)
    {
      lens[i] = make_payload (AES128, 16, payloads[i]);
      packets[i] = wrap_one (wrapper, key, ETA_PADDING_OAEP, payloads[i], lens[i]);
    }
  /* Files 1-3, 4-6, 7: three epochs. */
  first_key = epoch_key_of (key, packets[0]);
  second_key = epoch_key_of (key, packets[3]);
  third_key = epoch_key_of (key, packets[6]);
  for (int i = 0; i < 7; i++)
    {
      GBytes *own = i < 3 ? first_key : i < 6 ? second_key : third_key;
      g_autoptr (GBytes) epoch_key = epoch_key_of (key, packets[i]);

      g_assert_true (g_bytes_equal (epoch_key, own));
      g_assert_true (opens_with (packets[i], own, payloads[i], lens[i]));
    }
  g_assert_false (g_bytes_equal (first_key, second_key));
  g_assert_false (g_bytes_equal (second_key, third_key));
  /* A packet does not open with another epoch's K. */
  g_assert_false (opens_with (packets[0], second_key, payloads[0], lens[0]));
  g_assert_false (opens_with (packets[3], first_key, payloads[3], lens[3]));
  g_assert_false (opens_with (packets[6], second_key, payloads[6], lens[6]));
  g_assert_cmpuint (eta_epoch_wrapper_get_wipe_count (wrapper), ==, 2);
  for (int i = 0; i < 7; i++)
    g_bytes_unref (packets[i]);
}

static void
test_rotation_after_seconds (void)
{
  g_autoptr (EtaEpochWrapper) wrapper = eta_epoch_wrapper_new (1, 10000);
  EVP_PKEY *key = shared_key (2048);
  guint8 payload[ETA_EPOCH_MAX_PAYLOAD];
  gsize len = make_payload (AES256, 32, payload);
  g_autoptr (GBytes) first = wrap_one (wrapper, key, ETA_PADDING_OAEP, payload, len);
  g_autoptr (GBytes) again = wrap_one (wrapper, key, ETA_PADDING_OAEP, payload, len);
  g_autoptr (GBytes) later = NULL;
  g_autoptr (GBytes) first_rsa = rsa_key_of (first);
  g_autoptr (GBytes) again_rsa = rsa_key_of (again);
  g_autoptr (GBytes) later_rsa = NULL;

  g_assert_true (g_bytes_equal (first_rsa, again_rsa));
  g_usleep (1100 * 1000);
  later = wrap_one (wrapper, key, ETA_PADDING_OAEP, payload, len);
  later_rsa = rsa_key_of (later);
  g_assert_false (g_bytes_equal (first_rsa, later_rsa));
  g_assert_cmpuint (eta_epoch_wrapper_get_wipe_count (wrapper), ==, 1);
  {
    g_autoptr (GBytes) first_key = epoch_key_of (key, first);
    g_autoptr (GBytes) later_key = epoch_key_of (key, later);
    g_assert_true (opens_with (later, later_key, payload, len));
    g_assert_false (opens_with (later, first_key, payload, len));
  }

  /* Limits set later apply to the current epoch as well. */
  eta_epoch_wrapper_set_limits (wrapper, 600, 1);
  {
    g_autoptr (GBytes) next = wrap_one (wrapper, key, ETA_PADDING_OAEP, payload, len);
    g_autoptr (GBytes) next_rsa = rsa_key_of (next);
    g_assert_false (g_bytes_equal (next_rsa, later_rsa));
  }
}

/* What the release hook saw: each ended epoch's page, as it was handed back. */
typedef struct
{
  GPtrArray *pages;
} Released;

static void
record_page (const uint8_t *page, size_t page_len, void *user_data)
{
  Released *released = user_data;

  g_ptr_array_add (released->pages, g_bytes_new (page, page_len));
}

static gboolean
all_zero (GBytes *bytes)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);

  for (gsize i = 0; i < len; i++)
    if (data[i] != 0)
      return FALSE;
  return TRUE;
}

static void
test_old_key_wiped (void)
{
  EtaEpochWrapper *wrapper = eta_epoch_wrapper_new (600, 2);
  Released released = { g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref) };
  EVP_PKEY *key = shared_key (2048);
  guint8 payload[ETA_EPOCH_MAX_PAYLOAD];
  gsize len = make_payload (AES256, 32, payload);
  g_autoptr (GBytes) first = NULL;
  g_autoptr (GBytes) third = NULL;
  g_autoptr (GBytes) first_key = NULL;
  g_autoptr (GBytes) third_key = NULL;

  eta_epoch_wrapper_set_release_hook (wrapper, record_page, &released);
  first = wrap_one (wrapper, key, ETA_PADDING_OAEP, payload, len);
  g_bytes_unref (wrap_one (wrapper, key, ETA_PADDING_OAEP, payload, len));
  g_assert_cmpuint (released.pages->len, ==, 0);
  /* The third file starts a new epoch: the first K is gone. */
  third = wrap_one (wrapper, key, ETA_PADDING_OAEP, payload, len);
  first_key = epoch_key_of (key, first);
  third_key = epoch_key_of (key, third);
  g_assert_cmpuint (released.pages->len, ==, 1);
  g_assert_cmpuint (eta_epoch_wrapper_get_wipe_count (wrapper), ==, 1);
  g_assert_cmpuint (g_bytes_get_size (released.pages->pdata[0]), >=, ETA_EPOCH_KEY_LEN);
  g_assert_null (memmem (g_bytes_get_data (released.pages->pdata[0], NULL),
                         g_bytes_get_size (released.pages->pdata[0]),
                         g_bytes_get_data (first_key, NULL), ETA_EPOCH_KEY_LEN));
  g_assert_true (all_zero (released.pages->pdata[0]));

  /* Freeing the wrapper (the key module's finalize) ends the last epoch. */
  eta_epoch_wrapper_free (wrapper);
  g_assert_cmpuint (released.pages->len, ==, 2);
  g_assert_null (memmem (g_bytes_get_data (released.pages->pdata[1], NULL),
                         g_bytes_get_size (released.pages->pdata[1]),
                         g_bytes_get_data (third_key, NULL), ETA_EPOCH_KEY_LEN));
  g_assert_true (all_zero (released.pages->pdata[1]));
  g_ptr_array_unref (released.pages);
}

/* More keys than the table holds: the one used longest ago loses its epoch
 * (wiped), the others keep theirs. */
static void
test_table_is_bounded (void)
{
  g_autoptr (EtaEpochWrapper) wrapper = eta_epoch_wrapper_new (600, 10000);
  EVP_PKEY *key = shared_key (2048);
  guint8 payload[ETA_EPOCH_MAX_PAYLOAD];
  gsize len = make_payload (AES128, 16, payload);
  uint8_t fingerprint[ETA_FINGERPRINT_LEN];
  guint8 out[ETA_EPOCH_MAX_PACKET];
  GBytes *first[ETA_EPOCH_WRAPPER_MAX_KEYS + 1];

  /* The table goes by fingerprint: made-up names for one real key. */
  for (int i = 0; i <= ETA_EPOCH_WRAPPER_MAX_KEYS; i++)
    {
      size_t written;

      memset (fingerprint, i, sizeof fingerprint);
      written = eta_epoch_wrapper_wrap (wrapper, fingerprint, ETA_PADDING_OAEP, key, payload,
                                        len, out, sizeof out);
      g_assert_cmpuint (written, >, 0);
      first[i] = g_bytes_new (out, written);
    }
  g_assert_cmpuint (eta_epoch_wrapper_get_wipe_count (wrapper), ==, 1);
  /* Name 1 kept its epoch, name 0 (the oldest) got a new one (and took the
   * slot of name 2, now the oldest). */
  for (int i = 1; i >= 0; i--)
    {
      g_autoptr (GBytes) again = NULL;
      g_autoptr (GBytes) rsa_before = rsa_key_of (first[i]);
      g_autoptr (GBytes) rsa_now = NULL;

      memset (fingerprint, i, sizeof fingerprint);
      again = g_bytes_new (out, eta_epoch_wrapper_wrap (wrapper, fingerprint, ETA_PADDING_OAEP,
                                                        key, payload, len, out, sizeof out));
      rsa_now = rsa_key_of (again);
      g_assert_cmpint (g_bytes_equal (rsa_before, rsa_now), ==, i == 1);
    }
  for (int i = 0; i <= ETA_EPOCH_WRAPPER_MAX_KEYS; i++)
    g_bytes_unref (first[i]);
}

/* RSA 4096: RSA(K) alone is 512 bytes, the kernel's limit for the whole
 * encrypted key. */
static void
test_rsa4096_does_not_fit (void)
{
  g_autoptr (EtaEpochWrapper) wrapper = eta_epoch_wrapper_new (600, 10000);
  EVP_PKEY *key = shared_key (4096);
  uint8_t fingerprint[ETA_FINGERPRINT_LEN];
  guint8 payload[ETA_EPOCH_MAX_PAYLOAD];
  gsize len = make_payload (AES128, 16, payload);
  guint8 out[ETA_EPOCH_MAX_PACKET];

  g_assert_cmpuint (eta_epoch_wrapper_packet_size (512, len), ==, 0);
  /* RSA 3072 with the largest payload still fits. */
  g_assert_cmpuint (eta_epoch_wrapper_packet_size (384, ETA_EPOCH_MAX_PAYLOAD), ==,
                    8 + 384 + 12 + ETA_EPOCH_MAX_PAYLOAD + 16);
  fingerprint_of (key, fingerprint);
  g_assert_cmpuint (eta_epoch_wrapper_wrap (wrapper, fingerprint, ETA_PADDING_OAEP, key, payload,
                                            len, out, sizeof out), ==, 0);
  g_assert_cmpuint (eta_epoch_wrapper_get_wipe_count (wrapper), ==, 0);
}

/* ---- the key module's encrypt op ---- */

static struct ecryptfs_key_mod_ops *
keymod_ops (void)
{
  static struct ecryptfs_key_mod_ops *ops;

  if (ops == NULL)
    {
      void *module = dlopen (ETA_TEST_KEYMOD_PATH, RTLD_NOW | RTLD_LOCAL);
      struct ecryptfs_key_mod_ops *(*get_ops) (void);

      g_assert_nonnull (module);
      get_ops = (struct ecryptfs_key_mod_ops * (*) (void)) dlsym (module, "get_key_mod_ops");
      g_assert_nonnull (get_ops);
      ops = get_ops ();
    }
  return ops;
}

/* (Re)initialises the module with a config file holding @settings (NULL:
 * no file, the defaults), as a process loading it would. */
static void
keymod_init (const gchar *settings)
{
  g_autofree gchar *conf_path = NULL;
  char *alias = NULL;

  if (settings != NULL)
    {
      g_autoptr (GError) error = NULL;
      g_autofree gchar *text = g_strconcat ("[keymod]\n", settings, NULL);
      gint fd;

      conf_path = g_build_filename (g_get_tmp_dir (), "eta-epoch-wrap-XXXXXX.conf", NULL);
      fd = g_mkstemp (conf_path);
      g_assert_cmpint (fd, >=, 0);
      close (fd);
      g_file_set_contents (conf_path, text, -1, &error);
      g_assert_no_error (error);
      g_setenv ("ECRYPTFS_TOKEN_AGENT_KEYMOD_CONF", conf_path, TRUE);
    }
  else
    g_setenv ("ECRYPTFS_TOKEN_AGENT_KEYMOD_CONF", "/nonexistent/keymod.conf", TRUE);
  g_assert_cmpint (keymod_ops ()->init (&alias), ==, 0);
  g_assert_cmpstr (alias, ==, "token-agent");
  free (alias);
  if (settings != NULL)
    g_unlink (conf_path);
}

/* A blob as libecryptfs holds it: after a struct ecryptfs_private_key whose
 * data_len the module reads. */
typedef struct
{
  guint8 *token;
  unsigned char *blob;
} HeldBlob;

static void
held_blob_init (HeldBlob *held, EVP_PKEY *key, EtaPadding padding, EtaWrap wrap)
{
  g_autoptr (GBytes) spki = spki_of (key);
  size_t size = eta_blob_size (g_bytes_get_size (spki), "Key", "Token");
  struct ecryptfs_private_key *private_key;

  held->token = g_malloc0 (sizeof (struct ecryptfs_private_key) + size);
  private_key = (struct ecryptfs_private_key *) held->token;
  private_key->data_len = (uint32_t) size;
  g_assert_cmpuint (eta_blob_write_with_wrap (private_key->data, padding, wrap,
                                              g_bytes_get_data (spki, NULL),
                                              g_bytes_get_size (spki), "Key", "Token"), ==, size);
  held->blob = private_key->data;
}

static void
held_blob_clear (HeldBlob *held)
{
  g_free (held->token);
}

/* Both calls ecryptfsd makes: the size query, then the fill; the size
 * announced is the size written. */
static GBytes *
keymod_encrypt (const HeldBlob *held, const guint8 *payload, gsize payload_len)
{
  struct ecryptfs_key_mod_ops *ops = keymod_ops ();
  size_t announced = 0, written;
  guint8 out[ECRYPTFS_MAX_ENCRYPTED_KEY_BYTES];

  g_assert_cmpint (ops->encrypt (NULL, &announced, (char *) payload, payload_len, held->blob,
                                 ECRYPTFS_BLOB_TYPE_BLOB), ==, 0);
  g_assert_cmpuint (announced, >, 0);
  g_assert_cmpuint (announced, <=, ECRYPTFS_MAX_ENCRYPTED_KEY_BYTES);
  written = announced;
  g_assert_cmpint (ops->encrypt ((char *) out, &written, (char *) payload, payload_len,
                                 held->blob, ECRYPTFS_BLOB_TYPE_BLOB), ==, 0);
  g_assert_cmpuint (written, ==, announced);
  return g_bytes_new (out, written);
}

static void
test_keymod_writes_epoch_packets (void)
{
  EVP_PKEY *key = new_rsa_key (2048);
  HeldBlob held;
  guint8 payloads[3][ETA_EPOCH_MAX_PAYLOAD];
  gsize lens[3];
  GBytes *packets[3];
  g_autoptr (GBytes) epoch_key = NULL;

  keymod_init (NULL);
  held_blob_init (&held, key, ETA_PADDING_OAEP, ETA_WRAP_EPOCH);
  lens[0] = make_payload (AES256, 32, payloads[0]);
  lens[1] = make_payload (AES128, 16, payloads[1]);
  /* The largest the kernel hands over: a 64-byte FEK. */
  lens[2] = make_payload (AES256, 64, payloads[2]);
  for (int i = 0; i < 3; i++)
    {
      packets[i] = keymod_encrypt (&held, payloads[i], lens[i]);
      g_assert_cmpuint (g_bytes_get_size (packets[i]), ==, eta_epoch_packet_size (256, lens[i]));
    }
  epoch_key = epoch_key_of (key, packets[0]);
  for (int i = 0; i < 3; i++)
    {
      g_autoptr (GBytes) own = epoch_key_of (key, packets[i]);
      g_assert_true (g_bytes_equal (own, epoch_key));
      g_assert_true (opens_with (packets[i], epoch_key, payloads[i], lens[i]));
      g_bytes_unref (packets[i]);
    }
  held_blob_clear (&held);
  EVP_PKEY_free (key);
}

/* A version 1 blob (no wrap byte, from an earlier release) wraps per epoch. */
static void
test_keymod_version1_blob_means_epoch (void)
{
  EVP_PKEY *key = new_rsa_key (2048);
  HeldBlob held;
  struct ecryptfs_private_key *private_key;
  guint8 payload[ETA_EPOCH_MAX_PAYLOAD];
  gsize len = make_payload (AES128, 16, payload);
  g_autoptr (GBytes) packet = NULL;
  g_autoptr (GBytes) epoch_key = NULL;
  gsize v1_len;

  keymod_init (NULL);
  held_blob_init (&held, key, ETA_PADDING_PKCS1, ETA_WRAP_PER_FILE);
  private_key = (struct ecryptfs_private_key *) held.token;
  /* Drop the wrap byte at offset 40. */
  v1_len = private_key->data_len - 1;
  memmove (held.blob + 40, held.blob + 41, v1_len - 40);
  held.blob[4] = 1;
  held.blob[6] = (guint8) (v1_len >> 8);
  held.blob[7] = (guint8) v1_len;
  private_key->data_len = (uint32_t) v1_len;

  packet = keymod_encrypt (&held, payload, len);
  g_assert_true (eta_epoch_packet_has_magic (g_bytes_get_data (packet, NULL),
                                             g_bytes_get_size (packet)));
  epoch_key = epoch_key_of (key, packet);
  g_assert_true (opens_with (packet, epoch_key, payload, len));
  held_blob_clear (&held);
  EVP_PKEY_free (key);
}

/* epoch_files and epoch_seconds from keymod.conf. */
static void
test_keymod_rotation_from_config (void)
{
  EVP_PKEY *key = new_rsa_key (2048);
  HeldBlob held;
  guint8 payload[ETA_EPOCH_MAX_PAYLOAD];
  gsize len = make_payload (AES256, 32, payload);
  GBytes *packets[5];
  GBytes *rsa_keys[5];

  keymod_init ("epoch_files=2\nepoch_seconds=600\n");
  held_blob_init (&held, key, ETA_PADDING_OAEP, ETA_WRAP_EPOCH);
  for (int i = 0; i < 5; i++)
    {
      packets[i] = keymod_encrypt (&held, payload, len);
      rsa_keys[i] = rsa_key_of (packets[i]);
    }
  /* Files 1-2, 3-4, 5. */
  g_assert_true (g_bytes_equal (rsa_keys[0], rsa_keys[1]));
  g_assert_false (g_bytes_equal (rsa_keys[1], rsa_keys[2]));
  g_assert_true (g_bytes_equal (rsa_keys[2], rsa_keys[3]));
  g_assert_false (g_bytes_equal (rsa_keys[3], rsa_keys[4]));
  {
    g_autoptr (GBytes) first_key = epoch_key_of (key, packets[0]);
    g_autoptr (GBytes) second_key = epoch_key_of (key, packets[2]);
    g_assert_true (opens_with (packets[1], first_key, payload, len));
    g_assert_false (opens_with (packets[2], first_key, payload, len));
    g_assert_true (opens_with (packets[3], second_key, payload, len));
  }

  /* A key of its own: its first epoch starts now. */
  keymod_init ("epoch_seconds=1\n");
  {
    EVP_PKEY *other_key = new_rsa_key (2048);
    HeldBlob other;
    g_autoptr (GBytes) now = NULL;
    g_autoptr (GBytes) again = NULL;
    g_autoptr (GBytes) later = NULL;
    g_autoptr (GBytes) now_rsa = NULL;
    g_autoptr (GBytes) again_rsa = NULL;
    g_autoptr (GBytes) later_rsa = NULL;

    held_blob_init (&other, other_key, ETA_PADDING_OAEP, ETA_WRAP_EPOCH);
    now = keymod_encrypt (&other, payload, len);
    again = keymod_encrypt (&other, payload, len);
    now_rsa = rsa_key_of (now);
    again_rsa = rsa_key_of (again);
    g_assert_true (g_bytes_equal (now_rsa, again_rsa));
    g_usleep (1100 * 1000);
    later = keymod_encrypt (&other, payload, len);
    later_rsa = rsa_key_of (later);
    g_assert_false (g_bytes_equal (now_rsa, later_rsa));
    held_blob_clear (&other);
    EVP_PKEY_free (other_key);
  }

  /* Out of range: the defaults, logged. */
  keymod_init ("epoch_files=0\nepoch_seconds=-5\n");
  {
    g_autoptr (GBytes) one = keymod_encrypt (&held, payload, len);
    g_autoptr (GBytes) two = keymod_encrypt (&held, payload, len);
    g_autoptr (GBytes) one_rsa = rsa_key_of (one);
    g_autoptr (GBytes) two_rsa = rsa_key_of (two);
    g_assert_true (g_bytes_equal (one_rsa, two_rsa));
  }
  for (int i = 0; i < 5; i++)
    {
      g_bytes_unref (packets[i]);
      g_bytes_unref (rsa_keys[i]);
    }
  held_blob_clear (&held);
  EVP_PKEY_free (key);
  keymod_init (NULL);
}

static void
assert_plain_rsa (EVP_PKEY *key, EtaPadding padding, GBytes *wrapped, const guint8 *payload,
                  gsize payload_len)
{
  g_autoptr (GBytes) plaintext = NULL;

  g_assert_cmpuint (g_bytes_get_size (wrapped), ==, (gsize) EVP_PKEY_get_size (key));
  g_assert_false (eta_epoch_packet_has_magic (g_bytes_get_data (wrapped, NULL),
                                              g_bytes_get_size (wrapped)));
  plaintext = rsa_decrypt (key, padding, g_bytes_get_data (wrapped, NULL),
                           g_bytes_get_size (wrapped));
  g_assert_cmpmem (g_bytes_get_data (plaintext, NULL), g_bytes_get_size (plaintext), payload,
                   payload_len);
}

static void
test_keymod_rsa4096_falls_back (void)
{
  EVP_PKEY *key = shared_key (4096);
  HeldBlob held;
  guint8 payload[ETA_EPOCH_MAX_PAYLOAD];
  gsize len = make_payload (AES256, 32, payload);
  g_autoptr (GBytes) wrapped = NULL;

  keymod_init (NULL);
  held_blob_init (&held, key, ETA_PADDING_OAEP, ETA_WRAP_EPOCH);
  wrapped = keymod_encrypt (&held, payload, len);
  assert_plain_rsa (key, ETA_PADDING_OAEP, wrapped, payload, len);
  held_blob_clear (&held);
}

static void
test_keymod_per_file (void)
{
  EVP_PKEY *key = shared_key (2048);
  const EtaPadding paddings[] = { ETA_PADDING_OAEP, ETA_PADDING_PKCS1 };

  keymod_init (NULL);
  for (gsize p = 0; p < G_N_ELEMENTS (paddings); p++)
    {
      HeldBlob held;
      guint8 payload[ETA_EPOCH_MAX_PAYLOAD];
      gsize len = make_payload (AES128, 16, payload);
      g_autoptr (GBytes) first = NULL;
      g_autoptr (GBytes) second = NULL;

      held_blob_init (&held, key, paddings[p], ETA_WRAP_PER_FILE);
      first = keymod_encrypt (&held, payload, len);
      second = keymod_encrypt (&held, payload, len);
      assert_plain_rsa (key, paddings[p], first, payload, len);
      assert_plain_rsa (key, paddings[p], second, payload, len);
      /* Randomised padding: the same payload never gives the same bytes. */
      g_assert_false (g_bytes_equal (first, second));
      held_blob_clear (&held);
    }
}

/* ---- through libecryptfs (harness A) ---- */

static gchar *
write_public_key_file (EVP_PKEY *key, const gchar *dir)
{
  gchar *path = g_build_filename (dir, "key.pem", NULL);
  FILE *file = fopen (path, "w");

  g_assert_nonnull (file);
  g_assert_cmpint (PEM_write_PUBKEY (file, key), ==, 1);
  fclose (file);
  return path;
}

static void
test_libecryptfs_wrap_mode_parameter (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *dir = g_dir_make_tmp ("eta-epoch-wrap-XXXXXX", &error);
  EVP_PKEY *key = new_rsa_key (2048);
  g_autofree gchar *pem = write_public_key_file (key, dir);
  uint8_t fingerprint[ETA_FINGERPRINT_LEN];
  char hex[2 * ETA_FINGERPRINT_LEN + 1];
  const gchar *wraps[] = { "epoch", "per-file" };
  const guint8 fek[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                           17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
  guint8 payload[35];
  guint sum = 0;

  g_assert_no_error (error);
  fingerprint_of (key, fingerprint);
  eta_key_to_hex (fingerprint, sizeof fingerprint, hex);
  payload[0] = AES256;
  memcpy (payload + 1, fek, sizeof fek);
  for (gsize i = 0; i < sizeof fek; i++)
    sum += fek[i];
  payload[33] = (guint8) (sum >> 8);
  payload[34] = (guint8) sum;
  g_setenv ("ECRYPTFS_TOKEN_AGENT_KEYMOD_CONF", "/nonexistent/keymod.conf", TRUE);

  for (gsize w = 0; w < G_N_ELEMENTS (wraps); w++)
    {
      g_autoptr (EtaInprocessDaemon) daemon = eta_inprocess_daemon_new (ETA_TEST_KEYMOD_PATH,
                                                                        &error);
      const gchar *names[] = { "fingerprint", "pubkey", "wrap", NULL };
      const gchar *values[] = { hex, pem, wraps[w], NULL };
      g_autofree gchar *sig = NULL;
      g_autoptr (GBytes) first = NULL;
      g_autoptr (GBytes) second = NULL;

      g_assert_no_error (error);
      sig = eta_inprocess_daemon_add_key (daemon, "token-agent", names, values, &error);
      g_assert_no_error (error);
      g_assert_true (eta_inprocess_daemon_wrap (daemon, sig, AES256, fek, sizeof fek, &first,
                                                &error));
      g_assert_no_error (error);
      g_assert_true (eta_inprocess_daemon_wrap (daemon, sig, AES256, fek, sizeof fek, &second,
                                                &error));
      g_assert_no_error (error);
      if (w == 0)
        {
          g_autoptr (GBytes) epoch_key = epoch_key_of (key, first);
          g_autoptr (GBytes) first_rsa = rsa_key_of (first);
          g_autoptr (GBytes) second_rsa = rsa_key_of (second);

          g_assert_cmpuint (g_bytes_get_size (first), ==, eta_epoch_packet_size (256, 35));
          g_assert_true (g_bytes_equal (first_rsa, second_rsa));
          g_assert_true (opens_with (first, epoch_key, payload, sizeof payload));
          g_assert_true (opens_with (second, epoch_key, payload, sizeof payload));
        }
      else
        {
          assert_plain_rsa (key, ETA_PADDING_OAEP, first, payload, sizeof payload);
          assert_plain_rsa (key, ETA_PADDING_OAEP, second, payload, sizeof payload);
        }
      eta_harness_remove_user_key (sig, NULL);
    }
  g_unlink (pem);
  g_rmdir (dir);
  EVP_PKEY_free (key);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/keymod/epoch-wrap/one-epoch-shares-rsa-key", test_one_epoch_shares_rsa_key);
  g_test_add_func ("/keymod/epoch-wrap/per-key-and-padding", test_epoch_per_key_and_padding);
  g_test_add_func ("/keymod/epoch-wrap/rotation-after-files", test_rotation_after_files);
  g_test_add_func ("/keymod/epoch-wrap/rotation-after-seconds", test_rotation_after_seconds);
  g_test_add_func ("/keymod/epoch-wrap/old-key-wiped", test_old_key_wiped);
  g_test_add_func ("/keymod/epoch-wrap/table-is-bounded", test_table_is_bounded);
  g_test_add_func ("/keymod/epoch-wrap/rsa4096-does-not-fit", test_rsa4096_does_not_fit);
  g_test_add_func ("/keymod/epoch-wrap/keymod/epoch-packets", test_keymod_writes_epoch_packets);
  g_test_add_func ("/keymod/epoch-wrap/keymod/version1-blob-means-epoch",
                   test_keymod_version1_blob_means_epoch);
  g_test_add_func ("/keymod/epoch-wrap/keymod/rotation-from-config",
                   test_keymod_rotation_from_config);
  g_test_add_func ("/keymod/epoch-wrap/keymod/rsa4096-falls-back", test_keymod_rsa4096_falls_back);
  g_test_add_func ("/keymod/epoch-wrap/keymod/per-file", test_keymod_per_file);
  g_test_add_func ("/keymod/epoch-wrap/libecryptfs/wrap-parameter",
                   test_libecryptfs_wrap_mode_parameter);
  return g_test_run ();
}

/* Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/)
 * with the project's own writers and libecryptfs: fresh RSA keys, their
 * certificates (PEM, DER, names in UTF8String and BMPString), blobs from
 * eta_blob_write, auth tokens made by libecryptfs through the key module's
 * get_blob and read back from the user keyring, enrolment records from
 * eta_public_key_save_record, a sealed reply from eta_seal_to, serialised
 * D-Bus arguments, mountinfo text. Not a test: run by hand when a format
 * changes (see tests/fuzz/README.md); the output is committed.
 *
 * usage: eta-fuzz-make-seeds CORPUS-DIR */
#include <errno.h>
#include <keyutils.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ecryptfs.h>
#include <glib/gstdio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "eta-blob.h"
#include "eta-key-id.h"
#include "eta-names.h"
#include "eta-public-key-file.h"
#include "eta-epoch-packet.h"
#include "eta-seal.h"
#include "eta-unwrap-arguments.h"

struct ecryptfs_key_mod_ops *get_key_mod_ops (void);

static const gchar *corpus_dir;

G_NORETURN static void
die (const gchar *what)
{
  g_printerr ("eta-fuzz-make-seeds: %s\n", what);
  exit (1);
}

static gchar *
seed_path (const gchar *target, const gchar *name)
{
  g_autofree gchar *dir = g_build_filename (corpus_dir, target, NULL);

  if (g_mkdir_with_parents (dir, 0755) != 0)
    die ("cannot create a corpus directory");
  return g_build_filename (dir, name, NULL);
}

static void
write_seed (const gchar *target, const gchar *name, const void *data, gsize len)
{
  g_autofree gchar *path = seed_path (target, name);
  g_autoptr (GError) error = NULL;

  if (!g_file_set_contents (path, data, (gssize) len, &error))
    die (error->message);
  g_print ("%s (%zu bytes)\n", path, len);
}

static EVP_PKEY *
make_rsa (unsigned bits)
{
  EVP_PKEY *key = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) bits);

  if (key == NULL)
    die ("RSA key generation failed");
  return key;
}

/* A self-signed certificate whose subject CN is @cn_len bytes of @cn_type. */
static X509 *
make_certificate (EVP_PKEY *key, int cn_type, const void *cn, int cn_len)
{
  X509 *cert = X509_new ();
  X509_NAME *name = X509_get_subject_name (cert);

  X509_set_version (cert, 2);
  ASN1_INTEGER_set (X509_get_serialNumber (cert), 1);
  X509_gmtime_adj (X509_getm_notBefore (cert), 0);
  X509_gmtime_adj (X509_getm_notAfter (cert), 10L * 365 * 24 * 3600);
  X509_set_pubkey (cert, key);
  if (X509_NAME_add_entry_by_NID (name, NID_commonName, cn_type, cn, cn_len, -1, 0) != 1
      || X509_set_issuer_name (cert, name) != 1 || X509_sign (cert, key, EVP_sha256 ()) == 0)
    die ("cannot make a certificate");
  return cert;
}

static void
write_certificate (const gchar *name, X509 *cert, gboolean pem)
{
  unsigned char *der = NULL;
  int len;

  if (pem)
    {
      BIO *bio = BIO_new (BIO_s_mem ());
      char *data;
      long n;

      PEM_write_bio_X509 (bio, cert);
      n = BIO_get_mem_data (bio, &data);
      write_seed ("public-key", name, data, (gsize) n);
      BIO_free (bio);
      return;
    }
  len = i2d_X509 (cert, &der);
  write_seed ("public-key", name, der, (gsize) len);
  OPENSSL_free (der);
}

static void
write_public_key (const gchar *name, EVP_PKEY *key, gboolean pem)
{
  unsigned char *der = NULL;
  int len;

  if (pem)
    {
      BIO *bio = BIO_new (BIO_s_mem ());
      char *data;
      long n;

      PEM_write_bio_PUBKEY (bio, key);
      n = BIO_get_mem_data (bio, &data);
      write_seed ("public-key", name, data, (gsize) n);
      BIO_free (bio);
      return;
    }
  len = i2d_PUBKEY (key, &der);
  write_seed ("public-key", name, der, (gsize) len);
  OPENSSL_free (der);
}

/* The record of @cert as the key module reads it from a `pubkey` file. */
static EtaPublicKeyRecord *
record_of_certificate (X509 *cert, const gchar *token_label, EtaPadding padding,
                       gchar **pem_path_out)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *dir = g_dir_make_tmp ("eta-fuzz-seeds-XXXXXX", &error);
  gchar *path;
  EtaPublicKeyRecord *record;
  FILE *file;

  if (dir == NULL)
    die (error->message);
  path = g_build_filename (dir, "certificate.pem", NULL);
  file = fopen (path, "w");
  if (file == NULL || PEM_write_X509 (file, cert) != 1 || fclose (file) != 0)
    die ("cannot write a certificate");
  record = eta_public_key_load_file (path, &error);
  if (record == NULL)
    die (error->message);
  g_free (record->token_label);
  record->token_label = g_strdup (token_label);
  record->padding = padding;
  *pem_path_out = path;
  return record;
}

static void
remove_certificate_file (const gchar *path)
{
  g_autofree gchar *dir = g_path_get_dirname (path);

  g_unlink (path);
  g_rmdir (dir);
}

static void
write_blob (const gchar *name, const EtaPublicKeyRecord *record, EtaWrap wrap)
{
  gsize spki_len;
  const guint8 *spki = g_bytes_get_data (record->spki, &spki_len);
  size_t size = eta_blob_size (spki_len, record->key_label, record->token_label);
  g_autofree guint8 *blob = g_malloc (size);

  if (size == 0 || eta_blob_write_with_wrap (blob, record->padding, wrap, spki, spki_len,
                                             record->key_label, record->token_label) != size)
    die ("cannot write a blob");
  write_seed ("blob", name, blob, size);
}

/* A version 1 blob, as earlier releases left them in keyrings: the version 2
 * layout without the wrap byte at offset 40. */
static void
write_blob_v1 (const gchar *name, const EtaPublicKeyRecord *record)
{
  gsize spki_len;
  const guint8 *spki = g_bytes_get_data (record->spki, &spki_len);
  size_t size = eta_blob_size (spki_len, record->key_label, record->token_label);
  g_autofree guint8 *blob = g_malloc (size);

  if (size == 0 || eta_blob_write (blob, record->padding, spki, spki_len, record->key_label,
                                   record->token_label) != size)
    die ("cannot write a blob");
  memmove (blob + 40, blob + 41, size - 41);
  size--;
  blob[4] = 1;
  blob[6] = (guint8) (size >> 8);
  blob[7] = (guint8) size;
  write_seed ("blob", name, blob, size);
}

/* A blob around a key of another kind, with a true fingerprint: passes the
 * layout checks, fails the key check. */
static void
write_blob_of_key (const gchar *name, EVP_PKEY *key)
{
  unsigned char *der = NULL;
  int der_len = i2d_PUBKEY (key, &der);
  size_t size = eta_blob_size ((size_t) der_len, "EC key", "");
  g_autofree guint8 *blob = g_malloc (size);

  if (eta_blob_write (blob, ETA_PADDING_OAEP, der, (size_t) der_len, "EC key", "") != size)
    die ("cannot write a blob");
  OPENSSL_free (der);
  write_seed ("blob", name, blob, size);
}

/* The auth token libecryptfs makes with the key module, as the user keyring
 * holds it: get_blob reads the public key from @pem_path. */
static void
write_auth_token (const gchar *name, const EtaPublicKeyRecord *record, const gchar *pem_path,
                  EtaWrap wrap)
{
  struct key_mod_param_val values[4];
  struct ecryptfs_key_mod key_mod = { 0 };
  char sig[ETA_KEY_SIG_HEX_LEN + 1] = { 0 };
  char alias[] = ETA_KEYMOD_ALIAS;
  void *payload = NULL;
  long key, len;
  int rc;

  memset (values, 0, sizeof values);
  values[0].val = record->fingerprint_hex;
  values[1].val = (char *) eta_padding_to_string (record->padding);
  values[2].val = (char *) pem_path;
  values[3].val = (char *) eta_wrap_to_string (wrap);
  key_mod.alias = alias;
  key_mod.ops = get_key_mod_ops ();
  key_mod.ops->init (&key_mod.alias);
  key_mod.param_vals = values;
  key_mod.num_param_vals = G_N_ELEMENTS (values);
  rc = ecryptfs_add_key_module_key_to_keyring (sig, &key_mod);
  if (rc < 0)
    die ("libecryptfs could not add the auth token to the user keyring");
  key = keyctl_search (KEY_SPEC_USER_KEYRING, "user", sig, 0);
  if (key < 0)
    die ("the auth token is not in the user keyring");
  len = keyctl_read_alloc ((key_serial_t) key, &payload);
  if (len < 0)
    die ("cannot read the auth token");
  write_seed ("auth-tok", name, payload, (gsize) len);
  free (payload);
  /* A key made a moment ago: nobody else uses it. */
  keyctl_unlink ((key_serial_t) key, KEY_SPEC_USER_KEYRING);
  free (key_mod.alias);
}

static void
write_record (const gchar *name, const EtaPublicKeyRecord *record)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *dir = g_dir_make_tmp ("eta-fuzz-records-XXXXXX", &error);
  g_autofree gchar *path = NULL;
  g_autofree gchar *contents = NULL;
  gsize len = 0;

  if (dir == NULL || !eta_public_key_save_record (record, dir, &path, &error)
      || !g_file_get_contents (path, &contents, &len, &error))
    die (error->message);
  write_seed ("key-record", name, contents, len);
  g_unlink (path);
  g_rmdir (dir);
}

/* An epoch key and packets sealed under it, as the key module writes them
 * (RSA(K) here is random bytes of a 2048- and a 3072-bit modulus's size). */
static void
write_epoch_packets (void)
{
  static const gsize rsa_sizes[] = { 256, 384 };
  static const gsize payload_sizes[] = { 19, 35 };

  for (gsize i = 0; i < G_N_ELEMENTS (rsa_sizes); i++)
    {
      guint8 seed[ETA_EPOCH_KEY_LEN + ETA_EPOCH_MAX_PACKET];
      guint8 rsa[384], payload[35];
      g_autofree gchar *name = g_strdup_printf ("rsa%zu-aes%zu",
                                                rsa_sizes[i] * 8, (payload_sizes[i] - 3) * 8);
      gsize len;

      if (RAND_bytes (seed, ETA_EPOCH_KEY_LEN) != 1 || RAND_bytes (rsa, sizeof rsa) != 1
          || RAND_bytes (payload, sizeof payload) != 1)
        die ("no random bytes");
      len = eta_epoch_packet_write (seed + ETA_EPOCH_KEY_LEN,
                                    i == 0 ? ETA_PADDING_OAEP : ETA_PADDING_PKCS1, rsa,
                                    rsa_sizes[i], seed, payload, payload_sizes[i]);
      if (len == 0)
        die ("cannot write an epoch packet");
      write_seed ("epoch-packet", name, seed, ETA_EPOCH_KEY_LEN + len);
    }
}

static void
write_sealed_reply (void)
{
  EtaSealSession *session = eta_seal_session_new ();
  uint8_t file_key[35] = { 0x09 };
  uint8_t seed[1 + ETA_SEAL_PUBLIC_KEY_LEN + sizeof file_key + ETA_SEAL_OVERHEAD];

  for (gsize i = 1; i < sizeof file_key; i++)
    file_key[i] = (uint8_t) (i * 37);
  seed[0] = ETA_SEAL_PUBLIC_KEY_LEN;
  if (session == NULL
      || eta_seal_to (eta_seal_session_get_public_key (session), ETA_SEAL_PUBLIC_KEY_LEN,
                      "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
                      file_key, sizeof file_key, seed + 1,
                      seed + 1 + ETA_SEAL_PUBLIC_KEY_LEN) != 0)
    die ("cannot seal");
  write_seed ("seal", "aes256-file-key", seed, sizeof seed);
  eta_seal_session_free (session);
}

static void
write_arguments (const gchar *name, EtaUnwrapMethod method, GVariant *parameters)
{
  g_autoptr (GVariant) owned = g_variant_ref_sink (parameters);
  gsize len = g_variant_get_size (owned);
  g_autofree guint8 *seed = g_malloc (len + 1);

  seed[0] = (guint8) method;
  /* g_variant_store wants aligned memory; seed + 1 is not. */
  memcpy (seed + 1, g_variant_get_data (owned), len);
  write_seed ("unwrap-arguments", name, seed, len + 1);
}

static GVariant *
details (const gchar *requester, guint32 pid, gboolean full)
{
  g_auto (GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (&builder, "{sv}", "requester", g_variant_new_string (requester));
  g_variant_builder_add (&builder, "{sv}", "pid", g_variant_new_uint32 (pid));
  if (full)
    {
      g_variant_builder_add (&builder, "{sv}", "timeout-ms", g_variant_new_uint32 (2800));
      g_variant_builder_add (&builder, "{sv}", "interactive", g_variant_new_boolean (FALSE));
      g_variant_builder_add (&builder, "{sv}", "key-label",
                             g_variant_new_string ("Key Management key"));
      g_variant_builder_add (&builder, "{sv}", "token-label",
                             g_variant_new_string ("PIV Card Holder pin (PIV_II)"));
    }
  return g_variant_builder_end (&builder);
}

static void
write_unwrap_arguments (const EtaPublicKeyRecord *record)
{
  EtaSealSession *session = eta_seal_session_new ();
  guint8 wrapped[256];
  g_autofree gchar *prefix = g_strndup (record->fingerprint_hex, 16);

  for (gsize i = 0; i < sizeof wrapped; i++)
    wrapped[i] = (guint8) (i * 131 + 7);
  write_arguments ("unwrap", ETA_UNWRAP_METHOD_UNWRAP,
                   g_variant_new ("(ss@ay@ay@a{sv})", record->fingerprint_hex, "oaep",
                                  g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, wrapped,
                                                             sizeof wrapped, 1),
                                  g_variant_new_fixed_array (
                                    G_VARIANT_TYPE_BYTE, eta_seal_session_get_public_key (session),
                                    ETA_SEAL_PUBLIC_KEY_LEN, 1),
                                  details ("ecryptfsd", 812, TRUE)));
  write_arguments ("unwrap-pkcs1-prefix", ETA_UNWRAP_METHOD_UNWRAP,
                   g_variant_new ("(ss@ay@ay@a{sv})", prefix, "pkcs1",
                                  g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, wrapped, 128, 1),
                                  g_variant_new_fixed_array (
                                    G_VARIANT_TYPE_BYTE, eta_seal_session_get_public_key (session),
                                    ETA_SEAL_PUBLIC_KEY_LEN, 1),
                                  details ("ecryptfsd", 812, FALSE)));
  write_arguments ("unlock", ETA_UNWRAP_METHOD_UNLOCK,
                   g_variant_new ("(s@a{sv})", record->fingerprint_hex,
                                  details ("ecryptfs-token", 4242, TRUE)));
  write_arguments ("resolve-key", ETA_UNWRAP_METHOD_RESOLVE_KEY,
                   g_variant_new ("(s)", prefix));
  eta_seal_session_free (session);
}

static void
write_mountinfo (const gchar *sig)
{
  g_autofree gchar *text = g_strdup_printf (
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
    "25 22 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=4011856k,mode=755\n"
    "40 22 0:35 / /home/alice/Private rw,nosuid,nodev,relatime shared:20 - ecryptfs "
    "/home/alice/.Private rw,ecryptfs_sig=%s,ecryptfs_cipher=aes,ecryptfs_key_bytes=32,"
    "ecryptfs_unlink_sigs\n"
    "41 22 0:36 / /srv/Shared\\040Files rw,relatime shared:21 master:3 - ecryptfs "
    "/srv/.Shared\\040Files rw,ecryptfs_sig=939a34c74ce3d0d6,ecryptfs_sig=%s,"
    "ecryptfs_cipher=aes,ecryptfs_key_bytes=32\n",
    sig, sig);

  write_seed ("mount-table", "ecryptfs-mounts", text, strlen (text));
}

int
main (int argc, char **argv)
{
  unsigned char bmp_cn[] = { 0x00, 'J', 0x00, 0xf6, 0x00, 'r', 0x00, 'g' };
  g_autofree gchar *pem_2048 = NULL;
  g_autofree gchar *pem_1024 = NULL;
  g_autoptr (EtaPublicKeyRecord) record_2048 = NULL;
  g_autoptr (EtaPublicKeyRecord) record_1024 = NULL;
  EVP_PKEY *rsa_2048, *rsa_1024, *ec;
  X509 *cert_2048, *cert_1024, *cert_bmp, *cert_ec;
  char sig[ETA_KEY_SIG_HEX_LEN + 1];

  if (argc != 2)
    die ("usage: eta-fuzz-make-seeds CORPUS-DIR");
  corpus_dir = argv[1];
  /* The key module's get_blob must not find an agent, nor the host's
   * configuration. */
  g_unsetenv ("DBUS_SESSION_BUS_ADDRESS");
  g_setenv ("XDG_RUNTIME_DIR", "/nonexistent", TRUE);
  g_setenv ("ECRYPTFS_TOKEN_AGENT_KEYMOD_CONF", "/nonexistent/keymod.conf", TRUE);

  rsa_2048 = make_rsa (2048);
  rsa_1024 = make_rsa (1024);
  ec = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
  if (ec == NULL)
    die ("EC key generation failed");
  cert_2048 = make_certificate (rsa_2048, MBSTRING_UTF8,
                                "Key Management key \xe2\x80\x94 J\xc3\xb6rg", -1);
  cert_1024 = make_certificate (rsa_1024, MBSTRING_ASC, "Old card", -1);
  cert_bmp = make_certificate (rsa_1024, V_ASN1_BMPSTRING, bmp_cn, sizeof bmp_cn);
  cert_ec = make_certificate (ec, MBSTRING_ASC, "EC key", -1);

  write_certificate ("rsa2048-utf8-cn.pem", cert_2048, TRUE);
  write_certificate ("rsa2048-utf8-cn.der", cert_2048, FALSE);
  write_certificate ("rsa1024-bmpstring-cn.der", cert_bmp, FALSE);
  write_certificate ("ec-p256.pem", cert_ec, TRUE);
  write_public_key ("rsa1024.pub.pem", rsa_1024, TRUE);
  write_public_key ("rsa1024.pub.der", rsa_1024, FALSE);

  record_2048 = record_of_certificate (cert_2048, "PIV Card Holder pin (PIV_II)",
                                       ETA_PADDING_OAEP, &pem_2048);
  record_1024 = record_of_certificate (cert_1024, "", ETA_PADDING_PKCS1, &pem_1024);
  write_blob ("rsa2048-oaep", record_2048, ETA_WRAP_EPOCH);
  write_blob ("rsa1024-pkcs1", record_1024, ETA_WRAP_EPOCH);
  write_blob ("rsa2048-oaep-per-file", record_2048, ETA_WRAP_PER_FILE);
  write_blob_v1 ("rsa2048-oaep-v1", record_2048);
  write_blob_of_key ("ec-p256", ec);
  write_auth_token ("rsa2048-oaep", record_2048, pem_2048, ETA_WRAP_EPOCH);
  write_auth_token ("rsa1024-pkcs1", record_1024, pem_1024, ETA_WRAP_EPOCH);
  write_auth_token ("rsa2048-oaep-per-file", record_2048, pem_2048, ETA_WRAP_PER_FILE);
  write_record ("rsa2048-oaep", record_2048);
  write_record ("rsa1024-pkcs1", record_1024);
  write_sealed_reply ();
  write_epoch_packets ();
  write_unwrap_arguments (record_2048);
  if (eta_key_sig_from_spki (g_bytes_get_data (record_2048->spki, NULL),
                             g_bytes_get_size (record_2048->spki), sig) != 0)
    die ("no sig");
  write_mountinfo (sig);

  remove_certificate_file (pem_2048);
  remove_certificate_file (pem_1024);
  X509_free (cert_2048);
  X509_free (cert_1024);
  X509_free (cert_bmp);
  X509_free (cert_ec);
  EVP_PKEY_free (rsa_2048);
  EVP_PKEY_free (rsa_1024);
  EVP_PKEY_free (ec);
  return 0;
}

/* Public keys from files and enrolment records; see eta-public-key-file.h. */
#include "config.h"

#include "eta-public-key-file.h"

#include <errno.h>
#include <pwd.h>
#include <string.h>

#include <gio/gio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "eta-names.h"

#define RECORD_GROUP "key"

void
eta_public_key_record_free (EtaPublicKeyRecord *record)
{
  if (record == NULL)
    return;
  g_clear_pointer (&record->spki, g_bytes_unref);
  g_free (record->fingerprint_hex);
  g_free (record->key_label);
  g_free (record->token_label);
  g_free (record);
}

gboolean
eta_fingerprint_prefix_is_valid (const gchar *text)
{
  gsize len;

  if (text == NULL)
    return FALSE;
  len = strlen (text);
  if (len < ETA_FINGERPRINT_MIN_PREFIX || len > ETA_FINGERPRINT_HEX_LEN)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isxdigit (text[i]) || g_ascii_isupper (text[i]))
      return FALSE;
  return TRUE;
}

static EtaPublicKeyRecord *
record_from_pkey (EVP_PKEY *pkey, const gchar *label, GError **error)
{
  g_autoptr (EtaPublicKeyRecord) record = g_new0 (EtaPublicKeyRecord, 1);
  uint8_t fingerprint[ETA_FINGERPRINT_LEN];
  char hex[2 * ETA_FINGERPRINT_LEN + 1];
  unsigned char *der = NULL;
  int der_len;

  der_len = i2d_PUBKEY (pkey, &der);
  if (der_len <= 0 || EVP_PKEY_get_base_id (pkey) != EVP_PKEY_RSA)
    {
      OPENSSL_free (der);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "the key is not an RSA public key");
      return NULL;
    }
  record->spki = g_bytes_new (der, (gsize) der_len);
  OPENSSL_free (der);
  eta_key_fingerprint (g_bytes_get_data (record->spki, NULL),
                       g_bytes_get_size (record->spki), fingerprint);
  eta_key_to_hex (fingerprint, sizeof fingerprint, hex);
  record->fingerprint_hex = g_strdup (hex);
  record->key_label = g_strdup (label);
  record->token_label = g_strdup ("");
  record->padding = ETA_PADDING_OAEP;
  return g_steal_pointer (&record);
}

/* The subject's CN as UTF-8, or NULL when there is none. Its bytes are in
 * the string type the CA chose: a BMPString (UCS-2, common on smart card
 * certificates) starts with a NUL byte for every Latin character, a
 * T61String holds Latin-1, and labels go into prompts and D-Bus strings. */
static gchar *
subject_common_name (X509 *cert)
{
  X509_NAME *subject = X509_get_subject_name (cert);
  int index = X509_NAME_get_index_by_NID (subject, NID_commonName, -1);
  unsigned char *utf8 = NULL;
  gchar *cn = NULL;
  int len;

  if (index < 0)
    return NULL;
  len = ASN1_STRING_to_UTF8 (&utf8, X509_NAME_ENTRY_get_data (X509_NAME_get_entry (subject,
                                                                                    index)));
  /* A NUL inside the name is not valid in a label: make_valid replaces it. */
  if (len > 0)
    cn = g_utf8_make_valid ((const gchar *) utf8, len);
  OPENSSL_free (utf8);
  return cn;
}

EtaPublicKeyRecord *
eta_public_key_load_data (const guint8 *data, gsize length, const gchar *name, GError **error)
{
  g_autofree gchar *label = NULL;
  EVP_PKEY *pkey = NULL;
  X509 *cert = NULL;
  BIO *bio;
  EtaPublicKeyRecord *record;

  /* Try each form in turn: PEM certificate, PEM public key, DER of both. */
  bio = BIO_new_mem_buf (data, (int) length);
  cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
  if (cert == NULL)
    {
      BIO_reset (bio);
      pkey = PEM_read_bio_PUBKEY (bio, NULL, NULL, NULL);
    }
  if (cert == NULL && pkey == NULL)
    {
      const unsigned char *p = data;
      cert = d2i_X509 (NULL, &p, (long) length);
    }
  if (cert == NULL && pkey == NULL)
    {
      const unsigned char *p = data;
      pkey = d2i_PUBKEY (NULL, &p, (long) length);
    }
  BIO_free (bio);

  if (cert != NULL)
    {
      pkey = X509_get_pubkey (cert);
      label = subject_common_name (cert);
      X509_free (cert);
    }
  if (pkey == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "%s holds no certificate or public key (PEM or DER)", name);
      return NULL;
    }
  /* A file name is any bytes; the label must be text. */
  if (label == NULL)
    label = g_filename_display_basename (name);
  record = record_from_pkey (pkey, label, error);
  EVP_PKEY_free (pkey);
  return record;
}

EtaPublicKeyRecord *
eta_public_key_load_file (const gchar *path, GError **error)
{
  g_autofree gchar *contents = NULL;
  gsize length = 0;

  if (!g_file_get_contents (path, &contents, &length, error))
    return NULL;
  return eta_public_key_load_data ((const guint8 *) contents, length, path, error);
}

GStrv
eta_public_key_record_dirs (void)
{
  g_autoptr (GStrvBuilder) dirs = g_strv_builder_new ();
  const gchar *sudo_user = g_getenv ("SUDO_USER");

  g_autofree gchar *user_dir = g_build_filename (g_get_user_data_dir (),
                                                 "ecryptfs-token-agent", "keys", NULL);

  g_strv_builder_add (dirs, user_dir);
  if (sudo_user != NULL)
    {
      struct passwd *pw = getpwnam (sudo_user);
      if (pw != NULL && pw->pw_dir != NULL)
        {
          g_autofree gchar *sudo_dir = g_build_filename (pw->pw_dir, ".local", "share",
                                                         "ecryptfs-token-agent", "keys", NULL);
          g_strv_builder_add (dirs, sudo_dir);
        }
    }
  g_strv_builder_add (dirs, ETA_SYSTEM_KEY_DIR);
  return g_strv_builder_end (dirs);
}

/* The fields of a record already read into @file; @name is for messages. */
static EtaPublicKeyRecord *
record_from_key_file (GKeyFile *file, const gchar *name, GError **error)
{
  g_autoptr (EtaPublicKeyRecord) record = g_new0 (EtaPublicKeyRecord, 1);
  g_autoptr (GError) local_error = NULL;
  g_autofree gchar *spki_b64 = NULL;
  g_autofree gchar *padding = NULL;
  uint8_t fingerprint[ETA_FINGERPRINT_LEN];
  char hex[2 * ETA_FINGERPRINT_LEN + 1];
  guchar *der;
  gsize der_len;

  /* A value with a bad escape sequence comes back cut short and with an
   * error: the record is damaged, and the error must not be set twice. */
  spki_b64 = g_key_file_get_string (file, RECORD_GROUP, "public-key", &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  der = g_base64_decode (spki_b64, &der_len);
  record->spki = g_bytes_new_take (der, der_len);
  if (eta_key_rsa_modulus_bytes (der, der_len) == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "%s: public-key is not an RSA public key", name);
      return NULL;
    }
  eta_key_fingerprint (der, der_len, fingerprint);
  eta_key_to_hex (fingerprint, sizeof fingerprint, hex);
  record->fingerprint_hex = g_strdup (hex);
  record->key_label = g_key_file_get_string (file, RECORD_GROUP, "key-label", NULL);
  record->token_label = g_key_file_get_string (file, RECORD_GROUP, "token-label", NULL);
  padding = g_key_file_get_string (file, RECORD_GROUP, "padding", NULL);
  record->padding = eta_padding_from_string (padding);
  if (record->padding == 0)
    record->padding = ETA_PADDING_OAEP;
  if (record->key_label == NULL)
    record->key_label = g_strdup ("");
  if (record->token_label == NULL)
    record->token_label = g_strdup ("");
  return g_steal_pointer (&record);
}

EtaPublicKeyRecord *
eta_public_key_parse_record (const gchar *data, gsize length, const gchar *name,
                             GError **error)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();

  if (!g_key_file_load_from_data (file, data, length, G_KEY_FILE_NONE, error))
    return NULL;
  return record_from_key_file (file, name, error);
}

static EtaPublicKeyRecord *
load_record (const gchar *path, GError **error)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();

  /* Not through eta_public_key_parse_record: the key file loader's own
   * messages for a file it cannot open are the ones people see. */
  if (!g_key_file_load_from_file (file, path, G_KEY_FILE_NONE, error))
    return NULL;
  return record_from_key_file (file, path, error);
}

EtaPublicKeyRecord *
eta_public_key_find_record (const gchar *fingerprint_prefix, GError **error)
{
  g_auto (GStrv) dirs = eta_public_key_record_dirs ();

  for (gsize i = 0; dirs[i] != NULL; i++)
    {
      g_autoptr (GDir) dir = g_dir_open (dirs[i], 0, NULL);
      g_autofree gchar *match = NULL;
      const gchar *name;

      if (dir == NULL)
        continue;
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          if (!g_str_has_suffix (name, ".key") || !g_str_has_prefix (name, fingerprint_prefix))
            continue;
          /* The same key saved twice in one directory is not ambiguous. */
          if (match != NULL && strcmp (match, name) != 0)
            {
              g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                           "fingerprint prefix %s matches several saved keys in %s",
                           fingerprint_prefix, dirs[i]);
              return NULL;
            }
          g_free (match);
          match = g_strdup (name);
        }
      if (match != NULL)
        {
          g_autofree gchar *path = g_build_filename (dirs[i], match, NULL);
          return load_record (path, error);
        }
    }
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
               "no saved public key matches fingerprint %s", fingerprint_prefix);
  return NULL;
}

GPtrArray *
eta_public_key_list_records (void)
{
  g_auto (GStrv) dirs = eta_public_key_record_dirs ();
  GPtrArray *records = g_ptr_array_new_with_free_func (
      (GDestroyNotify) eta_public_key_record_free);
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

  for (gsize i = 0; dirs[i] != NULL; i++)
    {
      g_autoptr (GDir) dir = g_dir_open (dirs[i], 0, NULL);
      const gchar *name;

      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree gchar *path = NULL;
          EtaPublicKeyRecord *record;

          if (!g_str_has_suffix (name, ".key"))
            continue;
          path = g_build_filename (dirs[i], name, NULL);
          record = load_record (path, NULL);
          /* The most specific directory's copy of a key wins. */
          if (record == NULL || g_hash_table_contains (seen, record->fingerprint_hex))
            {
              g_clear_pointer (&record, eta_public_key_record_free);
              continue;
            }
          g_hash_table_add (seen, record->fingerprint_hex);
          g_ptr_array_add (records, record);
        }
    }
  return records;
}

gboolean
eta_public_key_save_record (const EtaPublicKeyRecord *record, const gchar *dir,
                            gchar **path_out, GError **error)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();
  g_autofree gchar *spki_b64 = NULL;
  g_autofree gchar *name = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *data = NULL;
  gsize len;

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "cannot create %s: %s", dir, g_strerror (saved));
      return FALSE;
    }
  spki_b64 = g_base64_encode (g_bytes_get_data (record->spki, NULL),
                              g_bytes_get_size (record->spki));
  g_key_file_set_string (file, RECORD_GROUP, "fingerprint", record->fingerprint_hex);
  g_key_file_set_string (file, RECORD_GROUP, "public-key", spki_b64);
  g_key_file_set_string (file, RECORD_GROUP, "key-label", record->key_label);
  g_key_file_set_string (file, RECORD_GROUP, "token-label", record->token_label);
  g_key_file_set_string (file, RECORD_GROUP, "padding",
                         eta_padding_to_string (record->padding));
  data = g_key_file_to_data (file, &len, NULL);
  name = g_strconcat (record->fingerprint_hex, ".key", NULL);
  path = g_build_filename (dir, name, NULL);
  if (!g_file_set_contents_full (path, data, (gssize) len,
                                 G_FILE_SET_CONTENTS_CONSISTENT, 0644, error))
    return FALSE;
  if (path_out)
    *path_out = g_steal_pointer (&path);
  return TRUE;
}

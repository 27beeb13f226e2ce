/* See eta-token-key.h. */
#include "config.h"

#include "eta-token-key.h"

#include <string.h>

#include <openssl/x509.h>

#include "eta-agent-error.h"
#include "eta-key-id.h"

struct _EtaTokenKey
{
  GObject parent_instance;

  pkcs11h_certificate_id_t certificate_id;
  gchar *fingerprint;
  GBytes *public_key;
  gchar *sig;
  guint bits;
  gchar *label;
  gchar *token_label;
  gchar *token_serial;
  gchar *token_identity;
};

G_DEFINE_FINAL_TYPE (EtaTokenKey, eta_token_key, G_TYPE_OBJECT)

static void
eta_token_key_finalize (GObject *object)
{
  EtaTokenKey *self = ETA_TOKEN_KEY (object);

  if (self->certificate_id != NULL)
    pkcs11h_certificate_freeCertificateId (self->certificate_id);
  g_free (self->fingerprint);
  g_clear_pointer (&self->public_key, g_bytes_unref);
  g_free (self->sig);
  g_free (self->label);
  g_free (self->token_label);
  g_free (self->token_serial);
  g_free (self->token_identity);
  G_OBJECT_CLASS (eta_token_key_parent_class)->finalize (object);
}

static void
eta_token_key_class_init (EtaTokenKeyClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = eta_token_key_finalize;
}

static void
eta_token_key_init (EtaTokenKey *self)
{
}

/* A label people recognise: the certificate's common name, else
 * pkcs11-helper's display name ("subject on token"). */
static gchar *
object_label (X509 *cert, pkcs11h_certificate_id_t certificate_id)
{
  char common_name[256];

  if (X509_NAME_get_text_by_NID (X509_get_subject_name (cert), NID_commonName,
                                 common_name, sizeof common_name) > 0)
    return g_strdup (common_name);
  return g_strstrip (g_strdup (certificate_id->displayName));
}

EtaTokenKey *
eta_token_key_new_from_certificate (pkcs11h_certificate_id_t certificate_id)
{
  g_autoptr (EtaTokenKey) self = NULL;
  const unsigned char *p = certificate_id->certificate_blob;
  uint8_t fingerprint[ETA_FINGERPRINT_LEN];
  char hex[2 * ETA_FINGERPRINT_LEN + 1];
  char sig[ETA_KEY_SIG_HEX_LEN + 1];
  unsigned char *der = NULL;
  EVP_PKEY *pkey = NULL;
  X509 *cert;
  int der_len;
  pkcs11h_token_id_t token;

  if (p == NULL || certificate_id->certificate_blob_size == 0)
    return NULL;
  cert = d2i_X509 (NULL, &p, (long) certificate_id->certificate_blob_size);
  if (cert != NULL)
    pkey = X509_get_pubkey (cert);
  if (pkey == NULL || EVP_PKEY_get_base_id (pkey) != EVP_PKEY_RSA)
    {
      EVP_PKEY_free (pkey);
      X509_free (cert);
      return NULL;
    }
  der_len = i2d_PUBKEY (pkey, &der);
  self = g_object_new (ETA_TYPE_TOKEN_KEY, NULL);
  self->label = object_label (cert, certificate_id);
  X509_free (cert);
  self->bits = (guint) EVP_PKEY_get_bits (pkey);
  EVP_PKEY_free (pkey);
  if (der_len <= 0)
    return NULL;
  self->public_key = g_bytes_new (der, (gsize) der_len);
  OPENSSL_free (der);

  eta_key_fingerprint (g_bytes_get_data (self->public_key, NULL),
                       g_bytes_get_size (self->public_key), fingerprint);
  eta_key_to_hex (fingerprint, sizeof fingerprint, hex);
  self->fingerprint = g_strdup (hex);
  if (eta_key_sig_from_spki (g_bytes_get_data (self->public_key, NULL),
                             g_bytes_get_size (self->public_key), sig) != 0)
    return NULL;
  self->sig = g_strdup (sig);

  if (pkcs11h_certificate_duplicateCertificateId (&self->certificate_id, certificate_id) != CKR_OK)
    return NULL;
  token = certificate_id->token_id;
  self->token_label = g_strstrip (g_strdup (token->label));
  self->token_serial = g_strstrip (g_strdup (token->serialNumber));
  self->token_identity = g_strdup_printf ("%s/%s/%s/%s", token->manufacturerID, token->model,
                                          token->serialNumber, token->label);
  return g_steal_pointer (&self);
}

const gchar *eta_token_key_get_fingerprint (EtaTokenKey *self) { return self->fingerprint; }
GBytes *eta_token_key_get_public_key (EtaTokenKey *self) { return self->public_key; }
const gchar *eta_token_key_get_sig (EtaTokenKey *self) { return self->sig; }
guint eta_token_key_get_bits (EtaTokenKey *self) { return self->bits; }
const gchar *eta_token_key_get_label (EtaTokenKey *self) { return self->label; }
const gchar *eta_token_key_get_token_label (EtaTokenKey *self) { return self->token_label; }
const gchar *eta_token_key_get_token_serial (EtaTokenKey *self) { return self->token_serial; }
const gchar *eta_token_key_get_token_identity (EtaTokenKey *self) { return self->token_identity; }
pkcs11h_certificate_id_t eta_token_key_get_certificate_id (EtaTokenKey *self) { return self->certificate_id; }

EtaTokenKey *
eta_token_key_find (GPtrArray *keys, const gchar *prefix, GError **error)
{
  EtaTokenKey *found = NULL;

  for (guint i = 0; i < keys->len; i++)
    {
      EtaTokenKey *key = g_ptr_array_index (keys, i);
      if (!g_str_has_prefix (key->fingerprint, prefix))
        continue;
      if (found != NULL && strcmp (found->fingerprint, key->fingerprint) != 0)
        {
          g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_AMBIGUOUS_KEY,
                       "fingerprint %s matches several keys (%.16s…, %.16s…); give more digits",
                       prefix, found->fingerprint, key->fingerprint);
          return NULL;
        }
      if (found == NULL)
        found = key;
    }
  if (found == NULL)
    g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_KEY_NOT_FOUND,
                 "no present token holds a key with fingerprint %s", prefix);
  return found;
}

/* One RSA key found on a token: its public names (fingerprint, eCryptfs sig,
 * labels) and the pkcs11-helper handles needed to use it. The public fields
 * never change; the handles belong to EtaTokenManager. */
#pragma once

#include <glib-object.h>
#include <pkcs11-helper-1.0/pkcs11h-certificate.h>

G_BEGIN_DECLS

#define ETA_TYPE_TOKEN_KEY (eta_token_key_get_type ())
G_DECLARE_FINAL_TYPE (EtaTokenKey, eta_token_key, ETA, TOKEN_KEY, GObject)

/* Takes a copy of @certificate_id. NULL when the certificate is not an RSA
 * certificate (nothing to do with it). */
EtaTokenKey *eta_token_key_new_from_certificate (pkcs11h_certificate_id_t certificate_id);

const gchar *eta_token_key_get_fingerprint (EtaTokenKey *self);
GBytes *eta_token_key_get_public_key (EtaTokenKey *self);
const gchar *eta_token_key_get_sig (EtaTokenKey *self);
guint eta_token_key_get_bits (EtaTokenKey *self);
const gchar *eta_token_key_get_label (EtaTokenKey *self);
const gchar *eta_token_key_get_token_label (EtaTokenKey *self);
const gchar *eta_token_key_get_token_serial (EtaTokenKey *self);
/* "manufacturer/model/serial/label": one token, whatever slot it is in. */
const gchar *eta_token_key_get_token_identity (EtaTokenKey *self);
pkcs11h_certificate_id_t eta_token_key_get_certificate_id (EtaTokenKey *self);

/* The key in @keys named by @prefix (hex, >= 16 digits). The same key on two
 * tokens is one key (the first copy is returned); two different keys sharing
 * the prefix are ETA_AGENT_ERROR_AMBIGUOUS_KEY. */
EtaTokenKey *eta_token_key_find (GPtrArray *keys, const gchar *prefix, GError **error);

G_END_DECLS

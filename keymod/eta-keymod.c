/* The eCryptfs key module `token-agent`: libecryptfs_key_mod_token_agent.so.
 *
 * Thin on purpose: wraps file keys locally with the public key in the blob (so
 * new files can be written with the token unplugged and no agent running), and
 * forwards unwraps to the agent on the user's session bus. It never prompts,
 * never loads a PKCS#11 module and never sees a PIN.
 *
 * By default a file key is wrapped per epoch (keymod/epoch-format.md): one
 * token operation opens a whole epoch's files. wrap=per-file writes plain RSA
 * per file, as the upstream modules do. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <ecryptfs.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "eta-agent-client.h"
#include "eta-blob.h"
#include "eta-epoch-wrapper.h"
#include "eta-keymod-config.h"
#include "eta-keymod-log.h"
#include "eta-names.h"
#include "eta-public-key-file.h"

#define EXPORT __attribute__ ((visibility ("default")))

/* decision_graph.h is not installed; its value of ECRYPTFS_PARAM_FLAG_ECHO_INPUT. */
#define ETA_PARAM_FLAG_ECHO_INPUT 0x00000001

enum { PARAM_FINGERPRINT, PARAM_PADDING, PARAM_PUBKEY, PARAM_WRAP, N_PARAMS };

/* Every parameter has a default: libecryptfs passes only the parameters that
 * got a value, matched by position, so a hole would shift the rest. */
static struct key_mod_param params[N_PARAMS] = {
  { .id = PARAM_FINGERPRINT, .flags = ETA_PARAM_FLAG_ECHO_INPUT,
    .option = "fingerprint",
    .description = "Key fingerprint (SHA-256 of the public key, hex; see 'ecryptfs-token list')",
    .default_val = "none" },
  { .id = PARAM_PADDING, .flags = ETA_PARAM_FLAG_ECHO_INPUT,
    .option = "padding",
    .description = "RSA padding: oaep, or pkcs1 for files of the pkcs11-helper module",
    .default_val = "oaep" },
  { .id = PARAM_PUBKEY, .flags = ETA_PARAM_FLAG_ECHO_INPUT,
    .option = "pubkey",
    .description = "Certificate or public key file to use when the agent is out of reach",
    .default_val = "none" },
  { .id = PARAM_WRAP, .flags = ETA_PARAM_FLAG_ECHO_INPUT,
    .option = "wrap",
    .description = "How new files' keys are wrapped: epoch (one token operation per epoch), "
                   "or per-file (plain RSA per file)",
    .default_val = "epoch" },
};

static EtaKeymodConfig config;

/* Made on the first wrap, not in init (which must stay cheap). */
static GMutex epochs_lock;
static EtaEpochWrapper *epochs;

static EtaEpochWrapper *
get_epochs (void)
{
  EtaEpochWrapper *wrapper;

  g_mutex_lock (&epochs_lock);
  if (epochs == NULL)
    {
      epochs = eta_epoch_wrapper_new (config.epoch_seconds, config.epoch_files);
      eta_epoch_wrapper_set_log_func (epochs, eta_keymod_log);
    }
  wrapper = epochs;
  g_mutex_unlock (&epochs_lock);
  return wrapper;
}

/* The size of the blob get_blob last wrote: get_key_sig runs on it before
 * libecryptfs has set data_len (it is still 0 then). */
static size_t built_blob_len;

static int
token_agent_init (char **alias)
{
  *alias = strdup (ETA_KEYMOD_ALIAS);
  if (*alias == NULL)
    return -ENOMEM;
  /* Cheap and infallible: no bus, no threads here (see ECRYPTFS-FACTS). */
  eta_keymod_config_load (&config);
  /* A module loaded again in the same process (it is never unloaded). */
  g_mutex_lock (&epochs_lock);
  if (epochs != NULL)
    eta_epoch_wrapper_set_limits (epochs, config.epoch_seconds, config.epoch_files);
  g_mutex_unlock (&epochs_lock);
  return 0;
}

static int
token_agent_get_params (struct key_mod_param **params_out, uint32_t *num_params)
{
  *params_out = params;
  *num_params = N_PARAMS;
  return 0;
}

static const char *
param_value (struct key_mod_param_val *vals, uint32_t num_vals, int index)
{
  if (vals == NULL || (uint32_t) index >= num_vals || vals[index].val == NULL
      || strcmp (vals[index].val, "none") == 0 || vals[index].val[0] == '\0')
    return NULL;
  return vals[index].val;
}

/* The public key behind a get_blob call: an explicit file wins, then the
 * agent, then the record saved at enrolment. */
static EtaPublicKeyRecord *
find_public_key (const char *fingerprint, const char *pubkey_path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) saved_error = NULL;
  EtaPublicKeyRecord *record;

  if (pubkey_path != NULL)
    {
      record = eta_public_key_load_file (pubkey_path, &error);
      if (record == NULL)
        eta_keymod_log (LOG_ERR, "cannot use pubkey=%s: %s", pubkey_path, error->message);
      else if (!g_str_has_prefix (record->fingerprint_hex, fingerprint))
        {
          eta_keymod_log (LOG_ERR, "pubkey=%s has fingerprint %s, not %s", pubkey_path,
                          record->fingerprint_hex, fingerprint);
          g_clear_pointer (&record, eta_public_key_record_free);
        }
      return record;
    }

  record = eta_agent_client_resolve (fingerprint, config.resolve_timeout_ms, &error);
  if (record != NULL)
    return record;
  record = eta_public_key_find_record (fingerprint, &saved_error);
  if (record != NULL)
    return record;
  eta_keymod_log (LOG_ERR, "key %s: the agent could not resolve it (%s) and %s",
                  fingerprint, error->message, saved_error->message);
  return NULL;
}

static int
token_agent_get_blob (unsigned char *blob, size_t *blob_size,
                      struct key_mod_param_val *vals, uint32_t num_vals)
{
  /* libecryptfs calls twice (size, then fill); resolve once. */
  static EtaPublicKeyRecord *pending;
  g_autofree gchar *fingerprint = NULL;
  const char *fingerprint_param = param_value (vals, num_vals, PARAM_FINGERPRINT);
  const char *padding_param = param_value (vals, num_vals, PARAM_PADDING);
  const char *pubkey_param = param_value (vals, num_vals, PARAM_PUBKEY);
  const char *wrap_param = param_value (vals, num_vals, PARAM_WRAP);
  EtaPadding padding = eta_padding_from_string (padding_param);
  EtaWrap wrap = eta_wrap_from_string (wrap_param);
  size_t size;

  if (fingerprint_param == NULL)
    {
      eta_keymod_log (LOG_ERR, "no fingerprint= parameter given");
      return ECRYPTFS_KEY_MOD_INSUFFICIENT_PARAMS;
    }
  fingerprint = g_ascii_strdown (fingerprint_param, -1);
  if (!eta_fingerprint_prefix_is_valid (fingerprint))
    {
      eta_keymod_log (LOG_ERR, "fingerprint=%s is not 16 to 64 hex digits", fingerprint_param);
      return ECRYPTFS_KEY_MOD_BADPARAM;
    }
  if (padding == 0)
    {
      eta_keymod_log (LOG_ERR, "padding=%s is unknown (use oaep or pkcs1)", padding_param);
      return ECRYPTFS_KEY_MOD_BADPARAM;
    }
  if (wrap == 0)
    {
      eta_keymod_log (LOG_ERR, "wrap=%s is unknown (use epoch or per-file)", wrap_param);
      return ECRYPTFS_KEY_MOD_BADPARAM;
    }

  if (pending == NULL || !g_str_has_prefix (pending->fingerprint_hex, fingerprint))
    {
      g_clear_pointer (&pending, eta_public_key_record_free);
      pending = find_public_key (fingerprint, pubkey_param);
      if (pending == NULL)
        return ECRYPTFS_KEY_MOD_NO_SUCH_KEY;
    }

  size = eta_blob_size (g_bytes_get_size (pending->spki), pending->key_label,
                        pending->token_label);
  if (size == 0)
    {
      eta_keymod_log (LOG_ERR, "key %s: public key too large for a blob", fingerprint);
      g_clear_pointer (&pending, eta_public_key_record_free);
      return ECRYPTFS_KEY_MOD_DATA_TOO_LARGE;
    }
  if (blob == NULL)
    {
      *blob_size = size;
      return 0;
    }
  /* libecryptfs passes an uninitialised *blob_size with the buffer: it
   * allocated what the size query said, which is @size. */
  *blob_size = eta_blob_write_with_wrap (blob, padding, wrap,
                                         g_bytes_get_data (pending->spki, NULL),
                                         g_bytes_get_size (pending->spki), pending->key_label,
                                         pending->token_label);
  built_blob_len = *blob_size;
  g_clear_pointer (&pending, eta_public_key_record_free);
  return *blob_size ? 0 : ECRYPTFS_KEY_MOD_DATA_TOO_LARGE;
}

static int
token_agent_get_key_data (unsigned char *key_data, size_t *key_data_len,
                          unsigned char *blob)
{
  /* Public-key auth tokens carry no key data; the blob is everything. */
  *key_data_len = 0;
  return 0;
}

/* How many bytes of the blob libecryptfs holds. It hands the module only a
 * pointer, to the data of the auth token's struct ecryptfs_private_key; the
 * length is the data_len beside it, which libecryptfs wrote when it made the
 * token and itself relies on (it wipes that many bytes when it frees the
 * payload). The blob's own length field is only the writer's word. */
static size_t
held_blob_len (const unsigned char *data)
{
  const unsigned char *private_key = data - offsetof (struct ecryptfs_private_key, data);
  uint32_t data_len;

  memcpy (&data_len, private_key + offsetof (struct ecryptfs_private_key, data_len),
          sizeof data_len);
  return data_len;
}

static int
parse_blob_logged (const unsigned char *data, size_t len, EtaBlob *blob)
{
  EtaBlobStatus status = eta_blob_parse_layout (data, len, blob);
  if (status != ETA_BLOB_OK)
    eta_keymod_log (LOG_ERR, "%s", eta_blob_status_to_string (status));
  return status == ETA_BLOB_OK ? 0 : -EINVAL;
}

/* Parsed public keys by fingerprint. Parsing an SPKI costs about ten RSA
 * public operations with OpenSSL 3, and ecryptfsd asks for every wrap twice;
 * the blob's fingerprint was checked against its SPKI, so it names the key. */
static GMutex key_cache_lock;
static GHashTable *key_cache;

#define KEY_CACHE_MAX 64

static EVP_PKEY *
public_key_for_blob (const EtaBlob *blob)
{
  char hex[2 * ETA_FINGERPRINT_LEN + 1];
  const unsigned char *p = blob->spki;
  EVP_PKEY *key;

  eta_key_to_hex (blob->fingerprint, ETA_FINGERPRINT_LEN, hex);
  g_mutex_lock (&key_cache_lock);
  if (key_cache == NULL)
    key_cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) EVP_PKEY_free);
  key = g_hash_table_lookup (key_cache, hex);
  if (key == NULL)
    {
      key = d2i_PUBKEY (NULL, &p, (long) blob->spki_len);
      if (key != NULL && (p != blob->spki + blob->spki_len
                          || EVP_PKEY_get_base_id (key) != EVP_PKEY_RSA))
        g_clear_pointer (&key, EVP_PKEY_free);
      if (key == NULL)
        eta_keymod_log (LOG_ERR, "%s", eta_blob_status_to_string (ETA_BLOB_ERROR_KEY));
      else
        {
          if (g_hash_table_size (key_cache) >= KEY_CACHE_MAX)
            g_hash_table_remove_all (key_cache);
          g_hash_table_insert (key_cache, g_strdup (hex), key);
        }
    }
  if (key != NULL)
    EVP_PKEY_up_ref (key);
  g_mutex_unlock (&key_cache_lock);
  return key;
}

static int
token_agent_get_key_sig (unsigned char *sig, unsigned char *blob_data)
{
  EtaBlob blob;
  size_t len = held_blob_len (blob_data);

  /* data_len is 0 while libecryptfs builds the token from the blob our
   * get_blob has just written into a buffer of that size. */
  if (parse_blob_logged (blob_data, len != 0 ? len : built_blob_len, &blob) != 0)
    return -EINVAL;
  /* Once per key and mount: the full check is affordable here. */
  if (eta_key_sig_from_spki (blob.spki, blob.spki_len, (char *) sig) != 0)
    return -EINVAL;
  return 0;
}

/* How many bytes encrypt writes for @blob's key and a payload of @from_size
 * bytes: an epoch packet, or plain RSA (*per_file) when the blob asks for it
 * or when the packet would not fit a tag 1 packet (RSA 4096). */
static size_t
wrapped_size (const EtaBlob *blob, EVP_PKEY *key, size_t from_size, gboolean *per_file)
{
  size_t modulus_bytes = (size_t) EVP_PKEY_get_size (key);
  size_t size = 0;

  if (blob->wrap == ETA_WRAP_EPOCH)
    size = eta_epoch_wrapper_packet_size (modulus_bytes, from_size);
  *per_file = size == 0;
  return size != 0 ? size : modulus_bytes;
}

static int
token_agent_encrypt (char *to, size_t *to_size, char *from, size_t from_size,
                     unsigned char *blob_data, int blob_type)
{
  EtaBlob blob;
  EVP_PKEY *key = NULL;
  gboolean per_file;
  size_t size, out_len;
  int rc = -EINVAL;

  if (parse_blob_logged (blob_data, held_blob_len (blob_data), &blob) != 0)
    return -EINVAL;
  if (from_size == 0 || from_size > ECRYPTFS_MAX_KEY_BYTES + 3)
    {
      eta_keymod_log (LOG_ERR, "refusing to wrap a %zu-byte payload", from_size);
      return -EINVAL;
    }
  key = public_key_for_blob (&blob);
  if (key == NULL)
    return -EINVAL;
  /* The size query must name the size the second call writes. */
  size = wrapped_size (&blob, key, from_size, &per_file);
  if (to == NULL)
    {
      *to_size = size;
      EVP_PKEY_free (key);
      return 0;
    }
  if (*to_size < size)
    goto out;

  if (per_file)
    {
      out_len = *to_size;
      if (eta_rsa_encrypt (key, blob.padding, (const uint8_t *) from, from_size,
                           (uint8_t *) to, &out_len) != 0)
        {
          eta_keymod_log (LOG_ERR, "RSA encryption with key %s failed", blob.key_label);
          goto out;
        }
    }
  else
    {
      out_len = eta_epoch_wrapper_wrap (get_epochs (), blob.fingerprint, blob.padding, key,
                                        (const uint8_t *) from, from_size, (uint8_t *) to,
                                        *to_size);
      if (out_len == 0)
        {
          eta_keymod_log (LOG_ERR, "epoch wrapping with key %s failed", blob.key_label);
          goto out;
        }
    }
  *to_size = out_len;
  rc = 0;

out:
  EVP_PKEY_free (key);
  return rc;
}

static const char *
explain_unwrap_error (const GError *error)
{
  g_autofree gchar *remote = g_dbus_error_get_remote_error (error);

  if (remote == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
        return "the agent did not answer in time";
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        return "no session bus";
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED))
        return "another user's process holds the agent's bus name";
      return "cannot reach the agent";
    }
  if (g_str_equal (remote, "org.freedesktop.DBus.Error.ServiceUnknown")
      || g_str_equal (remote, "org.freedesktop.DBus.Error.NameHasNoOwner"))
    return "the agent is not running";
  if (g_str_equal (remote, "org.freedesktop.DBus.Error.NoReply")
      || g_str_equal (remote, "org.freedesktop.DBus.Error.Timeout")
      || g_str_equal (remote, "org.freedesktop.DBus.Error.TimedOut"))
    return "the agent did not answer in time";
  if (g_str_equal (remote, ETA_ERROR_PREFIX "Cancelled"))
    return "the PIN prompt was cancelled";
  if (g_str_equal (remote, ETA_ERROR_PREFIX "Locked"))
    return "the token is locked and its PIN prompt is still open; open the file again after "
           "entering the PIN";
  if (g_str_equal (remote, ETA_ERROR_PREFIX "KeyNotFound")
      || g_str_equal (remote, ETA_ERROR_PREFIX "TokenAbsent"))
    return "key not found on any present token";
  return "the agent could not unwrap the key";
}

/* After an unwrap ran out of time (most likely behind a PIN prompt), later
 * unwraps ask the agent not to prompt or queue, until one succeeds or this
 * long has passed. */
#define PROMPT_PENDING_US (120 * G_USEC_PER_SEC)
static gint64 prompt_pending_until;

static gboolean
unwrap_timed_out (const GError *error)
{
  g_autofree gchar *remote = g_dbus_error_get_remote_error (error);

  if (remote == NULL)
    return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  return g_str_equal (remote, "org.freedesktop.DBus.Error.NoReply")
         || g_str_equal (remote, "org.freedesktop.DBus.Error.Timeout")
         || g_str_equal (remote, "org.freedesktop.DBus.Error.TimedOut");
}

static int
token_agent_decrypt (char *to, size_t *to_size, char *from, size_t from_size,
                     unsigned char *blob_data, int blob_type)
{
  g_autoptr (GError) error = NULL;
  EtaBlob blob;
  char fingerprint_hex[2 * ETA_FINGERPRINT_LEN + 1];
  gsize plaintext_len;
  gboolean interactive;

  if (parse_blob_logged (blob_data, held_blob_len (blob_data), &blob) != 0)
    return -EINVAL;
  if (from_size == 0 || from_size > ECRYPTFS_MAX_ENCRYPTED_KEY_BYTES)
    {
      eta_keymod_log (LOG_ERR, "refusing a %zu-byte wrapped key", from_size);
      return -EINVAL;
    }
  /* The size query is answered here: the plaintext is never longer than the
   * ciphertext, and asking the agent twice would cost two token operations. */
  if (to == NULL)
    {
      *to_size = from_size;
      return 0;
    }

  eta_key_to_hex (blob.fingerprint, ETA_FINGERPRINT_LEN, fingerprint_hex);
  plaintext_len = *to_size;
  /* While a PIN prompt that outlived the budget may still be open, do not
   * wait behind it: ecryptfsd serves one request at a time, and a burst of
   * opens, each waiting the whole budget, would let the kernel's queue expire
   * into error frames that end the daemon. */
  interactive = g_get_monotonic_time () >= prompt_pending_until;
  if (!eta_agent_client_unwrap (fingerprint_hex, blob.padding,
                                g_utf8_validate (blob.key_label, -1, NULL) ? blob.key_label : NULL,
                                g_utf8_validate (blob.token_label, -1, NULL) ? blob.token_label
                                                                             : NULL,
                                interactive,
                                (const guint8 *) from, from_size,
                                config.unwrap_timeout_ms,
                                (guint8 *) to, &plaintext_len, &error))
    {
      eta_keymod_log (LOG_ERR, "unwrap with key %.16s (%s) failed: %s: %s",
                      fingerprint_hex, blob.key_label,
                      explain_unwrap_error (error), error->message);
      OPENSSL_cleanse (to, *to_size);
      if (unwrap_timed_out (error))
        prompt_pending_until = g_get_monotonic_time () + PROMPT_PENDING_US;
      return -EIO;
    }
  prompt_pending_until = 0;
  *to_size = plaintext_len;
  return 0;
}

static int
token_agent_destroy (unsigned char *blob)
{
  return 0;
}

static int
token_agent_finalize (void)
{
  eta_agent_client_disconnect ();
  /* Every epoch key wiped (ecryptfsd on SIGTERM never gets here; its pages
   * go with the process and were never in a core dump). */
  g_mutex_lock (&epochs_lock);
  g_clear_pointer (&epochs, eta_epoch_wrapper_free);
  g_mutex_unlock (&epochs_lock);
  g_mutex_lock (&key_cache_lock);
  g_clear_pointer (&key_cache, g_hash_table_unref);
  g_mutex_unlock (&key_cache_lock);
  return 0;
}

static struct ecryptfs_key_mod_ops token_agent_ops = {
  .init = token_agent_init,
  .get_params = token_agent_get_params,
  .get_blob = token_agent_get_blob,
  .get_key_data = token_agent_get_key_data,
  .get_key_sig = token_agent_get_key_sig,
  .encrypt = token_agent_encrypt,
  .decrypt = token_agent_decrypt,
  .destroy = token_agent_destroy,
  .finalize = token_agent_finalize,
};

EXPORT struct ecryptfs_key_mod_ops *
get_key_mod_ops (void)
{
  return &token_agent_ops;
}

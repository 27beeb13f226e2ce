/* See eta-unwrap-arguments.h. */
#define G_LOG_DOMAIN "eta-unwrap-arguments"

#include "config.h"

#include "eta-unwrap-arguments.h"

#include <string.h>

#include "eta-agent-error.h"
#include "eta-public-key-file.h"

void
eta_unwrap_arguments_free (EtaUnwrapArguments *arguments)
{
  if (arguments == NULL)
    return;
  g_free (arguments->fingerprint);
  g_clear_pointer (&arguments->wrapped, g_bytes_unref);
  eta_seal_key_free (arguments->seal_key);
  g_free (arguments->requester);
  g_free (arguments->key_label);
  g_free (arguments->token_label);
  g_free (arguments);
}

gchar *
eta_unwrap_arguments_shown_text (const gchar *text, gsize max_bytes)
{
  return g_utf8_make_valid (text, MIN (strlen (text), max_bytes));
}

static gboolean
check_fingerprint (const gchar *fingerprint, GError **error)
{
  if (eta_fingerprint_prefix_is_valid (fingerprint))
    return TRUE;
  g_set_error_literal (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_INVALID_ARGUMENT,
                       "fingerprint must be 16 to 64 lowercase hex digits");
  return FALSE;
}

/* The unwrap's own arguments, in the order the service has always checked
 * them: the cheap checks first, the key agreement last, so that a key nothing
 * could be sealed to costs no token operation and no PIN prompt. */
static gboolean
check_unwrap (EtaUnwrapArguments *arguments, const gchar *padding_name, GVariant *wrapped_key,
              GVariant *session_public_key, GError **error)
{
  gsize wrapped_len;

  arguments->padding = eta_padding_from_string (padding_name);
  arguments->wrapped = g_variant_get_data_as_bytes (wrapped_key);
  if (arguments->padding == 0)
    {
      g_set_error_literal (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_INVALID_ARGUMENT,
                           "padding must be \"oaep\" or \"pkcs1\"");
      return FALSE;
    }
  wrapped_len = g_bytes_get_size (arguments->wrapped);
  if (wrapped_len == 0 || wrapped_len > ETA_UNWRAP_MAX_WRAPPED_KEY_BYTES)
    {
      g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_INVALID_ARGUMENT,
                   "the wrapped key must be 1 to %d bytes, not %zu",
                   ETA_UNWRAP_MAX_WRAPPED_KEY_BYTES, wrapped_len);
      return FALSE;
    }
  if (g_variant_get_size (session_public_key) != ETA_SEAL_PUBLIC_KEY_LEN)
    {
      g_set_error (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_INVALID_ARGUMENT,
                   "the session public key must be %d bytes", ETA_SEAL_PUBLIC_KEY_LEN);
      return FALSE;
    }
  arguments->seal_key = eta_seal_key_new (g_variant_get_data (session_public_key),
                                          g_variant_get_size (session_public_key));
  if (arguments->seal_key == NULL)
    {
      g_set_error_literal (error, ETA_AGENT_ERROR, ETA_AGENT_ERROR_INVALID_ARGUMENT,
                           "the session public key is not a usable X25519 key");
      return FALSE;
    }
  return TRUE;
}

/* Who asks, from the details: nothing there is required, and an entry of
 * another type than documented counts as absent. */
static void
read_details (EtaUnwrapArguments *arguments, GVariant *details)
{
  const gchar *text = NULL;

  if (g_variant_lookup (details, "requester", "&s", &text))
    arguments->requester = eta_unwrap_arguments_shown_text (text, ETA_UNWRAP_REQUESTER_MAX_BYTES);
  if (!g_variant_lookup (details, "pid", "u", &arguments->pid))
    arguments->pid = 0;
  if (!g_variant_lookup (details, "timeout-ms", "u", &arguments->timeout_ms))
    arguments->timeout_ms = 0;
  if (g_variant_lookup (details, "key-label", "&s", &text))
    arguments->key_label = eta_unwrap_arguments_shown_text (text, ETA_UNWRAP_LABEL_MAX_BYTES);
  if (g_variant_lookup (details, "token-label", "&s", &text))
    arguments->token_label = eta_unwrap_arguments_shown_text (text, ETA_UNWRAP_LABEL_MAX_BYTES);
  arguments->interactive = TRUE;
  g_variant_lookup (details, "interactive", "b", &arguments->interactive);
}

static const GVariantType *
method_type (EtaUnwrapMethod method)
{
  switch (method)
    {
    case ETA_UNWRAP_METHOD_RESOLVE_KEY: return G_VARIANT_TYPE ("(s)");
    case ETA_UNWRAP_METHOD_UNWRAP: return G_VARIANT_TYPE ("(ssayaya{sv})");
    case ETA_UNWRAP_METHOD_UNLOCK: return G_VARIANT_TYPE ("(sa{sv})");
    }
  return NULL;
}

EtaUnwrapArguments *
eta_unwrap_arguments_parse (EtaUnwrapMethod method, GVariant *parameters, GError **error)
{
  g_autoptr (EtaUnwrapArguments) arguments = NULL;
  g_autoptr (GVariant) wrapped_key = NULL;
  g_autoptr (GVariant) session_public_key = NULL;
  g_autoptr (GVariant) details = NULL;
  const gchar *fingerprint = NULL;
  const gchar *padding_name = NULL;
  const GVariantType *type = method_type (method);

  /* The bus checked the signature against the introspection data. */
  g_return_val_if_fail (type != NULL, NULL);
  g_return_val_if_fail (parameters != NULL && g_variant_is_of_type (parameters, type), NULL);

  switch (method)
    {
    case ETA_UNWRAP_METHOD_RESOLVE_KEY:
      g_variant_get (parameters, "(&s)", &fingerprint);
      break;
    case ETA_UNWRAP_METHOD_UNWRAP:
      g_variant_get (parameters, "(&s&s@ay@ay@a{sv})", &fingerprint, &padding_name,
                     &wrapped_key, &session_public_key, &details);
      break;
    case ETA_UNWRAP_METHOD_UNLOCK:
      g_variant_get (parameters, "(&s@a{sv})", &fingerprint, &details);
      break;
    }

  if (!check_fingerprint (fingerprint, error))
    return NULL;
  arguments = g_new0 (EtaUnwrapArguments, 1);
  arguments->fingerprint = g_strdup (fingerprint);
  arguments->interactive = TRUE;
  if (method == ETA_UNWRAP_METHOD_UNWRAP
      && !check_unwrap (arguments, padding_name, wrapped_key, session_public_key, error))
    return NULL;
  if (details != NULL)
    read_details (arguments, details);
  return g_steal_pointer (&arguments);
}

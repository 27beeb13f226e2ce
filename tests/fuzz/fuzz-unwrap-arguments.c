/* Fuzz target: the agent's checks of the arguments of ResolveKey, Unwrap and
 * Unlock, eta_unwrap_arguments_parse (agent/eta-unwrap-arguments.c): the
 * fingerprint, the padding, the wrapped key's and the session key's lengths,
 * the session key itself, and the details dict (requester, pid, timeout-ms,
 * interactive, key-label, token-label).
 *
 * Input: one byte choosing the method, then GVariant serialised data of the
 * method's in-signature. It is checked as it is (GLib reads untrusted data in
 * any form) and in normal form (what GDBus builds from a message), and both
 * must give the same answer. */
#include <string.h>

#include "eta-agent-error.h"
#include "eta-unwrap-arguments.h"
#include "fuzz-common.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static const gchar * const signatures[] = { "(s)", "(ssayaya{sv})", "(sa{sv})" };
G_STATIC_ASSERT (ETA_UNWRAP_METHOD_RESOLVE_KEY == 0 && ETA_UNWRAP_METHOD_UNWRAP == 1
                 && ETA_UNWRAP_METHOD_UNLOCK == 2);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  eta_fuzz_init ();
  return 0;
}

static void
check_text (const gchar *text, gsize max_bytes)
{
  if (text == NULL)
    return;
  ETA_FUZZ_CHECK (g_utf8_validate (text, -1, NULL));
  /* Each byte kept becomes at most one replacement character (3 bytes). */
  ETA_FUZZ_CHECK (strlen (text) <= 3 * max_bytes);
}

static EtaUnwrapArguments *
check_parse (EtaUnwrapMethod method, GVariant *parameters, GError **error)
{
  EtaUnwrapArguments *arguments = eta_unwrap_arguments_parse (method, parameters, error);

  if (arguments == NULL)
    {
      ETA_FUZZ_CHECK (error != NULL && *error != NULL);
      ETA_FUZZ_CHECK (g_error_matches (*error, ETA_AGENT_ERROR,
                                       ETA_AGENT_ERROR_INVALID_ARGUMENT));
      return NULL;
    }
  ETA_FUZZ_CHECK (*error == NULL);
  ETA_FUZZ_CHECK (eta_fingerprint_prefix_is_valid (arguments->fingerprint));
  if (method == ETA_UNWRAP_METHOD_UNWRAP)
    {
      gsize wrapped_len = g_bytes_get_size (arguments->wrapped);

      ETA_FUZZ_CHECK (arguments->padding == ETA_PADDING_OAEP
                      || arguments->padding == ETA_PADDING_PKCS1);
      ETA_FUZZ_CHECK (wrapped_len > 0 && wrapped_len <= ETA_UNWRAP_MAX_WRAPPED_KEY_BYTES);
      ETA_FUZZ_CHECK (arguments->seal_key != NULL);
    }
  else
    ETA_FUZZ_CHECK (arguments->wrapped == NULL && arguments->seal_key == NULL);
  check_text (arguments->requester, ETA_UNWRAP_REQUESTER_MAX_BYTES);
  check_text (arguments->key_label, ETA_UNWRAP_LABEL_MAX_BYTES);
  check_text (arguments->token_label, ETA_UNWRAP_LABEL_MAX_BYTES);
  return arguments;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  EtaUnwrapMethod method;
  g_autoptr (GVariant) parameters = NULL;
  g_autoptr (GVariant) normal = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) normal_error = NULL;
  g_autoptr (EtaUnwrapArguments) arguments = NULL;
  g_autoptr (EtaUnwrapArguments) normal_arguments = NULL;
  guint8 *bytes;

  if (size == 0)
    return 0;
  method = (EtaUnwrapMethod) (data[0] % G_N_ELEMENTS (signatures));
  bytes = eta_fuzz_dup_exact (data + 1, size - 1);
  parameters = g_variant_ref_sink (g_variant_new_from_data (G_VARIANT_TYPE (signatures[method]),
                                                            bytes, size - 1, FALSE, g_free,
                                                            bytes));
  normal = g_variant_get_normal_form (parameters);

  arguments = check_parse (method, parameters, &error);
  normal_arguments = check_parse (method, normal, &normal_error);
  ETA_FUZZ_CHECK ((arguments == NULL) == (normal_arguments == NULL));
  if (arguments == NULL)
    {
      ETA_FUZZ_CHECK (strcmp (error->message, normal_error->message) == 0);
      return 0;
    }
  ETA_FUZZ_CHECK (strcmp (arguments->fingerprint, normal_arguments->fingerprint) == 0);
  ETA_FUZZ_CHECK (arguments->padding == normal_arguments->padding);
  ETA_FUZZ_CHECK ((arguments->wrapped == NULL) == (normal_arguments->wrapped == NULL));
  ETA_FUZZ_CHECK (arguments->wrapped == NULL
                  || g_bytes_equal (arguments->wrapped, normal_arguments->wrapped));
  ETA_FUZZ_CHECK (g_strcmp0 (arguments->requester, normal_arguments->requester) == 0);
  ETA_FUZZ_CHECK (arguments->pid == normal_arguments->pid);
  ETA_FUZZ_CHECK (arguments->timeout_ms == normal_arguments->timeout_ms);
  ETA_FUZZ_CHECK (g_strcmp0 (arguments->key_label, normal_arguments->key_label) == 0);
  ETA_FUZZ_CHECK (g_strcmp0 (arguments->token_label, normal_arguments->token_label) == 0);
  ETA_FUZZ_CHECK (arguments->interactive == normal_arguments->interactive);
  return 0;
}

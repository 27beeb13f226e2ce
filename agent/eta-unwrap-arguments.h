/* The checks of what a caller passes to ResolveKey, Unwrap and Unlock of
 * org.ecryptfs.TokenAgent1, apart from the service so that they can be run
 * (and fuzzed) on any GVariant without a bus, a token or a prompt. The
 * contract is dbus/org.ecryptfs.TokenAgent1.xml. */
#pragma once

#include <glib.h>

#include "eta-blob.h"
#include "eta-seal.h"

G_BEGIN_DECLS

typedef enum
{
  ETA_UNWRAP_METHOD_RESOLVE_KEY,  /* (s) */
  ETA_UNWRAP_METHOD_UNWRAP,       /* (ssayaya{sv}) */
  ETA_UNWRAP_METHOD_UNLOCK,       /* (sa{sv}) */
} EtaUnwrapMethod;

/* What the checks let through. Strings are the callers' own, made valid
 * UTF-8 and cut to a length that fits a prompt. */
typedef struct
{
  gchar *fingerprint;       /* 16 to 64 lowercase hex digits */
  /* Unwrap only. */
  EtaPadding padding;
  GBytes *wrapped;          /* 1 to ETA_UNWRAP_MAX_WRAPPED_KEY_BYTES bytes */
  EtaSealKey *seal_key;     /* agreed with the caller's session key */
  /* The details of Unwrap and Unlock. */
  gchar *requester;         /* NULL when the caller did not say */
  guint32 pid;              /* 0 when the caller did not say */
  guint32 timeout_ms;       /* how long the caller waits; 0 when it did not say */
  gchar *key_label;         /* NULL when the caller did not say */
  gchar *token_label;       /* NULL when the caller did not say */
  gboolean interactive;     /* TRUE unless the caller said otherwise */
} EtaUnwrapArguments;

#define ETA_UNWRAP_MAX_WRAPPED_KEY_BYTES 512
/* Longest requester name and labels kept: enough for a prompt, and a caller
 * cannot make the agent hold or show megabytes. */
#define ETA_UNWRAP_REQUESTER_MAX_BYTES   64
#define ETA_UNWRAP_LABEL_MAX_BYTES       ETA_BLOB_LABEL_MAX

/* Checks @parameters, the in-arguments of @method (a tuple of the method's
 * signature, in normal form or not). Returns them, or NULL with an
 * ETA_AGENT_ERROR_INVALID_ARGUMENT error saying which argument is wrong. */
EtaUnwrapArguments *eta_unwrap_arguments_parse (EtaUnwrapMethod method, GVariant *parameters,
                                                GError **error);
void eta_unwrap_arguments_free (EtaUnwrapArguments *arguments);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EtaUnwrapArguments, eta_unwrap_arguments_free)

/* @text made valid UTF-8 from at most its first @max_bytes bytes: how a
 * caller's name or label is shown. */
gchar *eta_unwrap_arguments_shown_text (const gchar *text, gsize max_bytes);

G_END_DECLS

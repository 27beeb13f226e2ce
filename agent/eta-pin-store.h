/* PINs remembered in the login keyring (the Secret Service, through
 * libsecret), one item per token under the schema org.ecryptfs.TokenAgent.Pin,
 * keyed by the token's manufacturer, model, serial and label.
 *
 * Every call is asynchronous with a timeout: a missing, locked or hung
 * Secret Service must never hold up a prompt or a command. A PIN travels
 * only in an EtaSecret, and only over an encrypted Secret Service session;
 * none of these calls ever unlocks a keyring (no keyring prompt appears). */
#pragma once

#include <gio/gio.h>
#include <libsecret/secret.h>

#include "eta-secret.h"

G_BEGIN_DECLS

#define ETA_PIN_SCHEMA_NAME "org.ecryptfs.TokenAgent.Pin"

/* How long the agent waits for the Secret Service per call. */
#define ETA_PIN_STORE_TIMEOUT_MS 2500

const SecretSchema *eta_pin_store_get_schema (void);

/* A token as its remembered PIN is filed: pkcs11-helper's token id fields
 * (trailing blanks removed); none may be NULL. */
typedef struct
{
  const gchar *manufacturer;
  const gchar *model;
  const gchar *serial;
  const gchar *label;
} EtaPinStoreToken;

/* Looks up the PIN remembered for @token. Finishes with the PIN, or NULL:
 * with no error when nothing is remembered; with an error when the Secret
 * Service is missing or failed, the keyring holding the PIN is locked
 * (G_IO_ERROR_PERMISSION_DENIED), or after @timeout_ms
 * (G_IO_ERROR_TIMED_OUT). Callers take any NULL as "nothing remembered". */
void eta_pin_store_lookup_async (const EtaPinStoreToken *token, guint timeout_ms,
                                 GCancellable *cancellable, GAsyncReadyCallback callback,
                                 gpointer user_data);
EtaSecret *eta_pin_store_lookup_finish (GAsyncResult *result, GError **error);

/* Remembers @pin for @token in the default keyring, replacing an earlier
 * one, under a translated label naming the token. Fails when that keyring
 * is locked rather than asking to unlock it. */
void eta_pin_store_store_async (const EtaPinStoreToken *token, EtaSecret *pin,
                                guint timeout_ms, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data);
gboolean eta_pin_store_store_finish (GAsyncResult *result, GError **error);

/* Forgets the PIN remembered for @token. Finishes with the number of items
 * deleted (0 when there was none), or -1 with @error set. */
void eta_pin_store_delete_async (const EtaPinStoreToken *token, guint timeout_ms,
                                 GCancellable *cancellable, GAsyncReadyCallback callback,
                                 gpointer user_data);
gint eta_pin_store_delete_finish (GAsyncResult *result, GError **error);

/* Deletes every remembered PIN (unlocking the keyring if it has to, which
 * may show the keyring's own unlock prompt). Fails with G_IO_ERROR_TIMED_OUT
 * after @timeout_ms, or with libsecret's error when there is no Secret
 * Service. */
void eta_pin_store_forget_all_async (guint timeout_ms, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data);
/* The number of PINs deleted, or -1 with @error set. */
gint eta_pin_store_forget_all_finish (GAsyncResult *result, GError **error);

G_END_DECLS

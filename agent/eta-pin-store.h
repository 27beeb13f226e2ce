/* PINs remembered in the login keyring (the Secret Service, through
 * libsecret), one item per token under the schema org.ecryptfs.TokenAgent.Pin,
 * keyed by the token's manufacturer, model, serial and label.
 *
 * Every call is asynchronous with a timeout: a missing, locked or hung
 * Secret Service must never hold up a prompt or a command. */
#pragma once

#include <gio/gio.h>
#include <libsecret/secret.h>

G_BEGIN_DECLS

#define ETA_PIN_SCHEMA_NAME "org.ecryptfs.TokenAgent.Pin"

const SecretSchema *eta_pin_store_get_schema (void);

/* Deletes every remembered PIN (unlocking the keyring if it has to, which
 * may show the keyring's own unlock prompt). Fails with G_IO_ERROR_TIMED_OUT
 * after @timeout_ms, or with libsecret's error when there is no Secret
 * Service. */
void eta_pin_store_forget_all_async (guint timeout_ms, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data);
/* The number of PINs deleted, or -1 with @error set. */
gint eta_pin_store_forget_all_finish (GAsyncResult *result, GError **error);

G_END_DECLS

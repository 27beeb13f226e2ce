/* The key module's side of org.ecryptfs.TokenAgent1: finds the user's session
 * bus even when ecryptfsd was started without DBUS_SESSION_BUS_ADDRESS, keeps
 * one connection open (a connect costs far more than a call, notably from a
 * VM), and bounds every wait so that ecryptfsd answers the kernel in time. */
#pragma once

#include <gio/gio.h>

#include "eta-blob.h"
#include "eta-public-key-file.h"

/* The session bus address: $DBUS_SESSION_BUS_ADDRESS, else
 * $XDG_RUNTIME_DIR/bus, else /run/user/UID/bus; a socket found on disk is
 * used only if it belongs to the calling uid. */
gchar *eta_agent_client_find_bus_address (GError **error);

/* The unique name of the owner of org.ecryptfs.TokenAgent1 on @connection,
 * after checking with the bus that it runs as this process's uid; with
 * @start_agent the bus starts the agent first when the name has no owner.
 * G_IO_ERROR_PERMISSION_DENIED when another uid holds the name (the message
 * names its unique name, pid and uid); remote D-Bus errors otherwise. */
gchar *eta_agent_client_find_agent (GDBusConnection *connection, gboolean start_agent,
                                    gint timeout_ms, GError **error);

/* Asks the checked agent for the public key named by @fingerprint (a prefix
 * of at least 16 hex digits), and checks that the key it returns hashes to
 * a fingerprint with that prefix (G_IO_ERROR_INVALID_DATA otherwise). Other
 * errors are remote D-Bus errors or connection errors. */
EtaPublicKeyRecord *eta_agent_client_resolve (const gchar *fingerprint,
                                              guint timeout_ms, GError **error);

/* Unwraps @wrapped with the key @fingerprint_hex through the agent, within
 * @timeout_ms all told. @plaintext holds *@plaintext_len bytes on entry and
 * receives the key; it is wiped on failure. */
/* @key_label and @token_label (may be NULL) name the key in an insert-token
 * prompt when no present token holds it. Without @interactive the agent
 * answers at once, with Locked if it would have to ask for a PIN. */
gboolean eta_agent_client_unwrap (const gchar *fingerprint_hex, EtaPadding padding,
                                  const gchar *key_label, const gchar *token_label,
                                  gboolean interactive,
                                  const guint8 *wrapped, gsize wrapped_len,
                                  guint timeout_ms,
                                  guint8 *plaintext, gsize *plaintext_len,
                                  GError **error);

/* Drops the cached connection (the module's finalize). */
void eta_agent_client_disconnect (void);

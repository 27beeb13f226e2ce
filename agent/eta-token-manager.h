/* Everything the agent does with PKCS#11, through pkcs11-helper: loading the
 * allowed providers, finding keys by fingerprint across all tokens, and
 * decrypting on the token, asking for the PIN through an EtaPrompter.
 *
 * pkcs11-helper is called only from worker threads after start-up: it holds
 * its locks while the PIN hook waits for the person, and the main thread must
 * stay free to show the prompt. */
#pragma once

#include <gio/gio.h>

#include "eta-blob.h"
#include "eta-prompter.h"
#include "eta-secret.h"
#include "eta-token-key.h"

G_BEGIN_DECLS

#define ETA_TYPE_TOKEN_MANAGER (eta_token_manager_get_type ())
G_DECLARE_FINAL_TYPE (EtaTokenManager, eta_token_manager, ETA, TOKEN_MANAGER, GObject)

/* The providers loaded when none are configured: p11-kit's proxy, which loads
 * every module the system registered (OpenSC, SoftHSM2, vendors' modules).
 * Its path comes from config.h, as p11-kit's pkg-config file names it. */
#define ETA_DEFAULT_PROVIDER ETA_P11_KIT_PROXY

/* How often (ms) pkcs11-helper looks at the slots for tokens inserted and
 * pulled out: C_GetSlotList and C_GetTokenInfo on each provider. A change
 * shows within the moment a person takes to look at the screen, while an
 * idle agent wakes only twenty times a minute for a few cheap calls; the
 * PIN prompt of an early unlock follows right after the token is seen. */
#define ETA_TOKEN_SLOT_POLL_MS 3000

/* Loads each provider of the allow-list @providers. Only one manager may exist
 * per process (pkcs11-helper is global). @prompter may be NULL: then every
 * operation that needs a PIN fails with a clear error. */
EtaTokenManager *eta_token_manager_new (const gchar * const *providers,
                                        EtaPrompter *prompter, GError **error);

/* Remembered PINs (the login keyring, eta-pin-store.h): when allowed, a
 * token's remembered PIN is tried once before prompting, a wrong one is
 * forgotten, and the prompt offers to remember the PIN typed. Off until
 * set; also the property "allow-remember-pin", which the agent binds to the
 * site policy. Any thread. */
void eta_token_manager_set_allow_remember_pin (EtaTokenManager *self, gboolean allow);
gboolean eta_token_manager_get_allow_remember_pin (EtaTokenManager *self);

/* Who is asking, for the prompt. */
typedef struct
{
  const gchar *requester;
  guint pid;
  /* How the caller names the key, for an insert-token prompt (may be NULL). */
  const gchar *key_label;
  const gchar *token_label;
  /* Longest wait for the token to be inserted; 0 means do not ask. */
  guint insert_wait_ms;
  /* FALSE: never prompt nor wait behind a prompt; fail with Locked. */
  gboolean interactive;
  /* TRUE for the agent's own requests (an early unlock): cancelling its
   * prompt fails it alone, never the requests that came after it. */
  gboolean background;
  /* Monotonic µs at which the caller stops waiting; 0 when it did not say.
   * An insert-token prompt ends then (a token inserted later helps nobody);
   * a PIN prompt outlives it up to its own bound, since a PIN typed late
   * still unlocks the token for the next open. Cancelling the unwrap's
   * GCancellable says the caller is gone: its prompts end at once. */
  gint64 caller_deadline;
} EtaRequester;

void eta_token_manager_list_keys_async (EtaTokenManager *self, GCancellable *cancellable,
                                        GAsyncReadyCallback callback, gpointer user_data);
/* A GPtrArray of EtaTokenKey. */
GPtrArray *eta_token_manager_list_keys_finish (EtaTokenManager *self, GAsyncResult *result,
                                               GError **error);

void eta_token_manager_find_key_async (EtaTokenManager *self, const gchar *fingerprint,
                                       GCancellable *cancellable,
                                       GAsyncReadyCallback callback, gpointer user_data);
EtaTokenKey *eta_token_manager_find_key_finish (EtaTokenManager *self, GAsyncResult *result,
                                                GError **error);

void eta_token_manager_list_tokens_async (EtaTokenManager *self, GCancellable *cancellable,
                                          GAsyncReadyCallback callback, gpointer user_data);
/* A GVariant of type aa{sv} (see ListTokens in the D-Bus XML). */
GVariant *eta_token_manager_list_tokens_finish (EtaTokenManager *self, GAsyncResult *result,
                                                GError **error);

/* Decrypts @wrapped with the key @fingerprint (prefix allowed) on a token,
 * logging in through the prompter when needed. */
void eta_token_manager_unwrap_async (EtaTokenManager *self, const gchar *fingerprint,
                                     EtaPadding padding, GBytes *wrapped,
                                     const EtaRequester *requester,
                                     GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data);
/* Any thread but the main one, never waiting for a token, a prompt, a
 * worker or another PKCS#11 call: the payload of the epoch packet @wrapped
 * when the agent keeps its epoch key for @fingerprint and that key's token
 * is still logged in (one C_GetSessionInfo, made only while no other
 * PKCS#11 call of the agent's runs), with the key in @key_out. NULL in
 * every other case (not an epoch packet, K not kept, a token gone, a packet
 * that does not open, another call under way), which
 * eta_token_manager_unwrap_async answers in full. Counts as a use of the
 * token, as an unwrap does. */
EtaSecret *eta_token_manager_unwrap_kept (EtaTokenManager *self, const gchar *fingerprint,
                                          GBytes *wrapped, EtaTokenKey **key_out);
/* The plaintext, and in @key_out the key that decrypted it. */
EtaSecret *eta_token_manager_unwrap_finish (EtaTokenManager *self, GAsyncResult *result,
                                            EtaTokenKey **key_out, GError **error);

/* Logs in to the token holding @fingerprint now, prompting as an unwrap
 * would (insert-token wait, PIN, PIN pad), so that later unwraps need no
 * prompt. Succeeds at once when the token is already logged in. */
void eta_token_manager_unlock_async (EtaTokenManager *self, const gchar *fingerprint,
                                     const EtaRequester *requester, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data);
/* In @fingerprint_out the key's full fingerprint, in @token_label_out the
 * label of the token logged in to. */
gboolean eta_token_manager_unlock_finish (EtaTokenManager *self, GAsyncResult *result,
                                          gchar **fingerprint_out, gchar **token_label_out,
                                          GError **error);

/* Logs out of every token; the next unwrap asks for the PIN again. */
void eta_token_manager_lock_async (EtaTokenManager *self, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);
gboolean eta_token_manager_lock_finish (EtaTokenManager *self, GAsyncResult *result,
                                        GError **error);

/* Signals (main thread): "token-state-changed" (label, serial, state) with
 * state "logged-in" or "locked", or "present" / "absent" when a token is
 * inserted / pulled out (pkcs11-helper's slot events, every few seconds;
 * tokens present at start are not announced, and a token pulled out while
 * logged in is "locked" first); "unwrapped" (label, serial) after a
 * successful decryption with a key of that token (uses that come while one
 * is on its way to the main thread share it). */

G_END_DECLS

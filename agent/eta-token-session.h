/* The agent's own PKCS#11 session on a token, beside pkcs11-helper's.
 *
 * pkcs11-helper logs out and in again after any failed private-key
 * operation (to recover from a token pulled out and put back), which asks
 * for the PIN again: a ciphertext the key cannot decrypt would lock the
 * token. So the agent logs in through pkcs11-helper (its prompts, PIN
 * cache and PIN-pad handling) and decrypts in a session of its own on the
 * same module: PKCS#11 logins belong to the application, not the session,
 * so this session is logged in too, and a refused ciphertext only fails.
 *
 * The module is the one pkcs11-helper loaded and initialised (dlopen with
 * RTLD_NOLOAD; no second C_Initialize of a module; p11-kit's proxy, which
 * gives every caller an instance of its own, gets one for the agent). A
 * session is not thread-safe: its owner keeps one caller at a time. */
#pragma once

#include <glib.h>
#include <pkcs11-helper-1.0/pkcs11h-core.h>

G_BEGIN_DECLS

typedef struct _EtaTokenSession EtaTokenSession;

/* The slot of the token with @serial and @label (blank-padded or not) in
 * one of the already loaded @providers, its function list and its token
 * information: what eta_token_session_open and a look at the token's flags
 * need. FALSE when no provider shows it. Any thread. */
gboolean eta_token_slot_find (const gchar * const *providers, const gchar *serial,
                              const gchar *label, CK_FUNCTION_LIST_PTR *functions_out,
                              CK_SLOT_ID *slot_out, CK_TOKEN_INFO *info_out);

/* Drops the function lists looked up (finalising the proxy instances made
 * for the agent): before pkcs11-helper terminates, after every session was
 * freed. */
void eta_token_session_forget_providers (void);

/* A read-only session on that token; NULL with *rv set when there is none. */
EtaTokenSession *eta_token_session_open (const gchar * const *providers, const gchar *serial,
                                         const gchar *label, CK_RV *rv);
void eta_token_session_free (EtaTokenSession *session);

/* CKR_OK when the token is still there and logged in (one C_GetSessionInfo,
 * no token operation); CKR_USER_NOT_LOGGED_IN when it is there but locked;
 * the module's error when the session died (token pulled out). */
CK_RV eta_token_session_check_login (EtaTokenSession *session);

/* Decrypts @in with the private key whose CKA_ID is @id into @out
 * (*out_len bytes; set to the plaintext's length). */
CK_RV eta_token_session_decrypt (EtaTokenSession *session, const guint8 *id, gsize id_len,
                                 CK_MECHANISM *mechanism, const guint8 *in, gsize in_len,
                                 guint8 *out, gsize *out_len);

G_END_DECLS

/* What a PIN prompt must tell the person: which token, which key, who asks
 * and why, and how earlier tries went; and back from the prompt, whether
 * the person chose to remember the PIN. */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* What the token says about its PIN (CK_TOKEN_INFO flags), for the prompt. */
typedef enum
{
  ETA_PIN_FLAG_NONE = 0,
  ETA_PIN_FLAG_COUNT_LOW = 1 << 0,        /* CKF_USER_PIN_COUNT_LOW */
  ETA_PIN_FLAG_FINAL_TRY = 1 << 1,        /* CKF_USER_PIN_FINAL_TRY */
  ETA_PIN_FLAG_LOCKED = 1 << 2,           /* CKF_USER_PIN_LOCKED */
  ETA_PIN_FLAG_PROTECTED_PATH = 1 << 3,   /* CKF_PROTECTED_AUTHENTICATION_PATH: PIN pad */
} EtaPinFlags;

#define ETA_TYPE_PIN_REQUEST (eta_pin_request_get_type ())
G_DECLARE_FINAL_TYPE (EtaPinRequest, eta_pin_request, ETA, PIN_REQUEST, GObject)

EtaPinRequest *eta_pin_request_new (const gchar *token_label, const gchar *token_serial,
                                    const gchar *key_label, const gchar *fingerprint,
                                    const gchar *requester, guint requester_pid,
                                    guint retry);

const gchar *eta_pin_request_get_token_label (EtaPinRequest *self);
const gchar *eta_pin_request_get_token_serial (EtaPinRequest *self);
const gchar *eta_pin_request_get_key_label (EtaPinRequest *self);
const gchar *eta_pin_request_get_fingerprint (EtaPinRequest *self);
/* The first 16 hex digits, as shown to people. */
gchar *eta_pin_request_dup_short_fingerprint (EtaPinRequest *self);
const gchar *eta_pin_request_get_requester (EtaPinRequest *self);
guint eta_pin_request_get_requester_pid (EtaPinRequest *self);
/* 0 for the first try; more after a wrong PIN. */
guint eta_pin_request_get_retry (EtaPinRequest *self);

EtaPinFlags eta_pin_request_get_flags (EtaPinRequest *self);
void eta_pin_request_set_flags (EtaPinRequest *self, EtaPinFlags flags);
/* The eCryptfs mount points that use the key (may be empty, never NULL). */
const gchar * const *eta_pin_request_get_mounts (EtaPinRequest *self);
void eta_pin_request_set_mounts (EtaPinRequest *self, const gchar * const *mounts);

/* Whether the prompt may offer to remember the PIN in the login keyring
 * (the site allows it and a keyring answers). FALSE unless set. */
gboolean eta_pin_request_get_may_remember (EtaPinRequest *self);
void eta_pin_request_set_may_remember (EtaPinRequest *self, gboolean may_remember);
/* Set by the prompter with the PIN: the person chose to remember it. Read
 * by the agent once the prompt has ended. */
gboolean eta_pin_request_get_remember (EtaPinRequest *self);
void eta_pin_request_set_remember (EtaPinRequest *self, gboolean remember);
/* Set by the agent before it dismisses an insert-token prompt because the
 * token appeared (not because nobody waits any more). Any thread. */
gboolean eta_pin_request_get_token_found (EtaPinRequest *self);
void eta_pin_request_set_token_found (EtaPinRequest *self, gboolean found);

G_END_DECLS

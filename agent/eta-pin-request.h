/* What a PIN prompt must tell the person: which token, which key, who asks
 * and why, and how earlier tries went. Immutable once made. */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

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

G_END_DECLS

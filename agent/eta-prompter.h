/* The seam between the agent's core and whoever asks the person for a PIN:
 * the terminal prompter here, the GTK dialogs in ui/, a scripted one in tests.
 *
 * Outcomes are kept apart (as pinentry does): a PIN, or
 * ETA_AGENT_ERROR_CANCELLED, ETA_AGENT_ERROR_TIMED_OUT, or another error when
 * no prompt could be shown at all. */
#pragma once

#include <gio/gio.h>

#include "eta-pin-request.h"
#include "eta-secret.h"

G_BEGIN_DECLS

#define ETA_TYPE_PROMPTER (eta_prompter_get_type ())
G_DECLARE_INTERFACE (EtaPrompter, eta_prompter, ETA, PROMPTER, GObject)

struct _EtaPrompterInterface
{
  GTypeInterface parent_iface;

  void (*request_pin_async) (EtaPrompter *self, EtaPinRequest *request,
                             GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data);
  EtaSecret *(*request_pin_finish) (EtaPrompter *self, GAsyncResult *result, GError **error);

  void (*ask_for_token_async) (EtaPrompter *self, EtaPinRequest *request, GCancellable *dismiss,
                               GAsyncReadyCallback callback, gpointer user_data);
  gboolean (*ask_for_token_finish) (EtaPrompter *self, GAsyncResult *result, GError **error);
};

/* Called on the main thread. The PIN comes back in an EtaSecret, never a string. */
void eta_prompter_request_pin_async (EtaPrompter *self, EtaPinRequest *request,
                                     GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data);
EtaSecret *eta_prompter_request_pin_finish (EtaPrompter *self, GAsyncResult *result,
                                            GError **error);

/* Asks the person to insert the token named in @request. The agent ends the
 * prompt by cancelling @dismiss (the token appeared, or the wait timed out):
 * then it finishes with TRUE. The person pressing Cancel finishes with FALSE
 * and ETA_AGENT_ERROR_CANCELLED. Called on the main thread. */
void eta_prompter_ask_for_token_async (EtaPrompter *self, EtaPinRequest *request,
                                       GCancellable *dismiss, GAsyncReadyCallback callback,
                                       gpointer user_data);
gboolean eta_prompter_ask_for_token_finish (EtaPrompter *self, GAsyncResult *result,
                                            GError **error);

G_END_DECLS

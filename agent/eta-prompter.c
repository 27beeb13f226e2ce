/* See eta-prompter.h. */
#include "config.h"

#include "eta-prompter.h"

G_DEFINE_INTERFACE (EtaPrompter, eta_prompter, G_TYPE_OBJECT)

static void
eta_prompter_default_init (EtaPrompterInterface *iface)
{
}

void
eta_prompter_request_pin_async (EtaPrompter *self, EtaPinRequest *request,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (ETA_IS_PROMPTER (self));
  ETA_PROMPTER_GET_IFACE (self)->request_pin_async (self, request, cancellable,
                                                    callback, user_data);
}

EtaSecret *
eta_prompter_request_pin_finish (EtaPrompter *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (ETA_IS_PROMPTER (self), NULL);
  return ETA_PROMPTER_GET_IFACE (self)->request_pin_finish (self, result, error);
}

void
eta_prompter_ask_for_token_async (EtaPrompter *self, EtaPinRequest *request,
                                  GCancellable *dismiss, GAsyncReadyCallback callback,
                                  gpointer user_data)
{
  g_return_if_fail (ETA_IS_PROMPTER (self));
  ETA_PROMPTER_GET_IFACE (self)->ask_for_token_async (self, request, dismiss, callback,
                                                      user_data);
}

gboolean
eta_prompter_ask_for_token_finish (EtaPrompter *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (ETA_IS_PROMPTER (self), FALSE);
  return ETA_PROMPTER_GET_IFACE (self)->ask_for_token_finish (self, result, error);
}

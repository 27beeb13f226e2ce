/* See eta-pin-request.h. */
#include "config.h"

#include "eta-pin-request.h"

#include <glib/gi18n.h>

struct _EtaPinRequest
{
  GObject parent_instance;

  gchar *token_label;
  gchar *token_serial;
  gchar *key_label;
  gchar *fingerprint;
  gchar *requester;
  guint requester_pid;
  guint retry;
  EtaPinFlags flags;
  GStrv mounts;
  gboolean may_remember;
  gboolean remember;
  gint token_found;  /* atomic: set on a worker thread, read on the prompter's */
};

G_DEFINE_FINAL_TYPE (EtaPinRequest, eta_pin_request, G_TYPE_OBJECT)

static void
eta_pin_request_finalize (GObject *object)
{
  EtaPinRequest *self = ETA_PIN_REQUEST (object);

  g_free (self->token_label);
  g_free (self->token_serial);
  g_free (self->key_label);
  g_free (self->fingerprint);
  g_free (self->requester);
  g_strfreev (self->mounts);
  G_OBJECT_CLASS (eta_pin_request_parent_class)->finalize (object);
}

static void
eta_pin_request_class_init (EtaPinRequestClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = eta_pin_request_finalize;
}

static void
eta_pin_request_init (EtaPinRequest *self)
{
  self->mounts = g_new0 (gchar *, 1);
}

EtaPinRequest *
eta_pin_request_new (const gchar *token_label, const gchar *token_serial,
                     const gchar *key_label, const gchar *fingerprint,
                     const gchar *requester, guint requester_pid, guint retry)
{
  EtaPinRequest *self = g_object_new (ETA_TYPE_PIN_REQUEST, NULL);

  self->token_label = g_strdup (token_label ? token_label : "");
  self->token_serial = g_strdup (token_serial ? token_serial : "");
  self->key_label = g_strdup (key_label ? key_label : "");
  self->fingerprint = g_strdup (fingerprint ? fingerprint : "");
  self->requester = g_strdup (requester ? requester : _("unknown program"));
  self->requester_pid = requester_pid;
  self->retry = retry;
  return self;
}

const gchar *eta_pin_request_get_token_label (EtaPinRequest *self) { return self->token_label; }
const gchar *eta_pin_request_get_token_serial (EtaPinRequest *self) { return self->token_serial; }
const gchar *eta_pin_request_get_key_label (EtaPinRequest *self) { return self->key_label; }
const gchar *eta_pin_request_get_fingerprint (EtaPinRequest *self) { return self->fingerprint; }
const gchar *eta_pin_request_get_requester (EtaPinRequest *self) { return self->requester; }
guint eta_pin_request_get_requester_pid (EtaPinRequest *self) { return self->requester_pid; }
guint eta_pin_request_get_retry (EtaPinRequest *self) { return self->retry; }

gchar *
eta_pin_request_dup_short_fingerprint (EtaPinRequest *self)
{
  return g_strndup (self->fingerprint, 16);
}

EtaPinFlags eta_pin_request_get_flags (EtaPinRequest *self) { return self->flags; }
void eta_pin_request_set_flags (EtaPinRequest *self, EtaPinFlags flags) { self->flags = flags; }
const gchar * const *eta_pin_request_get_mounts (EtaPinRequest *self)
{
  return (const gchar * const *) self->mounts;
}

void
eta_pin_request_set_mounts (EtaPinRequest *self, const gchar * const *mounts)
{
  g_strfreev (self->mounts);
  self->mounts = mounts ? g_strdupv ((gchar **) mounts) : g_new0 (gchar *, 1);
}

gboolean eta_pin_request_get_may_remember (EtaPinRequest *self) { return self->may_remember; }
void eta_pin_request_set_may_remember (EtaPinRequest *self, gboolean may_remember)
{
  self->may_remember = may_remember;
}
gboolean eta_pin_request_get_token_found (EtaPinRequest *self)
{
  return g_atomic_int_get (&self->token_found);
}
void eta_pin_request_set_token_found (EtaPinRequest *self, gboolean found)
{
  g_atomic_int_set (&self->token_found, found);
}
gboolean eta_pin_request_get_remember (EtaPinRequest *self) { return self->remember; }
void eta_pin_request_set_remember (EtaPinRequest *self, gboolean remember)
{
  self->remember = remember;
}

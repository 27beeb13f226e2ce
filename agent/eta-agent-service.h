/* org.ecryptfs.TokenAgent1 on the session bus: checks each caller, checks
 * each argument, hands the work to EtaTokenManager and seals what it returns.
 * The contract is dbus/org.ecryptfs.TokenAgent1.xml. */
#pragma once

#include <gio/gio.h>

#include "eta-activity-log.h"
#include "eta-policy.h"
#include "eta-token-manager.h"

G_BEGIN_DECLS

#define ETA_TYPE_AGENT_SERVICE (eta_agent_service_get_type ())
G_DECLARE_FINAL_TYPE (EtaAgentService, eta_agent_service, ETA, AGENT_SERVICE, GObject)

/* @policy (may be NULL) tells when logins end, for ListTokens. */
EtaAgentService *eta_agent_service_new (EtaTokenManager *manager, EtaPolicy *policy);
gboolean eta_agent_service_export (EtaAgentService *self, GDBusConnection *connection,
                                   const gchar *object_path, GError **error);
void eta_agent_service_unexport (EtaAgentService *self);
/* The unwraps the service answered lately (borrowed). */
EtaActivityLog *eta_agent_service_get_activity_log (EtaAgentService *self);

G_END_DECLS

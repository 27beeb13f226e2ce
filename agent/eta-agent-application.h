/* The agent program: a unique GApplication named org.ecryptfs.TokenAgent1 on
 * the session bus, so a second start hands over to the first and a D-Bus
 * call can start it. Owns the token manager and the D-Bus service. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ETA_TYPE_AGENT_APPLICATION (eta_agent_application_get_type ())
G_DECLARE_FINAL_TYPE (EtaAgentApplication, eta_agent_application, ETA, AGENT_APPLICATION,
                      GApplication)

EtaAgentApplication *eta_agent_application_new (void);

G_END_DECLS

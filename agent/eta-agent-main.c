/* ecryptfs-token-agent: the per-session agent. */
#include "config.h"

#include "eta-agent-application.h"
#include "eta-i18n.h"
#include "eta-secret.h"

int
main (int argc, char **argv)
{
  g_autoptr (EtaAgentApplication) application = NULL;

  /* Before anything secret exists in this process. */
  eta_secret_harden_process ();
  /* Before the option descriptions and any prompt are made. */
  eta_i18n_init ();
  g_set_prgname ("ecryptfs-token-agent");
  application = eta_agent_application_new ();
  return g_application_run (G_APPLICATION (application), argc, argv);
}

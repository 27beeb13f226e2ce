/* ecryptfs-token-agent: the per-session agent. */
#include <locale.h>

#include "eta-agent-application.h"
#include "eta-secret.h"

int
main (int argc, char **argv)
{
  g_autoptr (EtaAgentApplication) application = NULL;

  /* Before anything secret exists in this process. */
  eta_secret_harden_process ();
  setlocale (LC_ALL, "");
  g_set_prgname ("ecryptfs-token-agent");
  application = eta_agent_application_new ();
  return g_application_run (G_APPLICATION (application), argc, argv);
}

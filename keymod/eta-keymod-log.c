/* See eta-keymod-log.h. openlog() is left to the host process: the module
 * must not change ecryptfsd's ident. */
#include "config.h"

#include "eta-keymod-log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void
eta_keymod_log (int priority, const char *format, ...)
{
  char message[1024];
  va_list args;

  va_start (args, format);
  vsnprintf (message, sizeof message, format, args);
  va_end (args);
  syslog (priority, "ecryptfs token-agent key module: %s", message);
  if (getenv ("ECRYPTFS_TOKEN_AGENT_KEYMOD_STDERR") != NULL)
    fprintf (stderr, "ecryptfs token-agent key module: %s\n", message);
}

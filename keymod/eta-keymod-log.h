/* Logging for the key module: syslog, which is where administrators look for
 * ecryptfsd's messages, and stderr as well when
 * $ECRYPTFS_TOKEN_AGENT_KEYMOD_STDERR is set (ecryptfsd -f, tests). Never
 * called with a secret. */
#pragma once

#include <syslog.h>

void eta_keymod_log (int priority, const char *format, ...)
  __attribute__ ((format (printf, 2, 3)));

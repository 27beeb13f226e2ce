/* Who may call the agent's D-Bus objects: only processes running as the
 * agent's own user. Every method of a guarded interface is checked before it
 * runs; the caller's uid comes from the bus (GetConnectionUnixUser), cached
 * per unique name. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ETA_TYPE_CALLER_CHECK (eta_caller_check_get_type ())
G_DECLARE_FINAL_TYPE (EtaCallerCheck, eta_caller_check, ETA, CALLER_CHECK, GObject)

EtaCallerCheck *eta_caller_check_new (void);

/* Refuses, with AccessDenied, every call to @skeleton from another user (or
 * from a caller whose user cannot be told). An interface with properties is
 * guarded through g-authorize-method, which covers property reads too; one
 * without is checked by a first handler of each handle-* signal, in the
 * thread that dispatches the call, without a trip through a worker thread
 * (a call from a sender not seen before waits for the bus's answer, then
 * goes on). Connect before the interface's own handlers. The check holds a
 * reference to itself for as long as @skeleton lives. */
void eta_caller_check_guard (EtaCallerCheck *self, GDBusInterfaceSkeleton *skeleton);

/* Whether @sender (a unique name) is already known, from an earlier call,
 * to run as the agent's user. FALSE for a sender not seen yet, whom only a
 * guarded skeleton's check (which asks the bus) can admit. Any thread. */
gboolean eta_caller_check_serves_known_sender (EtaCallerCheck *self, const gchar *sender);

/* Answers every incoming call to one of @interfaces (NULL-terminated; kept
 * by the caller for the connection's life), and every Properties call about
 * them, with AccessDenied, from any caller, before anything in this process
 * handles it. For interfaces others export on our objects (GApplication's)
 * that no skeleton's check can reach. Returns the filter id. */
guint eta_caller_check_refuse_interfaces (GDBusConnection *connection,
                                          const gchar * const *interfaces);

G_END_DECLS

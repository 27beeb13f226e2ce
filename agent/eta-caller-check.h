/* Who may call the agent's D-Bus objects: only processes running as the
 * agent's own user. Guards a skeleton through its g-authorize-method signal,
 * so every method of the interface is checked before it runs; the caller's
 * uid comes from the bus (GetConnectionUnixUser), cached per unique name. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ETA_TYPE_CALLER_CHECK (eta_caller_check_get_type ())
G_DECLARE_FINAL_TYPE (EtaCallerCheck, eta_caller_check, ETA, CALLER_CHECK, GObject)

EtaCallerCheck *eta_caller_check_new (void);

/* Refuses, with AccessDenied, every call to @skeleton from another user (or
 * from a caller whose user cannot be told). The check holds a reference to
 * itself for as long as @skeleton lives. */
void eta_caller_check_guard (EtaCallerCheck *self, GDBusInterfaceSkeleton *skeleton);

/* Answers every incoming call to one of @interfaces (NULL-terminated; kept
 * by the caller for the connection's life), and every Properties call about
 * them, with AccessDenied, from any caller, before anything in this process
 * handles it. For interfaces others export on our objects (GApplication's)
 * that no skeleton's check can reach. Returns the filter id. */
guint eta_caller_check_refuse_interfaces (GDBusConnection *connection,
                                          const gchar * const *interfaces);

G_END_DECLS

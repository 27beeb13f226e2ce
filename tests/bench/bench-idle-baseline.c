/* The baseline for bench-idle: the least a process can do to notice tokens
 * coming and going — pkcs11-helper with the same provider and the same slot
 * polling the agent uses, in an idle GLib main loop, and nothing else.
 *
 * usage: bench-idle-baseline PROVIDER POLL_MS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <pkcs11-helper-1.0/pkcs11h-core.h>

static void
on_slot_event (void *global_data)
{
}

int
main (int argc, char **argv)
{
  static CK_C_INITIALIZE_ARGS os_locking = { NULL, NULL, NULL, NULL, CKF_OS_LOCKING_OK, NULL };
  CK_C_INITIALIZE_ARGS_PTR init_args = &os_locking;
  unsigned method = PKCS11H_SLOTEVENT_METHOD_FETCH;
  unsigned interval;
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  CK_RV rv;

  if (argc != 3)
    {
      fprintf (stderr, "usage: %s PROVIDER POLL_MS\n", argv[0]);
      return 2;
    }
  interval = (unsigned) atoi (argv[2]);
  rv = pkcs11h_initialize ();
  if (rv == CKR_OK)
    rv = pkcs11h_setSlotEventHook (on_slot_event, NULL);
  if (rv == CKR_OK)
    rv = pkcs11h_registerProvider ("baseline");
  if (rv == CKR_OK)
    rv = pkcs11h_setProviderProperty ("baseline", PKCS11H_PROVIDER_PROPERTY_LOCATION, argv[1],
                                      strlen (argv[1]) + 1);
  if (rv == CKR_OK)
    rv = pkcs11h_setProviderProperty ("baseline", PKCS11H_PROVIDER_PROPERTY_INIT_ARGS,
                                      &init_args, sizeof init_args);
  if (rv == CKR_OK)
    rv = pkcs11h_setProviderProperty ("baseline", PKCS11H_PROVIDER_PROPERTY_SLOT_EVENT_METHOD,
                                      &method, sizeof method);
  if (rv == CKR_OK)
    rv = pkcs11h_setProviderProperty ("baseline", PKCS11H_PROVIDER_PROPERTY_SLOT_POLL_INTERVAL,
                                      &interval, sizeof interval);
  if (rv == CKR_OK)
    rv = pkcs11h_initializeProvider ("baseline");
  if (rv != CKR_OK)
    {
      fprintf (stderr, "bench-idle-baseline: %s\n", pkcs11h_getMessage (rv));
      return 1;
    }
  printf ("ready\n");
  fflush (stdout);
  g_main_loop_run (loop);
  return 0;
}

/* The floor for bench-idle: a GLib main loop with nothing to do. */
#include <stdio.h>

#include <glib.h>

int
main (void)
{
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);

  printf ("ready\n");
  fflush (stdout);
  g_main_loop_run (loop);
  return 0;
}

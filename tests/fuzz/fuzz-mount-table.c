/* Fuzz target: the mountinfo parser of agent/eta-mount-table.c, behind
 * eta_mount_table_list_sigs and eta_mount_table_mounts_for_sig. The input is
 * the content of /proc/self/mountinfo. The parser takes a path: the input is
 * handed over as a memfd's /proc/self/fd path, which costs no disk. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "eta-mount-table.h"
#include "fuzz-common.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int memfd = -1;
static char memfd_path[64];

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  eta_fuzz_init ();
  memfd = memfd_create ("eta-fuzz-mountinfo", MFD_CLOEXEC);
  if (memfd < 0)
    abort ();
  g_snprintf (memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
  return 0;
}

static void
write_input (const uint8_t *data, size_t size)
{
  size_t done = 0;

  if (ftruncate (memfd, 0) != 0 || lseek (memfd, 0, SEEK_SET) != 0)
    abort ();
  while (done < size)
    {
      ssize_t n = write (memfd, data + done, size - done);
      if (n <= 0)
        abort ();
      done += (size_t) n;
    }
}

/* Mount points are shown in prompts, the tray menu and JSON output: text. */
static void
check_mounts (GStrv mounts)
{
  ETA_FUZZ_CHECK (mounts != NULL);
  for (gsize i = 0; mounts[i] != NULL; i++)
    ETA_FUZZ_CHECK (g_utf8_validate (mounts[i], -1, NULL));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_auto (GStrv) sigs = NULL;
  g_auto (GStrv) none = NULL;

  write_input (data, size);
  sigs = eta_mount_table_list_sigs (memfd_path);
  ETA_FUZZ_CHECK (sigs != NULL);
  for (gsize i = 0; sigs[i] != NULL; i++)
    {
      g_auto (GStrv) mounts = eta_mount_table_mounts_for_sig (memfd_path, sigs[i]);

      /* Each sig once; every sig listed is some mount's. */
      for (gsize j = 0; j < i; j++)
        ETA_FUZZ_CHECK (strcmp (sigs[i], sigs[j]) != 0);
      check_mounts (mounts);
      ETA_FUZZ_CHECK (mounts[0] != NULL);
    }
  none = eta_mount_table_mounts_for_sig (memfd_path, "no-such-sig");
  check_mounts (none);
  return 0;
}

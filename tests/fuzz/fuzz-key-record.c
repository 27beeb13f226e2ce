/* Fuzz target: the enrolment records `ecryptfs-token add-key` saves (key
 * files under .../ecryptfs-token-agent/keys) and the key module reads when
 * the agent is out of reach, through eta_public_key_parse_record, the
 * reader behind eta_public_key_find_record (keymod/eta-public-key-file.c).
 * The input is the record file's content. */
#include "eta-public-key-file.h"
#include "fuzz-common.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  eta_fuzz_init ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree gchar *contents = (gchar *) eta_fuzz_dup_exact (data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (EtaPublicKeyRecord) record =
    eta_public_key_parse_record (contents, size, "/fuzz/input.key", &error);

  ETA_FUZZ_CHECK ((record == NULL) == (error != NULL));
  if (record != NULL)
    eta_fuzz_check_record (record);
  return 0;
}

/* Fuzz target: public-key and certificate files as the `pubkey` parameter
 * and `ecryptfs-token add-key --pubkey` name them, PEM or DER, read by
 * eta_public_key_load_data, the parser behind eta_public_key_load_file
 * (keymod/eta-public-key-file.c). The input is the file's content. */
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
  g_autofree guint8 *contents = eta_fuzz_dup_exact (data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (EtaPublicKeyRecord) record =
    eta_public_key_load_data (contents, size, "/fuzz/input.pem", &error);

  ETA_FUZZ_CHECK ((record == NULL) == (error != NULL));
  if (record == NULL)
    return 0;
  eta_fuzz_check_record (record);
  /* The label is the subject's CN, or the file's name when there is none:
   * never empty. */
  ETA_FUZZ_CHECK (record->key_label[0] != '\0');
  return 0;
}

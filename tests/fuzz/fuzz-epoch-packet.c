/* Fuzz target: the epoch packet (keymod/eta-epoch-packet.c), which the agent
 * reads from Unwrap's wrapped_key: a file's encrypted key, as anyone who can
 * write the file chose it. Parsing must check every length before reading,
 * and whatever opens must have been sealed under the key given.
 *
 * Input: 32 bytes of epoch key K, then the packet. */
#include <string.h>

#include "eta-epoch-packet.h"
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
  uint8_t key[ETA_EPOCH_KEY_LEN] = { 0 };
  size_t packet_len = size > sizeof key ? size - sizeof key : 0;
  g_autofree guint8 *packet_bytes = NULL;
  uint8_t payload[ETA_EPOCH_MAX_PAYLOAD];
  uint8_t again[ETA_EPOCH_MAX_PACKET];
  uint8_t id[ETA_EPOCH_ID_LEN];
  size_t payload_len = 0;
  EtaEpochPacket packet;
  EtaEpochStatus status;

  memcpy (key, data, MIN (size, sizeof key));
  packet_bytes = eta_fuzz_dup_exact (data + MIN (size, sizeof key), packet_len);
  status = eta_epoch_packet_parse (packet_bytes, packet_len, &packet);
  ETA_FUZZ_CHECK (eta_epoch_status_to_string (status) != NULL);
  if (status != ETA_EPOCH_OK)
    {
      ETA_FUZZ_CHECK (packet.sealed == NULL && packet.rsa_ciphertext == NULL);
      return 0;
    }
  ETA_FUZZ_CHECK (eta_epoch_packet_has_magic (packet_bytes, packet_len));
  ETA_FUZZ_CHECK (packet.associated_data_len + ETA_EPOCH_NONCE_LEN + packet.sealed_len
                  == packet_len);
  ETA_FUZZ_CHECK (packet.sealed_len > ETA_EPOCH_TAG_LEN);
  ETA_FUZZ_CHECK (packet.sealed_len - ETA_EPOCH_TAG_LEN <= sizeof payload);
  ETA_FUZZ_CHECK (eta_epoch_packet_id (&packet, id) == 0);
  if (eta_epoch_packet_open (&packet, key, payload, &payload_len) != 0)
    return 0;
  /* It opened: sealing the payload again with the same nonce gives the
   * same bytes, or the parser and the writer disagree on the layout. */
  ETA_FUZZ_CHECK (payload_len == packet.sealed_len - ETA_EPOCH_TAG_LEN);
  ETA_FUZZ_CHECK (eta_epoch_packet_write_with_nonce (again, packet.padding,
                                                     packet.rsa_ciphertext,
                                                     packet.rsa_ciphertext_len, key,
                                                     packet.nonce, payload, payload_len)
                  == packet_len);
  ETA_FUZZ_CHECK (memcmp (again, packet_bytes, packet_len) == 0);
  return 0;
}

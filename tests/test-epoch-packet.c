/* The epoch packet: the format's test vectors (computed with an independent
 * AES-GCM implementation, see keymod/epoch-format.md), round trips, and every
 * way a packet can be bad or opened with the wrong epoch key. */
#include <string.h>

#include <glib.h>

#include "eta-epoch-packet.h"
#include "eta-key-id.h"

/* Vector 1 of keymod/epoch-format.md. */
#define VECTOR_SEALED \
  "ef086d3f56df17a9757d9ec91c66ddc06f8c7832b193674abb260fac5487582ffd75b7d588d357e38da8" \
  "24775e0213ec110847"
#define VECTOR_PAYLOAD "09101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f03f0"
#define VECTOR_PACKET_SHA256 "87790540b7c746e0dcf4febb9835ac46aac591d90a3185306e60946b1e90f292"
#define VECTOR_ID "40aff2e9d2d8922e47afd4648e6967497158785fbd1da870e7110266bf944880"

typedef struct
{
  guint8 key[ETA_EPOCH_KEY_LEN];
  guint8 nonce[ETA_EPOCH_NONCE_LEN];
  guint8 rsa[256];
  guint8 payload[35];
  guint8 packet[ETA_EPOCH_MAX_PACKET];
  gsize packet_len;
} Fixture;

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  guint sum = 0;

  for (guint i = 0; i < sizeof fixture->key; i++)
    fixture->key[i] = (guint8) i;
  for (guint i = 0; i < sizeof fixture->nonce; i++)
    fixture->nonce[i] = (guint8) (0xa0 + i);
  for (guint i = 0; i < sizeof fixture->rsa; i++)
    fixture->rsa[i] = (guint8) i;
  fixture->payload[0] = 0x09;
  for (guint i = 0; i < 32; i++)
    {
      fixture->payload[1 + i] = (guint8) (0x10 + i);
      sum += 0x10 + i;
    }
  fixture->payload[33] = (guint8) (sum >> 8);
  fixture->payload[34] = (guint8) sum;
  fixture->packet_len = eta_epoch_packet_write_with_nonce (
      fixture->packet, ETA_PADDING_OAEP, fixture->rsa, sizeof fixture->rsa, fixture->key,
      fixture->nonce, fixture->payload, sizeof fixture->payload);
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
}

static gchar *
hex (const guint8 *data, gsize len)
{
  gchar *text = g_malloc (2 * len + 1);
  eta_key_to_hex (data, len, text);
  return text;
}

static void
test_vector (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *payload_hex = hex (fixture->payload, sizeof fixture->payload);
  g_autofree gchar *sealed_hex = NULL;
  g_autofree gchar *packet_sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
                                                              fixture->packet,
                                                              fixture->packet_len);
  g_autofree gchar *id_hex = NULL;
  EtaEpochPacket packet;
  guint8 id[ETA_EPOCH_ID_LEN];

  g_assert_cmpstr (payload_hex, ==, VECTOR_PAYLOAD);
  g_assert_cmpuint (fixture->packet_len, ==, 327);
  g_assert_cmpmem (fixture->packet, 8, "ETAE\x01\x01\x01\x00", 8);
  sealed_hex = hex (fixture->packet + 8 + 256 + 12, fixture->packet_len - 8 - 256 - 12);
  g_assert_cmpstr (sealed_hex, ==, VECTOR_SEALED);
  g_assert_cmpstr (packet_sha, ==, VECTOR_PACKET_SHA256);

  g_assert_cmpint (eta_epoch_packet_parse (fixture->packet, fixture->packet_len, &packet), ==,
                   ETA_EPOCH_OK);
  g_assert_cmpint (eta_epoch_packet_id (&packet, id), ==, 0);
  id_hex = hex (id, sizeof id);
  g_assert_cmpstr (id_hex, ==, VECTOR_ID);
}

static void
test_roundtrip (Fixture *fixture, gconstpointer data)
{
  EtaEpochPacket packet;
  guint8 opened[ETA_EPOCH_MAX_PAYLOAD];
  gsize opened_len = 0;
  guint8 again[ETA_EPOCH_MAX_PACKET];
  gsize again_len;

  g_assert_cmpint (eta_epoch_packet_parse (fixture->packet, fixture->packet_len, &packet), ==,
                   ETA_EPOCH_OK);
  g_assert_cmpint (packet.padding, ==, ETA_PADDING_OAEP);
  g_assert_cmpmem (packet.rsa_ciphertext, packet.rsa_ciphertext_len, fixture->rsa,
                   sizeof fixture->rsa);
  g_assert_cmpint (eta_epoch_packet_open (&packet, fixture->key, opened, &opened_len), ==, 0);
  g_assert_cmpmem (opened, opened_len, fixture->payload, sizeof fixture->payload);

  /* A fresh nonce each time: two files of one epoch never share one. */
  again_len = eta_epoch_packet_write (again, ETA_PADDING_OAEP, fixture->rsa, sizeof fixture->rsa,
                                      fixture->key, fixture->payload, sizeof fixture->payload);
  g_assert_cmpuint (again_len, ==, fixture->packet_len);
  g_assert_true (memcmp (again + 8 + 256, fixture->packet + 8 + 256, 12) != 0);
}

static void
test_tampering_detected (Fixture *fixture, gconstpointer data)
{
  /* Every byte is covered: the header and RSA(K) as associated data, the
   * nonce, the sealed payload and the tag. */
  for (gsize i = 0; i < fixture->packet_len; i++)
    {
      guint8 copy[ETA_EPOCH_MAX_PACKET];
      guint8 opened[ETA_EPOCH_MAX_PAYLOAD] = { 0 };
      gsize opened_len = 0;
      EtaEpochPacket packet;

      memcpy (copy, fixture->packet, fixture->packet_len);
      copy[i] ^= 0x01;
      if (eta_epoch_packet_parse (copy, fixture->packet_len, &packet) != ETA_EPOCH_OK)
        continue;
      g_assert_cmpint (eta_epoch_packet_open (&packet, fixture->key, opened, &opened_len), ==,
                       -1);
      g_assert_cmpuint (opened_len, ==, 0);
      for (gsize j = 0; j < sizeof opened; j++)
        g_assert_cmpuint (opened[j], ==, 0);
    }
}

static void
test_other_epoch_key_refused (Fixture *fixture, gconstpointer data)
{
  guint8 other[ETA_EPOCH_KEY_LEN];
  guint8 opened[ETA_EPOCH_MAX_PAYLOAD];
  gsize opened_len = 0;
  EtaEpochPacket packet;

  memcpy (other, fixture->key, sizeof other);
  other[31] ^= 0x80;
  g_assert_cmpint (eta_epoch_packet_parse (fixture->packet, fixture->packet_len, &packet), ==,
                   ETA_EPOCH_OK);
  g_assert_cmpint (eta_epoch_packet_open (&packet, other, opened, &opened_len), ==, -1);
}

static void
test_malformed (Fixture *fixture, gconstpointer data)
{
  EtaEpochPacket packet;
  guint8 copy[ETA_EPOCH_MAX_PACKET + 1];

  /* A plain RSA ciphertext is no epoch packet. */
  g_assert_cmpint (eta_epoch_packet_parse (fixture->rsa, sizeof fixture->rsa, &packet), ==,
                   ETA_EPOCH_ERROR_NOT_EPOCH);
  g_assert_false (eta_epoch_packet_has_magic (fixture->rsa, sizeof fixture->rsa));
  g_assert_cmpint (eta_epoch_packet_parse (NULL, 0, &packet), ==, ETA_EPOCH_ERROR_NOT_EPOCH);
  g_assert_cmpint (eta_epoch_packet_parse (fixture->packet, 6, &packet), ==,
                   ETA_EPOCH_ERROR_MALFORMED);

  memcpy (copy, fixture->packet, fixture->packet_len);
  copy[4] = 2;
  g_assert_cmpint (eta_epoch_packet_parse (copy, fixture->packet_len, &packet), ==,
                   ETA_EPOCH_ERROR_VERSION);
  copy[4] = 1;
  copy[5] = 7;
  g_assert_cmpint (eta_epoch_packet_parse (copy, fixture->packet_len, &packet), ==,
                   ETA_EPOCH_ERROR_MALFORMED);
  copy[5] = 1;
  /* RSA(K) said to run past the end, or to leave no room for nonce and tag. */
  copy[6] = 0x01;
  copy[7] = 0x40;
  g_assert_cmpint (eta_epoch_packet_parse (copy, fixture->packet_len, &packet), ==,
                   ETA_EPOCH_ERROR_MALFORMED);
  copy[6] = 0;
  copy[7] = 0;
  g_assert_cmpint (eta_epoch_packet_parse (copy, fixture->packet_len, &packet), ==,
                   ETA_EPOCH_ERROR_MALFORMED);
  /* Cut short of its tag. */
  g_assert_cmpint (eta_epoch_packet_parse (fixture->packet, 8 + 256 + 12 + 16, &packet), ==,
                   ETA_EPOCH_ERROR_MALFORMED);
  /* Longer than the kernel allows. */
  memcpy (copy, fixture->packet, fixture->packet_len);
  g_assert_cmpint (eta_epoch_packet_parse (copy, sizeof copy, &packet), ==,
                   ETA_EPOCH_ERROR_MALFORMED);
}

static void
test_sizes (Fixture *fixture, gconstpointer data)
{
  /* RSA 2048 and 3072 fit the kernel's 512 bytes with a 64-byte FEK;
   * RSA 4096 does not, and the key module then wraps per file. */
  g_assert_cmpuint (eta_epoch_packet_size (256, 67), ==, 8 + 256 + 12 + 67 + 16);
  g_assert_cmpuint (eta_epoch_packet_size (384, 67), <=, ETA_EPOCH_MAX_PACKET);
  g_assert_cmpuint (eta_epoch_packet_size (512, 19), ==, 0);
  g_assert_cmpuint (eta_epoch_packet_size (256, 0), ==, 0);
  g_assert_cmpuint (eta_epoch_packet_size (256, 68), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("/keymod/epoch/vector", test_vector);
  ADD ("/keymod/epoch/roundtrip", test_roundtrip);
  ADD ("/keymod/epoch/tampering", test_tampering_detected);
  ADD ("/keymod/epoch/other-epoch-key", test_other_epoch_key_refused);
  ADD ("/keymod/epoch/malformed", test_malformed);
  ADD ("/keymod/epoch/sizes", test_sizes);
  return g_test_run ();
}

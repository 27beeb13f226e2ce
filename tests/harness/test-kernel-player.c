/* test-kernel-player.c: self-tests of the harness that plays the kernel.
 * The packet tests pin the byte layout against the kernel's; the in-process
 * and player tests check that libecryptfs and the real ecryptfsd answer the
 * way the harness expects (failure replies, stale frames, the 9-error rule,
 * late replies), using only the passphrase module shipped with Debian plus
 * the harness's own mock module. Player tests need root and ecryptfsd;
 * without them they fail, loudly: a harness that cannot run proves nothing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define G_LOG_DOMAIN "eta-harness"

#include "eta-ecryptfs-packet.h"
#include "eta-inprocess-daemon.h"
#include "eta-kernel-player.h"

#include <glib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PASSPHRASE_KEYMOD ETA_HARNESS_KEYMOD_DIR "/libecryptfs_key_mod_passphrase.so"
#define TEST_SIG "0123456789abcdef"

/* ---- helpers ---------------------------------------------------------- */

static gchar *
random_sig (const gchar *prefix)
{
  GString *s = g_string_new (prefix);

  while (s->len < ETA_ECRYPTFS_SIG_HEX_LEN)
    g_string_append_printf (s, "%x", (guint) g_random_int_range (0, 16));
  return g_string_free (s, FALSE);
}

static gboolean
can_run_daemon (void)
{
  if (geteuid () != 0)
    {
      g_test_fail_printf ("needs root for the mount namespace and bind mount");
      return FALSE;
    }
  if (!g_file_test ("/usr/bin/ecryptfsd", G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_fail_printf ("/usr/bin/ecryptfsd is not installed (package ecryptfs-utils)");
      return FALSE;
    }
  return TRUE;
}

static void
assert_bytes (GBytes       *bytes,
              const guint8 *expected,
              gsize         expected_len)
{
  g_assert_nonnull (bytes);
  g_assert_cmpmem (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes),
                   expected, expected_len);
}

/* Player plus its module directory; the log is printed when a test fails
 * (g_test_failed() is checked at teardown). */
typedef struct {
  gchar           *module_dir;
  EtaKernelPlayer *player;
  GPtrArray       *sigs; /* keys added to @u, removed at teardown */
} PlayerFixture;

static void
player_fixture_start (PlayerFixture *fx,
                      const gchar   *keymod)
{
  g_autoptr(GError) error = NULL;

  fx->module_dir = eta_kernel_player_make_module_dir (keymod, &error);
  g_assert_no_error (error);
  g_assert_nonnull (fx->module_dir);

  fx->player = eta_kernel_player_start (fx->module_dir, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (fx->player);
}

static void
player_fixture_setup (PlayerFixture *fx,
                      gconstpointer  data)
{
  (void) data;
  fx->sigs = g_ptr_array_new_with_free_func (g_free);
}

static void
player_fixture_teardown (PlayerFixture *fx,
                         gconstpointer  data)
{
  (void) data;
  if (fx->player != NULL && g_test_failed ())
    g_printerr ("---- ecryptfsd log ----\n%s---- end ----\n",
                eta_kernel_player_get_log (fx->player));
  g_clear_pointer (&fx->player, eta_kernel_player_stop);
  if (fx->module_dir != NULL)
    eta_kernel_player_remove_module_dir (fx->module_dir);
  g_clear_pointer (&fx->module_dir, g_free);
  for (guint i = 0; i < fx->sigs->len; i++)
    eta_harness_remove_user_key (g_ptr_array_index (fx->sigs, i), NULL);
  g_ptr_array_unref (fx->sigs);
}

/* Adds a mock-module key to @u through harness A and returns its sig. */
static gchar *
add_mock_key (GPtrArray   *sigs,
              const gchar *delay_ms,
              const gchar *pad)
{
  g_autoptr(EtaInprocessDaemon) daemon = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *want = random_sig ("e7a0");
  const gchar *names[] = { "etamock_sig", "etamock_delay_ms", "etamock_pad", NULL };
  const gchar *values[] = { want, delay_ms, pad, NULL };
  gchar *sig;

  daemon = eta_inprocess_daemon_new (ETA_HARNESS_MOCK_KEYMOD, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (eta_inprocess_daemon_get_alias (daemon), ==, "etamock");

  sig = eta_inprocess_daemon_add_key (daemon, "etamock", names, values, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sig, ==, want);
  g_ptr_array_add (sigs, g_strdup (sig));
  return sig;
}

/* ---- packets ---------------------------------------------------------- */

static void
test_packet_length (void)
{
  guint8 buf[2];
  gsize len, size;

  g_assert_cmpuint (eta_ecryptfs_write_length (buf, 0), ==, 1);
  g_assert_cmpuint (buf[0], ==, 0);
  g_assert_cmpuint (eta_ecryptfs_write_length (buf, 191), ==, 1);
  g_assert_cmpuint (buf[0], ==, 0xbf);
  /* 192 and up take the two-byte form. */
  g_assert_cmpuint (eta_ecryptfs_write_length (buf, 192), ==, 2);
  g_assert_cmpuint (buf[0], ==, 0xc0);
  g_assert_cmpuint (buf[1], ==, 0x00);
  g_assert_cmpuint (eta_ecryptfs_write_length (buf, 256), ==, 2);
  g_assert_cmpuint (buf[0], ==, 0xc0);
  g_assert_cmpuint (buf[1], ==, 0x40);
  g_assert_cmpuint (eta_ecryptfs_write_length (buf, 512), ==, 2);
  g_assert_cmpuint (buf[0], ==, 0xc1);
  g_assert_cmpuint (buf[1], ==, 0x40);
  g_assert_cmpuint (eta_ecryptfs_write_length (buf, 8383), ==, 2);
  g_assert_cmpuint (buf[0], ==, 0xdf);
  g_assert_cmpuint (buf[1], ==, 0xff);
  g_assert_cmpuint (eta_ecryptfs_write_length (buf, 8384), ==, 0);

  for (gsize l = 0; l <= ETA_ECRYPTFS_MAX_PACKET_LENGTH; l++)
    {
      gsize n = eta_ecryptfs_write_length (buf, l);

      g_assert_cmpuint (n, ==, l < 192 ? 1 : 2);
      g_assert_true (eta_ecryptfs_parse_length (buf, n, &len, &size));
      g_assert_cmpuint (len, ==, l);
      g_assert_cmpuint (size, ==, n);
    }

  /* Partial and five-byte forms are refused, as by the kernel. */
  buf[0] = 0xe0;
  g_assert_false (eta_ecryptfs_parse_length (buf, 2, &len, &size));
  buf[0] = 0xff;
  g_assert_false (eta_ecryptfs_parse_length (buf, 2, &len, &size));
  /* A two-byte length cut short. */
  buf[0] = 0xc0;
  g_assert_false (eta_ecryptfs_parse_length (buf, 1, &len, &size));
}

static void
test_packet_tag64 (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) small = NULL;
  g_autoptr(GBytes) big = NULL;
  g_autoptr(GBytes) bad = NULL;
  const guint8 wrapped[] = { 0xaa, 0xbb, 0xcc };
  const guint8 expected[] = {
    0x40, 0x10,
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f',
    0x03, 0xaa, 0xbb, 0xcc,
  };
  guint8 rsa[256];
  const guint8 *data;
  gsize len;

  small = eta_ecryptfs_build_tag64 (TEST_SIG, wrapped, sizeof wrapped, &error);
  g_assert_no_error (error);
  assert_bytes (small, expected, sizeof expected);

  /* An RSA-2048 wrapped key: its length takes two bytes (c0 40 = 256). */
  memset (rsa, 0x5a, sizeof rsa);
  big = eta_ecryptfs_build_tag64 (TEST_SIG, rsa, sizeof rsa, &error);
  g_assert_no_error (error);
  data = g_bytes_get_data (big, &len);
  g_assert_cmpuint (len, ==, 1 + 1 + 16 + 2 + 256);
  g_assert_cmpuint (data[0], ==, 0x40);
  g_assert_cmpuint (data[1], ==, 16);
  g_assert_cmpuint (data[18], ==, 0xc0);
  g_assert_cmpuint (data[19], ==, 0x40);
  g_assert_cmpmem (data + 20, 256, rsa, sizeof rsa);

  bad = eta_ecryptfs_build_tag64 ("short", wrapped, sizeof wrapped, &error);
  g_assert_error (error, ETA_ECRYPTFS_PACKET_ERROR, ETA_ECRYPTFS_PACKET_ERROR_INVALID);
  g_assert_null (bad);
}

static void
test_packet_tag66 (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) aes128 = NULL;
  g_autoptr(GBytes) aes256 = NULL;
  guint8 fek[32];
  guint8 big[300];
  const guint8 *data;
  gsize len;

  /* Checksum: plain 16-bit sum, big-endian on the wire. */
  memset (fek, 0xff, sizeof fek);
  g_assert_cmpuint (eta_ecryptfs_fek_checksum (fek, 16), ==, 16 * 255);
  g_assert_cmpuint (eta_ecryptfs_fek_checksum ((const guint8 *) "\x01\x02\x03", 3), ==, 6);
  memset (big, 0xff, sizeof big);
  g_assert_cmpuint (eta_ecryptfs_fek_checksum (big, sizeof big), ==, (300 * 255) % 65536);

  aes128 = eta_ecryptfs_build_tag66 (TEST_SIG, ETA_ECRYPTFS_CIPHER_AES_128, fek, 16, &error);
  g_assert_no_error (error);
  data = g_bytes_get_data (aes128, &len);
  /* 0x42 | 16 | sig | 19 | 07 | FEK | 0f f0 */
  g_assert_cmpuint (len, ==, 1 + 1 + 16 + 1 + 19);
  g_assert_cmpuint (data[0], ==, 0x42);
  g_assert_cmpuint (data[1], ==, 16);
  g_assert_cmpmem (data + 2, 16, TEST_SIG, 16);
  g_assert_cmpuint (data[18], ==, 19);
  g_assert_cmpuint (data[19], ==, 0x07);
  g_assert_cmpmem (data + 20, 16, fek, 16);
  g_assert_cmpuint (data[36], ==, 0x0f);
  g_assert_cmpuint (data[37], ==, 0xf0);

  for (guint i = 0; i < sizeof fek; i++)
    fek[i] = (guint8) (i * 7 + 1);
  aes256 = eta_ecryptfs_build_tag66 (TEST_SIG, ETA_ECRYPTFS_CIPHER_AES_256, fek, 32, &error);
  g_assert_no_error (error);
  data = g_bytes_get_data (aes256, &len);
  g_assert_cmpuint (len, ==, 1 + 1 + 16 + 1 + 35);
  g_assert_cmpuint (data[18], ==, 35);
  g_assert_cmpuint (data[19], ==, 0x09);
  {
    guint16 sum = eta_ecryptfs_fek_checksum (fek, 32);
    g_assert_cmpuint (data[52], ==, sum >> 8);
    g_assert_cmpuint (data[53], ==, sum & 0xff);
  }

  g_assert_null (eta_ecryptfs_build_tag66 (TEST_SIG, 0x07, fek, 0, &error));
  g_assert_error (error, ETA_ECRYPTFS_PACKET_ERROR, ETA_ECRYPTFS_PACKET_ERROR_INVALID);
}

/* Builds "41 00 len code FEK checksum [extra]". */
static GByteArray *
make_tag65 (guint8        code,
            const guint8 *fek,
            gsize         fek_len,
            gint          checksum_delta,
            gsize         extra)
{
  GByteArray *a = g_byte_array_new ();
  guint8 len_buf[2];
  gsize n = eta_ecryptfs_write_length (len_buf, fek_len + 3);
  guint16 sum = (guint16) (eta_ecryptfs_fek_checksum (fek, fek_len) + checksum_delta);
  guint8 trailer[2] = { (guint8) (sum >> 8), (guint8) (sum & 0xff) };

  g_byte_array_append (a, (const guint8 []) { 0x41, 0x00 }, 2);
  g_byte_array_append (a, len_buf, (guint) n);
  g_byte_array_append (a, &code, 1);
  g_byte_array_append (a, fek, (guint) fek_len);
  g_byte_array_append (a, trailer, 2);
  for (gsize i = 0; i < extra; i++)
    g_byte_array_append (a, (const guint8 []) { 0xee }, 1);
  return a;
}

static void
test_packet_tag65 (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) fek_out = NULL;
  g_autoptr(GByteArray) good = NULL;
  g_autoptr(GByteArray) trailing = NULL;
  g_autoptr(GByteArray) bad_sum = NULL;
  g_autoptr(GByteArray) bad_code = NULL;
  g_autoptr(GByteArray) too_big = NULL;
  guint8 fek[70];
  guint8 code = 0;

  for (guint i = 0; i < sizeof fek; i++)
    fek[i] = (guint8) (0x30 + i);

  good = make_tag65 (0x07, fek, 16, 0, 0);
  g_assert_true (eta_ecryptfs_parse_tag65 (good->data, good->len, &code, &fek_out, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (code, ==, 0x07);
  assert_bytes (fek_out, fek, 16);
  g_clear_pointer (&fek_out, g_bytes_unref);

  /* Trailing bytes are tolerated, as by the kernel. */
  trailing = make_tag65 (0x09, fek, 32, 0, 1);
  g_assert_true (eta_ecryptfs_parse_tag65 (trailing->data, trailing->len, &code, &fek_out, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (code, ==, 0x09);
  assert_bytes (fek_out, fek, 32);
  g_clear_pointer (&fek_out, g_bytes_unref);

  bad_sum = make_tag65 (0x07, fek, 16, 1, 0);
  g_assert_false (eta_ecryptfs_parse_tag65 (bad_sum->data, bad_sum->len, &code, &fek_out, &error));
  g_assert_error (error, ETA_ECRYPTFS_PACKET_ERROR, ETA_ECRYPTFS_PACKET_ERROR_BAD_CHECKSUM);
  g_assert_null (fek_out);
  g_clear_error (&error);

  bad_code = make_tag65 (0x01, fek, 16, 0, 0);
  g_assert_false (eta_ecryptfs_parse_tag65 (bad_code->data, bad_code->len, &code, NULL, &error));
  g_assert_error (error, ETA_ECRYPTFS_PACKET_ERROR, ETA_ECRYPTFS_PACKET_ERROR_BAD_CIPHER);
  g_clear_error (&error);

  too_big = make_tag65 (0x09, fek, 65, 0, 0);
  g_assert_false (eta_ecryptfs_parse_tag65 (too_big->data, too_big->len, &code, NULL, &error));
  g_assert_error (error, ETA_ECRYPTFS_PACKET_ERROR, ETA_ECRYPTFS_PACKET_ERROR_MALFORMED);
  g_clear_error (&error);

  /* Failure reply: 41 ff. */
  g_assert_false (eta_ecryptfs_parse_tag65 ((const guint8 *) "\x41\xff", 2, &code, NULL, &error));
  g_assert_error (error, ETA_ECRYPTFS_PACKET_ERROR, ETA_ECRYPTFS_PACKET_ERROR_FAILURE_STATUS);
  g_clear_error (&error);

  /* A tag 67 is not a tag 65. */
  g_assert_false (eta_ecryptfs_parse_tag65 ((const guint8 *) "\x43\x00\x03\x07\x00\x00", 6, &code, NULL, &error));
  g_assert_error (error, ETA_ECRYPTFS_PACKET_ERROR, ETA_ECRYPTFS_PACKET_ERROR_WRONG_TAG);
  g_clear_error (&error);

  /* Length claims more than present; key too short for code + checksum. */
  g_assert_false (eta_ecryptfs_parse_tag65 ((const guint8 *) "\x41\x00\x13\x07\x01", 5, &code, NULL, &error));
  g_assert_error (error, ETA_ECRYPTFS_PACKET_ERROR, ETA_ECRYPTFS_PACKET_ERROR_MALFORMED);
  g_clear_error (&error);
  g_assert_false (eta_ecryptfs_parse_tag65 ((const guint8 *) "\x41\x00\x02\x07\x00", 5, &code, NULL, &error));
  g_assert_error (error, ETA_ECRYPTFS_PACKET_ERROR, ETA_ECRYPTFS_PACKET_ERROR_MALFORMED);
  g_clear_error (&error);
}

static void
test_packet_tag67 (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) wrapped = NULL;
  g_autoptr(GByteArray) rsa = g_byte_array_new ();
  guint8 key[256];

  for (guint i = 0; i < sizeof key; i++)
    key[i] = (guint8) i;
  /* 43 00 c0 40 <256 bytes> 2-byte length form, plus the stray byte
   * libecryptfs's write_tag_67_packet() can leave. */
  g_byte_array_append (rsa, (const guint8 []) { 0x43, 0x00, 0xc0, 0x40 }, 4);
  g_byte_array_append (rsa, key, sizeof key);
  g_assert_true (eta_ecryptfs_parse_tag67 (rsa->data, rsa->len, &wrapped, &error));
  g_assert_no_error (error);
  assert_bytes (wrapped, key, sizeof key);
  g_clear_pointer (&wrapped, g_bytes_unref);

  g_byte_array_append (rsa, (const guint8 []) { 0x00 }, 1);
  g_assert_true (eta_ecryptfs_parse_tag67 (rsa->data, rsa->len, &wrapped, &error));
  assert_bytes (wrapped, key, sizeof key);

  g_assert_false (eta_ecryptfs_parse_tag67 ((const guint8 *) "\x43\xff", 2, NULL, &error));
  g_assert_error (error, ETA_ECRYPTFS_PACKET_ERROR, ETA_ECRYPTFS_PACKET_ERROR_FAILURE_STATUS);
  g_clear_error (&error);

  /* Cut short: claims 256, holds 200. */
  g_assert_false (eta_ecryptfs_parse_tag67 (rsa->data, 204, NULL, &error));
  g_assert_error (error, ETA_ECRYPTFS_PACKET_ERROR, ETA_ECRYPTFS_PACKET_ERROR_MALFORMED);
  g_clear_error (&error);

  g_assert_false (eta_ecryptfs_parse_tag67 ((const guint8 *) "\x41\x00\x01\x00", 4, NULL, &error));
  g_assert_error (error, ETA_ECRYPTFS_PACKET_ERROR, ETA_ECRYPTFS_PACKET_ERROR_WRONG_TAG);
  g_clear_error (&error);
}

static void
test_packet_frame (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) req = NULL;
  g_autoptr(GBytes) big = NULL;
  g_autoptr(GBytes) bare = NULL;
  const guint8 payload[10] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
  guint8 payload200[200];
  guint32 index = 5, data_len = 10;
  EtaEcryptfsFrame f;
  const guint8 *data;
  gsize len;

  req = eta_ecryptfs_frame_encode (ETA_ECRYPTFS_MSG_REQUEST, 0x01020304, index,
                                   payload, sizeof payload, &error);
  g_assert_no_error (error);
  data = g_bytes_get_data (req, &len);
  g_assert_cmpuint (len, ==, 1 + 4 + 1 + 8 + 10);
  g_assert_cmpuint (data[0], ==, 102);
  g_assert_cmpmem (data + 1, 4, "\x01\x02\x03\x04", 4);  /* seq big-endian */
  g_assert_cmpuint (data[5], ==, 18);                    /* sizeof msg + data */
  g_assert_cmpmem (data + 6, 4, &index, 4);              /* host order */
  g_assert_cmpmem (data + 10, 4, &data_len, 4);
  g_assert_cmpmem (data + 14, 10, payload, 10);

  g_assert_true (eta_ecryptfs_frame_decode (data, len, &f, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (f.type, ==, 102);
  g_assert_cmpuint (f.seq, ==, 0x01020304);
  g_assert_true (f.has_message);
  g_assert_cmpuint (f.index, ==, 5);
  g_assert_cmpmem (f.data, f.data_len, payload, sizeof payload);

  /* 208-byte message: two-byte length c0 10. */
  memset (payload200, 0x11, sizeof payload200);
  big = eta_ecryptfs_frame_encode (ETA_ECRYPTFS_MSG_RESPONSE, 7, 1, payload200,
                                   sizeof payload200, &error);
  g_assert_no_error (error);
  data = g_bytes_get_data (big, &len);
  g_assert_cmpuint (len, ==, 1 + 4 + 2 + 8 + 200);
  g_assert_cmpuint (data[5], ==, 0xc0);
  g_assert_cmpuint (data[6], ==, 0x10);
  g_assert_true (eta_ecryptfs_frame_decode (data, len, &f, &error));
  g_assert_cmpuint (f.data_len, ==, 200);
  /* One byte short of what the length announces. */
  g_assert_false (eta_ecryptfs_frame_decode (data, len - 1, &f, &error));
  g_assert_error (error, ETA_ECRYPTFS_PACKET_ERROR, ETA_ECRYPTFS_PACKET_ERROR_MALFORMED);
  g_clear_error (&error);

  bare = eta_ecryptfs_frame_encode_bare (ETA_ECRYPTFS_MSG_HELO, 0);
  data = g_bytes_get_data (bare, &len);
  g_assert_cmpmem (data, len, "\x64\x00\x00\x00\x00", 5);
  g_assert_true (eta_ecryptfs_frame_decode (data, len, &f, &error));
  g_assert_false (f.has_message);
  g_assert_cmpuint (f.type, ==, ETA_ECRYPTFS_MSG_HELO);

  /* data_len disagreeing with the frame length. */
  {
    guint8 broken[1 + 4 + 1 + 8 + 2] = { 103, 0, 0, 0, 1, 10 };
    guint32 wrong = 3;

    memcpy (broken + 10, &wrong, 4);
    g_assert_false (eta_ecryptfs_frame_decode (broken, sizeof broken, &f, &error));
    g_assert_error (error, ETA_ECRYPTFS_PACKET_ERROR, ETA_ECRYPTFS_PACKET_ERROR_MALFORMED);
    g_clear_error (&error);
  }
}

/* ---- harness A -------------------------------------------------------- */

static void
test_inprocess_unknown_sig (void)
{
  g_autoptr(EtaInprocessDaemon) daemon = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) req64 = NULL;
  g_autoptr(GBytes) req66 = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autofree gchar *sig = random_sig ("ee");
  const guint8 wrapped[32] = { 0 };
  const guint8 fek[16] = { 1 };

  /* Loaded the way libecryptfs loads it: dlopen, ops, init. */
  daemon = eta_inprocess_daemon_new (PASSPHRASE_KEYMOD, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (eta_inprocess_daemon_get_alias (daemon), ==, "passphrase");

  req64 = eta_ecryptfs_build_tag64 (sig, wrapped, sizeof wrapped, &error);
  g_assert_no_error (error);
  reply = eta_inprocess_daemon_process (daemon, req64, &error);
  g_assert_no_error (error);
  /* parse_packet() answers an unknown sig with a 2-byte failure reply. */
  assert_bytes (reply, (const guint8 *) "\x41\xff", 2);
  g_clear_pointer (&reply, g_bytes_unref);

  req66 = eta_ecryptfs_build_tag66 (sig, 0x07, fek, sizeof fek, &error);
  g_assert_no_error (error);
  reply = eta_inprocess_daemon_process (daemon, req66, &error);
  g_assert_no_error (error);
  assert_bytes (reply, (const guint8 *) "\x43\xff", 2);

  /* The same through the checking helpers. */
  g_assert_false (eta_inprocess_daemon_unwrap (daemon, sig, wrapped, sizeof wrapped, NULL, NULL, &error));
  g_assert_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILURE_REPLY);
  g_clear_error (&error);
  g_assert_false (eta_inprocess_daemon_wrap (daemon, sig, 0x07, fek, sizeof fek, NULL, &error));
  g_assert_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILURE_REPLY);
}

static void
test_inprocess_mock_roundtrip (void)
{
  g_autoptr(EtaInprocessDaemon) daemon = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) wrapped = NULL;
  g_autoptr(GBytes) fek_out = NULL;
  g_autoptr(GPtrArray) sigs = g_ptr_array_new_with_free_func (g_free);
  g_autofree gchar *sig = NULL;
  guint8 fek[32];
  guint8 code = 0;

  sig = add_mock_key (sigs, "0", "240");
  daemon = eta_inprocess_daemon_new (ETA_HARNESS_MOCK_KEYMOD, &error);
  g_assert_no_error (error);

  for (guint i = 0; i < sizeof fek; i++)
    fek[i] = (guint8) g_random_int ();
  g_assert_true (eta_inprocess_daemon_wrap (daemon, sig, 0x09, fek, sizeof fek, &wrapped, &error));
  g_assert_no_error (error);
  /* magic 4 + (code, 32-byte FEK, checksum) 35 + pad 240 */
  g_assert_cmpuint (g_bytes_get_size (wrapped), ==, 4 + 35 + 240);

  g_assert_true (eta_inprocess_daemon_unwrap (daemon, sig, g_bytes_get_data (wrapped, NULL),
                                              g_bytes_get_size (wrapped), &code, &fek_out, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (code, ==, 0x09);
  assert_bytes (fek_out, fek, sizeof fek);

  for (guint i = 0; i < sigs->len; i++)
    g_assert_true (eta_harness_remove_user_key (g_ptr_array_index (sigs, i), NULL));
}

/* ---- harness B: the real ecryptfsd ------------------------------------ */

static void
test_player_helo (PlayerFixture *fx,
                  gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *environ_path = NULL;
  g_autofree gchar *environ_data = NULL;
  const gchar *extra_env[] = { "ETA_HARNESS_PROBE=helo-42", NULL };
  gsize len = 0;
  gboolean found = FALSE;

  (void) data;
  if (!can_run_daemon ())
    return;
  fx->module_dir = eta_kernel_player_make_module_dir (NULL, &error);
  g_assert_no_error (error);
  /* start() returns only after a valid HELO (64 00 00 00 00). */
  fx->player = eta_kernel_player_start (fx->module_dir, extra_env, &error);
  g_assert_no_error (error);
  g_assert_cmpint (eta_kernel_player_get_pid (fx->player), >, 0);
  g_assert_true (eta_kernel_player_is_alive (fx->player));
  g_assert_nonnull (eta_kernel_player_get_log (fx->player));

  /* The extra environment reached the daemon. */
  environ_path = g_strdup_printf ("/proc/%d/environ", (int) eta_kernel_player_get_pid (fx->player));
  g_assert_true (g_file_get_contents (environ_path, &environ_data, &len, &error));
  g_assert_no_error (error);
  for (gsize off = 0; off < len; off += strlen (environ_data + off) + 1)
    found = found || g_str_equal (environ_data + off, "ETA_HARNESS_PROBE=helo-42");
  g_assert_true (found);

  /* And it is idle, reading its next frame, once start() returned. */
  g_assert_true (eta_kernel_player_wait_idle (fx->player, 0, &error));
  g_assert_no_error (error);
}

static void
test_player_unknown_sig_unwrap (PlayerFixture *fx,
                                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *sig = random_sig ("ee");
  const guint8 wrapped[256] = { 0x42 };

  (void) data;
  if (!can_run_daemon ())
    return;
  player_fixture_start (fx, NULL);

  g_assert_false (eta_kernel_player_unwrap (fx->player, sig, wrapped, sizeof wrapped, 0,
                                            NULL, NULL, &error));
  g_assert_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_FAILURE_REPLY);
  g_clear_error (&error);
  g_assert_true (eta_kernel_player_is_alive (fx->player));

  /* Byte for byte: exactly 41 ff. */
  {
    g_autoptr(GBytes) payload = eta_ecryptfs_build_tag64 (sig, wrapped, 32, &error);
    g_autoptr(GBytes) reply = NULL;

    g_assert_no_error (error);
    g_assert_true (eta_kernel_player_request (fx->player, payload, 0, &reply, &error));
    g_assert_no_error (error);
    assert_bytes (reply, (const guint8 *) "\x41\xff", 2);
  }

  /* It keeps answering. */
  g_assert_false (eta_kernel_player_unwrap (fx->player, sig, wrapped, 16, 0, NULL, NULL, &error));
  g_assert_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_FAILURE_REPLY);
  g_assert_true (eta_kernel_player_is_alive (fx->player));
  g_assert_cmpuint (eta_kernel_player_get_discarded_count (fx->player), ==, 0);
}

static void
test_player_unknown_sig_wrap (PlayerFixture *fx,
                              gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GBytes) payload = NULL;
  g_autofree gchar *sig = random_sig ("ee");
  const guint8 fek[16] = { 9, 8, 7 };

  (void) data;
  if (!can_run_daemon ())
    return;
  player_fixture_start (fx, NULL);

  g_assert_false (eta_kernel_player_wrap (fx->player, sig, 0x07, fek, sizeof fek, 0, NULL, &error));
  g_assert_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_FAILURE_REPLY);
  g_clear_error (&error);

  /* Byte for byte: exactly 43 ff. */
  payload = eta_ecryptfs_build_tag66 (sig, 0x07, fek, sizeof fek, &error);
  g_assert_no_error (error);
  g_assert_true (eta_kernel_player_request (fx->player, payload, 0, &reply, &error));
  g_assert_no_error (error);
  assert_bytes (reply, (const guint8 *) "\x43\xff", 2);
  g_assert_true (eta_kernel_player_is_alive (fx->player));
}

static void
test_player_stale_frame (PlayerFixture *fx,
                         gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *sig = random_sig ("ee");
  const guint8 wrapped[64] = { 0 };

  (void) data;
  if (!can_run_daemon ())
    return;
  player_fixture_start (fx, NULL);

  g_assert_true (eta_kernel_player_send_stale_frame (fx->player, &error));
  g_assert_no_error (error);
  /* No reply to the stale frame; the next request is answered. */
  g_assert_false (eta_kernel_player_unwrap (fx->player, sig, wrapped, sizeof wrapped, 0,
                                            NULL, NULL, &error));
  g_assert_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_FAILURE_REPLY);
  g_assert_true (eta_kernel_player_is_alive (fx->player));
  g_assert_cmpuint (eta_kernel_player_get_discarded_count (fx->player), ==, 0);
}

static void
test_player_error_threshold (PlayerFixture *fx,
                             gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *sig = random_sig ("ee");
  const guint8 wrapped[64] = { 0 };
  gint status = 0;

  (void) data;
  if (!can_run_daemon ())
    return;
  player_fixture_start (fx, NULL);

  /* Eight receive errors in a row are survived, and an answered request
   * (even a 41 ff) resets the count: twice 8 + 1 keeps it alive. */
  for (guint round = 0; round < 2; round++)
    {
      for (guint i = 0; i < 8; i++)
        {
          g_assert_true (eta_kernel_player_send_stale_frame (fx->player, &error));
          g_assert_no_error (error);
        }
      g_assert_false (eta_kernel_player_unwrap (fx->player, sig, wrapped, sizeof wrapped, 0,
                                                NULL, NULL, &error));
      g_assert_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_FAILURE_REPLY);
      g_clear_error (&error);
      g_assert_true (eta_kernel_player_is_alive (fx->player));
    }

  /* The ninth in a row ends the daemon: exit(-EIO) = 251. */
  for (guint i = 0; i < 9; i++)
    {
      g_assert_true (eta_kernel_player_send_stale_frame (fx->player, &error));
      g_assert_no_error (error);
    }
  g_assert_true (eta_kernel_player_wait_exit (fx->player, 10000, &status));
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 251);
  g_assert_false (eta_kernel_player_is_alive (fx->player));

  g_assert_false (eta_kernel_player_unwrap (fx->player, sig, wrapped, sizeof wrapped, 0,
                                            NULL, NULL, &error));
  g_assert_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_DAEMON_EXITED);
}

static void
roundtrip_once (EtaKernelPlayer *player,
                const gchar     *sig,
                guint8           cipher_code,
                gsize            fek_len,
                gsize            expected_wrapped_len)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) wrapped = NULL;
  g_autoptr(GBytes) fek_out = NULL;
  guint8 fek[64];
  guint8 code = 0;

  for (gsize i = 0; i < fek_len; i++)
    fek[i] = (guint8) g_random_int ();

  g_assert_true (eta_kernel_player_wrap (player, sig, cipher_code, fek, fek_len, 0, &wrapped, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (wrapped), ==, expected_wrapped_len);

  g_assert_true (eta_kernel_player_unwrap (player, sig, g_bytes_get_data (wrapped, NULL),
                                           g_bytes_get_size (wrapped), 0, &code, &fek_out, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (code, ==, cipher_code);
  assert_bytes (fek_out, fek, fek_len);
}

static void
test_player_mock_roundtrip (PlayerFixture *fx,
                            gconstpointer  data)
{
  g_autofree gchar *short_sig = NULL;
  g_autofree gchar *long_sig = NULL;

  (void) data;
  if (!can_run_daemon ())
    return;
  short_sig = add_mock_key (fx->sigs, "0", "0");
  long_sig = add_mock_key (fx->sigs, "0", "240");
  player_fixture_start (fx, ETA_HARNESS_MOCK_KEYMOD);

  roundtrip_once (fx->player, short_sig, 0x07, 16, 4 + 19);
  roundtrip_once (fx->player, short_sig, 0x09, 32, 4 + 35);
  /* Wrapped keys of 192 bytes and more travel with two-byte lengths in the
   * tag 64 request, the tag 67 reply and both frames. */
  roundtrip_once (fx->player, long_sig, 0x07, 16, 4 + 19 + 240);
  roundtrip_once (fx->player, long_sig, 0x09, 32, 4 + 35 + 240);
  g_assert_cmpuint (eta_kernel_player_get_discarded_count (fx->player), ==, 0);

  /* libecryptfs's write_tag_67_packet() sets data_len = key + 4 whatever
   * the length form: a 1-byte length leaves one stray byte at the end
   * (the kernel ignores it); a 2-byte length fits exactly. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) payload = NULL;
    g_autoptr(GBytes) reply = NULL;
    const guint8 fek[16] = { 1, 2, 3 };

    payload = eta_ecryptfs_build_tag66 (short_sig, 0x07, fek, sizeof fek, &error);
    g_assert_no_error (error);
    g_assert_true (eta_kernel_player_request (fx->player, payload, 0, &reply, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (g_bytes_get_size (reply), ==, 2 + 1 + (4 + 19) + 1);
    g_clear_pointer (&payload, g_bytes_unref);
    g_clear_pointer (&reply, g_bytes_unref);

    payload = eta_ecryptfs_build_tag66 (long_sig, 0x07, fek, sizeof fek, &error);
    g_assert_no_error (error);
    g_assert_true (eta_kernel_player_request (fx->player, payload, 0, &reply, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (g_bytes_get_size (reply), ==, 2 + 2 + (4 + 19 + 240));
  }
}

static void
test_player_late_reply (PlayerFixture *fx,
                        gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) wrapped = NULL;
  g_autoptr(GBytes) fek_out = NULL;
  g_autofree gchar *slow = NULL;
  g_autofree gchar *fast = NULL;
  guint8 fek[16];
  guint8 code = 0;

  (void) data;
  if (!can_run_daemon ())
    return;
  slow = add_mock_key (fx->sigs, "1500", "0");
  fast = add_mock_key (fx->sigs, "0", "0");
  player_fixture_start (fx, ETA_HARNESS_MOCK_KEYMOD);

  memset (fek, 0x33, sizeof fek);
  g_assert_false (eta_kernel_player_wrap (fx->player, slow, 0x07, fek, sizeof fek, 300, NULL, &error));
  g_assert_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_TIMED_OUT);
  g_clear_error (&error);

  /* The daemon is single-threaded: it finishes the slow request, writes
   * the late reply, then answers this one. The late 43 00 … must be
   * dropped, not taken as this request's answer. */
  memset (fek, 0x44, sizeof fek);
  g_assert_true (eta_kernel_player_wrap (fx->player, fast, 0x07, fek, sizeof fek, 5000, &wrapped, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (eta_kernel_player_get_discarded_count (fx->player), ==, 1);

  g_assert_true (eta_kernel_player_unwrap (fx->player, fast, g_bytes_get_data (wrapped, NULL),
                                           g_bytes_get_size (wrapped), 0, &code, &fek_out, &error));
  g_assert_no_error (error);
  assert_bytes (fek_out, fek, sizeof fek);
  g_assert_true (eta_kernel_player_is_alive (fx->player));
}

/* Several requests outstanding at once, as the kernel queues them for
 * several openers: the single-threaded daemon answers them in order, each
 * reply goes to its own request, a request whose wait runs out while it
 * queues ends TIMED_OUT without taking another's reply, a blocking request
 * in between leaves the others' replies for collect(), and the 33rd
 * request finds no free message context. */
static void
test_player_pipelined (PlayerFixture *fx,
                       gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *slow = NULL;
  g_autofree gchar *fast = NULL;
  GBytes *wrapped[6];
  guint8 feks[6][16];
  guint32 seqs[6];
  guint32 short_seq = 0;
  guint32 done_seq[7];
  guint n_done = 0;
  gint64 previous_done = 0;

  (void) data;
  if (!can_run_daemon ())
    return;
  slow = add_mock_key (fx->sigs, "150", "0");
  fast = add_mock_key (fx->sigs, "0", "0");
  player_fixture_start (fx, ETA_HARNESS_MOCK_KEYMOD);

  for (guint i = 0; i < G_N_ELEMENTS (wrapped); i++)
    {
      memset (feks[i], (int) (0x10 + i), sizeof feks[i]);
      /* The mock's XOR has no key: wrapped fast, unwrapped slowly. */
      g_assert_true (eta_kernel_player_wrap (fx->player, fast, 0x07, feks[i], sizeof feks[i],
                                             5000, &wrapped[i], &error));
      g_assert_no_error (error);
    }

  /* Six queued at once, then one whose 200 ms run out behind them. */
  for (guint i = 0; i < G_N_ELEMENTS (wrapped); i++)
    {
      g_assert_true (eta_kernel_player_submit_unwrap (fx->player, slow,
                                                      g_bytes_get_data (wrapped[i], NULL),
                                                      g_bytes_get_size (wrapped[i]), 5000,
                                                      &seqs[i], &error));
      g_assert_no_error (error);
    }
  g_assert_true (eta_kernel_player_submit_unwrap (fx->player, slow,
                                                  g_bytes_get_data (wrapped[0], NULL),
                                                  g_bytes_get_size (wrapped[0]), 200,
                                                  &short_seq, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (eta_kernel_player_get_outstanding_count (fx->player), ==, 7);

  for (;;)
    {
      g_autoptr(EtaKernelPlayerResult) result = eta_kernel_player_collect (fx->player, 10000);
      g_autoptr(GBytes) fek = NULL;
      guint8 code = 0;
      guint i;

      if (result == NULL)
        break;
      g_assert_cmpuint (n_done, <, G_N_ELEMENTS (done_seq));
      done_seq[n_done++] = result->seq;
      if (result->seq == short_seq)
        {
          g_assert_error (result->error, ETA_KERNEL_PLAYER_ERROR,
                          ETA_KERNEL_PLAYER_ERROR_TIMED_OUT);
          g_assert_null (result->reply);
          /* At its own deadline, not when the queue ahead of it ended. */
          g_assert_cmpint (result->done_us - result->sent_us, >=, 200 * 1000);
          g_assert_cmpint (result->done_us - result->sent_us, <, 600 * 1000);
          continue;
        }
      for (i = 0; i < G_N_ELEMENTS (seqs) && seqs[i] != result->seq; i++)
        ;
      g_assert_cmpuint (i, <, G_N_ELEMENTS (seqs));
      g_assert_true (eta_kernel_player_result_get_unwrap (result, &code, &fek, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (code, ==, 0x07);
      assert_bytes (fek, feks[i], sizeof feks[i]);
      /* One at a time: each reply waited for the one before. */
      if (previous_done != 0)
        g_assert_cmpint (result->done_us - previous_done, >=, 100 * 1000);
      previous_done = result->done_us;
    }
  g_assert_cmpuint (n_done, ==, 7);
  /* The others in the order they were sent. */
  for (guint i = 0, j = 0; i < n_done; i++)
    if (done_seq[i] != short_seq)
      g_assert_cmpuint (done_seq[i], ==, seqs[j++]);
  g_assert_cmpuint (eta_kernel_player_get_outstanding_count (fx->player), ==, 0);

  /* The daemon answers the expired request as well: that late reply is
   * dropped. */
  g_assert_true (eta_kernel_player_wait_idle (fx->player, 5000, &error));
  g_assert_no_error (error);

  /* A blocking call among outstanding requests. */
  {
    g_autoptr(GBytes) fek = NULL;
    g_autoptr(EtaKernelPlayerResult) result = NULL;
    guint32 seq = 0;
    guint8 code = 0;

    g_assert_true (eta_kernel_player_submit_unwrap (fx->player, slow,
                                                    g_bytes_get_data (wrapped[1], NULL),
                                                    g_bytes_get_size (wrapped[1]), 5000,
                                                    &seq, &error));
    g_assert_no_error (error);
    g_assert_true (eta_kernel_player_unwrap (fx->player, slow, g_bytes_get_data (wrapped[2], NULL),
                                             g_bytes_get_size (wrapped[2]), 5000, &code, &fek,
                                             &error));
    g_assert_no_error (error);
    assert_bytes (fek, feks[2], sizeof feks[2]);
    g_clear_pointer (&fek, g_bytes_unref);
    result = eta_kernel_player_collect (fx->player, 0);
    g_assert_nonnull (result);
    g_assert_cmpuint (result->seq, ==, seq);
    g_assert_true (eta_kernel_player_result_get_unwrap (result, &code, &fek, &error));
    g_assert_no_error (error);
    assert_bytes (fek, feks[1], sizeof feks[1]);
  }
  g_assert_cmpuint (eta_kernel_player_get_discarded_count (fx->player), ==, 1);

  /* 32 contexts, as the kernel's default ecryptfs_message_buf_len. */
  for (guint i = 0; i < 32; i++)
    {
      g_assert_true (eta_kernel_player_submit_unwrap (fx->player, fast,
                                                      g_bytes_get_data (wrapped[0], NULL),
                                                      g_bytes_get_size (wrapped[0]), 5000,
                                                      NULL, &error));
      g_assert_no_error (error);
    }
  g_assert_false (eta_kernel_player_submit_unwrap (fx->player, fast,
                                                   g_bytes_get_data (wrapped[0], NULL),
                                                   g_bytes_get_size (wrapped[0]), 5000,
                                                   NULL, &error));
  g_assert_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_NO_CONTEXT);
  g_clear_error (&error);
  for (guint i = 0; i < 32; i++)
    {
      g_autoptr(EtaKernelPlayerResult) result = eta_kernel_player_collect (fx->player, 5000);
      g_autoptr(GBytes) fek = NULL;

      g_assert_nonnull (result);
      g_assert_true (eta_kernel_player_result_get_unwrap (result, NULL, &fek, &error));
      g_assert_no_error (error);
      assert_bytes (fek, feks[0], sizeof feks[0]);
    }
  g_assert_null (eta_kernel_player_collect (fx->player, 0));
  g_assert_true (eta_kernel_player_is_alive (fx->player));
  for (guint i = 0; i < G_N_ELEMENTS (wrapped); i++)
    g_bytes_unref (wrapped[i]);
}

/* The daemon dying ends every outstanding request with DAEMON_EXITED. */
static void
test_player_pipelined_exit (PlayerFixture *fx,
                            gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *slow = NULL;
  const guint8 wrapped[40] = { 1 };
  guint ended = 0;

  (void) data;
  if (!can_run_daemon ())
    return;
  slow = add_mock_key (fx->sigs, "300", "0");
  player_fixture_start (fx, ETA_HARNESS_MOCK_KEYMOD);

  for (guint i = 0; i < 4; i++)
    {
      g_assert_true (eta_kernel_player_submit_unwrap (fx->player, slow, wrapped, sizeof wrapped,
                                                      5000, NULL, &error));
      g_assert_no_error (error);
    }
  kill (eta_kernel_player_get_pid (fx->player), SIGKILL);
  for (;;)
    {
      g_autoptr(EtaKernelPlayerResult) result = eta_kernel_player_collect (fx->player, 5000);

      if (result == NULL)
        break;
      g_assert_error (result->error, ETA_KERNEL_PLAYER_ERROR,
                      ETA_KERNEL_PLAYER_ERROR_DAEMON_EXITED);
      ended++;
    }
  g_assert_cmpuint (ended, ==, 4);
  g_assert_false (eta_kernel_player_is_alive (fx->player));
}

/* A wrapper in front of the daemon (env here, valgrind in the key-module
 * tests) runs with the shim preloaded too and must leave the miscdev fd
 * to the daemon; terminate() gives the daemon's own exit status. */
static void
test_player_wrapped (PlayerFixture *fx,
                     gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *sig = NULL;
  const gchar *wrapper[] = { "env", "ETA_HARNESS_WRAPPED=1", NULL };
  gint status = -1;

  (void) data;
  if (!can_run_daemon ())
    return;
  sig = add_mock_key (fx->sigs, "0", "0");
  fx->module_dir = eta_kernel_player_make_module_dir (ETA_HARNESS_MOCK_KEYMOD, &error);
  g_assert_no_error (error);
  fx->player = eta_kernel_player_start_wrapped (fx->module_dir, NULL, wrapper, &error);
  g_assert_no_error (error);

  roundtrip_once (fx->player, sig, 0x07, 16, 4 + 19);
  /* ecryptfsd exit()s from its SIGTERM handler. */
  g_assert_true (eta_kernel_player_terminate (fx->player, 5000, &status, &error));
  g_assert_no_error (error);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);
  g_assert_false (eta_kernel_player_is_alive (fx->player));

  /* A wrapper that is not installed is a set-up error, not a hang. */
  {
    const gchar *missing[] = { "eta-no-such-wrapper", NULL };
    g_autoptr(EtaKernelPlayer) none = eta_kernel_player_start_wrapped (fx->module_dir, NULL,
                                                                       missing, &error);
    g_assert_null (none);
    g_assert_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_SETUP);
  }
}

static void
test_player_bad_unwrap (PlayerFixture *fx,
                        gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *sig = NULL;
  const guint8 garbage[40] = { 'N', 'O', 'P', 'E' };

  (void) data;
  if (!can_run_daemon ())
    return;
  sig = add_mock_key (fx->sigs, "0", "0");
  player_fixture_start (fx, ETA_HARNESS_MOCK_KEYMOD);

  /* A known sig whose module refuses the data: 41 ff as well. */
  g_assert_false (eta_kernel_player_unwrap (fx->player, sig, garbage, sizeof garbage, 0,
                                            NULL, NULL, &error));
  g_assert_error (error, ETA_KERNEL_PLAYER_ERROR, ETA_KERNEL_PLAYER_ERROR_FAILURE_REPLY);
  g_assert_true (eta_kernel_player_is_alive (fx->player));
}

static void
test_cli_roundtrip (PlayerFixture *fx,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *sig = NULL;
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  gint status = 0;

  (void) data;
  if (!can_run_daemon ())
    return;
  sig = add_mock_key (fx->sigs, "0", "0");
  fx->module_dir = eta_kernel_player_make_module_dir (ETA_HARNESS_MOCK_KEYMOD, &error);
  g_assert_no_error (error);

  for (guint i = 0; i < 2; i++)
    {
      const gchar *argv[] = { ETA_HARNESS_CLI, "--module-dir", fx->module_dir, "roundtrip", sig,
                              "--key-bytes", i == 0 ? "16" : "32", "--timeout-ms", "3000", NULL };

      g_clear_pointer (&out, g_free);
      g_clear_pointer (&err, g_free);
      g_assert_true (g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                                   &out, &err, &status, &error));
      g_assert_no_error (error);
      if (!g_spawn_check_wait_status (status, NULL))
        g_printerr ("%s%s", out, err);
      g_assert_true (g_spawn_check_wait_status (status, NULL));
      g_assert_nonnull (strstr (out, "match: yes"));
      g_assert_nonnull (strstr (out, i == 0 ? "cipher code 0x07" : "cipher code 0x09"));
    }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/harness/packet/length", test_packet_length);
  g_test_add_func ("/harness/packet/tag64", test_packet_tag64);
  g_test_add_func ("/harness/packet/tag66", test_packet_tag66);
  g_test_add_func ("/harness/packet/tag65", test_packet_tag65);
  g_test_add_func ("/harness/packet/tag67", test_packet_tag67);
  g_test_add_func ("/harness/packet/frame", test_packet_frame);
  g_test_add_func ("/harness/inprocess/unknown-sig", test_inprocess_unknown_sig);
  g_test_add_func ("/harness/inprocess/mock-roundtrip", test_inprocess_mock_roundtrip);

#define ADD_PLAYER_TEST(path, func) \
  g_test_add ("/harness/" path, PlayerFixture, NULL, player_fixture_setup, func, player_fixture_teardown)

  ADD_PLAYER_TEST ("player/helo", test_player_helo);
  ADD_PLAYER_TEST ("player/unknown-sig-unwrap", test_player_unknown_sig_unwrap);
  ADD_PLAYER_TEST ("player/unknown-sig-wrap", test_player_unknown_sig_wrap);
  ADD_PLAYER_TEST ("player/stale-frame", test_player_stale_frame);
  ADD_PLAYER_TEST ("player/error-threshold", test_player_error_threshold);
  ADD_PLAYER_TEST ("player/mock-roundtrip", test_player_mock_roundtrip);
  ADD_PLAYER_TEST ("player/late-reply", test_player_late_reply);
  ADD_PLAYER_TEST ("player/bad-unwrap", test_player_bad_unwrap);
  ADD_PLAYER_TEST ("player/pipelined", test_player_pipelined);
  ADD_PLAYER_TEST ("player/pipelined-exit", test_player_pipelined_exit);
  ADD_PLAYER_TEST ("player/wrapped", test_player_wrapped);
  ADD_PLAYER_TEST ("cli/roundtrip", test_cli_roundtrip);

  return g_test_run ();
}

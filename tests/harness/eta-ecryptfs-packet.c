/* eta-ecryptfs-packet.c: builds the tag 64/66 requests the kernel sends to
 * ecryptfsd and checks the tag 65/67 replies the way the kernel checks them
 * (fs/ecryptfs/keystore.c, miscdev.c), so harness results mean what they
 * would mean under the real kernel.
 */
#define G_LOG_DOMAIN "eta-harness"

#include "eta-ecryptfs-packet.h"

#include <string.h>

G_DEFINE_QUARK (eta-ecryptfs-packet-error-quark, eta_ecryptfs_packet_error)

gsize
eta_ecryptfs_write_length (guint8 *dest,
                           gsize   len)
{
  if (len < 192)
    {
      dest[0] = (guint8) len;
      return 1;
    }
  /* The kernel writes anything below 65536 in two bytes, but a first byte
   * of 224 or more cannot be parsed back: refuse those sizes here. */
  if (len <= ETA_ECRYPTFS_MAX_PACKET_LENGTH)
    {
      dest[0] = (guint8) (((len - 192) / 256) + 192);
      dest[1] = (guint8) ((len - 192) % 256);
      return 2;
    }
  return 0;
}

gboolean
eta_ecryptfs_parse_length (const guint8 *data,
                           gsize         avail,
                           gsize        *len_out,
                           gsize        *len_size_out)
{
  *len_out = 0;
  *len_size_out = 0;

  if (avail < 1)
    return FALSE;
  if (data[0] < 192)
    {
      *len_out = data[0];
      *len_size_out = 1;
      return TRUE;
    }
  if (data[0] < 224)
    {
      if (avail < 2)
        return FALSE;
      *len_out = ((gsize) data[0] - 192) * 256 + (gsize) data[1] + 192;
      *len_size_out = 2;
      return TRUE;
    }
  /* 224..254 (partial lengths) and 255 (five bytes): the kernel refuses. */
  return FALSE;
}

guint16
eta_ecryptfs_fek_checksum (const guint8 *fek,
                           gsize         fek_len)
{
  guint16 sum = 0;

  for (gsize i = 0; i < fek_len; i++)
    sum = (guint16) (sum + fek[i]);
  return sum;
}

gboolean
eta_ecryptfs_cipher_code_is_known (guint8 code)
{
  switch (code)
    {
    case ETA_ECRYPTFS_CIPHER_DES3_EDE:
    case ETA_ECRYPTFS_CIPHER_CAST5:
    case ETA_ECRYPTFS_CIPHER_BLOWFISH:
    case ETA_ECRYPTFS_CIPHER_AES_128:
    case ETA_ECRYPTFS_CIPHER_AES_192:
    case ETA_ECRYPTFS_CIPHER_AES_256:
    case ETA_ECRYPTFS_CIPHER_TWOFISH:
    case ETA_ECRYPTFS_CIPHER_CAST6:
      return TRUE;
    default:
      return FALSE;
    }
}

gboolean
eta_ecryptfs_sig_is_valid (const gchar *sig)
{
  if (sig == NULL || strlen (sig) != ETA_ECRYPTFS_SIG_HEX_LEN)
    return FALSE;
  for (const gchar *p = sig; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
      return FALSE;
  return TRUE;
}

static gboolean
check_request_sig (const gchar *sig,
                   GError     **error)
{
  /* The kernel always sends the 16 hex characters of the auth tok's sig;
   * other content is allowed so tests can probe the daemon with it. */
  if (sig == NULL || strlen (sig) != ETA_ECRYPTFS_SIG_HEX_LEN)
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_INVALID,
                   "Signature must be %d characters", ETA_ECRYPTFS_SIG_HEX_LEN);
      return FALSE;
    }
  return TRUE;
}

GBytes *
eta_ecryptfs_build_tag64 (const gchar  *sig,
                          const guint8 *wrapped,
                          gsize         wrapped_len,
                          GError      **error)
{
  g_autoptr(GByteArray) out = NULL;
  guint8 len_buf[2];
  gsize n;

  if (!check_request_sig (sig, error))
    return NULL;
  if (wrapped_len > ETA_ECRYPTFS_MAX_ENCRYPTED_KEY_BYTES)
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_INVALID,
                   "Wrapped key of %" G_GSIZE_FORMAT " bytes exceeds the kernel's %d",
                   wrapped_len, ETA_ECRYPTFS_MAX_ENCRYPTED_KEY_BYTES);
      return NULL;
    }

  out = g_byte_array_sized_new (5 + ETA_ECRYPTFS_SIG_HEX_LEN + wrapped_len);
  g_byte_array_append (out, (const guint8 []) { ETA_ECRYPTFS_TAG_64 }, 1);
  n = eta_ecryptfs_write_length (len_buf, ETA_ECRYPTFS_SIG_HEX_LEN);
  g_byte_array_append (out, len_buf, (guint) n);
  g_byte_array_append (out, (const guint8 *) sig, ETA_ECRYPTFS_SIG_HEX_LEN);
  n = eta_ecryptfs_write_length (len_buf, wrapped_len);
  g_byte_array_append (out, len_buf, (guint) n);
  if (wrapped_len > 0)
    g_byte_array_append (out, wrapped, (guint) wrapped_len);

  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

GBytes *
eta_ecryptfs_build_tag66 (const gchar  *sig,
                          guint8        cipher_code,
                          const guint8 *fek,
                          gsize         fek_len,
                          GError      **error)
{
  g_autoptr(GByteArray) out = NULL;
  guint8 len_buf[2];
  guint8 trailer[2];
  guint16 checksum;
  gsize n;

  if (!check_request_sig (sig, error))
    return NULL;
  if (fek_len == 0 || fek_len > ETA_ECRYPTFS_MAX_KEY_BYTES)
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_INVALID,
                   "FEK of %" G_GSIZE_FORMAT " bytes is outside 1..%d",
                   fek_len, ETA_ECRYPTFS_MAX_KEY_BYTES);
      return NULL;
    }

  out = g_byte_array_sized_new (5 + ETA_ECRYPTFS_SIG_HEX_LEN + fek_len + 3);
  g_byte_array_append (out, (const guint8 []) { ETA_ECRYPTFS_TAG_66 }, 1);
  n = eta_ecryptfs_write_length (len_buf, ETA_ECRYPTFS_SIG_HEX_LEN);
  g_byte_array_append (out, len_buf, (guint) n);
  g_byte_array_append (out, (const guint8 *) sig, ETA_ECRYPTFS_SIG_HEX_LEN);
  /* The key material the module wraps: cipher code, FEK, checksum. */
  n = eta_ecryptfs_write_length (len_buf, fek_len + 3);
  g_byte_array_append (out, len_buf, (guint) n);
  g_byte_array_append (out, &cipher_code, 1);
  g_byte_array_append (out, fek, (guint) fek_len);
  checksum = eta_ecryptfs_fek_checksum (fek, fek_len);
  trailer[0] = (guint8) (checksum >> 8);
  trailer[1] = (guint8) (checksum & 0xff);
  g_byte_array_append (out, trailer, 2);

  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

/* Tag, status and length of a 65/67 reply; returns the body offset/size. */
static gboolean
parse_reply_head (const guint8 *data,
                  gsize         len,
                  guint8        tag,
                  gsize        *body_off,
                  gsize        *body_len,
                  GError      **error)
{
  gsize len_size;

  if (len < 1 || data[0] != tag)
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_WRONG_TAG,
                   "Reply tag is 0x%02x, expected 0x%02x",
                   len < 1 ? 0u : (guint) data[0], (guint) tag);
      return FALSE;
    }
  if (len >= 2 && data[1] != 0)
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_FAILURE_STATUS,
                   "Daemon reported failure (status 0x%02x)", (guint) data[1]);
      return FALSE;
    }
  if (len < 4)
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_MALFORMED,
                   "Reply of %" G_GSIZE_FORMAT " bytes is shorter than 4", len);
      return FALSE;
    }
  if (!eta_ecryptfs_parse_length (data + 2, len - 2, body_len, &len_size))
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_MALFORMED,
                   "Reply length field 0x%02x is not a valid length",
                   (guint) data[2]);
      return FALSE;
    }
  *body_off = 2 + len_size;
  if (len < *body_off + *body_len)
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_MALFORMED,
                   "Reply claims %" G_GSIZE_FORMAT " bytes of key but holds %" G_GSIZE_FORMAT,
                   *body_len, len - *body_off);
      return FALSE;
    }
  return TRUE;
}

gboolean
eta_ecryptfs_parse_tag65 (const guint8 *data,
                          gsize         len,
                          guint8       *cipher_code_out,
                          GBytes      **fek_out,
                          GError      **error)
{
  gsize off, m_size, fek_len;
  guint16 expected, actual;
  const guint8 *fek;
  guint8 code;

  if (!parse_reply_head (data, len, ETA_ECRYPTFS_TAG_65, &off, &m_size, error))
    return FALSE;
  if (m_size < 3)
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_MALFORMED,
                   "Decrypted key of %" G_GSIZE_FORMAT " bytes cannot hold a cipher code and checksum",
                   m_size);
      return FALSE;
    }
  code = data[off];
  fek = data + off + 1;
  fek_len = m_size - 3;
  if (fek_len > ETA_ECRYPTFS_MAX_KEY_BYTES)
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_MALFORMED,
                   "Decrypted key of %" G_GSIZE_FORMAT " bytes exceeds %d",
                   fek_len, ETA_ECRYPTFS_MAX_KEY_BYTES);
      return FALSE;
    }
  expected = (guint16) ((fek[fek_len] << 8) | fek[fek_len + 1]);
  actual = eta_ecryptfs_fek_checksum (fek, fek_len);
  if (expected != actual)
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_BAD_CHECKSUM,
                   "FEK checksum 0x%04x does not match the computed 0x%04x",
                   (guint) expected, (guint) actual);
      return FALSE;
    }
  /* decrypt_pki_encrypted_session_key() refuses unknown cipher codes. */
  if (!eta_ecryptfs_cipher_code_is_known (code))
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_BAD_CIPHER,
                   "Cipher code 0x%02x is not one the kernel knows", (guint) code);
      return FALSE;
    }

  if (cipher_code_out)
    *cipher_code_out = code;
  if (fek_out)
    *fek_out = g_bytes_new (fek, fek_len);
  return TRUE;
}

gboolean
eta_ecryptfs_parse_tag67 (const guint8 *data,
                          gsize         len,
                          GBytes      **wrapped_out,
                          GError      **error)
{
  gsize off, size;

  if (!parse_reply_head (data, len, ETA_ECRYPTFS_TAG_67, &off, &size, error))
    return FALSE;
  if (size > ETA_ECRYPTFS_MAX_ENCRYPTED_KEY_BYTES)
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_MALFORMED,
                   "Wrapped key of %" G_GSIZE_FORMAT " bytes exceeds %d",
                   size, ETA_ECRYPTFS_MAX_ENCRYPTED_KEY_BYTES);
      return FALSE;
    }
  if (wrapped_out)
    *wrapped_out = g_bytes_new (data + off, size);
  return TRUE;
}

GBytes *
eta_ecryptfs_frame_encode_bare (guint8  type,
                                guint32 seq)
{
  guint8 buf[ETA_ECRYPTFS_BARE_FRAME_SIZE];
  guint32 seq_be = GUINT32_TO_BE (seq);

  buf[0] = type;
  memcpy (buf + 1, &seq_be, 4);
  return g_bytes_new (buf, sizeof buf);
}

GBytes *
eta_ecryptfs_frame_encode (guint8        type,
                           guint32       seq,
                           guint32       index,
                           const guint8 *data,
                           gsize         data_len,
                           GError      **error)
{
  g_autoptr(GByteArray) out = NULL;
  guint32 seq_be = GUINT32_TO_BE (seq);
  guint32 data_len32 = (guint32) data_len;
  guint8 len_buf[2];
  gsize n;

  n = eta_ecryptfs_write_length (len_buf, 8 + data_len);
  if (n == 0)
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_INVALID,
                   "Message of %" G_GSIZE_FORMAT " bytes is too large for a frame",
                   data_len);
      return NULL;
    }

  out = g_byte_array_sized_new (1 + 4 + 2 + 8 + data_len);
  g_byte_array_append (out, &type, 1);
  g_byte_array_append (out, (const guint8 *) &seq_be, 4);
  g_byte_array_append (out, len_buf, (guint) n);
  /* struct ecryptfs_message is copied raw: host byte order. */
  g_byte_array_append (out, (const guint8 *) &index, 4);
  g_byte_array_append (out, (const guint8 *) &data_len32, 4);
  if (data_len > 0)
    g_byte_array_append (out, data, (guint) data_len);

  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

gboolean
eta_ecryptfs_frame_decode (const guint8     *buf,
                           gsize             len,
                           EtaEcryptfsFrame *frame,
                           GError          **error)
{
  guint32 seq_be;
  gsize msg_len, len_size;

  memset (frame, 0, sizeof *frame);
  if (len < ETA_ECRYPTFS_BARE_FRAME_SIZE)
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_MALFORMED,
                   "Frame of %" G_GSIZE_FORMAT " bytes is shorter than 5", len);
      return FALSE;
    }
  frame->type = buf[0];
  memcpy (&seq_be, buf + 1, 4);
  frame->seq = GUINT32_FROM_BE (seq_be);
  if (len == ETA_ECRYPTFS_BARE_FRAME_SIZE)
    return TRUE;

  if (!eta_ecryptfs_parse_length (buf + 5, len - 5, &msg_len, &len_size))
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_MALFORMED,
                   "Frame length field 0x%02x is not a valid length",
                   (guint) buf[5]);
      return FALSE;
    }
  if (5 + len_size + msg_len != len)
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_MALFORMED,
                   "Frame of %" G_GSIZE_FORMAT " bytes announces a %" G_GSIZE_FORMAT "-byte message",
                   len, msg_len);
      return FALSE;
    }
  if (msg_len < 8)
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_MALFORMED,
                   "Message of %" G_GSIZE_FORMAT " bytes cannot hold index and data_len",
                   msg_len);
      return FALSE;
    }
  memcpy (&frame->index, buf + 5 + len_size, 4);
  memcpy (&frame->data_len, buf + 5 + len_size + 4, 4);
  if ((gsize) frame->data_len != msg_len - 8)
    {
      g_set_error (error, ETA_ECRYPTFS_PACKET_ERROR,
                   ETA_ECRYPTFS_PACKET_ERROR_MALFORMED,
                   "Message data_len %u does not match the %" G_GSIZE_FORMAT " bytes present",
                   frame->data_len, msg_len - 8);
      return FALSE;
    }
  frame->has_message = TRUE;
  frame->data = buf + 5 + len_size + 8;
  return TRUE;
}

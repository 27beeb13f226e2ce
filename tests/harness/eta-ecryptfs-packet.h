/* eta-ecryptfs-packet.h: the bytes the eCryptfs kernel module and ecryptfsd
 * exchange, built and checked the way fs/ecryptfs/{keystore,miscdev}.c do,
 * so tests can play the kernel without the kernel filesystem.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Frame types on /dev/ecryptfs. */
#define ETA_ECRYPTFS_MSG_HELO     100
#define ETA_ECRYPTFS_MSG_QUIT     101
#define ETA_ECRYPTFS_MSG_REQUEST  102
#define ETA_ECRYPTFS_MSG_RESPONSE 103

/* Packet tags inside struct ecryptfs_message data. */
#define ETA_ECRYPTFS_TAG_64 0x40 /* decrypt request  (kernel → daemon) */
#define ETA_ECRYPTFS_TAG_65 0x41 /* decrypt reply    (daemon → kernel) */
#define ETA_ECRYPTFS_TAG_66 0x42 /* encrypt request  (kernel → daemon) */
#define ETA_ECRYPTFS_TAG_67 0x43 /* encrypt reply    (daemon → kernel) */

/* Cipher codes (RFC 2440 numbering, as fs/ecryptfs/crypto.c maps them). */
#define ETA_ECRYPTFS_CIPHER_DES3_EDE 0x02
#define ETA_ECRYPTFS_CIPHER_CAST5    0x03
#define ETA_ECRYPTFS_CIPHER_BLOWFISH 0x04
#define ETA_ECRYPTFS_CIPHER_AES_128  0x07
#define ETA_ECRYPTFS_CIPHER_AES_192  0x08
#define ETA_ECRYPTFS_CIPHER_AES_256  0x09
#define ETA_ECRYPTFS_CIPHER_TWOFISH  0x0a
#define ETA_ECRYPTFS_CIPHER_CAST6    0x0b

#define ETA_ECRYPTFS_SIG_HEX_LEN              16
#define ETA_ECRYPTFS_MAX_KEY_BYTES            64   /* FEK */
#define ETA_ECRYPTFS_MAX_ENCRYPTED_KEY_BYTES  512  /* wrapped FEK */
/* Size of the buffer ecryptfsd reads one frame into. */
#define ETA_ECRYPTFS_DAEMON_READ_SIZE         1024
/* Bare frame (HELO, QUIT, stale request): type + seq. */
#define ETA_ECRYPTFS_BARE_FRAME_SIZE          5
/* Largest frame the kernel's miscdev write accepts from the daemon. */
#define ETA_ECRYPTFS_MAX_DAEMON_FRAME_SIZE    (1 + 4 + 2 + 8 + 4 + ETA_ECRYPTFS_MAX_ENCRYPTED_KEY_BYTES)
/* Largest length the 1-or-2 byte OpenPGP-style form can hold. */
#define ETA_ECRYPTFS_MAX_PACKET_LENGTH        8383

#define ETA_ECRYPTFS_PACKET_ERROR (eta_ecryptfs_packet_error_quark ())

typedef enum {
  ETA_ECRYPTFS_PACKET_ERROR_INVALID,        /* caller gave unusable input */
  ETA_ECRYPTFS_PACKET_ERROR_FAILURE_STATUS, /* well-formed 41 ff / 43 ff */
  ETA_ECRYPTFS_PACKET_ERROR_MALFORMED,      /* lengths or sizes wrong */
  ETA_ECRYPTFS_PACKET_ERROR_WRONG_TAG,      /* not the expected tag */
  ETA_ECRYPTFS_PACKET_ERROR_BAD_CIPHER,     /* unknown cipher code */
  ETA_ECRYPTFS_PACKET_ERROR_BAD_CHECKSUM,   /* FEK checksum mismatch */
} EtaEcryptfsPacketError;

GQuark    eta_ecryptfs_packet_error_quark (void);

/* Writes @len in the 1-or-2 byte form into @dest (≥ 2 bytes); returns the
 * number of bytes used, or 0 if @len does not fit (> 8383). */
gsize     eta_ecryptfs_write_length  (guint8       *dest,
                                      gsize         len);
/* Parses a 1-or-2 byte length with the kernel's rules, never reading past
 * @avail bytes. */
gboolean  eta_ecryptfs_parse_length  (const guint8 *data,
                                      gsize         avail,
                                      gsize        *len_out,
                                      gsize        *len_size_out);

/* 16-bit sum of the FEK bytes, as the kernel computes it. */
guint16   eta_ecryptfs_fek_checksum  (const guint8 *fek,
                                      gsize         fek_len);

/* TRUE if @code is one ecryptfs_cipher_code_to_string() knows. */
gboolean  eta_ecryptfs_cipher_code_is_known (guint8 code);

/* Tag 64: 0x40 | len | sig | len | wrapped key. */
GBytes   *eta_ecryptfs_build_tag64   (const gchar  *sig,
                                      const guint8 *wrapped,
                                      gsize         wrapped_len,
                                      GError      **error);
/* Tag 66: 0x42 | len | sig | len(K+3) | cipher code | FEK | checksum BE16. */
GBytes   *eta_ecryptfs_build_tag66   (const gchar  *sig,
                                      guint8        cipher_code,
                                      const guint8 *fek,
                                      gsize         fek_len,
                                      GError      **error);

/* Checks a tag 65 reply as parse_tag_65_packet() and its caller do
 * (tag, status, length, size bounds, cipher code, checksum). Trailing
 * bytes are tolerated like the kernel tolerates them. A 41 ff reply gives
 * ETA_ECRYPTFS_PACKET_ERROR_FAILURE_STATUS. */
gboolean  eta_ecryptfs_parse_tag65   (const guint8 *data,
                                      gsize         len,
                                      guint8       *cipher_code_out,
                                      GBytes      **fek_out,
                                      GError      **error);
/* Checks a tag 67 reply as parse_tag_67_packet() does. */
gboolean  eta_ecryptfs_parse_tag67   (const guint8 *data,
                                      gsize         len,
                                      GBytes      **wrapped_out,
                                      GError      **error);

/* One /dev/ecryptfs frame, decoded. @data points into the decoded buffer. */
typedef struct {
  guint8        type;
  guint32       seq;
  gboolean      has_message;
  guint32       index;
  guint32       data_len;
  const guint8 *data;
} EtaEcryptfsFrame;

/* type | seq BE32 (5 bytes, HELO/QUIT/stale request). */
GBytes   *eta_ecryptfs_frame_encode_bare (guint8        type,
                                          guint32       seq);
/* type | seq BE32 | len | struct ecryptfs_message {index, data_len, data}
 * (host order), as ecryptfs_miscdev_read() and ecryptfs_send_miscdev()
 * write it. NULL if @data_len does not fit the length form. */
GBytes   *eta_ecryptfs_frame_encode      (guint8        type,
                                          guint32       seq,
                                          guint32       index,
                                          const guint8 *data,
                                          gsize         data_len,
                                          GError      **error);
/* Decodes a frame with the checks ecryptfs_miscdev_write() makes on what
 * the daemon writes (5-byte bare frames, or 6..531 bytes with exact
 * length, RESPONSE needing a whole struct ecryptfs_message and a matching
 * data_len). */
gboolean  eta_ecryptfs_frame_decode      (const guint8     *buf,
                                          gsize             len,
                                          EtaEcryptfsFrame *frame,
                                          GError          **error);

/* TRUE if @sig is exactly 16 lowercase hex characters. */
gboolean  eta_ecryptfs_sig_is_valid      (const gchar *sig);

G_END_DECLS

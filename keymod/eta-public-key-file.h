/* Public keys from files: a certificate or public key named by the `pubkey`
 * parameter, and the record `ecryptfs-token add-key` saves at enrolment, so
 * that a blob can be built where the agent is out of reach (root's
 * mount.ecryptfs, sudo, fstab). */
#pragma once

#include <glib.h>

#include "eta-blob.h"

/* What a saved enrolment record holds. */
typedef struct
{
  GBytes *spki;
  gchar *fingerprint_hex;
  gchar *key_label;
  gchar *token_label;
  EtaPadding padding;
} EtaPublicKeyRecord;

void eta_public_key_record_free (EtaPublicKeyRecord *record);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EtaPublicKeyRecord, eta_public_key_record_free)

/* Reads a PEM or DER certificate or public key; returns the SPKI DER. The
 * label is the certificate's subject CN, or the file's base name, as UTF-8. */
EtaPublicKeyRecord *eta_public_key_load_file (const gchar *path, GError **error);
/* The same from @length bytes already read (any bytes, not NUL-terminated);
 * @name (a path) stands for the file in messages and the label. */
EtaPublicKeyRecord *eta_public_key_load_data (const guint8 *data, gsize length,
                                              const gchar *name, GError **error);

/* Directories searched for enrolment records, most specific first:
 * $XDG_DATA_HOME (or ~/.local/share)/ecryptfs-token-agent/keys, the same under
 * the home of $SUDO_USER when run through sudo, then the system directory. */
GStrv eta_public_key_record_dirs (void);

/* Finds the one record whose fingerprint starts with @fingerprint_prefix.
 * G_IO_ERROR_NOT_FOUND when none, G_IO_ERROR_EXISTS when the prefix is
 * ambiguous. */
EtaPublicKeyRecord *eta_public_key_find_record (const gchar *fingerprint_prefix,
                                                GError **error);

/* Reads a saved enrolment record (a key file as eta_public_key_save_record
 * writes it) from @length bytes; @name stands for the file in messages. */
EtaPublicKeyRecord *eta_public_key_parse_record (const gchar *data, gsize length,
                                                 const gchar *name, GError **error);

/* Every readable record of every directory, one per key (the most specific
 * directory's), as EtaPublicKeyRecord; unreadable files are left out. */
GPtrArray *eta_public_key_list_records (void);

/* Saves @record as <fingerprint>.key in @dir (created 0700). */
gboolean eta_public_key_save_record (const EtaPublicKeyRecord *record,
                                     const gchar *dir, gchar **path_out,
                                     GError **error);

/* TRUE if @text is lowercase hex of at least ETA_FINGERPRINT_MIN_PREFIX and at
 * most 64 digits. Upper case is folded by the callers before. */
gboolean eta_fingerprint_prefix_is_valid (const gchar *text);

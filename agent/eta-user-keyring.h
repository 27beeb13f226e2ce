/* Our auth tokens in the user keyring: keys of type "user" named by the
 * key's eCryptfs sig (16 hex digits), whose payload is libecryptfs's struct
 * ecryptfs_auth_tok followed by the key module's blob. Read with keyctl
 * only, never request_key, which may call out to a helper program. */
#pragma once

#include <glib.h>

#include "eta-blob.h"

/* Bytes of libecryptfs's struct ecryptfs_auth_tok before the blob. */
#define ETA_AUTH_TOK_BLOB_OFFSET 670

/* TRUE if @payload (an auth token's, @len bytes) carries one of our blobs,
 * parsed into @blob (which points into @payload). */
gboolean eta_user_keyring_parse_auth_tok (const guint8 *payload, gsize len, EtaBlob *blob);

/* The sigs of our auth tokens in the user keyring (NULL-terminated, possibly
 * empty): the keys enrolled or mounted in this session. */
GStrv eta_user_keyring_list_sigs (void);

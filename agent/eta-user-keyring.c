/* See eta-user-keyring.h. */
#include "config.h"

#include "eta-user-keyring.h"

#include <keyutils.h>

#include "eta-key-id.h"

gboolean
eta_user_keyring_parse_auth_tok (const guint8 *payload, gsize len, EtaBlob *blob)
{
  if (payload == NULL || len <= ETA_AUTH_TOK_BLOB_OFFSET)
    return FALSE;
  return eta_blob_parse (payload + ETA_AUTH_TOK_BLOB_OFFSET, len - ETA_AUTH_TOK_BLOB_OFFSET,
                         blob) == ETA_BLOB_OK;
}

static gboolean
is_sig (const gchar *text)
{
  gsize n = 0;

  for (; text[n] != '\0'; n++)
    if (!g_ascii_isxdigit (text[n]))
      return FALSE;
  return n == ETA_KEY_SIG_HEX_LEN;
}

/* The sig of @key if it is one of our auth tokens, else NULL. */
static gchar *
auth_tok_sig (key_serial_t key)
{
  g_autofree gchar *description = NULL;
  g_autofree guint8 *payload = NULL;
  g_auto (GStrv) fields = NULL;
  void *buffer = NULL;
  EtaBlob blob;
  long len;

  if (keyctl_describe_alloc (key, &description) < 0)
    return NULL;
  /* "type;uid;gid;perm;description" */
  fields = g_strsplit (description, ";", 5);
  if (g_strv_length (fields) != 5 || !g_str_equal (fields[0], "user") || !is_sig (fields[4]))
    return NULL;
  len = keyctl_read_alloc (key, &buffer);
  payload = buffer;
  if (len < 0 || !eta_user_keyring_parse_auth_tok (payload, (gsize) len, &blob))
    return NULL;
  return g_ascii_strdown (fields[4], -1);
}

GStrv
eta_user_keyring_list_sigs (void)
{
  g_autoptr (GStrvBuilder) sigs = g_strv_builder_new ();
  g_autofree key_serial_t *keys = NULL;
  void *buffer = NULL;
  long len = keyctl_read_alloc (KEY_SPEC_USER_KEYRING, &buffer);

  keys = buffer;
  for (long i = 0; len > 0 && i < len / (long) sizeof (key_serial_t); i++)
    {
      g_autofree gchar *sig = auth_tok_sig (keys[i]);

      if (sig != NULL)
        g_strv_builder_add (sigs, sig);
    }
  return g_strv_builder_end (sigs);
}

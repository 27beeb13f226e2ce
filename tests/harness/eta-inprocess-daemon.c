/* eta-inprocess-daemon.c: harness A, libecryptfs's request path without
 * ecryptfsd: module loading as in ecryptfs_register_key_modules() (which
 * cannot be pointed at another directory), tokens added with libecryptfs's
 * own function, requests answered by its exported parse_packet().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define G_LOG_DOMAIN "eta-harness"

#include "eta-inprocess-daemon.h"
#include "eta-ecryptfs-packet.h"

#include <dlfcn.h>
#include <ecryptfs.h>
#include <errno.h>
#include <keyutils.h>
#include <stdlib.h>
#include <string.h>

struct _EtaInprocessDaemon
{
  struct ecryptfs_ctx ctx;
};

G_DEFINE_QUARK (eta-inprocess-daemon-error-quark, eta_inprocess_daemon_error)

gboolean
eta_inprocess_daemon_load_module (EtaInprocessDaemon *self,
                                  const gchar        *keymod_path,
                                  GError            **error)
{
  struct ecryptfs_key_mod_ops *(*get_ops) (void);
  struct ecryptfs_key_mod *key_mod;
  struct ecryptfs_key_mod *tail;
  void *handle;
  int rc;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (keymod_path != NULL, FALSE);

  handle = dlopen (keymod_path, RTLD_LAZY);
  if (handle == NULL)
    {
      g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILED,
                   "dlopen(%s): %s", keymod_path, dlerror ());
      return FALSE;
    }
  get_ops = (struct ecryptfs_key_mod_ops *(*) (void)) dlsym (handle, "get_key_mod_ops");
  if (get_ops == NULL)
    {
      g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILED,
                   "%s exports no get_key_mod_ops", keymod_path);
      dlclose (handle);
      return FALSE;
    }

  /* libecryptfs free()s these structs: allocate them with its allocator. */
  key_mod = calloc (1, sizeof *key_mod);
  if (key_mod == NULL)
    g_error ("Out of memory");
  key_mod->ops = get_ops ();
  if (key_mod->ops == NULL)
    {
      g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILED,
                   "get_key_mod_ops() of %s returned NULL", keymod_path);
      free (key_mod);
      dlclose (handle);
      return FALSE;
    }
  ecryptfs_fill_in_dummy_ops (key_mod->ops);
  rc = key_mod->ops->init (&key_mod->alias);
  if (rc != 0)
    {
      /* libecryptfs drops such a module for the life of the process. */
      g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILED,
                   "init() of %s returned %d", keymod_path, rc);
      free (key_mod);
      dlclose (handle);
      return FALSE;
    }
  key_mod->lib_handle = handle;
  key_mod->lib_path = strdup (keymod_path);

  for (tail = &self->ctx.key_mod_list_head; tail->next != NULL; tail = tail->next)
    ;
  tail->next = key_mod;
  g_debug ("Loaded key module %s with alias “%s”", keymod_path,
           key_mod->alias ? key_mod->alias : "(null)");
  return TRUE;
}

EtaInprocessDaemon *
eta_inprocess_daemon_new (const gchar *keymod_path,
                          GError     **error)
{
  g_autoptr(EtaInprocessDaemon) self = g_new0 (EtaInprocessDaemon, 1);

  if (keymod_path != NULL && !eta_inprocess_daemon_load_module (self, keymod_path, error))
    return NULL;

  if (ecryptfs_validate_keyring () != 0)
    {
      g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILED,
                   "ecryptfs_validate_keyring() could not link @u into the session keyring");
      return NULL;
    }
  return g_steal_pointer (&self);
}

const gchar *
eta_inprocess_daemon_get_alias (EtaInprocessDaemon *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  if (self->ctx.key_mod_list_head.next == NULL)
    return NULL;
  return self->ctx.key_mod_list_head.next->alias;
}

struct ecryptfs_ctx *
eta_inprocess_daemon_get_ctx (EtaInprocessDaemon *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return &self->ctx;
}

struct ecryptfs_key_mod *
eta_inprocess_daemon_find_module (EtaInprocessDaemon *self,
                                  const gchar        *alias)
{
  struct ecryptfs_key_mod *key_mod = NULL;

  g_return_val_if_fail (self != NULL, NULL);
  if (alias == NULL)
    return self->ctx.key_mod_list_head.next;
  if (ecryptfs_find_key_mod (&key_mod, &self->ctx, (char *) alias) != 0)
    return NULL;
  return key_mod;
}

gchar *
eta_inprocess_daemon_add_key (EtaInprocessDaemon  *self,
                              const gchar         *alias,
                              const gchar * const *names,
                              const gchar * const *values,
                              GError             **error)
{
  struct ecryptfs_key_mod *key_mod;
  struct key_mod_param *params = NULL;
  struct key_mod_param_val *vals = NULL;
  uint32_t num_params = 0, num_vals = 0;
  char sig[ECRYPTFS_SIG_SIZE_HEX + 1];
  gchar *result = NULL;
  size_t blob_size = 0;
  gsize n_names;
  int rc;

  g_return_val_if_fail (self != NULL, NULL);

  n_names = names != NULL ? g_strv_length ((gchar **) names) : 0;
  if ((values != NULL ? g_strv_length ((gchar **) values) : 0) != n_names)
    {
      g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILED,
                   "Parameter names and values differ in number");
      return NULL;
    }

  key_mod = eta_inprocess_daemon_find_module (self, alias);
  if (key_mod == NULL)
    {
      g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILED,
                   "No key module with alias “%s” is loaded", alias ? alias : "(any)");
      return NULL;
    }

  rc = key_mod->ops->get_params (&params, &num_params);
  if (rc != 0)
    {
      g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILED,
                   "get_params() returned %d", rc);
      return NULL;
    }
  for (gsize i = 0; i < n_names; i++)
    {
      gboolean known = FALSE;

      for (uint32_t j = 0; j < num_params && !known; j++)
        known = params[j].option != NULL && g_str_equal (params[j].option, names[i]);
      if (!known)
        {
          g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILED,
                       "Key module “%s” has no parameter “%s”", key_mod->alias, names[i]);
          return NULL;
        }
    }

  /* Matched by position in get_params() order, as the mount helper's
   * linear subgraph delivers them. */
  vals = g_new0 (struct key_mod_param_val, MAX (num_params, 1));
  for (uint32_t j = 0; j < num_params; j++)
    {
      const gchar *value = params[j].default_val;

      for (gsize i = 0; i < n_names; i++)
        if (params[j].option != NULL && g_str_equal (params[j].option, names[i]))
          value = values[i];
      if (value == NULL)
        continue;
      vals[num_vals].id = params[j].id;
      vals[num_vals].val = g_strdup (value);
      num_vals++;
    }

  /* ecryptfs_add_key_module_key_to_keyring() wipes an uninitialised
   * pointer when the size query fails: check that query first. */
  rc = key_mod->ops->get_blob (NULL, &blob_size, vals, num_vals);
  if (rc != 0 || blob_size == 0)
    {
      g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILED,
                   "get_blob() size query returned %d (size %zu)", rc, blob_size);
      goto out;
    }

  key_mod->param_vals = vals;
  key_mod->num_param_vals = num_vals;
  key_mod->blob = NULL;
  memset (sig, 0, sizeof sig);
  rc = ecryptfs_add_key_module_key_to_keyring (sig, key_mod);
  key_mod->param_vals = NULL;
  key_mod->num_param_vals = 0;
  if (rc < 0)
    {
      g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILED,
                   "ecryptfs_add_key_module_key_to_keyring() returned %d", rc);
      goto out;
    }
  if (rc == 1)
    g_debug ("A key with sig %s was already in @u; kept it", sig);
  if (!eta_ecryptfs_sig_is_valid (sig))
    {
      g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILED,
                   "Key module gave sig “%s”, not 16 lowercase hex characters", sig);
      goto out;
    }
  result = g_strdup (sig);

out:
  for (uint32_t j = 0; j < num_vals; j++)
    g_free (vals[j].val);
  g_free (vals);
  return result;
}

GBytes *
eta_inprocess_daemon_process (EtaInprocessDaemon *self,
                              GBytes             *request,
                              GError            **error)
{
  struct ecryptfs_message *emsg;
  struct ecryptfs_message *reply = NULL;
  const guint8 *data;
  GBytes *result;
  gsize len;
  int rc;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (request != NULL, NULL);

  data = g_bytes_get_data (request, &len);
  if (len == 0 || len > ETA_ECRYPTFS_DAEMON_READ_SIZE)
    {
      g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILED,
                   "Request of %" G_GSIZE_FORMAT " bytes cannot come from the kernel", len);
      return NULL;
    }
  /* parse_packet() trusts the inner lengths; zeroed slack keeps a short
   * probe packet from reading beyond the allocation. */
  emsg = g_malloc0 (sizeof *emsg + ETA_ECRYPTFS_DAEMON_READ_SIZE);
  emsg->index = 0;
  emsg->data_len = (uint32_t) len;
  memcpy (emsg->data, data, len);

  rc = parse_packet (&self->ctx, emsg, &reply);
  g_free (emsg);
  if (rc != 0)
    {
      free (reply);
      g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_NO_REPLY,
                   "parse_packet() returned %d: ecryptfsd would send no reply", rc);
      return NULL;
    }
  if (reply == NULL)
    {
      g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_NO_REPLY,
                   "parse_packet() succeeded without a reply");
      return NULL;
    }
  result = g_bytes_new (reply->data, reply->data_len);
  free (reply);
  return result;
}

static void
set_reply_error (GError **error,
                 GError  *packet_error)
{
  if (g_error_matches (packet_error, ETA_ECRYPTFS_PACKET_ERROR,
                       ETA_ECRYPTFS_PACKET_ERROR_FAILURE_STATUS))
    g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILURE_REPLY,
                 "%s", packet_error->message);
  else
    g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_PROTOCOL,
                 "Reply the kernel would refuse: %s", packet_error->message);
}

gboolean
eta_inprocess_daemon_wrap (EtaInprocessDaemon *self,
                           const gchar        *sig,
                           guint8              cipher_code,
                           const guint8       *fek,
                           gsize               fek_len,
                           GBytes            **wrapped_out,
                           GError            **error)
{
  g_autoptr(GBytes) request = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) local_error = NULL;
  const guint8 *data;
  gsize len;

  request = eta_ecryptfs_build_tag66 (sig, cipher_code, fek, fek_len, &local_error);
  if (request == NULL)
    {
      g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILED,
                   "%s", local_error->message);
      return FALSE;
    }
  reply = eta_inprocess_daemon_process (self, request, error);
  if (reply == NULL)
    return FALSE;
  data = g_bytes_get_data (reply, &len);
  if (!eta_ecryptfs_parse_tag67 (data, len, wrapped_out, &local_error))
    {
      set_reply_error (error, local_error);
      return FALSE;
    }
  return TRUE;
}

gboolean
eta_inprocess_daemon_unwrap (EtaInprocessDaemon *self,
                             const gchar        *sig,
                             const guint8       *wrapped,
                             gsize               wrapped_len,
                             guint8             *cipher_code_out,
                             GBytes            **fek_out,
                             GError            **error)
{
  g_autoptr(GBytes) request = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) local_error = NULL;
  const guint8 *data;
  gsize len;

  request = eta_ecryptfs_build_tag64 (sig, wrapped, wrapped_len, &local_error);
  if (request == NULL)
    {
      g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILED,
                   "%s", local_error->message);
      return FALSE;
    }
  reply = eta_inprocess_daemon_process (self, request, error);
  if (reply == NULL)
    return FALSE;
  data = g_bytes_get_data (reply, &len);
  if (!eta_ecryptfs_parse_tag65 (data, len, cipher_code_out, fek_out, &local_error))
    {
      set_reply_error (error, local_error);
      return FALSE;
    }
  return TRUE;
}

void
eta_inprocess_daemon_free (EtaInprocessDaemon *self)
{
  if (self == NULL)
    return;
  /* ecryptfs_free_key_mod_list() leaves the aliases behind. */
  for (struct ecryptfs_key_mod *m = self->ctx.key_mod_list_head.next; m != NULL; m = m->next)
    {
      free (m->alias);
      m->alias = NULL;
    }
  ecryptfs_free_key_mod_list (&self->ctx);
  g_free (self);
}

gboolean
eta_harness_remove_user_key (const gchar *sig,
                             GError     **error)
{
  long key;

  g_return_val_if_fail (sig != NULL, FALSE);

  key = keyctl_search (KEY_SPEC_USER_KEYRING, "user", sig, 0);
  if (key == -1)
    {
      if (errno == ENOKEY || errno == EKEYREVOKED || errno == EKEYEXPIRED)
        return TRUE;
      g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILED,
                   "keyctl_search(@u, user, %s): %s", sig, g_strerror (errno));
      return FALSE;
    }
  if (keyctl_unlink ((key_serial_t) key, KEY_SPEC_USER_KEYRING) == -1 && errno != ENOENT)
    {
      g_set_error (error, ETA_INPROCESS_DAEMON_ERROR, ETA_INPROCESS_DAEMON_ERROR_FAILED,
                   "keyctl_unlink(%ld, @u): %s", key, g_strerror (errno));
      return FALSE;
    }
  /* Also drop it from any other keyring it was linked into. */
  keyctl_invalidate ((key_serial_t) key);
  return TRUE;
}

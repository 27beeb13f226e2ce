/* See eta-token-session.h. */
#include "config.h"

#include "eta-token-session.h"

#include <dlfcn.h>
#include <string.h>

struct _EtaTokenSession
{
  CK_FUNCTION_LIST_PTR functions;
  CK_SESSION_HANDLE handle;
};

static gchar *
stripped (const gchar *text, gsize len)
{
  return g_strstrip (g_strndup (text, len));
}

/* The function list of each provider for the agent's own calls, looked up
 * once. A module's C_GetFunctionList normally hands out the list
 * pkcs11-helper initialised. p11-kit's proxy instead hands out a fresh,
 * uninitialised instance per call, by design (it serves several users in
 * one process): that instance is initialised once here, and shares the
 * modules underneath, their sessions' logins included, with pkcs11-helper's. */
typedef struct
{
  void *module;
  CK_FUNCTION_LIST_PTR functions;
  gboolean initialised_here;
} Provider;

static GMutex providers_lock;
static GHashTable *providers_seen;   /* path → Provider */

static void
provider_free (gpointer data)
{
  Provider *provider = data;

  if (provider->initialised_here)
    provider->functions->C_Finalize (NULL);
  dlclose (provider->module);
  g_free (provider);
}

static CK_FUNCTION_LIST_PTR
provider_functions (const gchar *path)
{
  Provider *provider;
  CK_C_GetFunctionList get_function_list;
  CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
  CK_ULONG count = 0;
  CK_RV rv;

  g_mutex_lock (&providers_lock);
  if (providers_seen == NULL)
    providers_seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, provider_free);
  provider = g_hash_table_lookup (providers_seen, path);
  if (provider == NULL)
    {
      provider = g_new0 (Provider, 1);
      /* Only a module pkcs11-helper has loaded: never load one of its own. */
      provider->module = dlopen (path, RTLD_NOW | RTLD_NOLOAD);
      get_function_list = provider->module != NULL
                            ? (CK_C_GetFunctionList) dlsym (provider->module, "C_GetFunctionList")
                            : NULL;
      if (get_function_list == NULL || get_function_list (&provider->functions) != CKR_OK)
        provider->functions = NULL;
      if (provider->functions != NULL)
        {
          rv = provider->functions->C_GetSlotList (CK_TRUE, NULL, &count);
          if (rv == CKR_CRYPTOKI_NOT_INITIALIZED)
            {
              rv = provider->functions->C_Initialize (&args);
              provider->initialised_here = rv == CKR_OK;
            }
          if (rv != CKR_OK)
            provider->functions = NULL;
        }
      if (provider->functions == NULL && provider->module != NULL)
        {
          dlclose (provider->module);
          provider->module = NULL;
        }
      if (provider->module == NULL)
        {
          g_free (provider);
          g_mutex_unlock (&providers_lock);
          return NULL;
        }
      g_hash_table_insert (providers_seen, g_strdup (path), provider);
    }
  g_mutex_unlock (&providers_lock);
  return provider->functions;
}

void
eta_token_session_forget_providers (void)
{
  g_mutex_lock (&providers_lock);
  g_clear_pointer (&providers_seen, g_hash_table_unref);
  g_mutex_unlock (&providers_lock);
}

gboolean
eta_token_slot_find (const gchar * const *providers, const gchar *serial, const gchar *label,
                     CK_FUNCTION_LIST_PTR *functions_out, CK_SLOT_ID *slot_out,
                     CK_TOKEN_INFO *info_out)
{
  g_autofree gchar *wanted_serial = stripped (serial, strlen (serial));
  g_autofree gchar *wanted_label = stripped (label, strlen (label));

  for (gsize p = 0; providers != NULL && providers[p] != NULL; p++)
    {
      CK_FUNCTION_LIST_PTR functions = provider_functions (providers[p]);
      CK_SLOT_ID slots[64];
      CK_ULONG count = G_N_ELEMENTS (slots);

      if (functions == NULL || functions->C_GetSlotList (CK_TRUE, slots, &count) != CKR_OK)
        continue;
      for (CK_ULONG s = 0; s < count; s++)
        {
          CK_TOKEN_INFO info;
          g_autofree gchar *info_serial = NULL;
          g_autofree gchar *info_label = NULL;

          if (functions->C_GetTokenInfo (slots[s], &info) != CKR_OK)
            continue;
          info_serial = stripped ((const gchar *) info.serialNumber, sizeof info.serialNumber);
          info_label = stripped ((const gchar *) info.label, sizeof info.label);
          if (g_strcmp0 (info_serial, wanted_serial) != 0
              || g_strcmp0 (info_label, wanted_label) != 0)
            continue;
          *functions_out = functions;
          *slot_out = slots[s];
          if (info_out != NULL)
            *info_out = info;
          return TRUE;
        }
    }
  return FALSE;
}

EtaTokenSession *
eta_token_session_open (const gchar * const *providers, const gchar *serial, const gchar *label,
                        CK_RV *rv)
{
  EtaTokenSession *session = g_new0 (EtaTokenSession, 1);
  CK_SLOT_ID slot;

  if (!eta_token_slot_find (providers, serial, label, &session->functions, &slot, NULL))
    {
      g_free (session);
      *rv = CKR_TOKEN_NOT_PRESENT;
      return NULL;
    }
  *rv = session->functions->C_OpenSession (slot, CKF_SERIAL_SESSION, NULL, NULL,
                                           &session->handle);
  if (*rv != CKR_OK)
    {
      g_free (session);
      return NULL;
    }
  return session;
}

void
eta_token_session_free (EtaTokenSession *session)
{
  if (session == NULL)
    return;
  /* Only this session: C_CloseAllSessions would end pkcs11-helper's too. */
  session->functions->C_CloseSession (session->handle);
  g_free (session);
}

CK_RV
eta_token_session_check_login (EtaTokenSession *session)
{
  CK_SESSION_INFO info;
  CK_RV rv = session->functions->C_GetSessionInfo (session->handle, &info);

  if (rv != CKR_OK)
    return rv;
  return info.state == CKS_RO_USER_FUNCTIONS || info.state == CKS_RW_USER_FUNCTIONS
           ? CKR_OK : CKR_USER_NOT_LOGGED_IN;
}

static CK_RV
find_private_key (EtaTokenSession *session, const guint8 *id, gsize id_len,
                  CK_OBJECT_HANDLE *key)
{
  CK_OBJECT_CLASS class = CKO_PRIVATE_KEY;
  CK_ATTRIBUTE template[] = {
    { CKA_CLASS, &class, sizeof class },
    { CKA_ID, (void *) id, id_len },
  };
  CK_ULONG found = 0;
  CK_RV rv, final_rv;

  rv = session->functions->C_FindObjectsInit (session->handle, template,
                                              G_N_ELEMENTS (template));
  if (rv != CKR_OK)
    return rv;
  rv = session->functions->C_FindObjects (session->handle, key, 1, &found);
  final_rv = session->functions->C_FindObjectsFinal (session->handle);
  if (rv == CKR_OK)
    rv = final_rv;
  if (rv == CKR_OK && found == 0)
    rv = CKR_KEY_HANDLE_INVALID;
  return rv;
}

CK_RV
eta_token_session_decrypt (EtaTokenSession *session, const guint8 *id, gsize id_len,
                           CK_MECHANISM *mechanism, const guint8 *in, gsize in_len,
                           guint8 *out, gsize *out_len)
{
  CK_OBJECT_HANDLE key;
  CK_ULONG len = *out_len;
  CK_RV rv = find_private_key (session, id, id_len, &key);

  if (rv != CKR_OK)
    return rv;
  rv = session->functions->C_DecryptInit (session->handle, mechanism, key);
  if (rv != CKR_OK)
    return rv;
  /* A single-part C_Decrypt ends the operation whatever it returns. */
  rv = session->functions->C_Decrypt (session->handle, (CK_BYTE_PTR) in, in_len, out, &len);
  if (rv == CKR_OK)
    *out_len = len;
  return rv;
}

/* libeta-fault-pkcs11.so seen through pkcs11-helper, the way the agent uses
 * tokens: every fault the module fakes shows up where the agent would meet it.
 * Direct calls through the module's function list check the PKCS#11 details
 * pkcs11-helper hides. */
#include <dlfcn.h>
#include <stddef.h>
#include <string.h>

#include <glib.h>

#include <pkcs11-helper-1.0/pkcs11h-certificate.h>
#include <pkcs11-helper-1.0/pkcs11h-core.h>
#include <pkcs11-helper-1.0/pkcs11h-token.h>

#include "eta-fault-control.h"
#include "eta-test-crypto.h"
#include "eta-test-token.h"

#define KEY_2048_ID 0x01
#define KEY_3072_ID 0x02
#define WAIT_MS 10000

typedef struct
{
  unsigned slot_event_method;  /* PKCS11H_SLOTEVENT_METHOD_* */
  gboolean slot_events;        /* register pkcs11-helper's slot event hook */
} TestCase;

typedef struct
{
  void *module;               /* our own reference to the loaded module */
  CK_FUNCTION_LIST_PTR f;     /* its function list, for direct calls */
  CK_SLOT_ID slot;            /* the test token's slot */
  GBytes *plaintext;
  GBytes *ciphertext[ETA_TEST_N_KEYS];
} Fixture;

/* What pkcs11-helper's hooks saw; they run on its threads. */
static struct
{
  gint pin_prompts;
  gint slot_events;
  GMutex lock;
  gchar **pins;     /* answers in order; the last one repeats */
} hooks;

/* ---- pkcs11-helper hooks ---- */

static PKCS11H_BOOL
on_pin_prompt (void *global_data, void *user_data, const pkcs11h_token_id_t token,
               const unsigned retry, char *const pin, const size_t pin_max)
{
  gint n = g_atomic_int_add (&hooks.pin_prompts, 1);
  const gchar *answer;
  guint len;

  g_mutex_lock (&hooks.lock);
  len = g_strv_length (hooks.pins);
  answer = len == 0 ? NULL : hooks.pins[MIN ((guint) n, len - 1)];
  if (answer != NULL)
    g_strlcpy (pin, answer, pin_max);
  g_mutex_unlock (&hooks.lock);
  return answer != NULL;
}

static PKCS11H_BOOL
on_token_prompt (void *global_data, void *user_data, const pkcs11h_token_id_t token,
                 const unsigned retry)
{
  return FALSE;
}

static void
on_slot_event (void *global_data)
{
  g_atomic_int_inc (&hooks.slot_events);
}

static void
on_log (void *global_data, unsigned flags, const char *format, va_list args)
{
  g_autofree gchar *message = g_strdup_vprintf (format, args);
  g_debug ("pkcs11-helper: %s", message);
}

static void
set_pins (const gchar *first, ...)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  va_list args;

  va_start (args, first);
  for (const gchar *pin = first; pin != NULL; pin = va_arg (args, const gchar *))
    g_strv_builder_add (builder, pin);
  va_end (args);
  g_mutex_lock (&hooks.lock);
  g_strfreev (hooks.pins);
  hooks.pins = g_strv_builder_end (builder);
  g_mutex_unlock (&hooks.lock);
}

/* ---- direct PKCS#11 through the module ---- */

static gboolean
label_is (const CK_UTF8CHAR *field, gsize size, const gchar *label)
{
  gsize len = strlen (label);

  if (len > size || memcmp (field, label, len) != 0)
    return FALSE;
  for (gsize i = len; i < size; i++)
    if (field[i] != ' ')
      return FALSE;
  return TRUE;
}

static CK_SLOT_ID
find_token_slot (CK_FUNCTION_LIST_PTR f)
{
  CK_SLOT_ID slots[16];
  CK_ULONG count = G_N_ELEMENTS (slots);

  g_assert_cmphex (f->C_GetSlotList (CK_TRUE, slots, &count), ==, CKR_OK);
  for (CK_ULONG i = 0; i < count; i++)
    {
      CK_TOKEN_INFO info;

      if (f->C_GetTokenInfo (slots[i], &info) == CKR_OK
          && label_is (info.label, sizeof info.label, ETA_TEST_TOKEN_LABEL))
        return slots[i];
    }
  g_assert_not_reached ();
}

static CK_ULONG
count_slots (CK_FUNCTION_LIST_PTR f, CK_BBOOL token_present)
{
  CK_ULONG count = 0;

  g_assert_cmphex (f->C_GetSlotList (token_present, NULL, &count), ==, CKR_OK);
  return count;
}

static CK_FLAGS
token_flags (Fixture *fixture)
{
  CK_TOKEN_INFO info;

  g_assert_cmphex (fixture->f->C_GetTokenInfo (fixture->slot, &info), ==, CKR_OK);
  return info.flags;
}

static CK_SESSION_HANDLE
open_session (Fixture *fixture)
{
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;

  g_assert_cmphex (fixture->f->C_OpenSession (fixture->slot, CKF_SERIAL_SESSION, NULL, NULL,
                                              &session), ==, CKR_OK);
  return session;
}

static CK_STATE
session_state (Fixture *fixture, CK_SESSION_HANDLE session)
{
  CK_SESSION_INFO info;

  g_assert_cmphex (fixture->f->C_GetSessionInfo (session, &info), ==, CKR_OK);
  return info.state;
}

static CK_RV
login (Fixture *fixture, CK_SESSION_HANDLE session, const gchar *pin)
{
  CK_RV rv = fixture->f->C_Login (session, CKU_USER, (CK_UTF8CHAR_PTR) pin,
                                  pin ? strlen (pin) : 0);
  return rv == CKR_USER_ALREADY_LOGGED_IN ? CKR_OK : rv;
}

static CK_OBJECT_HANDLE
find_private_key (Fixture *fixture, CK_SESSION_HANDLE session, CK_BYTE id)
{
  CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
  CK_ATTRIBUTE filter[] = {
    { CKA_CLASS, &klass, sizeof klass },
    { CKA_ID, &id, 1 },
  };
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  CK_ULONG found = 0;

  g_assert_cmphex (fixture->f->C_FindObjectsInit (session, filter, G_N_ELEMENTS (filter)), ==,
                   CKR_OK);
  g_assert_cmphex (fixture->f->C_FindObjects (session, &key, 1, &found), ==, CKR_OK);
  g_assert_cmphex (fixture->f->C_FindObjectsFinal (session), ==, CKR_OK);
  g_assert_cmpuint (found, ==, 1);
  return key;
}

/* C_DecryptInit + C_Decrypt with CKM_RSA_PKCS; returns C_Decrypt's result. */
static CK_RV
raw_decrypt (Fixture *fixture, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key,
             GBytes *ciphertext, GBytes **plaintext)
{
  CK_MECHANISM mechanism = { CKM_RSA_PKCS, NULL, 0 };
  guint8 out[512];
  CK_ULONG out_len = sizeof out;
  CK_RV rv;

  rv = fixture->f->C_DecryptInit (session, &mechanism, key);
  if (rv != CKR_OK)
    return rv;
  rv = fixture->f->C_Decrypt (session, (CK_BYTE_PTR) g_bytes_get_data (ciphertext, NULL),
                              g_bytes_get_size (ciphertext), out, &out_len);
  if (rv == CKR_OK && plaintext != NULL)
    *plaintext = g_bytes_new (out, out_len);
  return rv;
}

typedef struct
{
  Fixture *fixture;
  CK_SESSION_HANDLE session;
  CK_OBJECT_HANDLE key;
  CK_RV rv;
} RawDecryptJob;

static gpointer
raw_decrypt_in_thread (gpointer data)
{
  RawDecryptJob *job = data;

  job->rv = raw_decrypt (job->fixture, job->session, job->key,
                         job->fixture->ciphertext[ETA_TEST_KEY_RSA2048], NULL);
  return NULL;
}

/* ---- through pkcs11-helper ---- */

static guint
count_tokens (void)
{
  pkcs11h_token_id_list_t tokens = NULL;
  guint count = 0;

  g_assert_cmphex (pkcs11h_token_enumTokenIds (PKCS11H_ENUM_METHOD_RELOAD, &tokens), ==, CKR_OK);
  for (pkcs11h_token_id_list_t item = tokens; item != NULL; item = item->next)
    count++;
  pkcs11h_token_freeTokenIdList (tokens);
  return count;
}

static guint
count_certificates (void)
{
  pkcs11h_certificate_id_list_t certificates = NULL;
  guint count = 0;

  g_assert_cmphex (pkcs11h_certificate_enumCertificateIds (PKCS11H_ENUM_METHOD_RELOAD, NULL, 0,
                                                           NULL, &certificates), ==, CKR_OK);
  for (pkcs11h_certificate_id_list_t item = certificates; item != NULL; item = item->next)
    count++;
  pkcs11h_certificate_freeCertificateIdList (certificates);
  return count;
}

/* The certificate (and so the key) with CKA_ID @id, ready to decrypt. */
static pkcs11h_certificate_t
open_certificate (CK_BYTE id)
{
  pkcs11h_certificate_id_list_t certificates = NULL;
  pkcs11h_certificate_t certificate = NULL;

  g_assert_cmphex (pkcs11h_certificate_enumCertificateIds (PKCS11H_ENUM_METHOD_RELOAD, NULL, 0,
                                                           NULL, &certificates), ==, CKR_OK);
  for (pkcs11h_certificate_id_list_t item = certificates; item != NULL; item = item->next)
    {
      pkcs11h_certificate_id_t certificate_id = item->certificate_id;

      if (certificate_id->attrCKA_ID_size == 1 && certificate_id->attrCKA_ID[0] == id)
        {
          g_assert_cmphex (pkcs11h_certificate_create (certificate_id, NULL,
                                                       PKCS11H_PROMPT_MASK_ALLOW_PIN_PROMPT,
                                                       PKCS11H_PIN_CACHE_INFINITE,
                                                       &certificate), ==, CKR_OK);
          break;
        }
    }
  pkcs11h_certificate_freeCertificateIdList (certificates);
  g_assert_nonnull (certificate);
  return certificate;
}

static CK_RV
helper_decrypt (pkcs11h_certificate_t certificate, GBytes *ciphertext, GBytes **plaintext)
{
  guint8 out[512];
  size_t out_len = sizeof out;
  CK_RV rv;

  rv = pkcs11h_certificate_decrypt (certificate, CKM_RSA_PKCS,
                                    g_bytes_get_data (ciphertext, NULL),
                                    g_bytes_get_size (ciphertext), out, &out_len);
  if (rv == CKR_OK && plaintext != NULL)
    *plaintext = g_bytes_new (out, out_len);
  return rv;
}

static void
assert_decrypts (Fixture *fixture, pkcs11h_certificate_t certificate, EtaTestKeyIndex index)
{
  g_autoptr (GBytes) plaintext = NULL;

  g_assert_cmphex (helper_decrypt (certificate, fixture->ciphertext[index], &plaintext), ==,
                   CKR_OK);
  g_assert_true (g_bytes_equal (plaintext, fixture->plaintext));
}

typedef struct
{
  pkcs11h_certificate_t certificate;
  GBytes *ciphertext;
  GBytes *plaintext;
  CK_RV rv;
} DecryptJob;

static gpointer
decrypt_in_thread (gpointer data)
{
  DecryptJob *job = data;

  job->rv = helper_decrypt (job->certificate, job->ciphertext, &job->plaintext);
  return NULL;
}

static void
wait_for_slot_events_above (gint count)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * G_TIME_SPAN_MILLISECOND;

  while (g_atomic_int_get (&hooks.slot_events) <= count)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (10000);
    }
}

/* ---- fixture ---- */

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  const TestCase *test_case = data;
  CK_RV (*get_function_list) (CK_FUNCTION_LIST_PTR_PTR);
  CK_RV rv;

  eta_test_token_get ();
  eta_fault_control_setup ();
  eta_fault_control_reset ();
  g_atomic_int_set (&hooks.pin_prompts, 0);
  g_atomic_int_set (&hooks.slot_events, 0);
  set_pins (ETA_TEST_TOKEN_PIN, NULL);

  fixture->plaintext = eta_test_random_bytes (32);
  for (int i = 0; i < ETA_TEST_N_KEYS; i++)
    {
      g_autoptr (GBytes) public_key = eta_test_token_load_public_key (i);
      fixture->ciphertext[i] = eta_test_rsa_encrypt (public_key, ETA_PADDING_PKCS1,
                                                     g_bytes_get_data (fixture->plaintext, NULL),
                                                     g_bytes_get_size (fixture->plaintext));
    }

  g_assert_cmphex (pkcs11h_initialize (), ==, CKR_OK);
  pkcs11h_setLogHook (on_log, NULL);
  pkcs11h_setLogLevel (g_getenv ("G_MESSAGES_DEBUG") ? PKCS11H_LOG_DEBUG1 : PKCS11H_LOG_QUIET);
  pkcs11h_setPINPromptHook (on_pin_prompt, NULL);
  pkcs11h_setTokenPromptHook (on_token_prompt, NULL);
  pkcs11h_setProtectedAuthentication (TRUE);
  pkcs11h_setMaxLoginRetries (3);
  rv = pkcs11h_addProvider ("fault", eta_fault_control_get_module_path (), TRUE,
                            PKCS11H_PRIVATEMODE_MASK_AUTO,
                            test_case ? test_case->slot_event_method
                                      : PKCS11H_SLOTEVENT_METHOD_AUTO,
                            100, FALSE);
  g_assert_cmphex (rv, ==, CKR_OK);
  /* After the provider: hooked before, its event thread may never start
   * (pkcs11-helper's condition variable can lose the wake-up). */
  if (test_case != NULL && test_case->slot_events)
    g_assert_cmphex (pkcs11h_setSlotEventHook (on_slot_event, NULL), ==, CKR_OK);

  /* The same instance pkcs11-helper loaded; C_Initialize is done. */
  fixture->module = dlopen (eta_fault_control_get_module_path (), RTLD_NOW | RTLD_LOCAL);
  g_assert_nonnull (fixture->module);
  *(void **) &get_function_list = dlsym (fixture->module, "C_GetFunctionList");
  g_assert_nonnull (get_function_list);
  g_assert_cmphex (get_function_list (&fixture->f), ==, CKR_OK);
  fixture->slot = find_token_slot (fixture->f);
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  pkcs11h_terminate ();
  dlclose (fixture->module);
  g_bytes_unref (fixture->plaintext);
  for (int i = 0; i < ETA_TEST_N_KEYS; i++)
    g_bytes_unref (fixture->ciphertext[i]);
  g_mutex_lock (&hooks.lock);
  g_clear_pointer (&hooks.pins, g_strfreev);
  g_mutex_unlock (&hooks.lock);
}

/* ---- tests ---- */

static void
test_function_list (Fixture *fixture, gconstpointer data)
{
  const void *const *functions = (const void *const *) &fixture->f->C_Initialize;
  gsize n_functions = (offsetof (CK_FUNCTION_LIST, C_WaitForSlotEvent)
                       - offsetof (CK_FUNCTION_LIST, C_Initialize)) / sizeof (void *) + 1;
  CK_INFO info;

  g_assert_cmpuint (fixture->f->version.major, ==, 2);
  g_assert_cmpuint (fixture->f->version.minor, ==, 40);
  g_assert_cmpuint (n_functions, ==, 68);
  for (gsize i = 0; i < n_functions; i++)
    g_assert_nonnull (functions[i]);

  /* Nothing but the entry point is exported. */
  g_assert_nonnull (dlsym (fixture->module, "C_GetFunctionList"));
  g_assert_null (dlsym (fixture->module, "C_Initialize"));
  g_assert_null (dlsym (fixture->module, "C_Decrypt"));

  g_assert_cmphex (fixture->f->C_GetInfo (&info), ==, CKR_OK);
  g_assert_cmpuint (info.cryptokiVersion.major, ==, 2);
  g_assert_true (memcmp (info.manufacturerID, "SoftHSM", 7) == 0);
  /* pkcs11-helper initialised it already. */
  g_assert_cmphex (fixture->f->C_Initialize (NULL), ==, CKR_CRYPTOKI_ALREADY_INITIALIZED);
}

static void
test_passthrough (Fixture *fixture, gconstpointer data)
{
  pkcs11h_certificate_t key2048;
  pkcs11h_certificate_t key3072;
  g_autofree gchar *present = NULL;

  g_assert_cmpuint (count_certificates (), ==, 2);
  key2048 = open_certificate (KEY_2048_ID);
  key3072 = open_certificate (KEY_3072_ID);
  assert_decrypts (fixture, key2048, ETA_TEST_KEY_RSA2048);
  assert_decrypts (fixture, key3072, ETA_TEST_KEY_RSA3072);
  /* One token, one login, one PIN request. */
  g_assert_cmpint (g_atomic_int_get (&hooks.pin_prompts), ==, 1);
  g_assert_cmpuint (eta_fault_control_get_counter ("login_calls"), ==, 1);
  g_assert_cmpuint (eta_fault_control_get_counter ("login_failures"), ==, 0);
  g_assert_cmpuint (eta_fault_control_get_counter ("decrypt_calls"), >=, 2);
  g_assert_cmpuint (eta_fault_control_get_counter ("decrypt_failures"), ==, 0);
  present = eta_fault_control_get_status ("present");
  g_assert_cmpstr (present, ==, "1");
  /* Forwarding alone leaves SoftHSM2's flags as they are. */
  g_assert_cmphex (token_flags (fixture) & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY
                                            | CKF_USER_PIN_LOCKED
                                            | CKF_PROTECTED_AUTHENTICATION_PATH), ==, 0);
  pkcs11h_certificate_freeCertificate (key2048);
  pkcs11h_certificate_freeCertificate (key3072);
}

static void
test_wrong_pin_counted (Fixture *fixture, gconstpointer data)
{
  pkcs11h_certificate_t certificate = open_certificate (KEY_2048_ID);

  set_pins ("0000", ETA_TEST_TOKEN_PIN, NULL);
  assert_decrypts (fixture, certificate, ETA_TEST_KEY_RSA2048);
  g_assert_cmpint (g_atomic_int_get (&hooks.pin_prompts), ==, 2);
  g_assert_cmpuint (eta_fault_control_get_counter ("login_calls"), ==, 2);
  g_assert_cmpuint (eta_fault_control_get_counter ("login_failures"), ==, 1);
  pkcs11h_certificate_freeCertificate (certificate);
}

static void
test_remove_insert (Fixture *fixture, gconstpointer data)
{
  pkcs11h_certificate_t certificate = open_certificate (KEY_2048_ID);
  CK_SESSION_HANDLE old_session;
  CK_SESSION_HANDLE new_session;
  CK_SESSION_HANDLE refused = CK_INVALID_HANDLE;
  CK_SESSION_INFO session_info;
  CK_TOKEN_INFO token_info;
  CK_SLOT_INFO slot_info;
  CK_RV rv;

  assert_decrypts (fixture, certificate, ETA_TEST_KEY_RSA2048);
  g_assert_cmpuint (count_tokens (), >=, 1);
  old_session = open_session (fixture);
  /* SoftHSM2 logs a token in for the whole process. */
  g_assert_cmpuint (session_state (fixture, old_session), ==, CKS_RO_USER_FUNCTIONS);

  eta_fault_control_set ("present", "false");
  g_assert_cmpuint (count_tokens (), ==, 0);
  g_assert_cmpuint (count_certificates (), ==, 0);
  g_assert_cmpuint (count_slots (fixture->f, CK_TRUE), ==, 0);
  g_assert_cmpuint (count_slots (fixture->f, CK_FALSE), >=, 1);
  g_assert_cmphex (fixture->f->C_GetSlotInfo (fixture->slot, &slot_info), ==, CKR_OK);
  g_assert_cmphex (slot_info.flags & CKF_TOKEN_PRESENT, ==, 0);
  g_assert_cmphex (slot_info.flags & CKF_REMOVABLE_DEVICE, ==, CKF_REMOVABLE_DEVICE);
  g_assert_cmphex (fixture->f->C_GetTokenInfo (fixture->slot, &token_info), ==,
                   CKR_TOKEN_NOT_PRESENT);
  g_assert_cmphex (fixture->f->C_OpenSession (fixture->slot, CKF_SERIAL_SESSION, NULL, NULL,
                                              &refused), ==, CKR_TOKEN_NOT_PRESENT);
  g_assert_cmphex (fixture->f->C_GetSessionInfo (old_session, &session_info), ==,
                   CKR_DEVICE_REMOVED);
  /* pkcs11-helper's session dies too; looking for the token again it finds
   * none, and may not ask for it (no token prompt allowed). */
  rv = helper_decrypt (certificate, fixture->ciphertext[ETA_TEST_KEY_RSA2048], NULL);
  g_test_message ("decrypt with the token out: 0x%lx %s", rv, pkcs11h_getMessage (rv));
  g_assert_cmphex (rv, ==, CKR_TOKEN_NOT_PRESENT);

  eta_fault_control_set ("present", "true");
  /* Like a card: the old session stays dead, and the token is logged out. */
  g_assert_cmphex (fixture->f->C_GetSessionInfo (old_session, &session_info), ==,
                   CKR_SESSION_HANDLE_INVALID);
  g_assert_cmphex (fixture->f->C_CloseSession (old_session), ==, CKR_SESSION_HANDLE_INVALID);
  new_session = open_session (fixture);
  g_assert_cmpuint (session_state (fixture, new_session), ==, CKS_RO_PUBLIC_SESSION);
  g_assert_cmphex (fixture->f->C_CloseSession (new_session), ==, CKR_OK);

  g_assert_cmpuint (count_tokens (), >=, 1);
  g_assert_cmpuint (count_certificates (), ==, 2);
  /* The same certificate object works again, after a new PIN request. */
  assert_decrypts (fixture, certificate, ETA_TEST_KEY_RSA2048);
  g_assert_cmpint (g_atomic_int_get (&hooks.pin_prompts), ==, 2);
  pkcs11h_certificate_freeCertificate (certificate);
}

/* absent_tokens takes out one token by its label, like present=false does
 * all of them: the other slots stay as they are. */
static void
test_absent_tokens (Fixture *fixture, gconstpointer data)
{
  pkcs11h_certificate_t certificate = open_certificate (KEY_2048_ID);
  CK_ULONG before = count_slots (fixture->f, CK_TRUE);
  CK_SESSION_HANDLE old_session;
  CK_SESSION_HANDLE new_session;
  CK_SESSION_HANDLE refused = CK_INVALID_HANDLE;
  CK_SESSION_INFO session_info;
  CK_TOKEN_INFO token_info;
  CK_SLOT_INFO slot_info;
  CK_SLOT_ID slots[16];
  CK_ULONG count;
  g_autofree gchar *absent = NULL;
  g_autofree gchar *present = NULL;

  assert_decrypts (fixture, certificate, ETA_TEST_KEY_RSA2048);
  old_session = open_session (fixture);
  g_assert_cmpuint (before, >=, 1);

  /* Another token's label changes nothing. */
  eta_fault_control_set ("absent_tokens", "Some Other Token");
  g_assert_cmpuint (count_slots (fixture->f, CK_TRUE), ==, before);
  g_assert_cmphex (fixture->f->C_GetSessionInfo (old_session, &session_info), ==, CKR_OK);

  eta_fault_control_set ("absent_tokens", "Some Other Token , " ETA_TEST_TOKEN_LABEL);
  g_assert_cmpuint (count_slots (fixture->f, CK_TRUE), ==, before - 1);
  count = G_N_ELEMENTS (slots);
  g_assert_cmphex (fixture->f->C_GetSlotList (CK_TRUE, slots, &count), ==, CKR_OK);
  g_assert_cmpuint (count, ==, before - 1);
  for (CK_ULONG i = 0; i < count; i++)
    g_assert_cmpuint (slots[i], !=, fixture->slot);
  if (before > 1)
    {
      count = 0;
      g_assert_cmphex (fixture->f->C_GetSlotList (CK_TRUE, slots, &count), ==,
                       CKR_BUFFER_TOO_SMALL);
      g_assert_cmpuint (count, ==, before - 1);
    }
  g_assert_cmpuint (count_slots (fixture->f, CK_FALSE), >=, before);
  g_assert_cmphex (fixture->f->C_GetSlotInfo (fixture->slot, &slot_info), ==, CKR_OK);
  g_assert_cmphex (slot_info.flags & CKF_TOKEN_PRESENT, ==, 0);
  g_assert_cmphex (fixture->f->C_GetTokenInfo (fixture->slot, &token_info), ==,
                   CKR_TOKEN_NOT_PRESENT);
  g_assert_cmphex (fixture->f->C_OpenSession (fixture->slot, CKF_SERIAL_SESSION, NULL, NULL,
                                              &refused), ==, CKR_TOKEN_NOT_PRESENT);
  g_assert_cmphex (fixture->f->C_GetSessionInfo (old_session, &session_info), ==,
                   CKR_DEVICE_REMOVED);
  g_assert_cmphex (helper_decrypt (certificate, fixture->ciphertext[ETA_TEST_KEY_RSA2048],
                                   NULL), !=, CKR_OK);
  absent = eta_fault_control_get_status ("absent_tokens");
  g_assert_cmpstr (absent, ==, ETA_TEST_TOKEN_LABEL);
  present = eta_fault_control_get_status ("present");
  g_assert_cmpstr (present, ==, "1");

  /* Back in: the old session stays dead, the token is logged out. */
  eta_fault_control_set ("absent_tokens", NULL);
  g_assert_cmpuint (count_slots (fixture->f, CK_TRUE), ==, before);
  g_assert_cmphex (fixture->f->C_GetSessionInfo (old_session, &session_info), ==,
                   CKR_SESSION_HANDLE_INVALID);
  new_session = open_session (fixture);
  g_assert_cmpuint (session_state (fixture, new_session), ==, CKS_RO_PUBLIC_SESSION);
  g_assert_cmphex (fixture->f->C_CloseSession (new_session), ==, CKR_OK);
  assert_decrypts (fixture, certificate, ETA_TEST_KEY_RSA2048);
  g_assert_cmpint (g_atomic_int_get (&hooks.pin_prompts), ==, 2);
  pkcs11h_certificate_freeCertificate (certificate);
}

static void
test_pin_flags (Fixture *fixture, gconstpointer data)
{
  const CK_FLAGS all = CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED;
  const struct { const gchar *value; CK_FLAGS flags; } cases[] = {
    { "count_low", CKF_USER_PIN_COUNT_LOW },
    { "final_try", CKF_USER_PIN_FINAL_TRY },
    { "locked", CKF_USER_PIN_LOCKED },
    { "count_low,final_try", CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY },
    { "", 0 },
  };
  CK_FLAGS plain = token_flags (fixture);

  g_assert_cmphex (plain & all, ==, 0);
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      CK_FLAGS flags;

      eta_fault_control_set ("pin_flags", cases[i].value);
      flags = token_flags (fixture);
      g_assert_cmphex (flags & all, ==, cases[i].flags);
      /* Everything else stays SoftHSM2's. */
      g_assert_cmphex (flags & ~all, ==, plain);
    }
}

static void
test_pin_locked (Fixture *fixture, gconstpointer data)
{
  pkcs11h_certificate_t certificate = open_certificate (KEY_2048_ID);
  CK_SESSION_HANDLE session = open_session (fixture);
  CK_RV rv;

  eta_fault_control_set ("pin_flags", "locked");
  g_assert_cmphex (login (fixture, session, ETA_TEST_TOKEN_PIN), ==, CKR_PIN_LOCKED);
  g_assert_cmpuint (session_state (fixture, session), ==, CKS_RO_PUBLIC_SESSION);

  rv = helper_decrypt (certificate, fixture->ciphertext[ETA_TEST_KEY_RSA2048], NULL);
  g_test_message ("decrypt with the PIN locked: 0x%lx %s", rv, pkcs11h_getMessage (rv));
  g_assert_cmphex (rv, ==, CKR_PIN_LOCKED);
  /* pkcs11-helper asks for the PIN before it learns the PIN is locked. */
  g_assert_cmpint (g_atomic_int_get (&hooks.pin_prompts), ==, 1);
  g_assert_cmpuint (eta_fault_control_get_counter ("login_calls"), ==, 2);
  g_assert_cmpuint (eta_fault_control_get_counter ("login_failures"), ==, 2);

  eta_fault_control_set ("pin_flags", NULL);
  assert_decrypts (fixture, certificate, ETA_TEST_KEY_RSA2048);
  g_assert_cmphex (fixture->f->C_CloseSession (session), ==, CKR_OK);
  pkcs11h_certificate_freeCertificate (certificate);
}

static void
test_pinpad_enter (Fixture *fixture, gconstpointer data)
{
  DecryptJob job = { 0 };
  GThread *thread;

  eta_fault_control_set ("protected_auth_path", "true");
  g_assert_cmphex (token_flags (fixture) & CKF_PROTECTED_AUTHENTICATION_PATH, ==,
                   CKF_PROTECTED_AUTHENTICATION_PATH);
  job.certificate = open_certificate (KEY_2048_ID);
  job.ciphertext = fixture->ciphertext[ETA_TEST_KEY_RSA2048];
  thread = g_thread_new ("decrypt", decrypt_in_thread, &job);

  /* pkcs11-helper logs in with a NULL PIN and the reader waits for a key. */
  g_assert_true (eta_fault_control_wait_status ("pinpad_waiting", "1", WAIT_MS));
  eta_fault_control_set ("pinpad_pin", ETA_TEST_TOKEN_PIN);
  eta_fault_control_set ("pinpad", "enter");
  g_thread_join (thread);

  g_assert_cmphex (job.rv, ==, CKR_OK);
  g_assert_true (g_bytes_equal (job.plaintext, fixture->plaintext));
  g_assert_cmpint (g_atomic_int_get (&hooks.pin_prompts), ==, 0);
  g_assert_cmpuint (eta_fault_control_get_counter ("login_calls"), ==, 1);
  g_assert_cmpuint (eta_fault_control_get_counter ("login_failures"), ==, 0);
  g_bytes_unref (job.plaintext);
  pkcs11h_certificate_freeCertificate (job.certificate);
}

static void
test_pinpad_cancel (Fixture *fixture, gconstpointer data)
{
  DecryptJob job = { 0 };
  GThread *thread;

  eta_fault_control_set ("protected_auth_path", "true");
  job.certificate = open_certificate (KEY_2048_ID);
  job.ciphertext = fixture->ciphertext[ETA_TEST_KEY_RSA2048];
  thread = g_thread_new ("decrypt", decrypt_in_thread, &job);
  g_assert_true (eta_fault_control_wait_status ("pinpad_waiting", "1", WAIT_MS));
  eta_fault_control_set ("pinpad", "cancel");
  g_thread_join (thread);

  g_test_message ("decrypt with the PIN pad cancelled: 0x%lx %s", job.rv,
                  pkcs11h_getMessage (job.rv));
  g_assert_cmphex (job.rv, ==, CKR_FUNCTION_CANCELED);
  g_assert_cmpint (g_atomic_int_get (&hooks.pin_prompts), ==, 0);
  g_assert_cmpuint (eta_fault_control_get_counter ("login_failures"), >=, 1);
  pkcs11h_certificate_freeCertificate (job.certificate);
}

static void
test_pinpad_timeout (Fixture *fixture, gconstpointer data)
{
  pkcs11h_certificate_t certificate;
  CK_SESSION_HANDLE session;
  CK_RV rv;

  eta_fault_control_set ("protected_auth_path", "true");
  eta_fault_control_set ("pinpad_timeout_ms", "200");
  certificate = open_certificate (KEY_2048_ID);
  rv = helper_decrypt (certificate, fixture->ciphertext[ETA_TEST_KEY_RSA2048], NULL);
  g_assert_cmphex (rv, ==, CKR_FUNCTION_CANCELED);
  g_assert_cmpint (g_atomic_int_get (&hooks.pin_prompts), ==, 0);

  /* A PIN typed on the computer still goes straight through. */
  session = open_session (fixture);
  g_assert_cmphex (login (fixture, session, "0000"), ==, CKR_PIN_INCORRECT);
  g_assert_cmphex (login (fixture, session, ETA_TEST_TOKEN_PIN), ==, CKR_OK);
  g_assert_cmpuint (session_state (fixture, session), ==, CKS_RO_USER_FUNCTIONS);
  g_assert_cmphex (fixture->f->C_CloseSession (session), ==, CKR_OK);
  pkcs11h_certificate_freeCertificate (certificate);
}

static void
test_delay (Fixture *fixture, gconstpointer data)
{
  pkcs11h_certificate_t certificate = open_certificate (KEY_2048_ID);
  RawDecryptJob job = { 0 };
  CK_SESSION_HANDLE session;
  CK_OBJECT_HANDLE key;
  GThread *thread;
  gint64 start;

  eta_fault_control_set ("delay_ms", "200");
  eta_fault_control_set ("delay_ops", "login,decrypt");
  start = g_get_monotonic_time ();
  assert_decrypts (fixture, certificate, ETA_TEST_KEY_RSA2048);
  /* Only reported: timing is not something to assert on a shared machine. */
  g_test_message ("slow login + decrypt took %" G_GINT64_FORMAT " ms",
                  (g_get_monotonic_time () - start) / 1000);

  /* A slow operation is cut short by the token going away. */
  session = open_session (fixture);
  key = find_private_key (fixture, session, KEY_2048_ID);
  eta_fault_control_set ("delay_ms", "60000");
  eta_fault_control_set ("delay_ops", "decrypt");
  job.fixture = fixture;
  job.session = session;
  job.key = key;
  thread = g_thread_new ("slow-decrypt", raw_decrypt_in_thread, &job);
  g_assert_true (eta_fault_control_wait_status ("delay_waiting", "1", WAIT_MS));
  eta_fault_control_set ("present", "false");
  g_thread_join (thread);
  g_assert_cmphex (job.rv, ==, CKR_DEVICE_REMOVED);
  pkcs11h_certificate_freeCertificate (certificate);
}

static void
test_fail_ops (Fixture *fixture, gconstpointer data)
{
  pkcs11h_certificate_t certificate = open_certificate (KEY_2048_ID);
  g_autoptr (GBytes) plaintext = NULL;
  CK_SESSION_HANDLE session;
  CK_OBJECT_HANDLE key;
  CK_RV rv;

  assert_decrypts (fixture, certificate, ETA_TEST_KEY_RSA2048);
  session = open_session (fixture);
  key = find_private_key (fixture, session, KEY_2048_ID);

  eta_fault_control_set ("fail_ops", "decrypt");
  eta_fault_control_set ("fail_rv", "0x30");
  g_assert_cmphex (raw_decrypt (fixture, session, key, fixture->ciphertext[ETA_TEST_KEY_RSA2048],
                                NULL), ==, CKR_DEVICE_ERROR);
  eta_fault_control_set ("fail_rv", "CKR_DEVICE_MEMORY");
  g_assert_cmphex (raw_decrypt (fixture, session, key, fixture->ciphertext[ETA_TEST_KEY_RSA2048],
                                NULL), ==, CKR_DEVICE_MEMORY);
  g_assert_cmpuint (eta_fault_control_get_counter ("decrypt_failures"), ==, 2);

  rv = helper_decrypt (certificate, fixture->ciphertext[ETA_TEST_KEY_RSA2048], NULL);
  g_test_message ("pkcs11-helper decrypt with C_Decrypt failing 0x31: 0x%lx %s, "
                  "%d PIN requests, %" G_GUINT64_FORMAT " C_Decrypt calls", rv,
                  pkcs11h_getMessage (rv), g_atomic_int_get (&hooks.pin_prompts),
                  eta_fault_control_get_counter ("decrypt_calls"));
  g_assert_cmphex (rv, !=, CKR_OK);

  eta_fault_control_set ("fail_ops", "C_Login");
  g_assert_cmphex (fixture->f->C_Logout (session), ==, CKR_OK);
  g_assert_cmphex (login (fixture, session, ETA_TEST_TOKEN_PIN), ==, CKR_DEVICE_MEMORY);

  eta_fault_control_set ("fail_ops", NULL);
  g_assert_cmphex (login (fixture, session, ETA_TEST_TOKEN_PIN), ==, CKR_OK);
  /* SoftHSM2 drops the handles of private objects at logout. */
  key = find_private_key (fixture, session, KEY_2048_ID);
  g_assert_cmphex (raw_decrypt (fixture, session, key, fixture->ciphertext[ETA_TEST_KEY_RSA2048],
                                &plaintext), ==, CKR_OK);
  g_assert_true (g_bytes_equal (plaintext, fixture->plaintext));
  g_assert_cmphex (fixture->f->C_CloseSession (session), ==, CKR_OK);
  pkcs11h_certificate_freeCertificate (certificate);
}

static void
test_remove_during (Fixture *fixture, gconstpointer data)
{
  pkcs11h_certificate_t certificate = open_certificate (KEY_2048_ID);
  g_autofree gchar *present = NULL;
  CK_RV rv;

  assert_decrypts (fixture, certificate, ETA_TEST_KEY_RSA2048);
  eta_fault_control_set ("remove_during", "decrypt");
  rv = helper_decrypt (certificate, fixture->ciphertext[ETA_TEST_KEY_RSA2048], NULL);
  g_test_message ("decrypt while the token is pulled: 0x%lx %s", rv, pkcs11h_getMessage (rv));
  g_assert_cmphex (rv, ==, CKR_TOKEN_NOT_PRESENT);
  present = eta_fault_control_get_status ("present");
  g_assert_cmpstr (present, ==, "0");
  g_assert_cmpuint (count_tokens (), ==, 0);
  g_assert_cmpuint (count_slots (fixture->f, CK_TRUE), ==, 0);

  /* The next write to the control file puts it back. */
  eta_fault_control_set ("remove_during", NULL);
  g_assert_cmpuint (count_tokens (), >=, 1);
  assert_decrypts (fixture, certificate, ETA_TEST_KEY_RSA2048);
  g_assert_cmpint (g_atomic_int_get (&hooks.pin_prompts), ==, 2);
  pkcs11h_certificate_freeCertificate (certificate);
}

/* Until pkcs11-helper's event thread watches the token: a change made
 * before that would only set its starting point. */
static void
wait_for_event_thread (const TestCase *test_case)
{
  if (test_case->slot_event_method == PKCS11H_SLOTEVENT_METHOD_FETCH)
    {
      /* Each poll lists the slots twice (count, then fill) and reads them. */
      guint64 polled = eta_fault_control_get_counter ("get_slot_list_calls") + 4;
      gint64 deadline = g_get_monotonic_time () + WAIT_MS * G_TIME_SPAN_MILLISECOND;

      while (eta_fault_control_get_counter ("get_slot_list_calls") < polled)
        {
          g_assert_cmpint (g_get_monotonic_time (), <, deadline);
          g_usleep (10000);
        }
    }
  else
    g_assert_true (eta_fault_control_wait_status ("slot_event_waiting", "1", WAIT_MS));
}

static void
test_slot_events (Fixture *fixture, gconstpointer data)
{
  gint seen;

  /* pkcs11-helper calls the hook once at the start. */
  wait_for_slot_events_above (0);
  wait_for_event_thread (data);
  seen = g_atomic_int_get (&hooks.slot_events);
  eta_fault_control_set ("present", "false");
  wait_for_slot_events_above (seen);
  g_usleep (300000);   /* one change may come as one event per slot */
  seen = g_atomic_int_get (&hooks.slot_events);
  eta_fault_control_set ("present", "true");
  wait_for_slot_events_above (seen);
}

static gpointer
insert_later (gpointer data)
{
  g_usleep (100000);
  eta_fault_control_set ("present", "true");
  return NULL;
}

static void
test_wait_for_slot_event (Fixture *fixture, gconstpointer data)
{
  CK_SLOT_ID slot = 0;
  gboolean saw_token_slot = FALSE;
  GThread *thread;

  g_assert_cmphex (fixture->f->C_WaitForSlotEvent (CKF_DONT_BLOCK, &slot, NULL), ==,
                   CKR_NO_EVENT);
  eta_fault_control_set ("present", "false");
  while (fixture->f->C_WaitForSlotEvent (CKF_DONT_BLOCK, &slot, NULL) == CKR_OK)
    saw_token_slot |= slot == fixture->slot;
  g_assert_true (saw_token_slot);
  /* Blocking, until another thread puts the token back. */
  thread = g_thread_new ("insert", insert_later, NULL);
  g_assert_cmphex (fixture->f->C_WaitForSlotEvent (0, &slot, NULL), ==, CKR_OK);
  g_thread_join (thread);
  g_assert_cmpuint (count_slots (fixture->f, CK_TRUE), >=, 1);
}

typedef struct
{
  Fixture *fixture;
  gint stop;
  gint unexpected;
} StressState;

static gpointer
stress_thread (gpointer data)
{
  StressState *state = data;
  CK_FUNCTION_LIST_PTR f = state->fixture->f;

  while (!g_atomic_int_get (&state->stop))
    {
      CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
      CK_SESSION_INFO session_info;
      CK_TOKEN_INFO token_info;
      CK_RV rv;

      rv = f->C_GetTokenInfo (state->fixture->slot, &token_info);
      if (rv != CKR_OK && rv != CKR_TOKEN_NOT_PRESENT)
        g_atomic_int_inc (&state->unexpected);
      rv = f->C_OpenSession (state->fixture->slot, CKF_SERIAL_SESSION, NULL, NULL, &session);
      if (rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_REMOVED)
        continue;
      if (rv != CKR_OK)
        {
          g_atomic_int_inc (&state->unexpected);
          continue;
        }
      rv = f->C_GetSessionInfo (session, &session_info);
      if (rv != CKR_OK && rv != CKR_DEVICE_REMOVED && rv != CKR_SESSION_HANDLE_INVALID)
        g_atomic_int_inc (&state->unexpected);
      rv = f->C_CloseSession (session);
      if (rv != CKR_OK && rv != CKR_DEVICE_REMOVED && rv != CKR_SESSION_HANDLE_INVALID)
        g_atomic_int_inc (&state->unexpected);
    }
  return NULL;
}

static void
test_threads (Fixture *fixture, gconstpointer data)
{
  StressState state = { fixture, 0, 0 };
  GThread *threads[4];
  g_autofree gchar *open = NULL;
  pkcs11h_certificate_t certificate;

  for (gsize i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("stress", stress_thread, &state);
  for (int i = 0; i < 20; i++)
    {
      eta_fault_control_set ("present", i % 2 ? "true" : "false");
      g_usleep (20000);
    }
  g_atomic_int_set (&state.stop, 1);
  for (gsize i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);
  g_assert_cmpint (state.unexpected, ==, 0);

  eta_fault_control_set ("present", "true");
  g_assert_cmpuint (count_tokens (), >=, 1);
  certificate = open_certificate (KEY_2048_ID);
  assert_decrypts (fixture, certificate, ETA_TEST_KEY_RSA2048);
  open = eta_fault_control_get_status ("sessions_open");
  /* pkcs11-helper's own session is all that is left. */
  g_assert_cmpstr (open, ==, "1");
  pkcs11h_certificate_freeCertificate (certificate);
}

static void
test_unknown_keys (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *unknown = NULL;

  eta_fault_control_set ("presnt", "false");
  eta_fault_control_set ("delay_ops", "decrypt,decript");
  g_assert_cmpuint (count_slots (fixture->f, CK_TRUE), >=, 1);
  unknown = eta_fault_control_get_status ("unknown_keys");
  g_assert_nonnull (strstr (unknown, "presnt"));
  g_assert_nonnull (strstr (unknown, "delay_ops:decript"));
}

int
main (int argc, char **argv)
{
  static const TestCase trigger = { PKCS11H_SLOTEVENT_METHOD_AUTO, TRUE };
  static const TestCase fetch = { PKCS11H_SLOTEVENT_METHOD_FETCH, TRUE };

  g_test_init (&argc, &argv, NULL);

#define ADD(path, func, data) \
  g_test_add (path, Fixture, data, fixture_set_up, func, fixture_tear_down)
  ADD ("/fault-pkcs11/function-list", test_function_list, NULL);
  ADD ("/fault-pkcs11/passthrough", test_passthrough, NULL);
  ADD ("/fault-pkcs11/wrong-pin-counted", test_wrong_pin_counted, NULL);
  ADD ("/fault-pkcs11/remove-insert", test_remove_insert, NULL);
  ADD ("/fault-pkcs11/absent-tokens", test_absent_tokens, NULL);
  ADD ("/fault-pkcs11/pin-flags", test_pin_flags, NULL);
  ADD ("/fault-pkcs11/pin-locked", test_pin_locked, NULL);
  ADD ("/fault-pkcs11/pinpad/enter", test_pinpad_enter, NULL);
  ADD ("/fault-pkcs11/pinpad/cancel", test_pinpad_cancel, NULL);
  ADD ("/fault-pkcs11/pinpad/timeout", test_pinpad_timeout, NULL);
  ADD ("/fault-pkcs11/delay", test_delay, NULL);
  ADD ("/fault-pkcs11/fail-ops", test_fail_ops, NULL);
  ADD ("/fault-pkcs11/remove-during", test_remove_during, NULL);
  ADD ("/fault-pkcs11/slot-events/trigger", test_slot_events, &trigger);
  ADD ("/fault-pkcs11/slot-events/fetch", test_slot_events, &fetch);
  ADD ("/fault-pkcs11/wait-for-slot-event", test_wait_for_slot_event, NULL);
  ADD ("/fault-pkcs11/threads", test_threads, NULL);
  ADD ("/fault-pkcs11/unknown-keys", test_unknown_keys, NULL);
#undef ADD

  return g_test_run ();
}

/* libeta-fault-pkcs11.so: a PKCS#11 module for tests. It forwards every call
 * to SoftHSM2 and, driven by a control file the test rewrites, fakes what
 * SoftHSM2 cannot do: a token pulled out and put back, the tries-left flags, a
 * PIN-pad reader, slow and failing operations. Counters go to a status file.
 *
 * Environment:
 *   ETA_FAULT_PKCS11_CONTROL  control file, `key=value` lines (see README.md);
 *                             unset or missing: plain forwarding
 *   ETA_FAULT_PKCS11_STATUS   status file the module rewrites after each call
 *   ETA_FAULT_PKCS11_WRAPPED  the module to wrap (default: SoftHSM2)
 * The first two are read at each C_Initialize, the last when first loaded.
 *
 * The control file is read on every call and parsed again when its bytes
 * changed, so a test only has to replace it atomically (write + rename).
 *
 * Session handles are the module's own and never reused, so a session that
 * died with its token stays dead after the token comes back, as on a card.
 *
 * Plain C and pthreads, no GLib: it is loaded into whatever process the test
 * starts, and must not care how that process uses GLib. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* asprintf, explicit_bzero */
#endif

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <pkcs11-helper-1.0/pkcs11.h>

/* SoftHSM2's module sits in a directory that differs per architecture: only
 * the build knows it. */
#ifndef ETA_FAULT_DEFAULT_MODULE
#error "ETA_FAULT_DEFAULT_MODULE must be defined (tests/fault-pkcs11/CMakeLists.txt does)"
#endif

#define EXPORT __attribute__ ((visibility ("default")))
#define MIN_SIZE(a, b) ((a) < (b) ? (a) : (b))

#define MAX_CONTROL_BYTES (64 * 1024)
#define MAX_PIN_BYTES 256
#define MAX_SLOTS 64
#define POLL_MS 10
#define DEFAULT_PINPAD_TIMEOUT_MS 30000

/* Every function of CK_FUNCTION_LIST (2.40), in its order, with the name the
 * control file uses for it: delay_ops=decrypt,login; fail_ops=C_Sign also works. */
#define ETA_FAULT_OPS(X) \
  X (C_Initialize, initialize) \
  X (C_Finalize, finalize) \
  X (C_GetInfo, get_info) \
  X (C_GetFunctionList, get_function_list) \
  X (C_GetSlotList, get_slot_list) \
  X (C_GetSlotInfo, get_slot_info) \
  X (C_GetTokenInfo, get_token_info) \
  X (C_GetMechanismList, get_mechanism_list) \
  X (C_GetMechanismInfo, get_mechanism_info) \
  X (C_InitToken, init_token) \
  X (C_InitPIN, init_pin) \
  X (C_SetPIN, set_pin) \
  X (C_OpenSession, open_session) \
  X (C_CloseSession, close_session) \
  X (C_CloseAllSessions, close_all_sessions) \
  X (C_GetSessionInfo, get_session_info) \
  X (C_GetOperationState, get_operation_state) \
  X (C_SetOperationState, set_operation_state) \
  X (C_Login, login) \
  X (C_Logout, logout) \
  X (C_CreateObject, create_object) \
  X (C_CopyObject, copy_object) \
  X (C_DestroyObject, destroy_object) \
  X (C_GetObjectSize, get_object_size) \
  X (C_GetAttributeValue, get_attribute_value) \
  X (C_SetAttributeValue, set_attribute_value) \
  X (C_FindObjectsInit, find_objects_init) \
  X (C_FindObjects, find_objects) \
  X (C_FindObjectsFinal, find_objects_final) \
  X (C_EncryptInit, encrypt_init) \
  X (C_Encrypt, encrypt) \
  X (C_EncryptUpdate, encrypt_update) \
  X (C_EncryptFinal, encrypt_final) \
  X (C_DecryptInit, decrypt_init) \
  X (C_Decrypt, decrypt) \
  X (C_DecryptUpdate, decrypt_update) \
  X (C_DecryptFinal, decrypt_final) \
  X (C_DigestInit, digest_init) \
  X (C_Digest, digest) \
  X (C_DigestUpdate, digest_update) \
  X (C_DigestKey, digest_key) \
  X (C_DigestFinal, digest_final) \
  X (C_SignInit, sign_init) \
  X (C_Sign, sign) \
  X (C_SignUpdate, sign_update) \
  X (C_SignFinal, sign_final) \
  X (C_SignRecoverInit, sign_recover_init) \
  X (C_SignRecover, sign_recover) \
  X (C_VerifyInit, verify_init) \
  X (C_Verify, verify) \
  X (C_VerifyUpdate, verify_update) \
  X (C_VerifyFinal, verify_final) \
  X (C_VerifyRecoverInit, verify_recover_init) \
  X (C_VerifyRecover, verify_recover) \
  X (C_DigestEncryptUpdate, digest_encrypt_update) \
  X (C_DecryptDigestUpdate, decrypt_digest_update) \
  X (C_SignEncryptUpdate, sign_encrypt_update) \
  X (C_DecryptVerifyUpdate, decrypt_verify_update) \
  X (C_GenerateKey, generate_key) \
  X (C_GenerateKeyPair, generate_key_pair) \
  X (C_WrapKey, wrap_key) \
  X (C_UnwrapKey, unwrap_key) \
  X (C_DeriveKey, derive_key) \
  X (C_SeedRandom, seed_random) \
  X (C_GenerateRandom, generate_random) \
  X (C_GetFunctionStatus, get_function_status) \
  X (C_CancelFunction, cancel_function) \
  X (C_WaitForSlotEvent, wait_for_slot_event)

enum
{
#define X(function, name) OP_##name,
  ETA_FAULT_OPS (X)
#undef X
  N_OPS
};

static const struct
{
  const char *function;
  const char *name;
} op_names[N_OPS] = {
#define X(function, name) { #function, #name },
  ETA_FAULT_OPS (X)
#undef X
};

typedef enum
{
  PINPAD_WAIT,
  PINPAD_ENTER,
  PINPAD_CANCEL,
} PinpadState;

typedef struct
{
  bool present;
  bool removable;
  bool protected_auth_path;
  CK_FLAGS pin_flags;
  PinpadState pinpad;
  char pinpad_pin[MAX_PIN_BYTES];
  size_t pinpad_pin_len;
  unsigned long pinpad_timeout_ms;
  unsigned long delay_ms;
  bool delay_ops[N_OPS];
  bool fail_ops[N_OPS];
  bool remove_during[N_OPS];
  CK_RV fail_rv;
  char serial[64];
  char counters_epoch[64];
  char absent_tokens[512]; /* labels of tokens that are out, comma separated */
  char unknown[512];   /* unknown keys and values, reported in the status file */
} Settings;

typedef struct
{
  CK_SESSION_HANDLE real;
  CK_SLOT_ID slot;
  CK_FLAGS flags;       /* as opened, to open it again */
  unsigned long epoch;  /* removals seen when it was opened */
  unsigned long slot_epoch; /* removals of its own token (absent_tokens) then */
  unsigned busy;        /* calls in flight on it */
  bool closed;          /* closed by the application, or by finalisation */
  bool real_open;       /* still open in the wrapped module */
} Session;

typedef enum
{
  SCOPE_GLOBAL,
  SCOPE_SLOT,     /* needs the token: fails while it is out */
  SCOPE_SESSION,
} Scope;

typedef struct
{
  int op;
  Scope scope;
  CK_SLOT_ID slot;  /* for SCOPE_SLOT */
  size_t index;     /* into sessions, for SCOPE_SESSION */
  CK_SESSION_HANDLE real;
  bool waited;      /* the token may have gone while we slept */
  bool end_operation; /* a faked failure that must end the operation in `real` */
} Call;

/* Everything below is guarded by `lock`, except `real`, which is set once
 * and never changes afterwards. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wakeup;   /* CLOCK_MONOTONIC; finalisation and control changes */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static CK_FUNCTION_LIST_PTR real;
static void *real_handle;

static char *control_path;
static char *status_path;
static char *control_text;      /* what we parsed last, to notice changes */
static Settings settings;
static bool forced_absent;      /* remove_during fired; until the control file changes */
static bool present = true;     /* what the application sees now */
static unsigned long epoch;     /* bumped at each removal */
static bool initialized;
static unsigned long generation; /* bumped at each C_Finalize */
static unsigned pinpad_waiting;
static unsigned delay_waiting;
static unsigned slot_event_waiting;
static bool closable_pending;   /* some dead or closed session still open in `real` */

static unsigned long long calls[N_OPS];
static unsigned long long failures[N_OPS];
static char counters_epoch[64];

static CK_SLOT_ID known_slots[MAX_SLOTS];
static bool slot_event[MAX_SLOTS];
static size_t n_known_slots;
/* Per known slot, for absent_tokens: its token's label (learnt from the
 * wrapped module), whether that token is out now, and how often it went. */
static char slot_labels[MAX_SLOTS][33];
static bool slot_label_known[MAX_SLOTS];
static bool slot_absent[MAX_SLOTS];
static unsigned long slot_removals[MAX_SLOTS];

static Session *sessions;
static size_t n_sessions;
static size_t sessions_capacity;

static CK_FUNCTION_LIST function_list;

/* ---- small helpers ---- */

static void
init_once (void)
{
  pthread_condattr_t attr;

  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&wakeup, &attr);
  pthread_condattr_destroy (&attr);
}

static uint64_t
now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Waits on `wakeup` (lock held) for at most @ms. */
static void
wait_ms (unsigned long ms)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (long) (ms % 1000) * 1000000;
  if (ts.tv_nsec >= 1000000000)
    {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
  pthread_cond_timedwait (&wakeup, &lock, &ts);
}

static char *
strip (char *s)
{
  char *end;

  while (*s == ' ' || *s == '\t' || *s == '\r')
    s++;
  end = s + strlen (s);
  while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
    *--end = '\0';
  return s;
}

static void
note_unknown (Settings *s, const char *what, const char *value)
{
  size_t used = strlen (s->unknown);

  snprintf (s->unknown + used, sizeof s->unknown - used, "%s%s%s%s",
            used ? "," : "", what, value ? ":" : "", value ? value : "");
}

static int
find_op (const char *name)
{
  for (int i = 0; i < N_OPS; i++)
    if (strcasecmp (name, op_names[i].name) == 0 || strcasecmp (name, op_names[i].function) == 0)
      return i;
  return -1;
}

/* Splits @value on commas, spaces, semicolons and bars, calling @each on
 * every non-empty word. */
static void
for_each_word (char *value, void (*each) (Settings *, const char *, void *),
               Settings *s, void *data)
{
  char *save = NULL;

  for (char *word = strtok_r (value, ", ;|\t", &save); word != NULL;
       word = strtok_r (NULL, ", ;|\t", &save))
    each (s, word, data);
}

typedef struct
{
  const char *key;
  bool *ops;
} OpListTarget;

static void
add_op (Settings *s, const char *word, void *data)
{
  OpListTarget *target = data;
  int op;

  if (strcmp (word, "*") == 0 || strcasecmp (word, "all") == 0)
    {
      for (int i = 0; i < N_OPS; i++)
        target->ops[i] = i != OP_get_function_list;
      return;
    }
  op = find_op (word);
  if (op < 0)
    note_unknown (s, target->key, word);
  else
    target->ops[op] = true;
}

static void
add_pin_flag (Settings *s, const char *word, void *data)
{
  if (strcasecmp (word, "count_low") == 0 || strcasecmp (word, "CKF_USER_PIN_COUNT_LOW") == 0)
    s->pin_flags |= CKF_USER_PIN_COUNT_LOW;
  else if (strcasecmp (word, "final_try") == 0
           || strcasecmp (word, "CKF_USER_PIN_FINAL_TRY") == 0)
    s->pin_flags |= CKF_USER_PIN_FINAL_TRY;
  else if (strcasecmp (word, "locked") == 0 || strcasecmp (word, "CKF_USER_PIN_LOCKED") == 0)
    s->pin_flags |= CKF_USER_PIN_LOCKED;
  else
    note_unknown (s, "pin_flags", word);
}

static bool
parse_bool (Settings *s, const char *key, const char *value, bool fallback)
{
  if (strcasecmp (value, "true") == 0 || strcmp (value, "1") == 0
      || strcasecmp (value, "yes") == 0 || strcasecmp (value, "on") == 0)
    return true;
  if (strcasecmp (value, "false") == 0 || strcmp (value, "0") == 0
      || strcasecmp (value, "no") == 0 || strcasecmp (value, "off") == 0)
    return false;
  note_unknown (s, key, value);
  return fallback;
}

static unsigned long
parse_ulong (Settings *s, const char *key, const char *value, unsigned long fallback)
{
  char *end = NULL;
  unsigned long result;

  errno = 0;
  result = strtoul (value, &end, 0);
  if (errno != 0 || end == value || *end != '\0')
    {
      note_unknown (s, key, value);
      return fallback;
    }
  return result;
}

static const struct
{
  const char *name;
  CK_RV rv;
} rv_names[] = {
  { "CKR_CANCEL", CKR_CANCEL },
  { "CKR_HOST_MEMORY", CKR_HOST_MEMORY },
  { "CKR_GENERAL_ERROR", CKR_GENERAL_ERROR },
  { "CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED },
  { "CKR_DEVICE_ERROR", CKR_DEVICE_ERROR },
  { "CKR_DEVICE_MEMORY", CKR_DEVICE_MEMORY },
  { "CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED },
  { "CKR_ENCRYPTED_DATA_INVALID", CKR_ENCRYPTED_DATA_INVALID },
  { "CKR_ENCRYPTED_DATA_LEN_RANGE", CKR_ENCRYPTED_DATA_LEN_RANGE },
  { "CKR_FUNCTION_CANCELED", CKR_FUNCTION_CANCELED },
  { "CKR_KEY_HANDLE_INVALID", CKR_KEY_HANDLE_INVALID },
  { "CKR_MECHANISM_INVALID", CKR_MECHANISM_INVALID },
  { "CKR_PIN_INCORRECT", CKR_PIN_INCORRECT },
  { "CKR_PIN_LOCKED", CKR_PIN_LOCKED },
  { "CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID },
  { "CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT },
  { "CKR_USER_NOT_LOGGED_IN", CKR_USER_NOT_LOGGED_IN },
};

static CK_RV
parse_rv (Settings *s, const char *value)
{
  for (size_t i = 0; i < sizeof rv_names / sizeof rv_names[0]; i++)
    if (strcasecmp (value, rv_names[i].name) == 0)
      return rv_names[i].rv;
  return parse_ulong (s, "fail_rv", value, CKR_DEVICE_ERROR);
}

static void
copy_string (char *target, size_t size, const char *value)
{
  snprintf (target, size, "%s", value);
}

/* Fills @s from the control file's text (modified in place). */
static void
parse_settings (Settings *s, char *text)
{
  char *save = NULL;

  memset (s, 0, sizeof *s);
  s->present = true;
  s->removable = true;
  s->pinpad = PINPAD_WAIT;
  s->pinpad_timeout_ms = DEFAULT_PINPAD_TIMEOUT_MS;
  s->fail_rv = CKR_DEVICE_ERROR;

  for (char *line = strtok_r (text, "\n", &save); line != NULL; line = strtok_r (NULL, "\n", &save))
    {
      char *equals;
      char *key;
      char *value;

      line = strip (line);
      /* Comments, and GKeyFile group headers so a key file works too. */
      if (*line == '\0' || *line == '#' || *line == ';' || *line == '[')
        continue;
      equals = strchr (line, '=');
      if (equals == NULL)
        {
          note_unknown (s, line, NULL);
          continue;
        }
      *equals = '\0';
      key = strip (line);
      value = strip (equals + 1);

      if (strcmp (key, "present") == 0)
        s->present = parse_bool (s, key, value, true);
      else if (strcmp (key, "removable") == 0)
        s->removable = parse_bool (s, key, value, true);
      else if (strcmp (key, "protected_auth_path") == 0)
        s->protected_auth_path = parse_bool (s, key, value, false);
      else if (strcmp (key, "pin_flags") == 0)
        {
          s->pin_flags = 0;
          for_each_word (value, add_pin_flag, s, NULL);
        }
      else if (strcmp (key, "pinpad") == 0)
        {
          if (strcasecmp (value, "enter") == 0)
            s->pinpad = PINPAD_ENTER;
          else if (strcasecmp (value, "cancel") == 0)
            s->pinpad = PINPAD_CANCEL;
          else if (*value == '\0' || strcasecmp (value, "wait") == 0)
            s->pinpad = PINPAD_WAIT;
          else
            note_unknown (s, key, value);
        }
      else if (strcmp (key, "pinpad_pin") == 0)
        {
          copy_string (s->pinpad_pin, sizeof s->pinpad_pin, value);
          s->pinpad_pin_len = strlen (s->pinpad_pin);
        }
      else if (strcmp (key, "pinpad_timeout_ms") == 0)
        s->pinpad_timeout_ms = parse_ulong (s, key, value, DEFAULT_PINPAD_TIMEOUT_MS);
      else if (strcmp (key, "delay_ms") == 0)
        s->delay_ms = parse_ulong (s, key, value, 0);
      else if (strcmp (key, "delay_ops") == 0)
        {
          OpListTarget target = { "delay_ops", s->delay_ops };
          memset (s->delay_ops, 0, sizeof s->delay_ops);
          for_each_word (value, add_op, s, &target);
        }
      else if (strcmp (key, "fail_ops") == 0)
        {
          OpListTarget target = { "fail_ops", s->fail_ops };
          memset (s->fail_ops, 0, sizeof s->fail_ops);
          for_each_word (value, add_op, s, &target);
        }
      else if (strcmp (key, "remove_during") == 0)
        {
          OpListTarget target = { "remove_during", s->remove_during };
          memset (s->remove_during, 0, sizeof s->remove_during);
          for_each_word (value, add_op, s, &target);
        }
      else if (strcmp (key, "fail_rv") == 0)
        s->fail_rv = parse_rv (s, value);
      else if (strcmp (key, "serial") == 0)
        copy_string (s->serial, sizeof s->serial, value);
      else if (strcmp (key, "counters_epoch") == 0)
        copy_string (s->counters_epoch, sizeof s->counters_epoch, value);
      else if (strcmp (key, "absent_tokens") == 0)
        copy_string (s->absent_tokens, sizeof s->absent_tokens, value);
      else
        note_unknown (s, key, NULL);
    }
}

/* ---- state changes, all with the lock held ---- */

static void
mark_slot_events (void)
{
  for (size_t i = 0; i < n_known_slots; i++)
    slot_event[i] = true;
  pthread_cond_broadcast (&wakeup);
}

/* Whether @label is one of the comma-separated labels in @list (blanks
 * around each one do not count). */
static bool
label_listed (const char *list, const char *label)
{
  size_t len = strlen (label);
  const char *p = list;

  if (len == 0)
    return false;
  while (*p != '\0')
    {
      const char *end = strchr (p, ',');
      const char *a = p;
      const char *b;

      if (end == NULL)
        end = p + strlen (p);
      b = end;
      while (a < b && (*a == ' ' || *a == '\t'))
        a++;
      while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
        b--;
      if ((size_t) (b - a) == len && memcmp (a, label, len) == 0)
        return true;
      p = *end != '\0' ? end + 1 : end;
    }
  return false;
}

/* Index of @slot among the known slots, or -1. Lock held. */
static int
known_slot_index (CK_SLOT_ID slot)
{
  for (size_t i = 0; i < n_known_slots; i++)
    if (known_slots[i] == slot)
      return (int) i;
  return -1;
}

/* Whether the token in @slot is out: all of them (present=false,
 * remove_during) or this one (absent_tokens). Lock held. */
static bool
slot_gone (CK_SLOT_ID slot)
{
  int i;

  if (!present)
    return true;
  i = known_slot_index (slot);
  return i >= 0 && slot_absent[i];
}

/* Removals of the token in @slot alone. Lock held. */
static unsigned long
slot_epoch (CK_SLOT_ID slot)
{
  int i = known_slot_index (slot);
  return i >= 0 ? slot_removals[i] : 0;
}

static void
apply_presence (void)
{
  bool now_present = settings.present && !forced_absent;
  bool changed = false;

  if (now_present != present)
    {
      if (!now_present)
        {
          /* Every open session dies with the token; the wrapped module
           * closes them (which logs it out) as soon as no call is using
           * them. */
          epoch++;
          closable_pending = true;
        }
      present = now_present;
      mark_slot_events ();
    }
  /* absent_tokens: the same, for the named tokens only. */
  for (size_t i = 0; i < n_known_slots; i++)
    {
      bool absent = slot_label_known[i] && label_listed (settings.absent_tokens, slot_labels[i]);

      if (absent == slot_absent[i])
        continue;
      if (absent)
        {
          slot_removals[i]++;
          closable_pending = true;
        }
      slot_absent[i] = absent;
      slot_event[i] = true;
      changed = true;
    }
  if (changed)
    pthread_cond_broadcast (&wakeup);
}

static char *
read_control_file (void)
{
  char *buffer;
  size_t used = 0;
  int fd;

  buffer = malloc (MAX_CONTROL_BYTES + 1);
  if (buffer == NULL)
    return NULL;
  /* No control file: the defaults, which only forward. */
  fd = control_path != NULL ? open (control_path, O_RDONLY | O_CLOEXEC) : -1;
  if (fd >= 0)
    {
      while (used < MAX_CONTROL_BYTES)
        {
          ssize_t n = read (fd, buffer + used, MAX_CONTROL_BYTES - used);
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            break;
          used += (size_t) n;
        }
      close (fd);
    }
  /* A missing file means the defaults, like an empty one. */
  buffer[used] = '\0';
  return realloc (buffer, used + 1) ?: buffer;
}

static void
reload_control (void)
{
  char *text = read_control_file ();
  char *scratch;

  if (text == NULL)
    return;
  if (control_text != NULL && strcmp (text, control_text) == 0)
    {
      free (text);
      return;
    }
  free (control_text);
  control_text = text;
  scratch = strdup (text);
  if (scratch == NULL)
    return;
  parse_settings (&settings, scratch);
  free (scratch);

  if (strcmp (settings.counters_epoch, counters_epoch) != 0)
    {
      memset (calls, 0, sizeof calls);
      memset (failures, 0, sizeof failures);
      copy_string (counters_epoch, sizeof counters_epoch, settings.counters_epoch);
    }
  /* Whatever the test writes next decides presence again. */
  forced_absent = false;
  apply_presence ();
  pthread_cond_broadcast (&wakeup);
}

typedef struct
{
  char *data;
  size_t used;
  size_t size;
} Text;

static void __attribute__ ((format (printf, 2, 3)))
text_append (Text *text, const char *format, ...)
{
  va_list args;
  int n;

  if (text->used >= text->size)
    return;
  va_start (args, format);
  n = vsnprintf (text->data + text->used, text->size - text->used, format, args);
  va_end (args);
  if (n > 0)
    text->used = MIN_SIZE (text->used + (size_t) n, text->size - 1);
}

static bool session_dead (const Session *session);

static size_t
count_open_sessions (void)
{
  size_t count = 0;

  for (size_t i = 0; i < n_sessions; i++)
    if (!sessions[i].closed && !session_dead (&sessions[i]))
      count++;
  return count;
}

static void
write_status (void)
{
  char buffer[16384];
  Text text = { buffer, 0, sizeof buffer };
  char *tmp_path;
  int fd;

  if (status_path == NULL)
    return;
  text_append (&text, "counters_epoch=%s\n", counters_epoch);
  text_append (&text, "serial=%s\n", settings.serial);
  text_append (&text, "present=%d\n", present ? 1 : 0);
  text_append (&text, "initialized=%d\n", initialized ? 1 : 0);
  text_append (&text, "pinpad_waiting=%u\n", pinpad_waiting);
  text_append (&text, "delay_waiting=%u\n", delay_waiting);
  text_append (&text, "slot_event_waiting=%u\n", slot_event_waiting);
  text_append (&text, "sessions_open=%zu\n", count_open_sessions ());
  text_append (&text, "unknown_keys=%s\n", settings.unknown);
  text_append (&text, "absent_tokens=");
  for (size_t i = 0, n = 0; i < n_known_slots; i++)
    if (slot_absent[i])
      text_append (&text, "%s%s", n++ ? "," : "", slot_labels[i]);
  text_append (&text, "\n");
  for (int i = 0; i < N_OPS; i++)
    {
      /* The counters tests ask for most are always there, even at zero. */
      if (calls[i] == 0 && i != OP_login && i != OP_decrypt)
        continue;
      text_append (&text, "%s_calls=%llu\n", op_names[i].name, calls[i]);
      text_append (&text, "%s_failures=%llu\n", op_names[i].name, failures[i]);
    }

  if (asprintf (&tmp_path, "%s.tmp.%ld", status_path, (long) getpid ()) < 0)
    return;
  fd = open (tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0)
    {
      bool ok = true;
      size_t done = 0;

      while (done < text.used)
        {
          ssize_t n = write (fd, buffer + done, text.used - done);
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            {
              ok = false;
              break;
            }
          done += (size_t) n;
        }
      if (close (fd) != 0)
        ok = false;
      if (!ok || rename (tmp_path, status_path) != 0)
        unlink (tmp_path);
    }
  free (tmp_path);
}

static bool
session_dead (const Session *session)
{
  return session->epoch != epoch || session->slot_epoch != slot_epoch (session->slot);
}

/* Looks up the application's @handle. */
static CK_RV
session_lookup (CK_SESSION_HANDLE handle, size_t *index)
{
  Session *session;

  if (handle == CK_INVALID_HANDLE || handle > n_sessions)
    return CKR_SESSION_HANDLE_INVALID;
  session = &sessions[handle - 1];
  if (session->closed)
    return CKR_SESSION_HANDLE_INVALID;
  if (session_dead (session))
    return slot_gone (session->slot) ? CKR_DEVICE_REMOVED : CKR_SESSION_HANDLE_INVALID;
  *index = handle - 1;
  return CKR_OK;
}

static CK_RV
session_add (CK_SESSION_HANDLE real_session, CK_SLOT_ID slot, CK_FLAGS flags,
             CK_SESSION_HANDLE *handle)
{
  if (n_sessions == sessions_capacity)
    {
      size_t capacity = sessions_capacity ? sessions_capacity * 2 : 64;
      Session *grown = realloc (sessions, capacity * sizeof *grown);
      if (grown == NULL)
        return CKR_HOST_MEMORY;
      sessions = grown;
      sessions_capacity = capacity;
    }
  sessions[n_sessions] = (Session) {
    .real = real_session, .slot = slot, .flags = flags, .epoch = epoch,
    .slot_epoch = slot_epoch (slot), .real_open = true,
  };
  n_sessions++;
  *handle = n_sessions;
  return CKR_OK;
}

/* Takes the real handles of sessions that are closed or dead and idle, to be
 * closed in the wrapped module once the lock is released. */
static size_t
take_closable (CK_SESSION_HANDLE *out, size_t max)
{
  size_t count = 0;

  if (!closable_pending)
    return 0;
  closable_pending = false;
  for (size_t i = 0; i < n_sessions; i++)
    {
      Session *session = &sessions[i];

      if (!session->real_open || session->busy > 0
          || !(session->closed || session_dead (session)))
        continue;
      if (count == max)
        {
          closable_pending = true;
          break;
        }
      session->real_open = false;
      out[count++] = session->real;
    }
  return count;
}

/* Lock not held. */
static void
close_real_sessions (void)
{
  for (;;)
    {
      CK_SESSION_HANDLE handles[32];
      size_t count;
      unsigned long seen_generation;

      pthread_mutex_lock (&lock);
      count = initialized ? take_closable (handles, 32) : 0;
      seen_generation = generation;
      pthread_mutex_unlock (&lock);
      if (count == 0)
        return;
      for (size_t i = 0; i < count; i++)
        {
          /* After C_Finalize the wrapped module has closed them itself, and
           * after a new C_Initialize the numbers may be someone else's. */
          if (__atomic_load_n (&generation, __ATOMIC_SEQ_CST) != seen_generation)
            return;
          real->C_CloseSession (handles[i]);
        }
    }
}

/* ---- the common prologue and epilogue of every wrapped call ---- */

/* Calls after which a failure ends the active operation (PKCS#11 2.40,
 * 5.8-5.13): when we fake one, the wrapped module must not keep it going. */
static bool
ends_operation (int op)
{
  switch (op)
    {
    case OP_encrypt: case OP_encrypt_update: case OP_encrypt_final:
    case OP_decrypt: case OP_decrypt_update: case OP_decrypt_final:
    case OP_digest: case OP_digest_update: case OP_digest_key: case OP_digest_final:
    case OP_sign: case OP_sign_update: case OP_sign_final: case OP_sign_recover:
    case OP_verify: case OP_verify_update: case OP_verify_final: case OP_verify_recover:
    case OP_digest_encrypt_update: case OP_decrypt_digest_update:
    case OP_sign_encrypt_update: case OP_decrypt_verify_update:
      return true;
    default:
      return false;
    }
}

/* PKCS#11 2.40 has no way to cancel an operation, so the application's
 * session moves to a fresh session of the wrapped module. Opened before the
 * old one closes, the token stays logged in. Lock not held; the session is
 * busy, so nobody else closes it meanwhile. */
static void
end_real_operation (Call *call)
{
  CK_SESSION_HANDLE fresh = CK_INVALID_HANDLE;
  CK_SESSION_HANDLE old;
  CK_SLOT_ID slot;
  CK_FLAGS flags;

  pthread_mutex_lock (&lock);
  slot = sessions[call->index].slot;
  flags = sessions[call->index].flags;
  pthread_mutex_unlock (&lock);
  if (real->C_OpenSession (slot, flags, NULL, NULL, &fresh) != CKR_OK)
    return;
  pthread_mutex_lock (&lock);
  old = sessions[call->index].real;
  sessions[call->index].real = fresh;
  pthread_mutex_unlock (&lock);
  real->C_CloseSession (old);
}

static CK_RV
presence_rv (const Call *call)
{
  if (call->scope == SCOPE_SESSION)
    {
      if (sessions[call->index].closed)
        return CKR_SESSION_HANDLE_INVALID;
      if (session_dead (&sessions[call->index]))
        return CKR_DEVICE_REMOVED;
    }
  else if (call->scope == SCOPE_SLOT && slot_gone (call->slot))
    return call->waited ? CKR_DEVICE_REMOVED : CKR_TOKEN_NOT_PRESENT;
  return CKR_OK;
}

/* Waits out a delay; the token going away ends it early. Lock held. */
static CK_RV
run_delay (Call *call)
{
  uint64_t deadline = now_ms () + settings.delay_ms;
  unsigned long seen_generation = generation;
  CK_RV rv = CKR_OK;

  delay_waiting++;
  write_status ();
  call->waited = true;
  for (uint64_t now = now_ms (); now < deadline; now = now_ms ())
    {
      wait_ms (deadline - now < POLL_MS ? (unsigned long) (deadline - now) : POLL_MS);
      reload_control ();
      if (generation != seen_generation)
        {
          rv = CKR_CRYPTOKI_NOT_INITIALIZED;
          break;
        }
      if ((rv = presence_rv (call)) != CKR_OK)
        break;
    }
  delay_waiting--;
  return rv;
}

static CK_RV
call_begin (Call *call, int op, Scope scope, CK_ULONG target)
{
  CK_RV rv = CKR_OK;

  *call = (Call) { .op = op, .scope = scope, .slot = scope == SCOPE_SLOT ? target : 0 };
  pthread_once (&once, init_once);
  pthread_mutex_lock (&lock);
  reload_control ();
  calls[op]++;

  if (scope != SCOPE_GLOBAL && !initialized)
    rv = CKR_CRYPTOKI_NOT_INITIALIZED;
  else if (scope == SCOPE_SESSION)
    {
      rv = session_lookup (target, &call->index);
      if (rv == CKR_OK)
        {
          sessions[call->index].busy++;
          call->real = sessions[call->index].real;
        }
      else
        call->scope = SCOPE_GLOBAL;  /* nothing to release at the end */
    }
  else if (scope == SCOPE_SLOT && slot_gone (target))
    rv = CKR_TOKEN_NOT_PRESENT;

  if (rv == CKR_OK && settings.delay_ops[op] && settings.delay_ms > 0)
    rv = run_delay (call);

  if (rv == CKR_OK && settings.remove_during[op])
    {
      forced_absent = true;
      apply_presence ();
      rv = CKR_DEVICE_REMOVED;
    }
  else if (rv == CKR_OK && settings.fail_ops[op])
    {
      rv = settings.fail_rv;
      call->end_operation = call->scope == SCOPE_SESSION && ends_operation (op)
                            && rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL;
    }
  pthread_mutex_unlock (&lock);
  return rv;
}

static CK_RV
call_end (Call *call, CK_RV rv)
{
  if (call->end_operation)
    end_real_operation (call);
  pthread_mutex_lock (&lock);
  if (call->scope == SCOPE_SESSION)
    {
      Session *session = &sessions[call->index];

      session->busy--;
      /* The token went away while the wrapped module was working. */
      if (rv == CKR_OK && session_dead (session) && call->op != OP_close_session)
        rv = CKR_DEVICE_REMOVED;
      if (session->busy == 0 && (session->closed || session_dead (session)))
        closable_pending = true;
    }
  if (rv != CKR_OK)
    failures[call->op]++;
  write_status ();
  pthread_mutex_unlock (&lock);
  close_real_sessions ();
  return rv;
}

/* pkcs11-helper unloads the module at pkcs11h_terminate; tests load it
 * again and again. */
static void __attribute__ ((destructor))
free_state (void)
{
  free (control_text);
  free (control_path);
  free (status_path);
  free (sessions);
  control_text = control_path = status_path = NULL;
  sessions = NULL;
}

/* ---- load the wrapped module ---- */

static CK_RV
load_real (void)
{
  CK_RV (*get_function_list) (CK_FUNCTION_LIST_PTR_PTR);
  CK_FUNCTION_LIST_PTR list = NULL;
  const char *path;
  void *handle;
  CK_RV rv;

  pthread_once (&once, init_once);
  pthread_mutex_lock (&lock);
  if (real != NULL)
    {
      pthread_mutex_unlock (&lock);
      return CKR_OK;
    }
  path = getenv ("ETA_FAULT_PKCS11_WRAPPED");
  if (path == NULL || *path == '\0')
    path = ETA_FAULT_DEFAULT_MODULE;
  /* Never closed: SoftHSM2 does not like being unloaded and loaded again. */
  handle = dlopen (path, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL)
    {
      fprintf (stderr, "eta-fault-pkcs11: cannot load %s: %s\n", path, dlerror ());
      pthread_mutex_unlock (&lock);
      return CKR_GENERAL_ERROR;
    }
  *(void **) &get_function_list = dlsym (handle, "C_GetFunctionList");
  rv = get_function_list ? get_function_list (&list) : CKR_GENERAL_ERROR;
  if (rv != CKR_OK || list == NULL)
    {
      fprintf (stderr, "eta-fault-pkcs11: %s has no usable C_GetFunctionList\n", path);
      dlclose (handle);
      pthread_mutex_unlock (&lock);
      return CKR_GENERAL_ERROR;
    }
  real_handle = handle;
  real = list;
  pthread_mutex_unlock (&lock);
  return CKR_OK;
}

static char *
dup_env (const char *name)
{
  const char *value = getenv (name);
  return value != NULL && *value != '\0' ? strdup (value) : NULL;
}

/* Lock held. */
static void
remember_slots (const CK_SLOT_ID *slots, CK_ULONG count)
{
  for (CK_ULONG i = 0; i < count; i++)
    {
      size_t j;

      for (j = 0; j < n_known_slots && known_slots[j] != slots[i]; j++)
        ;
      if (j == n_known_slots && n_known_slots < MAX_SLOTS)
        {
          known_slots[n_known_slots] = slots[i];
          slot_event[n_known_slots] = false;
          slot_label_known[n_known_slots] = false;
          slot_absent[n_known_slots] = false;
          slot_removals[n_known_slots] = 0;
          n_known_slots++;
        }
    }
}

/* Learns the labels of the tokens in @slots from the wrapped module, for
 * absent_tokens, and applies it to them. Lock not held. */
static void
learn_labels (const CK_SLOT_ID *slots, CK_ULONG count)
{
  for (CK_ULONG i = 0; i < count; i++)
    {
      CK_TOKEN_INFO info;
      bool known;
      int index;

      pthread_mutex_lock (&lock);
      index = known_slot_index (slots[i]);
      known = index < 0 || slot_label_known[index];
      pthread_mutex_unlock (&lock);
      if (known || real->C_GetTokenInfo (slots[i], &info) != CKR_OK)
        continue;

      pthread_mutex_lock (&lock);
      index = known_slot_index (slots[i]);
      if (index >= 0 && !slot_label_known[index])
        {
          size_t len = sizeof info.label;

          /* Blank-padded, not terminated. */
          while (len > 0 && info.label[len - 1] == ' ')
            len--;
          memcpy (slot_labels[index], info.label, len);
          slot_labels[index][len] = '\0';
          slot_label_known[index] = true;
          apply_presence ();
        }
      pthread_mutex_unlock (&lock);
    }
}

/* ---- general purpose ---- */

static CK_RV
fault_C_Initialize (CK_VOID_PTR pInitArgs)
{
  CK_C_INITIALIZE_ARGS os_locking = { .flags = CKF_OS_LOCKING_OK };
  CK_SLOT_ID slots[MAX_SLOTS];
  CK_ULONG count = MAX_SLOTS;
  Call call;
  CK_RV rv;

  if ((rv = load_real ()) != CKR_OK)
    return rv;

  pthread_mutex_lock (&lock);
  free (control_path);
  free (status_path);
  control_path = dup_env ("ETA_FAULT_PKCS11_CONTROL");
  status_path = dup_env ("ETA_FAULT_PKCS11_STATUS");
  free (control_text);
  control_text = NULL;
  pthread_mutex_unlock (&lock);

  rv = call_begin (&call, OP_initialize, SCOPE_GLOBAL, 0);
  /* The fault machinery calls the wrapped module from whichever thread
   * happens to be there; pkcs11-helper passes no arguments at all, which
   * SoftHSM2 takes as "no locking needed". */
  if (rv == CKR_OK)
    rv = real->C_Initialize (pInitArgs != NULL ? pInitArgs : &os_locking);
  if (rv == CKR_OK)
    {
      CK_RV slots_rv = real->C_GetSlotList (CK_FALSE, slots, &count);

      pthread_mutex_lock (&lock);
      initialized = true;
      n_known_slots = 0;
      if (slots_rv == CKR_OK)
        remember_slots (slots, count);
      pthread_mutex_unlock (&lock);
      if (slots_rv == CKR_OK)
        learn_labels (slots, count);
    }
  return call_end (&call, rv);
}

static CK_RV
fault_C_Finalize (CK_VOID_PTR pReserved)
{
  Call call;
  CK_RV rv = call_begin (&call, OP_finalize, SCOPE_GLOBAL, 0);

  if (rv != CKR_OK)
    return call_end (&call, rv);
  pthread_mutex_lock (&lock);
  if (initialized)
    {
      initialized = false;
      __atomic_add_fetch (&generation, 1, __ATOMIC_SEQ_CST);
      /* The wrapped module closes its sessions itself. */
      for (size_t i = 0; i < n_sessions; i++)
        {
          sessions[i].closed = true;
          sessions[i].real_open = false;
        }
      closable_pending = false;
      pthread_cond_broadcast (&wakeup);
    }
  pthread_mutex_unlock (&lock);
  rv = real->C_Finalize (pReserved);
  return call_end (&call, rv);
}

static CK_RV
fault_C_GetInfo (CK_INFO_PTR pInfo)
{
  Call call;
  CK_RV rv = call_begin (&call, OP_get_info, SCOPE_GLOBAL, 0);

  if (rv == CKR_OK)
    rv = real->C_GetInfo (pInfo);
  return call_end (&call, rv);
}

EXPORT CK_RV
C_GetFunctionList (CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
  CK_RV rv;

  if (ppFunctionList == NULL)
    return CKR_ARGUMENTS_BAD;
  if ((rv = load_real ()) != CKR_OK)
    return rv;
  *ppFunctionList = &function_list;
  return CKR_OK;
}

static CK_RV
fault_C_GetFunctionList (CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
  return C_GetFunctionList (ppFunctionList);
}

/* ---- slots and tokens ---- */

static CK_RV
fault_C_GetSlotList (CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
{
  Call call;
  CK_RV rv = call_begin (&call, OP_get_slot_list, SCOPE_GLOBAL, 0);
  bool absent;
  bool some_absent;

  if (rv != CKR_OK)
    return call_end (&call, rv);
  pthread_mutex_lock (&lock);
  absent = !present;
  some_absent = settings.absent_tokens[0] != '\0';
  pthread_mutex_unlock (&lock);
  if (tokenPresent && absent)
    {
      if (pulCount == NULL)
        rv = CKR_ARGUMENTS_BAD;
      else
        *pulCount = 0;
      return call_end (&call, rv);
    }
  if (tokenPresent && some_absent)
    {
      /* The slots whose token absent_tokens names are left out. */
      CK_SLOT_ID all[MAX_SLOTS];
      CK_ULONG n = MAX_SLOTS;
      CK_ULONG kept = 0;

      if (pulCount == NULL)
        return call_end (&call, CKR_ARGUMENTS_BAD);
      rv = real->C_GetSlotList (CK_TRUE, all, &n);
      if (rv != CKR_OK)
        return call_end (&call, rv);
      pthread_mutex_lock (&lock);
      remember_slots (all, n);
      pthread_mutex_unlock (&lock);
      learn_labels (all, n);
      pthread_mutex_lock (&lock);
      for (CK_ULONG i = 0; i < n; i++)
        if (!slot_gone (all[i]))
          all[kept++] = all[i];
      pthread_mutex_unlock (&lock);
      if (pSlotList != NULL && *pulCount < kept)
        rv = CKR_BUFFER_TOO_SMALL;
      else if (pSlotList != NULL)
        memcpy (pSlotList, all, kept * sizeof all[0]);
      *pulCount = kept;
      return call_end (&call, rv);
    }
  rv = real->C_GetSlotList (tokenPresent, pSlotList, pulCount);
  if (rv == CKR_OK && pSlotList != NULL)
    {
      pthread_mutex_lock (&lock);
      remember_slots (pSlotList, *pulCount);
      pthread_mutex_unlock (&lock);
      learn_labels (pSlotList, *pulCount);
    }
  return call_end (&call, rv);
}

static CK_RV
fault_C_GetSlotInfo (CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
  Call call;
  CK_RV rv = call_begin (&call, OP_get_slot_info, SCOPE_GLOBAL, 0);

  if (rv == CKR_OK)
    rv = real->C_GetSlotInfo (slotID, pInfo);
  if (rv == CKR_OK)
    {
      pthread_mutex_lock (&lock);
      if (slot_gone (slotID))
        pInfo->flags &= ~CKF_TOKEN_PRESENT;
      if (settings.removable)
        pInfo->flags |= CKF_REMOVABLE_DEVICE;
      pthread_mutex_unlock (&lock);
    }
  return call_end (&call, rv);
}

static CK_RV
fault_C_GetTokenInfo (CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
  Call call;
  CK_RV rv = call_begin (&call, OP_get_token_info, SCOPE_SLOT, slotID);

  if (rv == CKR_OK)
    rv = real->C_GetTokenInfo (slotID, pInfo);
  if (rv == CKR_OK)
    {
      pthread_mutex_lock (&lock);
      pInfo->flags |= settings.pin_flags;
      if (settings.protected_auth_path)
        pInfo->flags |= CKF_PROTECTED_AUTHENTICATION_PATH;
      pthread_mutex_unlock (&lock);
    }
  return call_end (&call, rv);
}

static CK_RV
fault_C_GetMechanismList (CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList,
                          CK_ULONG_PTR pulCount)
{
  Call call;
  CK_RV rv = call_begin (&call, OP_get_mechanism_list, SCOPE_SLOT, slotID);

  if (rv == CKR_OK)
    rv = real->C_GetMechanismList (slotID, pMechanismList, pulCount);
  return call_end (&call, rv);
}

static CK_RV
fault_C_GetMechanismInfo (CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo)
{
  Call call;
  CK_RV rv = call_begin (&call, OP_get_mechanism_info, SCOPE_SLOT, slotID);

  if (rv == CKR_OK)
    rv = real->C_GetMechanismInfo (slotID, type, pInfo);
  return call_end (&call, rv);
}

static CK_RV
fault_C_InitToken (CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen,
                   CK_UTF8CHAR_PTR pLabel)
{
  Call call;
  CK_RV rv = call_begin (&call, OP_init_token, SCOPE_SLOT, slotID);

  if (rv == CKR_OK)
    rv = real->C_InitToken (slotID, pPin, ulPinLen, pLabel);
  return call_end (&call, rv);
}

static CK_RV
fault_C_WaitForSlotEvent (CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
  Call call;
  CK_RV rv = call_begin (&call, OP_wait_for_slot_event, SCOPE_GLOBAL, 0);
  unsigned long seen_generation;
  bool waiting = false;

  if (rv != CKR_OK)
    return call_end (&call, rv);
  if (pSlot == NULL)
    return call_end (&call, CKR_ARGUMENTS_BAD);

  /* Presence only changes when the control file does, so a blocking wait
   * polls it; C_Finalize ends the wait, as the specification asks. */
  pthread_mutex_lock (&lock);
  seen_generation = generation;
  for (;;)
    {
      size_t i;

      if (!initialized || generation != seen_generation)
        {
          rv = CKR_CRYPTOKI_NOT_INITIALIZED;
          break;
        }
      reload_control ();
      for (i = 0; i < n_known_slots && !slot_event[i]; i++)
        ;
      if (i < n_known_slots)
        {
          slot_event[i] = false;
          *pSlot = known_slots[i];
          rv = CKR_OK;
          break;
        }
      if (flags & CKF_DONT_BLOCK)
        {
          rv = CKR_NO_EVENT;
          break;
        }
      if (!waiting)
        {
          /* Tests wait for this before they change anything. */
          waiting = true;
          slot_event_waiting++;
          write_status ();
        }
      wait_ms (50);
    }
  if (waiting)
    slot_event_waiting--;
  pthread_mutex_unlock (&lock);
  return call_end (&call, rv);
}

/* ---- sessions ---- */

static CK_RV
fault_C_OpenSession (CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication,
                     CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession)
{
  Call call;
  CK_SESSION_HANDLE real_session = CK_INVALID_HANDLE;
  unsigned long opened_epoch;
  unsigned long opened_slot_epoch;
  CK_RV rv;

  if (phSession == NULL)
    return CKR_ARGUMENTS_BAD;
  rv = call_begin (&call, OP_open_session, SCOPE_SLOT, slotID);
  if (rv != CKR_OK)
    return call_end (&call, rv);

  pthread_mutex_lock (&lock);
  opened_epoch = epoch;
  opened_slot_epoch = slot_epoch (slotID);
  pthread_mutex_unlock (&lock);
  /* The notification callback would see the wrapped module's handle;
   * nobody we know of uses it. */
  rv = real->C_OpenSession (slotID, flags, pApplication, Notify, &real_session);
  if (rv != CKR_OK)
    return call_end (&call, rv);

  pthread_mutex_lock (&lock);
  if (epoch != opened_epoch || slot_epoch (slotID) != opened_slot_epoch || !initialized)
    rv = CKR_DEVICE_REMOVED;
  else
    rv = session_add (real_session, slotID, flags, phSession);
  pthread_mutex_unlock (&lock);
  if (rv != CKR_OK)
    real->C_CloseSession (real_session);
  return call_end (&call, rv);
}

static CK_RV
fault_C_CloseSession (CK_SESSION_HANDLE hSession)
{
  Call call;
  CK_RV rv = call_begin (&call, OP_close_session, SCOPE_SESSION, hSession);

  if (rv == CKR_OK)
    {
      pthread_mutex_lock (&lock);
      sessions[call.index].closed = true;
      pthread_mutex_unlock (&lock);
    }
  else
    {
      /* A dead session still gets its slot freed. */
      pthread_mutex_lock (&lock);
      if (hSession != CK_INVALID_HANDLE && hSession <= n_sessions)
        {
          sessions[hSession - 1].closed = true;
          closable_pending = true;
        }
      pthread_mutex_unlock (&lock);
    }
  /* call_end closes it in the wrapped module once no call uses it. */
  return call_end (&call, rv);
}

static CK_RV
fault_C_CloseAllSessions (CK_SLOT_ID slotID)
{
  Call call;
  CK_RV rv = call_begin (&call, OP_close_all_sessions, SCOPE_GLOBAL, 0);

  if (rv == CKR_OK)
    {
      pthread_mutex_lock (&lock);
      if (!initialized)
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
      else
        {
          for (size_t i = 0; i < n_sessions; i++)
            if (sessions[i].slot == slotID)
              sessions[i].closed = true;
          closable_pending = true;
        }
      pthread_mutex_unlock (&lock);
    }
  return call_end (&call, rv);
}

/* Waits for the PIN pad: the test says `pinpad=enter` or `pinpad=cancel`.
 * Lock held. */
static CK_RV
wait_for_pinpad (Call *call, char *pin, size_t *pin_len)
{
  uint64_t deadline = now_ms () + settings.pinpad_timeout_ms;
  unsigned long seen_generation = generation;
  CK_RV rv;

  pinpad_waiting++;
  write_status ();
  for (;;)
    {
      uint64_t now;

      reload_control ();
      if (generation != seen_generation)
        {
          rv = CKR_CRYPTOKI_NOT_INITIALIZED;
          break;
        }
      call->waited = true;
      if ((rv = presence_rv (call)) != CKR_OK)
        break;
      if (settings.pinpad == PINPAD_ENTER)
        {
          memcpy (pin, settings.pinpad_pin, settings.pinpad_pin_len);
          *pin_len = settings.pinpad_pin_len;
          rv = CKR_OK;
          break;
        }
      if (settings.pinpad == PINPAD_CANCEL)
        {
          rv = CKR_FUNCTION_CANCELED;
          break;
        }
      now = now_ms ();
      if (now >= deadline)
        {
          rv = CKR_FUNCTION_CANCELED;
          break;
        }
      wait_ms (deadline - now < POLL_MS ? (unsigned long) (deadline - now) : POLL_MS);
    }
  pinpad_waiting--;
  return rv;
}

static CK_RV
fault_C_Login (CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
               CK_ULONG ulPinLen)
{
  Call call;
  char pin[MAX_PIN_BYTES];
  size_t pin_len = 0;
  bool from_pinpad = false;
  CK_RV rv = call_begin (&call, OP_login, SCOPE_SESSION, hSession);

  if (rv != CKR_OK)
    return call_end (&call, rv);

  pthread_mutex_lock (&lock);
  if ((settings.pin_flags & CKF_USER_PIN_LOCKED)
      && (userType == CKU_USER || userType == CKU_CONTEXT_SPECIFIC))
    rv = CKR_PIN_LOCKED;
  else if (pPin == NULL && settings.protected_auth_path)
    {
      rv = wait_for_pinpad (&call, pin, &pin_len);
      from_pinpad = true;
    }
  pthread_mutex_unlock (&lock);

  if (rv == CKR_OK)
    {
      if (from_pinpad)
        rv = real->C_Login (call.real, userType, (CK_UTF8CHAR_PTR) pin, pin_len);
      else
        rv = real->C_Login (call.real, userType, pPin, ulPinLen);
    }
  explicit_bzero (pin, sizeof pin);
  return call_end (&call, rv);
}

/* ---- everything else takes a session and is forwarded as it is ---- */

#define SESSION_CALL(function, name, params, args) \
  static CK_RV \
  fault_##function params \
  { \
    Call call; \
    CK_RV rv = call_begin (&call, OP_##name, SCOPE_SESSION, hSession); \
    if (rv == CKR_OK) \
      rv = real->function args; \
    return call_end (&call, rv); \
  }

SESSION_CALL (C_InitPIN, init_pin,
              (CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen),
              (call.real, pPin, ulPinLen))
SESSION_CALL (C_SetPIN, set_pin,
              (CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
               CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen),
              (call.real, pOldPin, ulOldLen, pNewPin, ulNewLen))
SESSION_CALL (C_GetSessionInfo, get_session_info,
              (CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo),
              (call.real, pInfo))
SESSION_CALL (C_GetOperationState, get_operation_state,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
               CK_ULONG_PTR pulOperationStateLen),
              (call.real, pOperationState, pulOperationStateLen))
SESSION_CALL (C_SetOperationState, set_operation_state,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
               CK_ULONG ulOperationStateLen, CK_OBJECT_HANDLE hEncryptionKey,
               CK_OBJECT_HANDLE hAuthenticationKey),
              (call.real, pOperationState, ulOperationStateLen, hEncryptionKey,
               hAuthenticationKey))
SESSION_CALL (C_Logout, logout, (CK_SESSION_HANDLE hSession), (call.real))
SESSION_CALL (C_CreateObject, create_object,
              (CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
               CK_OBJECT_HANDLE_PTR phObject),
              (call.real, pTemplate, ulCount, phObject))
SESSION_CALL (C_CopyObject, copy_object,
              (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
               CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject),
              (call.real, hObject, pTemplate, ulCount, phNewObject))
SESSION_CALL (C_DestroyObject, destroy_object,
              (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject),
              (call.real, hObject))
SESSION_CALL (C_GetObjectSize, get_object_size,
              (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize),
              (call.real, hObject, pulSize))
SESSION_CALL (C_GetAttributeValue, get_attribute_value,
              (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
               CK_ULONG ulCount),
              (call.real, hObject, pTemplate, ulCount))
SESSION_CALL (C_SetAttributeValue, set_attribute_value,
              (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
               CK_ULONG ulCount),
              (call.real, hObject, pTemplate, ulCount))
SESSION_CALL (C_FindObjectsInit, find_objects_init,
              (CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount),
              (call.real, pTemplate, ulCount))
SESSION_CALL (C_FindObjects, find_objects,
              (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
               CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount),
              (call.real, phObject, ulMaxObjectCount, pulObjectCount))
SESSION_CALL (C_FindObjectsFinal, find_objects_final, (CK_SESSION_HANDLE hSession),
              (call.real))
SESSION_CALL (C_EncryptInit, encrypt_init,
              (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey),
              (call.real, pMechanism, hKey))
SESSION_CALL (C_Encrypt, encrypt,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
               CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen),
              (call.real, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen))
SESSION_CALL (C_EncryptUpdate, encrypt_update,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
               CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen),
              (call.real, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen))
SESSION_CALL (C_EncryptFinal, encrypt_final,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastEncryptedPart,
               CK_ULONG_PTR pulLastEncryptedPartLen),
              (call.real, pLastEncryptedPart, pulLastEncryptedPartLen))
SESSION_CALL (C_DecryptInit, decrypt_init,
              (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey),
              (call.real, pMechanism, hKey))
SESSION_CALL (C_Decrypt, decrypt,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData, CK_ULONG ulEncryptedDataLen,
               CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen),
              (call.real, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen))
SESSION_CALL (C_DecryptUpdate, decrypt_update,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen,
               CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen),
              (call.real, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen))
SESSION_CALL (C_DecryptFinal, decrypt_final,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastPart, CK_ULONG_PTR pulLastPartLen),
              (call.real, pLastPart, pulLastPartLen))
SESSION_CALL (C_DigestInit, digest_init,
              (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism),
              (call.real, pMechanism))
SESSION_CALL (C_Digest, digest,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
               CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen),
              (call.real, pData, ulDataLen, pDigest, pulDigestLen))
SESSION_CALL (C_DigestUpdate, digest_update,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen),
              (call.real, pPart, ulPartLen))
SESSION_CALL (C_DigestKey, digest_key,
              (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey),
              (call.real, hKey))
SESSION_CALL (C_DigestFinal, digest_final,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen),
              (call.real, pDigest, pulDigestLen))
SESSION_CALL (C_SignInit, sign_init,
              (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey),
              (call.real, pMechanism, hKey))
SESSION_CALL (C_Sign, sign,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
               CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen),
              (call.real, pData, ulDataLen, pSignature, pulSignatureLen))
SESSION_CALL (C_SignUpdate, sign_update,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen),
              (call.real, pPart, ulPartLen))
SESSION_CALL (C_SignFinal, sign_final,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen),
              (call.real, pSignature, pulSignatureLen))
SESSION_CALL (C_SignRecoverInit, sign_recover_init,
              (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey),
              (call.real, pMechanism, hKey))
SESSION_CALL (C_SignRecover, sign_recover,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
               CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen),
              (call.real, pData, ulDataLen, pSignature, pulSignatureLen))
SESSION_CALL (C_VerifyInit, verify_init,
              (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey),
              (call.real, pMechanism, hKey))
SESSION_CALL (C_Verify, verify,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
               CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen),
              (call.real, pData, ulDataLen, pSignature, ulSignatureLen))
SESSION_CALL (C_VerifyUpdate, verify_update,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen),
              (call.real, pPart, ulPartLen))
SESSION_CALL (C_VerifyFinal, verify_final,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen),
              (call.real, pSignature, ulSignatureLen))
SESSION_CALL (C_VerifyRecoverInit, verify_recover_init,
              (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey),
              (call.real, pMechanism, hKey))
SESSION_CALL (C_VerifyRecover, verify_recover,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen,
               CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen),
              (call.real, pSignature, ulSignatureLen, pData, pulDataLen))
SESSION_CALL (C_DigestEncryptUpdate, digest_encrypt_update,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
               CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen),
              (call.real, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen))
SESSION_CALL (C_DecryptDigestUpdate, decrypt_digest_update,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen,
               CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen),
              (call.real, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen))
SESSION_CALL (C_SignEncryptUpdate, sign_encrypt_update,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
               CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen),
              (call.real, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen))
SESSION_CALL (C_DecryptVerifyUpdate, decrypt_verify_update,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen,
               CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen),
              (call.real, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen))
SESSION_CALL (C_GenerateKey, generate_key,
              (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pTemplate,
               CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey),
              (call.real, pMechanism, pTemplate, ulCount, phKey))
SESSION_CALL (C_GenerateKeyPair, generate_key_pair,
              (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
               CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount,
               CK_ATTRIBUTE_PTR pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount,
               CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey),
              (call.real, pMechanism, pPublicKeyTemplate, ulPublicKeyAttributeCount,
               pPrivateKeyTemplate, ulPrivateKeyAttributeCount, phPublicKey, phPrivateKey))
SESSION_CALL (C_WrapKey, wrap_key,
              (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
               CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen),
              (call.real, pMechanism, hWrappingKey, hKey, pWrappedKey, pulWrappedKeyLen))
SESSION_CALL (C_UnwrapKey, unwrap_key,
              (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
               CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen,
               CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey),
              (call.real, pMechanism, hUnwrappingKey, pWrappedKey, ulWrappedKeyLen, pTemplate,
               ulAttributeCount, phKey))
SESSION_CALL (C_DeriveKey, derive_key,
              (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey,
               CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey),
              (call.real, pMechanism, hBaseKey, pTemplate, ulAttributeCount, phKey))
SESSION_CALL (C_SeedRandom, seed_random,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen),
              (call.real, pSeed, ulSeedLen))
SESSION_CALL (C_GenerateRandom, generate_random,
              (CK_SESSION_HANDLE hSession, CK_BYTE_PTR RandomData, CK_ULONG ulRandomLen),
              (call.real, RandomData, ulRandomLen))
SESSION_CALL (C_GetFunctionStatus, get_function_status, (CK_SESSION_HANDLE hSession),
              (call.real))
SESSION_CALL (C_CancelFunction, cancel_function, (CK_SESSION_HANDLE hSession), (call.real))

static CK_FUNCTION_LIST function_list = {
  .version = { 2, 40 },
#define X(function, name) .function = fault_##function,
  ETA_FAULT_OPS (X)
#undef X
};

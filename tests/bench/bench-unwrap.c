/* bench-unwrap: what the token-agent path costs, measured in one run against
 * the baselines it has to be compared with. See README.md.
 *
 * Unwrap (token logged in, RSA-OAEP SHA-1, AES-256 FEKs):
 *   [a]  harness B: kernel player -> /usr/bin/ecryptfsd -> key module ->
 *        session bus -> ecryptfs-token-agent -> SoftHSM2
 *   [aA] the same from harness A (libecryptfs parse_packet() in process: no
 *        ecryptfsd, no socket)
 *   [aD] the same from the key module's D-Bus client code called directly (no
 *        libecryptfs, no blob handling)
 *   [p]  a bare D-Bus round trip to the agent (Peer.Ping), for scale
 *   [b]  in-process pkcs11-helper: lockSession / decrypt_ex / releaseSession
 *        on a certificate object made once (target: a/b <= 1.25)
 *   [k]  in-process ensureKeyAccess alone (the agent calls it per unwrap)
 *   [c]  what ecryptfs-utils' pkcs11-helper module does per request:
 *        ecryptfsd calls decrypt twice (size query, then the real call); each
 *        call deserializes the id and makes a fresh certificate object; the
 *        size-query call decrypts twice (NULL target, then a scratch buffer to
 *        end the operation), the real call once: three decrypt calls in all.
 *        The real call gets a modulus-sized buffer; a probe at the end shows
 *        what happens with the size libecryptfs would really pass.
 * The key is added with wrap=per-file, so that these unwraps are token
 * operations and every wrap is plain RSA: the token path, not the epoch keys
 * the agent keeps.
 * Cached epoch unwrap (packets the key module wrote with wrap=epoch, all of
 * one epoch, whose K the agent has kept since one unmeasured unwrap):
 *   [e]  harness B, as [a]  (target: e/b <= 1)
 *   [eD] the key module's D-Bus client directly, as [aD]  (target: eD/p <= 2)
 * Folder (F files read one by one, at token speed: --token-ms puts the agent
 * on the fault module around SoftHSM2, with delay_ms on every C_Decrypt):
 *   [f]  ours: F epoch packets of a fresh epoch through harness B, the first
 *        one cold (one token decrypt), the rest from the kept K
 *   [fc] the upstream module's way ([c], three token decrypts per file) on
 *        U files, in process on the fault module at the same delay
 *   (per-file times compared: (T_f / F) / (T_fc / U); target <= 0.01 at
 *   140 ms)
 * Wrap (agent stopped; the key module wraps locally):
 *   [d]  harness B: kernel player -> ecryptfsd -> key module encrypt
 *   [dA] harness A: libecryptfs parse_packet() -> key module, in process
 *   [dM] the key module's ops->encrypt() called directly with the blob
 *   [r]  raw OpenSSL EVP_PKEY_encrypt, key and context prepared once
 *   [r1] raw OpenSSL, parsing the SPKI and making the context per op (what
 *        any module without state between calls has to do; for reference)
 *   (target: d/r <= 1.10)
 * The methods run interleaved (one sample of each per round) so that drift
 * in CPU frequency or load hits them alike; medians of N rounds after W
 * warm-up rounds, CLOCK_MONOTONIC. Every unwrap result is checked. */
#include <ecryptfs.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <gio/gio.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <pkcs11-helper-1.0/pkcs11h-certificate.h>
#include <pkcs11-helper-1.0/pkcs11h-core.h>

#include "eta-agent-client.h"
#include "eta-blob.h"
#include "eta-ecryptfs-packet.h"
#include "eta-epoch-packet.h"
#include "eta-fault-control.h"
#include "eta-inprocess-daemon.h"
#include "eta-kernel-player.h"
#include "eta-key-id.h"
#include "eta-names.h"
#include "eta-test-agent.h"
#include "eta-test-token.h"

#define CIPHER_AES256 ETA_ECRYPTFS_CIPHER_AES_256
#define FEK_BYTES 32
#define PAYLOAD_BYTES (1 + FEK_BYTES + 2) /* cipher code, FEK, checksum */
#define UNWRAP_TARGET 1.25
#define WRAP_TARGET 1.10
#define EPOCH_TARGET 1.0         /* e / b */
#define EPOCH_BUS_TARGET 2.0     /* eD / p */
#define FOLDER_TARGET 0.01       /* f / fc per file, at a real token's speed */
#define FOLDER_TARGET_MIN_MS 140 /* a YubiKey; below it the target does not apply */

/* ---- options ------------------------------------------------------------ */

static gint opt_iterations = 200;
static gint opt_warmup = 20;
static gint opt_key_bits = 2048;
static gint opt_token_ms = -1;
static gint opt_files = 200;
static gint opt_upstream_files = 3;
static gint opt_profile_s = 0;

static GOptionEntry option_entries[] = {
  { "iterations", 'n', 0, G_OPTION_ARG_INT, &opt_iterations,
    "Measured rounds per method (default 200; a bare number works too)", "N" },
  { "warmup", 'w', 0, G_OPTION_ARG_INT, &opt_warmup,
    "Unmeasured warm-up rounds (default 20)", "W" },
  { "key", 'k', 0, G_OPTION_ARG_INT, &opt_key_bits,
    "RSA key of the test token: 2048 (default) or 3072", "BITS" },
  { "token-ms", 't', 0, G_OPTION_ARG_INT, &opt_token_ms,
    "Token speed for the folder series: the agent runs on the fault module, which sleeps "
    "MS before every C_Decrypt (YubiKey ~140, Nitrokey 3 ~1000; default: SoftHSM2 "
    "directly, no delay)", "MS" },
  { "files", 'f', 0, G_OPTION_ARG_INT, &opt_files,
    "Files in the folder series, read one by one (default 200)", "F" },
  { "upstream-files", 'u', 0, G_OPTION_ARG_INT, &opt_upstream_files,
    "Files read the upstream module's way in the folder series (default 3)", "U" },
  { "profile", 0, 0, G_OPTION_ARG_INT, &opt_profile_s,
    "Only [eD], in a loop for S seconds, after printing the agent's pid (for perf or "
    "callgrind); no other measurement", "S" },
  { NULL }
};

/* ---- timing and statistics ---------------------------------------------- */

static inline gint64
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct
{
  const gchar *tag;
  const gchar *what;
  gdouble *ns;
  guint n;
  guint capacity;
  /* filled by series_finish() */
  gdouble median, p10, p90, mean, total;
} Series;

static void
series_init (Series *s, const gchar *tag, const gchar *what, guint capacity)
{
  s->tag = tag;
  s->what = what;
  s->ns = g_new0 (gdouble, capacity);
  s->n = 0;
  s->capacity = capacity;
}

static void
series_add (Series *s, gint64 start, gint64 end, gboolean measured)
{
  if (!measured)
    return;
  g_assert (s->n < s->capacity);
  s->ns[s->n++] = (gdouble) (end - start);
}

static int
compare_doubles (const void *a, const void *b)
{
  gdouble x = *(const gdouble *) a, y = *(const gdouble *) b;
  return x < y ? -1 : x > y;
}

static gdouble
percentile (const gdouble *sorted, guint n, gdouble p)
{
  gdouble pos = p * (n - 1);
  guint lo = (guint) pos;
  guint hi = lo + 1 < n ? lo + 1 : lo;
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

static void
series_finish (Series *s)
{
  gdouble *sorted = g_memdup2 (s->ns, s->n * sizeof (gdouble));

  s->total = 0;
  for (guint i = 0; i < s->n; i++)
    s->total += s->ns[i];
  s->mean = s->total / s->n;
  qsort (sorted, s->n, sizeof (gdouble), compare_doubles);
  s->median = percentile (sorted, s->n, 0.5);
  s->p10 = percentile (sorted, s->n, 0.1);
  s->p90 = percentile (sorted, s->n, 0.9);
  g_free (sorted);
}

static void
series_clear (Series *s)
{
  g_clear_pointer (&s->ns, g_free);
}

static gdouble
median_of (const gdouble *ns, guint n)
{
  gdouble *sorted = g_memdup2 (ns, n * sizeof (gdouble));
  gdouble median;

  qsort (sorted, n, sizeof (gdouble), compare_doubles);
  median = percentile (sorted, n, 0.5);
  g_free (sorted);
  return median;
}

/* ms for unwrap series, µs for wrap series. */
static void
print_series (const Series *s, gdouble unit_ns, const gchar *unit)
{
  printf ("[%-2s] %-66s median %8.3f %s  (p10 %.3f, p90 %.3f, mean %.3f; %.0f ops/s)\n",
          s->tag, s->what, s->median / unit_ns, unit, s->p10 / unit_ns, s->p90 / unit_ns,
          s->mean / unit_ns, s->n * 1e9 / s->total);
}

static void
print_ratio (const gchar *label, const Series *ours, const Series *base, gdouble target)
{
  gdouble ratio = ours->median / base->median;

  printf ("     ratio %-40s = %.3f x", label, ratio);
  if (target > 0)
    printf ("   (target <= %.2f: %s)", target, ratio <= target ? "met" : "MISSED");
  printf ("\n");
}

/* ---- failure ------------------------------------------------------------ */

static EtaKernelPlayer *the_player;
static EtaTestAgent *the_agent;

static void G_GNUC_NORETURN G_GNUC_PRINTF (1, 2)
die (const gchar *format, ...)
{
  va_list args;

  va_start (args, format);
  fprintf (stderr, "bench-unwrap: ");
  vfprintf (stderr, format, args);
  fprintf (stderr, "\n");
  va_end (args);
  if (the_player != NULL)
    fprintf (stderr, "---- ecryptfsd log ----\n%s---- end ----\n",
             eta_kernel_player_get_log (the_player));
  if (the_agent != NULL)
    {
      g_autofree gchar *terminal = eta_test_agent_dup_terminal_output (the_agent);
      fprintf (stderr, "---- agent terminal ----\n%s\n---- end ----\n", terminal);
    }
  eta_kernel_player_stop (the_player);
  eta_test_agent_stop (the_agent);
  exit (1);
}

/* ---- in-process pkcs11-helper ------------------------------------------- */

static guint pin_prompts;

static void
log_hook (void *const global_data, const unsigned flags, const char *const format, va_list args)
{
  vfprintf (stderr, format, args);
  fprintf (stderr, "\n");
}

static PKCS11H_BOOL
pin_prompt_hook (void *const global_data, void *const user_data,
                 const pkcs11h_token_id_t token, const unsigned retry, char *const pin,
                 const size_t pin_max)
{
  pin_prompts++;
  if (retry > 0 || pin_max <= strlen (ETA_TEST_TOKEN_PIN))
    return FALSE;
  strcpy (pin, ETA_TEST_TOKEN_PIN);
  return TRUE;
}

static PKCS11H_BOOL
token_prompt_hook (void *const global_data, void *const user_data,
                   const pkcs11h_token_id_t token, const unsigned retry)
{
  return FALSE;
}

/* The certificate id whose public key is @spki, and its serialized form (what
 * the upstream module kept in its blob). */
static pkcs11h_certificate_id_t
find_certificate_id (GBytes *spki, gchar **serialized_out)
{
  pkcs11h_certificate_id_list_t list = NULL;
  pkcs11h_certificate_id_t found = NULL;
  size_t serialized_len = 0;
  CK_RV rv;

  rv = pkcs11h_certificate_enumCertificateIds (PKCS11H_ENUM_METHOD_CACHE_EXIST, NULL,
                                               PKCS11H_PROMPT_MASK_ALLOW_ALL, NULL, &list);
  if (rv != CKR_OK)
    die ("pkcs11h_certificate_enumCertificateIds: %s", pkcs11h_getMessage (rv));
  for (pkcs11h_certificate_id_list_t l = list; l != NULL && found == NULL; l = l->next)
    {
      const unsigned char *p = l->certificate_id->certificate_blob;
      X509 *x509 = p ? d2i_X509 (NULL, &p, (long) l->certificate_id->certificate_blob_size)
                     : NULL;
      unsigned char *der = NULL;
      int der_len = x509 ? i2d_PUBKEY (X509_get0_pubkey (x509), &der) : -1;

      if (der_len > 0 && (gsize) der_len == g_bytes_get_size (spki)
          && memcmp (der, g_bytes_get_data (spki, NULL), der_len) == 0)
        {
          rv = pkcs11h_certificate_duplicateCertificateId (&found, l->certificate_id);
          if (rv != CKR_OK)
            die ("pkcs11h_certificate_duplicateCertificateId: %s", pkcs11h_getMessage (rv));
        }
      OPENSSL_free (der);
      X509_free (x509);
    }
  pkcs11h_certificate_freeCertificateIdList (list);
  if (found == NULL)
    die ("no certificate on the token matches the public key");

  rv = pkcs11h_certificate_serializeCertificateId (NULL, &serialized_len, found);
  if (rv == CKR_OK)
    {
      *serialized_out = g_malloc (serialized_len);
      rv = pkcs11h_certificate_serializeCertificateId (*serialized_out, &serialized_len, found);
    }
  if (rv != CKR_OK)
    die ("pkcs11h_certificate_serializeCertificateId: %s", pkcs11h_getMessage (rv));
  return found;
}

/* [b]: one decrypt under the session lock on a long-lived certificate. */
static CK_RV
direct_decrypt (pkcs11h_certificate_t certificate, const CK_MECHANISM *mechanism,
                GBytes *wrapped, guint8 *out, size_t *out_len)
{
  CK_RV rv = pkcs11h_certificate_lockSession (certificate);

  if (rv == CKR_OK)
    {
      rv = pkcs11h_certificate_decrypt_ex (certificate, mechanism,
                                           g_bytes_get_data (wrapped, NULL),
                                           g_bytes_get_size (wrapped), out, out_len);
      pkcs11h_certificate_releaseSession (certificate);
    }
  return rv;
}

/* [c]: one call of the upstream module's decrypt(): everything from the
 * serialized id, a fresh certificate object, and for the size query (@to NULL)
 * a second decrypt into a scratch buffer to end the operation. Returns the
 * pkcs11-helper result; *@size_query_ns gets the time of the NULL-target
 * decrypt alone. */
static CK_RV
upstream_decrypt_call (const gchar *serialized_id, const guint8 *cert_blob, gsize cert_len,
                       const CK_MECHANISM *mechanism, GBytes *wrapped, guint8 *to,
                       size_t *to_size, gdouble *size_query_ns)
{
  pkcs11h_certificate_id_t id = NULL;
  pkcs11h_certificate_t certificate = NULL;
  const guint8 *from = g_bytes_get_data (wrapped, NULL);
  gsize from_size = g_bytes_get_size (wrapped);
  gint64 q0 = 0;
  CK_RV rv;

  if (to == NULL)
    *to_size = 0;
  rv = pkcs11h_certificate_deserializeCertificateId (&id, serialized_id);
  if (rv == CKR_OK)
    rv = pkcs11h_certificate_setCertificateIdCertificateBlob (id, cert_blob, cert_len);
  if (rv == CKR_OK)
    rv = pkcs11h_certificate_create (id, NULL, PKCS11H_PROMPT_MASK_ALLOW_ALL,
                                     PKCS11H_PIN_CACHE_INFINITE, &certificate);
  if (rv == CKR_OK)
    {
      q0 = now_ns ();
      rv = pkcs11h_certificate_decryptAny_ex (certificate, mechanism, from, from_size, to,
                                              to_size);
      if (to == NULL && size_query_ns != NULL)
        *size_query_ns = (gdouble) (now_ns () - q0);
    }
  if (rv == CKR_OK && to == NULL)
    {
      guint8 *tmp = g_malloc (*to_size);
      rv = pkcs11h_certificate_decryptAny_ex (certificate, mechanism, from, from_size, tmp,
                                              to_size);
      memset (tmp, 0, *to_size);
      g_free (tmp);
    }
  if (certificate != NULL)
    pkcs11h_certificate_freeCertificate (certificate);
  if (id != NULL)
    pkcs11h_certificate_freeCertificateId (id);
  return rv;
}

/* ---- raw OpenSSL -------------------------------------------------------- */

static EVP_PKEY_CTX *
oaep_encrypt_ctx (EVP_PKEY *key)
{
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new (key, NULL);

  if (ctx == NULL || EVP_PKEY_encrypt_init (ctx) != 1
      || EVP_PKEY_CTX_set_rsa_padding (ctx, RSA_PKCS1_OAEP_PADDING) != 1
      || EVP_PKEY_CTX_set_rsa_oaep_md (ctx, EVP_sha1 ()) != 1
      || EVP_PKEY_CTX_set_rsa_mgf1_md (ctx, EVP_sha1 ()) != 1)
    die ("cannot set up an RSA-OAEP context");
  return ctx;
}

static void
raw_encrypt (EVP_PKEY_CTX *ctx, const guint8 *payload, guint8 *out, size_t *out_len)
{
  if (EVP_PKEY_encrypt (ctx, out, out_len, payload, PAYLOAD_BYTES) != 1)
    die ("EVP_PKEY_encrypt failed");
}

static void
raw_encrypt_stateless (GBytes *spki, const guint8 *payload, guint8 *out, size_t *out_len)
{
  const unsigned char *p = g_bytes_get_data (spki, NULL);
  EVP_PKEY *key = d2i_PUBKEY (NULL, &p, (long) g_bytes_get_size (spki));
  EVP_PKEY_CTX *ctx;

  if (key == NULL)
    die ("d2i_PUBKEY failed");
  ctx = oaep_encrypt_ctx (key);
  raw_encrypt (ctx, payload, out, out_len);
  EVP_PKEY_CTX_free (ctx);
  EVP_PKEY_free (key);
}

/* ---- main --------------------------------------------------------------- */

static GBytes *
random_fek (void)
{
  guint8 *fek = g_malloc (FEK_BYTES);
  for (gsize i = 0; i < FEK_BYTES; i++)
    fek[i] = (guint8) g_random_int_range (0, 256);
  return g_bytes_new_take (fek, FEK_BYTES);
}

/* What the kernel hands the key module to wrap: code | FEK | checksum BE16. */
static void
make_payload (GBytes *fek, guint8 payload[PAYLOAD_BYTES])
{
  guint16 sum = eta_ecryptfs_fek_checksum (g_bytes_get_data (fek, NULL), FEK_BYTES);

  payload[0] = CIPHER_AES256;
  memcpy (payload + 1, g_bytes_get_data (fek, NULL), FEK_BYTES);
  payload[1 + FEK_BYTES] = (guint8) (sum >> 8);
  payload[2 + FEK_BYTES] = (guint8) (sum & 0xff);
}

static void
check_plaintext (const gchar *who, guint round, const guint8 *got, gsize got_len,
                 const guint8 *expected)
{
  if (got_len != PAYLOAD_BYTES || memcmp (got, expected, PAYLOAD_BYTES) != 0)
    die ("%s: round %u decrypted to the wrong plaintext (%zu bytes)", who, round, got_len);
}

/* pkcs11-helper in this process, on @provider: SoftHSM2 for [b], [k], [c],
 * the fault module for the folder series' upstream way. */
static void
inprocess_start (const gchar *provider)
{
  CK_RV rv = pkcs11h_initialize ();

  if (rv == CKR_OK && g_getenv ("ETA_BENCH_PKCS11H_DEBUG"))
    {
      pkcs11h_setLogHook (log_hook, NULL);
      pkcs11h_setLogLevel (PKCS11H_LOG_DEBUG2);
    }
  if (rv == CKR_OK)
    rv = pkcs11h_setPINPromptHook (pin_prompt_hook, NULL);
  if (rv == CKR_OK)
    rv = pkcs11h_setTokenPromptHook (token_prompt_hook, NULL);
  if (rv == CKR_OK)
    rv = pkcs11h_setPINCachePeriod (PKCS11H_PIN_CACHE_INFINITE);
  if (rv == CKR_OK)
    rv = pkcs11h_addProvider ("bench", provider, FALSE, PKCS11H_PRIVATEMODE_MASK_AUTO,
                              PKCS11H_SLOTEVENT_METHOD_AUTO, 0, FALSE);
  if (rv != CKR_OK)
    die ("pkcs11-helper setup on %s: %s", provider, pkcs11h_getMessage (rv));
}

/* A certificate object on the key, logged in (the one PIN prompt of this
 * pkcs11-helper lifetime). */
static pkcs11h_certificate_t
inprocess_login (pkcs11h_certificate_id_t certificate_id)
{
  pkcs11h_certificate_t certificate = NULL;
  CK_RV rv = pkcs11h_certificate_create (certificate_id, NULL, PKCS11H_PROMPT_MASK_ALLOW_ALL,
                                         PKCS11H_PIN_CACHE_INFINITE, &certificate);

  if (rv == CKR_OK)
    rv = pkcs11h_certificate_ensureKeyAccess (certificate);
  if (rv != CKR_OK)
    die ("in-process login: %s", pkcs11h_getMessage (rv));
  return certificate;
}

/* ---- epoch packets ------------------------------------------------------ */

/* Checks that @n packets are epoch packets of one epoch, as the key module
 * wrote them; returns that epoch's id. */
static void
check_one_epoch (const gchar *who, GBytes **packets, guint n, guint8 id[ETA_EPOCH_ID_LEN])
{
  for (guint i = 0; i < n; i++)
    {
      EtaEpochPacket packet;
      guint8 this_id[ETA_EPOCH_ID_LEN];

      if (eta_epoch_packet_parse (g_bytes_get_data (packets[i], NULL),
                                  g_bytes_get_size (packets[i]), &packet) != ETA_EPOCH_OK
          || eta_epoch_packet_id (&packet, this_id) != 0)
        die ("%s wrap %u: not an epoch packet (%zu bytes)", who, i,
             g_bytes_get_size (packets[i]));
      if (i == 0)
        memcpy (id, this_id, ETA_EPOCH_ID_LEN);
      else if (memcmp (id, this_id, ETA_EPOCH_ID_LEN) != 0)
        die ("%s wrap %u: a new epoch began (keymod.conf epoch_files or epoch_seconds); "
             "use fewer rounds or files", who, i);
    }
}

/* ---- the fault module in this process ----------------------------------- */

/* The folder series' upstream way runs in this process on the fault module,
 * while the agent has it loaded too. The module reads its control and status
 * paths from the environment when it is initialised, so this process's
 * instance gets files of its own: the agent's counters stay the agent's. */
typedef struct
{
  gchar *dir;
  gchar *control;
  gchar *status;
} OwnFaultFiles;

static void
own_fault_files_setup (OwnFaultFiles *files, gint delay_ms)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *text = g_strdup_printf ("delay_ms=%d\ndelay_ops=decrypt\n", delay_ms);

  files->dir = g_dir_make_tmp ("bench-unwrap-fault-XXXXXX", &error);
  if (files->dir == NULL)
    die ("fault module files: %s", error->message);
  files->control = g_build_filename (files->dir, "control", NULL);
  files->status = g_build_filename (files->dir, "status", NULL);
  if (!g_file_set_contents (files->control, text, -1, &error))
    die ("fault module control file: %s", error->message);
  g_setenv (ETA_FAULT_CONTROL_ENV, files->control, TRUE);
  g_setenv (ETA_FAULT_STATUS_ENV, files->status, TRUE);
}

/* Counter @name of this process's instance, or -1 when it is not there. */
static gint64
own_fault_counter (const OwnFaultFiles *files, const gchar *name)
{
  g_autofree gchar *text = NULL;
  g_auto (GStrv) lines = NULL;
  gsize name_len = strlen (name);

  if (!g_file_get_contents (files->status, &text, NULL, NULL))
    return -1;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (strncmp (lines[i], name, name_len) == 0 && lines[i][name_len] == '=')
      return g_ascii_strtoll (lines[i] + name_len + 1, NULL, 10);
  return -1;
}

static void
own_fault_files_remove (OwnFaultFiles *files)
{
  g_unlink (files->control);
  g_unlink (files->status);
  g_rmdir (files->dir);
  g_clear_pointer (&files->control, g_free);
  g_clear_pointer (&files->status, g_free);
  g_clear_pointer (&files->dir, g_free);
}

/* [fc]: @n files read the upstream module's way (two decrypt() calls of
 * three token decrypts in all per file), each timed, in a pkcs11-helper
 * lifetime of its own on @provider. *@token_ops gets the C_Decrypt calls
 * counted by this process's fault module instance (-1 without one). */
static void
folder_upstream (const gchar *provider, const OwnFaultFiles *fault, GBytes *spki,
                 const CK_MECHANISM *mechanism, GBytes **wrapped,
                 const guint8 (*payloads)[PAYLOAD_BYTES], guint n, gsize modulus_bytes,
                 Series *series, gint64 *token_ops)
{
  pkcs11h_certificate_id_t certificate_id;
  pkcs11h_certificate_t login;
  g_autofree gchar *serialized_id = NULL;

  inprocess_start (provider);
  certificate_id = find_certificate_id (spki, &serialized_id);
  login = inprocess_login (certificate_id);
  for (guint j = 0; j < n; j++)
    {
      guint8 plaintext[ETA_ECRYPTFS_MAX_ENCRYPTED_KEY_BYTES];
      size_t size = 0, plaintext_len = modulus_bytes;
      gint64 t0, t1;
      CK_RV rv1, rv2;

      t0 = now_ns ();
      rv1 = upstream_decrypt_call (serialized_id, certificate_id->certificate_blob,
                                   certificate_id->certificate_blob_size, mechanism,
                                   wrapped[j], NULL, &size, NULL);
      rv2 = upstream_decrypt_call (serialized_id, certificate_id->certificate_blob,
                                   certificate_id->certificate_blob_size, mechanism,
                                   wrapped[j], plaintext, &plaintext_len, NULL);
      t1 = now_ns ();
      if (rv1 != CKR_OK || rv2 != CKR_OK)
        die ("folder, upstream way, file %u: %s / %s", j, pkcs11h_getMessage (rv1),
             pkcs11h_getMessage (rv2));
      series_add (series, t0, t1, TRUE);
      check_plaintext ("folder, upstream way", j, plaintext, plaintext_len, payloads[j]);
      memset (plaintext, 0, sizeof plaintext);
    }
  *token_ops = fault != NULL ? own_fault_counter (fault, "decrypt_calls") : -1;
  pkcs11h_certificate_freeCertificate (login);
  pkcs11h_certificate_freeCertificateId (certificate_id);
  pkcs11h_terminate ();
}

/* --profile: cached epoch unwraps through the key module's client, back to
 * back, so that a profiler attached to the agent (or to this process) sees
 * nothing else. */
static void
profile_loop (const gchar *fingerprint, GBytes **packets, const guint8 (*payloads)[PAYLOAD_BYTES],
              guint n)
{
  gint64 end, start = now_ns ();
  guint count = 0;

  printf ("profile: agent pid %d, bench pid %d; [eD] for %d s\n",
          (int) eta_test_agent_get_pid (the_agent), (int) getpid (), opt_profile_s);
  fflush (stdout);
  end = start + (gint64) opt_profile_s * 1000000000;
  while (now_ns () < end)
    {
      g_autoptr (GError) error = NULL;
      guint8 plaintext[ETA_ECRYPTFS_MAX_ENCRYPTED_KEY_BYTES];
      gsize plaintext_len = sizeof plaintext;
      guint i = count % n;

      if (!eta_agent_client_unwrap (fingerprint, ETA_PADDING_OAEP, NULL, NULL, TRUE,
                                    g_bytes_get_data (packets[i], NULL),
                                    g_bytes_get_size (packets[i]), 3000, plaintext,
                                    &plaintext_len, &error))
        die ("profile loop, unwrap %u: %s", count, error->message);
      check_plaintext ("profile loop", count, plaintext, plaintext_len, payloads[i]);
      count++;
    }
  printf ("profile: %u cached epoch unwraps in %.1f s, %.3f ms each\n", count,
          (now_ns () - start) / 1e9, (now_ns () - start) / 1e6 / count);
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) options = g_option_context_new ("[N]");
  g_autoptr (GError) error = NULL;
  const EtaTestToken *token;
  EtaTestKeyIndex key_index;
  GTestDBus *bus;
  g_autoptr (GBytes) spki = NULL;
  char sig_expected[ETA_KEY_SIG_HEX_LEN + 1];
  g_autofree gchar *sig = NULL;
  g_autofree gchar *module_dir = NULL;
  EtaInprocessDaemon *harness_a;
  struct ecryptfs_key_mod *key_mod;
  g_autofree struct ecryptfs_auth_tok *auth_tok = NULL;
  guint8 *blob;
  gsize blob_size;
  gsize modulus_bytes;
  EVP_PKEY *raw_key;
  EVP_PKEY_CTX *raw_ctx;
  guint rounds, warmup, measured;
  GBytes **feks, **wrapped, **epoch_wrapped;
  guint8 (*payloads)[PAYLOAD_BYTES];
  guint files, upstream_files;
  GBytes **folder_feks, **folder_wrapped;
  guint8 epoch_id[ETA_EPOCH_ID_LEN], folder_epoch_id[ETA_EPOCH_ID_LEN];
  Series u_e, u_ed, f_ours, f_up;
  gint64 folder_token_ops = -1, upstream_token_ops = -1;
  OwnFaultFiles own_fault = { NULL, NULL, NULL };
  g_autofree gchar *probe_line = NULL;
  guint8 scratch[ETA_ECRYPTFS_MAX_ENCRYPTED_KEY_BYTES];
  Series d_b, d_a, d_m, d_raw, d_raw1;
  Series u_a, u_aa, u_ad, u_ping, u_b, u_k, u_c, u_c1, u_c2, u_cq;
  GDBusConnection *ping_bus;
  pkcs11h_certificate_id_t certificate_id;
  pkcs11h_certificate_t certificate;
  g_autofree gchar *serialized_id = NULL;
  CK_RSA_PKCS_OAEP_PARAMS oaep = { CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0 };
  CK_MECHANISM mechanism = { CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep };
  guint agent_prompts;
  CK_RV rv;

  g_option_context_set_summary (options,
      "Measures unwrap latency and wrap cost of the token-agent path against in-process\n"
      "pkcs11-helper, the upstream pkcs11-helper module's way, and raw OpenSSL.\n"
      "Needs root (harness B runs ecryptfsd in a mount namespace).");
  g_option_context_add_main_entries (options, option_entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      fprintf (stderr, "bench-unwrap: %s\n", error->message);
      return 2;
    }
  if (argc > 2)
    {
      fprintf (stderr, "bench-unwrap: too many arguments\n");
      return 2;
    }
  if (argc == 2)
    {
      gchar *end = NULL;
      opt_iterations = (gint) g_ascii_strtoll (argv[1], &end, 10);
      if (end == argv[1] || *end != '\0')
        {
          fprintf (stderr, "bench-unwrap: N must be a number, not “%s”\n", argv[1]);
          return 2;
        }
    }
  if (opt_iterations < 1 || opt_warmup < 1 || (opt_key_bits != 2048 && opt_key_bits != 3072))
    {
      fprintf (stderr, "bench-unwrap: need N >= 1, W >= 1 and --key 2048 or 3072\n");
      return 2;
    }
  if (opt_files < 2 || opt_upstream_files < 1 || opt_upstream_files > opt_iterations + opt_warmup
      || opt_token_ms < -1)
    {
      fprintf (stderr, "bench-unwrap: need --files >= 2, 1 <= --upstream-files <= N + W and "
                       "--token-ms >= 0\n");
      return 2;
    }
  if (geteuid () != 0)
    {
      fprintf (stderr, "bench-unwrap: needs root (mount namespace and bind mount for "
                       "harness B)\n");
      return 1;
    }
  if (!g_file_test ("/usr/bin/ecryptfsd", G_FILE_TEST_IS_EXECUTABLE))
    {
      fprintf (stderr, "bench-unwrap: /usr/bin/ecryptfsd is not installed\n");
      return 1;
    }
  warmup = (guint) opt_warmup;
  measured = (guint) opt_iterations;
  rounds = warmup + measured;
  files = (guint) opt_files;
  upstream_files = (guint) opt_upstream_files;
  key_index = opt_key_bits == 2048 ? ETA_TEST_KEY_RSA2048 : ETA_TEST_KEY_RSA3072;

  /* ---- setup: token, bus, auth token in @u, ecryptfsd ---- */
  token = eta_test_token_get ();
  if (opt_token_ms >= 0)
    {
      /* The agent (started later, with this environment) loads the fault
       * module instead of SoftHSM2; it forwards to SoftHSM2 and sleeps
       * delay_ms before each C_Decrypt once the folder series sets it. */
      eta_fault_control_setup ();
      eta_fault_control_reset ();
      g_setenv ("ETA_TEST_PROVIDER", eta_fault_control_get_module_path (), TRUE);
    }
  bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (bus);

  spki = eta_test_token_load_public_key (key_index);
  modulus_bytes = eta_key_rsa_modulus_bytes (g_bytes_get_data (spki, NULL),
                                             g_bytes_get_size (spki));
  if (eta_key_sig_from_spki (g_bytes_get_data (spki, NULL), g_bytes_get_size (spki),
                             sig_expected) != 0)
    die ("cannot compute the key signature");
  /* A token with this sig from an earlier run would be kept as it is. */
  eta_harness_remove_user_key (sig_expected, NULL);

  harness_a = eta_inprocess_daemon_new (ETA_TEST_KEYMOD_PATH, &error);
  if (harness_a == NULL)
    die ("harness A: %s", error->message);
  /* Per-file wrapping: every unwrap below is then a token operation, the
   * path this program measures (epoch packets would be served from the
   * agent's kept epoch key after the first). */
  {
    const gchar *names[] = { "fingerprint", "padding", "pubkey", "wrap", NULL };
    const gchar *values[] = { token->fingerprint[key_index], "oaep",
                              token->public_key_path[key_index], "per-file", NULL };
    sig = eta_inprocess_daemon_add_key (harness_a, ETA_KEYMOD_ALIAS, names, values, &error);
    if (sig == NULL)
      die ("adding the auth token: %s", error->message);
    if (!g_str_equal (sig, sig_expected))
      die ("the key module gave sig %s, expected %s", sig, sig_expected);
  }
  key_mod = eta_inprocess_daemon_find_module (harness_a, ETA_KEYMOD_ALIAS);
  if (key_mod == NULL)
    die ("harness A has no module %s", ETA_KEYMOD_ALIAS);
  blob_size = eta_blob_size (g_bytes_get_size (spki), token->label[key_index],
                             ETA_TEST_TOKEN_LABEL);
  /* In an auth token, as libecryptfs hands it over: the module reads the
   * blob's length from the token's data_len. */
  auth_tok = g_malloc0 (sizeof *auth_tok + blob_size);
  auth_tok->token.private_key.data_len = (uint32_t) blob_size;
  blob = auth_tok->token.private_key.data;
  if (eta_blob_write_with_wrap (blob, ETA_PADDING_OAEP, ETA_WRAP_PER_FILE,
                                g_bytes_get_data (spki, NULL), g_bytes_get_size (spki),
                                token->label[key_index], ETA_TEST_TOKEN_LABEL) != blob_size)
    die ("cannot build the blob");

  module_dir = eta_kernel_player_make_module_dir (ETA_TEST_KEYMOD_PATH, &error);
  if (module_dir == NULL)
    die ("module dir: %s", error->message);
  the_player = eta_kernel_player_start (module_dir, NULL, &error);
  if (the_player == NULL)
    die ("starting ecryptfsd: %s", error->message);

  {
    const unsigned char *p = g_bytes_get_data (spki, NULL);
    raw_key = d2i_PUBKEY (NULL, &p, (long) g_bytes_get_size (spki));
    if (raw_key == NULL)
      die ("cannot parse the public key");
    raw_ctx = oaep_encrypt_ctx (raw_key);
  }

  feks = g_new0 (GBytes *, rounds);
  wrapped = g_new0 (GBytes *, rounds);
  payloads = g_malloc0 ((gsize) rounds * PAYLOAD_BYTES);
  for (guint i = 0; i < rounds; i++)
    {
      feks[i] = random_fek ();
      make_payload (feks[i], payloads[i]);
    }

  printf ("bench-unwrap: RSA-%d key %.16s (%s), OAEP SHA-1, AES-256 FEKs (%d-byte payload)\n",
          opt_key_bits, token->fingerprint[key_index], token->label[key_index], PAYLOAD_BYTES);
  printf ("              N=%u measured rounds after W=%u warm-up rounds, methods interleaved "
          "per round, CLOCK_MONOTONIC, %ld online CPUs\n",
          measured, warmup, sysconf (_SC_NPROCESSORS_ONLN));
  printf ("              CMAKE_BUILD_TYPE \"%s\", OpenSSL %s, pkcs11-helper %u.%u.%u\n\n",
          ETA_BENCH_BUILD_TYPE, OpenSSL_version (OPENSSL_VERSION_STRING),
          pkcs11h_getVersion () >> 16, (pkcs11h_getVersion () >> 8) & 0xff,
          pkcs11h_getVersion () & 0xff);
  if (opt_token_ms >= 0)
    printf ("              agent on the fault module around SoftHSM2; folder series (F=%u) at "
            "%d ms per C_Decrypt, the upstream way on U=%u files\n\n",
            files, opt_token_ms, upstream_files);
  else
    printf ("              agent on SoftHSM2 directly; folder series (F=%u) without delay "
            "(--token-ms for a real token's speed), the upstream way on U=%u files\n\n",
            files, upstream_files);

  /* ---- wrap, agent stopped ---- */
  series_init (&d_b, "d", "wrap, harness B: player -> ecryptfsd -> key module (no agent)",
               measured);
  series_init (&d_a, "dA", "wrap, harness A: parse_packet() -> key module, in process",
               measured);
  series_init (&d_m, "dM", "wrap, key module ops->encrypt() called directly", measured);
  series_init (&d_raw, "r", "raw OpenSSL EVP_PKEY_encrypt, key + ctx prepared once", measured);
  series_init (&d_raw1, "r1", "raw OpenSSL, d2i_PUBKEY + ctx per op", measured);
  for (guint i = 0; i < rounds; i++)
    {
      gboolean m = i >= warmup;
      const guint8 *fek = g_bytes_get_data (feks[i], NULL);
      g_autoptr (GBytes) in_process = NULL;
      size_t out_len;
      gint64 t0, t1;

      t0 = now_ns ();
      if (!eta_kernel_player_wrap (the_player, sig, CIPHER_AES256, fek, FEK_BYTES, 0,
                                   &wrapped[i], &error))
        die ("harness B wrap, round %u: %s", i, error->message);
      t1 = now_ns ();
      series_add (&d_b, t0, t1, m);
      if (g_bytes_get_size (wrapped[i]) != modulus_bytes)
        die ("harness B wrap gave %zu bytes", g_bytes_get_size (wrapped[i]));

      t0 = now_ns ();
      if (!eta_inprocess_daemon_wrap (harness_a, sig, CIPHER_AES256, fek, FEK_BYTES,
                                      &in_process, &error))
        die ("harness A wrap, round %u: %s", i, error->message);
      t1 = now_ns ();
      series_add (&d_a, t0, t1, m);

      out_len = sizeof scratch;
      t0 = now_ns ();
      if (key_mod->ops->encrypt ((char *) scratch, &out_len, (char *) payloads[i],
                                 PAYLOAD_BYTES, blob, ECRYPTFS_BLOB_TYPE_BLOB) != 0)
        die ("ops->encrypt failed, round %u", i);
      t1 = now_ns ();
      series_add (&d_m, t0, t1, m);
      if (out_len != modulus_bytes)
        die ("ops->encrypt gave %zu bytes", out_len);

      out_len = sizeof scratch;
      t0 = now_ns ();
      raw_encrypt (raw_ctx, payloads[i], scratch, &out_len);
      t1 = now_ns ();
      series_add (&d_raw, t0, t1, m);

      out_len = sizeof scratch;
      t0 = now_ns ();
      raw_encrypt_stateless (spki, payloads[i], scratch, &out_len);
      t1 = now_ns ();
      series_add (&d_raw1, t0, t1, m);
    }

  /* ---- epoch packets, written by the key module itself ----
   * The auth token is replaced by one with wrap=epoch (the default): same
   * key, same sig; the key module's decrypt op forwards whatever it gets, so
   * the per-file ciphertexts above keep opening. ecryptfsd's instance of the
   * module (harness B) seals the packets of [e] and [eD] in its epoch;
   * harness A's instance, in an epoch of its own, the folder's: a K the
   * agent has not seen, so that the folder's first file is cold. */
  eta_harness_remove_user_key (sig, NULL);
  {
    const gchar *names[] = { "fingerprint", "padding", "pubkey", "wrap", NULL };
    const gchar *values[] = { token->fingerprint[key_index], "oaep",
                              token->public_key_path[key_index], "epoch", NULL };
    g_autofree gchar *epoch_sig = eta_inprocess_daemon_add_key (harness_a, ETA_KEYMOD_ALIAS,
                                                                names, values, &error);
    if (epoch_sig == NULL)
      die ("adding the wrap=epoch auth token: %s", error->message);
    if (!g_str_equal (epoch_sig, sig))
      die ("the wrap=epoch auth token has sig %s, expected %s", epoch_sig, sig);
  }
  epoch_wrapped = g_new0 (GBytes *, rounds);
  for (guint i = 0; i < rounds; i++)
    if (!eta_kernel_player_wrap (the_player, sig, CIPHER_AES256,
                                 g_bytes_get_data (feks[i], NULL), FEK_BYTES, 0,
                                 &epoch_wrapped[i], &error))
      die ("harness B epoch wrap, round %u: %s", i, error->message);
  check_one_epoch ("harness B", epoch_wrapped, rounds, epoch_id);
  folder_feks = g_new0 (GBytes *, files);
  folder_wrapped = g_new0 (GBytes *, files);
  for (guint j = 0; j < files; j++)
    {
      folder_feks[j] = random_fek ();
      if (!eta_inprocess_daemon_wrap (harness_a, sig, CIPHER_AES256,
                                      g_bytes_get_data (folder_feks[j], NULL), FEK_BYTES,
                                      &folder_wrapped[j], &error))
        die ("harness A epoch wrap, file %u: %s", j, error->message);
    }
  check_one_epoch ("harness A", folder_wrapped, files, folder_epoch_id);
  if (memcmp (epoch_id, folder_epoch_id, ETA_EPOCH_ID_LEN) == 0)
    die ("the folder's epoch is the one [e] warms up: its first file would not be cold");

  /* ---- unwrap: agent up and logged in ---- */
  the_agent = eta_test_agent_start (NULL);
  eta_test_agent_queue_answer (the_agent, ETA_TEST_TOKEN_PIN);
  {
    g_autoptr (GBytes) fek = NULL;
    guint8 code = 0;

    /* The login unwrap, not measured. */
    if (!eta_kernel_player_unwrap (the_player, sig, g_bytes_get_data (wrapped[0], NULL),
                                   g_bytes_get_size (wrapped[0]), 0, &code, &fek, &error))
      die ("first unwrap (with the PIN): %s", error->message);
    if (code != CIPHER_AES256 || !g_bytes_equal (fek, feks[0]))
      die ("first unwrap gave the wrong FEK");
    /* The epoch's one token operation, not measured: [e] and [eD] find K
     * kept from here on. */
    g_clear_pointer (&fek, g_bytes_unref);
    if (!eta_kernel_player_unwrap (the_player, sig, g_bytes_get_data (epoch_wrapped[0], NULL),
                                   g_bytes_get_size (epoch_wrapped[0]), 0, &code, &fek, &error))
      die ("first epoch unwrap: %s", error->message);
    if (code != CIPHER_AES256 || !g_bytes_equal (fek, feks[0]))
      die ("first epoch unwrap gave the wrong FEK");
  }

  if (opt_profile_s > 0)
    {
      profile_loop (token->fingerprint[key_index], epoch_wrapped,
                    (const guint8 (*)[PAYLOAD_BYTES]) payloads, rounds);
      eta_agent_client_disconnect ();
      eta_kernel_player_stop (the_player);
      eta_test_agent_stop (the_agent);
      eta_harness_remove_user_key (sig, NULL);
      eta_kernel_player_remove_module_dir (module_dir);
      eta_inprocess_daemon_free (harness_a);
      g_test_dbus_down (bus);
      g_object_unref (bus);
      return 0;
    }

  inprocess_start (ETA_TEST_SOFTHSM_MODULE);
  certificate_id = find_certificate_id (spki, &serialized_id);
  certificate = inprocess_login (certificate_id); /* the one login */

  ping_bus = eta_test_session_bus ();
  series_init (&u_a, "a", "unwrap, harness B: player -> ecryptfsd -> keymod -> bus -> agent",
               measured);
  series_init (&u_aa, "aA", "  same, harness A: parse_packet() -> keymod -> bus -> agent",
               measured);
  series_init (&u_ad, "aD", "  same, direct D-Bus Unwrap (keymod's client code) -> agent",
               measured);
  series_init (&u_e, "e", "epoch unwrap, K kept, harness B: player -> ecryptfsd -> agent",
               measured);
  series_init (&u_ed, "eD", "  same, direct D-Bus Unwrap (keymod's client code) -> agent",
               measured);
  series_init (&u_ping, "p", "  (D-Bus Peer.Ping round trip to the agent, no work)", measured);
  series_init (&u_b, "b", "in-process pkcs11-helper lockSession/decrypt_ex/releaseSession",
               measured);
  series_init (&u_k, "k", "  (in-process ensureKeyAccess alone; the agent calls it per unwrap)",
               measured);
  series_init (&u_c, "c", "upstream module's way: 2 calls, fresh certificate, 3 decrypts",
               measured);
  series_init (&u_c1, "c1", "  of which call 1 (size query + scratch decrypt)", measured);
  series_init (&u_cq, "cq", "    of which the NULL-target size query alone", measured);
  series_init (&u_c2, "c2", "  of which call 2 (decrypt into the caller's buffer)", measured);
  for (guint i = 0; i < rounds; i++)
    {
      gboolean m = i >= warmup;
      g_autoptr (GBytes) fek = NULL;
      guint8 code = 0;
      guint8 plaintext[ETA_ECRYPTFS_MAX_ENCRYPTED_KEY_BYTES];
      size_t plaintext_len;
      gint64 t0, t1;

      t0 = now_ns ();
      if (!eta_kernel_player_unwrap (the_player, sig, g_bytes_get_data (wrapped[i], NULL),
                                     g_bytes_get_size (wrapped[i]), 0, &code, &fek, &error))
        die ("harness B unwrap, round %u: %s", i, error->message);
      t1 = now_ns ();
      series_add (&u_a, t0, t1, m);
      if (code != CIPHER_AES256 || !g_bytes_equal (fek, feks[i]))
        die ("harness B unwrap, round %u: wrong FEK", i);

      g_clear_pointer (&fek, g_bytes_unref);
      t0 = now_ns ();
      if (!eta_inprocess_daemon_unwrap (harness_a, sig, g_bytes_get_data (wrapped[i], NULL),
                                        g_bytes_get_size (wrapped[i]), &code, &fek, &error))
        die ("harness A unwrap, round %u: %s", i, error->message);
      t1 = now_ns ();
      series_add (&u_aa, t0, t1, m);
      if (code != CIPHER_AES256 || !g_bytes_equal (fek, feks[i]))
        die ("harness A unwrap, round %u: wrong FEK", i);

      plaintext_len = sizeof plaintext;
      t0 = now_ns ();
      if (!eta_agent_client_unwrap (token->fingerprint[key_index], ETA_PADDING_OAEP, NULL, NULL, TRUE,
                                    g_bytes_get_data (wrapped[i], NULL),
                                    g_bytes_get_size (wrapped[i]), 3000, plaintext,
                                    &plaintext_len, &error))
        die ("direct D-Bus unwrap, round %u: %s", i, error->message);
      t1 = now_ns ();
      series_add (&u_ad, t0, t1, m);
      check_plaintext ("direct D-Bus unwrap", i, plaintext, plaintext_len, payloads[i]);

      g_clear_pointer (&fek, g_bytes_unref);
      t0 = now_ns ();
      if (!eta_kernel_player_unwrap (the_player, sig, g_bytes_get_data (epoch_wrapped[i], NULL),
                                     g_bytes_get_size (epoch_wrapped[i]), 0, &code, &fek,
                                     &error))
        die ("harness B epoch unwrap, round %u: %s", i, error->message);
      t1 = now_ns ();
      series_add (&u_e, t0, t1, m);
      if (code != CIPHER_AES256 || !g_bytes_equal (fek, feks[i]))
        die ("harness B epoch unwrap, round %u: wrong FEK", i);

      plaintext_len = sizeof plaintext;
      t0 = now_ns ();
      if (!eta_agent_client_unwrap (token->fingerprint[key_index], ETA_PADDING_OAEP, NULL, NULL,
                                    TRUE, g_bytes_get_data (epoch_wrapped[i], NULL),
                                    g_bytes_get_size (epoch_wrapped[i]), 3000, plaintext,
                                    &plaintext_len, &error))
        die ("direct D-Bus epoch unwrap, round %u: %s", i, error->message);
      t1 = now_ns ();
      series_add (&u_ed, t0, t1, m);
      check_plaintext ("direct D-Bus epoch unwrap", i, plaintext, plaintext_len, payloads[i]);

      t0 = now_ns ();
      {
        g_autoptr (GVariant) pong = g_dbus_connection_call_sync (
            ping_bus, ETA_BUS_NAME, ETA_OBJECT_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL,
            NULL, G_DBUS_CALL_FLAGS_NONE, 3000, NULL, &error);
        if (pong == NULL)
          die ("Peer.Ping: %s", error->message);
      }
      t1 = now_ns ();
      series_add (&u_ping, t0, t1, m);

      plaintext_len = modulus_bytes;
      t0 = now_ns ();
      rv = direct_decrypt (certificate, &mechanism, wrapped[i], plaintext, &plaintext_len);
      t1 = now_ns ();
      if (rv != CKR_OK)
        die ("in-process decrypt_ex, round %u: %s", i, pkcs11h_getMessage (rv));
      series_add (&u_b, t0, t1, m);
      check_plaintext ("in-process decrypt", i, plaintext, plaintext_len, payloads[i]);

      t0 = now_ns ();
      rv = pkcs11h_certificate_ensureKeyAccess (certificate);
      t1 = now_ns ();
      if (rv != CKR_OK)
        die ("ensureKeyAccess, round %u: %s", i, pkcs11h_getMessage (rv));
      series_add (&u_k, t0, t1, m);

      {
        size_t size = 0;
        gdouble query_ns = 0;
        gint64 t_mid;
        CK_RV rv1, rv2;

        /* ecryptfsd's size query, then the call that returns the key. One
         * deviation: the second call gets a modulus-sized buffer, not the
         * size the first call reported (see the probe at the end). */
        t0 = now_ns ();
        rv1 = upstream_decrypt_call (serialized_id, certificate_id->certificate_blob,
                                     certificate_id->certificate_blob_size, &mechanism,
                                     wrapped[i], NULL, &size, &query_ns);
        t_mid = now_ns ();
        plaintext_len = modulus_bytes;
        rv2 = upstream_decrypt_call (serialized_id, certificate_id->certificate_blob,
                                     certificate_id->certificate_blob_size, &mechanism,
                                     wrapped[i], plaintext, &plaintext_len, NULL);
        t1 = now_ns ();
        if (rv1 != CKR_OK || rv2 != CKR_OK)
          die ("upstream-style decrypt, round %u: %s / %s", i, pkcs11h_getMessage (rv1),
               pkcs11h_getMessage (rv2));
        if (size != PAYLOAD_BYTES)
          die ("upstream-style size query call reported %zu bytes", size);
        series_add (&u_c, t0, t1, m);
        series_add (&u_c1, t0, t_mid, m);
        series_add (&u_c2, t_mid, t1, m);
        series_add (&u_cq, 0, (gint64) query_ns, m);
      }
      check_plaintext ("upstream-style decrypt", i, plaintext, plaintext_len, payloads[i]);
      memset (plaintext, 0, sizeof plaintext);
    }
  agent_prompts = eta_test_agent_get_prompt_count (the_agent);
  if (agent_prompts != 1 || pin_prompts != 1)
    die ("expected one PIN prompt each, got %u (agent) and %u (in process): the token "
         "was not logged in throughout", agent_prompts, pin_prompts);

  /* ---- folder: F files of one epoch read one by one, at token speed ----
   * Ours: through harness B, the first file cold (the agent decrypts RSA(K)
   * on the token), the others from the kept K. */
  if (opt_token_ms >= 0)
    {
      g_autofree gchar *delay = g_strdup_printf ("delay_ms=%d;delay_ops=decrypt", opt_token_ms);
      eta_fault_control_reset ();   /* counters from 0 */
      eta_fault_control_apply (delay);
    }
  series_init (&f_ours, "f", "ours: one file of the folder, harness B (first one cold)", files);
  for (guint j = 0; j < files; j++)
    {
      g_autoptr (GBytes) fek = NULL;
      guint8 code = 0;
      gint64 t0, t1;

      t0 = now_ns ();
      if (!eta_kernel_player_unwrap (the_player, sig, g_bytes_get_data (folder_wrapped[j], NULL),
                                     g_bytes_get_size (folder_wrapped[j]), 0, &code, &fek,
                                     &error))
        die ("folder, file %u: %s", j, error->message);
      t1 = now_ns ();
      series_add (&f_ours, t0, t1, TRUE);
      if (code != CIPHER_AES256 || !g_bytes_equal (fek, folder_feks[j]))
        die ("folder, file %u: wrong FEK", j);
    }
  if (opt_token_ms >= 0)
    {
      folder_token_ops = (gint64) eta_fault_control_get_counter ("decrypt_calls");
      eta_fault_control_reset ();   /* no delay from here on */
    }
  if (eta_test_agent_get_prompt_count (the_agent) != 1)
    die ("the agent asked for the PIN again during the folder series");

  /* ---- probe: the upstream module exactly as ecryptfsd drives it ----
   * libecryptfs mallocs the size the first decrypt() reported (the plaintext
   * length, 35) and passes that to the second. Run last: what it leaves in
   * the token session may break later decrypts; printed at the end. */
  {
    guint8 buffer[ETA_ECRYPTFS_MAX_ENCRYPTED_KEY_BYTES];
    guint8 plaintext[ETA_ECRYPTFS_MAX_ENCRYPTED_KEY_BYTES];
    size_t size = 0, len, plaintext_len = modulus_bytes;
    gboolean written = FALSE, correct;
    CK_RV rv1, rv2, rv3;

    memset (buffer, 0xa5, sizeof buffer);
    rv1 = upstream_decrypt_call (serialized_id, certificate_id->certificate_blob,
                                 certificate_id->certificate_blob_size, &mechanism, wrapped[0],
                                 NULL, &size, NULL);
    len = size;
    rv2 = upstream_decrypt_call (serialized_id, certificate_id->certificate_blob,
                                 certificate_id->certificate_blob_size, &mechanism, wrapped[0],
                                 buffer, &len, NULL);
    for (gsize b = 0; b < sizeof buffer; b++)
      written |= buffer[b] != 0xa5;
    correct = rv1 == CKR_OK && rv2 == CKR_OK && len == PAYLOAD_BYTES
              && memcmp (buffer, payloads[0], PAYLOAD_BYTES) == 0;
    rv3 = direct_decrypt (certificate, &mechanism, wrapped[0], plaintext, &plaintext_len);
    probe_line = g_strdup_printf (
        "PROBE upstream module as written (2nd call gets the %zu bytes the 1st reported): "
        "2nd call -> %s, %zu bytes reported, buffer %s: %s; next decrypt on that token "
        "session -> %s\n",
        size, pkcs11h_getMessage (rv2), len, written ? "written" : "untouched",
        correct ? "correct FEK" : "NO FEK", pkcs11h_getMessage (rv3));
    memset (plaintext, 0, sizeof plaintext);
    memset (buffer, 0, sizeof buffer);
  }
  /* The in-process SoftHSM2 part ends here; the upstream way at token
   * speed gets a pkcs11-helper lifetime of its own on the fault module
   * (one more in-process PIN prompt). */
  pkcs11h_certificate_freeCertificate (certificate);
  pkcs11h_certificate_freeCertificateId (certificate_id);
  pkcs11h_terminate ();
  /* (The probe may have cost a login again: counted from here.) */
  pin_prompts = 0;
  series_init (&f_up, "fc", "upstream module's way: one file ([c]: 3 token decrypts)",
               upstream_files);
  if (opt_token_ms >= 0)
    own_fault_files_setup (&own_fault, opt_token_ms);
  folder_upstream (opt_token_ms >= 0 ? eta_fault_control_get_module_path ()
                                     : ETA_TEST_SOFTHSM_MODULE,
                   opt_token_ms >= 0 ? &own_fault : NULL, spki, &mechanism, wrapped,
                   (const guint8 (*)[PAYLOAD_BYTES]) payloads, upstream_files, modulus_bytes,
                   &f_up, &upstream_token_ops);
  if (opt_token_ms >= 0)
    own_fault_files_remove (&own_fault);
  if (pin_prompts != 1)
    die ("the upstream way at token speed: expected one PIN prompt, got %u", pin_prompts);

  /* ---- report ---- */
  series_finish (&u_a);
  series_finish (&u_aa);
  series_finish (&u_ad);
  series_finish (&u_ping);
  series_finish (&u_b);
  series_finish (&u_k);
  series_finish (&u_c);
  series_finish (&u_c1);
  series_finish (&u_cq);
  series_finish (&u_c2);
  series_finish (&d_b);
  series_finish (&d_a);
  series_finish (&d_m);
  series_finish (&d_raw);
  series_finish (&d_raw1);
  series_finish (&u_e);
  series_finish (&u_ed);
  series_finish (&f_ours);
  series_finish (&f_up);

  printf ("UNWRAP (token logged in; one PIN prompt in the agent, one per in-process "
          "pkcs11-helper lifetime; every plaintext checked)\n");
  print_series (&u_a, 1e6, "ms");
  print_series (&u_aa, 1e6, "ms");
  print_series (&u_ad, 1e6, "ms");
  print_series (&u_ping, 1e6, "ms");
  print_series (&u_b, 1e6, "ms");
  print_series (&u_k, 1e6, "ms");
  print_ratio ("a / b  (our path vs in-process)", &u_a, &u_b, UNWRAP_TARGET);
  print_ratio ("aA / b (harness A vs in-process)", &u_aa, &u_b, UNWRAP_TARGET);
  print_ratio ("aD / b (bus + agent vs in-process)", &u_ad, &u_b, UNWRAP_TARGET);
  printf ("     added by the path: %.3f ms per unwrap (a - b) = ecryptfsd + socket %.3f (a - aA)"
          " + libecryptfs and key module %.3f (aA - aD) + bus and agent %.3f (aD - b),\n"
          "     of which a bare bus round trip is %.3f (p)\n",
          (u_a.median - u_b.median) / 1e6, (u_a.median - u_aa.median) / 1e6,
          (u_aa.median - u_ad.median) / 1e6, (u_ad.median - u_b.median) / 1e6,
          u_ping.median / 1e6);
  print_series (&u_c, 1e6, "ms");
  print_series (&u_c1, 1e6, "ms");
  print_series (&u_cq, 1e6, "ms");
  print_series (&u_c2, 1e6, "ms");
  print_ratio ("a / c  (our path vs upstream module)", &u_a, &u_c, 0);
  print_ratio ("c / b  (upstream vs in-process)", &u_c, &u_b, 0);

  printf ("\nCACHED EPOCH UNWRAP (packets the key module wrote with wrap=epoch, one epoch; "
          "K kept by the agent since one unmeasured unwrap)\n");
  print_series (&u_e, 1e6, "ms");
  print_series (&u_ed, 1e6, "ms");
  print_ratio ("e / b  (kept K vs in-process decrypt)", &u_e, &u_b, EPOCH_TARGET);
  print_ratio ("eD / p (bus + agent vs bare round trip)", &u_ed, &u_ping, EPOCH_BUS_TARGET);
  print_ratio ("e / a  (kept K vs per-file RSA)", &u_e, &u_a, 0);
  printf ("     the path: ecryptfsd + socket + libecryptfs + key module %.3f ms (e - eD), "
          "bus and agent beyond a bare round trip %.3f ms (eD - p)\n",
          (u_e.median - u_ed.median) / 1e6, (u_ed.median - u_ping.median) / 1e6);

  {
    gdouble ours_per_file = f_ours.total / f_ours.n;
    gdouble upstream_per_file = f_up.total / f_up.n;
    gdouble ratio = ours_per_file / upstream_per_file;
    gdouble rest_median = median_of (f_ours.ns + 1, f_ours.n - 1);

    if (opt_token_ms >= 0)
      printf ("\nFOLDER (%u files read one by one; token: fault module, %d ms per C_Decrypt)\n",
              files, opt_token_ms);
    else
      printf ("\nFOLDER (%u files read one by one; token: SoftHSM2, no delay; --token-ms for a "
              "real token's speed)\n", files);
    printf ("[f ] ours, harness B, one epoch:  %.3f ms per file (all %u files %.1f ms; the first, "
            "cold, %.3f ms; the other %u median %.3f ms)",
            ours_per_file / 1e6, files, f_ours.total / 1e6, f_ours.ns[0] / 1e6, files - 1,
            rest_median / 1e6);
    if (folder_token_ops >= 0)
      printf ("; token decrypts %" G_GINT64_FORMAT, folder_token_ops);
    printf ("\n[fc] upstream module's way [c]:     %.3f ms per file (mean of %u files, each 2 "
            "decrypt() calls, 3 C_Decrypt)", upstream_per_file / 1e6, upstream_files);
    if (upstream_token_ops >= 0)
      printf ("; token decrypts %" G_GINT64_FORMAT, upstream_token_ops);
    printf ("\n     %u files the upstream way: %.1f s (per-file time x %u: every file costs the "
            "same, so %u files stand for them)\n",
            files, upstream_per_file * files / 1e9, files, upstream_files);
    printf ("     ratio f / fc per file = (T_f / %u) / (T_fc / %u) = %.4f x", files,
            upstream_files, ratio);
    if (opt_token_ms >= FOLDER_TARGET_MIN_MS)
      printf ("   (target <= %.2f: %s)\n", FOLDER_TARGET,
              ratio <= FOLDER_TARGET ? "met" : "MISSED");
    else
      printf ("   (target <= %.2f at --token-ms >= %d; not applicable here)\n", FOLDER_TARGET,
              FOLDER_TARGET_MIN_MS);
  }
  printf ("\nWRAP (agent stopped; the key module wraps with the blob's public key)\n");
  print_series (&d_raw, 1e3, "us");
  print_series (&d_b, 1e3, "us");
  print_ratio ("d / r  (harness B vs raw OpenSSL)", &d_b, &d_raw, WRAP_TARGET);
  print_series (&d_a, 1e3, "us");
  print_ratio ("dA / r (harness A vs raw OpenSSL)", &d_a, &d_raw, WRAP_TARGET);
  print_series (&d_m, 1e3, "us");
  print_ratio ("dM / r (module encrypt vs raw OpenSSL)", &d_m, &d_raw, WRAP_TARGET);
  print_series (&d_raw1, 1e3, "us");
  print_ratio ("dM / r1 (module vs stateless OpenSSL)", &d_m, &d_raw1, 0);
  printf ("     ecryptfsd + socket round trip: %.1f us per wrap (median d - median dA); "
          "libecryptfs parse_packet + keyring: %.1f us (dA - dM); key parse + ctx: %.1f us "
          "(r1 - r)\n",
          (d_b.median - d_a.median) / 1e3, (d_a.median - d_m.median) / 1e3,
          (d_raw1.median - d_raw.median) / 1e3);

  printf ("\nSUMMARY (RSA-%d, N=%u, medians)\n", opt_key_bits, measured);
  printf ("  %-34s %-12s %-36s %-12s %-8s %s\n", "measure", "ours", "baseline", "baseline",
          "ratio", "target");
  {
    /* Medians, but per-file means for the folder: its first file is the
     * point. */
    g_autofree gchar *folder_name = opt_token_ms >= 0
        ? g_strdup_printf ("folder, per file, %d ms token [f]", opt_token_ms)
        : g_strdup ("folder, per file, SoftHSM2 [f]");
    gboolean folder_target = opt_token_ms >= FOLDER_TARGET_MIN_MS;
    struct
    {
      const gchar *name;
      gdouble ours;
      const gchar *base_name;
      gdouble base;
      gdouble unit;
      const gchar *unit_name;
      gdouble target;
    } rows[] = {
      { "unwrap, full path [a]", u_a.median, "in-process pkcs11-helper [b]", u_b.median, 1e6,
        "ms", UNWRAP_TARGET },
      { "unwrap, harness A [aA]", u_aa.median, "in-process pkcs11-helper [b]", u_b.median, 1e6,
        "ms", UNWRAP_TARGET },
      { "unwrap, D-Bus + agent [aD]", u_ad.median, "in-process pkcs11-helper [b]", u_b.median,
        1e6, "ms", UNWRAP_TARGET },
      { "unwrap, full path [a]", u_a.median, "upstream module's way [c]", u_c.median, 1e6, "ms",
        0 },
      { "cached epoch, full path [e]", u_e.median, "in-process pkcs11-helper [b]", u_b.median,
        1e6, "ms", EPOCH_TARGET },
      { "cached epoch, D-Bus + agent [eD]", u_ed.median, "bare D-Bus round trip [p]",
        u_ping.median, 1e6, "ms", EPOCH_BUS_TARGET },
      { folder_name, f_ours.total / f_ours.n, "upstream's way, per file [fc]",
        f_up.total / f_up.n, 1e6, "ms", folder_target ? FOLDER_TARGET : 0 },
      { "wrap, harness B [d]", d_b.median, "raw OpenSSL [r]", d_raw.median, 1e3, "us",
        WRAP_TARGET },
      { "wrap, harness A [dA]", d_a.median, "raw OpenSSL [r]", d_raw.median, 1e3, "us",
        WRAP_TARGET },
      { "wrap, module encrypt [dM]", d_m.median, "raw OpenSSL [r]", d_raw.median, 1e3, "us",
        WRAP_TARGET },
      { "wrap, module encrypt [dM]", d_m.median, "raw OpenSSL, stateless [r1]", d_raw1.median,
        1e3, "us", 0 },
    };
    for (gsize r = 0; r < G_N_ELEMENTS (rows); r++)
      {
        gdouble ratio = rows[r].ours / rows[r].base;
        g_autofree gchar *ours = g_strdup_printf ("%.3f %s", rows[r].ours / rows[r].unit,
                                                  rows[r].unit_name);
        g_autofree gchar *base = g_strdup_printf ("%.3f %s", rows[r].base / rows[r].unit,
                                                  rows[r].unit_name);
        g_autofree gchar *ratio_text = g_strdup_printf (ratio < 0.1 ? "%.4f" : "%.3f", ratio);
        g_autofree gchar *target = rows[r].target > 0
            ? g_strdup_printf ("<= %.2f %s", rows[r].target, ratio <= rows[r].target ? "met"
                                                                                    : "MISSED")
            : g_strdup ("-");
        printf ("  %-34s %-12s %-36s %-12s %-8s %s\n", rows[r].name, ours, rows[r].base_name,
                base, ratio_text, target);
      }
    if (!folder_target)
      printf ("  (the folder's target, <= %.2f, is for a token of %d ms or slower: "
              "--token-ms)\n", FOLDER_TARGET, FOLDER_TARGET_MIN_MS);
  }
  printf ("  wrap throughput: harness B %.0f wraps/s, harness A %.0f, module %.0f, raw OpenSSL "
          "%.0f\n",
          measured * 1e9 / d_b.total, measured * 1e9 / d_a.total, measured * 1e9 / d_m.total,
          measured * 1e9 / d_raw.total);

  printf ("\n%s", probe_line);
  fflush (stdout);

  /* ---- teardown ---- */
  eta_agent_client_disconnect ();
  g_dbus_connection_close_sync (ping_bus, NULL, NULL);
  g_object_unref (ping_bus);
  eta_kernel_player_stop (the_player);
  the_player = NULL;
  eta_test_agent_stop (the_agent);
  the_agent = NULL;
  eta_harness_remove_user_key (sig, NULL);
  eta_kernel_player_remove_module_dir (module_dir);
  eta_inprocess_daemon_free (harness_a);
  EVP_PKEY_CTX_free (raw_ctx);
  EVP_PKEY_free (raw_key);
  for (guint i = 0; i < rounds; i++)
    {
      g_bytes_unref (feks[i]);
      g_clear_pointer (&wrapped[i], g_bytes_unref);
      g_clear_pointer (&epoch_wrapped[i], g_bytes_unref);
    }
  for (guint j = 0; j < files; j++)
    {
      g_bytes_unref (folder_feks[j]);
      g_bytes_unref (folder_wrapped[j]);
    }
  g_free (folder_feks);
  g_free (folder_wrapped);
  g_free (epoch_wrapped);
  memset (payloads, 0, rounds * PAYLOAD_BYTES);
  g_free (payloads);
  g_free (feks);
  g_free (wrapped);
  series_clear (&u_a);
  series_clear (&u_aa);
  series_clear (&u_ad);
  series_clear (&u_ping);
  series_clear (&u_b);
  series_clear (&u_k);
  series_clear (&u_c);
  series_clear (&u_c1);
  series_clear (&u_cq);
  series_clear (&u_c2);
  series_clear (&d_b);
  series_clear (&d_a);
  series_clear (&d_m);
  series_clear (&d_raw);
  series_clear (&d_raw1);
  series_clear (&u_e);
  series_clear (&u_ed);
  series_clear (&f_ours);
  series_clear (&f_up);
  g_test_dbus_down (bus);
  g_object_unref (bus);
  return 0;
}

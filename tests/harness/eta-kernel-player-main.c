/* eta-kernel-player-main.c: command-line front end of the kernel player,
 * for demos and manual checks of a key module through the real ecryptfsd:
 *
 *   eta-kernel-player --module-dir DIR roundtrip SIG [--key-bytes 16|32]
 *                     [--timeout-ms N]
 *
 * wraps a random FEK the way the kernel does for a new file, unwraps it the
 * way it does on open, and exits 0 only if the FEK came back unchanged.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define G_LOG_DOMAIN "eta-harness"

#include "eta-ecryptfs-packet.h"
#include "eta-kernel-player.h"

#include <glib.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static gchar *
to_hex (const guint8 *data,
        gsize         len)
{
  GString *s = g_string_sized_new (len * 2 + 1);

  for (gsize i = 0; i < len; i++)
    g_string_append_printf (s, "%02x", data[i]);
  return g_string_free (s, FALSE);
}

static void
print_log (EtaKernelPlayer *player)
{
  if (player != NULL)
    g_printerr ("---- ecryptfsd log ----\n%s---- end of log ----\n",
                eta_kernel_player_get_log (player));
}

static int
roundtrip (const gchar *module_dir,
           const gchar *sig,
           gint         key_bytes,
           guint        timeout_ms)
{
  g_autoptr(EtaKernelPlayer) player = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) wrapped = NULL;
  g_autoptr(GBytes) recovered = NULL;
  g_autofree gchar *fek_hex = NULL;
  g_autofree gchar *wrapped_hex = NULL;
  g_autofree gchar *recovered_hex = NULL;
  guint8 fek[32];
  guint8 cipher_code = key_bytes == 32 ? ETA_ECRYPTFS_CIPHER_AES_256 : ETA_ECRYPTFS_CIPHER_AES_128;
  guint8 got_code = 0;
  const guint8 *wrapped_data;
  gsize wrapped_len;
  gboolean match;

  if (getrandom (fek, (gsize) key_bytes, 0) != key_bytes)
    {
      g_printerr ("getrandom() failed\n");
      return 1;
    }

  /* ecryptfsd inherits this environment (DBUS_SESSION_BUS_ADDRESS etc.). */
  player = eta_kernel_player_start (module_dir, NULL, &error);
  if (player == NULL)
    {
      g_printerr ("Cannot start ecryptfsd: %s\n", error->message);
      return 1;
    }
  g_print ("ecryptfsd pid %d answered HELO\n", (int) eta_kernel_player_get_pid (player));

  fek_hex = to_hex (fek, (gsize) key_bytes);
  g_print ("FEK (%d bytes, cipher code 0x%02x): %s\n", key_bytes, cipher_code, fek_hex);

  if (!eta_kernel_player_wrap (player, sig, cipher_code, fek, (gsize) key_bytes,
                               timeout_ms, &wrapped, &error))
    {
      g_printerr ("Wrap (tag 66) failed: %s\n", error->message);
      print_log (player);
      return 1;
    }
  wrapped_data = g_bytes_get_data (wrapped, &wrapped_len);
  wrapped_hex = to_hex (wrapped_data, MIN (wrapped_len, 16));
  g_print ("wrapped: %" G_GSIZE_FORMAT " bytes, begins %s%s\n", wrapped_len,
           wrapped_hex, wrapped_len > 16 ? "…" : "");

  if (!eta_kernel_player_unwrap (player, sig, wrapped_data, wrapped_len, timeout_ms,
                                 &got_code, &recovered, &error))
    {
      g_printerr ("Unwrap (tag 64) failed: %s\n", error->message);
      print_log (player);
      return 1;
    }
  recovered_hex = to_hex (g_bytes_get_data (recovered, NULL), g_bytes_get_size (recovered));
  g_print ("recovered (cipher code 0x%02x): %s\n", got_code, recovered_hex);

  match = got_code == cipher_code &&
          g_bytes_get_size (recovered) == (gsize) key_bytes &&
          memcmp (g_bytes_get_data (recovered, NULL), fek, (gsize) key_bytes) == 0;
  g_print ("match: %s\n", match ? "yes" : "NO");
  if (!match)
    print_log (player);
  return match ? 0 : 1;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *module_dir = NULL;
  gint key_bytes = 16;
  gint timeout_ms = ETA_KERNEL_PLAYER_DEFAULT_TIMEOUT_MS;
  GOptionEntry entries[] = {
    { "module-dir", 0, 0, G_OPTION_ARG_FILENAME, &module_dir,
      "Directory mounted over the key-module directory (see eta_kernel_player_make_module_dir)", "DIR" },
    { "key-bytes", 0, 0, G_OPTION_ARG_INT, &key_bytes,
      "FEK size: 16 (AES-128, code 0x07) or 32 (AES-256, code 0x09)", "16|32" },
    { "timeout-ms", 0, 0, G_OPTION_ARG_INT, &timeout_ms,
      "Reply timeout per request (kernel default 3000)", "N" },
    G_OPTION_ENTRY_NULL
  };

  setlocale (LC_ALL, "");
  context = g_option_context_new ("roundtrip SIG");
  g_option_context_set_summary (context,
    "Plays the eCryptfs kernel module towards the real ecryptfsd: wraps a\n"
    "random FEK for SIG (tag 66) and unwraps it again (tag 64).\n"
    "The auth token for SIG must already be in the user keyring (@u).");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  if (argc != 3 || !g_str_equal (argv[1], "roundtrip"))
    {
      g_autofree gchar *help = g_option_context_get_help (context, TRUE, NULL);
      g_printerr ("%s", help);
      return 2;
    }
  if (key_bytes != 16 && key_bytes != 32)
    {
      g_printerr ("--key-bytes must be 16 or 32\n");
      return 2;
    }
  if (timeout_ms <= 0)
    {
      g_printerr ("--timeout-ms must be positive\n");
      return 2;
    }
  if (!eta_ecryptfs_sig_is_valid (argv[2]))
    {
      g_printerr ("SIG must be 16 lowercase hex characters\n");
      return 2;
    }

  return roundtrip (module_dir, argv[2], key_bytes, (guint) timeout_ms);
}

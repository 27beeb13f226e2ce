/* ecryptfs-token: the command-line tool. Lists tokens and keys, enrols a key
 * (adds its auth token to the user keyring through the key module's own
 * code, exactly as mount.ecryptfs would), prints mount options, and drives
 * the agent: status, unlock, lock, forget remembered PINs.
 *
 * Exit codes: 0 success, 1 failure, 2 usage error, 3 no agent. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <glib/gi18n.h>

#include "eta-cli.h"
#include "eta-i18n.h"

typedef struct
{
  const gchar *name;
  EtaCliCommand run;
  /* The command parses its own options (and --help) with GOption. */
  gboolean has_options;
} CommandEntry;

static const CommandEntry commands[] = {
  { "list", eta_cli_command_list, FALSE },
  { "add-key", eta_cli_command_add_key, TRUE },
  { "remove-key", eta_cli_command_remove_key, FALSE },
  { "mount-options", eta_cli_command_mount_options, TRUE },
  { "status", eta_cli_command_status, FALSE },
  { "unlock", eta_cli_command_unlock, FALSE },
  { "lock", eta_cli_command_lock, FALSE },
  { "forget", eta_cli_command_forget, FALSE },
};

static void
print_usage (FILE *stream)
{
  fprintf (stream, "%s\n\n%s\n", _("usage: ecryptfs-token [--json] COMMAND [ARGS]"),
           _("Commands:"));
  fprintf (stream, "  list                      %s\n",
           _("tokens, and the keys on them with fingerprints and where they are in use"));
  fprintf (stream, "  add-key FINGERPRINT       %s\n",
           _("add a token key to your keyring for eCryptfs"));
  fprintf (stream, "          [--padding oaep|pkcs1] [--pubkey FILE] [--wrap epoch|per-file]\n");
  fprintf (stream, "  remove-key FINGERPRINT    %s\n",
           _("remove a token key from your keyring"));
  fprintf (stream, "  mount-options FINGERPRINT %s\n",
           _("options for mount, /etc/fstab or ~/.ecryptfsrc"));
  fprintf (stream, "          [--format mount|fstab|ecryptfsrc] [--padding oaep|pkcs1]\n"
                   "          [--wrap epoch|per-file] [LOWER_DIR MOUNT_POINT]\n");
  fprintf (stream, "  status                    %s\n",
           _("the agent, the tokens and their logins, the mounts using token keys"));
  fprintf (stream, "  unlock [FINGERPRINT]      %s\n",
           _("log in to the token now, so opening files needs no prompt"));
  fprintf (stream, "  lock                      %s\n", _("log out of every token"));
  fprintf (stream, "  forget                    %s\n",
           _("delete the PINs remembered in the login keyring"));
  fprintf (stream, "  help                      %s\n\n", _("this text"));
  fprintf (stream, "%s\n", _("Options:"));
  fprintf (stream, "  --json                    %s\n",
           _("print list and status as JSON, for scripts"));
  fprintf (stream, "  --version                 %s\n\n", _("print the version"));
  fprintf (stream, "%s\n",
           _("Exit status: 0 success, 1 failure, 2 usage error, 3 the agent is not running or "
             "not reachable."));
}

static gboolean
is_help (const gchar *arg)
{
  return strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0 || strcmp (arg, "help") == 0;
}

int
main (int argc, char **argv)
{
  EtaCliOptions options = { 0 };
  g_autoptr (GPtrArray) args = g_ptr_array_new ();

  eta_i18n_init ();
  g_set_prgname ("ecryptfs-token");

  /* --json may come before or after the command. */
  for (int i = 0; i < argc; i++)
    {
      if (i > 0 && strcmp (argv[i], "--json") == 0)
        options.json = TRUE;
      else
        g_ptr_array_add (args, argv[i]);
    }
  g_ptr_array_add (args, NULL);
  argc = (int) args->len - 1;
  argv = (char **) args->pdata;

  if (argc < 2)
    {
      print_usage (stderr);
      return ETA_CLI_EXIT_USAGE;
    }
  if (is_help (argv[1]))
    {
      print_usage (stdout);
      return ETA_CLI_EXIT_OK;
    }
  if (strcmp (argv[1], "--version") == 0)
    {
      g_print ("ecryptfs-token %s\n", ETA_VERSION);
      return ETA_CLI_EXIT_OK;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      if (strcmp (argv[1], commands[i].name) != 0)
        continue;
      if (!commands[i].has_options && argc > 2 && is_help (argv[2]))
        {
          print_usage (stdout);
          return ETA_CLI_EXIT_OK;
        }
      if (!commands[i].has_options && argc > 2 && argv[2][0] == '-' && argv[2][1] != '\0')
        {
          eta_cli_error (commands[i].name, _("unknown option %s"), argv[2]);
          return ETA_CLI_EXIT_USAGE;
        }
      return commands[i].run (&options, argc - 1, argv + 1);
    }
  eta_cli_error (NULL, _("unknown command '%s'"), argv[1]);
  print_usage (stderr);
  return ETA_CLI_EXIT_USAGE;
}

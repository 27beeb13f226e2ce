/* Asks the real libecryptfs module loader, the code ecryptfsd and
 * mount.ecryptfs run, to scan its key module directory and find the module
 * with the alias given; prints the file it loaded and the parameters it
 * declares. Exit 0 when found, 1 when not.
 *
 * usage: eta-keymod-loader-check ALIAS */
#include <stdio.h>
#include <string.h>

#include <ecryptfs.h>

int
main (int argc, char **argv)
{
  struct ecryptfs_ctx ctx;
  struct ecryptfs_key_mod *key_mod = NULL;
  struct key_mod_param *params = NULL;
  uint32_t num_params = 0;
  int rc;

  if (argc != 2)
    {
      fprintf (stderr, "usage: %s ALIAS\n", argv[0]);
      return 2;
    }
  memset (&ctx, 0, sizeof ctx);
  rc = ecryptfs_register_key_modules (&ctx);
  if (rc != 0)
    {
      fprintf (stderr, "ecryptfs_register_key_modules failed: %d\n", rc);
      return 1;
    }
  for (struct ecryptfs_key_mod *m = ctx.key_mod_list_head.next; m != NULL; m = m->next)
    printf ("loaded: %s (alias %s)\n", m->lib_path, m->alias ? m->alias : "(none)");
  if (ecryptfs_find_key_mod (&key_mod, &ctx, argv[1]) != 0 || key_mod == NULL)
    {
      fprintf (stderr, "the loader found no key module with alias %s\n", argv[1]);
      return 1;
    }
  printf ("found: %s\n", key_mod->lib_path);
  if (key_mod->ops->get_params != NULL
      && key_mod->ops->get_params (&params, &num_params) == 0)
    for (uint32_t i = 0; i < num_params; i++)
      printf ("param: %s\n", params[i].option);
  return 0;
}

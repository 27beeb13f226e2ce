/* See eta-fault-control.h. */
#define G_LOG_DOMAIN "eta-fault-control"

#include "eta-fault-control.h"

#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>

typedef struct
{
  GMutex lock;
  gchar *dir;
  gchar *control_path;
  gchar *status_path;
  GPtrArray *keys;      /* in the order they were first set */
  GHashTable *values;   /* key → value */
  guint64 serial;       /* makes every write differ, so the module notices it */
  guint64 epoch;        /* counters_epoch: the module zeroes counters when it changes */
} ControlState;

static ControlState control;

static void
remove_files (void)
{
  g_autoptr (GDir) dir = NULL;
  const gchar *name;

  if (control.dir == NULL)
    return;
  dir = g_dir_open (control.dir, 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *path = g_build_filename (control.dir, name, NULL);
      g_unlink (path);
    }
  g_rmdir (control.dir);
}

/* Called with control.lock held. */
static void
write_control (void)
{
  g_autoptr (GString) text = g_string_new (NULL);
  g_autoptr (GError) error = NULL;

  control.serial++;
  g_string_append_printf (text, "serial=%" G_GUINT64_FORMAT "\n", control.serial);
  g_string_append_printf (text, "counters_epoch=%" G_GUINT64_FORMAT "\n", control.epoch);
  for (guint i = 0; i < control.keys->len; i++)
    {
      const gchar *key = g_ptr_array_index (control.keys, i);
      g_string_append_printf (text, "%s=%s\n", key,
                              (const gchar *) g_hash_table_lookup (control.values, key));
    }
  /* A temporary file renamed over the old one: the module never reads half. */
  g_file_set_contents_full (control.control_path, text->str, (gssize) text->len,
                            G_FILE_SET_CONTENTS_CONSISTENT, 0644, &error);
  g_assert_no_error (error);
}

void
eta_fault_control_setup (void)
{
  g_autoptr (GError) error = NULL;

  g_mutex_lock (&control.lock);
  if (control.dir != NULL)
    {
      g_mutex_unlock (&control.lock);
      return;
    }
  control.dir = g_dir_make_tmp ("eta-fault-pkcs11-XXXXXX", &error);
  g_assert_no_error (error);
  control.control_path = g_build_filename (control.dir, "control", NULL);
  control.status_path = g_build_filename (control.dir, "status", NULL);
  control.keys = g_ptr_array_new_with_free_func (g_free);
  control.values = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  control.epoch = 1;
  write_control ();
  g_setenv (ETA_FAULT_CONTROL_ENV, control.control_path, TRUE);
  g_setenv (ETA_FAULT_STATUS_ENV, control.status_path, TRUE);
  atexit (remove_files);
  g_mutex_unlock (&control.lock);
}

const gchar *
eta_fault_control_get_module_path (void)
{
  return ETA_FAULT_PKCS11_MODULE_PATH;
}

void
eta_fault_control_set (const gchar *key, const gchar *value)
{
  g_return_if_fail (key != NULL && *key != '\0');
  g_return_if_fail (strpbrk (key, "=\n") == NULL);
  g_return_if_fail (value == NULL || strchr (value, '\n') == NULL);
  g_return_if_fail (g_strcmp0 (key, "serial") != 0 && g_strcmp0 (key, "counters_epoch") != 0);

  eta_fault_control_setup ();
  g_mutex_lock (&control.lock);
  if (value == NULL)
    {
      for (guint i = 0; i < control.keys->len; i++)
        if (g_strcmp0 (g_ptr_array_index (control.keys, i), key) == 0)
          {
            g_hash_table_remove (control.values, g_ptr_array_index (control.keys, i));
            g_ptr_array_remove_index (control.keys, i);
            break;
          }
    }
  else
    {
      gchar *stored_key = NULL;

      for (guint i = 0; i < control.keys->len && stored_key == NULL; i++)
        if (g_strcmp0 (g_ptr_array_index (control.keys, i), key) == 0)
          stored_key = g_ptr_array_index (control.keys, i);
      if (stored_key == NULL)
        {
          stored_key = g_strdup (key);
          g_ptr_array_add (control.keys, stored_key);
        }
      g_hash_table_insert (control.values, stored_key, g_strdup (value));
    }
  write_control ();
  g_mutex_unlock (&control.lock);
}

void
eta_fault_control_reset (void)
{
  eta_fault_control_setup ();
  g_mutex_lock (&control.lock);
  g_hash_table_remove_all (control.values);
  g_ptr_array_set_size (control.keys, 0);
  control.epoch++;
  write_control ();
  g_mutex_unlock (&control.lock);
}

/* The status file as a table, or NULL before the module wrote one. */
static GHashTable *
read_status (void)
{
  g_autofree gchar *text = NULL;
  g_auto (GStrv) lines = NULL;
  GHashTable *table;

  eta_fault_control_setup ();
  if (!g_file_get_contents (control.status_path, &text, NULL, NULL))
    return NULL;
  table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  lines = g_strsplit (text, "\n", -1);
  for (gsize i = 0; lines[i] != NULL; i++)
    {
      gchar *equals = strchr (lines[i], '=');
      if (equals == NULL)
        continue;
      g_hash_table_insert (table, g_strndup (lines[i], (gsize) (equals - lines[i])),
                           g_strdup (equals + 1));
    }
  return table;
}

gchar *
eta_fault_control_get_status (const gchar *key)
{
  g_autoptr (GHashTable) status = read_status ();

  if (status == NULL)
    return NULL;
  return g_strdup (g_hash_table_lookup (status, key));
}

guint64
eta_fault_control_get_counter (const gchar *name)
{
  g_autoptr (GHashTable) status = read_status ();
  g_autofree gchar *epoch = NULL;
  const gchar *value;

  if (status == NULL)
    return 0;
  g_mutex_lock (&control.lock);
  epoch = g_strdup_printf ("%" G_GUINT64_FORMAT, control.epoch);
  g_mutex_unlock (&control.lock);
  /* Written before the module saw the last reset: nothing counted since. */
  if (g_strcmp0 (g_hash_table_lookup (status, "counters_epoch"), epoch) != 0)
    return 0;
  value = g_hash_table_lookup (status, name);
  return value != NULL ? g_ascii_strtoull (value, NULL, 10) : 0;
}

gboolean
eta_fault_control_wait_status (const gchar *key, const gchar *value, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  for (;;)
    {
      g_autofree gchar *current = eta_fault_control_get_status (key);

      if (g_strcmp0 (current, value) == 0)
        return TRUE;
      if (g_get_monotonic_time () >= deadline)
        return FALSE;
      g_usleep (5000);
    }
}

void
eta_fault_control_apply (const gchar *settings)
{
  g_auto (GStrv) items = NULL;

  if (settings == NULL)
    return;
  items = g_strsplit (settings, ";", -1);
  for (gsize i = 0; items[i] != NULL; i++)
    {
      g_auto (GStrv) pair = g_strsplit (items[i], "=", 2);
      g_assert_nonnull (pair[1]);
      eta_fault_control_set (pair[0], pair[1]);
    }
}

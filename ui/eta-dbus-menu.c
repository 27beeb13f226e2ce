/* See eta-dbus-menu.h. */
#define G_LOG_DOMAIN "eta-dbus-menu"

#include "config.h"

#include "eta-dbus-menu.h"

#include "eta-caller-check.h"

#include "eta-sni-generated.h"

#define DBUSMENU_VERSION 3

typedef struct
{
  gint id;
  gchar *action;
  gchar *parent;    /* the parent's action; NULL at the top level */
  gchar *label;     /* escaped for dbusmenu's mnemonics */
  gboolean enabled;
  gboolean separator;
} MenuItem;

struct _EtaDBusMenu
{
  GObject parent_instance;

  EtaSniDbusmenu *skeleton;
  GHashTable *ids;       /* action → id, kept for the menu's lifetime */
  gint last_id;
  GPtrArray *items;      /* MenuItem of the published layout, in order */
  GPtrArray *pending;    /* MenuItem of the layout being built, or NULL */
  guint separators;      /* separators in the layout being built */
  guint revision;
};

G_DEFINE_FINAL_TYPE (EtaDBusMenu, eta_dbus_menu, G_TYPE_OBJECT)

enum { SIGNAL_ACTIVATED, SIGNAL_ABOUT_TO_SHOW, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
menu_item_free (MenuItem *item)
{
  g_free (item->action);
  g_free (item->parent);
  g_free (item->label);
  g_free (item);
}

/* ---- reading the layout ---- */

static MenuItem *
find_item (GPtrArray *items, gint id)
{
  for (guint i = 0; i < items->len; i++)
    {
      MenuItem *item = g_ptr_array_index (items, i);
      if (item->id == id)
        return item;
    }
  return NULL;
}

static gboolean
has_children (GPtrArray *items, const gchar *action)
{
  for (guint i = 0; i < items->len; i++)
    if (g_strcmp0 (((MenuItem *) g_ptr_array_index (items, i))->parent, action) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
wanted (const gchar * const *names, const gchar *name)
{
  return names == NULL || names[0] == NULL || g_strv_contains (names, name);
}

/* The properties of @item (NULL: the root) that differ from the defaults. */
static GVariant *
item_properties (GPtrArray *items, MenuItem *item, const gchar * const *names)
{
  g_auto (GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  if (item != NULL && item->separator)
    {
      if (wanted (names, "type"))
        g_variant_builder_add (&builder, "{sv}", "type", g_variant_new_string ("separator"));
    }
  else if (item != NULL)
    {
      if (wanted (names, "label"))
        g_variant_builder_add (&builder, "{sv}", "label", g_variant_new_string (item->label));
      if (!item->enabled && wanted (names, "enabled"))
        g_variant_builder_add (&builder, "{sv}", "enabled", g_variant_new_boolean (FALSE));
    }
  if (wanted (names, "visible"))
    g_variant_builder_add (&builder, "{sv}", "visible", g_variant_new_boolean (TRUE));
  if (has_children (items, item ? item->action : NULL) && wanted (names, "children-display"))
    g_variant_builder_add (&builder, "{sv}", "children-display",
                           g_variant_new_string ("submenu"));
  return g_variant_builder_end (&builder);
}

/* (ia{sv}av) for @item (NULL: the root) and @depth levels of children. */
static GVariant *
item_layout (GPtrArray *items, MenuItem *item, gint depth, const gchar * const *names)
{
  g_auto (GVariantBuilder) children = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("av"));
  const gchar *action = item ? item->action : NULL;

  if (depth != 0)
    for (guint i = 0; i < items->len; i++)
      {
        MenuItem *child = g_ptr_array_index (items, i);
        if (g_strcmp0 (child->parent, action) == 0)
          g_variant_builder_add (&children, "v",
                                 item_layout (items, child, depth < 0 ? -1 : depth - 1,
                                              names));
      }
  return g_variant_new ("(i@a{sv}av)", item ? item->id : 0,
                        item_properties (items, item, names), &children);
}

/* ---- the interface ---- */

/* 0, the root, always exists. */
static gboolean
known_id (EtaDBusMenu *self, gint id)
{
  return id == 0 || find_item (self->items, id) != NULL;
}

static void
return_unknown_id (GDBusMethodInvocation *invocation, gint id)
{
  g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                                         "there is no menu item %d", id);
}

static gboolean
lookup_or_fail (EtaDBusMenu *self, GDBusMethodInvocation *invocation, gint id,
                MenuItem **item)
{
  *item = id == 0 ? NULL : find_item (self->items, id);
  if (id == 0 || *item != NULL)
    return TRUE;
  return_unknown_id (invocation, id);
  return FALSE;
}

static gboolean
on_handle_get_layout (EtaSniDbusmenu *skeleton, GDBusMethodInvocation *invocation,
                      gint parent_id, gint recursion_depth,
                      const gchar * const *property_names, gpointer user_data)
{
  EtaDBusMenu *self = user_data;
  MenuItem *item;

  if (lookup_or_fail (self, invocation, parent_id, &item))
    eta_sni_dbusmenu_complete_get_layout (
        skeleton, invocation, self->revision,
        item_layout (self->items, item, recursion_depth, property_names));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
on_handle_get_group_properties (EtaSniDbusmenu *skeleton, GDBusMethodInvocation *invocation,
                                GVariant *ids, const gchar * const *property_names,
                                gpointer user_data)
{
  EtaDBusMenu *self = user_data;
  g_auto (GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("a(ia{sv})"));
  gsize n_ids = g_variant_n_children (ids);

  for (guint i = 0; i < self->items->len; i++)
    {
      MenuItem *item = g_ptr_array_index (self->items, i);
      gboolean asked = n_ids == 0;

      for (gsize j = 0; j < n_ids && !asked; j++)
        {
          gint32 id;
          g_variant_get_child (ids, j, "i", &id);
          asked = id == item->id;
        }
      if (asked)
        g_variant_builder_add (&builder, "(i@a{sv})", item->id,
                               item_properties (self->items, item, property_names));
    }
  eta_sni_dbusmenu_complete_get_group_properties (skeleton, invocation,
                                                  g_variant_builder_end (&builder));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
on_handle_get_property (EtaSniDbusmenu *skeleton, GDBusMethodInvocation *invocation, gint id,
                        const gchar *name, gpointer user_data)
{
  EtaDBusMenu *self = user_data;
  const gchar *names[] = { name, NULL };
  g_autoptr (GVariant) properties = NULL;
  g_autoptr (GVariant) value = NULL;
  MenuItem *item;

  if (!lookup_or_fail (self, invocation, id, &item))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  properties = g_variant_ref_sink (item_properties (self->items, item, names));
  value = g_variant_lookup_value (properties, name, NULL);
  if (value == NULL)
    g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                                           "menu item %d has no property %s", id, name);
  else
    eta_sni_dbusmenu_complete_get_property (skeleton, invocation,
                                            g_variant_new_variant (value));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* TRUE when @id names an item; a click on an enabled one is announced. */
static gboolean
handle_event (EtaDBusMenu *self, gint id, const gchar *event_id)
{
  MenuItem *item = find_item (self->items, id);
  g_autofree gchar *action = NULL;

  if (item == NULL)
    return id == 0;
  if (!g_str_equal (event_id, "clicked") || !item->enabled || item->separator)
    return TRUE;
  /* The handler may rebuild the menu, which frees @item. */
  action = g_strdup (item->action);
  g_signal_emit (self, signals[SIGNAL_ACTIVATED], 0, action);
  return TRUE;
}

static gboolean
on_handle_event (EtaSniDbusmenu *skeleton, GDBusMethodInvocation *invocation, gint id,
                 const gchar *event_id, GVariant *data, guint timestamp, gpointer user_data)
{
  EtaDBusMenu *self = user_data;

  if (!known_id (self, id))
    {
      return_unknown_id (invocation, id);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  /* Answer first: the action may take a while, or end the program. */
  eta_sni_dbusmenu_complete_event (skeleton, invocation);
  handle_event (self, id, event_id);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
on_handle_event_group (EtaSniDbusmenu *skeleton, GDBusMethodInvocation *invocation,
                       GVariant *events, gpointer user_data)
{
  EtaDBusMenu *self = user_data;
  g_autoptr (GArray) known = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr (GArray) errors = g_array_new (FALSE, FALSE, sizeof (gint32));
  GVariantIter iter;
  gint32 id;
  const gchar *event_id;

  g_variant_iter_init (&iter, events);
  while (g_variant_iter_next (&iter, "(i&svu)", &id, &event_id, NULL, NULL))
    g_array_append_val (known_id (self, id) ? known : errors, id);
  if (known->len == 0 && errors->len > 0)
    {
      g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR,
                                             G_DBUS_ERROR_INVALID_ARGS,
                                             "none of the menu items exists");
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  eta_sni_dbusmenu_complete_event_group (
      skeleton, invocation,
      g_variant_new_fixed_array (G_VARIANT_TYPE_INT32, errors->data, errors->len,
                                 sizeof (gint32)));
  g_variant_iter_init (&iter, events);
  while (g_variant_iter_next (&iter, "(i&svu)", &id, &event_id, NULL, NULL))
    handle_event (self, id, event_id);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
on_handle_about_to_show (EtaSniDbusmenu *skeleton, GDBusMethodInvocation *invocation, gint id,
                         gpointer user_data)
{
  EtaDBusMenu *self = user_data;
  MenuItem *item;

  if (!lookup_or_fail (self, invocation, id, &item))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  eta_sni_dbusmenu_complete_about_to_show (skeleton, invocation, FALSE);
  g_signal_emit (self, signals[SIGNAL_ABOUT_TO_SHOW], 0);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
on_handle_about_to_show_group (EtaSniDbusmenu *skeleton, GDBusMethodInvocation *invocation,
                               GVariant *ids, gpointer user_data)
{
  EtaDBusMenu *self = user_data;
  g_autoptr (GArray) errors = g_array_new (FALSE, FALSE, sizeof (gint32));
  GVariantIter iter;
  gint32 id;

  g_variant_iter_init (&iter, ids);
  while (g_variant_iter_next (&iter, "i", &id))
    if (!known_id (self, id))
      g_array_append_val (errors, id);
  eta_sni_dbusmenu_complete_about_to_show_group (
      skeleton, invocation,
      g_variant_new_fixed_array (G_VARIANT_TYPE_INT32, NULL, 0, sizeof (gint32)),
      g_variant_new_fixed_array (G_VARIANT_TYPE_INT32, errors->data, errors->len,
                                 sizeof (gint32)));
  g_signal_emit (self, signals[SIGNAL_ABOUT_TO_SHOW], 0);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- building ---- */

void
eta_dbus_menu_begin (EtaDBusMenu *self)
{
  g_clear_pointer (&self->pending, g_ptr_array_unref);
  self->pending = g_ptr_array_new_with_free_func ((GDestroyNotify) menu_item_free);
  self->separators = 0;
}

static gint
id_for_action (EtaDBusMenu *self, const gchar *action)
{
  gpointer id;

  if (g_hash_table_lookup_extended (self->ids, action, NULL, &id))
    return GPOINTER_TO_INT (id);
  g_hash_table_insert (self->ids, g_strdup (action), GINT_TO_POINTER (++self->last_id));
  return self->last_id;
}

static MenuItem *
add (EtaDBusMenu *self, const gchar *parent, const gchar *action)
{
  MenuItem *item = g_new0 (MenuItem, 1);

  g_return_val_if_fail (self->pending != NULL, NULL);
  item->id = id_for_action (self, action);
  item->action = g_strdup (action);
  item->parent = g_strdup (parent);
  item->enabled = TRUE;
  g_ptr_array_add (self->pending, item);
  return item;
}

void
eta_dbus_menu_add_item (EtaDBusMenu *self, const gchar *parent, const gchar *action,
                        const gchar *label, gboolean enabled)
{
  g_auto (GStrv) parts = g_strsplit (label, "_", -1);
  MenuItem *item = add (self, parent, action);

  /* Labels are text: a single underscore would start a mnemonic. */
  item->label = g_strjoinv ("__", parts);
  item->enabled = enabled;
}

void
eta_dbus_menu_add_separator (EtaDBusMenu *self, const gchar *parent)
{
  g_autofree gchar *action = g_strdup_printf ("separator %s %u", parent ? parent : "",
                                              ++self->separators);
  add (self, parent, action)->separator = TRUE;
}

static gboolean
same_structure (GPtrArray *a, GPtrArray *b)
{
  if (a->len != b->len)
    return FALSE;
  for (guint i = 0; i < a->len; i++)
    {
      MenuItem *x = g_ptr_array_index (a, i);
      MenuItem *y = g_ptr_array_index (b, i);
      if (x->id != y->id || g_strcmp0 (x->parent, y->parent) != 0
          || x->separator != y->separator)
        return FALSE;
    }
  return TRUE;
}

void
eta_dbus_menu_commit (EtaDBusMenu *self)
{
  g_autoptr (GPtrArray) old = NULL;
  g_auto (GVariantBuilder) updated = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("a(ia{sv})"));
  g_auto (GVariantBuilder) removed = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("a(ias)"));
  const gchar *enabled_name[] = { "enabled", NULL };
  gboolean changed = FALSE;

  g_return_if_fail (self->pending != NULL);
  old = g_steal_pointer (&self->items);
  self->items = g_steal_pointer (&self->pending);
  if (!same_structure (old, self->items))
    {
      eta_sni_dbusmenu_emit_layout_updated (self->skeleton, ++self->revision, 0);
      return;
    }
  for (guint i = 0; i < self->items->len; i++)
    {
      MenuItem *was = g_ptr_array_index (old, i);
      MenuItem *item = g_ptr_array_index (self->items, i);

      if (g_strcmp0 (was->label, item->label) == 0 && was->enabled == item->enabled)
        continue;
      changed = TRUE;
      g_variant_builder_add (&updated, "(i@a{sv})", item->id,
                             item_properties (self->items, item, NULL));
      /* Back to the default, "enabled" is left out of the properties. */
      if (!was->enabled && item->enabled)
        g_variant_builder_add (&removed, "(i^as)", item->id, enabled_name);
    }
  if (changed)
    eta_sni_dbusmenu_emit_items_properties_updated (self->skeleton,
                                                    g_variant_builder_end (&updated),
                                                    g_variant_builder_end (&removed));
}

/* ---- life cycle ---- */

gboolean
eta_dbus_menu_export (EtaDBusMenu *self, GDBusConnection *connection, const gchar *object_path,
                      GError **error)
{
  return g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (self->skeleton),
                                           connection, object_path, error);
}

void
eta_dbus_menu_unexport (EtaDBusMenu *self)
{
  g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (self->skeleton));
}

static void
eta_dbus_menu_finalize (GObject *object)
{
  EtaDBusMenu *self = ETA_DBUS_MENU (object);

  g_signal_handlers_disconnect_by_data (self->skeleton, self);
  g_object_unref (self->skeleton);
  g_hash_table_unref (self->ids);
  g_ptr_array_unref (self->items);
  g_clear_pointer (&self->pending, g_ptr_array_unref);
  G_OBJECT_CLASS (eta_dbus_menu_parent_class)->finalize (object);
}

static void
eta_dbus_menu_class_init (EtaDBusMenuClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = eta_dbus_menu_finalize;
  signals[SIGNAL_ACTIVATED] = g_signal_new ("activated", G_TYPE_FROM_CLASS (klass),
                                            G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                            G_TYPE_NONE, 1, G_TYPE_STRING);
  signals[SIGNAL_ABOUT_TO_SHOW] = g_signal_new ("about-to-show", G_TYPE_FROM_CLASS (klass),
                                                G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                                G_TYPE_NONE, 0);
}

static void
eta_dbus_menu_init (EtaDBusMenu *self)
{
  const gchar *no_paths[] = { NULL };

  self->ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->items = g_ptr_array_new_with_free_func ((GDestroyNotify) menu_item_free);
  self->skeleton = eta_sni_dbusmenu_skeleton_new ();
  /* The panel showing the item runs as this user; nobody else may drive the
   * menu (Quit, Lock, Forget) or read the recent activity. */
  {
    g_autoptr (EtaCallerCheck) check = eta_caller_check_new ();
    eta_caller_check_guard (check, G_DBUS_INTERFACE_SKELETON (self->skeleton));
  }
  eta_sni_dbusmenu_set_version (self->skeleton, DBUSMENU_VERSION);
  eta_sni_dbusmenu_set_text_direction (self->skeleton, "ltr");
  eta_sni_dbusmenu_set_status (self->skeleton, "normal");
  eta_sni_dbusmenu_set_icon_theme_path (self->skeleton, no_paths);
  g_signal_connect (self->skeleton, "handle-get-layout", G_CALLBACK (on_handle_get_layout),
                    self);
  g_signal_connect (self->skeleton, "handle-get-group-properties",
                    G_CALLBACK (on_handle_get_group_properties), self);
  g_signal_connect (self->skeleton, "handle-get-property", G_CALLBACK (on_handle_get_property),
                    self);
  g_signal_connect (self->skeleton, "handle-event", G_CALLBACK (on_handle_event), self);
  g_signal_connect (self->skeleton, "handle-event-group", G_CALLBACK (on_handle_event_group),
                    self);
  g_signal_connect (self->skeleton, "handle-about-to-show",
                    G_CALLBACK (on_handle_about_to_show), self);
  g_signal_connect (self->skeleton, "handle-about-to-show-group",
                    G_CALLBACK (on_handle_about_to_show_group), self);
}

EtaDBusMenu *
eta_dbus_menu_new (void)
{
  return g_object_new (ETA_TYPE_DBUS_MENU, NULL);
}

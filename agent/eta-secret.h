/* The one place secrets live in the agent: PINs and recovered keys.
 *
 * An EtaSecret is a refcounted buffer on locked, non-dumpable pages, wiped
 * when its last reference goes. Small ones (up to 512 bytes) take a slot of
 * a page that several share, so that the unwraps' short-lived secrets cost
 * no system call each; a page is unlocked once it holds no secret. Nothing
 * secret is ever g_strdup'ed: it goes from where it was read straight into
 * an EtaSecret. */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

typedef struct _EtaSecret EtaSecret;

#define ETA_TYPE_SECRET (eta_secret_get_type ())
GType eta_secret_get_type (void) G_GNUC_CONST;

/* A zeroed secret of @capacity bytes, length 0. Aborts only when the address
 * space is exhausted, like g_malloc. */
EtaSecret *eta_secret_new (gsize capacity);
/* A copy of @len bytes of @data. */
EtaSecret *eta_secret_new_from_data (const guint8 *data, gsize len);
EtaSecret *eta_secret_ref (EtaSecret *secret);
void eta_secret_unref (EtaSecret *secret);

guint8 *eta_secret_get_data (EtaSecret *secret);
gsize eta_secret_get_length (const EtaSecret *secret);
gsize eta_secret_get_capacity (const EtaSecret *secret);
/* Sets the length of meaningful bytes; bytes past it are wiped. */
void eta_secret_set_length (EtaSecret *secret, gsize length);
/* TRUE if the pages could be locked in memory (RLIMIT_MEMLOCK allows it). */
gboolean eta_secret_is_locked (const EtaSecret *secret);

/* Makes this process undumpable and disables core files: run once at start
 * by every program that holds secrets. */
void eta_secret_harden_process (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EtaSecret, eta_secret_unref)

G_END_DECLS

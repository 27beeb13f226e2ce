/* What the fuzz targets in tests/fuzz/ share: the environment they run in,
 * exact-size copies of the input, the check that turns a broken invariant
 * into a crash the fuzzer reports, and the fix-up that lets mutated keys get
 * past a blob's fingerprint. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "eta-public-key-file.h"

/* Call from LLVMFuzzerInitialize: GLib without its slice allocator (so ASan
 * sees every allocation), criticals and warnings abort (a g_return_if_fail
 * that fires is a bug), and no configuration of the host read. */
void eta_fuzz_init (void);

/* A copy of @data in a heap block of exactly @size bytes (also for 0), so
 * that ASan reports a read one byte past the input. Free with g_free. */
guint8 *eta_fuzz_dup_exact (const uint8_t *data, size_t size);

/* If the @len bytes at @blob hold a key blob's header and SPKI length field
 * (whatever their values), writes the SHA-256 of the SPKI bytes into the
 * fingerprint field. A mutated SPKI then reaches the key parser instead of
 * failing the fingerprint check, which no mutation could pass. Returns TRUE
 * when it changed a byte. */
gboolean eta_fuzz_fix_blob_fingerprint (guint8 *blob, size_t len);

/* The checks every accepted public key record must pass: an RSA SPKI whose
 * fingerprint is the record's, labels that are valid UTF-8, a known padding,
 * and a blob written from it that the key module accepts. */
void eta_fuzz_check_record (const EtaPublicKeyRecord *record);

G_NORETURN void eta_fuzz_fail (const char *what, const char *file, int line);

/* An invariant of the code under test: aborts (a crash libFuzzer reports,
 * with the input) when @condition is false. Never compiled out. */
#define ETA_FUZZ_CHECK(condition) \
  ((condition) ? (void) 0 : eta_fuzz_fail (#condition, __FILE__, __LINE__))

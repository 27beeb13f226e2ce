/* The key module's blob: round trip, the wrap mode of version 2, version 1
 * blobs, and every way a blob can be bad. */
#include <string.h>

#include <glib.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "eta-blob.h"

typedef struct
{
  guint8 *spki;
  gsize spki_len;
  guint8 blob[ETA_BLOB_MAX_SIZE + 16];
  gsize blob_len;
} Fixture;

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  EVP_PKEY *key = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) 2048);
  unsigned char *der = NULL;
  int len = i2d_PUBKEY (key, &der);

  fixture->spki = g_memdup2 (der, (gsize) len);
  fixture->spki_len = (gsize) len;
  OPENSSL_free (der);
  EVP_PKEY_free (key);
  fixture->blob_len = eta_blob_write (fixture->blob, ETA_PADDING_OAEP, fixture->spki,
                                      fixture->spki_len, "Key label", "Token label");
  g_assert_cmpuint (fixture->blob_len, >, 0);
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  g_free (fixture->spki);
}

static void
test_roundtrip (Fixture *fixture, gconstpointer data)
{
  EtaBlob blob;
  uint8_t fingerprint[ETA_FINGERPRINT_LEN];

  g_assert_cmpint (eta_blob_parse (fixture->blob, sizeof fixture->blob, &blob), ==, ETA_BLOB_OK);
  g_assert_cmpint (blob.padding, ==, ETA_PADDING_OAEP);
  g_assert_cmpint (blob.wrap, ==, ETA_WRAP_EPOCH);
  g_assert_cmpmem (blob.spki, blob.spki_len, fixture->spki, fixture->spki_len);
  g_assert_cmpstr (blob.key_label, ==, "Key label");
  g_assert_cmpstr (blob.token_label, ==, "Token label");
  g_assert_cmpuint (blob.total_len, ==, fixture->blob_len);
  eta_key_fingerprint (fixture->spki, fixture->spki_len, fingerprint);
  g_assert_cmpmem (blob.fingerprint, sizeof blob.fingerprint, fingerprint, sizeof fingerprint);
}

static void
test_pkcs1_roundtrip (Fixture *fixture, gconstpointer data)
{
  EtaBlob blob;
  gsize len = eta_blob_write (fixture->blob, ETA_PADDING_PKCS1, fixture->spki,
                              fixture->spki_len, NULL, NULL);
  g_assert_cmpuint (len, >, 0);
  g_assert_cmpint (eta_blob_parse (fixture->blob, sizeof fixture->blob, &blob), ==, ETA_BLOB_OK);
  g_assert_cmpint (blob.padding, ==, ETA_PADDING_PKCS1);
  g_assert_cmpstr (blob.key_label, ==, "");
}

static void
test_no_secret_inside (Fixture *fixture, gconstpointer data)
{
  /* Everything in the blob is accounted for by public fields. */
  EtaBlob blob;
  g_assert_cmpint (eta_blob_parse (fixture->blob, sizeof fixture->blob, &blob), ==, ETA_BLOB_OK);
  g_assert_cmpuint (fixture->blob_len, ==,
                    41 + 2 + fixture->spki_len + 1 + strlen ("Key label") + 1
                    + strlen ("Token label"));
}

static void
test_bad_magic (Fixture *fixture, gconstpointer data)
{
  EtaBlob blob;
  fixture->blob[0] = 'X';
  g_assert_cmpint (eta_blob_parse (fixture->blob, sizeof fixture->blob, &blob), ==, ETA_BLOB_ERROR_MAGIC);
}

static void
test_wrong_version (Fixture *fixture, gconstpointer data)
{
  EtaBlob blob;
  fixture->blob[4] = ETA_BLOB_VERSION + 1;
  g_assert_cmpint (eta_blob_parse (fixture->blob, sizeof fixture->blob, &blob), ==, ETA_BLOB_ERROR_VERSION);
  g_assert_nonnull (strstr (eta_blob_status_to_string (ETA_BLOB_ERROR_VERSION), "version"));
}

static void
test_truncated (Fixture *fixture, gconstpointer data)
{
  EtaBlob blob;
  gsize short_len = fixture->blob_len - 5;

  /* The stated length no longer covers the fields. */
  fixture->blob[6] = (guint8) (short_len >> 8);
  fixture->blob[7] = (guint8) short_len;
  g_assert_cmpint (eta_blob_parse (fixture->blob, sizeof fixture->blob, &blob), ==, ETA_BLOB_ERROR_TRUNCATED);

  /* An SPKI length running past the end. */
  fixture_set_up (fixture, NULL);
  fixture->blob[41] = 0x0f;
  g_assert_cmpint (eta_blob_parse (fixture->blob, sizeof fixture->blob, &blob), ==, ETA_BLOB_ERROR_TRUNCATED);

  /* Too short to hold even the header. */
  fixture->blob[6] = 0;
  fixture->blob[7] = 10;
  g_assert_cmpint (eta_blob_parse (fixture->blob, sizeof fixture->blob, &blob), ==, ETA_BLOB_ERROR_TRUNCATED);
}

static void
test_stated_length_past_buffer (Fixture *fixture, gconstpointer data)
{
  /* The review's overflow: a blob claiming more bytes than its holder has.
   * An exact-size copy lets a sanitizer see any read past it. */
  g_autofree guint8 *exact = g_memdup2 (fixture->blob, fixture->blob_len);
  gsize stated = fixture->blob_len + 255;
  EtaBlob blob;

  exact[6] = (guint8) (stated >> 8);
  exact[7] = (guint8) stated;
  g_assert_cmpint (eta_blob_parse (exact, fixture->blob_len, &blob), ==,
                   ETA_BLOB_ERROR_TRUNCATED);
  /* Nothing was taken from the bytes before the check. */
  g_assert_cmpstr (blob.token_label, ==, "");

  /* Fewer bytes than a header, or than a magic. */
  g_assert_cmpint (eta_blob_parse (fixture->blob, 20, &blob), ==, ETA_BLOB_ERROR_TRUNCATED);
  g_assert_cmpint (eta_blob_parse (fixture->blob, 3, &blob), ==, ETA_BLOB_ERROR_MAGIC);
  g_assert_cmpint (eta_blob_parse (NULL, 0, &blob), ==, ETA_BLOB_ERROR_MAGIC);

  /* One byte short of the real blob. */
  g_assert_cmpint (eta_blob_parse (fixture->blob, fixture->blob_len - 1, &blob), ==,
                   ETA_BLOB_ERROR_TRUNCATED);
  g_assert_cmpint (eta_blob_parse (fixture->blob, fixture->blob_len, &blob), ==, ETA_BLOB_OK);
}

static void
test_oversized (Fixture *fixture, gconstpointer data)
{
  EtaBlob blob;
  g_autofree guint8 *huge = g_malloc0 (ETA_BLOB_MAX_SIZE);

  fixture->blob[6] = (ETA_BLOB_MAX_SIZE + 1) >> 8;
  fixture->blob[7] = (ETA_BLOB_MAX_SIZE + 1) & 0xff;
  g_assert_cmpint (eta_blob_parse (fixture->blob, sizeof fixture->blob, &blob), ==, ETA_BLOB_ERROR_OVERSIZED);
  /* And nothing that large is ever written. */
  g_assert_cmpuint (eta_blob_size (ETA_BLOB_MAX_SIZE, "a", "b"), ==, 0);
  g_assert_cmpuint (eta_blob_write (fixture->blob, ETA_PADDING_OAEP, huge,
                                    ETA_BLOB_MAX_SIZE, "a", "b"), ==, 0);
}

static void
test_unknown_padding (Fixture *fixture, gconstpointer data)
{
  EtaBlob blob;
  fixture->blob[5] = 9;
  g_assert_cmpint (eta_blob_parse (fixture->blob, sizeof fixture->blob, &blob), ==, ETA_BLOB_ERROR_PADDING);
  g_assert_cmpint (eta_padding_from_string ("rsa-raw"), ==, 0);
  g_assert_cmpint (eta_padding_from_string ("pkcs1"), ==, ETA_PADDING_PKCS1);
}

static void
test_fingerprint_mismatch (Fixture *fixture, gconstpointer data)
{
  EtaBlob blob;
  fixture->blob[8] ^= 0xff;
  g_assert_cmpint (eta_blob_parse (fixture->blob, sizeof fixture->blob, &blob), ==, ETA_BLOB_ERROR_KEY);
}

static void
test_long_labels_cut (Fixture *fixture, gconstpointer data)
{
  EtaBlob blob;
  g_autofree gchar *long_label = g_strnfill (400, 'x');

  g_assert_cmpuint (eta_blob_write (fixture->blob, ETA_PADDING_OAEP, fixture->spki,
                                    fixture->spki_len, long_label, long_label), >, 0);
  g_assert_cmpint (eta_blob_parse (fixture->blob, sizeof fixture->blob, &blob), ==, ETA_BLOB_OK);
  g_assert_cmpuint (strlen (blob.key_label), ==, ETA_BLOB_LABEL_MAX);
}

static void
test_wrap_roundtrip (Fixture *fixture, gconstpointer data)
{
  EtaBlob blob;
  gsize len = eta_blob_write_with_wrap (fixture->blob, ETA_PADDING_PKCS1, ETA_WRAP_PER_FILE,
                                        fixture->spki, fixture->spki_len, "Key", "Token");

  g_assert_cmpuint (len, ==, eta_blob_size (fixture->spki_len, "Key", "Token"));
  g_assert_cmpuint (fixture->blob[4], ==, 2);
  g_assert_cmpuint (fixture->blob[40], ==, ETA_WRAP_PER_FILE);
  g_assert_cmpint (eta_blob_parse (fixture->blob, len, &blob), ==, ETA_BLOB_OK);
  g_assert_cmpint (blob.wrap, ==, ETA_WRAP_PER_FILE);
  g_assert_cmpint (blob.padding, ==, ETA_PADDING_PKCS1);
  g_assert_cmpmem (blob.spki, blob.spki_len, fixture->spki, fixture->spki_len);
  g_assert_cmpstr (blob.token_label, ==, "Token");

  len = eta_blob_write_with_wrap (fixture->blob, ETA_PADDING_OAEP, ETA_WRAP_EPOCH,
                                  fixture->spki, fixture->spki_len, "Key", "Token");
  g_assert_cmpint (eta_blob_parse (fixture->blob, len, &blob), ==, ETA_BLOB_OK);
  g_assert_cmpint (blob.wrap, ==, ETA_WRAP_EPOCH);

  /* Names, as the mount parameter and the command line spell them. */
  g_assert_cmpint (eta_wrap_from_string (NULL), ==, ETA_WRAP_EPOCH);
  g_assert_cmpint (eta_wrap_from_string ("epoch"), ==, ETA_WRAP_EPOCH);
  g_assert_cmpint (eta_wrap_from_string ("per-file"), ==, ETA_WRAP_PER_FILE);
  g_assert_cmpint (eta_wrap_from_string ("perfile"), ==, 0);
  g_assert_cmpstr (eta_wrap_to_string (ETA_WRAP_PER_FILE), ==, "per-file");
  g_assert_cmpstr (eta_wrap_to_string (ETA_WRAP_EPOCH), ==, "epoch");
  /* Nothing is written for a mode the parser would refuse. */
  g_assert_cmpuint (eta_blob_write_with_wrap (fixture->blob, ETA_PADDING_OAEP, 3, fixture->spki,
                                              fixture->spki_len, NULL, NULL), ==, 0);
}

/* A version 1 blob, as earlier releases wrote it into keyrings: no wrap
 * byte, the SPKI length at offset 40. */
static gsize
make_v1_blob (Fixture *fixture, guint8 *out)
{
  gsize len = fixture->blob_len - 1;

  memcpy (out, fixture->blob, 40);
  memcpy (out + 40, fixture->blob + 41, fixture->blob_len - 41);
  out[4] = 1;
  out[6] = (guint8) (len >> 8);
  out[7] = (guint8) len;
  return len;
}

static void
test_version1_still_parses (Fixture *fixture, gconstpointer data)
{
  g_autofree guint8 *v1 = g_malloc (fixture->blob_len);
  gsize len = make_v1_blob (fixture, v1);
  EtaBlob blob;

  /* Exactly as long as it says: a sanitizer sees any read past it. */
  g_assert_cmpint (eta_blob_parse (v1, len, &blob), ==, ETA_BLOB_OK);
  g_assert_cmpint (blob.wrap, ==, ETA_WRAP_EPOCH);
  g_assert_cmpint (blob.padding, ==, ETA_PADDING_OAEP);
  g_assert_cmpmem (blob.spki, blob.spki_len, fixture->spki, fixture->spki_len);
  g_assert_cmpstr (blob.key_label, ==, "Key label");
  g_assert_cmpstr (blob.token_label, ==, "Token label");
  g_assert_cmpuint (blob.total_len, ==, len);
  g_assert_cmpint (eta_blob_parse (v1, len - 1, &blob), ==, ETA_BLOB_ERROR_TRUNCATED);
  /* A v1 blob called v2 reads its SPKI length one byte late. */
  v1[4] = 2;
  g_assert_cmpint (eta_blob_parse (v1, len, &blob), !=, ETA_BLOB_OK);
}

static void
test_unknown_wrap (Fixture *fixture, gconstpointer data)
{
  EtaBlob blob;

  for (guint wrap = 0; wrap < 256; wrap++)
    {
      fixture->blob[40] = (guint8) wrap;
      if (wrap == ETA_WRAP_EPOCH || wrap == ETA_WRAP_PER_FILE)
        g_assert_cmpint (eta_blob_parse (fixture->blob, fixture->blob_len, &blob), ==,
                         ETA_BLOB_OK);
      else
        g_assert_cmpint (eta_blob_parse_layout (fixture->blob, fixture->blob_len, &blob), ==,
                         ETA_BLOB_ERROR_WRAP);
    }
  g_assert_nonnull (strstr (eta_blob_status_to_string (ETA_BLOB_ERROR_WRAP), "wrap"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("/keymod/blob/roundtrip", test_roundtrip);
  ADD ("/keymod/blob/pkcs1-roundtrip", test_pkcs1_roundtrip);
  ADD ("/keymod/blob/no-secret", test_no_secret_inside);
  ADD ("/keymod/blob/bad-magic", test_bad_magic);
  ADD ("/keymod/blob/wrong-version", test_wrong_version);
  ADD ("/keymod/blob/truncated", test_truncated);
  ADD ("/keymod/blob/stated-length-past-buffer", test_stated_length_past_buffer);
  ADD ("/keymod/blob/oversized", test_oversized);
  ADD ("/keymod/blob/unknown-padding", test_unknown_padding);
  ADD ("/keymod/blob/fingerprint-mismatch", test_fingerprint_mismatch);
  ADD ("/keymod/blob/long-labels", test_long_labels_cut);
  ADD ("/keymod/blob/wrap-roundtrip", test_wrap_roundtrip);
  ADD ("/keymod/blob/version1-still-parses", test_version1_still_parses);
  ADD ("/keymod/blob/unknown-wrap", test_unknown_wrap);
  return g_test_run ();
}

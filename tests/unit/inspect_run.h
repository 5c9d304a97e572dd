/* inspect_run.h: running one inspector in a unit test and reading its
 * result; shared by the test_inspect_*.c files (one per policy/inspect_*.c).
 * Everything here is static inline or marked unused, so a file includes it
 * whole and uses what it needs. */
#ifndef TEST_INSPECT_RUN_H
#define TEST_INSPECT_RUN_H

#include <openssl/evp.h>

#include "tests/unit/inspect_helpers.h"

#define FX "../fixtures/grpc/"

__attribute__((unused)) static const struct bg_backend_facts facts_new = {1, 0, "v0.11.6"};
__attribute__((unused)) static const struct bg_backend_facts facts_old = {1, 1, ""};

typedef int (*inspector)(struct bg_inspect *, const uint8_t *, size_t);

/* Run an inspector over a message; the result must be freed by the caller. */
static inline void run(struct bg_inspect *r, const struct bg_profile *p, int audit, inspector fn, const uint8_t *m,
                       size_t n)
{
  bg_inspect_init(r, p, "ci", audit, &facts_new);
  fn(r, m, n);
}

static inline void run_file(struct bg_inspect *r, const struct bg_profile *p, int audit, inspector fn,
                            const char *file)
{
  size_t n = 0;
  uint8_t *m = fixture_load(file, &n);
  assert_true(n > 0);
  assert_non_null(m);
  run(r, p, audit, fn, m, n);
  free(m);
}

/* The new value a rewrite of |field| set ("(removed)" for a deletion), or
 * NULL when the field was not rewritten. */
static inline const char *rw_new(const struct bg_inspect *r, const char *field)
{
  for (size_t i = 0; i < r->n_rewrites; i++)
    if (strcmp(r->rewrites[i].field, field) == 0)
      return r->rewrites[i].new_value ? r->rewrites[i].new_value : "(removed)";
  return NULL;
}

/* The last value of exporter attr |k| (the one Go's map keeps). */
static inline const char *attr(size_t n, Moby__Buildkit__V1__Exporter__AttrsEntry **v, const char *k)
{
  const char *r = NULL;
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i]->key, k) == 0)
      r = v[i]->value;
  return r;
}

/* "sha256:<hex>" of an LLB op, as Definition.metadata keys it. */
static inline void digest(const ProtobufCBinaryData *d, char out[72])
{
  unsigned char md[32];
  unsigned int l;
  EVP_Digest(d->data, d->len, md, &l, EVP_sha256(), NULL);
  strcpy(out, "sha256:");
  for (int i = 0; i < 32; i++)
    sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

#endif

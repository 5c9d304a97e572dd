/* fixture.h: read a test fixture whole.  Paths are relative to tests/unit,
 * where every unit binary starts whatever directory it is run from
 * (unit_env.c).  A missing or unreadable file stops the whole binary with a
 * non-zero status and the path: a fixture that cannot be read is a broken
 * checkout, and a test group whose setup cannot load it must not end in
 * "PASSED 0 test(s)".  The buffer is NUL-terminated (so text fixtures can be
 * used as strings) and *len, when asked for, excludes that NUL. */
#ifndef BG_TEST_FIXTURE_H
#define BG_TEST_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

static inline void *fixture_load(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "FATAL: cannot open fixture %s (relative to tests/unit)\n", path);
    exit(2);
  }
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  long n = ftell(f);
  assert_true(n >= 0);
  rewind(f);
  char *b = malloc((size_t)n + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  b[n] = '\0';
  if (len)
    *len = (size_t)n;
  return b;
}

#endif

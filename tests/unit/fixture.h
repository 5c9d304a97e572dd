/* fixture.h: read a test fixture whole.  A missing or unreadable file fails
 * the running test.  The buffer is NUL-terminated (so text fixtures can be
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
  if (!f)
    fail_msg("cannot open fixture %s", path);
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

/*
 * test_frontdoor.c: which request headers of a Docker-style POST /session
 * are session headers (forwarded to the backend and shown to the policy).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/gw.h"

static int wanted(const char *s) { return gw_session_header_wanted(s, strlen(s)); }

static void test_session_header_wanted(void **st)
{
  assert_true(wanted("X-Docker-Expose-Session-Uuid"));
  assert_true(wanted("x-docker-expose-session-sharedkey"));
  assert_true(wanted("X-Buildkit-Session-Foo"));
  assert_true(wanted("x-buildkit-session-x"));
  /* a bare prefix names nothing: not forwarded */
  assert_false(wanted("X-Docker-Expose-Session-"));
  assert_false(wanted("X-Buildkit-Session-"));
  assert_false(wanted("X-Buildkit-Session"));
  assert_false(wanted("Authorization"));
  assert_false(wanted("X-Docker-Expose-Sessio"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_session_header_wanted)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

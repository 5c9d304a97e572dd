/*
 * test_dump.c: the view `buildgate check --dump` prints (policy/dump.h), which
 * the differential oracle in tests/oracle compares with BuildKit's reading.
 * A wrong view would make the oracle blind, so its form is pinned here:
 * paths and counts, byte escaping, refusals, uninspected methods, and the
 * rewritten bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/dump.h"
#include "proto/pbwire.h"

static struct bg_policy *pol;

static int setup(void **state)
{
  (void)state;
  pol = bg_dump_policy();
  return pol ? 0 : -1;
}

static int teardown(void **state)
{
  (void)state;
  bg_policy_unref(pol);
  return 0;
}

static void attr(struct bg_pbuf *o, unsigned field, const char *k, const char *v)
{
  struct bg_pbuf e = {0};
  bg_pbuf_bytes(&e, 1, k, strlen(k));
  bg_pbuf_bytes(&e, 2, v, strlen(v));
  bg_pbuf_bytes(o, field, e.b, e.n);
  free(e.b);
}

static char *dump(const char *method, const struct bg_pbuf *o)
{
  char *s = bg_inspect_dump(pol, "oracle", method, o->b ? o->b : (const uint8_t *)"", o->n);
  assert_non_null(s);
  return s;
}

/* Fields the policy reads, as "path": "value", sorted; zero values left out. */
static void test_solve_view(void **state)
{
  (void)state;
  struct bg_pbuf o = {0};
  bg_pbuf_bytes(&o, 5, "s1", 2);
  bg_pbuf_bytes(&o, 6, "a\\b\tc", 5);
  attr(&o, 7, "b", "2");
  attr(&o, 7, "a", "1");
  char *s = dump("/moby.buildkit.v1.Control/Solve", &o);
  /* isolate names the session and adds a ref: the rewritten bytes follow */
  const char *want = "{\"Frontend\":\"a\\\\\\\\b\\\\x09c\",\"FrontendAttrs#\":\"2\",\"FrontendAttrs[a]\":\"1\","
                     "\"FrontendAttrs[b]\":\"2\",\"Session\":\"s1\",\"^rewritten\":\"";
  assert_true(strlen(s) > strlen(want));
  assert_memory_equal(s, want, strlen(want));
  free(s);
  free(o.b);
}

static void test_undecodable_is_refused(void **state)
{
  (void)state;
  struct bg_pbuf o = {0};
  bg_pbuf_bytes(&o, 5, "session", 7);
  o.n -= 3; /* cut inside the string */
  char *s = dump("/moby.buildkit.v1.Control/Solve", &o);
  assert_true(strncmp(s, "{\"refused\":\"3 ", 14) == 0);
  free(s);
  free(o.b);
}

static void test_uninspected_method(void **state)
{
  (void)state;
  struct bg_pbuf o = {0};
  char *s = dump("/moby.buildkit.v1.Control/ListWorkers", &o);
  assert_string_equal(s, "{\"forwarded\":\"not inspected\"}");
  free(s);
}

/* Under the oracle policy (isolate on) a Status ref is namespaced: the view
 * shows the ref as sent and the bytes forwarded instead. */
static void test_rewrite_carried(void **state)
{
  (void)state;
  struct bg_pbuf o = {0};
  bg_pbuf_bytes(&o, 1, "r1", 2);
  char *s = dump("/moby.buildkit.v1.Control/Status", &o);
  /* 0a 09 "oracle.r1" */
  assert_non_null(strstr(s, "\"^rewritten\":\"0a096f7261636c652e7231\""));
  assert_non_null(strstr(s, "\"Ref\":\"r1\""));
  free(s);
  free(o.b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_solve_view),
      cmocka_unit_test(test_undecodable_is_refused),
      cmocka_unit_test(test_uninspected_method),
      cmocka_unit_test(test_rewrite_carried),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

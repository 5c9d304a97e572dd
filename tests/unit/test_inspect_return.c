/* test_inspect_return.c
 *
 * Tests of policy/inspect_return.c: LLBBridge.Return result metadata the exporter
 * reads, checked like exporter attrs.
 * (moved from test_inspect.c unchanged). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/inspect_run.h"

static void test_bridge_exporter_attr(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  p.frontend_attrs.set.n = 0;
  Moby__Buildkit__V1__Frontend__SolveRequest q = MOBY__BUILDKIT__V1__FRONTEND__SOLVE_REQUEST__INIT;
  const char *js = "{\"containerimage.config\":\"e30=\"}";
  q.exporterattr.data = (uint8_t *)js;
  q.exporterattr.len = strlen(js);
  q.final = 1;
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run(&r, &p, 0, bg_inspect_bridge_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  assert_null(r.out);
  bg_inspect_free(&r);
  free(m);
  js = "{\"name\":\"ZXZpbC5leGFtcGxlL3g=\"}";
  q.exporterattr.data = (uint8_t *)js;
  q.exporterattr.len = strlen(js);
  m = pack_any(&q.base, &n);
  run(&r, &p, 0, bg_inspect_bridge_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "exporter_attrs");
  bg_inspect_free(&r);
  free(m);
  js = "not json";
  q.exporterattr.data = (uint8_t *)js;
  q.exporterattr.len = strlen(js);
  m = pack_any(&q.base, &n);
  run(&r, &p, 0, bg_inspect_bridge_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  bg_inspect_free(&r);
  free(m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bridge_exporter_attr),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

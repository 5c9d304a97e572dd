/* test_inspect_isolate.c
 *
 * Tests of policy/inspect_isolate.c: tenant namespacing of Status and build-history
 * refs (requests wrapped, events unwrapped or dropped), and the InfoResponse
 * version reader.
 * (moved from test_inspect.c unchanged). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/inspect_run.h"

static void test_isolate_status_and_history(void **st)
{
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  p.isolate = 1;
  struct bg_inspect r;
  run_file(&r, &p, 0, bg_isolate_status_request, FX "control-status-req.bin");
  assert_int_equal(r.grpc_status, 0);
  Moby__Buildkit__V1__StatusRequest *s = moby__buildkit__v1__status_request__unpack(NULL, r.outlen, r.out);
  assert_non_null(s);
  assert_string_equal(s->ref, "ci.l0vjzlvvm6xjj1g6braqzt6d3");
  moby__buildkit__v1__status_request__free_unpacked(s, NULL);
  bg_inspect_free(&r);
  p.isolate = 0;
  run_file(&r, &p, 0, bg_isolate_status_request, FX "control-status-req.bin");
  assert_null(r.out);
  bg_inspect_free(&r);
  p.isolate = 1;

  Moby__Buildkit__V1__UpdateBuildHistoryRequest u = MOBY__BUILDKIT__V1__UPDATE_BUILD_HISTORY_REQUEST__INIT;
  u.ref = "abc";
  u.delete_ = 1;
  size_t n = 0;
  uint8_t *m = pack_any(&u.base, &n);
  run(&r, &p, 0, bg_isolate_update_build_history, m, n);
  Moby__Buildkit__V1__UpdateBuildHistoryRequest *uo =
      moby__buildkit__v1__update_build_history_request__unpack(NULL, r.outlen, r.out);
  assert_string_equal(uo->ref, "ci.abc");
  assert_true(uo->delete_);
  moby__buildkit__v1__update_build_history_request__free_unpacked(uo, NULL);
  bg_inspect_free(&r);
  free(m);

  Moby__Buildkit__V1__BuildHistoryRequest h = MOBY__BUILDKIT__V1__BUILD_HISTORY_REQUEST__INIT;
  h.activeonly = 1;
  m = pack_any(&h.base, &n);
  run(&r, &p, 0, bg_isolate_build_history_request, m, n);
  assert_null(r.out); /* empty Ref: listing, filtered on the way out */
  bg_inspect_free(&r);
  free(m);

  Moby__Buildkit__V1__BuildHistoryEvent ev = MOBY__BUILDKIT__V1__BUILD_HISTORY_EVENT__INIT;
  Moby__Buildkit__V1__BuildHistoryRecord rec = MOBY__BUILDKIT__V1__BUILD_HISTORY_RECORD__INIT;
  ev.record = &rec;
  rec.ref = "ci.abc";
  m = pack_any(&ev.base, &n);
  uint8_t *m2 = malloc(n + 3);
  memcpy(m2, m, n);
  memcpy(m2 + n, "\x28\x01", 2); /* unknown field 5 */
  run(&r, &p, 0, bg_isolate_build_history_event, m2, n + 2);
  assert_false(r.drop);
  Moby__Buildkit__V1__BuildHistoryEvent *eo = moby__buildkit__v1__build_history_event__unpack(NULL, r.outlen, r.out);
  assert_string_equal(eo->record->ref, "abc");
  assert_int_equal(eo->base.n_unknown_fields, 1);
  moby__buildkit__v1__build_history_event__free_unpacked(eo, NULL);
  bg_inspect_free(&r);
  free(m);
  free(m2);
  rec.ref = "other.abc";
  m = pack_any(&ev.base, &n);
  run(&r, &p, 0, bg_isolate_build_history_event, m, n);
  assert_true(r.drop);
  bg_inspect_free(&r);
  free(m);

  char *w = bg_isolate_wrap(&p, "ci", "uuid1");
  assert_string_equal(w, "ci.uuid1");
  char *u2 = bg_isolate_unwrap(&p, "ci", w);
  assert_string_equal(u2, "uuid1");
  assert_null(bg_isolate_unwrap(&p, "other", w));
  free(w);
  free(u2);
}

static void test_info_version(void **st)
{
  size_t n = 0;
  uint8_t *m = fixture_load(FX "control-info-resp.bin", &n);
  char v[64];
  assert_int_equal(bg_inspect_info_version(m, n, v, sizeof v), 0);
  assert_string_equal(v, "0.0.0+unknown");
  free(m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_isolate_status_and_history),
      cmocka_unit_test(test_info_version),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

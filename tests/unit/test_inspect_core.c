/* test_inspect_core.c
 *
 * Tests of policy/inspect_core.c: validation before decoding: garbage and deep
 * nesting are refused as undecodable, never decoded by recursion.
 * (moved from test_inspect.c unchanged). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/inspect_run.h"

/* ---- decode errors ------------------------------------------------------------------------------------ */

static void test_garbage_invalid_argument(void **st)
{
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02};
  inspector fns[] = {bg_inspect_control_solve, bg_inspect_bridge_solve, bg_inspect_new_container,
                     bg_inspect_exec_process, bg_isolate_status_request, bg_isolate_build_history_event};
  for (size_t i = 0; i < sizeof fns / sizeof *fns; i++) {
    struct bg_inspect r;
    run(&r, &p, 1 /* even in audit mode */, fns[i], garbage, sizeof garbage);
    assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
    assert_string_equal(r.rule, "decode");
    assert_null(r.out);
    bg_inspect_free(&r);
  }
  /* truncated capture */
  size_t n = 0;
  uint8_t *m = fixture_load(FX "control-solve-image-push.bin", &n);
  struct bg_inspect r;
  run(&r, &p, 0, bg_inspect_control_solve, m, n - 3);
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  bg_inspect_free(&r);
  run(&r, &p, 0, bg_inspect_bridge_solve, m, n); /* wrong message type for the method */
  assert_int_not_equal(r.grpc_status, 0);
  bg_inspect_free(&r);
  free(m);
  /* field number 0 (over-long tag): protobuf-c keeps it, but could not
   * re-encode it validly; a message we must rewrite is refused */
  static const uint8_t tag0[] = {0x80, 0x00, 0x00, 0x2a, 0x01, 's'};
  struct bg_profile iso;
  PROF_PERMISSIVE(iso);
  iso.isolate = 1;
  run(&r, &iso, 0, bg_inspect_control_solve, tag0, sizeof tag0);
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  assert_null(r.out);
  bg_inspect_free(&r);
  /* empty message is a valid (empty) SolveRequest */
  run(&r, &p, 0, bg_inspect_control_solve, (const uint8_t *)"", 0);
  assert_int_equal(r.grpc_status, 0);
  bg_inspect_free(&r);
}

/* Definition.Source (3) -> infos (2) -> definition (3) -> ... is recursive;
 * the validator bounds the depth before protobuf-c (which recurses on the C
 * stack) sees it. */
static void test_deep_nesting_no_recursion(void **st)
{
  size_t cap = 8u << 20, n = 0;
  uint8_t *b = malloc(cap);
  /* build from the inside out at the end of the buffer */
  size_t pos = cap;
  static const uint8_t tags[] = {0x1a /* Definition.Source */, 0x12 /* Source.infos */, 0x1a /* SourceInfo.definition */};
  for (int lvl = 0; lvl < 300000; lvl++) {
    size_t inner = cap - pos;
    uint8_t v[10];
    int k = 0;
    for (size_t x = inner;; x >>= 7) {
      v[k++] = (uint8_t)((x & 0x7f) | (x > 0x7f ? 0x80 : 0));
      if (x <= 0x7f)
        break;
    }
    pos -= (size_t)k;
    memcpy(b + pos, v, (size_t)k);
    b[--pos] = tags[lvl % 3];
  }
  /* wrap: SolveRequest.Definition (2) = <Definition bytes starting at Source tag> */
  size_t inner = cap - pos;
  uint8_t *m = malloc(inner + 16);
  m[n++] = 0x12;
  for (size_t x = inner;; x >>= 7) {
    m[n++] = (uint8_t)((x & 0x7f) | (x > 0x7f ? 0x80 : 0));
    if (x <= 0x7f)
      break;
  }
  memcpy(m + n, b + pos, inner);
  n += inner;
  free(b);
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  struct bg_inspect r;
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  assert_string_equal(r.rule, "decode");
  assert_non_null(strstr(r.reason, "nested more than 32 deep"));
  assert_null(r.out);
  bg_inspect_free(&r);
  free(m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_garbage_invalid_argument),
      cmocka_unit_test(test_deep_nesting_no_recursion),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

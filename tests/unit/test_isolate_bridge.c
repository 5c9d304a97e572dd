/*
 * test_isolate_bridge.c: policy/isolate_bridge.c run as the inspectors they
 * are (struct bg_inspect in, verdict out), without a call around them: the
 * session names in LLBBridge.ResolveImageConfig / ResolveSourceMeta bodies
 * are wrapped, the rewrites listed, other bytes kept; audit mode lists
 * without rewriting; a message the schema refuses is undecodable.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/inspect_run.h"

/* ResolveImageConfigRequest{Ref 1 "alpine", SessionID 6 "sess", StoreID 7 "st", unknown field 99 = 1} */
static const uint8_t ric[] = {0x0a, 0x06, 'a', 'l', 'p', 'i', 'n', 'e', 0x32, 0x04, 's', 'e', 's', 's',
                              0x3a, 0x02, 's', 't', 0x98, 0x06, 0x01};
/* the same with SessionID "ci.sess": field 99 and the order survive */
static const uint8_t ric_want[] = {0x0a, 0x06, 'a', 'l', 'p', 'i', 'n', 'e', 0x32, 0x07, 'c', 'i', '.', 's', 'e',
                                   's', 's', 0x3a, 0x02, 's', 't', 0x98, 0x06, 0x01};

static void test_image_config_session_wrapped(void **st)
{
  (void)st;
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  p.isolate = 1;
  struct bg_inspect r;
  run(&r, &p, 0, bg_isolate_resolve_image_config, ric, sizeof ric);
  assert_int_equal(r.grpc_status, 0);
  assert_string_equal(r.rule, "isolate");
  assert_string_equal(r.reason, "tenant namespacing of session names");
  assert_int_equal(r.n_rewrites, 1);
  assert_string_equal(r.rewrites[0].field, "SessionID");
  assert_string_equal(r.rewrites[0].old_value, "sess");
  assert_string_equal(r.rewrites[0].new_value, "ci.sess");
  assert_int_equal(r.outlen, sizeof ric_want);
  assert_memory_equal(r.out, ric_want, sizeof ric_want);
  bg_inspect_free(&r);

  /* audit mode: the rewrite is listed, the message is not replaced */
  run(&r, &p, 1, bg_isolate_resolve_image_config, ric, sizeof ric);
  assert_int_equal(r.grpc_status, 0);
  assert_int_equal(r.would_deny, 0);
  assert_int_equal(r.n_rewrites, 1);
  assert_null(r.out);
  bg_inspect_free(&r);

  /* no SessionID (only Ref): nothing to do, nothing reported */
  run(&r, &p, 0, bg_isolate_resolve_image_config, ric, 8);
  assert_int_equal(r.grpc_status, 0);
  assert_int_equal(r.n_rewrites, 0);
  assert_null(r.out);
  assert_string_equal(r.rule, "");
  bg_inspect_free(&r);
}

static void test_source_meta_session_attr_wrapped(void **st)
{
  (void)st;
  /* ResolveSourceMetaRequest{Op 1 = SourceOp{identifier "oci:x", attrs{oci.session: s1}, attrs{x: y}}, LogName 3 "L"} */
  static const uint8_t rsm[] = {0x0a, 0x22, 0x0a, 0x05, 'o', 'c', 'i', ':', 'x', 0x12, 0x11, 0x0a, 0x0b, 'o', 'c',
                                'i', '.', 's', 'e', 's', 's', 'i', 'o', 'n', 0x12, 0x02, 's', '1', 0x12, 0x06, 0x0a,
                                0x01, 'x', 0x12, 0x01, 'y', 0x1a, 0x01, 'L'};
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  p.isolate = 1;
  struct bg_inspect r;
  run(&r, &p, 0, bg_isolate_resolve_source_meta, rsm, sizeof rsm);
  assert_int_equal(r.grpc_status, 0);
  assert_int_equal(r.n_rewrites, 1);
  assert_string_equal(r.rewrites[0].field, "Op.attrs[oci.session]");
  assert_string_equal(r.rewrites[0].old_value, "s1");
  assert_string_equal(r.rewrites[0].new_value, "ci.s1");
  assert_non_null(r.out);
  Moby__Buildkit__V1__Frontend__ResolveSourceMetaRequest *o =
      moby__buildkit__v1__frontend__resolve_source_meta_request__unpack(NULL, r.outlen, r.out);
  assert_non_null(o);
  assert_string_equal(o->source->identifier, "oci:x");
  assert_int_equal(o->source->n_attrs, 2);
  assert_string_equal(o->logname, "L");
  moby__buildkit__v1__frontend__resolve_source_meta_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);
}

static void test_undecodable(void **st)
{
  (void)st;
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  p.isolate = 1;
  struct bg_inspect r;
  /* cut inside SessionID */
  run(&r, &p, 0, bg_isolate_resolve_image_config, ric, 11);
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  assert_string_equal(r.rule, "decode");
  assert_true(r.reason[0] != 0);
  assert_null(r.out);
  bg_inspect_free(&r);
  /* audit mode: recorded as what enforce mode would refuse */
  run(&r, &p, 1, bg_isolate_resolve_image_config, ric, 11);
  assert_int_equal(r.grpc_status, 0);
  assert_int_equal(r.would_deny, 1);
  assert_int_equal(r.would_status, BG_GRPC_INVALID_ARGUMENT);
  assert_string_equal(r.rule, "decode");
  bg_inspect_free(&r);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_image_config_session_wrapped),
      cmocka_unit_test(test_source_meta_session_attr_wrapped),
      cmocka_unit_test(test_undecodable),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

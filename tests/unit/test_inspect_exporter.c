/* test_inspect_exporter.c
 *
 * Tests of policy/inspect_exporter.c: exporter rules: name prefixes and their escapes,
 * push, attrs in both request forms, the session exporter, deny lists.
 * (moved from test_inspect.c unchanged). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/inspect_run.h"

/* ---- exporters -------------------------------------------------------------------- */

static void test_exporter_name_prefix_rewrite(void **st)
{
  /* buildx remote driver: -o type=image,name=app:1,push=false, --network none */
  struct bg_profile p;
  PROF_BUILDER(p);
  p.frontend_attrs.deny = SL("add-hosts"); /* force-network-mode=none is sent by buildx */
  size_t n = 0;
  uint8_t *m = fixture_load(FX "control-solve-buildx-image.bin", &n);
  /* append an unknown field (99, varint 7) and CompatibilityVersion-like 16 */
  uint8_t *m2 = malloc(n + 6);
  memcpy(m2, m, n);
  memcpy(m2 + n, "\x98\x06\x07\x80\x01\x05", 6);
  struct bg_inspect r;
  /* a restricted profile refuses fields of the request it cannot judge ... */
  run(&r, &p, 0, bg_inspect_control_solve, m2, n + 6);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "unknown_field");
  assert_non_null(strstr(r.reason, "field 99 of moby.buildkit.v1.SolveRequest"));
  bg_inspect_free(&r);
  /* ... and with llb.unknown "allow" they survive the rewrite */
  p.llb_unknown_allow = 1;
  run(&r, &p, 0, bg_inspect_control_solve, m2, n + 6);
  assert_int_equal(r.grpc_status, 0);
  assert_non_null(r.out);
  assert_string_equal(rw_new(&r, "ExporterAttrsDeprecated[name]"), "registry.example.com/ci/app:1");
  assert_string_equal(rw_new(&r, "FrontendAttrs[attest:provenance]"), "mode=min");
  assert_string_equal(rw_new(&r, "Ref"), "ci.pkp583ho1bp6b0ri265csqnnt");
  assert_string_equal(rw_new(&r, "Session"), "ci.0myto83mp4cxm24drmxor4uzw");
  Moby__Buildkit__V1__SolveRequest *q = moby__buildkit__v1__solve_request__unpack(NULL, r.outlen, r.out);
  assert_non_null(q);
  assert_string_equal(q->exporterdeprecated, "image");
  assert_string_equal(attr(q->n_exporterattrsdeprecated, (void *)q->exporterattrsdeprecated, "name"),
                      "registry.example.com/ci/app:1");
  assert_string_equal(attr(q->n_exporterattrsdeprecated, (void *)q->exporterattrsdeprecated, "push"), "false");
  assert_string_equal(q->ref, "ci.pkp583ho1bp6b0ri265csqnnt");
  assert_string_equal(q->session, "ci.0myto83mp4cxm24drmxor4uzw");
  assert_int_equal(q->n_exporters, 0); /* 13 stays empty: old daemons read 3/4 */
  assert_int_equal(q->base.n_unknown_fields, 2);
  assert_int_equal(q->base.unknown_fields[0].tag, 99);
  assert_int_equal(q->base.unknown_fields[1].tag, 16);
  moby__buildkit__v1__solve_request__free_unpacked(q, NULL);
  bg_inspect_free(&r);

  /* a second pass over the rewritten name is stable (already prefixed) */
  free(m);
  free(m2);
}

static void test_exporter_push_and_escape(void **st)
{
  /* buildctl: name=localhost:5999/app:1,push=true,registry.insecure=true */
  struct bg_profile p;
  PROF_BUILDER(p);
  struct bg_inspect r;
  run_file(&r, &p, 0, bg_inspect_control_solve, FX "control-solve-image-push.bin");
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "exporter_name");
  assert_non_null(strstr(r.reason, "localhost:5999/app:1"));
  bg_inspect_free(&r);

  /* no prefix, no forced push=false: push to localhost:5999 needs a grant */
  struct bg_exporter_rule img = {0};
  img.type = "image";
  img.attrs.push_registries = SL("registry.example.com");
  p.exporters = &img;
  p.n_exporters = 1;
  run_file(&r, &p, 0, bg_inspect_control_solve, FX "control-solve-image-push.bin");
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "exporter_push");
  assert_non_null(strstr(r.reason, "localhost:5999"));
  bg_inspect_free(&r);

  img.attrs.push_registries = SL("localhost:*");
  run_file(&r, &p, 0, bg_inspect_control_solve, FX "control-solve-image-push.bin");
  assert_int_equal(r.grpc_status, 0);
  bg_inspect_free(&r);
  img.attrs.push_registries = SL("none");
  img.attrs.push_any = 1;
  run_file(&r, &p, 0, bg_inspect_control_solve, FX "control-solve-image-push.bin");
  assert_int_equal(r.grpc_status, 0);
  bg_inspect_free(&r);

  /* exporter type not in the profile */
  img.type = "oci";
  run_file(&r, &p, 0, bg_inspect_control_solve, FX "control-solve-image-push.bin");
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "exporters");
  assert_non_null(strstr(r.reason, "\"image\""));
  bg_inspect_free(&r);
}

static void test_exporter_name_rules(void **st)
{
  const char *why;
  const char *pre = "registry.example.com/ci/";
  char *s;
  s = bg_exporter_prefix_name("app:1", pre, &why);
  assert_string_equal(s, "registry.example.com/ci/app:1");
  free(s);
  s = bg_exporter_prefix_name("registry.example.com/ci/app:1", pre, &why);
  assert_string_equal(s, "registry.example.com/ci/app:1");
  free(s);
  s = bg_exporter_prefix_name("team/app", pre, &why);
  assert_string_equal(s, "registry.example.com/ci/team/app");
  free(s);
  assert_null(bg_exporter_prefix_name("registry.example.com/other/app", pre, &why));
  assert_null(bg_exporter_prefix_name("evil.example/app", pre, &why));
  assert_null(bg_exporter_prefix_name("localhost/app", pre, &why));
  assert_null(bg_exporter_prefix_name("../x", pre, &why));
  assert_null(bg_exporter_prefix_name("a/../../x", pre, &why));
  assert_null(bg_exporter_prefix_name("/abs", pre, &why));
  assert_null(bg_exporter_prefix_name("a//b", pre, &why));
  assert_null(bg_exporter_prefix_name("a b", pre, &why));
  assert_null(bg_exporter_prefix_name("registry.example.com/ci/../x", pre, &why));
  s = bg_exporter_prefix_name("app@sha256:abc", "ci/", &why);
  assert_string_equal(s, "ci/app@sha256:abc");
  free(s);
  char host[64];
  bg_ref_registry("app:1", host, sizeof host);
  assert_string_equal(host, "docker.io");
  bg_ref_registry("localhost:5000/app", host, sizeof host);
  assert_string_equal(host, "localhost:5000");
}

static void test_exporters_13_and_3_4_consistent(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Moby__Buildkit__V1__Exporter e0 = MOBY__BUILDKIT__V1__EXPORTER__INIT, e1 = MOBY__BUILDKIT__V1__EXPORTER__INIT;
  Moby__Buildkit__V1__Exporter__AttrsEntry a0 = MOBY__BUILDKIT__V1__EXPORTER__ATTRS_ENTRY__INIT,
                                           a1 = MOBY__BUILDKIT__V1__EXPORTER__ATTRS_ENTRY__INIT,
                                           a2 = MOBY__BUILDKIT__V1__EXPORTER__ATTRS_ENTRY__INIT;
  a0.key = "name";
  a0.value = "app:1, tools/app:2";
  a1.key = "push";
  a1.value = "true";
  a2.key = "unpack";
  a2.value = "true";
  Moby__Buildkit__V1__Exporter__AttrsEntry *as[] = {&a0, &a1, &a2};
  e0.type = "image";
  e0.attrs = as;
  e0.n_attrs = 3;
  e1.type = "local";
  Moby__Buildkit__V1__Exporter *es[] = {&e0, &e1};
  q.exporters = es;
  q.n_exporters = 2;
  /* 3/4 disagree with 13: an old daemon would export locally */
  q.exporterdeprecated = "local";
  q.ref = "r";
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  assert_non_null(r.out);
  Moby__Buildkit__V1__SolveRequest *o = moby__buildkit__v1__solve_request__unpack(NULL, r.outlen, r.out);
  assert_non_null(o);
  assert_int_equal(o->n_exporters, 2);
  Moby__Buildkit__V1__Exporter *x = o->exporters[0];
  assert_string_equal(x->type, "image");
  assert_string_equal(attr(x->n_attrs, x->attrs, "name"),
                      "registry.example.com/ci/app:1,registry.example.com/ci/tools/app:2");
  assert_string_equal(attr(x->n_attrs, x->attrs, "push"), "false");
  assert_null(attr(x->n_attrs, x->attrs, "unpack"));
  assert_string_equal(o->exporterdeprecated, "image");
  assert_int_equal(o->n_exporterattrsdeprecated, x->n_attrs);
  for (size_t i = 0; i < x->n_attrs; i++)
    assert_string_equal(attr(o->n_exporterattrsdeprecated, (void *)o->exporterattrsdeprecated, x->attrs[i]->key),
                        x->attrs[i]->value);
  moby__buildkit__v1__solve_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);

  /* second exporter type not allowed */
  e1.type = "docker";
  free(m);
  m = pack_any(&q.base, &n);
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "exporters");
  assert_non_null(strstr(r.reason, "Exporters[1]"));
  bg_inspect_free(&r);
  free(m);
}

static void test_session_exporter(void **st)
{
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  q.enablesessionexporter = 1;
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_profile p;
  PROF_BUILDER(p);
  p.isolate = 0;
  struct bg_inspect r;
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "session_exporter");
  bg_inspect_free(&r);
  p.session_exporter = 1;
  p.frontend_attrs.set.n = 0;
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  assert_null(r.out);
  bg_inspect_free(&r);
  free(m);
}

static void test_local_exporter_unchanged(void **st)
{
  /* buildctl dockerfile + local exporter: allowed; isolate off => untouched */
  struct bg_profile p;
  PROF_BUILDER(p);
  p.isolate = 0;
  p.frontend_attrs.set.n = 0;
  struct bg_inspect r;
  run_file(&r, &p, 0, bg_inspect_control_solve, FX "control-solve-dockerfile-local.bin");
  assert_int_equal(r.grpc_status, 0);
  assert_null(r.out);
  assert_int_equal(r.n_rewrites, 0);
  assert_string_equal(r.exporters.v[0], "local");
  bg_inspect_free(&r);
  p.exporters = NULL;
  p.n_exporters = 0;
  run_file(&r, &p, 0, bg_inspect_control_solve, FX "control-solve-dockerfile-local.bin");
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "exporters");
  bg_inspect_free(&r);
}

static void test_exporter_deny_and_moby_prefix(void **st)
{
  /* buildx -o type=image,name=app:1 on a moby driver becomes type moby */
  struct bg_profile p;
  PROF_BUILDER(p);
  p.isolate = 0;
  p.frontend_attrs.set.n = 0;
  p.frontend_attrs.deny.n = 0;
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Moby__Buildkit__V1__SolveRequest__ExporterAttrsDeprecatedEntry a =
      MOBY__BUILDKIT__V1__SOLVE_REQUEST__EXPORTER_ATTRS_DEPRECATED_ENTRY__INIT;
  Moby__Buildkit__V1__SolveRequest__ExporterAttrsDeprecatedEntry *as[] = {&a};
  a.key = "name";
  a.value = "app:1,ci/app:2";
  q.exporterdeprecated = "moby";
  q.exporterattrsdeprecated = as;
  q.n_exporterattrsdeprecated = 1;
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  assert_string_equal(rw_new(&r, "ExporterAttrsDeprecated[name]"), "ci/app:1,ci/app:2");
  Moby__Buildkit__V1__SolveRequest *o = moby__buildkit__v1__solve_request__unpack(NULL, r.outlen, r.out);
  assert_string_equal(o->exporterattrsdeprecated[0]->value, "ci/app:1,ci/app:2");
  assert_int_equal(o->n_exporters, 0);
  moby__buildkit__v1__solve_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);
  /* deny key on the exporter */
  p.exporters[1].attrs.deny = SL("store");
  a.key = "store";
  a.value = "true";
  free(m);
  m = pack_any(&q.base, &n);
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "exporter_attrs");
  assert_non_null(strstr(r.reason, "store"));
  bg_inspect_free(&r);
  p.exporters[1].attrs.deny.n = 0;
  free(m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exporter_name_prefix_rewrite),
      cmocka_unit_test(test_exporter_push_and_escape),
      cmocka_unit_test(test_exporter_name_rules),
      cmocka_unit_test(test_exporters_13_and_3_4_consistent),
      cmocka_unit_test(test_session_exporter),
      cmocka_unit_test(test_local_exporter_unchanged),
      cmocka_unit_test(test_exporter_deny_and_moby_prefix),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

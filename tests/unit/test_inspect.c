/* test_inspect.c: message inspectors fed with captured client bytes and with
 * synthetic messages built from the generated structs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "tests/unit/inspect_helpers.h"

#define FX "../fixtures/grpc/"

static const struct bg_backend_facts facts_new = {1, 0, "v0.11.6"};
static const struct bg_backend_facts facts_old = {1, 1, ""};

typedef int (*inspector)(struct bg_inspect *, const uint8_t *, size_t);

/* Run an inspector over a message; the result must be freed by the caller. */
static void run(struct bg_inspect *r, const struct bg_profile *p, int audit, inspector fn, const uint8_t *m,
                size_t n)
{
  bg_inspect_init(r, p, "ci", audit, &facts_new);
  fn(r, m, n);
}

static void run_file(struct bg_inspect *r, const struct bg_profile *p, int audit, inspector fn, const char *file)
{
  size_t n = 0;
  uint8_t *m = fixture_load(file, &n);
  assert_true(n > 0);
  assert_non_null(m);
  run(r, p, audit, fn, m, n);
  free(m);
}

static const char *rw_new(const struct bg_inspect *r, const char *field)
{
  for (size_t i = 0; i < r->n_rewrites; i++)
    if (strcmp(r->rewrites[i].field, field) == 0)
      return r->rewrites[i].new_value ? r->rewrites[i].new_value : "(removed)";
  return NULL;
}

static const char *attr(size_t n, Moby__Buildkit__V1__Exporter__AttrsEntry **v, const char *k)
{
  const char *r = NULL;
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i]->key, k) == 0)
      r = v[i]->value;
  return r;
}

/* ---- entitlements -------------------------------------------------------------- */

static void test_entitlements_allowed_permissive(void **st)
{
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  struct bg_inspect r;
  run_file(&r, &p, 0, bg_inspect_control_solve, FX "control-solve-entitlement-host-insecure.bin");
  assert_int_equal(r.grpc_status, 0);
  assert_null(r.out); /* nothing to change: forwarded byte-identical */
  assert_int_equal(r.entitlements.n, 2);
  assert_string_equal(r.ref, "l0vjzlvvm6xjj1g6braqzt6d3");
  bg_inspect_free(&r);
}

static void test_entitlements_denied(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  struct bg_inspect r;
  run_file(&r, &p, 0, bg_inspect_control_solve, FX "control-solve-entitlement-host-insecure.bin");
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "entitlements");
  assert_string_equal(r.reason, "entitlement network.host is not granted to tenant ci (profile builder)");
  assert_null(r.out);
  bg_inspect_free(&r);

  /* network.host granted, security.insecure still not */
  p.entitlements = SL("network.host");
  run_file(&r, &p, 0, bg_inspect_control_solve, FX "control-solve-entitlement-host-insecure.bin");
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(r.reason, "security.insecure"));
  bg_inspect_free(&r);

  /* both granted: now the frontend attr force-network-mode is the problem */
  p.entitlements = SL("network.*", "security.insecure");
  run_file(&r, &p, 0, bg_inspect_control_solve, FX "control-solve-entitlement-host-insecure.bin");
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "frontend_attrs");
  assert_non_null(strstr(r.reason, "force-network-mode"));
  bg_inspect_free(&r);
}

static void test_entitlements_device_forms(void **st)
{
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  p.entitlements = SL("device=nvidia.com/gpu=*");
  assert_true(bg_entitlement_granted(&p, "device=nvidia.com/gpu=0,alias=gpu"));
  assert_false(bg_entitlement_granted(&p, "device=vendor.com/fpga=0"));
  assert_false(bg_entitlement_granted(&p, "device"));
  assert_false(bg_entitlement_granted(&p, "network.host"));
  p.entitlements = SL("device");
  assert_true(bg_entitlement_granted(&p, "device=vendor.com/fpga=0"));
  assert_true(bg_entitlement_granted(&p, "device"));
  p.entitlements = SL("*");
  assert_true(bg_entitlement_granted(&p, "security.insecure"));

  /* in a request */
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  char *ents[] = {"device=vendor.com/fpga=0"};
  q.entitlements = ents;
  q.n_entitlements = 1;
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  p.entitlements = SL("device=nvidia.com/*");
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(r.reason, "device=vendor.com/fpga=0"));
  bg_inspect_free(&r);
  free(m);
}

static void test_audit_only(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  struct bg_inspect r;
  run_file(&r, &p, 1, bg_inspect_control_solve, FX "control-solve-entitlement-host-insecure.bin");
  assert_int_equal(r.grpc_status, 0);
  assert_true(r.would_deny);
  assert_int_equal(r.would_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "entitlements");
  assert_null(r.out);
  /* the isolate rewrites are still listed */
  assert_non_null(rw_new(&r, "Ref"));
  bg_inspect_free(&r);
}

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

/* ---- cache ---------------------------------------------------------------------------- */

static void test_cache_types(void **st)
{
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  p.cache_any = 0;
  p.cache_import = SL("local");
  p.cache_export = SL("inline");
  struct bg_inspect r;
  /* registry import is in Cache.Imports and in FrontendAttrs[cache-imports] */
  run_file(&r, &p, 0, bg_inspect_control_solve, FX "control-solve-image-push.bin");
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "cache_import");
  assert_non_null(strstr(r.reason, "registry"));
  bg_inspect_free(&r);
  run_file(&r, &p, 0, bg_inspect_bridge_solve, FX "bridge-solve-image-push-cache-imports.bin");
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "cache_import");
  assert_non_null(strstr(r.reason, "FrontendOpt[cache-imports]"));
  bg_inspect_free(&r);
  p.cache_import = SL("registry");
  run_file(&r, &p, 0, bg_inspect_control_solve, FX "control-solve-image-push.bin");
  assert_int_equal(r.grpc_status, 0);
  assert_null(r.out);
  bg_inspect_free(&r);
  p.cache_export = SL("local");
  run_file(&r, &p, 0, bg_inspect_control_solve, FX "control-solve-image-push.bin");
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "cache_export");
  assert_non_null(strstr(r.reason, "inline"));
  bg_inspect_free(&r);

  /* deprecated fields count as registry */
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Moby__Buildkit__V1__CacheOptions co = MOBY__BUILDKIT__V1__CACHE_OPTIONS__INIT;
  co.exportrefdeprecated = "example.com/cache";
  q.cache = &co;
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  p.cache_export = SL("inline");
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "cache_export");
  assert_non_null(strstr(r.reason, "ExportRefDeprecated"));
  bg_inspect_free(&r);
  free(m);
  char *imps[] = {"example.com/cache"};
  co.exportrefdeprecated = "";
  co.importrefsdeprecated = imps;
  co.n_importrefsdeprecated = 1;
  p.cache_import = SL("local");
  m = pack_any(&q.base, &n);
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "cache_import");
  bg_inspect_free(&r);
  free(m);
}

/* ---- frontends ----------------------------------------------------------------------------- */

static void test_bridge_frontend(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  struct bg_inspect r;
  /* buildx sends force-network-mode=none: denied by the builder profile */
  run_file(&r, &p, 0, bg_inspect_bridge_solve, FX "bridge-solve-buildx-image-network-none.bin");
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "frontend_attrs");
  assert_string_equal(r.reason,
                      "FrontendOpt: attribute force-network-mode is denied for tenant ci (profile builder)");
  bg_inspect_free(&r);

  /* force-network-mode=none asks for no power: the catalogue lets it through */
  p.frontend_attrs.deny = SL("add-hosts");
  p.frontend_attrs.del = SL("filename");
  run_file(&r, &p, 0, bg_inspect_bridge_solve, FX "bridge-solve-buildx-image-network-none.bin");
  assert_int_equal(r.grpc_status, 0);
  assert_non_null(r.out);
  assert_string_equal(r.frontend, "dockerfile.v0");
  assert_string_equal(rw_new(&r, "FrontendOpt[filename]"), "(removed)");
  assert_string_equal(rw_new(&r, "FrontendOpt[attest:provenance]"), "mode=min");
  /* isolate: local images of other tenants are out of reach only from the registry */
  assert_string_equal(rw_new(&r, "FrontendOpt[image-resolve-mode]"), "pull");
  Moby__Buildkit__V1__Frontend__SolveRequest *o =
      moby__buildkit__v1__frontend__solve_request__unpack(NULL, r.outlen, r.out);
  assert_non_null(o);
  /* force-network-mode=none (llb.network allows none), attest:provenance set, image-resolve-mode=pull (isolate),
   * and the dockerfile cache-mount namespace forced to the tenant's */
  assert_int_equal(o->n_frontendopt, 4);
  int saw = 0;
  for (size_t i = 0; i < o->n_frontendopt; i++) {
    assert_string_not_equal(o->frontendopt[i]->key, "filename");
    if (!strcmp(o->frontendopt[i]->key, "attest:provenance"))
      assert_string_equal(o->frontendopt[i]->value, "mode=min"), saw++;
    if (!strcmp(o->frontendopt[i]->key, "build-arg:BUILDKIT_CACHE_MOUNT_NS"))
      assert_string_equal(o->frontendopt[i]->value, "ci."), saw++;
    if (!strcmp(o->frontendopt[i]->key, "image-resolve-mode"))
      assert_string_equal(o->frontendopt[i]->value, "pull"), saw++;
  }
  assert_int_equal(saw, 3);
  moby__buildkit__v1__frontend__solve_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);

  /* frontend not on the list */
  p.frontends = SL("gateway.v0");
  run_file(&r, &p, 0, bg_inspect_bridge_solve, FX "bridge-solve-buildx-image-network-none.bin");
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "frontends");
  assert_non_null(strstr(r.reason, "dockerfile.v0"));
  bg_inspect_free(&r);

  /* already compliant: set value equal, nothing to delete, not isolated
   * (which would force image-resolve-mode) => byte-identical */
  p.isolate = 0;
  p.frontends = SL("docker*");
  p.frontend_attrs.del.n = 0;
  p.frontend_attrs.set = KVL({"attest:provenance", "mode=min,inline-only=true"});
  p.isolate = 0; /* isolate would force build-arg:BUILDKIT_CACHE_MOUNT_NS */
  run_file(&r, &p, 0, bg_inspect_bridge_solve, FX "bridge-solve-buildx-image-network-none.bin");
  assert_int_equal(r.grpc_status, 0);
  assert_null(r.out);
  bg_inspect_free(&r);
}

static void test_frontend_attrs_set_tenant_and_sessionid(void **st)
{
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  p.isolate = 1;
  p.frontend_attrs.set = KVL({"build-arg:TENANT", "${tenant}"});
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Moby__Buildkit__V1__SolveRequest__FrontendAttrsEntry a = MOBY__BUILDKIT__V1__SOLVE_REQUEST__FRONTEND_ATTRS_ENTRY__INIT,
                                                        b = MOBY__BUILDKIT__V1__SOLVE_REQUEST__FRONTEND_ATTRS_ENTRY__INIT;
  a.key = "local-sessionid:context";
  a.value = "sessA";
  b.key = "build-arg:TENANT";
  b.value = "other";
  Moby__Buildkit__V1__SolveRequest__FrontendAttrsEntry *as[] = {&a, &b, &b};
  q.frontendattrs = as;
  q.n_frontendattrs = 2; /* (a duplicate key is refused before decoding: test_pbcheck.c) */
  q.frontend = "dockerfile.v0";
  q.ref = "r";
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  Moby__Buildkit__V1__SolveRequest *o = moby__buildkit__v1__solve_request__unpack(NULL, r.outlen, r.out);
  assert_non_null(o);
  assert_int_equal(o->n_frontendattrs, 4); /* + BUILDKIT_CACHE_MOUNT_NS, image-resolve-mode */
  for (size_t i = 0; i < 4; i++) {
    if (!strcmp(o->frontendattrs[i]->key, "build-arg:TENANT"))
      assert_string_equal(o->frontendattrs[i]->value, "ci");
    else if (!strcmp(o->frontendattrs[i]->key, "build-arg:BUILDKIT_CACHE_MOUNT_NS"))
      assert_string_equal(o->frontendattrs[i]->value, "ci.");
    else if (!strcmp(o->frontendattrs[i]->key, "image-resolve-mode"))
      assert_string_equal(o->frontendattrs[i]->value, "pull");
    else
      assert_string_equal(o->frontendattrs[i]->value, "ci.sessA");
  }
  assert_string_equal(o->ref, "ci.r");
  moby__buildkit__v1__solve_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);
  free(m);
}

/* ---- isolation -------------------------------------------------------------------------------- */

static void test_isolate_generates_ref(void **st)
{
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  p.isolate = 1;
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  q.session = "sess";
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  Moby__Buildkit__V1__SolveRequest *o = moby__buildkit__v1__solve_request__unpack(NULL, r.outlen, r.out);
  assert_non_null(o);
  assert_int_equal(strlen(o->ref), 3 + 25);
  assert_memory_equal(o->ref, "ci.", 3);
  assert_string_equal(r.ref, o->ref + 3);
  assert_string_equal(o->session, "ci.sess");
  moby__buildkit__v1__solve_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);
  free(m);
}

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

/* ---- LLB ------------------------------------------------------------------------------------------ */

static void digest(const ProtobufCBinaryData *d, char out[72])
{
  unsigned char md[32];
  unsigned int l;
  EVP_Digest(d->data, d->len, md, &l, EVP_sha256(), NULL);
  strcpy(out, "sha256:");
  for (int i = 0; i < 32; i++)
    sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

static int llb_status(const struct bg_profile *p, ProtobufCBinaryData *ops, size_t n, char *rule)
{
  size_t len;
  uint8_t *m = solve_with_def(ops, n, &len);
  struct bg_inspect r;
  run(&r, p, 0, bg_inspect_control_solve, m, len);
  int st = r.grpc_status;
  strcpy(rule, r.rule);
  bg_inspect_free(&r);
  free(m);
  return st;
}

static void test_llb_rules(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  p.isolate = 0;
  char rule[64], d0[72];
  ProtobufCBinaryData ops[3];
  ops[0] = op_source("docker-image://docker.io/library/alpine:latest", NULL, NULL);
  digest(&ops[0], d0);
  ops[1] = op_exec(PB__NET_MODE__UNSET, PB__SECURITY_MODE__SANDBOX, PB__MOUNT_TYPE__CACHE, d0);
  ops[2] = op_file(d0);
  assert_int_equal(llb_status(&p, ops, 3, rule), 0);
  free(ops[1].data);

  ops[1] = op_exec(PB__NET_MODE__HOST, PB__SECURITY_MODE__SANDBOX, -1, d0);
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_network");
  p.llb_network = SL("sandbox", "host");
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "entitlements"); /* host needs network.host granted */
  p.entitlements = SL("network.host");
  /* the builder profile denies force-network-mode: the same power in LLB is denied too */
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_network");
  p.frontend_attrs.deny = SL("add-hosts");
  assert_int_equal(llb_status(&p, ops, 3, rule), 0);
  free(ops[1].data);

  ops[1] = op_exec(PB__NET_MODE__UNSET, PB__SECURITY_MODE__INSECURE, -1, d0);
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_security");
  p.llb_security = SL("sandbox", "insecure");
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "entitlements");
  free(ops[1].data);

  ops[1] = op_exec(7, 0, -1, d0);
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_unknown"); /* a value the schema does not declare: unknown LLB */
  free(ops[1].data);

  ops[1] = op_exec(0, 0, PB__MOUNT_TYPE__SECRET, d0);
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_mounts");
  p.llb_mounts = SL("secret");
  assert_int_equal(llb_status(&p, ops, 3, rule), 0);
  free(ops[1].data);
  ops[1] = op_exec(0, 0, PB__MOUNT_TYPE__SSH, d0);
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_mounts");
  free(ops[1].data);
  ops[1] = op_exec(0, 0, -1, d0);

  /* secretenv counts as a secret mount (no block: the SL() literals must
   * live as long as p) */
  Pb__Op seop = PB__OP__INIT;
  Pb__ExecOp seex = PB__EXEC_OP__INIT;
  Pb__SecretEnv se = PB__SECRET_ENV__INIT;
  Pb__SecretEnv *ses[] = {&se};
  se.id = "tok";
  se.name = "TOKEN";
  seex.secretenv = ses;
  seex.n_secretenv = 1;
  seop.op_case = PB__OP__OP_EXEC;
  seop.exec = &seex;
  ProtobufCBinaryData sop;
  sop.data = pack_any(&seop.base, &sop.len);
  p.llb_mounts.n = 0;
  assert_int_equal(llb_status(&p, &sop, 1, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_mounts");
  p.llb_mounts = SL("secret");
  assert_int_equal(llb_status(&p, &sop, 1, rule), 0);
  free(sop.data);

  free(ops[0].data);
  ops[0] = op_source("git://github.com/moby/buildkit", NULL, NULL);
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_sources");
  p.llb_sources = SL("git://github.com/*");
  assert_int_equal(llb_status(&p, ops, 3, rule), 0);
  free(ops[0].data);
  ops[0] = op_source("git://github.com/moby/buildkit", "git.mountsshsock", "default");
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_source_attrs");
  p.llb_any = 1; /* llb_any skips the LLB allow-lists */
  assert_int_equal(llb_status(&p, ops, 3, rule), 0);
  p.llb_any = 0;
  free(ops[0].data);

  /* BuildOp: its LLB is invisible */
  Pb__Op b = PB__OP__INIT;
  Pb__BuildOp bo = PB__BUILD_OP__INIT;
  b.op_case = PB__OP__OP_BUILD;
  b.build = &bo;
  ops[0].data = pack_any(&b.base, &ops[0].len);
  assert_int_equal(llb_status(&p, ops, 1, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_build");
  free(ops[0].data);

  /* unknown op kind (v0.31 passthrough = 8) */
  static const uint8_t pass[] = {0x42, 0x00};
  ops[0].data = (uint8_t *)pass;
  ops[0].len = sizeof pass;
  assert_int_equal(llb_status(&p, ops, 1, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_unknown");

  /* undecodable op */
  static const uint8_t bad[] = {0x12, 0x05, 0x01};
  ops[0].data = (uint8_t *)bad;
  ops[0].len = sizeof bad;
  assert_int_equal(llb_status(&p, ops, 1, rule), BG_GRPC_INVALID_ARGUMENT);
  free(ops[1].data);
  free(ops[2].data);
}

static void test_llb_cdi_devices(void **st)
{
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  p.entitlements = SL("device=nvidia.com/gpu=*");
  Pb__Op op = PB__OP__INIT;
  Pb__ExecOp ex = PB__EXEC_OP__INIT;
  Pb__CDIDevice dev = PB__CDIDEVICE__INIT;
  Pb__CDIDevice *devs[] = {&dev};
  dev.name = "vendor.com/fpga=0";
  ex.cdidevices = devs;
  ex.n_cdidevices = 1;
  op.op_case = PB__OP__OP_EXEC;
  op.exec = &ex;
  ProtobufCBinaryData o;
  o.data = pack_any(&op.base, &o.len);
  char rule[64];
  assert_int_equal(llb_status(&p, &o, 1, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_devices");
  free(o.data);
  dev.name = "nvidia.com/gpu=0";
  o.data = pack_any(&op.base, &o.len);
  assert_int_equal(llb_status(&p, &o, 1, rule), 0);
  free(o.data);
}

/* isolate: local.session is namespaced inside the LLB; digests re-keyed */
static void test_llb_local_session_rekey(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  p.frontend_attrs.set.n = 0;
  ProtobufCBinaryData ops[4];
  char d0[72], d1[72], d2[72];
  ops[0] = op_source("local://context", "local.session", "sessX");
  digest(&ops[0], d0);
  ops[1] = op_exec(PB__NET_MODE__NONE, 0, -1, d0);
  digest(&ops[1], d1);
  ops[2] = op_source("docker-image://docker.io/library/busybox:latest", NULL, NULL);
  digest(&ops[2], d2);
  ops[3] = op_file(d1); /* terminal-ish op depending on the exec */
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Pb__Definition def = PB__DEFINITION__INIT;
  Pb__OpMetadata md0 = PB__OP_METADATA__INIT, md2 = PB__OP_METADATA__INIT;
  md0.ignore_cache = 1;
  Pb__Definition__MetadataEntry me0 = PB__DEFINITION__METADATA_ENTRY__INIT, me2 = PB__DEFINITION__METADATA_ENTRY__INIT;
  me0.key = d0;
  me0.value = &md0;
  me2.key = d2;
  me2.value = &md2;
  Pb__Definition__MetadataEntry *mes[] = {&me0, &me2};
  def.metadata = mes;
  def.n_metadata = 2;
  def.def = ops;
  def.n_def = 4;
  q.definition = &def;
  q.ref = "r9";
  q.session = "sessX";
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  assert_non_null(r.out);
  assert_int_equal(r.n_ops, 4);
  assert_string_equal(rw_new(&r, "Definition.def[0].source.attrs[local.session]"), "ci.sessX");
  Moby__Buildkit__V1__SolveRequest *o = moby__buildkit__v1__solve_request__unpack(NULL, r.outlen, r.out);
  assert_non_null(o);
  Pb__Definition *od = o->definition;
  assert_int_equal(od->n_def, 4);
  Pb__Op *s0 = pb__op__unpack(NULL, od->def[0].len, od->def[0].data);
  assert_string_equal(s0->source->attrs[0]->value, "ci.sessX");
  pb__op__free_unpacked(s0, NULL);
  char n0[72], n1[72], n2[72];
  digest(&od->def[0], n0);
  digest(&od->def[1], n1);
  digest(&od->def[2], n2);
  assert_string_not_equal(n0, d0);
  assert_string_equal(n2, d2); /* untouched op keeps its bytes */
  Pb__Op *e1 = pb__op__unpack(NULL, od->def[1].len, od->def[1].data);
  assert_string_equal(e1->inputs[0]->digest, n0);
  pb__op__free_unpacked(e1, NULL);
  Pb__Op *f3 = pb__op__unpack(NULL, od->def[3].len, od->def[3].data);
  assert_string_equal(f3->inputs[0]->digest, n1);
  pb__op__free_unpacked(f3, NULL);
  int found0 = 0, found2 = 0;
  for (size_t i = 0; i < od->n_metadata; i++) {
    found0 |= !strcmp(od->metadata[i]->key, n0) && od->metadata[i]->value->ignore_cache;
    found2 |= !strcmp(od->metadata[i]->key, d2);
  }
  assert_true(found0 && found2);
  assert_string_equal(o->session, "ci.sessX");
  moby__buildkit__v1__solve_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);
  free(m);

  /* same graph in reverse order (not topological): still re-keyed */
  ProtobufCBinaryData rev[4] = {ops[3], ops[2], ops[1], ops[0]};
  def.def = rev;
  m = pack_any(&q.base, &n);
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  o = moby__buildkit__v1__solve_request__unpack(NULL, r.outlen, r.out);
  od = o->definition;
  digest(&od->def[3], n0);
  digest(&od->def[2], n1);
  e1 = pb__op__unpack(NULL, od->def[2].len, od->def[2].data);
  assert_string_equal(e1->inputs[0]->digest, n0);
  pb__op__free_unpacked(e1, NULL);
  f3 = pb__op__unpack(NULL, od->def[0].len, od->def[0].data);
  assert_string_equal(f3->inputs[0]->digest, n1);
  pb__op__free_unpacked(f3, NULL);
  moby__buildkit__v1__solve_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);
  free(m);
  for (int i = 0; i < 4; i++)
    free(ops[i].data);
}

/* isolate, ops listed consumers first and every op also naming the session
 * source: each pass remaps every op again, so re-keying takes as many passes
 * as the chain is long and maps far more digests than there are ops (the
 * string-keyed map of fixed size 2n+2 used to fill up and spin here) */
static void test_llb_rekey_reverse_chain_many_passes(void **st)
{
  enum { K = 24 };
  struct bg_profile p;
  PROF_BUILDER(p);
  p.frontend_attrs.set.n = 0;
  p.llb_any = 1;
  ProtobufCBinaryData ops[K];
  char dg[K][72];
  ops[0] = op_source("local://context", "local.session", "sessR");
  digest(&ops[0], dg[0]);
  for (int i = 1; i < K; i++) {
    Pb__Op op = PB__OP__INIT;
    Pb__FileOp f = PB__FILE_OP__INIT;
    Pb__Input in0 = PB__INPUT__INIT, in1 = PB__INPUT__INIT;
    Pb__Input *ins[] = {&in0, &in1};
    in0.digest = dg[i - 1];
    in1.digest = dg[0];
    op.inputs = ins;
    op.n_inputs = i > 1 ? 2 : 1;
    op.op_case = PB__OP__OP_FILE;
    op.file = &f;
    ops[i].data = pack_any(&op.base, &ops[i].len);
    digest(&ops[i], dg[i]);
  }
  ProtobufCBinaryData rev[K];
  for (int i = 0; i < K; i++)
    rev[i] = ops[K - 1 - i];
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Pb__Definition def = PB__DEFINITION__INIT;
  Pb__OpMetadata md = PB__OP_METADATA__INIT;
  md.ignore_cache = 1;
  Pb__Definition__MetadataEntry me = PB__DEFINITION__METADATA_ENTRY__INIT;
  me.key = dg[K - 1];
  me.value = &md;
  Pb__Definition__MetadataEntry *mes[] = {&me};
  def.metadata = mes;
  def.n_metadata = 1;
  def.def = rev;
  def.n_def = K;
  q.definition = &def;
  q.ref = "r9";
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  assert_non_null(r.out);
  Moby__Buildkit__V1__SolveRequest *o = moby__buildkit__v1__solve_request__unpack(NULL, r.outlen, r.out);
  assert_non_null(o);
  Pb__Definition *od = o->definition;
  assert_int_equal(od->n_def, K);
  char nd[K][72]; /* new digest of op i (listed at K-1-i) */
  for (int i = 0; i < K; i++)
    digest(&od->def[K - 1 - i], nd[i]);
  for (int i = 1; i < K; i++) {
    Pb__Op *x = pb__op__unpack(NULL, od->def[K - 1 - i].len, od->def[K - 1 - i].data);
    assert_non_null(x);
    assert_string_not_equal(nd[i], dg[i]);
    assert_string_equal(x->inputs[0]->digest, nd[i - 1]);
    if (i > 1)
      assert_string_equal(x->inputs[1]->digest, nd[0]);
    pb__op__free_unpacked(x, NULL);
  }
  assert_int_equal(od->n_metadata, 1);
  assert_string_equal(od->metadata[0]->key, nd[K - 1]);
  assert_true(od->metadata[0]->value->ignore_cache);
  moby__buildkit__v1__solve_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);
  free(m);
  for (int i = 0; i < K; i++)
    free(ops[i].data);
}

static void test_llb_frontend_inputs(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  p.isolate = 0;
  ProtobufCBinaryData op = op_exec(PB__NET_MODE__HOST, 0, -1, NULL);
  Pb__Definition def = PB__DEFINITION__INIT;
  def.def = &op;
  def.n_def = 1;
  Moby__Buildkit__V1__Frontend__SolveRequest q = MOBY__BUILDKIT__V1__FRONTEND__SOLVE_REQUEST__INIT;
  Moby__Buildkit__V1__Frontend__SolveRequest__FrontendInputsEntry fi =
      MOBY__BUILDKIT__V1__FRONTEND__SOLVE_REQUEST__FRONTEND_INPUTS_ENTRY__INIT;
  Moby__Buildkit__V1__Frontend__SolveRequest__FrontendInputsEntry *fis[] = {&fi};
  fi.key = "context";
  fi.value = &def;
  q.frontendinputs = fis;
  q.n_frontendinputs = 1;
  q.frontend = "dockerfile.v0";
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run(&r, &p, 0, bg_inspect_bridge_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "llb_network");
  assert_non_null(strstr(r.reason, "FrontendInputs[context].def[0]"));
  bg_inspect_free(&r);
  free(m);

  /* same through Control.Solve field 10 */
  Moby__Buildkit__V1__SolveRequest cq = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Moby__Buildkit__V1__SolveRequest__FrontendInputsEntry cfi = MOBY__BUILDKIT__V1__SOLVE_REQUEST__FRONTEND_INPUTS_ENTRY__INIT;
  Moby__Buildkit__V1__SolveRequest__FrontendInputsEntry *cfis[] = {&cfi};
  cfi.key = "context";
  cfi.value = &def;
  cq.frontendinputs = cfis;
  cq.n_frontendinputs = 1;
  m = pack_any(&cq.base, &n);
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "llb_network");
  bg_inspect_free(&r);
  free(m);
  free(op.data);
}

/* ---- source policy ---------------------------------------------------------------------------------- */

static uint8_t *policy_bytes(size_t *n)
{
  Moby__Buildkit__V1__Sourcepolicy__Policy pol = MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Rule r1 = MOBY__BUILDKIT__V1__SOURCEPOLICY__RULE__INIT,
                                         r2 = MOBY__BUILDKIT__V1__SOURCEPOLICY__RULE__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Selector s1 = MOBY__BUILDKIT__V1__SOURCEPOLICY__SELECTOR__INIT,
                                             s2 = MOBY__BUILDKIT__V1__SOURCEPOLICY__SELECTOR__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Update u2 = MOBY__BUILDKIT__V1__SOURCEPOLICY__UPDATE__INIT;
  s1.identifier = "docker-image://evil.example/*";
  r1.action = MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY_ACTION__DENY;
  r1.selector = &s1;
  s2.identifier = "docker-image://docker.io/library/alpine:*";
  u2.identifier = "docker-image://mirror.example/library/alpine:3.19";
  r2.action = MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY_ACTION__CONVERT;
  r2.selector = &s2;
  r2.updates = &u2;
  Moby__Buildkit__V1__Sourcepolicy__Rule *rs[] = {&r1, &r2};
  pol.version = 1;
  pol.rules = rs;
  pol.n_rules = 2;
  return pack_any(&pol.base, n);
}

static void test_source_policy_merge(void **st)
{
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  p.source_policy = policy_bytes(&p.source_policy_len);
  /* request with its own ALLOW rule for evil.example */
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Policy pol = MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Rule rr = MOBY__BUILDKIT__V1__SOURCEPOLICY__RULE__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Selector ss = MOBY__BUILDKIT__V1__SOURCEPOLICY__SELECTOR__INIT;
  ss.identifier = "docker-image://evil.example/*";
  rr.action = MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY_ACTION__ALLOW;
  rr.selector = &ss;
  Moby__Buildkit__V1__Sourcepolicy__Rule *rrs[] = {&rr};
  pol.rules = rrs;
  pol.n_rules = 1;
  q.sourcepolicy = &pol;
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  /* the request's own rules could undo the profile's: refused, field named */
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "source_policy");
  assert_non_null(strstr(r.reason, "SourcePolicy: the request carries 1 source-policy rule(s) of its own"));
  assert_null(r.out);
  bg_inspect_free(&r);

  /* an empty request policy: the profile's rules, in the profile's order */
  pol.n_rules = 0;
  free(m);
  m = pack_any(&q.base, &n);
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  Moby__Buildkit__V1__SolveRequest *o = moby__buildkit__v1__solve_request__unpack(NULL, r.outlen, r.out);
  Moby__Buildkit__V1__Sourcepolicy__Policy *op = o->sourcepolicy;
  assert_non_null(op);
  assert_int_equal(op->version, 1);
  assert_int_equal(op->n_rules, 2);
  assert_int_equal(op->rules[0]->action, MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY_ACTION__DENY);
  assert_int_equal(op->rules[1]->action, MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY_ACTION__CONVERT);
  moby__buildkit__v1__solve_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);

  /* no SourcePolicy in the request: created */
  q.sourcepolicy = NULL;
  free(m);
  m = pack_any(&q.base, &n);
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  o = moby__buildkit__v1__solve_request__unpack(NULL, r.outlen, r.out);
  assert_int_equal(o->sourcepolicy->n_rules, 2);
  moby__buildkit__v1__solve_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);

  /* backend too old: refuse, do not pretend */
  bg_inspect_init(&r, &p, "ci", 0, &facts_old);
  bg_inspect_control_solve(&r, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_FAILED_PRECONDITION);
  assert_string_equal(r.rule, "source_policy");
  assert_null(r.out);
  bg_inspect_free(&r);
  free(m);
  free(p.source_policy);
}

static void test_source_policy_convert_checked(void **st)
{
  /* a request CONVERT can turn any image into a local source of another session */
  struct bg_profile p;
  PROF_BUILDER(p);
  p.frontend_attrs.set.n = 0;
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Policy pol = MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Rule rr = MOBY__BUILDKIT__V1__SOURCEPOLICY__RULE__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Selector ss = MOBY__BUILDKIT__V1__SOURCEPOLICY__SELECTOR__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Update up = MOBY__BUILDKIT__V1__SOURCEPOLICY__UPDATE__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Update__AttrsEntry ae = MOBY__BUILDKIT__V1__SOURCEPOLICY__UPDATE__ATTRS_ENTRY__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Update__AttrsEntry *aes[] = {&ae};
  ae.key = "local.session";
  ae.value = "victim-session";
  up.identifier = "local://context";
  up.attrs = aes;
  up.n_attrs = 1;
  ss.identifier = "docker-image://*";
  rr.action = MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY_ACTION__CONVERT;
  rr.selector = &ss;
  rr.updates = &up;
  Moby__Buildkit__V1__Sourcepolicy__Rule *rrs[] = {&rr};
  pol.rules = rrs;
  pol.n_rules = 1;
  pol.version = 1;
  q.sourcepolicy = &pol;
  q.ref = "x";
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  Moby__Buildkit__V1__SolveRequest *o = moby__buildkit__v1__solve_request__unpack(NULL, r.outlen, r.out);
  assert_string_equal(o->sourcepolicy->rules[0]->updates->attrs[0]->value, "ci.victim-session");
  moby__buildkit__v1__solve_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);
  free(m);
  up.identifier = "git://github.com/x/y";
  m = pack_any(&q.base, &n);
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "llb_sources");
  bg_inspect_free(&r);
  free(m);
}

/* ---- NewContainer / ExecProcess --------------------------------------------------------------------- */

static void test_new_container(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  Moby__Buildkit__V1__Frontend__NewContainerRequest q = MOBY__BUILDKIT__V1__FRONTEND__NEW_CONTAINER_REQUEST__INIT;
  Pb__Mount mt = PB__MOUNT__INIT;
  Pb__Mount *mts[] = {&mt};
  q.containerid = "c1";
  q.mounts = mts;
  q.n_mounts = 1;
  q.network = PB__NET_MODE__HOST;
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run(&r, &p, 0, bg_inspect_new_container, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "llb_network");
  bg_inspect_free(&r);
  free(m);
  q.network = PB__NET_MODE__NONE;
  mt.mounttype = PB__MOUNT_TYPE__SSH;
  m = pack_any(&q.base, &n);
  run(&r, &p, 0, bg_inspect_new_container, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "llb_mounts");
  bg_inspect_free(&r);
  free(m);
  mt.mounttype = PB__MOUNT_TYPE__BIND;
  m = pack_any(&q.base, &n);
  run(&r, &p, 0, bg_inspect_new_container, m, n);
  assert_int_equal(r.grpc_status, 0);
  assert_null(r.out);
  bg_inspect_free(&r);
  free(m);
}

static void test_exec_process_init_insecure(void **st)
{
  Moby__Buildkit__V1__Frontend__ExecMessage q = MOBY__BUILDKIT__V1__FRONTEND__EXEC_MESSAGE__INIT;
  Moby__Buildkit__V1__Frontend__InitMessage in = MOBY__BUILDKIT__V1__FRONTEND__INIT_MESSAGE__INIT;
  q.processid = "p1";
  q.input_case = MOBY__BUILDKIT__V1__FRONTEND__EXEC_MESSAGE__INPUT_INIT;
  q.init = &in;
  in.containerid = "c1";
  in.security = PB__SECURITY_MODE__INSECURE;
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_profile p;
  PROF_BUILDER(p);
  struct bg_inspect r;
  run(&r, &p, 0, bg_inspect_exec_process, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "llb_security");
  bg_inspect_free(&r);
  p.llb_security = SL("sandbox", "insecure");
  run(&r, &p, 0, bg_inspect_exec_process, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "entitlements");
  assert_non_null(strstr(r.reason, "security.insecure"));
  bg_inspect_free(&r);
  p.entitlements = SL("security.insecure");
  run(&r, &p, 0, bg_inspect_exec_process, m, n);
  assert_int_equal(r.grpc_status, 0);
  assert_null(r.out);
  bg_inspect_free(&r);
  free(m);
  /* a later stream message (File, field 3) passes */
  static const uint8_t file_msg[] = {0x0a, 0x02, 'p', '1', 0x1a, 0x02, 0x08, 0x01};
  PROF_BUILDER(p);
  run(&r, &p, 0, bg_inspect_exec_process, file_msg, sizeof file_msg);
  assert_int_equal(r.grpc_status, 0);
  assert_null(r.out);
  bg_inspect_free(&r);
}

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

static void test_info_version(void **st)
{
  size_t n = 0;
  uint8_t *m = fixture_load(FX "control-info-resp.bin", &n);
  char v[64];
  assert_int_equal(bg_inspect_info_version(m, n, v, sizeof v), 0);
  assert_string_equal(v, "0.0.0+unknown");
  free(m);
}

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_frontend_image_attrs(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  p.isolate = 0;
  p.frontend_attrs.set.n = 0;
  p.llb_sources = SL("docker-image://docker.io/docker/dockerfile:*");
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Moby__Buildkit__V1__SolveRequest__FrontendAttrsEntry a = MOBY__BUILDKIT__V1__SOLVE_REQUEST__FRONTEND_ATTRS_ENTRY__INIT;
  Moby__Buildkit__V1__SolveRequest__FrontendAttrsEntry *as[] = {&a};
  a.key = "source";
  a.value = "docker/dockerfile:1.5@sha256:" D64;
  q.frontendattrs = as;
  q.n_frontendattrs = 1;
  q.frontend = "gateway.v0";
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  assert_null(r.out);
  bg_inspect_free(&r);
  free(m);
  /* a frontend image reads attrs nobody can list: only pinned ones run */
  a.value = "docker/dockerfile:1.5";
  m = pack_any(&q.base, &n);
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "frontend_attrs");
  assert_non_null(strstr(r.reason, "is not pinned by digest"));
  bg_inspect_free(&r);
  free(m);
  a.value = "evil.example/frontend:latest@sha256:" D64;
  m = pack_any(&q.base, &n);
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "llb_sources");
  assert_non_null(strstr(r.reason, "docker-image://evil.example/frontend:latest@sha256:"));
  bg_inspect_free(&r);
  free(m);
  a.key = "build-arg:BUILDKIT_SYNTAX";
  a.value = "busybox@sha256:" D64;
  q.frontend = "dockerfile.v0";
  m = pack_any(&q.base, &n);
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(r.reason, "docker-image://docker.io/library/busybox"));
  bg_inspect_free(&r);
  free(m);
  /* named context pointing at a git source */
  a.key = "context:base";
  a.value = "git://github.com/evil/repo";
  m = pack_any(&q.base, &n);
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "llb_sources");
  assert_non_null(strstr(r.reason, "FrontendAttrs[context:base]"));
  bg_inspect_free(&r);
  free(m);
  a.value = "docker-image://docker/dockerfile:1";
  m = pack_any(&q.base, &n);
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  bg_inspect_free(&r);
  free(m);
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
      cmocka_unit_test(test_entitlements_allowed_permissive),
      cmocka_unit_test(test_entitlements_denied),
      cmocka_unit_test(test_entitlements_device_forms),
      cmocka_unit_test(test_audit_only),
      cmocka_unit_test(test_exporter_name_prefix_rewrite),
      cmocka_unit_test(test_exporter_push_and_escape),
      cmocka_unit_test(test_exporter_name_rules),
      cmocka_unit_test(test_exporters_13_and_3_4_consistent),
      cmocka_unit_test(test_session_exporter),
      cmocka_unit_test(test_local_exporter_unchanged),
      cmocka_unit_test(test_cache_types),
      cmocka_unit_test(test_bridge_frontend),
      cmocka_unit_test(test_frontend_attrs_set_tenant_and_sessionid),
      cmocka_unit_test(test_isolate_generates_ref),
      cmocka_unit_test(test_isolate_status_and_history),
      cmocka_unit_test(test_llb_rules),
      cmocka_unit_test(test_llb_cdi_devices),
      cmocka_unit_test(test_llb_local_session_rekey),
      cmocka_unit_test(test_llb_rekey_reverse_chain_many_passes),
      cmocka_unit_test(test_llb_frontend_inputs),
      cmocka_unit_test(test_source_policy_merge),
      cmocka_unit_test(test_source_policy_convert_checked),
      cmocka_unit_test(test_new_container),
      cmocka_unit_test(test_exec_process_init_insecure),
      cmocka_unit_test(test_garbage_invalid_argument),
      cmocka_unit_test(test_info_version),
      cmocka_unit_test(test_deep_nesting_no_recursion),
      cmocka_unit_test(test_frontend_image_attrs),
      cmocka_unit_test(test_exporter_deny_and_moby_prefix),
      cmocka_unit_test(test_bridge_exporter_attr),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

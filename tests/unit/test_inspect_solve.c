/* test_inspect_solve.c
 *
 * Tests of policy/inspect_solve.c: Control.Solve, LLBBridge.Solve, NewContainer and
 * ExecProcess requests: entitlements, audit mode, cache types, frontends and
 * their attrs, generated refs, source policies, frontend images.
 * (moved from test_inspect.c unchanged). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/inspect_run.h"

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

  /* LLBBridge.Solve field 4, which daemons up to v0.10 (Docker 20.10) read
   * as registry cache imports */
  Moby__Buildkit__V1__Frontend__SolveRequest b = MOBY__BUILDKIT__V1__FRONTEND__SOLVE_REQUEST__INIT;
  b.importcacherefsdeprecated = imps;
  b.n_importcacherefsdeprecated = 1;
  m = pack_any(&b.base, &n);
  run(&r, &p, 0, bg_inspect_bridge_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "cache_import");
  assert_non_null(strstr(r.reason, "ImportCacheRefsDeprecated[0]"));
  bg_inspect_free(&r);
  p.cache_import = SL("local", "registry");
  run(&r, &p, 0, bg_inspect_bridge_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
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

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_entitlements_allowed_permissive),
      cmocka_unit_test(test_entitlements_denied),
      cmocka_unit_test(test_entitlements_device_forms),
      cmocka_unit_test(test_audit_only),
      cmocka_unit_test(test_cache_types),
      cmocka_unit_test(test_bridge_frontend),
      cmocka_unit_test(test_frontend_attrs_set_tenant_and_sessionid),
      cmocka_unit_test(test_isolate_generates_ref),
      cmocka_unit_test(test_source_policy_merge),
      cmocka_unit_test(test_source_policy_convert_checked),
      cmocka_unit_test(test_new_container),
      cmocka_unit_test(test_exec_process_init_insecure),
      cmocka_unit_test(test_frontend_image_attrs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_frontend_attrs.c: the frontend-attr catalogue and allow-list, the
 * source policy only the admin writes (with an evaluator of BuildKit's
 * engine run over random orders), LLBBridge.Return metadata, and decisions
 * held for the backend facts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "policy/attrparse.h"
#include "policy/frontend_attrs.h"
#include "policy/policy_int.h"
#include "tests/unit/inspect_helpers.h"

static const struct bg_backend_facts v0_11 = {1, 0, "v0.11.6"};
static const struct bg_backend_facts v0_13 = {1, 0, "v0.13.2"};

static void collect_warning(void *arg, const char *msg)
{
  strncat(arg, msg, 1900 - strlen(arg));
}

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* A Control.Solve for dockerfile.v0 with the given attrs (key, value pairs). */
static uint8_t *solve_with_attrs(size_t *n, const char *frontend, size_t nattrs, const char *const *kv)
{
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Moby__Buildkit__V1__SolveRequest__FrontendAttrsEntry e[8], *ep[8];
  for (size_t i = 0; i < nattrs; i++) {
    moby__buildkit__v1__solve_request__frontend_attrs_entry__init(&e[i]);
    e[i].key = (char *)kv[2 * i];
    e[i].value = (char *)kv[2 * i + 1];
    ep[i] = &e[i];
  }
  q.frontend = (char *)frontend;
  q.frontendattrs = ep;
  q.n_frontendattrs = nattrs;
  q.ref = "r";
  return pack_any(&q.base, n);
}

static int solve(struct bg_inspect *r, const struct bg_profile *p, const char *tenant,
                 const struct bg_backend_facts *fx, const char *frontend, size_t nattrs, const char *const *kv)
{
  size_t n;
  uint8_t *m = solve_with_attrs(&n, frontend, nattrs, kv);
  bg_inspect_init(r, p, tenant, 0, fx);
  int st = bg_inspect_control_solve(r, m, n);
  free(m);
  return st;
}

/* ---- catalogue -------------------------------------------------------------------- */

static void test_catalogue_classes(void **st)
{
  static const struct {
    const char *key;
    enum bg_fa_class cls;
  } want[] = {
      {"target", BG_FA_HARMLESS},
      {"label:org.example", BG_FA_HARMLESS},
      {"build-arg:HTTP_PROXY", BG_FA_HARMLESS},
      {"cgroup-parent", BG_FA_POWER},
      {"ulimit", BG_FA_POWER},
      {"shm-size", BG_FA_POWER},
      {"add-hosts", BG_FA_POWER},
      {"force-network-mode", BG_FA_POWER},
      {"hostname", BG_FA_POWER},
      {"build-arg:BUILDKIT_SANDBOX_HOSTNAME", BG_FA_POWER},
      {"build-arg:BUILDKIT_CACHE_MOUNT_NS", BG_FA_POWER},
      {"cpu-quota", BG_FA_POWER},
      {"build-arg:BUILDKIT_SYNTAX", BG_FA_SOURCE},
      {"build-arg:BUILDKIT_SOMETHING_NEW", BG_FA_UNKNOWN},
      {"context:base", BG_FA_SOURCE},
      {"context", BG_FA_SOURCE},
      {"attest:sbom", BG_FA_SOURCE},
      {"image-resolve-mode", BG_FA_SOURCE},
      {"attest:provenance", BG_FA_EXPORTER},
      {"build-arg:BUILDKIT_INLINE_CACHE", BG_FA_EXPORTER},
      {"cache-imports", BG_FA_CACHE},
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    const struct bg_fa_entry *e = bg_fa_lookup(want[i].key);
    if (!e || e->cls != want[i].cls)
      fail_msg("%s: class %s, want %s", want[i].key, e ? bg_fa_class_name(e->cls) : "(none)",
               bg_fa_class_name(want[i].cls));
  }
  assert_null(bg_fa_lookup("no-such-attr"));
  /* every entry is found as itself (no shadowing by a prefix) */
  size_t n;
  const struct bg_fa_entry *c = bg_fa_catalogue(&n);
  assert_true(n > 40);
  for (size_t i = 0; i < n; i++) {
    char k[80];
    snprintf(k, sizeof k, "%s", c[i].key);
    if (k[strlen(k) - 1] == '*')
      k[strlen(k) - 1] = 'x';
    assert_ptr_equal(bg_fa_lookup(k), &c[i]);
  }
}

static void test_allow_key_loaded_and_linted(void **st)
{
  const char *js = "{\"tenants\": [{\"name\": \"ci\", \"match\": {\"uid\": [5]}, \"profile\": \"b\"}],"
                   " \"profiles\": {\"b\": {\"methods\": [\"*\"], \"frontend_attrs\": {\"allow\": [\"shm-size\", \"target\"]}}}}";
  struct bg_error err;
  struct bg_policy *pol = bg_policy_load_string(js, strlen(js), &err);
  assert_non_null(pol);
  assert_true(pol->profiles[0].frontend_attrs_allow_set);
  assert_int_equal(pol->profiles[0].frontend_attrs_allow.n, 2);
  assert_true(bg_profile_restricted(&pol->profiles[0])); /* naming allow makes it an allow-list */
  char warned[2000] = "";
  bg_policy_lint(pol, collect_warning, warned);
  assert_non_null(strstr(warned, "\"target\" is a harmless attr; granting it changes nothing"));
  assert_null(strstr(warned, "shm-size"));
  bg_policy_unref(pol);
  const char *bad = "{\"profiles\": {\"b\": {\"frontend_attrs\": {\"allow\": \"shm-size\"}}}}";
  assert_null(bg_policy_load_string(bad, strlen(bad), &err));
  assert_non_null(strstr(err.text, "profiles.b.frontend_attrs.allow"));
}

/* BUILDKIT_SYNTAX as the dockerfile frontend cuts it:
 * strings.SplitN(strings.TrimSpace(v), " ", 2)[0] -- Unicode spaces trimmed,
 * only ' ' splits (a tab stays in the reference). */
static void test_syntax_ref_like_go(void **st)
{
  static const struct {
    const char *in, *want;
  } cases[] = {
      {" docker/dockerfile:1 --flag", "docker/dockerfile:1"},
      {"evil/frontend\t--x", "evil/frontend\t--x"},
      {"\xc2\x85" "evil/frontend", "evil/frontend"},               /* U+0085 */
      {"\xe3\x80\x80" "evil/frontend" "\xc2\xa0", "evil/frontend"}, /* U+3000 ... U+00A0 */
      {"\xc2" "evil", "\xc2" "evil"},                                  /* invalid UTF-8 is no space */
      {"\n\v\f\r x y", "x"},
      {"   ", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const char *r;
    size_t n;
    if (bg_go_syntax_ref(cases[i].in, strlen(cases[i].in), &r, &n) < 0)
      r = "", n = 0; /* only white space: no image */
    if (n != strlen(cases[i].want) || memcmp(r, cases[i].want, n))
      fail_msg("case %zu: got \"%.*s\"", i, (int)n, r);
  }
  /* cache-imports: one key equal to "Type" ignoring case, or undecidable
   * (attrparse.c: keys that fold together are refused before any reading) */
  static const struct {
    const char *js;
    int rc;
    const char *t;
  } ci[] = {
      {"{\"Type\": \"local\"}", 0, "local"},
      {"{\"TYPE\": \"gha\"}", 0, "gha"},
      {"{\"type\": \"local\", \"TYPE\": \"gha\"}", -1, NULL},
      {"{\"Type\": 3}", -1, NULL},
      {"{\"Attrs\": {}}", 0, NULL},
      {"\"registry\"", -1, NULL},
  };
  for (size_t i = 0; i < sizeof ci / sizeof *ci; i++) {
    json_t *j = json_loads(ci[i].js, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    const char *t = NULL, *why = NULL;
    int rc = -1;
    if (json_is_object(j) && bg_json_struct_keys_ok(j, &why)) {
      json_t *v = bg_json_struct_get(j, "Type");
      if (!v || json_is_string(v))
        rc = 0, t = json_string_value(v);
    }
    assert_int_equal(rc, ci[i].rc);
    if (ci[i].rc == 0 && ci[i].t)
      assert_string_equal(t, ci[i].t);
    else if (ci[i].rc == 0)
      assert_null(t);
    json_decref(j);
  }
}

static void test_restricted_definition(void **st)
{
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  assert_false(bg_profile_restricted(&p)); /* methods ["*"], no llb */
  p.frontend_attrs_allow_set = 1;
  assert_true(bg_profile_restricted(&p));
  PROF_PERMISSIVE(p);
  p.methods = SL("@stable");
  assert_true(bg_profile_restricted(&p));
  PROF_PERMISSIVE(p);
  p.llb_any = 0;
  assert_true(bg_profile_restricted(&p));
}

/* ---- the allow-list on requests ------------------------------------------------------ */

static void test_powers_denied_with_attr_named(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  struct bg_inspect r;
  static const char *const powers[][2] = {
      {"cgroup-parent", "/escape"}, {"ulimit", "nofile=1024:1024"}, {"shm-size", "1073741824"},
      {"hostname", "x"},            {"add-hosts", "h=1.2.3.4"},     {"force-network-mode", "host"},
      {"no-such-attr", "1"},
  };
  for (size_t i = 0; i < sizeof powers / sizeof *powers; i++) {
    const char *kv[] = {"filename", "Dockerfile", powers[i][0], powers[i][1]};
    p.frontend_attrs.deny.n = 0;
    solve(&r, &p, "ci", &v0_13, "dockerfile.v0", 2, kv);
    assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
    char want[120];
    if (bg_inspect_power_attr_key(powers[i][0])) {
      /* restates an LLB power: the llb key decides, the attr is named */
      assert_true(strncmp(r.rule, "llb_", 4) == 0);
      snprintf(want, sizeof want, "FrontendAttrs[%s]: ", powers[i][0]);
    } else {
      assert_string_equal(r.rule, "frontend_attrs");
      snprintf(want, sizeof want, "FrontendAttrs[%s]: frontend attr %s is", powers[i][0], powers[i][0]);
    }
    if (!strstr(r.reason, want))
      fail_msg("%s: %s", powers[i][0], r.reason);
    assert_null(r.out);
    bg_inspect_free(&r);
  }
  /* granted: the build goes through (rewritten only by isolate and set);
   * shm-size by frontend_attrs.allow, ulimit by the llb key its LLB needs */
  p.frontend_attrs_allow = SL("shm-size");
  p.llb_ulimit = 1;
  const char *kv[] = {"shm-size", "1073741824", "ulimit", "nofile=1024:1024"};
  solve(&r, &p, "ci", &v0_13, "dockerfile.v0", 2, kv);
  assert_int_equal(r.grpc_status, 0);
  bg_inspect_free(&r);
  /* an empty value asks for the default (no power); none is no power */
  const char *kv2[] = {"cgroup-parent", "", "force-network-mode", "none"};
  solve(&r, &p, "ci", &v0_13, "dockerfile.v0", 2, kv2);
  assert_int_equal(r.grpc_status, 0);
  bg_inspect_free(&r);
  /* the admin's own profile is not restricted */
  PROF_PERMISSIVE(p);
  const char *kv3[] = {"cgroup-parent", "/escape"};
  solve(&r, &p, "ci", &v0_13, "dockerfile.v0", 1, kv3);
  assert_int_equal(r.grpc_status, 0);
  assert_null(r.out);
  bg_inspect_free(&r);
  /* no frontend (client-side Build flow): the daemon runs no frontend with these attrs */
  PROF_BUILDER(p);
  p.frontend_attrs.set.n = 0;
  solve(&r, &p, "ci", &v0_13, "", 1, kv3);
  assert_int_equal(r.grpc_status, 0);
  bg_inspect_free(&r);
}

static void test_sources_in_attrs(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  p.frontend_attrs.set.n = 0;
  p.llb_sources = SL("docker-image://docker.io/${tenant}/*", "docker-image://registry.example.com/*",
                     "docker-image://docker.io/docker/dockerfile:*");
  struct bg_inspect r;
  /* another tenant's prefix, spelled the way namedcontext.go accepts it */
  const char *kv[] = {"context:v", "docker-image:alice/secretimg"};
  solve(&r, &p, "ci", &v0_13, "dockerfile.v0", 1, kv);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "llb_sources");
  assert_non_null(strstr(r.reason, "FrontendAttrs[context:v]: source \"docker-image://docker.io/alice/secretimg\""));
  bg_inspect_free(&r);
  /* its own prefix: ${tenant} expands to the caller */
  const char *kv2[] = {"context:v", "docker-image://ci/base:1"};
  solve(&r, &p, "ci", &v0_13, "dockerfile.v0", 1, kv2);
  assert_int_equal(r.grpc_status, 0);
  bg_inspect_free(&r);
  solve(&r, &p, "alice", &v0_13, "dockerfile.v0", 1, kv);
  assert_int_equal(r.grpc_status, 0);
  bg_inspect_free(&r);
  /* git@ without a scheme is a git source too */
  const char *kv3[] = {"context:v", "git@github.com:evil/repo.git"};
  solve(&r, &p, "ci", &v0_13, "dockerfile.v0", 1, kv3);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(r.reason, "git://github.com/evil/repo.git"));
  bg_inspect_free(&r);
  /* the build context itself as a URL, through contextkey */
  const char *kv4[] = {"contextkey", "build-arg:CTX", "build-arg:CTX", "https://evil.example/ctx.tar"};
  solve(&r, &p, "ci", &v0_13, "dockerfile.v0", 2, kv4);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(r.reason, "https://evil.example/ctx.tar"));
  bg_inspect_free(&r);
  /* the SBOM scanner is an image the daemon runs: default and explicit */
  const char *kv5[] = {"attest:SBOM", ""};
  solve(&r, &p, "ci", &v0_13, "dockerfile.v0", 1, kv5);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(r.reason, "docker-image://docker.io/docker/buildkit-syft-scanner:stable-1"));
  bg_inspect_free(&r);
  const char *kv6[] = {"attest:sbom", "generator=registry.example.com/scan:1"};
  solve(&r, &p, "ci", &v0_13, "dockerfile.v0", 1, kv6);
  assert_int_equal(r.grpc_status, 0);
  bg_inspect_free(&r);
  /* BUILDKIT_SYNTAX: pinned and allowed */
  const char *kv7[] = {"build-arg:BUILDKIT_SYNTAX", " docker/dockerfile:1.5@sha256:" D64 " extra"};
  solve(&r, &p, "ci", &v0_13, "dockerfile.v0", 1, kv7);
  assert_int_equal(r.grpc_status, 0);
  bg_inspect_free(&r);
}

static void test_isolate_forces_pull(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  p.frontend_attrs.set.n = 0;
  struct bg_inspect r;
  const char *kv[] = {"image-resolve-mode", "local"};
  solve(&r, &p, "B", &v0_13, "dockerfile.v0", 1, kv);
  assert_int_equal(r.grpc_status, 0);
  assert_non_null(r.out);
  int seen = 0;
  for (size_t i = 0; i < r.n_rewrites; i++)
    if (!strcmp(r.rewrites[i].field, "FrontendAttrs[image-resolve-mode]")) {
      assert_string_equal(r.rewrites[i].old_value, "local");
      assert_string_equal(r.rewrites[i].new_value, "pull");
      seen = 1;
    }
  assert_true(seen);
  Moby__Buildkit__V1__SolveRequest *o = moby__buildkit__v1__solve_request__unpack(NULL, r.outlen, r.out);
  assert_int_equal(o->n_frontendattrs, 2); /* and build-arg:BUILDKIT_CACHE_MOUNT_NS, forced under isolate */
  int pull = 0;
  for (size_t i = 0; i < o->n_frontendattrs; i++)
    if (!strcmp(o->frontendattrs[i]->key, "image-resolve-mode"))
      assert_string_equal(o->frontendattrs[i]->value, "pull"), pull++;
  assert_int_equal(pull, 1);
  moby__buildkit__v1__solve_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);
  /* not isolated: left alone */
  p.isolate = 0;
  solve(&r, &p, "B", &v0_13, "dockerfile.v0", 1, kv);
  assert_int_equal(r.grpc_status, 0);
  assert_null(r.out);
  bg_inspect_free(&r);
}

/* ---- source policy: BuildKit's engine, and random orders ------------------------------ */

/* sourcepolicy/engine.go, v0.11-v0.13: per pass, the last matching
 * ALLOW/DENY sets the verdict; the first matching CONVERT that changes the
 * identifier ends the pass and the new identifier is evaluated again (at
 * most 20 times).  Returns 1 allowed, 0 denied, -1 too many mutations; the
 * final identifier goes to out. */
static int engine_eval(const struct bg_sp_rule *const *rules, size_t n, const char *ident, char *out, size_t outlen)
{
  char cur[256];
  snprintf(cur, sizeof cur, "%s", ident);
  for (int pass = 0; pass < 20; pass++) {
    int deny = 0, mutated = 0;
    for (size_t i = 0; i < n && !mutated; i++) {
      const struct bg_sp_rule *r = rules[i];
      int m = r->match_type == 1 ? (strlen(cur) == r->ident_len && !memcmp(cur, r->ident, r->ident_len))
                                 : bg_sp_wildcard_match(r->ident, r->ident_len, cur, strlen(cur));
      if (!m)
        continue;
      if (r->action == 0)
        deny = 0;
      else if (r->action == 1)
        deny = 1;
      else if (r->update_len && (strlen(cur) != r->update_len || memcmp(cur, r->update, r->update_len))) {
        snprintf(cur, sizeof cur, "%.*s", (int)r->update_len, r->update);
        mutated = 1;
      }
    }
    if (!mutated) {
      snprintf(out, outlen, "%s", cur);
      return !deny;
    }
  }
  return -1;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t xorshift(void)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Evaluate |probe| under |orders| random permutations of the rule set;
 * 1 when every order gives the same verdict and final identifier. */
static int same_in_every_order(const struct bg_sp_rule *r, size_t n, const char *probe, int orders)
{
  const struct bg_sp_rule *perm[16];
  char first[256], got[256];
  int v0 = -2;
  for (int o = 0; o < orders; o++) {
    for (size_t i = 0; i < n; i++)
      perm[i] = &r[i];
    for (size_t i = n; i > 1; i--) {
      size_t j = xorshift() % i;
      const struct bg_sp_rule *t = perm[i - 1];
      perm[i - 1] = perm[j];
      perm[j] = t;
    }
    int v = engine_eval(perm, n, probe, got, sizeof got);
    if (o == 0) {
      v0 = v;
      snprintf(first, sizeof first, "%s", got);
    } else if (v != v0 || strcmp(got, first)) {
      return 0;
    }
  }
  return 1;
}

#define RULE(act, mt, id, upd) {act, mt, id, sizeof id - 1, upd, sizeof upd - 1, 0}

static void test_source_policy_orders(void **st)
{
  /* the profile of deploy/policies/multi-tenant.json, plus an allow-list
   * done without order: DENY hub, CONVERT alpine to a mirror, ALLOW the mirror */
  static const struct bg_sp_rule prof[] = {
      RULE(1, 0, "docker-image://docker.io/library/untrusted*", ""),
      RULE(2, 1, "docker-image://docker.io/library/alpine:latest", "docker-image://registry.example.com/mirror/alpine:3.19"),
      RULE(1, 0, "docker-image://docker.io/evil/*", ""),
      RULE(0, 0, "docker-image://registry.example.com/*", ""),
  };
  static const char *const probes[] = {
      "docker-image://docker.io/library/untrusted:1", "docker-image://docker.io/library/alpine:latest",
      "docker-image://docker.io/evil/x", "docker-image://registry.example.com/mirror/alpine:3.19",
      "docker-image://docker.io/library/busybox:latest"};
  size_t i, j;
  assert_int_equal(bg_sp_order_dependent(prof, 4, &i, &j), 0);
  for (size_t k = 0; k < sizeof probes / sizeof *probes; k++)
    if (!same_in_every_order(prof, 4, probes[k], 100))
      fail_msg("%s: the profile's rules give different answers in different orders", probes[k]);

  /* what the gateway forwarded before: the profile's rules merged with a
   * request ALLOW.  Random orders (BuildKit v0.11) disagree about untrusted:1
   * -- the bypass -- and the analysis calls the set order-dependent. */
  static const struct bg_sp_rule merged[] = {
      RULE(2, 1, "docker-image://docker.io/library/alpine:latest", "docker-image://registry.example.com/mirror/alpine:3.19"),
      RULE(0, 0, "docker-image://docker.io/library/untrusted*", ""),
      RULE(1, 0, "docker-image://docker.io/library/untrusted*", ""),
  };
  assert_false(same_in_every_order(merged, 3, "docker-image://docker.io/library/untrusted:1", 100));
  assert_int_equal(bg_sp_order_dependent(merged, 3, &i, &j), 1);
  assert_int_equal(i, 1);
  assert_int_equal(j, 2);
  /* a profile's own "DENY *, then ALLOW x" is order-dependent too */
  static const struct bg_sp_rule denyall[] = {
      RULE(1, 0, "docker-image://*", ""),
      RULE(0, 0, "docker-image://registry.example.com/*", ""),
  };
  assert_int_equal(bg_sp_order_dependent(denyall, 2, &i, &j), 1);
  assert_false(same_in_every_order(denyall, 2, "docker-image://registry.example.com/x", 100));

  /* Soundness over random rule sets: whenever the analysis says "no order
   * dependence", 100 random orders agree on every probe. */
  static const char *const pats[] = {"docker-image://a/*", "docker-image://a/b", "docker-image://*/b",
                                     "docker-image://a/c*", "docker-image://*", "git://*", "docker-image://b/*"};
  static const char *const upds[] = {"docker-image://m/b", "docker-image://a/b", ""};
  static const char *const prb[] = {"docker-image://a/b", "docker-image://a/c1", "docker-image://b/b",
                                    "docker-image://m/b", "git://x", "docker-image://z"};
  int independent = 0;
  for (int t = 0; t < 400; t++) {
    struct bg_sp_rule rs[5];
    size_t n = 2 + xorshift() % 4;
    for (size_t k = 0; k < n; k++) {
      const char *pt = pats[xorshift() % 7], *up = upds[xorshift() % 3];
      rs[k] = (struct bg_sp_rule){(int)(xorshift() % 3), (int)(xorshift() % 2), pt, strlen(pt), up, strlen(up), 0};
      if (rs[k].match_type == 1 && strchr(pt, '*'))
        rs[k].match_type = 0;
    }
    if (bg_sp_order_dependent(rs, n, &i, &j))
      continue;
    independent++;
    for (size_t k = 0; k < sizeof prb / sizeof *prb; k++)
      if (!same_in_every_order(rs, n, prb[k], 100))
        fail_msg("set %d judged order-independent, but %s differs across orders", t, prb[k]);
  }
  assert_true(independent > 50);
}

static void test_overlap(void **st)
{
  static const struct bg_sp_rule a = RULE(0, 0, "docker-image://docker.io/ci/*", ""),
                                 b = RULE(1, 0, "docker-image://docker.io/*/x", ""),
                                 c = RULE(1, 0, "docker-image://registry.example.com/*", ""),
                                 d = RULE(1, 1, "docker-image://docker.io/ci/x", ""),
                                 e = RULE(1, 2, "^git://.*$", "");
  assert_true(bg_sp_may_overlap(&a, &b));  /* docker.io/ci/x */
  assert_false(bg_sp_may_overlap(&a, &c));
  assert_true(bg_sp_may_overlap(&a, &d));
  assert_false(bg_sp_may_overlap(&c, &d));
  assert_true(bg_sp_may_overlap(&a, &e)); /* REGEX: assumed */
  assert_true(bg_buildkit_keeps_rule_order("v0.12.5"));
  assert_true(bg_buildkit_keeps_rule_order("v0.13.0-rc1"));
  assert_false(bg_buildkit_keeps_rule_order("v0.11.6"));
  assert_false(bg_buildkit_keeps_rule_order("0.0.0+unknown"));
  assert_false(bg_buildkit_keeps_rule_order(""));
}

/* A profile with a source policy: the request's rules are refused on every
 * carrier, and the profile's policy waits for the backend facts. */
static uint8_t *sp_bytes(size_t *n, int action, const char *ident)
{
  Moby__Buildkit__V1__Sourcepolicy__Policy pol = MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Rule r = MOBY__BUILDKIT__V1__SOURCEPOLICY__RULE__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Selector s = MOBY__BUILDKIT__V1__SOURCEPOLICY__SELECTOR__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Rule *rs[] = {&r};
  s.identifier = (char *)ident;
  r.action = action;
  r.selector = &s;
  pol.version = 1;
  pol.rules = rs;
  pol.n_rules = 1;
  return pack_any(&pol.base, n);
}

static void test_request_policies_refused(void **st)
{
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  p.source_policy = sp_bytes(&p.source_policy_len, MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY_ACTION__DENY,
                             "docker-image://docker.io/library/untrusted*");
  Moby__Buildkit__V1__Sourcepolicy__Policy pol = MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Rule rr = MOBY__BUILDKIT__V1__SOURCEPOLICY__RULE__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Selector ss = MOBY__BUILDKIT__V1__SOURCEPOLICY__SELECTOR__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Rule *rrs[] = {&rr};
  Moby__Buildkit__V1__Sourcepolicy__Policy *pols[] = {&pol};
  ss.identifier = "docker-image://docker.io/library/untrusted*";
  rr.action = MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY_ACTION__ALLOW;
  rr.selector = &ss;
  pol.rules = rrs;
  pol.n_rules = 1;
  struct bg_inspect r;
  size_t n;
  uint8_t *m;

  Moby__Buildkit__V1__Frontend__SolveRequest bq = MOBY__BUILDKIT__V1__FRONTEND__SOLVE_REQUEST__INIT;
  bq.sourcepolicies = pols;
  bq.n_sourcepolicies = 1;
  m = pack_any(&bq.base, &n);
  bg_inspect_init(&r, &p, "ci", 0, &v0_13);
  bg_inspect_bridge_solve(&r, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "source_policy");
  assert_non_null(strstr(r.reason, "SourcePolicies[0]: the request carries 1 source-policy rule(s)"));
  bg_inspect_free(&r);
  free(m);

  Moby__Buildkit__V1__Frontend__ResolveImageConfigRequest rq =
      MOBY__BUILDKIT__V1__FRONTEND__RESOLVE_IMAGE_CONFIG_REQUEST__INIT;
  rq.ref = "docker.io/library/untrusted:1";
  rq.sourcepolicies = pols;
  rq.n_sourcepolicies = 1;
  m = pack_any(&rq.base, &n);
  bg_inspect_init(&r, &p, "ci", 0, &v0_13);
  bg_inspect_resolve_image_config(&r, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(r.reason, "ResolveImageConfig.SourcePolicies[0]"));
  bg_inspect_free(&r);
  /* a profile without a source policy leaves the tenant's own rules be */
  free(p.source_policy);
  p.source_policy = NULL;
  bg_inspect_init(&r, &p, "ci", 0, &v0_13);
  bg_inspect_resolve_image_config(&r, m, n);
  assert_int_equal(r.grpc_status, 0);
  bg_inspect_free(&r);
  free(m);
}

static void test_policy_waits_for_facts(void **st)
{
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  p.source_policy = sp_bytes(&p.source_policy_len, MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY_ACTION__DENY,
                             "docker-image://docker.io/library/untrusted*");
  struct bg_inspect r;
  const char *kv[] = {"filename", "Dockerfile"};
  /* unknown backend: no decision, no bytes */
  solve(&r, &p, "ci", NULL, "dockerfile.v0", 1, kv);
  assert_int_equal(r.grpc_status, 0);
  assert_true(r.need_facts);
  assert_null(r.out);
  bg_inspect_free(&r);
  static const struct bg_backend_facts unknown = {0, 0, ""};
  size_t n;
  uint8_t *m = solve_with_attrs(&n, "dockerfile.v0", 1, kv);
  bg_inspect_init(&r, &p, "ci", 0, &unknown);
  bg_inspect_control_solve(&r, m, n);
  assert_true(r.need_facts);
  bg_inspect_free(&r);
  /* the wait timed out: refused, not guessed */
  bg_inspect_init(&r, &p, "ci", 0, &unknown);
  r.facts_timed_out = 1;
  bg_inspect_control_solve(&r, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_UNAVAILABLE);
  assert_string_equal(r.rule, "backend_facts");
  bg_inspect_free(&r);
  /* an old daemon (dockerd 20.10: no Control.Info) */
  static const struct bg_backend_facts old = {1, 1, "< v0.11 (no Control.Info)"};
  bg_inspect_init(&r, &p, "ci", 0, &old);
  bg_inspect_control_solve(&r, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_FAILED_PRECONDITION);
  bg_inspect_free(&r);
  /* an order-dependent profile: refused by v0.11 (random order), forwarded to v0.13 */
  p.source_policy_order_dependent = 1;
  bg_inspect_init(&r, &p, "ci", 0, &v0_11);
  bg_inspect_control_solve(&r, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_FAILED_PRECONDITION);
  assert_non_null(strstr(r.reason, "random order"));
  bg_inspect_free(&r);
  bg_inspect_init(&r, &p, "ci", 0, &v0_13);
  bg_inspect_control_solve(&r, m, n);
  assert_int_equal(r.grpc_status, 0);
  Moby__Buildkit__V1__SolveRequest *o = moby__buildkit__v1__solve_request__unpack(NULL, r.outlen, r.out);
  assert_int_equal(o->sourcepolicy->n_rules, 1);
  moby__buildkit__v1__solve_request__free_unpacked(o, NULL);
  /* a second gateway with the same policy (chained) sees exactly the
   * profile's rules: they pass, unchanged */
  struct bg_inspect r2;
  bg_inspect_init(&r2, &p, "ci", 0, &v0_13);
  bg_inspect_control_solve(&r2, r.out, r.outlen);
  assert_int_equal(r2.grpc_status, 0);
  assert_null(r2.out);
  bg_inspect_free(&r2);
  bg_inspect_free(&r);
  free(m);
  free(p.source_policy);
}

/* The same through the call glue: BG_MSG_WAIT_FACTS, then UNAVAILABLE. */
static void test_call_waits_for_facts(void **st)
{
  const char *js = "{\"tenants\": [{\"name\": \"ci\", \"match\": {\"uid\": [5]}, \"profile\": \"b\"}],"
                   " \"profiles\": {\"b\": {\"methods\": [\"@stable\"], \"source_policy\": {\"rules\": ["
                   "{\"action\": \"DENY\", \"selector\": {\"identifier\": \"docker-image://docker.io/x/*\"}},"
                   "{\"action\": \"ALLOW\", \"selector\": {\"identifier\": \"docker-image://docker.io/*\"}}]}}}}";
  struct bg_error err;
  struct bg_policy *pol = bg_policy_load_string(js, strlen(js), &err);
  assert_non_null(pol);
  assert_true(pol->profiles[0].source_policy_order_dependent);
  /* check warns about it */
  char warned[2000] = "";
  size_t nw = bg_policy_lint(pol, collect_warning, warned);
  assert_true(nw >= 1);
  assert_non_null(strstr(warned, "profiles.b.source_policy: rules 0 and 1 may match one source"));
  struct bg_backend_facts facts = {0};
  struct bg_conn *c = bg_conn_open_as_tenant(pol, "ci", "grpc", 1, &facts);
  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(c, "/moby.buildkit.v1.Control/Solve", 31, NULL, 0, &d);
  assert_int_equal(d.grpc_status, 0);
  size_t n;
  const char *kv[] = {"filename", "Dockerfile"};
  uint8_t *m = solve_with_attrs(&n, "dockerfile.v0", 1, kv);
  struct bg_msg_result r;
  bg_call_request(call, m, n, 0, &r);
  assert_int_equal(r.verdict, BG_MSG_WAIT_FACTS);
  /* facts arrive: v0.11 reads rules in random order, this set depends on it */
  facts.known = 1;
  snprintf(facts.buildkit_version, sizeof facts.buildkit_version, "v0.11.6");
  bg_call_request(call, m, n, 0, &r);
  assert_int_equal(r.verdict, BG_MSG_DENY);
  assert_int_equal(r.grpc_status, BG_GRPC_FAILED_PRECONDITION);
  char *audit = NULL;
  bg_call_end(call, r.grpc_status, r.message, n, 0, &audit);
  assert_non_null(strstr(audit, "\"decision\":\"deny\""));
  free(audit);
  /* the probe never answers */
  facts.known = 0;
  call = bg_call_begin(c, "/moby.buildkit.v1.Control/Solve", 31, NULL, 0, &d);
  bg_call_request(call, m, n, 0, &r);
  assert_int_equal(r.verdict, BG_MSG_WAIT_FACTS);
  bg_call_facts_timeout(call);
  bg_call_request(call, m, n, 0, &r);
  assert_int_equal(r.verdict, BG_MSG_DENY);
  assert_int_equal(r.grpc_status, BG_GRPC_UNAVAILABLE);
  bg_call_end(call, r.grpc_status, r.message, n, 0, &audit);
  assert_non_null(strstr(audit, "backend_facts"));
  free(audit);
  free(m);
  bg_conn_close(c);
  bg_policy_unref(pol);
}

/* ResolveImageConfig under a profile with a source policy and isolate: its
 * own policies refused, its session still namespaced. */
static void test_resolve_image_config_call(void **st)
{
  struct bg_error err;
  struct bg_policy *pol = bg_policy_load_file("../../deploy/policies/multi-tenant.json", &err);
  assert_non_null(pol);
  static const struct bg_backend_facts facts = {1, 0, "v0.13.2"};
  struct bg_conn *c = bg_conn_open_as_tenant(pol, "ci", "grpc", 1, &facts);
  static const char path[] = "/moby.buildkit.v1.frontend.LLBBridge/ResolveImageConfig";
  struct bg_call_decision d;
  struct bg_msg_result r;
  char *audit = NULL;
  static const uint8_t plain[] = "\x0a\x06" "alpine" "\x32\x02" "s1";
  struct bg_call *call = bg_call_begin(c, path, sizeof path - 1, NULL, 0, &d);
  assert_true(d.inspect_requests);
  bg_call_request(call, plain, sizeof plain - 1, 0, &r);
  assert_int_equal(r.verdict, BG_MSG_REPLACE);
  assert_non_null(memmem(r.data, r.len, "ci.s1", 5));
  free(r.data);
  bg_call_end(call, 0, NULL, 0, 0, &audit);
  free(audit);
  /* SourcePolicies (8) = [Policy{rules: [Rule{selector: {identifier: "x://"}}]}] */
  static const uint8_t withpol[] = "\x0a\x06" "alpine" "\x32\x02" "s1" "\x42\x0a\x12\x08\x12\x06\x0a\x04" "x://";
  call = bg_call_begin(c, path, sizeof path - 1, NULL, 0, &d);
  bg_call_request(call, withpol, sizeof withpol - 1, 0, &r);
  assert_int_equal(r.verdict, BG_MSG_DENY);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(r.message, "ResolveImageConfig.SourcePolicies[0]"));
  bg_call_end(call, r.grpc_status, r.message, 0, 0, &audit);
  free(audit);
  bg_conn_close(c);
  bg_policy_unref(pol);
}

/* ---- LLBBridge.Return ----------------------------------------------------------------- */

static uint8_t *return_with_metadata(size_t *n, const char *key, const char *value)
{
  Moby__Buildkit__V1__Frontend__ReturnRequest q = MOBY__BUILDKIT__V1__FRONTEND__RETURN_REQUEST__INIT;
  Moby__Buildkit__V1__Frontend__Result res = MOBY__BUILDKIT__V1__FRONTEND__RESULT__INIT;
  Moby__Buildkit__V1__Frontend__Result__MetadataEntry e = MOBY__BUILDKIT__V1__FRONTEND__RESULT__METADATA_ENTRY__INIT;
  Moby__Buildkit__V1__Frontend__Result__MetadataEntry *ep[] = {&e};
  e.key = (char *)key;
  e.value.data = (uint8_t *)value;
  e.value.len = strlen(value);
  res.metadata = ep;
  res.n_metadata = 1;
  res.result_case = MOBY__BUILDKIT__V1__FRONTEND__RESULT__RESULT_REF_DEPRECATED;
  res.refdeprecated = "ref1";
  q.result = &res;
  return pack_any(&q.base, n);
}

static void test_return_metadata(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  struct bg_inspect r;
  size_t n;
  /* image.name is the image exporter's name when name=*: under the prefix or refused */
  uint8_t *m = return_with_metadata(&n, "image.name", "docker.io/victim/app:latest");
  bg_inspect_init(&r, &p, "ci", 0, &v0_13);
  bg_inspect_bridge_return(&r, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "exporter_attrs");
  assert_non_null(strstr(r.reason, "Return.result.metadata[image.name]"));
  bg_inspect_free(&r);
  free(m);
  m = return_with_metadata(&n, "image.name", "registry.example.com/ci/app:latest");
  bg_inspect_init(&r, &p, "ci", 0, &v0_13);
  bg_inspect_bridge_return(&r, m, n);
  assert_int_equal(r.grpc_status, 0);
  assert_null(r.out);
  bg_inspect_free(&r);
  free(m);
  /* a key the image exporter rules delete ("unpack") */
  m = return_with_metadata(&n, "unpack", "true");
  bg_inspect_init(&r, &p, "ci", 0, &v0_13);
  bg_inspect_bridge_return(&r, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  bg_inspect_free(&r);
  free(m);
  /* the image's own config is content, not an attr */
  m = return_with_metadata(&n, "containerimage.config", "{\"architecture\":\"amd64\"}");
  bg_inspect_init(&r, &p, "ci", 0, &v0_13);
  bg_inspect_bridge_return(&r, m, n);
  assert_int_equal(r.grpc_status, 0);
  bg_inspect_free(&r);
  free(m);
  /* ExporterAttr of a final LLBBridge.Solve lands in the same map (base64 values) */
  Moby__Buildkit__V1__Frontend__SolveRequest bq = MOBY__BUILDKIT__V1__FRONTEND__SOLVE_REQUEST__INIT;
  const char *js = "{\"image.name\":\"ZG9ja2VyLmlvL3ZpY3RpbS9hcHA6bGF0ZXN0\"}"; /* docker.io/victim/app:latest */
  bq.exporterattr.data = (uint8_t *)js;
  bq.exporterattr.len = strlen(js);
  bq.final = 1;
  m = pack_any(&bq.base, &n);
  bg_inspect_init(&r, &p, "ci", 0, &v0_13);
  bg_inspect_bridge_solve(&r, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(r.reason, "ExporterAttr[image.name]"));
  bg_inspect_free(&r);
  free(m);
  uint8_t out[16];
  assert_int_equal(bg_base64_std_decode("aGk=", 4, out), 2);
  assert_int_equal(bg_base64_std_decode("aGk", 3, out), -1);
  assert_int_equal(bg_base64_std_decode("a$k=", 4, out), -1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_catalogue_classes),
      cmocka_unit_test(test_restricted_definition),
      cmocka_unit_test(test_syntax_ref_like_go),
      cmocka_unit_test(test_allow_key_loaded_and_linted),
      cmocka_unit_test(test_powers_denied_with_attr_named),
      cmocka_unit_test(test_sources_in_attrs),
      cmocka_unit_test(test_isolate_forces_pull),
      cmocka_unit_test(test_source_policy_orders),
      cmocka_unit_test(test_overlap),
      cmocka_unit_test(test_request_policies_refused),
      cmocka_unit_test(test_policy_waits_for_facts),
      cmocka_unit_test(test_call_waits_for_facts),
      cmocka_unit_test(test_resolve_image_config_call),
      cmocka_unit_test(test_return_metadata),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

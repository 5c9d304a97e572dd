/*
 * test_policy_load.c: the policy file loader (validation, error positions),
 * the built-in default policy, the method catalogue and :path check, tenant
 * matching.
 * Fixture paths are relative to tests/unit (unit_env.c goes there).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy_int.h"
#include "proto/sourcepolicy.pb-c.h"
#include "fixture.h"

#define TOKEN "ci-secret-token"
#define TOKEN_HASH "a1d5601d3a081aea3a98b7dc5b6f20045eee286ab647e9660eed6958ef7ce8e5"


static struct bg_policy *load(const char *json, struct bg_error *err)
{
  return bg_policy_load_string(json, strlen(json), err);
}

/* Expect a load error whose text contains |frag| at line/col (0 = don't care). */
static void expect_error(const char *json, const char *frag, int line, int col)
{
  struct bg_error err;
  struct bg_policy *p = load(json, &err);
  if (p) {
    bg_policy_unref(p);
    fail_msg("policy loaded but expected error \"%s\"", frag);
  }
  if (!strstr(err.text, frag))
    fail_msg("error \"%s\" does not contain \"%s\"", err.text, frag);
  if (line && err.line != line)
    fail_msg("error \"%s\" at line %d, expected %d", err.text, err.line, line);
  if (col && err.column != col)
    fail_msg("error \"%s\" at column %d, expected %d", err.text, err.column, col);
}

static const struct bg_profile *profile(const struct bg_policy *p, const char *name)
{
  for (size_t i = 0; i < p->n_profiles; i++)
    if (strcmp(p->profiles[i].name, name) == 0)
      return &p->profiles[i];
  fail_msg("no profile %s", name);
  return NULL;
}

/* ------------------------------------------------------------- loader */

static void test_design_example(void **state)
{
  size_t n;
  char *txt = fixture_load("../fixtures/policy/design-example.json", &n);
  struct bg_error err;
  struct bg_policy *p = bg_policy_load_string(txt, n, &err);
  if (!p)
    fail_msg("%d:%d %s", err.line, err.column, err.text);
  assert_string_equal(bg_policy_mode(p), "enforce");
  assert_int_equal(p->anonymous, -1);
  assert_int_equal(p->n_tenants, 2);
  assert_string_equal(p->tenants[0].name, "ci");
  assert_int_equal(p->tenants[0].n_uids, 1);
  assert_int_equal(p->tenants[0].uids[0], 1001);
  assert_int_equal(p->tenants[0].n_tokens, 1);
  assert_int_equal(p->tenants[0].tokens[0][0], 0xa1);
  assert_int_equal(p->tenants[0].tokens[0][31], 0xe5);
  const struct bg_profile *b = profile(p, "builder");
  assert_string_equal(p->profiles[p->tenants[0].profile].name, "builder");
  assert_int_equal(b->methods.n, 1);
  assert_string_equal(b->methods.v[0], "@stable");
  assert_int_equal(b->entitlements.n, 0);
  assert_false(b->frontends_any);
  assert_int_equal(b->frontends.n, 2);
  assert_int_equal(b->frontend_attrs.deny.n, 2);
  assert_int_equal(b->frontend_attrs.set.n, 1);
  assert_string_equal(b->frontend_attrs.set.v[0].key, "attest:provenance");
  assert_string_equal(b->frontend_attrs.set.v[0].value, "mode=min");
  assert_false(b->exporters_any);
  assert_int_equal(b->n_exporters, 5);
  assert_string_equal(b->exporters[0].type, "image");
  assert_string_equal(b->exporters[0].attrs.name_prefix, "registry.example.com/${tenant}/");
  assert_int_equal(b->exporters[0].attrs.del.n, 2);
  assert_int_equal(b->exporters[0].attrs.set.n, 1);
  assert_true(b->exporters[0].attrs.push_any);
  assert_string_equal(b->exporters[1].type, "moby");
  assert_false(b->cache_any);
  assert_int_equal(b->cache_import.n, 2);
  assert_int_equal(b->cache_export.n, 2);
  assert_false(b->llb_any);
  assert_int_equal(b->llb_network.n, 2);
  assert_int_equal(b->llb_security.n, 1);
  assert_int_equal(b->llb_sources.n, 2);
  assert_int_equal(b->llb_mounts.n, 2); /* absent inside llb: unrestricted (secret, ssh) */
  assert_null(b->source_policy);
  assert_true(b->isolate);
  assert_int_equal(b->max_message_bytes, 16777216);
  assert_int_equal(b->max_streams, 100);
  const struct bg_profile *a = profile(p, "admin");
  assert_false(a->isolate);
  assert_true(a->exporters_any);
  assert_true(a->llb_any);
  assert_true(a->cache_any);
  assert_true(a->frontends_any);
  assert_int_equal(a->max_message_bytes, BG_DEFAULT_MAX_MESSAGE_BYTES);
  bg_policy_unref(p);
  free(txt);
}

static void test_deploy_examples_load(void **state)
{
  const char *files[] = {"../../deploy/policies/default.json", "../../deploy/policies/multi-tenant.json",
                         "../../deploy/policies/audit-only.json"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    struct bg_error err;
    struct bg_policy *p = bg_policy_load_file(files[i], &err);
    if (!p)
      fail_msg("%s:%d:%d: %s", files[i], err.line, err.column, err.text);
    bg_policy_unref(p);
  }
}

static void test_default_matches_deploy_file(void **state)
{
  char *txt = fixture_load("../../deploy/policies/default.json", NULL);
  assert_string_equal(txt, bg_default_policy_json);
  free(txt);
}

static void test_missing_file(void **state)
{
  struct bg_error err;
  assert_null(bg_policy_load_file("../fixtures/policy/does-not-exist.json", &err));
  assert_non_null(strstr(err.text, "cannot open"));
}

static void test_syntax_error_position(void **state)
{
  /* jansson: line 3, the column just past the offending token */
  struct bg_error err;
  assert_null(load("{\n  \"mode\": \"enforce\",\n  \"tenants\": [,]\n}", &err));
  assert_int_equal(err.line, 3);
  assert_true(err.column > 0);
  expect_error("{\"mode\": \"enforce\"", "", 1, 0);
  expect_error("", "", 0, 0);
}

static void test_duplicate_key(void **state)
{
  expect_error("{\n \"mode\": \"enforce\",\n \"mode\": \"audit\"\n}", "duplicate", 3, 0);
}

static void test_unknown_keys(void **state)
{
  /* top level: the key itself is located */
  expect_error("[1]", "(top level)", 1, 1);
  expect_error("{\n  \"mode\": \"enforce\",\n  \"tenant\": []\n}", "unknown key \"tenant\"", 3, 3);
  /* deep inside a profile */
  expect_error("{\"profiles\": {\n"
               "  \"b\": {\"exporters\": {\"image\": {\"sett\": {}}}}\n"
               "}}",
               "profiles.b.exporters.image.sett: unknown key \"sett\"", 2, 33);
  expect_error("{\"profiles\": {\"b\": {\"llb\": {\"netwrk\": []}}}}", "profiles.b.llb.netwrk: unknown key", 1, 29);
  expect_error("{\"profiles\": {\"b\": {\"limits\": {\"max_msg\": 1}}}}", "unknown key \"max_msg\"", 0, 0);
  expect_error("{\"profiles\": {\"b\": {}}, \"tenants\": [{\"name\": \"a\", \"profile\": \"b\", \"match\": {\"user\": [1]}}]}",
               "tenants[0].match.user: unknown key \"user\"", 1, 0);
}

static void test_wrong_types(void **state)
{
  expect_error("{\"mode\": 1}", "mode: expected a string", 1, 10);
  expect_error("{\"mode\": \"permissive\"}", "mode must be", 1, 10);
  expect_error("{\"tenants\": {}}", "tenants: expected an array", 1, 13);
  expect_error("{\"profiles\": []}", "profiles: expected an object", 1, 14);
  expect_error("{\"profiles\": {\"b\": {\"methods\": \"@stable\"}}}", "profiles.b.methods: expected an array", 1, 32);
  expect_error("{\"profiles\": {\"b\": {\"methods\": [\"@stable\", 7]}}}", "profiles.b.methods[1]: expected a string", 1,
               44);
  expect_error("{\"profiles\": {\"b\": {\"isolate\": \"yes\"}}}", "profiles.b.isolate: expected a boolean", 0, 0);
  expect_error("{\"profiles\": {\"b\": {\"limits\": {\"max_streams\": -1}}}}", "out of range", 0, 0);
  expect_error("{\"profiles\": {\"b\": {\"limits\": {\"max_message_bytes\": 1.5}}}}", "expected an integer", 0, 0);
  expect_error("{\"profiles\": {\"b\": {\"limits\": {\"max_message_bytes\": 10}}}}", "at least 1024", 0, 0);
  expect_error("{\"profiles\": {\"b\": {\"exporters\": {\"image\": {\"set\": {\"push\": false}}}}}}",
               "profiles.b.exporters.image.set.push: expected a string", 0, 0);
  expect_error("[]", "expected an object at the top level", 1, 1);
}

static void test_value_checks(void **state)
{
  expect_error("{\"profiles\": {\"b\": {\"methods\": [\"@stabel\"]}}}", "unknown method class", 0, 0);
  expect_error("{\"profiles\": {\"b\": {\"methods\": [\"moby.buildkit.v1.Control/Solve\"]}}}", "must be", 0, 0);
  expect_error("{\"profiles\": {\"b\": {\"entitlements\": [\"network.hots\"]}}}", "unknown entitlement", 0, 0);
  expect_error("{\"profiles\": {\"b\": {\"entitlements\": [\"net*.hots\"]}}}", "unknown entitlement", 0, 0);
  struct bg_error err;
  const char *globbed = "{\"profiles\": {\"b\": {\"entitlements\": [\"network.*\", \"device=nvidia.com/*\"]}}}";
  struct bg_policy *p = bg_policy_load_string(globbed, strlen(globbed), &err);
  assert_non_null(p);
  bg_policy_unref(p);
  expect_error("{\"profiles\": {\"b\": {\"llb\": {\"network\": [\"bridge\"]}}}}", "unknown network mode", 0, 0);
  expect_error("{\"profiles\": {\"b\": {\"llb\": {\"security\": [\"privileged\"]}}}}", "unknown security mode", 0, 0);
  expect_error("{\"profiles\": {\"b\": {\"llb\": {\"mounts\": [\"bindx\"]}}}}", "unknown extra mount type", 0, 0);
  expect_error("{\"profiles\": {\"b\": {\"exporters\": {\"Image!\": {}}}}}", "bad type name", 1, 35);
  expect_error("{\"profiles\": {\"b\": {\"exporters\": {\"image\": {\"name_prefix\": \"${user}/\"}}}}}",
               "unknown template variable", 0, 0);
  expect_error("{\"profiles\": {\"b c\": {}}}", "profile name", 1, 15);
}

static void test_tenant_errors(void **state)
{
  const char *pre = "{\"profiles\": {\"b\": {}}, \"tenants\": [";
  char buf[1024];
#define T(tenants, frag)                                                                                             \
  do {                                                                                                               \
    snprintf(buf, sizeof buf, "%s%s]}", pre, tenants);                                                               \
    expect_error(buf, frag, 0, 0);                                                                                   \
  } while (0)
  T("{\"name\": \"CI\", \"profile\": \"b\"}", "must match [a-z0-9_-]{1,63}");
  T("{\"name\": \"a.b\", \"profile\": \"b\"}", "must match");
  T("{\"name\": \"\", \"profile\": \"b\"}", "must match");
  T("{\"name\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", \"profile\": \"b\"}", "must match");
  T("{\"name\": \"a\", \"profile\": \"nope\"}", "profile \"nope\" is not defined");
  T("{\"name\": \"a\"}", "missing \"profile\"");
  T("{\"profile\": \"b\"}", "missing \"name\"");
  T("{\"name\": \"a\", \"profile\": \"b\"}, {\"name\": \"a\", \"profile\": \"b\"}", "duplicate tenant name");
  T("{\"name\": \"a\", \"profile\": \"b\", \"match\": {\"token_sha256\": [\"abc\"]}}", "64 hex characters");
  T("{\"name\": \"a\", \"profile\": \"b\", \"match\": {\"token_sha256\": "
    "[\"z1d5601d3a081aea3a98b7dc5b6f20045eee286ab647e9660eed6958ef7ce8e5\"]}}",
    "found 'z'");
  T("{\"name\": \"a\", \"profile\": \"b\", \"match\": {\"uid\": [1000]}}, {\"name\": \"c\", \"profile\": \"b\", "
    "\"match\": {\"uid\": [1000]}}",
    "uid 1000 already maps to tenant \"a\"");
  T("{\"name\": \"a\", \"profile\": \"b\", \"match\": {\"uid\": [-1]}}", "out of range");
  T("{\"name\": \"a\", \"profile\": \"b\", \"match\": {\"uid\": [\"root\"]}}", "expected an integer");
  T("{\"name\": \"a\", \"profile\": \"b\", \"match\": {\"cert_cn\": [\"x\", \"x\"]}}", "already maps");
  T("{\"name\": \"a\", \"profile\": \"b\", \"match\": {\"token_sha256\": [\"" TOKEN_HASH "\"]}}, {\"name\": \"c\", "
    "\"profile\": \"b\", \"match\": {\"token_sha256\": [\"" TOKEN_HASH "\"]}}",
    "token hash already maps");
#undef T
  expect_error("{\"profiles\": {\"b\": {}}, \"tenants\": [{\"name\": \"a\", \"profile\": \"b\"}], \"anonymous\": \"z\"}",
               "anonymous names tenant \"z\"", 1, 0);
  /* the position of a deep tenant error */
  expect_error("{\"profiles\": {\"b\": {}},\n \"tenants\": [\n  {\"name\": \"a\", \"profile\": \"b\"},\n"
               "  {\"name\": \"B\", \"profile\": \"b\"}\n]}",
               "tenants[1].name", 4, 12);
}

static void test_source_policy_encoding(void **state)
{
  const char *js = "{\"profiles\": {\"b\": {\"source_policy\": {\"version\": 1, \"rules\": ["
                   "{\"action\": \"DENY\", \"selector\": {\"identifier\": \"docker-image://docker.io/library/evil*\"}},"
                   "{\"action\": \"CONVERT\", \"selector\": {\"identifier\": \"docker-image://alpine:latest\", "
                   "\"match_type\": \"EXACT\", \"constraints\": [{\"key\": \"k\", \"value\": \"v\", \"condition\": "
                   "\"NOTEQUAL\"}]}, \"updates\": {\"identifier\": \"docker-image://mirror/alpine:3\", \"attrs\": "
                   "{\"a\": \"b\"}}}]}}}}";
  struct bg_error err;
  struct bg_policy *p = load(js, &err);
  if (!p)
    fail_msg("%s", err.text);
  const struct bg_profile *b = profile(p, "b");
  assert_non_null(b->source_policy);
  /* Decoded with the generated protobuf-c code of proto/sourcepolicy.proto. */
  Moby__Buildkit__V1__Sourcepolicy__Policy *sp =
      moby__buildkit__v1__sourcepolicy__policy__unpack(NULL, b->source_policy_len, b->source_policy);
  assert_non_null(sp);
  assert_int_equal(sp->version, 1);
  assert_int_equal(sp->n_rules, 2);
  assert_int_equal(sp->rules[0]->action, MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY_ACTION__DENY);
  assert_string_equal(sp->rules[0]->selector->identifier, "docker-image://docker.io/library/evil*");
  assert_null(sp->rules[0]->updates);
  assert_int_equal(sp->rules[1]->action, MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY_ACTION__CONVERT);
  assert_int_equal(sp->rules[1]->selector->match_type, MOBY__BUILDKIT__V1__SOURCEPOLICY__MATCH_TYPE__EXACT);
  assert_int_equal(sp->rules[1]->selector->n_constraints, 1);
  assert_string_equal(sp->rules[1]->selector->constraints[0]->key, "k");
  assert_int_equal(sp->rules[1]->selector->constraints[0]->condition,
                   MOBY__BUILDKIT__V1__SOURCEPOLICY__ATTR_MATCH__NOTEQUAL);
  assert_string_equal(sp->rules[1]->updates->identifier, "docker-image://mirror/alpine:3");
  assert_int_equal(sp->rules[1]->updates->n_attrs, 1);
  assert_string_equal(sp->rules[1]->updates->attrs[0]->key, "a");
  assert_string_equal(sp->rules[1]->updates->attrs[0]->value, "b");
  moby__buildkit__v1__sourcepolicy__policy__free_unpacked(sp, NULL);
  bg_policy_unref(p);

  expect_error("{\"profiles\": {\"b\": {\"source_policy\": {\"rules\": [{\"action\": \"DROP\", \"selector\": "
               "{\"identifier\": \"x\"}}]}}}}",
               "profiles.b.source_policy.rules[0].action", 0, 0);
  expect_error("{\"profiles\": {\"b\": {\"source_policy\": {\"rules\": [{\"action\": \"CONVERT\", \"selector\": "
               "{\"identifier\": \"x\"}}]}}}}",
               "needs \"updates\"", 0, 0);
  expect_error("{\"profiles\": {\"b\": {\"source_policy\": {\"rules\": [{\"action\": \"DENY\"}]}}}}", "missing \"selector\"",
               0, 0);
  expect_error("{\"profiles\": {\"b\": {\"source_policy\": {\"rulez\": []}}}}", "unknown key \"rulez\"", 0, 0);
}

/* ---------------------------------------------------- default policy */

static void test_default_policy(void **state)
{
  struct bg_policy *p = bg_policy_load_default();
  assert_non_null(p);
  assert_true(p->is_default);
  assert_string_equal(bg_policy_mode(p), "enforce");
  assert_int_equal(p->n_tenants, 1);
  const struct bg_profile *l = profile(p, "local");
  assert_int_equal(l->entitlements.n, 0);
  assert_false(l->exporters_any);
  assert_int_equal(l->n_exporters, 6);
  assert_false(l->llb_any);
  assert_int_equal(l->llb_network.n, 2);
  assert_int_equal(l->llb_security.n, 1);
  assert_string_equal(l->llb_security.v[0], "sandbox");
  assert_false(l->session_exporter);
  assert_false(l->isolate);
  const char *allowed[] = {"/moby.buildkit.v1.Control/Solve", "/moby.buildkit.v1.Control/Status",
                           "/moby.buildkit.v1.Control/Session", "/moby.buildkit.v1.Control/ListWorkers",
                           "/moby.buildkit.v1.Control/Info", "/moby.buildkit.v1.Control/DiskUsage",
                           "/moby.buildkit.v1.Control/ListenBuildHistory", "/moby.buildkit.v1.frontend.LLBBridge/Solve",
                           "/moby.buildkit.v1.frontend.LLBBridge/Ping", "/moby.buildkit.v1.frontend.LLBBridge/Return",
                           "/moby.buildkit.v1.frontend.LLBBridge/ResolveImageConfig",
                           "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                           "/containerd.services.content.v1.Content/Info", "/containerd.services.content.v1.Content/Read",
                           "/grpc.health.v1.Health/Check"};
  const char *denied[] = {"/moby.buildkit.v1.Control/Prune", "/moby.buildkit.v1.Control/UpdateBuildHistory",
                          "/moby.buildkit.v1.frontend.LLBBridge/NewContainer",
                          "/moby.buildkit.v1.frontend.LLBBridge/ExecProcess",
                          "/containerd.services.content.v1.Content/Delete", "/containerd.services.content.v1.Content/List",
                          "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "/x.Y/Z"};
  const char *rule;
  for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
    if (!bg_methods_allow(&l->methods, allowed[i], &rule))
      fail_msg("default policy denies %s", allowed[i]);
  for (size_t i = 0; i < sizeof denied / sizeof *denied; i++)
    if (bg_methods_allow(&l->methods, denied[i], &rule))
      fail_msg("default policy allows %s", denied[i]);

  /* any unix peer is "local"; a plain TCP peer is refused; a verified cert is local */
  struct bg_identity id = {0};
  id.has_peercred = 1;
  id.uid = 4242;
  id.peer = "unix:uid=4242";
  char *refusal = NULL, *audit = NULL;
  struct bg_conn *c = bg_conn_open(p, &id, "docker-grpc", 1, NULL, &refusal, &audit);
  assert_non_null(c);
  assert_string_equal(bg_conn_tenant(c), "local");
  assert_string_equal(bg_conn_identified_by(c), "unix");
  assert_int_equal(bg_conn_max_streams(c), 0);
  bg_conn_close(c);
  struct bg_identity tcp = {0};
  tcp.peer = "tcp:10.0.0.1:5555";
  c = bg_conn_open(p, &tcp, "grpc", 2, NULL, &refusal, &audit);
  assert_null(c);
  assert_non_null(refusal);
  assert_non_null(strstr(refusal, "no tenant"));
  assert_non_null(audit);
  assert_non_null(strstr(audit, "\"decision\":\"deny\""));
  free(refusal);
  free(audit);
  tcp.cert_cn = "alice";
  c = bg_conn_open(p, &tcp, "grpc", 3, NULL, &refusal, &audit);
  assert_non_null(c);
  assert_string_equal(bg_conn_identified_by(c), "cert");
  bg_conn_close(c);
  bg_policy_unref(p);
}

/* ---------------------------------------------------- methods and paths */

static void test_path_check(void **state)
{
  char why[200];
  const char *good[] = {"/moby.buildkit.v1.Control/Solve", "/grpc.health.v1.Health/Check", "/a.B/C", "/x.y.Z/M_1"};
  const char *bad[] = {"moby.buildkit.v1.Control/Solve", "//x", "/a/b/c", "/a.B/", "/", "", "//moby.buildkit.v1.Control/Solve",
                       "/moby.buildkit.v1.Control//Solve", "/moby.buildkit.v1.Control/Solve/",
                       "/moby.buildkit.v1.Control/Solve?x=1", "/moby.buildkit.v1.Control/Sol%76e",
                       "/moby.buildkit.v1.Control/Sol ve", "/moby..Control/Solve", "/.Control/Solve", "/Control/Solve",
                       "/moby.buildkit.v1.Control./Solve", "/moby.buildkit.v1.Control/Solve#f", "/a-b.C/D"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    if (bg_path_check(good[i], strlen(good[i]), why, sizeof why) != 0)
      fail_msg("%s refused: %s", good[i], why);
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (bg_path_check(bad[i], strlen(bad[i]), why, sizeof why) == 0)
      fail_msg("%s accepted", bad[i]);
  /* non-printable, embedded NUL, over-long */
  assert_int_equal(bg_path_check("/a.B/C\x01", 7, why, sizeof why), -1);
  assert_int_equal(bg_path_check("/a.B/C\0D", 8, why, sizeof why), -1);
  assert_int_equal(bg_path_check("/a.B/\xc3\xa9", 7, why, sizeof why), -1);
  char longp[400];
  memset(longp, 'a', sizeof longp);
  memcpy(longp, "/a.B/", 5);
  assert_int_equal(bg_path_check(longp, sizeof longp, why, sizeof why), -1);
  assert_non_null(strstr(why, "longer"));
}

static void test_catalogue_classes(void **state)
{
  size_t n;
  const struct bg_method *m = bg_method_catalogue(&n);
  char why[200];
  for (size_t i = 0; i < n; i++)
    if (bg_path_check(m[i].path, strlen(m[i].path), why, sizeof why) != 0)
      fail_msg("catalogue path %s: %s", m[i].path, why);
  struct {
    const char *path;
    enum bg_mclass cls;
  } want[] = {
      {"/moby.buildkit.v1.Control/Solve", BG_MC_STABLE},
      {"/moby.buildkit.v1.Control/ListWorkers", BG_MC_STABLE},
      {"/moby.buildkit.v1.Control/ListenBuildHistory", BG_MC_UNSTABLE},
      {"/moby.buildkit.v1.Control/Prune", BG_MC_POWERFUL},
      {"/moby.buildkit.v1.Control/DiskUsage", BG_MC_POWERFUL},
      {"/moby.buildkit.v1.Control/UpdateBuildHistory", BG_MC_POWERFUL},
      {"/moby.buildkit.v1.frontend.LLBBridge/Evaluate", BG_MC_UNSTABLE},
      {"/moby.buildkit.v1.frontend.LLBBridge/NewContainer", BG_MC_POWERFUL},
      {"/moby.buildkit.v1.frontend.LLBBridge/ExecProcess", BG_MC_POWERFUL},
      {"/moby.buildkit.v1.frontend.LLBBridge/Warn", BG_MC_STABLE},
      {"/containerd.services.content.v1.Content/Read", BG_MC_POWERFUL},
      {"/grpc.health.v1.Health/Watch", BG_MC_STABLE},
      {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", BG_MC_UNSTABLE},
      {"/opentelemetry.proto.collector.trace.v1.TraceService/Export", BG_MC_UNSTABLE},
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    const struct bg_method *x = bg_method_lookup(want[i].path);
    assert_non_null(x);
    assert_int_equal(x->cls, want[i].cls);
  }
  assert_null(bg_method_lookup("/moby.buildkit.v1.Control/Nope"));
}

static void test_method_rules(void **state)
{
  char *stable[] = {"@stable"}, *unstable[] = {"@unstable"}, *powerful[] = {"@powerful"};
  char *star_but_prune[] = {"*", "!/moby.buildkit.v1.Control/Prune"};
  char *svc_glob[] = {"/moby.buildkit.v1.frontend.LLBBridge/*", "/x.Y/Z"};
  struct bg_strlist S = {stable, 1}, U = {unstable, 1}, P = {powerful, 1}, SP = {star_but_prune, 2}, G = {svc_glob, 2};
  const char *rule;
  assert_true(bg_methods_allow(&S, "/moby.buildkit.v1.Control/Solve", &rule));
  assert_string_equal(rule, "@stable");
  assert_false(bg_methods_allow(&S, "/moby.buildkit.v1.Control/Prune", &rule));
  assert_null(rule);
  assert_false(bg_methods_allow(&S, "/moby.buildkit.v1.Control/ListenBuildHistory", &rule));
  assert_true(bg_methods_allow(&U, "/moby.buildkit.v1.Control/ListenBuildHistory", &rule));
  assert_false(bg_methods_allow(&U, "/moby.buildkit.v1.Control/Solve", &rule));
  assert_true(bg_methods_allow(&P, "/moby.buildkit.v1.Control/Prune", &rule));
  assert_false(bg_methods_allow(&P, "/moby.buildkit.v1.Control/Solve", &rule));
  /* unknown methods: no class includes them */
  assert_false(bg_methods_allow(&S, "/moby.buildkit.v1.Control/Future", &rule));
  assert_false(bg_methods_allow(&P, "/moby.buildkit.v1.Control/Future", &rule));
  assert_true(bg_methods_allow(&SP, "/moby.buildkit.v1.Control/Future", &rule));
  assert_false(bg_methods_allow(&SP, "/moby.buildkit.v1.Control/Prune", &rule));
  assert_string_equal(rule, "!/moby.buildkit.v1.Control/Prune");
  assert_true(bg_methods_allow(&G, "/moby.buildkit.v1.frontend.LLBBridge/NewContainer", &rule));
  assert_true(bg_methods_allow(&G, "/x.Y/Z", &rule));
  assert_false(bg_methods_allow(&G, "/moby.buildkit.v1.Control/Solve", &rule));
}

/* ------------------------------------------------------------- tenants */

static struct bg_policy *multi(void)
{
  struct bg_error err;
  struct bg_policy *p = bg_policy_load_file("../../deploy/policies/multi-tenant.json", &err);
  if (!p)
    fail_msg("%d:%d %s", err.line, err.column, err.text);
  return p;
}

static struct bg_conn *open_id(struct bg_policy *p, struct bg_identity *id, const char *door, char **refusal)
{
  char *audit = NULL;
  *refusal = NULL;
  struct bg_conn *c = bg_conn_open(p, id, door, 7, NULL, refusal, &audit);
  if (c)
    assert_null(audit);
  else
    assert_non_null(audit);
  if (audit)
    assert_null(strstr(audit, TOKEN));
  free(audit);
  return c;
}

static void test_tenant_matching(void **state)
{
  struct bg_policy *p = multi();
  char *refusal;
  struct bg_identity id = {0};
  struct bg_conn *c;

  id.has_peercred = 1;
  id.uid = 1001;
  id.gid = 100;
  c = open_id(p, &id, "docker-grpc", &refusal);
  assert_non_null(c);
  assert_string_equal(bg_conn_tenant(c), "ci");
  assert_string_equal(bg_conn_identified_by(c), "uid");
  assert_int_equal(bg_conn_max_streams(c), 100);
  bg_conn_close(c);

  id.uid = 1500;
  id.gid = 2000;
  c = open_id(p, &id, "docker-grpc", &refusal);
  assert_non_null(c);
  assert_string_equal(bg_conn_tenant(c), "dev-team");
  assert_string_equal(bg_conn_identified_by(c), "gid");
  bg_conn_close(c);

  id.uid = 0;
  c = open_id(p, &id, "docker-grpc", &refusal);
  assert_string_equal(bg_conn_tenant(c), "admin"); /* uid before gid */
  assert_int_equal(bg_conn_max_streams(c), 0);
  bg_conn_close(c);

  /* certificate first, even for uid 0 */
  id.cert_cn = "ci";
  c = open_id(p, &id, "docker-grpc", &refusal);
  assert_string_equal(bg_conn_tenant(c), "ci");
  assert_string_equal(bg_conn_identified_by(c), "cert");
  bg_conn_close(c);
  /* SAN, glob */
  const char *sans[] = {"spiffe://x", "build1.dev.example.com"};
  id.cert_cn = "unknown";
  id.cert_sans = sans;
  id.n_cert_sans = 2;
  c = open_id(p, &id, "docker-grpc", &refusal);
  assert_string_equal(bg_conn_tenant(c), "dev-team");
  assert_string_equal(bg_conn_identified_by(c), "cert");
  bg_conn_close(c);

  /* token over uid */
  struct bg_identity tk = {0};
  tk.has_peercred = 1;
  tk.uid = 0;
  tk.bearer_token = TOKEN;
  c = open_id(p, &tk, "docker-grpc", &refusal);
  assert_string_equal(bg_conn_tenant(c), "ci");
  assert_string_equal(bg_conn_identified_by(c), "token");
  bg_conn_close(c);
  /* wrong token: refused, even with a uid that names a tenant (a mistyped
   * token must not quietly run as whatever the uid is) */
  tk.bearer_token = "nope";
  c = open_id(p, &tk, "docker-grpc", &refusal);
  assert_null(c);
  assert_non_null(strstr(refusal, "bearer token matches no tenant"));
  free(refusal);
  /* token over certificate too */
  tk.bearer_token = TOKEN;
  tk.cert_cn = "b1.dev.example.com"; /* dev-team's */
  c = open_id(p, &tk, "docker-grpc", &refusal);
  assert_string_equal(bg_conn_tenant(c), "ci");
  assert_string_equal(bg_conn_identified_by(c), "token");
  bg_conn_close(c);
  tk.cert_cn = NULL;
  tk.bearer_token = "nope";
  /* wrong token and nothing else: refused with a clear reason */
  tk.has_peercred = 0;
  tk.peer = "tcp:1.2.3.4:5";
  c = open_id(p, &tk, "docker-grpc", &refusal);
  assert_null(c);
  assert_non_null(strstr(refusal, "bearer token matches no tenant"));
  free(refusal);

  /* no match, anonymous null: refused, naming the peer */
  struct bg_identity nobody = {0};
  nobody.has_peercred = 1;
  nobody.uid = 31337;
  nobody.gid = 31337;
  nobody.peer = "unix:uid=31337,pid=9";
  c = open_id(p, &nobody, "docker-grpc", &refusal);
  assert_null(c);
  assert_non_null(strstr(refusal, "unix:uid=31337"));
  free(refusal);
  bg_policy_unref(p);

  /* anonymous tenant */
  struct bg_error err;
  p = bg_policy_load_file("../../deploy/policies/audit-only.json", &err);
  assert_non_null(p);
  c = open_id(p, &nobody, "docker-grpc", &refusal);
  assert_non_null(c);
  assert_string_equal(bg_conn_tenant(c), "everyone");
  assert_string_equal(bg_conn_identified_by(c), "anonymous");
  bg_conn_close(c);
  bg_policy_unref(p);
}

static void test_token_constant_time_lookup(void **state)
{
  struct bg_policy *p = multi();
  assert_int_equal(bg_tenant_by_token(p, TOKEN, strlen(TOKEN)), 0);
  assert_int_equal(bg_tenant_by_token(p, TOKEN, strlen(TOKEN) - 1), -1);
  assert_int_equal(bg_tenant_by_token(p, "", 0), -1);
  bg_policy_unref(p);
}

static void collect(void *arg, const char *msg)
{
  char *buf = arg;
  strncat(buf, msg, 4000 - strlen(buf));
  strncat(buf, "\n", 4000 - strlen(buf));
}

static void test_lint(void **state)
{
  const char *js = "{\"tenants\": [{\"name\": \"ghost\", \"profile\": \"iso\"}],"
                   " \"profiles\": {\"iso\": {\"methods\": [\"*\"]}, \"spare\": {}}}";
  struct bg_error err;
  struct bg_policy *p = bg_policy_load_string(js, strlen(js), &err);
  assert_non_null(p);
  char buf[4096] = "";
  size_t n = bg_policy_lint(p, collect, buf);
  assert_non_null(strstr(buf, "\"ghost\" has no match criteria"));
  assert_non_null(strstr(buf, "profiles.spare is not used"));
  assert_non_null(strstr(buf, "profiles.spare allows no methods"));
  assert_non_null(strstr(buf, "profiles.iso isolates but allows DiskUsage"));
  assert_non_null(strstr(buf, "outside the catalogue"));
  assert_true(n >= 5);
  bg_policy_unref(p);
  /* the shipped examples are clean (audit-only says it is audit-only) */
  p = bg_policy_load_default();
  buf[0] = '\0';
  assert_int_equal(bg_policy_lint(p, collect, buf), 0);
  bg_policy_unref(p);
  /* multi-tenant.json pins images with an allow-list source policy (DENY
   * docker-image://* plus ALLOWs): that is what the frontend-image warning
   * asks for, and it needs a backend that keeps rule order, which is the one
   * thing check says about it */
  p = bg_policy_load_file("../../deploy/policies/multi-tenant.json", &err);
  assert_int_equal(bg_policy_lint(p, collect, buf), 1);
  assert_non_null(strstr(buf, "profiles.builder.source_policy: rules 0 and 1 may match one source"));
  assert_non_null(strstr(buf, "v0.12+ keeps order"));
  bg_policy_unref(p);
}

static void test_refcount(void **state)
{
  struct bg_policy *p = bg_policy_load_default();
  struct bg_identity id = {0};
  id.has_peercred = 1;
  char *r = NULL, *a = NULL;
  struct bg_conn *c = bg_conn_open(p, &id, "grpc", 1, NULL, &r, &a);
  assert_non_null(c);
  bg_policy_unref(p); /* "reload": the connection keeps the old policy alive */
  assert_string_equal(bg_conn_tenant(c), "local");
  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(c, "/moby.buildkit.v1.Control/Status", 32, NULL, 0, &d);
  assert_int_equal(d.grpc_status, 0);
  bg_call_end(call, 0, NULL, 0, 0, &a);
  free(a);
  bg_conn_close(c);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_design_example),
      cmocka_unit_test(test_deploy_examples_load),
      cmocka_unit_test(test_default_matches_deploy_file),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_syntax_error_position),
      cmocka_unit_test(test_duplicate_key),
      cmocka_unit_test(test_unknown_keys),
      cmocka_unit_test(test_wrong_types),
      cmocka_unit_test(test_value_checks),
      cmocka_unit_test(test_tenant_errors),
      cmocka_unit_test(test_source_policy_encoding),
      cmocka_unit_test(test_default_policy),
      cmocka_unit_test(test_path_check),
      cmocka_unit_test(test_catalogue_classes),
      cmocka_unit_test(test_method_rules),
      cmocka_unit_test(test_tenant_matching),
      cmocka_unit_test(test_token_constant_time_lookup),
      cmocka_unit_test(test_lint),
      cmocka_unit_test(test_refcount),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

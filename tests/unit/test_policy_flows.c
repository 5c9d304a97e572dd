/*
 * test_policy_flows.c: replay whole captured client sessions (every call with
 * its real metadata and request messages, from fixtures/captured via
 * tests/fixtures/policy/flows/) through the policy, as the gateway would.
 *
 *  - the built-in default policy lets the plain builds of buildctl and buildx
 *    through unchanged, refuses Prune and an entitlement request;
 *  - under an isolating profile the names the glue namespaces in headers (the
 *    session UUID, the build ID) are exactly the names the inspectors
 *    namespace inside the Solve request, so the daemon still pairs them.
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
#include <jansson.h>

#include "policy/policy.h"
#include "fixture.h"

#define DIR "../fixtures/policy/flows/"

struct outcome {
  int calls, denied, rewritten_msgs, edited_calls;
  char denied_methods[512];
  /* names seen namespaced: header edits and inside replaced messages */
  char session_hdr[128], buildid_hdr[128];
  uint8_t *solve_out;
  size_t solve_outlen;
  uint8_t *status_out;
  size_t status_outlen;
};


static void replay(struct bg_policy *p, uid_t uid, const char *scenario, struct outcome *o)
{
  memset(o, 0, sizeof *o);
  char path[512];
  snprintf(path, sizeof path, DIR "%s/index.jsonl", scenario);
  FILE *f = fopen(path, "r");
  if (!f)
    fail_msg("cannot open %s", path);
  struct bg_identity id = {0};
  id.has_peercred = 1;
  id.uid = uid;
  id.gid = uid;
  id.peer = "unix:test";
  char *refusal = NULL, *audit = NULL;
  /* a backend that keeps source-policy rule order: decisions that depend on
   * the backend (multi-tenant.json has a source policy) are made, not held */
  static const struct bg_backend_facts facts = {1, 0, "v0.13.2"};
  struct bg_conn *c = bg_conn_open(p, &id, "grpc", 1, &facts, &refusal, &audit);
  assert_non_null(c);

  /* index.jsonl: a call line (with metadata) then its message lines */
  char line[65536];
  json_t *lines[4096];
  size_t nl = 0;
  while (fgets(line, sizeof line, f) && nl < 4096) {
    json_t *j = json_loads(line, 0, NULL);
    assert_non_null(j);
    lines[nl++] = j;
  }
  fclose(f);
  for (size_t i = 0; i < nl; i++) {
    json_t *md = json_object_get(lines[i], "metadata");
    if (!md)
      continue;
    json_int_t callno = json_integer_value(json_object_get(lines[i], "call"));
    const char *method = json_string_value(json_object_get(lines[i], "method"));
    struct bg_header hdrs[64];
    size_t nh = 0;
    const char *k;
    json_t *vals;
    json_object_foreach(md, k, vals) {
      size_t vi;
      json_t *v;
      json_array_foreach(vals, vi, v) {
        if (nh < 64 && k[0] != ':')
          hdrs[nh++] = (struct bg_header){k, strlen(k), json_string_value(v), strlen(json_string_value(v))};
      }
    }
    struct bg_call_decision d;
    struct bg_call *call = bg_call_begin(c, method, strlen(method), hdrs, nh, &d);
    assert_non_null(call);
    o->calls++;
    int status = d.grpc_status;
    for (size_t e = 0; e < d.n_edits; e++) {
      if (strcmp(d.edits[e].name, "x-docker-expose-session-uuid") == 0 && d.edits[e].n_values)
        snprintf(o->session_hdr, sizeof o->session_hdr, "%s", d.edits[e].values[0]);
      if (strcmp(d.edits[e].name, "buildkit-controlapi-buildid") == 0 && d.edits[e].n_values)
        snprintf(o->buildid_hdr, sizeof o->buildid_hdr, "%s", d.edits[e].values[0]);
    }
    if (d.n_edits)
      o->edited_calls++;
    for (size_t m = 0; m < nl && !status; m++) {
      if (json_integer_value(json_object_get(lines[m], "call")) != callno ||
          !json_object_get(lines[m], "dir") ||
          strcmp(json_string_value(json_object_get(lines[m], "dir")), "req") != 0)
        continue;
      if (!d.inspect_requests)
        continue;
      char mp[512];
      snprintf(mp, sizeof mp, DIR "%s/%s", scenario, json_string_value(json_object_get(lines[m], "file")));
      size_t len;
      uint8_t *msg = fixture_load(mp, &len);
      struct bg_msg_result r;
      bg_call_request(call, msg, len, 0, &r);
      if (r.verdict == BG_MSG_DENY)
        status = r.grpc_status;
      if (r.verdict == BG_MSG_REPLACE) {
        o->rewritten_msgs++;
        if (strcmp(method, "/moby.buildkit.v1.Control/Solve") == 0 && !o->solve_out) {
          o->solve_out = r.data;
          o->solve_outlen = r.len;
          r.data = NULL;
        }
        if (strcmp(method, "/moby.buildkit.v1.Control/Status") == 0 && !o->status_out) {
          o->status_out = r.data;
          o->status_outlen = r.len;
          r.data = NULL;
        }
        free(r.data);
      }
      free(msg);
    }
    if (status) {
      o->denied++;
      size_t w = strlen(o->denied_methods);
      snprintf(o->denied_methods + w, sizeof o->denied_methods - w, "%s ", method);
    }
    char *al = NULL;
    bg_call_end(call, status, NULL, 0, 0, &al);
    assert_non_null(al);
    free(al);
  }
  for (size_t i = 0; i < nl; i++)
    json_decref(lines[i]);
  bg_conn_close(c);
}

static void test_default_allows_plain_builds(void **state)
{
  struct bg_policy *p = bg_policy_load_default();
  const char *ok[] = {"buildctl-dockerfile-local", "buildx-remote-build", "buildx-remote-image", "buildctl-image-push"};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    struct outcome o;
    replay(p, 1000, ok[i], &o);
    if (o.denied)
      fail_msg("%s: default policy denied %s", ok[i], o.denied_methods);
    assert_true(o.calls > 3);
    assert_int_equal(o.rewritten_msgs, 0); /* the default rewrites nothing */
    assert_int_equal(o.edited_calls, 0);
    free(o.solve_out);
    free(o.status_out);
  }
  struct outcome o;
  replay(p, 1000, "buildctl-admin-calls", &o);
  assert_int_equal(o.denied, 1);
  assert_string_equal(o.denied_methods, "/moby.buildkit.v1.Control/Prune ");
  replay(p, 1000, "buildctl-entitlement", &o);
  assert_int_equal(o.denied, 1);
  assert_string_equal(o.denied_methods, "/moby.buildkit.v1.Control/Solve ");
  bg_policy_unref(p);
}

static void test_isolation_names_agree(void **state)
{
  struct bg_error err;
  struct bg_policy *p = bg_policy_load_file("../../deploy/policies/multi-tenant.json", &err);
  assert_non_null(p);
  struct outcome o;
  replay(p, 1001, "buildctl-dockerfile-local", &o);
  if (o.denied)
    fail_msg("multi-tenant/ci denied %s", o.denied_methods);
  assert_string_equal(o.session_hdr, "ci.j9wjxj7bytufm3k3plzd9lgqy");
  assert_string_equal(o.buildid_hdr, "ci.t25dknjy427y37n5tocweer3v");
  assert_non_null(o.solve_out);
  /* the rewritten SolveRequest carries the same namespaced Ref and Session */
  assert_non_null(memmem(o.solve_out, o.solve_outlen, o.session_hdr, strlen(o.session_hdr)));
  assert_non_null(memmem(o.solve_out, o.solve_outlen, o.buildid_hdr, strlen(o.buildid_hdr)));
  /* ... and Status asks for that same namespaced ref */
  assert_non_null(o.status_out);
  assert_non_null(memmem(o.status_out, o.status_outlen, o.buildid_hdr, strlen(o.buildid_hdr)));
  free(o.solve_out);
  free(o.status_out);
  bg_policy_unref(p);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_allows_plain_builds),
      cmocka_unit_test(test_isolation_names_agree),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

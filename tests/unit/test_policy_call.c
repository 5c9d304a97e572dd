/*
 * test_policy_call.c: the call glue of policy.h: method decisions, malformed
 * paths, per-call bearer tokens, audit mode, size limits, compressed
 * messages, header edits for isolation, the audit record.  Messages are real
 * captured bytes (tests/fixtures/policy/, copied from fixtures/captured).
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
#include <zlib.h>

#include "policy/policy.h"
#include "fixture.h"

#define TOKEN "ci-secret-token"
#define TOKEN_HASH "a1d5601d3a081aea3a98b7dc5b6f20045eee286ab647e9660eed6958ef7ce8e5"
#define SOLVE "/moby.buildkit.v1.Control/Solve"

static const char *policy_json(int audit)
{
  static char buf[2048];
  snprintf(buf, sizeof buf,
           "{\"mode\": \"%s\", \"anonymous\": null,"
           " \"tenants\": ["
           "  {\"name\": \"ci\", \"match\": {\"uid\": [1001], \"token_sha256\": [\"" TOKEN_HASH "\"]}, \"profile\": \"builder\"},"
           "  {\"name\": \"admin\", \"match\": {\"uid\": [0]}, \"profile\": \"admin\"}],"
           " \"profiles\": {"
           "  \"admin\": {\"methods\": [\"*\"], \"entitlements\": [\"*\"], \"isolate\": false},"
           "  \"builder\": {\"methods\": [\"@stable\"], \"entitlements\": [], \"isolate\": true,"
           "               \"limits\": {\"max_message_bytes\": 1024, \"max_streams\": 8}}}}",
           audit ? "audit" : "enforce");
  return buf;
}

static struct bg_policy *policy(int audit)
{
  struct bg_error err;
  const char *js = policy_json(audit);
  struct bg_policy *p = bg_policy_load_string(js, strlen(js), &err);
  if (!p)
    fail_msg("%s", err.text);
  return p;
}

static struct bg_conn *conn_uid(struct bg_policy *p, uid_t uid)
{
  struct bg_identity id = {0};
  id.has_peercred = 1;
  id.uid = uid;
  id.gid = uid;
  id.peer = "unix:uid=test";
  char *refusal = NULL, *audit = NULL;
  struct bg_conn *c = bg_conn_open(p, &id, "grpc", 42, NULL, &refusal, &audit);
  assert_non_null(c);
  return c;
}


static uint8_t *gzip_bytes(const uint8_t *in, size_t len, size_t *outlen)
{
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  size_t cap = deflateBound(&zs, (uLong)len) + 64;
  uint8_t *out = malloc(cap);
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)len;
  zs.next_out = out;
  zs.avail_out = (uInt)cap;
  assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
  *outlen = cap - zs.avail_out;
  deflateEnd(&zs);
  return out;
}

#define H(n, v) {n, sizeof(n) - 1, v, sizeof(v) - 1}

/* End the call and return its audit record parsed (caller json_decref). */
static json_t *end_call(struct bg_call *call, int status, char **raw)
{
  char *line = NULL;
  bg_call_end(call, status, NULL, 10, 20, &line);
  assert_non_null(line);
  assert_null(strchr(line, '\n'));
  json_error_t je;
  json_t *a = json_loads(line, 0, &je);
  if (!a)
    fail_msg("audit line is not JSON: %s: %s", je.text, line);
  if (raw)
    *raw = line;
  else
    free(line);
  return a;
}

static const char *jget(json_t *a, const char *k)
{
  json_t *v = json_object_get(a, k);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static void test_allow_and_audit_fields(void **state)
{
  struct bg_policy *p = policy(0);
  struct bg_conn *c = conn_uid(p, 1001);
  assert_int_equal(bg_conn_max_streams(c), 8);
  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(c, "/moby.buildkit.v1.Control/ListWorkers", 37, NULL, 0, &d);
  assert_int_equal(d.grpc_status, 0);
  assert_false(d.inspect_requests);
  assert_int_equal(d.max_message_bytes, 1024);
  json_t *a = end_call(call, 0, NULL);
  const char *keys[] = {"time", "conn", "tenant", "identified_by", "peer", "door", "method", "decision", "rule",
                        "reason", "rewrites", "ref", "session", "frontend", "exporters", "entitlements", "sources",
                        "grpc_status", "bytes_in", "bytes_out", "duration_ms"};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    if (!json_object_get(a, keys[i]))
      fail_msg("audit record lacks %s", keys[i]);
  assert_string_equal(jget(a, "tenant"), "ci");
  assert_string_equal(jget(a, "identified_by"), "uid");
  assert_string_equal(jget(a, "door"), "grpc");
  assert_string_equal(jget(a, "decision"), "allow");
  assert_string_equal(jget(a, "method"), "/moby.buildkit.v1.Control/ListWorkers");
  assert_int_equal(json_integer_value(json_object_get(a, "conn")), 42);
  assert_int_equal(json_integer_value(json_object_get(a, "bytes_in")), 10);
  assert_int_equal(json_integer_value(json_object_get(a, "bytes_out")), 20);
  /* RFC 3339 UTC with milliseconds: 2026-11-29T05:15:05.305Z */
  const char *t = jget(a, "time");
  assert_int_equal(strlen(t), 24);
  assert_int_equal(t[10], 'T');
  assert_int_equal(t[19], '.');
  assert_int_equal(t[23], 'Z');
  json_decref(a);
  bg_conn_close(c);
  bg_policy_unref(p);
}

static void test_method_denied(void **state)
{
  struct bg_policy *p = policy(0);
  struct bg_conn *c = conn_uid(p, 1001);
  struct bg_call_decision d;
  const char *path = "/moby.buildkit.v1.Control/Prune";
  struct bg_call *call = bg_call_begin(c, path, strlen(path), NULL, 0, &d);
  assert_int_equal(d.grpc_status, 7);
  assert_non_null(strstr(d.message, path));
  assert_non_null(strstr(d.message, "profiles.builder.methods"));
  assert_false(d.inspect_requests);
  /* nothing of a denied call reaches the backend */
  struct bg_msg_result r;
  uint8_t b[9] = {0};
  bg_call_request(call, b, sizeof b, 0, &r);
  assert_int_equal(r.verdict, BG_MSG_DENY);
  json_t *a = end_call(call, 7, NULL);
  assert_string_equal(jget(a, "decision"), "deny");
  assert_string_equal(jget(a, "rule"), "profiles.builder.methods");
  assert_int_equal(json_integer_value(json_object_get(a, "grpc_status")), 7);
  json_decref(a);

  /* unknown method under @stable */
  call = bg_call_begin(c, "/moby.buildkit.v1.Control/Future", 32, NULL, 0, &d);
  assert_int_equal(d.grpc_status, 7);
  assert_non_null(strstr(d.message, "unknown methods"));
  json_decref(end_call(call, 7, NULL));
  /* admin: "*" allows unknown methods */
  bg_conn_close(c);
  c = conn_uid(p, 0);
  call = bg_call_begin(c, "/moby.buildkit.v1.Control/Future", 32, NULL, 0, &d);
  assert_int_equal(d.grpc_status, 0);
  json_decref(end_call(call, 0, NULL));
  bg_conn_close(c);
  bg_policy_unref(p);
}

static void test_malformed_paths(void **state)
{
  struct bg_policy *p = policy(0);
  struct bg_conn *c = conn_uid(p, 0); /* admin: "*" would allow any real method */
  const char *bad[] = {"moby.buildkit.v1.Control/Solve", "//x", "/a/b/c", "/a.B/", "/moby.buildkit.v1.Control/Solve/",
                       "//moby.buildkit.v1.Control/Solve", "/moby.buildkit.v1.Control/Solve?a=b", ""};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    struct bg_call_decision d;
    struct bg_call *call = bg_call_begin(c, bad[i], strlen(bad[i]), NULL, 0, &d);
    assert_non_null(call);
    if (d.grpc_status != BG_GRPC_INVALID_ARGUMENT)
      fail_msg("%s: status %d", bad[i], d.grpc_status);
    assert_non_null(strstr(d.message, ":path"));
    struct bg_msg_result r;
    bg_call_request(call, (const uint8_t *)"x", 1, 0, &r);
    assert_int_equal(r.verdict, BG_MSG_DENY);
    json_t *a = end_call(call, d.grpc_status, NULL);
    assert_string_equal(jget(a, "rule"), "path");
    json_decref(a);
  }
  /* embedded NUL and control bytes; the audit line stays valid JSON */
  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(c, "/a.B/C\0\n", 8, NULL, 0, &d);
  assert_int_equal(d.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  json_decref(end_call(call, 3, NULL));
  bg_conn_close(c);
  /* malformed paths are refused in audit mode too */
  p = (bg_policy_unref(p), policy(1));
  c = conn_uid(p, 1001);
  call = bg_call_begin(c, bad[0], strlen(bad[0]), NULL, 0, &d);
  assert_int_equal(d.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  json_decref(end_call(call, 3, NULL));
  bg_conn_close(c);
  bg_policy_unref(p);
}

static void test_per_call_token(void **state)
{
  struct bg_policy *p = policy(0);
  struct bg_identity none = {0};
  none.peer = "tcp:10.1.1.1:4000";
  char *refusal = NULL, *audit = NULL;
  /* the Docker-style door cannot learn a tenant later: refused */
  assert_null(bg_conn_open(p, &none, "docker-grpc", 1, NULL, &refusal, &audit));
  assert_non_null(refusal);
  free(refusal);
  free(audit);
  /* the native door defers to per-call metadata */
  struct bg_conn *c = bg_conn_open(p, &none, "grpc", 2, NULL, &refusal, &audit);
  assert_non_null(c);
  assert_string_equal(bg_conn_tenant(c), "");
  /* not identified yet: the strictest limit it may end up under (ci's) */
  assert_int_equal(bg_conn_max_streams(c), 8);

  struct bg_header ok[] = {H("content-type", "application/grpc"), H("authorization", "Bearer " TOKEN)};
  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(c, "/moby.buildkit.v1.Control/ListWorkers", 37, ok, 2, &d);
  assert_int_equal(d.grpc_status, 0);
  /* the backend never sees the credential */
  int stripped = 0;
  for (size_t i = 0; i < d.n_edits; i++)
    if (strcmp(d.edits[i].name, "authorization") == 0 && d.edits[i].n_values == 0)
      stripped = 1;
  assert_true(stripped);
  char *raw;
  json_t *a = end_call(call, 0, &raw);
  assert_string_equal(jget(a, "tenant"), "ci");
  assert_string_equal(jget(a, "identified_by"), "token");
  assert_null(strstr(raw, TOKEN));
  assert_null(strstr(raw, "Bearer"));
  free(raw);
  json_decref(a);

  struct bg_header wrong[] = {H("authorization", "Bearer not-the-token")};
  call = bg_call_begin(c, "/moby.buildkit.v1.Control/ListWorkers", 37, wrong, 1, &d);
  assert_int_equal(d.grpc_status, BG_GRPC_UNAUTHENTICATED);
  a = end_call(call, d.grpc_status, &raw);
  assert_null(strstr(raw, "not-the-token"));
  free(raw);
  json_decref(a);

  /* the first call identified the connection for good: ci, also without a token */
  assert_string_equal(bg_conn_tenant(c), "ci");
  call = bg_call_begin(c, "/moby.buildkit.v1.Control/ListWorkers", 37, NULL, 0, &d);
  assert_int_equal(d.grpc_status, 0);
  a = end_call(call, d.grpc_status, NULL);
  assert_string_equal(jget(a, "identified_by"), "token");
  json_decref(a);

  /* another scheme is no token: it identifies nobody, and is still stripped */
  struct bg_header basic[] = {H("authorization", "Basic dXNlcjpwYXNz")};
  call = bg_call_begin(c, "/moby.buildkit.v1.Control/ListWorkers", 37, basic, 1, &d);
  assert_int_equal(d.grpc_status, 0);
  assert_int_equal(d.n_edits, 1);
  assert_string_equal(d.edits[0].name, "authorization");
  a = end_call(call, d.grpc_status, &raw);
  assert_string_equal(jget(a, "tenant"), "ci");
  assert_null(strstr(raw, "dXNlcjpwYXNz"));
  free(raw);
  json_decref(a);
  bg_conn_close(c);

  /* a connection whose uid is admin's: the token presented by its first call wins */
  c = conn_uid(p, 0);
  call = bg_call_begin(c, "/moby.buildkit.v1.Control/ListWorkers", 37, ok, 2, &d);
  assert_int_equal(d.grpc_status, 0);
  assert_int_equal(d.n_edits, 1);
  a = end_call(call, 0, NULL);
  assert_string_equal(jget(a, "tenant"), "ci");
  assert_string_equal(jget(a, "identified_by"), "token");
  json_decref(a);
  bg_conn_close(c);
  bg_policy_unref(p);
}

static const struct bg_header_edit *find_edit(const struct bg_call_decision *d, const char *name)
{
  for (size_t i = 0; i < d->n_edits; i++)
    if (strcmp(d->edits[i].name, name) == 0)
      return &d->edits[i];
  return NULL;
}

static void test_isolation_headers(void **state)
{
  struct bg_policy *p = policy(0);
  struct bg_conn *c = conn_uid(p, 1001);
  struct bg_header sess[] = {H("x-docker-expose-session-uuid", "j9wjxj7bytufm3k3plzd9lgqy"),
                             H("x-docker-expose-session-name", "main"),
                             H("x-docker-expose-session-grpc-method", "/moby.filesync.v1.FileSync/DiffCopy")};
  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(c, "/moby.buildkit.v1.Control/Session", 33, sess, 3, &d);
  assert_int_equal(d.grpc_status, 0);
  const struct bg_header_edit *e = find_edit(&d, "x-docker-expose-session-uuid");
  assert_non_null(e);
  assert_int_equal(e->n_values, 1);
  assert_string_equal(e->values[0], "ci.j9wjxj7bytufm3k3plzd9lgqy");
  assert_null(find_edit(&d, "x-docker-expose-session-name"));
  json_t *a = end_call(call, 0, NULL);
  assert_string_equal(jget(a, "decision"), "rewrite");
  assert_string_equal(jget(a, "session"), "j9wjxj7bytufm3k3plzd9lgqy");
  json_t *rw = json_array_get(json_object_get(a, "rewrites"), 0);
  assert_string_equal(json_string_value(json_object_get(rw, "old")), "j9wjxj7bytufm3k3plzd9lgqy");
  assert_string_equal(json_string_value(json_object_get(rw, "new")), "ci.j9wjxj7bytufm3k3plzd9lgqy");
  json_decref(a);

  struct bg_header bid[] = {H("buildkit-controlapi-buildid", "t25dknjy427y37n5tocweer3v")};
  call = bg_call_begin(c, "/moby.buildkit.v1.frontend.LLBBridge/Ping", 41, bid, 1, &d);
  assert_int_equal(d.grpc_status, 0);
  e = find_edit(&d, "buildkit-controlapi-buildid");
  assert_non_null(e);
  assert_string_equal(e->values[0], "ci.t25dknjy427y37n5tocweer3v");
  a = end_call(call, 0, NULL);
  assert_string_equal(jget(a, "ref"), "t25dknjy427y37n5tocweer3v");
  json_decref(a);

  /* a method outside the catalogue gets the same treatment (admin-like "*" profiles) */
  bg_policy_unref(p);
  {
    const char *js = "{\"tenants\": [{\"name\": \"t\", \"match\": {\"uid\": [1001]}, \"profile\": \"x\"}],"
                     " \"profiles\": {\"x\": {\"methods\": [\"*\"]}}}";
    struct bg_error err;
    p = bg_policy_load_string(js, strlen(js), &err);
    assert_non_null(p);
    bg_conn_close(c);
    c = conn_uid(p, 1001);
    call = bg_call_begin(c, "/moby.buildkit.v1.frontend.LLBBridge/FutureCall", 47, bid, 1, &d);
    assert_int_equal(d.grpc_status, 0);
    e = find_edit(&d, "buildkit-controlapi-buildid");
    assert_non_null(e);
    assert_string_equal(e->values[0], "t.t25dknjy427y37n5tocweer3v");
    json_decref(end_call(call, 0, NULL));
    bg_conn_close(c);
    bg_policy_unref(p);
    p = policy(0);
    c = conn_uid(p, 1001);
  }

  /* Status / history calls are inspected (their refs are namespaced) */
  call = bg_call_begin(c, "/moby.buildkit.v1.Control/Status", 32, NULL, 0, &d);
  assert_true(d.inspect_requests);
  json_decref(end_call(call, 0, NULL));
  bg_conn_close(c);

  /* isolate off: no edits, nothing inspected on Status */
  c = conn_uid(p, 0);
  call = bg_call_begin(c, "/moby.buildkit.v1.Control/Session", 33, sess, 3, &d);
  assert_int_equal(d.n_edits, 0);
  a = end_call(call, 0, NULL);
  assert_string_equal(jget(a, "decision"), "allow");
  assert_string_equal(jget(a, "session"), "j9wjxj7bytufm3k3plzd9lgqy");
  json_decref(a);
  call = bg_call_begin(c, "/moby.buildkit.v1.Control/Status", 32, NULL, 0, &d);
  assert_false(d.inspect_requests);
  json_decref(end_call(call, 0, NULL));
  bg_conn_close(c);
  bg_policy_unref(p);

  /* audit mode: computed and recorded, not applied */
  p = policy(1);
  c = conn_uid(p, 1001);
  call = bg_call_begin(c, "/moby.buildkit.v1.Control/Session", 33, sess, 3, &d);
  assert_int_equal(d.n_edits, 0);
  a = end_call(call, 0, NULL);
  assert_string_equal(jget(a, "decision"), "would_rewrite");
  json_decref(a);
  bg_conn_close(c);
  bg_policy_unref(p);
}

static void test_session_methods(void **state)
{
  struct bg_error err;
  struct bg_policy *p = bg_policy_load_file("../../deploy/policies/multi-tenant.json", &err);
  if (!p)
    fail_msg("%s", err.text);
  struct bg_conn *c = conn_uid(p, 1001);
  struct bg_header sess[] = {H("x-docker-expose-session-uuid", "j9wjxj7bytufm3k3plzd9lgqy"),
                             H("x-docker-expose-session-grpc-method", "/grpc.health.v1.Health/Check"),
                             H("x-docker-expose-session-grpc-method", "/moby.sshforward.v1.SSH/ForwardAgent"),
                             H("x-docker-expose-session-grpc-method", "/moby.filesync.v1.FileSync/DiffCopy"),
                             H("x-docker-expose-session-grpc-method", "/moby.sshforward.v1.SSH/CheckAgent")};
  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(c, "/moby.buildkit.v1.Control/Session", 33, sess, 5, &d);
  assert_int_equal(d.grpc_status, 0);
  const struct bg_header_edit *e = find_edit(&d, "x-docker-expose-session-grpc-method");
  assert_non_null(e);
  assert_int_equal(e->n_values, 2);
  assert_string_equal(e->values[0], "/grpc.health.v1.Health/Check");
  assert_string_equal(e->values[1], "/moby.filesync.v1.FileSync/DiffCopy");
  char *raw;
  json_t *a = end_call(call, 0, &raw);
  assert_string_equal(jget(a, "decision"), "rewrite");
  assert_non_null(strstr(raw, "/moby.sshforward.v1.SSH/ForwardAgent"));
  free(raw);
  json_decref(a);
  /* nothing to withhold: no edit */
  call = bg_call_begin(c, "/moby.buildkit.v1.Control/Session", 33, sess, 2, &d);
  assert_null(find_edit(&d, "x-docker-expose-session-grpc-method"));
  json_decref(end_call(call, 0, NULL));
  /* everything withheld: the header is removed */
  call = bg_call_begin(c, "/moby.buildkit.v1.Control/Session", 33, sess + 2, 1, &d);
  e = find_edit(&d, "x-docker-expose-session-grpc-method");
  assert_non_null(e);
  assert_int_equal(e->n_values, 0);
  json_decref(end_call(call, 0, NULL));
  bg_conn_close(c);
  bg_policy_unref(p);
}

static void test_bridge_session_names(void **state)
{
  struct bg_policy *p = policy(0);
  struct bg_conn *c = conn_uid(p, 1001);
  /* ResolveImageConfigRequest{Ref 1, SessionID 6, StoreID 7, unknown field 99 = 1} */
  static const uint8_t ric[] = {0x0a, 0x06, 'a', 'l', 'p', 'i', 'n', 'e', 0x32, 0x04, 's', 'e', 's', 's',
                                0x3a, 0x02, 's', 't', 0x98, 0x06, 0x01};
  static const uint8_t ric_want[] = {0x0a, 0x06, 'a', 'l', 'p', 'i', 'n', 'e', 0x32, 0x07, 'c', 'i', '.', 's', 'e',
                                     's', 's', 0x3a, 0x02, 's', 't', 0x98, 0x06, 0x01};
  const char *ricp = "/moby.buildkit.v1.frontend.LLBBridge/ResolveImageConfig";
  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(c, ricp, strlen(ricp), NULL, 0, &d);
  assert_true(d.inspect_requests);
  struct bg_msg_result r;
  bg_call_request(call, ric, sizeof ric, 0, &r);
  assert_int_equal(r.verdict, BG_MSG_REPLACE);
  assert_int_equal(r.len, sizeof ric_want);
  assert_memory_equal(r.data, ric_want, sizeof ric_want);
  free(r.data);
  json_t *a = end_call(call, 0, NULL);
  assert_string_equal(jget(a, "decision"), "rewrite");
  json_decref(a);
  /* no SessionID: unchanged */
  call = bg_call_begin(c, ricp, strlen(ricp), NULL, 0, &d);
  bg_call_request(call, ric, 8, 0, &r);
  assert_int_equal(r.verdict, BG_MSG_PASS);
  json_decref(end_call(call, 0, NULL));
  /* truncated: INVALID_ARGUMENT */
  call = bg_call_begin(c, ricp, strlen(ricp), NULL, 0, &d);
  bg_call_request(call, ric, 11, 0, &r);
  assert_int_equal(r.verdict, BG_MSG_DENY);
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  json_decref(end_call(call, 3, NULL));

  /* ResolveSourceMetaRequest{Op 1 = SourceOp{identifier, attrs{oci.session: s1}, attrs{x: y}}, LogName 3} */
  static const uint8_t rsm[] = {0x0a, 0x22, 0x0a, 0x05, 'o', 'c', 'i', ':', 'x', 0x12, 0x11, 0x0a, 0x0b, 'o', 'c',
                                'i', '.', 's', 'e', 's', 's', 'i', 'o', 'n', 0x12, 0x02, 's', '1', 0x12, 0x06, 0x0a,
                                0x01, 'x', 0x12, 0x01, 'y', 0x1a, 0x01, 'L'};
  static const uint8_t rsm_want[] = {0x0a, 0x25, 0x0a, 0x05, 'o', 'c', 'i', ':', 'x', 0x12, 0x14, 0x0a, 0x0b, 'o',
                                     'c', 'i', '.', 's', 'e', 's', 's', 'i', 'o', 'n', 0x12, 0x05, 'c', 'i', '.', 's',
                                     '1', 0x12, 0x06, 0x0a, 0x01, 'x', 0x12, 0x01, 'y', 0x1a, 0x01, 'L'};
  const char *rsmp = "/moby.buildkit.v1.frontend.LLBBridge/ResolveSourceMeta";
  call = bg_call_begin(c, rsmp, strlen(rsmp), NULL, 0, &d);
  assert_true(d.inspect_requests);
  bg_call_request(call, rsm, sizeof rsm, 0, &r);
  assert_int_equal(r.verdict, BG_MSG_REPLACE);
  assert_int_equal(r.len, sizeof rsm_want);
  assert_memory_equal(r.data, rsm_want, sizeof rsm_want);
  free(r.data);
  json_decref(end_call(call, 0, NULL));
  bg_conn_close(c);

  /* isolate off: not inspected */
  c = conn_uid(p, 0);
  call = bg_call_begin(c, ricp, strlen(ricp), NULL, 0, &d);
  assert_false(d.inspect_requests);
  json_decref(end_call(call, 0, NULL));
  bg_conn_close(c);
  bg_policy_unref(p);
}

static void test_audit_mode_never_denies(void **state)
{
  struct bg_policy *p = policy(1);
  assert_string_equal(bg_policy_mode(p), "audit");
  struct bg_conn *c = conn_uid(p, 1001);
  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(c, "/moby.buildkit.v1.Control/Prune", 31, NULL, 0, &d);
  assert_int_equal(d.grpc_status, 0);
  json_t *a = end_call(call, 0, NULL);
  assert_string_equal(jget(a, "decision"), "would_deny");
  assert_string_equal(jget(a, "rule"), "profiles.builder.methods");
  assert_string_equal(jget(a, "mode"), "audit");
  json_decref(a);

  /* a Solve asking for entitlements the profile does not grant: passes unchanged */
  size_t n;
  uint8_t *m = fixture_load("../fixtures/policy/control-solve-entitlement.bin", &n);
  call = bg_call_begin(c, SOLVE, strlen(SOLVE), NULL, 0, &d);
  assert_int_equal(d.grpc_status, 0);
  assert_true(d.inspect_requests);
  struct bg_msg_result r;
  bg_call_request(call, m, n, 0, &r);
  assert_int_equal(r.verdict, BG_MSG_PASS);
  assert_null(r.data);
  a = end_call(call, 0, NULL);
  assert_string_equal(jget(a, "decision"), "would_deny");
  json_decref(a);

  /* oversized: would be RESOURCE_EXHAUSTED, passes */
  uint8_t big[2000];
  memset(big, 0, sizeof big);
  call = bg_call_begin(c, SOLVE, strlen(SOLVE), NULL, 0, &d);
  bg_call_request(call, big, sizeof big, 0, &r);
  assert_int_equal(r.verdict, BG_MSG_PASS);
  a = end_call(call, 0, NULL);
  assert_string_equal(jget(a, "decision"), "would_deny");
  json_decref(a);
  free(m);
  bg_conn_close(c);
  bg_policy_unref(p);
}

static void test_inspected_solve(void **state)
{
  struct bg_policy *p = policy(0);
  struct bg_conn *c = conn_uid(p, 1001);
  size_t n;
  uint8_t *m = fixture_load("../fixtures/policy/control-solve-entitlement.bin", &n);
  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(c, SOLVE, strlen(SOLVE), NULL, 0, &d);
  assert_true(d.inspect_requests);
  struct bg_msg_result r;
  bg_call_request(call, m, n, 0, &r);
  assert_int_equal(r.verdict, BG_MSG_DENY);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(r.message, "profiles.builder.entitlements"));
  json_t *a = end_call(call, r.grpc_status, NULL);
  assert_string_equal(jget(a, "decision"), "deny");
  assert_int_equal(json_array_size(json_object_get(a, "entitlements")), 2);
  json_decref(a);
  free(m);

  /* a plain local build: the Ref and Session are namespaced (isolate) */
  m = fixture_load("../fixtures/policy/control-solve-local.bin", &n);
  call = bg_call_begin(c, SOLVE, strlen(SOLVE), NULL, 0, &d);
  bg_call_request(call, m, n, 0, &r);
  assert_int_equal(r.verdict, BG_MSG_REPLACE);
  assert_non_null(r.data);
  assert_non_null(memmem(r.data, r.len, "ci.", 3));
  free(r.data);
  a = end_call(call, 0, NULL);
  assert_string_equal(jget(a, "decision"), "rewrite");
  assert_non_null(jget(a, "ref"));
  assert_non_null(jget(a, "session"));
  assert_true(json_array_size(json_object_get(a, "rewrites")) >= 2);
  json_decref(a);
  free(m);
  bg_conn_close(c);

  /* admin, isolate off, everything granted: forwarded unchanged */
  c = conn_uid(p, 0);
  m = fixture_load("../fixtures/policy/control-solve-entitlement.bin", &n);
  call = bg_call_begin(c, SOLVE, strlen(SOLVE), NULL, 0, &d);
  bg_call_request(call, m, n, 0, &r);
  assert_int_equal(r.verdict, BG_MSG_PASS);
  a = end_call(call, 0, NULL);
  assert_string_equal(jget(a, "decision"), "allow");
  json_decref(a);
  free(m);

  /* undecodable message on an inspected method */
  uint8_t junk[] = {0x0a, 0xff, 0x01};
  call = bg_call_begin(c, SOLVE, strlen(SOLVE), NULL, 0, &d);
  bg_call_request(call, junk, sizeof junk, 0, &r);
  assert_int_equal(r.verdict, BG_MSG_DENY);
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  json_decref(end_call(call, r.grpc_status, NULL));
  bg_conn_close(c);
  bg_policy_unref(p);
}

static void test_size_limit(void **state)
{
  struct bg_policy *p = policy(0);
  struct bg_conn *c = conn_uid(p, 1001);
  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(c, SOLVE, strlen(SOLVE), NULL, 0, &d);
  assert_int_equal(d.max_message_bytes, 1024);
  uint8_t big[1025];
  memset(big, 0, sizeof big);
  struct bg_msg_result r;
  bg_call_request(call, big, sizeof big, 0, &r);
  assert_int_equal(r.verdict, BG_MSG_DENY);
  assert_int_equal(r.grpc_status, BG_GRPC_RESOURCE_EXHAUSTED);
  assert_non_null(strstr(r.message, "max_message_bytes"));
  json_t *a = end_call(call, r.grpc_status, NULL);
  assert_string_equal(jget(a, "rule"), "profiles.builder.limits.max_message_bytes");
  json_decref(a);
  bg_conn_close(c);
  bg_policy_unref(p);
}

static void test_compressed_messages(void **state)
{
  struct bg_policy *p = policy(0);
  struct bg_conn *c = conn_uid(p, 1001);
  size_t n, zn;
  uint8_t *m = fixture_load("../fixtures/policy/control-solve-entitlement.bin", &n);
  uint8_t *z = gzip_bytes(m, n, &zn);
  struct bg_header gz[] = {H("grpc-encoding", "gzip")};
  struct bg_call_decision d;
  struct bg_msg_result r;

  /* gzip is inflated and inspected: the entitlement request is refused */
  struct bg_call *call = bg_call_begin(c, SOLVE, strlen(SOLVE), gz, 1, &d);
  bg_call_request(call, z, zn, 1, &r);
  assert_int_equal(r.verdict, BG_MSG_DENY);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  json_decref(end_call(call, r.grpc_status, NULL));
  free(m);
  free(z);

  /* a rewritten gzip message comes back uncompressed */
  m = fixture_load("../fixtures/policy/control-solve-local.bin", &n);
  z = gzip_bytes(m, n, &zn);
  call = bg_call_begin(c, SOLVE, strlen(SOLVE), gz, 1, &d);
  bg_call_request(call, z, zn, 1, &r);
  assert_int_equal(r.verdict, BG_MSG_REPLACE);
  assert_true(r.len > 2 && !(r.data[0] == 0x1f && r.data[1] == 0x8b));
  assert_int_equal(r.data[0], m[0]); /* field 1 (Ref) tag, as in the original */
  free(r.data);
  json_decref(end_call(call, 0, NULL));
  free(z);

  /* compressed flag without an encoding */
  call = bg_call_begin(c, SOLVE, strlen(SOLVE), NULL, 0, &d);
  bg_call_request(call, m, n, 1, &r);
  assert_int_equal(r.verdict, BG_MSG_DENY);
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  json_decref(end_call(call, r.grpc_status, NULL));

  /* not gzip at all */
  call = bg_call_begin(c, SOLVE, strlen(SOLVE), gz, 1, &d);
  bg_call_request(call, m, n, 1, &r);
  assert_int_equal(r.verdict, BG_MSG_DENY);
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  json_decref(end_call(call, r.grpc_status, NULL));

  /* truncated gzip */
  z = gzip_bytes(m, n, &zn);
  call = bg_call_begin(c, SOLVE, strlen(SOLVE), gz, 1, &d);
  bg_call_request(call, z, zn - 6, 1, &r);
  assert_int_equal(r.verdict, BG_MSG_DENY);
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  json_decref(end_call(call, r.grpc_status, NULL));
  free(z);

  /* other encodings are refused on inspected methods */
  struct bg_header snappy[] = {H("grpc-encoding", "snappy")};
  call = bg_call_begin(c, SOLVE, strlen(SOLVE), snappy, 1, &d);
  bg_call_request(call, m, n, 1, &r);
  assert_int_equal(r.verdict, BG_MSG_DENY);
  assert_int_equal(r.grpc_status, BG_GRPC_UNIMPLEMENTED);
  assert_non_null(strstr(r.message, "snappy"));
  json_decref(end_call(call, r.grpc_status, NULL));
  /* ... but an uncompressed message on such a call is fine */
  call = bg_call_begin(c, SOLVE, strlen(SOLVE), snappy, 1, &d);
  bg_call_request(call, m, n, 0, &r);
  assert_int_not_equal(r.verdict, BG_MSG_DENY);
  free(r.data);
  json_decref(end_call(call, 0, NULL));
  free(m);

  /* a gzip bomb stops at max_message_bytes */
  uint8_t *zeros = calloc(1, 1 << 18);
  z = gzip_bytes(zeros, 1 << 18, &zn);
  assert_true(zn < 1024);
  call = bg_call_begin(c, SOLVE, strlen(SOLVE), gz, 1, &d);
  bg_call_request(call, z, zn, 1, &r);
  assert_int_equal(r.verdict, BG_MSG_DENY);
  assert_int_equal(r.grpc_status, BG_GRPC_RESOURCE_EXHAUSTED);
  json_decref(end_call(call, r.grpc_status, NULL));
  free(z);
  free(zeros);
  bg_conn_close(c);
  bg_policy_unref(p);
}

static void test_refusal_audit(void **state)
{
  struct bg_policy *p = policy(0);
  struct bg_identity id = {0};
  id.has_peercred = 1;
  id.uid = 555;
  id.gid = 555;
  id.peer = "unix:uid=555,pid=1";
  id.bearer_token = "wrong-" TOKEN;
  char *refusal = NULL, *audit = NULL;
  assert_null(bg_conn_open(p, &id, "docker-session", 9, NULL, &refusal, &audit));
  assert_non_null(refusal);
  json_t *a = json_loads(audit, 0, NULL);
  assert_non_null(a);
  assert_string_equal(jget(a, "decision"), "deny");
  assert_string_equal(jget(a, "door"), "docker-session");
  assert_string_equal(jget(a, "peer"), "unix:uid=555,pid=1");
  assert_int_equal(json_integer_value(json_object_get(a, "conn")), 9);
  assert_null(strstr(audit, TOKEN));
  json_decref(a);
  free(refusal);
  free(audit);
  bg_policy_unref(p);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_allow_and_audit_fields),
      cmocka_unit_test(test_method_denied),
      cmocka_unit_test(test_malformed_paths),
      cmocka_unit_test(test_per_call_token),
      cmocka_unit_test(test_isolation_headers),
      cmocka_unit_test(test_session_methods),
      cmocka_unit_test(test_bridge_session_names),
      cmocka_unit_test(test_audit_mode_never_denies),
      cmocka_unit_test(test_inspected_solve),
      cmocka_unit_test(test_size_limit),
      cmocka_unit_test(test_compressed_messages),
      cmocka_unit_test(test_refusal_audit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

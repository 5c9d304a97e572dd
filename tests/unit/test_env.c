/*
 * test_env.c: policy/env.c, the clock and random source a policy is given
 * (struct bg_env).  With both fixed, an audit record and the ref generated
 * for a build that has none are exactly predictable: these tests compare
 * them byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"
#include "proto/control.pb-c.h"

/* What the records must say, field by field as docs/audit.md lists them. */
#define EXPECTED_SOLVE_LINE                                                                                  \
  "{\"time\":\"2026-12-02T10:00:00.123Z\",\"conn\":7,\"tenant\":\"ci\",\"identified_by\":\"uid\","           \
  "\"peer\":\"unix:uid=1001\",\"door\":\"grpc\",\"method\":\"/moby.buildkit.v1.Control/Solve\","            \
  "\"mode\":\"enforce\",\"decision\":\"rewrite\",\"rule\":\"profiles.builder\","                            \
  "\"reason\":\"rewrote Ref, Session\",\"rewrites\":["                                                        \
  "{\"field\":\"Ref\",\"old\":null,\"new\":\"ci.0123456789abcdefghijklmno\"},"                               \
  "{\"field\":\"Session\",\"old\":\"sess\",\"new\":\"ci.sess\"}],"                                           \
  "\"ref\":\"0123456789abcdefghijklmno\",\"session\":\"sess\",\"frontend\":null,\"exporters\":[],"           \
  "\"entitlements\":[],\"sources\":[],\"grpc_status\":0,\"bytes_in\":120,\"bytes_out\":34,"                 \
  "\"duration_ms\":250.0}"
#define EXPECTED_REFUSAL_LINE                                                                                \
  "{\"time\":\"2026-12-02T10:00:00.123Z\",\"conn\":9,\"tenant\":null,\"identified_by\":null,"                \
  "\"peer\":\"unix:uid=4242\",\"door\":\"grpc\",\"method\":null,\"mode\":\"enforce\",\"decision\":\"deny\"," \
  "\"rule\":\"tenants\",\"reason\":\"connection refused: no tenant matches this peer (unix:uid=4242) and "   \
  "the policy has no anonymous tenant\",\"rewrites\":[],\"ref\":null,\"session\":null,\"frontend\":null,"    \
  "\"exporters\":[],\"entitlements\":[],\"sources\":[],\"grpc_status\":16,\"bytes_in\":0,\"bytes_out\":0,"  \
  "\"duration_ms\":0.0}"

/* 2026-12-02T10:00:00.123Z on the wall clock; the monotonic clock reads
 * 100 s and then 100.25 s for every later call, so a call lasts 250 ms. */
struct fixed {
  int mono_reads;
  int random_calls;
};

static int fixed_now(void *arg, clockid_t which, struct timespec *ts)
{
  struct fixed *f = arg;
  if (which == CLOCK_REALTIME) {
    ts->tv_sec = 1796205600;
    ts->tv_nsec = 123456789;
  } else {
    ts->tv_sec = 100;
    ts->tv_nsec = f->mono_reads++ ? 250000000 : 0;
  }
  return 0;
}

/* Byte i is i + 36: the ref alphabet has 36 characters, so the generated ref
 * is "0123456789abcdefghijklmno" only if each byte picks its character
 * modulo 36. */
static int fixed_random(void *arg, uint8_t *buf, size_t n)
{
  struct fixed *f = arg;
  f->random_calls++;
  for (size_t i = 0; i < n; i++)
    buf[i] = (uint8_t)(i + 36);
  return 0;
}

static struct bg_policy *isolating_policy(void)
{
  static const char js[] =
      "{\"mode\": \"enforce\", \"anonymous\": null,"
      " \"tenants\": [{\"name\": \"ci\", \"match\": {\"uid\": [1001]}, \"profile\": \"builder\"}],"
      " \"profiles\": {\"builder\": {\"methods\": [\"@stable\"], \"entitlements\": [], \"isolate\": true}}}";
  struct bg_error err;
  struct bg_policy *p = bg_policy_load_string(js, strlen(js), &err);
  if (!p)
    fail_msg("%s", err.text);
  return p;
}

/* A Control.Solve without a Ref under isolate: the policy generates one from
 * the random source, namespaces it, and the audit record (time and duration
 * from the clock) names it. */
static void test_fixed_env_audit_line_and_ref(void **st)
{
  (void)st;
  struct fixed f = {0};
  const struct bg_env env = {fixed_now, fixed_random, &f};
  struct bg_policy *p = isolating_policy();
  bg_policy_set_env(p, &env);

  struct bg_identity id = {0};
  id.has_peercred = 1;
  id.uid = 1001;
  id.gid = 1001;
  id.peer = "unix:uid=1001";
  struct bg_conn *c = bg_conn_open(p, &id, "grpc", 7, NULL, NULL, NULL);
  assert_non_null(c);

  static const char path[] = "/moby.buildkit.v1.Control/Solve";
  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(c, path, strlen(path), NULL, 0, &d);
  assert_non_null(call);
  assert_int_equal(d.grpc_status, 0);
  assert_true(d.inspect_requests);

  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  q.session = "sess";
  size_t n = moby__buildkit__v1__solve_request__get_packed_size(&q);
  uint8_t *m = malloc(n);
  assert_non_null(m);
  moby__buildkit__v1__solve_request__pack(&q, m);
  struct bg_msg_result res;
  bg_call_request(call, m, n, 0, &res);
  free(m);
  assert_int_equal(res.verdict, BG_MSG_REPLACE);
  assert_int_equal(f.random_calls, 1);
  Moby__Buildkit__V1__SolveRequest *o = moby__buildkit__v1__solve_request__unpack(NULL, res.len, res.data);
  assert_non_null(o);
  assert_string_equal(o->ref, "ci.0123456789abcdefghijklmno");
  assert_string_equal(o->session, "ci.sess");
  moby__buildkit__v1__solve_request__free_unpacked(o, NULL);
  free(res.data);

  char *line = NULL;
  bg_call_end(call, 0, NULL, 120, 34, &line);
  assert_non_null(line);
  assert_string_equal(line, EXPECTED_SOLVE_LINE);
  free(line);
  bg_conn_close(c);
  bg_policy_unref(p);
}

/* A refused connection's record takes its time from the same clock. */
static void test_fixed_env_refused_connection(void **st)
{
  (void)st;
  struct fixed f = {0};
  const struct bg_env env = {fixed_now, fixed_random, &f};
  struct bg_policy *p = isolating_policy();
  bg_policy_set_env(p, &env);
  struct bg_identity id = {0};
  id.has_peercred = 1;
  id.uid = 4242;
  id.gid = 4242;
  id.peer = "unix:uid=4242";
  char *refusal = NULL, *line = NULL;
  struct bg_conn *c = bg_conn_open(p, &id, "grpc", 9, NULL, &refusal, &line);
  assert_null(c);
  assert_non_null(line);
  assert_string_equal(line, EXPECTED_REFUSAL_LINE);
  free(line);
  free(refusal);
  bg_policy_unref(p);
}

/* Without an env of its own a policy reads the real clock: the record's
 * time is today's, not the fixed one. */
static void test_default_env_is_the_system(void **st)
{
  (void)st;
  struct bg_policy *p = isolating_policy();
  struct bg_identity id = {0};
  id.has_peercred = 1;
  id.uid = 4242;
  char *refusal = NULL, *line = NULL;
  assert_null(bg_conn_open(p, &id, "grpc", 9, NULL, &refusal, &line));
  assert_non_null(line);
  assert_null(strstr(line, "2026-12-02T10:00:00.123Z"));
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct tm tm;
  gmtime_r(&now.tv_sec, &tm);
  char year[32];
  snprintf(year, sizeof year, "\"time\":\"%04d-", tm.tm_year + 1900);
  assert_non_null(strstr(line, year));
  free(line);
  free(refusal);
  bg_policy_unref(p);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fixed_env_audit_line_and_ref),
      cmocka_unit_test(test_fixed_env_refused_connection),
      cmocka_unit_test(test_default_env_is_the_system),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

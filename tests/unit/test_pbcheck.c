/*
 * test_pbcheck.c: the wire tokenizer (proto/pbtok) and the validator that
 * runs before protobuf-c (proto/pbcheck), one test per class of message that
 * BuildKit's Go decoder reads differently from protobuf-c's typed view, seen
 * both directly and through the inspectors / the call API a gateway uses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "inspect_helpers.h"
#include "policy/policy.h"
#include "proto/pbcheck.h"
#include "proto/pbtok.h"
#include "proto/pbwire.h"

#define FX "../fixtures/grpc/"
#define SOLVE_D moby__buildkit__v1__solve_request__descriptor
#define BIG32 ((uint64_t)1 << 32)

/* ---- building wire bytes by hand ------------------------------------------------ */

static void put_key(struct bg_pbuf *o, uint64_t num, unsigned wt) { bg_pbuf_varint(o, num << 3 | wt); }
static void put_str(struct bg_pbuf *o, uint64_t num, const char *s, size_t n)
{
  put_key(o, num, 2);
  bg_pbuf_varint(o, n);
  bg_pbuf_put(o, s, n);
}
#define PUT_STR(o, num, lit) put_str((o), (num), (lit), sizeof(lit) - 1)
static void put_msg(struct bg_pbuf *o, uint64_t num, const struct bg_pbuf *m) { put_str(o, num, (const char *)m->b, m->n); }
static void put_var(struct bg_pbuf *o, uint64_t num, uint64_t v)
{
  put_key(o, num, 0);
  bg_pbuf_varint(o, v);
}
/* A map<string,string> entry. */
static void put_entry(struct bg_pbuf *o, uint64_t num, const char *k, size_t kn, const char *v, size_t vn)
{
  struct bg_pbuf e = {0};
  put_str(&e, 1, k, kn);
  put_str(&e, 2, v, vn);
  put_msg(o, num, &e);
  free(e.b);
}

/* A SolveRequest whose Definition holds the given op bytes. */
static uint8_t *solve_of_op(const struct bg_pbuf *op, size_t *len)
{
  struct bg_pbuf def = {0}, q = {0};
  put_msg(&def, 1, op);
  PUT_STR(&q, 1, "ref1");
  put_msg(&q, 2, &def);
  free(def.b);
  assert_false(q.oom);
  *len = q.n;
  return q.b;
}

static int check(const ProtobufCMessageDescriptor *d, const struct bg_pbuf *m, struct bg_pbcheck_result *res)
{
  return bg_pbcheck(d, m->b, m->n, NULL, res);
}

static void expect_refused(const ProtobufCMessageDescriptor *d, const struct bg_pbuf *m, int err, const char *msg)
{
  struct bg_pbcheck_result res;
  assert_int_equal(check(d, m, &res), err);
  if (!strstr(res.msg, msg))
    fail_msg("refusal \"%s\" does not contain \"%s\"", res.msg, msg);
}

static void inspect_solve(struct bg_inspect *r, const struct bg_profile *p, const uint8_t *m, size_t n)
{
  static const struct bg_backend_facts facts = {1, 0, "v0.11.6"};
  bg_inspect_init(r, p, "ci", 0, &facts);
  bg_inspect_control_solve(r, m, n);
}

/* ---- the tokenizer ----------------------------------------------------------------- */

static int tok_one(const uint8_t *b, size_t n, struct bg_pbfield *f)
{
  struct bg_pbtok t;
  bg_pbtok_init(&t, b, n);
  return bg_pbtok_next(&t, f);
}

static void test_tok_rules(void **st)
{
  struct bg_pbfield f;
  /* field 6 as Go reads 6 + 2^32; field 2^29; field 0, also over-long */
  struct bg_pbuf o = {0};
  put_key(&o, 6 + BIG32, 2);
  bg_pbuf_varint(&o, 0);
  assert_int_equal(tok_one(o.b, o.n, &f), BG_PBTOK_EFIELDMAX);
  o.n = 0;
  put_var(&o, (uint64_t)1 << 29, 1);
  assert_int_equal(tok_one(o.b, o.n, &f), BG_PBTOK_EFIELDMAX);
  o.n = 0;
  put_var(&o, BG_PB_MAX_FIELD, 1); /* the largest valid number */
  assert_int_equal(tok_one(o.b, o.n, &f), 1);
  assert_int_equal(f.num, BG_PB_MAX_FIELD);
  assert_int_equal(f.u, 1);
  free(o.b);
  static const uint8_t f0[] = {0x02, 0x00}, f0long[] = {0x82, 0x80, 0x00, 0x00};
  assert_int_equal(tok_one(f0, sizeof f0, &f), BG_PBTOK_EFIELD0);
  assert_int_equal(tok_one(f0long, sizeof f0long, &f), BG_PBTOK_EFIELD0);
  /* groups and invalid wire types */
  static const uint8_t sgroup[] = {0x0b, 0x0c}, egroup[] = {0x0c}, wt6[] = {0x0e, 0}, wt7[] = {0x0f, 0};
  assert_int_equal(tok_one(sgroup, sizeof sgroup, &f), BG_PBTOK_EGROUP);
  assert_int_equal(tok_one(egroup, sizeof egroup, &f), BG_PBTOK_EGROUP);
  assert_int_equal(tok_one(wt6, sizeof wt6, &f), BG_PBTOK_EWIRETYPE);
  assert_int_equal(tok_one(wt7, sizeof wt7, &f), BG_PBTOK_EWIRETYPE);
  /* varints: 10 bytes with a 10th byte of 1 is 64 bits; 2 there, or an 11th byte, is refused */
  uint8_t v[12] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01};
  assert_int_equal(tok_one(v, 11, &f), 1);
  assert_true(f.u == UINT64_MAX);
  v[10] = 0x02;
  assert_int_equal(tok_one(v, 11, &f), BG_PBTOK_EVARINT);
  v[10] = 0x81;
  assert_int_equal(tok_one(v, 12, &f), BG_PBTOK_EVARINT);
  /* over-long tag (6 bytes for field 1): Go reads it, protobuf-c does not */
  static const uint8_t longtag[] = {0x88, 0x80, 0x80, 0x80, 0x80, 0x00, 0x01};
  assert_int_equal(tok_one(longtag, sizeof longtag, &f), BG_PBTOK_ETAGLEN);
  static const uint8_t tag5[] = {0x88, 0x80, 0x80, 0x80, 0x00, 0x01};
  assert_int_equal(tok_one(tag5, sizeof tag5, &f), 1);
  assert_int_equal(f.num, 1);
  /* length prefixes: truncated payload, 6-byte prefix */
  static const uint8_t trunc[] = {0x0a, 0x05, 'a'}, longlen[] = {0x0a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 'a'};
  assert_int_equal(tok_one(trunc, sizeof trunc, &f), BG_PBTOK_ETRUNC);
  assert_int_equal(tok_one(longlen, sizeof longlen, &f), BG_PBTOK_ELENPREFIX);
  /* fixed widths and the raw extent of a field */
  static const uint8_t fx[] = {0x0d, 1, 2, 3, 4, 0x11, 1, 0, 0, 0, 0, 0, 0, 0x80};
  struct bg_pbtok t;
  bg_pbtok_init(&t, fx, sizeof fx);
  assert_int_equal(bg_pbtok_next(&t, &f), 1);
  assert_int_equal(f.wt, 5);
  assert_int_equal(f.u, 0x04030201);
  assert_int_equal(f.end - f.start, 5);
  assert_int_equal(bg_pbtok_next(&t, &f), 1);
  assert_int_equal(f.wt, 1);
  assert_true(f.u == 0x8000000000000001ULL);
  assert_int_equal(bg_pbtok_next(&t, &f), 0);
  /* errors are sticky */
  bg_pbtok_init(&t, trunc, sizeof trunc);
  assert_int_equal(bg_pbtok_next(&t, &f), BG_PBTOK_ETRUNC);
  assert_int_equal(bg_pbtok_next(&t, &f), BG_PBTOK_ETRUNC);
}

/* The gateway's BytesMessage/InfoResponse reader: the last occurrence wins,
 * the wrong wire type for the field is an error. */
static void test_tok_last_bytes(void **st)
{
  struct bg_pbuf o = {0};
  PUT_STR(&o, 1, "first");
  put_var(&o, 2, 7);
  PUT_STR(&o, 1, "last");
  const uint8_t *d;
  size_t dl;
  assert_int_equal(bg_pb_last_bytes(o.b, o.n, 1, &d, &dl), 0);
  assert_int_equal(dl, 4);
  assert_memory_equal(d, "last", 4);
  assert_int_equal(bg_pb_last_bytes(o.b, o.n, 3, &d, &dl), 0);
  assert_null(d);
  assert_int_not_equal(bg_pb_last_bytes(o.b, o.n, 2, &d, &dl), 0);
  put_key(&o, 1 + BIG32, 2); /* Go: field 1 */
  bg_pbuf_varint(&o, 0);
  assert_int_not_equal(bg_pb_last_bytes(o.b, o.n, 1, &d, &dl), 0);
  assert_null(d);
  free(o.b);
}

/* ---- class 1: field numbers above 2^32 --------------------------------------------- */

static struct bg_conn *tenant_conn(struct bg_policy **pp)
{
  struct bg_error err;
  *pp = bg_policy_load_file("../../deploy/policies/multi-tenant.json", &err);
  if (!*pp)
    fail_msg("%s", err.text);
  struct bg_conn *c = bg_conn_open_as_tenant(*pp, "ci", "grpc", 1, NULL);
  assert_non_null(c);
  return c;
}

static void bridge_call(struct bg_conn *c, const char *method, const struct bg_pbuf *m, struct bg_msg_result *r)
{
  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(c, method, strlen(method), NULL, 0, &d);
  assert_non_null(call);
  assert_int_equal(d.grpc_status, 0);
  assert_true(d.inspect_requests);
  bg_call_request(call, m->b, m->n, 0, r);
  char *line = NULL;
  bg_call_end(call, r->verdict == BG_MSG_DENY ? r->grpc_status : 0, NULL, m->n, 0, &line);
  free(line);
}

static void test_session_id_above_2_32(void **st)
{
  /* tenant ci names dev-team's (namespaced) session as field 6 + 2^32 */
  struct bg_policy *p;
  struct bg_conn *c = tenant_conn(&p);
  const char *ric = "/moby.buildkit.v1.frontend.LLBBridge/ResolveImageConfig";
  struct bg_pbuf m = {0};
  PUT_STR(&m, 1, "docker.io/library/alpine:latest");
  put_key(&m, 6 + BIG32, 2);
  bg_pbuf_varint(&m, 21);
  bg_pbuf_put(&m, "dev-team.s3cr3tsession", 21);
  struct bg_msg_result r;
  bridge_call(c, ric, &m, &r);
  assert_int_equal(r.verdict, BG_MSG_DENY);
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  assert_null(r.data);
  assert_non_null(strstr(r.message, "field number above 2^29-1"));
  /* the honest field 6 is namespaced (so the check above is not vacuous) */
  m.n = 0;
  PUT_STR(&m, 1, "docker.io/library/alpine:latest");
  PUT_STR(&m, 6, "mysession");
  bridge_call(c, ric, &m, &r);
  assert_int_equal(r.verdict, BG_MSG_REPLACE);
  assert_non_null(memmem(r.data, r.len, "ci.mysession", 12));
  free(r.data);
  /* and SessionID twice (Go keeps the last) is refused */
  PUT_STR(&m, 6, "dev-team.other");
  bridge_call(c, ric, &m, &r);
  assert_int_equal(r.verdict, BG_MSG_DENY);
  assert_non_null(strstr(r.message, "ResolveImageConfigRequest.SessionID"));
  free(m.b);
  bg_conn_close(c);
  bg_policy_unref(p);
}

/* A SourceOp attrs entry whose key is tagged 1 + 2^32: Go reads the key
 * "local.session"; a 64-bit reader sees no key and leaves the session alone. */
static void put_session_attr_2_32(struct bg_pbuf *src)
{
  struct bg_pbuf e = {0};
  put_key(&e, 1 + BIG32, 2);
  bg_pbuf_varint(&e, 13);
  bg_pbuf_put(&e, "local.session", 13);
  PUT_STR(&e, 2, "dev-team.s3cr3tsession");
  PUT_STR(src, 1, "local://context");
  put_msg(src, 2, &e);
  free(e.b);
}

static void test_map_key_above_2_32(void **st)
{
  struct bg_policy *p;
  struct bg_conn *c = tenant_conn(&p);
  struct bg_pbuf src = {0}, m = {0};
  put_session_attr_2_32(&src);
  put_msg(&m, 1, &src); /* ResolveSourceMetaRequest.Source */
  struct bg_msg_result r;
  bridge_call(c, "/moby.buildkit.v1.frontend.LLBBridge/ResolveSourceMeta", &m, &r);
  assert_int_equal(r.verdict, BG_MSG_DENY);
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  assert_non_null(strstr(r.message, "ResolveSourceMetaRequest.Source.attrs"));
  free(m.b);
  bg_conn_close(c);
  bg_policy_unref(p);

  /* the same attr in an LLB SourceOp of a Control.Solve */
  struct bg_pbuf op = {0};
  put_msg(&op, 3, &src);
  size_t n;
  uint8_t *q = solve_of_op(&op, &n);
  struct bg_profile prof;
  PROF_PERMISSIVE(prof);
  prof.isolate = 1;
  struct bg_inspect ir;
  inspect_solve(&ir, &prof, q, n);
  assert_int_equal(ir.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  assert_string_equal(ir.rule, "decode");
  assert_null(ir.out);
  assert_non_null(strstr(ir.reason, "Definition.def[0]: Op.source.attrs"));
  assert_non_null(strstr(ir.reason, "field number above 2^29-1"));
  bg_inspect_free(&ir);
  free(q);
  free(op.b);
  free(src.b);
}

/* ---- tag classes ------------------------------------------------------------------- */

static void test_field_zero(void **st)
{
  struct bg_pbuf m = {0};
  PUT_STR(&m, 1, "ref");
  bg_pbuf_put(&m, "\x80\x00\x00", 3); /* field 0, over-long: protobuf-c keeps it as unknown */
  expect_refused(&SOLVE_D, &m, BG_PBCHECK_EWIRE, "SolveRequest: field number 0");
  free(m.b);
}

static void test_field_2_29(void **st)
{
  struct bg_pbuf m = {0};
  put_var(&m, (uint64_t)1 << 29, 1);
  expect_refused(&SOLVE_D, &m, BG_PBCHECK_EWIRE, "field number above 2^29-1");
  m.n = 0;
  put_var(&m, BG_PB_MAX_FIELD, 1); /* the largest valid number: an unknown field */
  struct bg_pbcheck_result res;
  assert_int_equal(check(&SOLVE_D, &m, &res), 0);
  assert_int_equal(res.n_unknown, 1);
  free(m.b);
}

static void test_groups(void **st)
{
  /* Go skips a group as an unknown field; protobuf-c fails on it */
  struct bg_pbuf m = {0};
  PUT_STR(&m, 1, "ref");
  put_key(&m, 99, 3);
  put_var(&m, 1, 1);
  put_key(&m, 99, 4);
  expect_refused(&SOLVE_D, &m, BG_PBCHECK_EWIRE, "group wire type");
  free(m.b);
}

static void test_varint_11_bytes(void **st)
{
  struct bg_pbuf m = {0};
  put_key(&m, 11, 0); /* Internal (bool) */
  bg_pbuf_put(&m, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
  expect_refused(&SOLVE_D, &m, BG_PBCHECK_EWIRE, "varint longer than 10 bytes");
  free(m.b);
}

static void test_wrong_wire_type(void **st)
{
  struct bg_pbuf m = {0};
  put_var(&m, 5, 1); /* Session is a string */
  expect_refused(&SOLVE_D, &m, BG_PBCHECK_ETYPE, "SolveRequest.Session: wrong wire type 0");
  m.n = 0;
  PUT_STR(&m, 11, "x"); /* Internal is a bool: protobuf-c does not even check */
  expect_refused(&SOLVE_D, &m, BG_PBCHECK_ETYPE, "SolveRequest.Internal: wrong wire type 2");
  free(m.b);
}

/* ---- duplicates ----------------------------------------------------------------------- */

static void test_duplicate_scalar(void **st)
{
  struct bg_pbuf m = {0};
  PUT_STR(&m, 5, "mine");
  PUT_STR(&m, 1, "ref");
  PUT_STR(&m, 5, "dev-team.theirs"); /* Go reads this Session */
  expect_refused(&SOLVE_D, &m, BG_PBCHECK_EDUP, "SolveRequest.Session: non-repeated field appears more than once");
  m.n = 0;
  put_var(&m, 11, 0);
  put_var(&m, 11, 1);
  expect_refused(&SOLVE_D, &m, BG_PBCHECK_EDUP, "SolveRequest.Internal");
  free(m.b);
}

static void test_duplicate_submessage(void **st)
{
  /* Go merges a second Definition into the first; protobuf-c merges too, but
   * the policy must judge one graph, not a sum of two */
  struct bg_pbuf m = {0}, d1 = {0}, d2 = {0};
  PUT_STR(&d1, 1, "op1");
  PUT_STR(&d2, 1, "op2");
  put_msg(&m, 2, &d1);
  put_msg(&m, 2, &d2);
  expect_refused(&SOLVE_D, &m, BG_PBCHECK_EDUP, "SolveRequest.Definition: non-repeated field");
  /* and inside an op: ExecOp.meta twice */
  struct bg_pbuf ex = {0}, op = {0};
  put_msg(&ex, 1, &d1);
  put_msg(&ex, 1, &d2);
  put_msg(&op, 2, &ex);
  expect_refused(&pb__op__descriptor, &op, BG_PBCHECK_EDUP, "Op.exec.meta: non-repeated field");
  free(m.b);
  free(d1.b);
  free(d2.b);
  free(ex.b);
  free(op.b);
}

static void test_two_oneof_members(void **st)
{
  /* an Op that is both an exec and a source: Go keeps the last member */
  struct bg_pbuf op = {0}, ex = {0}, src = {0};
  put_var(&ex, 3, 2);
  PUT_STR(&src, 1, "docker-image://docker.io/library/alpine:latest");
  put_msg(&op, 3, &src);
  put_msg(&op, 2, &ex);
  expect_refused(&pb__op__descriptor, &op, BG_PBCHECK_EDUP, "Op.exec: oneof members source and exec both present");
  size_t n;
  uint8_t *q = solve_of_op(&op, &n);
  struct bg_profile prof;
  PROF_PERMISSIVE(prof);
  struct bg_inspect r;
  inspect_solve(&r, &prof, q, n);
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  assert_non_null(strstr(r.reason, "Definition.def[0]: Op.exec: oneof members source and exec"));
  bg_inspect_free(&r);
  free(q);
  /* ExecMessage: Init and File */
  struct bg_pbuf em = {0}, init = {0}, fd = {0};
  put_var(&init, 5, 1);
  put_var(&fd, 1, 0);
  put_msg(&em, 3, &fd);
  put_msg(&em, 2, &init);
  expect_refused(&moby__buildkit__v1__frontend__exec_message__descriptor, &em, BG_PBCHECK_EDUP,
                 "oneof members File and Init");
  free(em.b);
  free(init.b);
  free(fd.b);
  free(op.b);
  free(ex.b);
  free(src.b);
}

static void test_duplicate_map_key(void **st)
{
  struct bg_pbuf m = {0};
  put_entry(&m, 7, "cache-imports", 13, "[{\"Type\":\"local\"}]", 18);
  put_entry(&m, 7, "build-arg:X", 11, "1", 1);
  put_entry(&m, 7, "cache-imports", 13, "[{\"Type\":\"s3\"}]", 15); /* Go keeps this one */
  expect_refused(&SOLVE_D, &m, BG_PBCHECK_EDUP, "SolveRequest.FrontendAttrs[cache-imports]: key appears in two map entries");
  /* the same key in two different maps is fine */
  m.n = 0;
  put_entry(&m, 7, "name", 4, "a", 1);
  put_entry(&m, 4, "name", 4, "a", 1);
  struct bg_pbcheck_result res;
  assert_int_equal(check(&SOLVE_D, &m, &res), 0);
  /* key or value twice inside one entry */
  m.n = 0;
  struct bg_pbuf e = {0};
  PUT_STR(&e, 1, "push");
  PUT_STR(&e, 2, "false");
  PUT_STR(&e, 2, "true");
  put_msg(&m, 4, &e);
  expect_refused(&SOLVE_D, &m, BG_PBCHECK_EDUP, "SolveRequest.ExporterAttrsDeprecated[push]: non-repeated field");
  /* many distinct keys (the key set grows) */
  m.n = 0;
  char k[16];
  for (int i = 0; i < 5000; i++)
    put_entry(&m, 7, k, (size_t)snprintf(k, sizeof k, "build-arg:A%d", i), "v", 1);
  assert_int_equal(check(&SOLVE_D, &m, &res), 0);
  put_entry(&m, 7, "build-arg:A4321", 15, "w", 1);
  expect_refused(&SOLVE_D, &m, BG_PBCHECK_EDUP, "FrontendAttrs[build-arg:A4321]");
  free(e.b);
  free(m.b);
}

/* ---- strings ------------------------------------------------------------------------- */

static void test_nul_in_string(void **st)
{
  static const char name[] = "registry.example.com/ci/app\0,docker.io/library/alpine:latest";
  struct bg_pbuf ex = {0}, m = {0};
  PUT_STR(&ex, 1, "image");
  put_entry(&ex, 2, "name", 4, name, sizeof name - 1);
  PUT_STR(&m, 1, "ref");
  put_msg(&m, 13, &ex);
  expect_refused(&SOLVE_D, &m, BG_PBCHECK_ESTRING, "SolveRequest.Exporters[0].Attrs[name]: NUL byte in string");
  /* through the inspector, with the builder profile whose name_prefix it targets */
  struct bg_profile p;
  PROF_BUILDER(p);
  struct bg_inspect r;
  inspect_solve(&r, &p, m.b, m.n);
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  assert_string_equal(r.rule, "decode");
  assert_string_equal(r.reason, "SolveRequest.Exporters[0].Attrs[name]: NUL byte in string");
  assert_null(r.out);
  bg_inspect_free(&r);
  /* old exporter attrs too, and a NUL in a map key */
  m.n = 0;
  put_entry(&m, 4, "name", 4, name, sizeof name - 1);
  expect_refused(&SOLVE_D, &m, BG_PBCHECK_ESTRING, "SolveRequest.ExporterAttrsDeprecated[name]: NUL byte");
  m.n = 0;
  put_entry(&m, 7, "a\0b", 3, "v", 1);
  expect_refused(&SOLVE_D, &m, BG_PBCHECK_ESTRING, "SolveRequest.FrontendAttrs[a\\x00b]: NUL byte");
  /* bytes fields are not strings: a NUL in Definition.def is fine */
  m.n = 0;
  struct bg_pbuf d = {0};
  put_str(&d, 1, "\0\0", 2);
  put_msg(&m, 2, &d);
  struct bg_pbcheck_result res;
  assert_int_equal(check(&SOLVE_D, &m, &res), 0);
  free(d.b);
  free(ex.b);
  free(m.b);
}

static void test_invalid_utf8(void **st)
{
  static const char *const bad[] = {"\xc0\xaf", "\xed\xa0\x80" /* surrogate */, "\xf4\x90\x80\x80" /* > U+10FFFF */,
                                    "abc\xe2\x82", "\xff", "\x80"};
  struct bg_pbuf m = {0};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    m.n = 0;
    put_entry(&m, 7, "build-arg:X", 11, bad[i], strlen(bad[i]));
    expect_refused(&SOLVE_D, &m, BG_PBCHECK_ESTRING, "SolveRequest.FrontendAttrs[build-arg:X]: invalid UTF-8");
  }
  m.n = 0;
  PUT_STR(&m, 6, "d\xc3\xa9j\xc3\xa0 \xe2\x82\xac \xf0\x9f\x90\xb3"); /* valid 2, 3 and 4-byte forms */
  struct bg_pbcheck_result res;
  assert_int_equal(check(&SOLVE_D, &m, &res), 0);
  free(m.b);
}

/* A string deep in nested source maps: the path is cut, never overrun, and
 * one level deeper is refused for depth. */
static struct bg_pbuf nested_defs(int rounds, const char *leaf, size_t leafn)
{
  struct bg_pbuf cur = {0};
  put_str(&cur, 1, leaf, leafn); /* SourceInfo.filename */
  for (int i = 0; i < rounds; i++) {
    struct bg_pbuf src = {0}, def = {0}, info = {0};
    put_msg(&src, 2, &cur);  /* Source.infos */
    put_msg(&def, 3, &src);  /* Definition.Source */
    put_msg(&info, 3, &def); /* SourceInfo.definition */
    free(cur.b), free(src.b), free(def.b);
    cur = info;
  }
  /* the outermost: Definition.Source.infos[0] = cur */
  struct bg_pbuf src = {0}, def = {0};
  put_msg(&src, 2, &cur);
  put_msg(&def, 3, &src);
  free(cur.b), free(src.b);
  return def;
}

static void test_deep_paths(void **st)
{
  struct bg_pbuf d = nested_defs(10, "a\0b", 3); /* the leaf SourceInfo is 32 levels down */
  struct bg_pbcheck_result res;
  assert_int_equal(check(&pb__definition__descriptor, &d, &res), BG_PBCHECK_ESTRING);
  assert_non_null(strstr(res.msg, "Definition.Source.infos[0].definition.Source.infos[0]"));
  assert_non_null(strstr(res.msg, ": NUL byte in string"));
  free(d.b);
  d = nested_defs(10, "ok", 2);
  assert_int_equal(check(&pb__definition__descriptor, &d, &res), 0);
  free(d.b);
  d = nested_defs(11, "ok", 2);
  expect_refused(&pb__definition__descriptor, &d, BG_PBCHECK_EDEPTH, "messages nested more than 32 deep");
  free(d.b);
}

/* ---- numbers -------------------------------------------------------------------------- */

static void test_enum_range_and_unknown(void **st)
{
  struct bg_pbuf ex = {0}, op = {0};
  put_var(&ex, 3, 2 + BIG32); /* network: Go's int32 reads NONE (2) */
  put_msg(&op, 2, &ex);
  expect_refused(&pb__op__descriptor, &op, BG_PBCHECK_ERANGE, "Op.exec.network: value 4294967298 does not fit");
  ex.n = op.n = 0;
  put_var(&ex, 3, (uint64_t)-1); /* -1 sign-extended fits an int32, but is no NetMode */
  put_msg(&op, 2, &ex);
  expect_refused(&pb__op__descriptor, &op, BG_PBCHECK_EUNKNOWN, "Op.exec.network: value -1 is not declared");
  free(ex.b);
  free(op.b);
}

static void test_packed_and_unpacked(void **st)
{
  /* Meta.validExitCodes (repeated int32) either way decodes the same */
  struct bg_pbuf meta1 = {0}, meta2 = {0}, pk = {0};
  int32_t codes[] = {0, 1, 255, -1};
  for (int i = 0; i < 4; i++) {
    put_var(&meta1, 12, (uint64_t)(int64_t)codes[i]);
    bg_pbuf_varint(&pk, (uint64_t)(int64_t)codes[i]);
  }
  put_msg(&meta2, 12, &pk);
  struct bg_pbcheck_result r1, r2;
  assert_int_equal(check(&pb__meta__descriptor, &meta1, &r1), 0);
  assert_int_equal(check(&pb__meta__descriptor, &meta2, &r2), 0);
  Pb__Meta *a = pb__meta__unpack(NULL, meta1.n, meta1.b), *b = pb__meta__unpack(NULL, meta2.n, meta2.b);
  assert_non_null(a);
  assert_non_null(b);
  assert_int_equal(a->n_validexitcodes, 4);
  assert_int_equal(b->n_validexitcodes, 4);
  assert_memory_equal(a->validexitcodes, codes, sizeof codes);
  assert_memory_equal(b->validexitcodes, codes, sizeof codes);
  pb__meta__free_unpacked(a, NULL);
  pb__meta__free_unpacked(b, NULL);
  /* both forms mixed, and a packed run cut inside a varint */
  put_msg(&meta1, 12, &pk);
  assert_int_equal(check(&pb__meta__descriptor, &meta1, &r1), 0);
  bg_pbuf_put(&pk, "\x80", 1);
  meta2.n = 0;
  put_msg(&meta2, 12, &pk);
  expect_refused(&pb__meta__descriptor, &meta2, BG_PBCHECK_EWIRE, "Meta.validExitCodes: packed element: truncated");
  /* packed uint32 (InitMessage.Fds) beyond 32 bits */
  struct bg_pbuf init = {0}, fds = {0};
  bg_pbuf_varint(&fds, 1);
  bg_pbuf_varint(&fds, BIG32 + 2);
  put_msg(&init, 3, &fds);
  expect_refused(&moby__buildkit__v1__frontend__init_message__descriptor, &init, BG_PBCHECK_ERANGE, "InitMessage.Fds");
  free(init.b);
  free(fds.b);
  free(meta1.b);
  free(meta2.b);
  free(pk.b);
}

/* ---- unknown fields ------------------------------------------------------------------- */

static int accept_all(void *arg, const struct bg_pbcheck_unknown *u)
{
  (*(int *)arg)++;
  return 0;
}

static void test_unknown_llb_fields(void **st)
{
  struct bg_pbuf meta = {0}, ex = {0}, op = {0};
  PUT_STR(&meta, 1, "/bin/sh");
  PUT_STR(&meta, 10, "/sys/fs/cgroup/other"); /* cgroupParent: known now */
  put_var(&meta, 13, 1);                     /* a Meta field BuildKit may add later */
  put_msg(&ex, 1, &meta);
  put_msg(&op, 2, &ex);
  /* default: LLB unknowns refused, Control unknowns counted */
  expect_refused(&pb__op__descriptor, &op, BG_PBCHECK_EUNKNOWN, "Op.exec.meta: unknown field 13 (wire type 0) in pb.Meta");
  struct bg_pbuf q = {0};
  put_var(&q, 16, 1); /* CompatibilityVersion (v0.30) */
  struct bg_pbcheck_result res;
  assert_int_equal(check(&SOLVE_D, &q, &res), 0);
  assert_int_equal(res.n_unknown, 1);
  /* the callback decides */
  int seen = 0;
  struct bg_pbcheck_opts o = {.on_unknown = accept_all, .arg = &seen};
  assert_int_equal(bg_pbcheck(&pb__op__descriptor, op.b, op.n, &o, &res), 0);
  assert_int_equal(seen, 1);
  /* the inspectors: denied under a restricted llb section, allowed when unrestricted */
  size_t n;
  uint8_t *s = solve_of_op(&op, &n);
  struct bg_profile p;
  PROF_BUILDER(p);
  p.isolate = 0;
  struct bg_inspect r;
  inspect_solve(&r, &p, s, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "llb_op");
  assert_non_null(strstr(r.reason, "Definition.def[0]: Op.exec.meta: field 13 is unknown to the gateway"));
  bg_inspect_free(&r);
  PROF_PERMISSIVE(p);
  inspect_solve(&r, &p, s, n);
  assert_int_equal(r.grpc_status, 0);
  bg_inspect_free(&r);
  /* every Meta/Mount field BuildKit v0.8..v0.13 sends is known */
  struct bg_pbuf m2 = {0}, ul = {0}, mnt = {0}, tmp = {0}, ex2 = {0}, op2 = {0};
  PUT_STR(&ul, 1, "nofile");
  put_var(&ul, 2, 1024);
  put_var(&ul, 3, 2048);
  PUT_STR(&m2, 1, "true");
  put_msg(&m2, 9, &ul);
  PUT_STR(&m2, 10, "mygroup");
  put_var(&m2, 11, 1);
  put_var(&m2, 12, 0);
  put_var(&tmp, 1, 65536);
  PUT_STR(&mnt, 3, "/tmp");
  put_var(&mnt, 6, 4);
  put_msg(&mnt, 19, &tmp);
  PUT_STR(&mnt, 23, "result");
  put_var(&mnt, 24, 2);
  put_msg(&ex2, 1, &m2);
  put_msg(&ex2, 2, &mnt);
  put_msg(&op2, 2, &ex2);
  assert_int_equal(check(&pb__op__descriptor, &op2, &res), 0);
  Pb__Op *u = pb__op__unpack(NULL, op2.n, op2.b);
  assert_non_null(u);
  assert_string_equal(u->exec->meta->cgroupparent, "mygroup");
  assert_int_equal(u->exec->meta->n_ulimit, 1);
  assert_int_equal(u->exec->meta->ulimit[0]->hard, 2048);
  assert_int_equal(u->exec->mounts[0]->tmpfsopt->size, 65536);
  assert_int_equal(u->exec->mounts[0]->contentcache, PB__MOUNT_CONTENT_CACHE__OFF);
  assert_int_equal(u->base.n_unknown_fields + u->exec->base.n_unknown_fields + u->exec->meta->base.n_unknown_fields, 0);
  pb__op__free_unpacked(u, NULL);
  free(s);
  free(q.b);
  free(meta.b);
  free(ex.b);
  free(op.b);
  free(m2.b);
  free(ul.b);
  free(mnt.b);
  free(tmp.b);
  free(ex2.b);
  free(op2.b);
}

/* ---- decoding cost -------------------------------------------------------------------- */

/* Counts what protobuf-c really allocates. */
struct counting {
  ProtobufCAllocator a;
  size_t bytes;
};
static void *count_alloc(void *d, size_t n)
{
  ((struct counting *)d)->bytes += n;
  return malloc(n);
}
static void count_free(void *d, void *p) { free(p); }
static void counting_init(struct counting *c)
{
  c->a.alloc = count_alloc;
  c->a.free = count_free;
  c->a.allocator_data = c;
  c->bytes = 0;
}

/* An ExecOp of |n| empty mounts, 2 bytes each. */
static struct bg_pbuf empty_mounts_op(size_t n)
{
  struct bg_pbuf ex = {0}, op = {0};
  for (size_t i = 0; i < n; i++)
    bg_pbuf_put(&ex, "\x12\x00", 2);
  put_msg(&op, 2, &ex);
  free(ex.b);
  assert_false(op.oom);
  return op;
}

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_cost_empty_mounts(void **st)
{
  /* small enough to decode for comparison: what protobuf-c would spend */
  struct bg_pbuf op = empty_mounts_op(50000);
  struct counting c;
  counting_init(&c);
  Pb__Op *u = pb__op__unpack(&c.a, op.n, op.b);
  assert_non_null(u);
  pb__op__free_unpacked(u, &c.a);
  assert_true(c.bytes > 40 * op.n); /* the expansion is real: ~80x */
  expect_refused(&pb__op__descriptor, &op, BG_PBCHECK_ECOST, "Op.exec.mounts");
  free(op.b);

  /* the 8 MB Solve of ~4M mounts: refused fast, nothing expanded */
  op = empty_mounts_op(4000000);
  size_t n;
  uint8_t *q = solve_of_op(&op, &n);
  free(op.b);
  assert_true(n > 8000000);
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  struct bg_inspect r;
  double t0 = now();
  inspect_solve(&r, &p, q, n);
  double dt = now() - t0;
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  assert_string_equal(r.rule, "decode");
  assert_non_null(strstr(r.reason, "Definition.def[0]: Op.exec.mounts"));
  assert_non_null(strstr(r.reason, "too many elements"));
  assert_int_equal(r.n_ops, 0);
  /* the SolveRequest itself (one 8 MB bytes field) is all that was decoded */
  assert_true(r.decode_peak < n + (1u << 20));
  assert_true(dt < 2.0);
  print_message("4M-mount Solve: %zu bytes refused in %.3f s, decoded views peaked at %zu bytes\n", n, dt,
                r.decode_peak);
  bg_inspect_free(&r);
  free(q);
}

/* 16 MiB of legitimate LLB must still pass: 10,000 realistic ops, and one
 * FileOp writing a big file. */
static void test_cost_legit_16mib(void **st)
{
  enum { OPS = 10000, FILL = 1340 };
  struct bg_pbuf def = {0};
  char buf[2048];
  for (int i = 0; i < OPS; i++) {
    struct bg_pbuf meta = {0}, ex = {0}, op = {0}, mnt = {0}, in = {0}, md = {0}, ent = {0};
    PUT_STR(&meta, 1, "/bin/sh");
    PUT_STR(&meta, 1, "-c");
    memset(buf, 'x', FILL);
    int k = snprintf(buf, sizeof buf, "echo step %d && make -C /src target-%d ", i, i);
    buf[k] = ' ';
    put_str(&meta, 1, buf, FILL);
    PUT_STR(&meta, 2, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    PUT_STR(&meta, 2, "GOFLAGS=-mod=vendor");
    PUT_STR(&meta, 3, "/src");
    put_msg(&ex, 1, &meta);
    PUT_STR(&mnt, 3, "/");
    put_msg(&ex, 2, &mnt);
    mnt.n = 0;
    put_var(&mnt, 1, 1);
    PUT_STR(&mnt, 3, "/src");
    put_var(&mnt, 4, 1);
    put_msg(&ex, 2, &mnt);
    put_var(&ex, 3, 2);
    k = snprintf(buf, sizeof buf, "sha256:%064d", i);
    put_str(&in, 1, buf, (size_t)k);
    put_msg(&op, 1, &in);
    put_msg(&op, 2, &ex);
    put_msg(&def, 1, &op);
    /* metadata entry per op */
    put_var(&md, 1, 0);
    put_entry(&md, 2, "llb.customname", 14, "RUN make", 8);
    put_str(&ent, 1, buf, (size_t)k);
    put_msg(&ent, 2, &md);
    put_msg(&def, 2, &ent);
    free(meta.b), free(ex.b), free(op.b), free(mnt.b), free(in.b), free(md.b), free(ent.b);
  }
  struct bg_pbuf q = {0};
  PUT_STR(&q, 1, "ref");
  put_msg(&q, 2, &def);
  assert_false(q.oom);
  print_message("legit Solve: %zu bytes\n", q.n);
  assert_true(q.n > 15u << 20 && q.n <= 16u << 20);
  struct bg_pbcheck_result res;
  assert_int_equal(check(&SOLVE_D, &q, &res), 0);
  struct counting c;
  counting_init(&c);
  Moby__Buildkit__V1__SolveRequest *u = moby__buildkit__v1__solve_request__unpack(&c.a, q.n, q.b);
  assert_non_null(u);
  assert_true(c.bytes <= res.cost); /* the estimate bounds what protobuf-c takes */
  moby__buildkit__v1__solve_request__free_unpacked(u, &c.a);

  struct bg_profile p;
  PROF_BUILDER(p);
  p.isolate = 0;
  p.frontend_attrs.set.n = 0;
  struct bg_inspect r;
  double t0 = now();
  inspect_solve(&r, &p, q.b, q.n);
  double dt = now() - t0;
  if (r.grpc_status)
    fail_msg("16 MiB Solve refused: %s", r.reason);
  assert_int_equal(r.n_ops, OPS);
  print_message("16 MiB Solve (%zu bytes, %d ops) allowed in %.3f s\n", q.n, OPS, dt);
  bg_inspect_free(&r);
  free(def.b);

  /* one FileOp mkfile of ~15.9 MiB */
  size_t big = (16u << 20) - 256;
  struct bg_pbuf mk = {0}, act = {0}, fo = {0}, op = {0};
  PUT_STR(&mk, 1, "/blob");
  put_var(&mk, 2, 0644);
  uint8_t *data = malloc(big);
  for (size_t i = 0; i < big; i++)
    data[i] = (uint8_t)(i * 7);
  put_str(&mk, 3, (const char *)data, big);
  free(data);
  put_var(&act, 1, (uint64_t)-1);
  put_msg(&act, 5, &mk);
  put_msg(&fo, 2, &act);
  put_msg(&op, 4, &fo);
  size_t n;
  uint8_t *s = solve_of_op(&op, &n);
  assert_true(n <= 16u << 20);
  inspect_solve(&r, &p, s, n);
  if (r.grpc_status)
    fail_msg("big mkfile refused: %s", r.reason);
  assert_int_equal(r.n_ops, 1);
  bg_inspect_free(&r);
  free(s);
  free(mk.b), free(act.b), free(fo.b), free(op.b), free(q.b);
}

/* ---- real traffic ----------------------------------------------------------------------- */

struct fx {
  const char *file;
  const ProtobufCMessageDescriptor *d;
};

/* Every Op of a Definition validates with the default options (LLB unknowns
 * refused): our schema knows every field real clients send. */
static void check_ops(const Pb__Definition *def, const char *file)
{
  for (size_t i = 0; def && i < def->n_def; i++) {
    struct bg_pbcheck_result res;
    if (bg_pbcheck(&pb__op__descriptor, def->def[i].data, def->def[i].len, NULL, &res))
      fail_msg("%s: def[%zu]: %s", file, i, res.msg);
    struct counting c;
    counting_init(&c);
    Pb__Op *op = pb__op__unpack(&c.a, def->def[i].len, def->def[i].data);
    assert_non_null(op);
    assert_true(c.bytes <= res.cost);
    pb__op__free_unpacked(op, &c.a);
  }
}

static void test_fixtures_validate(void **st)
{
  static const struct fx fxs[] = {
      {FX "admin-diskusage-resp.bin", &moby__buildkit__v1__disk_usage_response__descriptor},
      {FX "admin-listworkers-req.bin", &moby__buildkit__v1__list_workers_request__descriptor},
      {FX "admin-listworkers-resp.bin", &moby__buildkit__v1__list_workers_response__descriptor},
      {FX "admin-prune-req.bin", &moby__buildkit__v1__prune_request__descriptor},
      {FX "bridge-solve-buildx-image-network-none.bin", &moby__buildkit__v1__frontend__solve_request__descriptor},
      {FX "bridge-solve-image-push-cache-imports.bin", &moby__buildkit__v1__frontend__solve_request__descriptor},
      {FX "control-info-resp.bin", &moby__buildkit__v1__info_response__descriptor},
      {FX "control-solve-buildx-build-local.bin", &SOLVE_D},
      {FX "control-solve-buildx-image.bin", &SOLVE_D},
      {FX "control-solve-buildx-probe.bin", &SOLVE_D},
      {FX "control-solve-dockerfile-local.bin", &SOLVE_D},
      {FX "control-solve-entitlement-host-insecure.bin", &SOLVE_D},
      {FX "control-solve-image-push.bin", &SOLVE_D},
      {FX "control-status-req.bin", &moby__buildkit__v1__status_request__descriptor},
      {FX "dockerfile-session-req.bin", &moby__buildkit__v1__bytes_message__descriptor},
      {FX "dockerfile-solve-req.bin", &SOLVE_D},
      {FX "dockerfile-status-req.bin", &moby__buildkit__v1__status_request__descriptor},
      {"../fixtures/policy/bridge-solve-buildx.bin", &moby__buildkit__v1__frontend__solve_request__descriptor},
      {"../fixtures/policy/bridge-solve-local.bin", &moby__buildkit__v1__frontend__solve_request__descriptor},
      {"../fixtures/policy/control-prune.bin", &moby__buildkit__v1__prune_request__descriptor},
      {"../fixtures/policy/control-solve-buildx.bin", &SOLVE_D},
      {"../fixtures/policy/control-solve-entitlement.bin", &SOLVE_D},
      {"../fixtures/policy/control-solve-image-push.bin", &SOLVE_D},
      {"../fixtures/policy/control-solve-local.bin", &SOLVE_D},
      {"../fixtures/policy/control-status.bin", &moby__buildkit__v1__status_request__descriptor},
  };
  size_t n_ops = 0;
  for (size_t i = 0; i < sizeof fxs / sizeof *fxs; i++) {
    size_t n = 0;
    uint8_t *m = fixture_load(fxs[i].file, &n);
    struct bg_pbcheck_result res;
    if (bg_pbcheck(fxs[i].d, m, n, NULL, &res))
      fail_msg("%s: %s", fxs[i].file, res.msg);
    struct counting c;
    counting_init(&c);
    ProtobufCMessage *u = protobuf_c_message_unpack(fxs[i].d, &c.a, n, m);
    assert_non_null(u);
    assert_true(c.bytes <= res.cost);
    if (fxs[i].d == &SOLVE_D) {
      Moby__Buildkit__V1__SolveRequest *q = (void *)u;
      check_ops(q->definition, fxs[i].file);
      n_ops += q->definition ? q->definition->n_def : 0;
    } else if (fxs[i].d == &moby__buildkit__v1__frontend__solve_request__descriptor) {
      Moby__Buildkit__V1__Frontend__SolveRequest *q = (void *)u;
      check_ops(q->definition, fxs[i].file);
      n_ops += q->definition ? q->definition->n_def : 0;
    }
    protobuf_c_message_free_unpacked(u, &c.a);
    free(m);
  }
  /* the LLB a Dockerfile frontend produced (LLBBridge.Solve response:
   * Result 3 -> ref 3 -> def 2) */
  size_t n = 0;
  uint8_t *m = fixture_load(FX "dockerfile-llbsolve-resp.bin", &n);
  const uint8_t *res_b, *ref_b, *def_b;
  size_t res_n, ref_n, def_n;
  assert_int_equal(bg_pb_last_bytes(m, n, 3, &res_b, &res_n), 0);
  assert_int_equal(bg_pb_last_bytes(res_b, res_n, 3, &ref_b, &ref_n), 0);
  assert_int_equal(bg_pb_last_bytes(ref_b, ref_n, 2, &def_b, &def_n), 0);
  assert_non_null(def_b);
  struct bg_pbcheck_result res;
  if (bg_pbcheck(&pb__definition__descriptor, def_b, def_n, NULL, &res))
    fail_msg("dockerfile-llbsolve-resp.bin Definition: %s", res.msg);
  Pb__Definition *def = pb__definition__unpack(NULL, def_n, def_b);
  assert_non_null(def);
  assert_true(def->n_def >= 3);
  check_ops(def, "dockerfile-llbsolve-resp.bin");
  n_ops += def->n_def;
  pb__definition__free_unpacked(def, NULL);
  free(m);
  print_message("%zu fixtures and %zu LLB ops validated\n", sizeof fxs / sizeof *fxs + 1, n_ops);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tok_rules),
      cmocka_unit_test(test_tok_last_bytes),
      cmocka_unit_test(test_session_id_above_2_32),
      cmocka_unit_test(test_map_key_above_2_32),
      cmocka_unit_test(test_field_zero),
      cmocka_unit_test(test_field_2_29),
      cmocka_unit_test(test_groups),
      cmocka_unit_test(test_varint_11_bytes),
      cmocka_unit_test(test_wrong_wire_type),
      cmocka_unit_test(test_duplicate_scalar),
      cmocka_unit_test(test_duplicate_submessage),
      cmocka_unit_test(test_two_oneof_members),
      cmocka_unit_test(test_duplicate_map_key),
      cmocka_unit_test(test_nul_in_string),
      cmocka_unit_test(test_invalid_utf8),
      cmocka_unit_test(test_deep_paths),
      cmocka_unit_test(test_enum_range_and_unknown),
      cmocka_unit_test(test_packed_and_unpacked),
      cmocka_unit_test(test_unknown_llb_fields),
      cmocka_unit_test(test_cost_empty_mounts),
      cmocka_unit_test(test_cost_legit_16mib),
      cmocka_unit_test(test_fixtures_validate),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

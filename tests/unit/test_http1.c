/*
 * test_http1.c: the front door's HTTP/1.1 parser, sniffer and router, fed
 * with what buildx's docker driver and the docker CLI really sent (see
 * tests/fixtures/http/README.md) plus hand-made edge cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/http1.h"
#include "fixture.h"

#define FIX "../fixtures/http/"


/* Parse a NUL-terminated literal with a roomy max_head. */
static enum gw_h1_status parse_str(const char *s, struct gw_h1_request *req)
{
  return gw_h1_parse(s, strlen(s), 65536, req);
}

static void assert_span(const char *p, size_t n, const char *want)
{
  assert_non_null(p);
  assert_int_equal(n, strlen(want));
  assert_memory_equal(p, want, n);
}

/* Look a header up and compare its value (a separate call, so that the
 * length is read after gw_h1_header has set it). */
static void assert_header(const struct gw_h1_request *req, const char *name, const char *want)
{
  size_t vl = 0;
  const char *v = gw_h1_header(req, name, &vl);
  if (!v)
    fail_msg("header %s missing", name);
  assert_span(v, vl, want);
}

/* Every strict prefix of a valid head must say "need more", so a client
 * that dribbles its request in byte by byte still gets served. */
static void assert_prefixes_incomplete(const char *buf, size_t head_len)
{
  struct gw_h1_request req;
  for (size_t k = 0; k < head_len; k++)
    assert_int_equal(gw_h1_parse(buf, k, 65536, &req), GW_H1_INCOMPLETE);
}

/* ---- sniffing ---- */

static void test_sniff_preface(void **state)
{
  (void)state;
  assert_int_equal(gw_sniff(GW_H2_PREFACE, GW_H2_PREFACE_LEN), GW_SNIFF_H2);
  char more[64];
  memcpy(more, GW_H2_PREFACE, GW_H2_PREFACE_LEN);
  memset(more + GW_H2_PREFACE_LEN, 0, sizeof more - GW_H2_PREFACE_LEN);
  assert_int_equal(gw_sniff(more, sizeof more), GW_SNIFF_H2);
}

static void test_sniff_partial(void **state)
{
  (void)state;
  for (size_t k = 0; k < GW_H2_PREFACE_LEN; k++)
    assert_int_equal(gw_sniff(GW_H2_PREFACE, k), GW_SNIFF_NEED_MORE);
  assert_int_equal(gw_sniff(NULL, 0), GW_SNIFF_NEED_MORE);
}

static void test_sniff_h1_and_garbage(void **state)
{
  (void)state;
  assert_int_equal(gw_sniff("GET /_ping HTTP/1.1\r\n", 21), GW_SNIFF_H1);
  assert_int_equal(gw_sniff("G", 1), GW_SNIFF_H1);
  assert_int_equal(gw_sniff("POST /grpc", 10), GW_SNIFF_H1); /* 'P' matches, 'O' does not */
  assert_int_equal(gw_sniff("PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n", 24), GW_SNIFF_H1);
  assert_int_equal(gw_sniff("\x16\x03\x01\x02\x00", 5), GW_SNIFF_H1); /* TLS ClientHello */
  /* differs only in the last byte */
  char almost[GW_H2_PREFACE_LEN];
  memcpy(almost, GW_H2_PREFACE, GW_H2_PREFACE_LEN);
  almost[GW_H2_PREFACE_LEN - 1] = 'X';
  assert_int_equal(gw_sniff(almost, GW_H2_PREFACE_LEN - 1), GW_SNIFF_NEED_MORE);
  assert_int_equal(gw_sniff(almost, GW_H2_PREFACE_LEN), GW_SNIFF_H1);
}

/* ---- captured handshakes ---- */

static void test_fixture_grpc_upgrade(void **state)
{
  (void)state;
  size_t len;
  char *b = fixture_load(FIX "grpc-upgrade.raw", &len);
  assert_int_equal(gw_sniff(b, len), GW_SNIFF_H1);
  struct gw_h1_request req;
  assert_int_equal(gw_h1_parse(b, len, 65536, &req), GW_H1_DONE);
  assert_int_equal(req.head_len, len); /* this client waited for the 101 */
  assert_span(req.method, req.methodlen, "POST");
  assert_span(req.target, req.targetlen, "/grpc");
  assert_int_equal(req.minor_version, 1);
  assert_int_equal(req.n_headers, 5);
  assert_int_equal(req.content_length, 0);
  assert_false(req.chunked);
  assert_true(req.keep_alive);
  size_t vl = 99;
  const char *host = gw_h1_header(&req, "host", &vl);
  assert_non_null(host); /* present but empty, as Go sends it */
  assert_int_equal(vl, 0);
  const char *up = gw_h1_header(&req, "UPGRADE", &vl);
  assert_span(up, vl, "h2c");
  assert_true(gw_h1_header_has_token(&req, "connection", "upgrade"));
  char apiv[16] = "junk";
  assert_int_equal(gw_h1_route(&req, apiv), GW_ROUTE_GRPC);
  assert_string_equal(apiv, "");
  assert_prefixes_incomplete(b, req.head_len);
  free(b);
}

static void test_fixture_grpc_pipelined_preface(void **state)
{
  (void)state;
  size_t len;
  char *b = fixture_load(FIX "grpc-upgrade-pipelined-h2.raw", &len);
  struct gw_h1_request req;
  assert_int_equal(gw_h1_parse(b, len, 65536, &req), GW_H1_DONE);
  assert_int_equal(req.head_len, 117);
  assert_true(len > req.head_len);
  assert_int_equal(gw_h1_route(&req, NULL), GW_ROUTE_GRPC);
  /* what follows the head is the client's HTTP/2 connection, untouched */
  assert_int_equal(gw_sniff(b + req.head_len, len - req.head_len), GW_SNIFF_H2);
  assert_memory_equal(b + req.head_len, GW_H2_PREFACE, GW_H2_PREFACE_LEN);
  assert_prefixes_incomplete(b, req.head_len);
  /* the same head arriving with only part of the preface behind it */
  for (size_t k = req.head_len; k < req.head_len + GW_H2_PREFACE_LEN; k++) {
    struct gw_h1_request r2;
    assert_int_equal(gw_h1_parse(b, k, 65536, &r2), GW_H1_DONE);
    assert_int_equal(r2.head_len, 117);
  }
  free(b);
}

static void test_fixture_session(void **state)
{
  (void)state;
  size_t len;
  char *b = fixture_load(FIX "session-health.raw", &len);
  struct gw_h1_request req;
  assert_int_equal(gw_h1_parse(b, len, 65536, &req), GW_H1_DONE);
  assert_int_equal(req.head_len, 384);
  assert_int_equal(gw_h1_route(&req, NULL), GW_ROUTE_SESSION);
  assert_int_equal(req.n_headers, 10);
  size_t vl;
  /* two lines with the same name: lookup gives the first */
  assert_header(&req, "x-docker-expose-session-grpc-method", "/grpc.health.v1.Health/Check");
  assert_span(req.headers[6].value, req.headers[6].valuelen, "/grpc.health.v1.Health/Watch");
  assert_header(&req, "X-Docker-Expose-Session-Uuid", "t55wvs4ifrsc9rcn7sj71hxzl");
  assert_non_null(gw_h1_header(&req, "x-docker-expose-session-sharedkey", &vl));
  assert_int_equal(vl, 0);
  assert_int_equal(req.content_length, 0);
  /* for /session the client is the HTTP/2 server: its SETTINGS follow, no preface */
  assert_int_equal(gw_sniff(b + req.head_len, len - req.head_len), GW_SNIFF_H1);
  assert_prefixes_incomplete(b, req.head_len);
  free(b);
}

static void test_fixture_session_many_methods(void **state)
{
  (void)state;
  size_t len;
  char *b = fixture_load(FIX "session-many-methods.raw", &len);
  struct gw_h1_request req;
  assert_int_equal(gw_h1_parse(b, len, 65536, &req), GW_H1_DONE);
  assert_int_equal(req.head_len, 1167);
  assert_int_equal(req.n_headers, 20);
  assert_int_equal(gw_h1_route(&req, NULL), GW_ROUTE_SESSION);
  assert_header(&req, "x-docker-expose-session-sharedkey", "ctx-fix:d9059d6d4dd9abc7");
  /* a gateway configured with a small max_head refuses it cleanly */
  assert_int_equal(gw_h1_parse(b, len, 1024, &req), GW_H1_TOO_LARGE);
  assert_int_equal(gw_h1_parse(b, len, 1167, &req), GW_H1_DONE);
  assert_int_equal(gw_h1_parse(b, len, 1166, &req), GW_H1_TOO_LARGE);
  free(b);
}

static void test_fixture_ping_version_pipelined(void **state)
{
  (void)state;
  size_t len;
  char *b = fixture_load(FIX "ping-version-pipelined.raw", &len);
  struct gw_h1_request req;
  char apiv[16];
  assert_int_equal(gw_h1_parse(b, len, 65536, &req), GW_H1_DONE);
  assert_int_equal(req.head_len, 70);
  assert_span(req.method, req.methodlen, "HEAD");
  assert_int_equal(gw_h1_route(&req, apiv), GW_ROUTE_PING);
  assert_string_equal(apiv, "");
  assert_true(req.keep_alive);
  assert_int_equal(req.content_length, -1);
  size_t off = req.head_len;
  assert_int_equal(gw_h1_parse(b + off, len - off, 65536, &req), GW_H1_DONE);
  assert_int_equal(off + req.head_len, len);
  assert_span(req.target, req.targetlen, "/v1.41/version");
  assert_int_equal(gw_h1_route(&req, apiv), GW_ROUTE_VERSION);
  assert_string_equal(apiv, "1.41");
  assert_prefixes_incomplete(b + off, req.head_len);
  free(b);
}

static void test_fixture_pings(void **state)
{
  (void)state;
  const char *files[] = {FIX "ping-docker-client.raw", FIX "ping-go-client.raw"};
  for (size_t i = 0; i < 2; i++) {
    size_t len;
    char *b = fixture_load(files[i], &len);
    struct gw_h1_request req;
    assert_int_equal(gw_h1_parse(b, len, 65536, &req), GW_H1_DONE);
    assert_int_equal(req.head_len, len);
    assert_int_equal(gw_h1_route(&req, NULL), GW_ROUTE_PING);
    assert_header(&req, "Host", "docker");
    assert_prefixes_incomplete(b, len);
    free(b);
  }
}

/* ---- pipelining and bytes after the head ---- */

static void test_pipelined_three(void **state)
{
  (void)state;
  const char *s = "GET /_ping HTTP/1.1\r\nHost: a\r\n\r\n"
                  "HEAD /v1.40/_ping HTTP/1.1\r\nHost: a\r\n\r\n"
                  "POST /v1.41/grpc HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nXYZ";
  const enum gw_route want[] = {GW_ROUTE_PING, GW_ROUTE_PING, GW_ROUTE_GRPC};
  const char *wantv[] = {"", "1.40", "1.41"};
  size_t off = 0, len = strlen(s);
  for (int i = 0; i < 3; i++) {
    struct gw_h1_request req;
    char apiv[16];
    assert_int_equal(gw_h1_parse(s + off, len - off, 65536, &req), GW_H1_DONE);
    assert_int_equal(gw_h1_route(&req, apiv), want[i]);
    assert_string_equal(apiv, wantv[i]);
    off += req.head_len;
  }
  assert_int_equal(len - off, 3);
  assert_memory_equal(s + off, "XYZ", 3);
}

static void test_bytes_after_head(void **state)
{
  (void)state;
  const char *s = "POST /grpc HTTP/1.1\r\nHost: \r\nContent-Length: 4\r\n\r\nbody\r\n\r\n";
  struct gw_h1_request req;
  assert_int_equal(parse_str(s, &req), GW_H1_DONE);
  assert_int_equal(req.head_len, strlen("POST /grpc HTTP/1.1\r\nHost: \r\nContent-Length: 4\r\n\r\n"));
  assert_int_equal(req.content_length, 4);
}

static void test_bare_lf_and_leading_crlf(void **state)
{
  (void)state;
  struct gw_h1_request req;
  const char *s = "GET /_ping HTTP/1.1\nHost: x\n\nrest";
  assert_int_equal(parse_str(s, &req), GW_H1_DONE);
  assert_int_equal(req.head_len, strlen(s) - 4);
  assert_header(&req, "host", "x");
  /* a stray CRLF before the request line (after a previous body) is ignored */
  s = "\r\nGET /_ping HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(parse_str(s, &req), GW_H1_DONE);
  assert_int_equal(req.head_len, strlen(s));
  assert_span(req.method, req.methodlen, "GET");
}

/* ---- routing ---- */

struct route_case {
  const char *method, *target;
  enum gw_route want;
  const char *apiv;
};

static void test_route_table(void **state)
{
  (void)state;
  static const struct route_case cases[] = {
      {"GET", "/_ping", GW_ROUTE_PING, ""},
      {"HEAD", "/_ping", GW_ROUTE_PING, ""},
      {"GET", "/v1.41/_ping", GW_ROUTE_PING, "1.41"},
      {"GET", "/_ping?x=1", GW_ROUTE_PING, ""},
      {"GET", "/_ping?", GW_ROUTE_PING, ""},
      {"GET", "/version", GW_ROUTE_VERSION, ""},
      {"GET", "/v1.12/version?a=b/c", GW_ROUTE_VERSION, "1.12"},
      {"POST", "/grpc", GW_ROUTE_GRPC, ""},
      {"POST", "/v1.41/grpc?x=y", GW_ROUTE_GRPC, "1.41"},
      {"POST", "/session", GW_ROUTE_SESSION, ""},
      {"POST", "/v1.41/session", GW_ROUTE_SESSION, "1.41"},
      {"POST", "/v10.0/session", GW_ROUTE_SESSION, "10.0"},
      /* wrong methods on known paths */
      {"POST", "/_ping", GW_ROUTE_BAD_METHOD, ""},
      {"PUT", "/v1.41/_ping", GW_ROUTE_BAD_METHOD, "1.41"},
      {"HEAD", "/version", GW_ROUTE_BAD_METHOD, ""},
      {"POST", "/version", GW_ROUTE_BAD_METHOD, ""},
      {"GET", "/grpc", GW_ROUTE_BAD_METHOD, ""},
      {"GET", "/v1.41/session", GW_ROUTE_BAD_METHOD, "1.41"},
      {"get", "/_ping", GW_ROUTE_BAD_METHOD, ""}, /* methods are case-sensitive */
      {"DELETE", "/session?x", GW_ROUTE_BAD_METHOD, ""},
      /* unknown paths */
      {"GET", "/", GW_ROUTE_UNKNOWN, ""},
      {"GET", "/?_ping", GW_ROUTE_UNKNOWN, ""},
      {"GET", "/info", GW_ROUTE_UNKNOWN, ""},
      {"GET", "/v1.41/info", GW_ROUTE_UNKNOWN, "1.41"},
      {"GET", "/_ping/", GW_ROUTE_UNKNOWN, ""},
      {"GET", "/_pingx", GW_ROUTE_UNKNOWN, ""},
      {"GET", "/%5Fping", GW_ROUTE_UNKNOWN, ""},
      {"GET", "/v1/_ping", GW_ROUTE_UNKNOWN, ""},
      {"GET", "/v1./_ping", GW_ROUTE_UNKNOWN, ""},
      {"GET", "/v.41/_ping", GW_ROUTE_UNKNOWN, ""},
      {"GET", "/V1.41/_ping", GW_ROUTE_UNKNOWN, ""},
      {"GET", "/v1.41", GW_ROUTE_UNKNOWN, ""},
      {"GET", "/v1.41?/_ping", GW_ROUTE_UNKNOWN, ""},
      {"GET", "/v1.41/", GW_ROUTE_UNKNOWN, "1.41"},
      {"GET", "/v1.41/v1.41/_ping", GW_ROUTE_UNKNOWN, "1.41"},
      {"GET", "/v1.4a/_ping", GW_ROUTE_UNKNOWN, ""},
      {"GET", "//_ping", GW_ROUTE_UNKNOWN, ""},
      {"GET", "/v12345678.1234567/_ping", GW_ROUTE_UNKNOWN, ""}, /* 16 chars: does not fit */
      {"GET", "/v1234567.1234567/_ping", GW_ROUTE_PING, "1234567.1234567"}, /* 15 chars fit */
      {"POST", "/grpc#frag", GW_ROUTE_UNKNOWN, ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s %s HTTP/1.1\r\nHost: x\r\n\r\n", cases[i].method, cases[i].target);
    struct gw_h1_request req;
    char apiv[16];
    memset(apiv, 'Z', sizeof apiv);
    assert_int_equal(parse_str(buf, &req), GW_H1_DONE);
    enum gw_route r = gw_h1_route(&req, apiv);
    if (r != cases[i].want || strcmp(apiv, cases[i].apiv) != 0)
      fail_msg("%s %s: route %d apiv '%s', want %d '%s'", cases[i].method, cases[i].target, (int)r, apiv,
               (int)cases[i].want, cases[i].apiv);
  }
}

/* ---- malformed requests ---- */

static void expect(const char *s, enum gw_h1_status want)
{
  struct gw_h1_request req;
  enum gw_h1_status st = parse_str(s, &req);
  if (st != want)
    fail_msg("parse of %s: got %d, want %d", s, (int)st, (int)want);
}

static void test_bad_request_line(void **state)
{
  (void)state;
  expect("GET  /_ping HTTP/1.1\r\nHost: x\r\n\r\n", GW_H1_BAD);   /* double space */
  expect("GET /_ping  HTTP/1.1\r\nHost: x\r\n\r\n", GW_H1_BAD);
  expect("GET /_ping HTTP/1.1 \r\nHost: x\r\n\r\n", GW_H1_BAD);   /* trailing space */
  expect(" GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n", GW_H1_BAD);
  expect("GET\t/_ping HTTP/1.1\r\nHost: x\r\n\r\n", GW_H1_BAD);
  expect("G(T /_ping HTTP/1.1\r\nHost: x\r\n\r\n", GW_H1_BAD);    /* method not a token */
  expect("GET * HTTP/1.1\r\nHost: x\r\n\r\n", GW_H1_BAD);         /* target must start with / */
  expect("GET http://x/_ping HTTP/1.1\r\nHost: x\r\n\r\n", GW_H1_BAD);
  expect("CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", GW_H1_BAD);
  expect("GET /_p\x01ng HTTP/1.1\r\nHost: x\r\n\r\n", GW_H1_BAD);
  expect("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", GW_H1_BAD); /* raw UTF-8 in target */
  expect("GET\r\nHost: x\r\n\r\n", GW_H1_BAD);
  expect("\r\n\r\n", GW_H1_INCOMPLETE); /* only empty lines so far */
  struct gw_h1_request req;
  assert_int_equal(gw_h1_parse("GET /_ping HTTP/1.1\r\r\nHost: x\r\n\r\n", 33, 65536, &req), GW_H1_BAD);
  /* NUL inside the request line (cannot be written as a C string literal test) */
  const char nul[] = "GET /_p\0ng HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(gw_h1_parse(nul, sizeof nul - 1, 65536, &req), GW_H1_BAD);
}

static void test_bad_version(void **state)
{
  (void)state;
  expect("GET /_ping HTTP/2.0\r\nHost: x\r\n\r\n", GW_H1_BAD_VERSION);
  expect("GET /_ping HTTP/1.2\r\nHost: x\r\n\r\n", GW_H1_BAD_VERSION);
  expect("GET /_ping HTTP/0.9\r\nHost: x\r\n\r\n", GW_H1_BAD_VERSION);
  expect("GET /_ping HTTP/3.1\r\nHost: x\r\n\r\n", GW_H1_BAD_VERSION);
  /* the HTTP/2 preface sent to the HTTP/1 parser is a version problem */
  expect(GW_H2_PREFACE, GW_H1_BAD_VERSION);
  /* garbage is not a version */
  expect("GET /_ping\r\nHost: x\r\n\r\n", GW_H1_BAD);
  expect("GET /_ping HTTP/1.10\r\nHost: x\r\n\r\n", GW_H1_BAD);
  expect("GET /_ping HTTP/11\r\nHost: x\r\n\r\n", GW_H1_BAD);
  expect("GET /_ping http/1.1\r\nHost: x\r\n\r\n", GW_H1_BAD);
  expect("GET /_ping HTTX/1.1\r\nHost: x\r\n\r\n", GW_H1_BAD);
  expect("GET /_ping HTTP/a.b\r\nHost: x\r\n\r\n", GW_H1_BAD);
  expect("GET /_ping HTTP/1.\r\nHost: x\r\n\r\n", GW_H1_BAD);
  expect("GET /_ping HTTP/\r\nHost: x\r\n\r\n", GW_H1_BAD);
  /* 1.0 is fine and needs no Host */
  struct gw_h1_request req;
  assert_int_equal(parse_str("GET /_ping HTTP/1.0\r\n\r\n", &req), GW_H1_DONE);
  assert_int_equal(req.minor_version, 0);
  assert_false(req.keep_alive);
}

static void test_folding_rejected(void **state)
{
  (void)state;
  expect("GET /_ping HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", GW_H1_BAD);
  expect("GET /_ping HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", GW_H1_BAD);
  expect("GET /_ping HTTP/1.1\r\n Host: x\r\n\r\n", GW_H1_BAD);
  /* rejected as soon as the folded line starts, without waiting for the rest */
  expect("GET /_ping HTTP/1.1\r\nHost: x\r\n b", GW_H1_BAD);
}

static void test_bad_header_lines(void **state)
{
  (void)state;
  expect("GET /_ping HTTP/1.1\r\nHost : x\r\n\r\n", GW_H1_BAD);     /* space before colon */
  expect("GET /_ping HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", GW_H1_BAD); /* empty name */
  expect("GET /_ping HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", GW_H1_BAD);
  expect("GET /_ping HTTP/1.1\r\nHost: x\r\nX(y): v\r\n\r\n", GW_H1_BAD);
  expect("GET /_ping HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", GW_H1_BAD);
  expect("GET /_ping HTTP/1.1\r\nHost: x\r\nX-A: a\x7f\r\n\r\n", GW_H1_BAD);
  expect("GET /_ping HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", GW_H1_BAD); /* bare CR */
  expect("GET /_ping HTTP/1.1\r\nHost: x\r\nX-A: \x1b[31m\r\n\r\n", GW_H1_BAD);
  struct gw_h1_request req;
  const char nul[] = "GET /_ping HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n";
  assert_int_equal(gw_h1_parse(nul, sizeof nul - 1, 65536, &req), GW_H1_BAD);
  /* HTAB and obs-text are legal in values; whitespace around values is trimmed */
  assert_int_equal(parse_str("GET /_ping HTTP/1.1\r\nHost: x\r\nX-A: \t a\tb\xe9 \t\r\n\r\n", &req), GW_H1_DONE);
  size_t vl;
  assert_header(&req, "x-a", "a\tb\xe9");
  assert_int_equal(parse_str("GET /_ping HTTP/1.1\r\nHost: x\r\nX-Empty:\r\n\r\n", &req), GW_H1_DONE);
  assert_non_null(gw_h1_header(&req, "x-empty", &vl));
  assert_int_equal(vl, 0);
}

static void test_host_rules(void **state)
{
  (void)state;
  expect("GET /_ping HTTP/1.1\r\n\r\n", GW_H1_BAD);                        /* 1.1 without Host */
  expect("GET /_ping HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", GW_H1_BAD);  /* two Hosts */
  expect("GET /_ping HTTP/1.1\r\nHost: a b\r\n\r\n", GW_H1_BAD);
  expect("GET /_ping HTTP/1.1\r\nHost: a/b\r\n\r\n", GW_H1_BAD);
  expect("GET /_ping HTTP/1.1\r\nHost: \r\n\r\n", GW_H1_DONE);
  expect("GET /_ping HTTP/1.1\r\nHost: localhost:2375\r\n\r\n", GW_H1_DONE);
  expect("GET /_ping HTTP/1.1\r\nHost: [::1]:2375\r\n\r\n", GW_H1_DONE);
  expect("GET /_ping HTTP/1.1\r\nhOsT: api.moby.localhost\r\n\r\n", GW_H1_DONE);
}

static void test_content_length(void **state)
{
  (void)state;
  struct gw_h1_request req;
  assert_int_equal(parse_str("POST /grpc HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\ncontent-length: 12\r\n\r\n", &req),
                   GW_H1_DONE);
  assert_int_equal(req.content_length, 12);
  assert_int_equal(parse_str("POST /grpc HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775807\r\n\r\n", &req),
                   GW_H1_DONE);
  assert_true(req.content_length == 9223372036854775807LL);
  expect("POST /grpc HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n", GW_H1_BAD);
  expect("POST /grpc HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 05x\r\n\r\n", GW_H1_BAD);
  expect("POST /grpc HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n", GW_H1_BAD);
  expect("POST /grpc HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", GW_H1_BAD);
  expect("POST /grpc HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n", GW_H1_BAD);
  expect("POST /grpc HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n", GW_H1_BAD);
  expect("POST /grpc HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", GW_H1_BAD);
  expect("POST /grpc HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775808\r\n\r\n", GW_H1_BAD);
  expect("POST /grpc HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", GW_H1_BAD);
}

static void test_transfer_encoding(void **state)
{
  (void)state;
  struct gw_h1_request req;
  assert_int_equal(parse_str("POST /grpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n", &req), GW_H1_DONE);
  assert_true(req.chunked);
  assert_int_equal(req.content_length, -1);
  assert_int_equal(parse_str("POST /grpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: "
                             "chunked\r\n\r\n",
                             &req),
                   GW_H1_DONE);
  assert_true(req.chunked);
  expect("POST /grpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", GW_H1_BAD);
  expect("POST /grpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", GW_H1_BAD);
  expect("POST /grpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", GW_H1_BAD);
  expect("POST /grpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", GW_H1_BAD);
  expect("POST /grpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n", GW_H1_BAD);
  expect("POST /grpc HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", GW_H1_BAD);
}

static void test_keep_alive(void **state)
{
  (void)state;
  struct gw_h1_request req;
  assert_int_equal(parse_str("GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &req), GW_H1_DONE);
  assert_false(req.keep_alive);
  assert_int_equal(parse_str("GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, CLOSE\r\n\r\n", &req),
                   GW_H1_DONE);
  assert_false(req.keep_alive);
  assert_int_equal(parse_str("GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n", &req), GW_H1_DONE);
  assert_true(req.keep_alive);
  assert_int_equal(parse_str("GET /_ping HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req), GW_H1_DONE);
  assert_true(req.keep_alive);
  assert_int_equal(parse_str("GET /_ping HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", &req),
                   GW_H1_DONE);
  assert_false(req.keep_alive);
}

static void test_header_lookup(void **state)
{
  (void)state;
  struct gw_h1_request req;
  assert_int_equal(parse_str("GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nconnection:  Upgrade ,x\r\n"
                             "Authorization: Bearer abc\r\n\r\n",
                             &req),
                   GW_H1_DONE);
  size_t vl = 0;
  assert_header(&req, "AUTHORIZATION", "Bearer abc");
  assert_null(gw_h1_header(&req, "authorizatio", &vl));
  assert_null(gw_h1_header(&req, "authorizationx", &vl));
  assert_non_null(gw_h1_header(&req, "host", NULL));
  assert_true(gw_h1_header_has_token(&req, "Connection", "keep-alive"));
  assert_true(gw_h1_header_has_token(&req, "connection", "upgrade")); /* second line counts too */
  assert_true(gw_h1_header_has_token(&req, "connection", "X"));
  assert_false(gw_h1_header_has_token(&req, "connection", "keep"));
  assert_false(gw_h1_header_has_token(&req, "connection", "alive"));
  assert_false(gw_h1_header_has_token(&req, "upgrade", "h2c"));
  assert_false(gw_h1_header_has_token(&req, "authorization", "bearer"));
}

/* ---- limits ---- */

static void test_max_head(void **state)
{
  (void)state;
  const char *s = "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n";
  size_t n = strlen(s);
  struct gw_h1_request req;
  assert_int_equal(gw_h1_parse(s, n, n, &req), GW_H1_DONE);        /* exactly max_head */
  assert_int_equal(gw_h1_parse(s, n, n - 1, &req), GW_H1_TOO_LARGE);
  assert_int_equal(gw_h1_parse(s, n - 1, n, &req), GW_H1_INCOMPLETE);
  /* a slow client sending an endless header: buffered bytes never exceed max_head */
  size_t big = 70000;
  char *b = malloc(big);
  assert_non_null(b);
  memcpy(b, "GET /_ping HTTP/1.1\r\nHost: x\r\nX-Pad: ", 37);
  memset(b + 37, 'a', big - 37);
  assert_int_equal(gw_h1_parse(b, 4096, 65536, &req), GW_H1_INCOMPLETE);
  assert_int_equal(gw_h1_parse(b, 65535, 65536, &req), GW_H1_INCOMPLETE);
  assert_int_equal(gw_h1_parse(b, 65537, 65536, &req), GW_H1_TOO_LARGE);
  assert_int_equal(gw_h1_parse(b, big, 65536, &req), GW_H1_TOO_LARGE);
  /* a complete head beyond max_head, even though it is all in the buffer */
  memcpy(b + big - 4, "\r\n\r\n", 4);
  assert_int_equal(gw_h1_parse(b, big, 65536, &req), GW_H1_TOO_LARGE);
  assert_int_equal(gw_h1_parse(b, big, big, &req), GW_H1_DONE);
  assert_int_equal(req.head_len, big);
  free(b);
}

static void test_max_headers(void **state)
{
  (void)state;
  char buf[8192];
  for (int extra = 0; extra <= 2; extra++) {
    size_t n = (size_t)snprintf(buf, sizeof buf, "GET /_ping HTTP/1.1\r\nHost: x\r\n");
    int total = GW_H1_MAX_HEADERS - 1 + extra; /* plus Host */
    for (int i = 1; i < total; i++)
      n += (size_t)snprintf(buf + n, sizeof buf - n, "X-H%d: %d\r\n", i, i);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "\r\n");
    struct gw_h1_request req;
    enum gw_h1_status st = gw_h1_parse(buf, n, 65536, &req);
    if (extra == 0) {
      assert_int_equal(st, GW_H1_DONE);
      assert_int_equal(req.n_headers, GW_H1_MAX_HEADERS - 1);
    } else if (extra == 1) {
      assert_int_equal(st, GW_H1_DONE);
      assert_int_equal(req.n_headers, GW_H1_MAX_HEADERS);
      assert_span(req.headers[GW_H1_MAX_HEADERS - 1].name, req.headers[GW_H1_MAX_HEADERS - 1].namelen, "X-H63");
    } else {
      assert_int_equal(st, GW_H1_TOO_LARGE);
    }
  }
}

static void test_early_reject(void **state)
{
  (void)state;
  struct gw_h1_request req;
  /* TLS to the plain port, or binary junk: no need to wait for a whole head */
  assert_int_equal(gw_h1_parse("\x16\x03\x01\x02\x00\x01", 6, 65536, &req), GW_H1_BAD);
  assert_int_equal(gw_h1_parse("GE\x00", 3, 65536, &req), GW_H1_BAD);
  assert_int_equal(gw_h1_parse("GET /\x80", 6, 65536, &req), GW_H1_BAD);
  assert_int_equal(gw_h1_parse("GET /_ping HTTP/1.1\r\nX: \x01", 25, 65536, &req), GW_H1_BAD);
  /* but a CR waiting for its LF is fine */
  assert_int_equal(gw_h1_parse("GET /_ping HTTP/1.1\r", 20, 65536, &req), GW_H1_INCOMPLETE);
  assert_int_equal(gw_h1_parse("G", 1, 65536, &req), GW_H1_INCOMPLETE);
  assert_int_equal(gw_h1_parse("", 0, 65536, &req), GW_H1_INCOMPLETE);
}

/* The parser must only look at buf[0..len): give it an exact-size heap copy
 * of every prefix (ASan reports any read past the end). */
static void test_no_overread(void **state)
{
  (void)state;
  size_t len;
  char *b = fixture_load(FIX "session-health.raw", &len);
  for (size_t k = 0; k <= len; k++) {
    char *c = malloc(k ? k : 1);
    assert_non_null(c);
    memcpy(c, b, k);
    struct gw_h1_request req;
    enum gw_h1_status st = gw_h1_parse(c, k, 65536, &req);
    assert_int_equal(st, k < 384 ? GW_H1_INCOMPLETE : GW_H1_DONE);
    if (st == GW_H1_DONE)
      assert_int_equal(gw_h1_route(&req, NULL), GW_ROUTE_SESSION);
    free(c);
  }
  free(b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sniff_preface),
      cmocka_unit_test(test_sniff_partial),
      cmocka_unit_test(test_sniff_h1_and_garbage),
      cmocka_unit_test(test_fixture_grpc_upgrade),
      cmocka_unit_test(test_fixture_grpc_pipelined_preface),
      cmocka_unit_test(test_fixture_session),
      cmocka_unit_test(test_fixture_session_many_methods),
      cmocka_unit_test(test_fixture_ping_version_pipelined),
      cmocka_unit_test(test_fixture_pings),
      cmocka_unit_test(test_pipelined_three),
      cmocka_unit_test(test_bytes_after_head),
      cmocka_unit_test(test_bare_lf_and_leading_crlf),
      cmocka_unit_test(test_route_table),
      cmocka_unit_test(test_bad_request_line),
      cmocka_unit_test(test_bad_version),
      cmocka_unit_test(test_folding_rejected),
      cmocka_unit_test(test_bad_header_lines),
      cmocka_unit_test(test_host_rules),
      cmocka_unit_test(test_content_length),
      cmocka_unit_test(test_transfer_encoding),
      cmocka_unit_test(test_keep_alive),
      cmocka_unit_test(test_header_lookup),
      cmocka_unit_test(test_max_head),
      cmocka_unit_test(test_max_headers),
      cmocka_unit_test(test_early_reject),
      cmocka_unit_test(test_no_overread),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

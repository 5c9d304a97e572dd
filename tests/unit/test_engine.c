/*
 * test_engine.c: the HTTP/2 engine (gateway/h2bridge.c) between a real
 * nghttp2 client and a real nghttp2 server, in one process and one libevent
 * loop, without root, dockerd or a Go client.
 *
 *   h2peer client --socketpair--> gw_frontdoor_accept --> bridge
 *                                                           | gw_dial_backend
 *   h2peer server <--unix socket in a temp dir-------------+
 *
 * The gateway is set up the way main.c sets it up (struct gw, a policy, a
 * unix:// gRPC backend) and the client is handed over the way a listener
 * hands an accepted connection to the front door, which passes a connection
 * that opens with the HTTP/2 preface to the bridge.  Only gateway/gw.h is
 * used, so the engine's internals may change freely under these tests.
 *
 * The transport tests (setup) use a policy that lets every method through
 * uninspected (profile methods "*", no isolation), so bytes stream through
 * as they come: what they look at is flow control, resets, GOAWAY,
 * trailers.  The backend facts are marked known, so the engine sends no
 * Control.Info probe of its own and the backend sees only the tests' calls.
 * Three more groups use the same harness:
 *   - session mode: a Docker-style POST /session (buildx's bytes) through
 *     the front door to the gRPC backend, which sees one Control.Session
 *     call carrying the raw bytes in BytesMessages; the client is a plain
 *     socket (struct raw);
 *   - the probe (setup_probe): facts not known, so the first native call
 *     makes the gateway ask the backend Control.Info itself;
 *   - an inspected method (setup_builder): Control.Solve under a profile
 *     that grants no entitlement, with captured SolveRequests.
 *
 * Each test asserts what a client or a backend would observe on the wire,
 * plus how much the gateway can have buffered, computed from outside: what
 * one side managed to send, minus what the other received, minus what
 * sits unread in the kernel.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>

#include "gateway/gw.h"
#include "gateway/log.h"
#include "tests/unit/fixture.h"
#include "tests/unit/h2peer.h"

/* ---------- the harness ---------- */

struct harness {
  struct event_base *base;
  struct gw gw;
  char dir[64];
  char sock_path[96]; /* within sun_path */
  char backend_text[160];
  char audit_path[96];      /* the audit log, when the setup asks for one */
  int lfd;
  struct event *lev, *tick;
  struct h2peer *backends; /* backend connections, in accept order */
  unsigned n_backend_conns;
  uint32_t backend_window; /* windows the backend advertises (0: 65535) */
  struct h2peer *clients;
  struct raw *raws;        /* HTTP/1.1 clients of the Docker-style door */
};

/* A client of the Docker-style door: a plain socket that writes what the
 * test gives it and keeps everything it reads (the HTTP/1.1 answer, then the
 * raw session bytes).  step() moves its bytes. */
struct raw {
  struct raw *next;
  int fd;
  struct evbuffer *in;  /* everything read, in order */
  struct evbuffer *out; /* still to write */
  int eof;              /* the gateway closed the connection (read returned 0, or an error) */
};

static const char POLICY[] =
    "{\"mode\": \"enforce\", \"anonymous\": null,"
    " \"tenants\": [{\"name\": \"harness\", \"match\": {\"any_local\": true}, \"profile\": \"all\"}],"
    " \"profiles\": {\"all\": {\"methods\": [\"*\"], \"entitlements\": [\"*\"], \"isolate\": false}}}";

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void accept_cb(evutil_socket_t fd, short what, void *arg)
{
  struct harness *h = arg;
  for (;;) {
    int c = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0)
      return;
    struct h2peer *p = h2peer_new(h->base, c, 1, h->backend_window);
    struct h2peer **pp = &h->backends;
    while (*pp)
      pp = &(*pp)->next;
    *pp = p;
    h->n_backend_conns++;
  }
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  (void)arg;
}

static int setup_with(void **state, const char *policy_json, int facts_known, int audit)
{
  struct harness *h = calloc(1, sizeof *h);
  assert_non_null(h);
  h->base = event_base_new();
  assert_non_null(h->base);
  snprintf(h->dir, sizeof h->dir, "/tmp/bg-engine.XXXXXX");
  assert_non_null(mkdtemp(h->dir));
  snprintf(h->sock_path, sizeof h->sock_path, "%s/backend.sock", h->dir);
  snprintf(h->backend_text, sizeof h->backend_text, "unix://%s", h->sock_path);

  h->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  snprintf(sun.sun_path, sizeof sun.sun_path, "%s", h->sock_path);
  assert_int_equal(bind(h->lfd, (struct sockaddr *)&sun, sizeof sun), 0);
  assert_int_equal(listen(h->lfd, 16), 0);
  h->lev = event_new(h->base, h->lfd, EV_READ | EV_PERSIST, accept_cb, h);
  event_add(h->lev, NULL);
  /* The loop never sleeps longer than this, so RUN_UNTIL notices timeouts. */
  h->tick = event_new(h->base, -1, EV_PERSIST, tick_cb, NULL);
  struct timeval tv = {0, 5000};
  event_add(h->tick, &tv);

  /* As main.c does it, with a gRPC backend on our unix socket. */
  h->gw.base = h->base;
  h->gw.audit_fd = -1;
  h->gw.inspect_conn_budget = GW_INSPECT_CONN_BUDGET;
  h->gw.inspect_budget = GW_INSPECT_BUDGET;
  h->gw.inspect_stall_secs = GW_INSPECT_STALL_SECS;
  h->gw.backend.text = h->backend_text;
  h->gw.backend.is_unix = 1;
  h->gw.backend.path = h->sock_path;
  h->gw.backend_kind = BACKEND_GRPC;
  if (facts_known) { /* no Control.Info probe: the backend sees only our calls */
    h->gw.facts.known = 1;
    snprintf(h->gw.facts.buildkit_version, sizeof h->gw.facts.buildkit_version, "v0.12.0");
  }
  if (audit) {
    snprintf(h->audit_path, sizeof h->audit_path, "%s/audit.log", h->dir);
    h->gw.audit_fd = open(h->audit_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    assert_true(h->gw.audit_fd >= 0);
  }
  struct bg_error err = {0};
  h->gw.policy = bg_policy_load_string(policy_json, strlen(policy_json), &err);
  if (!h->gw.policy)
    fail_msg("policy: %d:%d: %s", err.line, err.column, err.text);
  *state = h;
  return 0;
}

/* The transport tests: everything passes uninspected, facts known. */
static int setup(void **state)
{
  return setup_with(state, POLICY, 1, 0);
}

/* The Control.Info probe: the facts are not known yet. */
static int setup_probe(void **state)
{
  return setup_with(state, POLICY, 0, 0);
}

/* Inspected calls: a profile that grants no entitlement, so a Solve asking
 * for one is refused by rule profiles.builder.entitlements.  With an audit
 * log, where every decision must be recorded. */
static const char POLICY_BUILDER[] =
    "{\"mode\": \"enforce\", \"anonymous\": null,"
    " \"tenants\": [{\"name\": \"harness\", \"match\": {\"any_local\": true}, \"profile\": \"builder\"}],"
    " \"profiles\": {\"builder\": {\"methods\": [\"*\"], \"entitlements\": [], \"isolate\": false}}}";

static int setup_builder(void **state)
{
  return setup_with(state, POLICY_BUILDER, 1, 1);
}

static int teardown(void **state)
{
  struct harness *h = *state;
  while (h->clients) {
    struct h2peer *p = h->clients;
    h->clients = p->next;
    h2peer_free(p);
  }
  while (h->backends) {
    struct h2peer *p = h->backends;
    h->backends = p->next;
    h2peer_free(p);
  }
  while (h->raws) {
    struct raw *r = h->raws;
    h->raws = r->next;
    if (r->fd >= 0)
      close(r->fd);
    evbuffer_free(r->in);
    evbuffer_free(r->out);
    free(r);
  }
  /* What main.c does at exit. */
  while (h->gw.conns)
    h->gw.conns->destroy(h->gw.conns);
  gw_bridge_free_all();
  event_free(h->lev);
  event_free(h->tick);
  close(h->lfd);
  unlink(h->sock_path);
  if (h->gw.audit_fd >= 0) {
    close(h->gw.audit_fd);
    unlink(h->audit_path);
  }
  rmdir(h->dir);
  bg_policy_unref(h->gw.policy);
  event_base_free(h->base);
  free(h);
  return 0;
}

/* Write what |r| has for the gateway, read what the gateway sent it. */
static void raw_pump(struct raw *r)
{
  if (r->fd < 0)
    return;
  if (evbuffer_get_length(r->out) > 0) {
    int n = evbuffer_write(r->out, r->fd);
    if (n < 0 && errno != EAGAIN && errno != EINTR)
      evbuffer_drain(r->out, evbuffer_get_length(r->out));
  }
  uint8_t buf[65536];
  while (!r->eof) {
    ssize_t n = read(r->fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      break;
    if (n <= 0) {
      r->eof = 1;
      break;
    }
    evbuffer_add(r->in, buf, (size_t)n);
  }
}

/* One turn of the loop, then every peer writes what it has. */
static void step(struct harness *h)
{
  event_base_loop(h->base, EVLOOP_ONCE);
  for (struct h2peer *p = h->clients; p; p = p->next)
    h2peer_flush(p);
  for (struct h2peer *p = h->backends; p; p = p->next)
    h2peer_flush(p);
  for (struct raw *r = h->raws; r; r = r->next)
    raw_pump(r);
}

/* Run the loop until |cond| holds (evaluated once per turn: it may have
 * side effects), or fail the test after |ms| milliseconds. */
#define RUN_UNTIL(h, cond, ms)                                                                                 \
  do {                                                                                                         \
    uint64_t run_end_ = now_ms() + (ms);                                                                       \
    int run_ok_;                                                                                               \
    while (!(run_ok_ = (cond)) && now_ms() < run_end_)                                                         \
      step(h);                                                                                                 \
    if (!run_ok_)                                                                                              \
      fail_msg("%s:%d: still not true after %d ms: %s", __FILE__, __LINE__, (int)(ms), #cond);                 \
  } while (0)

/* Bytes sent and received by every peer: it stops changing once the
 * windows and queues between them are full. */
static uint64_t progress(const struct harness *h)
{
  uint64_t n = 0;
  const struct h2peer *lists[2] = {h->clients, h->backends};
  for (int i = 0; i < 2; i++)
    for (const struct h2peer *p = lists[i]; p; p = p->next)
      for (const struct h2stream *st = p->streams; st; st = st->next)
        n += st->sent + evbuffer_get_length(st->in);
  return n;
}

/* Run until nothing has moved for |quiet| ms (at most |max| ms). */
static void settle(struct harness *h, unsigned quiet, unsigned max)
{
  uint64_t end = now_ms() + max, last = progress(h), since = now_ms();
  while (now_ms() < end && now_ms() - since < quiet) {
    step(h);
    uint64_t p = progress(h);
    if (p != last) {
      last = p;
      since = now_ms();
    }
  }
}

/* A client connected the way a listener hands a connection to the front door. */
static struct h2peer *client(struct harness *h, uint32_t window)
{
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  gw_frontdoor_accept(&h->gw, sv[0], NULL, 0, 1);
  struct h2peer *p = h2peer_new(h->base, sv[1], 0, window);
  p->next = h->clients;
  h->clients = p;
  return p;
}

/* The first backend stream for |path| not handed to the test yet, once its
 * request headers are complete; NULL while there is none. */
static struct h2stream *backend_stream(struct harness *h, const char *path)
{
  for (struct h2peer *p = h->backends; p; p = p->next)
    for (struct h2stream *st = p->streams; st; st = st->next) {
      const char *v = h2hdrs_get(&st->hdrs, ":path");
      if (!st->taken && st->n_header_frames > 0 && v && strcmp(v, path) == 0) {
        st->taken = 1;
        return st;
      }
    }
  return NULL;
}

static struct h2stream *wait_backend_stream(struct harness *h, const char *path)
{
  struct h2stream *st = NULL;
  RUN_UNTIL(h, (st = backend_stream(h, path)) != NULL, 3000);
  return st;
}

static struct h2stream *call(struct h2peer *c, const char *path, const void *body, size_t len, int eof)
{
  const char *const kv[] = {":method", "POST", ":scheme", "http", ":path", path, ":authority", "harness",
                            "content-type", "application/grpc", "te", "trailers", NULL};
  return h2peer_request(c, kv, body, len, eof);
}

static const char *const RESP_HEADERS[] = {":status", "200", "content-type", "application/grpc", NULL};
static const char *const TRAILERS_OK[] = {"grpc-status", "0", NULL};

/* A gRPC message: 5-byte prefix, then |payload|. */
static size_t grpc_msg(uint8_t *out, const char *payload)
{
  size_t n = strlen(payload);
  out[0] = 0;
  out[1] = (uint8_t)(n >> 24);
  out[2] = (uint8_t)(n >> 16);
  out[3] = (uint8_t)(n >> 8);
  out[4] = (uint8_t)n;
  memcpy(out + 5, payload, n);
  return n + 5;
}

static const uint8_t EMPTY_MSG[5] = {0};

/* BIG bytes of gRPC messages (64 KiB each, the last shorter) whose payload
 * depends on the position, so a lost, duplicated or reordered chunk shows. */
#define BIG ((size_t)4 << 20)
static uint8_t *big;

static void make_big(void)
{
  if (big)
    return;
  big = malloc(BIG);
  assert_non_null(big);
  for (size_t off = 0; off < BIG;) {
    size_t n = BIG - off < 65536 ? BIG - off : 65536;
    uint32_t len = (uint32_t)(n - 5);
    big[off] = 0;
    big[off + 1] = (uint8_t)(len >> 24);
    big[off + 2] = (uint8_t)(len >> 16);
    big[off + 3] = (uint8_t)(len >> 8);
    big[off + 4] = (uint8_t)len;
    for (size_t i = 5; i < n; i++) {
      size_t k = off + i;
      big[k] = (uint8_t)(k ^ (k >> 8) ^ (k >> 16) ^ 0x5a);
    }
    off += n;
  }
}

static void assert_body(struct evbuffer *in, const uint8_t *want, size_t n)
{
  assert_int_equal(evbuffer_get_length(in), n);
  const uint8_t *got = evbuffer_pullup(in, -1);
  for (size_t i = 0; i < n; i++)
    if (got[i] != want[i])
      fail_msg("byte %zu of %zu differs: got 0x%02x, want 0x%02x", i, n, got[i], want[i]);
}

/* A unary call through |c| that the backend answers "pong" with status 0. */
static void unary_ok(struct harness *h, struct h2peer *c, const char *path)
{
  uint8_t m[32];
  size_t ml = grpc_msg(m, "ping");
  struct h2stream *st = call(c, path, m, ml, 1);
  struct h2stream *bs = wait_backend_stream(h, path);
  RUN_UNTIL(h, bs->ended, 2000);
  h2stream_respond(bs, RESP_HEADERS, 0);
  h2stream_trailers(bs, TRAILERS_OK);
  ml = grpc_msg(m, "pong");
  h2stream_send(bs, m, ml, 1);
  RUN_UNTIL(h, st->closed, 2000);
  assert_false(st->rst);
  assert_string_equal(h2stream_grpc_status(st), "0");
  assert_body(st->in, m, ml);
}

/* What the gateway can hold of one stream's bytes in one direction, at
 * most: its per-stream queue (acknowledged input stops at GW_QUEUE_HIGH),
 * the stream window the sender still had (GW_STREAM_WINDOW), what its
 * socket toward the slow side may queue (GW_OUT_HIGH) and one frame more
 * than that (a DATA frame is added whole before the bound is checked). */
#define HELD_MAX (GW_QUEUE_HIGH + GW_STREAM_WINDOW + GW_OUT_HIGH + 16384 + 9 + 1024)
/* (The last KiB: the kernel's unread count includes frame headers, which
 * the tests subtract as if they were payload.) */

/* ---------- tests ---------- */

/* A unary call: request headers (custom metadata), message and END_STREAM
 * reach the backend; its headers, message and trailers reach the client. */
static void test_unary_passes_through(void **state)
{
  struct harness *h = *state;
  struct h2peer *c = client(h, 0);
  const char *const kv[] = {":method", "POST", ":scheme", "http", ":path", "/harness.Test/Unary",
                            ":authority", "harness", "content-type", "application/grpc", "te", "trailers",
                            "x-harness-meta", "m1", NULL};
  uint8_t req[32], resp[32];
  size_t rql = grpc_msg(req, "ping"), rsl = grpc_msg(resp, "pong");
  struct h2stream *st = h2peer_request(c, kv, req, rql, 1);

  struct h2stream *bs = wait_backend_stream(h, "/harness.Test/Unary");
  RUN_UNTIL(h, bs->ended, 2000);
  assert_string_equal(h2hdrs_get(&bs->hdrs, ":method"), "POST");
  assert_string_equal(h2hdrs_get(&bs->hdrs, "content-type"), "application/grpc");
  assert_string_equal(h2hdrs_get(&bs->hdrs, "te"), "trailers");
  assert_string_equal(h2hdrs_get(&bs->hdrs, "x-harness-meta"), "m1");
  assert_body(bs->in, req, rql);

  const char *const rh[] = {":status", "200", "content-type", "application/grpc", "x-reply-meta", "r1", NULL};
  const char *const tr[] = {"grpc-status", "0", "grpc-message", "all good", "x-trailer-meta", "t1", NULL};
  h2stream_respond(bs, rh, 0);
  h2stream_trailers(bs, tr);
  h2stream_send(bs, resp, rsl, 1);

  RUN_UNTIL(h, st->closed, 2000);
  assert_false(st->rst);
  assert_int_equal(st->close_code, NGHTTP2_NO_ERROR);
  assert_string_equal(h2hdrs_get(&st->hdrs, ":status"), "200");
  assert_string_equal(h2hdrs_get(&st->hdrs, "x-reply-meta"), "r1");
  assert_false(st->first_headers_end);
  assert_int_equal(st->n_header_frames, 2); /* headers, then trailers */
  assert_body(st->in, resp, rsl);
  assert_string_equal(h2hdrs_get(&st->trailers, "grpc-status"), "0");
  assert_string_equal(h2hdrs_get(&st->trailers, "grpc-message"), "all good");
  assert_string_equal(h2hdrs_get(&st->trailers, "x-trailer-meta"), "t1");
  assert_int_equal(h->n_backend_conns, 1);
}

/* End-to-end flow control: the backend streams 4 MiB to a client that
 * stops acknowledging DATA (its 64 KiB window closes).  The gateway must
 * stop acknowledging the backend too, so the backend stalls once the
 * gateway's queue and the backend's stream window are full, instead of the
 * gateway buffering the 4 MiB.  Then the client reads again and gets every
 * byte, in order, and the status. */
static void test_flow_control_reader_stops_then_resumes(void **state)
{
  struct harness *h = *state;
  make_big();
  struct h2peer *c = client(h, 0); /* windows of 65535 */
  c->consume = 0;
  struct h2stream *st = call(c, "/harness.Test/Download", EMPTY_MSG, sizeof EMPTY_MSG, 1);
  struct h2stream *bs = wait_backend_stream(h, "/harness.Test/Download");
  h2stream_respond(bs, RESP_HEADERS, 0);
  h2stream_trailers(bs, TRAILERS_OK);
  h2stream_send(bs, big, BIG, 1);

  settle(h, 150, 4000);
  size_t got = evbuffer_get_length(st->in);
  size_t held = bs->sent - got - evbuffer_get_length(bs->p->wbuf);
  print_message("reader stopped: backend sent %zu, client got %zu, gateway holds at most %zu (bound %d)\n",
                bs->sent, got, held, GW_QUEUE_HIGH + GW_STREAM_WINDOW + 16384);
  assert_true(got <= 65535);                       /* the client's window */
  assert_true(got > 0);                            /* ... which was used */
  assert_true(bs->sent < BIG);                     /* the backend stalled */
  assert_true(held <= GW_QUEUE_HIGH + GW_STREAM_WINDOW + 16384);
  assert_false(st->closed);

  h2peer_set_consume(c, 1);
  RUN_UNTIL(h, st->closed, 8000);
  assert_false(st->rst);
  assert_body(st->in, big, BIG);
  assert_string_equal(h2stream_grpc_status(st), "0");
}

/* |n| small messages on |st|, one at a time, each once the peer has sent
 * the one before, with a few loop turns between: they keep waking the
 * connection the queue-bound tests are stalling.  Returns the bytes sent. */
static size_t send_ticks(struct harness *h, struct h2stream *st, size_t n)
{
  uint8_t m[32];
  size_t ml = grpc_msg(m, "tick");
  for (size_t i = 0; i < n; i++) {
    size_t before = st->sent;
    h2stream_send(st, m, ml, 0);
    RUN_UNTIL(h, st->sent > before, 1000);
    for (int k = 0; k < 3; k++)
      step(h);
  }
  settle(h, 100, 4000);
  return n * ml;
}

/* The 64 KiB queue bound toward a slow client: the client has a large
 * window but stops reading its socket.  The kernel buffer fills, then the
 * gateway may queue GW_OUT_HIGH for the socket and GW_QUEUE_HIGH for the
 * stream, and the backend may send its stream window beyond that: nothing
 * more.  Meanwhile a second stream of the same client gets small messages:
 * the connection keeps being woken up, and each wake-up must not push more
 * of the large stream toward the blocked socket.  Then the client reads
 * again and gets everything. */
static void test_queue_bound_toward_slow_client(void **state)
{
  struct harness *h = *state;
  make_big();
  struct h2peer *c = client(h, 16u << 20);
  struct h2stream *st = call(c, "/harness.Test/Download", EMPTY_MSG, sizeof EMPTY_MSG, 1);
  struct h2stream *tk = call(c, "/harness.Test/Ticker", EMPTY_MSG, sizeof EMPTY_MSG, 1);
  struct h2stream *bs = wait_backend_stream(h, "/harness.Test/Download");
  struct h2stream *bt = wait_backend_stream(h, "/harness.Test/Ticker");
  h2stream_respond(bs, RESP_HEADERS, 0);
  h2stream_respond(bt, RESP_HEADERS, 0);
  RUN_UNTIL(h, st->n_header_frames == 1 && tk->n_header_frames == 1, 2000);
  h2peer_set_reading(c, 0);
  h2stream_trailers(bs, TRAILERS_OK);
  h2stream_send(bs, big, BIG, 1);
  settle(h, 100, 4000);

  size_t ticked = send_ticks(h, bt, 40);

  size_t sent = bs->sent + bt->sent, got = evbuffer_get_length(st->in) + evbuffer_get_length(tk->in);
  size_t unread = h2peer_unread(c);
  size_t held = sent - got - unread - evbuffer_get_length(bs->p->wbuf);
  print_message("client not reading: backend sent %zu, client got %zu, %zu unread in the kernel, "
                "gateway holds at most %zu (bound %zu)\n",
                sent, got, unread, held, HELD_MAX + ticked);
  assert_true(bs->sent < BIG);
  assert_true(held <= HELD_MAX + ticked);

  h2peer_set_reading(c, 1);
  h2stream_trailers(bt, TRAILERS_OK);
  h2stream_send(bt, NULL, 0, 1);
  RUN_UNTIL(h, st->closed && tk->closed, 8000);
  assert_false(st->rst);
  assert_body(st->in, big, BIG);
  assert_string_equal(h2stream_grpc_status(st), "0");
  assert_int_equal(evbuffer_get_length(tk->in), ticked);
  assert_string_equal(h2stream_grpc_status(tk), "0");
}

/* The same toward a slow backend: the client uploads 4 MiB, the backend
 * stops reading its socket.  The gateway acknowledges the client's bytes
 * only while its queue toward the backend is short, so the client stalls;
 * small messages on a second stream keep waking the backend connection up
 * meanwhile.  Then the backend reads again and gets every byte in order. */
static void test_queue_bound_toward_slow_backend(void **state)
{
  struct harness *h = *state;
  make_big();
  h->backend_window = 16u << 20; /* the socket, not flow control, is what stops the gateway */
  struct h2peer *c = client(h, 0);
  struct h2stream *tk = call(c, "/harness.Test/UpTicker", EMPTY_MSG, sizeof EMPTY_MSG, 0);
  struct h2stream *bt = wait_backend_stream(h, "/harness.Test/UpTicker");
  struct h2stream *st = call(c, "/harness.Test/Upload", big, BIG, 1);
  struct h2stream *bs = wait_backend_stream(h, "/harness.Test/Upload");
  assert_ptr_equal(bs->p, bt->p);
  h2peer_set_reading(bs->p, 0);
  settle(h, 100, 4000);

  size_t ticked = send_ticks(h, tk, 40);

  size_t sent = st->sent + tk->sent, got = evbuffer_get_length(bs->in) + evbuffer_get_length(bt->in);
  size_t unread = h2peer_unread(bs->p);
  size_t held = sent - got - unread - evbuffer_get_length(c->wbuf);
  print_message("backend not reading: client sent %zu, backend got %zu, %zu unread in the kernel, "
                "gateway holds at most %zu (bound %zu)\n",
                sent, got, unread, held, HELD_MAX + ticked);
  assert_true(st->sent < BIG);
  assert_true(held <= HELD_MAX + ticked);

  h2peer_set_reading(bs->p, 1);
  h2stream_send(tk, NULL, 0, 1);
  RUN_UNTIL(h, bs->ended && bt->ended, 8000);
  assert_body(bs->in, big, BIG);
  assert_int_equal(evbuffer_get_length(bt->in), sizeof EMPTY_MSG + ticked);
  const char *const done[] = {":status", "200", "content-type", "application/grpc", "grpc-status", "0", NULL};
  h2stream_respond(bs, done, 1);
  h2stream_respond(bt, done, 1);
  RUN_UNTIL(h, st->closed && tk->closed, 2000);
  assert_string_equal(h2stream_grpc_status(st), "0");
  assert_string_equal(h2stream_grpc_status(tk), "0");
}

/* A client's RST_STREAM cancels that stream at the backend, and only it:
 * another stream of the same connection, on the same backend connection,
 * completes normally. */
static void test_client_rst_resets_only_that_stream(void **state)
{
  struct harness *h = *state;
  struct h2peer *c = client(h, 0);
  struct h2stream *a = call(c, "/harness.Test/A", EMPTY_MSG, sizeof EMPTY_MSG, 0);
  struct h2stream *b = call(c, "/harness.Test/B", EMPTY_MSG, sizeof EMPTY_MSG, 0);
  struct h2stream *ba = wait_backend_stream(h, "/harness.Test/A");
  struct h2stream *bb = wait_backend_stream(h, "/harness.Test/B");
  assert_ptr_equal(ba->p, bb->p);
  h2stream_respond(ba, RESP_HEADERS, 0);
  h2stream_respond(bb, RESP_HEADERS, 0);
  RUN_UNTIL(h, a->n_header_frames == 1 && b->n_header_frames == 1, 2000);

  h2stream_rst(a, NGHTTP2_CANCEL);
  RUN_UNTIL(h, ba->closed, 2000);
  assert_true(ba->rst);
  assert_int_equal(ba->rst_code, NGHTTP2_CANCEL);

  uint8_t m[32];
  size_t ml = grpc_msg(m, "still here");
  h2stream_send(b, NULL, 0, 1); /* the client ends B's request */
  RUN_UNTIL(h, bb->ended, 2000);
  assert_false(bb->rst);
  h2stream_trailers(bb, TRAILERS_OK);
  h2stream_send(bb, m, ml, 1);
  RUN_UNTIL(h, b->closed, 2000);
  assert_false(b->rst);
  assert_body(b->in, m, ml);
  assert_string_equal(h2stream_grpc_status(b), "0");
  assert_false(bb->p->eof);
  assert_false(bb->p->goaway);
  assert_int_equal(h->n_backend_conns, 1);
}

/* A backend's RST_STREAM reaches the client: CANCEL and REFUSED_STREAM as
 * the same reset (REFUSED_STREAM tells a gRPC client it may retry), any
 * other code as the call ending UNAVAILABLE.  The connection goes on. */
static void test_backend_rst_reaches_client(void **state)
{
  struct harness *h = *state;
  struct h2peer *c = client(h, 0);
  struct h2stream *x = call(c, "/harness.Test/X", EMPTY_MSG, sizeof EMPTY_MSG, 0);
  struct h2stream *y = call(c, "/harness.Test/Y", EMPTY_MSG, sizeof EMPTY_MSG, 0);
  struct h2stream *z = call(c, "/harness.Test/Z", EMPTY_MSG, sizeof EMPTY_MSG, 0);
  struct h2stream *bx = wait_backend_stream(h, "/harness.Test/X");
  struct h2stream *by = wait_backend_stream(h, "/harness.Test/Y");
  struct h2stream *bz = wait_backend_stream(h, "/harness.Test/Z");
  h2stream_respond(bx, RESP_HEADERS, 0);
  RUN_UNTIL(h, x->n_header_frames == 1, 2000);

  h2stream_rst(bx, NGHTTP2_CANCEL);         /* after the response started */
  h2stream_rst(by, NGHTTP2_REFUSED_STREAM); /* before it */
  h2stream_rst(bz, NGHTTP2_INTERNAL_ERROR);
  /* Z's request is still open on the client's side: the answer ends the
   * stream in one direction only. */
  RUN_UNTIL(h, x->closed && y->closed && z->ended, 2000);
  assert_true(x->rst);
  assert_int_equal(x->rst_code, NGHTTP2_CANCEL);
  assert_true(y->rst);
  assert_int_equal(y->rst_code, NGHTTP2_REFUSED_STREAM);
  assert_false(z->rst);
  assert_non_null(h2stream_grpc_status(z));
  assert_string_equal(h2stream_grpc_status(z), "14");
  assert_non_null(h2hdrs_get(&z->hdrs, "grpc-message"));
  assert_non_null(strstr(h2hdrs_get(&z->hdrs, "grpc-message"), "reset the stream"));

  unary_ok(h, c, "/harness.Test/After");
}

/* The backend says GOAWAY while a stream is open: new calls go to a new
 * backend connection at once, the open stream may still finish there; when
 * the old connection then closes under it, the open stream ends UNAVAILABLE
 * and calls go on working. */
static void test_backend_goaway(void **state)
{
  struct harness *h = *state;
  struct h2peer *c = client(h, 0);
  struct h2stream *a = call(c, "/harness.Test/Watch", EMPTY_MSG, sizeof EMPTY_MSG, 1);
  struct h2stream *ba = wait_backend_stream(h, "/harness.Test/Watch");
  uint8_t m[32];
  size_t ml = grpc_msg(m, "event 1");
  h2stream_respond(ba, RESP_HEADERS, 0);
  h2stream_send(ba, m, ml, 0);
  RUN_UNTIL(h, evbuffer_get_length(a->in) == ml, 2000);

  struct h2peer *old = ba->p;
  h2peer_goaway(old, ba->id, NGHTTP2_NO_ERROR);
  settle(h, 50, 1000);
  assert_int_equal(h->n_backend_conns, 1);

  /* A call after the GOAWAY does not go to the old connection. */
  unary_ok(h, c, "/harness.Test/AfterGoaway");
  assert_int_equal(h->n_backend_conns, 2);
  assert_ptr_not_equal(h->backends->next, NULL);
  assert_false(a->closed);

  /* The old connection goes away with the stream still open. */
  h2peer_close(old);
  RUN_UNTIL(h, a->closed, 3000);
  assert_false(a->rst);
  assert_body(a->in, m, ml); /* what was sent before still arrived */
  assert_non_null(h2stream_grpc_status(a));
  assert_string_equal(h2stream_grpc_status(a), "14");

  unary_ok(h, c, "/harness.Test/AfterClose");
  assert_int_equal(h->n_backend_conns, 2); /* the new connection serves it */
}

/* A GOAWAY whose last-stream-id is below a stream the gateway opened says
 * the backend never processed it: the client gets REFUSED_STREAM (gRPC
 * clients retry such a call, or report UNAVAILABLE), the stream the backend
 * did take finishes normally, and the next call goes to a new connection. */
static void test_backend_goaway_refuses_unprocessed_streams(void **state)
{
  struct harness *h = *state;
  struct h2peer *c = client(h, 0);
  struct h2stream *a = call(c, "/harness.Test/Taken", EMPTY_MSG, sizeof EMPTY_MSG, 1);
  struct h2stream *ba = wait_backend_stream(h, "/harness.Test/Taken");
  struct h2stream *b = call(c, "/harness.Test/Unprocessed", EMPTY_MSG, sizeof EMPTY_MSG, 1);
  struct h2stream *bb = wait_backend_stream(h, "/harness.Test/Unprocessed");
  assert_ptr_equal(ba->p, bb->p);
  assert_true(ba->id < bb->id);

  h2peer_goaway(ba->p, ba->id, NGHTTP2_NO_ERROR);
  RUN_UNTIL(h, b->closed, 2000);
  assert_true(b->rst);
  assert_int_equal(b->rst_code, NGHTTP2_REFUSED_STREAM);
  assert_false(a->closed);

  uint8_t m[32];
  size_t ml = grpc_msg(m, "done");
  h2stream_respond(ba, RESP_HEADERS, 0);
  h2stream_trailers(ba, TRAILERS_OK);
  h2stream_send(ba, m, ml, 1);
  RUN_UNTIL(h, a->closed, 2000);
  assert_false(a->rst);
  assert_body(a->in, m, ml);
  assert_string_equal(h2stream_grpc_status(a), "0");

  unary_ok(h, c, "/harness.Test/Retry");
  assert_int_equal(h->n_backend_conns, 2);
}

/* Trailers-only: a backend that answers with one HEADERS frame carrying
 * grpc-status and END_STREAM is seen the same way by the client: one
 * HEADERS frame, END_STREAM, no DATA, no separate trailers. */
static void test_trailers_only_answer(void **state)
{
  struct harness *h = *state;
  struct h2peer *c = client(h, 0);
  struct h2stream *st = call(c, "/harness.Test/Denied", EMPTY_MSG, sizeof EMPTY_MSG, 1);
  struct h2stream *bs = wait_backend_stream(h, "/harness.Test/Denied");
  const char *const kv[] = {":status", "200", "content-type", "application/grpc", "grpc-status", "7",
                            "grpc-message", "not for you", NULL};
  h2stream_respond(bs, kv, 1);
  RUN_UNTIL(h, st->closed, 2000);
  assert_false(st->rst);
  assert_int_equal(st->n_header_frames, 1);
  assert_true(st->first_headers_end);
  assert_int_equal(st->n_data_frames, 0);
  assert_int_equal(st->trailers.n, 0);
  assert_string_equal(h2hdrs_get(&st->hdrs, ":status"), "200");
  assert_string_equal(h2hdrs_get(&st->hdrs, "grpc-status"), "7");
  assert_string_equal(h2hdrs_get(&st->hdrs, "grpc-message"), "not for you");
}

/* A client that closes its socket mid-stream: the backend sees the stream
 * cancelled, the gateway frees the connection by itself, and the shared
 * backend connection stays and serves the next client.  Twice: in the
 * middle of a large response (the gateway's writes fail), and on a quiet
 * stream (only the end of stream on the socket tells).  Under `make asan`
 * LeakSanitizer checks that nothing of the vanished connections is left. */
static void test_client_vanishes_mid_stream(void **state)
{
  struct harness *h = *state;
  make_big();
  struct h2peer *c = client(h, 0);
  struct h2stream *st = call(c, "/harness.Test/Download", EMPTY_MSG, sizeof EMPTY_MSG, 1);
  struct h2stream *bs = wait_backend_stream(h, "/harness.Test/Download");
  h2stream_respond(bs, RESP_HEADERS, 0);
  h2stream_send(bs, big, BIG, 0);
  RUN_UNTIL(h, evbuffer_get_length(st->in) > 0, 2000);
  assert_int_equal(h->gw.n_conns, 1);

  h2peer_close(c);
  RUN_UNTIL(h, bs->closed, 3000);
  assert_true(bs->rst);
  assert_int_equal(bs->rst_code, NGHTTP2_CANCEL);
  RUN_UNTIL(h, h->gw.n_conns == 0, 3000);
  assert_false(bs->p->eof);

  struct h2peer *c2 = client(h, 0);
  unary_ok(h, c2, "/harness.Test/Next");
  assert_int_equal(h->n_backend_conns, 1);

  struct h2stream *q = call(c2, "/harness.Test/Quiet", EMPTY_MSG, sizeof EMPTY_MSG, 0);
  struct h2stream *bq = wait_backend_stream(h, "/harness.Test/Quiet");
  h2stream_respond(bq, RESP_HEADERS, 0);
  RUN_UNTIL(h, q->n_header_frames == 1, 2000);
  settle(h, 50, 1000);
  h2peer_close(c2);
  RUN_UNTIL(h, bq->closed, 3000);
  assert_true(bq->rst);
  assert_int_equal(bq->rst_code, NGHTTP2_CANCEL);
  RUN_UNTIL(h, h->gw.n_conns == 0, 3000);
  assert_false(bq->p->eof);
  assert_int_equal(h->n_backend_conns, 1);
}

/* ---------- session mode: a Docker-style /session in front of the gRPC backend ---------- */

#define SESSION_PATH "/moby.buildkit.v1.Control/Session"
/* buildx v0.10.5's /session request to dockerd, byte for byte: the request
 * head, then at once (before any 101) the first frames of the HTTP/2
 * connection it will serve the session on. */
#define SESSION_REQUEST "../fixtures/http/session-health.raw"

/* A connection to the front door, as a listener hands one over, whose
 * bytes the test writes and reads itself. */
static struct raw *raw_client(struct harness *h)
{
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  gw_frontdoor_accept(&h->gw, sv[0], NULL, 0, 1);
  struct raw *r = calloc(1, sizeof *r);
  assert_non_null(r);
  r->fd = sv[1];
  r->in = evbuffer_new();
  r->out = evbuffer_new();
  r->next = h->raws;
  h->raws = r;
  return r;
}

static void raw_send(struct raw *r, const void *p, size_t n)
{
  evbuffer_add(r->out, p, n);
  raw_pump(r);
}

/* The client hangs up. */
static void raw_close(struct raw *r)
{
  close(r->fd);
  r->fd = -1;
}

/* Length of the HTTP/1.1 request head at the start of |p| (through the blank line). */
static size_t head_len(const uint8_t *p, size_t n)
{
  const uint8_t *e = memmem(p, n, "\r\n\r\n", 4);
  assert_non_null(e);
  return (size_t)(e - p) + 4;
}

/* |n| bytes that depend on their position and on |seed|. */
static uint8_t *pattern(size_t n, unsigned seed)
{
  uint8_t *p = malloc(n ? n : 1);
  assert_non_null(p);
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)((i * 131u) ^ (i >> 9) ^ seed);
  return p;
}

/* Control.Session carries BytesMessage{bytes data = 1} (proto/control.proto)
 * both ways.  Append one, gRPC-framed, holding |data|; empty data is an
 * empty message (proto3 leaves a default field out). */
static void bytesmsg_add(struct evbuffer *out, const uint8_t *data, size_t n)
{
  uint8_t v[10];
  size_t vl = 0;
  uint64_t x = n;
  do {
    uint8_t b = x & 0x7f;
    x >>= 7;
    v[vl++] = x ? (uint8_t)(b | 0x80) : b;
  } while (x);
  size_t len = n ? 1 + vl + n : 0;
  uint8_t prefix[6] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, 0x0a};
  evbuffer_add(out, prefix, n ? 6 : 5);
  if (n) {
    evbuffer_add(out, v, vl);
    evbuffer_add(out, data, n);
  }
}

/* The data of the complete BytesMessages in |in| (gRPC-framed), appended to
 * |out| when it is not NULL; returns its length and, in *count, how many
 * messages there were.  Anything that is not such a message fails the test;
 * a message still incomplete at the end is left for later (*rest bytes). */
static size_t bytesmsg_unwrap(struct evbuffer *in, struct evbuffer *out, size_t *count, size_t *rest)
{
  size_t n = evbuffer_get_length(in), off = 0, total = 0;
  const uint8_t *p = evbuffer_pullup(in, -1);
  *count = 0;
  while (n - off >= 5) {
    size_t len = (size_t)p[off + 1] << 24 | (size_t)p[off + 2] << 16 | (size_t)p[off + 3] << 8 | p[off + 4];
    if (p[off] != 0)
      fail_msg("session message at offset %zu has compressed flag %u", off, p[off]);
    if (n - off - 5 < len)
      break;
    const uint8_t *m = p + off + 5, *end = m + len;
    if (m < end) { /* exactly one field: data (1), length-delimited */
      if (*m++ != 0x0a)
        fail_msg("session message at offset %zu is not a BytesMessage (tag 0x%02x)", off, m[-1]);
      uint64_t dl = 0;
      int sh = 0;
      while (m < end && (*m & 0x80) && sh < 63) {
        dl |= (uint64_t)(*m++ & 0x7f) << sh;
        sh += 7;
      }
      if (m == end)
        fail_msg("session message at offset %zu: truncated length", off);
      dl |= (uint64_t)*m++ << sh;
      if ((uint64_t)(end - m) != dl)
        fail_msg("session message at offset %zu: data of %llu bytes in %zu", off, (unsigned long long)dl,
                 (size_t)(end - m));
      if (out)
        evbuffer_add(out, m, (size_t)dl);
      total += (size_t)dl;
    }
    off += 5 + len;
    (*count)++;
  }
  *rest = n - off;
  return total;
}

static size_t session_up_len(struct h2stream *bs)
{
  size_t count, rest;
  return bytesmsg_unwrap(bs->in, NULL, &count, &rest);
}

/* Send buildx's /session request through |r| and wait for the gateway's
 * Control.Session stream at the backend and the client's 101.  *pipelined
 * gets the bytes the client sent behind its request head. */
static struct h2stream *session_open(struct harness *h, struct raw *r, struct evbuffer *pipelined)
{
  size_t n;
  uint8_t *req = fixture_load(SESSION_REQUEST, &n);
  size_t hl = head_len(req, n);
  assert_true(n > hl); /* the fixture has HTTP/2 bytes behind its head */
  evbuffer_add(pipelined, req + hl, n - hl);
  raw_send(r, req, n);
  free(req);
  struct h2stream *bs = wait_backend_stream(h, SESSION_PATH);
  RUN_UNTIL(h, evbuffer_get_length(r->in) >= strlen(GW_UPGRADE_101), 2000);
  assert_memory_equal(evbuffer_pullup(r->in, (ssize_t)strlen(GW_UPGRADE_101)), GW_UPGRADE_101,
                      strlen(GW_UPGRADE_101));
  evbuffer_drain(r->in, strlen(GW_UPGRADE_101));
  return bs;
}

/* buildx's /session through the front door to a gRPC backend: the client
 * gets the engine's 101; the backend gets one Control.Session call with the
 * session's X-Docker-Expose-Session-* headers (lowercased, nothing else of
 * the HTTP/1.1 request); the client's bytes, from those it pipelined behind
 * its head on, arrive at the backend in BytesMessages, byte for byte, and
 * the backend's BytesMessages arrive at the client unwrapped, byte for
 * byte, more than 64 KiB each way (so several messages, and more than one
 * queue's worth).  When the backend ends the call, the client's socket is
 * closed, after the last byte, and the gateway lets go of the session
 * and of its backend connection. */
static void test_session_bytes_both_ways(void **state)
{
  struct harness *h = *state;
  struct raw *r = raw_client(h);
  struct evbuffer *want_up = evbuffer_new(), *got_up = evbuffer_new(), *want_down = evbuffer_new();
  struct h2stream *bs = session_open(h, r, want_up);

  assert_string_equal(h2hdrs_get(&bs->hdrs, ":method"), "POST");
  assert_string_equal(h2hdrs_get(&bs->hdrs, "content-type"), "application/grpc");
  assert_string_equal(h2hdrs_get(&bs->hdrs, "x-docker-expose-session-uuid"), "t55wvs4ifrsc9rcn7sj71hxzl");
  assert_string_equal(h2hdrs_get(&bs->hdrs, "x-docker-expose-session-name"), "main");
  assert_string_equal(h2hdrs_get(&bs->hdrs, "x-docker-expose-session-sharedkey"), "");
  assert_int_equal(h2hdrs_count(&bs->hdrs, "x-docker-expose-session-grpc-method"), 2);
  assert_string_equal(h2hdrs_nth(&bs->hdrs, "x-docker-expose-session-grpc-method", 0), "/grpc.health.v1.Health/Check");
  assert_string_equal(h2hdrs_nth(&bs->hdrs, "x-docker-expose-session-grpc-method", 1), "/grpc.health.v1.Health/Watch");
  assert_null(h2hdrs_get(&bs->hdrs, "user-agent"));
  assert_null(h2hdrs_get(&bs->hdrs, "upgrade"));
  assert_null(h2hdrs_get(&bs->hdrs, "content-length"));

  /* Up: what was pipelined, then 200 KiB. */
  size_t upn = 200 * 1024;
  uint8_t *up = pattern(upn, 0x11);
  evbuffer_add(want_up, up, upn);
  raw_send(r, up, upn);
  size_t want_up_len = evbuffer_get_length(want_up);
  RUN_UNTIL(h, session_up_len(bs) == want_up_len, 3000);
  size_t count, rest;
  bytesmsg_unwrap(bs->in, got_up, &count, &rest);
  assert_int_equal(rest, 0);
  assert_true(count >= 2);
  assert_body(got_up, evbuffer_pullup(want_up, -1), want_up_len);
  assert_false(bs->ended);

  /* Down: 100000 bytes, an empty message, 1 byte, 40000 bytes. */
  struct evbuffer *wire = evbuffer_new();
  const size_t sizes[] = {100000, 0, 1, 40000};
  for (size_t i = 0; i < 4; i++) {
    uint8_t *d = pattern(sizes[i], 0x20 + (unsigned)i);
    bytesmsg_add(wire, d, sizes[i]);
    evbuffer_add(want_down, d, sizes[i]);
    free(d);
  }
  h2stream_respond(bs, RESP_HEADERS, 0);
  h2stream_send(bs, evbuffer_pullup(wire, -1), evbuffer_get_length(wire), 0);
  size_t want_down_len = evbuffer_get_length(want_down);
  RUN_UNTIL(h, evbuffer_get_length(r->in) >= want_down_len, 3000);
  assert_body(r->in, evbuffer_pullup(want_down, -1), want_down_len);
  assert_false(r->eof);

  /* The backend ends the call as grpc-go (BuildKit) does while the client's
   * side is still open: trailers with END_STREAM, then RST_STREAM(NO_ERROR)
   * (RFC 9113 8.1).  The client's socket closes, nothing more on it. */
  h2stream_trailers(bs, TRAILERS_OK);
  h2stream_send(bs, NULL, 0, 1);
  settle(h, 30, 500);
  h2stream_rst(bs, NGHTTP2_NO_ERROR);
  RUN_UNTIL(h, r->eof, 2000);
  assert_body(r->in, evbuffer_pullup(want_down, -1), want_down_len);
  RUN_UNTIL(h, h->gw.n_conns == 0, 2000);
  RUN_UNTIL(h, bs->p->eof, 2000); /* the session's own backend connection is closed too */

  free(up);
  evbuffer_free(wire);
  evbuffer_free(want_up);
  evbuffer_free(got_up);
  evbuffer_free(want_down);
}

/* The backend ends Control.Session with its trailers (END_STREAM) and no
 * reset: the call is over (its status is final), so the raw client's socket
 * must close as well, after the bytes sent before. */
static void test_session_backend_ends_without_reset(void **state)
{
  struct harness *h = *state;
  struct raw *r = raw_client(h);
  struct evbuffer *want_up = evbuffer_new(), *wire = evbuffer_new();
  struct h2stream *bs = session_open(h, r, want_up);
  RUN_UNTIL(h, session_up_len(bs) == evbuffer_get_length(want_up), 2000);
  bytesmsg_add(wire, (const uint8_t *)"bye", 3);
  h2stream_respond(bs, RESP_HEADERS, 0);
  h2stream_trailers(bs, TRAILERS_OK);
  h2stream_send(bs, evbuffer_pullup(wire, -1), evbuffer_get_length(wire), 1);
  RUN_UNTIL(h, evbuffer_get_length(r->in) == 3, 2000);
  assert_memory_equal(evbuffer_pullup(r->in, -1), "bye", 3);
  settle(h, 50, 500);
  evbuffer_free(want_up);
  evbuffer_free(wire);
  RUN_UNTIL(h, r->eof, 2000);
  assert_int_equal(evbuffer_get_length(r->in), 3);
  RUN_UNTIL(h, h->gw.n_conns == 0, 2000);
}

/* The session client hangs up: the backend's Control.Session stream is
 * ended (END_STREAM) or reset, and the gateway lets go of the session. */
static void test_session_client_hangs_up(void **state)
{
  struct harness *h = *state;
  struct raw *r = raw_client(h);
  struct evbuffer *want_up = evbuffer_new();
  struct h2stream *bs = session_open(h, r, want_up);
  RUN_UNTIL(h, session_up_len(bs) == evbuffer_get_length(want_up), 2000);
  struct evbuffer *wire = evbuffer_new();
  bytesmsg_add(wire, (const uint8_t *)"hello", 5);
  h2stream_respond(bs, RESP_HEADERS, 0);
  h2stream_send(bs, evbuffer_pullup(wire, -1), evbuffer_get_length(wire), 0);
  RUN_UNTIL(h, evbuffer_get_length(r->in) == 5, 2000);
  assert_false(bs->ended);
  assert_false(bs->rst);

  raw_close(r);
  RUN_UNTIL(h, h->gw.n_conns == 0, 2000);
  RUN_UNTIL(h, bs->p->eof, 2000); /* the session's own backend connection is closed */
  evbuffer_free(wire);
  evbuffer_free(want_up);
  assert_true(bs->ended || bs->rst);
}

/* A /session while the backend is down: the client gets HTTP 502 naming
 * the backend, never a 101, and its connection is closed. */
static void test_session_backend_down_is_502(void **state)
{
  struct harness *h = *state;
  unlink(h->sock_path); /* nothing answers at the backend's address any more */
  struct raw *r = raw_client(h);
  size_t n;
  uint8_t *req = fixture_load(SESSION_REQUEST, &n);
  raw_send(r, req, n);
  free(req);
  RUN_UNTIL(h, r->eof, 3000);
  size_t len = evbuffer_get_length(r->in);
  const char *got = (const char *)evbuffer_pullup(r->in, -1);
  static const char want[] = "HTTP/1.1 502 Bad Gateway\r\n";
  assert_true(len > strlen(want));
  assert_memory_equal(got, want, strlen(want));
  assert_null(memmem(got, len, "HTTP/1.1 101", 12));
  assert_non_null(memmem(got, len, h->sock_path, strlen(h->sock_path))); /* the message names the backend */
  assert_int_equal(h->n_backend_conns, 0);
  RUN_UNTIL(h, h->gw.n_conns == 0, 2000);
}

/* ---------- the Control.Info probe ---------- */

#define INFO_PATH "/moby.buildkit.v1.Control/Info"

/* The first call of a client while the backend facts are unknown: the
 * gateway makes its own Control.Info call (an empty InfoRequest) on the
 * backend connection; from the answer's BuildkitVersion it learns what
 * BuildKit runs there.  The client's call goes on as if nothing happened,
 * and once the facts are known no other probe is made. */
static void test_probe_learns_buildkit_version(void **state)
{
  struct harness *h = *state;
  assert_false(h->gw.facts.known);
  struct h2peer *c = client(h, 0);
  uint8_t m[32], resp[32];
  size_t ml = grpc_msg(m, "ping"), rl = grpc_msg(resp, "pong");
  struct h2stream *st = call(c, "/harness.Test/First", m, ml, 1);
  struct h2stream *bs = wait_backend_stream(h, "/harness.Test/First");
  struct h2stream *bi = wait_backend_stream(h, INFO_PATH);
  RUN_UNTIL(h, bi->ended && bs->ended, 2000);
  assert_string_equal(h2hdrs_get(&bi->hdrs, ":method"), "POST");
  assert_string_equal(h2hdrs_get(&bi->hdrs, "content-type"), "application/grpc");
  assert_body(bi->in, EMPTY_MSG, sizeof EMPTY_MSG); /* InfoRequest{} */
  assert_false(h->gw.facts.known);

  /* InfoResponse{buildkitVersion (1): BuildkitVersion{package (1), version
   * (2), revision (3)}} (proto/control.proto, proto/worker.proto) */
  static const char pkg[] = "github.com/moby/buildkit", ver[] = "v0.13.2", rev[] = "c3c7a5e";
  uint8_t bv[128], info[160];
  size_t bl = 0;
  bv[bl++] = 0x0a;
  bv[bl++] = sizeof pkg - 1;
  memcpy(bv + bl, pkg, sizeof pkg - 1);
  bl += sizeof pkg - 1;
  bv[bl++] = 0x12;
  bv[bl++] = sizeof ver - 1;
  memcpy(bv + bl, ver, sizeof ver - 1);
  bl += sizeof ver - 1;
  bv[bl++] = 0x1a;
  bv[bl++] = sizeof rev - 1;
  memcpy(bv + bl, rev, sizeof rev - 1);
  bl += sizeof rev - 1;
  size_t il = 0;
  info[il++] = 0;
  info[il++] = 0;
  info[il++] = 0;
  info[il++] = 0;
  info[il++] = (uint8_t)(bl + 2);
  info[il++] = 0x0a;
  info[il++] = (uint8_t)bl;
  memcpy(info + il, bv, bl);
  il += bl;
  h2stream_respond(bi, RESP_HEADERS, 0);
  h2stream_trailers(bi, TRAILERS_OK);
  h2stream_send(bi, info, il, 1);
  RUN_UNTIL(h, h->gw.facts.known, 2000);
  assert_false(h->gw.facts.info_unimplemented);
  assert_string_equal(h->gw.facts.buildkit_version, "v0.13.2");

  /* The client's call: its bytes, the backend's answer, nothing of the probe. */
  assert_body(bs->in, m, ml);
  h2stream_respond(bs, RESP_HEADERS, 0);
  h2stream_trailers(bs, TRAILERS_OK);
  h2stream_send(bs, resp, rl, 1);
  RUN_UNTIL(h, st->closed, 2000);
  assert_false(st->rst);
  assert_string_equal(h2stream_grpc_status(st), "0");
  assert_body(st->in, resp, rl);
  assert_ptr_equal(c->streams, st);
  assert_null(st->next);

  unary_ok(h, c, "/harness.Test/Second");
  assert_null(backend_stream(h, INFO_PATH));
  assert_int_equal(h->n_backend_conns, 1);
}

/* A BuildKit older than v0.11 has no Control.Info: an UNIMPLEMENTED answer
 * is a fact too (the policy then refuses what such a daemon would ignore).
 * Here the client's call finishes first: it never waits for the probe.
 * |trailers_only|: the answer is one HEADERS frame with grpc-status and
 * END_STREAM, as grpc-go (every BuildKit) answers an unknown method;
 * otherwise headers, then trailers. */
static void probe_unimplemented(struct harness *h, int trailers_only)
{
  struct h2peer *c = client(h, 0);
  uint8_t m[32], resp[32];
  size_t ml = grpc_msg(m, "ping"), rl = grpc_msg(resp, "pong");
  struct h2stream *st = call(c, "/harness.Test/First", m, ml, 1);
  struct h2stream *bs = wait_backend_stream(h, "/harness.Test/First");
  struct h2stream *bi = wait_backend_stream(h, INFO_PATH);
  RUN_UNTIL(h, bi->ended && bs->ended, 2000);

  h2stream_respond(bs, RESP_HEADERS, 0);
  h2stream_trailers(bs, TRAILERS_OK);
  h2stream_send(bs, resp, rl, 1);
  RUN_UNTIL(h, st->closed, 2000);
  assert_string_equal(h2stream_grpc_status(st), "0");
  assert_body(st->in, resp, rl);
  assert_false(h->gw.facts.known);

  const char *const unimpl[] = {"grpc-status", "12", "grpc-message",
                                "unknown method Info for service moby.buildkit.v1.Control", NULL};
  if (trailers_only) {
    const char *const kv[] = {":status", "200", "content-type", "application/grpc", unimpl[0], unimpl[1],
                              unimpl[2], unimpl[3], NULL};
    h2stream_respond(bi, kv, 1);
  } else {
    h2stream_respond(bi, RESP_HEADERS, 0);
    h2stream_trailers(bi, unimpl);
    h2stream_send(bi, NULL, 0, 1);
  }
  RUN_UNTIL(h, bi->closed, 2000);
  assert_null(c->streams->next); /* the client saw only its own call */
  settle(h, 30, 500);
  RUN_UNTIL(h, h->gw.facts.known, 2000);
  assert_true(h->gw.facts.info_unimplemented);
  assert_true(h->gw.facts.buildkit_version[0] != 0);

  unary_ok(h, c, "/harness.Test/Second");
  assert_null(backend_stream(h, INFO_PATH));
}

static void test_probe_info_unimplemented(void **state)
{
  probe_unimplemented(*state, 0);
}

static void test_probe_info_unimplemented_trailers_only(void **state)
{
  probe_unimplemented(*state, 1);
}

/* ---------- an inspected method: Control.Solve ---------- */

#define SOLVE_PATH "/moby.buildkit.v1.Control/Solve"

/* Bytes and streams every backend connection has received so far. */
static size_t backend_bytes(const struct harness *h, size_t *streams)
{
  size_t n = 0;
  *streams = 0;
  for (const struct h2peer *p = h->backends; p; p = p->next)
    for (const struct h2stream *st = p->streams; st; st = st->next) {
      n += evbuffer_get_length(st->in);
      (*streams)++;
    }
  return n;
}

/* The last audit record of a call to |method| (json_decref it). */
static json_t *audit_record(const struct harness *h, const char *method)
{
  char *text = fixture_load(h->audit_path, NULL);
  json_t *found = NULL;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    json_error_t je;
    json_t *a = json_loads(line, 0, &je);
    if (!a)
      fail_msg("audit line is not JSON: %s: %s", je.text, line);
    json_t *m = json_object_get(a, "method");
    if (json_is_string(m) && strcmp(json_string_value(m), method) == 0) {
      json_decref(found);
      found = a;
    } else {
      json_decref(a);
    }
  }
  free(text);
  if (!found)
    fail_msg("no audit record for %s", method);
  return found;
}

static const char *jstr(json_t *a, const char *key)
{
  json_t *v = json_object_get(a, key);
  return json_is_string(v) ? json_string_value(v) : "";
}

/* A captured SolveRequest with its 5-byte gRPC prefix. */
static uint8_t *framed_fixture(const char *path, size_t *len)
{
  size_t n;
  uint8_t *m = fixture_load(path, &n);
  uint8_t *f = malloc(n + 5);
  assert_non_null(f);
  f[0] = 0;
  f[1] = (uint8_t)(n >> 24);
  f[2] = (uint8_t)(n >> 16);
  f[3] = (uint8_t)(n >> 8);
  f[4] = (uint8_t)n;
  memcpy(f + 5, m, n);
  free(m);
  *len = n + 5;
  return f;
}

/* The policy inspects Control.Solve, so its request is judged whole: sent
 * in three pieces (inside the prefix, inside the message, the rest), nothing
 * reaches the backend until the last piece; then the message arrives as the
 * client sent it (the policy allowed it unchanged) and the call completes. */
static void test_inspected_request_forwarded_only_whole(void **state)
{
  struct harness *h = *state;
  size_t n, streams;
  uint8_t *f = framed_fixture("../fixtures/policy/control-solve-buildx.bin", &n);
  size_t cut[3] = {3, 5 + (n - 5) / 2, n};
  struct h2peer *c = client(h, 0);
  struct h2stream *st = call(c, SOLVE_PATH, f, cut[0], 0);
  RUN_UNTIL(h, st->sent == cut[0], 1000);
  settle(h, 30, 500);
  assert_int_equal(backend_bytes(h, &streams), 0);
  assert_int_equal(streams, 0);
  h2stream_send(st, f + cut[0], cut[1] - cut[0], 0);
  RUN_UNTIL(h, st->sent == cut[1], 1000);
  settle(h, 30, 500);
  assert_int_equal(backend_bytes(h, &streams), 0);
  assert_int_equal(streams, 0);
  assert_false(st->closed);

  h2stream_send(st, f + cut[1], cut[2] - cut[1], 1);
  struct h2stream *bs = wait_backend_stream(h, SOLVE_PATH);
  RUN_UNTIL(h, bs->ended, 2000);
  assert_body(bs->in, f, n);
  h2stream_respond(bs, RESP_HEADERS, 0);
  h2stream_trailers(bs, TRAILERS_OK);
  h2stream_send(bs, EMPTY_MSG, sizeof EMPTY_MSG, 1);
  RUN_UNTIL(h, st->closed, 2000);
  assert_false(st->rst);
  assert_string_equal(h2stream_grpc_status(st), "0");
  assert_body(st->in, EMPTY_MSG, sizeof EMPTY_MSG);
  free(f);
}

/* buildctl's Solve asking for network.host and security.insecure under a
 * profile that grants neither: the client gets PERMISSION_DENIED naming the
 * rule and the entitlement, and the backend never sees the call (a call
 * after it on the same connection does reach the backend, alone). */
static void test_inspected_denied_never_reaches_backend(void **state)
{
  struct harness *h = *state;
  size_t n, streams;
  uint8_t *f = framed_fixture("../fixtures/policy/control-solve-entitlement.bin", &n);
  struct h2peer *c = client(h, 0);
  struct h2stream *st = call(c, SOLVE_PATH, f, n, 1);
  RUN_UNTIL(h, st->closed, 2000);
  assert_false(st->rst);
  assert_non_null(h2stream_grpc_status(st));
  assert_string_equal(h2stream_grpc_status(st), "7");
  const char *msg = h2stream_grpc_message(st);
  assert_non_null(msg);
  assert_non_null(strstr(msg, "profiles.builder.entitlements"));
  assert_non_null(strstr(msg, "network.host"));
  assert_int_equal(evbuffer_get_length(st->in), 0);

  unary_ok(h, c, "/harness.Test/After");
  assert_null(backend_stream(h, SOLVE_PATH));
  backend_bytes(h, &streams);
  assert_int_equal(streams, 1);

  json_t *a = audit_record(h, SOLVE_PATH);
  assert_string_equal(jstr(a, "decision"), "deny");
  assert_string_equal(jstr(a, "rule"), "profiles.builder.entitlements");
  assert_int_equal(json_integer_value(json_object_get(a, "grpc_status")), 7);
  json_decref(a);
  free(f);
}

/* A Solve whose request ends (END_STREAM) inside its message, some time
 * after its first bytes: the client gets INVALID_ARGUMENT, and nothing of
 * it ever reached the backend. */
static void test_inspected_truncated_request(void **state)
{
  struct harness *h = *state;
  size_t n, streams;
  uint8_t *f = framed_fixture("../fixtures/policy/control-solve-buildx.bin", &n);
  struct h2peer *c = client(h, 0);
  struct h2stream *st = call(c, SOLVE_PATH, f, n - 10, 0);
  RUN_UNTIL(h, st->sent == n - 10, 1000);
  settle(h, 30, 500);
  assert_false(st->closed);
  h2stream_send(st, NULL, 0, 1);
  RUN_UNTIL(h, st->closed, 2000);
  assert_false(st->rst);
  assert_non_null(h2stream_grpc_status(st));
  assert_string_equal(h2stream_grpc_status(st), "3");
  assert_non_null(h2stream_grpc_message(st));
  assert_non_null(strstr(h2stream_grpc_message(st), "truncated"));
  assert_int_equal(backend_bytes(h, &streams), 0);
  assert_int_equal(streams, 0);

  unary_ok(h, c, "/harness.Test/After");
  assert_null(backend_stream(h, SOLVE_PATH));
  backend_bytes(h, &streams);
  assert_int_equal(streams, 1);

  json_t *a = audit_record(h, SOLVE_PATH);
  assert_int_equal(json_integer_value(json_object_get(a, "grpc_status")), 3);
  json_decref(a);
  free(f);
}

int main(void)
{
  signal(SIGPIPE, SIG_IGN); /* as main.c: a write to a closed socket is an error, not a signal */
  const char *lv = getenv("BG_TEST_LOG");
  gw_log_level = lv ? gw_log_parse_level(lv) : GW_LOG_ERROR;
  const char *only = getenv("BG_TEST_ONLY"); /* e.g. BG_TEST_ONLY='test_session_*' */
  if (only)
    cmocka_set_test_filter(only);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_unary_passes_through, setup, teardown),
      cmocka_unit_test_setup_teardown(test_flow_control_reader_stops_then_resumes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_queue_bound_toward_slow_client, setup, teardown),
      cmocka_unit_test_setup_teardown(test_queue_bound_toward_slow_backend, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_rst_resets_only_that_stream, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backend_rst_reaches_client, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backend_goaway, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backend_goaway_refuses_unprocessed_streams, setup, teardown),
      cmocka_unit_test_setup_teardown(test_trailers_only_answer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_vanishes_mid_stream, setup, teardown),
      cmocka_unit_test_setup_teardown(test_session_bytes_both_ways, setup, teardown),
      cmocka_unit_test_setup_teardown(test_session_backend_ends_without_reset, setup, teardown),
      cmocka_unit_test_setup_teardown(test_session_client_hangs_up, setup, teardown),
      cmocka_unit_test_setup_teardown(test_session_backend_down_is_502, setup, teardown),
      cmocka_unit_test_setup_teardown(test_probe_learns_buildkit_version, setup_probe, teardown),
      cmocka_unit_test_setup_teardown(test_probe_info_unimplemented, setup_probe, teardown),
      cmocka_unit_test_setup_teardown(test_probe_info_unimplemented_trailers_only, setup_probe, teardown),
      cmocka_unit_test_setup_teardown(test_inspected_request_forwarded_only_whole, setup_builder, teardown),
      cmocka_unit_test_setup_teardown(test_inspected_denied_never_reaches_backend, setup_builder, teardown),
      cmocka_unit_test_setup_teardown(test_inspected_truncated_request, setup_builder, teardown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  free(big);
  return rc;
}

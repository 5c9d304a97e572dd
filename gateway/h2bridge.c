/*
 * h2bridge.c: the HTTP/2 proxy engine.
 *
 * One bridge per client connection: an nghttp2 server session toward the
 * client ("cs") and an nghttp2 client session toward a backend connection of
 * its own ("bs").  One backend connection per client connection keeps
 * tenants apart (a client that vanishes takes exactly its own backend streams
 * with it) and matches how the Docker engine's /grpc endpoint is used.
 *
 * Each request is a struct bstream that both sessions point at.  Bytes flow
 * through two bounded queues (req: client -> backend, resp: backend ->
 * client).  Flow control is manual on both sessions (STYLE.md §5): bytes
 * received on one side are acknowledged (nghttp2_session_consume) only once
 * the queue they went into has drained below GW_QUEUE_HIGH, i.e. once the
 * other side has taken them; a slow reader therefore stalls its writer's
 * window instead of growing our memory.
 *
 * Re-entrancy: nghttp2 callbacks only change state and queue frames.  All
 * mem_send calls happen in bridge_flush(), run at the end of each event
 * handler, and a bridge is freed only there (b->dead), never inside a
 * callback.  A stream is freed only once both sessions have closed it (or
 * never opened it), so a data provider never sees a freed stream.
 *
 * The same engine serves a Docker-style /session in front of a native gRPC
 * backend ("session mode"): there is no client session then, the client's
 * raw bytes are wrapped in BytesMessage on one Control.Session stream and the
 * backend's messages are unwrapped onto the client socket.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/sock.h"
#include "proto/grpc_frame.h"
#include "proto/pbwire.h"

#define GRPC_DEFAULT_MAX_MSG (16u * 1024 * 1024)

struct hdrs {
  nghttp2_nv *nv;
  size_t n, cap, bytes;
};

struct bridge;

struct bstream {
  struct bstream *prev, *next;
  struct bridge *b;
  int32_t cid; /* client-side stream id; -1 in session mode */
  int32_t bid; /* backend stream id; -1 until opened */
  struct hdrs reqh, resph, trailers;
  struct bg_call *call;
  struct bg_call_decision dec;
  struct evbuffer *req, *resp;
  size_t req_held, resp_held; /* received, not yet acknowledged to the sender */
  struct bg_frame_reader rreq, rresp;
  int grpc_status;            /* final status as the client saw it; -1 unknown */
  char *grpc_message;
  uint64_t bytes_in, bytes_out;
  unsigned req_eof : 1;
  unsigned resp_eof : 1;
  unsigned resp_started : 1;  /* response HEADERS submitted to the client */
  unsigned client_closed : 1;
  unsigned backend_open : 1;
  unsigned backend_closed : 1;
  unsigned abandoned : 1;     /* we reset the backend side; drop what it still sends */
  unsigned replied : 1;       /* the gateway answered the client itself */
  unsigned inspect_req : 1;
  unsigned inspect_resp : 1;
  unsigned ended : 1;         /* bg_call_end done */
  unsigned internal : 1;      /* the gateway's own Control.Info probe: no client side */
  unsigned track : 1;         /* gRPC request not inspected: follow message boundaries */
  /* Message-boundary tracking for streamed (uninspected) requests, so a
   * request that ends mid-message is refused instead of forwarded whole. */
  uint8_t trk_pfx;            /* prefix bytes seen of the current message (0..4) */
  uint32_t trk_len;           /* length being assembled from the prefix */
  uint64_t trk_body;          /* body bytes still to come */
};

struct bridge {
  struct gw_conn link;
  struct gw *gw;
  uint64_t id;
  struct gw_peer *peer;
  struct bg_conn *pc;
  struct gw_sock csock, bsock; /* fd -1 when absent */
  nghttp2_session *cs, *bs;
  struct gw_dial *dial;
  struct bstream *streams;
  int session_mode;
  int backend_ready;
  int backend_failed;
  char backend_err[512];
  int client_gone;
  int goaway_sent;
  int dead;
  int in_handler; /* depth of event handlers on the stack */
  char *refusal;  /* the policy refused this connection: why (pc is NULL) */
  struct evbuffer *cpending; /* client bytes the front door read ahead, until taken */
};

/* ---------- small helpers ---------- */

static int hdrs_add(struct hdrs *h, const uint8_t *name, size_t nl, const uint8_t *value, size_t vl)
{
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 16;
    nghttp2_nv *nv = realloc(h->nv, cap * sizeof *nv);
    if (!nv)
      return -1;
    h->nv = nv;
    h->cap = cap;
  }
  uint8_t *n = malloc(nl + 1), *v = malloc(vl + 1);
  if (!n || !v) {
    free(n);
    free(v);
    return -1;
  }
  memcpy(n, name, nl);
  n[nl] = 0;
  memcpy(v, value, vl);
  v[vl] = 0;
  h->nv[h->n++] = (nghttp2_nv){n, v, nl, vl, NGHTTP2_NV_FLAG_NONE};
  h->bytes += nl + vl + 32;
  return 0;
}

static int hdrs_adds(struct hdrs *h, const char *name, const char *value)
{
  return hdrs_add(h, (const uint8_t *)name, strlen(name), (const uint8_t *)value, strlen(value));
}

static void hdrs_free(struct hdrs *h)
{
  for (size_t i = 0; i < h->n; i++) {
    free(h->nv[i].name);
    free(h->nv[i].value);
  }
  free(h->nv);
  memset(h, 0, sizeof *h);
}

static const char *hdrs_get(const struct hdrs *h, const char *name)
{
  for (size_t i = 0; i < h->n; i++)
    if (strcmp((const char *)h->nv[i].name, name) == 0)
      return (const char *)h->nv[i].value;
  return NULL;
}

/* Connection-specific headers never cross a proxy (RFC 9113 §8.2.2). */
static int hop_by_hop(const uint8_t *name, size_t nl)
{
  static const char *const names[] = {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                                      "upgrade",    "http2-settings", "host"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (nl == strlen(names[i]) && memcmp(name, names[i], nl) == 0)
      return 1;
  return 0;
}

/* Apply the policy's header edits to the request headers in place. */
static int hdrs_apply_edits(struct hdrs *h, const struct bg_header_edit *e, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    size_t w = 0;
    for (size_t r = 0; r < h->n; r++) {
      if (strcmp((const char *)h->nv[r].name, e[i].name) == 0) {
        free(h->nv[r].name);
        free(h->nv[r].value);
      } else {
        h->nv[w++] = h->nv[r];
      }
    }
    h->n = w;
    for (size_t v = 0; v < e[i].n_values; v++)
      if (hdrs_adds(h, e[i].name, e[i].values[v]) != 0)
        return -1;
  }
  return 0;
}

char *gw_grpc_message_encode(const char *msg)
{
  size_t n = strlen(msg);
  char *out = malloc(n * 3 + 1), *w = out;
  if (!out)
    return NULL;
  for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
    if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
      *w++ = (char)*p;
    } else {
      static const char hex[] = "0123456789ABCDEF";
      *w++ = '%';
      *w++ = hex[*p >> 4];
      *w++ = hex[*p & 15];
    }
  }
  *w = 0;
  return out;
}

/* ---------- stream lifetime ---------- */

static void bridge_kill(struct bridge *b, const char *why);
static int field_bytes(const uint8_t *p, size_t len, unsigned field, const uint8_t **out, size_t *outlen);
static int make_backend_session(struct bridge *b);
static void bridge_connect_backend(struct bridge *b, struct bufferevent *backend);

#define HAS_SOCK(sk) ((sk).fd >= 0)

/* One thread: every read lands here and is handed on before the next. */
static uint8_t rbuf[GW_SOCK_READ_CHUNK];

static struct bstream *stream_new(struct bridge *b, int32_t cid)
{
  struct bstream *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->b = b;
  s->cid = cid;
  s->bid = -1;
  s->grpc_status = -1;
  s->req = evbuffer_new();
  s->resp = evbuffer_new();
  if (!s->req || !s->resp) {
    if (s->req)
      evbuffer_free(s->req);
    if (s->resp)
      evbuffer_free(s->resp);
    free(s);
    return NULL;
  }
  s->next = b->streams;
  if (b->streams)
    b->streams->prev = s;
  b->streams = s;
  return s;
}

static void stream_set_status(struct bstream *s, int status, const char *msg)
{
  if (s->grpc_status >= 0)
    return;
  s->grpc_status = status;
  free(s->grpc_message);
  s->grpc_message = msg ? strdup(msg) : NULL;
}

static void stream_end_call(struct bstream *s)
{
  if (s->ended || !s->call)
    return;
  s->ended = 1;
  int st = s->grpc_status >= 0 ? s->grpc_status : BG_GRPC_CANCELLED;
  const char *msg = s->grpc_status >= 0 ? s->grpc_message : "stream ended without a status";
  gw_call_end(s->b->gw, s->call, st, msg, s->bytes_in, s->bytes_out);
  s->call = NULL;
}

static void stream_free(struct bstream *s)
{
  struct bridge *b = s->b;
  stream_end_call(s);
  if (s->prev)
    s->prev->next = s->next;
  else
    b->streams = s->next;
  if (s->next)
    s->next->prev = s->prev;
  hdrs_free(&s->reqh);
  hdrs_free(&s->resph);
  hdrs_free(&s->trailers);
  evbuffer_free(s->req);
  evbuffer_free(s->resp);
  if (s->inspect_req)
    bg_frame_reader_free(&s->rreq);
  if (s->inspect_resp)
    bg_frame_reader_free(&s->rresp);
  free(s->grpc_message);
  free(s);
}

/* A stream is done when neither session can call back about it any more. */
static void stream_maybe_free(struct bstream *s)
{
  int client_done = s->internal || (s->b->session_mode ? s->b->client_gone || s->client_closed : s->client_closed);
  int backend_done = !s->backend_open || s->backend_closed;
  if (client_done && backend_done)
    stream_free(s);
}

/* Acknowledge request bytes to the client once the queue toward the backend is short. */
static void req_release(struct bstream *s)
{
  struct bridge *b = s->b;
  if (!s->req_held || evbuffer_get_length(s->req) >= GW_QUEUE_HIGH)
    return;
  if (b->session_mode) {
    if (HAS_SOCK(b->csock) && !b->client_gone)
      gw_sock_read(&b->csock, 1);
  } else if (!s->client_closed) {
    nghttp2_session_consume(b->cs, s->cid, s->req_held);
  }
  s->req_held = 0;
}

/* Acknowledge response bytes to the backend once they have moved on. */
static void resp_release(struct bstream *s)
{
  struct bridge *b = s->b;
  if (!s->resp_held)
    return;
  if (b->session_mode) {
    /* In session mode the queue is the client socket's output buffer. */
    if (HAS_SOCK(b->csock) && gw_sock_queued(&b->csock) >= GW_QUEUE_HIGH)
      return;
  } else if (evbuffer_get_length(s->resp) >= GW_QUEUE_HIGH) {
    return;
  }
  if (s->backend_open && !s->backend_closed)
    nghttp2_session_consume(b->bs, s->bid, s->resp_held);
  s->resp_held = 0;
}

/* ---------- answering the client ourselves ---------- */

static int submit_local_reply(struct bstream *s, int status, const char *msg)
{
  struct bridge *b = s->b;
  char st[16];
  snprintf(st, sizeof st, "%d", status);
  char *enc = gw_grpc_message_encode(msg ? msg : "");
  nghttp2_nv nv[4] = {
      {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t *)"grpc-status", (uint8_t *)st, 11, strlen(st), NGHTTP2_NV_FLAG_NONE},
      {(uint8_t *)"grpc-message", (uint8_t *)(enc ? enc : ""), 12, enc ? strlen(enc) : 0, NGHTTP2_NV_FLAG_NONE},
  };
  /* A trailers-only response: one HEADERS frame with END_STREAM. */
  int rv = nghttp2_submit_response(b->cs, s->cid, nv, 4, NULL);
  free(enc);
  return rv;
}

/* End a stream with a gRPC status: used for denials, limits, and backend
 * failures.  Whatever the backend side is doing is cancelled. */
static void stream_fail(struct bstream *s, int status, const char *msg)
{
  struct bridge *b = s->b;
  LOG_DBG("conn %llu stream %d: %d %s", (unsigned long long)b->id, s->cid, status, msg ? msg : "");
  stream_set_status(s, status, msg);
  if (s->backend_open && !s->backend_closed && !s->abandoned) {
    s->abandoned = 1;
    nghttp2_submit_rst_stream(b->bs, NGHTTP2_FLAG_NONE, s->bid, NGHTTP2_CANCEL);
  }
  if (s->internal)
    return;
  /* Bytes already acknowledged or still held for the backend are moot now. */
  evbuffer_drain(s->req, evbuffer_get_length(s->req));
  if (s->req_held && !b->session_mode && !s->client_closed)
    nghttp2_session_consume(b->cs, s->cid, s->req_held);
  s->req_held = 0;
  if (b->session_mode) {
    /* No gRPC status can reach a raw session client: close it. */
    b->client_gone = 1;
    return;
  }
  if (s->client_closed || s->replied)
    return;
  s->replied = 1;
  if (!s->resp_started) {
    if (submit_local_reply(s, status, msg) != 0)
      nghttp2_submit_rst_stream(b->cs, NGHTTP2_FLAG_NONE, s->cid, NGHTTP2_INTERNAL_ERROR);
    return;
  }
  /* Response already under way: finish it with our status as trailers. */
  hdrs_free(&s->trailers);
  char st[16];
  snprintf(st, sizeof st, "%d", status);
  char *enc = gw_grpc_message_encode(msg ? msg : "");
  hdrs_adds(&s->trailers, "grpc-status", st);
  hdrs_adds(&s->trailers, "grpc-message", enc ? enc : "");
  free(enc);
  s->resp_eof = 1;
  nghttp2_session_resume_data(b->cs, s->cid);
}

/* ---------- data providers ---------- */

/* Backend pulls request bytes. */
static ssize_t req_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                           uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
  struct bstream *s = source->ptr;
  if (s->abandoned)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  int n = evbuffer_remove(s->req, buf, length);
  if (n < 0)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  if (n == 0 && !s->req_eof)
    return NGHTTP2_ERR_DEFERRED;
  if (s->req_eof && evbuffer_get_length(s->req) == 0)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  req_release(s);
  return n;
}

/* Client pulls response bytes. */
static ssize_t resp_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
  struct bstream *s = source->ptr;
  int n = evbuffer_remove(s->resp, buf, length);
  if (n < 0)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  s->bytes_out += (uint64_t)n;
  if (n == 0 && !s->resp_eof)
    return NGHTTP2_ERR_DEFERRED;
  if (s->resp_eof && evbuffer_get_length(s->resp) == 0) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (s->trailers.n) {
      /* gRPC's status lives in trailers: send them instead of END_STREAM on DATA. */
      if (nghttp2_submit_trailer(session, stream_id, s->trailers.nv, s->trailers.n) == 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
  }
  resp_release(s);
  return n;
}

/* ---------- request path (client -> backend) ---------- */

static void open_backend_stream(struct bstream *s)
{
  struct bridge *b = s->b;
  if (s->backend_open || s->replied || s->abandoned)
    return;
  if (b->backend_failed) {
    stream_fail(s, BG_GRPC_UNAVAILABLE, b->backend_err);
    return;
  }
  if (!b->bs) {
    /* First stream on a native connection: only now does it cost a backend
     * connection, so idle clients hold no backend resources. */
    if (make_backend_session(b) != 0) {
      stream_fail(s, BG_GRPC_RESOURCE_EXHAUSTED, "cannot create the backend HTTP/2 session");
      return;
    }
    bridge_connect_backend(b, NULL);
    if (b->backend_failed) {
      stream_fail(s, BG_GRPC_UNAVAILABLE, b->backend_err);
      return;
    }
  }
  nghttp2_data_provider dp = {.source.ptr = s, .read_callback = req_read_cb};
  int32_t id = nghttp2_submit_request(b->bs, NULL, s->reqh.nv, s->reqh.n, &dp, s);
  if (id < 0) {
    char msg[256];
    snprintf(msg, sizeof msg, "backend %s: cannot open stream: %s", b->gw->backend.text, nghttp2_strerror(id));
    stream_fail(s, BG_GRPC_UNAVAILABLE, msg);
    return;
  }
  s->bid = id;
  s->backend_open = 1;
}

static int on_req_msg(void *arg, const uint8_t *msg, size_t len, int compressed)
{
  struct bstream *s = arg;
  struct bg_msg_result r = {0};
  bg_call_request(s->call, msg, len, compressed, &r);
  uint8_t prefix[BG_GRPC_PREFIX_LEN];
  switch (r.verdict) {
  case BG_MSG_PASS:
    bg_frame_prefix(prefix, compressed, (uint32_t)len);
    evbuffer_add(s->req, prefix, sizeof prefix);
    evbuffer_add(s->req, msg, len);
    break;
  case BG_MSG_REPLACE:
    bg_frame_prefix(prefix, 0, (uint32_t)r.len);
    evbuffer_add(s->req, prefix, sizeof prefix);
    evbuffer_add(s->req, r.data, r.len);
    free(r.data);
    break;
  default:
    free(r.data);
    stream_fail(s, r.grpc_status ? r.grpc_status : BG_GRPC_PERMISSION_DENIED, r.message);
    return 1;
  }
  open_backend_stream(s);
  return 0;
}

static void frame_error(struct bstream *s, int rv, const char *dir)
{
  char msg[256];
  if (rv == BG_FRAME_TOO_LARGE)
    snprintf(msg, sizeof msg, "%s message larger than %zu bytes", dir,
             s->dec.max_message_bytes ? s->dec.max_message_bytes : (size_t)GRPC_DEFAULT_MAX_MSG);
  else if (rv == BG_FRAME_BAD_FLAG)
    snprintf(msg, sizeof msg, "%s message has an invalid compressed flag", dir);
  else
    snprintf(msg, sizeof msg, "%s message could not be buffered", dir);
  stream_fail(s, rv == BG_FRAME_TOO_LARGE ? BG_GRPC_RESOURCE_EXHAUSTED : BG_GRPC_INVALID_ARGUMENT, msg);
}

static void track_bytes(struct bstream *s, const uint8_t *p, size_t len)
{
  while (len) {
    if (s->trk_body) {
      size_t k = len < s->trk_body ? len : (size_t)s->trk_body;
      s->trk_body -= k;
      p += k;
      len -= k;
      continue;
    }
    if (s->trk_pfx > 0) /* bytes 1..4 of the prefix are the big-endian length */
      s->trk_len = (s->trk_len << 8) | *p;
    p++;
    len--;
    if (++s->trk_pfx == BG_GRPC_PREFIX_LEN) {
      s->trk_body = s->trk_len;
      s->trk_pfx = 0;
      s->trk_len = 0;
    }
  }
}

/* Bytes from the client for stream |s|. */
static void req_data(struct bstream *s, const uint8_t *data, size_t len)
{
  s->bytes_in += len;
  s->req_held += len;
  if (s->replied || s->abandoned) {
    req_release(s);
    return;
  }
  if (s->inspect_req) {
    size_t used = 0;
    int rv = bg_frame_reader_feed(&s->rreq, data, len, &used, on_req_msg, s);
    if (rv < 0)
      frame_error(s, rv, "request");
  } else {
    if (s->track)
      track_bytes(s, data, len);
    evbuffer_add(s->req, data, len);
  }
  if (s->backend_open && !s->backend_closed)
    nghttp2_session_resume_data(s->b->bs, s->bid);
  req_release(s);
}

static void req_end(struct bstream *s)
{
  s->req_eof = 1;
  if (s->replied || s->abandoned)
    return;
  if ((s->inspect_req && !bg_frame_reader_idle(&s->rreq)) || (s->track && (s->trk_pfx || s->trk_body))) {
    stream_fail(s, BG_GRPC_INVALID_ARGUMENT, "request ended inside a truncated gRPC message");
    return;
  }
  if (!s->backend_open)
    open_backend_stream(s);
  else if (!s->backend_closed)
    nghttp2_session_resume_data(s->b->bs, s->bid);
}

/* The request headers are complete: ask the policy, then forward. */
static void req_headers_done(struct bstream *s)
{
  struct bridge *b = s->b;
  if (!b->pc) { /* refused connection: audited once when it was refused */
    stream_fail(s, BG_GRPC_UNAUTHENTICATED, b->refusal);
    return;
  }
  const char *path = hdrs_get(&s->reqh, ":path");
  struct bg_header *hv = calloc(s->reqh.n ? s->reqh.n : 1, sizeof *hv);
  if (!hv) {
    stream_fail(s, BG_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  for (size_t i = 0; i < s->reqh.n; i++)
    hv[i] = (struct bg_header){(const char *)s->reqh.nv[i].name, s->reqh.nv[i].namelen,
                               (const char *)s->reqh.nv[i].value, s->reqh.nv[i].valuelen};
  s->call = bg_call_begin(b->pc, path ? path : "", path ? strlen(path) : 0, hv, s->reqh.n, &s->dec);
  free(hv);
  if (!s->call) {
    stream_fail(s, BG_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  if (s->dec.grpc_status) {
    stream_fail(s, s->dec.grpc_status, s->dec.message);
    return;
  }
  if (hdrs_apply_edits(&s->reqh, s->dec.edits, s->dec.n_edits) != 0) {
    stream_fail(s, BG_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  size_t maxmsg = s->dec.max_message_bytes ? s->dec.max_message_bytes : GRPC_DEFAULT_MAX_MSG;
  if (s->dec.inspect_requests) {
    s->inspect_req = 1;
    bg_frame_reader_init(&s->rreq, maxmsg);
  }
  if (s->dec.inspect_responses) {
    s->inspect_resp = 1;
    bg_frame_reader_init(&s->rresp, maxmsg);
  }
  const char *ct = hdrs_get(&s->reqh, "content-type");
  s->track = !s->inspect_req && ct && strncmp(ct, "application/grpc", 16) == 0;
  /* An inspected request opens the backend stream only once its first
   * message is approved: nothing denied ever reaches the backend. */
  if (!s->inspect_req)
    open_backend_stream(s);
}

/* ---------- response path (backend -> client) ---------- */

static int on_resp_msg(void *arg, const uint8_t *msg, size_t len, int compressed);

static void resp_deliver(struct bstream *s, const uint8_t *data, size_t len)
{
  struct bridge *b = s->b;
  if (s->internal) {
    if (evbuffer_get_length(s->resp) + len <= 65536)
      evbuffer_add(s->resp, data, len);
    return;
  }
  if (b->session_mode) {
    /* Control.Session answers are BytesMessage{bytes data = 1}: unwrap. */
    size_t used = 0;
    int rv = bg_frame_reader_feed(&s->rresp, data, len, &used, on_resp_msg, s);
    if (rv < 0)
      frame_error(s, rv, "session");
    return;
  }
  if (s->inspect_resp) {
    size_t used = 0;
    int rv = bg_frame_reader_feed(&s->rresp, data, len, &used, on_resp_msg, s);
    if (rv < 0)
      frame_error(s, rv, "response");
  } else {
    evbuffer_add(s->resp, data, len);
  }
  if (!s->client_closed)
    nghttp2_session_resume_data(b->cs, s->cid);
}

/* Find length-delimited field |field| (last occurrence wins, as in protobuf)
 * in a serialized message.  Returns 0 with out/outlen set (NULL/0 when absent),
 * or -1 when the bytes are not a valid message. */
static int field_bytes(const uint8_t *p, size_t len, unsigned field, const uint8_t **out, size_t *outlen)
{
  *out = NULL;
  *outlen = 0;
  size_t i = 0;
  while (i < len) {
    uint64_t key = 0;
    int shift = 0;
    do {
      if (i >= len || shift > 63)
        return -1;
      key |= (uint64_t)(p[i] & 0x7f) << shift;
      shift += 7;
    } while (p[i++] & 0x80);
    unsigned wt = key & 7;
    uint64_t v = 0;
    shift = 0;
    if (wt == 0 || wt == 2) {
      do {
        if (i >= len || shift > 63)
          return -1;
        v |= (uint64_t)(p[i] & 0x7f) << shift;
        shift += 7;
      } while (p[i++] & 0x80);
    }
    if (wt == 2) {
      if (v > len - i)
        return -1;
      if ((key >> 3) == field) {
        *out = p + i;
        *outlen = (size_t)v;
      }
      i += (size_t)v;
    } else if (wt == 1) {
      if (len - i < 8)
        return -1;
      i += 8;
    } else if (wt == 5) {
      if (len - i < 4)
        return -1;
      i += 4;
    } else if (wt != 0) {
      return -1;
    }
  }
  return 0;
}

static int on_resp_msg(void *arg, const uint8_t *msg, size_t len, int compressed)
{
  struct bstream *s = arg;
  struct bridge *b = s->b;
  if (b->session_mode) {
    const uint8_t *d;
    size_t dl;
    if (compressed || field_bytes(msg, len, 1, &d, &dl) != 0) {
      stream_fail(s, BG_GRPC_INTERNAL, "backend sent an undecodable Control.Session message");
      return 1;
    }
    s->bytes_out += dl;
    if (d && HAS_SOCK(b->csock) && !b->client_gone)
      gw_sock_write(&b->csock, d, dl); /* a failure is noticed by bridge_flush */
    return 0;
  }
  struct bg_msg_result r = {0};
  bg_call_response(s->call, msg, len, compressed, &r);
  uint8_t prefix[BG_GRPC_PREFIX_LEN];
  switch (r.verdict) {
  case BG_MSG_PASS:
    bg_frame_prefix(prefix, compressed, (uint32_t)len);
    evbuffer_add(s->resp, prefix, sizeof prefix);
    evbuffer_add(s->resp, msg, len);
    return 0;
  case BG_MSG_REPLACE:
    bg_frame_prefix(prefix, 0, (uint32_t)r.len);
    evbuffer_add(s->resp, prefix, sizeof prefix);
    evbuffer_add(s->resp, r.data, r.len);
    free(r.data);
    return 0;
  case BG_MSG_DROP: /* withheld from this client (another tenant's event) */
    free(r.data);
    return 0;
  default:
    free(r.data);
    stream_fail(s, r.grpc_status ? r.grpc_status : BG_GRPC_PERMISSION_DENIED, r.message);
    return 1;
  }
}

static void record_status(struct bstream *s, const struct hdrs *h)
{
  const char *st = hdrs_get(h, "grpc-status");
  if (st)
    stream_set_status(s, atoi(st), hdrs_get(h, "grpc-message"));
}

/* The backend's response HEADERS (not trailers) are complete. */
static void resp_headers_done(struct bstream *s, int end_stream)
{
  struct bridge *b = s->b;
  if (s->abandoned || s->replied || b->session_mode || s->internal)
    return;
  if (s->client_closed)
    return;
  s->resp_started = 1;
  if (end_stream) {
    /* Trailers-only response (typical for errors): forward as is. */
    record_status(s, &s->resph);
    nghttp2_submit_response(b->cs, s->cid, s->resph.nv, s->resph.n, NULL);
    return;
  }
  nghttp2_data_provider dp = {.source.ptr = s, .read_callback = resp_read_cb};
  nghttp2_submit_response(b->cs, s->cid, s->resph.nv, s->resph.n, &dp);
}

/* Control.Info answered: remember what BuildKit the backend runs, so the
 * policy can refuse what an old daemon would silently ignore. */
static void probe_done(struct bstream *s)
{
  struct bg_backend_facts *f = &s->b->gw->facts;
  if (s->grpc_status == BG_GRPC_UNIMPLEMENTED) {
    f->known = 1;
    f->info_unimplemented = 1;
    snprintf(f->buildkit_version, sizeof f->buildkit_version, "%s", "< v0.11 (no Control.Info)");
  } else if (s->grpc_status == BG_GRPC_OK) {
    /* InfoResponse{buildkitVersion(1): BuildkitVersion{package 1, version 2, revision 3}} */
    size_t n = evbuffer_get_length(s->resp);
    const uint8_t *p = evbuffer_pullup(s->resp, -1);
    const uint8_t *bv = NULL, *ver = NULL;
    size_t bvl = 0, verl = 0;
    if (n > BG_GRPC_PREFIX_LEN && field_bytes(p + BG_GRPC_PREFIX_LEN, n - BG_GRPC_PREFIX_LEN, 1, &bv, &bvl) == 0 &&
        bv && field_bytes(bv, bvl, 2, &ver, &verl) == 0 && ver) {
      f->known = 1;
      f->info_unimplemented = 0;
      snprintf(f->buildkit_version, sizeof f->buildkit_version, "%.*s", (int)verl, (const char *)ver);
    }
  }
  if (f->known)
    LOG_INFO("backend %s runs BuildKit %s", s->b->gw->backend.text, f->buildkit_version);
}

static void resp_end(struct bstream *s)
{
  struct bridge *b = s->b;
  if (s->inspect_resp && !bg_frame_reader_idle(&s->rresp) && !s->abandoned && !s->replied) {
    stream_fail(s, BG_GRPC_INTERNAL, "backend response ended inside a truncated gRPC message");
    return;
  }
  s->resp_eof = 1;
  record_status(s, &s->trailers);
  if (s->internal) {
    probe_done(s);
    return;
  }
  if (!b->session_mode && !s->client_closed && s->resp_started)
    nghttp2_session_resume_data(b->cs, s->cid);
}

/* ---------- client session callbacks ---------- */

static int c_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
  struct bridge *b = user_data;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  struct bstream *s = stream_new(b, frame->hd.stream_id);
  if (!s)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s);
  return 0;
}

static int c_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t nl,
                       const uint8_t *value, size_t vl, uint8_t flags, void *user_data)
{
  struct bstream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (!s || frame->hd.type != NGHTTP2_HEADERS)
    return 0;
  if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0; /* request trailers: gRPC has none worth forwarding */
  if (s->reqh.bytes + nl + vl > GW_MAX_HEADER_LIST) {
    LOG_WARN("conn %llu: request header list too large, resetting stream %d", (unsigned long long)s->b->id,
             s->cid);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  if (hop_by_hop(name, nl))
    return 0;
  if (nl == 2 && memcmp(name, "te", 2) == 0 && !(vl == 8 && memcmp(value, "trailers", 8) == 0))
    return 0;
  if (hdrs_add(&s->reqh, name, nl, value, vl) != 0)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  return 0;
}

static int c_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
  struct bstream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (!s)
    return 0;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
    req_headers_done(s);
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    req_end(s);
  return 0;
}

static int c_on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                           size_t len, void *user_data)
{
  struct bstream *s = nghttp2_session_get_stream_user_data(session, stream_id);
  if (!s) {
    /* Never leave the connection window short for data nobody will take. */
    nghttp2_session_consume(session, stream_id, len);
    return 0;
  }
  req_data(s, data, len);
  return 0;
}

static int c_on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
  struct bstream *s = nghttp2_session_get_stream_user_data(session, stream_id);
  if (!s)
    return 0;
  s->client_closed = 1;
  if (error_code != NGHTTP2_NO_ERROR || !s->resp_eof) {
    /* The client gave up (RST_STREAM) before the answer was complete. */
    if (!s->replied)
      stream_set_status(s, BG_GRPC_CANCELLED, "client cancelled the stream");
    if (s->backend_open && !s->backend_closed && !s->abandoned) {
      s->abandoned = 1;
      nghttp2_submit_rst_stream(s->b->bs, NGHTTP2_FLAG_NONE, s->bid, NGHTTP2_CANCEL);
    }
  }
  if (s->resp_held && s->backend_open && !s->backend_closed)
    nghttp2_session_consume(s->b->bs, s->bid, s->resp_held);
  s->resp_held = 0;
  stream_maybe_free(s);
  return 0;
}

/* ---------- backend session callbacks ---------- */

static int b_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t nl,
                       const uint8_t *value, size_t vl, uint8_t flags, void *user_data)
{
  struct bstream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (!s || frame->hd.type != NGHTTP2_HEADERS || s->abandoned)
    return 0;
  struct hdrs *h = frame->headers.cat == NGHTTP2_HCAT_RESPONSE ? &s->resph : &s->trailers;
  if (h->bytes + nl + vl > GW_MAX_HEADER_LIST)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  if (hop_by_hop(name, nl))
    return 0;
  if (hdrs_add(h, name, nl, value, vl) != 0)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  return 0;
}

static int b_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
  struct bstream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (!s || s->abandoned)
    return 0;
  int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame->hd.type == NGHTTP2_HEADERS) {
    if (frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
      const char *st = hdrs_get(&s->resph, ":status");
      if (st && st[0] == '1') { /* interim 1xx: wait for the real one */
        hdrs_free(&s->resph);
        return 0;
      }
      resp_headers_done(s, end);
      if (end) {
        s->resp_eof = 1;
        if (s->b->session_mode) {
          record_status(s, &s->resph);
          s->b->client_gone = 1; /* session refused: nothing more to say to the raw client */
        }
      }
    } else if (end) {
      resp_end(s);
    }
  } else if (frame->hd.type == NGHTTP2_DATA && end) {
    resp_end(s);
  }
  return 0;
}

static int b_on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                           size_t len, void *user_data)
{
  struct bstream *s = nghttp2_session_get_stream_user_data(session, stream_id);
  if (!s || s->abandoned || s->client_closed || s->replied) {
    nghttp2_session_consume(session, stream_id, len);
    return 0;
  }
  s->resp_held += len;
  resp_deliver(s, data, len);
  resp_release(s);
  return 0;
}

static int b_on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
  struct bridge *b = user_data;
  struct bstream *s = nghttp2_session_get_stream_user_data(session, stream_id);
  if (!s)
    return 0;
  s->backend_closed = 1;
  s->resp_held = 0;
  if (!s->abandoned && !s->resp_eof) {
    /* The backend reset the stream, or its connection went away, before a
     * complete answer: the client still gets a status or the same reset. */
    if (b->session_mode) {
      b->client_gone = 1;
    } else if (!s->client_closed && (error_code == NGHTTP2_REFUSED_STREAM || error_code == NGHTTP2_CANCEL)) {
      stream_set_status(s, error_code == NGHTTP2_CANCEL ? BG_GRPC_CANCELLED : BG_GRPC_UNAVAILABLE,
                        "backend reset the stream");
      s->replied = 1;
      nghttp2_submit_rst_stream(b->cs, NGHTTP2_FLAG_NONE, s->cid, error_code);
    } else {
      char msg[600];
      if (b->backend_failed)
        snprintf(msg, sizeof msg, "%s", b->backend_err);
      else
        snprintf(msg, sizeof msg, "backend %s reset the stream (HTTP/2 error %s)", b->gw->backend.text,
                 nghttp2_http2_strerror(error_code));
      stream_fail(s, BG_GRPC_UNAVAILABLE, msg);
    }
  } else if (b->session_mode) {
    b->client_gone = 1; /* Control.Session over: close the raw client once flushed */
  }
  stream_maybe_free(s);
  return 0;
}

/* ---------- I/O plumbing ---------- */

static void bridge_free(struct bridge *b)
{
  if (b->dial)
    gw_dial_cancel(b->dial);
  /* Deleting the sessions first means no callback can run on a stream below. */
  if (b->cs)
    nghttp2_session_del(b->cs);
  if (b->bs)
    nghttp2_session_del(b->bs);
  while (b->streams) {
    struct bstream *s = b->streams;
    if (s->grpc_status < 0)
      stream_set_status(s, BG_GRPC_CANCELLED, b->client_gone ? "client connection closed" : "connection closed");
    stream_free(s);
  }
  gw_sock_close(&b->csock);
  gw_sock_close(&b->bsock);
  if (b->cpending)
    evbuffer_free(b->cpending);
  if (b->pc)
    bg_conn_close(b->pc);
  free(b->refusal);
  gw_peer_free(b->peer);
  gw_conn_unlink(b->gw, &b->link);
  LOG_DBG("conn %llu closed", (unsigned long long)b->id);
  free(b);
}

static void bridge_kill(struct bridge *b, const char *why)
{
  if (!b->dead && why)
    LOG_INFO("conn %llu: %s", (unsigned long long)b->id, why);
  b->dead = 1;
}

/* Frames are gathered here and written with one call: a unary gRPC answer
 * is HEADERS, DATA and trailers, three frames and one write(2). */
static uint8_t wbuf[GW_OUT_HIGH];

/* Pull frames out of a session into its socket, up to the output bound.
 * The socket keeps (and waits for EV_WRITE with) only what the kernel did
 * not take, so production stops while the peer is not reading. */
static int session_send(struct bridge *b, nghttp2_session *sess, struct gw_sock *sk)
{
  size_t used = 0;
  int wrote = 0;
  while (!sk->failed && gw_sock_queued(sk) < GW_OUT_HIGH) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(sess, &data);
    if (n < 0) {
      bridge_kill(b, nghttp2_strerror((int)n));
      return 0;
    }
    if (n == 0)
      break;
    wrote = 1;
    if (used + (size_t)n > sizeof wbuf) {
      gw_sock_write(sk, wbuf, used);
      used = 0;
    }
    if ((size_t)n > sizeof wbuf) {
      gw_sock_write(sk, data, (size_t)n); /* a large header block */
    } else {
      memcpy(wbuf + used, data, (size_t)n);
      used += (size_t)n;
    }
  }
  if (used)
    gw_sock_write(sk, wbuf, used);
  return wrote;
}

static void backend_lost(struct bridge *b, const char *why);
static void client_lost(struct bridge *b);

/* A write that failed means the peer is gone, as if it had closed. */
static void check_sockets(struct bridge *b)
{
  if (HAS_SOCK(b->bsock) && b->bsock.failed) {
    char why[300];
    snprintf(why, sizeof why, "backend %s connection failed: %s", b->gw->backend.text, strerror(b->bsock.err));
    backend_lost(b, why);
  }
  if (HAS_SOCK(b->csock) && b->csock.failed && !b->client_gone) {
    LOG_DBG("conn %llu: write to client failed: %s", (unsigned long long)b->id, strerror(b->csock.err));
    client_lost(b);
  }
}

/* Run both sessions until neither has anything more to write (or the
 * sockets are full), then decide whether the connection is finished. */
static void bridge_flush(struct bridge *b)
{
  for (int round = 0; round < 8 && !b->dead; round++) {
    int wrote = 0;
    if (b->cs && HAS_SOCK(b->csock) && !b->client_gone)
      wrote |= session_send(b, b->cs, &b->csock);
    if (b->bs && HAS_SOCK(b->bsock) && b->backend_ready)
      wrote |= session_send(b, b->bs, &b->bsock);
    if (b->session_mode) {
      for (struct bstream *s = b->streams; s; s = s->next)
        resp_release(s);
    }
    check_sockets(b);
    if (!wrote)
      break;
  }
  if (b->dead)
    return;
  if (b->session_mode) {
    /* Done once the backend stream is over and the client has its bytes. */
    if (b->client_gone && (!HAS_SOCK(b->csock) || b->csock.failed || gw_sock_queued(&b->csock) == 0)) {
      for (struct bstream *s = b->streams; s; s = s->next)
        if (s->backend_open && !s->backend_closed && !s->abandoned) {
          s->abandoned = 1;
          nghttp2_submit_rst_stream(b->bs, NGHTTP2_FLAG_NONE, s->bid, NGHTTP2_CANCEL);
        }
      bridge_kill(b, NULL);
    }
    return;
  }
  if (b->client_gone) {
    bridge_kill(b, NULL);
    return;
  }
  if (!nghttp2_session_want_read(b->cs) && !nghttp2_session_want_write(b->cs) && gw_sock_queued(&b->csock) == 0)
    bridge_kill(b, NULL);
}

/* Every event handler ends here: flush, and free the bridge if it is over. */
static void bridge_after(struct bridge *b)
{
  if (--b->in_handler > 0)
    return;
  if (!b->dead)
    bridge_flush(b);
  if (b->dead)
    bridge_free(b);
}

/* Session mode: raw client bytes become BytesMessage on the one stream. */
static void session_client_bytes(struct bridge *b, const uint8_t *p, size_t len)
{
  struct bstream *s = b->streams;
  if (!s || s->replied || s->abandoned)
    return;
  while (len > 0) {
    size_t n = len > 32768 ? 32768 : len;
    /* message = tag(field 1, bytes) + varint(len) + bytes */
    uint8_t hdr[BG_GRPC_PREFIX_LEN + 1 + 10];
    size_t hl = BG_GRPC_PREFIX_LEN;
    hdr[hl++] = 0x0a;
    size_t vl = bg_pb_varint_encode(hdr + hl, n);
    hl += vl;
    bg_frame_prefix(hdr, 0, (uint32_t)(1 + vl + n));
    evbuffer_add(s->req, hdr, hl);
    evbuffer_add(s->req, p, n);
    p += n;
    len -= n;
    s->bytes_in += n;
    s->req_held += n;
  }
  /* Backpressure: stop reading the client while the backend lags. */
  if (evbuffer_get_length(s->req) >= GW_QUEUE_HIGH)
    gw_sock_read(&b->csock, 0);
  else
    s->req_held = 0;
  if (s->backend_open && !s->backend_closed)
    nghttp2_session_resume_data(b->bs, s->bid);
}

static void client_bytes(struct bridge *b, const uint8_t *p, size_t n)
{
  if (b->session_mode) {
    session_client_bytes(b, p, n);
    return;
  }
  /* nghttp2 takes all of it or fails; it copies what it keeps. */
  ssize_t rv = nghttp2_session_mem_recv(b->cs, p, n);
  if (rv < 0) {
    LOG_INFO("conn %llu: client HTTP/2 error: %s", (unsigned long long)b->id, nghttp2_strerror((int)rv));
    /* Let nghttp2's GOAWAY out before closing, if it queued one. */
    session_send(b, b->cs, &b->csock);
    b->client_gone = 1;
    gw_sock_read(&b->csock, 0);
  }
}

/* The client closed its connection, or it broke. */
static void client_lost(struct bridge *b)
{
  b->client_gone = 1;
  gw_sock_read(&b->csock, 0);
  if (!b->session_mode)
    return;
  /* The session client hung up: end our side of Control.Session. */
  struct bstream *s = b->streams;
  if (s && !s->req_eof) {
    s->req_eof = 1;
    s->client_closed = 1;
    if (s->backend_open && !s->backend_closed)
      nghttp2_session_resume_data(b->bs, s->bid);
  }
  /* Give the backend a moment to see END_STREAM, then close. */
  if (HAS_SOCK(b->bsock) && b->backend_ready)
    session_send(b, b->bs, &b->bsock);
  if (b->csock.out)
    evbuffer_drain(b->csock.out, evbuffer_get_length(b->csock.out));
}

/* Readable: take what the kernel holds, up to GW_SOCK_READ_MAX per event so
 * that one busy connection does not starve the others.  In session mode
 * reading may be switched off midway for backpressure. */
static void client_cb(void *arg, short what)
{
  struct bridge *b = arg;
  b->in_handler++;
  size_t total = 0;
  while ((what & EV_READ) && total < GW_SOCK_READ_MAX && !b->dead && !b->client_gone && b->csock.reading) {
    ssize_t n = gw_sock_recv(&b->csock, rbuf, sizeof rbuf);
    if (n == -2)
      break;
    if (n <= 0) {
      if (n < 0)
        LOG_DBG("conn %llu: client read failed: %s", (unsigned long long)b->id, strerror(errno));
      client_lost(b);
      break;
    }
    total += (size_t)n;
    client_bytes(b, rbuf, (size_t)n);
    if ((size_t)n < sizeof rbuf)
      break;
  }
  bridge_after(b);
}

static void backend_lost(struct bridge *b, const char *why)
{
  if (!b->backend_failed) {
    b->backend_failed = 1;
    snprintf(b->backend_err, sizeof b->backend_err, "%s", why);
    LOG_WARN("conn %llu: %s", (unsigned long long)b->id, why);
  }
  /* Every open stream ends with UNAVAILABLE naming the backend. */
  for (struct bstream *s = b->streams, *n; s; s = n) {
    n = s->next;
    if (!s->replied && !s->abandoned && !(s->resp_eof && s->backend_closed))
      stream_fail(s, BG_GRPC_UNAVAILABLE, why);
    s->backend_closed = 1;
  }
  if (b->bs) {
    nghttp2_session_del(b->bs);
    b->bs = NULL;
  }
  gw_sock_close(&b->bsock);
  int never_connected = !b->backend_ready;
  b->backend_ready = 0;
  if (b->session_mode) {
    /* Before the 101 the client can still get a proper HTTP error. */
    if (never_connected && HAS_SOCK(b->csock) && !b->client_gone) {
      struct evbuffer *e = evbuffer_new();
      if (e) {
        gw_http_error(e, 502, why);
        gw_sock_write(&b->csock, evbuffer_pullup(e, -1), evbuffer_get_length(e));
        evbuffer_free(e);
      }
    }
    b->client_gone = 1;
    gw_sock_read(&b->csock, 0);
    return;
  }
  /* Tell the client to go elsewhere once the answers above are out. */
  if (!b->goaway_sent && !b->client_gone) {
    b->goaway_sent = 1;
    nghttp2_submit_goaway(b->cs, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(b->cs),
                          NGHTTP2_NO_ERROR, NULL, 0);
  }
  for (struct bstream *s = b->streams, *n; s; s = n) {
    n = s->next;
    stream_maybe_free(s);
  }
}

static void backend_bytes(struct bridge *b, const uint8_t *p, size_t n)
{
  ssize_t rv = nghttp2_session_mem_recv(b->bs, p, n);
  if (rv < 0) {
    char why[300];
    snprintf(why, sizeof why, "backend %s HTTP/2 error: %s", b->gw->backend.text, nghttp2_strerror((int)rv));
    backend_lost(b, why);
  }
}

static void backend_cb(void *arg, short what)
{
  struct bridge *b = arg;
  b->in_handler++;
  size_t total = 0;
  while ((what & EV_READ) && total < GW_SOCK_READ_MAX && !b->dead && b->bs && HAS_SOCK(b->bsock)) {
    ssize_t n = gw_sock_recv(&b->bsock, rbuf, sizeof rbuf);
    if (n == -2)
      break;
    if (n <= 0) {
      char why[300];
      snprintf(why, sizeof why, "backend %s closed the connection%s%s", b->gw->backend.text, n < 0 ? ": " : "",
               n < 0 ? strerror(errno) : "");
      backend_lost(b, why);
      break;
    }
    total += (size_t)n;
    backend_bytes(b, rbuf, (size_t)n);
    if ((size_t)n < sizeof rbuf)
      break;
  }
  bridge_after(b);
}

static void start_probe(struct bridge *b)
{
  struct gw *gw = b->gw;
  if (gw->facts.known || b->session_mode)
    return;
  struct bstream *s = stream_new(b, -1);
  if (!s)
    return;
  s->internal = 1;
  static const uint8_t empty[BG_GRPC_PREFIX_LEN] = {0};
  evbuffer_add(s->req, empty, sizeof empty);
  s->req_eof = 1;
  hdrs_adds(&s->reqh, ":method", "POST");
  hdrs_adds(&s->reqh, ":scheme", "http");
  hdrs_adds(&s->reqh, ":path", "/moby.buildkit.v1.Control/Info");
  hdrs_adds(&s->reqh, ":authority", "buildgate");
  hdrs_adds(&s->reqh, "content-type", "application/grpc");
  hdrs_adds(&s->reqh, "te", "trailers");
  open_backend_stream(s);
  stream_maybe_free(s);
}

static void backend_attach(struct bridge *b, struct bufferevent *bev)
{
  struct evbuffer *pending;
  if (gw_sock_from_bev(&b->bsock, b->gw->base, bev, backend_cb, b, &pending) != 0) {
    backend_lost(b, "cannot take over the backend connection: out of memory");
    return;
  }
  b->backend_ready = 1;
  gw_sock_read(&b->bsock, 1);
  if (b->session_mode && HAS_SOCK(b->csock) && !b->client_gone) {
    /* Only now that the backend answered does the client get its 101. */
    gw_sock_write(&b->csock, GW_UPGRADE_101, strlen(GW_UPGRADE_101));
  }
  start_probe(b);
  /* Bytes the engine sent right behind its 101. */
  if (evbuffer_get_length(pending) > 0)
    backend_bytes(b, evbuffer_pullup(pending, -1), evbuffer_get_length(pending));
  evbuffer_free(pending);
}

static void dial_done(void *arg, struct bufferevent *bev, const char *err)
{
  struct bridge *b = arg;
  b->in_handler++;
  b->dial = NULL;
  if (!bev)
    backend_lost(b, err);
  else
    backend_attach(b, bev);
  bridge_after(b);
}

/* ---------- session setup ---------- */

static int send_settings(nghttp2_session *sess, unsigned max_streams)
{
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, GW_STREAM_WINDOW},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, GW_MAX_HEADER_LIST},
  };
  int rv = nghttp2_submit_settings(sess, NGHTTP2_FLAG_NONE, iv, 3);
  if (rv == 0)
    rv = nghttp2_session_set_local_window_size(sess, NGHTTP2_FLAG_NONE, 0, GW_CONN_WINDOW);
  return rv;
}

static nghttp2_option *make_options(void)
{
  nghttp2_option *opt;
  if (nghttp2_option_new(&opt) != 0)
    return NULL;
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_send_header_block_length(opt, GW_MAX_HEADER_LIST + 4096);
  return opt;
}

static int make_backend_session(struct bridge *b)
{
  nghttp2_session_callbacks *cb;
  if (nghttp2_session_callbacks_new(&cb) != 0)
    return -1;
  nghttp2_session_callbacks_set_on_header_callback(cb, b_on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, b_on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, b_on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, b_on_stream_close);
  nghttp2_option *opt = make_options();
  int rv = opt ? nghttp2_session_client_new2(&b->bs, cb, b, opt) : -1;
  nghttp2_session_callbacks_del(cb);
  nghttp2_option_del(opt);
  if (rv != 0)
    return -1;
  /* Many client connections share nothing on the backend side, but a
   * backend connection carries up to GW_MAX_STREAMS of this client's streams. */
  return send_settings(b->bs, GW_MAX_STREAMS);
}

static void bridge_destroy(struct gw_conn *c)
{
  bridge_free((struct bridge *)c);
}

static void bridge_shutdown(struct gw_conn *c)
{
  struct bridge *b = (struct bridge *)c;
  if (b->session_mode || b->goaway_sent || !b->cs)
    return;
  b->in_handler++;
  b->goaway_sent = 1;
  /* Graceful: streams in flight finish, new ones are refused. */
  nghttp2_submit_goaway(b->cs, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(b->cs),
                        NGHTTP2_NO_ERROR, NULL, 0);
  bridge_after(b);
}

static struct bridge *bridge_new(struct gw *gw, struct bufferevent *client, struct gw_peer *peer,
                                 struct bg_conn *pc, uint64_t conn_id)
{
  /* On failure the client connection is closed here, for both callers. */
  struct bridge *b = calloc(1, sizeof *b);
  if (!b) {
    bufferevent_free(client);
    return NULL;
  }
  b->gw = gw;
  b->id = conn_id;
  b->peer = peer;
  b->pc = pc;
  b->bsock.fd = -1;
  if (gw_sock_from_bev(&b->csock, gw->base, client, client_cb, b, &b->cpending) != 0) {
    free(b);
    return NULL;
  }
  b->link.shutdown = bridge_shutdown;
  b->link.destroy = bridge_destroy;
  gw_conn_link(gw, &b->link);
  gw_sock_read(&b->csock, 1);
  return b;
}

static void bridge_connect_backend(struct bridge *b, struct bufferevent *backend)
{
  if (backend) {
    backend_attach(b, backend);
    return;
  }
  b->dial = gw_dial_backend(b->gw, "/grpc", NULL, dial_done, b);
  if (!b->dial)
    backend_lost(b, "cannot dial the backend: out of memory");
}

/* Bytes the front door had read past the request head go first. */
static void take_pending(struct bridge *b)
{
  struct evbuffer *in = b->cpending;
  b->cpending = NULL;
  if (in && evbuffer_get_length(in) > 0 && !b->dead)
    client_bytes(b, evbuffer_pullup(in, -1), evbuffer_get_length(in));
  if (in)
    evbuffer_free(in);
}

void gw_bridge_start_h2(struct gw *gw, struct bufferevent *client, struct gw_peer *peer, struct bg_conn *pc,
                        struct bufferevent *backend, uint64_t conn_id, const char *refusal)
{
  struct bridge *b = bridge_new(gw, client, peer, pc, conn_id);
  if (!b) {
    if (backend)
      bufferevent_free(backend);
    if (pc)
      bg_conn_close(pc);
    gw_peer_free(peer);
    return;
  }
  if (!pc && !(b->refusal = strdup(refusal ? refusal : "connection refused by policy"))) {
    bridge_kill(b, "out of memory");
    b->in_handler++;
    bridge_after(b);
    return;
  }
  b->in_handler++;
  nghttp2_session_callbacks *cb;
  nghttp2_option *opt = make_options();
  if (!opt || nghttp2_session_callbacks_new(&cb) != 0) {
    nghttp2_option_del(opt);
    bridge_kill(b, "out of memory");
    if (backend)
      bufferevent_free(backend);
    bridge_after(b);
    return;
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, c_on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, c_on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_on_stream_close);
  int rv = nghttp2_session_server_new2(&b->cs, cb, b, opt);
  nghttp2_session_callbacks_del(cb);
  nghttp2_option_del(opt);
  unsigned maxs = pc ? bg_conn_max_streams(pc) : 1;
  if (!maxs || maxs > GW_MAX_STREAMS)
    maxs = GW_MAX_STREAMS;
  if (rv != 0 || send_settings(b->cs, maxs) != 0 || (backend && make_backend_session(b) != 0)) {
    bridge_kill(b, "cannot create HTTP/2 sessions");
    if (backend)
      bufferevent_free(backend);
    bridge_after(b);
    return;
  }
  /* An upgraded Docker /grpc connection is already there; a native client's
   * backend connection is dialled with its first stream (open_backend_stream). */
  if (backend)
    bridge_connect_backend(b, backend);
  /* The client may already have sent its preface and first frames. */
  take_pending(b);
  bridge_after(b);
}

void gw_bridge_start_session(struct gw *gw, struct bufferevent *client, struct gw_peer *peer, struct bg_conn *pc,
                             struct bg_call *call, const struct bg_header *hdrs, size_t n_hdrs, uint64_t conn_id)
{
  struct bridge *b = bridge_new(gw, client, peer, pc, conn_id);
  if (!b) {
    gw_call_end(gw, call, BG_GRPC_RESOURCE_EXHAUSTED, "out of memory", 0, 0);
    bg_conn_close(pc);
    gw_peer_free(peer);
    return;
  }
  b->in_handler++;
  b->session_mode = 1;
  struct bstream *s = stream_new(b, -1);
  if (!s || make_backend_session(b) != 0) {
    gw_call_end(gw, call, BG_GRPC_RESOURCE_EXHAUSTED, "out of memory", 0, 0);
    bridge_kill(b, "out of memory");
    bridge_after(b);
    return;
  }
  s->call = call;
  bg_frame_reader_init(&s->rresp, GRPC_DEFAULT_MAX_MSG);
  s->inspect_resp = 1; /* so stream_free releases the reader */
  hdrs_adds(&s->reqh, ":method", "POST");
  hdrs_adds(&s->reqh, ":scheme", "http");
  hdrs_adds(&s->reqh, ":path", "/moby.buildkit.v1.Control/Session");
  hdrs_adds(&s->reqh, ":authority", "buildgate");
  hdrs_adds(&s->reqh, "content-type", "application/grpc");
  hdrs_adds(&s->reqh, "te", "trailers");
  for (size_t i = 0; i < n_hdrs; i++)
    hdrs_add(&s->reqh, (const uint8_t *)hdrs[i].name, hdrs[i].namelen, (const uint8_t *)hdrs[i].value,
             hdrs[i].valuelen);
  /* The nested session connection is started by the daemon (it is the
   * HTTP/2 client there), so the stream can open right away; the client gets
   * its 101 once the backend connection is up (backend_attach). */
  open_backend_stream(s);
  bridge_connect_backend(b, NULL);
  take_pending(b);
  bridge_after(b);
}

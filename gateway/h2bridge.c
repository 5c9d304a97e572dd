/*
 * h2bridge.c: the HTTP/2 proxy engine.
 *
 * One bridge per client connection, with an nghttp2 server session toward
 * the client ("cs").  Backend connections are upstreams (struct upstream),
 * each with an nghttp2 client session ("bs"), pooled per tenant: the streams
 * of every client connection of one tenant share them, as a generic HTTP/2
 * proxy shares its backend connections, so that one backend read or write
 * serves several calls.  A client that vanishes takes exactly its own
 * streams with it (RST_STREAM CANCEL on the upstream, which the backend
 * turns into a cancelled build); the upstream stays for the others.
 *
 * Each request is a struct bstream that both sessions point at.  Bytes flow
 * through two bounded queues (req: client -> backend, resp: backend ->
 * client).  Flow control is manual (STYLE.md section 5): bytes received
 * from the client are acknowledged (nghttp2_session_consume) only once the
 * queue they went into has drained below GW_QUEUE_HIGH, i.e. once the
 * backend has taken them; response bytes likewise at stream level.  On a
 * shared upstream the connection-level window is given back on arrival, so
 * a client that stops reading stalls its own streams (each bounded by
 * GW_STREAM_WINDOW) and nobody else's.
 *
 * Re-entrancy: nghttp2 callbacks and event handlers only change state and
 * mark the connections they touched; a flush pass run by the event loop
 * after the handlers of the same turn does every mem_send and write and
 * frees what is finished (see flush_cb).  A stream is freed only once both
 * sessions have closed it (or never opened it), and a stream detached from
 * an upstream has its nghttp2 user data cleared first.
 *
 * The same engine serves a Docker-style /session in front of a native gRPC
 * backend ("session mode"): there is no client session then, the client's
 * raw bytes are wrapped in BytesMessage on one Control.Session stream of a
 * private upstream and the backend's messages are unwrapped onto the client
 * socket.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nghttp2/nghttp2.h>

#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/sock.h"
#include "proto/grpc_frame.h"
#include "proto/pbwire.h"
#include "proto/pbtok.h"

#define GRPC_DEFAULT_MAX_MSG (16u * 1024 * 1024)

/* A header list.  Names and values are copied into blocks that only grow
 * (pointers into them stay valid) and are freed together: a unary call copies
 * about twenty headers, and one allocation per header was a third of the
 * mallocs on a call's path. */
struct hblock {
  struct hblock *next;
  size_t used, cap;
  uint8_t data[];
};
#define HBLOCK_BYTES (1024 - sizeof(struct hblock)) /* a malloc of 1 KiB: room for a typical call's headers */

struct hdrs {
  nghttp2_nv *nv;
  size_t n, cap, bytes;
  struct hblock *blocks; /* newest first */
};

struct bridge;
struct upstream;

struct bstream {
  struct bstream *prev, *next;   /* the bridge's streams */
  struct bstream *uprev, *unext; /* the upstream's streams */
  struct bridge *b;
  struct upstream *up; /* backend connection carrying it; NULL before/after */
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
  /* Inspection memory (see "inspection memory" below). */
  size_t ib_resv;             /* budget held for the request message being assembled */
  size_t ib_queued;           /* budget held for approved messages still queued for the backend */
  unsigned ib_waiting : 1;    /* on the wait list: its bytes are not acknowledged */
  size_t ib_relieved;         /* of req_held, bytes whose connection window was given back */
  struct bstream *ib_prev, *ib_next; /* the wait list, oldest first */
  struct event *ib_timer;     /* stall timer, while a request message is partial */
  uint64_t ib_last_ms;        /* last progress of the partial message (monotonic) */
  /* A request message whose decision needs the backend facts (the policy
   * said BG_MSG_WAIT_FACTS): held until Control.Info has answered or
   * GW_FACTS_WAIT_SECS have passed, then decided again. */
  uint8_t *held;
  size_t held_len;
  int held_compressed;
  struct event *facts_ev;
  struct bstream *wprev, *wnext; /* H.waiters */
};

struct bridge {
  struct gw_conn link;
  struct gw *gw;
  uint64_t id;
  struct gw_peer *peer;
  struct bg_conn *pc;
  struct gw_sock csock; /* fd -1 once closed */
  nghttp2_session *cs;  /* NULL in session mode */
  struct bstream *streams;
  struct upstream *own; /* session mode: a backend connection of its own */
  int session_mode;
  int client_gone;
  int goaway_sent;
  int dead;             /* freed by the next flush pass */
  int dirty;            /* on the flush list */
  struct bridge *dirty_next;
  char *refusal;  /* the policy refused this connection: why (pc is NULL) */
  struct evbuffer *cpending; /* client bytes the front door read ahead, until taken */
  size_t ib_used;       /* inspection budget its streams hold */
  size_t ib_relief;     /* connection window given back early for waiting streams */
  unsigned ib_pass;     /* wait-list pass in which one of its streams did not fit */
};

/* A backend HTTP/2 connection.  Native gRPC streams of one tenant share
 * pooled upstreams, as a generic HTTP/2 proxy would share them among all
 * clients: at 16 concurrent clients one backend read or write then serves
 * several calls.  Keeping the pool per tenant bounds what one tenant can
 * do to another (a tenant that stops reading stalls, at worst, its own
 * upstream's connection window) and leaves room for per-tenant backend
 * credentials.  A session-mode bridge has a private upstream. */
struct upstream {
  struct upstream *prev, *next; /* every live upstream */
  struct gw *gw;
  char *key;                    /* tenant; NULL: private, never picked */
  nghttp2_session *bs;
  struct gw_sock sock;          /* fd -1 until connected */
  struct gw_dial *dial;
  struct bstream *streams;
  unsigned n_streams;
  struct bridge *owner;         /* private upstream: its session-mode bridge */
  int ready;                    /* connected */
  int closed;                   /* GOAWAY, failure or idle: takes no new streams */
  int dead;                     /* freed by the next flush pass */
  int dirty;
  struct upstream *dirty_next;
  struct event idle_ev;         /* an upstream left without streams closes after a while */
  char err[512];
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
  size_t need = nl + 1 + vl + 1;
  struct hblock *b = h->blocks;
  if (!b || b->cap - b->used < need) {
    /* Most header lists fit in one block; a larger header gets a block its size. */
    size_t cap = need > HBLOCK_BYTES ? need : HBLOCK_BYTES;
    b = malloc(sizeof *b + cap);
    if (!b)
      return -1;
    b->used = 0;
    b->cap = cap;
    b->next = h->blocks;
    h->blocks = b;
  }
  uint8_t *n = b->data + b->used;
  uint8_t *v = n + nl + 1;
  b->used += need;
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
  while (h->blocks) {
    struct hblock *next = h->blocks->next;
    free(h->blocks);
    h->blocks = next;
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
      /* A removed header's bytes stay in its block until the list is freed. */
      if (strcmp((const char *)h->nv[r].name, e[i].name) != 0)
        h->nv[w++] = h->nv[r];
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
static void ib_forget(struct bstream *s, int final);
static void ib_client_closed(struct bstream *s);
static void ib_release_queued(struct bstream *s);
static int field_bytes(const uint8_t *p, size_t len, unsigned field, const uint8_t **out, size_t *outlen);
/* Handlers never write and never free.  They change state and mark the
 * connections they touched; one flush pass, which the event loop runs after
 * every handler that became ready in the same turn, writes each marked
 * connection once and frees what is finished.  So the requests of several
 * clients that arrived together leave in one write to their shared
 * upstream, and no object is freed under a callback still using it. */
static struct {
  struct event *flush_ev;
  int scheduled;
  struct bridge *dirty_b;
  struct upstream *dirty_u;
  struct upstream *ups; /* every live upstream */
  int probing;          /* a Control.Info probe is in flight */
  struct bstream *waiters; /* streams holding a message until the facts are known */
  struct evbuffer *gather;     /* frames for one socket, written once per flush */
  struct gw_sock *gather_sock; /* ... and that socket */
  size_t gathered;             /* what the last session_send produced */
} H;

static int gather_full(void)
{
  return evbuffer_get_length(H.gather) + gw_sock_queued(H.gather_sock) >= GW_OUT_HIGH;
}

static void mark_b(struct bridge *b);
static void mark_u(struct upstream *u);
static struct upstream *up_pick(struct bridge *b, const struct bstream *s);
static void up_stream_detach(struct bstream *s);
static void start_probe(struct bridge *b, struct upstream *u);

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

static void facts_unlink(struct bstream *s);

static void stream_free(struct bstream *s)
{
  struct bridge *b = s->b;
  facts_unlink(s);
  stream_end_call(s);
  ib_forget(s, 1);
  up_stream_detach(s);
  if (s->internal)
    H.probing = 0;
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

/* Operations on the backend side of a stream; the upstream is flushed by
 * the next flush pass. */
static int up_live(const struct bstream *s)
{
  return s->up && s->backend_open && !s->backend_closed;
}

static void up_rst(struct bstream *s)
{
  if (up_live(s) && !s->abandoned) {
    s->abandoned = 1;
    nghttp2_submit_rst_stream(s->up->bs, NGHTTP2_FLAG_NONE, s->bid, NGHTTP2_CANCEL);
    mark_u(s->up);
  }
}

static void up_resume(struct bstream *s)
{
  if (up_live(s)) {
    nghttp2_session_resume_data(s->up->bs, s->bid);
    mark_u(s->up);
  }
}

/* Stream-level window only: the connection window of a shared upstream is
 * given back as soon as bytes arrive (b_on_data_chunk), so that a client
 * that stops reading holds at most its own streams' windows. */
static void up_consume(struct bstream *s, size_t n)
{
  if (up_live(s) && n) {
    nghttp2_session_consume_stream(s->up->bs, s->bid, n);
    mark_u(s->up);
  }
}

/* Give the client back the windows of the request bytes |s| holds.  Part of
 * the connection window may have been given back already (ib_relieve). */
static void req_ack_held(struct bstream *s)
{
  struct bridge *b = s->b;
  nghttp2_session_consume_stream(b->cs, s->cid, s->req_held);
  nghttp2_session_consume_connection(b->cs, s->req_held - s->ib_relieved);
  b->ib_relief -= s->ib_relieved;
  s->ib_relieved = 0;
  s->req_held = 0;
}

/* Acknowledge request bytes to the client once the queue toward the backend is short. */
static void req_release(struct bstream *s)
{
  struct bridge *b = s->b;
  if (s->ib_queued && evbuffer_get_length(s->req) < GW_QUEUE_HIGH)
    ib_release_queued(s);
  /* A stream waiting for inspection memory is not acknowledged at all: the
   * client's window closes and it waits, instead of the gateway buffering. */
  if (!s->req_held || s->ib_waiting || evbuffer_get_length(s->req) >= GW_QUEUE_HIGH)
    return;
  if (b->session_mode) {
    if (HAS_SOCK(b->csock) && !b->client_gone)
      gw_sock_read(&b->csock, 1);
  } else if (!s->client_closed) {
    req_ack_held(s);
    mark_b(b);
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
  up_consume(s, s->resp_held);
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
  up_rst(s);
  if (s->internal)
    return;
  mark_b(b);
  /* Bytes already acknowledged or still held for the backend are moot now. */
  evbuffer_drain(s->req, evbuffer_get_length(s->req));
  ib_forget(s, 0);
  if (s->req_held && !b->session_mode && !s->client_closed)
    req_ack_held(s);
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

/* DATA is forwarded without copying the payload into nghttp2: the read
 * callbacks only say how much to send (NGHTTP2_DATA_FLAG_NO_COPY), and the
 * send_data callbacks move the queued chains behind the 9-byte frame header
 * into the buffer being gathered for the socket (H.gather). */

/* Backend pulls request bytes. */
static ssize_t req_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                           uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
  /* Not source->ptr: a stream detached from a shared upstream (its client
   * went away) has its user data cleared, and the provider must not reach it. */
  struct bstream *s = nghttp2_session_get_stream_user_data(session, stream_id);
  if (!s || s->abandoned)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  size_t avail = evbuffer_get_length(s->req);
  if (avail == 0 && !s->req_eof)
    return NGHTTP2_ERR_DEFERRED;
  size_t n = avail < length ? avail : length;
  *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (s->req_eof && n == avail)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

static int req_send_data_cb(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
                            nghttp2_data_source *source, void *user_data)
{
  struct bstream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (!s)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  if (evbuffer_add(H.gather, framehd, 9) != 0 || evbuffer_remove_buffer(s->req, H.gather, length) != (int)length)
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  req_release(s);
  return gather_full() ? NGHTTP2_ERR_PAUSE : 0;
}

/* Client pulls response bytes. */
static ssize_t resp_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
  struct bstream *s = source->ptr;
  size_t avail = evbuffer_get_length(s->resp);
  if (avail == 0 && !s->resp_eof)
    return NGHTTP2_ERR_DEFERRED;
  size_t n = avail < length ? avail : length;
  *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (s->resp_eof && n == avail) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (s->trailers.n) {
      /* gRPC's status lives in trailers: send them instead of END_STREAM on DATA. */
      if (nghttp2_submit_trailer(session, stream_id, s->trailers.nv, s->trailers.n) == 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
  }
  return (ssize_t)n;
}

static int resp_send_data_cb(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                             size_t length, nghttp2_data_source *source, void *user_data)
{
  struct bstream *s = source->ptr;
  if (evbuffer_add(H.gather, framehd, 9) != 0 || evbuffer_remove_buffer(s->resp, H.gather, length) != (int)length)
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  s->bytes_out += length;
  resp_release(s);
  return gather_full() ? NGHTTP2_ERR_PAUSE : 0;
}

/* Every other frame nghttp2 serializes goes to the same buffer; once it
 * holds GW_OUT_HIGH with what the socket still queues, nghttp2 keeps the
 * rest until the next flush. */
static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags, void *user_data)
{
  if (gather_full())
    return NGHTTP2_ERR_WOULDBLOCK;
  if (evbuffer_add(H.gather, data, length) != 0)
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  return (ssize_t)length;
}

/* ---------- inspection memory ---------- */

/* A request the policy inspects is assembled message by message (rreq) and
 * only a whole, approved message moves on; so the bytes of a message being
 * assembled stay in the gateway until its last byte arrives.  Acknowledging
 * them as they come would let a client make the gateway hold every message
 * up to max_message_bytes on every stream it opens and never finishes.
 *
 * So each partial message must first reserve its declared length from two
 * budgets, its connection's and the process's (struct gw, GW_INSPECT_*).
 * Until it has, its bytes are not acknowledged: the client may send what its
 * stream window already allows (256 KiB: a message that small completes
 * without any reservation), then waits (see ib_relieve for the connection
 * window).  Reserving the whole message at once, rather than byte by byte,
 * means no two half-received messages can each wait for the other's share;
 * a message larger than a budget is admitted when nothing else holds that
 * budget, so every message within max_message_bytes can finish.  Waiting
 * streams are served oldest first (a connection's own streams keep their
 * order), so small messages do not starve a large one.
 *
 * The reservation is kept while the approved message waits in the queue
 * toward the backend and returned once the queue is short (req_release), or
 * when the stream fails or ends.  A partial message that gets no byte, or no
 * reservation, for --inspect-stall-timeout seconds ends the stream with
 * RESOURCE_EXHAUSTED; the connection and its other streams go on. */
static struct {
  size_t used;                  /* budget held by every stream */
  struct bstream *head, *tail;  /* streams waiting for budget, oldest first */
  unsigned pass;
  struct event *pump_ev;        /* serves the wait list after a release */
  int pump_scheduled;
} IB;

static uint64_t ib_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t ib_conn_budget(const struct gw *gw)
{
  return gw->inspect_conn_budget ? gw->inspect_conn_budget : GW_INSPECT_CONN_BUDGET;
}

static size_t ib_budget(const struct gw *gw)
{
  return gw->inspect_budget ? gw->inspect_budget : GW_INSPECT_BUDGET;
}

static unsigned ib_stall_secs(const struct gw *gw)
{
  return gw->inspect_stall_secs ? gw->inspect_stall_secs : GW_INSPECT_STALL_SECS;
}

static void ib_unwait(struct bstream *s)
{
  if (!s->ib_waiting)
    return;
  if (s->ib_prev)
    s->ib_prev->ib_next = s->ib_next;
  else
    IB.head = s->ib_next;
  if (s->ib_next)
    s->ib_next->ib_prev = s->ib_prev;
  else
    IB.tail = s->ib_prev;
  s->ib_prev = s->ib_next = NULL;
  s->ib_waiting = 0;
}

static void ib_give_back(struct bstream *s, size_t n)
{
  if (!n)
    return;
  s->b->ib_used -= n;
  IB.used -= n;
  /* Serve the wait list from the event loop, not from here: a release can
   * come from inside stream_free or bridge_free, where granting (which
   * acknowledges bytes on a client session) must not run. */
  if (IB.head && IB.pump_ev && !IB.pump_scheduled) {
    IB.pump_scheduled = 1;
    event_active(IB.pump_ev, EV_TIMEOUT, 1);
  }
}

static void ib_release_queued(struct bstream *s)
{
  size_t n = s->ib_queued;
  s->ib_queued = 0;
  ib_give_back(s, n);
}

/* The stream is done with inspection (failed, or being freed when |final|):
 * give back its budget and its partial message's buffer. */
static void ib_forget(struct bstream *s, int final)
{
  ib_unwait(s);
  size_t n = s->ib_resv + s->ib_queued;
  s->ib_resv = s->ib_queued = 0;
  ib_give_back(s, n);
  if (s->ib_timer) {
    event_del(s->ib_timer);
    if (final) {
      event_free(s->ib_timer);
      s->ib_timer = NULL;
    }
  }
  if (final) {
    s->b->ib_relief -= s->ib_relieved;
    s->ib_relieved = 0;
  }
  /* A failed stream reads no more; a client that keeps it open must not
   * keep up to max_message_bytes with it. */
  if (s->inspect_req)
    bg_frame_reader_free(&s->rreq);
}

/* The client closed the stream: the stream window is gone, but the
 * connection window of what it still held must come back, or the connection
 * would shrink by it for good. */
static void ib_client_closed(struct bstream *s)
{
  struct bridge *b = s->b;
  if (s->req_held > s->ib_relieved) {
    nghttp2_session_consume_connection(b->cs, s->req_held - s->ib_relieved);
    mark_b(b);
  }
  b->ib_relief -= s->ib_relieved;
  s->ib_relieved = 0;
  s->req_held = 0;
}

/* Waiting streams hold their bytes unacknowledged, and the connection window
 * is shared: a few of them (1 MiB / 256 KiB) would close it for the streams
 * of the same connection that do hold a reservation, and those could then
 * never finish.  So the connection-level window of waiting streams' bytes is
 * given back (their stream windows stay closed: each sends at most 256 KiB),
 * up to as much as the connection has reserved: the memory of waiting bytes
 * stays within the budgets too, at worst doubling them. */
static void ib_relieve(struct bridge *b)
{
  for (struct bstream *s = b->streams; s && b->ib_relief < b->ib_used; s = s->next) {
    if (!s->ib_waiting || s->client_closed || s->req_held <= s->ib_relieved)
      continue;
    size_t n = s->req_held - s->ib_relieved, room = b->ib_used - b->ib_relief;
    if (n > room)
      n = room;
    nghttp2_session_consume_connection(b->cs, n);
    s->ib_relieved += n;
    b->ib_relief += n;
    mark_b(b);
  }
}

/* 0: |s| may reserve its message now; 1: its connection's budget is full;
 * 2: the process budget is full. */
static int ib_fits(const struct bstream *s, size_t need)
{
  const struct bridge *b = s->b;
  /* Sizes are at most 1 GiB (max_message_bytes) and budgets a few GiB: no overflow. */
  if (b->ib_used && b->ib_used + need > ib_conn_budget(b->gw))
    return 1;
  if (IB.used && IB.used + need > ib_budget(b->gw))
    return 2;
  return 0;
}

static void ib_grant(struct bstream *s, size_t need)
{
  ib_unwait(s);
  s->ib_resv = need;
  s->b->ib_used += need;
  IB.used += need;
  s->ib_last_ms = ib_now_ms(); /* waiting was not the client's doing */
  req_release(s);              /* what it sent meanwhile is acknowledged now */
  ib_relieve(s->b);
  mark_b(s->b);
}

/* Give budget to waiting streams, oldest first.  A stream blocked by its
 * connection's budget lets other connections' streams pass, but not its own
 * connection's later streams; one blocked by the process budget stops the
 * pass, so later (smaller) messages cannot starve it. */
static void ib_pump(void)
{
  unsigned pass = ++IB.pass;
  for (struct bstream *s = IB.head, *next; s; s = next) {
    next = s->ib_next;
    if (s->b->ib_pass == pass)
      continue;
    size_t need = s->rreq.need;
    int why = ib_fits(s, need);
    if (why == 2)
      break;
    if (why == 1) {
      s->b->ib_pass = pass;
      continue;
    }
    ib_grant(s, need);
  }
}

static void ib_pump_cb(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  (void)arg;
  IB.pump_scheduled = 0;
  ib_pump();
}

static void ib_timer_cb(evutil_socket_t fd, short what, void *arg)
{
  struct bstream *s = arg;
  struct gw *gw = s->b->gw;
  (void)fd;
  (void)what;
  if (s->replied || s->abandoned || s->client_closed || bg_frame_reader_idle(&s->rreq))
    return;
  uint64_t limit = (uint64_t)ib_stall_secs(gw) * 1000, idle = ib_now_ms() - s->ib_last_ms;
  if (idle < limit) {
    uint64_t left = limit - idle;
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    evtimer_add(s->ib_timer, &tv);
    return;
  }
  char msg[300];
  if (s->ib_waiting)
    snprintf(msg, sizeof msg,
             "request message of %zu bytes waited %u s for inspection memory (gateway limits: "
             "--inspect-conn-budget %zu MiB, --inspect-budget %zu MiB, --inspect-stall-timeout %u s)",
             s->rreq.need, ib_stall_secs(gw), ib_conn_budget(gw) >> 20, ib_budget(gw) >> 20, ib_stall_secs(gw));
  else
    snprintf(msg, sizeof msg,
             "request message stalled at %zu of %zu bytes: nothing received for %u s (gateway limit: "
             "--inspect-stall-timeout %u s)",
             s->rreq.prefix_have < BG_GRPC_PREFIX_LEN ? s->rreq.prefix_have : BG_GRPC_PREFIX_LEN + s->rreq.have,
             s->rreq.prefix_have < BG_GRPC_PREFIX_LEN ? (size_t)BG_GRPC_PREFIX_LEN : BG_GRPC_PREFIX_LEN + s->rreq.need,
             ib_stall_secs(gw), ib_stall_secs(gw));
  LOG_INFO("conn %llu stream %d: %s", (unsigned long long)s->b->id, s->cid, msg);
  stream_fail(s, BG_GRPC_RESOURCE_EXHAUSTED, msg); /* audited as the call's status */
}

/* After request bytes went into the assembler: keep the stall timer and the
 * reservation in step with what is partial now.  |got|: bytes just fed. */
static void ib_update(struct bstream *s, size_t got)
{
  struct bridge *b = s->b;
  const struct bg_frame_reader *r = &s->rreq;
  if (s->replied || s->abandoned)
    return;
  if (bg_frame_reader_idle(r)) {
    ib_unwait(s); /* its message came whole within the window */
    if (s->ib_timer)
      event_del(s->ib_timer);
    return;
  }
  if (got)
    s->ib_last_ms = ib_now_ms();
  if (!s->ib_timer && !(s->ib_timer = evtimer_new(b->gw->base, ib_timer_cb, s))) {
    stream_fail(s, BG_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  if (!evtimer_pending(s->ib_timer, NULL)) {
    struct timeval tv = {(time_t)ib_stall_secs(b->gw), 0};
    evtimer_add(s->ib_timer, &tv);
  }
  if (r->prefix_have < BG_GRPC_PREFIX_LEN) {
    ib_unwait(s); /* a new message whose length is not known yet: nothing to reserve */
    return;
  }
  if (s->ib_resv)
    return;
  if (s->ib_waiting) {
    ib_relieve(b);
    return;
  }
  if (!IB.pump_ev && !(IB.pump_ev = event_new(b->gw->base, -1, 0, ib_pump_cb, NULL))) {
    stream_fail(s, BG_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  s->ib_waiting = 1;
  s->ib_prev = IB.tail;
  s->ib_next = NULL;
  if (IB.tail)
    IB.tail->ib_next = s;
  else
    IB.head = s;
  IB.tail = s;
  ib_pump();
  if (s->ib_waiting)
    ib_relieve(b);
}

/* The assembler handed over a whole message: its reservation now covers the
 * copy queued toward the backend. */
static void ib_msg_done(struct bstream *s)
{
  s->ib_queued += s->ib_resv;
  s->ib_resv = 0;
}

/* ---------- request path (client -> backend) ---------- */

/* Open the backend side of |s| on |u|, or on the upstream up_pick chooses. */
static void open_backend_stream_on(struct bstream *s, struct upstream *u)
{
  struct bridge *b = s->b;
  if (s->backend_open || s->replied || s->abandoned)
    return;
  /* Only now does a stream cost a backend connection, so idle clients hold
   * no backend resources. */
  if (!u)
    u = up_pick(b, s);
  if (!u) {
    stream_fail(s, BG_GRPC_RESOURCE_EXHAUSTED, "cannot create a backend HTTP/2 session");
    return;
  }
  if (u->closed) { /* a private upstream whose dial failed already */
    stream_fail(s, BG_GRPC_UNAVAILABLE, u->err);
    return;
  }
  nghttp2_data_provider dp = {.source.ptr = NULL, .read_callback = req_read_cb};
  int32_t id = nghttp2_submit_request(u->bs, NULL, s->reqh.nv, s->reqh.n, &dp, s);
  if (id < 0) {
    char msg[256];
    snprintf(msg, sizeof msg, "backend %s: cannot open stream: %s", b->gw->backend.text, nghttp2_strerror(id));
    stream_fail(s, BG_GRPC_UNAVAILABLE, msg);
    return;
  }
  {
    s->up = u;
    s->unext = u->streams;
    if (u->streams)
      u->streams->uprev = s;
    u->streams = s;
    if (u->n_streams++ == 0)
      event_del(&u->idle_ev);
  }
  s->bid = id;
  s->backend_open = 1;
  mark_u(u);
  if (!b->gw->facts.known && !s->internal && !b->session_mode)
    start_probe(b, u);
}

static void open_backend_stream(struct bstream *s)
{
  open_backend_stream_on(s, NULL);
}

/* ---------- waiting for the backend facts ----------
 *
 * A decision that depends on what the backend is (a source policy needs
 * BuildKit v0.11+, and a known rule order) is never made as if the backend
 * were new: the message waits for the Control.Info probe, a few seconds at
 * most, and the policy then decides with the facts or, after the timeout,
 * without them (it refuses with UNAVAILABLE).  Nothing reaches the backend
 * meanwhile: its stream opens only once the message is approved. */
#define GW_FACTS_WAIT_SECS 5

static int on_req_msg(void *arg, const uint8_t *msg, size_t len, int compressed);
static void req_end_resume(struct bstream *s);

static void facts_unlink(struct bstream *s)
{
  if (s->facts_ev) {
    event_free(s->facts_ev);
    s->facts_ev = NULL;
    if (s->wprev)
      s->wprev->wnext = s->wnext;
    else
      H.waiters = s->wnext;
    if (s->wnext)
      s->wnext->wprev = s->wprev;
    s->wprev = s->wnext = NULL;
  }
  free(s->held);
  s->held = NULL;
}

/* Decide the held message again (facts known, or the wait is over). */
static void facts_resume(struct bstream *s)
{
  uint8_t *m = s->held;
  size_t n = s->held_len;
  int z = s->held_compressed;
  s->held = NULL;
  facts_unlink(s);
  mark_b(s->b);
  if (!m || s->replied || s->abandoned || s->client_closed) {
    free(m);
    return;
  }
  if (on_req_msg(s, m, n, z) == 0 && s->req_eof)
    req_end_resume(s);
  free(m);
}

static void facts_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
  struct bstream *s = arg;
  bg_call_facts_timeout(s->call);
  facts_resume(s);
}

static void facts_wake(void)
{
  while (H.waiters)
    facts_resume(H.waiters);
}

static void facts_wait(struct bstream *s, const uint8_t *msg, size_t len, int compressed)
{
  struct timeval tv = {GW_FACTS_WAIT_SECS, 0};
  s->held = malloc(len ? len : 1);
  s->facts_ev = evtimer_new(s->b->gw->base, facts_timeout_cb, s);
  if (!s->held || !s->facts_ev || evtimer_add(s->facts_ev, &tv) != 0) {
    if (s->facts_ev)
      event_free(s->facts_ev);
    s->facts_ev = NULL;
    free(s->held);
    s->held = NULL;
    stream_fail(s, BG_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  memcpy(s->held, msg, len);
  s->held_len = len;
  s->held_compressed = compressed;
  s->wnext = H.waiters;
  if (H.waiters)
    H.waiters->wprev = s;
  H.waiters = s;
  start_probe(s->b, NULL);
}

static int on_req_msg(void *arg, const uint8_t *msg, size_t len, int compressed)
{
  struct bstream *s = arg;
  ib_msg_done(s);
  if (s->held) {
    stream_fail(s, BG_GRPC_INVALID_ARGUMENT, "a second request message arrived while the first waits for the backend's facts");
    return 1;
  }
  struct bg_msg_result r = {0};
  bg_call_request(s->call, msg, len, compressed, &r);
  uint8_t prefix[BG_GRPC_PREFIX_LEN];
  switch (r.verdict) {
  case BG_MSG_WAIT_FACTS:
    facts_wait(s, msg, len, compressed);
    return 0;
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
    else
      ib_update(s, len);
  } else {
    if (s->track)
      track_bytes(s, data, len);
    evbuffer_add(s->req, data, len);
  }
  up_resume(s);
  req_release(s);
}

static void req_end_resume(struct bstream *s)
{
  if (s->replied || s->abandoned)
    return;
  if (!s->backend_open)
    open_backend_stream(s);
  else
    up_resume(s);
}

static void req_end(struct bstream *s)
{
  s->req_eof = 1;
  if (s->replied || s->abandoned || s->held)
    return;
  if ((s->inspect_req && !bg_frame_reader_idle(&s->rreq)) || (s->track && (s->trk_pfx || s->trk_body))) {
    stream_fail(s, BG_GRPC_INVALID_ARGUMENT, "request ended inside a truncated gRPC message");
    return;
  }
  if (!s->backend_open)
    open_backend_stream(s);
  else
    up_resume(s);
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
  if (path && strcmp(path, "/moby.buildkit.v1.Control/Session") == 0) {
    /* What a session arrives with, before any edit: tests read the shared
     * key a backend receives from a buildgate chained in front of it. */
    const char *u = hdrs_get(&s->reqh, "x-docker-expose-session-uuid");
    const char *k = hdrs_get(&s->reqh, "x-docker-expose-session-sharedkey");
    LOG_DBG("conn %llu stream %d: Control.Session received uuid=%s sharedkey=%s", (unsigned long long)b->id, s->cid,
            u ? u : "(none)", k ? k : "(none)");
  }
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
  mark_b(b);
}

/* Find length-delimited field |field| (last occurrence wins, as in protobuf)
 * in a serialized message.  Returns 0 with out/outlen set (NULL/0 when absent),
 * or -1 when the bytes are not a valid message (proto/pbtok.h rules). */
static int field_bytes(const uint8_t *p, size_t len, unsigned field, const uint8_t **out, size_t *outlen)
{
  return bg_pb_last_bytes(p, len, field, out, outlen) < 0 ? -1 : 0;
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
  if (f->known) {
    LOG_INFO("backend %s runs BuildKit %s", s->b->gw->backend.text, f->buildkit_version);
    facts_wake();
  }
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
  ib_client_closed(s);
  s->client_closed = 1;
  if (error_code != NGHTTP2_NO_ERROR || !s->resp_eof) {
    /* The client gave up (RST_STREAM) before the answer was complete. */
    if (!s->replied)
      stream_set_status(s, BG_GRPC_CANCELLED, "client cancelled the stream");
    up_rst(s);
  }
  up_consume(s, s->resp_held);
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
  struct upstream *u = user_data;
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    /* Streams above last_stream_id end with REFUSED_STREAM (b_on_stream_close);
     * the rest may finish, but nothing new goes here. */
    u->closed = 1;
    return 0;
  }
  struct bstream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (!s || s->abandoned)
    return 0;
  mark_b(s->b);
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
  struct upstream *u = user_data;
  struct bstream *s = nghttp2_session_get_stream_user_data(session, stream_id);
  /* The connection window is shared by every stream on this upstream:
   * given back at once; the stream window waits for the client (up_consume). */
  nghttp2_session_consume_connection(session, len);
  mark_u(u);
  if (!s || s->abandoned || s->client_closed || s->replied) {
    nghttp2_session_consume_stream(session, stream_id, len);
    return 0;
  }
  mark_b(s->b);
  s->resp_held += len;
  resp_deliver(s, data, len);
  resp_release(s);
  return 0;
}

static int b_on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
  struct upstream *u = user_data;
  struct bstream *s = nghttp2_session_get_stream_user_data(session, stream_id);
  if (!s)
    return 0;
  struct bridge *b = s->b;
  mark_b(b);
  s->backend_closed = 1;
  s->resp_held = 0;
  up_stream_detach(s);
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
      if (u->err[0])
        snprintf(msg, sizeof msg, "%s", u->err);
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

/* ---------- flush pass ---------- */


static void schedule_flush(void)
{
  if (!H.scheduled && H.flush_ev) {
    H.scheduled = 1;
    event_active(H.flush_ev, EV_TIMEOUT, 1);
  }
}

static void mark_b(struct bridge *b)
{
  if (!b->dirty) {
    b->dirty = 1;
    b->dirty_next = H.dirty_b;
    H.dirty_b = b;
  }
  schedule_flush();
}

static void mark_u(struct upstream *u)
{
  if (!u->dirty) {
    u->dirty = 1;
    u->dirty_next = H.dirty_u;
    H.dirty_u = u;
  }
  schedule_flush();
}

/* Let a session serialize what it has into H.gather (send_cb and the
 * send_data callbacks), then write it with one writev: a unary gRPC answer
 * is HEADERS, DATA and trailers, three frames and one system call.  The
 * socket keeps (and waits for EV_WRITE with) only what the kernel did not
 * take, and serializing stops while that is above GW_OUT_HIGH.  Returns the
 * nghttp2 error, or 0. */
static int session_send(nghttp2_session *sess, struct gw_sock *sk)
{
  H.gathered = 0;
  if (sk->failed)
    return 0;
  H.gather_sock = sk;
  int rv = nghttp2_session_send(sess);
  H.gathered = evbuffer_get_length(H.gather);
  gw_sock_write_buf(sk, H.gather);
  evbuffer_drain(H.gather, evbuffer_get_length(H.gather)); /* a failed socket took nothing */
  return rv;
}

/* The socket took all that was gathered but the session has more (it
 * stopped at GW_OUT_HIGH): go on in the next round instead of waiting for
 * the next event. */
static int session_more(nghttp2_session *sess, const struct gw_sock *sk)
{
  return H.gathered > 0 && !sk->failed && gw_sock_queued(sk) == 0 && nghttp2_session_want_write(sess);
}

/* ---------- upstreams ---------- */

static void up_cb(void *arg, short what);
static void dial_done(void *arg, struct bufferevent *bev, const char *err);

/* Close an upstream politely: GOAWAY goes out with the last flush, then
 * the connection closes. */
static void up_close(struct upstream *u)
{
  if (u->ready && !u->dead)
    nghttp2_session_terminate_session(u->bs, NGHTTP2_NO_ERROR);
  u->closed = 1;
  u->dead = 1;
  mark_u(u);
}

static void up_idle_cb(evutil_socket_t fd, short what, void *arg)
{
  struct upstream *u = arg;
  (void)fd;
  (void)what;
  if (u->n_streams == 0)
    up_close(u);
}

/* An upstream has no stream left: keep it for GW_UPSTREAM_IDLE_SECS (the
 * next call needs no connect and no /grpc upgrade; closing at once would
 * churn connections whenever a busy tenant's streams all end together). */
static void up_idle(struct upstream *u)
{
  if (u->closed || !u->key) {
    up_close(u);
    return;
  }
  struct timeval tv = {GW_UPSTREAM_IDLE_SECS, 0};
  event_add(&u->idle_ev, &tv);
}

static void up_stream_detach(struct bstream *s)
{
  struct upstream *u = s->up;
  if (!u)
    return;
  if (s->backend_open && !s->backend_closed && u->bs) {
    /* The backend stream outlives its bridge stream: cancel it and make
     * sure no nghttp2 callback can reach the freed bstream.  (Both calls
     * also work while the request HEADERS are still queued.) */
    if (!s->abandoned)
      nghttp2_submit_rst_stream(u->bs, NGHTTP2_FLAG_NONE, s->bid, NGHTTP2_CANCEL);
    nghttp2_session_set_stream_user_data(u->bs, s->bid, NULL);
    s->abandoned = 1;
  }
  if (s->uprev)
    s->uprev->unext = s->unext;
  else
    u->streams = s->unext;
  if (s->unext)
    s->unext->uprev = s->uprev;
  s->uprev = s->unext = NULL;
  s->up = NULL;
  u->n_streams--;
  mark_u(u);
  if (u->n_streams == 0)
    up_idle(u);
}

static int send_settings(nghttp2_session *sess, unsigned max_streams);
static nghttp2_option *make_options(void);

static struct upstream *up_new(struct gw *gw, const char *key)
{
  struct upstream *u = calloc(1, sizeof *u);
  if (!u)
    return NULL;
  u->gw = gw;
  u->sock.fd = -1;
  if (key && !(u->key = strdup(key))) {
    free(u);
    return NULL;
  }
  nghttp2_session_callbacks *cb;
  if (nghttp2_session_callbacks_new(&cb) != 0) {
    free(u->key);
    free(u);
    return NULL;
  }
  nghttp2_session_callbacks_set_on_header_callback(cb, b_on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, b_on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, b_on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, b_on_stream_close);
  nghttp2_session_callbacks_set_send_callback(cb, send_cb);
  nghttp2_session_callbacks_set_send_data_callback(cb, req_send_data_cb);
  nghttp2_option *opt = make_options();
  int rv = opt ? nghttp2_session_client_new2(&u->bs, cb, u, opt) : -1;
  nghttp2_session_callbacks_del(cb);
  nghttp2_option_del(opt);
  if (rv != 0 || send_settings(u->bs, GW_MAX_STREAMS) != 0) {
    if (rv == 0)
      nghttp2_session_del(u->bs);
    free(u->key);
    free(u);
    return NULL;
  }
  evtimer_assign(&u->idle_ev, gw->base, up_idle_cb, u);
  u->next = H.ups;
  if (H.ups)
    H.ups->prev = u;
  H.ups = u;
  return u;
}

/* The backend connection failed or closed: every stream on it ends with
 * UNAVAILABLE naming the backend.  The bridges stay; their next streams
 * dial a new upstream. */
static void up_lost(struct upstream *u, const char *why)
{
  if (u->dead)
    return;
  if (!u->err[0])
    snprintf(u->err, sizeof u->err, "%s", why);
  LOG_WARN("%s", why);
  int never_connected = !u->ready;
  u->closed = 1;
  u->dead = 1;
  u->ready = 0;
  mark_u(u);
  while (u->streams) {
    struct bstream *s = u->streams;
    struct bridge *b = s->b;
    if (!s->replied && !s->abandoned && !(s->resp_eof && s->backend_closed))
      stream_fail(s, BG_GRPC_UNAVAILABLE, u->err);
    s->backend_closed = 1;
    up_stream_detach(s);
    mark_b(b);
    if (b->session_mode) {
      /* Before the 101 the client can still get a proper HTTP error. */
      if (never_connected && HAS_SOCK(b->csock) && !b->client_gone) {
        struct evbuffer *e = evbuffer_new();
        if (e) {
          gw_http_error(e, 502, u->err);
          gw_sock_write(&b->csock, evbuffer_pullup(e, -1), evbuffer_get_length(e));
          evbuffer_free(e);
        }
      }
      b->client_gone = 1;
      gw_sock_read(&b->csock, 0);
    }
    stream_maybe_free(s);
  }
}

static void up_free(struct upstream *u)
{
  while (u->streams) { /* only at exit: bridges are gone first otherwise */
    u->streams->backend_closed = 1;
    up_stream_detach(u->streams);
  }
  /* Last, as detaching marks it again. */
  if (u->dirty) {
    struct upstream **pp = &H.dirty_u;
    while (*pp && *pp != u)
      pp = &(*pp)->dirty_next;
    if (*pp)
      *pp = u->dirty_next;
  }
  if (u->dial)
    gw_dial_cancel(u->dial);
  if (u->owner)
    u->owner->own = NULL;
  event_del(&u->idle_ev);
  if (u->bs)
    nghttp2_session_del(u->bs);
  gw_sock_close(&u->sock);
  if (u->prev)
    u->prev->next = u->next;
  else
    H.ups = u->next;
  if (u->next)
    u->next->prev = u->prev;
  free(u->key);
  free(u);
}

static void up_flush(struct upstream *u)
{
  /* A closing upstream still gets this last write: the END_STREAM or
   * RST_STREAM its last streams queued. */
  if (!u->ready)
    return;
  int rv = session_send(u->bs, &u->sock);
  char why[600];
  if (rv == 0 && session_more(u->bs, &u->sock))
    mark_u(u);
  if (rv < 0) {
    snprintf(why, sizeof why, "backend %s HTTP/2 error: %s", u->gw->backend.text, nghttp2_strerror(rv));
    up_lost(u, why);
  } else if (u->sock.failed) {
    snprintf(why, sizeof why, "backend %s connection failed: %s", u->gw->backend.text, strerror(u->sock.err));
    up_lost(u, why);
  } else if (!nghttp2_session_want_read(u->bs) && !nghttp2_session_want_write(u->bs)) {
    u->closed = 1; /* both sides said GOAWAY and nothing is left */
    if (u->n_streams == 0)
      u->dead = 1;
  }
}

static void up_bytes(struct upstream *u, const uint8_t *p, size_t n)
{
  ssize_t rv = nghttp2_session_mem_recv(u->bs, p, n);
  if (rv < 0) {
    char why[300];
    snprintf(why, sizeof why, "backend %s HTTP/2 error: %s", u->gw->backend.text, nghttp2_strerror((int)rv));
    up_lost(u, why);
  }
}

/* Readable: hand what the kernel holds to |take|, chunk by chunk, until it
 * is drained, GW_SOCK_READ_MAX has been read (then other connections get
 * their turn) or |go| says stop.  Returns 1 at end of stream or on a read
 * error (*err: errno, 0 for end of stream), 0 otherwise. */
static int sock_pull(struct gw_sock *sk, int (*go)(void *), void (*take)(void *, const uint8_t *, size_t),
                     void *arg, int *err)
{
  size_t total = 0;
  while (total < GW_SOCK_READ_MAX && go(arg)) {
    ssize_t n = gw_sock_recv(sk, rbuf, sizeof rbuf);
    if (n == -2)
      return 0;
    if (n <= 0) {
      *err = n < 0 ? errno : 0;
      return 1;
    }
    total += (size_t)n;
    take(arg, rbuf, (size_t)n);
    if ((size_t)n < sizeof rbuf)
      return 0;
  }
  return 0;
}

static int up_go(void *arg)
{
  return !((struct upstream *)arg)->dead;
}

static void up_take(void *arg, const uint8_t *p, size_t n)
{
  up_bytes(arg, p, n);
}

static void up_cb(void *arg, short what)
{
  struct upstream *u = arg;
  int err;
  mark_u(u);
  if ((what & EV_READ) && sock_pull(&u->sock, up_go, up_take, u, &err)) {
    char why[300];
    snprintf(why, sizeof why, "backend %s closed the connection%s%s", u->gw->backend.text, err ? ": " : "",
             err ? strerror(err) : "");
    up_lost(u, why);
  }
}

/* The backend connection is up (dialled, or upgraded by the front door). */
static void up_attach(struct upstream *u, struct bufferevent *bev)
{
  struct evbuffer *pending;
  if (gw_sock_from_bev(&u->sock, u->gw->base, bev, up_cb, u, &pending) != 0) {
    up_lost(u, "cannot take over the backend connection: out of memory");
    return;
  }
  u->ready = 1;
  gw_sock_read(&u->sock, 1);
  mark_u(u);
  struct bridge *b = u->owner;
  if (b && HAS_SOCK(b->csock) && !b->client_gone) {
    /* Only now that the backend answered does the session client get its 101. */
    gw_sock_write(&b->csock, GW_UPGRADE_101, strlen(GW_UPGRADE_101));
  }
  /* Bytes the engine sent right behind its 101. */
  if (evbuffer_get_length(pending) > 0)
    up_bytes(u, evbuffer_pullup(pending, -1), evbuffer_get_length(pending));
  evbuffer_free(pending);
}

static void dial_done(void *arg, struct bufferevent *bev, const char *err)
{
  struct upstream *u = arg;
  u->dial = NULL;
  if (!bev)
    up_lost(u, err);
  else
    up_attach(u, bev);
}

static struct upstream *up_dial(struct gw *gw, const char *key)
{
  struct upstream *u = up_new(gw, key);
  if (!u)
    return NULL;
  u->dial = gw_dial_backend(gw, "/grpc", NULL, dial_done, u);
  if (!u->dial)
    up_lost(u, "cannot dial the backend: out of memory");
  return u;
}

/* Pool key: the tenant the call runs as (a native connection may name a
 * tenant per call with a bearer token), else the connection's. */
static const char *tenant_key(const struct bridge *b, const struct bstream *s)
{
  const char *t = s && s->call ? bg_call_tenant(s->call) : NULL;
  if (!t || !*t)
    t = b->pc ? bg_conn_tenant(b->pc) : NULL;
  return t ? t : "";
}

static struct upstream *up_find(const char *key)
{
  for (struct upstream *u = H.ups; u; u = u->next)
    if (u->key && !u->closed && !u->dead && u->n_streams < GW_UPSTREAM_MAX_STREAMS && strcmp(u->key, key) == 0)
      return u;
  return NULL;
}

/* The upstream a new stream |s| of |b| goes to. */
static struct upstream *up_pick(struct bridge *b, const struct bstream *s)
{
  if (b->session_mode)
    return b->own;
  const char *key = tenant_key(b, s);
  struct upstream *u = up_find(key);
  return u ? u : up_dial(b->gw, key);
}

int gw_bridge_pool_ready(const struct bg_conn *pc)
{
  const char *t = pc ? bg_conn_tenant(pc) : NULL;
  struct upstream *u = up_find(t ? t : "");
  return u && u->ready;
}

/* ---------- bridges ---------- */

static void bridge_free(struct bridge *b)
{
  /* Deleting the client session first means no callback can run on a stream below. */
  if (b->cs)
    nghttp2_session_del(b->cs);
  while (b->streams) {
    struct bstream *s = b->streams;
    if (s->grpc_status < 0)
      stream_set_status(s, BG_GRPC_CANCELLED, b->client_gone ? "client connection closed" : "connection closed");
    stream_free(s); /* cancels its backend stream, if still open */
  }
  if (b->own) {
    b->own->owner = NULL;
    up_close(b->own);
  }
  gw_sock_close(&b->csock);
  if (b->cpending)
    evbuffer_free(b->cpending);
  if (b->pc)
    bg_conn_close(b->pc);
  free(b->refusal);
  gw_peer_free(b->peer);
  gw_conn_unlink(b->gw, &b->link);
  /* Off the flush list last: nothing above may put it back. */
  if (b->dirty) {
    struct bridge **pp = &H.dirty_b;
    while (*pp && *pp != b)
      pp = &(*pp)->dirty_next;
    if (*pp)
      *pp = b->dirty_next;
  }
  LOG_DBG("conn %llu closed", (unsigned long long)b->id);
  free(b);
}

static void bridge_kill(struct bridge *b, const char *why)
{
  if (!b->dead && why)
    LOG_INFO("conn %llu: %s", (unsigned long long)b->id, why);
  b->dead = 1;
  mark_b(b);
}

static void client_lost(struct bridge *b);

/* Write what the client session has, then decide whether the connection
 * is finished. */
static void bridge_flush(struct bridge *b)
{
  if (b->dead)
    return;
  if (b->cs && HAS_SOCK(b->csock) && !b->client_gone) {
    int rv = session_send(b->cs, &b->csock);
    if (rv < 0) {
      bridge_kill(b, nghttp2_strerror(rv));
      return;
    }
    if (session_more(b->cs, &b->csock))
      mark_b(b);
  }
  if (b->session_mode) {
    for (struct bstream *s = b->streams; s; s = s->next)
      resp_release(s);
  }
  if (HAS_SOCK(b->csock) && b->csock.failed && !b->client_gone) {
    LOG_DBG("conn %llu: write to client failed: %s", (unsigned long long)b->id, strerror(b->csock.err));
    client_lost(b);
  }
  if (b->session_mode) {
    /* Done once the backend stream is over and the client has its bytes. */
    if (b->client_gone && (!HAS_SOCK(b->csock) || b->csock.failed || gw_sock_queued(&b->csock) == 0)) {
      for (struct bstream *s = b->streams; s; s = s->next)
        up_rst(s);
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

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  (void)arg;
  H.scheduled = 0;
  /* Rounds, because writing one side can free room on the other (window
   * updates, queues drained); what is still marked after them waits for
   * the next loop turn instead of starving the other connections. */
  for (int round = 0; round < 8 && (H.dirty_b || H.dirty_u); round++) {
    struct bridge *bl = H.dirty_b;
    H.dirty_b = NULL;
    while (bl) {
      struct bridge *b = bl;
      bl = b->dirty_next;
      b->dirty = 0;
      bridge_flush(b);
      if (b->dead)
        bridge_free(b); /* also off H.dirty_b, where bridge_kill may have put it again */
    }
    struct upstream *ul = H.dirty_u;
    H.dirty_u = NULL;
    while (ul) {
      struct upstream *u = ul;
      ul = u->dirty_next;
      u->dirty = 0;
      up_flush(u);
      if (u->dead)
        up_free(u);
    }
  }
  if (H.dirty_b || H.dirty_u)
    schedule_flush();
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
  up_resume(s);
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
    session_send(b->cs, &b->csock);
    b->client_gone = 1;
    gw_sock_read(&b->csock, 0);
  }
}

/* The client closed its connection, or it broke. */
static void client_lost(struct bridge *b)
{
  b->client_gone = 1;
  gw_sock_read(&b->csock, 0);
  mark_b(b);
  if (!b->session_mode)
    return;
  /* The session client hung up: end our side of Control.Session. */
  struct bstream *s = b->streams;
  if (s && !s->req_eof) {
    s->req_eof = 1;
    s->client_closed = 1;
    up_resume(s);
  }
  if (b->csock.out)
    evbuffer_drain(b->csock.out, evbuffer_get_length(b->csock.out));
}

/* The client is read while the bridge lives; in session mode reading may be
 * switched off midway for backpressure (session_client_bytes). */
static int client_go(void *arg)
{
  struct bridge *b = arg;
  return !b->dead && !b->client_gone && b->csock.reading;
}

static void client_take(void *arg, const uint8_t *p, size_t n)
{
  client_bytes(arg, p, n);
}

static void client_cb(void *arg, short what)
{
  struct bridge *b = arg;
  int err;
  mark_b(b);
  if ((what & EV_READ) && sock_pull(&b->csock, client_go, client_take, b, &err)) {
    if (err)
      LOG_DBG("conn %llu: client read failed: %s", (unsigned long long)b->id, strerror(err));
    client_lost(b);
  }
}

/* Control.Info, once per process: what BuildKit runs behind the backend. */
static void start_probe(struct bridge *b, struct upstream *u)
{
  if (b->gw->facts.known || H.probing)
    return;
  struct bstream *s = stream_new(b, -1);
  if (!s)
    return;
  H.probing = 1;
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
  open_backend_stream_on(s, u);
  stream_maybe_free(s);
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

static void bridge_destroy(struct gw_conn *c)
{
  bridge_free((struct bridge *)c);
}

static void bridge_shutdown(struct gw_conn *c)
{
  struct bridge *b = (struct bridge *)c;
  if (b->session_mode || b->goaway_sent || !b->cs)
    return;
  b->goaway_sent = 1;
  /* Graceful: streams in flight finish, new ones are refused. */
  nghttp2_submit_goaway(b->cs, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(b->cs),
                        NGHTTP2_NO_ERROR, NULL, 0);
  mark_b(b);
}

static struct bridge *bridge_new(struct gw *gw, struct bufferevent *client, struct gw_peer *peer,
                                 struct bg_conn *pc, uint64_t conn_id)
{
  /* On failure the client connection is closed here, for both callers. */
  struct bridge *b = NULL;
  if (!H.flush_ev)
    H.flush_ev = event_new(gw->base, -1, 0, flush_cb, NULL);
  if (!H.gather)
    H.gather = evbuffer_new();
  if (!H.flush_ev || !H.gather || !(b = calloc(1, sizeof *b))) {
    bufferevent_free(client);
    return NULL;
  }
  b->gw = gw;
  b->id = conn_id;
  b->peer = peer;
  b->pc = pc;
  if (gw_sock_from_bev(&b->csock, gw->base, client, client_cb, b, &b->cpending) != 0) {
    free(b);
    return NULL;
  }
  b->link.shutdown = bridge_shutdown;
  b->link.destroy = bridge_destroy;
  gw_conn_link(gw, &b->link);
  gw_sock_read(&b->csock, 1);
  mark_b(b);
  return b;
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
    if (backend)
      bufferevent_free(backend);
    bridge_kill(b, "out of memory");
    return;
  }
  nghttp2_session_callbacks *cb;
  nghttp2_option *opt = make_options();
  if (!opt || nghttp2_session_callbacks_new(&cb) != 0) {
    nghttp2_option_del(opt);
    if (backend)
      bufferevent_free(backend);
    bridge_kill(b, "out of memory");
    return;
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, c_on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, c_on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_on_stream_close);
  nghttp2_session_callbacks_set_send_callback(cb, send_cb);
  nghttp2_session_callbacks_set_send_data_callback(cb, resp_send_data_cb);
  int rv = nghttp2_session_server_new2(&b->cs, cb, b, opt);
  nghttp2_session_callbacks_del(cb);
  nghttp2_option_del(opt);
  unsigned maxs = pc ? bg_conn_max_streams(pc) : 1;
  if (!maxs || maxs > GW_MAX_STREAMS)
    maxs = GW_MAX_STREAMS;
  if (rv != 0 || send_settings(b->cs, maxs) != 0) {
    if (backend)
      bufferevent_free(backend);
    bridge_kill(b, "cannot create HTTP/2 sessions");
    return;
  }
  if (backend) {
    /* The front door upgraded a backend connection before answering the
     * client's /grpc (so that a dead backend is an HTTP error): it joins
     * the tenant's pool. */
    struct upstream *u = up_new(gw, tenant_key(b, NULL));
    if (u) {
      up_attach(u, backend);
      if (!u->dead)
        up_idle(u);
    } else {
      bufferevent_free(backend);
    }
  }
  /* The client may already have sent its preface and first frames. */
  take_pending(b);
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
  b->session_mode = 1;
  struct bstream *s = stream_new(b, -1);
  if (!s || !(b->own = up_new(gw, NULL))) {
    gw_call_end(gw, call, BG_GRPC_RESOURCE_EXHAUSTED, "out of memory", 0, 0);
    bridge_kill(b, "out of memory");
    return;
  }
  b->own->owner = b;
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
   * its 101 once the backend connection is up (up_attach). */
  open_backend_stream(s);
  b->own->dial = gw_dial_backend(gw, "/grpc", NULL, dial_done, b->own);
  if (!b->own->dial)
    up_lost(b->own, "cannot dial the backend: out of memory");
  take_pending(b);
}

/* At exit, after every bridge is gone. */
void gw_bridge_free_all(void)
{
  while (H.ups)
    up_free(H.ups);
  if (H.flush_ev)
    event_free(H.flush_ev);
  H.flush_ev = NULL;
  if (H.gather)
    evbuffer_free(H.gather);
  H.gather = NULL;
  if (IB.pump_ev)
    event_free(IB.pump_ev);
  IB.pump_ev = NULL;
  IB.pump_scheduled = 0;
  H.dirty_b = NULL;
  H.dirty_u = NULL;
  H.scheduled = 0;
}

/*
 * h2_session.c: session mode, a Docker-style /session in front of a native
 * gRPC backend.  There is no client session: the client's raw bytes are
 * wrapped in BytesMessage on one Control.Session stream of a private backend
 * connection, and the backend's messages are unwrapped onto the client socket.
 */
#include "gateway/h2_int.h"
#include "proto/grpc_msg.h"

/* Nothing more to say to the raw client: it is closed once its bytes are out. */
static void session_drain(struct bridge *b)
{
  if (b->client == GW_CL_OPEN)
    b->client = GW_CL_DRAINING;
}

/* Raw client bytes become BytesMessage on the one stream. */
static void session_bytes(struct bridge *b, const uint8_t *p, size_t len)
{
  struct bstream *s = b->streams;
  if (!s || gw_stream_moot(s))
    return;
  while (len > 0) {
    size_t n = len > 32768 ? 32768 : len;
    uint8_t hdr[BG_BYTESMSG_HEAD_MAX];
    evbuffer_add(s->req, hdr, bg_bytesmsg_head(hdr, n));
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
  gw_bside_resume(s);
}

/* The session client hung up: end our side of Control.Session. */
static void session_lost(struct bridge *b)
{
  struct bstream *s = b->streams;
  if (s && s->cst != GW_C_CLOSED) {
    s->cst = GW_C_CLOSED; /* the request is complete too: the provider ends it */
    gw_bside_resume(s);
  }
  if (b->csock.out)
    evbuffer_drain(b->csock.out, evbuffer_get_length(b->csock.out));
}

static void session_flush(struct bridge *b)
{
  for (struct bstream *s = b->streams; s; s = s->next)
    gw_resp_release(s);
  gw_bridge_write_check(b);
  /* Done once the backend stream is over and the client has its bytes. */
  if (b->client != GW_CL_OPEN && (!HAS_SOCK(b->csock) || b->csock.failed || gw_sock_queued(&b->csock) == 0)) {
    for (struct bstream *s = b->streams; s; s = s->next)
      gw_bside_cancel(s);
    gw_bridge_kill(b, NULL);
  }
}

/* A raw client has no way to hear of a graceful close: its session runs on. */
static void session_shutdown(struct bridge *b)
{
}

static struct bconn *session_pick(struct bridge *b, const struct bstream *s)
{
  return b->own;
}

static void session_opened(struct bstream *s, struct bconn *bc)
{
}

static int session_done(const struct bstream *s)
{
  return s->b->client != GW_CL_OPEN || s->cst == GW_C_CLOSED;
}

static void session_req_ack(struct bstream *s)
{
  struct bridge *b = s->b;
  if (HAS_SOCK(b->csock) && b->client == GW_CL_OPEN)
    gw_sock_read(&b->csock, 1);
}

/* The queue toward the client is the client socket's output buffer. */
static int session_resp_full(const struct bstream *s)
{
  const struct bridge *b = s->b;
  return HAS_SOCK(b->csock) && gw_sock_queued(&b->csock) >= GW_QUEUE_HIGH;
}

static int session_resp_msg(void *arg, const uint8_t *msg, size_t len, int compressed)
{
  struct bstream *s = arg;
  struct bridge *b = s->b;
  const uint8_t *d;
  size_t dl;
  if (compressed || bg_bytesmsg_data(msg, len, &d, &dl) != 0) {
    gw_stream_fail(s, BG_GRPC_INTERNAL, "backend sent an undecodable Control.Session message");
    return 1;
  }
  s->bytes_out += dl;
  if (d && HAS_SOCK(b->csock) && b->client == GW_CL_OPEN)
    gw_sock_write(&b->csock, d, dl); /* a failure is noticed by session_flush */
  return 0;
}

/* Control.Session answers are BytesMessage{bytes data = 1}: unwrap. */
static void session_resp_data(struct bstream *s, const uint8_t *data, size_t len)
{
  size_t used = 0;
  int rv = bg_frame_reader_feed(&s->rresp, data, len, &used, session_resp_msg, s);
  if (rv < 0)
    gw_frame_error(s, rv, "session");
}

static void session_resp_headers(struct bstream *s, int end_stream)
{
  if (end_stream) {
    gw_record_status(s, &s->resph);
    session_drain(s->b); /* session refused: nothing more to say to the raw client */
  }
}

/* Control.Session is over (its trailers came): the raw client is closed once
 * it has the bytes sent before them, whether or not the backend also resets
 * the stream. */
static void session_resp_end(struct bstream *s)
{
  session_drain(s->b);
}

/* No gRPC status can reach a raw session client: close it. */
static void session_fail(struct bstream *s, int status, const char *msg)
{
  s->req_held = 0;
  session_drain(s->b);
}

/* Control.Session is over, complete or not: close the raw client once flushed. */
static void session_backend_closed(struct bstream *s, uint32_t error_code, const char *err)
{
  session_drain(s->b);
}

/* The raw client can get no status: it is closed. */
static void session_backend_lost(struct bstream *s)
{
  struct bridge *b = s->b;
  session_drain(b);
  gw_sock_read(&b->csock, 0);
}

const struct gw_client_ops gw_session_side = {
    .bytes = session_bytes,
    .lost = session_lost,
    .flush = session_flush,
    .shutdown = session_shutdown,
    .pick = session_pick,
    .opened = session_opened,
    .done = session_done,
    .req_ack = session_req_ack,
    .resp_full = session_resp_full,
    .resp_data = session_resp_data,
    .resp_headers = session_resp_headers,
    .resp_end = session_resp_end,
    .fail = session_fail,
    .backend_closed = session_backend_closed,
    .backend_lost = session_backend_lost,
};

void gw_bridge_start_session(struct gw *gw, struct bufferevent *client, struct gw_peer *peer, struct bg_conn *pc,
                             struct bg_call *call, const struct bg_header *hdrs, size_t n_hdrs, uint64_t conn_id,
                             struct bufferevent *backend)
{
  struct bridge *b = gw_bridge_new(gw, client, peer, pc, conn_id, &gw_session_side);
  if (!b) { /* the client connection is closed; what was handed over goes too */
    bufferevent_free(backend);
    gw_call_end(gw, call, BG_GRPC_RESOURCE_EXHAUSTED, "cannot take over the client connection", 0, 0);
    bg_conn_close(pc);
    return;
  }
  struct bstream *s = gw_stream_new(b, -1);
  b->own = gw_bconn_new(gw, NULL);
  b->own->owner = b;
  s->call = call;
  bg_frame_reader_init(&s->rresp, BG_GRPC_DEFAULT_MAX_MSG);
  s->inspect_resp = 1; /* so gw_stream_free releases the reader */
  gw_hdrs_grpc_request(&s->reqh, "/moby.buildkit.v1.Control/Session");
  for (size_t i = 0; i < n_hdrs; i++)
    gw_hdrs_add(&s->reqh, (const uint8_t *)hdrs[i].name, hdrs[i].namelen, (const uint8_t *)hdrs[i].value,
             hdrs[i].valuelen);
  /* The nested session connection is started by the daemon (it is the
   * HTTP/2 client there), so the stream opens right away. */
  gw_bside_open(s, NULL);
  gw_bconn_attach(b->own, backend);
  gw_bridge_take_pending(b);
}

/*
 * h2_stream.c: a stream's lifetime, its acknowledgements, the gateway's own
 * answers, and the data providers both sessions pull bytes with.
 *
 * A struct bstream is one request; both sessions point at it.  It is freed
 * only once neither session can call back about it (gw_stream_maybe_free).
 * Its backend side (gw_bside_*) is opened, cancelled and detached here too:
 * the pool (h2_bconn.c) only owns the connections, so that failing a stream
 * and closing its backend side are one file's business and the files of the
 * engine call one another in one direction (h2_int.h lists the layers).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/alloc.h"
#include "gateway/h2_int.h"
#include "gateway/log.h"

struct bstream *gw_stream_new(struct bridge *b, int32_t cid)
{
  /* Nothing here can fail: out of memory aborts (alloc.h). */
  struct bstream *s = gw_calloc(1, sizeof *s);
  s->b = b;
  s->cid = cid;
  s->bid = -1;
  s->grpc_status = -1;
  s->req = evbuffer_new();
  s->resp = evbuffer_new();
  s->next = b->streams;
  if (b->streams)
    b->streams->prev = s;
  b->streams = s;
  return s;
}

void gw_stream_set_status(struct bstream *s, int status, const char *msg)
{
  if (s->grpc_status >= 0)
    return;
  s->grpc_status = status;
  free(s->grpc_message);
  s->grpc_message = msg ? gw_strdup(msg) : NULL;
}

static void stream_end_call(struct bstream *s)
{
  if (!s->call) /* never begun, or already ended */
    return;
  int st = s->grpc_status >= 0 ? s->grpc_status : BG_GRPC_CANCELLED;
  const char *msg = s->grpc_status >= 0 ? s->grpc_message : "stream ended without a status";
  gw_call_end(s->b->gw, s->call, st, msg, s->bytes_in, s->bytes_out);
  s->call = NULL;
}


void gw_stream_free(struct bstream *s)
{
  struct bridge *b = s->b;
  gw_facts_unlink(s);
  stream_end_call(s);
  gw_ib_forget(s, 1);
  gw_bside_detach(s);
  if (s->on_end)
    s->on_end(s, 1);
  if (s->prev)
    s->prev->next = s->next;
  else
    b->streams = s->next;
  if (s->next)
    s->next->prev = s->prev;
  gw_hdrs_free(&s->reqh);
  gw_hdrs_free(&s->resph);
  gw_hdrs_free(&s->trailers);
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
void gw_stream_maybe_free(struct bstream *s)
{
  int client_done = s->internal || s->b->side->done(s);
  int backend_done = s->bst == GW_B_IDLE || s->bst == GW_B_CLOSED;
  if (client_done && backend_done)
    gw_stream_free(s);
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
void gw_req_release(struct bstream *s)
{
  struct bridge *b = s->b;
  if (s->ib_queued && evbuffer_get_length(s->req) < GW_QUEUE_HIGH)
    gw_ib_release_queued(s);
  /* A stream waiting for inspection memory is not acknowledged at all: the
   * client's window closes and it waits, instead of the gateway buffering. */
  if (!s->req_held || s->ib_waiting || evbuffer_get_length(s->req) >= GW_QUEUE_HIGH)
    return;
  b->side->req_ack(s);
  s->req_held = 0;
}

int gw_h2c_done(const struct bstream *s)
{
  return s->cst == GW_C_CLOSED;
}

void gw_h2c_req_ack(struct bstream *s)
{
  if (s->cst != GW_C_CLOSED) {
    req_ack_held(s);
    gw_bridge_mark(s->b);
  }
}

int gw_h2c_resp_full(const struct bstream *s)
{
  return evbuffer_get_length(s->resp) >= GW_QUEUE_HIGH;
}

/* Acknowledge response bytes to the backend once they have moved on. */
void gw_resp_release(struct bstream *s)
{
  if (!s->resp_held || s->b->side->resp_full(s))
    return;
  gw_bside_consume(s, s->resp_held);
  s->resp_held = 0;
}

/* ---------- answering the client ourselves ---------- */

static int submit_local_reply(struct bstream *s, int status, const char *msg)
{
  struct bridge *b = s->b;
  char st[16];
  snprintf(st, sizeof st, "%d", status);
  char *enc = bg_grpc_message_encode(msg ? msg : "");
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
void gw_stream_fail(struct bstream *s, int status, const char *msg)
{
  struct bridge *b = s->b;
  LOG_DBG("conn %llu stream %d: %d %s", (unsigned long long)b->id, s->cid, status, msg ? msg : "");
  gw_stream_set_status(s, status, msg);
  gw_bside_cancel(s);
  if (s->internal)
    return;
  gw_bridge_mark(b);
  /* Bytes already acknowledged or still held for the backend are moot now. */
  evbuffer_drain(s->req, evbuffer_get_length(s->req));
  gw_ib_forget(s, 0);
  b->side->fail(s, status, msg);
}

/* The HTTP/2 client gets the status as a trailers-only answer, or as the
 * trailers of an answer under way. */
void gw_h2c_fail(struct bstream *s, int status, const char *msg)
{
  struct bridge *b = s->b;
  if (s->req_held && s->cst != GW_C_CLOSED)
    req_ack_held(s);
  s->req_held = 0;
  if (s->cst == GW_C_CLOSED || s->ast == GW_A_OURS)
    return;
  int started = s->ast != GW_A_NONE; /* response HEADERS went to the client */
  s->ast = GW_A_OURS;
  if (!started) {
    if (submit_local_reply(s, status, msg) != 0)
      nghttp2_submit_rst_stream(b->cs, NGHTTP2_FLAG_NONE, s->cid, NGHTTP2_INTERNAL_ERROR);
    return;
  }
  /* Response already under way: finish it with our status as trailers. */
  gw_hdrs_free(&s->trailers);
  char st[16];
  snprintf(st, sizeof st, "%d", status);
  char *enc = bg_grpc_message_encode(msg ? msg : "");
  gw_hdrs_adds(&s->trailers, "grpc-status", st);
  gw_hdrs_adds(&s->trailers, "grpc-message", enc ? enc : "");
  free(enc);
  nghttp2_session_resume_data(b->cs, s->cid);
}

/* A gRPC message the frame reader of |dir| refused (bg_frame_reader_feed). */
void gw_frame_error(struct bstream *s, int rv, const char *dir)
{
  char msg[256];
  if (rv == BG_FRAME_TOO_LARGE)
    snprintf(msg, sizeof msg, "%s message larger than %zu bytes", dir,
             s->dec.max_message_bytes ? s->dec.max_message_bytes : (size_t)BG_GRPC_DEFAULT_MAX_MSG);
  else if (rv == BG_FRAME_BAD_FLAG)
    snprintf(msg, sizeof msg, "%s message has an invalid compressed flag", dir);
  else
    snprintf(msg, sizeof msg, "%s message could not be buffered", dir);
  gw_stream_fail(s, rv == BG_FRAME_TOO_LARGE ? BG_GRPC_RESOURCE_EXHAUSTED : BG_GRPC_INVALID_ARGUMENT, msg);
}

/* ---------- the backend side ---------- */

/* Open the backend side of |s| on |bc|, or on the connection the client
 * side picks (|bc| NULL).  Only now does a stream cost a backend
 * connection, so idle clients hold no backend resources. */
void gw_bside_open(struct bstream *s, struct bconn *bc)
{
  struct bridge *b = s->b;
  if (s->bst != GW_B_IDLE || s->ast == GW_A_OURS)
    return;
  if (!bc)
    bc = b->side->pick(b, s);
  if (bc->closed) { /* a private backend connection whose dial failed already */
    gw_stream_fail(s, BG_GRPC_UNAVAILABLE, bc->err);
    return;
  }
  nghttp2_data_provider dp = {.source.ptr = NULL, .read_callback = gw_req_read_cb};
  int32_t id = nghttp2_submit_request(bc->bs, NULL, s->reqh.nv, s->reqh.n, &dp, s);
  if (id < 0) {
    char msg[256];
    snprintf(msg, sizeof msg, "backend %s: cannot open stream: %s", b->gw->backend.text, nghttp2_strerror(id));
    gw_stream_fail(s, BG_GRPC_UNAVAILABLE, msg);
    return;
  }
  s->bc = bc;
  s->bc_next = bc->streams;
  if (bc->streams)
    bc->streams->bc_prev = s;
  bc->streams = s;
  if (bc->n_streams++ == 0)
    event_del(&bc->idle_ev); /* it has work again (h2_bconn.c arms it) */
  s->bid = id;
  s->bst = GW_B_OPEN;
  gw_bconn_mark(bc);
  b->side->opened(s, bc);
}

/* Both open and cancelled streams are still known to the backend session. */
static int bside_live(const struct bstream *s)
{
  return s->bc && (s->bst == GW_B_OPEN || s->bst == GW_B_CANCELLED);
}

/* Reset the backend side (RST_STREAM CANCEL, which BuildKit turns into a
 * cancelled build); what the backend still sends is dropped. */
void gw_bside_cancel(struct bstream *s)
{
  if (s->bc && s->bst == GW_B_OPEN) {
    s->bst = GW_B_CANCELLED;
    nghttp2_submit_rst_stream(s->bc->bs, NGHTTP2_FLAG_NONE, s->bid, NGHTTP2_CANCEL);
    gw_bconn_mark(s->bc);
  }
}

/* More request bytes, or their end, for the backend to pull. */
void gw_bside_resume(struct bstream *s)
{
  if (bside_live(s)) {
    nghttp2_session_resume_data(s->bc->bs, s->bid);
    gw_bconn_mark(s->bc);
  }
}

/* Stream-level window only: the connection window of a shared backend
 * connection is given back as soon as bytes arrive (b_on_data_chunk), so
 * that a client that stops reading holds at most its own streams' windows. */
void gw_bside_consume(struct bstream *s, size_t n)
{
  if (bside_live(s) && n) {
    nghttp2_session_consume_stream(s->bc->bs, s->bid, n);
    gw_bconn_mark(s->bc);
  }
}

/* Take |s| off its backend connection.  A backend stream that outlives its
 * bridge stream is cancelled, and no nghttp2 callback can reach the bstream
 * after this (both calls also work while the request HEADERS are still
 * queued).  The connection, marked, notices in its flush that it has no
 * stream left (h2_bconn.c). */
void gw_bside_detach(struct bstream *s)
{
  struct bconn *bc = s->bc;
  if (!bc)
    return;
  if (bside_live(s) && bc->bs) {
    if (s->bst == GW_B_OPEN)
      nghttp2_submit_rst_stream(bc->bs, NGHTTP2_FLAG_NONE, s->bid, NGHTTP2_CANCEL);
    nghttp2_session_set_stream_user_data(bc->bs, s->bid, NULL);
    s->bst = GW_B_CANCELLED;
  }
  if (s->bc_prev)
    s->bc_prev->bc_next = s->bc_next;
  else
    bc->streams = s->bc_next;
  if (s->bc_next)
    s->bc_next->bc_prev = s->bc_prev;
  s->bc_prev = s->bc_next = NULL;
  s->bc = NULL;
  bc->n_streams--;
  gw_bconn_mark(bc);
}

/* ---------- data providers ---------- */

/* Zero copy: see h2_io.c. */

/* Backend pulls request bytes. */
ssize_t gw_req_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                           uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
  /* Not source->ptr: a stream detached from a shared backend connection (its client
   * went away) has its user data cleared, and the provider must not reach it. */
  struct bstream *s = nghttp2_session_get_stream_user_data(session, stream_id);
  if (!s || s->bst != GW_B_OPEN)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  size_t avail = evbuffer_get_length(s->req);
  if (avail == 0 && !gw_req_complete(s))
    return NGHTTP2_ERR_DEFERRED;
  size_t n = avail < length ? avail : length;
  *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (gw_req_complete(s) && n == avail)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

int gw_req_send_data_cb(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
                            nghttp2_data_source *source, void *user_data)
{
  struct bstream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (!s)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  int rv = gw_h2_gather_data(framehd, s->req, length);
  if (rv == NGHTTP2_ERR_CALLBACK_FAILURE)
    return rv;
  gw_req_release(s);
  return rv;
}

/* Client pulls response bytes. */
ssize_t gw_resp_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
  struct bstream *s = source->ptr;
  size_t avail = evbuffer_get_length(s->resp);
  int end = s->ast >= GW_A_DONE; /* trailers known: the backend's, or ours */
  if (avail == 0 && !end)
    return NGHTTP2_ERR_DEFERRED;
  size_t n = avail < length ? avail : length;
  *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (end && n == avail) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (s->trailers.n) {
      /* gRPC's status lives in trailers: send them instead of END_STREAM on DATA. */
      if (nghttp2_submit_trailer(session, stream_id, s->trailers.nv, s->trailers.n) == 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
  }
  return (ssize_t)n;
}

int gw_resp_send_data_cb(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                             size_t length, nghttp2_data_source *source, void *user_data)
{
  struct bstream *s = source->ptr;
  int rv = gw_h2_gather_data(framehd, s->resp, length);
  if (rv == NGHTTP2_ERR_CALLBACK_FAILURE)
    return rv;
  s->bytes_out += length;
  gw_resp_release(s);
  return rv;
}

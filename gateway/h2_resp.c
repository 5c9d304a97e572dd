/*
 * h2_resp.c: the response path (backend -> client) and the backend
 * session's callbacks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/h2_int.h"
#include "proto/grpc_msg.h"

static int on_resp_msg(void *arg, const uint8_t *msg, size_t len, int compressed);

static void resp_deliver(struct bstream *s, const uint8_t *data, size_t len)
{
  if (s->internal) {
    if (evbuffer_get_length(s->resp) + len <= 65536)
      evbuffer_add(s->resp, data, len);
    return;
  }
  s->b->side->resp_data(s, data, len);
}

void gw_h2c_resp_data(struct bstream *s, const uint8_t *data, size_t len)
{
  struct bridge *b = s->b;
  if (s->inspect_resp) {
    size_t used = 0;
    int rv = bg_frame_reader_feed(&s->rresp, data, len, &used, on_resp_msg, s);
    if (rv < 0)
      gw_frame_error(s, rv, "response");
  } else {
    evbuffer_add(s->resp, data, len);
  }
  if (s->cst != GW_C_CLOSED)
    nghttp2_session_resume_data(b->cs, s->cid);
  gw_bridge_mark(b);
}

static int on_resp_msg(void *arg, const uint8_t *msg, size_t len, int compressed)
{
  struct bstream *s = arg;
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
    gw_stream_fail(s, r.grpc_status ? r.grpc_status : BG_GRPC_PERMISSION_DENIED, r.message);
    return 1;
  }
}

void gw_record_status(struct bstream *s, const struct hdrs *h)
{
  const char *st = gw_hdrs_get(h, "grpc-status");
  if (st)
    gw_stream_set_status(s, atoi(st), gw_hdrs_get(h, "grpc-message"));
}

/* The backend's response HEADERS (not trailers) are complete. */
void gw_h2c_resp_headers(struct bstream *s, int end_stream)
{
  struct bridge *b = s->b;
  if (s->ast == GW_A_OURS || s->cst == GW_C_CLOSED)
    return;
  s->ast = GW_A_HEADERS;
  if (end_stream) {
    /* Trailers-only response (typical for errors): forward as is. */
    gw_record_status(s, &s->resph);
    nghttp2_submit_response(b->cs, s->cid, s->resph.nv, s->resph.n, NULL);
    return;
  }
  nghttp2_data_provider dp = {.source.ptr = s, .read_callback = gw_resp_read_cb};
  nghttp2_submit_response(b->cs, s->cid, s->resph.nv, s->resph.n, &dp);
}

/* The backend's answer is complete; its status is in |status| (the
 * trailers, or the headers of a trailers-only answer). */
static void resp_end(struct bstream *s, const struct hdrs *status)
{
  if (s->inspect_resp && !bg_frame_reader_idle(&s->rresp) && !gw_stream_moot(s)) {
    gw_stream_fail(s, BG_GRPC_INTERNAL, "backend response ended inside a truncated gRPC message");
    return;
  }
  gw_stream_answered(s);
  gw_record_status(s, status);
  if (s->internal) {
    if (s->on_end)
      s->on_end(s, 0);
    return;
  }
  s->b->side->resp_end(s);
}

void gw_h2c_resp_end(struct bstream *s)
{
  if (s->cst != GW_C_CLOSED && s->ast != GW_A_NONE)
    nghttp2_session_resume_data(s->b->cs, s->cid);
}

/* The backend session's callbacks. */

static int b_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t nl,
                       const uint8_t *value, size_t vl, uint8_t flags, void *user_data)
{
  struct bstream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (!s || frame->hd.type != NGHTTP2_HEADERS || s->bst != GW_B_OPEN)
    return 0;
  struct hdrs *h = frame->headers.cat == NGHTTP2_HCAT_RESPONSE ? &s->resph : &s->trailers;
  if (h->bytes + nl + vl > GW_MAX_HEADER_LIST)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  if (gw_hop_by_hop(name, nl))
    return 0;
  gw_hdrs_add(h, name, nl, value, vl);
  return 0;
}

static int b_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
  struct bconn *bc = user_data;
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    /* Streams above last_stream_id end with REFUSED_STREAM (b_on_stream_close);
     * the rest may finish, but nothing new goes here. */
    bc->closed = 1;
    return 0;
  }
  struct bstream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (!s || s->bst != GW_B_OPEN) /* a cancelled stream's frames are dropped */
    return 0;
  gw_bridge_mark(s->b);
  int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame->hd.type == NGHTTP2_HEADERS) {
    if (frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
      const char *st = gw_hdrs_get(&s->resph, ":status");
      if (st && st[0] == '1') { /* interim 1xx: wait for the real one */
        gw_hdrs_free(&s->resph);
        return 0;
      }
      if (s->internal) {
        /* The gateway's own call has no client to pass headers to; a
         * trailers-only answer (how grpc-go refuses a method it does not
         * know, as BuildKit before v0.11 refuses Control.Info) completes it. */
        if (end)
          resp_end(s, &s->resph);
        return 0;
      }
      s->b->side->resp_headers(s, end);
      if (end)
        gw_stream_answered(s);
    } else if (end) {
      resp_end(s, &s->trailers);
    }
  } else if (frame->hd.type == NGHTTP2_DATA && end) {
    resp_end(s, &s->trailers);
  }
  return 0;
}

static int b_on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                           size_t len, void *user_data)
{
  struct bconn *bc = user_data;
  struct bstream *s = nghttp2_session_get_stream_user_data(session, stream_id);
  /* The connection window is shared by every stream on this backend connection:
   * given back at once; the stream window waits for the client (gw_bside_consume). */
  nghttp2_session_consume_connection(session, len);
  gw_bconn_mark(bc);
  if (!s || s->bst != GW_B_OPEN || s->cst == GW_C_CLOSED || s->ast == GW_A_OURS) {
    nghttp2_session_consume_stream(session, stream_id, len);
    return 0;
  }
  gw_bridge_mark(s->b);
  s->resp_held += len;
  resp_deliver(s, data, len);
  gw_resp_release(s);
  return 0;
}

static int b_on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
  struct bconn *bc = user_data;
  struct bstream *s = nghttp2_session_get_stream_user_data(session, stream_id);
  if (!s)
    return 0;
  struct bridge *b = s->b;
  gw_bridge_mark(b);
  s->bst = GW_B_CLOSED;
  s->resp_held = 0;
  gw_bside_detach(s);
  b->side->backend_closed(s, error_code, bc->err);
  gw_stream_maybe_free(s);
  return 0;
}

void gw_h2c_backend_closed(struct bstream *s, uint32_t error_code, const char *err)
{
  struct bridge *b = s->b;
  /* Nothing to tell: the answer is complete or already the gateway's, the
   * client is gone (its close cancelled the backend side), or the stream is
   * the gateway's own. */
  if (s->internal || s->ast >= GW_A_DONE || s->cst == GW_C_CLOSED)
    return;
  /* The backend reset the stream, or its connection went away, before a
   * complete answer: the client still gets a status or the same reset. */
  if (error_code == NGHTTP2_REFUSED_STREAM || error_code == NGHTTP2_CANCEL) {
    gw_stream_set_status(s, error_code == NGHTTP2_CANCEL ? BG_GRPC_CANCELLED : BG_GRPC_UNAVAILABLE,
                         "backend reset the stream");
    s->ast = GW_A_OURS;
    nghttp2_submit_rst_stream(b->cs, NGHTTP2_FLAG_NONE, s->cid, error_code);
    return;
  }
  char msg[600];
  if (err[0])
    snprintf(msg, sizeof msg, "%s", err);
  else
    snprintf(msg, sizeof msg, "backend %s reset the stream (HTTP/2 error %s)", b->gw->backend.text,
             nghttp2_http2_strerror(error_code));
  gw_stream_fail(s, BG_GRPC_UNAVAILABLE, msg);
}

void gw_resp_callbacks(nghttp2_session_callbacks *cb)
{
  nghttp2_session_callbacks_set_send_data_callback(cb, gw_req_send_data_cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, b_on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, b_on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, b_on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, b_on_stream_close);
}

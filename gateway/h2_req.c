/*
 * h2_req.c: the request path (client -> backend) and the client session's
 * callbacks: the policy decides on the headers and on each inspected
 * message before anything reaches the backend.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/alloc.h"
#include "gateway/h2_int.h"
#include "gateway/log.h"

/* A native stream learns the backend facts if nobody has yet. */
void gw_h2c_opened(struct bstream *s, struct bconn *bc)
{
  if (!s->b->gw->facts.known && !s->internal)
    gw_probe_start(s->b, bc);
}

int gw_req_msg(void *arg, const uint8_t *msg, size_t len, int compressed)
{
  struct bstream *s = arg;
  gw_ib_msg_done(s);
  if (s->held) {
    gw_stream_fail(s, BG_GRPC_INVALID_ARGUMENT, "a second request message arrived while the first waits for the backend's facts");
    return 1;
  }
  struct bg_msg_result r = {0};
  bg_call_request(s->call, msg, len, compressed, &r);
  uint8_t prefix[BG_GRPC_PREFIX_LEN];
  switch (r.verdict) {
  case BG_MSG_WAIT_FACTS:
    gw_facts_wait(s, msg, len, compressed);
    gw_probe_start(s->b, NULL);
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
    gw_stream_fail(s, r.grpc_status ? r.grpc_status : BG_GRPC_PERMISSION_DENIED, r.message);
    return 1;
  }
  gw_bside_open(s, NULL);
  return 0;
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
  if (gw_stream_moot(s)) {
    gw_req_release(s);
    return;
  }
  if (s->inspect_req) {
    size_t used = 0;
    int rv = bg_frame_reader_feed(&s->rreq, data, len, &used, gw_req_msg, s);
    if (rv < 0)
      gw_frame_error(s, rv, "request");
    else
      gw_ib_update(s, len);
  } else {
    if (s->track)
      track_bytes(s, data, len);
    evbuffer_add(s->req, data, len);
  }
  gw_bside_resume(s);
  gw_req_release(s);
}

/* The request is complete and approved so far: open the backend side (an
 * inspected request that was all one message opens it only now), or let
 * the backend pull the end. */
static void req_end_resume(struct bstream *s)
{
  if (gw_stream_moot(s))
    return;
  if (s->bst == GW_B_IDLE)
    gw_bside_open(s, NULL);
  else
    gw_bside_resume(s);
}

/* A message held for the backend facts is decided again (h2_facts.c). */
void gw_req_facts_resume(struct bstream *s, const uint8_t *msg, size_t len, int compressed)
{
  if (gw_req_msg(s, msg, len, compressed) == 0 && gw_req_complete(s))
    req_end_resume(s);
}

static void req_end(struct bstream *s)
{
  s->cst = GW_C_HREM;
  if (gw_stream_moot(s) || s->held)
    return;
  if ((s->inspect_req && !bg_frame_reader_idle(&s->rreq)) || (s->track && (s->trk_pfx || s->trk_body))) {
    gw_stream_fail(s, BG_GRPC_INVALID_ARGUMENT, "request ended inside a truncated gRPC message");
    return;
  }
  req_end_resume(s);
}

/* The request headers are complete: ask the policy, then forward. */
static void req_headers_done(struct bstream *s)
{
  struct bridge *b = s->b;
  if (!b->pc) { /* refused connection: audited once when it was refused */
    gw_stream_fail(s, BG_GRPC_UNAUTHENTICATED, b->refusal);
    return;
  }
  const char *path = gw_hdrs_get(&s->reqh, ":path");
  if (path && strcmp(path, "/moby.buildkit.v1.Control/Session") == 0) {
    /* What a session arrives with, before any edit: tests read the shared
     * key a backend receives from a buildgate chained in front of it. */
    const char *u = gw_hdrs_get(&s->reqh, "x-docker-expose-session-uuid");
    const char *k = gw_hdrs_get(&s->reqh, "x-docker-expose-session-sharedkey");
    LOG_DBG("conn %llu stream %d: Control.Session received uuid=%s sharedkey=%s", (unsigned long long)b->id, s->cid,
            u ? u : "(none)", k ? k : "(none)");
  }
  struct bg_header *hv = gw_calloc(s->reqh.n ? s->reqh.n : 1, sizeof *hv);
  for (size_t i = 0; i < s->reqh.n; i++)
    hv[i] = (struct bg_header){(const char *)s->reqh.nv[i].name, s->reqh.nv[i].namelen,
                               (const char *)s->reqh.nv[i].value, s->reqh.nv[i].valuelen};
  s->call = bg_call_begin(b->pc, path ? path : "", path ? strlen(path) : 0, hv, s->reqh.n, &s->dec);
  free(hv);
  if (!s->call) {
    gw_stream_fail(s, BG_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  if (s->dec.grpc_status) {
    gw_stream_fail(s, s->dec.grpc_status, s->dec.message);
    return;
  }
  gw_hdrs_apply_edits(&s->reqh, s->dec.edits, s->dec.n_edits);
  size_t maxmsg = s->dec.max_message_bytes ? s->dec.max_message_bytes : BG_GRPC_DEFAULT_MAX_MSG;
  if (s->dec.inspect_requests) {
    s->inspect_req = 1;
    bg_frame_reader_init(&s->rreq, maxmsg);
  }
  if (s->dec.inspect_responses) {
    s->inspect_resp = 1;
    bg_frame_reader_init(&s->rresp, maxmsg);
  }
  const char *ct = gw_hdrs_get(&s->reqh, "content-type");
  s->track = !s->inspect_req && ct && strncmp(ct, "application/grpc", 16) == 0;
  /* An inspected request opens the backend stream only once its first
   * message is approved: nothing denied ever reaches the backend. */
  if (!s->inspect_req)
    gw_bside_open(s, NULL);
}

/* The client session's callbacks. */

static int c_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
  struct bridge *b = user_data;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  struct bstream *s = gw_stream_new(b, frame->hd.stream_id);
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
  if (gw_hop_by_hop(name, nl))
    return 0;
  if (nl == 2 && memcmp(name, "te", 2) == 0 && !(vl == 8 && memcmp(value, "trailers", 8) == 0))
    return 0;
  gw_hdrs_add(&s->reqh, name, nl, value, vl);
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
  gw_ib_client_closed(s);
  s->cst = GW_C_CLOSED;
  if (error_code != NGHTTP2_NO_ERROR || s->ast < GW_A_DONE) {
    /* The client gave up (RST_STREAM) before the answer was complete. */
    if (s->ast != GW_A_OURS)
      gw_stream_set_status(s, BG_GRPC_CANCELLED, "client cancelled the stream");
    gw_bside_cancel(s);
  }
  gw_bside_consume(s, s->resp_held);
  s->resp_held = 0;
  gw_stream_maybe_free(s);
  return 0;
}

/* The client session's callbacks; it sends response DATA with the
 * zero-copy provider of h2_stream.c. */
void gw_req_callbacks(nghttp2_session_callbacks *cb)
{
  nghttp2_session_callbacks_set_send_data_callback(cb, gw_resp_send_data_cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, c_on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, c_on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_on_stream_close);
}

/*
 * h2_session.c: session mode, a Docker-style /session in front of a native
 * gRPC backend.  There is no client session: the client's raw bytes are
 * wrapped in BytesMessage on one Control.Session stream of a private backend
 * connection, and the backend's messages are unwrapped onto the client socket.
 */
#include "gateway/h2_int.h"
#include "proto/grpc_msg.h"

/* Session mode: raw client bytes become BytesMessage on the one stream. */
void gw_session_client_bytes(struct bridge *b, const uint8_t *p, size_t len)
{
  struct bstream *s = b->streams;
  if (!s || s->replied || s->abandoned)
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
  gw_bconn_resume(s);
}

void gw_bridge_start_session(struct gw *gw, struct bufferevent *client, struct gw_peer *peer, struct bg_conn *pc,
                             struct bg_call *call, const struct bg_header *hdrs, size_t n_hdrs, uint64_t conn_id,
                             struct bufferevent *backend)
{
  struct bridge *b = gw_bridge_new(gw, client, peer, pc, conn_id);
  if (!b) {
    bufferevent_free(backend);
    gw_call_end(gw, call, BG_GRPC_RESOURCE_EXHAUSTED, "out of memory", 0, 0);
    bg_conn_close(pc);
    gw_peer_free(peer);
    return;
  }
  b->session_mode = 1;
  struct bstream *s = gw_stream_new(b, -1);
  if (!s || !(b->own = gw_bconn_new(gw, NULL))) {
    bufferevent_free(backend);
    gw_call_end(gw, call, BG_GRPC_RESOURCE_EXHAUSTED, "out of memory", 0, 0);
    gw_bridge_kill(b, "out of memory");
    return;
  }
  b->own->owner = b;
  s->call = call;
  bg_frame_reader_init(&s->rresp, BG_GRPC_DEFAULT_MAX_MSG);
  s->inspect_resp = 1; /* so gw_stream_free releases the reader */
  gw_hdrs_adds(&s->reqh, ":method", "POST");
  gw_hdrs_adds(&s->reqh, ":scheme", "http");
  gw_hdrs_adds(&s->reqh, ":path", "/moby.buildkit.v1.Control/Session");
  gw_hdrs_adds(&s->reqh, ":authority", "buildgate");
  gw_hdrs_adds(&s->reqh, "content-type", "application/grpc");
  gw_hdrs_adds(&s->reqh, "te", "trailers");
  for (size_t i = 0; i < n_hdrs; i++)
    gw_hdrs_add(&s->reqh, (const uint8_t *)hdrs[i].name, hdrs[i].namelen, (const uint8_t *)hdrs[i].value,
             hdrs[i].valuelen);
  /* The nested session connection is started by the daemon (it is the
   * HTTP/2 client there), so the stream opens right away. */
  gw_open_backend_stream(s);
  gw_bconn_attach(b->own, backend);
  gw_bridge_take_pending(b);
}

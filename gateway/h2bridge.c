/*
 * h2bridge.c: the HTTP/2 proxy engine's client connections ("bridges") and
 * its entry points.  h2_int.h describes the engine and lists its files.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/h2_int.h"
#include "gateway/log.h"

static int bridge_flush_fl(struct gw_flushable *f);
static void bridge_free_fl(struct gw_flushable *f);
static const struct gw_flush_ops bridge_flush_ops = {.rank = 0, .flush = bridge_flush_fl, .free = bridge_free_fl};

static void bridge_free(struct bridge *b)
{
  /* Deleting the client session first means no callback can run on a stream below. */
  if (b->cs)
    nghttp2_session_del(b->cs);
  while (b->streams) {
    struct bstream *s = b->streams;
    if (s->grpc_status < 0)
      gw_stream_set_status(s, BG_GRPC_CANCELLED, b->client_gone ? "client connection closed" : "connection closed");
    gw_stream_free(s); /* cancels its backend stream, if still open */
  }
  if (b->own) {
    b->own->owner = NULL;
    gw_bconn_close(b->own);
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
  gw_flush_forget(&b->fl);
  LOG_DBG("conn %llu closed", (unsigned long long)b->id);
  free(b);
}

void gw_bridge_kill(struct bridge *b, const char *why)
{
  if (!b->dead && why)
    LOG_INFO("conn %llu: %s", (unsigned long long)b->id, why);
  b->dead = 1;
  gw_bridge_mark(b);
}


static void client_lost(struct bridge *b);

/* Write what the client session has, then decide whether the connection
 * is finished. */
static void bridge_flush(struct bridge *b)
{
  if (b->dead)
    return;
  if (b->cs && HAS_SOCK(b->csock) && !b->client_gone) {
    int rv = gw_h2_send(b->cs, &b->csock);
    if (rv < 0) {
      gw_bridge_kill(b, nghttp2_strerror(rv));
      return;
    }
    if (gw_h2_more(b->cs, &b->csock))
      gw_bridge_mark(b);
  }
  if (b->session_mode) {
    for (struct bstream *s = b->streams; s; s = s->next)
      gw_resp_release(s);
  }
  if (HAS_SOCK(b->csock) && b->csock.failed && !b->client_gone) {
    LOG_DBG("conn %llu: write to client failed: %s", (unsigned long long)b->id, strerror(b->csock.err));
    client_lost(b);
  }
  if (b->session_mode) {
    /* Done once the backend stream is over and the client has its bytes. */
    if (b->client_gone && (!HAS_SOCK(b->csock) || b->csock.failed || gw_sock_queued(&b->csock) == 0)) {
      for (struct bstream *s = b->streams; s; s = s->next)
        gw_bconn_rst(s);
      gw_bridge_kill(b, NULL);
    }
    return;
  }
  if (b->client_gone) {
    gw_bridge_kill(b, NULL);
    return;
  }
  if (!nghttp2_session_want_read(b->cs) && !nghttp2_session_want_write(b->cs) && gw_sock_queued(&b->csock) == 0)
    gw_bridge_kill(b, NULL);
}

static void client_bytes(struct bridge *b, const uint8_t *p, size_t n)
{
  if (b->session_mode) {
    gw_session_client_bytes(b, p, n);
    return;
  }
  /* nghttp2 takes all of it or fails; it copies what it keeps. */
  ssize_t rv = nghttp2_session_mem_recv(b->cs, p, n);
  if (rv < 0) {
    LOG_INFO("conn %llu: client HTTP/2 error: %s", (unsigned long long)b->id, nghttp2_strerror((int)rv));
    /* Let nghttp2's GOAWAY out before closing, if it queued one. */
    gw_h2_send(b->cs, &b->csock);
    b->client_gone = 1;
    gw_sock_read(&b->csock, 0);
  }
}

/* The client closed its connection, or it broke. */
static void client_lost(struct bridge *b)
{
  b->client_gone = 1;
  gw_sock_read(&b->csock, 0);
  gw_bridge_mark(b);
  if (!b->session_mode)
    return;
  /* The session client hung up: end our side of Control.Session. */
  struct bstream *s = b->streams;
  if (s && !s->req_eof) {
    s->req_eof = 1;
    s->client_closed = 1;
    gw_bconn_resume(s);
  }
  if (b->csock.out)
    evbuffer_drain(b->csock.out, evbuffer_get_length(b->csock.out));
}

/* The client is read while the bridge lives; in session mode reading may be
 * switched off midway for backpressure (gw_session_client_bytes). */
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
  gw_bridge_mark(b);
  if ((what & EV_READ) && gw_sock_pull(&b->csock, client_go, client_take, b, &err)) {
    if (err)
      LOG_DBG("conn %llu: client read failed: %s", (unsigned long long)b->id, strerror(err));
    client_lost(b);
  }
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
  gw_bridge_mark(b);
}

struct bridge *gw_bridge_new(struct gw *gw, struct bufferevent *client, struct gw_peer *peer,
                                 struct bg_conn *pc, uint64_t conn_id)
{
  /* On failure the client connection is closed here, for both callers. */
  struct bridge *b = NULL;
  if (gw_flush_init(gw->base) != 0 || gw_h2_io_init() != 0 || !(b = calloc(1, sizeof *b))) {
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
  b->fl.ops = &bridge_flush_ops;
  b->link.shutdown = bridge_shutdown;
  b->link.destroy = bridge_destroy;
  gw_conn_link(gw, &b->link);
  gw_sock_read(&b->csock, 1);
  gw_bridge_mark(b);
  return b;
}

/* Bytes the front door had read past the request head go first. */
void gw_bridge_take_pending(struct bridge *b)
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
  struct bridge *b = gw_bridge_new(gw, client, peer, pc, conn_id);
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
    gw_bridge_kill(b, "out of memory");
    return;
  }
  nghttp2_session_callbacks *cb;
  nghttp2_option *opt = gw_h2_options();
  if (!opt || nghttp2_session_callbacks_new(&cb) != 0) {
    nghttp2_option_del(opt);
    if (backend)
      bufferevent_free(backend);
    gw_bridge_kill(b, "out of memory");
    return;
  }
  gw_req_callbacks(cb);
  nghttp2_session_callbacks_set_send_callback(cb, gw_h2_send_cb);
  nghttp2_session_callbacks_set_send_data_callback(cb, gw_resp_send_data_cb);
  int rv = nghttp2_session_server_new2(&b->cs, cb, b, opt);
  nghttp2_session_callbacks_del(cb);
  nghttp2_option_del(opt);
  unsigned maxs = pc ? bg_conn_max_streams(pc) : 1;
  if (!maxs || maxs > GW_MAX_STREAMS)
    maxs = GW_MAX_STREAMS;
  if (rv != 0 || gw_h2_send_settings(b->cs, maxs) != 0) {
    if (backend)
      bufferevent_free(backend);
    gw_bridge_kill(b, "cannot create HTTP/2 sessions");
    return;
  }
  if (backend) {
    /* The front door upgraded a backend connection before answering the
     * client's /grpc (so that a dead backend is an HTTP error): it joins
     * the tenant's pool. */
    struct bconn *bc = gw_bconn_new(gw, gw_tenant_key(b, NULL));
    if (bc) {
      gw_bconn_attach(bc, backend);
      if (!bc->dead)
        gw_bconn_idle(bc);
    } else {
      bufferevent_free(backend);
    }
  }
  /* The client may already have sent its preface and first frames. */
  gw_bridge_take_pending(b);
}

static int bridge_flush_fl(struct gw_flushable *f)
{
  struct bridge *b = (struct bridge *)((char *)f - offsetof(struct bridge, fl));
  bridge_flush(b);
  return b->dead;
}

static void bridge_free_fl(struct gw_flushable *f)
{
  bridge_free((struct bridge *)((char *)f - offsetof(struct bridge, fl)));
}

/* At exit, after every bridge is gone. */
void gw_bridge_free_all(void)
{
  gw_bconn_free_all();
  gw_flush_fini();
  gw_h2_io_fini();
  gw_ib_fini();
}

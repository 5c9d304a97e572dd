/*
 * h2bridge.c: the HTTP/2 proxy engine's client connections ("bridges") and
 * its entry points.  h2_int.h describes the engine and lists its files.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/alloc.h"
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
      gw_stream_set_status(s, BG_GRPC_CANCELLED, b->client == GW_CL_LOST ? "client connection closed" : "connection closed");
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
  gw_conn_unlink(b->gw, &b->link); /* frees the peer */
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


/* Write what the client side has, then decide whether the connection is
 * finished. */
static void bridge_flush(struct bridge *b)
{
  if (!b->dead)
    b->side->flush(b);
}

/* A write to the client failed: it is lost. */
void gw_bridge_write_check(struct bridge *b)
{
  if (HAS_SOCK(b->csock) && b->csock.failed && b->client == GW_CL_OPEN) {
    LOG_DBG("conn %llu: write to client failed: %s", (unsigned long long)b->id, strerror(b->csock.err));
    gw_bridge_client_lost(b);
  }
}

/* The client closed its connection, or it broke. */
void gw_bridge_client_lost(struct bridge *b)
{
  b->client = GW_CL_LOST;
  gw_sock_read(&b->csock, 0);
  gw_bridge_mark(b);
  b->side->lost(b);
}

/* ---------- the HTTP/2 client side (gw_h2c_side) ---------- */

static void h2c_flush(struct bridge *b)
{
  if (b->cs && HAS_SOCK(b->csock) && b->client == GW_CL_OPEN) {
    int rv = gw_h2_send(b->cs, &b->csock);
    if (rv < 0) {
      gw_bridge_kill(b, nghttp2_strerror(rv));
      return;
    }
    if (gw_h2_more(b->cs, &b->csock))
      gw_bridge_mark(b);
  }
  gw_bridge_write_check(b);
  if (b->client != GW_CL_OPEN) {
    gw_bridge_kill(b, NULL);
    return;
  }
  if (!nghttp2_session_want_read(b->cs) && !nghttp2_session_want_write(b->cs) && gw_sock_queued(&b->csock) == 0)
    gw_bridge_kill(b, NULL);
}

static void h2c_bytes(struct bridge *b, const uint8_t *p, size_t n)
{
  /* nghttp2 takes all of it or fails; it copies what it keeps. */
  ssize_t rv = nghttp2_session_mem_recv(b->cs, p, n);
  if (rv < 0) {
    LOG_INFO("conn %llu: client HTTP/2 error: %s", (unsigned long long)b->id, nghttp2_strerror((int)rv));
    /* Let nghttp2's GOAWAY out before closing, if it queued one. */
    gw_h2_send(b->cs, &b->csock);
    b->client = GW_CL_LOST;
    gw_sock_read(&b->csock, 0);
  }
}

/* Its streams notice through the client session's own stream-close callbacks. */
static void h2c_lost(struct bridge *b)
{
}

static void h2c_shutdown(struct bridge *b)
{
  if (b->goaway_sent || !b->cs)
    return;
  b->goaway_sent = 1;
  /* Graceful: streams in flight finish, new ones are refused. */
  nghttp2_submit_goaway(b->cs, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(b->cs),
                        NGHTTP2_NO_ERROR, NULL, 0);
  gw_bridge_mark(b);
}

/* A stream's client side ends with the client session's stream-close callback. */
static void h2c_backend_lost(struct bstream *s)
{
}

const struct gw_client_ops gw_h2c_side = {
    .bytes = h2c_bytes,
    .lost = h2c_lost,
    .flush = h2c_flush,
    .shutdown = h2c_shutdown,
    .pick = gw_bconn_pick,
    .opened = gw_h2c_opened,
    .done = gw_h2c_done,
    .req_ack = gw_h2c_req_ack,
    .resp_full = gw_h2c_resp_full,
    .resp_data = gw_h2c_resp_data,
    .resp_headers = gw_h2c_resp_headers,
    .resp_end = gw_h2c_resp_end,
    .fail = gw_h2c_fail,
    .backend_closed = gw_h2c_backend_closed,
    .backend_lost = h2c_backend_lost,
};

/* ---------- the client socket ---------- */

/* The client is read while the bridge lives; in session mode reading may be
 * switched off midway for backpressure (h2_session.c). */
static int client_go(void *arg)
{
  struct bridge *b = arg;
  return !b->dead && b->client == GW_CL_OPEN && b->csock.reading;
}

static void client_take(void *arg, const uint8_t *p, size_t n)
{
  struct bridge *b = arg;
  b->side->bytes(b, p, n);
}

static void client_cb(void *arg, short what)
{
  struct bridge *b = arg;
  int err;
  gw_bridge_mark(b);
  if ((what & EV_READ) && gw_sock_pull(&b->csock, client_go, client_take, b, &err)) {
    if (err)
      LOG_DBG("conn %llu: client read failed: %s", (unsigned long long)b->id, strerror(err));
    gw_bridge_client_lost(b);
  }
}

static void bridge_destroy(struct gw_conn *c)
{
  bridge_free((struct bridge *)c);
}

static void bridge_shutdown(struct gw_conn *c)
{
  struct bridge *b = (struct bridge *)c;
  b->side->shutdown(b);
}

struct bridge *gw_bridge_new(struct gw *gw, struct bufferevent *client, struct gw_peer *peer,
                             struct bg_conn *pc, uint64_t conn_id, const struct gw_client_ops *side)
{
  /* Only taking over the socket can fail (no descriptor left); then the
   * client connection is closed here, for both callers, and NULL returned.
   * Memory does not fail (alloc.h). */
  if (gw_flush_init(gw->base) != 0)
    gw_oom(0);
  gw_h2_io_init();
  /* The parts below the stream layer reach it through these (h2_int.h). */
  gw_ib_init(gw_req_release, gw_stream_fail);
  gw_facts_init(gw_req_facts_resume);
  struct bridge *b = gw_calloc(1, sizeof *b);
  b->gw = gw;
  b->side = side;
  b->id = conn_id;
  b->pc = pc;
  b->link.shutdown = bridge_shutdown;
  b->link.destroy = bridge_destroy;
  gw_conn_link(gw, &b->link, peer); /* the peer is the bridge's from here, on failure too */
  if (gw_sock_from_bev(&b->csock, gw->base, client, client_cb, b, &b->cpending) != 0) {
    gw_conn_unlink(gw, &b->link);
    free(b);
    return NULL;
  }
  b->fl.ops = &bridge_flush_ops;
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
    b->side->bytes(b, evbuffer_pullup(in, -1), evbuffer_get_length(in));
  if (in)
    evbuffer_free(in);
}

void gw_bridge_start_h2(struct gw *gw, struct bufferevent *client, struct gw_peer *peer, struct bg_conn *pc,
                        struct bufferevent *backend, uint64_t conn_id, const char *refusal)
{
  struct bridge *b = gw_bridge_new(gw, client, peer, pc, conn_id, &gw_h2c_side);
  if (!b)
    goto fail;
  if (!pc)
    b->refusal = gw_strdup(refusal ? refusal : "connection refused by policy");
  unsigned maxs = pc ? bg_conn_max_streams(pc) : 1;
  if (!maxs || maxs > GW_MAX_STREAMS)
    maxs = GW_MAX_STREAMS;
  b->cs = gw_h2_session_new(1, b, maxs, gw_req_callbacks);
  if (backend) {
    /* The front door upgraded a backend connection before answering the
     * client's /grpc (so that a dead backend is an HTTP error): it joins
     * the tenant's pool. */
    struct bconn *bc = gw_bconn_new(gw, gw_tenant_key(b, NULL));
    gw_bconn_attach(bc, backend); /* idle until a stream picks it (h2_bconn.c) */
  }
  /* The client may already have sent its preface and first frames. */
  gw_bridge_take_pending(b);
  return;

fail: /* the client connection is closed; what was handed over goes too */
  if (backend)
    bufferevent_free(backend);
  if (pc)
    bg_conn_close(pc);
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

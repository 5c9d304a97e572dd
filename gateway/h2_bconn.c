/*
 * h2_bconn.c: backend connections (struct bconn), pooled per tenant.
 *
 * A stream costs a backend connection only once it opens its backend side
 * (gw_bconn_pick), so idle clients hold no backend resources.  A backend
 * connection left without streams stays GW_BCONN_IDLE_SECS for the next call:
 * its flush notices (bconn_flush_fl), so that the streams' side
 * (gw_bside_*, h2_stream.c) only submits and marks, and this file is the
 * only one that closes a backend connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/alloc.h"
#include "gateway/h2_int.h"
#include "gateway/log.h"

static struct bconn *bconns; /* every live backend connection */

static int bconn_flush_fl(struct gw_flushable *f);
static void bconn_free_fl(struct gw_flushable *f);
static const struct gw_flush_ops bconn_flush_ops = {.rank = 1, .flush = bconn_flush_fl, .free = bconn_free_fl};

/* Close a backend connection politely: what its streams queued last (an
 * END_STREAM, a RST_STREAM) and then GOAWAY go out with the last flush, then
 * the connection closes.  Not nghttp2_session_terminate_session: from that
 * call on nghttp2 sends nothing but the GOAWAY, and a session client's
 * hang-up would reach the backend only as a closed connection. */
void gw_bconn_close(struct bconn *bc)
{
  if (bc->ready && !bc->dead)
    nghttp2_submit_goaway(bc->bs, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
  bc->closed = 1;
  bc->dead = 1;
  gw_bconn_mark(bc);
}

static void bconn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
  struct bconn *bc = arg;
  (void)fd;
  (void)what;
  if (bc->n_streams == 0)
    gw_bconn_close(bc);
}

/* A backend connection has no stream left: keep it for GW_BCONN_IDLE_SECS (the
 * next call needs no connect and no /grpc upgrade; closing at once would
 * churn connections whenever a busy tenant's streams all end together).
 * A private or closing one closes now. */
static void bconn_idle(struct bconn *bc)
{
  if (bc->closed || !bc->key) {
    gw_bconn_close(bc);
    return;
  }
  struct timeval tv = {GW_BCONN_IDLE_SECS, 0};
  event_add(&bc->idle_ev, &tv);
}

struct bconn *gw_bconn_new(struct gw *gw, const char *key)
{
  /* Nothing here can fail: out of memory aborts (alloc.h). */
  struct bconn *bc = gw_calloc(1, sizeof *bc);
  bc->gw = gw;
  bc->sock.fd = -1;
  bc->key = key ? gw_strdup(key) : NULL;
  bc->bs = gw_h2_session_new(0, bc, GW_MAX_STREAMS, gw_resp_callbacks);
  evtimer_assign(&bc->idle_ev, gw->base, bconn_idle_cb, bc);
  bc->fl.ops = &bconn_flush_ops;
  bc->next = bconns;
  if (bconns)
    bconns->prev = bc;
  bconns = bc;
  return bc;
}

/* The backend connection failed or closed: every stream on it ends with
 * UNAVAILABLE naming the backend.  The bridges stay; their next streams
 * dial a new backend connection. */
void gw_bconn_lost(struct bconn *bc, const char *why)
{
  if (bc->dead)
    return;
  if (!bc->err[0])
    snprintf(bc->err, sizeof bc->err, "%s", why);
  LOG_WARN("%s", why);
  bc->closed = 1;
  bc->dead = 1;
  bc->ready = 0;
  gw_bconn_mark(bc);
  while (bc->streams) {
    struct bstream *s = bc->streams;
    struct bridge *b = s->b;
    if (!gw_stream_moot(s))
      gw_stream_fail(s, BG_GRPC_UNAVAILABLE, bc->err);
    s->bst = GW_B_CLOSED;
    gw_bside_detach(s);
    gw_bridge_mark(b);
    b->side->backend_lost(s);
    gw_stream_maybe_free(s);
  }
}

static void bconn_free(struct bconn *bc)
{
  while (bc->streams) { /* only at exit: bridges are gone first otherwise */
    bc->streams->bst = GW_B_CLOSED;
    gw_bside_detach(bc->streams);
  }
  /* Last, as detaching marks it again. */
  gw_flush_forget(&bc->fl);
  if (bc->dial)
    gw_dial_cancel(bc->dial);
  if (bc->owner)
    bc->owner->own = NULL;
  event_del(&bc->idle_ev);
  if (bc->bs)
    nghttp2_session_del(bc->bs);
  gw_sock_close(&bc->sock);
  if (bc->prev)
    bc->prev->next = bc->next;
  else
    bconns = bc->next;
  if (bc->next)
    bc->next->prev = bc->prev;
  free(bc->key);
  free(bc);
}

static void bconn_flush(struct bconn *bc)
{
  /* A closing backend connection still gets this last write: the END_STREAM or
   * RST_STREAM its last streams queued. */
  if (!bc->ready)
    return;
  int rv = gw_h2_send(bc->bs, &bc->sock);
  char why[600];
  if (rv == 0 && gw_h2_more(bc->bs, &bc->sock))
    gw_bconn_mark(bc);
  if (rv < 0) {
    snprintf(why, sizeof why, "backend %s HTTP/2 error: %s", bc->gw->backend.text, nghttp2_strerror(rv));
    gw_bconn_lost(bc, why);
  } else if (bc->sock.failed) {
    snprintf(why, sizeof why, "backend %s connection failed: %s", bc->gw->backend.text, strerror(bc->sock.err));
    gw_bconn_lost(bc, why);
  } else if (!nghttp2_session_want_read(bc->bs) && !nghttp2_session_want_write(bc->bs)) {
    bc->closed = 1; /* both sides said GOAWAY and nothing is left */
    if (bc->n_streams == 0)
      bc->dead = 1;
  }
}

static void bconn_bytes(struct bconn *bc, const uint8_t *p, size_t n)
{
  ssize_t rv = nghttp2_session_mem_recv(bc->bs, p, n);
  if (rv < 0) {
    char why[300];
    snprintf(why, sizeof why, "backend %s HTTP/2 error: %s", bc->gw->backend.text, nghttp2_strerror((int)rv));
    gw_bconn_lost(bc, why);
  }
}


static int bconn_go(void *arg)
{
  return !((struct bconn *)arg)->dead;
}

static void bconn_take(void *arg, const uint8_t *p, size_t n)
{
  bconn_bytes(arg, p, n);
}

static void bconn_cb(void *arg, short what)
{
  struct bconn *bc = arg;
  int err;
  gw_bconn_mark(bc);
  if ((what & EV_READ) && gw_sock_pull(&bc->sock, bconn_go, bconn_take, bc, &err)) {
    char why[300];
    snprintf(why, sizeof why, "backend %s closed the connection%s%s", bc->gw->backend.text, err ? ": " : "",
             err ? strerror(err) : "");
    gw_bconn_lost(bc, why);
  }
}

/* The backend connection is up (dialled, or upgraded by the front door). */
void gw_bconn_attach(struct bconn *bc, struct bufferevent *bev)
{
  struct evbuffer *pending;
  if (gw_sock_from_bev(&bc->sock, bc->gw->base, bev, bconn_cb, bc, &pending) != 0) {
    gw_bconn_lost(bc, "cannot take over the backend connection (no file descriptor left)");
    return;
  }
  bc->ready = 1;
  gw_sock_read(&bc->sock, 1);
  gw_bconn_mark(bc);
  /* Bytes the engine sent right behind its 101. */
  if (evbuffer_get_length(pending) > 0)
    bconn_bytes(bc, evbuffer_pullup(pending, -1), evbuffer_get_length(pending));
  evbuffer_free(pending);
}

static void bconn_dial_done(void *arg, struct bufferevent *bev, const char *err)
{
  struct bconn *bc = arg;
  bc->dial = NULL;
  if (!bev)
    gw_bconn_lost(bc, err);
  else
    gw_bconn_attach(bc, bev);
}

static struct bconn *bconn_dial(struct gw *gw, const char *key)
{
  struct bconn *bc = gw_bconn_new(gw, key);
  bc->dial = gw_dial_backend(gw, "/grpc", NULL, bconn_dial_done, bc);
  return bc;
}

/* Pool key: the tenant the call runs as (a native connection may name a
 * tenant per call with a bearer token), else the connection's. */
const char *gw_tenant_key(const struct bridge *b, const struct bstream *s)
{
  const char *t = s && s->call ? bg_call_tenant(s->call) : NULL;
  if (!t || !*t)
    t = b->pc ? bg_conn_tenant(b->pc) : NULL;
  return t ? t : "";
}

static struct bconn *bconn_find(const char *key)
{
  for (struct bconn *bc = bconns; bc; bc = bc->next)
    if (bc->key && !bc->closed && !bc->dead && bc->n_streams < GW_BCONN_MAX_STREAMS && strcmp(bc->key, key) == 0)
      return bc;
  return NULL;
}

/* The backend connection a new stream |s| of |b| goes to. */
struct bconn *gw_bconn_pick(struct bridge *b, const struct bstream *s)
{
  const char *key = gw_tenant_key(b, s);
  struct bconn *bc = bconn_find(key);
  return bc ? bc : bconn_dial(b->gw, key);
}

int gw_bridge_pool_ready(const struct bg_conn *pc)
{
  const char *t = pc ? bg_conn_tenant(pc) : NULL;
  struct bconn *bc = bconn_find(t ? t : "");
  return bc && bc->ready;
}


static int bconn_flush_fl(struct gw_flushable *f)
{
  struct bconn *bc = (struct bconn *)((char *)f - offsetof(struct bconn, fl));
  /* Its last stream went (gw_bside_detach marked it), or it came up with
   * none (a /grpc the front door upgraded). */
  if (bc->n_streams == 0 && !bc->dead && !evtimer_pending(&bc->idle_ev, NULL))
    bconn_idle(bc);
  bconn_flush(bc);
  return bc->dead;
}

static void bconn_free_fl(struct gw_flushable *f)
{
  bconn_free((struct bconn *)((char *)f - offsetof(struct bconn, fl)));
}

/* At exit, after every bridge is gone. */
void gw_bconn_free_all(void)
{
  while (bconns)
    bconn_free(bconns);
}

/*
 * splice.c: a Docker-style /session passed through to a Docker engine.
 *
 * After both 101s the two sockets carry one nested HTTP/2 connection whose
 * client is the daemon, so the gateway just moves bytes.  Backpressure is the
 * libevent pattern: stop reading a side while the other side's output holds
 * GW_OUT_HIGH bytes, resume when it drains to half.
 */
#include <stdlib.h>

#include "gateway/gw.h"
#include "gateway/log.h"

struct splice {
  struct gw_conn link;
  struct gw *gw;
  struct bufferevent *c, *b;
  struct gw_peer *peer;
  struct bg_conn *pc;
  struct bg_call *call;
  uint64_t id;
  uint64_t from_client, from_backend;
  int status;
  const char *why;
};

static void splice_free(struct splice *s)
{
  gw_call_end(s->gw, s->call, s->status, s->why, s->from_client, s->from_backend);
  LOG_DBG("conn %llu: session closed (%s)", (unsigned long long)s->id, s->why);
  if (s->c)
    bufferevent_free(s->c);
  if (s->b)
    bufferevent_free(s->b);
  bg_conn_close(s->pc);
  gw_peer_free(s->peer);
  gw_conn_unlink(s->gw, &s->link);
  free(s);
}

static void move(struct splice *s, struct bufferevent *from, struct bufferevent *to, uint64_t *count)
{
  struct evbuffer *in = bufferevent_get_input(from), *out = bufferevent_get_output(to);
  *count += evbuffer_get_length(in);
  evbuffer_add_buffer(out, in);
  if (evbuffer_get_length(out) >= GW_OUT_HIGH)
    bufferevent_disable(from, EV_READ);
}

static void readcb(struct bufferevent *bev, void *arg)
{
  struct splice *s = arg;
  struct bufferevent *to = bev == s->c ? s->b : s->c;
  if (evbuffer_get_length(bufferevent_get_output(to)) < GW_OUT_HIGH)
    gw_read_pending(bev, GW_READ_MORE);
  if (bev == s->c)
    move(s, s->c, s->b, &s->from_client);
  else
    move(s, s->b, s->c, &s->from_backend);
}

static void writecb(struct bufferevent *bev, void *arg)
{
  struct splice *s = arg;
  struct bufferevent *other = bev == s->c ? s->b : s->c;
  /* Output drained below the low mark: let the other side read again. */
  bufferevent_enable(other, EV_READ);
}

static void eventcb(struct bufferevent *bev, short what, void *arg)
{
  struct splice *s = arg;
  if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
    return;
  /* Deliver what is still buffered toward the survivor, then close both:
   * the nested HTTP/2 connection cannot outlive either end. */
  struct bufferevent *other = bev == s->c ? s->b : s->c;
  readcb(bev, s);
  s->status = 0;
  s->why = bev == s->c ? "client closed the session" : "backend closed the session";
  if (other && evbuffer_get_length(bufferevent_get_output(other)) > 0) {
    int fd = bufferevent_getfd(other);
    evbuffer_write(bufferevent_get_output(other), fd);
  }
  splice_free(s);
}

static void splice_destroy(struct gw_conn *c)
{
  struct splice *s = (struct splice *)c;
  s->status = BG_GRPC_UNAVAILABLE;
  s->why = "gateway shutting down";
  splice_free(s);
}

static void splice_shutdown(struct gw_conn *c)
{
  /* Sessions live as long as the builds that use them; the drain timer ends them. */
  (void)c;
}

void gw_splice_start(struct gw *gw, struct bufferevent *client, struct bufferevent *backend, struct gw_peer *peer,
                     struct bg_conn *pc, struct bg_call *call, uint64_t conn_id)
{
  struct splice *s = calloc(1, sizeof *s);
  if (!s) {
    gw_call_end(gw, call, BG_GRPC_RESOURCE_EXHAUSTED, "out of memory", 0, 0);
    bufferevent_free(client);
    bufferevent_free(backend);
    bg_conn_close(pc);
    gw_peer_free(peer);
    return;
  }
  s->gw = gw;
  s->c = client;
  s->b = backend;
  s->peer = peer;
  s->pc = pc;
  s->call = call;
  s->id = conn_id;
  s->why = "";
  s->link.shutdown = splice_shutdown;
  s->link.destroy = splice_destroy;
  gw_conn_link(gw, &s->link);
  bufferevent_setcb(client, readcb, writecb, eventcb, s);
  bufferevent_setcb(backend, readcb, writecb, eventcb, s);
  bufferevent_setwatermark(client, EV_WRITE, GW_OUT_HIGH / 2, 0);
  bufferevent_setwatermark(backend, EV_WRITE, GW_OUT_HIGH / 2, 0);
  bufferevent_set_timeouts(client, NULL, NULL);
  bufferevent_enable(client, EV_READ | EV_WRITE);
  bufferevent_enable(backend, EV_READ | EV_WRITE);
  /* The daemon's HTTP/2 preface may have arrived together with its 101. */
  if (evbuffer_get_length(bufferevent_get_input(backend)) > 0)
    move(s, backend, client, &s->from_backend);
  if (evbuffer_get_length(bufferevent_get_input(client)) > 0)
    move(s, client, backend, &s->from_client);
}

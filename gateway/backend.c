/*
 * backend.c: connecting to the backend.
 *
 * A gRPC backend (buildkitd, or another buildgate) is a plain stream socket
 * on which we speak HTTP/2 with prior knowledge.  A Docker engine first needs
 * an HTTP/1.1 upgrade (POST /grpc or POST /session with Upgrade: h2c); its
 * 101 answer is checked here so the caller only ever gets a socket that is
 * ready for HTTP/2 (or for the raw session stream).
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "gateway/alloc.h"
#include "gateway/gw.h"
#include "gateway/log.h"

struct gw_dial {
  struct gw *gw;
  struct bufferevent *bev;
  char *upgrade_path; /* NULL: no HTTP upgrade */
  char *extra_head;
  gw_dial_cb cb;
  void *arg;
  char err[512]; /* an immediate failure, reported from the loop */
  struct event *later;
};

static void dial_finish(struct gw_dial *d, const char *err_in)
{
  char errbuf[512];
  const char *err = NULL;
  if (err_in) { /* may point into d, which is freed below */
    snprintf(errbuf, sizeof errbuf, "%s", err_in);
    err = errbuf;
  }
  struct bufferevent *bev = d->bev;
  gw_dial_cb cb = d->cb;
  void *arg = d->arg;
  d->bev = NULL;
  if (err && bev) {
    bufferevent_free(bev);
    bev = NULL;
  }
  if (bev) {
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    bufferevent_set_timeouts(bev, NULL, NULL);
  }
  free(d->upgrade_path);
  free(d->extra_head);
  free(d);
  cb(arg, bev, err);
}

static void dial_later_cb(evutil_socket_t fd, short what, void *arg)
{
  struct gw_dial *d = arg;
  event_free(d->later);
  d->later = NULL;
  dial_finish(d, d->err);
}

/* Failures found before we ever return to the loop are delivered from the
 * loop too, so a caller never sees its callback run inside gw_dial_backend(). */
static struct gw_dial *dial_fail_later(struct gw_dial *d, const char *fmt, const char *detail)
{
  snprintf(d->err, sizeof d->err, fmt, d->gw->backend.text, detail);
  if (d->bev) {
    bufferevent_free(d->bev);
    d->bev = NULL;
  }
  d->later = evtimer_new(d->gw->base, dial_later_cb, d);
  struct timeval zero = {0, 0};
  if (!d->later || evtimer_add(d->later, &zero) != 0) {
    if (d->later)
      event_free(d->later);
    free(d->upgrade_path);
    free(d->extra_head);
    free(d);
    return NULL;
  }
  return d;
}

static void dial_fail(struct gw_dial *d, const char *fmt, const char *detail)
{
  char msg[512];
  snprintf(msg, sizeof msg, fmt, d->gw->backend.text, detail);
  dial_finish(d, msg);
}

/* Reads the engine's answer to the upgrade request. */
static void dial_readcb(struct bufferevent *bev, void *arg)
{
  struct gw_dial *d = arg;
  struct evbuffer *in = bufferevent_get_input(bev);
  struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
  if (end.pos < 0) {
    if (evbuffer_get_length(in) > GW_MAX_HEAD)
      dial_fail(d, "backend %s: upgrade answer too large%s", "");
    return;
  }
  size_t headlen = (size_t)end.pos + 4;
  char *head = gw_malloc(headlen + 1);
  evbuffer_remove(in, head, headlen);
  head[headlen] = '\0';
  int status = 0;
  if (sscanf(head, "HTTP/1.%*d %d", &status) != 1 || status != 101) {
    /* Keep the engine's own words: it says e.g. "session X already exists". */
    char detail[300];
    char *eol = strstr(head, "\r\n");
    if (eol)
      *eol = '\0';
    char body[200] = "";
    size_t bl = evbuffer_get_length(in);
    if (bl > sizeof body - 1)
      bl = sizeof body - 1;
    evbuffer_copyout(in, body, bl);
    body[bl] = '\0';
    for (char *p = body; *p; p++)
      if (*p == '\r' || *p == '\n')
        *p = ' ';
    snprintf(detail, sizeof detail, "%s %s", head, body);
    free(head);
    dial_fail(d, "backend %s refused the upgrade: %s", detail);
    return;
  }
  free(head);
  dial_finish(d, NULL);
}

static void dial_eventcb(struct bufferevent *bev, short what, void *arg)
{
  struct gw_dial *d = arg;
  if (what & BEV_EVENT_CONNECTED) {
    if (!d->upgrade_path) {
      dial_finish(d, NULL);
      return;
    }
    /* Same request the Docker CLI sends for a hijacked upgrade. */
    struct evbuffer *out = bufferevent_get_output(bev);
    evbuffer_add_printf(out,
                        "POST %s HTTP/1.1\r\nHost: buildgate\r\nUser-Agent: buildgate\r\n"
                        "Content-Length: 0\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n%s\r\n",
                        d->upgrade_path, d->extra_head ? d->extra_head : "");
    bufferevent_setcb(bev, dial_readcb, NULL, dial_eventcb, d);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    return;
  }
  if (what & BEV_EVENT_TIMEOUT) {
    dial_fail(d, "backend %s could not be reached: %s", "timed out");
    return;
  }
  int err = EVUTIL_SOCKET_ERROR();
  if (what & BEV_EVENT_EOF)
    dial_fail(d, "backend %s closed the connection during the upgrade%s", "");
  else
    dial_fail(d, "backend %s could not be reached: %s", err ? strerror(err) : "connection failed");
}

struct gw_dial *gw_dial_backend(struct gw *gw, const char *upgrade_path, const char *extra_head, gw_dial_cb cb,
                                void *arg)
{
  struct gw_dial *d = gw_calloc(1, sizeof *d);
  d->gw = gw;
  d->cb = cb;
  d->arg = arg;
  if (gw->backend_kind == BACKEND_DOCKER && upgrade_path) {
    d->upgrade_path = gw_strdup(upgrade_path);
    d->extra_head = extra_head ? gw_strdup(extra_head) : NULL;
  }
  d->bev = bufferevent_socket_new(gw->base, -1, BEV_OPT_CLOSE_ON_FREE); /* fails only for memory (alloc.h) */
  struct timeval tv = {GW_BACKEND_CONNECT_SECS, 0};
  bufferevent_set_timeouts(d->bev, &tv, &tv);
  bufferevent_setcb(d->bev, NULL, NULL, dial_eventcb, d);
  int rc;
  if (gw->backend.is_unix) {
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", gw->backend.path);
    rc = bufferevent_socket_connect(d->bev, (struct sockaddr *)&sun, sizeof sun);
  } else {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int gai = getaddrinfo(gw->backend.host, gw->backend.port, &hints, &ai);
    if (gai != 0) {
      return dial_fail_later(d, "backend %s could not be resolved: %s", gai_strerror(gai));
    }
    rc = bufferevent_socket_connect(d->bev, ai->ai_addr, (int)ai->ai_addrlen);
    freeaddrinfo(ai);
  }
  /* libevent reports a connect() that failed at once (ENOENT, ECONNREFUSED)
   * through the deferred event callback; -1 means no socket could be made. */
  if (rc != 0)
    return dial_fail_later(d, "backend %s could not be reached: %s", strerror(errno ? errno : EMFILE));
  return d;
}

void gw_dial_cancel(struct gw_dial *d)
{
  if (!d)
    return;
  if (d->bev)
    bufferevent_free(d->bev);
  if (d->later)
    event_free(d->later);
  free(d->upgrade_path);
  free(d->extra_head);
  free(d);
}

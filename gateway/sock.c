/*
 * sock.c: see sock.h for why the bridge does its own socket I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "gateway/gw.h"
#include "gateway/sock.h"

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
  struct gw_sock *s = arg;
  (void)fd;
  (void)what;
  s->cb(s->arg, EV_READ);
}

int gw_evbuffer_write_all(struct evbuffer *buf, int fd)
{
  while (evbuffer_get_length(buf) > 0) {
    int n = evbuffer_write(buf, fd);
    if (n > 0 || (n < 0 && errno == EINTR))
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return 0;
    if (n == 0) /* nothing taken with bytes to give: never spin on it */
      errno = EPIPE;
    return -1;
  }
  return 1;
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
  struct gw_sock *s = arg;
  (void)what;
  int r = gw_evbuffer_write_all(s->out, fd);
  if (r == 0)
    return; /* still full: stay armed */
  if (r < 0) {
    s->failed = 1;
    s->err = errno;
    evbuffer_drain(s->out, evbuffer_get_length(s->out));
  }
  event_del(&s->wev);
  s->cb(s->arg, EV_WRITE);
}

int gw_sock_from_bev(struct gw_sock *s, struct event_base *base, struct bufferevent *bev, gw_sock_cb cb, void *arg,
                     struct evbuffer **pending)
{
  *pending = NULL;
  s->fd = -1;
  s->out = evbuffer_new();
  struct evbuffer *in = evbuffer_new();
  /* A duplicate keeps the socket open when the bufferevent closes its own
   * descriptor; both share one open file (and its O_NONBLOCK). */
  int fd = fcntl(bufferevent_getfd(bev), F_DUPFD_CLOEXEC, 0);
  if (!s->out || !in || fd < 0)
    goto fail;
  /* Whatever the previous owner read or queued stays in order: input
   * first for the new owner, output (a 101, say) still to be written.
   * A bufferevent keeps the start of its output frozen outside its own
   * writes; moving the bytes out needs it thawed. */
  evbuffer_unfreeze(bufferevent_get_output(bev), 1);
  if (evbuffer_add_buffer(in, bufferevent_get_input(bev)) != 0 ||
      evbuffer_add_buffer(s->out, bufferevent_get_output(bev)) != 0)
    goto fail;
  bufferevent_free(bev);
  s->fd = fd;
  s->err = 0;
  s->reading = 0;
  s->failed = 0;
  s->cb = cb;
  s->arg = arg;
  event_assign(&s->rev, base, fd, EV_READ | EV_PERSIST, on_readable, s);
  event_assign(&s->wev, base, fd, EV_WRITE | EV_PERSIST, on_writable, s);
  if (evbuffer_get_length(s->out) > 0)
    event_add(&s->wev, NULL);
  *pending = in;
  return 0;

fail:
  if (fd >= 0)
    close(fd);
  if (in)
    evbuffer_free(in);
  if (s->out)
    evbuffer_free(s->out);
  s->out = NULL;
  bufferevent_free(bev);
  return -1;
}

void gw_sock_close(struct gw_sock *s)
{
  if (s->fd < 0)
    return;
  event_del(&s->rev);
  event_del(&s->wev);
  close(s->fd);
  s->fd = -1;
  s->reading = 0;
  evbuffer_free(s->out);
  s->out = NULL;
}

void gw_sock_read(struct gw_sock *s, int on)
{
  if (s->fd < 0 || !on == !s->reading)
    return;
  s->reading = on ? 1 : 0;
  if (on)
    event_add(&s->rev, NULL);
  else
    event_del(&s->rev);
}

ssize_t gw_sock_recv(struct gw_sock *s, uint8_t *buf, size_t cap)
{
  for (;;) {
    ssize_t n = read(s->fd, buf, cap);
    if (n >= 0)
      return n;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return -2;
    return -1;
  }
}

static int sock_fail(struct gw_sock *s, int err)
{
  s->failed = 1;
  s->err = err;
  return -1;
}

int gw_sock_write(struct gw_sock *s, const void *p, size_t n)
{
  if (s->failed || s->fd < 0)
    return -1;
  if (n == 0)
    return 0;
  if (evbuffer_get_length(s->out) > 0)
    return evbuffer_add(s->out, p, n) == 0 ? 0 : sock_fail(s, ENOMEM); /* EV_WRITE is armed already */
  ssize_t w;
  do
    w = write(s->fd, p, n);
  while (w < 0 && errno == EINTR);
  if (w < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return sock_fail(s, errno);
    w = 0;
  }
  if ((size_t)w == n)
    return 0;
  if (evbuffer_add(s->out, (const uint8_t *)p + w, n - (size_t)w) != 0)
    return sock_fail(s, ENOMEM);
  event_add(&s->wev, NULL);
  return 0;
}

int gw_sock_write_buf(struct gw_sock *s, struct evbuffer *buf)
{
  if (s->failed || s->fd < 0)
    return -1;
  if (evbuffer_get_length(s->out) == 0) {
    int r = gw_evbuffer_write_all(buf, s->fd);
    if (r < 0)
      return sock_fail(s, errno);
    if (r > 0)
      return 0;
    event_add(&s->wev, NULL);
  }
  return evbuffer_add_buffer(s->out, buf) == 0 ? 0 : sock_fail(s, ENOMEM);
}

size_t gw_sock_queued(const struct gw_sock *s)
{
  return s->out ? evbuffer_get_length(s->out) : 0;
}

/* One thread: every read lands here and is handed on before the next. */
static uint8_t rbuf[GW_SOCK_READ_CHUNK];

int gw_sock_pull(struct gw_sock *sk, int (*go)(void *), void (*take)(void *, const uint8_t *, size_t), void *arg,
                 int *err)
{
  size_t total = 0;
  while (total < GW_SOCK_READ_MAX && go(arg)) {
    ssize_t n = gw_sock_recv(sk, rbuf, sizeof rbuf);
    if (n == -2)
      return 0;
    if (n <= 0) {
      *err = n < 0 ? errno : 0;
      return 1;
    }
    total += (size_t)n;
    take(arg, rbuf, (size_t)n);
    if ((size_t)n < sizeof rbuf)
      return 0;
  }
  return 0;
}

/*
 * h2peer.h: a plain nghttp2 endpoint (client or server) on a non-blocking
 * socket, driven by a libevent loop, for tests that put the gateway's HTTP/2
 * engine between two of them.
 *
 * It is deliberately simple and independent of the gateway's own code: it
 * copies what it sends (no zero-copy tricks), keeps every stream (and what it
 * received) until the peer is freed so a test can inspect the outcome after
 * the stream closed, and does flow control by hand so a test can play a
 * reader that stops:
 *   - p->consume = 0: DATA is still read from the socket but not
 *     acknowledged (no WINDOW_UPDATE), so the sender's windows close;
 *     h2peer_set_consume(p, 1) acknowledges what was held and goes on;
 *   - h2peer_set_reading(p, 0): the socket is not read at all, so the
 *     kernel buffer fills and the sender's writes block.
 * Counters (st->sent, st->in) are what the other side managed to send and
 * what arrived: a test compares them to bound what sits in between.
 */
#ifndef BG_TEST_H2PEER_H
#define BG_TEST_H2PEER_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#define H2PEER_MAX_HDRS 32
#define H2PEER_OUT_HIGH (64 * 1024) /* stop serializing while this much waits for the socket */

struct h2hdrs {
  size_t n;
  char *name[H2PEER_MAX_HDRS];
  char *value[H2PEER_MAX_HDRS];
};

struct h2stream {
  struct h2stream *next;
  struct h2peer *p;
  int32_t id;
  /* What arrived. */
  struct h2hdrs hdrs;      /* request headers (server) or response headers (client) */
  struct h2hdrs trailers;  /* a second HEADERS block */
  int n_header_frames;     /* HEADERS frames received */
  int first_headers_end;   /* the first HEADERS frame carried END_STREAM */
  int n_data_frames;
  struct evbuffer *in;     /* DATA payload, in order */
  size_t unconsumed;       /* received, not yet acknowledged (p->consume == 0) */
  int ended;               /* END_STREAM received */
  int rst;                 /* RST_STREAM received ... */
  uint32_t rst_code;       /* ... with this code */
  int closed;              /* nghttp2 closed the stream ... */
  uint32_t close_code;     /* ... with this error code */
  /* What it sends. */
  struct evbuffer *out;    /* body still to send */
  int out_eof;             /* the body ends after |out| */
  int has_provider;        /* a data provider is attached (response or request submitted with a body) */
  size_t sent;             /* body bytes nghttp2 took for DATA frames (within the peer's windows) */
  struct h2hdrs send_trailers;
  int taken;               /* test bookkeeping: already handed to a test */
};

struct h2peer {
  struct h2peer *next; /* the owner's list */
  struct event_base *base;
  int fd;
  int server;
  nghttp2_session *s;
  struct event *rev, *wev;
  struct evbuffer *wbuf; /* serialized, not yet taken by the kernel */
  int reading;           /* the socket is read */
  int consume;           /* acknowledge DATA as it arrives */
  int eof;               /* the other side closed, or the socket broke */
  int failed;            /* nghttp2 reported a fatal error */
  int goaway;            /* GOAWAY received ... */
  int32_t goaway_last;   /* ... with this last-stream-id */
  uint32_t goaway_code;
  struct h2stream *streams;
};

static void h2hdrs_add(struct h2hdrs *h, const char *n, size_t nl, const char *v, size_t vl)
{
  if (h->n == H2PEER_MAX_HDRS)
    return;
  h->name[h->n] = strndup(n, nl);
  h->value[h->n] = strndup(v, vl);
  h->n++;
}

static void h2hdrs_free(struct h2hdrs *h)
{
  for (size_t i = 0; i < h->n; i++) {
    free(h->name[i]);
    free(h->value[i]);
  }
  h->n = 0;
}

/* The value of header |name|, or NULL. */
static const char *h2hdrs_get(const struct h2hdrs *h, const char *name)
{
  for (size_t i = 0; i < h->n; i++)
    if (strcmp(h->name[i], name) == 0)
      return h->value[i];
  return NULL;
}

/* nghttp2_nv array for a NULL-terminated list of name, value, name, value. */
static size_t h2nv(nghttp2_nv *nv, size_t cap, const char *const *kv)
{
  size_t n = 0;
  for (; kv && kv[0] && n < cap; kv += 2, n++)
    nv[n] = (nghttp2_nv){(uint8_t *)kv[0], (uint8_t *)kv[1], strlen(kv[0]), strlen(kv[1]), NGHTTP2_NV_FLAG_NONE};
  return n;
}

static struct h2stream *h2stream_new(struct h2peer *p, int32_t id)
{
  struct h2stream *st = calloc(1, sizeof *st);
  if (!st)
    abort();
  st->p = p;
  st->id = id;
  st->in = evbuffer_new();
  st->out = evbuffer_new();
  /* Appended: a test that looks for "the next stream" finds them in order. */
  struct h2stream **pp = &p->streams;
  while (*pp)
    pp = &(*pp)->next;
  *pp = st;
  return st;
}

/* ---- nghttp2 callbacks ---- */

static int h2p_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
  struct h2peer *p = ud;
  if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST && p->server) {
    struct h2stream *st = h2stream_new(p, f->hd.stream_id);
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
  }
  return 0;
}

static int h2p_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                      const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
  struct h2stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (!st || f->hd.type != NGHTTP2_HEADERS)
    return 0;
  struct h2hdrs *h = f->headers.cat == NGHTTP2_HCAT_HEADERS ? &st->trailers : &st->hdrs;
  h2hdrs_add(h, (const char *)name, nl, (const char *)value, vl);
  return 0;
}

static int h2p_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
  struct h2peer *p = ud;
  if (f->hd.type == NGHTTP2_GOAWAY) {
    p->goaway = 1;
    p->goaway_last = f->goaway.last_stream_id;
    p->goaway_code = f->goaway.error_code;
    return 0;
  }
  struct h2stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (!st)
    return 0;
  int end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  switch (f->hd.type) {
  case NGHTTP2_HEADERS:
    if (st->n_header_frames++ == 0)
      st->first_headers_end = end;
    break;
  case NGHTTP2_DATA:
    st->n_data_frames++;
    break;
  case NGHTTP2_RST_STREAM:
    st->rst = 1;
    st->rst_code = f->rst_stream.error_code;
    break;
  }
  if (end && (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA))
    st->ended = 1;
  return 0;
}

static int h2p_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud)
{
  struct h2peer *p = ud;
  struct h2stream *st = nghttp2_session_get_stream_user_data(s, id);
  if (!st) {
    nghttp2_session_consume(s, id, len);
    return 0;
  }
  evbuffer_add(st->in, data, len);
  if (p->consume)
    nghttp2_session_consume(s, id, len);
  else
    st->unconsumed += len;
  return 0;
}

static int h2p_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
  struct h2stream *st = nghttp2_session_get_stream_user_data(s, id);
  if (st) {
    st->closed = 1;
    st->close_code = code;
  }
  return 0;
}

static ssize_t h2p_read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                             nghttp2_data_source *src, void *ud)
{
  struct h2stream *st = src->ptr;
  size_t avail = evbuffer_get_length(st->out);
  if (avail == 0 && !st->out_eof)
    return NGHTTP2_ERR_DEFERRED;
  size_t n = avail < len ? avail : len;
  evbuffer_remove(st->out, buf, n);
  st->sent += n;
  if (st->out_eof && n == avail) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (st->send_trailers.n) {
      nghttp2_nv nv[H2PEER_MAX_HDRS];
      for (size_t i = 0; i < st->send_trailers.n; i++)
        nv[i] = (nghttp2_nv){(uint8_t *)st->send_trailers.name[i], (uint8_t *)st->send_trailers.value[i],
                             strlen(st->send_trailers.name[i]), strlen(st->send_trailers.value[i]),
                             NGHTTP2_NV_FLAG_NONE};
      if (nghttp2_submit_trailer(s, id, nv, st->send_trailers.n) == 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
  }
  return (ssize_t)n;
}

/* ---- socket I/O ---- */

static void h2peer_flush(struct h2peer *p);

static void h2p_readcb(evutil_socket_t fd, short what, void *arg)
{
  struct h2peer *p = arg;
  uint8_t buf[16384];
  while (p->reading && !p->eof && !p->failed) {
    ssize_t n = read(p->fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      break;
    if (n <= 0) {
      p->eof = 1;
      event_del(p->rev);
      break;
    }
    if (nghttp2_session_mem_recv(p->s, buf, (size_t)n) < 0)
      p->failed = 1;
  }
  h2peer_flush(p);
}

static void h2p_writecb(evutil_socket_t fd, short what, void *arg)
{
  h2peer_flush(arg);
}

/* Serialize what the session has (up to H2PEER_OUT_HIGH waiting) and write
 * what the kernel takes. */
static void h2peer_flush(struct h2peer *p)
{
  if (p->fd < 0 || p->failed)
    return;
  for (;;) {
    while (evbuffer_get_length(p->wbuf) < H2PEER_OUT_HIGH) {
      const uint8_t *data;
      ssize_t n = nghttp2_session_mem_send(p->s, &data);
      if (n < 0) {
        p->failed = 1;
        return;
      }
      if (n == 0)
        break;
      evbuffer_add(p->wbuf, data, (size_t)n);
    }
    if (evbuffer_get_length(p->wbuf) == 0)
      break;
    int n = evbuffer_write(p->wbuf, p->fd);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      p->eof = 1;
      evbuffer_drain(p->wbuf, evbuffer_get_length(p->wbuf));
      return;
    }
    if (evbuffer_get_length(p->wbuf) > 0) {
      event_add(p->wev, NULL);
      return;
    }
  }
  event_del(p->wev);
}

/* Bytes that arrived on the socket and are not read yet. */
static size_t h2peer_unread(const struct h2peer *p)
{
  int n = 0;
  if (p->fd < 0 || ioctl(p->fd, FIONREAD, &n) != 0)
    return 0;
  return (size_t)n;
}

static void h2peer_set_reading(struct h2peer *p, int on)
{
  p->reading = on;
  if (on) {
    event_add(p->rev, NULL);
    event_active(p->rev, EV_READ, 0); /* what waits in the kernel already */
  } else {
    event_del(p->rev);
  }
}

/* Turn acknowledgement back on: everything held is acknowledged now. */
static void h2peer_set_consume(struct h2peer *p, int on)
{
  p->consume = on;
  if (!on)
    return;
  for (struct h2stream *st = p->streams; st; st = st->next) {
    if (st->unconsumed)
      nghttp2_session_consume(p->s, st->id, st->unconsumed);
    st->unconsumed = 0;
  }
  h2peer_flush(p);
}

/* A peer on connected socket |fd| (taken over: closed by h2peer_free).
 * |window|: the initial stream and connection window it advertises (0:
 * the protocol default of 65535). */
static struct h2peer *h2peer_new(struct event_base *base, int fd, int server, uint32_t window)
{
  struct h2peer *p = calloc(1, sizeof *p);
  if (!p)
    abort();
  p->base = base;
  p->fd = fd;
  p->server = server;
  p->reading = 1;
  p->consume = 1;
  p->wbuf = evbuffer_new();
  evutil_make_socket_nonblocking(fd);
  nghttp2_session_callbacks *cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, h2p_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, h2p_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2p_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2p_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2p_stream_close);
  nghttp2_option *opt;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  int rv = server ? nghttp2_session_server_new2(&p->s, cb, p, opt) : nghttp2_session_client_new2(&p->s, cb, p, opt);
  nghttp2_session_callbacks_del(cb);
  nghttp2_option_del(opt);
  if (rv != 0)
    abort();
  nghttp2_settings_entry iv[2] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
                                  {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window ? window : 65535}};
  nghttp2_submit_settings(p->s, NGHTTP2_FLAG_NONE, iv, 2);
  if (window > 65535)
    nghttp2_session_set_local_window_size(p->s, NGHTTP2_FLAG_NONE, 0, (int32_t)window);
  p->rev = event_new(base, fd, EV_READ | EV_PERSIST, h2p_readcb, p);
  p->wev = event_new(base, fd, EV_WRITE, h2p_writecb, p);
  event_add(p->rev, NULL);
  h2peer_flush(p);
  return p;
}

/* Close the socket (the other side sees end of stream), keep the results. */
static void h2peer_close(struct h2peer *p)
{
  if (p->fd < 0)
    return;
  event_del(p->rev);
  event_del(p->wev);
  close(p->fd);
  p->fd = -1;
  p->eof = 1;
}

static void h2peer_free(struct h2peer *p)
{
  h2peer_close(p);
  event_free(p->rev);
  event_free(p->wev);
  nghttp2_session_del(p->s);
  while (p->streams) {
    struct h2stream *st = p->streams;
    p->streams = st->next;
    h2hdrs_free(&st->hdrs);
    h2hdrs_free(&st->trailers);
    h2hdrs_free(&st->send_trailers);
    evbuffer_free(st->in);
    evbuffer_free(st->out);
    free(st);
  }
  evbuffer_free(p->wbuf);
  free(p);
}

/* ---- what a test does ---- */

/* Client: open a stream with headers |kv| (name, value, ..., NULL) and a
 * body of which |body| is the first part; |eof|: that is all of it. */
static struct h2stream *h2peer_request(struct h2peer *p, const char *const *kv, const void *body, size_t len,
                                       int eof)
{
  nghttp2_nv nv[H2PEER_MAX_HDRS];
  size_t n = h2nv(nv, H2PEER_MAX_HDRS, kv);
  struct h2stream *st = calloc(1, sizeof *st);
  if (!st)
    abort();
  st->p = p;
  st->in = evbuffer_new();
  st->out = evbuffer_new();
  evbuffer_add(st->out, body, len);
  st->out_eof = eof;
  st->has_provider = 1;
  nghttp2_data_provider dp = {.source.ptr = st, .read_callback = h2p_read_body};
  st->id = nghttp2_submit_request(p->s, NULL, nv, n, &dp, st);
  if (st->id < 0)
    abort();
  struct h2stream **pp = &p->streams;
  while (*pp)
    pp = &(*pp)->next;
  *pp = st;
  h2peer_flush(p);
  return st;
}

/* More body for |st| (either side); |eof| ends it (with the trailers set by
 * h2stream_trailers, if any). */
static void h2stream_send(struct h2stream *st, const void *data, size_t len, int eof)
{
  evbuffer_add(st->out, data, len);
  if (eof)
    st->out_eof = 1;
  if (st->has_provider)
    nghttp2_session_resume_data(st->p->s, st->id);
  h2peer_flush(st->p);
}

static void h2stream_trailers(struct h2stream *st, const char *const *kv)
{
  for (; kv && kv[0]; kv += 2)
    h2hdrs_add(&st->send_trailers, kv[0], strlen(kv[0]), kv[1], strlen(kv[1]));
}

/* Server: answer |st| with headers |kv|.  |headers_only|: one HEADERS frame
 * with END_STREAM (a trailers-only gRPC answer); otherwise the body follows
 * from st->out (h2stream_send). */
static void h2stream_respond(struct h2stream *st, const char *const *kv, int headers_only)
{
  nghttp2_nv nv[H2PEER_MAX_HDRS];
  size_t n = h2nv(nv, H2PEER_MAX_HDRS, kv);
  nghttp2_data_provider dp = {.source.ptr = st, .read_callback = h2p_read_body};
  st->has_provider = !headers_only;
  if (nghttp2_submit_response(st->p->s, st->id, nv, n, headers_only ? NULL : &dp) != 0)
    abort();
  h2peer_flush(st->p);
}

static void h2stream_rst(struct h2stream *st, uint32_t code)
{
  nghttp2_submit_rst_stream(st->p->s, NGHTTP2_FLAG_NONE, st->id, code);
  h2peer_flush(st->p);
}

static void h2peer_goaway(struct h2peer *p, int32_t last_stream_id, uint32_t code)
{
  nghttp2_submit_goaway(p->s, NGHTTP2_FLAG_NONE, last_stream_id, code, NULL, 0);
  h2peer_flush(p);
}

/* The gRPC status a client saw: from the trailers, or from a trailers-only
 * answer; NULL if there is none (e.g. the stream was reset). */
static const char *h2stream_grpc_status(const struct h2stream *st)
{
  const char *v = h2hdrs_get(&st->trailers, "grpc-status");
  if (!v && st->first_headers_end)
    v = h2hdrs_get(&st->hdrs, "grpc-status");
  return v;
}

/* The grpc-message that came with that status (still percent-encoded), or NULL. */
static const char *h2stream_grpc_message(const struct h2stream *st)
{
  if (h2hdrs_get(&st->trailers, "grpc-status"))
    return h2hdrs_get(&st->trailers, "grpc-message");
  return st->first_headers_end ? h2hdrs_get(&st->hdrs, "grpc-message") : NULL;
}

/* How many headers named |name| arrived, and the one at index |nth| among them (NULL if none). */
static size_t h2hdrs_count(const struct h2hdrs *h, const char *name)
{
  size_t n = 0;
  for (size_t i = 0; i < h->n; i++)
    n += strcmp(h->name[i], name) == 0;
  return n;
}

static const char *h2hdrs_nth(const struct h2hdrs *h, const char *name, size_t nth)
{
  for (size_t i = 0; i < h->n; i++)
    if (strcmp(h->name[i], name) == 0 && nth-- == 0)
      return h->value[i];
  return NULL;
}

#endif

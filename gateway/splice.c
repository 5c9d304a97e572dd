/*
 * splice.c: a Docker-style /session passed through to a Docker engine.
 *
 * After both 101s the two sockets carry one nested HTTP/2 connection whose
 * client is the daemon, so the gateway only moves bytes and never looks at
 * them.  It moves them with splice(2): each direction owns a pipe, bytes go
 * source socket -> pipe -> destination socket, and they never enter user
 * space.  Compared with two bufferevents this saves the copies to and from
 * user space, libevent's 4 KiB-per-read cap and most of the epoll_ctl churn
 * (on a 256 MiB context: a quarter of the CPU time, a tenth of the syscalls).
 *
 * The sockets are driven by plain level-triggered events, one EV_READ and
 * one EV_WRITE per socket.  Backpressure is the pipe itself: it is the only
 * buffer a direction has, so at most one pipe's worth is in flight.  EV_WRITE
 * on a destination is armed only while it refused bytes (EAGAIN) that sit in
 * the pipe; EV_READ on a source is dropped while that pipe cannot take more
 * and re-armed once the destination has drained it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/alloc.h"
#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/sock.h"

/* Sides.  way[C] carries client -> backend, way[B] backend -> client. */
enum { C = 0, B = 1 };

/* Pipe size we ask for.  The default 64 KiB pipe costs a splice pair and
 * often a loop turn per 64 KiB; 256 KiB measured about 5% faster, with less
 * CPU, on a bulk context transfer (1 MiB gained nothing more).  The kernel may
 * refuse (an unprivileged user past fs.pipe-user-pages-soft): the pipe then
 * keeps the size it has, which works, only slower. */
#define SPLICE_PIPE_SIZE (256 * 1024)

/* Bytes one readiness event may move before the loop serves others: a bulk
 * upload must not starve the opposite direction or other connections. */
#define SPLICE_TURN (1024 * 1024)

/* One direction: bytes taken from side |src| on their way to the other side. */
struct way {
  int pipe_r, pipe_w;     /* the pipe's two ends, -1 once closed */
  size_t cap;             /* the pipe's capacity in bytes (F_GETPIPE_SZ) */
  size_t held;            /* spliced into the pipe, not yet out of it */
  struct evbuffer *early; /* bytes the bufferevents had already read: sent before the pipe */
  int blocked;            /* the destination refused bytes: its EV_WRITE is armed */
  uint64_t moved;         /* taken from the source, for the audit record */
};

struct splice {
  struct gw_conn link;
  struct gw *gw;
  int fd[2];                /* the two sockets, ours since start; -1 once closed */
  struct event *rd[2], *wr[2];
  int reading[2];           /* rd[i] is armed */
  struct way way[2];
  struct bg_conn *pc;
  struct bg_call *call;
  uint64_t id;
  int status;
  const char *why;
};

static void splice_free(struct splice *s)
{
  gw_call_end(s->gw, s->call, s->status, s->why, s->way[C].moved, s->way[B].moved);
  LOG_DBG("conn %llu: session closed (%s), %llu bytes from client, %llu from backend", (unsigned long long)s->id,
          s->why, (unsigned long long)s->way[C].moved, (unsigned long long)s->way[B].moved);
  for (int i = 0; i < 2; i++) {
    /* event_free also deletes, so a pending event never fires on a closed fd. */
    if (s->rd[i])
      event_free(s->rd[i]);
    if (s->wr[i])
      event_free(s->wr[i]);
    if (s->fd[i] >= 0)
      close(s->fd[i]);
    if (s->way[i].pipe_r >= 0)
      close(s->way[i].pipe_r);
    if (s->way[i].pipe_w >= 0)
      close(s->way[i].pipe_w);
    if (s->way[i].early)
      evbuffer_free(s->way[i].early);
  }
  bg_conn_close(s->pc);
  gw_conn_unlink(s->gw, &s->link); /* frees the peer */
  free(s);
}

static void set_reading(struct splice *s, int side, int on)
{
  if (s->reading[side] == on)
    return;
  s->reading[side] = on;
  if (on)
    event_add(s->rd[side], NULL);
  else
    event_del(s->rd[side]);
}

static void set_blocked(struct splice *s, int src, int on)
{
  if (s->way[src].blocked == on)
    return;
  s->way[src].blocked = on;
  if (on)
    event_add(s->wr[!src], NULL);
  else
    event_del(s->wr[!src]);
}

/* Push |w|'s bytes into |fd|: the early bytes first, then the pipe.
 * 1: all gone; 0: the socket is full (EAGAIN); -1: it failed (errno). */
static int flush(struct way *w, int fd)
{
  if (w->early) {
    int r = gw_evbuffer_write_all(w->early, fd);
    if (r <= 0)
      return r;
  }
  while (w->held > 0) {
    ssize_t n = splice(w->pipe_r, NULL, fd, NULL, w->held, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
    if (n > 0) {
      w->held -= (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return 0;
    /* 0 with bytes in the pipe cannot happen on a socket; never spin on it. */
    if (n == 0)
      errno = EIO;
    return -1;
  }
  return 1;
}

/* Side |gone| reached EOF or failed (err 0: EOF).  What it already sent goes
 * to the survivor if the survivor takes it right now (no waiting: a stuck
 * peer must not hold the session open), then both close, because the nested
 * HTTP/2 connection cannot outlive either end. */
static void end(struct splice *s, int gone, int err)
{
  if (err)
    LOG_DBG("conn %llu: session %s: %s", (unsigned long long)s->id, gone == C ? "client" : "backend", strerror(err));
  flush(&s->way[gone], s->fd[!gone]);
  s->status = 0;
  s->why = gone == C ? "client closed the session" : "backend closed the session";
  splice_free(s);
}

/* Take what side |src| has into its pipe and on toward the other side, until
 * the source runs dry, the pipe is full or this turn's budget is spent.
 * May free the session. */
static void pull(struct splice *s, int src)
{
  struct way *w = &s->way[src];
  int dst = !src;
  size_t budget = SPLICE_TURN;
  int dry = 0;
  while (budget > 0 && w->held < w->cap) {
    ssize_t n = splice(s->fd[src], NULL, w->pipe_w, NULL, w->cap - w->held, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
    if (n == 0) {
      end(s, src, 0);
      return;
    }
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN) {
        dry = 1;
        break;
      }
      end(s, src, errno);
      return;
    }
    w->held += (size_t)n;
    w->moved += (uint64_t)n;
    budget -= (size_t)n < budget ? (size_t)n : budget;
    if (!w->blocked) {
      int r = flush(w, s->fd[dst]);
      if (r < 0) {
        end(s, dst, errno);
        return;
      }
      if (r == 0)
        set_blocked(s, src, 1);
    }
  }
  /* Stop reading while the pipe is full.  EAGAIN with bytes waiting in the
   * pipe is ambiguous: the socket may be dry, or the pipe may be out of slots
   * (the kernel counts pages, not bytes, and small segments fill slots
   * early); a level-triggered read would then spin.  Either way nothing can
   * move until the destination drains the pipe, which re-arms the read. */
  if (w->blocked && w->held > 0 && (dry || w->held >= w->cap))
    set_reading(s, src, 0);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
  struct splice *s = arg;
  pull(s, fd == s->fd[C] ? C : B);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
  struct splice *s = arg;
  int dst = fd == s->fd[C] ? C : B, src = !dst;
  int r = flush(&s->way[src], fd);
  if (r < 0) {
    end(s, dst, errno);
    return;
  }
  if (r == 0)
    return;
  set_blocked(s, src, 0);
  if (!s->reading[src]) {
    /* The source stopped while the pipe was full, so it very likely has
     * bytes waiting: take them now rather than after another epoll turn. */
    set_reading(s, src, 1);
    pull(s, src);
  }
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

/* Move |from|'s bytes to the end of *to (created on first use). */
static int keep_early(struct evbuffer **to, struct evbuffer *from)
{
  if (evbuffer_get_length(from) == 0)
    return 0;
  if (!*to && !(*to = evbuffer_new()))
    return -1;
  return evbuffer_add_buffer(*to, from);
}

/* Take the socket away from |bev|, which the caller then empties and frees.
 * Returns the fd, now ours to close. */
static int adopt(struct bufferevent *bev)
{
  int fd = bufferevent_getfd(bev);
  bufferevent_disable(bev, EV_READ | EV_WRITE);
  bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
  /* With the fd set to -1 the bufferevent forgets the socket: freeing it
   * (BEV_OPT_CLOSE_ON_FREE) closes nothing, and its events are deleted. */
  bufferevent_setfd(bev, -1);
  return fd;
}

static int make_pipe(struct way *w)
{
  int p[2];
  if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
    return -1;
  w->pipe_r = p[0];
  w->pipe_w = p[1];
  /* Best effort: a refused size leaves the default, which works too. */
  fcntl(p[1], F_SETPIPE_SZ, SPLICE_PIPE_SIZE);
  int sz = fcntl(p[1], F_GETPIPE_SZ);
  w->cap = sz > 0 ? (size_t)sz : 65536;
  return 0;
}

void gw_splice_start(struct gw *gw, struct bufferevent *client, struct bufferevent *backend, struct gw_peer *peer,
                     struct bg_conn *pc, struct bg_call *call, uint64_t conn_id)
{
  struct splice *s = gw_calloc(1, sizeof *s);
  s->gw = gw;
  s->pc = pc;
  s->call = call;
  s->id = conn_id;
  s->why = "";
  s->link.shutdown = splice_shutdown;
  s->link.destroy = splice_destroy;
  for (int i = 0; i < 2; i++)
    s->way[i].pipe_r = s->way[i].pipe_w = -1;
  gw_conn_link(gw, &s->link, peer);

  s->fd[C] = adopt(client);
  s->fd[B] = adopt(backend);
  /* Bytes the bufferevents hold go out first, in order: toward the client
   * our 101 (queued by the front door), then whatever dockerd sent with its
   * own 101 (its HTTP/2 preface); toward the backend, anything unsent of the
   * upgrade request, then what the client sent after its request head.
   * A socket bufferevent keeps its output frozen at the start (only its own
   * write callback drains it); this is the last reader, so thaw it. */
  evbuffer_unfreeze(bufferevent_get_output(client), 1);
  evbuffer_unfreeze(bufferevent_get_output(backend), 1);
  /* Counted once the session runs: a session that never starts moved nothing. */
  size_t early_c = evbuffer_get_length(bufferevent_get_input(client));
  size_t early_b = evbuffer_get_length(bufferevent_get_input(backend));
  int kept = keep_early(&s->way[B].early, bufferevent_get_output(client)) == 0 &&
             keep_early(&s->way[B].early, bufferevent_get_input(backend)) == 0 &&
             keep_early(&s->way[C].early, bufferevent_get_output(backend)) == 0 &&
             keep_early(&s->way[C].early, bufferevent_get_input(client)) == 0;
  bufferevent_free(client);
  bufferevent_free(backend);
  if (!kept || s->fd[C] < 0 || s->fd[B] < 0) {
    s->status = BG_GRPC_RESOURCE_EXHAUSTED;
    s->why = "out of memory";
    splice_free(s);
    return;
  }

  if (make_pipe(&s->way[C]) != 0 || make_pipe(&s->way[B]) != 0) {
    int err = errno;
    LOG_WARN("conn %llu: session not started: cannot create a pipe: %s", (unsigned long long)conn_id, strerror(err));
    s->status = BG_GRPC_RESOURCE_EXHAUSTED;
    s->why = err == EMFILE || err == ENFILE ? "gateway out of file descriptors" : "gateway cannot create a pipe";
    splice_free(s);
    return;
  }

  for (int i = 0; i < 2; i++) {
    /* splice() on a socket blocks unless the socket itself is non-blocking
     * (SPLICE_F_NONBLOCK covers only the pipe).  libevent made both so;
     * make sure, as one blocking splice would stall the whole gateway. */
    int fl = fcntl(s->fd[i], F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK))
      fcntl(s->fd[i], F_SETFL, fl | O_NONBLOCK);
    s->rd[i] = event_new(gw->base, s->fd[i], EV_READ | EV_PERSIST, on_read, s);
    s->wr[i] = event_new(gw->base, s->fd[i], EV_WRITE | EV_PERSIST, on_write, s);
    if (!s->rd[i] || !s->wr[i]) {
      s->status = BG_GRPC_RESOURCE_EXHAUSTED;
      s->why = "out of memory";
      splice_free(s);
      return;
    }
  }
  s->way[C].moved = early_c;
  s->way[B].moved = early_b;
  for (int i = 0; i < 2; i++) {
    set_reading(s, i, 1);
    /* Early bytes make the destination "blocked" until they are out, so the
     * pipe waits behind them; the write event sends them on the next turn. */
    if (s->way[i].early && evbuffer_get_length(s->way[i].early) > 0)
      set_blocked(s, i, 1);
  }
  LOG_DBG("conn %llu: session spliced (pipes of %zu/%zu bytes)", (unsigned long long)conn_id, s->way[C].cap,
          s->way[B].cap);
}

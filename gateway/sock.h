/*
 * sock.h: a non-blocking socket driven straight from the event loop.
 *
 * The HTTP/2 bridge used libevent bufferevents at first.  For a proxy whose
 * unit of work is a 200-byte gRPC call they cost more than the call itself:
 * an ioctl(FIONREAD) before every read, at most 4 KiB per read, every write
 * deferred to the next loop turn behind an epoll_ctl that arms EV_WRITE and
 * another that disarms it, and a copy into the input buffer before nghttp2
 * gets the bytes.  A gw_sock reads into one loop-wide buffer that is handed
 * to the owner at once, writes as soon as there is something to write, and
 * keeps bytes (and arms EV_WRITE) only when the kernel would block.
 */
#ifndef BG_GW_SOCK_H
#define BG_GW_SOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>

/* |what| is EV_READ when the socket is readable (the owner then calls
 * gw_sock_recv until it says to stop) or EV_WRITE when everything queued
 * has gone out after the kernel had pushed back. */
typedef void (*gw_sock_cb)(void *arg, short what);

struct gw_sock {
  int fd;                /* -1 once closed */
  int err;               /* errno of a failed write, 0 otherwise */
  unsigned reading : 1;  /* EV_READ armed */
  unsigned failed : 1;   /* a write failed: the connection is broken */
  struct event rev, wev; /* embedded: no allocation per connection */
  struct evbuffer *out;  /* bytes the kernel did not take yet (usually empty) */
  gw_sock_cb cb;
  void *arg;
};

/* Take over the socket of |bev| (which is freed).  Bytes still in its input
 * buffer are moved to *pending (created; caller frees) to be processed
 * before anything read later.  Reading starts disabled.  Returns 0 or -1
 * (then |bev| is freed all the same and the socket closed). */
int gw_sock_from_bev(struct gw_sock *s, struct event_base *base, struct bufferevent *bev, gw_sock_cb cb, void *arg,
                     struct evbuffer **pending);
void gw_sock_close(struct gw_sock *s);

void gw_sock_read(struct gw_sock *s, int on);
/* Read once: > 0 bytes, 0 at end of stream, -1 on error (errno set),
 * -2 when nothing is there. */
ssize_t gw_sock_recv(struct gw_sock *s, uint8_t *buf, size_t cap);
/* Queue bytes, writing at once what the kernel takes; EV_WRITE is armed
 * only for what it did not.  Returns 0, or -1 once the socket has failed
 * (s->failed, s->err): the owner treats that like end of stream. */
int gw_sock_write(struct gw_sock *s, const void *p, size_t n);
/* The same for the contents of |buf|, which ends up empty (chains are
 * moved, not copied, into the queue). */
int gw_sock_write_buf(struct gw_sock *s, struct evbuffer *buf);
size_t gw_sock_queued(const struct gw_sock *s);

/* Write |buf| to the non-blocking |fd| until it is empty or the kernel
 * pushes back.  1: all written; 0: EAGAIN, the rest stays in |buf|;
 * -1: the write failed (errno set).  Also used by the /session splice. */
int gw_evbuffer_write_all(struct evbuffer *buf, int fd);

/* Reads go into this loop-wide buffer (one thread, one handler at a time). */
#define GW_SOCK_READ_CHUNK (64 * 1024)
#define GW_SOCK_READ_MAX (256 * 1024) /* per readiness event, then other sockets get their turn */

/* Readable: hand what the kernel holds to |take|, chunk by chunk, until it
 * is drained, GW_SOCK_READ_MAX has been read (then other connections get
 * their turn) or |go| says stop.  Returns 1 at end of stream or on a read
 * error (*err: errno, 0 for end of stream), 0 otherwise. */
int gw_sock_pull(struct gw_sock *sk, int (*go)(void *), void (*take)(void *, const uint8_t *, size_t), void *arg,
                 int *err);

#endif

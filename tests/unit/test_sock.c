/*
 * test_sock.c: gateway/sock.c, the socket layer under the HTTP/2 bridge,
 * over real socketpairs and a real libevent loop: taking a connection over
 * from a bufferevent without losing or reordering bytes, writing through a
 * full socket, and how end of stream and failures are reported.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "gateway/sock.h"

struct seen {
  int reads, writes;
};

static void note(void *arg, short what)
{
  struct seen *s = arg;
  if (what & EV_READ)
    s->reads++;
  if (what & EV_WRITE)
    s->writes++;
}

static void pair(int sv[2])
{
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

/* A socketpair whose first end a gw_sock has taken over from a fresh
 * bufferevent (nothing read ahead, nothing queued); sv[1] is the peer. */
static void taken_over(struct event_base *base, int sv[2], int sndbuf, struct gw_sock *sk, struct seen *seen)
{
  pair(sv);
  if (sndbuf)
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  struct bufferevent *bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
  struct evbuffer *pending;
  assert_int_equal(gw_sock_from_bev(sk, base, bev, note, seen, &pending), 0);
  assert_int_equal(evbuffer_get_length(pending), 0);
  evbuffer_free(pending);
}

/* Read what |fd| has now (non-blocking) into buf; returns the count. */
static size_t drain(int fd, char *buf, size_t cap)
{
  size_t got = 0;
  for (;;) {
    ssize_t n = read(fd, buf + got, cap - got);
    if (n <= 0)
      return got;
    got += (size_t)n;
  }
}

/* The front door read "hello" past the request head and queued a 101 it
 * had not written yet: after the take-over the owner gets "hello" first,
 * and the peer gets the 101. */
static void test_take_over_keeps_bytes_in_order(void **state)
{
  (void)state;
  struct event_base *base = event_base_new();
  int sv[2];
  pair(sv);
  struct bufferevent *bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
  assert_int_equal(write(sv[1], "hello", 5), 5);
  bufferevent_enable(bev, EV_READ);
  event_base_loop(base, EVLOOP_ONCE);
  assert_int_equal(evbuffer_get_length(bufferevent_get_input(bev)), 5);
  bufferevent_disable(bev, EV_WRITE);
  evbuffer_add(bufferevent_get_output(bev), "101\r\n", 5);

  struct gw_sock sk;
  struct seen seen = {0};
  struct evbuffer *pending = NULL;
  assert_int_equal(gw_sock_from_bev(&sk, base, bev, note, &seen, &pending), 0);
  assert_non_null(pending);
  assert_int_equal(evbuffer_get_length(pending), 5);
  assert_memory_equal(evbuffer_pullup(pending, -1), "hello", 5);
  evbuffer_free(pending);
  assert_int_equal(gw_sock_queued(&sk), 5);

  event_base_loop(base, EVLOOP_ONCE); /* EV_WRITE: the 101 goes out */
  char buf[64];
  assert_int_equal(drain(sv[1], buf, sizeof buf), 5);
  assert_memory_equal(buf, "101\r\n", 5);
  assert_int_equal(seen.writes, 1);
  assert_int_equal(gw_sock_queued(&sk), 0);

  /* The socket is still open although the bufferevent closed its own fd. */
  assert_int_equal(gw_sock_write(&sk, "more", 4), 0);
  assert_int_equal(drain(sv[1], buf, sizeof buf), 4);

  gw_sock_read(&sk, 1);
  assert_int_equal(write(sv[1], "x", 1), 1);
  event_base_loop(base, EVLOOP_ONCE);
  assert_int_equal(seen.reads, 1);
  uint8_t rb[16];
  assert_int_equal(gw_sock_recv(&sk, rb, sizeof rb), 1);
  assert_int_equal(gw_sock_recv(&sk, rb, sizeof rb), -2); /* nothing more yet */
  close(sv[1]);
  assert_int_equal(gw_sock_recv(&sk, rb, sizeof rb), 0); /* end of stream */

  gw_sock_close(&sk);
  assert_int_equal(sk.fd, -1);
  event_base_free(base);
}

/* Writing 1 MiB into a socket with a small buffer: what the kernel refuses
 * is queued, EV_WRITE drains it as the peer reads, every byte arrives once
 * and in order, and the owner hears "drained" once the queue is empty. */
static void test_write_through_full_socket(void **state)
{
  (void)state;
  struct event_base *base = event_base_new();
  int sv[2];
  struct gw_sock sk;
  struct seen seen = {0};
  taken_over(base, sv, 8192, &sk, &seen);

  size_t total = 1 << 20;
  uint8_t *src = malloc(total), *dst = malloc(total);
  for (size_t i = 0; i < total; i++)
    src[i] = (uint8_t)(i * 131 + (i >> 9));
  assert_int_equal(gw_sock_write(&sk, src, total / 2), 0);
  assert_true(gw_sock_queued(&sk) > 0); /* the kernel took only part */
  assert_int_equal(gw_sock_write(&sk, src + total / 2, total / 2), 0);
  assert_int_equal(seen.writes, 0);

  size_t got = 0;
  for (int turns = 0; got < total && turns < 100000; turns++) {
    got += drain(sv[1], (char *)dst + got, total - got);
    event_base_loop(base, EVLOOP_NONBLOCK);
  }
  assert_int_equal(got, total);
  assert_memory_equal(dst, src, total);
  assert_int_equal(gw_sock_queued(&sk), 0);
  assert_int_equal(seen.writes, 1);
  free(src);
  free(dst);
  gw_sock_close(&sk);
  close(sv[1]);
  event_base_free(base);
}

/* A peer that is gone: the write fails, the socket says so (failed, err)
 * and refuses further writes instead of queueing them. */
static void test_write_to_closed_peer_fails(void **state)
{
  (void)state;
  struct event_base *base = event_base_new();
  int sv[2];
  struct gw_sock sk;
  struct seen seen = {0};
  taken_over(base, sv, 0, &sk, &seen);
  close(sv[1]);
  assert_int_equal(gw_sock_write(&sk, "x", 1), -1);
  assert_true(sk.failed);
  assert_int_equal(sk.err, EPIPE);
  assert_int_equal(gw_sock_write(&sk, "y", 1), -1);
  assert_int_equal(gw_sock_queued(&sk), 0);
  gw_sock_close(&sk);
  event_base_free(base);
}

int main(void)
{
  signal(SIGPIPE, SIG_IGN); /* as the daemon does */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_take_over_keeps_bytes_in_order),
      cmocka_unit_test(test_write_through_full_socket),
      cmocka_unit_test(test_write_to_closed_peer_fails),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * h2_io.c: how the HTTP/2 engine writes.
 *
 * DATA is forwarded without copying the payload into nghttp2: the data
 * providers (h2_stream.c) only say how much to send
 * (NGHTTP2_DATA_FLAG_NO_COPY), and the send_data callbacks move the queued
 * chains behind the 9-byte frame header into the buffer being gathered for
 * the socket (G.gather, gw_h2_gather_data).  Every other frame nghttp2
 * serializes goes to the same buffer (gw_h2_send_cb); once it holds
 * GW_OUT_HIGH with what the socket still queues, nghttp2 keeps the rest until
 * the next flush.
 */
#include <stdlib.h>

#include "gateway/h2_int.h"

static struct {
  struct evbuffer *gather;     /* frames for one socket, written once per flush */
  struct gw_sock *gather_sock; /* ... and that socket */
  size_t gathered;             /* what the last gw_h2_send produced */
} G;

int gw_h2_io_init(void)
{
  if (!G.gather)
    G.gather = evbuffer_new();
  return G.gather ? 0 : -1;
}

void gw_h2_io_fini(void)
{
  if (G.gather)
    evbuffer_free(G.gather);
  G.gather = NULL;
}

static int gather_full(void)
{
  return evbuffer_get_length(G.gather) + gw_sock_queued(G.gather_sock) >= GW_OUT_HIGH;
}

int gw_h2_gather_data(const uint8_t *framehd, struct evbuffer *from, size_t length)
{
  if (evbuffer_add(G.gather, framehd, 9) != 0 || evbuffer_remove_buffer(from, G.gather, length) != (int)length)
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  return gather_full() ? NGHTTP2_ERR_PAUSE : 0;
}

ssize_t gw_h2_send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags, void *user_data)
{
  if (gather_full())
    return NGHTTP2_ERR_WOULDBLOCK;
  if (evbuffer_add(G.gather, data, length) != 0)
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  return (ssize_t)length;
}

/* Let a session serialize what it has into G.gather (gw_h2_send_cb and the
 * send_data callbacks), then write it with one writev: a unary gRPC answer
 * is HEADERS, DATA and trailers, three frames and one system call.  The
 * socket keeps (and waits for EV_WRITE with) only what the kernel did not
 * take, and serializing stops while that is above GW_OUT_HIGH.  Returns the
 * nghttp2 error, or 0. */
int gw_h2_send(nghttp2_session *sess, struct gw_sock *sk)
{
  G.gathered = 0;
  if (sk->failed)
    return 0;
  G.gather_sock = sk;
  int rv = nghttp2_session_send(sess);
  G.gathered = evbuffer_get_length(G.gather);
  gw_sock_write_buf(sk, G.gather);
  evbuffer_drain(G.gather, evbuffer_get_length(G.gather)); /* a failed socket took nothing */
  return rv;
}

/* The socket took all that was gathered but the session has more (it
 * stopped at GW_OUT_HIGH): go on in the next round instead of waiting for
 * the next event. */
int gw_h2_more(nghttp2_session *sess, const struct gw_sock *sk)
{
  return G.gathered > 0 && !sk->failed && gw_sock_queued(sk) == 0 && nghttp2_session_want_write(sess);
}

/* Our SETTINGS, the same toward clients and backends but for |max_streams|. */
int gw_h2_send_settings(nghttp2_session *sess, unsigned max_streams)
{
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, GW_STREAM_WINDOW},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, GW_MAX_HEADER_LIST},
  };
  int rv = nghttp2_submit_settings(sess, NGHTTP2_FLAG_NONE, iv, 3);
  if (rv == 0)
    rv = nghttp2_session_set_local_window_size(sess, NGHTTP2_FLAG_NONE, 0, GW_CONN_WINDOW);
  return rv;
}

nghttp2_option *gw_h2_options(void)
{
  nghttp2_option *opt;
  if (nghttp2_option_new(&opt) != 0)
    return NULL;
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_send_header_block_length(opt, GW_MAX_HEADER_LIST + 4096);
  return opt;
}


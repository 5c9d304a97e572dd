/*
 * h2_io.c: how the HTTP/2 engine writes.
 *
 * DATA is forwarded without copying the payload into nghttp2: the data
 * providers (h2_stream.c, registered by the callback tables of h2_req.c and
 * h2_resp.c) only say how much to send
 * (NGHTTP2_DATA_FLAG_NO_COPY), and the send_data callbacks move the queued
 * chains behind the 9-byte frame header into the buffer being gathered for
 * the socket (G.gather, gw_h2_gather_data).  Every other frame nghttp2
 * serializes goes to the same buffer (gw_h2_send_cb); once it holds
 * GW_OUT_HIGH with what the socket still queues, nghttp2 keeps the rest until
 * the next flush.
 */
#include <stdlib.h>

#include "gateway/alloc.h"
#include "gateway/h2_int.h"

static struct {
  struct evbuffer *gather;     /* frames for one socket, written once per flush */
  struct gw_sock *gather_sock; /* ... and that socket */
  size_t gathered;             /* what the last gw_h2_send produced */
} G;

/* Callbacks and options are the same for every session of a kind: built
 * once (nghttp2 copies them into each session). */
static struct {
  nghttp2_session_callbacks *server, *client;
  nghttp2_option *opt;
} K;

void gw_h2_io_init(void)
{
  if (!G.gather)
    G.gather = evbuffer_new();
}

void gw_h2_io_fini(void)
{
  if (G.gather)
    evbuffer_free(G.gather);
  G.gather = NULL;
  if (K.opt)
    nghttp2_option_del(K.opt);
  if (K.server)
    nghttp2_session_callbacks_del(K.server);
  if (K.client)
    nghttp2_session_callbacks_del(K.client);
  K.opt = NULL;
  K.server = K.client = NULL;
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

/* nghttp2 allocates through the gateway's allocator too (alloc.h). */
static void *m_malloc(size_t n, void *ud)
{
  return gw_malloc(n);
}

static void m_free(void *p, void *ud)
{
  free(p);
}

static void *m_calloc(size_t n, size_t size, void *ud)
{
  return gw_calloc(n, size);
}

static void *m_realloc(void *p, size_t n, void *ud)
{
  return gw_realloc(p, n);
}

static nghttp2_mem h2_mem = {NULL, m_malloc, m_free, m_calloc, m_realloc};


nghttp2_session *gw_h2_session_new(int server, void *user_data, unsigned max_streams,
                                   void (*callbacks)(nghttp2_session_callbacks *cb))
{
  /* |callbacks| (gw_req_callbacks or gw_resp_callbacks) fills the table of
   * its kind once; this file adds only its own send callback, so it calls
   * nothing above it. */
  if (!K.opt) {
    if (nghttp2_option_new(&K.opt) != 0)
      gw_oom(sizeof(nghttp2_option *));
    nghttp2_option_set_no_auto_window_update(K.opt, 1);
    nghttp2_option_set_max_send_header_block_length(K.opt, GW_MAX_HEADER_LIST + 4096);
  }
  nghttp2_session_callbacks **cb = server ? &K.server : &K.client;
  if (!*cb) {
    if (nghttp2_session_callbacks_new(cb) != 0)
      gw_oom(sizeof(nghttp2_session_callbacks *));
    callbacks(*cb);
    nghttp2_session_callbacks_set_send_callback(*cb, gw_h2_send_cb);
  }
  nghttp2_session *s;
  int rv = server ? nghttp2_session_server_new3(&s, K.server, user_data, K.opt, &h2_mem)
                  : nghttp2_session_client_new3(&s, K.client, user_data, K.opt, &h2_mem);
  if (rv != 0)
    gw_oom(sizeof(nghttp2_session *)); /* nghttp2's only error here is NGHTTP2_ERR_NOMEM */
  /* Our SETTINGS, the same toward clients and backends but for |max_streams|;
   * constant, so the submit can fail only for memory (ours aborts). */
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, GW_STREAM_WINDOW},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, GW_MAX_HEADER_LIST},
  };
  nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, 3);
  nghttp2_session_set_local_window_size(s, NGHTTP2_FLAG_NONE, 0, GW_CONN_WINDOW);
  return s;
}

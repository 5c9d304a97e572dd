/*
 * h2_int.h: the HTTP/2 engine's internal header, shared by its files only.
 *
 * One bridge per client connection, with an nghttp2 server session toward
 * the client ("cs").  Backend connections (struct bconn), each with an
 * nghttp2 client session ("bs"), are pooled per tenant: the streams of every
 * client connection of one tenant share them, as a generic HTTP/2 proxy
 * shares its backend connections, so that one backend read or write serves
 * several calls.  A client that vanishes takes exactly its own streams with
 * it (RST_STREAM CANCEL on the backend connection, which the backend turns
 * into a cancelled build); the backend connection stays for the others.
 *
 * Each request is a struct bstream that both sessions point at.  Bytes flow
 * through two bounded queues (req: client -> backend, resp: backend ->
 * client).  Flow control is manual (STYLE.md section 5): bytes received
 * from the client are acknowledged (nghttp2_session_consume) only once the
 * queue they went into has drained below GW_QUEUE_HIGH, i.e. once the
 * backend has taken them; response bytes likewise at stream level.  On a
 * shared backend connection the connection-level window is given back on
 * arrival, so a client that stops reading stalls its own streams (each
 * bounded by GW_STREAM_WINDOW) and nobody else's.
 *
 * Re-entrancy: nghttp2 callbacks and event handlers only change state and
 * mark the connections they touched; the flush pass (flush.h) run by the
 * event loop after the handlers of the same turn does every mem_send and
 * write and frees what is finished.  A stream is freed only once both
 * sessions have closed it (or never opened it), and a stream detached from
 * a backend connection has its nghttp2 user data cleared first.
 *
 * The same engine serves a Docker-style /session in front of a native gRPC
 * backend ("session mode"): there is no client session then, the client's
 * raw bytes are wrapped in BytesMessage on one Control.Session stream of a
 * private backend connection and the backend's messages are unwrapped onto
 * the client socket.
 *
 * The files, each owning one part (every one includes only this header of
 * the engine's, and this header includes none of them), in layers: a file
 * calls only files of the layers above it in this list, never one below or
 * beside it, so the call graph between files has no circle
 * (tests/check-calls.py checks it on the objects).  Where a lower part must
 * act on a stream (a budget granted or stalled, the facts arriving), the
 * function is handed to it at start (gw_ib_init, gw_facts_init); the client
 * side is reached through struct gw_client_ops.
 *   h2_hdrs.c     header lists
 *   h2_io.c       serializing a session into one write (the gather buffer), settings
 *   h2_inspect.c  inspection memory budgets
 *   h2_facts.c    request messages waiting for the backend facts
 *   h2_stream.c   stream lifetime, its backend side, acknowledgement, local
 *                 replies, data providers
 *   h2_probe.c    the Control.Info probe: an internal stream with a completion callback
 *   h2_resp.c     the response path and the backend session's callbacks
 *   h2_req.c      the request path and the client session's callbacks
 *   h2_bconn.c    the per-tenant pool of backend connections
 *   h2bridge.c    a client connection: its socket, flush, shutdown, the HTTP/2
 *                 client side (gw_h2c_side), the entry points
 *   h2_session.c  session mode: the other client side (gw_session_side)
 * flush.c (the flush pass) and sock.c (sockets) know nothing of HTTP/2.
 */
#ifndef BG_GW_H2_INT_H
#define BG_GW_H2_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>

#include "gateway/flush.h"
#include "gateway/gw.h"
#include "gateway/sock.h"
#include "proto/grpc_frame.h"
#include "proto/grpc_msg.h"

#define HAS_SOCK(sk) ((sk).fd >= 0)

/* A header list.  Names and values are copied into blocks that only grow
 * (pointers into them stay valid) and are freed together: a unary call copies
 * about twenty headers, and one allocation per header was a third of the
 * mallocs on a call's path. */
struct hblock {
  struct hblock *next;
  size_t used, cap;
  uint8_t data[];
};
#define HBLOCK_BYTES (1024 - sizeof(struct hblock)) /* a malloc of 1 KiB: room for a typical call's headers */

struct hdrs {
  nghttp2_nv *nv;
  size_t n, cap, bytes;
  struct hblock *blocks; /* newest first */
};

struct bridge;
struct bconn;

/* Where a stream stands, one state per side; each only moves forward
 * (down the lists), through the functions named.  nghttp2 keeps the RFC 9113
 * stream states of each session; these say what the bridge between them has
 * done.
 *
 *   side      from             event                                           to
 *   client    C_OPEN           END_STREAM from the client (req_end)            C_HREM
 *             C_OPEN, C_HREM   its session closed the stream (c_on_stream_close),
 *                              or the raw session client hung up (session_lost) C_CLOSED
 *   answer    A_NONE           response HEADERS submitted (gw_h2c_resp_headers) A_HEADERS
 *             A_NONE,          the backend's answer is complete: trailers, or
 *             A_HEADERS        a trailers-only response (gw_stream_answered)    A_DONE
 *             any but A_OURS   the gateway ends it: a local status, its own
 *                              trailers, or the backend's RST passed on
 *                              (gw_h2c_fail, gw_h2c_backend_closed)            A_OURS
 *   backend   B_IDLE           request HEADERS submitted (gw_bside_open)        B_OPEN
 *             B_OPEN           we sent RST_STREAM CANCEL, or detached it from
 *                              its connection (gw_bside_cancel, _detach)       B_CANCELLED
 *             B_OPEN,          the backend session closed it (b_on_stream_close)
 *             B_CANCELLED      or its connection was lost (gw_bconn_lost)      B_CLOSED
 *
 * What the states imply:
 *   - a request is complete once the client side is past C_OPEN (the data
 *     provider then ends the backend's request);
 *   - request bytes are moot (dropped and acknowledged) once the answer is
 *     A_OURS or the backend side is past B_OPEN (gw_stream_moot);
 *   - the backend's frames reach the stream only in B_OPEN: a cancelled
 *     stream's are dropped, a closed one's cannot come;
 *   - the gateway cancels the backend side whenever it ends the answer
 *     itself, so B_CANCELLED goes with A_OURS, C_CLOSED, a session client
 *     gone, or an internal stream that failed;
 *   - a stream is freed once its client side can no longer call back (C_CLOSED,
 *     or internal, or a session client gone: the side's done()) and its
 *     backend side is B_IDLE or B_CLOSED (gw_stream_maybe_free). */
enum gw_cstate { GW_C_OPEN, GW_C_HREM, GW_C_CLOSED };
enum gw_astate { GW_A_NONE, GW_A_HEADERS, GW_A_DONE, GW_A_OURS };
enum gw_bstate { GW_B_IDLE, GW_B_OPEN, GW_B_CANCELLED, GW_B_CLOSED };

struct bstream {
  struct bstream *prev, *next;   /* the bridge's streams */
  struct bstream *bc_prev, *bc_next; /* the backend connection's streams */
  struct bridge *b;
  struct bconn *bc; /* backend connection carrying it; NULL before/after */
  int32_t cid; /* client-side stream id; -1 in session mode */
  int32_t bid; /* backend stream id; -1 until opened */
  struct hdrs reqh, resph, trailers;
  struct bg_call *call;
  struct bg_call_decision dec;
  struct evbuffer *req, *resp;
  size_t req_held, resp_held; /* received, not yet acknowledged to the sender */
  struct bg_frame_reader rreq, rresp;
  int grpc_status;            /* final status as the client saw it; -1 unknown */
  char *grpc_message;
  uint64_t bytes_in, bytes_out;
  /* Where the stream stands: one state per side (enum gw_cstate, gw_astate,
   * gw_bstate above; the transition table is there).  What kind of stream it
   * is (the bits below) is set once, when it starts. */
  uint8_t cst;                 /* enum gw_cstate: the client side */
  uint8_t ast;                 /* enum gw_astate: the answer toward the client */
  uint8_t bst;                 /* enum gw_bstate: the backend side */
  unsigned inspect_req : 1;    /* the policy reads each request message (rreq) */
  unsigned inspect_resp : 1;   /* each response message is assembled (rresp): policy or session unwrap */
  unsigned internal : 1;       /* the gateway's own call (the probe): no client side */
  unsigned track : 1;          /* gRPC request not inspected: follow message boundaries */
  /* Message-boundary tracking for streamed (uninspected) requests, so a
   * request that ends mid-message is refused instead of forwarded whole. */
  uint8_t trk_pfx;            /* prefix bytes seen of the current message (0..4) */
  uint32_t trk_len;           /* length being assembled from the prefix */
  uint64_t trk_body;          /* body bytes still to come */
  /* Inspection memory (h2_inspect.c). */
  size_t ib_resv;             /* budget held for the request message being assembled */
  size_t ib_queued;           /* budget held for approved messages still queued for the backend */
  unsigned ib_waiting : 1;    /* on the wait list: its bytes are not acknowledged */
  size_t ib_relieved;         /* of req_held, bytes whose connection window was given back */
  struct bstream *ib_prev, *ib_next; /* the wait list, oldest first */
  struct event *ib_timer;     /* stall timer, while a request message is partial */
  uint64_t ib_last_ms;        /* last progress of the partial message (monotonic) */
  /* A request message whose decision needs the backend facts (the policy
   * said BG_MSG_WAIT_FACTS): held until Control.Info has answered or
   * GW_FACTS_WAIT_SECS have passed, then decided again. */
  uint8_t *held;
  size_t held_len;
  int held_compressed;
  struct event *facts_ev;
  struct bstream *wprev, *wnext; /* the facts wait list (h2_facts.c) */
  /* An internal stream's completion callback: runs when its answer is
   * complete (|freed| 0; status in grpc_status, up to 64 KiB of the body in
   * resp) and when the stream is freed (|freed| 1). */
  void (*on_end)(struct bstream *s, int freed);
};

/* The request is complete: the client sent END_STREAM, or is gone. */
static inline int gw_req_complete(const struct bstream *s)
{
  return s->cst != GW_C_OPEN;
}

/* Request bytes go nowhere any more: the gateway answered the client, or
 * the backend side is cancelled or closed. */
static inline int gw_stream_moot(const struct bstream *s)
{
  return s->ast == GW_A_OURS || s->bst > GW_B_OPEN;
}

/* The backend's answer is complete (trailers known); an answer the gateway
 * ended stays the gateway's. */
static inline void gw_stream_answered(struct bstream *s)
{
  if (s->ast < GW_A_DONE)
    s->ast = GW_A_DONE;
}

/* Where a bridge's client connection stands; it only moves forward:
 *   GW_CL_OPEN      read and written
 *   GW_CL_DRAINING  session mode: nothing more to say to the raw client (its
 *                   Control.Session ended, was refused or failed): read no
 *                   more, close once what is queued is written
 *   GW_CL_LOST      the client closed the connection, it broke, or it spoke
 *                   invalid HTTP/2: neither read nor written any more
 *                   (gw_bridge_client_lost; an HTTP/2 bridge closes at once) */
enum gw_cl_state { GW_CL_OPEN, GW_CL_DRAINING, GW_CL_LOST };

struct bridge {
  struct gw_conn link;
  struct gw *gw;
  uint64_t id;
  struct bg_conn *pc;
  struct gw_sock csock; /* fd -1 once closed */
  nghttp2_session *cs;  /* NULL in session mode */
  struct bstream *streams;
  struct bconn *own; /* session mode: a backend connection of its own */
  const struct gw_client_ops *side; /* HTTP/2 (gw_h2c_side) or session mode (gw_session_side) */
  uint8_t client;       /* enum gw_cl_state: the client connection */
  int goaway_sent;      /* HTTP/2 side: our GOAWAY for a graceful close is queued */
  int dead;             /* freed by the next flush pass */
  struct gw_flushable fl;
  char *refusal;  /* the policy refused this connection: why (pc is NULL) */
  struct evbuffer *cpending; /* client bytes the front door read ahead, until taken */
  size_t ib_used;       /* inspection budget its streams hold */
  size_t ib_relief;     /* connection window given back early for waiting streams */
  unsigned ib_pass;     /* wait-list pass in which one of its streams did not fit */
};

/* A backend HTTP/2 connection.  Native gRPC streams of one tenant share
 * pooled backend connections, as a generic HTTP/2 proxy would share them
 * among all clients: at 16 concurrent clients one backend read or write then serves
 * several calls.  Keeping the pool per tenant bounds what one tenant can
 * do to another (a tenant that stops reading stalls, at worst, its own
 * backend connection's connection window) and leaves room for per-tenant backend
 * credentials.  A session-mode bridge has a private backend connection. */
struct bconn {
  struct bconn *prev, *next; /* every live backend connection */
  struct gw *gw;
  char *key;                    /* tenant; NULL: private, never picked */
  nghttp2_session *bs;
  struct gw_sock sock;          /* fd -1 until connected */
  struct gw_dial *dial;
  struct bstream *streams;
  unsigned n_streams;
  struct bridge *owner;         /* private backend connection: its session-mode bridge */
  int ready;                    /* connected */
  int closed;                   /* GOAWAY, failure or idle: takes no new streams */
  int dead;                     /* freed by the next flush pass */
  struct gw_flushable fl;
  struct event idle_ev;         /* a backend connection left without streams closes after a while */
  char err[512];
};

/* The client side of a bridge: what differs between a client speaking
 * HTTP/2 (gw_h2c_side: a server session, one stream per call) and a raw
 * session client (gw_session_side, h2_session.c: its bytes ride one
 * Control.Session stream).  The stream, backend and inspection code calls
 * these and never asks which side it has. */
struct gw_client_ops {
  void (*bytes)(struct bridge *b, const uint8_t *p, size_t n); /* client input */
  void (*lost)(struct bridge *b);     /* the client connection closed or broke (GW_CL_LOST) */
  void (*flush)(struct bridge *b);    /* write, and gw_bridge_kill when finished */
  void (*shutdown)(struct bridge *b); /* SIGTERM: begin a graceful close */
  struct bconn *(*pick)(struct bridge *b, const struct bstream *s); /* backend connection for a new stream */
  void (*opened)(struct bstream *s, struct bconn *bc);              /* its backend stream was submitted */
  int (*done)(const struct bstream *s);          /* the client side can no longer call back about |s| */
  void (*req_ack)(struct bstream *s);            /* let the client send again: req_held bytes moved on */
  int (*resp_full)(const struct bstream *s);     /* the response queue toward the client is full */
  void (*resp_data)(struct bstream *s, const uint8_t *p, size_t n); /* response DATA from the backend */
  void (*resp_headers)(struct bstream *s, int end_stream);          /* response HEADERS complete */
  void (*resp_end)(struct bstream *s);           /* the response is complete */
  void (*fail)(struct bstream *s, int status, const char *msg); /* tell the client (gw_stream_fail) */
  /* The backend closed |s|; |err| is its connection's error, if any. */
  void (*backend_closed)(struct bstream *s, uint32_t error_code, const char *err);
  void (*backend_lost)(struct bstream *s); /* its backend connection failed */
};
extern const struct gw_client_ops gw_h2c_side, gw_session_side;

/* Mark a connection for the next flush pass (flush.h). */
static inline void gw_bridge_mark(struct bridge *b)
{
  gw_flush_mark(&b->fl);
}

static inline void gw_bconn_mark(struct bconn *bc)
{
  gw_flush_mark(&bc->fl);
}

/* h2_hdrs.c: header lists */
void gw_hdrs_add(struct hdrs *h, const uint8_t *name, size_t nl, const uint8_t *value, size_t vl);
void gw_hdrs_adds(struct hdrs *h, const char *name, const char *value);
void gw_hdrs_grpc_request(struct hdrs *h, const char *path);
void gw_hdrs_free(struct hdrs *h);
const char *gw_hdrs_get(const struct hdrs *h, const char *name);
int gw_hop_by_hop(const uint8_t *name, size_t nl);
void gw_hdrs_apply_edits(struct hdrs *h, const struct bg_header_edit *e, size_t n);

/* h2_io.c: one write per session and flush */
ssize_t gw_h2_send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags, void *user_data);
/* A DATA frame: its header and |length| bytes moved from |from|; an nghttp2
 * send_data callback's result. */
int gw_h2_gather_data(const uint8_t *framehd, struct evbuffer *from, size_t length);
int gw_h2_send(nghttp2_session *sess, struct gw_sock *sk);
int gw_h2_more(nghttp2_session *sess, const struct gw_sock *sk);
/* A session toward a client (|server| 1) or a backend, our SETTINGS queued;
 * |callbacks| fills its kind's callback table (gw_req_callbacks or
 * gw_resp_callbacks), once. */
nghttp2_session *gw_h2_session_new(int server, void *user_data, unsigned max_streams,
                                   void (*callbacks)(nghttp2_session_callbacks *cb));
void gw_h2_io_init(void);
void gw_h2_io_fini(void);

/* h2_inspect.c: inspection memory */
void gw_ib_init(void (*release)(struct bstream *s), void (*fail)(struct bstream *s, int status, const char *msg));
void gw_ib_release_queued(struct bstream *s);
void gw_ib_forget(struct bstream *s, int final);
void gw_ib_client_closed(struct bstream *s);
void gw_ib_update(struct bstream *s, size_t got);
void gw_ib_msg_done(struct bstream *s);
void gw_ib_fini(void);

/* h2_facts.c: requests waiting for the backend facts */
typedef void (*gw_facts_resume_fn)(struct bstream *s, const uint8_t *msg, size_t len, int compressed);
void gw_facts_init(gw_facts_resume_fn resume);
void gw_facts_unlink(struct bstream *s);
void gw_facts_wake(void);
void gw_facts_wait(struct bstream *s, const uint8_t *msg, size_t len, int compressed);

/* h2_stream.c: stream lifetime, its backend side, acknowledgement, local replies, data providers */
struct bstream *gw_stream_new(struct bridge *b, int32_t cid);
void gw_stream_set_status(struct bstream *s, int status, const char *msg);
void gw_stream_free(struct bstream *s);
void gw_stream_maybe_free(struct bstream *s);
void gw_req_release(struct bstream *s);
void gw_resp_release(struct bstream *s);
void gw_stream_fail(struct bstream *s, int status, const char *msg);
void gw_frame_error(struct bstream *s, int rv, const char *dir);
void gw_bside_open(struct bstream *s, struct bconn *bc);
void gw_bside_cancel(struct bstream *s);
void gw_bside_resume(struct bstream *s);
void gw_bside_consume(struct bstream *s, size_t n);
void gw_bside_detach(struct bstream *s);
ssize_t gw_req_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *flags,
                       nghttp2_data_source *source, void *user_data);
int gw_req_send_data_cb(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
                        nghttp2_data_source *source, void *user_data);
ssize_t gw_resp_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *flags,
                        nghttp2_data_source *source, void *user_data);
int gw_resp_send_data_cb(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
                         nghttp2_data_source *source, void *user_data);

/* h2_probe.c: the Control.Info probe */
void gw_probe_start(struct bridge *b, struct bconn *bc);

/* h2_resp.c: the response path (backend -> client) */
void gw_resp_callbacks(nghttp2_session_callbacks *cb); /* the backend session's */
void gw_record_status(struct bstream *s, const struct hdrs *h);

/* h2_req.c: the request path (client -> backend) */
void gw_req_callbacks(nghttp2_session_callbacks *cb); /* the client session's */
int gw_req_msg(void *arg, const uint8_t *msg, size_t len, int compressed);
void gw_req_facts_resume(struct bstream *s, const uint8_t *msg, size_t len, int compressed);

/* h2_bconn.c: backend connections */
void gw_bconn_close(struct bconn *bc);
struct bconn *gw_bconn_new(struct gw *gw, const char *key);
void gw_bconn_lost(struct bconn *bc, const char *why);
void gw_bconn_attach(struct bconn *bc, struct bufferevent *bev);
const char *gw_tenant_key(const struct bridge *b, const struct bstream *s);
struct bconn *gw_bconn_pick(struct bridge *b, const struct bstream *s);
void gw_bconn_free_all(void);

/* h2_session.c: session mode */

/* h2bridge.c: client connections */
struct bridge *gw_bridge_new(struct gw *gw, struct bufferevent *client, struct gw_peer *peer, struct bg_conn *pc,
                             uint64_t conn_id, const struct gw_client_ops *side);
void gw_bridge_client_lost(struct bridge *b);
void gw_bridge_write_check(struct bridge *b);

/* The HTTP/2 client side (gw_h2c_side), by file. */
int gw_h2c_done(const struct bstream *s);        /* h2_stream.c */
void gw_h2c_req_ack(struct bstream *s);
int gw_h2c_resp_full(const struct bstream *s);
void gw_h2c_fail(struct bstream *s, int status, const char *msg);
void gw_h2c_resp_data(struct bstream *s, const uint8_t *p, size_t n); /* h2_resp.c */
void gw_h2c_resp_headers(struct bstream *s, int end_stream);
void gw_h2c_resp_end(struct bstream *s);
void gw_h2c_backend_closed(struct bstream *s, uint32_t error_code, const char *err);
void gw_h2c_opened(struct bstream *s, struct bconn *bc); /* h2_req.c */
void gw_bridge_kill(struct bridge *b, const char *why);
void gw_bridge_take_pending(struct bridge *b);

#endif

/*
 * gw.h: state shared by the gateway's network code.
 *
 * Everything runs on one libevent loop in one thread.  A client connection
 * is owned by exactly one object at a time: the front door while it sniffs
 * and reads HTTP/1.1, then either the HTTP/2 bridge (native gRPC, /grpc, or a
 * /session bridged into Control.Session) or the byte splice (/session passed
 * through to a Docker engine).
 */
#ifndef BG_GW_H
#define BG_GW_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "policy/policy.h"

/* Limits.  Every buffer the gateway keeps is bounded by one of these. */
#define GW_MAX_HEAD 65536             /* HTTP/1.1 request head */
#define GW_HANDSHAKE_SECS 10          /* sniff + HTTP/1.1 until upgrade */
#define GW_BACKEND_CONNECT_SECS 10
#define GW_OUT_HIGH (64 * 1024)       /* stop producing into a socket's output above this */
#define GW_QUEUE_HIGH (64 * 1024)     /* per-stream queue: acknowledge input only below this */
#define GW_STREAM_WINDOW (256 * 1024) /* HTTP/2 stream window we advertise, both sides */
#define GW_CONN_WINDOW (1024 * 1024)  /* HTTP/2 connection window we advertise, both sides */
#define GW_MAX_STREAMS 100
#define GW_BCONN_MAX_STREAMS 200      /* streams per shared backend connection before another is opened */
#define GW_BCONN_IDLE_SECS 30         /* a backend connection without streams stays this long */
#define GW_MAX_HEADER_LIST (64 * 1024)
#define GW_DRAIN_SECS 10              /* SIGTERM: how long streams may finish */
/* Inspection memory.  A request message the policy inspects (Control.Solve,
 * LLBBridge calls, ...) is assembled whole before the policy sees it, so its
 * bytes cannot flow on as they come.  They are acknowledged to the client only
 * while the message's declared length fits in a per-connection and a
 * process-wide budget (h2_inspect.c); past them the stream
 * waits for HTTP/2 flow control.  Defaults: a connection assembles one message
 * of BuildKit's own limit (16 MiB) at a time (it is one pipe: taking its large
 * messages in turn costs no throughput), the process two, so 32 uploads
 * stalled one byte short of 16 MiB hold 32 MiB plus their windows (256 KiB
 * each).  A single message larger than a budget is admitted alone (when
 * nothing else holds that budget), so every message within max_message_bytes
 * can finish. */
#define GW_INSPECT_CONN_BUDGET ((size_t)16 << 20)
#define GW_INSPECT_BUDGET ((size_t)32 << 20)
#define GW_INSPECT_STALL_SECS 30      /* a partial inspected message without progress ends after this */

struct gw_conn;

enum backend_kind { BACKEND_GRPC = 0, BACKEND_DOCKER = 1 };

struct gw_addr {
  char *text;      /* as given on the command line */
  int is_unix;
  char *path;      /* unix */
  char *host;      /* tcp */
  char *port;
};

struct gw_listener {
  struct gw_listener *next;
  struct gw *gw;
  struct gw_addr addr;
  struct evconnlistener *l;
};

struct gw {
  struct event_base *base;
  struct gw_listener *listeners;
  struct gw_addr backend;
  enum backend_kind backend_kind;
  struct bg_policy *policy;   /* current; connections hold their own reference */
  char *policy_path;
  struct bg_backend_facts facts;
  int audit_fd;               /* -1: no audit log */
  uint64_t next_conn_id;
  unsigned n_conns;           /* live client connections, for draining */
  int draining;
  struct event *sigterm_ev, *sigint_ev, *sighup_ev, *drain_timer;
  struct gw_conn *conns;      /* live client-facing objects */
  /* Inspection memory (see GW_INSPECT_*); 0 means the default. */
  size_t inspect_conn_budget;  /* --inspect-conn-budget */
  size_t inspect_budget;       /* --inspect-budget */
  unsigned inspect_stall_secs; /* --inspect-stall-timeout */
};

/* Every live client-facing object links in here so SIGTERM can reach it. */
struct gw_conn {
  struct gw_conn *prev, *next;
  struct gw_peer *peer;                /* the client's transport identity: owned, see gw_conn_link */
  void (*shutdown)(struct gw_conn *c); /* begin graceful close */
  void (*destroy)(struct gw_conn *c);  /* close and free now (end of drain) */
};

/* A client connection's owner registers it here, with its gw_peer (the
 * client's transport identity).  The registry entry owns the peer: the front
 * door creates it at accept (gw_conn_accept); handing the connection to the
 * bridge or the splice moves it (gw_conn_give_peer, then gw_conn_link); it is
 * freed when the last owner unlinks (gw_conn_unlink), on every path, so
 * gwcore.c is the only file that creates or frees one. */
void gw_conn_accept(struct gw *gw, struct gw_conn *c, int fd, const struct sockaddr *sa, int salen, int is_unix);
void gw_conn_link(struct gw *gw, struct gw_conn *c, struct gw_peer *peer);
struct gw_peer *gw_conn_give_peer(struct gw_conn *c);
void gw_conn_unlink(struct gw *gw, struct gw_conn *c);

/* audit.c-side of the gateway: write one line (adds '\n'); takes ownership. */
void gw_audit_write(struct gw *gw, char *line);

/* End a policy call; its audit record goes to the audit log, if any. */
void gw_call_end(struct gw *gw, struct bg_call *call, int grpc_status, const char *grpc_message,
                 uint64_t bytes_from_client, uint64_t bytes_from_backend);

/* frontdoor.c */
void gw_frontdoor_accept(struct gw *gw, int fd, const struct sockaddr *sa, int salen, int is_unix);

/* What the transport knows about a client, filled at accept.  Owned by the
 * connection registry entry of whoever owns the client connection (see
 * gw_conn_link); handing the connection over (gw_bridge_start_h2,
 * gw_bridge_start_session, gw_splice_start) hands the peer with it, on
 * failure too. */
struct gw_peer {
  struct bg_identity id;
  char peer[128];
  char *token; /* owned copy of a bearer token, or NULL */
};

/* backend.c: connect to the backend.  For a Docker engine |upgrade_path| is
 * "/grpc" or "/session" and the upgrade handshake is done (with |extra_head|
 * lines appended to the request) before |cb| runs; |leftover| holds bytes the
 * engine sent after its 101 (already inside the returned bufferevent's input).
 * On failure bev is NULL and err says why; the failure is always reported
 * through |cb|, never by the call (which cannot fail: alloc.h). */
typedef void (*gw_dial_cb)(void *arg, struct bufferevent *bev, const char *err);
struct gw_dial;
struct gw_dial *gw_dial_backend(struct gw *gw, const char *upgrade_path, const char *extra_head, gw_dial_cb cb,
                                void *arg);
void gw_dial_cancel(struct gw_dial *d);

/* The HTTP/2 engine (h2bridge.c, h2_session.c, h2_bconn.c; h2_int.h lists its files). */
/* Take over a client connection speaking HTTP/2 with prior knowledge.
 * |door| for the policy: "grpc" or "docker-grpc".  If |backend| is non-NULL
 * it is an already-connected backend (Docker /grpc upgraded); otherwise the
 * bridge dials itself.  With |pc| NULL the policy refused the connection:
 * every call is answered UNAUTHENTICATED with |refusal| and nothing is dialled. */
void gw_bridge_start_h2(struct gw *gw, struct bufferevent *client, struct gw_peer *peer, struct bg_conn *pc,
                        struct bufferevent *backend, uint64_t conn_id, const char *refusal);
/* Docker-style /session in front of a native gRPC backend: the client's raw
 * bytes become BytesMessage on a Control.Session stream of |backend|, a
 * connection the front door dialled (and answered the client's 101 for). */
void gw_bridge_start_session(struct gw *gw, struct bufferevent *client, struct gw_peer *peer, struct bg_conn *pc,
                             struct bg_call *call, const struct bg_header *hdrs, size_t n_hdrs, uint64_t conn_id,
                             struct bufferevent *backend);
/* Whether the tenant of |pc| has a connected pooled backend connection
 * that takes new streams. */
int gw_bridge_pool_ready(const struct bg_conn *pc);
/* Close the backend connections still pooled; at exit, after every bridge. */
void gw_bridge_free_all(void);
/* splice.c: Docker-style /session to a Docker engine: bytes both ways. */
void gw_splice_start(struct gw *gw, struct bufferevent *client, struct bufferevent *backend, struct gw_peer *peer,
                     struct bg_conn *pc, struct bg_call *call, uint64_t conn_id);


/* Percent-encode a grpc-message value: bg_grpc_message_encode (proto/grpc_msg.h). */
char *gw_grpc_message_encode(const char *msg);

/* The 101 answer a Docker engine gives to /grpc and /session, byte for byte. */
#define GW_UPGRADE_101 "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"

/* frontdoor.c: is |name| (|n| bytes, any case) a session header forwarded on /session? */
int gw_session_header_wanted(const char *name, size_t n);

#endif

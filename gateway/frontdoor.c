/*
 * frontdoor.c: what a new client connection is, and where it goes.
 *
 * The first bytes decide: the HTTP/2 preface means native gRPC and the
 * connection goes straight to the bridge.  Anything else is HTTP/1.1 the way
 * the Docker CLI and buildx's docker driver speak it: /_ping and /version are
 * answered here (keep-alive, pipelining allowed), POST /grpc and POST
 * /session are upgraded, every other request gets a Docker-style JSON error.
 *
 * The backend is dialled before the client gets its 101, so a backend that
 * is down is an HTTP 502 naming it rather than a dead HTTP/2 connection.
 * Real clients send their HTTP/2 preface right behind the /grpc request head
 * without waiting for the 101: those bytes stay in the input buffer and the
 * bridge reads them first.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>


#include <jansson.h>

#include "gateway/alloc.h"
#include "gateway/gw.h"
#include "gateway/http1.h"
#include "gateway/log.h"
#include "gateway/version.h"

struct door {
  struct gw_conn link;
  struct gw *gw;
  struct bufferevent *bev;
  uint64_t id;
  struct gw_dial *dial;
  struct bg_conn *pc;
  struct bg_call *call;         /* /session: the call that was allowed */
  struct bg_header *sess_hdrs;  /* /session: headers to forward (lowercase names) */
  size_t n_sess_hdrs;
  int route;
  size_t scanned; /* input bytes already known not to end a request head */
  int closing;
  int in_h1;
};

static void door_free(struct door *d)
{
  if (d->dial)
    gw_dial_cancel(d->dial);
  if (d->bev)
    bufferevent_free(d->bev);
  if (d->call) {
    gw_call_end(d->gw, d->call, BG_GRPC_CANCELLED, "connection closed before the session started", 0, 0);
  }
  if (d->pc)
    bg_conn_close(d->pc);
  for (size_t i = 0; i < d->n_sess_hdrs; i++) {
    free((char *)d->sess_hdrs[i].name);
    free((char *)d->sess_hdrs[i].value);
  }
  free(d->sess_hdrs);
  gw_conn_unlink(d->gw, &d->link); /* frees the peer, unless handed over */
  free(d);
}

/* Close once the answer has been written. */
static void door_close_after_write(struct door *d)
{
  d->closing = 1;
  bufferevent_disable(d->bev, EV_READ);
  if (evbuffer_get_length(bufferevent_get_output(d->bev)) == 0)
    door_free(d);
}

static void door_error(struct door *d, int status, const char *msg)
{
  LOG_INFO("conn %llu (%s): HTTP %d: %s", (unsigned long long)d->id, d->link.peer->peer, status, msg);
  gw_http_error(bufferevent_get_output(d->bev), status, msg);
  door_close_after_write(d);
}

static void answer_ping(struct door *d, const struct gw_h1_request *req, int head_only)
{
  /* What dockerd answers: buildx and the CLI negotiate the API version here. */
  evbuffer_add_printf(bufferevent_get_output(d->bev),
                      "HTTP/1.1 200 OK\r\nApi-Version: " BG_DOCKER_API_VERSION "\r\nBuilder-Version: 2\r\n"
                      "Cache-Control: no-cache, no-store, must-revalidate\r\nDocker-Experimental: false\r\n"
                      "Ostype: linux\r\nPragma: no-cache\r\nServer: buildgate/" BG_VERSION "\r\n"
                      "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\n%s",
                      head_only ? "" : "OK");
}

static void answer_version(struct door *d)
{
  struct utsname u;
  if (uname(&u) != 0)
    memset(&u, 0, sizeof u);
  json_t *j = json_pack("{s:[{s:s,s:s}],s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "Components", "Name", "buildgate",
                        "Version", BG_VERSION, "Version", BG_VERSION, "ApiVersion", BG_DOCKER_API_VERSION,
                        "MinAPIVersion", "1.12", "Os", "linux", "Arch",
#if defined(__x86_64__)
                        "amd64",
#elif defined(__aarch64__)
                        "arm64",
#else
                        "unknown",
#endif
                        "KernelVersion", u.release, "GitCommit", "buildgate");
  char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  evbuffer_add_printf(bufferevent_get_output(d->bev),
                      "HTTP/1.1 200 OK\r\nApi-Version: " BG_DOCKER_API_VERSION "\r\nContent-Type: application/json\r\n"
                      "Docker-Experimental: false\r\nOstype: linux\r\nServer: buildgate/" BG_VERSION "\r\n"
                      "Content-Length: %zu\r\n\r\n%s\n",
                      body ? strlen(body) + 1 : 3, body ? body : "{}");
  free(body);
}

/* "x-docker-expose-session-grpc-method" -> "X-Docker-Expose-Session-Grpc-Method" (Go's canonical form). */
static void canonical_name(char *out, const char *in, size_t n)
{
  int up = 1;
  for (size_t i = 0; i < n; i++) {
    out[i] = up ? (char)toupper((unsigned char)in[i]) : (char)tolower((unsigned char)in[i]);
    up = in[i] == '-';
  }
  out[n] = 0;
}

/* The /session headers a session is registered with (X-Docker-Expose-
 * Session-*, and X-Buildkit-Session-* that newer clients add): a name must
 * carry something after the prefix. */
int gw_session_header_wanted(const char *name, size_t n)
{
  return (n > 24 && strncasecmp(name, "x-docker-expose-session-", 24) == 0) ||
         (n > 19 && strncasecmp(name, "x-buildkit-session-", 19) == 0);
}

static const char *bearer_token(const struct gw_h1_request *req, size_t *len)
{
  size_t vl;
  const char *v = gw_h1_header(req, "authorization", &vl);
  if (!v || vl < 7 || strncasecmp(v, "Bearer ", 7) != 0)
    return NULL;
  *len = vl - 7;
  return v + 7;
}

static void door_start_grpc(struct door *d);

/* The client connection leaves the front door for the HTTP/2 bridge, with
 * our 101 first when it came through /grpc (the client's bytes already
 * buffered behind its request head are HTTP/2). */
static void door_to_bridge(struct door *d, int upgraded, struct bufferevent *backend, const char *refusal)
{
  struct bufferevent *client = d->bev;
  struct gw_peer *peer = gw_conn_give_peer(&d->link);
  struct bg_conn *pc = d->pc;
  uint64_t id = d->id;
  struct gw *gw = d->gw;
  d->bev = NULL;
  d->pc = NULL;
  if (upgraded)
    evbuffer_add(bufferevent_get_output(client), GW_UPGRADE_101, strlen(GW_UPGRADE_101));
  door_free(d);
  gw_bridge_start_h2(gw, client, peer, pc, backend, id, refusal);
}

static void door_dial_done(void *arg, struct bufferevent *bev, const char *err)
{
  struct door *d = arg;
  d->dial = NULL;
  if (!bev) {
    if (d->call) { /* a /session: its audit record names the backend's failure */
      gw_call_end(d->gw, d->call, BG_GRPC_UNAVAILABLE, err, 0, 0);
      d->call = NULL;
    }
    door_error(d, 502, err);
    return;
  }
  if (d->route == GW_ROUTE_GRPC) {
    door_to_bridge(d, 1, bev, NULL);
    return;
  }
  struct bufferevent *client = d->bev;
  struct gw_peer *peer = gw_conn_give_peer(&d->link);
  struct bg_conn *pc = d->pc;
  d->bev = NULL;
  d->pc = NULL;
  /* Only now that the backend answered does the client get its 101. */
  evbuffer_add(bufferevent_get_output(client), GW_UPGRADE_101, strlen(GW_UPGRADE_101));
  struct bg_call *call = d->call;
  struct bg_header *hv = d->sess_hdrs;
  size_t nh = d->n_sess_hdrs;
  d->call = NULL;
  d->sess_hdrs = NULL;
  d->n_sess_hdrs = 0;
  uint64_t id = d->id;
  struct gw *gw = d->gw;
  door_free(d);
  if (gw->backend_kind == BACKEND_GRPC) {
    /* /session to a native backend: its bytes ride a Control.Session stream. */
    gw_bridge_start_session(gw, client, peer, pc, call, hv, nh, id, bev);
  } else {
    /* /session to a Docker engine: from now on just bytes both ways. */
    gw_splice_start(gw, client, bev, peer, pc, call, id);
  }
  for (size_t i = 0; i < nh; i++) {
    free((char *)hv[i].name);
    free((char *)hv[i].value);
  }
  free(hv);
}

static int door_open_policy(struct door *d, const struct gw_h1_request *req, const char *door_name)
{
  size_t tl = 0;
  const char *tok = bearer_token(req, &tl);
  if (tok) {
    free(d->link.peer->token);
    d->link.peer->token = gw_strndup(tok, tl);
    d->link.peer->id.bearer_token = d->link.peer->token;
  }
  char *refusal = NULL, *line = NULL;
  d->pc = bg_conn_open(d->gw->policy, &d->link.peer->id, door_name, d->id, &d->gw->facts, &refusal, &line);
  if (line)
    gw_audit_write(d->gw, line);
  if (!d->pc) {
    door_error(d, 403, refusal ? refusal : "connection refused by policy");
    free(refusal);
    return -1;
  }
  return 0;
}

static int check_upgrade(struct door *d, const struct gw_h1_request *req)
{
  size_t ul;
  const char *up = gw_h1_header(req, "upgrade", &ul);
  char msg[160];
  if (!up) {
    door_error(d, 400, "no upgrade proto in request");
    return -1;
  }
  if (ul != 3 || strncasecmp(up, "h2c", 3) != 0) {
    snprintf(msg, sizeof msg, "protocol %.*s not supported", (int)(ul > 64 ? 64 : ul), up);
    door_error(d, 400, msg);
    return -1;
  }
  if (req->chunked || req->content_length > 0) {
    door_error(d, 400, "upgrade requests must not carry a body");
    return -1;
  }
  return 0;
}

static void door_upgrade_grpc(struct door *d, const struct gw_h1_request *req)
{
  if (check_upgrade(d, req) != 0 || door_open_policy(d, req, "docker-grpc") != 0)
    return;
  d->route = GW_ROUTE_GRPC;
  door_start_grpc(d);
}

static void door_start_grpc(struct door *d)
{
  /* Stop reading: the pipelined HTTP/2 preface waits in the buffer. */
  bufferevent_disable(d->bev, EV_READ);
  bufferevent_set_timeouts(d->bev, NULL, NULL);
  if (gw_bridge_pool_ready(d->pc)) {
    /* The tenant's pooled backend connection is up: the client's streams
     * go there, no new backend connection (and /grpc upgrade) is needed
     * to know the backend answers. */
    door_to_bridge(d, 1, NULL, NULL);
    return;
  }
  d->dial = gw_dial_backend(d->gw, "/grpc", NULL, door_dial_done, d);
}

/* Replace every /session header named |name| (lowercase) by |values|
 * (none: delete). */
static void door_set_header(struct door *d, const char *name, const char *const *values, size_t n_values)
{
  size_t w = 0;
  for (size_t r = 0; r < d->n_sess_hdrs; r++) {
    if (strcmp(d->sess_hdrs[r].name, name) == 0) {
      free((char *)d->sess_hdrs[r].name);
      free((char *)d->sess_hdrs[r].value);
    } else {
      d->sess_hdrs[w++] = d->sess_hdrs[r];
    }
  }
  d->n_sess_hdrs = w;
  if (n_values == 0)
    return;
  d->sess_hdrs = gw_realloc(d->sess_hdrs, (w + n_values) * sizeof *d->sess_hdrs);
  for (size_t v = 0; v < n_values; v++) {
    char *nm = gw_strdup(name), *vv = gw_strdup(values[v]);
    d->sess_hdrs[d->n_sess_hdrs++] = (struct bg_header){nm, strlen(nm), vv, strlen(vv)};
  }
}

static void door_upgrade_session(struct door *d, const struct gw_h1_request *req)
{
  size_t ul = 0;
  const char *uuid = gw_h1_header(req, "x-docker-expose-session-uuid", &ul);
  if (check_upgrade(d, req) != 0)
    return;
  if (!uuid || ul == 0) {
    /* A session nobody can name is useless and would be filed under "". */
    door_error(d, 400, "missing X-Docker-Expose-Session-Uuid header");
    return;
  }
  if (door_open_policy(d, req, "docker-session") != 0)
    return;
  d->route = GW_ROUTE_SESSION;
  /* The policy sees the session as a Control.Session call with its
   * X-Docker-Expose-Session-* headers as (lowercase) metadata. */
  struct bg_header *h = gw_calloc(req->n_headers + 1, sizeof *h);
  size_t n = 0;
  for (size_t i = 0; i < req->n_headers; i++) {
    const struct gw_h1_header *x = &req->headers[i];
    if (!gw_session_header_wanted(x->name, x->namelen) &&
        !(x->namelen == 13 && strncasecmp(x->name, "authorization", 13) == 0))
      continue;
    char *name = gw_malloc(x->namelen + 1);
    char *value = gw_strndup(x->value, x->valuelen);
    if (!name || !value) {
      free(name);
      free(value);
      continue;
    }
    for (size_t k = 0; k < x->namelen; k++)
      name[k] = (char)tolower((unsigned char)x->name[k]);
    name[x->namelen] = 0;
    h[n++] = (struct bg_header){name, x->namelen, value, x->valuelen};
  }
  d->sess_hdrs = h;
  d->n_sess_hdrs = n;
  if (gw_log_level >= GW_LOG_DEBUG) {
    /* What a session arrives with, before any edit (see h2_req.c). */
    size_t kl = 0;
    const char *k = gw_h1_header(req, "x-docker-expose-session-sharedkey", &kl);
    LOG_DBG("conn %llu: /session received uuid=%.*s sharedkey=%.*s", (unsigned long long)d->id, (int)ul, uuid,
            k ? (int)kl : 6, k ? k : "(none)");
  }
  struct bg_call_decision dec;
  static const char path[] = "/moby.buildkit.v1.Control/Session";
  d->call = bg_call_begin(d->pc, path, sizeof path - 1, h, n, &dec);
  if (!d->call) {
    door_error(d, 503, "out of memory");
    return;
  }
  if (dec.grpc_status) {
    gw_call_end(d->gw, d->call, dec.grpc_status, dec.message, 0, 0);
    d->call = NULL;
    door_error(d,
               dec.grpc_status == BG_GRPC_UNAUTHENTICATED      ? 401
               : dec.grpc_status == BG_GRPC_INVALID_ARGUMENT ? 400
                                                              : 403,
               dec.message);
    return;
  }
  /* Apply the policy's edits (e.g. tenant-namespaced session UUID) and drop
   * the credentials: the backend never sees tenant tokens.  (An edit cannot
   * fail half-applied: out of memory aborts, alloc.h.) */
  for (size_t e = 0; e < dec.n_edits; e++)
    door_set_header(d, dec.edits[e].name, (const char *const *)dec.edits[e].values, dec.edits[e].n_values);
  door_set_header(d, "authorization", NULL, 0);
  bufferevent_disable(d->bev, EV_READ);
  bufferevent_set_timeouts(d->bev, NULL, NULL);
  if (d->gw->backend_kind == BACKEND_GRPC) {
    /* A native backend has no /session: it is bridged into Control.Session
     * (door_dial_done), once the backend answers, as for any upgrade. */
    d->dial = gw_dial_backend(d->gw, "/grpc", NULL, door_dial_done, d);
    return;
  }
  struct evbuffer *extra = evbuffer_new();
  for (size_t i = 0; i < d->n_sess_hdrs; i++) {
    char name[256];
    size_t nl = d->sess_hdrs[i].namelen < sizeof name - 1 ? d->sess_hdrs[i].namelen : sizeof name - 1;
    canonical_name(name, d->sess_hdrs[i].name, nl);
    evbuffer_add_printf(extra, "%s: %s\r\n", name, d->sess_hdrs[i].value);
  }
  evbuffer_add(extra, "", 1);
  d->dial = gw_dial_backend(d->gw, "/session", (const char *)evbuffer_pullup(extra, -1), door_dial_done, d);
  evbuffer_free(extra);
}

/* Returns 1 when the connection stays in HTTP/1.1 (keep-alive), 0 when it was
 * upgraded, handed over or is closing: then |d| may already be freed. */
static int door_request(struct door *d, const struct gw_h1_request *req);

/* Serve HTTP/1.1 requests from the input buffer until an upgrade or a close. */
static void door_h1(struct door *d)
{
  struct evbuffer *in = bufferevent_get_input(d->bev);
  for (;;) {
    size_t len = evbuffer_get_length(in);
    if (len == 0)
      return;
    size_t look = len < GW_MAX_HEAD + 1 ? len : GW_MAX_HEAD + 1;
    const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)look);
    /* The parser keeps no state, so only run it again once the new bytes
     * could end the head (a blank line) or the size limit is reached: a
     * client trickling a 64 KiB head byte by byte costs one scan, not 64K. */
    size_t from = d->scanned > 3 ? d->scanned - 3 : 0;
    if (look <= GW_MAX_HEAD && from < look && !memmem(buf + from, look - from, "\n\r\n", 3) &&
        !memmem(buf + from, look - from, "\n\n", 2)) {
      d->scanned = look;
      return;
    }
    d->scanned = 0;
    struct gw_h1_request req;
    enum gw_h1_status st = gw_h1_parse(buf, look, GW_MAX_HEAD, &req);
    if (st == GW_H1_INCOMPLETE) {
      d->scanned = look;
      return;
    }
    if (st == GW_H1_TOO_LARGE) {
      door_error(d, 431, "request header too large");
      return;
    }
    if (st == GW_H1_BAD_VERSION) {
      door_error(d, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
      return;
    }
    if (st != GW_H1_DONE) {
      door_error(d, 400, "malformed HTTP request");
      return;
    }
    /* Take the head out of the input buffer before acting on it: what
     * follows (a pipelined request, the HTTP/2 preface) must stay queued,
     * and the parsed fields must not point into memory the buffer reuses. */
    char *head = gw_malloc(req.head_len);
    evbuffer_remove(in, head, req.head_len);
    if (gw_h1_parse(head, req.head_len, GW_MAX_HEAD, &req) != GW_H1_DONE) {
      free(head);
      door_error(d, 400, "malformed HTTP request");
      return;
    }
    int more = door_request(d, &req);
    free(head);
    if (!more)
      return;
  }
}

/* Act on one parsed request.  May free |d| only via a path that also stops
 * the caller's loop (upgrade or close). */
static int door_request(struct door *d, const struct gw_h1_request *req)
{
  char apiv[16];
  enum gw_route r = gw_h1_route(req, apiv);
  char msg[300];
  switch (r) {
  case GW_ROUTE_PING:
  case GW_ROUTE_VERSION:
    if (req->chunked || req->content_length > 0) {
      door_error(d, 400, "unexpected request body");
      return 0;
    }
    if (r == GW_ROUTE_PING)
      answer_ping(d, req, req->methodlen == 4 && memcmp(req->method, "HEAD", 4) == 0);
    else
      answer_version(d);
    if (!req->keep_alive) {
      door_close_after_write(d);
      return 0;
    }
    return 1;
  case GW_ROUTE_GRPC:
    door_upgrade_grpc(d, req);
    return 0;
  case GW_ROUTE_SESSION:
    door_upgrade_session(d, req);
    return 0;
  case GW_ROUTE_BAD_METHOD:
    snprintf(msg, sizeof msg, "method %.*s not allowed for %.*s", (int)(req->methodlen > 16 ? 16 : req->methodlen),
             req->method, (int)(req->targetlen > 200 ? 200 : req->targetlen), req->target);
    door_error(d, 405, msg);
    return 0;
  default:
    snprintf(msg, sizeof msg,
             "page not found: buildgate serves /_ping, /version, /grpc and /session, not %.*s",
             (int)(req->targetlen > 200 ? 200 : req->targetlen), req->target);
    door_error(d, 404, msg);
    return 0;
  }
}

static void door_readcb(struct bufferevent *bev, void *arg)
{
  struct door *d = arg;
  if (d->closing)
    return;
  struct evbuffer *in = bufferevent_get_input(bev);
  if (!d->in_h1) {
    size_t len = evbuffer_get_length(in);
    size_t look = len < GW_H2_PREFACE_LEN ? len : GW_H2_PREFACE_LEN;
    enum gw_sniff s = gw_sniff((const char *)evbuffer_pullup(in, (ssize_t)look), look);
    if (s == GW_SNIFF_NEED_MORE)
      return;
    if (s == GW_SNIFF_H2) {
      /* Native gRPC: the policy binds the tenant now; the bridge dials. */
      char *refusal = NULL, *line = NULL;
      d->pc = bg_conn_open(d->gw->policy, &d->link.peer->id, "grpc", d->id, &d->gw->facts, &refusal, &line);
      if (line)
        gw_audit_write(d->gw, line);
      if (!d->pc)
        LOG_INFO("conn %llu (%s): refused: %s", (unsigned long long)d->id, d->link.peer->peer,
                 refusal ? refusal : "no tenant");
      /* A refused native client still gets HTTP/2, so that each of its calls
       * can end with UNAUTHENTICATED and the reason, not a bare close. */
      door_to_bridge(d, 0, NULL, d->pc ? NULL : (refusal ? refusal : "no tenant matches"));
      free(refusal);
      return;
    }
    d->in_h1 = 1;
  }
  door_h1(d);
}

static void door_writecb(struct bufferevent *bev, void *arg)
{
  struct door *d = arg;
  if (d->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
    door_free(d);
}

static void door_eventcb(struct bufferevent *bev, short what, void *arg)
{
  struct door *d = arg;
  if (what & BEV_EVENT_TIMEOUT) {
    /* An idle keep-alive connection just closes; a half-sent request gets 408. */
    if (!d->closing && !d->dial && evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
      door_error(d, 408, "timed out waiting for a request");
      return;
    }
  }
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
    door_free(d);
}

static void door_destroy(struct gw_conn *c)
{
  door_free((struct door *)c);
}

static void door_shutdown(struct gw_conn *c)
{
  struct door *d = (struct door *)c;
  if (!d->dial && !d->closing)
    door_close_after_write(d);
}

void gw_frontdoor_accept(struct gw *gw, int fd, const struct sockaddr *sa, int salen, int is_unix)
{
  struct bufferevent *bev = bufferevent_socket_new(gw->base, fd, BEV_OPT_CLOSE_ON_FREE);
  if (!bev) {
    close(fd);
    return;
  }
  struct door *d = gw_calloc(1, sizeof *d);
  d->gw = gw;
  d->id = ++gw->next_conn_id;
  d->bev = bev;
  d->link.shutdown = door_shutdown;
  d->link.destroy = door_destroy;
  gw_conn_accept(gw, &d->link, fd, sa, salen, is_unix);
  LOG_DBG("conn %llu accepted from %s", (unsigned long long)d->id, d->link.peer->peer);
  struct timeval tv = {GW_HANDSHAKE_SECS, 0};
  bufferevent_set_timeouts(d->bev, &tv, NULL);
  bufferevent_setcb(d->bev, door_readcb, door_writecb, door_eventcb, d);
  bufferevent_enable(d->bev, EV_READ | EV_WRITE);
}

/*
 * gwcore.c: process-wide bookkeeping shared by the gateway's connection
 * objects: the registry SIGTERM walks to drain, which owns each client's
 * gw_peer (gw.h states the rule), and the audit log writer.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gateway/alloc.h"
#include "gateway/gw.h"
#include "gateway/log.h"

/* A client's transport identity. */

static struct gw_peer *peer_new(int fd, const struct sockaddr *sa, int salen, int is_unix)
{
  struct gw_peer *peer = gw_calloc(1, sizeof *peer);
  if (is_unix) {
    struct ucred uc;
    socklen_t l = sizeof uc;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &l) == 0) {
      peer->id.has_peercred = 1;
      peer->id.uid = uc.uid;
      peer->id.gid = uc.gid;
      peer->id.pid = uc.pid;
      snprintf(peer->peer, sizeof peer->peer, "unix:uid=%u,gid=%u,pid=%d", (unsigned)uc.uid, (unsigned)uc.gid,
               (int)uc.pid);
    } else {
      snprintf(peer->peer, sizeof peer->peer, "unix");
    }
  } else {
    char host[64] = "?", serv[16] = "?";
    getnameinfo(sa, (socklen_t)salen, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(peer->peer, sizeof peer->peer, "tcp:%s:%s", host, serv);
  }
  peer->id.peer = peer->peer;
  return peer;
}

static void peer_free(struct gw_peer *p)
{
  if (!p)
    return;
  free(p->token);
  free(p);
}


/* Connection registry (for draining). */

/* The front door's connection, just accepted: its peer is made here. */
void gw_conn_accept(struct gw *gw, struct gw_conn *c, int fd, const struct sockaddr *sa, int salen, int is_unix)
{
  gw_conn_link(gw, c, peer_new(fd, sa, salen, is_unix));
}

void gw_conn_link(struct gw *gw, struct gw_conn *c, struct gw_peer *peer)
{
  c->peer = peer;
  c->prev = NULL;
  c->next = gw->conns;
  if (c->next)
    c->next->prev = c;
  gw->conns = c;
  gw->n_conns++;
}

/* The connection moves to a new owner, which links it with this peer. */
struct gw_peer *gw_conn_give_peer(struct gw_conn *c)
{
  struct gw_peer *p = c->peer;
  c->peer = NULL;
  return p;
}

void gw_conn_unlink(struct gw *gw, struct gw_conn *c)
{
  peer_free(c->peer);
  c->peer = NULL;
  if (c->prev)
    c->prev->next = c->next;
  else
    gw->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  gw->n_conns--;
  if (gw->draining && gw->n_conns == 0)
    event_base_loopexit(gw->base, NULL);
}

/* Audit log. */

void gw_audit_write(struct gw *gw, char *line)
{
  if (gw->audit_fd >= 0 && line) {
    size_t n = strlen(line);
    line[n] = '\n'; /* overwrite the NUL; write the line in one call so O_APPEND keeps lines whole */
    ssize_t w = write(gw->audit_fd, line, n + 1);
    if (w != (ssize_t)(n + 1))
      LOG_ERR("audit log write failed: %s", w < 0 ? strerror(errno) : "short write");
  }
  free(line);
}


/* End a policy call and write its audit record.  The record is only built
 * when there is an audit log to write it to: serializing it costs more than
 * forwarding a small unary call. */
void gw_call_end(struct gw *gw, struct bg_call *call, int grpc_status, const char *grpc_message,
                 uint64_t bytes_from_client, uint64_t bytes_from_backend)
{
  char *line = NULL;
  bg_call_end(call, grpc_status, grpc_message, bytes_from_client, bytes_from_backend,
              gw->audit_fd >= 0 ? &line : NULL);
  if (line)
    gw_audit_write(gw, line);
}

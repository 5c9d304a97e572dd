/*
 * peer.c: a client's transport identity (struct gw_peer); gw.h states who
 * owns one.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "gateway/alloc.h"
#include "gateway/gw.h"

struct gw_peer *gw_peer_new(int fd, const struct sockaddr *sa, int salen, int is_unix)
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

void gw_peer_free(struct gw_peer *p)
{
  if (!p)
    return;
  free(p->token);
  free(p);
}

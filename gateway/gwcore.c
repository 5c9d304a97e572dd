/*
 * gwcore.c: process-wide bookkeeping shared by the gateway's connection
 * objects: the registry SIGTERM walks to drain, and the audit log writer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "gateway/gw.h"
#include "gateway/log.h"

/* Connection registry (for draining). */

void gw_conn_link(struct gw *gw, struct gw_conn *c)
{
  c->prev = NULL;
  c->next = gw->conns;
  if (c->next)
    c->next->prev = c;
  gw->conns = c;
  gw->n_conns++;
}

void gw_conn_unlink(struct gw *gw, struct gw_conn *c)
{
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

/* libevent 2.1 reads at most 4 KiB per readiness event (EVBUFFER_MAX_READ),
 * which makes bulk transfers cost one loop turn per 4 KiB.  Called from a
 * read callback, this pulls in whatever else the kernel already holds, up to
 * |max| bytes.  It asks FIONREAD first so an idle connection never gets
 * buffer space reserved for bytes that are not there. */
size_t gw_read_pending(struct bufferevent *bev, size_t max)
{
  evutil_socket_t fd = bufferevent_getfd(bev);
  int avail = 0;
  if (fd < 0 || ioctl(fd, FIONREAD, &avail) != 0 || avail <= 0)
    return 0;
  size_t want = (size_t)avail < max ? (size_t)avail : max;
  struct evbuffer *in = bufferevent_get_input(bev);
  struct evbuffer_iovec v[2];
  int n = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
  if (n <= 0)
    return 0;
  size_t room = 0;
  for (int i = 0; i < n; i++) {
    if (v[i].iov_len > want - room)
      v[i].iov_len = want - room;
    room += v[i].iov_len;
  }
  ssize_t got = readv(fd, (struct iovec *)v, n);
  if (got <= 0) {
    /* EOF or an error: the bufferevent sees it on its own next read. */
    evbuffer_commit_space(in, v, 0);
    return 0;
  }
  size_t left = (size_t)got;
  for (int i = 0; i < n; i++) {
    if (v[i].iov_len > left)
      v[i].iov_len = left;
    left -= v[i].iov_len;
  }
  evbuffer_commit_space(in, v, n);
  return (size_t)got;
}

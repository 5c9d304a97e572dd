/*
 * gwcore.c: process-wide bookkeeping shared by the gateway's connection
 * objects: the registry SIGTERM walks to drain, and the audit log writer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
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

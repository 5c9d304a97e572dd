/*
 * flush.h: the flush pass, the gateway's one place that writes and frees.
 *
 * Handlers never write and never free.  They change state and mark the
 * objects they touched (gw_flush_mark); one flush pass, which the event loop
 * runs after every handler that became ready in the same turn, asks each
 * marked object to write once and frees those that say they are finished.
 * So the requests of several clients that arrived together leave in one
 * write to their shared backend connection, and no object is freed under a
 * callback still using it.
 *
 * The scheduler knows nothing of what it flushes: an object embeds a
 * struct gw_flushable and names its operations.  Objects of a lower rank are
 * flushed first in each round (the HTTP/2 engine: client connections, then
 * backend connections, so the frames a round's client input produced reach
 * the backend in the same round).
 */
#ifndef BG_GW_FLUSH_H
#define BG_GW_FLUSH_H

#include <event2/event.h>

#define GW_FLUSH_RANKS 2

struct gw_flushable;

struct gw_flush_ops {
  unsigned rank; /* 0 .. GW_FLUSH_RANKS-1 */
  /* Write what the object has.  Returns 1 when the object is finished: the
   * pass then calls free, after which it never touches it again. */
  int (*flush)(struct gw_flushable *f);
  void (*free)(struct gw_flushable *f);
};

struct gw_flushable {
  const struct gw_flush_ops *ops;
  struct gw_flushable *dirty_next;
  int dirty; /* on its rank's list */
};

/* Create the pass's event on |base|, once; 0, or -1 out of memory. */
int gw_flush_init(struct event_base *base);
/* Put |f| on the next pass (at most once) and make sure a pass is scheduled. */
void gw_flush_mark(struct gw_flushable *f);
/* Take |f| off the pass: call this from an object's free. */
void gw_flush_forget(struct gw_flushable *f);
/* At exit: drop the event and the lists. */
void gw_flush_fini(void);

#endif

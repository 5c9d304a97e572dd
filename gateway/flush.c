/*
 * flush.c: the flush pass (see flush.h).
 */
#include "gateway/flush.h"

#include <stddef.h>

static struct {
  struct event *ev;
  int scheduled;
  struct gw_flushable *dirty[GW_FLUSH_RANKS]; /* newest first */
} F;

static void flush_cb(evutil_socket_t fd, short what, void *arg);

int gw_flush_init(struct event_base *base)
{
  if (!F.ev)
    F.ev = event_new(base, -1, 0, flush_cb, NULL);
  return F.ev ? 0 : -1;
}

static void schedule(void)
{
  if (!F.scheduled && F.ev) {
    F.scheduled = 1;
    event_active(F.ev, EV_TIMEOUT, 1);
  }
}

void gw_flush_mark(struct gw_flushable *f)
{
  if (!f->dirty) {
    f->dirty = 1;
    f->dirty_next = F.dirty[f->ops->rank];
    F.dirty[f->ops->rank] = f;
  }
  schedule();
}

void gw_flush_forget(struct gw_flushable *f)
{
  if (!f->dirty)
    return;
  struct gw_flushable **pp = &F.dirty[f->ops->rank];
  while (*pp && *pp != f)
    pp = &(*pp)->dirty_next;
  if (*pp)
    *pp = f->dirty_next;
  f->dirty = 0;
}

static int any_dirty(void)
{
  for (unsigned r = 0; r < GW_FLUSH_RANKS; r++)
    if (F.dirty[r])
      return 1;
  return 0;
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  (void)arg;
  F.scheduled = 0;
  /* Rounds, because writing one side can free room on the other (window
   * updates, queues drained); what is still marked after them waits for
   * the next loop turn instead of starving the other connections. */
  for (int round = 0; round < 8 && any_dirty(); round++) {
    for (unsigned r = 0; r < GW_FLUSH_RANKS; r++) {
      struct gw_flushable *l = F.dirty[r];
      F.dirty[r] = NULL;
      while (l) {
        struct gw_flushable *f = l;
        l = f->dirty_next;
        f->dirty = 0;
        if (f->ops->flush(f))
          f->ops->free(f); /* which takes it off the list again, if the flush put it back */
      }
    }
  }
  if (any_dirty())
    schedule();
}

void gw_flush_fini(void)
{
  if (F.ev)
    event_free(F.ev);
  F.ev = NULL;
  F.scheduled = 0;
  for (unsigned r = 0; r < GW_FLUSH_RANKS; r++)
    F.dirty[r] = NULL;
}

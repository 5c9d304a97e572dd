/*
 * h2_facts.c: request messages waiting for the backend facts.
 *
 * A decision that depends on what the backend is (a source policy needs
 * BuildKit v0.11+, and a known rule order) is never made as if the backend
 * were new: the message waits for the Control.Info probe, a few seconds at
 * most, and the policy then decides with the facts or, after the timeout,
 * without them (it refuses with UNAVAILABLE).  Nothing reaches the backend
 * meanwhile: its stream opens only once the message is approved.
 *
 * This file keeps the waiting list and the held messages; deciding again is
 * the request path's (gw_facts_init names the function), so that the
 * stream's lifetime (h2_stream.c), which unlinks waiters, does not depend on
 * the request path. */
#include <stdlib.h>
#include <string.h>

#include "gateway/alloc.h"
#include "gateway/h2_int.h"

#define GW_FACTS_WAIT_SECS 5

static struct bstream *waiters; /* streams holding a message until the facts are known */
static gw_facts_resume_fn resume; /* gw_req_facts_resume */

void gw_facts_init(gw_facts_resume_fn fn)
{
  resume = fn;
}

void gw_facts_unlink(struct bstream *s)
{
  if (s->facts_ev) {
    event_free(s->facts_ev);
    s->facts_ev = NULL;
    if (s->wprev)
      s->wprev->wnext = s->wnext;
    else
      waiters = s->wnext;
    if (s->wnext)
      s->wnext->wprev = s->wprev;
    s->wprev = s->wnext = NULL;
  }
  free(s->held);
  s->held = NULL;
}

/* Decide the held message again (facts known, or the wait is over). */
static void facts_resume(struct bstream *s)
{
  uint8_t *m = s->held;
  size_t n = s->held_len;
  int z = s->held_compressed;
  s->held = NULL;
  gw_facts_unlink(s);
  gw_bridge_mark(s->b);
  if (!m || gw_stream_moot(s) || s->cst == GW_C_CLOSED) {
    free(m);
    return;
  }
  resume(s, m, n, z);
  free(m);
}

static void facts_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
  struct bstream *s = arg;
  bg_call_facts_timeout(s->call);
  facts_resume(s);
}

void gw_facts_wake(void)
{
  while (waiters)
    facts_resume(waiters);
}

void gw_facts_wait(struct bstream *s, const uint8_t *msg, size_t len, int compressed)
{
  struct timeval tv = {GW_FACTS_WAIT_SECS, 0};
  s->held = gw_malloc(len ? len : 1);
  s->facts_ev = evtimer_new(s->b->gw->base, facts_timeout_cb, s);
  evtimer_add(s->facts_ev, &tv);
  memcpy(s->held, msg, len);
  s->held_len = len;
  s->held_compressed = compressed;
  s->wnext = waiters;
  if (waiters)
    waiters->wprev = s;
  waiters = s;
}

/*
 * h2_inspect.c: inspection memory, the budgets that bound what the gateway
 * holds of request messages the policy inspects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gateway/h2_int.h"
#include "gateway/log.h"

/* A request the policy inspects is assembled message by message (rreq) and
 * only a whole, approved message moves on; so the bytes of a message being
 * assembled stay in the gateway until its last byte arrives.  Acknowledging
 * them as they come would let a client make the gateway hold every message
 * up to max_message_bytes on every stream it opens and never finishes.
 *
 * So each partial message must first reserve its declared length from two
 * budgets, its connection's and the process's (struct gw, GW_INSPECT_*).
 * Until it has, its bytes are not acknowledged: the client may send what its
 * stream window already allows (256 KiB: a message that small completes
 * without any reservation), then waits (see ib_relieve for the connection
 * window).  Reserving the whole message at once, rather than byte by byte,
 * means no two half-received messages can each wait for the other's share;
 * a message larger than a budget is admitted when nothing else holds that
 * budget, so every message within max_message_bytes can finish.  Waiting
 * streams are served oldest first (a connection's own streams keep their
 * order), so small messages do not starve a large one.
 *
 * The reservation is kept while the approved message waits in the queue
 * toward the backend and returned once the queue is short (gw_req_release), or
 * when the stream fails or ends.  A partial message that gets no byte, or no
 * reservation, for --inspect-stall-timeout seconds ends the stream with
 * RESOURCE_EXHAUSTED; the connection and its other streams go on. */
static struct {
  size_t used;                  /* budget held by every stream */
  struct bstream *head, *tail;  /* streams waiting for budget, oldest first */
  unsigned pass;
  struct event *pump_ev;        /* serves the wait list after a release */
  int pump_scheduled;
} IB;

/* What the budgets do to a stream goes through these (gw_ib_init): a grant
 * acknowledges what the stream holds (gw_req_release), a stall fails it
 * (gw_stream_fail).  Both live in h2_stream.c, which calls this file when a
 * stream ends, so calling them directly would make a circle of the two. */
static struct {
  void (*release)(struct bstream *s);
  void (*fail)(struct bstream *s, int status, const char *msg);
} H;

void gw_ib_init(void (*release)(struct bstream *s), void (*fail)(struct bstream *s, int status, const char *msg))
{
  H.release = release;
  H.fail = fail;
}

static uint64_t ib_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t ib_conn_budget(const struct gw *gw)
{
  return gw->inspect_conn_budget ? gw->inspect_conn_budget : GW_INSPECT_CONN_BUDGET;
}

static size_t ib_budget(const struct gw *gw)
{
  return gw->inspect_budget ? gw->inspect_budget : GW_INSPECT_BUDGET;
}

static unsigned ib_stall_secs(const struct gw *gw)
{
  return gw->inspect_stall_secs ? gw->inspect_stall_secs : GW_INSPECT_STALL_SECS;
}

static void ib_unwait(struct bstream *s)
{
  if (!s->ib_waiting)
    return;
  if (s->ib_prev)
    s->ib_prev->ib_next = s->ib_next;
  else
    IB.head = s->ib_next;
  if (s->ib_next)
    s->ib_next->ib_prev = s->ib_prev;
  else
    IB.tail = s->ib_prev;
  s->ib_prev = s->ib_next = NULL;
  s->ib_waiting = 0;
}

static void ib_give_back(struct bstream *s, size_t n)
{
  if (!n)
    return;
  s->b->ib_used -= n;
  IB.used -= n;
  /* Serve the wait list from the event loop, not from here: a release can
   * come from inside gw_stream_free or bridge_free, where granting (which
   * acknowledges bytes on a client session) must not run. */
  if (IB.head && IB.pump_ev && !IB.pump_scheduled) {
    IB.pump_scheduled = 1;
    event_active(IB.pump_ev, EV_TIMEOUT, 1);
  }
}

void gw_ib_release_queued(struct bstream *s)
{
  size_t n = s->ib_queued;
  s->ib_queued = 0;
  ib_give_back(s, n);
}

/* The stream is done with inspection (failed, or being freed when |final|):
 * give back its budget and its partial message's buffer. */
void gw_ib_forget(struct bstream *s, int final)
{
  ib_unwait(s);
  size_t n = s->ib_resv + s->ib_queued;
  s->ib_resv = s->ib_queued = 0;
  ib_give_back(s, n);
  if (s->ib_timer) {
    event_del(s->ib_timer);
    if (final) {
      event_free(s->ib_timer);
      s->ib_timer = NULL;
    }
  }
  if (final) {
    s->b->ib_relief -= s->ib_relieved;
    s->ib_relieved = 0;
  }
  /* A failed stream reads no more; a client that keeps it open must not
   * keep up to max_message_bytes with it. */
  if (s->inspect_req)
    bg_frame_reader_free(&s->rreq);
}

/* The client closed the stream: the stream window is gone, but the
 * connection window of what it still held must come back, or the connection
 * would shrink by it for good. */
void gw_ib_client_closed(struct bstream *s)
{
  struct bridge *b = s->b;
  if (s->req_held > s->ib_relieved) {
    nghttp2_session_consume_connection(b->cs, s->req_held - s->ib_relieved);
    gw_bridge_mark(b);
  }
  b->ib_relief -= s->ib_relieved;
  s->ib_relieved = 0;
  s->req_held = 0;
}

/* Waiting streams hold their bytes unacknowledged, and the connection window
 * is shared: a few of them (1 MiB / 256 KiB) would close it for the streams
 * of the same connection that do hold a reservation, and those could then
 * never finish.  So the connection-level window of waiting streams' bytes is
 * given back (their stream windows stay closed: each sends at most 256 KiB),
 * up to as much as the connection has reserved: the memory of waiting bytes
 * stays within the budgets too, at worst doubling them. */
static void ib_relieve(struct bridge *b)
{
  for (struct bstream *s = b->streams; s && b->ib_relief < b->ib_used; s = s->next) {
    if (!s->ib_waiting || s->cst == GW_C_CLOSED || s->req_held <= s->ib_relieved)
      continue;
    size_t n = s->req_held - s->ib_relieved, room = b->ib_used - b->ib_relief;
    if (n > room)
      n = room;
    nghttp2_session_consume_connection(b->cs, n);
    s->ib_relieved += n;
    b->ib_relief += n;
    gw_bridge_mark(b);
  }
}

/* 0: |s| may reserve its message now; 1: its connection's budget is full;
 * 2: the process budget is full. */
static int ib_fits(const struct bstream *s, size_t need)
{
  const struct bridge *b = s->b;
  /* Sizes are at most 1 GiB (max_message_bytes) and budgets a few GiB: no overflow. */
  if (b->ib_used && b->ib_used + need > ib_conn_budget(b->gw))
    return 1;
  if (IB.used && IB.used + need > ib_budget(b->gw))
    return 2;
  return 0;
}

static void ib_grant(struct bstream *s, size_t need)
{
  ib_unwait(s);
  s->ib_resv = need;
  s->b->ib_used += need;
  IB.used += need;
  s->ib_last_ms = ib_now_ms(); /* waiting was not the client's doing */
  H.release(s);                   /* what it sent meanwhile is acknowledged now */
  ib_relieve(s->b);
  gw_bridge_mark(s->b);
}

/* Give budget to waiting streams, oldest first.  A stream blocked by its
 * connection's budget lets other connections' streams pass, but not its own
 * connection's later streams; one blocked by the process budget stops the
 * pass, so later (smaller) messages cannot starve it. */
static void ib_pump(void)
{
  unsigned pass = ++IB.pass;
  for (struct bstream *s = IB.head, *next; s; s = next) {
    next = s->ib_next;
    if (s->b->ib_pass == pass)
      continue;
    size_t need = s->rreq.need;
    int why = ib_fits(s, need);
    if (why == 2)
      break;
    if (why == 1) {
      s->b->ib_pass = pass;
      continue;
    }
    ib_grant(s, need);
  }
}

static void ib_pump_cb(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  (void)arg;
  IB.pump_scheduled = 0;
  ib_pump();
}

static void ib_timer_cb(evutil_socket_t fd, short what, void *arg)
{
  struct bstream *s = arg;
  struct gw *gw = s->b->gw;
  (void)fd;
  (void)what;
  if (gw_stream_moot(s) || s->cst == GW_C_CLOSED || bg_frame_reader_idle(&s->rreq))
    return;
  uint64_t limit = (uint64_t)ib_stall_secs(gw) * 1000, idle = ib_now_ms() - s->ib_last_ms;
  if (idle < limit) {
    uint64_t left = limit - idle;
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    evtimer_add(s->ib_timer, &tv);
    return;
  }
  char msg[300];
  if (s->ib_waiting)
    snprintf(msg, sizeof msg,
             "request message of %zu bytes waited %u s for inspection memory (gateway limits: "
             "--inspect-conn-budget %zu MiB, --inspect-budget %zu MiB, --inspect-stall-timeout %u s)",
             s->rreq.need, ib_stall_secs(gw), ib_conn_budget(gw) >> 20, ib_budget(gw) >> 20, ib_stall_secs(gw));
  else
    snprintf(msg, sizeof msg,
             "request message stalled at %zu of %zu bytes: nothing received for %u s (gateway limit: "
             "--inspect-stall-timeout %u s)",
             s->rreq.prefix_have < BG_GRPC_PREFIX_LEN ? s->rreq.prefix_have : BG_GRPC_PREFIX_LEN + s->rreq.have,
             s->rreq.prefix_have < BG_GRPC_PREFIX_LEN ? (size_t)BG_GRPC_PREFIX_LEN : BG_GRPC_PREFIX_LEN + s->rreq.need,
             ib_stall_secs(gw), ib_stall_secs(gw));
  LOG_INFO("conn %llu stream %d: %s", (unsigned long long)s->b->id, s->cid, msg);
  H.fail(s, BG_GRPC_RESOURCE_EXHAUSTED, msg); /* audited as the call's status */
}

/* After request bytes went into the assembler: keep the stall timer and the
 * reservation in step with what is partial now.  |got|: bytes just fed. */
void gw_ib_update(struct bstream *s, size_t got)
{
  struct bridge *b = s->b;
  const struct bg_frame_reader *r = &s->rreq;
  if (gw_stream_moot(s))
    return;
  if (bg_frame_reader_idle(r)) {
    ib_unwait(s); /* its message came whole within the window */
    if (s->ib_timer)
      event_del(s->ib_timer);
    return;
  }
  if (got)
    s->ib_last_ms = ib_now_ms();
  if (!s->ib_timer)
    s->ib_timer = evtimer_new(b->gw->base, ib_timer_cb, s);
  if (!evtimer_pending(s->ib_timer, NULL)) {
    struct timeval tv = {(time_t)ib_stall_secs(b->gw), 0};
    evtimer_add(s->ib_timer, &tv);
  }
  if (r->prefix_have < BG_GRPC_PREFIX_LEN) {
    ib_unwait(s); /* a new message whose length is not known yet: nothing to reserve */
    return;
  }
  if (s->ib_resv)
    return;
  if (s->ib_waiting) {
    ib_relieve(b);
    return;
  }
  if (!IB.pump_ev)
    IB.pump_ev = event_new(b->gw->base, -1, 0, ib_pump_cb, NULL);
  s->ib_waiting = 1;
  s->ib_prev = IB.tail;
  s->ib_next = NULL;
  if (IB.tail)
    IB.tail->ib_next = s;
  else
    IB.head = s;
  IB.tail = s;
  ib_pump();
  if (s->ib_waiting)
    ib_relieve(b);
}

/* The assembler handed over a whole message: its reservation now covers the
 * copy queued toward the backend. */
void gw_ib_msg_done(struct bstream *s)
{
  s->ib_queued += s->ib_resv;
  s->ib_resv = 0;
}

/* At exit. */
void gw_ib_fini(void)
{
  if (IB.pump_ev)
    event_free(IB.pump_ev);
  IB.pump_ev = NULL;
  IB.pump_scheduled = 0;
}

/*
 * alloc.h: the gateway's one out-of-memory policy: abort.
 *
 * Like Redis (zmalloc_default_oom) and h2o (h2o_fatal), the gateway does not
 * try to run on when memory runs out.  A proxy that degrades instead must
 * handle failure at every allocation, its libraries' included, and the ones
 * it misses do harm silently (an evbuffer_add of a gRPC length prefix that
 * succeeds while the one of its body fails forwards a corrupt stream).  So
 * gw_malloc and the others below never return NULL: they log and abort, and
 * the service manager restarts the daemon (deploy/buildgate.service:
 * Restart=on-failure).  gw_alloc_init makes libevent and jansson allocate
 * through them, and the HTTP/2 engine gives nghttp2 gw_nghttp2_mem; so no
 * gateway code checks an allocation.  (policy/ keeps its own contract: a
 * NULL from bg_call_begin and the like is still handled.)
 */
#ifndef BG_GW_ALLOC_H
#define BG_GW_ALLOC_H

#include <stddef.h>
#include <stdlib.h>

/* Log and abort: also for the few allocators that cannot be given these. */
_Noreturn void gw_oom(size_t n);

/* Inline: libevent and nghttp2 call these for every buffer chain and frame,
 * and a call more per allocation was measurable (tests/bench/callgrind.sh). */
static inline void *gw_malloc(size_t n)
{
  void *p = malloc(n);
  if (__builtin_expect(!p && n, 0))
    gw_oom(n);
  return p;
}

static inline void *gw_calloc(size_t n, size_t size)
{
  void *p = calloc(n, size);
  if (__builtin_expect(!p && n && size, 0))
    gw_oom(n * size);
  return p;
}

static inline void *gw_realloc(void *p, size_t n)
{
  void *q = realloc(p, n);
  if (__builtin_expect(!q && n, 0))
    gw_oom(n);
  return q;
}

char *gw_strdup(const char *s);
char *gw_strndup(const char *s, size_t n);
/* Before any libevent or jansson call (main). */
void gw_alloc_init(void);

#endif

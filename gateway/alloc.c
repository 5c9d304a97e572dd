/*
 * alloc.c: see alloc.h.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "gateway/alloc.h"

_Noreturn void gw_oom(size_t n)
{
  /* No stdio buffers, no allocation: a fixed message straight to stderr. */
  char msg[96];
  int l = snprintf(msg, sizeof msg, "buildgate: out of memory (%zu bytes): aborting\n", n);
  if (l > 0 && write(2, msg, (size_t)l) < 0)
    l = 0;
  abort();
}

char *gw_strdup(const char *s)
{
  char *d = strdup(s);
  if (!d)
    gw_oom(strlen(s) + 1);
  return d;
}

char *gw_strndup(const char *s, size_t n)
{
  char *d = strndup(s, n);
  if (!d)
    gw_oom(n + 1);
  return d;
}

void gw_alloc_init(void)
{
  event_set_mem_functions(gw_malloc, gw_realloc, free);
  json_set_alloc_funcs(gw_malloc, free);
}

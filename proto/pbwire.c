#include <stdlib.h>
#include <string.h>

#include "proto/pbwire.h"

size_t bg_pb_varint_encode(uint8_t out[10], uint64_t v)
{
  size_t n = 0;
  do {
    out[n] = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v)
      out[n] |= 0x80;
    n++;
  } while (v);
  return n;
}

void bg_pbuf_put(struct bg_pbuf *o, const void *d, size_t n)
{
  if (o->oom || n == 0)
    return;
  if (o->n + n > o->cap) {
    size_t nc = o->cap ? o->cap * 2 : 256;
    while (nc < o->n + n)
      nc *= 2;
    uint8_t *nb = realloc(o->b, nc);
    if (!nb) {
      o->oom = 1;
      return;
    }
    o->b = nb;
    o->cap = nc;
  }
  memcpy(o->b + o->n, d, n);
  o->n += n;
}

void bg_pbuf_varint(struct bg_pbuf *o, uint64_t v)
{
  uint8_t t[10];
  bg_pbuf_put(o, t, bg_pb_varint_encode(t, v));
}

void bg_pbuf_bytes(struct bg_pbuf *o, uint64_t field, const void *d, size_t n)
{
  bg_pbuf_varint(o, field << 3 | 2);
  bg_pbuf_varint(o, n);
  bg_pbuf_put(o, d, n);
}

/*
 * h2_hdrs.c: header lists (struct hdrs), as both sessions hand them over.
 */
#include <stdlib.h>
#include <string.h>

#include "gateway/alloc.h"
#include "gateway/h2_int.h"

void gw_hdrs_add(struct hdrs *h, const uint8_t *name, size_t nl, const uint8_t *value, size_t vl)
{
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 16;
    h->nv = gw_realloc(h->nv, cap * sizeof *h->nv);
    h->cap = cap;
  }
  size_t need = nl + 1 + vl + 1;
  struct hblock *b = h->blocks;
  if (!b || b->cap - b->used < need) {
    /* Most header lists fit in one block; a larger header gets a block its size. */
    size_t cap = need > HBLOCK_BYTES ? need : HBLOCK_BYTES;
    b = gw_malloc(sizeof *b + cap);
    b->used = 0;
    b->cap = cap;
    b->next = h->blocks;
    h->blocks = b;
  }
  uint8_t *n = b->data + b->used;
  uint8_t *v = n + nl + 1;
  b->used += need;
  memcpy(n, name, nl);
  n[nl] = 0;
  memcpy(v, value, vl);
  v[vl] = 0;
  h->nv[h->n++] = (nghttp2_nv){n, v, nl, vl, NGHTTP2_NV_FLAG_NONE};
  h->bytes += nl + vl + 32;
}

void gw_hdrs_adds(struct hdrs *h, const char *name, const char *value)
{
  gw_hdrs_add(h, (const uint8_t *)name, strlen(name), (const uint8_t *)value, strlen(value));
}

/* The request headers of a gRPC call the gateway makes itself. */
void gw_hdrs_grpc_request(struct hdrs *h, const char *path)
{
  gw_hdrs_adds(h, ":method", "POST");
  gw_hdrs_adds(h, ":scheme", "http");
  gw_hdrs_adds(h, ":path", path);
  gw_hdrs_adds(h, ":authority", "buildgate");
  gw_hdrs_adds(h, "content-type", "application/grpc");
  gw_hdrs_adds(h, "te", "trailers");
}

void gw_hdrs_free(struct hdrs *h)
{
  while (h->blocks) {
    struct hblock *next = h->blocks->next;
    free(h->blocks);
    h->blocks = next;
  }
  free(h->nv);
  memset(h, 0, sizeof *h);
}

const char *gw_hdrs_get(const struct hdrs *h, const char *name)
{
  for (size_t i = 0; i < h->n; i++)
    if (strcmp((const char *)h->nv[i].name, name) == 0)
      return (const char *)h->nv[i].value;
  return NULL;
}

/* Connection-specific headers never cross a proxy (RFC 9113 §8.2.2). */
int gw_hop_by_hop(const uint8_t *name, size_t nl)
{
  static const char *const names[] = {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                                      "upgrade",    "http2-settings", "host"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (nl == strlen(names[i]) && memcmp(name, names[i], nl) == 0)
      return 1;
  return 0;
}

/* Apply the policy's header edits to the request headers in place. */
void gw_hdrs_apply_edits(struct hdrs *h, const struct bg_header_edit *e, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    size_t w = 0;
    for (size_t r = 0; r < h->n; r++) {
      /* A removed header's bytes stay in its block until the list is freed. */
      if (strcmp((const char *)h->nv[r].name, e[i].name) != 0)
        h->nv[w++] = h->nv[r];
    }
    h->n = w;
    for (size_t v = 0; v < e[i].n_values; v++)
      gw_hdrs_adds(h, e[i].name, e[i].values[v]);
  }
}

/* Kept for gw.h's callers; the encoding is proto/'s (grpc_msg.h). */
char *gw_grpc_message_encode(const char *msg)
{
  return bg_grpc_message_encode(msg);
}

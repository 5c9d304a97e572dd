/*
 * fuzz_http1.c: libFuzzer target for the front door's sniffer, HTTP/1.1
 * parser and router.  Besides memory safety it checks the invariants the
 * daemon relies on: results point inside the input, a parsed head re-parses
 * identically from exactly its own bytes, every shorter prefix asks for
 * more, and max_head is honoured to the byte.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/http1.h"

#define CHECK(c)                                                                                                       \
  do {                                                                                                                 \
    if (!(c))                                                                                                          \
      __builtin_trap();                                                                                                \
  } while (0)

static int inside(const char *base, size_t len, const char *p, size_t n)
{
  return p >= base && (size_t)(p - base) <= len && n <= len - (size_t)(p - base);
}

static int same_request(const struct gw_h1_request *a, const struct gw_h1_request *b)
{
  if (a->head_len != b->head_len || a->n_headers != b->n_headers || a->methodlen != b->methodlen ||
      a->targetlen != b->targetlen || a->minor_version != b->minor_version ||
      a->content_length != b->content_length || a->chunked != b->chunked || a->keep_alive != b->keep_alive)
    return 0;
  for (size_t i = 0; i < a->n_headers; i++)
    if (a->headers[i].namelen != b->headers[i].namelen || a->headers[i].valuelen != b->headers[i].valuelen)
      return 0;
  return 1;
}

static void check_request(const char *buf, size_t len, const struct gw_h1_request *req)
{
  CHECK(req->head_len > 0);
  CHECK(req->head_len <= len);
  CHECK(inside(buf, req->head_len, req->method, req->methodlen) && req->methodlen > 0);
  CHECK(inside(buf, req->head_len, req->target, req->targetlen) && req->targetlen > 0);
  CHECK(req->target[0] == '/');
  CHECK(req->minor_version == 0 || req->minor_version == 1);
  CHECK(req->n_headers <= GW_H1_MAX_HEADERS);
  CHECK(!(req->chunked && req->content_length >= 0));
  for (size_t i = 0; i < req->n_headers; i++) {
    const struct gw_h1_header *h = &req->headers[i];
    CHECK(h->namelen > 0 && inside(buf, req->head_len, h->name, h->namelen));
    CHECK(inside(buf, req->head_len, h->value, h->valuelen));
    for (size_t k = 0; k < h->valuelen; k++) {
      unsigned char c = (unsigned char)h->value[k];
      CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
    }
    if (h->valuelen) {
      CHECK(h->value[0] != ' ' && h->value[0] != '\t');
      CHECK(h->value[h->valuelen - 1] != ' ' && h->value[h->valuelen - 1] != '\t');
    }
    /* lookup by this header's own name finds a header with that name */
    char name[256];
    if (h->namelen < sizeof name) {
      memcpy(name, h->name, h->namelen);
      name[h->namelen] = '\0';
      size_t vl = (size_t)-1;
      const char *v = gw_h1_header(req, name, &vl);
      CHECK(v != NULL && vl != (size_t)-1 && inside(buf, req->head_len, v, vl));
      (void)gw_h1_header_has_token(req, name, "upgrade");
    }
  }
  char apiv[16];
  memset(apiv, 'Z', sizeof apiv);
  enum gw_route r = gw_h1_route(req, apiv);
  CHECK(memchr(apiv, '\0', sizeof apiv) != NULL);
  CHECK(r >= GW_ROUTE_UNKNOWN && r <= GW_ROUTE_BAD_METHOD);
  (void)gw_h1_route(req, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *buf = (const char *)data;
  struct gw_h1_request req, again;

  enum gw_sniff s = gw_sniff(buf, size);
  CHECK(s == GW_SNIFF_NEED_MORE || s == GW_SNIFF_H1 || s == GW_SNIFF_H2);
  if (s == GW_SNIFF_H2)
    CHECK(size >= GW_H2_PREFACE_LEN);

  /* The connection loop: parse heads back to back as the front door does. */
  size_t off = 0;
  for (int n = 0; n < 8 && off < size; n++) {
    const char *p = buf + off;
    size_t len = size - off;
    enum gw_h1_status st = gw_h1_parse(p, len, 65536, &req);
    CHECK(st >= GW_H1_BAD_VERSION && st <= GW_H1_DONE);
    if (st != GW_H1_DONE)
      break;
    check_request(p, len, &req);

    /* exactly the head's bytes parse the same; one byte less needs more */
    char *copy = malloc(req.head_len);
    CHECK(copy != NULL);
    memcpy(copy, p, req.head_len);
    CHECK(gw_h1_parse(copy, req.head_len, 65536, &again) == GW_H1_DONE);
    CHECK(same_request(&req, &again));
    CHECK(gw_h1_parse(copy, req.head_len - 1, 65536, &again) == GW_H1_INCOMPLETE);
    /* max_head is inclusive */
    CHECK(gw_h1_parse(copy, req.head_len, req.head_len, &again) == GW_H1_DONE);
    CHECK(gw_h1_parse(copy, req.head_len, req.head_len - 1, &again) == GW_H1_TOO_LARGE);
    free(copy);
    off += req.head_len;
  }

  /* A small max_head: never DONE with a head above it. */
  size_t small = size ? (size_t)data[0] % 97 + 8 : 8;
  enum gw_h1_status st = gw_h1_parse(buf, size, small, &req);
  if (st == GW_H1_DONE)
    CHECK(req.head_len <= small);
  if (size > small)
    CHECK(st != GW_H1_INCOMPLETE);
  return 0;
}

/*
 * pbwire.h: the few protobuf wire-format writes the project does by hand,
 * where going through generated code would lose unknown fields or drag in
 * schemas (walking LLBBridge requests field by field, encoding a profile's
 * source policy, wrapping session bytes in BytesMessage).
 */
#ifndef BG_PBWIRE_H
#define BG_PBWIRE_H

#include <stddef.h>
#include <stdint.h>

/* A growing output buffer.  Allocation failure sets |oom| and turns every
 * later write into a no-op, so callers check once at the end. */
struct bg_pbuf {
  uint8_t *b;
  size_t n, cap;
  int oom;
};

/* Encode |v| as a base-128 varint into |out|; returns its length (1..10). */
size_t bg_pb_varint_encode(uint8_t out[10], uint64_t v);

void bg_pbuf_put(struct bg_pbuf *o, const void *d, size_t n);
void bg_pbuf_varint(struct bg_pbuf *o, uint64_t v);
/* A length-delimited field (bytes, string or sub-message). */
void bg_pbuf_bytes(struct bg_pbuf *o, uint64_t field, const void *d, size_t n);

#endif

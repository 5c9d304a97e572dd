/*
 * grpc_msg.c: see grpc_msg.h.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/grpc_msg.h"
#include "proto/pbtok.h"
#include "proto/pbwire.h"

char *bg_grpc_message_encode(const char *msg)
{
  size_t n = strlen(msg);
  char *out = malloc(n * 3 + 1), *w = out;
  if (!out)
    return NULL;
  for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
    if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
      *w++ = (char)*p;
    } else {
      static const char hex[] = "0123456789ABCDEF";
      *w++ = '%';
      *w++ = hex[*p >> 4];
      *w++ = hex[*p & 15];
    }
  }
  *w = 0;
  return out;
}

size_t bg_bytesmsg_head(uint8_t out[BG_BYTESMSG_HEAD_MAX], size_t n)
{
  size_t hl = BG_GRPC_PREFIX_LEN;
  out[hl++] = 0x0a; /* field 1, wire type 2 (length-delimited) */
  size_t vl = bg_pb_varint_encode(out + hl, n);
  hl += vl;
  bg_frame_prefix(out, 0, (uint32_t)(1 + vl + n));
  return hl;
}

int bg_bytesmsg_data(const uint8_t *msg, size_t len, const uint8_t **d, size_t *dl)
{
  return bg_pb_last_bytes(msg, len, 1, d, dl) < 0 ? -1 : 0;
}

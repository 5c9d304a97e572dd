/*
 * grpc_encoding.c: the grpc-encoding header and gzip inflation (see
 * grpc_encoding.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "proto/grpc_encoding.h"

enum bg_grpc_enc bg_grpc_encoding_parse(const char *value, size_t len)
{
  if (len == 8 && strncasecmp(value, "identity", 8) == 0)
    return BG_GRPC_ENC_IDENTITY;
  if (len == 4 && strncasecmp(value, "gzip", 4) == 0)
    return BG_GRPC_ENC_GZIP;
  return BG_GRPC_ENC_OTHER;
}

int bg_grpc_gunzip(const uint8_t *in, size_t inlen, size_t max, uint8_t **out, size_t *outlen, int *too_big)
{
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  *too_big = 0;
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
    return -1;
  size_t cap = inlen * 4 < 4096 ? 4096 : inlen * 4;
  if (cap > max + 1)
    cap = max + 1;
  uint8_t *buf = malloc(cap);
  if (!buf) {
    inflateEnd(&zs);
    return -1;
  }
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)inlen;
  size_t have = 0;
  int rc;
  for (;;) {
    zs.next_out = buf + have;
    zs.avail_out = (uInt)(cap - have);
    rc = inflate(&zs, Z_NO_FLUSH);
    have = cap - zs.avail_out;
    if (rc == Z_STREAM_END)
      break;
    if (rc != Z_OK && rc != Z_BUF_ERROR)
      goto fail;
    if (have > max) {
      *too_big = 1;
      goto fail;
    }
    if (zs.avail_out == 0) {
      if (cap > max) {
        *too_big = 1;
        goto fail;
      }
      size_t nc = cap * 2 > max + 1 ? max + 1 : cap * 2;
      uint8_t *nb = realloc(buf, nc);
      if (!nb)
        goto fail;
      buf = nb;
      cap = nc;
    } else if (rc == Z_BUF_ERROR || zs.avail_in == 0) {
      goto fail; /* truncated stream */
    }
  }
  if (have > max) {
    *too_big = 1;
    goto fail;
  }
  /* Trailing bytes after the gzip member are not a valid message. */
  if (zs.avail_in != 0)
    goto fail;
  inflateEnd(&zs);
  *out = buf;
  *outlen = have;
  return 0;
fail:
  inflateEnd(&zs);
  free(buf);
  return -1;
}

/*
 * fuzz_grpc_frame.c: libFuzzer target for the incremental gRPC message
 * reader.
 *
 * Input layout: byte 0 picks max_len, byte 1 seeds the chunking, byte 2 says
 * after how many messages the callback stops parsing (0: never); the rest is
 * the byte stream.  The stream is read three ways (one piece; chunks of
 * input-derived sizes, each an exact-size heap copy so ASan catches
 * over-reads; one piece with a stopping callback then resumed) and the
 * results must agree.  Every delivered message is re-framed into a log, and
 * the log must equal the consumed input byte for byte.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/grpc_frame.h"

#define CHECK(c)                                                                                                       \
  do {                                                                                                                 \
    if (!(c))                                                                                                          \
      __builtin_trap();                                                                                                \
  } while (0)

struct log {
  uint8_t *buf;
  size_t len, cap;
  size_t n;          /* messages seen */
  size_t stop_after; /* return 1 when n reaches this (0: never) */
};

static int on_msg(void *arg, const uint8_t *msg, size_t len, int compressed)
{
  struct log *l = arg;
  CHECK(msg != NULL);
  CHECK(compressed == 0 || compressed == 1);
  /* a message never holds more than its share of the input */
  CHECK(len <= l->cap && BG_GRPC_PREFIX_LEN <= l->cap - len && l->len <= l->cap - BG_GRPC_PREFIX_LEN - len);
  bg_frame_prefix(l->buf + l->len, compressed, (uint32_t)len);
  if (len)
    memcpy(l->buf + l->len + BG_GRPC_PREFIX_LEN, msg, len);
  l->len += BG_GRPC_PREFIX_LEN + len;
  l->n++;
  return l->stop_after && l->n == l->stop_after ? 1 : 0;
}

static uint32_t next_rand(uint32_t *s)
{
  uint32_t x = *s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *s = x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const size_t limits[8] = {0, 1, 5, 16, 300, 4096, 65536, 1 << 20};
  if (size < 3)
    return 0;
  size_t max_len = limits[data[0] & 7];
  uint32_t seed = 0x9e3779b9u ^ ((uint32_t)data[1] << 8) ^ (uint32_t)size;
  size_t max_chunk = 1 + (size_t)(data[1] >> 3) * 3; /* 1 .. 94 bytes */
  size_t stop_after = data[2] % 8;
  const uint8_t *in = data + 3;
  size_t n = size - 3;

  struct bg_frame_reader r;
  size_t used = 0;

  /* A: the whole stream in one feed. */
  struct log a = {malloc(n + 1), 0, n, 0, 0};
  CHECK(a.buf != NULL);
  bg_frame_reader_init(&r, max_len);
  int rv_a = bg_frame_reader_feed(&r, in, n, &used, on_msg, &a);
  size_t used_a = used;
  CHECK(rv_a == BG_FRAME_OK || rv_a == BG_FRAME_TOO_LARGE || rv_a == BG_FRAME_BAD_FLAG);
  CHECK(used_a <= n && a.len <= used_a);
  CHECK(memcmp(a.buf, in, a.len) == 0); /* re-framed messages == consumed input */
  if (rv_a == BG_FRAME_OK) {
    CHECK(used_a == n);
    CHECK(bg_frame_reader_idle(&r) == (a.len == n));
  } else {
    CHECK(used_a == a.len + BG_GRPC_PREFIX_LEN); /* the refused prefix, nothing more */
    CHECK(!bg_frame_reader_idle(&r));
    CHECK(r.buf == NULL);
    size_t again = 99;
    CHECK(bg_frame_reader_feed(&r, in, n, &again, on_msg, &a) == rv_a && again == 0); /* sticky */
  }
  bg_frame_reader_free(&r);

  /* B: the same bytes in chunks of input-derived sizes, including empty feeds. */
  struct log b = {malloc(n + 1), 0, n, 0, 0};
  CHECK(b.buf != NULL);
  bg_frame_reader_init(&r, max_len);
  size_t off = 0;
  int rv_b = BG_FRAME_OK;
  while (off < n) {
    size_t c = next_rand(&seed) % (max_chunk + 1);
    if (c > n - off)
      c = n - off;
    uint8_t *piece = malloc(c ? c : 1);
    CHECK(piece != NULL);
    memcpy(piece, in + off, c);
    rv_b = bg_frame_reader_feed(&r, piece, c, &used, on_msg, &b);
    free(piece);
    CHECK(used <= c);
    off += used;
    if (rv_b != BG_FRAME_OK)
      break;
    CHECK(used == c);
  }
  CHECK(rv_b == rv_a && off == used_a);
  CHECK(b.len == a.len && b.n == a.n && memcmp(a.buf, b.buf, a.len) == 0);
  bg_frame_reader_free(&r);

  /* C: a callback that stops after |stop_after| messages, then resuming. */
  if (stop_after) {
    struct log c = {malloc(n + 1), 0, n, 0, stop_after};
    CHECK(c.buf != NULL);
    bg_frame_reader_init(&r, max_len);
    int rv = bg_frame_reader_feed(&r, in, n, &used, on_msg, &c);
    if (a.n >= stop_after) {
      CHECK(rv == 1 && c.n == stop_after && used == c.len);
      CHECK(bg_frame_reader_idle(&r));
      c.stop_after = 0;
      size_t rest;
      rv = bg_frame_reader_feed(&r, in + used, n - used, &rest, on_msg, &c);
      used += rest;
    }
    CHECK(rv == rv_a && used == used_a);
    CHECK(c.len == a.len && memcmp(a.buf, c.buf, a.len) == 0);
    bg_frame_reader_free(&r);
    free(c.buf);
  }

  free(a.buf);
  free(b.buf);
  return 0;
}

/*
 * test_grpc_frame.c: gRPC length-prefix reader and writer, using message
 * bodies captured from buildctl <-> buildkitd (tests/fixtures/grpc/), framed
 * here and fed in every way the network can split them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/grpc_frame.h"
#include "fixture.h"

#define FIX "../fixtures/grpc/"


/* What the callback saw: a copy of every message, in order. */
#define MAX_MSGS 64
struct sink {
  size_t n;
  uint8_t *msg[MAX_MSGS];
  size_t len[MAX_MSGS];
  int compressed[MAX_MSGS];
  size_t stop_after; /* return stop_rv after this many messages (0: never) */
  int stop_rv;
};

static int on_msg(void *arg, const uint8_t *msg, size_t len, int compressed)
{
  struct sink *s = arg;
  assert_non_null(msg); /* even for zero-length messages */
  assert_true(s->n < MAX_MSGS);
  s->msg[s->n] = malloc(len ? len : 1);
  assert_non_null(s->msg[s->n]);
  memcpy(s->msg[s->n], msg, len);
  s->len[s->n] = len;
  s->compressed[s->n] = compressed;
  s->n++;
  if (s->stop_after && s->n == s->stop_after)
    return s->stop_rv;
  return 0;
}

static void sink_clear(struct sink *s)
{
  for (size_t i = 0; i < s->n; i++)
    free(s->msg[i]);
  memset(s, 0, sizeof *s);
}

/* The captured bodies that the stream below is built from. */
static const char *const fixture_files[] = {
    FIX "admin-listworkers-req.bin",   /* 0 bytes */
    FIX "admin-listworkers-resp.bin",  FIX "admin-prune-req.bin",        FIX "dockerfile-status-req.bin",
    FIX "dockerfile-solve-req.bin",    FIX "dockerfile-session-req.bin", FIX "admin-diskusage-resp.bin",
    FIX "dockerfile-llbsolve-resp.bin",
};
#define N_FIX (sizeof fixture_files / sizeof fixture_files[0])

struct corpus {
  uint8_t *body[N_FIX];
  size_t len[N_FIX];
  uint8_t *stream; /* all of them framed back to back; message 3 marked compressed */
  size_t stream_len;
};

static struct corpus C;

static int setup(void **state)
{
  (void)state;
  size_t total = 0;
  for (size_t i = 0; i < N_FIX; i++) {
    C.body[i] = fixture_load(fixture_files[i], &C.len[i]);
    total += BG_GRPC_PREFIX_LEN + C.len[i];
  }
  C.stream = malloc(total);
  if (!C.stream)
    return -1;
  size_t off = 0;
  for (size_t i = 0; i < N_FIX; i++) {
    bg_frame_prefix(C.stream + off, i == 3, (uint32_t)C.len[i]);
    off += BG_GRPC_PREFIX_LEN;
    memcpy(C.stream + off, C.body[i], C.len[i]);
    off += C.len[i];
  }
  C.stream_len = total;
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  for (size_t i = 0; i < N_FIX; i++)
    free(C.body[i]);
  free(C.stream);
  return 0;
}

static void assert_corpus_messages(const struct sink *s)
{
  assert_int_equal(s->n, N_FIX);
  for (size_t i = 0; i < N_FIX; i++) {
    assert_int_equal(s->len[i], C.len[i]);
    assert_memory_equal(s->msg[i], C.body[i], C.len[i]);
    assert_int_equal(s->compressed[i], i == 3);
  }
}

/* Feed |len| bytes as an exact-size heap copy so ASan sees any over-read. */
static int feed_copy(struct bg_frame_reader *r, const uint8_t *p, size_t len, size_t *used, struct sink *s)
{
  uint8_t *c = malloc(len ? len : 1);
  assert_non_null(c);
  memcpy(c, p, len);
  int rv = bg_frame_reader_feed(r, c, len, used, on_msg, s);
  free(c);
  return rv;
}

static void test_prefix_encoding(void **state)
{
  (void)state;
  uint8_t p[BG_GRPC_PREFIX_LEN];
  bg_frame_prefix(p, 0, 0);
  assert_memory_equal(p, "\0\0\0\0\0", 5);
  bg_frame_prefix(p, 1, 0x01020304);
  assert_memory_equal(p, "\x01\x01\x02\x03\x04", 5);
  bg_frame_prefix(p, 7, 0xffffffffu); /* any non-zero means compressed */
  assert_memory_equal(p, "\x01\xff\xff\xff\xff", 5);
  bg_frame_prefix(p, 0, 605);
  assert_memory_equal(p, "\x00\x00\x00\x02\x5d", 5);
}

static void test_one_feed(void **state)
{
  (void)state;
  struct bg_frame_reader r;
  struct sink s = {0};
  size_t used = 0;
  bg_frame_reader_init(&r, 1 << 20);
  assert_true(bg_frame_reader_idle(&r));
  assert_int_equal(feed_copy(&r, C.stream, C.stream_len, &used, &s), BG_FRAME_OK);
  assert_int_equal(used, C.stream_len);
  assert_corpus_messages(&s);
  assert_true(bg_frame_reader_idle(&r));
  bg_frame_reader_free(&r);
  sink_clear(&s);
}

/* Two pieces, split at every byte boundary of the stream. */
static void test_split_everywhere(void **state)
{
  (void)state;
  for (size_t k = 0; k <= C.stream_len; k++) {
    struct bg_frame_reader r;
    struct sink s = {0};
    size_t used;
    bg_frame_reader_init(&r, 1 << 20);
    assert_int_equal(feed_copy(&r, C.stream, k, &used, &s), BG_FRAME_OK);
    assert_int_equal(used, k);
    assert_int_equal(feed_copy(&r, C.stream + k, C.stream_len - k, &used, &s), BG_FRAME_OK);
    assert_int_equal(used, C.stream_len - k);
    assert_corpus_messages(&s);
    assert_true(bg_frame_reader_idle(&r));
    bg_frame_reader_free(&r);
    sink_clear(&s);
  }
}

/* One byte at a time (the prefix too), then assorted chunk sizes. */
static void test_dribble(void **state)
{
  (void)state;
  static const size_t chunk_cycles[][5] = {{1, 1, 1, 1, 1}, {2, 3, 5, 7, 11}, {4, 0, 6, 1, 1000}, {5, 5, 5, 5, 5}};
  for (size_t c = 0; c < sizeof chunk_cycles / sizeof chunk_cycles[0]; c++) {
    struct bg_frame_reader r;
    struct sink s = {0};
    bg_frame_reader_init(&r, 1 << 20);
    size_t off = 0, i = 0;
    while (off < C.stream_len) {
      size_t n = chunk_cycles[c][i++ % 5];
      if (n > C.stream_len - off)
        n = C.stream_len - off;
      size_t used;
      assert_int_equal(feed_copy(&r, C.stream + off, n, &used, &s), BG_FRAME_OK);
      assert_int_equal(used, n);
      off += n;
    }
    assert_corpus_messages(&s);
    assert_true(bg_frame_reader_idle(&r));
    bg_frame_reader_free(&r);
    sink_clear(&s);
  }
}

static void test_zero_length(void **state)
{
  (void)state;
  struct bg_frame_reader r;
  struct sink s = {0};
  size_t used;
  bg_frame_reader_init(&r, 16);
  /* a zero-length message is delivered as soon as its prefix is complete */
  assert_int_equal(bg_frame_reader_feed(&r, (const uint8_t *)"\0\0\0", 3, &used, on_msg, &s), BG_FRAME_OK);
  assert_int_equal(s.n, 0);
  assert_false(bg_frame_reader_idle(&r));
  assert_int_equal(bg_frame_reader_feed(&r, (const uint8_t *)"\0\0", 2, &used, on_msg, &s), BG_FRAME_OK);
  assert_int_equal(s.n, 1);
  assert_int_equal(s.len[0], 0);
  assert_int_equal(s.compressed[0], 0);
  assert_true(bg_frame_reader_idle(&r));
  /* three empty messages, one compressed, in one feed */
  assert_int_equal(bg_frame_reader_feed(&r, (const uint8_t *)"\0\0\0\0\0\1\0\0\0\0\0\0\0\0\0", 15, &used, on_msg, &s),
                   BG_FRAME_OK);
  assert_int_equal(used, 15);
  assert_int_equal(s.n, 4);
  assert_int_equal(s.compressed[2], 1);
  /* even with max_len 0 */
  bg_frame_reader_free(&r);
  bg_frame_reader_init(&r, 0);
  assert_int_equal(bg_frame_reader_feed(&r, (const uint8_t *)"\0\0\0\0\0", 5, &used, on_msg, &s), BG_FRAME_OK);
  assert_int_equal(s.n, 5);
  assert_int_equal(bg_frame_reader_feed(&r, (const uint8_t *)"\0\0\0\0\1", 5, &used, on_msg, &s), BG_FRAME_TOO_LARGE);
  bg_frame_reader_free(&r);
  sink_clear(&s);
}

static void test_empty_feed(void **state)
{
  (void)state;
  struct bg_frame_reader r;
  struct sink s = {0};
  size_t used = 99;
  bg_frame_reader_init(&r, 16);
  assert_int_equal(bg_frame_reader_feed(&r, NULL, 0, &used, on_msg, &s), BG_FRAME_OK);
  assert_int_equal(used, 0);
  assert_true(bg_frame_reader_idle(&r));
  assert_int_equal(s.n, 0);
  bg_frame_reader_free(&r);
}

static void test_too_large(void **state)
{
  (void)state;
  struct bg_frame_reader r;
  struct sink s = {0};
  size_t used;
  /* exactly max_len is fine */
  bg_frame_reader_init(&r, C.len[1]);
  assert_int_equal(feed_copy(&r, C.stream + 5, 5 + C.len[1], &used, &s), BG_FRAME_OK);
  assert_int_equal(s.n, 1);
  bg_frame_reader_free(&r);
  /* one less: refused at the prefix, before any body byte or allocation */
  bg_frame_reader_init(&r, C.len[1] - 1);
  assert_int_equal(feed_copy(&r, C.stream + 5, 5 + C.len[1], &used, &s), BG_FRAME_TOO_LARGE);
  assert_int_equal(used, 5);
  assert_int_equal(s.n, 1);
  assert_null(r.buf);
  assert_false(bg_frame_reader_idle(&r));
  /* the stream stays refused */
  assert_int_equal(feed_copy(&r, C.stream + 10, 4, &used, &s), BG_FRAME_TOO_LARGE);
  assert_int_equal(used, 0);
  bg_frame_reader_free(&r);
  /* a 4 GiB declaration does not make the reader allocate 4 GiB */
  bg_frame_reader_init(&r, 1 << 20);
  assert_int_equal(bg_frame_reader_feed(&r, (const uint8_t *)"\0\xff\xff\xff\xff" "abc", 8, &used, on_msg, &s),
                   BG_FRAME_TOO_LARGE);
  assert_int_equal(used, 5);
  assert_null(r.buf);
  bg_frame_reader_free(&r);
  /* the limit applies to the prefix even when it arrives byte by byte */
  bg_frame_reader_init(&r, 100);
  const uint8_t big[] = {0, 0, 0, 0, 101};
  for (size_t i = 0; i < 4; i++)
    assert_int_equal(bg_frame_reader_feed(&r, big + i, 1, &used, on_msg, &s), BG_FRAME_OK);
  assert_int_equal(bg_frame_reader_feed(&r, big + 4, 1, &used, on_msg, &s), BG_FRAME_TOO_LARGE);
  assert_int_equal(used, 1);
  bg_frame_reader_free(&r);
  sink_clear(&s);
}

static void test_bad_flag(void **state)
{
  (void)state;
  const uint8_t flags[] = {2, 0x80, 0xff};
  for (size_t i = 0; i < sizeof flags; i++) {
    struct bg_frame_reader r;
    struct sink s = {0};
    size_t used;
    bg_frame_reader_init(&r, 1 << 20);
    uint8_t m[5 + 5 + 2];
    bg_frame_prefix(m, 0, 0);          /* a good empty message first */
    bg_frame_prefix(m + 5, 0, 2);
    m[5] = flags[i];
    m[10] = 'h';
    m[11] = 'i';
    assert_int_equal(feed_copy(&r, m, sizeof m, &used, &s), BG_FRAME_BAD_FLAG);
    assert_int_equal(used, 10);
    assert_int_equal(s.n, 1);
    assert_int_equal(feed_copy(&r, m + 10, 2, &used, &s), BG_FRAME_BAD_FLAG);
    assert_int_equal(used, 0);
    assert_int_equal(s.n, 1);
    bg_frame_reader_free(&r);
    sink_clear(&s);
  }
}

/* The callback's non-zero return stops parsing right after that message;
 * feeding the rest later picks up where it stopped. */
static void test_callback_stop(void **state)
{
  (void)state;
  for (size_t stop = 1; stop <= N_FIX; stop++) {
    struct bg_frame_reader r;
    struct sink s = {0};
    s.stop_after = stop;
    s.stop_rv = 42;
    size_t used;
    bg_frame_reader_init(&r, 1 << 20);
    assert_int_equal(feed_copy(&r, C.stream, C.stream_len, &used, &s), 42);
    assert_int_equal(s.n, stop);
    size_t want = 0;
    for (size_t i = 0; i < stop; i++)
      want += 5 + C.len[i];
    assert_int_equal(used, want);
    assert_true(bg_frame_reader_idle(&r));
    s.stop_after = 0;
    assert_int_equal(feed_copy(&r, C.stream + used, C.stream_len - used, &used, &s), BG_FRAME_OK);
    assert_corpus_messages(&s);
    bg_frame_reader_free(&r);
    sink_clear(&s);
  }
  /* stopping on a message assembled from pieces frees its buffer correctly */
  struct bg_frame_reader r;
  struct sink s = {0};
  s.stop_after = 2;
  s.stop_rv = -7;
  size_t used, off = 0;
  bg_frame_reader_init(&r, 1 << 20);
  int rv = 0;
  while (off < C.stream_len && rv == 0) {
    size_t n = C.stream_len - off < 100 ? C.stream_len - off : 100;
    rv = feed_copy(&r, C.stream + off, n, &used, &s);
    off += used;
  }
  assert_int_equal(rv, -7);
  assert_int_equal(s.n, 2);
  assert_int_equal(off, 10 + C.len[1]);
  bg_frame_reader_free(&r);
  sink_clear(&s);
}

static void test_idle_states(void **state)
{
  (void)state;
  struct bg_frame_reader r;
  struct sink s = {0};
  size_t used;
  bg_frame_reader_init(&r, 1 << 20);
  assert_true(bg_frame_reader_idle(&r));
  /* inside the prefix */
  for (size_t k = 1; k < 5; k++) {
    assert_int_equal(feed_copy(&r, C.stream + 5 + (k - 1), 1, &used, &s), BG_FRAME_OK);
    assert_false(bg_frame_reader_idle(&r));
  }
  /* prefix done, no body yet: still mid-message, nothing allocated yet */
  assert_int_equal(feed_copy(&r, C.stream + 9, 1, &used, &s), BG_FRAME_OK);
  assert_false(bg_frame_reader_idle(&r));
  assert_null(r.buf);
  /* part of the body */
  assert_int_equal(feed_copy(&r, C.stream + 10, 100, &used, &s), BG_FRAME_OK);
  assert_false(bg_frame_reader_idle(&r));
  assert_non_null(r.buf);
  assert_int_equal(r.have, 100);
  assert_int_equal(r.need, C.len[1]);
  /* the rest of it */
  assert_int_equal(feed_copy(&r, C.stream + 110, C.len[1] - 100, &used, &s), BG_FRAME_OK);
  assert_true(bg_frame_reader_idle(&r));
  assert_null(r.buf);
  assert_int_equal(s.n, 1);
  assert_memory_equal(s.msg[0], C.body[1], C.len[1]);
  bg_frame_reader_free(&r);
  sink_clear(&s);
}

/* Freeing a reader that holds half a message releases it (LSan checks) and
 * leaves a reader that works again. */
static void test_free_midway(void **state)
{
  (void)state;
  struct bg_frame_reader r;
  struct sink s = {0};
  size_t used;
  bg_frame_reader_init(&r, 1 << 20);
  assert_int_equal(feed_copy(&r, C.stream + 5, 300, &used, &s), BG_FRAME_OK);
  assert_non_null(r.buf);
  bg_frame_reader_free(&r);
  assert_null(r.buf);
  assert_true(bg_frame_reader_idle(&r));
  bg_frame_reader_free(&r); /* twice is harmless */
  assert_int_equal(feed_copy(&r, C.stream, C.stream_len, &used, &s), BG_FRAME_OK);
  assert_corpus_messages(&s);
  bg_frame_reader_free(&r);
  sink_clear(&s);
}

static void test_null_callback(void **state)
{
  (void)state;
  struct bg_frame_reader r;
  size_t used;
  bg_frame_reader_init(&r, 1 << 20);
  assert_int_equal(bg_frame_reader_feed(&r, C.stream, C.stream_len - 1, &used, NULL, NULL), BG_FRAME_OK);
  assert_int_equal(used, C.stream_len - 1);
  assert_false(bg_frame_reader_idle(&r));
  assert_int_equal(bg_frame_reader_feed(&r, C.stream + C.stream_len - 1, 1, NULL, NULL, NULL), BG_FRAME_OK);
  assert_true(bg_frame_reader_idle(&r));
  bg_frame_reader_free(&r);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_prefix_encoding), cmocka_unit_test(test_one_feed),
      cmocka_unit_test(test_split_everywhere), cmocka_unit_test(test_dribble),
      cmocka_unit_test(test_zero_length),     cmocka_unit_test(test_empty_feed),
      cmocka_unit_test(test_too_large),       cmocka_unit_test(test_bad_flag),
      cmocka_unit_test(test_callback_stop),   cmocka_unit_test(test_idle_states),
      cmocka_unit_test(test_free_midway),     cmocka_unit_test(test_null_callback),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

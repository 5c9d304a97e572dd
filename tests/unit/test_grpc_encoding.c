/*
 * test_grpc_encoding.c: proto/grpc_encoding.c, the grpc-encoding header and
 * gzip inflation the policy applies before inspecting a compressed message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>

#include "proto/grpc_encoding.h"

/* One gzip member of |n| bytes of |in|. */
static uint8_t *gz(const uint8_t *in, size_t n, size_t *outlen)
{
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  size_t cap = deflateBound(&zs, n) + 16;
  uint8_t *o = malloc(cap);
  assert_non_null(o);
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)n;
  zs.next_out = o;
  zs.avail_out = (uInt)cap;
  assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
  *outlen = cap - zs.avail_out;
  deflateEnd(&zs);
  return o;
}

static void test_encoding_names(void **st)
{
  (void)st;
  assert_int_equal(bg_grpc_encoding_parse("identity", 8), BG_GRPC_ENC_IDENTITY);
  assert_int_equal(bg_grpc_encoding_parse("GZip", 4), BG_GRPC_ENC_GZIP);
  assert_int_equal(bg_grpc_encoding_parse("gzip, deflate", 13), BG_GRPC_ENC_OTHER);
  assert_int_equal(bg_grpc_encoding_parse("gzi", 3), BG_GRPC_ENC_OTHER);
  assert_int_equal(bg_grpc_encoding_parse("snappy", 6), BG_GRPC_ENC_OTHER);
  /* the length decides, not a NUL: "gzip" followed by more bytes is not gzip */
  assert_int_equal(bg_grpc_encoding_parse("gzipx", 5), BG_GRPC_ENC_OTHER);
}

static void test_gunzip_round_trip_and_bound(void **st)
{
  (void)st;
  uint8_t plain[10000];
  for (size_t i = 0; i < sizeof plain; i++)
    plain[i] = (uint8_t)(i * 7);
  size_t zn = 0;
  uint8_t *z = gz(plain, sizeof plain, &zn);
  uint8_t *out = NULL;
  size_t outlen = 0;
  int too_big = -1;
  assert_int_equal(bg_grpc_gunzip(z, zn, sizeof plain, &out, &outlen, &too_big), 0);
  assert_int_equal(too_big, 0);
  assert_int_equal(outlen, sizeof plain);
  assert_memory_equal(out, plain, sizeof plain);
  free(out);
  /* one byte over the bound: refused as too big, nothing returned */
  out = NULL;
  assert_int_equal(bg_grpc_gunzip(z, zn, sizeof plain - 1, &out, &outlen, &too_big), -1);
  assert_int_equal(too_big, 1);
  assert_null(out);
  /* truncated member and trailing garbage: invalid, not too big */
  assert_int_equal(bg_grpc_gunzip(z, zn - 4, sizeof plain, &out, &outlen, &too_big), -1);
  assert_int_equal(too_big, 0);
  uint8_t *longer = malloc(zn + 1);
  assert_non_null(longer);
  memcpy(longer, z, zn);
  longer[zn] = 'x';
  assert_int_equal(bg_grpc_gunzip(longer, zn + 1, sizeof plain, &out, &outlen, &too_big), -1);
  assert_int_equal(too_big, 0);
  free(longer);
  free(z);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_encoding_names),
      cmocka_unit_test(test_gunzip_round_trip_and_bound),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

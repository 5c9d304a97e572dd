/*
 * fuzz_pbcheck.c: the validator that runs before protobuf-c (proto/pbcheck).
 * The first input byte picks the message type (and whether unknown fields
 * are accepted or left to the LLB default), the rest is the message.
 * Invariants, each an abort:
 *   - accepted => protobuf-c unpacks it, and allocates no more than the
 *     validator's estimate (the decoding-cost bound holds);
 *   - accepted => protobuf-c's re-encoding is accepted too (same rules; the
 *     cost limit relaxed, since dropped zero values shrink the wire size).
 * Seeds: the captured fixtures, each behind the byte selecting its type.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/control.pb-c.h"
#include "proto/gateway.pb-c.h"
#include "proto/ops.pb-c.h"
#include "proto/pbcheck.h"
#include "proto/sourcepolicy.pb-c.h"

static const ProtobufCMessageDescriptor *const types[] = {
    &moby__buildkit__v1__solve_request__descriptor,                     /* 0 */
    &moby__buildkit__v1__frontend__solve_request__descriptor,           /* 1 */
    &pb__op__descriptor,                                                /* 2 */
    &pb__definition__descriptor,                                        /* 3 */
    &moby__buildkit__v1__frontend__new_container_request__descriptor,   /* 4 */
    &moby__buildkit__v1__frontend__exec_message__descriptor,            /* 5 */
    &moby__buildkit__v1__frontend__resolve_image_config_request__descriptor, /* 6 */
    &moby__buildkit__v1__frontend__resolve_source_meta_request__descriptor,  /* 7 */
    &moby__buildkit__v1__status_request__descriptor,                    /* 8 */
    &moby__buildkit__v1__build_history_event__descriptor,               /* 9 */
    &moby__buildkit__v1__info_response__descriptor,                     /* 10 */
    &moby__buildkit__v1__sourcepolicy__policy__descriptor,              /* 11 */
    &moby__buildkit__v1__list_workers_response__descriptor,             /* 12 */
    &moby__buildkit__v1__disk_usage_response__descriptor,               /* 13 */
    &moby__buildkit__v1__prune_request__descriptor,                     /* 14 */
    &moby__buildkit__v1__bytes_message__descriptor,                     /* 15 */
};
#define N_TYPES (sizeof types / sizeof *types)

struct counting {
  ProtobufCAllocator a;
  size_t bytes;
};
static void *count_alloc(void *d, size_t n)
{
  ((struct counting *)d)->bytes += n;
  return malloc(n);
}
static void count_free(void *d, void *p) { free(p); }

static int accept_unknown(void *arg, const struct bg_pbcheck_unknown *u) { return 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  const ProtobufCMessageDescriptor *d = types[data[0] % N_TYPES];
  struct bg_pbcheck_opts all = {.on_unknown = accept_unknown};
  const struct bg_pbcheck_opts *opts = data[0] & 0x80 ? &all : NULL;
  const uint8_t *msg = data + 1;
  size_t len = size - 1;
  struct bg_pbcheck_result res;
  if (bg_pbcheck(d, msg, len, opts, &res) != BG_PBCHECK_OK) {
    if (!res.msg[0])
      abort(); /* a refusal always says why */
    return 0;
  }
  struct counting c = {{count_alloc, count_free, NULL}, 0};
  c.a.allocator_data = &c;
  ProtobufCMessage *m = protobuf_c_message_unpack(d, &c.a, len, msg);
  if (!m) {
    fprintf(stderr, "validated %s but protobuf-c cannot unpack it\n", d->name);
    abort();
  }
  if (c.bytes > res.cost) {
    fprintf(stderr, "%s: protobuf-c allocated %zu bytes, estimate %zu\n", d->name, c.bytes, res.cost);
    abort();
  }
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *out = malloc(n ? n : 1);
  if (protobuf_c_message_pack(m, out) != n)
    abort();
  struct bg_pbcheck_opts relaxed = {.on_unknown = accept_unknown, .cost_factor = 1u << 20};
  struct bg_pbcheck_result res2;
  if (bg_pbcheck(d, out, n, &relaxed, &res2) != BG_PBCHECK_OK) {
    fprintf(stderr, "%s: re-encoding refused: %s\n", d->name, res2.msg);
    abort();
  }
  free(out);
  protobuf_c_message_free_unpacked(m, &c.a);
  return 0;
}

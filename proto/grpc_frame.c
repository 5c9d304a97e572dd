/*
 * grpc_frame.c: incremental reader and writer for gRPC length-prefixed
 * messages (1 byte compressed flag, 4 bytes big-endian length, body).
 */
#include "proto/grpc_frame.h"

#include <stdlib.h>
#include <string.h>

/* Zero-length messages are delivered with a valid, non-NULL pointer. */
static const uint8_t empty_msg[1];

void bg_frame_reader_init(struct bg_frame_reader *r, size_t max_len)
{
  memset(r, 0, sizeof *r);
  r->max_len = max_len;
}

static void reset_message(struct bg_frame_reader *r)
{
  r->prefix_have = 0;
  r->need = 0;
  r->have = 0;
  r->compressed = 0;
}

void bg_frame_reader_free(struct bg_frame_reader *r)
{
  if (!r)
    return;
  free(r->buf);
  r->buf = NULL;
  reset_message(r);
}

/* Validate a complete prefix and load need/compressed from it.  Run again on
 * every feed while the prefix is held, so a rejected stream keeps returning
 * its error instead of resuming in the middle of garbage. */
static int load_prefix(struct bg_frame_reader *r)
{
  if (r->prefix[0] > 1)
    return BG_FRAME_BAD_FLAG;
  uint32_t n = (uint32_t)r->prefix[1] << 24 | (uint32_t)r->prefix[2] << 16 | (uint32_t)r->prefix[3] << 8 |
               (uint32_t)r->prefix[4];
  if ((uint64_t)n > (uint64_t)r->max_len)
    return BG_FRAME_TOO_LARGE;
  r->need = n;
  r->compressed = r->prefix[0];
  return BG_FRAME_OK;
}

int bg_frame_reader_feed(struct bg_frame_reader *r, const uint8_t *data, size_t len, size_t *consumed,
                         bg_frame_msg_cb on_msg, void *arg)
{
  size_t pos = 0;
  int rv = BG_FRAME_OK;
  if (!data)
    len = 0;

  for (;;) {
    if (r->prefix_have < BG_GRPC_PREFIX_LEN) {
      if (pos == len)
        break;
      size_t take = BG_GRPC_PREFIX_LEN - r->prefix_have;
      if (take > len - pos)
        take = len - pos;
      memcpy(r->prefix + r->prefix_have, data + pos, take);
      r->prefix_have += take;
      pos += take;
      if (r->prefix_have < BG_GRPC_PREFIX_LEN)
        break;
      r->have = 0;
    }
    if ((rv = load_prefix(r)) != BG_FRAME_OK)
      break;

    const uint8_t *msg;
    uint8_t *owned = NULL;
    size_t mlen = r->need;
    int compressed = r->compressed;
    if (!r->buf && r->have == 0 && len - pos >= r->need) {
      /* The whole body is in this chunk: hand it out in place, no copy. */
      msg = r->need ? data + pos : empty_msg;
      pos += r->need;
    } else {
      if (pos == len)
        break; /* allocate only once body bytes actually arrive */
      if (!r->buf) {
        /* need <= max_len was checked by load_prefix before this */
        r->buf = malloc(r->need);
        if (!r->buf) {
          rv = BG_FRAME_NOMEM;
          break;
        }
      }
      size_t take = r->need - r->have;
      if (take > len - pos)
        take = len - pos;
      memcpy(r->buf + r->have, data + pos, take);
      r->have += take;
      pos += take;
      if (r->have < r->need)
        break;
      msg = owned = r->buf;
      r->buf = NULL;
    }
    /* Detach the message from the reader before the callback runs, so the
     * callback may free or re-feed the reader without confusing it. */
    reset_message(r);
    int cb = on_msg ? on_msg(arg, msg, mlen, compressed) : 0;
    free(owned);
    if (cb != 0) {
      rv = cb;
      break;
    }
  }
  if (consumed)
    *consumed = pos;
  return rv;
}

int bg_frame_reader_idle(const struct bg_frame_reader *r)
{
  return r->prefix_have == 0 && r->have == 0 && r->buf == NULL;
}

void bg_frame_prefix(uint8_t out[BG_GRPC_PREFIX_LEN], int compressed, uint32_t len)
{
  out[0] = compressed ? 1 : 0;
  out[1] = (uint8_t)(len >> 24);
  out[2] = (uint8_t)(len >> 16);
  out[3] = (uint8_t)(len >> 8);
  out[4] = (uint8_t)len;
}

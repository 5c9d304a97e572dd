/*
 * grpc_frame.h: gRPC length-prefixed message framing.
 *
 * On the wire each message is: 1 byte compressed flag, 4 bytes big-endian
 * length, then the message.  A message may be split across any number of
 * HTTP/2 DATA frames and one DATA frame may hold several messages, so the
 * gateway feeds bytes as they come and gets whole messages back.
 */
#ifndef BG_GRPC_FRAME_H
#define BG_GRPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define BG_GRPC_PREFIX_LEN 5
/* gRPC's default limit on a message, BuildKit's too (16 MiB): where no
 * policy sets max_message_bytes. */
#define BG_GRPC_DEFAULT_MAX_MSG ((size_t)16 << 20)

enum bg_frame_err {
  BG_FRAME_OK = 0,
  BG_FRAME_TOO_LARGE = -1, /* declared length above the reader's limit */
  BG_FRAME_BAD_FLAG = -2,  /* compressed flag other than 0 or 1 */
  BG_FRAME_NOMEM = -3,
};

/* Incremental reader: accumulates one message at a time, up to |max_len|. */
struct bg_frame_reader {
  size_t max_len;
  uint8_t prefix[BG_GRPC_PREFIX_LEN];
  size_t prefix_have;
  uint8_t *buf;       /* message body being assembled */
  size_t need;        /* declared length of the current message */
  size_t have;        /* body bytes collected so far */
  int compressed;
};

void bg_frame_reader_init(struct bg_frame_reader *r, size_t max_len);
void bg_frame_reader_free(struct bg_frame_reader *r);

/* Feed |len| bytes.  Calls |on_msg| for every complete message (the body
 * pointer is valid only during the call; never NULL, also for zero-length
 * messages).  Returns BG_FRAME_OK, a negative bg_frame_err, or the non-zero
 * value |on_msg| returned (which stops parsing right after that message;
 * return a positive value so it cannot be mistaken for a bg_frame_err).
 * *consumed is how many input bytes were used (all of them unless stopped).
 * TOO_LARGE and BAD_FLAG are sticky: later feeds return them again and
 * consume nothing.  The body buffer is allocated only once body bytes of a
 * split message arrive and freed after delivery; a message that arrives
 * whole in one feed is handed out in place without copying. */
typedef int (*bg_frame_msg_cb)(void *arg, const uint8_t *msg, size_t len, int compressed);
int bg_frame_reader_feed(struct bg_frame_reader *r, const uint8_t *data, size_t len, size_t *consumed,
                         bg_frame_msg_cb on_msg, void *arg);

/* True when no partial message is buffered (a stream may end here cleanly). */
int bg_frame_reader_idle(const struct bg_frame_reader *r);

/* Write the 5-byte prefix for a message of |len| bytes into |out|. */
void bg_frame_prefix(uint8_t out[BG_GRPC_PREFIX_LEN], int compressed, uint32_t len);

#endif

/*
 * grpc_msg.h: gRPC message knowledge the gateway needs outside the policy:
 * the grpc-message header's encoding and BuildKit's BytesMessage, the
 * envelope of Control.Session's raw bytes.
 */
#ifndef BG_GRPC_MSG_H
#define BG_GRPC_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "proto/grpc_frame.h"

/* Percent-encode a grpc-message value (gRPC spec: bytes outside 0x20-0x7e
 * and '%').  malloc'd; NULL when out of memory. */
char *bg_grpc_message_encode(const char *msg);

/* BytesMessage{bytes data = 1}, as a gRPC frame: bg_bytesmsg_head writes the
 * 5-byte prefix, the field tag and the length for |n| data bytes into |out|
 * and returns how many bytes it wrote; the |n| bytes follow. */
#define BG_BYTESMSG_HEAD_MAX (BG_GRPC_PREFIX_LEN + 1 + 10)
size_t bg_bytesmsg_head(uint8_t out[BG_BYTESMSG_HEAD_MAX], size_t n);
/* The data of a serialized BytesMessage (last occurrence wins, as in
 * protobuf): 0 with *d and *dl set (NULL/0 when absent), or -1 when the bytes are
 * not a valid message (pbtok.h rules). */
int bg_bytesmsg_data(const uint8_t *msg, size_t len, const uint8_t **d, size_t *dl);

#endif

/*
 * grpc_encoding.h: gRPC message compression as the policy must undo it
 * before it can read a message: the grpc-encoding header's value, and gzip
 * (the only compression inspected methods accept; others are refused
 * upstream of this code, by the policy).
 */
#ifndef BG_GRPC_ENCODING_H
#define BG_GRPC_ENCODING_H

#include <stddef.h>
#include <stdint.h>

enum bg_grpc_enc { BG_GRPC_ENC_IDENTITY = 0, BG_GRPC_ENC_GZIP = 1, BG_GRPC_ENC_OTHER = 2 };

/* The grpc-encoding header value (pointer, length), compared without case as
 * grpc-go does: identity, gzip, or anything else. */
enum bg_grpc_enc bg_grpc_encoding_parse(const char *value, size_t len);

/* Inflate one gzip member of |inlen| bytes into a malloc'd *out of at most
 * |max| bytes.  0 on success; -1 on anything else, with *too_big set when the
 * reason is the size bound (the output stops growing at max + 1 bytes, so a
 * compression bomb costs no more than that).  A truncated member or bytes
 * after it are errors: BuildKit's reader would not accept them either. */
int bg_grpc_gunzip(const uint8_t *in, size_t inlen, size_t max, uint8_t **out, size_t *outlen, int *too_big);

#endif

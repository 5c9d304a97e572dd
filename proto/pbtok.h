/*
 * pbtok.h: the one protobuf wire tokenizer.  Every piece of buildgate that
 * splits protobuf bytes into fields (the validator in pbcheck.c, the
 * wire-level rewriters in policy/, the gateway's BytesMessage and
 * InfoResponse readers) goes through bg_pbtok_next(), so they cannot
 * disagree about where a field starts, which field it is, or whether the
 * bytes are a message at all.
 *
 * The rules are those of the gogo/protobuf-generated Go code BuildKit runs
 * (../shared/PROTOCOL.md section 6), narrowed where protobuf-c, which
 * decodes the typed view afterwards, is stricter, so that "the tokenizer
 * accepts" implies "both readers see the same fields":
 *
 *   - a varint is at most 10 bytes and its 10th byte is 0 or 1 (Go accepts
 *     any 10th byte below 0x80 and silently drops the bits past 64);
 *   - the field number is computed from the FULL 64-bit key.  Go truncates
 *     it to 32 bits (int32(wire >> 3)), so field 6 + 2^32 is field 6 to Go
 *     and something else to a 64-bit reader: refused.  Field numbers must be
 *     1 .. 2^29-1 (the protobuf range), so any accepted key fits 32 bits and
 *     every reader computes the same number;
 *   - a tag longer than 5 bytes (an over-long encoding; protobuf-c fails on
 *     it, Go does not) and a length prefix longer than 5 bytes or above
 *     INT_MAX (protobuf-c's limits) are refused;
 *   - wire types 3 and 4 (groups: Go skips them, protobuf-c fails) and 6, 7
 *     (invalid) are refused;
 *   - a field whose payload runs past the end of the buffer is refused.
 */
#ifndef BG_PBTOK_H
#define BG_PBTOK_H

#include <stddef.h>
#include <stdint.h>

#define BG_PB_MAX_FIELD 536870911u /* 2^29 - 1 */

enum bg_pb_wiretype {
  BG_PB_VARINT = 0,
  BG_PB_FIXED64 = 1,
  BG_PB_LEN = 2,
  BG_PB_FIXED32 = 5,
};

enum bg_pbtok_err {
  BG_PBTOK_ETRUNC = -1,     /* the buffer ends inside a field */
  BG_PBTOK_EVARINT = -2,    /* varint longer than 10 bytes or with a 10th byte above 1 */
  BG_PBTOK_EFIELD0 = -3,    /* field number 0 */
  BG_PBTOK_EFIELDMAX = -4,  /* field number above 2^29-1 */
  BG_PBTOK_EGROUP = -5,     /* wire type 3 or 4 (groups) */
  BG_PBTOK_EWIRETYPE = -6,  /* wire type 6 or 7 */
  BG_PBTOK_ETAGLEN = -7,    /* tag encoded in more than 5 bytes */
  BG_PBTOK_ELENPREFIX = -8, /* length prefix in more than 5 bytes, or above INT_MAX */
};

/* One field as it sits in the buffer. */
struct bg_pbfield {
  uint32_t num;       /* 1 .. 2^29-1 */
  unsigned wt;        /* 0, 1, 2 or 5 */
  size_t start, end;  /* the whole field (tag included): buf[start, end) */
  const uint8_t *val; /* payload: the varint's bytes, the 4/8 fixed bytes, or
                       * the bytes after a length prefix */
  size_t vlen;
  uint64_t u;         /* varint value, fixed value (little-endian), or length */
};

struct bg_pbtok {
  const uint8_t *p;
  size_t len, off;
  int err;            /* sticky: the first error, 0 while none */
};

void bg_pbtok_init(struct bg_pbtok *t, const uint8_t *p, size_t len);
/* Next field: 1 with *f filled, 0 at the end of the buffer, or a negative
 * bg_pbtok_err (sticky; t->off is where the bad field starts). */
int bg_pbtok_next(struct bg_pbtok *t, struct bg_pbfield *f);
/* "field number above 2^29-1", ... for messages. */
const char *bg_pbtok_strerror(int err);

/* Read one varint under the rules above at p[*off]; 0 (and *off advanced)
 * or a negative bg_pbtok_err. */
int bg_pb_varint(const uint8_t *p, size_t len, size_t *off, uint64_t *v);

/* The payload of the LAST length-delimited occurrence of field |num| (as
 * every protobuf reader takes a repeated scalar field): 0 with *out, *outlen
 * set (NULL/0 when absent), or a negative bg_pbtok_err when the bytes are not
 * a message. */
int bg_pb_last_bytes(const uint8_t *p, size_t len, uint32_t num, const uint8_t **out, size_t *outlen);

#endif

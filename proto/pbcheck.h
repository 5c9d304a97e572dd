/*
 * pbcheck.h: validate protobuf bytes against a protobuf-c schema BEFORE
 * protobuf-c decodes them.
 *
 * Two programs read every message the gateway inspects: protobuf-c here
 * (the typed view the policy judges) and BuildKit's gogo/protobuf-generated
 * Go code behind the gateway (what is acted upon).  They disagree on many
 * inputs.  bg_pbcheck() walks the bytes with the one tokenizer (pbtok.h),
 * following the schema into every sub-message, and accepts a message only
 * when both readers must see the same fields and values.  Only then may
 * protobuf-c unpack it.
 *
 * How gogo-generated Unmarshal reads (../shared/PROTOCOL.md section 6), and
 * what is refused because of it:
 *
 *   tag       varint of up to 10 bytes; fieldNum := int32(wire >> 3), so the
 *             number is truncated to 32 bits (6 + 2^32 is field 6);
 *             fieldNum <= 0 and wire type 4 are errors, groups are skipped.
 *             -> refused: field numbers 0 and above 2^29-1 (computed from
 *             the whole 64-bit key), tags longer than 5 bytes, wire types 3,
 *             4, 6 and 7, varints of more than 10 bytes or 64 bits, length
 *             prefixes above 2 GiB, anything truncated (pbtok.h).
 *   wire type a known field with the wrong wire type is an error; a repeated
 *             scalar may be packed (2) or not.
 *             -> refused the same way; both packed and unpacked repeated
 *             scalars are accepted (protobuf-c reads both too).
 *   scalars   the last occurrence wins; an embedded message that occurs
 *             twice is MERGED into the first; a oneof keeps its last member.
 *             protobuf-c does something close but not identical.
 *             -> refused: any non-repeated field (scalar, string, bytes or
 *             message) occurring twice, and two members of one oneof.
 *   maps      each entry a message {key 1, value 2}; the last entry for a key
 *             wins.  protobuf-c keeps every entry and the policy may look at
 *             the first.  -> refused: a key in two entries (a key or value
 *             repeated inside one entry is caught by the rule above).
 *   strings   every byte is kept, NUL included, UTF-8 unchecked; the policy
 *             compares strings as C strings, which end at a NUL.
 *             -> refused: a NUL byte or invalid UTF-8 in any string field
 *             (bytes fields are not strings and are not checked).
 *   enums     accumulated into an int32 (truncated to 32 bits).
 *             -> refused: values that do not fit an int32 (also for int32,
 *             uint32 and sint32 fields); values the schema does not declare
 *             are reported like unknown fields (below).
 *   unknown   fields the schema does not declare are skipped by Go and kept
 *             (and re-sent) in XXX_unrecognized.  The gateway cannot judge
 *             them: each is passed to opts->on_unknown, which decides.
 *             Without a callback, unknown fields and undeclared enum values
 *             in LLB messages (package "pb": Op, ExecOp, Meta, Mount, ...)
 *             are refused and all others accepted and counted.
 *   depth     Go recurses without a limit; protobuf-c too, on the C stack.
 *             -> refused: nesting deeper than opts->max_depth (default 32).
 *   cost      protobuf-c allocates sizeof the C struct for every message, a
 *             pointer array for every repeated field and a copy of every
 *             string, plus 32 bytes of scan state per field occurrence past
 *             the 16th of a message: an
 *             ExecOp of 4 million empty mounts (2 wire bytes each) would
 *             take ~80 times its wire size.  The walk adds these up and
 *             refuses a message whose decoded form would take more than
 *             max(cost_floor, cost_factor * wire size), by default
 *             max(64 KiB, 8 x), as soon as the sum passes it: nothing big is
 *             allocated before the refusal.
 *
 * Messages name the field: "SolveRequest.FrontendAttrs[cache-imports]: NUL
 * byte in string", "Op.exec.mounts[3].cacheOpt.ID: invalid UTF-8".
 */
#ifndef BG_PBCHECK_H
#define BG_PBCHECK_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

enum bg_pbcheck_err {
  BG_PBCHECK_OK = 0,
  BG_PBCHECK_EWIRE = -1,      /* tokenizer error (pbtok.h) */
  BG_PBCHECK_ETYPE = -2,      /* wrong wire type for a known field, bad packed payload */
  BG_PBCHECK_EDUP = -3,       /* non-repeated field twice, two oneof members, duplicate map key */
  BG_PBCHECK_ESTRING = -4,    /* NUL or invalid UTF-8 in a string */
  BG_PBCHECK_ERANGE = -5,     /* number that does not fit its 32-bit field */
  BG_PBCHECK_EUNKNOWN = -6,   /* unknown field or enum value refused */
  BG_PBCHECK_EDEPTH = -7,     /* nested too deep */
  BG_PBCHECK_ECOST = -8,      /* decoded form too large for the wire size */
  BG_PBCHECK_ENOMEM = -9,
};

/* What on_unknown is told. */
struct bg_pbcheck_unknown {
  const char *path;                         /* "Op.exec.meta" */
  const ProtobufCMessageDescriptor *msg;    /* the message that holds it */
  uint32_t num;                             /* field number */
  unsigned wt;                              /* wire type */
  const ProtobufCFieldDescriptor *enum_field; /* non-NULL: a known enum field whose value is undeclared */
  int64_t value;                            /* that value */
};

struct bg_pbcheck_opts {
  unsigned max_depth;       /* 0: 32 */
  size_t cost_floor;        /* 0: 64 KiB */
  unsigned cost_factor;     /* 0: 8 */
  /* Decides each unknown field or undeclared enum value: return 0 to accept
   * it, non-zero to refuse the message.  NULL: refuse in package "pb" only. */
  int (*on_unknown)(void *arg, const struct bg_pbcheck_unknown *u);
  void *arg;
};

struct bg_pbcheck_result {
  int err;                  /* bg_pbcheck_err */
  size_t cost;              /* estimated bytes protobuf-c will allocate (when accepted) */
  size_t n_unknown;         /* unknown fields and enum values accepted */
  char msg[400];            /* "<path>: <what>" when refused */
};

/* Validate msg[0..len) as a |d|.  opts may be NULL.  Returns res->err. */
int bg_pbcheck(const ProtobufCMessageDescriptor *d, const uint8_t *msg, size_t len,
               const struct bg_pbcheck_opts *opts, struct bg_pbcheck_result *res);

/* 1 when p[0..n) is valid UTF-8 without NUL bytes. */
int bg_pb_text_ok(const uint8_t *p, size_t n);

#endif

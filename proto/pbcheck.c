/*
 * pbcheck.c: schema-driven validation of protobuf bytes before protobuf-c
 * decodes them (rules and reasons in pbcheck.h).
 */
#include "proto/pbcheck.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/pbtok.h"

/* protobuf-c 1.4's per-occurrence scan record (struct ScannedMember): the
 * first SCAN_STACK of a message live on the C stack, the rest in slabs of
 * 32, 64, 128, ... records from the allocator. */
#define SCAN_COST 32
#define SCAN_STACK 16
/* Fields per message tracked on the stack; larger schemas use the heap. */
#define STACK_FIELDS 32

/* Allocations as the inspectors' arena makes them: rounded up to 16. */
static size_t al(size_t n) { return n == 0 ? 16 : (n + 15) & ~(size_t)15; }

/* Distinct keys of one map field in one message: (offset into the checked
 * buffer, length + 1) per slot, 0 = empty; open addressing, at most half
 * full, hash seeded per call since the keys are the client's. */
struct keyset {
  uint64_t *slot;
  size_t cap, n;
};

struct ck {
  const struct bg_pbcheck_opts *o;
  struct bg_pbcheck_result *res;
  const uint8_t *base;
  size_t wire, cost, budget;
  unsigned max_depth;
  uint64_t seed;
  size_t plen;
  char path[320];
};

/* ---- messages and paths ---------------------------------------------------- */

static int fail(struct ck *k, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct ck *k, int code, const char *fmt, ...)
{
  char what[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  snprintf(k->res->msg, sizeof k->res->msg, "%.190s: %s", k->path, what);
  k->res->err = code;
  return code;
}

/* The hot paths: a field name, an index (no printf: they run per field). */
static size_t push_name(struct ck *k, const char *name)
{
  size_t old = k->plen, n = strlen(name);
  if (old + 2 >= sizeof k->path)
    return old; /* a path this long is cut: the start names the place */
  if (n > sizeof k->path - 2 - old)
    n = sizeof k->path - 2 - old;
  k->path[old] = '.';
  memcpy(k->path + old + 1, name, n);
  k->plen = old + 1 + n;
  k->path[k->plen] = 0;
  return old;
}

static void push_index(struct ck *k, uint32_t i)
{
  char b[16];
  size_t n = 0;
  b[15] = ']';
  do
    b[14 - n++] = (char)('0' + i % 10);
  while ((i /= 10) && n < 12);
  b[14 - n++] = '[';
  if (k->plen + n + 1 < sizeof k->path) {
    memcpy(k->path + k->plen, b + 15 - n, n + 1);
    k->plen += n + 1;
    k->path[k->plen] = 0;
  }
}

static void pop(struct ck *k, size_t old)
{
  k->plen = old;
  k->path[old] = 0;
}

/* A map key in a path: printable ASCII as is, anything else (and ']', '\')
 * escaped, at most 64 bytes of it. */
static void push_key(struct ck *k, const uint8_t *key, size_t n)
{
  char b[64 * 4 + 8];
  size_t w = 0;
  for (size_t i = 0; i < n && i < 64; i++) {
    uint8_t c = key[i];
    if (c >= 0x20 && c < 0x7f && c != ']' && c != '\\')
      b[w++] = (char)c;
    else
      w += (size_t)snprintf(b + w, sizeof b - w, "\\x%02x", c);
  }
  if (n > 64) {
    memcpy(b + w, "...", 3);
    w += 3;
  }
  if (k->plen + w + 2 < sizeof k->path) {
    k->path[k->plen] = '[';
    memcpy(k->path + k->plen + 1, b, w);
    k->path[k->plen + 1 + w] = ']';
    k->plen += w + 2;
    k->path[k->plen] = 0;
  }
}

static int charge(struct ck *k, size_t n)
{
  k->cost += n;
  if (k->cost > k->budget)
    return fail(k, BG_PBCHECK_ECOST,
                "decoding would take more than %zu bytes for a %zu-byte message (too many elements)", k->budget,
                k->wire);
  return 0;
}

/* ---- text ------------------------------------------------------------------------ */

int bg_pb_text_ok(const uint8_t *p, size_t n)
{
  size_t i = 0;
  while (i < n) {
    uint8_t c = p[i];
    if (c < 0x80) {
      if (c == 0)
        return 0;
      i++;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return 0;
    }
    if (n - i < len)
      return 0;
    for (size_t j = 1; j < len; j++) {
      if ((p[i + j] & 0xc0) != 0x80)
        return 0;
      cp = cp << 6 | (p[i + j] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
    i += len;
  }
  return 1;
}

/* ---- schema helpers ----------------------------------------------------------------- */

static unsigned wire_of(ProtobufCType t)
{
  switch (t) {
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_FLOAT: return BG_PB_FIXED32;
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE: return BG_PB_FIXED64;
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_BYTES:
  case PROTOBUF_C_TYPE_MESSAGE: return BG_PB_LEN;
  default: return BG_PB_VARINT;
  }
}

/* Size of one element of a repeated field in protobuf-c's C arrays. */
static size_t elt_size(ProtobufCType t)
{
  switch (t) {
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_UINT64: return 8;
  case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
  case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
  default: return 4;
  }
}

/* protoc-c turns map<K,V> into a repeated message "<Name>Entry" {key 1,
 * value 2}; the descriptor has no flag for it. */
static int is_map_entry(const ProtobufCMessageDescriptor *d)
{
  size_t n = strlen(d->short_name);
  return d->n_fields == 2 && n > 5 && strcmp(d->short_name + n - 5, "Entry") == 0 && d->fields[0].id == 1 &&
         d->fields[1].id == 2 && strcmp(d->fields[0].name, "key") == 0 && strcmp(d->fields[1].name, "value") == 0;
}

/* ---- unknown fields and values ------------------------------------------------------- */

static int unknown(struct ck *k, const ProtobufCMessageDescriptor *d, uint32_t num, unsigned wt,
                   const ProtobufCFieldDescriptor *ef, int64_t v)
{
  struct bg_pbcheck_unknown u = {k->path, d, num, wt, ef, v};
  int refuse;
  if (k->o && k->o->on_unknown)
    refuse = k->o->on_unknown(k->o->arg, &u);
  else
    refuse = d->package_name && strcmp(d->package_name, "pb") == 0;
  if (refuse) {
    if (ef)
      return fail(k, BG_PBCHECK_EUNKNOWN, "value %" PRId64 " is not declared for enum %s", v,
                  ((const ProtobufCEnumDescriptor *)ef->descriptor)->name);
    return fail(k, BG_PBCHECK_EUNKNOWN, "unknown field %" PRIu32 " (wire type %u) in %s", num, wt, d->name);
  }
  k->res->n_unknown++;
  return 0;
}

/* One varint value of a known scalar field. */
static int check_num(struct ck *k, const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *fd, uint64_t u)
{
  int64_t s = (int64_t)u;
  switch (fd->type) {
  case PROTOBUF_C_TYPE_ENUM:
  case PROTOBUF_C_TYPE_INT32:
    /* Go accumulates into an int32 (keeping the low 32 bits); negative
     * int32 values arrive sign-extended to 64 bits */
    if (s < INT32_MIN || s > INT32_MAX)
      return fail(k, BG_PBCHECK_ERANGE, "value %" PRIu64 " does not fit a 32-bit field", u);
    if (fd->type == PROTOBUF_C_TYPE_ENUM &&
        !protobuf_c_enum_descriptor_get_value((const ProtobufCEnumDescriptor *)fd->descriptor, (int)s))
      return unknown(k, d, fd->id, BG_PB_VARINT, fd, s);
    return 0;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_SINT32:
    if (u > UINT32_MAX)
      return fail(k, BG_PBCHECK_ERANGE, "value %" PRIu64 " does not fit a 32-bit field", u);
    return 0;
  default:
    return 0;
  }
}

/* A packed repeated scalar: returns the element count or a negative error. */
static long packed(struct ck *k, const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *fd,
                   const struct bg_pbfield *f)
{
  unsigned w = wire_of(fd->type);
  if (w != BG_PB_VARINT) {
    size_t sz = w == BG_PB_FIXED32 ? 4 : 8;
    if (f->vlen % sz)
      return fail(k, BG_PBCHECK_ETYPE, "packed length %zu is not a multiple of %zu", f->vlen, sz);
    return (long)(f->vlen / sz);
  }
  long n = 0;
  size_t off = 0;
  while (off < f->vlen) {
    size_t s = off;
    uint64_t u;
    int rv = bg_pb_varint(f->val, f->vlen, &off, &u);
    if (rv < 0)
      return fail(k, BG_PBCHECK_EWIRE, "packed element: %s", bg_pbtok_strerror(rv));
    /* protobuf-c counts packed bools as one byte each */
    if (fd->type == PROTOBUF_C_TYPE_BOOL && off - s != 1)
      return fail(k, BG_PBCHECK_ETYPE, "packed bool longer than one byte");
    if ((rv = check_num(k, d, fd, u)) < 0)
      return rv;
    n++;
  }
  return n;
}

/* ---- map keys ----------------------------------------------------------------------- */

static uint64_t key_hash(const struct ck *k, const uint8_t *p, size_t n)
{
  uint64_t h = k->seed ^ (n * 0x9e3779b97f4a7c15ULL);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    h ^= h >> 32;
  }
  uint64_t w = 0;
  memcpy(&w, p + i, n - i);
  h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 29);
}

/* 1: key added, 0: already present, BG_PBCHECK_ENOMEM. */
static int keyset_add(struct ck *k, struct keyset **ps, const uint8_t *key, size_t n)
{
  struct keyset *s = *ps;
  if (!s) {
    if (!(s = *ps = calloc(1, sizeof *s)))
      return BG_PBCHECK_ENOMEM;
  }
  if ((s->n + 1) * 2 > s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 16;
    uint64_t *ns = calloc(nc, sizeof *ns);
    if (!ns)
      return BG_PBCHECK_ENOMEM;
    for (size_t i = 0; i < s->cap; i++) {
      uint64_t v = s->slot[i];
      if (!v)
        continue;
      size_t j = (size_t)key_hash(k, k->base + (uint32_t)v, (size_t)(v >> 32) - 1) & (nc - 1);
      while (ns[j])
        j = (j + 1) & (nc - 1);
      ns[j] = v;
    }
    free(s->slot);
    s->slot = ns;
    s->cap = nc;
  }
  size_t j = (size_t)key_hash(k, key, n) & (s->cap - 1);
  for (; s->slot[j]; j = (j + 1) & (s->cap - 1)) {
    uint64_t v = s->slot[j];
    if ((size_t)(v >> 32) - 1 == n && memcmp(k->base + (uint32_t)v, key, n) == 0)
      return 0;
  }
  s->slot[j] = (uint64_t)(n + 1) << 32 | (uint32_t)(key - k->base);
  s->n++;
  return 1;
}

/* ---- the walk ------------------------------------------------------------------------- */

static int walk(struct ck *k, const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, unsigned depth);

/* A map entry: named by its key in paths, and its key must be new. */
static int map_entry(struct ck *k, const ProtobufCFieldDescriptor *fd, const struct bg_pbfield *f, unsigned depth,
                     struct keyset **set)
{
  const ProtobufCMessageDescriptor *ed = fd->descriptor;
  const uint8_t *key = f->val; /* absent key: "" */
  size_t klen = 0;
  struct bg_pbtok t;
  struct bg_pbfield e;
  bg_pbtok_init(&t, f->val, f->vlen);
  while (bg_pbtok_next(&t, &e) == 1)
    if (e.num == 1 && e.wt == BG_PB_LEN) {
      key = e.val;
      klen = e.vlen;
    }
  size_t old = k->plen;
  push_key(k, key, klen);
  int rv = walk(k, ed, f->val, f->vlen, depth + 1);
  if (rv == 0 && ed->fields[0].type == PROTOBUF_C_TYPE_STRING) {
    rv = keyset_add(k, set, key, klen);
    if (rv == BG_PBCHECK_ENOMEM)
      rv = fail(k, rv, "out of memory");
    else if (rv == 0)
      rv = fail(k, BG_PBCHECK_EDUP, "key appears in two map entries (Go keeps the last)");
    else
      rv = 0;
  }
  pop(k, old);
  return rv;
}

static int walk(struct ck *k, const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, unsigned depth)
{
  if (depth > k->max_depth)
    return fail(k, BG_PBCHECK_EDEPTH, "messages nested more than %u deep", k->max_depth);
  int rv = charge(k, al(d->sizeof_message));
  if (rv)
    return rv;
  unsigned nf = d->n_fields;
  uint32_t cnt_s[STACK_FIELDS];
  struct keyset *sets_s[STACK_FIELDS];
  uint32_t *cnt = cnt_s;
  struct keyset **sets = sets_s;
  if (nf > STACK_FIELDS) {
    cnt = calloc(nf, sizeof *cnt);
    sets = calloc(nf, sizeof *sets);
    if (!cnt || !sets) {
      free(cnt);
      free(sets);
      return fail(k, BG_PBCHECK_ENOMEM, "out of memory");
    }
  } else {
    memset(cnt_s, 0, nf * sizeof *cnt_s);
    memset(sets_s, 0, nf * sizeof *sets_s);
  }
  int any_map = 0;
  int entry = is_map_entry(d);
  size_t n_occ = 0, n_unknown = 0;
  struct bg_pbtok t;
  struct bg_pbfield f;
  bg_pbtok_init(&t, p, len);
  while ((rv = bg_pbtok_next(&t, &f)) == 1) {
    rv = 0;
    size_t scan = ++n_occ > SCAN_STACK ? SCAN_COST : 0;
    const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(d, f.num);
    if (!fd) {
      n_unknown++;
      if ((rv = charge(k, scan + al(f.end - f.start))) || (rv = unknown(k, d, f.num, f.wt, NULL, 0)))
        break;
      continue;
    }
    unsigned fi = (unsigned)(fd - d->fields);
    int rep = fd->label == PROTOBUF_C_LABEL_REPEATED;
    int is_packed = rep && f.wt == BG_PB_LEN && wire_of(fd->type) != BG_PB_LEN;
    size_t old = k->plen;
    if (!entry)
      push_name(k, fd->name);
    if (rep && !is_packed && (fd->type != PROTOBUF_C_TYPE_MESSAGE || !is_map_entry(fd->descriptor)))
      push_index(k, cnt[fi]);
    if ((rv = charge(k, scan)))
      break;
    if (!is_packed && f.wt != wire_of(fd->type)) {
      rv = fail(k, BG_PBCHECK_ETYPE, "wrong wire type %u (expected %u)", f.wt, wire_of(fd->type));
      break;
    }
    if (!rep && cnt[fi]) {
      rv = fail(k, BG_PBCHECK_EDUP, "non-repeated field appears more than once (Go: last wins or merge)");
      break;
    }
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      for (unsigned j = 0; j < nf && !rv; j++)
        if (j != fi && cnt[j] && (d->fields[j].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            d->fields[j].quantifier_offset == fd->quantifier_offset)
          rv = fail(k, BG_PBCHECK_EDUP, "oneof members %s and %s both present", d->fields[j].name, fd->name);
      if (rv)
        break;
    }
    if (is_packed) {
      long n = packed(k, d, fd, &f);
      if (n < 0) {
        rv = (int)n;
        break;
      }
      cnt[fi] += (uint32_t)n;
      pop(k, old);
      continue;
    }
    cnt[fi]++;
    switch (fd->type) {
    case PROTOBUF_C_TYPE_STRING:
      if (memchr(f.val, 0, f.vlen))
        rv = fail(k, BG_PBCHECK_ESTRING, "NUL byte in string");
      else if (!bg_pb_text_ok(f.val, f.vlen))
        rv = fail(k, BG_PBCHECK_ESTRING, "invalid UTF-8 in string");
      else
        rv = charge(k, al(f.vlen + 1));
      break;
    case PROTOBUF_C_TYPE_BYTES:
      rv = f.vlen ? charge(k, al(f.vlen)) : 0;
      break;
    case PROTOBUF_C_TYPE_MESSAGE:
      if (rep && is_map_entry(fd->descriptor)) {
        any_map = 1;
        rv = map_entry(k, fd, &f, depth, &sets[fi]);
      }
      else
        rv = walk(k, fd->descriptor, f.val, f.vlen, depth + 1);
      break;
    default:
      if (f.wt == BG_PB_VARINT)
        rv = check_num(k, d, fd, f.u);
      break;
    }
    if (rv)
      break;
    pop(k, old);
  }
  if (rv < 0 && !k->res->err) /* a tokenizer error */
    rv = fail(k, BG_PBCHECK_EWIRE, "%s at byte %zu", bg_pbtok_strerror(rv), t.off);
  for (unsigned i = 0; i < nf && rv == 0; i++)
    if (d->fields[i].label == PROTOBUF_C_LABEL_REPEATED && cnt[i])
      rv = charge(k, al((size_t)cnt[i] * elt_size(d->fields[i].type)));
  if (rv == 0 && n_unknown)
    rv = charge(k, al(n_unknown * sizeof(ProtobufCMessageUnknownField)));
  if (rv == 0 && n_occ > SCAN_STACK) {
    /* SCAN_COST per record past the stack is counted; add what the last
     * slab allocates beyond that */
    size_t cap = SCAN_STACK, slab = SCAN_STACK, bytes = 0;
    while (cap < n_occ) {
      slab *= 2;
      cap += slab;
      bytes += al(slab * SCAN_COST);
    }
    rv = charge(k, bytes - (n_occ - SCAN_STACK) * SCAN_COST);
  }
  for (unsigned i = 0; any_map && i < nf; i++)
    if (sets[i]) {
      free(sets[i]->slot);
      free(sets[i]);
    }
  if (sets != sets_s) {
    free(cnt);
    free(sets);
  }
  return rv < 0 ? rv : 0;
}

int bg_pbcheck(const ProtobufCMessageDescriptor *d, const uint8_t *msg, size_t len,
               const struct bg_pbcheck_opts *opts, struct bg_pbcheck_result *res)
{
  static const uint8_t none[1];
  memset(res, 0, sizeof *res);
  struct ck k;
  memset(&k, 0, sizeof k);
  k.o = opts;
  k.res = res;
  k.base = msg ? msg : none;
  k.wire = msg ? len : 0;
  size_t floor = opts && opts->cost_floor ? opts->cost_floor : 64 * 1024;
  size_t factor = opts && opts->cost_factor ? opts->cost_factor : 8;
  k.budget = k.wire > floor / factor ? k.wire * factor : floor;
  k.max_depth = opts && opts->max_depth ? opts->max_depth : 32;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  k.seed = ((uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)(uintptr_t)&k ^ (uint64_t)ts.tv_sec << 40;
  size_t sn = strlen(d->short_name);
  if (sn > 100)
    sn = 100;
  memcpy(k.path, d->short_name, sn);
  k.path[sn] = 0;
  k.plen = sn;
  if (len > UINT32_MAX)
    return fail(&k, BG_PBCHECK_ECOST, "message larger than 4 GiB");
  int rv = walk(&k, d, k.base, k.wire, 0);
  if (rv == 0)
    res->cost = k.cost;
  return res->err;
}

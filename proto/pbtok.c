/*
 * pbtok.c: the protobuf wire tokenizer (rules in pbtok.h).
 */
#include "proto/pbtok.h"

#include <limits.h>
#include <string.h>

void bg_pbtok_init(struct bg_pbtok *t, const uint8_t *p, size_t len)
{
  t->p = p;
  t->len = p ? len : 0;
  t->off = 0;
  t->err = 0;
}

int bg_pb_varint(const uint8_t *p, size_t len, size_t *off, uint64_t *v)
{
  uint64_t r = 0;
  size_t i = *off;
  for (int k = 0; k < 10; k++) {
    if (i >= len)
      return BG_PBTOK_ETRUNC;
    uint8_t b = p[i++];
    /* the 10th byte carries bit 63 only; anything more would be dropped by
     * Go without a word, so it is not a number both sides agree on */
    if (k == 9 && b > 1)
      return BG_PBTOK_EVARINT;
    r |= (uint64_t)(b & 0x7f) << (7 * k);
    if (!(b & 0x80)) {
      *v = r;
      *off = i;
      return 0;
    }
  }
  return BG_PBTOK_EVARINT;
}

static int fail(struct bg_pbtok *t, int err)
{
  t->err = err;
  return err;
}

int bg_pbtok_next(struct bg_pbtok *t, struct bg_pbfield *f)
{
  if (t->err)
    return t->err;
  if (t->off >= t->len)
    return 0;
  size_t i = t->off;
  uint64_t key;
  int rv = bg_pb_varint(t->p, t->len, &i, &key);
  if (rv < 0)
    return fail(t, rv);
  /* the number as a whole: truncating it (Go) or not (a 64-bit reader)
   * must never make a difference, so anything that does not fit is refused */
  uint64_t num = key >> 3;
  if (num == 0)
    return fail(t, BG_PBTOK_EFIELD0);
  if (num > BG_PB_MAX_FIELD)
    return fail(t, BG_PBTOK_EFIELDMAX);
  if (i - t->off > 5)
    return fail(t, BG_PBTOK_ETAGLEN);
  f->num = (uint32_t)num;
  f->wt = (unsigned)(key & 7);
  f->start = t->off;
  switch (f->wt) {
  case BG_PB_VARINT: {
    size_t s = i;
    if ((rv = bg_pb_varint(t->p, t->len, &i, &f->u)) < 0)
      return fail(t, rv);
    f->val = t->p + s;
    f->vlen = i - s;
    break;
  }
  case BG_PB_FIXED64:
  case BG_PB_FIXED32: {
    size_t n = f->wt == BG_PB_FIXED64 ? 8 : 4;
    if (t->len - i < n)
      return fail(t, BG_PBTOK_ETRUNC);
    f->val = t->p + i;
    f->vlen = n;
    f->u = 0;
    for (size_t k = n; k-- > 0;)
      f->u = f->u << 8 | f->val[k];
    i += n;
    break;
  }
  case BG_PB_LEN: {
    size_t s = i;
    if ((rv = bg_pb_varint(t->p, t->len, &i, &f->u)) < 0)
      return fail(t, rv);
    if (i - s > 5 || f->u > INT_MAX)
      return fail(t, BG_PBTOK_ELENPREFIX);
    if (f->u > t->len - i)
      return fail(t, BG_PBTOK_ETRUNC);
    f->val = t->p + i;
    f->vlen = (size_t)f->u;
    i += f->vlen;
    break;
  }
  case 3:
  case 4:
    return fail(t, BG_PBTOK_EGROUP);
  default:
    return fail(t, BG_PBTOK_EWIRETYPE);
  }
  f->end = i;
  t->off = i;
  return 1;
}

const char *bg_pbtok_strerror(int err)
{
  switch (err) {
  case BG_PBTOK_ETRUNC: return "truncated field";
  case BG_PBTOK_EVARINT: return "varint longer than 10 bytes or above 64 bits";
  case BG_PBTOK_EFIELD0: return "field number 0";
  case BG_PBTOK_EFIELDMAX: return "field number above 2^29-1";
  case BG_PBTOK_EGROUP: return "group wire type";
  case BG_PBTOK_EWIRETYPE: return "invalid wire type";
  case BG_PBTOK_ETAGLEN: return "tag longer than 5 bytes";
  case BG_PBTOK_ELENPREFIX: return "length prefix longer than 5 bytes or above 2 GiB";
  default: return "malformed field";
  }
}

int bg_pb_last_bytes(const uint8_t *p, size_t len, uint32_t num, const uint8_t **out, size_t *outlen)
{
  struct bg_pbtok t;
  struct bg_pbfield f;
  int rv;
  *out = NULL;
  *outlen = 0;
  bg_pbtok_init(&t, p, len);
  while ((rv = bg_pbtok_next(&t, &f)) == 1) {
    if (f.num != num)
      continue;
    if (f.wt != BG_PB_LEN) /* Go refuses a known field with the wrong wire type */
      return BG_PBTOK_EWIRETYPE;
    *out = f.val;
    *outlen = f.vlen;
  }
  if (rv < 0) {
    *out = NULL;
    *outlen = 0;
  }
  return rv;
}

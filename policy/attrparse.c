/*
 * attrparse.c: reading attribute values the way their Go consumers do.
 *
 * Frontend attrs are strings that the frontend (Go, inside the daemon) parses
 * with the standard library.  Where the policy reads the same value it must
 * reach the same answer, or refuse: these helpers implement the two readers
 * that differ from the obvious C reading, strings.TrimSpace and
 * encoding/json's matching of object keys to struct fields.
 */
#include <string.h>

#include "policy/attrparse.h"

/* Length of the white-space rune at s[0..n), or 0.  unicode.IsSpace: the
 * ASCII set \t \n \v \f \r and space, U+0085, U+00A0, and the White_Space
 * runes above Latin-1: U+1680, U+2000..U+200A, U+2028, U+2029, U+202F,
 * U+205F, U+3000.  Each has exactly one valid UTF-8 encoding, and Go's
 * decoder reads any other byte sequence as a non-space (RuneError), so
 * matching these encodings is the same test. */
static size_t space_at(const unsigned char *s, size_t n)
{
  if (n >= 1 && (s[0] == ' ' || (s[0] >= '\t' && s[0] <= '\r')))
    return 1;
  if (n >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0))
    return 2;
  if (n < 3)
    return 0;
  if (s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80) /* U+1680 */
    return 3;
  if (s[0] == 0xe2 && s[1] == 0x80 && (s[2] <= 0x8a || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf) && s[2] >= 0x80)
    return 3; /* U+2000..U+200A, U+2028, U+2029, U+202F */
  if (s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) /* U+205F */
    return 3;
  if (s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80) /* U+3000 */
    return 3;
  return 0;
}

/* Length of the white-space rune ending at s[n], or 0.  Go's TrimRight
 * decodes the last rune with utf8.DecodeLastRune: an ASCII last byte is the
 * rune; otherwise it decodes from the nearest byte before the last that is
 * not a continuation byte (at most 4 back), and only a sequence that ends
 * exactly at s[n] is a rune (anything else is RuneError, not a space). */
static size_t space_before(const unsigned char *s, size_t n)
{
  if (s[n - 1] < 0x80)
    return space_at(s + n - 1, 1);
  for (size_t k = 2; k <= 4 && k <= n; k++)
    if ((s[n - k] & 0xc0) != 0x80)
      return space_at(s + n - k, k) == k ? k : 0;
  return 0;
}

void bg_go_trimspace(const char **s, size_t *n)
{
  const unsigned char *p = (const unsigned char *)*s;
  size_t len = *n, k;
  while (len && (k = space_at(p, len)))
    p += k, len -= k;
  while (len && (k = space_before(p, len)))
    len -= k;
  *s = (const char *)p;
  *n = len;
}

int bg_go_syntax_ref(const char *v, size_t n, const char **ref, size_t *reflen)
{
  bg_go_trimspace(&v, &n);
  const char *sp = memchr(v, ' ', n);
  *ref = v;
  *reflen = sp ? (size_t)(sp - v) : n;
  return *reflen ? 0 : -1;
}

/* encoding/json (Go 1.19, Debian 12) matches a key to a struct field name
 * with bytes.EqualFold-like folding that includes the Unicode simple folds:
 * 'ſ' (U+017F) is 's', 'K' (U+212A) is 'k', and more.  The gateway reads
 * only ASCII keys; any other key in an object that Go decodes into a struct
 * could fold onto a field, so it is refused, as are two keys that are equal
 * ignoring ASCII case (Go assigns both to one field, the last wins). */
int bg_json_struct_keys_ok(json_t *obj, const char **why)
{
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    for (const unsigned char *q = (const unsigned char *)k; *q; q++)
      if (*q >= 0x80) {
        *why = "a non-ASCII object key (Go folds some of them onto field names)";
        return 0;
      }
    const char *k2;
    json_t *v2;
    json_object_foreach(obj, k2, v2) {
      if (k2 != k && strcasecmp(k, k2) == 0) {
        *why = "object keys that differ only in case (Go gives the field the last one)";
        return 0;
      }
    }
  }
  return 1;
}

json_t *bg_json_struct_get(json_t *obj, const char *field)
{
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    if (strcasecmp(k, field) == 0)
      return v;
  }
  return NULL;
}

/*
 * policy_file.c: load and validate the JSON policy file (DESIGN.md "Policy
 * file") into struct bg_policy / struct bg_profile.
 *
 * Validation is strict: unknown keys, wrong types, duplicate keys, bad tenant
 * names, dangling profile references and malformed token hashes are errors.
 *
 * Error positions.  jansson gives line/column for syntax errors only; it does
 * not remember where a value came from.  For semantic errors the loader keeps
 * the JSON path of the offending value (e.g. profiles.builder.exporters.image.set)
 * and, after validation failed, walks the original text with a small
 * structural scanner along that same path to find the value's (or, for an
 * unknown key, the key's) line and column.  Duplicate keys are rejected by
 * jansson, so the path names exactly one place.  If the scanner cannot find
 * the place (it should not happen), line/column stay 0 and the path alone
 * identifies it.  The error text always starts with the path.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "proto/pbwire.h"
#include "policy/frontend_attrs.h"
#include "policy/policy_int.h"

/* ---------------------------------------------------------------- paths */

#define JP_MAX 12

struct jpath {
  int n;
  const char *key[JP_MAX]; /* NULL: array index */
  size_t idx[JP_MAX];
};

static struct jpath jp_key(const struct jpath *p, const char *k)
{
  struct jpath q = *p;
  if (q.n < JP_MAX) {
    q.key[q.n] = k;
    q.idx[q.n] = 0;
    q.n++;
  }
  return q;
}

static struct jpath jp_idx(const struct jpath *p, size_t i)
{
  struct jpath q = *p;
  if (q.n < JP_MAX) {
    q.key[q.n] = NULL;
    q.idx[q.n] = i;
    q.n++;
  }
  return q;
}

static void jp_format(const struct jpath *p, char *out, size_t outlen)
{
  size_t w = 0;
  out[0] = '\0';
  if (p->n == 0) {
    snprintf(out, outlen, "(top level)");
    return;
  }
  for (int i = 0; i < p->n && w < outlen; i++) {
    int r;
    if (p->key[i])
      r = snprintf(out + w, outlen - w, "%s%s", i ? "." : "", p->key[i]);
    else
      r = snprintf(out + w, outlen - w, "[%zu]", p->idx[i]);
    if (r < 0)
      break;
    w += (size_t)r;
  }
}

/* ------------------------------------------------ position finder (text) */

struct scan {
  const char *s;
  size_t n, i;
};

static void sc_ws(struct scan *sc)
{
  while (sc->i < sc->n && (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t' || sc->s[sc->i] == '\n' ||
                           sc->s[sc->i] == '\r'))
    sc->i++;
}

/* Read a JSON string at sc->i into buf (escapes decoded for ASCII only; a
 * non-ASCII \u escape becomes '?', enough to compare against our keys). */
static int sc_string(struct scan *sc, char *buf, size_t buflen)
{
  size_t w = 0;
  if (sc->i >= sc->n || sc->s[sc->i] != '"')
    return -1;
  sc->i++;
  while (sc->i < sc->n) {
    char c = sc->s[sc->i++];
    if (c == '"') {
      if (buf)
        buf[w < buflen ? w : buflen - 1] = '\0';
      return 0;
    }
    if (c == '\\') {
      if (sc->i >= sc->n)
        return -1;
      char e = sc->s[sc->i++];
      switch (e) {
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case 'r': c = '\r'; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case 'u': {
        unsigned v = 0;
        for (int k = 0; k < 4; k++) {
          if (sc->i >= sc->n || !isxdigit((unsigned char)sc->s[sc->i]))
            return -1;
          char h = sc->s[sc->i++];
          v = v * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
        }
        c = v < 0x80 ? (char)v : '?';
        break;
      }
      default: c = e; break;
      }
    }
    if (buf && w + 1 < buflen)
      buf[w++] = c;
  }
  return -1;
}

static int sc_skip(struct scan *sc, int depth)
{
  if (depth > 64)
    return -1;
  sc_ws(sc);
  if (sc->i >= sc->n)
    return -1;
  char c = sc->s[sc->i];
  if (c == '"')
    return sc_string(sc, NULL, 0);
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    sc->i++;
    sc_ws(sc);
    if (sc->i < sc->n && sc->s[sc->i] == close) {
      sc->i++;
      return 0;
    }
    for (;;) {
      if (c == '{') {
        sc_ws(sc);
        if (sc_string(sc, NULL, 0) < 0)
          return -1;
        sc_ws(sc);
        if (sc->i >= sc->n || sc->s[sc->i] != ':')
          return -1;
        sc->i++;
      }
      if (sc_skip(sc, depth + 1) < 0)
        return -1;
      sc_ws(sc);
      if (sc->i >= sc->n)
        return -1;
      if (sc->s[sc->i] == ',') {
        sc->i++;
        continue;
      }
      if (sc->s[sc->i] == close) {
        sc->i++;
        return 0;
      }
      return -1;
    }
  }
  /* number, true, false, null */
  while (sc->i < sc->n && !strchr(",]} \t\r\n", sc->s[sc->i]))
    sc->i++;
  return 0;
}

/* Offset of the value at |p| (or of its key when at_key), or -1. */
static long sc_find(struct scan *sc, const struct jpath *p, int d, int at_key)
{
  sc_ws(sc);
  if (d == p->n)
    return (long)sc->i;
  if (sc->i >= sc->n)
    return -1;
  char open = sc->s[sc->i];
  if (p->key[d] ? open != '{' : open != '[')
    return -1;
  sc->i++;
  sc_ws(sc);
  char close = open == '{' ? '}' : ']';
  if (sc->i < sc->n && sc->s[sc->i] == close)
    return -1;
  for (size_t idx = 0;; idx++) {
    int hit;
    long keypos = -1;
    if (open == '{') {
      char kb[512];
      sc_ws(sc);
      keypos = (long)sc->i;
      if (sc_string(sc, kb, sizeof kb) < 0)
        return -1;
      sc_ws(sc);
      if (sc->i >= sc->n || sc->s[sc->i] != ':')
        return -1;
      sc->i++;
      hit = strcmp(kb, p->key[d]) == 0;
    } else {
      hit = idx == p->idx[d];
    }
    if (hit) {
      if (at_key && d + 1 == p->n && keypos >= 0)
        return keypos;
      return sc_find(sc, p, d + 1, at_key);
    }
    if (sc_skip(sc, 0) < 0)
      return -1;
    sc_ws(sc);
    if (sc->i >= sc->n)
      return -1;
    if (sc->s[sc->i] == ',') {
      sc->i++;
      continue;
    }
    return -1;
  }
}

static void locate(const char *text, size_t len, const struct jpath *p, int at_key, int *line, int *col)
{
  *line = *col = 0;
  if (!text)
    return;
  struct scan sc = {text, len, 0};
  long off = sc_find(&sc, p, 0, at_key);
  if (off < 0)
    return;
  int l = 1, c = 1;
  for (long i = 0; i < off; i++) {
    if (text[i] == '\n') {
      l++;
      c = 1;
    } else {
      c++;
    }
  }
  *line = l;
  *col = c;
}

/* ---------------------------------------------------------------- loader */

struct ld {
  const char *text;
  size_t len;
  struct bg_error *err;
  int failed;
  struct jpath where;
  int at_key;
};

static int fail(struct ld *L, const struct jpath *p, int at_key, const char *fmt, ...)
{
  if (L->failed)
    return -1;
  L->failed = 1;
  L->where = *p;
  L->at_key = at_key;
  char ps[96], msg[150];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  jp_format(p, ps, sizeof ps);
  snprintf(L->err->text, sizeof L->err->text, "%s: %s", ps, msg);
  return -1;
}

static const char *jtype(const json_t *v)
{
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a number";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  case JSON_NULL: return "null";
  }
  return "?";
}

static int want(struct ld *L, const struct jpath *p, const json_t *v, json_type t, const char *what)
{
  if (json_typeof(v) == t || (t == JSON_TRUE && json_is_boolean(v)))
    return 0;
  return fail(L, p, 0, "expected %s, got %s", what, jtype(v));
}

static int only_keys(struct ld *L, const struct jpath *p, json_t *obj, const char *const *allowed)
{
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    int ok = 0;
    for (const char *const *a = allowed; *a; a++)
      if (strcmp(*a, k) == 0)
        ok = 1;
    if (!ok) {
      struct jpath q = jp_key(p, k);
      char list[160] = "";
      size_t w = 0;
      for (const char *const *a = allowed; *a && w < sizeof list; a++) {
        int r = snprintf(list + w, sizeof list - w, "%s%s", a == allowed ? "" : ", ", *a);
        if (r < 0)
          break;
        w += (size_t)r;
      }
      return fail(L, &q, 1, "unknown key \"%s\" (allowed: %s)", k, list);
    }
  }
  return 0;
}

static int printable(const char *s)
{
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return 0;
  return 1;
}

void bg_strlist_free(struct bg_strlist *l)
{
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

static int strlist_push(struct bg_strlist *l, const char *s)
{
  char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
  if (!nv)
    return -1;
  l->v = nv;
  if (!(l->v[l->n] = strdup(s)))
    return -1;
  l->n++;
  return 0;
}

static int strlist_has(const struct bg_strlist *l, const char *s)
{
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->v[i], s) == 0)
      return 1;
  return 0;
}

typedef int (*str_check)(struct ld *L, const struct jpath *p, const char *s);

static int get_strlist(struct ld *L, const struct jpath *p, json_t *v, struct bg_strlist *out, str_check chk)
{
  if (want(L, p, v, JSON_ARRAY, "an array of strings") < 0)
    return -1;
  size_t i;
  json_t *e;
  json_array_foreach(v, i, e) {
    struct jpath q = jp_idx(p, i);
    if (!json_is_string(e))
      return fail(L, &q, 0, "expected a string, got %s", jtype(e));
    const char *s = json_string_value(e);
    if (!*s)
      return fail(L, &q, 0, "empty string");
    if (!printable(s))
      return fail(L, &q, 0, "control characters are not allowed");
    if (chk && chk(L, &q, s) < 0)
      return -1;
    if (strlist_push(out, s) < 0)
      return fail(L, &q, 0, "out of memory");
  }
  return 0;
}

static int chk_template(struct ld *L, const struct jpath *p, const char *s)
{
  for (const char *q = s; (q = strstr(q, "${")); q += 2)
    if (strncmp(q, "${tenant}", 9) != 0)
      return fail(L, p, 0, "unknown template variable in \"%s\" (only ${tenant} is defined)", s);
  return 0;
}

static int chk_method(struct ld *L, const struct jpath *p, const char *s)
{
  char why[160];
  if (bg_method_pattern_check(s, why, sizeof why) < 0)
    return fail(L, p, 0, "%s", why);
  return 0;
}

static int chk_session_method(struct ld *L, const struct jpath *p, const char *s)
{
  if (strcmp(s, "*") == 0 || s[0] == '/')
    return 0;
  return fail(L, p, 0, "session method pattern \"%.80s\" must be \"*\" or start with '/'", s);
}

static int chk_entitlement(struct ld *L, const struct jpath *p, const char *s)
{
  if (strcmp(s, "*") == 0 || strcmp(s, "network.host") == 0 || strcmp(s, "security.insecure") == 0 ||
      strcmp(s, "device") == 0 || (strncmp(s, "device=", 7) == 0 && s[7]))
    return 0;
  /* a glob over the names ("network.*") must name at least one of them */
  if (strpbrk(s, "*?") && (bg_glob_match(s, "network.host") || bg_glob_match(s, "security.insecure") ||
                           bg_glob_match(s, "device")))
    return 0;
  return fail(L, p, 0, "unknown entitlement \"%s\" (network.host, security.insecure, device, device=<glob>, *)", s);
}

static int chk_network(struct ld *L, const struct jpath *p, const char *s)
{
  if (strcmp(s, "sandbox") == 0 || strcmp(s, "none") == 0 || strcmp(s, "host") == 0)
    return 0;
  return fail(L, p, 0, "unknown network mode \"%s\" (sandbox, none, host)", s);
}

static int chk_security(struct ld *L, const struct jpath *p, const char *s)
{
  if (strcmp(s, "sandbox") == 0 || strcmp(s, "insecure") == 0)
    return 0;
  return fail(L, p, 0, "unknown security mode \"%s\" (sandbox, insecure)", s);
}

static int chk_mount(struct ld *L, const struct jpath *p, const char *s)
{
  if (strcmp(s, "secret") == 0 || strcmp(s, "ssh") == 0)
    return 0;
  return fail(L, p, 0, "unknown extra mount type \"%s\" (secret, ssh; bind, cache and tmpfs are always allowed)", s);
}

static int chk_type(struct ld *L, const struct jpath *p, const char *s)
{
  if (strcmp(s, "*") == 0)
    return 0;
  for (const char *q = s; *q; q++)
    if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '-' || *q == '_' || *q == '.'))
      return fail(L, p, 0, "bad type name \"%s\" ([a-z0-9._-] or *)", s);
  return 0;
}

static int chk_hex64(struct ld *L, const struct jpath *p, const char *s)
{
  if (strlen(s) != 64)
    return fail(L, p, 0, "token_sha256 must be 64 hex characters (the SHA-256 of the token), got %zu", strlen(s));
  for (const char *q = s; *q; q++)
    if (!isxdigit((unsigned char)*q))
      return fail(L, p, 0, "token_sha256 must be 64 hex characters, found '%c'", *q);
  return 0;
}

static int get_bool(struct ld *L, const struct jpath *p, json_t *v, int *out)
{
  if (!json_is_boolean(v))
    return fail(L, p, 0, "expected a boolean, got %s", jtype(v));
  *out = json_is_true(v);
  return 0;
}

static int get_uint(struct ld *L, const struct jpath *p, json_t *v, json_int_t max, json_int_t *out)
{
  if (!json_is_integer(v))
    return fail(L, p, 0, "expected an integer, got %s", jtype(v));
  json_int_t x = json_integer_value(v);
  if (x < 0 || x > max)
    return fail(L, p, 0, "%lld out of range 0..%lld", (long long)x, (long long)max);
  *out = x;
  return 0;
}

/* {"deny": [...], "delete": [...], "set": {...}} plus, for exporters,
 * "name_prefix" and "push_registries". */
static int get_attr_rules(struct ld *L, const struct jpath *p, json_t *v, struct bg_attr_rules *r, int exporter)
{
  static const char *const fa_keys[] = {"deny", "delete", "set", "allow", NULL};
  static const char *const ex_keys[] = {"deny", "delete", "set", "name_prefix", "push_registries", NULL};
  if (want(L, p, v, JSON_OBJECT, "an object") < 0 || only_keys(L, p, v, exporter ? ex_keys : fa_keys) < 0)
    return -1;
  json_t *x;
  r->push_any = 1;
  if ((x = json_object_get(v, "deny"))) {
    struct jpath q = jp_key(p, "deny");
    if (get_strlist(L, &q, x, &r->deny, NULL) < 0)
      return -1;
  }
  if ((x = json_object_get(v, "delete"))) {
    struct jpath q = jp_key(p, "delete");
    if (get_strlist(L, &q, x, &r->del, NULL) < 0)
      return -1;
  }
  if ((x = json_object_get(v, "set"))) {
    struct jpath q = jp_key(p, "set");
    if (want(L, &q, x, JSON_OBJECT, "an object of strings") < 0)
      return -1;
    size_t n = json_object_size(x);
    r->set.v = calloc(n ? n : 1, sizeof *r->set.v);
    if (!r->set.v)
      return fail(L, &q, 0, "out of memory");
    const char *k;
    json_t *e;
    json_object_foreach(x, k, e) {
      struct jpath qk = jp_key(&q, k);
      if (!*k || !printable(k))
        return fail(L, &qk, 1, "bad attribute name");
      if (!json_is_string(e))
        return fail(L, &qk, 0, "expected a string, got %s", jtype(e));
      if (!printable(json_string_value(e)))
        return fail(L, &qk, 0, "control characters are not allowed");
      if (chk_template(L, &qk, json_string_value(e)) < 0)
        return -1;
      struct bg_kv *kv = &r->set.v[r->set.n];
      kv->key = strdup(k);
      kv->value = strdup(json_string_value(e));
      r->set.n++;
      if (!kv->key || !kv->value)
        return fail(L, &qk, 0, "out of memory");
    }
  }
  if ((x = json_object_get(v, "name_prefix"))) {
    struct jpath q = jp_key(p, "name_prefix");
    if (!json_is_null(x)) {
      if (!json_is_string(x))
        return fail(L, &q, 0, "expected a string or null, got %s", jtype(x));
      const char *s = json_string_value(x);
      if (!*s || !printable(s))
        return fail(L, &q, 0, "name_prefix must be a non-empty printable string");
      if (chk_template(L, &q, s) < 0)
        return -1;
      if (!(r->name_prefix = strdup(s)))
        return fail(L, &q, 0, "out of memory");
    }
  }
  if ((x = json_object_get(v, "push_registries"))) {
    struct jpath q = jp_key(p, "push_registries");
    if (get_strlist(L, &q, x, &r->push_registries, chk_template) < 0)
      return -1;
    r->push_any = strlist_has(&r->push_registries, "*");
  }
  return 0;
}

static void attr_rules_free(struct bg_attr_rules *r)
{
  bg_strlist_free(&r->deny);
  bg_strlist_free(&r->del);
  for (size_t i = 0; i < r->set.n; i++) {
    free(r->set.v[i].key);
    free(r->set.v[i].value);
  }
  free(r->set.v);
  free(r->name_prefix);
  bg_strlist_free(&r->push_registries);
  memset(r, 0, sizeof *r);
}

void bg_profile_free(struct bg_profile *pr)
{
  free(pr->name);
  bg_strlist_free(&pr->methods);
  bg_strlist_free(&pr->entitlements);
  bg_strlist_free(&pr->frontends);
  attr_rules_free(&pr->frontend_attrs);
  bg_strlist_free(&pr->frontend_attrs_allow);
  for (size_t i = 0; i < pr->n_exporters; i++) {
    free(pr->exporters[i].type);
    attr_rules_free(&pr->exporters[i].attrs);
  }
  free(pr->exporters);
  bg_strlist_free(&pr->cache_import);
  bg_strlist_free(&pr->cache_export);
  bg_strlist_free(&pr->llb_network);
  bg_strlist_free(&pr->llb_security);
  bg_strlist_free(&pr->llb_sources);
  bg_strlist_free(&pr->llb_mounts);
  bg_strlist_free(&pr->llb_resolve_modes);
  bg_strlist_free(&pr->session_methods);
  free(pr->source_policy);
  memset(pr, 0, sizeof *pr);
}

/* ------------------------------------------------------ source policy */
/*
 * JSON form of moby.buildkit.v1.sourcepolicy.Policy, encoded to protobuf:
 *   {"version": 1,
 *    "rules": [{"action": "ALLOW"|"DENY"|"CONVERT",
 *               "selector": {"identifier": "docker-image://docker.io/library/alpine:3",
 *                            "match_type": "WILDCARD"|"EXACT"|"REGEX",
 *                            "constraints": [{"key": "...", "value": "...",
 *                                             "condition": "EQUAL"|"NOTEQUAL"|"MATCHES"}]},
 *               "updates": {"identifier": "...", "attrs": {"k": "v"}}}]}
 * Field numbers: Policy{version 1 int64, rules 2}; Rule{action 1, selector 2,
 * updates 3}; Selector{identifier 1, match_type 2, constraints 3};
 * AttrConstraint{key 1, value 2, condition 3}; Update{identifier 1,
 * attrs 2 (map<string,string>)}.  The encoding is written by hand: it is five
 * tiny messages, and the loader must not depend on which .proto files exist.
 */
static void pb_str(struct bg_pbuf *o, unsigned field, const char *s)
{
  if (*s)
    bg_pbuf_bytes(o, field, s, strlen(s));
}

static void pb_enum(struct bg_pbuf *o, unsigned field, uint64_t v)
{
  if (v) {
    bg_pbuf_varint(o, (uint64_t)field << 3 | 0);
    bg_pbuf_varint(o, v);
  }
}

static void pb_sub(struct bg_pbuf *o, unsigned field, struct bg_pbuf *sub)
{
  if (sub->oom)
    o->oom = 1;
  bg_pbuf_bytes(o, field, sub->b ? sub->b : (uint8_t *)"", sub->n);
  free(sub->b);
  memset(sub, 0, sizeof *sub);
}

static int sp_enum(struct ld *L, const struct jpath *p, json_t *v, const char *const *names, uint64_t *out)
{
  if (!json_is_string(v))
    return fail(L, p, 0, "expected a string, got %s", jtype(v));
  for (uint64_t i = 0; names[i]; i++)
    if (strcmp(names[i], json_string_value(v)) == 0) {
      *out = i;
      return 0;
    }
  char list[120] = "";
  size_t w = 0;
  for (size_t i = 0; names[i] && w < sizeof list; i++) {
    int r = snprintf(list + w, sizeof list - w, "%s%s", i ? ", " : "", names[i]);
    if (r < 0)
      break;
    w += (size_t)r;
  }
  return fail(L, p, 0, "\"%.40s\" is not one of %s", json_string_value(v), list);
}

static int sp_string(struct ld *L, const struct jpath *p, json_t *obj, const char *key, const char **out)
{
  json_t *v = json_object_get(obj, key);
  *out = "";
  if (!v)
    return 0;
  struct jpath q = jp_key(p, key);
  if (!json_is_string(v))
    return fail(L, &q, 0, "expected a string, got %s", jtype(v));
  *out = json_string_value(v);
  return 0;
}

static int source_policy_encode(struct ld *L, const struct jpath *p, json_t *v, struct bg_profile *pr)
{
  static const char *const pkeys[] = {"version", "rules", NULL};
  static const char *const rkeys[] = {"action", "selector", "updates", NULL};
  static const char *const skeys[] = {"identifier", "match_type", "constraints", NULL};
  static const char *const ckeys[] = {"key", "value", "condition", NULL};
  static const char *const ukeys[] = {"identifier", "attrs", NULL};
  static const char *const actions[] = {"ALLOW", "DENY", "CONVERT", NULL};
  static const char *const matches[] = {"WILDCARD", "EXACT", "REGEX", NULL};
  static const char *const conds[] = {"EQUAL", "NOTEQUAL", "MATCHES", NULL};
  struct bg_pbuf out = {0};
  json_t *x;
  const char *s;
  if (want(L, p, v, JSON_OBJECT, "an object or null") < 0 || only_keys(L, p, v, pkeys) < 0)
    return -1;
  if ((x = json_object_get(v, "version"))) {
    struct jpath q = jp_key(p, "version");
    json_int_t ver;
    if (get_uint(L, &q, x, 1000, &ver) < 0)
      return -1;
    if (ver) {
      bg_pbuf_varint(&out, 1 << 3 | 0);
      bg_pbuf_varint(&out, (uint64_t)ver);
    }
  }
  struct jpath qr = jp_key(p, "rules");
  if (!(x = json_object_get(v, "rules")) || want(L, &qr, x, JSON_ARRAY, "an array of rules") < 0) {
    if (!x)
      fail(L, p, 0, "missing \"rules\"");
    goto bad;
  }
  size_t i;
  json_t *r;
  json_array_foreach(x, i, r) {
    struct jpath q = jp_idx(&qr, i);
    struct bg_pbuf rule = {0}, sel = {0}, upd = {0};
    json_t *y;
    uint64_t e;
    if (want(L, &q, r, JSON_OBJECT, "an object") < 0 || only_keys(L, &q, r, rkeys) < 0)
      goto bad_rule;
    struct jpath qa = jp_key(&q, "action");
    if (!(y = json_object_get(r, "action"))) {
      fail(L, &q, 0, "missing \"action\"");
      goto bad_rule;
    }
    if (sp_enum(L, &qa, y, actions, &e) < 0)
      goto bad_rule;
    uint64_t action = e;
    pb_enum(&rule, 1, e);
    struct jpath qs = jp_key(&q, "selector");
    if (!(y = json_object_get(r, "selector"))) {
      fail(L, &q, 0, "missing \"selector\"");
      goto bad_rule;
    }
    if (want(L, &qs, y, JSON_OBJECT, "an object") < 0 || only_keys(L, &qs, y, skeys) < 0)
      goto bad_rule;
    if (sp_string(L, &qs, y, "identifier", &s) < 0)
      goto bad_rule;
    if (!*s) {
      fail(L, &qs, 0, "missing or empty \"identifier\"");
      goto bad_rule;
    }
    pb_str(&sel, 1, s);
    json_t *z;
    if ((z = json_object_get(y, "match_type"))) {
      struct jpath qm = jp_key(&qs, "match_type");
      if (sp_enum(L, &qm, z, matches, &e) < 0)
        goto bad_rule;
      pb_enum(&sel, 2, e);
    }
    if ((z = json_object_get(y, "constraints"))) {
      struct jpath qc = jp_key(&qs, "constraints");
      if (want(L, &qc, z, JSON_ARRAY, "an array") < 0)
        goto bad_rule;
      size_t k;
      json_t *c;
      json_array_foreach(z, k, c) {
        struct jpath qk = jp_idx(&qc, k);
        struct bg_pbuf con = {0};
        const char *ck, *cv;
        if (want(L, &qk, c, JSON_OBJECT, "an object") < 0 || only_keys(L, &qk, c, ckeys) < 0 ||
            sp_string(L, &qk, c, "key", &ck) < 0 || sp_string(L, &qk, c, "value", &cv) < 0) {
          free(con.b);
          goto bad_rule;
        }
        pb_str(&con, 1, ck);
        pb_str(&con, 2, cv);
        json_t *cc = json_object_get(c, "condition");
        if (cc) {
          struct jpath qcc = jp_key(&qk, "condition");
          if (sp_enum(L, &qcc, cc, conds, &e) < 0) {
            free(con.b);
            goto bad_rule;
          }
          pb_enum(&con, 3, e);
        }
        pb_sub(&sel, 3, &con);
      }
    }
    pb_sub(&rule, 2, &sel);
    if ((y = json_object_get(r, "updates")) && !json_is_null(y)) {
      struct jpath qu = jp_key(&q, "updates");
      if (want(L, &qu, y, JSON_OBJECT, "an object") < 0 || only_keys(L, &qu, y, ukeys) < 0 ||
          sp_string(L, &qu, y, "identifier", &s) < 0)
        goto bad_rule;
      pb_str(&upd, 1, s);
      if ((z = json_object_get(y, "attrs"))) {
        struct jpath qat = jp_key(&qu, "attrs");
        if (want(L, &qat, z, JSON_OBJECT, "an object of strings") < 0)
          goto bad_rule;
        const char *k;
        json_t *av;
        json_object_foreach(z, k, av) {
          struct jpath qav = jp_key(&qat, k);
          if (!json_is_string(av)) {
            fail(L, &qav, 0, "expected a string, got %s", jtype(av));
            goto bad_rule;
          }
          struct bg_pbuf ent = {0};
          bg_pbuf_bytes(&ent, 1, k, strlen(k));
          bg_pbuf_bytes(&ent, 2, json_string_value(av), strlen(json_string_value(av)));
          pb_sub(&upd, 2, &ent);
        }
      }
      pb_sub(&rule, 3, &upd);
    } else if (action == 2) {
      fail(L, &q, 0, "a CONVERT rule needs \"updates\"");
      goto bad_rule;
    }
    pb_sub(&out, 2, &rule);
    continue;
  bad_rule:
    free(rule.b);
    free(sel.b);
    free(upd.b);
    goto bad;
  }
  if (out.oom) {
    fail(L, p, 0, "out of memory");
    goto bad;
  }
  pr->source_policy = out.b ? out.b : calloc(1, 1);
  pr->source_policy_len = out.n;
  return 0;
bad:
  free(out.b);
  return -1;
}

static int chk_resolve_mode(struct ld *L, const struct jpath *p, const char *s)
{
  if (strcmp(s, "default") == 0 || strcmp(s, "pull") == 0 || strcmp(s, "local") == 0)
    return 0;
  return fail(L, p, 0, "unknown image resolve mode \"%s\" (default, pull, local)", s);
}

/* The ExecOp.Meta powers of an "llb" section.  Fail closed: unlike network,
 * security, sources and mounts (absent = unrestricted, kept for existing
 * files), an absent power key here means the power is denied, and "unknown"
 * defaults to "deny". */
static int get_llb_powers(struct ld *L, const struct jpath *q, json_t *x, struct bg_profile *pr)
{
  static const struct {
    const char *key;
    size_t off;
  } powers[] = {
      {"cgroup_parent", offsetof(struct bg_profile, llb_cgroup_parent)},
      {"ulimit", offsetof(struct bg_profile, llb_ulimit)},
      {"extra_hosts", offsetof(struct bg_profile, llb_extra_hosts)},
      {"hostname", offsetof(struct bg_profile, llb_hostname)},
  };
  for (size_t i = 0; i < sizeof powers / sizeof *powers; i++) {
    json_t *y = json_object_get(x, powers[i].key);
    struct jpath qk = jp_key(q, powers[i].key);
    if (y && get_bool(L, &qk, y, (int *)((char *)pr + powers[i].off)) < 0)
      return -1;
  }
  json_t *y = json_object_get(x, "unknown");
  if (y) {
    struct jpath qu = jp_key(q, "unknown");
    const char *v = json_string_value(y);
    if (!v)
      return fail(L, &qu, 0, "expected \"deny\" or \"allow\", got %s", jtype(y));
    if (strcmp(v, "allow") == 0)
      pr->llb_unknown_allow = 1;
    else if (strcmp(v, "deny") != 0)
      return fail(L, &qu, 0, "expected \"deny\" or \"allow\", got \"%.40s\"", v);
  }
  return 0;
}

/* Does the profile's own rule set depend on the order the backend reads it
 * in?  Recorded (not an error): `buildgate check` warns, and the inspector
 * forwards such a policy only to a backend that keeps order. */
static int source_policy_order(struct ld *L, const struct jpath *p, struct bg_profile *pr)
{
  Moby__Buildkit__V1__Sourcepolicy__Policy *pol =
      moby__buildkit__v1__sourcepolicy__policy__unpack(NULL, pr->source_policy_len, pr->source_policy);
  if (!pol)
    return fail(L, p, 0, "source policy does not encode (internal error)");
  size_t n;
  struct bg_sp_rule *r = bg_sp_rules(pol, &n);
  if (n && !r) {
    moby__buildkit__v1__sourcepolicy__policy__free_unpacked(pol, NULL);
    return fail(L, p, 0, "out of memory");
  }
  pr->source_policy_order_dependent = bg_sp_order_dependent(r, n, &pr->sp_conflict[0], &pr->sp_conflict[1]);
  free(r);
  moby__buildkit__v1__sourcepolicy__policy__free_unpacked(pol, NULL);
  return 0;
}

static int fill_default(struct bg_strlist *l, const char *const *vals)
{
  for (; *vals; vals++)
    if (strlist_push(l, *vals) < 0)
      return -1;
  return 0;
}

static int get_profile(struct ld *L, const struct jpath *p, const char *name, json_t *v, struct bg_profile *pr)
{
  static const char *const keys[] = {"methods", "entitlements", "frontends", "frontend_attrs", "exporters",
                                     "session_exporter", "session_methods", "cache", "llb", "source_policy",
                                     "isolate", "limits", NULL};
  if (want(L, p, v, JSON_OBJECT, "an object") < 0 || only_keys(L, p, v, keys) < 0)
    return -1;
  if (!(pr->name = strdup(name)))
    return fail(L, p, 0, "out of memory");
  json_t *x;
  struct jpath q;

  if ((x = json_object_get(v, "methods"))) {
    q = jp_key(p, "methods");
    if (get_strlist(L, &q, x, &pr->methods, chk_method) < 0)
      return -1;
  }
  if ((x = json_object_get(v, "entitlements"))) {
    q = jp_key(p, "entitlements");
    if (get_strlist(L, &q, x, &pr->entitlements, chk_entitlement) < 0)
      return -1;
  }
  pr->frontends_any = 1;
  if ((x = json_object_get(v, "frontends"))) {
    q = jp_key(p, "frontends");
    if (get_strlist(L, &q, x, &pr->frontends, NULL) < 0)
      return -1;
    pr->frontends_any = strlist_has(&pr->frontends, "*");
  }
  if ((x = json_object_get(v, "frontend_attrs"))) {
    q = jp_key(p, "frontend_attrs");
    if (get_attr_rules(L, &q, x, &pr->frontend_attrs, 0) < 0)
      return -1;
    json_t *y;
    if ((y = json_object_get(x, "allow"))) {
      struct jpath qa = jp_key(&q, "allow");
      if (get_strlist(L, &qa, y, &pr->frontend_attrs_allow, NULL) < 0)
        return -1;
      pr->frontend_attrs_allow_set = 1;
    }
  }
  pr->exporters_any = 1;
  if ((x = json_object_get(v, "exporters"))) {
    q = jp_key(p, "exporters");
    if (want(L, &q, x, JSON_OBJECT, "an object (exporter type -> rules)") < 0)
      return -1;
    pr->exporters_any = 0;
    size_t n = json_object_size(x);
    pr->exporters = calloc(n ? n : 1, sizeof *pr->exporters);
    if (!pr->exporters)
      return fail(L, &q, 0, "out of memory");
    const char *k;
    json_t *e;
    json_object_foreach(x, k, e) {
      struct jpath qe = jp_key(&q, k);
      if (!*k)
        return fail(L, &qe, 1, "empty exporter type");
      if (chk_type(L, &qe, k) < 0) {
        L->at_key = 1;
        return -1;
      }
      struct bg_exporter_rule *er = &pr->exporters[pr->n_exporters++];
      if (!(er->type = strdup(k)))
        return fail(L, &qe, 0, "out of memory");
      if (get_attr_rules(L, &qe, e, &er->attrs, 1) < 0)
        return -1;
    }
  }
  if ((x = json_object_get(v, "session_exporter"))) {
    q = jp_key(p, "session_exporter");
    if (get_bool(L, &q, x, &pr->session_exporter) < 0)
      return -1;
  }
  pr->session_methods_any = 1;
  if ((x = json_object_get(v, "session_methods"))) {
    q = jp_key(p, "session_methods");
    if (get_strlist(L, &q, x, &pr->session_methods, chk_session_method) < 0)
      return -1;
    pr->session_methods_any = strlist_has(&pr->session_methods, "*");
  }
  pr->cache_any = 1;
  if ((x = json_object_get(v, "cache"))) {
    static const char *const ck[] = {"import", "export", NULL};
    static const char *const any[] = {"*", NULL};
    q = jp_key(p, "cache");
    if (want(L, &q, x, JSON_OBJECT, "an object") < 0 || only_keys(L, &q, x, ck) < 0)
      return -1;
    pr->cache_any = 0;
    json_t *y;
    struct jpath qi = jp_key(&q, "import"), qx = jp_key(&q, "export");
    if ((y = json_object_get(x, "import")) ? get_strlist(L, &qi, y, &pr->cache_import, chk_type) < 0
                                           : fill_default(&pr->cache_import, any) < 0)
      return -1;
    if ((y = json_object_get(x, "export")) ? get_strlist(L, &qx, y, &pr->cache_export, chk_type) < 0
                                           : fill_default(&pr->cache_export, any) < 0)
      return -1;
  }
  pr->llb_any = 1;
  if ((x = json_object_get(v, "llb"))) {
    static const char *const lk[] = {"network", "security", "sources", "mounts", "cgroup_parent", "ulimit",
                                     "extra_hosts", "hostname", "unknown", "image_resolve_mode", NULL};
    static const char *const d_irm[] = {"default", "pull", NULL};
    static const char *const d_net[] = {"sandbox", "none", "host", NULL};
    static const char *const d_sec[] = {"sandbox", "insecure", NULL};
    static const char *const d_src[] = {"*", NULL};
    static const char *const d_mnt[] = {"secret", "ssh", NULL};
    q = jp_key(p, "llb");
    if (want(L, &q, x, JSON_OBJECT, "an object") < 0 || only_keys(L, &q, x, lk) < 0)
      return -1;
    pr->llb_any = 0;
    json_t *y;
    struct jpath qn = jp_key(&q, "network"), qs = jp_key(&q, "security"), qr = jp_key(&q, "sources"),
                 qm = jp_key(&q, "mounts");
    /* A key missing inside "llb" leaves that aspect unrestricted. */
    if ((y = json_object_get(x, "network")) ? get_strlist(L, &qn, y, &pr->llb_network, chk_network) < 0
                                            : fill_default(&pr->llb_network, d_net) < 0)
      return -1;
    if ((y = json_object_get(x, "security")) ? get_strlist(L, &qs, y, &pr->llb_security, chk_security) < 0
                                             : fill_default(&pr->llb_security, d_sec) < 0)
      return -1;
    if ((y = json_object_get(x, "sources")) ? get_strlist(L, &qr, y, &pr->llb_sources, NULL) < 0
                                            : fill_default(&pr->llb_sources, d_src) < 0)
      return -1;
    if ((y = json_object_get(x, "mounts")) ? get_strlist(L, &qm, y, &pr->llb_mounts, chk_mount) < 0
                                           : fill_default(&pr->llb_mounts, d_mnt) < 0)
      return -1;
    if (get_llb_powers(L, &q, x, pr) < 0)
      return -1;
    struct jpath qi = jp_key(&q, "image_resolve_mode");
    if ((y = json_object_get(x, "image_resolve_mode")) ? get_strlist(L, &qi, y, &pr->llb_resolve_modes, chk_resolve_mode) < 0
                                                       : fill_default(&pr->llb_resolve_modes, d_irm) < 0)
      return -1;
  }
  if ((x = json_object_get(v, "source_policy")) && !json_is_null(x)) {
    q = jp_key(p, "source_policy");
    if (source_policy_encode(L, &q, x, pr) < 0)
      return -1;
    if (source_policy_order(L, &q, pr) < 0)
      return -1;
  }
  pr->isolate = 1;
  if ((x = json_object_get(v, "isolate"))) {
    q = jp_key(p, "isolate");
    if (get_bool(L, &q, x, &pr->isolate) < 0)
      return -1;
  }
  pr->max_message_bytes = BG_DEFAULT_MAX_MESSAGE_BYTES;
  if ((x = json_object_get(v, "limits"))) {
    static const char *const lk[] = {"max_message_bytes", "max_streams", NULL};
    q = jp_key(p, "limits");
    if (want(L, &q, x, JSON_OBJECT, "an object") < 0 || only_keys(L, &q, x, lk) < 0)
      return -1;
    json_t *y;
    json_int_t n;
    if ((y = json_object_get(x, "max_message_bytes"))) {
      struct jpath qm = jp_key(&q, "max_message_bytes");
      if (get_uint(L, &qm, y, (json_int_t)1 << 30, &n) < 0)
        return -1;
      if (n < 1024)
        return fail(L, &qm, 0, "max_message_bytes must be at least 1024");
      pr->max_message_bytes = (size_t)n;
    }
    if ((y = json_object_get(x, "max_streams"))) {
      struct jpath qm = jp_key(&q, "max_streams");
      if (get_uint(L, &qm, y, 1 << 20, &n) < 0)
        return -1;
      pr->max_streams = (unsigned)n;
    }
  }
  return 0;
}

static int profile_name_ok(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > 63)
    return 0;
  for (const char *q = s; *q; q++)
    if (!isalnum((unsigned char)*q) && *q != '_' && *q != '-' && *q != '.')
      return 0;
  return 1;
}

static int get_tenant(struct ld *L, struct bg_policy *P, size_t ti, const struct jpath *p, json_t *v)
{
  static const char *const keys[] = {"name", "match", "profile", NULL};
  static const char *const mkeys[] = {"uid", "gid", "cert_cn", "token_sha256", "any_local", NULL};
  struct bg_tenant *t = &P->tenants[ti];
  if (want(L, p, v, JSON_OBJECT, "an object") < 0 || only_keys(L, p, v, keys) < 0)
    return -1;
  json_t *x;
  struct jpath q = jp_key(p, "name");
  if (!(x = json_object_get(v, "name")))
    return fail(L, p, 0, "missing \"name\"");
  if (!json_is_string(x))
    return fail(L, &q, 0, "expected a string, got %s", jtype(x));
  if (!bg_tenant_name_ok(json_string_value(x)))
    return fail(L, &q, 0, "tenant name \"%.63s\" must match [a-z0-9_-]{1,63} (it prefixes namespaced names)",
                json_string_value(x));
  if (bg_tenant_by_name(P, json_string_value(x)) >= 0)
    return fail(L, &q, 0, "duplicate tenant name \"%s\"", json_string_value(x));
  if (!(t->name = strdup(json_string_value(x))))
    return fail(L, &q, 0, "out of memory");

  q = jp_key(p, "profile");
  if (!(x = json_object_get(v, "profile")))
    return fail(L, p, 0, "missing \"profile\"");
  if (!json_is_string(x))
    return fail(L, &q, 0, "expected a string, got %s", jtype(x));
  size_t pi;
  for (pi = 0; pi < P->n_profiles; pi++)
    if (strcmp(P->profiles[pi].name, json_string_value(x)) == 0)
      break;
  if (pi == P->n_profiles)
    return fail(L, &q, 0, "profile \"%.80s\" is not defined in \"profiles\"", json_string_value(x));
  t->profile = pi;

  if (!(x = json_object_get(v, "match")))
    return 0; /* reachable only as the anonymous tenant */
  q = jp_key(p, "match");
  if (want(L, &q, x, JSON_OBJECT, "an object") < 0 || only_keys(L, &q, x, mkeys) < 0)
    return -1;
  json_t *y;
  if ((y = json_object_get(x, "any_local"))) {
    struct jpath qa = jp_key(&q, "any_local");
    if (get_bool(L, &qa, y, &t->any_local) < 0)
      return -1;
    for (size_t o = 0; t->any_local && o < ti; o++)
      if (P->tenants[o].any_local)
        return fail(L, &qa, 0, "tenant \"%s\" already matches any local peer", P->tenants[o].name);
  }
  for (int isgid = 0; isgid < 2; isgid++) {
    const char *k = isgid ? "gid" : "uid";
    if (!(y = json_object_get(x, k)))
      continue;
    struct jpath qu = jp_key(&q, k);
    if (want(L, &qu, y, JSON_ARRAY, "an array of integers") < 0)
      return -1;
    size_t n = json_array_size(y), i;
    json_t *e;
    void *arr = calloc(n ? n : 1, isgid ? sizeof(gid_t) : sizeof(uid_t));
    if (!arr)
      return fail(L, &qu, 0, "out of memory");
    if (isgid)
      t->gids = arr;
    else
      t->uids = arr;
    json_array_foreach(y, i, e) {
      struct jpath qe = jp_idx(&qu, i);
      json_int_t id;
      if (get_uint(L, &qe, e, (json_int_t)0xfffffffeu, &id) < 0)
        return -1;
      for (size_t o = 0; o <= ti; o++) {
        const struct bg_tenant *ot = &P->tenants[o];
        size_t on = isgid ? ot->n_gids : ot->n_uids;
        for (size_t j = 0; j < on; j++)
          if ((isgid ? (json_int_t)ot->gids[j] : (json_int_t)ot->uids[j]) == id)
            return fail(L, &qe, 0, "%s %lld already maps to tenant \"%s\"", k, (long long)id, ot->name);
      }
      if (isgid)
        t->gids[t->n_gids++] = (gid_t)id;
      else
        t->uids[t->n_uids++] = (uid_t)id;
    }
  }
  if ((y = json_object_get(x, "cert_cn"))) {
    struct jpath qc = jp_key(&q, "cert_cn");
    if (get_strlist(L, &qc, y, &t->cert_cn, NULL) < 0)
      return -1;
    for (size_t i = 0; i < t->cert_cn.n; i++)
      for (size_t o = 0; o <= ti; o++) {
        const struct bg_tenant *ot = &P->tenants[o];
        size_t on = o == ti ? i : ot->cert_cn.n;
        for (size_t j = 0; j < on; j++)
          if (strcmp(ot->cert_cn.v[j], t->cert_cn.v[i]) == 0) {
            struct jpath qe = jp_idx(&qc, i);
            return fail(L, &qe, 0, "certificate name \"%.80s\" already maps to tenant \"%s\"", t->cert_cn.v[i],
                        ot->name);
          }
      }
  }
  if ((y = json_object_get(x, "token_sha256"))) {
    struct jpath qt = jp_key(&q, "token_sha256");
    struct bg_strlist hex = {0};
    if (get_strlist(L, &qt, y, &hex, chk_hex64) < 0) {
      bg_strlist_free(&hex);
      return -1;
    }
    t->tokens = calloc(hex.n ? hex.n : 1, sizeof *t->tokens);
    if (!t->tokens) {
      bg_strlist_free(&hex);
      return fail(L, &qt, 0, "out of memory");
    }
    for (size_t i = 0; i < hex.n; i++) {
      for (int b = 0; b < 32; b++) {
        unsigned byte;
        sscanf(hex.v[i] + 2 * b, "%2x", &byte);
        t->tokens[i][b] = (uint8_t)byte;
      }
      for (size_t o = 0; o <= ti; o++) {
        const struct bg_tenant *ot = &P->tenants[o];
        size_t on = o == ti ? i : ot->n_tokens;
        for (size_t j = 0; j < on; j++)
          if (memcmp(ot->tokens[j], t->tokens[i], 32) == 0) {
            struct jpath qe = jp_idx(&qt, i);
            bg_strlist_free(&hex);
            return fail(L, &qe, 0, "token hash already maps to tenant \"%s\"", ot->name);
          }
      }
    }
    t->n_tokens = hex.n;
    bg_strlist_free(&hex);
    P->any_tokens = 1;
  }
  return 0;
}

void bg_policy_free(struct bg_policy *p)
{
  if (!p)
    return;
  for (size_t i = 0; i < p->n_tenants; i++) {
    struct bg_tenant *t = &p->tenants[i];
    free(t->name);
    free(t->uids);
    free(t->gids);
    bg_strlist_free(&t->cert_cn);
    if (t->tokens)
      memset(t->tokens, 0, t->n_tokens * sizeof *t->tokens);
    free(t->tokens);
  }
  free(p->tenants);
  for (size_t i = 0; i < p->image_prefixes.n; i++) {
    free(p->image_prefixes.v[i].key);
    free(p->image_prefixes.v[i].value);
  }
  free(p->image_prefixes.v);
  for (size_t i = 0; i < p->n_profiles; i++)
    bg_profile_free(&p->profiles[i]);
  free(p->profiles);
  free(p);
}

/* Every tenant's image names, as the other tenants' LLB must not name them
 * (profile.h tenant_image_prefixes): the image and moby exporter prefixes of
 * its profile, ${tenant} expanded, normalised like a docker reference. */
static int link_image_prefixes(struct bg_policy *P)
{
  struct bg_kvlist *l = &P->image_prefixes;
  for (size_t i = 0; i < P->n_tenants; i++) {
    const struct bg_tenant *t = &P->tenants[i];
    const struct bg_profile *pr = &P->profiles[t->profile];
    for (size_t e = 0; e < pr->n_exporters; e++) {
      const struct bg_exporter_rule *er = &pr->exporters[e];
      if (!er->attrs.name_prefix || (strcmp(er->type, "image") != 0 && strcmp(er->type, "moby") != 0))
        continue;
      char *x = bg_expand_tenant(er->attrs.name_prefix, t->name);
      char norm[600];
      if (!x)
        return -1;
      int ok = x[0] && bg_docker_normalize(x, strlen(x), 0, norm, sizeof norm) == 0;
      free(x);
      if (!ok)
        continue;
      struct bg_kv *nv = realloc(l->v, (l->n + 1) * sizeof *nv);
      if (!nv)
        return -1;
      l->v = nv;
      nv[l->n].key = strdup(t->name);
      nv[l->n].value = strdup(norm);
      if (!nv[l->n].key || !nv[l->n].value) {
        free(nv[l->n].key);
        free(nv[l->n].value);
        return -1;
      }
      l->n++;
    }
  }
  for (size_t k = 0; k < P->n_profiles; k++)
    P->profiles[k].tenant_image_prefixes = l;
  return 0;
}

static struct bg_policy *build(struct ld *L, json_t *root)
{
  static const char *const keys[] = {"mode", "anonymous", "tenants", "profiles", NULL};
  struct jpath top = {0};
  struct bg_policy *P = calloc(1, sizeof *P);
  if (!P) {
    fail(L, &top, 0, "out of memory");
    return NULL;
  }
  P->refs = 1;
  P->anonymous = -1;
  if (want(L, &top, root, JSON_OBJECT, "an object at the top level") < 0 || only_keys(L, &top, root, keys) < 0)
    goto bad;
  json_t *x;
  if ((x = json_object_get(root, "mode"))) {
    struct jpath q = jp_key(&top, "mode");
    if (!json_is_string(x)) {
      fail(L, &q, 0, "expected a string, got %s", jtype(x));
      goto bad;
    }
    if (strcmp(json_string_value(x), "audit") == 0)
      P->audit_mode = 1;
    else if (strcmp(json_string_value(x), "enforce") != 0) {
      fail(L, &q, 0, "mode must be \"enforce\" or \"audit\"");
      goto bad;
    }
  }
  if ((x = json_object_get(root, "profiles"))) {
    struct jpath q = jp_key(&top, "profiles");
    if (want(L, &q, x, JSON_OBJECT, "an object (profile name -> profile)") < 0)
      goto bad;
    size_t n = json_object_size(x);
    P->profiles = calloc(n ? n : 1, sizeof *P->profiles);
    if (!P->profiles) {
      fail(L, &q, 0, "out of memory");
      goto bad;
    }
    const char *k;
    json_t *e;
    json_object_foreach(x, k, e) {
      struct jpath qp = jp_key(&q, k);
      if (!profile_name_ok(k)) {
        fail(L, &qp, 1, "profile name \"%.63s\" must match [A-Za-z0-9._-]{1,63}", k);
        goto bad;
      }
      struct bg_profile *pr = &P->profiles[P->n_profiles++];
      if (get_profile(L, &qp, k, e, pr) < 0)
        goto bad;
    }
  }
  if ((x = json_object_get(root, "tenants"))) {
    struct jpath q = jp_key(&top, "tenants");
    if (want(L, &q, x, JSON_ARRAY, "an array of tenants") < 0)
      goto bad;
    size_t n = json_array_size(x), i;
    P->tenants = calloc(n ? n : 1, sizeof *P->tenants);
    if (!P->tenants) {
      fail(L, &q, 0, "out of memory");
      goto bad;
    }
    json_t *e;
    json_array_foreach(x, i, e) {
      struct jpath qt = jp_idx(&q, i);
      P->n_tenants++;
      if (get_tenant(L, P, i, &qt, e) < 0)
        goto bad;
    }
  }
  if ((x = json_object_get(root, "anonymous")) && !json_is_null(x)) {
    struct jpath q = jp_key(&top, "anonymous");
    if (!json_is_string(x)) {
      fail(L, &q, 0, "expected a tenant name or null, got %s", jtype(x));
      goto bad;
    }
    if ((P->anonymous = bg_tenant_by_name(P, json_string_value(x))) < 0) {
      fail(L, &q, 0, "anonymous names tenant \"%.63s\", which is not in \"tenants\"", json_string_value(x));
      goto bad;
    }
  }
  if (link_image_prefixes(P) < 0) {
    fail(L, &top, 0, "out of memory");
    goto bad;
  }
  return P;
bad:
  bg_policy_free(P);
  return NULL;
}

struct bg_policy *bg_policy_load_string(const char *json, size_t len, struct bg_error *err)
{
  struct bg_error dummy;
  if (!err)
    err = &dummy;
  memset(err, 0, sizeof *err);
  json_error_t je;
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    err->line = je.line > 0 ? je.line : 0;
    err->column = je.column > 0 ? je.column : 0;
    snprintf(err->text, sizeof err->text, "%s", je.text);
    return NULL;
  }
  struct ld L = {json, len, err, 0, {0}, 0};
  struct bg_policy *P = build(&L, root);
  if (!P) /* before json_decref: the path's keys point into the tree */
    locate(json, len, &L.where, L.at_key, &err->line, &err->column);
  json_decref(root);
  return P;
}

struct bg_policy *bg_policy_load_file(const char *path, struct bg_error *err)
{
  struct bg_error dummy;
  if (!err)
    err = &dummy;
  memset(err, 0, sizeof *err);
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err->text, sizeof err->text, "cannot open: %s", strerror(errno));
    return NULL;
  }
  size_t cap = 8192, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) {
      fclose(f);
      snprintf(err->text, sizeof err->text, "out of memory");
      return NULL;
    }
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap)
      break;
    if (cap >= (size_t)16 << 20) {
      free(buf);
      fclose(f);
      snprintf(err->text, sizeof err->text, "policy file larger than 16 MiB");
      return NULL;
    }
    char *nb = realloc(buf, cap * 2);
    if (!nb)
      free(buf);
    buf = nb;
    cap *= 2;
  }
  int rerr = ferror(f);
  fclose(f);
  if (rerr) {
    free(buf);
    snprintf(err->text, sizeof err->text, "read error");
    return NULL;
  }
  struct bg_policy *p = bg_policy_load_string(buf, n, err);
  free(buf);
  return p;
}

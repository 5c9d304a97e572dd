/*
 * bg_inspect_exporter.c: exporter rules (type allow-list, attr deny/delete/set,
 * name_prefix, push registries) and the docker-reference "escape" rules.
 *
 * What "escaping the prefix" means (name_prefix, after ${tenant} expansion):
 *   - every comma-separated name in "name" (spaces around names trimmed, empty
 *     names dropped) that already starts with the prefix is kept;
 *   - a name is refused when it contains "..", "//", starts with "/" or "."
 *     or "-", contains whitespace/control characters, "\\", or "@" before the
 *     last "/" — none of which a valid docker reference has, and all of which
 *     could make a prefixed string parse differently than it reads;
 *   - a name whose first path component is a registry host (contains '.' or
 *     ':' or is "localhost", and is followed by '/') is refused unless it
 *     already carries the prefix: prefixing "evil.example/x" would silently
 *     turn a push target into a path component, and "docker.io/ci/app" vs
 *     "ci/app" normalisation is not guessed at — write the short form;
 *   - any other name gets the prefix prepended.
 *   "dangling-name-prefix" (image exporter) gets the same treatment as one
 *   name, so unnamed images also land under the prefix.
 * Push: when the effective "push" attr is true (empty, or Go
 * strconv.ParseBool's spelling of true, as the image exporter reads it),
 * the registry host of every final name must match push_registries (globs)
 * unless push_any.  A name without a registry host
 * pushes to "docker.io".
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/inspect_int.h"

static int host_like(const char *comp, size_t n)
{
  if (n == 9 && memcmp(comp, "localhost", 9) == 0)
    return 1;
  return memchr(comp, '.', n) || memchr(comp, ':', n);
}

void bg_ref_registry(const char *name, char *host, size_t hostlen)
{
  const char *slash = strchr(name, '/');
  if (slash && host_like(name, (size_t)(slash - name))) {
    size_t n = (size_t)(slash - name);
    if (n >= hostlen)
      n = hostlen - 1;
    memcpy(host, name, n);
    host[n] = 0;
  } else {
    snprintf(host, hostlen, "docker.io");
  }
}

int bg_docker_normalize(const char *name, size_t len, int strip_tag, char *out, size_t outlen)
{
  if (memchr(name, 0, len))
    return -1;
  if (strip_tag) {
    const char *at = memchr(name, '@', len);
    if (at)
      len = (size_t)(at - name);
    size_t last = len;
    while (last && name[last - 1] != '/')
      last--;
    const char *colon = memchr(name + last, ':', len - last);
    if (colon)
      len = (size_t)(colon - name);
  }
  const char *slash = memchr(name, '/', len);
  const char *dom = "docker.io", *rest = name;
  size_t dl = 9, rl = len;
  if (slash) {
    size_t i = (size_t)(slash - name);
    int lower = 1;
    for (size_t k = 0; k < i; k++)
      lower &= !(name[k] >= 'A' && name[k] <= 'Z');
    if (memchr(name, '.', i) || memchr(name, ':', i) || (i == 9 && memcmp(name, "localhost", 9) == 0) || !lower) {
      dom = name, dl = i;
      rest = slash + 1, rl = len - i - 1;
    }
  }
  if (dl == 15 && memcmp(dom, "index.docker.io", 15) == 0)
    dom = "docker.io", dl = 9;
  int lib = dl == 9 && memcmp(dom, "docker.io", 9) == 0 && !memchr(rest, '/', rl);
  int w = snprintf(out, outlen, "%.*s/%s%.*s", (int)dl, dom, lib ? "library/" : "", (int)rl, rest);
  return w < 0 || (size_t)w >= outlen ? -1 : 0;
}

static const char *name_syntax_problem(const char *s)
{
  if (!*s)
    return "empty name";
  if (s[0] == '/' || s[0] == '.' || s[0] == '-')
    return "starts with a separator";
  if (strstr(s, ".."))
    return "contains \"..\"";
  if (strstr(s, "//"))
    return "contains \"//\"";
  for (const char *q = s; *q; q++)
    if (isspace((unsigned char)*q) || iscntrl((unsigned char)*q) || *q == '\\')
      return "contains whitespace or control characters";
  const char *at = strchr(s, '@'), *last = strrchr(s, '/');
  if (at && last && at < last)
    return "has a digest before its last path component";
  return NULL;
}

char *bg_exporter_prefix_name(const char *name, const char *prefix, const char **why)
{
  *why = name_syntax_problem(name);
  if (*why)
    return NULL;
  if (prefix[0] && strncmp(name, prefix, strlen(prefix)) == 0)
    return strdup(name);
  const char *slash = strchr(name, '/');
  if (slash && host_like(name, (size_t)(slash - name))) {
    *why = "names a registry host outside the prefix";
    return NULL;
  }
  size_t pl = strlen(prefix), nl = strlen(name);
  char *out = malloc(pl + nl + 1);
  if (!out) {
    *why = "out of memory";
    return NULL;
  }
  memcpy(out, prefix, pl);
  memcpy(out + pl, name, nl + 1);
  return out;
}

static int parse_bool_true(const char *v)
{
  static const char *const t[] = {"1", "t", "T", "true", "TRUE", "True"};
  for (size_t i = 0; i < sizeof t / sizeof *t; i++)
    if (strcmp(v, t[i]) == 0)
      return 1;
  return 0;
}

static const struct bg_exporter_rule *find_rule(const struct bg_profile *p, const char *type)
{
  const struct bg_exporter_rule *star = NULL;
  for (size_t i = 0; i < p->n_exporters; i++) {
    if (strcmp(p->exporters[i].type, type) == 0)
      return &p->exporters[i];
    if (strcmp(p->exporters[i].type, "*") == 0)
      star = &p->exporters[i];
  }
  return star;
}

/* Rewrite every name of a comma-separated list; returns arena string, or
 * NULL after a denial. */
static char *prefix_names(struct bg_ictx *c, const char *value, const char *prefix, const char *field,
                          int single)
{
  size_t cap = strlen(value) * 2 + strlen(prefix) * 8 + 16, len = 0;
  char *out = malloc(cap);
  char *copy = strdup(value);
  if (!out || !copy) {
    free(out);
    free(copy);
    return NULL;
  }
  out[0] = 0;
  char *save = NULL;
  for (char *tok = single ? copy : strtok_r(copy, ",", &save); tok;
       tok = single ? NULL : strtok_r(NULL, ",", &save)) {
    while (*tok == ' ')
      tok++;
    size_t tl = strlen(tok);
    while (tl && tok[tl - 1] == ' ')
      tok[--tl] = 0;
    if (!tl)
      continue;
    const char *why = NULL;
    char *n = bg_exporter_prefix_name(tok, prefix, &why);
    if (!n) {
      bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "exporter_name",
                   "%s: image name \"%s\" is refused (%s; names must stay under \"%s\") for %s", field, tok,
                   why, prefix, bg_ictx_who(c));
      free(out);
      free(copy);
      return NULL;
    }
    size_t nl = strlen(n);
    if (len + nl + 2 > cap) {
      cap = (len + nl + 2) * 2;
      char *o2 = realloc(out, cap);
      if (!o2) {
        free(n);
        free(out);
        free(copy);
        return NULL;
      }
      out = o2;
    }
    if (len)
      out[len++] = ',';
    memcpy(out + len, n, nl + 1);
    len += nl;
    free(n);
  }
  free(copy);
  char *res = bg_arena_strdup(&c->arena, out);
  free(out);
  return res;
}

static void check_push(struct bg_ictx *c, const struct bg_attr_rules *ar, struct bg_smap attrs,
                       const char *type, const char *field)
{
  const char *push = bg_smap_get(attrs, "push");
  /* The image exporter reads an empty "push" as true (containerimage
   * export.go, v0.8 to now: `if v == "" { i.push = true }`), then
   * strconv.ParseBool. */
  if (!push || !(push[0] == 0 || parse_bool_true(push)) || ar->push_any)
    return;
  const char *names = bg_smap_get(attrs, "name");
  char *copy = strdup(names ? names : "");
  if (!copy)
    return;
  char *save = NULL;
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ')
      tok++;
    if (!*tok)
      continue;
    char host[256];
    bg_ref_registry(tok, host, sizeof host);
    if (!bg_list_glob(&ar->push_registries, host)) {
      bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "exporter_push",
                   "%s: push of \"%s\" to registry %s is not allowed for %s", field, tok, host, bg_ictx_who(c));
      break;
    }
  }
  free(copy);
}

/* Deny/delete/set over a string map (shared with frontend attrs). */
void bg_apply_attr_rules(struct bg_ictx *c, const struct bg_attr_rules *ar, struct bg_smap m,
                         const char *field, const char *rule)
{
  char f[320];
  for (size_t i = 0; i < *m.n; i++) {
    const char *k = (*m.v)[i]->key;
    if (bg_list_glob(&ar->deny, k)) {
      bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, rule, "%s: attribute %s is denied for %s", field, k,
                   bg_ictx_who(c));
      return;
    }
  }
  for (size_t i = *m.n; i-- > 0;) {
    const char *k = (*m.v)[i]->key;
    if (bg_list_glob(&ar->del, k)) {
      snprintf(f, sizeof f, "%s[%s]", field, k);
      bg_ictx_rewrite(c, f, (*m.v)[i]->value, NULL);
      bg_smap_remove_at(m, i);
    }
  }
  for (size_t s = 0; s < ar->set.n; s++) {
    const char *k = ar->set.v[s].key;
    char *want = bg_expand_tenant(ar->set.v[s].value ? ar->set.v[s].value : "", c->r->tenant);
    if (!want)
      continue;
    size_t count = 0;
    const char *cur = NULL;
    for (size_t i = 0; i < *m.n; i++)
      if (strcmp((*m.v)[i]->key, k) == 0)
        count++, cur = (*m.v)[i]->value;
    if (!(count == 1 && strcmp(cur, want) == 0)) {
      snprintf(f, sizeof f, "%s[%s]", field, k);
      bg_ictx_rewrite(c, f, cur, want);
      bg_smap_set(c, m, k, want);
    }
    free(want);
  }
}

void bg_inspect_exporter(struct bg_ictx *c, const char *type, struct bg_smap attrs, const char *field,
                         const char *attrs_field)
{
  const struct bg_profile *p = c->p;
  bg_strlist_add(&c->r->exporters, type, 16);
  if (p->exporters_any)
    return;
  const struct bg_exporter_rule *rule = find_rule(p, type);
  if (!rule) {
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "exporters", "%s: exporter type \"%s\" is not allowed for %s",
                 field, type, bg_ictx_who(c));
    return;
  }
  const struct bg_attr_rules *ar = &rule->attrs;
  const char *af = attrs_field;
  bg_apply_attr_rules(c, ar, attrs, af, "exporter_attrs");
  if (c->stop)
    return;
  if (ar->name_prefix) {
    char *prefix = bg_expand_tenant(ar->name_prefix, c->r->tenant);
    if (!prefix)
      return;
    static const char *const keys[] = {"name", "dangling-name-prefix"};
    for (int k = 0; k < 2 && !c->stop; k++) {
      for (size_t i = 0; i < *attrs.n; i++) {
        struct bg_kv_entry *e = (*attrs.v)[i];
        if (strcmp(e->key, keys[k]) != 0 || !e->value[0])
          continue;
        char f[320];
        snprintf(f, sizeof f, "%s[%s]", af, keys[k]);
        char *nv = prefix_names(c, e->value, prefix, f, k == 1);
        if (!nv)
          break;
        if (strcmp(nv, e->value) != 0) {
          bg_ictx_rewrite(c, f, e->value, nv);
          e->value = nv;
        }
      }
    }
    free(prefix);
  }
  if (!c->stop)
    check_push(c, ar, attrs, type, af);
}

/*
 * strutil.c: small string helpers shared by the policy loader and the
 * inspectors: glob matching, ${tenant} templates, tenant namespacing.
 */
#include <stdlib.h>
#include <string.h>

#include "policy/profile.h"

int bg_glob_match(const char *p, const char *s)
{
  /* Iterative matcher with one backtrack point: linear in practice and no
   * recursion, so a hostile pattern or name cannot blow the stack. */
  const char *star = NULL, *resume = NULL;
  while (*s) {
    if (*p == '*') {
      star = p++;
      resume = s;
    } else if (*p == '?' || *p == *s) {
      p++;
      s++;
    } else if (star) {
      p = star + 1;
      s = ++resume;
    } else {
      return 0;
    }
  }
  while (*p == '*')
    p++;
  return *p == '\0';
}

char *bg_expand_tenant(const char *tmpl, const char *tenant)
{
  static const char key[] = "${tenant}";
  const size_t klen = sizeof(key) - 1, tlen = strlen(tenant);
  size_t n = 0;
  for (const char *q = tmpl; (q = strstr(q, key)); q += klen)
    n++;
  char *out = malloc(strlen(tmpl) + n * tlen + 1);
  if (!out)
    return NULL;
  char *w = out;
  for (const char *q = tmpl;;) {
    const char *hit = strstr(q, key);
    size_t chunk = hit ? (size_t)(hit - q) : strlen(q);
    memcpy(w, q, chunk);
    w += chunk;
    if (!hit)
      break;
    memcpy(w, tenant, tlen);
    w += tlen;
    q = hit + klen;
  }
  *w = '\0';
  return out;
}

/* Tenant namespacing, closed under BuildKit's "prefix:" rule
 * (docs/session-names.md).
 *
 * BuildKit reads a session name in two ways, both splitting at the FIRST ':':
 *   session.Manager.Get:   "p:rest" with rest non-empty looks up "rest";
 *   the local source:      local.session "p:rest" looks up "rest" and names
 *                          the directory "p-<name>" (rest may be empty).
 * Build refs are never split, but they get the same form so that there is
 * one rule for every name.  So the tenant goes where the lookup starts:
 *
 *   name without ':'   ->  "<tenant>.<name>"
 *   "p:rest"           ->  "p:<tenant>.rest"   (p is everything before the first ':')
 *
 * After either split the looked-up part begins with "<tenant>.".  Tenant
 * names are validated to [a-z0-9_-]+ (no '.', no ':'), so:
 *   - the part after the first ':' of a wrapped name never holds another ':'
 *     before "<tenant>.", and nothing one tenant wraps can be read by BuildKit
 *     as another tenant's name;
 *   - the mapping is one-to-one, and bg_ns_unwrap_dup inverts it exactly.
 * An empty name is not wrapped by the callers: it means "no session". */
char *bg_ns_wrap(const char *tenant, const char *name)
{
  size_t tl = strlen(tenant), nl = strlen(name);
  const char *colon = memchr(name, ':', nl);
  size_t pl = colon ? (size_t)(colon - name) + 1 : 0; /* "p:" kept in front */
  char *out = malloc(nl + tl + 2);
  if (!out)
    return NULL;
  memcpy(out, name, pl);
  memcpy(out + pl, tenant, tl);
  out[pl + tl] = '.';
  memcpy(out + pl + tl + 1, name + pl, nl - pl + 1);
  return out;
}

/* Both forms: "<tenant>.<name>" (no ':' before it) and "p:<tenant>.rest".
 * The form is decided by the first ':' exactly as BuildKit decides it, so a
 * daemon-side name is attributed to the tenant whose namespace BuildKit would
 * look it up in.  Returns NULL for a name outside the tenant's namespace.
 * For "p:<tenant>.rest" the result is malloc'd (it is not a suffix of the
 * input); bg_ns_unwrap_dup always returns a malloc'd string. */
char *bg_ns_unwrap_dup(const char *tenant, const char *wrapped)
{
  size_t tl = strlen(tenant), wl = strlen(wrapped);
  const char *colon = memchr(wrapped, ':', wl);
  size_t pl = colon ? (size_t)(colon - wrapped) + 1 : 0;
  const char *r = wrapped + pl;
  if (wl - pl < tl + 1 || strncmp(r, tenant, tl) != 0 || r[tl] != '.')
    return NULL;
  char *out = malloc(wl - tl);
  if (!out)
    return NULL;
  memcpy(out, wrapped, pl);
  memcpy(out + pl, r + tl + 1, wl - pl - tl); /* with the NUL */
  return out;
}

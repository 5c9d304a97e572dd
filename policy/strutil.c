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

/* Wrapped form: "<tenant>.<name>".  Tenant names are validated by the loader
 * to [a-z0-9_-]+, so the first '.' always ends the tenant part and one tenant
 * can never produce a name that unwraps as another's. */
char *bg_ns_wrap(const char *tenant, const char *name)
{
  size_t tl = strlen(tenant), nl = strlen(name);
  char *out = malloc(tl + 1 + nl + 1);
  if (!out)
    return NULL;
  memcpy(out, tenant, tl);
  out[tl] = '.';
  memcpy(out + tl + 1, name, nl + 1);
  return out;
}

const char *bg_ns_unwrap(const char *tenant, const char *wrapped)
{
  size_t tl = strlen(tenant);
  if (strncmp(wrapped, tenant, tl) != 0 || wrapped[tl] != '.')
    return NULL;
  return wrapped + tl + 1;
}

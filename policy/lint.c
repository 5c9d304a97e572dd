/*
 * lint.c: warnings about a policy that loads but probably does not do what
 * its author meant (`buildgate check` prints them; they never fail a load).
 */
#include <stdio.h>
#include <string.h>

#include "policy/frontend_attrs.h"
#include "policy/policy_int.h"

static int allows(const struct bg_profile *pr, const char *path)
{
  const char *rule;
  return bg_methods_allow(&pr->methods, path, &rule);
}

size_t bg_policy_lint(const struct bg_policy *p, void (*warn)(void *arg, const char *msg), void *arg)
{
  char m[400];
  size_t n = 0;
#define W(...) do { snprintf(m, sizeof m, __VA_ARGS__); warn(arg, m); n++; } while (0)
  if (p->audit_mode)
    W("mode is \"audit\": decisions are logged, nothing is denied or rewritten");
  if (p->n_tenants == 0)
    W("no tenants: every connection is refused");
  for (size_t i = 0; i < p->n_tenants; i++) {
    const struct bg_tenant *t = &p->tenants[i];
    if (!t->n_uids && !t->n_gids && !t->cert_cn.n && !t->n_tokens && !t->any_local && p->anonymous != (long)i)
      W("tenants[%zu] \"%s\" has no match criteria and is not the anonymous tenant: nobody can reach it", i,
        t->name);
  }
  for (size_t k = 0; k < p->n_profiles; k++) {
    const struct bg_profile *pr = &p->profiles[k];
    int used = 0;
    for (size_t i = 0; i < p->n_tenants; i++)
      used |= p->tenants[i].profile == k;
    if (!used)
      W("profiles.%s is not used by any tenant", pr->name);
    if (pr->methods.n == 0)
      W("profiles.%s allows no methods", pr->name);
    n += bg_fa_lint(pr, warn, arg);
    if (pr->isolate) {
      if (allows(pr, "/moby.buildkit.v1.Control/DiskUsage"))
        W("profiles.%s isolates but allows DiskUsage: its answer lists every tenant's cache records", pr->name);
      if (allows(pr, "/moby.buildkit.v1.Control/Prune"))
        W("profiles.%s isolates but allows Prune: it removes every tenant's cache", pr->name);
      if (allows(pr, "/containerd.services.content.v1.Content/Read"))
        W("profiles.%s isolates but allows content reads: blobs are not namespaced", pr->name);
      if (allows(pr, "/moby.buildkit.v1.Control/FutureMethodNotInCatalogue"))
        W("profiles.%s isolates but allows methods outside the catalogue: their bodies are not namespaced",
          pr->name);
    }
  }
#undef W
  return n;
}

/*
 * lint.c: warnings about a policy that loads but probably does not do what
 * its author meant (`buildgate check` prints them; they never fail a load).
 */
#include <stdio.h>
#include <string.h>

#include "policy/policy_int.h"
#include "policy/session_powers.h"

static int strlist_has_(const struct bg_strlist *l, const char *s)
{
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->v[i], s) == 0)
      return 1;
  return 0;
}

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
    /* session_methods and llb.mounts say the same thing twice; the gateway
     * enforces both (session_powers.c), so a disagreement means one of them
     * does not do what its author meant. */
    static const struct {
      enum bg_session_power w;
      const char *mount;
    } pm[] = {{BG_POWER_SECRETS, "secret"}, {BG_POWER_SSH, "ssh"}};
    for (size_t i = 0; i < sizeof pm / sizeof *pm; i++) {
      int power = bg_session_power(pr, pm[i].w);
      int mount = pr->llb_any || strlist_has_(&pr->llb_mounts, pm[i].mount);
      if (!power && mount && !pr->llb_any)
        W("profiles.%s allows %s mounts in llb.mounts, and its session_methods withhold %s: those mounts are "
          "refused",
          pr->name, pm[i].mount, bg_power_method(pm[i].w));
      if (power && !mount && !pr->session_methods_any)
        W("profiles.%s exposes %s in session_methods, and llb.mounts has no \"%s\": LLB %s mounts are refused",
          pr->name, bg_power_method(pm[i].w), pm[i].mount, pm[i].mount);
    }
    if (!bg_session_power(pr, BG_POWER_AUTH))
      W("profiles.%s withholds %s: the daemon still asks the session for registry credentials on every pull and "
        "push, and the gateway cannot refuse that short of refusing images",
        pr->name, bg_power_method(BG_POWER_AUTH));
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

/*
 * lint.c: warnings about a policy that loads but probably does not do what
 * its author meant (`buildgate check` prints them; they never fail a load).
 */
#include <stdio.h>
#include <string.h>

#include "policy/frontend_attrs.h"
#include "policy/dump.h"
#include "policy/policy_int.h"
#include "proto/sourcepolicy.pb-c.h"
#include "policy/session_powers.h"

static int allows(const struct bg_profile *pr, const char *path)
{
  const char *rule;
  return bg_methods_allow(&pr->methods, path, &rule);
}

/* A source policy "pins" images when it is an allow-list: a DENY rule whose
 * wildcard selector covers every image ("*" or "docker-image://" + star).
 * BuildKit's engine lets the last matching ALLOW/DENY rule win, and the
 * gateway appends the profile's ALLOW/DENY rules after the request's
 * (merge_source_policy), so such a rule plus ALLOW rules for the permitted
 * images decides every frontend image too. */
static int pins_images(const struct bg_profile *pr)
{
  if (!pr->source_policy)
    return 0;
  Moby__Buildkit__V1__Sourcepolicy__Policy *pol =
      moby__buildkit__v1__sourcepolicy__policy__unpack(NULL, pr->source_policy_len, pr->source_policy);
  int pinned = 0;
  for (size_t i = 0; pol && i < pol->n_rules && !pinned; i++) {
    const Moby__Buildkit__V1__Sourcepolicy__Rule *r = pol->rules[i];
    const char *id = r->selector ? r->selector->identifier : "";
    pinned = r->action == MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY_ACTION__DENY && r->selector &&
             r->selector->match_type == MOBY__BUILDKIT__V1__SOURCEPOLICY__MATCH_TYPE__WILDCARD &&
             (strcmp(id, "*") == 0 || strcmp(id, "docker-image://*") == 0);
  }
  if (pol)
    moby__buildkit__v1__sourcepolicy__policy__free_unpacked(pol, NULL);
  return pinned;
}

/* How a profile lets its tenant pick the image that runs as frontend, or
 * NULL.  gateway.v0 takes it in "source"; dockerfile.v0 in
 * build-arg:BUILDKIT_SYNTAX or a "# syntax=" line of the Dockerfile, which
 * the gateway never sees (so only an allow-list source policy closes it). */
static const char *frontend_choice(const struct bg_profile *pr)
{
  if (pr->frontends_any || bg_list_glob(&pr->frontends, "gateway.v0"))
    return "gateway.v0";
  if (bg_list_glob(&pr->frontends, "dockerfile.v0"))
    return bg_list_glob(&pr->frontend_attrs.deny, "build-arg:BUILDKIT_SYNTAX") ? "a \"# syntax=\" line"
                                                                               : "build-arg:BUILDKIT_SYNTAX";
  return NULL;
}

size_t bg_policy_lint(const struct bg_policy *p, void (*warn)(void *arg, const char *msg), void *arg)
{
  char m[700];
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
      int mount = pr->llb_any || bg_list_has(&pr->llb_mounts, pm[i].mount);
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
      /* CVE-2024-23653: before BuildKit v0.12.5 (Docker 20.10 to 25) the
       * daemon never checked the entitlements of a frontend's containers, and
       * a frontend's LLBBridge calls run inside the daemon: the gateway sees
       * none of them, so no isolation or llb rule applies there. */
      const char *how = frontend_choice(pr);
      if (how && !pins_images(pr))
        W("profiles.%s lets a tenant choose the frontend image (%s) and no source_policy pins images (a DENY "
          "of docker-image://* plus ALLOWs, which only backends that keep rule order honour: BuildKit v0.12+): a "
          "frontend runs inside the daemon, its LLBBridge calls never pass the gateway, and backends older than "
          "BuildKit v0.12.5 let it run privileged containers (CVE-2024-23653)",
          pr->name, how);
    }
  }
#undef W
  return n;
}

const struct bg_profile *bg_policy_profiles(const struct bg_policy *p, size_t *n)
{
  *n = p->n_profiles;
  return p->profiles;
}

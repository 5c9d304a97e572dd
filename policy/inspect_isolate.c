/*
 * inspect_isolate.c: tenant namespacing of build refs outside Control.Solve.
 *
 *   Control.Status            StatusRequest.Ref (1) wrapped; empty refused
 *                             (INVALID_ARGUMENT, rule "isolate").  StatusResponse
 *                             carries vertex digests and progress IDs, no
 *                             build refs: nothing to restore there.
 *   Control.ListenBuildHistory BuildHistoryRequest.Ref (2) wrapped when set;
 *                             an empty Ref lists every build, so each
 *                             BuildHistoryEvent answer goes through
 *                             bg_isolate_build_history_event, which restores
 *                             the tenant's ref or drops the event.
 *   Control.UpdateBuildHistory UpdateBuildHistoryRequest.Ref (1) wrapped; empty
 *                             refused like Status.
 *   DiskUsage / Prune          cache records are shared and carry no tenant
 *                             name: they cannot be scoped from the messages,
 *                             so isolated profiles should not be granted them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/inspect_int.h"
#include "proto/pbcheck.h"
#include "proto/worker.pb-c.h"

char *bg_isolate_wrap(const struct bg_profile *prof, const char *tenant, const char *name)
{
  if (!prof || !prof->isolate || !name[0])
    return strdup(name);
  return bg_ns_wrap(tenant, name);
}

char *bg_isolate_unwrap(const struct bg_profile *prof, const char *tenant, const char *name)
{
  if (!prof || !prof->isolate)
    return strdup(name);
  return bg_ns_unwrap_dup(tenant, name);
}

/* empty_ok: an empty ref means something scoped by the responses (history
 * listing).  Otherwise an empty ref names the build whose ref is "", which
 * no isolated Solve can have (the gateway gives every ref-less Solve a
 * wrapped ref) but a non-isolated tenant's can: it is refused, as no client
 * sends it (buildctl and buildx watch and update the refs they solved). */
static void wrap_ref(struct bg_ictx *c, char **slot, const char *field, int empty_ok)
{
  if (!c->p->isolate)
    return;
  if (!(*slot)[0]) {
    if (!empty_ok)
      bg_ictx_deny(c, BG_GRPC_INVALID_ARGUMENT, "isolate",
                   "%s: an empty build ref names no build of %s (isolate: refs are per tenant)", field, bg_ictx_who(c));
    return;
  }
  char *w = bg_ns_wrap(c->r->tenant, *slot);
  if (!w)
    return;
  free(c->r->ref);
  c->r->ref = strdup(*slot);
  bg_ictx_rewrite(c, field, *slot, w);
  *slot = bg_arena_strdup(&c->arena, w);
  free(w);
}

/* The dockerfile frontend names its RUN --mount=type=cache mounts
 * BUILDKIT_CACHE_MOUNT_NS + "/" + id (dockerfile2llb convert_runmount.go,
 * v0.8 to now), inside the daemon where the gateway never sees the LLB.  So
 * under isolate the namespace is forced to the tenant's: the tenant's own
 * value, wrapped like a session ID.  Only for a request that names a frontend
 * (an LLBBridge.Solve without one ignores its FrontendOpt). */
void bg_isolate_cache_ns(struct bg_ictx *c, const char *frontend, struct bg_smap m, const char *field)
{
  static const char key[] = "build-arg:BUILDKIT_CACHE_MOUNT_NS";
  if (!c->p->isolate || !frontend[0] || c->stop)
    return;
  const char *cur = bg_smap_get(m, key);
  char *w = bg_ns_wrap(c->r->tenant, cur ? cur : "");
  if (!w || !w[0]) {
    free(w);
    return;
  }
  size_t count = 0;
  for (size_t i = 0; i < *m.n; i++)
    count += strcmp((*m.v)[i]->key, key) == 0;
  if (!(count == 1 && strcmp(cur, w) == 0)) {
    char f[300];
    snprintf(f, sizeof f, "%s[%s]", field, key);
    bg_ictx_rewrite(c, f, cur, w);
    bg_smap_set(c, m, key, w);
  }
  free(w);
}

int bg_isolate_status_request(struct bg_inspect *r, const uint8_t *msg, size_t len)
{
  struct bg_ictx c;
  bg_ictx_init(&c, r);
  Moby__Buildkit__V1__StatusRequest *q = bg_ictx_unpack(&c, &moby__buildkit__v1__status_request__descriptor, msg, len, NULL);
  if (!q)
    bg_ictx_bad(&c, "moby.buildkit.v1.StatusRequest");
  else {
    wrap_ref(&c, &q->ref, "StatusRequest.Ref", 0);
    bg_ictx_finish(&c, &q->base);
  }
  bg_ictx_done(&c);
  return r->grpc_status;
}

int bg_isolate_build_history_request(struct bg_inspect *r, const uint8_t *msg, size_t len)
{
  struct bg_ictx c;
  bg_ictx_init(&c, r);
  Moby__Buildkit__V1__BuildHistoryRequest *q = bg_ictx_unpack(&c, &moby__buildkit__v1__build_history_request__descriptor, msg, len, NULL);
  if (!q)
    bg_ictx_bad(&c, "moby.buildkit.v1.BuildHistoryRequest");
  else {
    wrap_ref(&c, &q->ref, "Ref", 1);
    bg_ictx_finish(&c, &q->base);
  }
  bg_ictx_done(&c);
  return r->grpc_status;
}

int bg_isolate_update_build_history(struct bg_inspect *r, const uint8_t *msg, size_t len)
{
  struct bg_ictx c;
  bg_ictx_init(&c, r);
  Moby__Buildkit__V1__UpdateBuildHistoryRequest *q =
      bg_ictx_unpack(&c, &moby__buildkit__v1__update_build_history_request__descriptor, msg, len, NULL);
  if (!q)
    bg_ictx_bad(&c, "moby.buildkit.v1.UpdateBuildHistoryRequest");
  else {
    wrap_ref(&c, &q->ref, "UpdateBuildHistoryRequest.Ref", 0);
    bg_ictx_finish(&c, &q->base);
  }
  bg_ictx_done(&c);
  return r->grpc_status;
}

/* A response: never "denied".  Sets r->drop for another tenant's record. */
int bg_isolate_build_history_event(struct bg_inspect *r, const uint8_t *msg, size_t len)
{
  struct bg_ictx c;
  bg_ictx_init(&c, r);
  Moby__Buildkit__V1__BuildHistoryEvent *q = bg_ictx_unpack(&c, &moby__buildkit__v1__build_history_event__descriptor, msg, len, NULL);
  if (!q) {
    bg_ictx_bad(&c, "moby.buildkit.v1.BuildHistoryEvent");
    goto out;
  }
  if (!c.p->isolate || !q->record)
    goto out;
  char *own = bg_ns_unwrap_dup(r->tenant, q->record->ref);
  if (!own) {
    r->drop = 1;
    goto out;
  }
  free(r->ref);
  r->ref = own;
  /* audit_only still drops nothing and changes nothing */
  if (r->audit_only)
    goto out;
  q->record->ref = bg_arena_strdup(&c.arena, own);
  c.changed = 1;
  bg_ictx_finish(&c, &q->base);
out:
  if (r->audit_only)
    r->drop = 0;
  bg_ictx_done(&c);
  return r->grpc_status;
}

int bg_inspect_info_version(const uint8_t *msg, size_t len, char *version, size_t versionlen)
{
  struct bg_pbcheck_result res;
  if (bg_pbcheck(&moby__buildkit__v1__info_response__descriptor, msg, len, NULL, &res) != BG_PBCHECK_OK)
    return -1;
  Moby__Buildkit__V1__InfoResponse *q = moby__buildkit__v1__info_response__unpack(NULL, len, msg);
  if (!q)
    return -1;
  snprintf(version, versionlen, "%s", q->buildkitversion ? q->buildkitversion->version : "");
  moby__buildkit__v1__info_response__free_unpacked(q, NULL);
  return 0;
}

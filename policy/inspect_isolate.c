/*
 * inspect_isolate.c: tenant namespacing of build refs outside Control.Solve.
 *
 *   Control.Status            StatusRequest.Ref (1) wrapped.  StatusResponse
 *                             carries vertex digests and progress IDs, no
 *                             build refs: nothing to restore there.
 *   Control.ListenBuildHistory BuildHistoryRequest.Ref (2) wrapped when set;
 *                             an empty Ref lists every build, so each
 *                             BuildHistoryEvent answer goes through
 *                             bg_isolate_build_history_event, which restores
 *                             the tenant's ref or drops the event.
 *   Control.UpdateBuildHistory UpdateBuildHistoryRequest.Ref (1) wrapped.
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
  const char *u = bg_ns_unwrap(tenant, name);
  return u ? strdup(u) : NULL;
}

static void wrap_ref(struct ictx *c, char **slot, const char *field)
{
  if (!c->p->isolate || !(*slot)[0])
    return;
  char *w = bg_ns_wrap(c->r->tenant, *slot);
  if (!w)
    return;
  free(c->r->ref);
  c->r->ref = strdup(*slot);
  ictx_rewrite(c, field, *slot, w);
  *slot = bg_arena_strdup(&c->arena, w);
  free(w);
}

int bg_isolate_status_request(struct bg_inspect *r, const uint8_t *msg, size_t len)
{
  struct ictx c;
  ictx_init(&c, r);
  Moby__Buildkit__V1__StatusRequest *q = ictx_unpack(&c, &moby__buildkit__v1__status_request__descriptor, msg, len, NULL);
  if (!q)
    ictx_bad(&c, "moby.buildkit.v1.StatusRequest");
  else {
    wrap_ref(&c, &q->ref, "Ref");
    ictx_finish(&c, &q->base);
  }
  ictx_done(&c);
  return r->grpc_status;
}

int bg_isolate_build_history_request(struct bg_inspect *r, const uint8_t *msg, size_t len)
{
  struct ictx c;
  ictx_init(&c, r);
  Moby__Buildkit__V1__BuildHistoryRequest *q = ictx_unpack(&c, &moby__buildkit__v1__build_history_request__descriptor, msg, len, NULL);
  if (!q)
    ictx_bad(&c, "moby.buildkit.v1.BuildHistoryRequest");
  else {
    wrap_ref(&c, &q->ref, "Ref");
    ictx_finish(&c, &q->base);
  }
  ictx_done(&c);
  return r->grpc_status;
}

int bg_isolate_update_build_history(struct bg_inspect *r, const uint8_t *msg, size_t len)
{
  struct ictx c;
  ictx_init(&c, r);
  Moby__Buildkit__V1__UpdateBuildHistoryRequest *q =
      ictx_unpack(&c, &moby__buildkit__v1__update_build_history_request__descriptor, msg, len, NULL);
  if (!q)
    ictx_bad(&c, "moby.buildkit.v1.UpdateBuildHistoryRequest");
  else {
    wrap_ref(&c, &q->ref, "Ref");
    ictx_finish(&c, &q->base);
  }
  ictx_done(&c);
  return r->grpc_status;
}

/* A response: never "denied".  Sets r->drop for another tenant's record. */
int bg_isolate_build_history_event(struct bg_inspect *r, const uint8_t *msg, size_t len)
{
  struct ictx c;
  ictx_init(&c, r);
  Moby__Buildkit__V1__BuildHistoryEvent *q = ictx_unpack(&c, &moby__buildkit__v1__build_history_event__descriptor, msg, len, NULL);
  if (!q) {
    ictx_bad(&c, "moby.buildkit.v1.BuildHistoryEvent");
    goto out;
  }
  if (!c.p->isolate || !q->record)
    goto out;
  const char *own = bg_ns_unwrap(r->tenant, q->record->ref);
  if (!own) {
    r->drop = 1;
    goto out;
  }
  free(r->ref);
  r->ref = strdup(own);
  /* audit_only still drops nothing and changes nothing */
  if (r->audit_only)
    goto out;
  q->record->ref = bg_arena_strdup(&c.arena, own);
  c.changed = 1;
  ictx_finish(&c, &q->base);
out:
  if (r->audit_only)
    r->drop = 0;
  ictx_done(&c);
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

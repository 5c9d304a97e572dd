/*
 * inspect_llb.c: LLB checks.  Every Op of a Definition is decoded (arena
 * allocator, reset after each op, so a 10,000-op graph costs no mallocs
 * beyond a few arena chunks) and checked against the profile:
 *
 *   exec   network UNSET/HOST/NONE = sandbox/host/none vs llb.network;
 *          security SANDBOX/INSECURE = sandbox/insecure vs llb.security;
 *          mounts: bind/cache/tmpfs always, secret/ssh only if in llb.mounts
 *          (secretenv, secrets as environment variables, counts as secret);
 *          unknown enum values are refused.  Entitlement consistency, even
 *          with llb_any: host needs network.host, insecure needs
 *          security.insecure, every CDI device needs a device grant.
 *          Meta powers: extraHosts, hostname, ulimit, cgroupParent need
 *          llb.extra_hosts/hostname/ulimit/cgroup_parent (bg_inspect_power).
 *          Under isolate every cache mount's ID is namespaced (see
 *          bg_wrap_cache_mounts), which re-keys the graph like a session.
 *   source identifier vs llb.sources (globs over the whole identifier, e.g.
 *          "docker-image://docker.io/library/" + star); attrs: see
 *          bg_inspect_source_attrs.
 *   build  BuildOp loads an LLB file out of a snapshot at run time, which the
 *          gateway cannot see: refused unless llb_any.
 *   file, merge, diff: no powers of their own.
 *   passthrough (v0.31) is an op kind the gateway cannot judge: refused
 *   unless llb.unknown "allow".  Fields and enum values the schema does not
 *   know are refused before decoding, by the validator's unknown-field hook
 *   (bg_ictx_check, bg_llb_unknown_allowed), in every op and in OpMetadata.
 *
 * Isolation: local.session / oci.session source attrs are namespaced.  That
 * changes the op's bytes and so its digest, which other ops name in their
 * inputs and Definition.metadata names as keys: the graph is re-keyed
 * (sha256 of the new bytes, inputs and metadata keys updated, repeated until
 * stable so any op order works).  Definition.Source.locations (debug source
 * mapping, undeclared) keeps old digests: only error source-mapping suffers.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init & co., see digest_of() */
#include <openssl/sha.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "policy/inspect_int.h"
#include "policy/session_powers.h"
#include "proto/pbtok.h"

/* "<fld>.def[<idx>]" (idx >= 0) or fld.  Every op's unpack and most of its
 * checks name it, so it is built by hand: snprintf here was a sixth of a
 * 10,000-op evaluation (bench_inspect under callgrind).  |fld| is cut, not
 * the index, if |buf| is short (field names are far shorter than |n|). */
const char *bg_op_field(char *buf, size_t n, const char *fld, long idx)
{
  if (idx < 0)
    return fld;
  char num[24];
  size_t k = sizeof num;
  unsigned long v = (unsigned long)idx;
  do
    num[--k] = (char)('0' + v % 10);
  while (v /= 10);
  size_t nl = sizeof num - k, fl = strlen(fld), tail = 5 + nl + 1; /* ".def[" digits "]" */
  if (n < tail + 1)
    return fld;
  if (fl > n - 1 - tail)
    fl = n - 1 - tail;
  memcpy(buf, fld, fl);
  memcpy(buf + fl, ".def[", 5);
  memcpy(buf + fl + 5, num + k, nl);
  buf[fl + 5 + nl] = ']';
  buf[fl + tail] = '\0';
  return buf;
}
#define FIELD bg_op_field(fb_, sizeof fb_, fld, idx)

/* Every Op is validated (proto/pbcheck.h) before protobuf-c decodes it; a
 * refusal names "<fld>.def[<idx>]: Op.<path>". */
static Pb__Op *op_view(struct bg_ictx *c, const ProtobufCBinaryData *b, const char *fld, long idx)
{
  char fb_[340];
  return bg_ictx_unpack(c, &pb__op__descriptor, b->data, b->len, FIELD);
}

static const char *netname(int m)
{
  switch (m) {
  case PB__NET_MODE__UNSET: return "sandbox";
  case PB__NET_MODE__HOST: return "host";
  case PB__NET_MODE__NONE: return "none";
  default: return NULL;
  }
}

void bg_inspect_network(struct bg_ictx *c, int mode, const char *fld, long idx)
{
  char fb_[340];
  const struct bg_profile *p = c->p;
  const char *n = netname(mode);
  if (!n) {
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_network", "%s: unknown network mode %d for %s", FIELD, mode,
              bg_ictx_who(c));
    return;
  }
  if (!p->llb_any && !bg_list_has(&p->llb_network, n)) {
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_network", "%s: network mode %s is not allowed for %s", FIELD, n,
              bg_ictx_who(c));
    return;
  }
  if (mode == PB__NET_MODE__HOST && !bg_entitlement_granted(p, "network.host")) {
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "entitlements",
                 "%s: network mode host needs entitlement network.host, which is not granted to %s", FIELD,
              bg_ictx_who(c));
    return;
  }
  /* the frontend attr that restates this power: denying one denies both */
  if (mode == PB__NET_MODE__HOST && bg_list_glob(&p->frontend_attrs.deny, "force-network-mode"))
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_network",
                 "%s: network mode host is not allowed for %s (frontend attr force-network-mode is denied)", FIELD,
              bg_ictx_who(c));
}

void bg_inspect_security(struct bg_ictx *c, int mode, const char *fld, long idx)
{
  char fb_[340];
  const struct bg_profile *p = c->p;
  const char *n = mode == PB__SECURITY_MODE__SANDBOX ? "sandbox" : mode == PB__SECURITY_MODE__INSECURE ? "insecure" : NULL;
  if (!n) {
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_security", "%s: unknown security mode %d for %s", FIELD, mode,
              bg_ictx_who(c));
    return;
  }
  if (!p->llb_any && !bg_list_has(&p->llb_security, n)) {
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_security", "%s: security mode %s is not allowed for %s", FIELD,
                 n, bg_ictx_who(c));
    return;
  }
  if (mode == PB__SECURITY_MODE__INSECURE && !bg_entitlement_granted(p, "security.insecure"))
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "entitlements",
                 "%s: security mode insecure needs entitlement security.insecure, which is not granted to %s", FIELD,
              bg_ictx_who(c));
}

void bg_inspect_mount_type(struct bg_ictx *c, int type, const char *fld, long idx)
{
  char fb_[340];
  const char *n;
  switch (type) {
  case PB__MOUNT_TYPE__BIND:
  case PB__MOUNT_TYPE__CACHE:
  case PB__MOUNT_TYPE__TMPFS:
    return;
  case PB__MOUNT_TYPE__SECRET: n = "secret"; break;
  case PB__MOUNT_TYPE__SSH: n = "ssh"; break;
  default:
    if (!c->p->llb_any)
      bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_mounts", "%s: unknown mount type %d for %s", FIELD, type,
                   bg_ictx_who(c));
    return;
  }
  if (!c->p->llb_any && !bg_list_has(&c->p->llb_mounts, n))
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_mounts", "%s: %s mounts are not allowed for %s", FIELD, n,
              bg_ictx_who(c));
  if (!c->stop)
    bg_powers_mount(c, type, FIELD);
}

/* ---- ExecOp.Meta powers -------------------------------------------------------- */

/* Each power of Meta, with the frontend attr that restates it (the dockerfile
 * frontend turns the attr into exactly this Meta field).  A power is granted
 * when the llb section allows it (or is absent) and the profile does not deny
 * the frontend attr: denying one denies both, whichever way the tenant asks. */
static const struct llb_power {
  const char *rule, *key, *attr, *what;
  size_t off;
} powers[] = {
    [BG_POWER_EXTRA_HOSTS] = {"llb_extra_hosts", "extra_hosts", "add-hosts", "extra hosts (Meta.extraHosts)",
                              offsetof(struct bg_profile, llb_extra_hosts)},
    [BG_POWER_HOSTNAME] = {"llb_hostname", "hostname", "hostname", "a hostname (Meta.hostname)", offsetof(struct bg_profile, llb_hostname)},
    [BG_POWER_ULIMIT] = {"llb_ulimit", "ulimit", "ulimit", "ulimits (Meta.ulimit)", offsetof(struct bg_profile, llb_ulimit)},
    [BG_POWER_CGROUP_PARENT] = {"llb_cgroup_parent", "cgroup_parent", "cgroup-parent", "a cgroup parent (Meta.cgroupParent)",
                                offsetof(struct bg_profile, llb_cgroup_parent)},
};

void bg_inspect_power(struct bg_ictx *c, enum bg_llb_power pw, const char *fld, long idx)
{
  char fb_[340];
  const struct bg_profile *p = c->p;
  const struct llb_power *w = &powers[pw];
  if (bg_list_glob(&p->frontend_attrs.deny, w->attr)) {
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, w->rule, "%s: setting %s is not allowed for %s (frontend attr %s is denied)",
                 FIELD, w->what, bg_ictx_who(c), w->attr);
    return;
  }
  if (!p->llb_any && !*(const int *)((const char *)p + w->off))
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, w->rule, "%s: setting %s is not allowed for %s (llb.%s is false)",
                 FIELD, w->what, bg_ictx_who(c), w->key);
}

void bg_inspect_meta(struct bg_ictx *c, const Pb__Meta *m, const char *fld, long idx)
{
  if (!m)
    return;
  if (m->n_extrahosts && !c->stop)
    bg_inspect_power(c, BG_POWER_EXTRA_HOSTS, fld, idx);
  if (m->hostname[0] && !c->stop)
    bg_inspect_power(c, BG_POWER_HOSTNAME, fld, idx);
  if (m->n_ulimit && !c->stop)
    bg_inspect_power(c, BG_POWER_ULIMIT, fld, idx);
  if (m->cgroupparent[0] && !c->stop)
    bg_inspect_power(c, BG_POWER_CGROUP_PARENT, fld, idx);
}

int bg_inspect_power_attr_key(const char *key)
{
  for (size_t k = 0; k < sizeof powers / sizeof *powers; k++)
    if (strcmp(key, powers[k].attr) == 0)
      return 1;
  return strcmp(key, "force-network-mode") == 0 || strcmp(key, "build-arg:BUILDKIT_SANDBOX_HOSTNAME") == 0;
}

/* Frontend attrs that only restate an LLB power follow the LLB rule (the
 * dockerfile frontend reads each value as is, so any non-empty value asks for
 * the power; force-network-mode is matched exactly, as parseNetMode does). */
void bg_inspect_power_attrs(struct bg_ictx *c, struct bg_smap m, const char *field)
{
  char f[340];
  for (size_t i = 0; i < *m.n && !c->stop; i++) {
    const struct bg_kv_entry *e = (*m.v)[i];
    if (!e->value[0])
      continue;
    snprintf(f, sizeof f, "%s[%s]", field, e->key);
    if (strcmp(e->key, "force-network-mode") == 0) {
      int mode = strcmp(e->value, "sandbox") == 0 ? PB__NET_MODE__UNSET
                 : strcmp(e->value, "host") == 0  ? PB__NET_MODE__HOST
                 : strcmp(e->value, "none") == 0  ? PB__NET_MODE__NONE
                                                  : -1;
      bg_inspect_network(c, mode, f, -1);
      continue;
    }
    for (size_t k = 0; k < sizeof powers / sizeof *powers; k++)
      if (strcmp(e->key, powers[k].attr) == 0)
        bg_inspect_power(c, (enum bg_llb_power)k, f, -1);
    /* the dockerfile frontend copies a non-empty BUILDKIT_SANDBOX_HOSTNAME
     * build arg over "hostname" (builder/build.go, v0.11) */
    if (strcmp(e->key, "build-arg:BUILDKIT_SANDBOX_HOSTNAME") == 0)
      bg_inspect_power(c, BG_POWER_HOSTNAME, f, -1);
  }
}

/* ---- cache mounts -------------------------------------------------------------------------- */

/* BuildKit keys a cache mount by CacheOpt.ID alone, across every build of the
 * daemon (solver/llbsolver/mounts/mount.go getRefCacheDir), so under isolate
 * each ID becomes the tenant's (bg_ns_wrap, as session IDs).  An empty ID is
 * the key "" in the mount manager and the mount's dest when an ignore-cache
 * op prunes cache mounts (solver/llbsolver/vertex.go detectPrunedCacheID):
 * it becomes wrap(dest), which both readers then share.  sharing is kept.
 * Returns 1 when something was (or, apply = 0, would be) rewritten. */
int bg_wrap_cache_mounts(struct bg_ictx *c, Pb__Mount **mounts, size_t n, const char *field, int apply)
{
  int ch = 0;
  char f[400];
  if (!c->p->isolate)
    return 0;
  for (size_t j = 0; j < n; j++) {
    Pb__Mount *mt = mounts[j];
    if (mt->mounttype != PB__MOUNT_TYPE__CACHE || !mt->cacheopt)
      continue; /* CACHE without CacheOpt: the daemon refuses it ("missing cache mount options") */
    ch = 1;
    if (!apply)
      continue;
    const char *id = mt->cacheopt->id[0] ? mt->cacheopt->id : mt->dest;
    char *w = bg_ns_wrap(c->r->tenant, id);
    if (!w)
      continue;
    snprintf(f, sizeof f, "%s.mounts[%zu].cacheOpt.ID", field, j);
    bg_ictx_rewrite(c, f, mt->cacheopt->id[0] ? mt->cacheopt->id : NULL, w);
    mt->cacheopt->id = bg_arena_strdup(&c->arena, w);
    free(w);
  }
  return ch;
}

/* ---- images of other tenants ------------------------------------------------------------ */

/* On a Docker engine every tenant's images live in one store, and a
 * docker-image source may resolve from it.  Under isolate, an image source
 * whose normalised name lies under another tenant's image/moby name_prefix
 * is refused, unless a longer prefix of the tenant's own covers it too. */
static void foreign_image(struct bg_ictx *c, const char *ident, const char *field)
{
  const struct bg_profile *p = c->p;
  const struct bg_backend_facts *fx = c->r->facts;
  const struct bg_kvlist *l = p->tenant_image_prefixes;
  if (!p->isolate || !fx || !fx->docker_engine || !l || strncmp(ident, "docker-image://", 15) != 0)
    return;
  char norm[600];
  if (bg_docker_normalize(ident + 15, strlen(ident + 15), 1, norm, sizeof norm) < 0)
    return;
  size_t own = 0;
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->v[i].key, c->r->tenant) == 0 && strncmp(norm, l->v[i].value, strlen(l->v[i].value)) == 0 &&
        strlen(l->v[i].value) > own)
      own = strlen(l->v[i].value);
  for (size_t i = 0; i < l->n; i++) {
    size_t pl = strlen(l->v[i].value);
    if (strcmp(l->v[i].key, c->r->tenant) != 0 && pl > own && strncmp(norm, l->v[i].value, pl) == 0) {
      bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_sources",
                   "%s: image \"%s\" is under another tenant's name prefix \"%s\"; not allowed for %s", field, norm,
                   l->v[i].value, bg_ictx_who(c));
      return;
    }
  }
}

void bg_inspect_source_ident(struct bg_ictx *c, const char *ident, const char *fld, long idx)
{
  char fb_[340];
  bg_strlist_add(&c->r->sources, ident, 64);
  foreign_image(c, ident, FIELD);
  if (c->p->llb_any || c->stop)
    return;
  if (!strstr(ident, "://")) {
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_sources", "%s: source \"%s\" has no scheme (%s)", FIELD, ident,
              bg_ictx_who(c));
    return;
  }
  if (!bg_list_glob(&c->p->llb_sources, ident))
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_sources", "%s: source \"%s\" is not allowed for %s", FIELD, ident,
              bg_ictx_who(c));
}

/* Source attrs that carry power (solver/pb/attr.go):
 *   local.session, oci.session   a session ID: namespaced when isolate (so a
 *                                tenant can only name its own sessions);
 *   git.mountsshsock             forwards the client's SSH agent: needs "ssh"
 *                                in llb.mounts;
 *   git.authtokensecret,
 *   git.authheadersecret         read a secret from the session: need "secret";
 *   local.unique                 under isolate, a local:// source's
 *                                local.unique is namespaced, and one is added
 *                                when absent (below);
 *   http.header.*, oci.store, local.sharedkeyhint, image.resolvemode: allowed —
 *   they only act on the caller's own session/store or its own request.
 * With llb_any only the session namespacing applies.
 *
 * Why local.unique: the solver merges vertices with the same digest across
 * the jobs running at once, and a shared vertex syncs a local source
 * without local.session from any session of any job sharing it (v0.8+:
 * the job's session group).  Two tenants sending the same session-less
 * local source at the same time would otherwise share one vertex, and one
 * tenant's build could read the other tenant's files.  A tenant-specific
 * local.unique makes the digests differ between tenants, and only between
 * tenants: one tenant's builds still share their cache. */
static int local_unique(struct bg_ictx *c, struct bg_smap m, const char *ident, const char *field, int apply)
{
  if (!c->p->isolate || !ident || strncmp(ident, "local://", 8) != 0)
    return 0;
  if (!apply)
    return 1;
  char f[600];
  snprintf(f, sizeof f, "%s[local.unique]", field);
  for (size_t i = *m.n; i-- > 0;) {
    struct bg_kv_entry *e = (*m.v)[i];
    if (strcmp(e->key, "local.unique") == 0) { /* the validator refused duplicate keys */
      char *w = bg_ns_wrap(c->r->tenant, e->value);
      if (!w) {
        bg_ictx_bad(c, "local.unique (out of memory)");
        return 0;
      }
      bg_ictx_rewrite(c, f, e->value, w);
      e->value = bg_arena_strdup(&c->arena, w);
      free(w);
      return 1;
    }
  }
  char *w = bg_ns_wrap(c->r->tenant, "");
  if (!w) {
    bg_ictx_bad(c, "local.unique (out of memory)");
    return 0;
  }
  bg_ictx_rewrite(c, f, NULL, w);
  bg_smap_append(c, m, "local.unique", w);
  free(w);
  return 1;
}

int bg_inspect_source_attrs(struct bg_ictx *c, struct bg_smap m, const char *ident, const char *field, int apply)
{
  int ch = local_unique(c, m, ident, field, apply);
  char f[600];
  for (size_t i = 0; i < *m.n && !c->stop; i++) {
    struct bg_kv_entry *e = (*m.v)[i];
    const char *k = e->key;
    if (strcmp(k, "local.session") == 0 || strcmp(k, "oci.session") == 0) {
      if (!c->p->isolate || !e->value[0])
        continue;
      ch = 1;
      if (!apply)
        continue;
      char *w = bg_ns_wrap(c->r->tenant, e->value);
      if (!w)
        continue;
      snprintf(f, sizeof f, "%s[%s]", field, k);
      bg_ictx_rewrite(c, f, e->value, w);
      e->value = bg_arena_strdup(&c->arena, w);
      free(w);
    } else if (!c->p->llb_any && strcmp(k, "image.resolvemode") == 0) {
      /* ParseImageResolveMode: "" is "default"; exact spelling, no trimming */
      const char *mode = e->value[0] ? e->value : "default";
      if (!bg_list_has(&c->p->llb_resolve_modes, mode))
        bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_image_resolve_mode",
                     "%s: image resolve mode \"%s\" is not allowed for %s (llb.image_resolve_mode)", field, e->value,
                  bg_ictx_who(c));
    } else if (!c->p->llb_any && strcmp(k, "git.mountsshsock") == 0) {
      if (!bg_list_has(&c->p->llb_mounts, "ssh"))
        bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_source_attrs",
                     "%s: source attr %s forwards the SSH agent, and ssh is not allowed for %s", field, k, bg_ictx_who(c));
    } else if (!c->p->llb_any && (strcmp(k, "git.authtokensecret") == 0 || strcmp(k, "git.authheadersecret") == 0)) {
      if (!bg_list_has(&c->p->llb_mounts, "secret"))
        bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_source_attrs",
                     "%s: source attr %s reads a secret, and secrets are not allowed for %s", field, k, bg_ictx_who(c));
    }
    if (!c->stop) /* also with llb_any: session_methods withholds the power */
      bg_powers_source_attr(c, k, field);
  }
  return ch;
}

#define SRC_ATTRS(s) BG_SMAP(&(s)->n_attrs, &(s)->attrs, &pb__source_op__attrs_entry__descriptor)

/* Returns 1 when the op needs a rewrite (session or cache namespacing). */
static int check_op_kind(struct bg_ictx *c, Pb__Op *op, const char *fld, long idx);
static int check_op(struct bg_ictx *c, Pb__Op *op, const char *fld, long idx)
{
  int rw = check_op_kind(c, op, fld, idx);
  return c->stop ? 0 : rw;
}

static int check_op_kind(struct bg_ictx *c, Pb__Op *op, const char *fld, long idx)
{
  const struct bg_profile *p = c->p;
  char fb_[340];
  switch (op->op_case) {
  case PB__OP__OP_EXEC: {
    Pb__ExecOp *e = op->exec;
    bg_inspect_network(c, e->network, fld, idx);
    bg_inspect_security(c, e->security, fld, idx);
    for (size_t i = 0; i < e->n_mounts && !c->stop; i++)
      bg_inspect_mount_type(c, e->mounts[i]->mounttype, fld, idx);
    if (e->n_secretenv && !c->stop) /* secrets as env vars: same power as a secret mount */
      bg_inspect_mount_type(c, PB__MOUNT_TYPE__SECRET, fld, idx);
    for (size_t i = 0; i < e->n_cdidevices && !c->stop; i++) {
      char ent[300];
      snprintf(ent, sizeof ent, "device=%s", e->cdidevices[i]->name);
      if (!bg_entitlement_granted(p, ent))
        bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_devices",
                     "%s: device %s needs entitlement %s, which is not granted to %s", FIELD, e->cdidevices[i]->name, ent,
                  bg_ictx_who(c));
    }
    if (!c->stop)
      bg_inspect_meta(c, e->meta, fld, idx);
    return bg_wrap_cache_mounts(c, e->mounts, e->n_mounts, FIELD, 0);
  }
  case PB__OP__OP_SOURCE: {
    bg_inspect_source_ident(c, op->source->identifier, fld, idx);
    if (c->stop)
      return 0;
    char af[360];
    snprintf(af, sizeof af, "%s.source.attrs", FIELD);
    return bg_inspect_source_attrs(c, SRC_ATTRS(op->source), op->source->identifier, af, 0);
  }
  case PB__OP__OP_BUILD:
    if (!p->llb_any) {
      bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_build",
                   "%s: BuildOp loads LLB the gateway cannot inspect; not allowed for %s", FIELD, bg_ictx_who(c));
      return 0;
    }
    if (op->build->def) {
      char nf[340];
      snprintf(nf, sizeof nf, "%.280s.build.def", FIELD);
      int saved = c->nested;
      c->nested = 1;
      c->depth++;
      bg_inspect_definition(c, op->build->def, nf);
      c->depth--;
      c->nested = saved;
    }
    return 0;
  case PB__OP__OP_PASSTHROUGH:
    if (!bg_llb_unknown_allowed(p))
      bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_unknown",
                   "%s: op kind passthrough is unknown to the gateway; not allowed for %s (llb.unknown is \"deny\")",
                   FIELD, bg_ictx_who(c));
    return 0;
  case PB__OP__OP__NOT_SET: /* no op kind: BuildKit refuses such an op itself */
  default:
    return 0;
  }
}

/* ---- re-keying after a rewrite ------------------------------------------------ */

/* Digest table: every digest the re-keying meets (old and new op digests,
 * canonical input names) is interned once as a 32-byte binary digest in a
 * dense array; an open-addressing table over 64-bit slots (entry index + 1 in
 * the low half, 32 hash bits in the high half) finds it.  An entry carries
 * the old -> new mapping as the index of the new digest (so following a chain
 * of remappings costs no lookups) and the pass in which an op last named it
 * as an input.  Only "sha256:" + 64 lowercase hex digits is ever a key:
 * re-keyed digests are always written that way, so any other spelling of an
 * input can never match one and is left alone.  The slot hash is seeded per
 * call: input names are chosen by the client and must not pile up in one
 * probe sequence. */
struct dent {
  unsigned char d[32];
  uint32_t to;   /* entry index + 1 of the new digest; 0: not remapped */
  uint32_t seen; /* pass + 1 in which an op named this digest as an input */
};

struct dtab {
  struct dent *e;
  size_t n, ecap;
  uint64_t *slot;
  size_t cap; /* power of two, at most half full */
  uint64_t seed;
};

static uint64_t dhash(const struct dtab *t, const unsigned char *d)
{
  uint64_t h = t->seed;
  for (int i = 0; i < 32; i += 8) {
    uint64_t w;
    memcpy(&w, d + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    h ^= h >> 31;
  }
  return h * 0xc4ceb9fe1a85ec53ULL;
}

static int dtab_init(struct dtab *t, size_t hint)
{
  t->n = 0;
  t->ecap = hint < 64 ? 64 : hint;
  t->cap = 128;
  while (t->cap < t->ecap * 2)
    t->cap <<= 1;
  t->e = malloc(t->ecap * sizeof *t->e);
  t->slot = calloc(t->cap, sizeof *t->slot);
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  t->seed = ((uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)(uintptr_t)t->slot ^ ((uint64_t)ts.tv_sec << 32);
  return t->e && t->slot ? 0 : -1;
}

static void dtab_free(struct dtab *t)
{
  free(t->e);
  free(t->slot);
}

/* Index of d, or -1 when absent (add = 0) or out of memory (add = 1). */
static long dtab_find(struct dtab *t, const unsigned char *d, int add)
{
  uint64_t h = dhash(t, d), tag = h & 0xffffffff00000000ULL;
  size_t i;
  for (i = (size_t)h & (t->cap - 1); t->slot[i]; i = (i + 1) & (t->cap - 1))
    if ((t->slot[i] & 0xffffffff00000000ULL) == tag) {
      uint32_t x = (uint32_t)t->slot[i] - 1;
      if (memcmp(t->e[x].d, d, 32) == 0)
        return x;
    }
  if (!add)
    return -1;
  if (t->n >= 0xfffffffeU)
    return -1;
  if ((t->n + 1) * 2 > t->cap) { /* grow: rehash from the tags' entries */
    size_t nc = t->cap * 2;
    uint64_t *ns = calloc(nc, sizeof *ns);
    if (!ns)
      return -1;
    for (size_t q = 0; q < t->cap; q++)
      if (t->slot[q]) {
        uint64_t hh = dhash(t, t->e[(uint32_t)t->slot[q] - 1].d);
        size_t j = (size_t)hh & (nc - 1);
        while (ns[j])
          j = (j + 1) & (nc - 1);
        ns[j] = t->slot[q];
      }
    free(t->slot);
    t->slot = ns;
    t->cap = nc;
    for (i = (size_t)h & (t->cap - 1); t->slot[i]; i = (i + 1) & (t->cap - 1))
      ;
  }
  if (t->n == t->ecap) {
    struct dent *ne = realloc(t->e, t->ecap * 2 * sizeof *ne);
    if (!ne)
      return -1;
    t->e = ne;
    t->ecap *= 2;
  }
  memcpy(t->e[t->n].d, d, 32);
  t->e[t->n].to = 0;
  t->e[t->n].seen = 0;
  t->slot[i] = tag | (t->n + 1);
  return (long)t->n++;
}

/* Last digest of the remapping chain from x, or -1 when x is not remapped
 * (bounded like the map it replaces: a cycle of digests cannot loop). */
static long dtab_chain(const struct dtab *t, long x)
{
  long last = -1;
  for (int hops = 0; hops < 128 && t->e[x].to; hops++)
    last = x = t->e[x].to - 1;
  return last;
}

#ifndef __SSE2__
/* Lowercase hex digit value + 1; 0 for anything else (uppercase too: it
 * never names a re-keyed digest). */
static const unsigned char hexv[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};
#endif

#define DIGEST_LEN 71 /* "sha256:" + 64 hex */

#ifdef __SSE2__
/* 16 hex characters at p -> 8 bytes at out; 0 when all are lowercase hex.
 * Per byte: x - '0' in [0, 9] or x - 'a' in [0, 5] (signed compares: bytes
 * >= 0x80 wrap outside both ranges), then pairs of nibbles joined per
 * 16-bit lane.  A third of rekey()'s own time went to the scalar parse. */
static int hex16(const unsigned char *p, __m128i *val)
{
  __m128i x = _mm_loadu_si128((const __m128i *)p);
  __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('0')), l = _mm_sub_epi8(x, _mm_set1_epi8('a'));
  __m128i m1 = _mm_set1_epi8(-1);
  __m128i okd = _mm_and_si128(_mm_cmpgt_epi8(d, m1), _mm_cmplt_epi8(d, _mm_set1_epi8(10)));
  __m128i okl = _mm_and_si128(_mm_cmpgt_epi8(l, m1), _mm_cmplt_epi8(l, _mm_set1_epi8(6)));
  __m128i v = _mm_or_si128(_mm_and_si128(okd, d), _mm_and_si128(okl, _mm_add_epi8(l, _mm_set1_epi8(10))));
  /* lane = first char (low byte) << 4 | second char (high byte) */
  *val = _mm_or_si128(_mm_slli_epi16(_mm_and_si128(v, _mm_set1_epi16(0x00ff)), 4), _mm_srli_epi16(v, 8));
  return _mm_movemask_epi8(_mm_or_si128(okd, okl)) == 0xffff ? 0 : -1;
}
#endif

/* 0 and the binary digest when s[0..n) is "sha256:" + 64 lowercase hex. */
static int parse_digest(const char *s, size_t n, unsigned char *out)
{
  if (n != DIGEST_LEN || memcmp(s, "sha256:", 7) != 0)
    return -1;
  const unsigned char *h = (const unsigned char *)s + 7;
#ifdef __SSE2__
  __m128i v0, v1, v2, v3;
  if (hex16(h, &v0) | hex16(h + 16, &v1) | hex16(h + 32, &v2) | hex16(h + 48, &v3))
    return -1;
  _mm_storeu_si128((__m128i *)out, _mm_packus_epi16(v0, v1));
  _mm_storeu_si128((__m128i *)(out + 16), _mm_packus_epi16(v2, v3));
  return 0;
#else
  int bad = 0;
  for (int i = 0; i < 32; i++) {
    unsigned hi = hexv[h[2 * i]], lo = hexv[h[2 * i + 1]];
    bad |= !hi | !lo;
    out[i] = (unsigned char)((hi - 1) << 4 | ((lo - 1) & 15));
  }
  return bad ? -1 : 0;
#endif
}

static void format_digest(const unsigned char *d, char *s)
{
  static const char hx[] = "0123456789abcdef";
  memcpy(s, "sha256:", 7);
  for (int i = 0; i < 32; i++) {
    s[7 + 2 * i] = hx[d[i] >> 4];
    s[8 + 2 * i] = hx[d[i] & 15];
  }
}

static char *digest_str(struct bg_ictx *c, const struct dtab *t, long x)
{
  char *s = bg_arena_alloc(&c->arena, DIGEST_LEN + 1);
  if (s) {
    format_digest(t->e[x].d, s);
    s[DIGEST_LEN] = 0;
  }
  return s;
}

/* Intern the SHA-256 of d[0..n); -1 on failure.  The low-level SHA256_*
 * calls, deprecated in OpenSSL 3 but still the same assembly: for a ~100-byte
 * op EVP_DigestInit/Update/Final costs ~100 ns against ~80 ns, and re-keying
 * 10,000 ops hashes 20,000 of them. */
static long digest_of(struct dtab *t, const uint8_t *d, size_t n)
{
  unsigned char md[32];
  SHA256_CTX sc;
  if (!SHA256_Init(&sc) || !SHA256_Update(&sc, d, n) || !SHA256_Final(md, &sc))
    return -1;
  return dtab_find(t, md, 1);
}

/* Input digests inside serialized Op bytes without decoding the Op: field 1
 * (inputs, length-delimited) -> field 1 (digest), split by the project's one
 * tokenizer (proto/pbtok.h; the op was validated before).  Records the
 * offset and length of each digest string; returns the count, or -1 when the
 * bytes are not plain enough (then the caller decodes the op). */
#define MAX_FAST_INPUTS 64
static int op_input_digests(const uint8_t *d, size_t n, size_t *off, size_t *len)
{
  struct bg_pbtok t, it;
  struct bg_pbfield f, g;
  int k = 0, rv, irv;
  bg_pbtok_init(&t, d, n);
  while ((rv = bg_pbtok_next(&t, &f)) == 1) {
    if (f.num != 1)
      continue;
    if (f.wt != BG_PB_LEN)
      return -1;
    bg_pbtok_init(&it, f.val, f.vlen);
    while ((irv = bg_pbtok_next(&it, &g)) == 1) {
      if (g.num != 1)
        continue;
      if (g.wt != BG_PB_LEN || g.vlen > 127 || k >= MAX_FAST_INPUTS)
        return -1;
      off[k] = (size_t)(g.val - d);
      len[k++] = g.vlen;
    }
    if (irv < 0)
      return -1;
  }
  return rv < 0 ? -1 : k;
}

static void rekey(struct bg_ictx *c, Pb__Definition *def, Pb__Op *const *need, const char *field)
{
  /* t: every digest met, with the old -> new mapping.  An entry's seen is
   * the pass in which an op named it as an input; a digest remapped after an
   * op already named it in the same pass means the ops are not in dependency
   * order and another pass is needed (BuildKit marshals inputs first, so
   * normally one pass does it).  cur[i]: entry index + 1 of the digest of op
   * i's current bytes once they have been hashed, so bytes are hashed once
   * however many passes touch the op.  Ops that need no rewrite and name no
   * remapped input are neither copied nor hashed.  need[i]: op i as decoded
   * by bg_inspect_definition() when its attrs are to be rewritten (unchanged:
   * those bytes are not touched before the op is rewritten here). */
  struct dtab t;
  size_t nd = def->n_def ? def->n_def : 1;
  uint32_t *cur = calloc(nd, sizeof *cur);
  unsigned char *done = calloc(nd, 1);
  int tok = dtab_init(&t, 2 * def->n_def + 16) == 0;
  if (!tok || !cur || !done) {
    if (tok)
      dtab_free(&t);
    free(cur);
    free(done);
    return;
  }
  size_t n_changed = 0;
  int pass, again = 1;
  for (pass = 0; again && pass < 64 && !c->stop; pass++) {
    again = 0;
    uint32_t mark = (uint32_t)pass + 1;
    for (size_t i = 0; i < def->n_def && !c->stop; i++) {
      if (!(need[i] && !done[i])) {
        /* fast path: only input digests may change; same length, patched in
         * place (the bytes are the arena copy protobuf-c made when it decoded
         * the request, or a buffer packed below: never the caller's) once the
         * old bytes are hashed */
        size_t off[MAX_FAST_INPUTS], len[MAX_FAST_INPUTS];
        long to[MAX_FAST_INPUTS];
        int k = op_input_digests(def->def[i].data, def->def[i].len, off, len);
        if (k >= 0) {
          int ok = 1, remap = 0;
          for (int j = 0; j < k; j++) {
            unsigned char bin[32];
            to[j] = -1;
            if (parse_digest((const char *)def->def[i].data + off[j], len[j], bin))
              continue; /* never a key, never remapped */
            long x = dtab_find(&t, bin, 1);
            if (x < 0) {
              ok = 0;
              break;
            }
            to[j] = dtab_chain(&t, x);
            remap |= to[j] >= 0;
            /* both names: the one read, and the one the op carries from now
             * on (if that is remapped later in this pass, the op is stale
             * and needs another pass, as in the slow path below) */
            t.e[x].seen = mark;
            if (to[j] >= 0)
              t.e[to[j]].seen = mark;
          }
          if (ok) {
            if (remap) {
              long oldd = cur[i] ? (long)cur[i] - 1 : digest_of(&t, def->def[i].data, def->def[i].len);
              if (oldd < 0)
                break;
              for (int j = 0; j < k; j++)
                if (to[j] >= 0)
                  format_digest(t.e[to[j]].d, (char *)def->def[i].data + off[j]);
              long newd = digest_of(&t, def->def[i].data, def->def[i].len);
              if (newd < 0)
                break;
              t.e[oldd].to = (uint32_t)newd + 1;
              if (t.e[oldd].seen == mark)
                again = 1;
              cur[i] = (uint32_t)newd + 1;
              n_changed++;
            }
            continue;
          }
        }
      }
      Pb__Op *op = need[i] && !done[i] ? need[i] : op_view(c, &def->def[i], field, (long)i);
      if (!op) {
        bg_ictx_bad(c, "LLB op");
        break;
      }
      int ch = 0;
      if (need[i] && !done[i] && op->op_case == PB__OP__OP_SOURCE) {
        char af[340];
        snprintf(af, sizeof af, "%s.def[%zu].source.attrs", field, i);
        ch |= bg_inspect_source_attrs(c, SRC_ATTRS(op->source), op->source->identifier, af, 1);
        done[i] = 1;
      } else if (need[i] && !done[i] && op->op_case == PB__OP__OP_EXEC) {
        char af[340];
        snprintf(af, sizeof af, "%s.def[%zu].exec", field, i);
        ch |= bg_wrap_cache_mounts(c, op->exec->mounts, op->exec->n_mounts, af, 1);
        done[i] = 1;
      }
      int oom = 0;
      for (size_t j = 0; j < op->n_inputs && !oom; j++) {
        unsigned char bin[32];
        const char *dg = op->inputs[j]->digest;
        if (parse_digest(dg, strlen(dg), bin))
          continue;
        long x = dtab_find(&t, bin, 1), to = x < 0 ? -1 : dtab_chain(&t, x);
        if (to >= 0) {
          char *s = digest_str(c, &t, to);
          if (!s)
            oom = 1;
          else {
            op->inputs[j]->digest = s;
            ch = 1;
            x = to; /* the name the op carries from now on */
          }
        }
        if (x < 0)
          oom = 1;
        else
          t.e[x].seen = mark;
      }
      if (oom)
        break;
      if (!ch)
        continue;
      if (!bg_msg_valid(&op->base, 0)) {
        bg_ictx_bad(c, "LLB op (field number 0)");
        break;
      }
      size_t n = pb__op__get_packed_size(op);
      uint8_t *buf = bg_arena_alloc(&c->arena, n ? n : 1);
      if (!buf)
        break;
      pb__op__pack(op, buf);
      long oldd = cur[i] ? (long)cur[i] - 1 : digest_of(&t, def->def[i].data, def->def[i].len);
      long newd = oldd < 0 ? -1 : digest_of(&t, buf, n);
      if (newd < 0)
        break;
      if (oldd != newd) {
        t.e[oldd].to = (uint32_t)newd + 1;
        if (t.e[oldd].seen == mark)
          again = 1;
      }
      def->def[i].data = buf;
      def->def[i].len = n;
      cur[i] = (uint32_t)newd + 1;
      n_changed++;
    }
  }
  free(cur);
  free(done);
  if (again && !c->stop) {
    dtab_free(&t);
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_op", "%s: definition could not be re-keyed (cyclic inputs?) for %s",
                 field, bg_ictx_who(c));
    return;
  }
  for (size_t i = 0; i < def->n_metadata; i++) {
    unsigned char bin[32];
    const char *k = def->metadata[i]->key;
    if (!k || parse_digest(k, strlen(k), bin))
      continue;
    long x = dtab_find(&t, bin, 0), to = x < 0 ? -1 : dtab_chain(&t, x);
    char *s = to < 0 ? NULL : digest_str(c, &t, to);
    if (s)
      def->metadata[i]->key = s;
  }
  dtab_free(&t);
  char f[300], o[64], nw[64];
  snprintf(f, sizeof f, "%s.def", field);
  snprintf(o, sizeof o, "%zu ops", def->n_def);
  snprintf(nw, sizeof nw, "%zu ops re-encoded, digests updated", n_changed);
  bg_ictx_rewrite(c, f, o, nw);
}

void bg_inspect_definition(struct bg_ictx *c, Pb__Definition *def, const char *field)
{
  if (!def || c->stop)
    return;
  if (c->depth > 8) {
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_op", "%s: nested definitions too deep for %s", field, bg_ictx_who(c));
    return;
  }
  Pb__Op **need = NULL; /* ops to rewrite, kept decoded from this pass for rekey() */
  size_t n_need = 0;
  char f[300];
  for (size_t i = 0; i < def->n_def && !c->stop; i++) {
    struct bg_arena_mark mk = bg_arena_mark(&c->arena);
    Pb__Op *op = op_view(c, &def->def[i], field, (long)i);
    if (!op) {
      snprintf(f, sizeof f, "LLB op %s.def[%zu]", field, i);
      bg_ictx_bad(c, f);
      break;
    }
    c->r->n_ops++;
    int rw = check_op(c, op, field, (long)i);
    if (!rw)
      bg_arena_reset(&c->arena, mk);
    else {
      if (c->nested) {
        bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_build",
                     "%s.def[%zu]: a session or cache ID named inside BuildOp.def cannot be namespaced for %s", field, i,
                  bg_ictx_who(c));
        break;
      }
      if (!need && !(need = calloc(def->n_def, sizeof *need)))
        break;
      need[i] = op;
      n_need++;
    }
  }
  if (n_need && !c->stop)
    rekey(c, def, need, field);
  free(need);
}

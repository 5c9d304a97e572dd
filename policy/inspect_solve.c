/*
 * inspect_solve.c: Control.Solve, LLBBridge.Solve, LLBBridge.NewContainer and
 * LLBBridge.ExecProcess inspectors.
 *
 * Control.Solve, in order (first violation wins; audit mode goes on):
 *   1 entitlements (9): each must be granted (bg_entitlement_granted)
 *   2 EnableSessionExporter (14): needs prof->session_exporter
 *   3 Frontend (6): "" (client-side Build flow) or frontends_any or a glob
 *   4 FrontendAttrs (7): deny / delete / set, attrs restating LLB powers
 *     (add-hosts, hostname, ulimit, cgroup-parent, force-network-mode),
 *     cache-imports & cache-from types, frontend images, and when isolate
 *     local-sessionid:* and build-arg:BUILDKIT_CACHE_MOUNT_NS namespaced
 *   5 exporters: 13 when non-empty (all rewritten, then 3/4 := a copy of
 *     13[0], entry by entry), else
 *     3/4; type allow-list, attr rules, name_prefix, push registries
 *   6 cache (8): Imports/Exports by type; ImportRefsDeprecated and
 *     ExportRefDeprecated count as "registry"
 *   7 LLB: Definition (2) and every FrontendInputs (10) value
 *   8 SourcePolicy (12): the request's own CONVERT updates are checked like
 *     LLB sources (identifier, power attrs, session namespacing), since a
 *     CONVERT can turn any source into another one server-side.  Then the
 *     profile's policy is merged in (see merge_source_policy).
 *   9 isolate: Ref, Session, SourcePolicySession namespaced.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/attrparse.h"
#include "policy/frontend_attrs.h"
#include "policy/inspect_int.h"
#include "policy/session_powers.h"

static void set_summary(char **dst, const char *s)
{
  free(*dst);
  *dst = strdup(s ? s : "");
}

/* ---- frontend ------------------------------------------------------------------ */

void bg_inspect_frontend_name(struct bg_ictx *c, const char *frontend)
{
  set_summary(&c->r->frontend, frontend);
  if (!frontend[0] || c->p->frontends_any)
    return;
  if (!bg_list_glob(&c->p->frontends, frontend))
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "frontends", "frontend \"%s\" is not allowed for %s", frontend,
              bg_ictx_who(c));
}

void bg_inspect_cache_type(struct bg_ictx *c, int is_export, const char *type, const char *field)
{
  const struct bg_profile *p = c->p;
  if (p->cache_any)
    return;
  const struct bg_strlist *l = is_export ? &p->cache_export : &p->cache_import;
  if (!bg_list_glob(l, type))
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, is_export ? "cache_export" : "cache_import",
                 "%s: cache %s type \"%s\" is not allowed for %s", field, is_export ? "export" : "import", type,
              bg_ictx_who(c));
}

/* cache-imports is a JSON array of {"Type":..,"Attrs":{..}} that the
 * dockerfile frontend decodes with encoding/json into
 * []controlapi.CacheOptionsEntry: keys match the fields case-insensitively
 * (with Unicode folds) and the last match wins.  So duplicate keys, keys
 * differing only in case and non-ASCII keys are refused (INVALID_ARGUMENT),
 * and "Type" is then the one key that folds to it (attrparse.c).
 * cache-from is the legacy comma list of registry refs. */
static void frontend_cache_attrs(struct bg_ictx *c, struct bg_smap m, const char *field)
{
  char f[300], why[400];
  for (size_t i = 0; i < *m.n && !c->stop; i++) {
    struct bg_kv_entry *e = (*m.v)[i];
    snprintf(f, sizeof f, "%s[%s]", field, e->key);
    if (strcmp(e->key, "cache-from") == 0 && e->value[0]) {
      bg_inspect_cache_type(c, 0, "registry", f);
    } else if (strcmp(e->key, "cache-imports") == 0 && e->value[0]) {
      json_error_t err;
      json_t *j = json_loads(e->value, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
      if (j && json_is_null(j)) { /* Go: a nil slice, no imports */
        json_decref(j);
        continue;
      }
      if (!j || !json_is_array(j)) {
        int dup = !j && strstr(err.text, "duplicate") != NULL;
        json_decref(j);
        if (dup) {
          snprintf(why, sizeof why, "%s (JSON with duplicate object keys)", f);
          bg_ictx_bad(c, why);
        } else {
          bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "cache_import", "%s: not a JSON array of cache imports (%s)", f,
                       bg_ictx_who(c));
        }
        return;
      }
      size_t k;
      json_t *it;
      json_array_foreach(j, k, it) {
        const char *t = NULL, *bad = NULL;
        if (json_is_object(it)) {
          if (!bg_json_struct_keys_ok(it, &bad)) {
            snprintf(why, sizeof why, "%s[%zu] (JSON with %s)", f, k, bad);
            bg_ictx_bad(c, why);
            break;
          }
          t = json_string_value(bg_json_struct_get(it, "Type"));
        }
        bg_inspect_cache_type(c, 0, t ? t : "", f);
        if (c->stop)
          break;
      }
      json_decref(j);
    }
  }
}

void bg_inspect_frontend_attrs(struct bg_ictx *c, const char *frontend, struct bg_smap m, const char *field)
{
  /* An LLBBridge.Solve without a frontend is a plain LLB sub-solve: its
   * FrontendOpt is ignored by the daemon, so forced "set" keys would only
   * cause a pointless re-encode there.  (Control.Solve with an empty frontend
   * is the Build flow: its attrs drive the job, e.g. attest:provenance.) */
  struct bg_attr_rules ar = c->p->frontend_attrs;
  if (!frontend[0] && strcmp(field, "FrontendOpt") == 0)
    ar.set.n = 0;
  bg_apply_attr_rules(c, &ar, m, field, "frontend_attrs");
  if (c->stop)
    return;
  /* attrs restating LLB powers follow the llb rules; without a frontend
   * (the Build flow) no frontend turns them into LLB: the client's own LLB
   * comes through LLBBridge.Solve and is inspected there */
  if (frontend[0])
    bg_inspect_power_attrs(c, m, field);
  bg_isolate_cache_ns(c, frontend, m, field);
  if (c->stop)
    return;
  frontend_cache_attrs(c, m, field);
  if (!c->stop)
    bg_inspect_frontend_allowlist(c, frontend, m, field);
  if (!c->stop)
    bg_powers_frontend_attrs(c, m, field);
  if (c->stop || !c->p->isolate)
    return;
  char f[300];
  for (size_t i = 0; i < *m.n; i++) {
    struct bg_kv_entry *e = (*m.v)[i];
    if (strncmp(e->key, "local-sessionid:", 16) != 0 || !e->value[0])
      continue;
    char *w = bg_ns_wrap(c->r->tenant, e->value);
    if (!w)
      continue;
    snprintf(f, sizeof f, "%s[%s]", field, e->key);
    bg_ictx_rewrite(c, f, e->value, w);
    e->value = bg_arena_strdup(&c->arena, w);
    free(w);
  }
}

/* ---- source policy ------------------------------------------------------------------ */

#define UPD_ATTRS(u) \
  BG_SMAP(&(u)->n_attrs, &(u)->attrs, &moby__buildkit__v1__sourcepolicy__update__attrs_entry__descriptor)

static void check_policy_updates(struct bg_ictx *c, Moby__Buildkit__V1__Sourcepolicy__Policy *pol, const char *field)
{
  char f[300];
  for (size_t i = 0; pol && i < pol->n_rules && !c->stop; i++) {
    Moby__Buildkit__V1__Sourcepolicy__Rule *r = pol->rules[i];
    if (r->action != MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY_ACTION__CONVERT || !r->updates)
      continue;
    snprintf(f, sizeof f, "%s.rules[%zu].updates", field, i);
    /* An identifier with capture references (${1}) is checked as written:
     * a pattern list written for real identifiers then usually refuses it. */
    if (r->updates->identifier[0])
      bg_inspect_source_ident(c, r->updates->identifier, f, -1);
    if (!c->stop) {
      char af[320];
      snprintf(af, sizeof af, "%s.attrs", f);
      bg_inspect_source_attrs(c, UPD_ATTRS(r->updates), r->updates->identifier[0] ? r->updates->identifier : NULL, af, 1);
    }
  }
}

/* A source policy only the admin writes.  BuildKit's engine
 * (sourcepolicy/engine.go, v0.11-v0.13) lets the last matching ALLOW/DENY
 * win, and v0.11's loadSourcePolicy reads every rule of the job through a
 * Go map, so in random order: any rule a request adds could undo a profile
 * DENY (and, on v0.12+, where order is kept, a request rule placed after
 * the profile's would do it every time).  So when the profile carries a
 * source policy, a request carrying rules of its own is refused, whatever
 * they say: Control.Solve SourcePolicy (12), LLBBridge.Solve
 * SourcePolicies (15), LLBBridge.ResolveImageConfig SourcePolicies (8).
 * (Reducing them to DENY rules would keep them harmless but make the
 * merged set order-dependent wherever a request DENY meets a profile
 * ALLOW; refusing keeps the forwarded set exactly the admin's.)
 * NewContainer carries no source policy: its mounts name results already
 * solved under the job's policy. */
/* The request's rules are exactly the profile's (what a gateway in front of
 * this one forwarded under the same policy): they cannot undo anything. */
static int rules_are_profiles(struct bg_ictx *c, const Moby__Buildkit__V1__Sourcepolicy__Policy *req)
{
  Moby__Buildkit__V1__Sourcepolicy__Policy *pp =
      bg_ictx_unpack(c, &moby__buildkit__v1__sourcepolicy__policy__descriptor, c->p->source_policy,
                     c->p->source_policy_len, "profile source_policy");
  if (!pp || !req || pp->n_rules != req->n_rules)
    return 0;
  for (size_t i = 0; i < pp->n_rules; i++) {
    size_t a = protobuf_c_message_get_packed_size(&pp->rules[i]->base);
    size_t b = protobuf_c_message_get_packed_size(&req->rules[i]->base);
    uint8_t *x = a == b ? bg_arena_alloc(&c->arena, a + b + 2) : NULL;
    if (!x)
      return 0;
    protobuf_c_message_pack(&pp->rules[i]->base, x);
    protobuf_c_message_pack(&req->rules[i]->base, x + a + 1);
    if (memcmp(x, x + a + 1, a) != 0)
      return 0;
  }
  return 1;
}

void bg_inspect_request_source_policy(struct bg_ictx *c, size_t n_rules, const char *field)
{
  if (c->p->source_policy && n_rules)
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "source_policy",
                 "%s: the request carries %zu source-policy rule(s) of its own; the profile of %s sets the source "
                 "policy, and a rule added to it could undo the profile's (the last matching ALLOW/DENY wins, in an "
                 "order BuildKit v0.11 does not keep)",
                 field, n_rules, bg_ictx_who(c));
}

/* Forward the profile's policy in Control.Solve field 12.  It depends on
 * what the backend is, so an unknown backend is not guessed at: the
 * inspection reports need_facts and the gateway asks again once
 * Control.Info has answered, or with facts_timed_out set. */
static void merge_source_policy(struct bg_ictx *c, Moby__Buildkit__V1__Sourcepolicy__Policy **slot, const char *field)
{
  const struct bg_profile *p = c->p;
  if (!p->source_policy)
    return;
  const struct bg_backend_facts *fx = c->r->facts;
  if (!fx || !fx->known) {
    if (c->r->facts_timed_out) {
      bg_ictx_deny(c, BG_GRPC_UNAVAILABLE, "backend_facts",
                   "the profile of %s carries a source policy, and the backend's BuildKit version is not known (its "
                   "Control.Info did not answer in time); the policy is not forwarded blind",
                   bg_ictx_who(c));
    } else {
      c->r->need_facts = 1;
      c->stop = 1;
    }
    return;
  }
  if (fx->info_unimplemented) {
    bg_ictx_deny(c, BG_GRPC_FAILED_PRECONDITION, "source_policy",
                 "the profile of %s carries a source policy, and the backend BuildKit (%s) is too old to enforce "
                 "SolveRequest.SourcePolicy (needs v0.11+)",
                 bg_ictx_who(c), fx->buildkit_version[0] ? fx->buildkit_version : "Info unimplemented");
    return;
  }
  if (p->source_policy_order_dependent && !bg_buildkit_keeps_rule_order(fx->buildkit_version)) {
    bg_ictx_deny(c, BG_GRPC_FAILED_PRECONDITION, "source_policy",
                 "rules %zu and %zu of the source policy of %s may match one source and mean different things in "
                 "different orders; BuildKit %s reads the rules in random order (v0.12+ keeps it)",
                 p->sp_conflict[0], p->sp_conflict[1], bg_ictx_who(c), fx->buildkit_version);
    return;
  }
  Moby__Buildkit__V1__Sourcepolicy__Policy *pp =
      bg_ictx_unpack(c, &moby__buildkit__v1__sourcepolicy__policy__descriptor, p->source_policy, p->source_policy_len,
                     "profile source_policy");
  if (!pp || pp->n_rules == 0)
    return;
  Moby__Buildkit__V1__Sourcepolicy__Policy *req = *slot;
  if (!req) {
    req = bg_arena_alloc(&c->arena, sizeof *req);
    if (!req)
      return;
    moby__buildkit__v1__sourcepolicy__policy__init(req);
    *slot = req;
  }
  /* The request has no rules here (bg_inspect_request_source_policy), or
   * exactly the profile's: then nothing changes. */
  if (req->n_rules)
    return;
  req->version = pp->version ? pp->version : 1;
  req->rules = pp->rules;
  req->n_rules = pp->n_rules;
  char w[96];
  snprintf(w, sizeof w, "%zu rules from profile %s", pp->n_rules, p->name ? p->name : "?");
  bg_ictx_rewrite(c, field, NULL, w);
}

/* The source policies a frontend's lookups carry (LLBBridge.ResolveImageConfig
 * and ResolveSourceMeta, field 8): refused like a Solve's own, so a lookup
 * cannot resolve what the profile's policy would convert or deny. */
int bg_inspect_resolve_image_config(struct bg_inspect *r, const uint8_t *msg, size_t len)
{
  struct bg_ictx c;
  bg_ictx_init(&c, r);
  Moby__Buildkit__V1__Frontend__ResolveImageConfigRequest *q =
      bg_ictx_unpack(&c, &moby__buildkit__v1__frontend__resolve_image_config_request__descriptor, msg, len, NULL);
  if (!q)
    goto out;
  for (size_t i = 0; i < q->n_sourcepolicies && !c.stop; i++) {
    char f[64];
    snprintf(f, sizeof f, "ResolveImageConfig.SourcePolicies[%zu]", i);
    bg_inspect_request_source_policy(&c, q->sourcepolicies[i]->n_rules, f);
  }
out:
  bg_ictx_done(&c);
  return r->grpc_status;
}

int bg_inspect_resolve_source_meta(struct bg_inspect *r, const uint8_t *msg, size_t len)
{
  struct bg_ictx c;
  bg_ictx_init(&c, r);
  Moby__Buildkit__V1__Frontend__ResolveSourceMetaRequest *q =
      bg_ictx_unpack(&c, &moby__buildkit__v1__frontend__resolve_source_meta_request__descriptor, msg, len, NULL);
  if (!q)
    goto out;
  for (size_t i = 0; i < q->n_sourcepolicies && !c.stop; i++) {
    char f[64];
    snprintf(f, sizeof f, "ResolveSourceMeta.SourcePolicies[%zu]", i);
    bg_inspect_request_source_policy(&c, q->sourcepolicies[i]->n_rules, f);
  }
out:
  bg_ictx_done(&c);
  return r->grpc_status;
}

/* ---- isolation of names ------------------------------------------------------------- */

/* 25 characters of [0-9a-z] from the inspection's random source. */
static char *gen_ref(const struct bg_env *env)
{
  static const char al[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  uint8_t rnd[25];
  if (!env)
    env = &bg_env_system;
  if (env->random_bytes(env->arg, rnd, sizeof rnd) != 0)
    return NULL;
  char *s = malloc(26);
  if (!s)
    return NULL;
  for (int i = 0; i < 25; i++)
    s[i] = al[rnd[i] % 36];
  s[25] = 0;
  return s;
}

/* Wrap *slot in place (arena) and record it.  gen: generate a name when empty. */
static void wrap_name(struct bg_ictx *c, char **slot, const char *field, int gen)
{
  if (!c->p->isolate)
    return;
  char *own = NULL;
  const char *name = *slot;
  if (!name[0]) {
    if (!gen)
      return;
    if (!(own = gen_ref(c->r->env)))
      return;
    name = own;
    /* the audit record shows the ref the tenant will see in its history */
    free(c->r->ref);
    c->r->ref = strdup(own);
  }
  char *w = bg_ns_wrap(c->r->tenant, name);
  if (w) {
    bg_ictx_rewrite(c, field, (*slot)[0] ? *slot : NULL, w);
    *slot = bg_arena_strdup(&c->arena, w);
  }
  free(w);
  free(own);
}

/* ---- Control.Solve ------------------------------------------------------------------------ */

#define CS(x) moby__buildkit__v1__solve_request__##x

int bg_inspect_control_solve(struct bg_inspect *r, const uint8_t *msg, size_t len)
{
  struct bg_ictx c;
  bg_ictx_init(&c, r);
  const struct bg_profile *p = r->prof;
  Moby__Buildkit__V1__SolveRequest *q = bg_ictx_unpack(&c, &CS(descriptor), msg, len, NULL);
  if (!q) {
    bg_ictx_bad(&c, "moby.buildkit.v1.SolveRequest");
    goto out;
  }
  set_summary(&r->ref, q->ref);
  set_summary(&r->session, q->session);
  for (size_t i = 0; i < q->n_entitlements; i++)
    bg_strlist_add(&r->entitlements, q->entitlements[i], 16);

  /* 1 entitlements */
  for (size_t i = 0; i < q->n_entitlements && !c.stop; i++)
    if (!bg_entitlement_granted(p, q->entitlements[i]))
      bg_ictx_deny(&c, BG_GRPC_PERMISSION_DENIED, "entitlements", "entitlement %s is not granted to %s",
                   q->entitlements[i], bg_ictx_who(&c));
  /* 2 session exporter */
  if (!c.stop && q->enablesessionexporter && !p->session_exporter)
    bg_ictx_deny(&c, BG_GRPC_PERMISSION_DENIED, "session_exporter",
                 "EnableSessionExporter lets the client pick exporters inside the session; not granted to %s",
                 bg_ictx_who(&c));
  /* 3, 4 frontend */
  if (!c.stop)
    bg_inspect_frontend_name(&c, q->frontend);
  if (!c.stop)
    bg_inspect_frontend_attrs(&c, q->frontend, BG_SMAP(&q->n_frontendattrs, &q->frontendattrs, &CS(frontend_attrs_entry__descriptor)),
                              "FrontendAttrs");
  /* 5 exporters */
  struct bg_smap ea4 =
      BG_SMAP(&q->n_exporterattrsdeprecated, &q->exporterattrsdeprecated, &CS(exporter_attrs_deprecated_entry__descriptor));
  if (!c.stop && q->n_exporters > 0) {
    char f[64], af[80];
    for (size_t i = 0; i < q->n_exporters && !c.stop; i++) {
      snprintf(f, sizeof f, "Exporters[%zu]", i);
      snprintf(af, sizeof af, "Exporters[%zu].Attrs", i);
      bg_inspect_exporter(&c, q->exporters[i]->type,
                          BG_SMAP(&q->exporters[i]->n_attrs, &q->exporters[i]->attrs,
                               &moby__buildkit__v1__exporter__attrs_entry__descriptor),
                       f, af);
    }
    /* Old daemons (< v0.13, every Docker up to 25) read only 3/4, new ones
     * only 13 (translateLegacySolveRequest).  After the rewrites above, the
     * forwarded 3/4 are made a copy of 13[0], entry for entry, whatever the
     * client sent there: both daemons then export exactly what the policy
     * checked.  (Refusing a mismatch instead would break clients that send
     * 13 alone.) */
    Moby__Buildkit__V1__Exporter *e0 = q->exporters[0];
    struct bg_smap a0 = BG_SMAP(&e0->n_attrs, &e0->attrs, &moby__buildkit__v1__exporter__attrs_entry__descriptor);
    if (!c.stop && strcmp(q->exporterdeprecated, e0->type) != 0) {
      bg_ictx_rewrite(&c, "ExporterDeprecated", q->exporterdeprecated[0] ? q->exporterdeprecated : NULL, e0->type);
      q->exporterdeprecated = e0->type;
    }
    if (!c.stop && !bg_smap_equal(ea4, a0)) {
      bg_ictx_rewrite(&c, "ExporterAttrsDeprecated", "(differs from Exporters[0].Attrs)", "(copy of Exporters[0].Attrs)");
      *ea4.n = 0;
      for (size_t i = 0; i < *a0.n; i++)
        bg_smap_append(&c, ea4, (*a0.v)[i]->key, (*a0.v)[i]->value);
    }
  } else if (!c.stop && q->exporterdeprecated[0]) {
    bg_inspect_exporter(&c, q->exporterdeprecated, ea4, "ExporterDeprecated", "ExporterAttrsDeprecated");
  }
  /* 6 cache */
  if (!c.stop && q->cache) {
    Moby__Buildkit__V1__CacheOptions *co = q->cache;
    char f[64];
    if (co->exportrefdeprecated[0])
      bg_inspect_cache_type(&c, 1, "registry", "Cache.ExportRefDeprecated");
    if (!c.stop && co->n_importrefsdeprecated)
      bg_inspect_cache_type(&c, 0, "registry", "Cache.ImportRefsDeprecated");
    for (size_t i = 0; i < co->n_exports && !c.stop; i++) {
      snprintf(f, sizeof f, "Cache.Exports[%zu]", i);
      bg_inspect_cache_type(&c, 1, co->exports[i]->type, f);
    }
    for (size_t i = 0; i < co->n_imports && !c.stop; i++) {
      snprintf(f, sizeof f, "Cache.Imports[%zu]", i);
      bg_inspect_cache_type(&c, 0, co->imports[i]->type, f);
    }
  }
  /* 7 LLB */
  if (!c.stop)
    bg_inspect_definition(&c, q->definition, "Definition");
  for (size_t i = 0; i < q->n_frontendinputs && !c.stop; i++) {
    char f[300];
    snprintf(f, sizeof f, "FrontendInputs[%s]", q->frontendinputs[i]->key);
    bg_inspect_definition(&c, q->frontendinputs[i]->value, f);
  }
  /* 8 source policy */
  if (!c.stop && !(p->source_policy && rules_are_profiles(&c, q->sourcepolicy)))
    bg_inspect_request_source_policy(&c, q->sourcepolicy ? q->sourcepolicy->n_rules : 0, "SourcePolicy");
  if (!c.stop)
    check_policy_updates(&c, q->sourcepolicy, "SourcePolicy");
  if (!c.stop)
    merge_source_policy(&c, &q->sourcepolicy, "SourcePolicy");
  /* 9 isolate */
  if (!c.stop) {
    wrap_name(&c, &q->ref, "Ref", 1);
    wrap_name(&c, &q->session, "Session", 0);
    wrap_name(&c, &q->sourcepolicysession, "SourcePolicySession", 0);
  }
  if (!r->need_facts)
    bg_ictx_finish(&c, &q->base);
out:
  bg_ictx_done(&c);
  return r->grpc_status;
}

/* ---- LLBBridge.Solve ------------------------------------------------------------------------ */

/* ExporterAttr (11) is bytes in every release: a JSON object of result
 * metadata (Go map[string][]byte, values base64) that, with Final=true, is
 * merged into the result the exporter sees.  It is not rewritten: a profile
 * that constrains exporters refuses keys that are exporter attributes it
 * would otherwise police (name, push, ...). */
static void bridge_exporter_attr(struct bg_ictx *c, const ProtobufCBinaryData *b)
{
  if (!b->len)
    return;
  json_error_t err;
  /* a Go map[string][]byte: keys exact, a duplicate key is last-wins */
  json_t *j = json_loadb((const char *)b->data, b->len, JSON_REJECT_DUPLICATES, &err);
  if (!j || !json_is_object(j)) {
    json_decref(j);
    bg_ictx_bad(c, "LLBBridge SolveRequest.ExporterAttr (not a JSON object without duplicate keys)");
    return;
  }
  if (!c->p->exporters_any) {
    static const char *const keys[] = {"name", "push", "push-by-digest", "registry.insecure", "unpack", "store",
                                        "dangling-name-prefix"};
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
      int bad = 0;
      for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        bad |= strcmp(k, keys[i]) == 0;
      for (size_t e = 0; e < c->p->n_exporters && !bad; e++) {
        const struct bg_attr_rules *ar = &c->p->exporters[e].attrs;
        bad |= bg_list_glob(&ar->deny, k) || bg_list_glob(&ar->del, k);
        for (size_t s = 0; s < ar->set.n && !bad; s++)
          bad |= strcmp(ar->set.v[s].key, k) == 0;
      }
      if (bad) {
        bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "exporter_attrs",
                     "ExporterAttr: result metadata key %s would override an exporter attribute; not allowed for %s", k,
                     bg_ictx_who(c));
        break;
      }
      /* the values are []byte, so base64 in the JSON; what the exporter
       * then reads goes through the same checks as LLBBridge.Return */
      if (json_is_null(v))
        continue;
      const char *sv = json_string_value(v);
      size_t sl = sv ? json_string_length(v) : 0;
      uint8_t *dec = sv ? bg_arena_alloc(&c->arena, sl + 1) : NULL;
      long dl = dec ? bg_base64_std_decode(sv, sl, dec) : -1;
      if (dl < 0) {
        bg_ictx_bad(c, "LLBBridge SolveRequest.ExporterAttr (a value is not base64)");
        break;
      }
      bg_inspect_result_metadata(c, k, dec, (size_t)dl, "ExporterAttr");
      if (c->stop)
        break;
    }
  }
  json_decref(j);
}

#define BS(x) moby__buildkit__v1__frontend__solve_request__##x

int bg_inspect_bridge_solve(struct bg_inspect *r, const uint8_t *msg, size_t len)
{
  struct bg_ictx c;
  bg_ictx_init(&c, r);
  Moby__Buildkit__V1__Frontend__SolveRequest *q = bg_ictx_unpack(&c, &BS(descriptor), msg, len, NULL);
  if (!q) {
    bg_ictx_bad(&c, "moby.buildkit.v1.frontend.SolveRequest");
    goto out;
  }
  bg_inspect_frontend_name(&c, q->frontend);
  if (!c.stop)
    bg_inspect_frontend_attrs(&c, q->frontend, BG_SMAP(&q->n_frontendopt, &q->frontendopt, &BS(frontend_opt_entry__descriptor)),
                              "FrontendOpt");
  if (!c.stop)
    bridge_exporter_attr(&c, &q->exporterattr);
  for (size_t i = 0; i < q->n_cacheimports && !c.stop; i++) {
    char f[64];
    snprintf(f, sizeof f, "CacheImports[%zu]", i);
    bg_inspect_cache_type(&c, 0, q->cacheimports[i]->type, f);
  }
  /* Field 4 (removed in v0.11): daemons up to v0.10 -- Docker 20.10 among
   * them -- turn each ref into a registry cache import. */
  for (size_t i = 0; i < q->n_importcacherefsdeprecated && !c.stop; i++) {
    char f[64];
    snprintf(f, sizeof f, "ImportCacheRefsDeprecated[%zu]", i);
    bg_inspect_cache_type(&c, 0, "registry", f);
  }
  if (!c.stop)
    bg_inspect_definition(&c, q->definition, "Definition");
  for (size_t i = 0; i < q->n_frontendinputs && !c.stop; i++) {
    char f[300];
    snprintf(f, sizeof f, "FrontendInputs[%s]", q->frontendinputs[i]->key);
    bg_inspect_definition(&c, q->frontendinputs[i]->value, f);
  }
  for (size_t i = 0; i < q->n_sourcepolicies && !c.stop; i++) {
    char f[64];
    snprintf(f, sizeof f, "SourcePolicies[%zu]", i);
    bg_inspect_request_source_policy(&c, q->sourcepolicies[i]->n_rules, f);
    if (!c.stop)
      check_policy_updates(&c, q->sourcepolicies[i], f);
  }
  bg_ictx_finish(&c, &q->base);
out:
  bg_ictx_done(&c);
  return r->grpc_status;
}

/* ---- NewContainer / ExecProcess ---------------------------------------------------------- */

int bg_inspect_new_container(struct bg_inspect *r, const uint8_t *msg, size_t len)
{
  struct bg_ictx c;
  bg_ictx_init(&c, r);
  Moby__Buildkit__V1__Frontend__NewContainerRequest *q =
      bg_ictx_unpack(&c, &moby__buildkit__v1__frontend__new_container_request__descriptor, msg, len, NULL);
  if (!q) {
    bg_ictx_bad(&c, "moby.buildkit.v1.frontend.NewContainerRequest");
    goto out;
  }
  bg_inspect_network(&c, q->network, "NewContainer.Network", -1);
  for (size_t i = 0; i < q->n_mounts && !c.stop; i++) {
    char f[64];
    snprintf(f, sizeof f, "NewContainer.Mounts[%zu]", i);
    bg_inspect_mount_type(&c, q->mounts[i]->mounttype, f, -1);
  }
  /* the container's copies of the Meta powers (extraHosts 6, hostname 7) */
  if (!c.stop && q->n_extrahosts)
    bg_inspect_power(&c, BG_POWER_EXTRA_HOSTS, "NewContainer.extraHosts", -1);
  if (!c.stop && q->hostname[0])
    bg_inspect_power(&c, BG_POWER_HOSTNAME, "NewContainer.hostname", -1);
  if (!c.stop) {
    bg_wrap_cache_mounts(&c, q->mounts, q->n_mounts, "NewContainer", 1);
    bg_ictx_finish(&c, &q->base);
  }
out:
  bg_ictx_done(&c);
  return r->grpc_status;
}

/* Before BuildKit v0.12.5 (Docker 20.10 and 24) the daemon never checked the
 * entitlements of interactive containers (CVE-2024-23653), so the gateway
 * does: INSECURE needs llb.security "insecure" (unless llb_any) and the
 * security.insecure entitlement. */
int bg_inspect_exec_process(struct bg_inspect *r, const uint8_t *msg, size_t len)
{
  struct bg_ictx c;
  bg_ictx_init(&c, r);
  Moby__Buildkit__V1__Frontend__ExecMessage *q = bg_ictx_unpack(&c, &moby__buildkit__v1__frontend__exec_message__descriptor, msg, len, NULL);
  if (!q) {
    bg_ictx_bad(&c, "moby.buildkit.v1.frontend.ExecMessage");
    goto out;
  }
  if (q->input_case == MOBY__BUILDKIT__V1__FRONTEND__EXEC_MESSAGE__INPUT_INIT && q->init) {
    bg_inspect_security(&c, q->init->security, "ExecProcess.Init.Security", -1);
    if (!c.stop && q->init->n_secretenv)
      bg_inspect_mount_type(&c, PB__MOUNT_TYPE__SECRET, "ExecProcess.Init.secretenv", -1);
    if (!c.stop)
      bg_inspect_meta(&c, q->init->meta, "ExecProcess.Init.Meta", -1);
  }
out:
  bg_ictx_done(&c);
  return r->grpc_status;
}

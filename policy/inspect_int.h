/*
 * inspect_int.h: shared internals of the message inspectors (inspect_*.c).
 * Not for use outside those files.
 *
 * Memory: every message an inspection decodes is unpacked with an arena
 * allocator (struct bg_arena) and mutated in place with arena memory, so
 * nothing needs protobuf_c_message_free_unpacked and a 10,000-op Definition
 * costs a few bump allocations per op instead of malloc/free pairs.  Only
 * what leaves through struct bg_inspect (out bytes, rewrites, summary) is
 * malloc'd.
 */
#ifndef BG_INSPECT_INT_H
#define BG_INSPECT_INT_H

#include <protobuf-c/protobuf-c.h>
#include <stdarg.h>

#include "policy/inspect.h"
#include "proto/control.pb-c.h"
#include "proto/gateway.pb-c.h"
#include "proto/ops.pb-c.h"
#include "proto/sourcepolicy.pb-c.h"

struct bg_arena_chunk;
struct bg_arena {
  struct bg_arena_chunk *head;
  ProtobufCAllocator pc; /* allocator handed to protobuf-c */
  size_t bytes, peak;    /* chunk bytes held now / at most */
};
struct bg_arena_mark {
  struct bg_arena_chunk *head;
  size_t used;
};

void bg_arena_init(struct bg_arena *a);
void bg_arena_destroy(struct bg_arena *a);
void *bg_arena_alloc(struct bg_arena *a, size_t n);
char *bg_arena_strdup(struct bg_arena *a, const char *s);
struct bg_arena_mark bg_arena_mark(struct bg_arena *a);
void bg_arena_reset(struct bg_arena *a, struct bg_arena_mark m);

/* Generic view of any protobuf-c map<string,string> entry. */
struct bg_kv_entry {
  ProtobufCMessage base;
  char *key;
  char *value;
};

/* A map<string,string> field: pointers into the owning message. */
struct bg_smap {
  size_t *n;
  struct bg_kv_entry ***v;
  const ProtobufCMessageDescriptor *entry_desc;
};
#define BG_SMAP(countp, arrp, desc) \
  ((struct bg_smap){(countp), (struct bg_kv_entry ***)(arrp), (desc)})

struct bg_ictx {
  struct bg_inspect *r;
  const struct bg_profile *p;
  struct bg_arena arena;
  int changed; /* the decoded message was modified */
  int stop;    /* enforce mode and denied: stop evaluating */
  int depth;   /* nested Definition depth (BuildOp.def) */
  int nested;  /* inside BuildOp.def: rewrites impossible */
  char who[200];
  /* The profile as this call sees it when its llb.sources patterns name
   * ${tenant}: a shallow copy with those patterns expanded (arena). */
  struct bg_profile pview;
  struct bg_strlist pview_sources;
};

void bg_ictx_init(struct bg_ictx *c, struct bg_inspect *r);
void bg_ictx_done(struct bg_ictx *c);
/* Record a violation (first one wins).  Returns 1. */
int bg_ictx_deny(struct bg_ictx *c, int status, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int bg_ictx_bad(struct bg_ictx *c, const char *what); /* INVALID_ARGUMENT; no-op once stopped */
void bg_ictx_rewrite(struct bg_ictx *c, const char *field, const char *oldv, const char *newv);
/* The same on a bare result, for inspectors that need no decoding context
 * (isolate_bridge.c).  At most 256 rewrites are listed. */
void bg_inspect_add_rewrite(struct bg_inspect *r, const char *field, const char *oldv, const char *newv);
/* Pack |m| into r->out when changed, not denied and not audit-only. */
void bg_ictx_finish(struct bg_ictx *c, const ProtobufCMessage *m);
/* Validate |len| bytes as a |d| (proto/pbcheck.h) before protobuf-c may
 * unpack them.  Returns 1 when they may be unpacked.  A refusal is
 * INVALID_ARGUMENT, rule "decode", the reason naming the field ("<where>: "
 * first when where is set).  Unknown fields and undeclared enum values in
 * LLB messages (package pb) are denied as rule "llb_unknown" unless
 * bg_llb_unknown_allowed(profile); in audit mode that denial is recorded and 1 is
 * returned. */
int bg_ictx_check(struct bg_ictx *c, const ProtobufCMessageDescriptor *d, const uint8_t *msg, size_t len,
                  const char *where);
/* bg_ictx_check, then protobuf-c's unpack into the arena: the only way the
 * inspectors decode.  NULL when refused (the verdict is set). */
void *bg_ictx_unpack(struct bg_ictx *c, const ProtobufCMessageDescriptor *d, const uint8_t *msg, size_t len,
                  const char *where);
/* 0 when a decoded tree holds something protobuf-c would re-encode badly. */
int bg_msg_valid(const ProtobufCMessage *m, int depth);
/* Tenant and profile, for messages: "tenant ci (profile builder)". */
const char *bg_ictx_who(struct bg_ictx *c);

/* strings and lists */
void bg_strlist_add(struct bg_strlist *l, const char *s, size_t cap); /* malloc'd copy, dedup */
int bg_entitlement_granted(const struct bg_profile *p, const char *ent);

/* string maps */
const char *bg_smap_get(struct bg_smap m, const char *key);   /* last entry wins, as in Go */
void bg_smap_remove_at(struct bg_smap m, size_t i);
void bg_smap_append(struct bg_ictx *c, struct bg_smap m, const char *key, const char *value);
/* Set key to value (arena copy); returns previous value of the last entry or
 * NULL; dedups duplicates.  Does not record a rewrite. */
void bg_smap_set(struct bg_ictx *c, struct bg_smap m, const char *key, const char *value);
int bg_smap_equal(struct bg_smap a, struct bg_smap b); /* same entries in the same order */

/* Frontend attrs / FrontendOpt: deny, delete, set, local-sessionid:* wrap,
 * cache-imports / cache-from checks, frontend images (source, BUILDKIT_SYNTAX). */
void bg_inspect_frontend_attrs(struct bg_ictx *c, const char *frontend, struct bg_smap m, const char *field);
void bg_inspect_frontend_name(struct bg_ictx *c, const char *frontend);
/* The catalogue allow-list, source attrs and forced image-resolve-mode
 * (frontend_attrs.c); called after the deny/delete/set rules. */
/* 1 for a frontend attr that restates an LLB power (add-hosts, hostname,
 * ulimit, cgroup-parent, force-network-mode, BUILDKIT_SANDBOX_HOSTNAME):
 * the llb keys decide it (bg_inspect_power_attrs), not frontend_attrs.allow. */
int bg_inspect_power_attr_key(const char *key);
void bg_inspect_frontend_allowlist(struct bg_ictx *c, const char *frontend, struct bg_smap m, const char *field);
void bg_inspect_cache_type(struct bg_ictx *c, int is_export, const char *type, const char *field);
/* A request's own source-policy rules, refused when the profile has a
 * source policy (inspect_solve.c). */
void bg_inspect_request_source_policy(struct bg_ictx *c, size_t n_rules, const char *field);
/* Result metadata the exporter reads (LLBBridge.Return, ExporterAttr):
 * checked like an exporter attr (inspect_return.c).  value is (ptr, len). */
void bg_inspect_result_metadata(struct bg_ictx *c, const char *key, const uint8_t *value, size_t len, const char *field);
/* Go's base64.StdEncoding for JSON []byte values; out has room for n bytes.
 * Returns the length or -1. */
long bg_base64_std_decode(const char *in, size_t n, uint8_t *out);

/* LLB (inspect_llb.c) */
void bg_inspect_definition(struct bg_ictx *c, Pb__Definition *def, const char *field);
/* Source attrs (LLB SourceOp or source-policy update): power checks and
 * isolate wrapping.  apply=0: only report (1) whether a wrap is needed;
 * apply=1: wrap and record the rewrites.  Returns 1 if (it would be) changed. */
/* ident: the source's identifier (NULL when not known, as in a CONVERT
 * update that keeps it): under isolate a local:// source gets a tenant
 * local.unique (see inspect_llb.c). */
int bg_inspect_source_attrs(struct bg_ictx *c, struct bg_smap m, const char *ident, const char *field, int apply);
/* Field names: fld alone (idx < 0) or "<fld>.def[<idx>]", formatted lazily. */
const char *bg_op_field(char *buf, size_t n, const char *fld, long idx);
void bg_inspect_source_ident(struct bg_ictx *c, const char *ident, const char *fld, long idx);
void bg_inspect_network(struct bg_ictx *c, int mode, const char *fld, long idx);
void bg_inspect_security(struct bg_ictx *c, int mode, const char *fld, long idx);
void bg_inspect_mount_type(struct bg_ictx *c, int type, const char *fld, long idx);
/* ExecOp.Meta powers (llb.extra_hosts, hostname, ulimit, cgroup_parent). */
enum bg_llb_power { BG_POWER_EXTRA_HOSTS, BG_POWER_HOSTNAME, BG_POWER_ULIMIT, BG_POWER_CGROUP_PARENT };
void bg_inspect_power(struct bg_ictx *c, enum bg_llb_power pw, const char *fld, long idx);
void bg_inspect_meta(struct bg_ictx *c, const Pb__Meta *m, const char *fld, long idx);
/* Frontend attrs restating LLB powers (add-hosts, hostname, ulimit,
 * cgroup-parent, force-network-mode) checked as those powers. */
void bg_inspect_power_attrs(struct bg_ictx *c, struct bg_smap m, const char *field);
/* Unknown fields / op kinds / enum values inside m (llb.unknown). */
/* Under isolate, namespace every cache mount's CacheOpt.ID (empty: the dest). */
int bg_wrap_cache_mounts(struct bg_ictx *c, Pb__Mount **mounts, size_t n, const char *field, int apply);

/* Isolation (inspect_isolate.c): force build-arg:BUILDKIT_CACHE_MOUNT_NS. */
void bg_isolate_cache_ns(struct bg_ictx *c, const char *frontend, struct bg_smap m, const char *field);

/* Exporters (bg_inspect_exporter.c) */
void bg_apply_attr_rules(struct bg_ictx *c, const struct bg_attr_rules *ar, struct bg_smap m,
                         const char *field, const char *rule);
/* field names the exporter ("Exporters[1]"), attrs_field its attrs map. */
void bg_inspect_exporter(struct bg_ictx *c, const char *type, struct bg_smap attrs, const char *field,
                         const char *attrs_field);
/* Name rules, exposed for tests of the escape logic: returns malloc'd new
 * name, or NULL with *why set when the name is refused. */
char *bg_exporter_prefix_name(const char *name, const char *prefix, const char **why);
/* Registry host of a docker reference ("docker.io" when none). */
void bg_ref_registry(const char *name, char *host, size_t hostlen);

#endif

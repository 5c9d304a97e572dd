/*
 * profile.h: the in-memory form of a policy profile, shared between the
 * policy-file loader (policy_file.c) and the message inspectors (inspect_*.c).
 * Internal to policy/: gateway/ never includes it.
 *
 * Conventions: a NULL/empty list means "nothing allowed" unless a flag says
 * "any".  Pattern lists hold the strings exactly as written in the file
 * ("*" and glob patterns are matched by bg_glob_match()).
 */
#ifndef BG_PROFILE_H
#define BG_PROFILE_H

#include <stddef.h>
#include <stdint.h>

struct bg_strlist {
  char **v;
  size_t n;
};
/* 1 when |s| is exactly one of l's entries (inspect_core.c). */
int bg_list_has(const struct bg_strlist *l, const char *s);
/* 1 when one of l's glob patterns matches |s| (inspect_core.c). */
int bg_list_glob(const struct bg_strlist *l, const char *s);

struct bg_kv {
  char *key;
  char *value; /* may contain ${tenant} */
};

struct bg_kvlist {
  struct bg_kv *v;
  size_t n;
};

/* Rules over a string map (frontend attrs, exporter attrs, cache attrs). */
struct bg_attr_rules {
  struct bg_strlist deny;        /* keys (glob patterns) whose presence denies the request */
  struct bg_strlist del;         /* keys (glob patterns) removed silently ("delete") */
  struct bg_kvlist set;          /* keys forced to a value (template) */
  char *name_prefix;             /* exporters: template every name in "name" must carry, or NULL */
  struct bg_strlist push_registries; /* exporters: registries push=true may target; empty = push denied when set */
  int push_any;                  /* push_registries contained "*" or was absent */
};

struct bg_exporter_rule {
  char *type;                    /* "image", "moby", "local", "tar", "oci", "docker", or "*" */
  struct bg_attr_rules attrs;
};

struct bg_profile {
  char *name;
  struct bg_strlist methods;      /* patterns: "*", "@stable", "@unstable", "@powerful", a service prefix ending in a star, exact */
  struct bg_strlist entitlements; /* granted entitlements; "*" = all; "device" or "device=<glob>" */
  int frontends_any;              /* "frontends" absent or ["*"] */
  struct bg_strlist frontends;
  struct bg_attr_rules frontend_attrs;
  /* frontend_attrs.allow: attr keys (globs) granted although the catalogue
   * (frontend_attrs.c) calls them powers or does not know them; set: the
   * key was written, which makes the allow-list apply to this profile even
   * when it is otherwise unrestricted. */
  struct bg_strlist frontend_attrs_allow;
  int frontend_attrs_allow_set;
  int exporters_any;              /* "exporters" absent: any exporter, no rewriting */
  struct bg_exporter_rule *exporters;
  size_t n_exporters;
  int session_exporter;           /* may set SolveRequest.EnableSessionExporter (14) */
  int cache_any;
  struct bg_strlist cache_import; /* cache importer types allowed */
  struct bg_strlist cache_export; /* cache exporter types allowed */
  int llb_any;                    /* "llb" absent: LLB not restricted */
  struct bg_strlist llb_network;  /* "sandbox", "none", "host" */
  struct bg_strlist llb_security; /* "sandbox", "insecure" */
  struct bg_strlist llb_sources;  /* identifier patterns, e.g. docker-image:// followed by * */
  struct bg_strlist llb_mounts;   /* extra mount types allowed besides bind/cache/tmpfs: "secret", "ssh" */
  /* ExecOp.Meta powers (and the NewContainer/ExecProcess copies of them).
   * Unlike the lists above, a key missing inside "llb" means "denied": these
   * are zero in a restricted profile unless the file says true.  They are
   * ignored (allowed) when llb_any, except that a frontend_attrs "deny" of the
   * frontend attr restating the power (add-hosts, hostname, cgroup-parent,
   * ulimit, force-network-mode for host) denies the LLB power too. */
  int llb_cgroup_parent;          /* Meta.cgroupParent (10) non-empty */
  int llb_ulimit;                 /* Meta.ulimit (9) non-empty */
  int llb_extra_hosts;            /* Meta.extraHosts (6) non-empty */
  int llb_hostname;               /* Meta.hostname (7) non-empty */
  int llb_unknown_allow;          /* "unknown": "allow": unknown fields / op kinds / enum values pass */
  struct bg_strlist llb_resolve_modes; /* image.resolvemode values allowed ("default", "pull", "local") */
  /* Policy-wide (owned by the policy, shared by every profile; NULL in
   * hand-built profiles): for each tenant whose profile has an image or moby
   * exporter name_prefix, key = tenant name, value = that prefix expanded and
   * normalised as a docker reference ("docker.io/ci/").  Under isolate on a
   * Docker-engine backend, LLB image sources under another tenant's prefix
   * are refused (inspect_llb.c). */
  const struct bg_kvlist *tenant_image_prefixes;
  /* Source policy to merge into SolveRequest.SourcePolicy (field 12), already
   * encoded as a moby.buildkit.v1.sourcepolicy.Policy message; NULL for none. */
  uint8_t *source_policy;
  size_t source_policy_len;
  /* Its rules mean different things in different orders (an ALLOW and a
   * DENY, or two CONVERTs, may match one source): forwarded only to a
   * backend that keeps rule order (BuildKit v0.12+).  sp_conflict: the
   * indexes of one such pair, for messages. */
  int source_policy_order_dependent;
  size_t sp_conflict[2];
  int isolate;
  size_t max_message_bytes;
  unsigned max_streams;
  /* Control.Session / POST /session: session methods the client may expose
   * (x-docker-expose-session-grpc-method values, glob patterns); others are
   * removed from the header by the call glue.  session_methods_any: key absent. */
  int session_methods_any;
  struct bg_strlist session_methods;
};

/* Whether LLB the gateway's schema does not know (a field, an op kind, an
 * enum value) may pass: only when the profile leaves LLB unrestricted or its
 * llb section says "unknown": "allow".  The one predicate behind the
 * validator's unknown-field hook (proto/pbcheck) wherever LLB is decoded. */
static inline int bg_llb_unknown_allowed(const struct bg_profile *p)
{
  return p->llb_any || p->llb_unknown_allow;
}

/* Shell-style glob: '*' matches any run of characters (including '/'), '?' one. */
int bg_glob_match(const char *pattern, const char *s);
/* Expand ${tenant} in a template; malloc'd result. */
char *bg_expand_tenant(const char *tmpl, const char *tenant);
/* A docker reference name[len] as Docker normalises it (distribution's
 * splitDockerDomain: a first component without '.' or ':', not "localhost"
 * and all lowercase is not a registry, so "docker.io/" is added, and
 * "library/" for a one-component docker.io name; "index.docker.io" is
 * "docker.io").  strip_tag: drop "@digest" and ":tag" as well.  0 and the
 * result in out, or -1 (a NUL inside, or out too small). */
int bg_docker_normalize(const char *name, size_t len, int strip_tag, char *out, size_t outlen);

/* Tenant namespacing for isolate=true (strutil.c, docs/session-names.md).
 * A name a tenant chooses (session ID, build ref) is stored in the daemon as
 * bg_ns_wrap(tenant, name): "<tenant>.name", or "p:<tenant>.rest" for
 * "p:rest", so the part BuildKit looks up after dropping a "p:" prefix is in
 * the tenant's namespace too.  On the way out bg_ns_unwrap_dup returns the
 * tenant's own name (malloc'd), or NULL if the daemon's name does not belong
 * to this tenant. */
char *bg_ns_wrap(const char *tenant, const char *name);
char *bg_ns_unwrap_dup(const char *tenant, const char *wrapped);

#endif

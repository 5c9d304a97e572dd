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

/* Shell-style glob: '*' matches any run of characters (including '/'), '?' one. */
int bg_glob_match(const char *pattern, const char *s);
/* Expand ${tenant} in a template; malloc'd result. */
char *bg_expand_tenant(const char *tmpl, const char *tenant);

/* Tenant namespacing for isolate=true.  A name a tenant chooses (session ID,
 * build ref) is stored in the daemon as bg_ns_wrap(tenant, name); on the way
 * out bg_ns_unwrap returns the tenant's own name, or NULL if the daemon's
 * name does not belong to this tenant. */
char *bg_ns_wrap(const char *tenant, const char *name);
const char *bg_ns_unwrap(const char *tenant, const char *wrapped);

#endif

/*
 * policy_int.h: internal structures of the policy core (loader, tenants,
 * method catalogue, call glue, audit).  Internal to policy/ and to the
 * `buildgate check` command; the daemon side of gateway/ uses policy.h only.
 */
#ifndef BG_POLICY_INT_H
#define BG_POLICY_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy/policy.h"
#include "policy/profile.h"
#include "proto/grpc_frame.h"

#define BG_DEFAULT_MAX_MESSAGE_BYTES BG_GRPC_DEFAULT_MAX_MSG
#define BG_MAX_PATH_LEN 256
#define BG_TENANT_NAME_MAX 63

struct bg_tenant {
  char *name;
  uid_t *uids;
  size_t n_uids;
  gid_t *gids;
  size_t n_gids;
  struct bg_strlist cert_cn;   /* matched against the certificate CN and every SAN */
  uint8_t (*tokens)[32];       /* SHA-256 of accepted bearer tokens */
  size_t n_tokens;
  int any_local;               /* match.any_local: every unix-socket peer (SO_PEERCRED) */
  size_t profile;              /* index into bg_policy.profiles */
};

struct bg_policy {
  int refs;
  int audit_mode;               /* mode == "audit" */
  int is_default;               /* the built-in default policy */
  long anonymous;               /* tenant index, or -1: refuse unidentified peers */
  struct bg_tenant *tenants;
  size_t n_tenants;
  struct bg_profile *profiles;
  size_t n_profiles;
  int any_tokens;               /* some tenant accepts bearer tokens */
  struct bg_kvlist image_prefixes; /* tenant -> normalised image/moby name_prefix (profile.h) */
  const struct bg_env *env;     /* NULL: bg_env_system (env.c) */
};

/* The clock and random source |p| uses (never NULL; p may be NULL). */
const struct bg_env *bg_policy_env(const struct bg_policy *p);

/* ---- method catalogue (methods.c) ---- */
enum bg_mclass { BG_MC_STABLE = 1, BG_MC_UNSTABLE = 2, BG_MC_POWERFUL = 3 };

enum bg_mkind {
  BG_MK_PLAIN = 0,
  BG_MK_CONTROL_SOLVE,
  BG_MK_CONTROL_STATUS,
  BG_MK_CONTROL_SESSION,
  BG_MK_LISTEN_HISTORY,
  BG_MK_UPDATE_HISTORY,
  BG_MK_BRIDGE,              /* any other LLBBridge call: carries buildkit-controlapi-buildid */
  BG_MK_RESOLVE_IMAGE,       /* LLBBridge.ResolveImageConfig: SessionID in the body */
  BG_MK_RESOLVE_SOURCE,      /* LLBBridge.ResolveSourceMeta: session attrs in the body */
  BG_MK_BRIDGE_SOLVE,
  BG_MK_NEW_CONTAINER,
  BG_MK_EXEC_PROCESS,
  BG_MK_BRIDGE_RETURN,       /* LLBBridge.Return: result metadata reaches the exporter */
};

struct bg_method {
  const char *path;   /* "/pkg.Service/Method" */
  enum bg_mclass cls;
  enum bg_mkind kind;
};

const struct bg_method *bg_method_lookup(const char *path);
const struct bg_method *bg_method_catalogue(size_t *n);
const char *bg_mclass_name(enum bg_mclass c);
/* 0 when |path| is exactly "/pkg.Service/Method"; otherwise -1 with a reason in why. */
int bg_path_check(const char *path, size_t len, char *why, size_t whylen);
/* Validate one method pattern as written in a policy file (0 ok, -1 with why). */
int bg_method_pattern_check(const char *pat, char *why, size_t whylen);
/* Does the profile allow |path|?  Returns 1/0; *rule gets the deciding pattern
 * ("!..." deny pattern, the allowing pattern, or NULL when nothing matched). */
int bg_methods_allow(const struct bg_strlist *pats, const char *path, const char **rule);

/* ---- tenants (tenant.c) ---- */
/* The identity rule (tenant.c header, README "Identity"), shared by every
 * door and every call.
 * bg_tenant_by_transport: what the transport alone says: "cert", "uid",
 * "gid", "unix" (any_local), "anonymous"; -1 when nothing matches.
 * bg_identify: the tenant of a connection or call.  conn_tenant/conn_how: the
 * connection's tenant once identified (-1 before); transport/transport_how:
 * bg_tenant_by_transport's answer, used only while the connection is not
 * identified and no token is presented; tok: the presented bearer token or
 * NULL.  Returns 0 with *tenant and *how, or UNAUTHENTICATED (unknown token or no
 * tenant at all), or PERMISSION_DENIED (a token for another tenant than the
 * connection's) with the reason in why. */
long bg_tenant_by_transport(const struct bg_policy *p, const struct bg_identity *id, const char **how);
int bg_identify(const struct bg_policy *p, long conn_tenant, const char *conn_how, long transport,
                const char *transport_how, const char *tok, size_t toklen, long *tenant, const char **how,
                char *why, size_t whylen);
/* Match a bearer token alone (constant-time over all hashes); -1 if none. */
long bg_tenant_by_token(const struct bg_policy *p, const char *tok, size_t toklen);
long bg_tenant_by_name(const struct bg_policy *p, const char *name);
int bg_tenant_name_ok(const char *s);

/* ---- loader helpers (policy_file.c) ---- */
void bg_policy_free(struct bg_policy *p);
void bg_profile_free(struct bg_profile *pr);
void bg_strlist_free(struct bg_strlist *l);

/* ---- lint.c: warnings for `buildgate check` (returns how many) ---- */
size_t bg_policy_lint(const struct bg_policy *p, void (*warn)(void *arg, const char *msg), void *arg);

/* ---- audit (audit.c) ---- */
struct bg_rewrite_rec {
  char *field;
  char *old;
  char *new_;
};

struct bg_audit {
  uint64_t conn_id;
  const char *tenant;
  const char *identified_by;
  const char *peer;
  const char *door;
  const char *method;
  const char *decision;
  const char *rule;
  const char *reason;
  const struct bg_rewrite_rec *rewrites;
  size_t n_rewrites;
  const char *ref;
  const char *session;
  const char *frontend;
  const char *const *exporters;
  size_t n_exporters;
  const char *const *entitlements;
  size_t n_entitlements;
  const char *const *sources;
  size_t n_sources;
  int grpc_status;
  uint64_t bytes_in;
  uint64_t bytes_out;
  double duration_ms;
  int mode_audit;
  struct timespec time;  /* when the record was made (CLOCK_REALTIME of the policy's env) */
};

/* A compact JSON line (malloc'd, no newline). */
char *bg_audit_line(const struct bg_audit *a);

/* The built-in default policy text (policy.c). */
extern const char bg_default_policy_json[];

/* ---- offline evaluation (check command) ---- */
const struct bg_profile *bg_conn_profile(const struct bg_conn *c);

#endif

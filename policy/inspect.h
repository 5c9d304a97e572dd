/*
 * inspect.h: protobuf-aware message inspectors and rewriters (pure logic).
 *
 * Each bg_inspect_* function takes one complete gRPC message (no 5-byte
 * prefix, already decompressed) and a filled-in struct bg_inspect, and
 * returns r->grpc_status (0 = allowed).  Contract:
 *
 *   - Denial: grpc_status = BG_GRPC_PERMISSION_DENIED (or FAILED_PRECONDITION
 *     for a source policy the backend cannot honour), r->rule names the rule
 *     ("entitlements", "frontends", "frontend_attrs", "exporters",
 *     "exporter_attrs", "exporter_name", "exporter_push", "session_exporter",
 *     "cache_import", "cache_export", "llb_network", "llb_security",
 *     "llb_mounts", "llb_sources", "llb_source_attrs", "llb_devices",
 *     "llb_build", "llb_op", "llb_cgroup_parent", "llb_ulimit",
 *     "llb_extra_hosts", "llb_hostname", "llb_unknown",
 *     "llb_image_resolve_mode", "source_policy"; INVALID_ARGUMENT "isolate"
 *     for an empty Status/UpdateBuildHistory ref) and r->reason names the offending value,
 *     the tenant and the profile.  The first violation found wins.
 *   - Undecodable message: BG_GRPC_INVALID_ARGUMENT, rule "decode".  Every
 *     message (and each LLB Op) is validated against its schema before
 *     protobuf-c decodes it (proto/pbcheck.h): whatever BuildKit's Go decoder
 *     could read differently (duplicates, map keys twice, NUL or bad UTF-8
 *     in strings, field numbers Go truncates, ...) or that would expand too
 *     far is refused that way, r->reason naming the field
 *     ("SolveRequest.FrontendAttrs[cache-imports]: NUL byte in string").
 *     Unknown fields or enum values in LLB are denied as "llb_unknown" (and
 *     in the requests that carry LLB, SolveRequest and the like, as
 *     "unknown_field") unless bg_llb_unknown_allowed() (no llb section, or
 *     llb.unknown "allow").
 *   - Strings: the inspectors read protobuf-c's typed view, whose strings are
 *     NUL-terminated copies.  They are still exactly BuildKit's strings,
 *     byte for byte, because the validator refused every string with a NUL
 *     inside: for each of them strlen() is the wire length, so the C string
 *     is the (pointer, length) pair Go reads.  Values parsed further (JSON,
 *     white space, image references) are read as (pointer, length) with
 *     Go's rules (attrparse.c).
 *   - A message the policy does not change is never re-encoded: r->out NULL.
 *     A changed message is in r->out/r->outlen (malloc'd, owned by r, freed
 *     by bg_inspect_free; take it by setting r->out = NULL).  Fields unknown
 *     to the schemas in proto/ survive the re-encode (protobuf-c keeps them).
 *   - audit_only: everything is computed (rewrites listed, violation found)
 *     but grpc_status stays 0 and out stays NULL; r->would_deny is set and
 *     r->would_status / rule / reason say what enforce mode would have done.
 *   - Every rewrite, enforced or audit-only, is listed in r->rewrites as
 *     (field, old value or NULL when added, new value or NULL when removed).
 *
 * Tenant namespacing (prof->isolate) uses bg_ns_wrap/bg_ns_unwrap
 * (strutil.c).  The inspectors wrap, in Control.Solve: Ref, Session,
 * SourcePolicySession, FrontendAttrs local-sessionid:*, and the LLB source
 * attrs local.session / oci.session (in the Definition, FrontendInputs and
 * source-policy CONVERT updates), every cache mount's CacheOpt.ID (LLB and
 * NewContainer; an empty ID becomes the wrapped dest) and the frontend attr
 * build-arg:BUILDKIT_CACHE_MOUNT_NS.  An empty Ref is replaced by a generated,
 * wrapped one so the build is attributable to the tenant in history.  The
 * gateway/glue must wrap the matching names outside the message bodies:
 * the x-docker-expose-session-uuid header of Control.Session / POST
 * /session and the buildkit-controlapi-buildid metadata of LLBBridge calls.
 *
 * Thread-safety: none needed; no global state.
 */
#ifndef BG_INSPECT_H
#define BG_INSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"
#include "policy/profile.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One rewrite for the audit record.  Field paths look like
 * "ExporterAttrsDeprecated[name]", "Exporters[0].Attrs[push]",
 * "FrontendAttrs[local-sessionid:context]", "Ref", "SourcePolicy",
 * "Definition.def[3].source.attrs[local.session]". */
struct bg_rewrite {
  char *field;
  char *old_value; /* NULL: the entry was added */
  char *new_value; /* NULL: the entry was removed */
};

struct bg_inspect {
  /* in (set by the caller; prof and tenant must be non-NULL) */
  const struct bg_profile *prof;
  const char *tenant;
  int audit_only;                        /* policy mode "audit" */
  const struct bg_backend_facts *facts;  /* may be NULL: backend unknown */
  int facts_timed_out;                   /* the gateway waited for facts and gave up */
  const struct bg_env *env;              /* random source for generated refs; NULL: bg_env_system */

  /* out: decision */
  int grpc_status;                       /* 0 = allowed (always 0 when audit_only) */
  int would_deny;                        /* audit_only: enforce mode would have refused */
  int would_status;                      /* ... with this status */
  char rule[64];
  char reason[400];

  /* out: message to forward instead of the original, or NULL = unchanged */
  uint8_t *out;
  size_t outlen;
  int drop;                              /* response filters: do not deliver this message */
  /* The decision depends on backend facts not known yet (facts NULL or not
   * known, facts_timed_out 0): nothing else in the result counts; ask again
   * with the same message once facts are known or the wait timed out. */
  int need_facts;

  /* out: audit details */
  struct bg_rewrite *rewrites;
  size_t n_rewrites;
  char *ref, *session, *frontend;        /* as the client sent them (before namespacing) */
  struct bg_strlist exporters;           /* exporter types */
  struct bg_strlist entitlements;        /* requested entitlements */
  struct bg_strlist sources;             /* LLB source identifiers (distinct, capped at 64) */
  size_t n_ops;                          /* LLB ops decoded */
  size_t decode_peak;                    /* most memory the decoded views held at once */
};

/* Start a new inspection: zero the outputs, keep the inputs. */
void bg_inspect_init(struct bg_inspect *r, const struct bg_profile *prof, const char *tenant,
                     int audit_only, const struct bg_backend_facts *facts);
/* Free every malloc'd output (not the inputs).  The struct can be reused after
 * bg_inspect_init. */
void bg_inspect_free(struct bg_inspect *r);

/* /moby.buildkit.v1.Control/Solve request (moby.buildkit.v1.SolveRequest). */
int bg_inspect_control_solve(struct bg_inspect *r, const uint8_t *msg, size_t len);
/* /moby.buildkit.v1.frontend.LLBBridge/Solve request. */
int bg_inspect_bridge_solve(struct bg_inspect *r, const uint8_t *msg, size_t len);
/* /moby.buildkit.v1.frontend.LLBBridge/Return request: result metadata the
 * exporter reads is checked like exporter attrs. */
int bg_inspect_bridge_return(struct bg_inspect *r, const uint8_t *msg, size_t len);
/* /moby.buildkit.v1.frontend.LLBBridge/ResolveImageConfig request: its own
 * SourcePolicies (8) are refused when the profile has a source policy. */
int bg_inspect_resolve_image_config(struct bg_inspect *r, const uint8_t *msg, size_t len);
/* /moby.buildkit.v1.frontend.LLBBridge/ResolveSourceMeta request (v0.13):
 * the same for its SourcePolicies (8). */
int bg_inspect_resolve_source_meta(struct bg_inspect *r, const uint8_t *msg, size_t len);
/* /moby.buildkit.v1.frontend.LLBBridge/NewContainer request. */
int bg_inspect_new_container(struct bg_inspect *r, const uint8_t *msg, size_t len);
/* /moby.buildkit.v1.frontend.LLBBridge/ExecProcess: every client message may
 * be passed; only those carrying Init are checked (network is the
 * container's, so only Security matters here). */
int bg_inspect_exec_process(struct bg_inspect *r, const uint8_t *msg, size_t len);

/* Isolation helpers (meaningful when prof->isolate; with isolate off they
 * pass everything unchanged).  Requests: the tenant's ref is wrapped
 * (empty stays empty).  Responses: refs are unwrapped; a record that belongs
 * to another tenant (or to no tenant) sets r->drop. */
int bg_isolate_status_request(struct bg_inspect *r, const uint8_t *msg, size_t len);          /* Control.Status */
int bg_isolate_build_history_request(struct bg_inspect *r, const uint8_t *msg, size_t len);   /* Control.ListenBuildHistory */
int bg_isolate_update_build_history(struct bg_inspect *r, const uint8_t *msg, size_t len);    /* Control.UpdateBuildHistory */
int bg_isolate_build_history_event(struct bg_inspect *r, const uint8_t *msg, size_t len);     /* ListenBuildHistory response */
/* LLBBridge.ResolveImageConfig (SessionID) and ResolveSourceMeta (the
 * SourceOp's local.session / oci.session attrs): the session names in the
 * request body are wrapped (isolate_bridge.c).  A message the schema check
 * refuses is INVALID_ARGUMENT, rule "decode". */
int bg_isolate_resolve_image_config(struct bg_inspect *r, const uint8_t *msg, size_t len);
int bg_isolate_resolve_source_meta(struct bg_inspect *r, const uint8_t *msg, size_t len);
/* Wrap / unwrap a bare name (header values such as the session UUID or the
 * buildkit-controlapi-buildid metadata).  malloc'd; NULL from unwrap when the
 * name is not the tenant's. */
char *bg_isolate_wrap(const struct bg_profile *prof, const char *tenant, const char *name);
char *bg_isolate_unwrap(const struct bg_profile *prof, const char *tenant, const char *name);

/* Read BuildkitVersion.version out of an InfoResponse ("" if absent); 0 on
 * success, -1 if undecodable.  For the gateway's backend facts. */
int bg_inspect_info_version(const uint8_t *msg, size_t len, char *version, size_t versionlen);

#ifdef __cplusplus
}
#endif
#endif

/*
 * policy.h: the only policy/ header that gateway/ includes.
 *
 * The policy layer is pure decision logic.  It never touches a socket, a
 * timer or a file descriptor other than reading the policy file at load time.
 * The gateway hands it an identity, a method, headers and message bytes; it
 * hands back a decision, maybe new bytes, and an audit record (a JSON line the
 * gateway writes wherever --audit-log points).
 *
 * Lifetimes: a struct bg_policy is immutable once loaded and refcounted, so a
 * SIGHUP reload swaps the gateway's pointer while connections and calls in
 * flight keep the policy they started with (each bg_conn holds a reference).
 */
#ifndef BG_POLICY_H
#define BG_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* gRPC status codes the policy uses (numeric values from the gRPC spec). */
enum bg_grpc_code {
  BG_GRPC_OK = 0,
  BG_GRPC_CANCELLED = 1,
  BG_GRPC_UNKNOWN = 2,
  BG_GRPC_INVALID_ARGUMENT = 3,
  BG_GRPC_DEADLINE_EXCEEDED = 4,
  BG_GRPC_NOT_FOUND = 5,
  BG_GRPC_PERMISSION_DENIED = 7,
  BG_GRPC_RESOURCE_EXHAUSTED = 8,
  BG_GRPC_FAILED_PRECONDITION = 9,
  BG_GRPC_UNIMPLEMENTED = 12,
  BG_GRPC_INTERNAL = 13,
  BG_GRPC_UNAVAILABLE = 14,
  BG_GRPC_UNAUTHENTICATED = 16,
};

/* A load error: where in the file and what. line/column are 1-based, 0 if unknown. */
struct bg_error {
  int line;
  int column;
  char text[256];
};

struct bg_policy;

/* Load and validate a policy file; NULL on error with *err filled. */
struct bg_policy *bg_policy_load_file(const char *path, struct bg_error *err);
/* Same, from a JSON text in memory (tests, fuzzing). */
struct bg_policy *bg_policy_load_string(const char *json, size_t len, struct bg_error *err);
/* The built-in default policy used when no --policy is given. */
struct bg_policy *bg_policy_load_default(void);
struct bg_policy *bg_policy_ref(struct bg_policy *p);
void bg_policy_unref(struct bg_policy *p);
/* "enforce" or "audit" */
const char *bg_policy_mode(const struct bg_policy *p);

/* The clock and the random source the policy uses: audit record times
 * (CLOCK_REALTIME), call durations (CLOCK_MONOTONIC) and the refs it
 * generates for builds that have none.  Passed in rather than called
 * directly so tests can fix them and expect exact audit lines and refs. */
struct bg_env {
  int (*now)(void *arg, clockid_t which, struct timespec *ts);  /* as clock_gettime(2); 0 on success */
  int (*random_bytes)(void *arg, uint8_t *buf, size_t n);      /* n unpredictable bytes; 0 on success */
  void *arg;
};
/* The real ones: clock_gettime(2) and getrandom(2).  Every policy uses them
 * unless given others. */
extern const struct bg_env bg_env_system;
/* Give |p| another clock and random source (NULL: the system ones).  Call it
 * before |p| is shared (a loaded policy is otherwise immutable); |env| must
 * outlive |p|. */
void bg_policy_set_env(struct bg_policy *p, const struct bg_env *env);

/* What the gateway learnt about the backend.  The gateway owns this struct and
 * updates it; the policy only reads it (e.g. to refuse SourcePolicy on a
 * BuildKit too old to honour SolveRequest field 12). */
struct bg_backend_facts {
  int known;               /* 0 until Control.Info was tried */
  int info_unimplemented;  /* Control.Info answered UNIMPLEMENTED: BuildKit < v0.11 */
  char buildkit_version[64];
  int docker_engine;       /* backend is a Docker engine (docker+unix:// or docker+tcp://): its
                              image store is shared by every tenant */
};

/* Read BuildkitVersion.version out of an InfoResponse ("" if absent); 0 on
 * success, -1 if undecodable.  For the gateway's Control.Info probe
 * (inspect_isolate.c; also declared in inspect.h). */
int bg_inspect_info_version(const uint8_t *msg, size_t len, char *version, size_t versionlen);

/* Who is on the other end of a client connection, as far as the transport knows. */
struct bg_identity {
  int has_peercred;             /* unix socket with SO_PEERCRED */
  uid_t uid;
  gid_t gid;
  pid_t pid;
  const char *cert_cn;          /* verified TLS client certificate CN, or NULL */
  const char *const *cert_sans; /* its DNS/URI/email SANs */
  size_t n_cert_sans;
  const char *bearer_token;     /* token from "Authorization: Bearer" on the HTTP upgrade, or NULL */
  const char *peer;             /* printable peer ("unix:uid=1000,pid=42", "tcp:1.2.3.4:5678") */
};

/* One header / metadata entry.  Names are lowercase for HTTP/2; not NUL-terminated. */
struct bg_header {
  const char *name;
  size_t namelen;
  const char *value;
  size_t valuelen;
};

/* A change the policy asks the gateway to make to the request headers before
 * forwarding: every existing entry named |name| is removed, then each of
 * values[0..n_values) is added (n_values == 0 means delete). */
struct bg_header_edit {
  char *name;
  char **values;
  size_t n_values;
};

struct bg_conn;

/* Bind a client connection to a tenant.  |door| is "grpc" (native HTTP/2),
 * "docker-grpc" (POST /grpc upgrade) or "docker-session" (POST /session).
 * Returns NULL when the connection must be refused; then *refusal is a
 * malloc'd human-readable reason and *audit_line a malloc'd JSON audit line
 * (both freed by the caller).  The identity rule (README "Identity"): a
 * bearer token in |id| decides; else the transport does.  On the native door
 * ("grpc") of a policy that accepts tokens the connection is not identified
 * here but by its first call (which may carry "authorization" metadata, and a
 * token wins); it is not refused here either.  |facts| must outlive the
 * connection. */
struct bg_conn *bg_conn_open(struct bg_policy *p, const struct bg_identity *id, const char *door,
                             uint64_t conn_id, const struct bg_backend_facts *facts, char **refusal,
                             char **audit_line);
/* Bind a connection to a named tenant without any identity (the offline
 * `buildgate check --tenant` evaluation, tests).  NULL if no such tenant. */
struct bg_conn *bg_conn_open_as_tenant(struct bg_policy *p, const char *tenant, const char *door,
                                       uint64_t conn_id, const struct bg_backend_facts *facts);
void bg_conn_close(struct bg_conn *c);
/* Tenant name ("" until identified; a native connection may be identified
 * by its first call) and how it was identified ("uid", "cert", "token",
 * "anonymous"; also "gid", "unix" (match.any_local) and "name"
 * (bg_conn_open_as_tenant)).  Once identified, a connection keeps its tenant. */
const char *bg_conn_tenant(const struct bg_conn *c);
const char *bg_conn_identified_by(const struct bg_conn *c);
/* Max concurrent streams the tenant's profile allows (0 = gateway default). */
unsigned bg_conn_max_streams(const struct bg_conn *c);

/* What to do with a new call (an HTTP/2 request, or a Docker-style /session
 * which the gateway presents as path "/moby.buildkit.v1.Control/Session" with
 * its X-Docker-Expose-Session-* headers lowercased). */
struct bg_call_decision {
  int grpc_status;          /* 0: allowed; otherwise deny with this status */
  char message[512];        /* grpc-message for a denial */
  int inspect_requests;     /* deliver every request message to bg_call_request */
  int inspect_responses;    /* deliver every response message to bg_call_response */
  size_t max_message_bytes; /* largest message the gateway may buffer for inspection */
  const struct bg_header_edit *edits; /* request header edits, owned by the call */
  size_t n_edits;
};

struct bg_call;

/* Always returns a call (so a denial is audited too) unless out of memory.
 * |path| is the raw :path value; anything that is not exactly
 * "/pkg.Service/Method" is denied. */
struct bg_call *bg_call_begin(struct bg_conn *c, const char *path, size_t pathlen,
                              const struct bg_header *hdrs, size_t n_hdrs, struct bg_call_decision *out);

/* BG_MSG_DROP (responses only): do not deliver this message, carry on with the
 * stream (isolation withholds another tenant's ListenBuildHistory events). */
/* BG_MSG_WAIT_FACTS (requests only): the decision depends on backend facts
 * (struct bg_backend_facts) not known yet.  Nothing was decided or
 * recorded: hold the message, get the facts (Control.Info), and pass the
 * same message to bg_call_request again; after a bounded wait call
 * bg_call_facts_timeout first, and the policy decides without them (it
 * refuses what depends on them with UNAVAILABLE). */
enum bg_msg_verdict { BG_MSG_PASS = 0, BG_MSG_REPLACE = 1, BG_MSG_DENY = 2, BG_MSG_DROP = 3, BG_MSG_WAIT_FACTS = 4 };

struct bg_msg_result {
  enum bg_msg_verdict verdict;
  uint8_t *data;      /* BG_MSG_REPLACE: new message bytes (malloc'd, caller frees); never compressed */
  size_t len;
  int grpc_status;    /* BG_MSG_DENY */
  char message[512];
};

/* One complete gRPC message (without the 5-byte prefix).  |compressed| is the
 * prefix's flag; the encoding is the call's grpc-encoding header. */
void bg_call_request(struct bg_call *call, const uint8_t *msg, size_t len, int compressed,
                     struct bg_msg_result *out);
void bg_call_response(struct bg_call *call, const uint8_t *msg, size_t len, int compressed,
                      struct bg_msg_result *out);

/* The gateway waited for the backend facts long enough: the next
 * bg_call_request decides without them. */
void bg_call_facts_timeout(struct bg_call *call);

/* The tenant a call runs as ("" when it was refused before one was known):
 * always its connection's (a call naming another tenant is refused).  The
 * gateway keys its backend connection pool by it. */
const char *bg_call_tenant(const struct bg_call *call);

/* End of the call: final status as the client saw it.  Returns (in
 * *audit_line, malloc'd, no trailing newline) the audit record to write, or
 * NULL when nothing is to be written.  Frees the call. */
void bg_call_end(struct bg_call *call, int grpc_status, const char *grpc_message,
                 uint64_t bytes_from_client, uint64_t bytes_from_backend, char **audit_line);

#ifdef __cplusplus
}
#endif
#endif

/*
 * call_int.h: connection and call state shared by call.c (glue, audit) and
 * dispatch.c (hand-off to the message inspectors).  Internal to policy/.
 */
#ifndef BG_CALL_INT_H
#define BG_CALL_INT_H

#include <time.h>

#include "policy/policy_int.h"

#define BG_CALL_MAX_EDITS 8

struct bg_conn {
  struct bg_policy *p;
  long tenant;      /* index in p->tenants, -1 until identified; then fixed for good */
  const char *how;  /* static string */
  /* What the transport says (cert, uid, ..., anonymous), for a native
   * connection whose first call may still present a token (tenant.c). */
  long transport;
  const char *transport_how;
  uint64_t id;
  const struct bg_backend_facts *facts;
  char *door;
  char *peer;
};

struct bg_call {
  struct bg_conn *c;
  long tenant;
  const char *how;
  const struct bg_profile *prof;      /* NULL when denied before a tenant was known */
  const struct bg_method *m;          /* NULL for methods outside the catalogue */
  enum bg_mkind kind;
  char *method;
  struct timespec t0;
  int begin_status;                   /* denial decided in bg_call_begin */
  int oom;                            /* an isolation edit could not be made */
  int msg_denied;
  int facts_timed_out;                /* bg_call_facts_timeout: decide without backend facts */
  int inspect_requests, inspect_responses;
  int encoding;                       /* enum bg_grpc_enc (proto/grpc_encoding.h) */
  char encname[32];
  unsigned n_req, n_resp;
  const char *decision;               /* static string */
  char rule[200];
  char reason[512];
  struct bg_header_edit edits[BG_CALL_MAX_EDITS];
  size_t n_edits;
  struct bg_rewrite_rec *rewrites;
  size_t n_rewrites;
  /* summary for the audit record (malloc'd) */
  char *ref, *session, *frontend;
  char **exporters, **entitlements, **sources;
  size_t n_exporters, n_entitlements, n_sources;
};

/* What an inspector made of one message. */
struct bg_inspect_verdict {
  int deny;
  int grpc_status;
  char rule[160];
  char message[512];
  int rewritten; /* the policy changes (or in audit mode would change) this message */
  int need_facts; /* undecided until the backend facts are known: ask again */
  int drop;      /* do not deliver this (response) message */
  uint8_t *data; /* non-NULL: replacement bytes (malloc'd) */
  size_t len;
};

int bg_inspect_wants_requests(const struct bg_call *call);
int bg_inspect_wants_responses(const struct bg_call *call);
void bg_inspect_dispatch(struct bg_call *call, int response, const uint8_t *msg, size_t len,
                         struct bg_inspect_verdict *v);

void bg_call_set_decision(struct bg_call *call, const char *decision, const char *rule, const char *reason);
int bg_call_add_rewrite(struct bg_call *call, const char *field, const char *old, const char *neu);
char *bg_call_audit(struct bg_call *call, int grpc_status, uint64_t bytes_in, uint64_t bytes_out);
void bg_call_free(struct bg_call *call);

#endif

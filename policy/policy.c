/*
 * policy.c: TEMPORARY allow-everything implementation of policy.h so the
 * gateway can link and run while the real policy core is written.  It
 * inspects nothing and denies nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

struct bg_policy {
  int refs;
};

struct bg_conn {
  struct bg_policy *p;
  uint64_t id;
};

struct bg_call {
  struct bg_conn *c;
};

static struct bg_policy *new_policy(void)
{
  struct bg_policy *p = calloc(1, sizeof *p);
  if (p)
    p->refs = 1;
  return p;
}

struct bg_policy *bg_policy_load_file(const char *path, struct bg_error *err)
{
  (void)path;
  if (err)
    memset(err, 0, sizeof *err);
  return new_policy();
}

struct bg_policy *bg_policy_load_string(const char *json, size_t len, struct bg_error *err)
{
  (void)json;
  (void)len;
  if (err)
    memset(err, 0, sizeof *err);
  return new_policy();
}

struct bg_policy *bg_policy_load_default(void) { return new_policy(); }

struct bg_policy *bg_policy_ref(struct bg_policy *p)
{
  if (p)
    __atomic_add_fetch(&p->refs, 1, __ATOMIC_SEQ_CST);
  return p;
}

void bg_policy_unref(struct bg_policy *p)
{
  if (p && __atomic_sub_fetch(&p->refs, 1, __ATOMIC_SEQ_CST) == 0)
    free(p);
}

const char *bg_policy_mode(const struct bg_policy *p) { return "enforce"; }

struct bg_conn *bg_conn_open(struct bg_policy *p, const struct bg_identity *id, const char *door,
                             uint64_t conn_id, const struct bg_backend_facts *facts, char **refusal,
                             char **audit_line)
{
  if (refusal)
    *refusal = NULL;
  if (audit_line)
    *audit_line = NULL;
  struct bg_conn *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->p = bg_policy_ref(p);
  c->id = conn_id;
  return c;
}

void bg_conn_close(struct bg_conn *c)
{
  if (!c)
    return;
  bg_policy_unref(c->p);
  free(c);
}

const char *bg_conn_tenant(const struct bg_conn *c) { return "local"; }
const char *bg_conn_identified_by(const struct bg_conn *c) { return "anonymous"; }
unsigned bg_conn_max_streams(const struct bg_conn *c) { return 0; }

struct bg_call *bg_call_begin(struct bg_conn *c, const char *path, size_t pathlen,
                              const struct bg_header *hdrs, size_t n_hdrs, struct bg_call_decision *out)
{
  memset(out, 0, sizeof *out);
  out->max_message_bytes = 16u << 20;
  struct bg_call *call = calloc(1, sizeof *call);
  if (call)
    call->c = c;
  return call;
}

void bg_call_request(struct bg_call *call, const uint8_t *msg, size_t len, int compressed,
                     struct bg_msg_result *out)
{
  memset(out, 0, sizeof *out);
}

void bg_call_response(struct bg_call *call, const uint8_t *msg, size_t len, int compressed,
                      struct bg_msg_result *out)
{
  memset(out, 0, sizeof *out);
}

void bg_call_end(struct bg_call *call, int grpc_status, const char *grpc_message,
                 uint64_t bytes_from_client, uint64_t bytes_from_backend, char **audit_line)
{
  if (audit_line)
    *audit_line = NULL;
  free(call);
}

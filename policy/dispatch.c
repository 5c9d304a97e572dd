/*
 * dispatch.c: hand inspected messages to the message inspectors (inspect.h)
 * and fold their results into the call (decision, rewrites, audit summary).
 *
 * Which messages are inspected:
 *   requests  Control.Solve, LLBBridge.Solve, LLBBridge.NewContainer and every
 *             client message of LLBBridge.ExecProcess (a stream may start
 *             several processes, each with its own Init); with isolate also
 *             Control.Status, Control.ListenBuildHistory and
 *             Control.UpdateBuildHistory (their refs are namespaced), and
 *             LLBBridge.ResolveImageConfig / ResolveSourceMeta (the session
 *             names in their bodies, isolate_bridge.c).
 *   responses with isolate, Control.ListenBuildHistory events: refs are
 *             restored and other tenants' records are dropped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/call_int.h"
#include "policy/inspect.h"
#include "policy/isolate_bridge.h"

int bg_inspect_wants_requests(const struct bg_call *call)
{
  switch (call->kind) {
  case BG_MK_CONTROL_SOLVE:
  case BG_MK_BRIDGE_SOLVE:
  case BG_MK_NEW_CONTAINER:
  case BG_MK_EXEC_PROCESS:
    return 1;
  case BG_MK_BRIDGE_RETURN:
    return call->prof && !call->prof->exporters_any;
  case BG_MK_RESOLVE_IMAGE:
  case BG_MK_RESOLVE_SOURCE:
    return call->prof && (call->prof->isolate || call->prof->source_policy);
  case BG_MK_CONTROL_STATUS:
  case BG_MK_LISTEN_HISTORY:
  case BG_MK_UPDATE_HISTORY:
    return call->prof && call->prof->isolate;
  default:
    return 0;
  }
}

int bg_inspect_wants_responses(const struct bg_call *call)
{
  return call->kind == BG_MK_LISTEN_HISTORY && call->prof && call->prof->isolate;
}

static void take_str(char **dst, char **src)
{
  if (!*dst && *src && **src) {
    *dst = *src;
    *src = NULL;
  }
}

static void merge_list(char ***dst, size_t *n, const struct bg_strlist *src)
{
  for (size_t i = 0; i < src->n; i++) {
    int seen = 0;
    for (size_t k = 0; k < *n && !seen; k++)
      seen = strcmp((*dst)[k], src->v[i]) == 0;
    if (seen || *n >= 256)
      continue;
    char **nv = realloc(*dst, (*n + 1) * sizeof *nv);
    if (!nv)
      return;
    *dst = nv;
    if (((*dst)[*n] = strdup(src->v[i])))
      (*n)++;
  }
}

static void run_inspector(struct bg_call *call, int (*fn)(struct bg_inspect *, const uint8_t *, size_t),
                          const uint8_t *msg, size_t len, struct bg_inspect_verdict *v);

void bg_inspect_dispatch(struct bg_call *call, int response, const uint8_t *msg, size_t len,
                         struct bg_inspect_verdict *v)
{
  memset(v, 0, sizeof *v);
  if (!response && call->prof && (call->kind == BG_MK_RESOLVE_IMAGE || call->kind == BG_MK_RESOLVE_SOURCE)) {
    /* Their own source policies first (a denial ends the call), then the
     * session names when isolating. */
    if (call->prof->source_policy) {
      run_inspector(call,
                    call->kind == BG_MK_RESOLVE_IMAGE ? bg_inspect_resolve_image_config : bg_inspect_resolve_source_meta,
                    msg, len, v);
      if (v->deny || v->need_facts || !call->prof->isolate)
        return;
      free(v->data);
      memset(v, 0, sizeof *v);
    }
    if (!call->prof->isolate)
      return;
    uint8_t *o = NULL;
    size_t ol = 0;
    char why[200];
    int rc = bg_isolate_bridge_request(call, call->kind == BG_MK_RESOLVE_SOURCE, msg, len, &o, &ol, why, sizeof why);
    if (rc < 0) {
      v->deny = 1;
      v->grpc_status = BG_GRPC_INVALID_ARGUMENT;
      snprintf(v->rule, sizeof v->rule, "decode");
      snprintf(v->message, sizeof v->message, "buildgate: %.100s request could not be decoded: %s", call->method, why);
    } else if (rc > 0) {
      v->rewritten = 1;
      snprintf(v->rule, sizeof v->rule, "profiles.%s.isolate", call->prof->name);
      snprintf(v->message, sizeof v->message, "tenant namespacing of session names");
      if (call->c->p->audit_mode)
        free(o);
      else {
        v->data = o;
        v->len = ol;
      }
    }
    return;
  }
  int (*fn)(struct bg_inspect *, const uint8_t *, size_t) = NULL;
  if (!response) {
    switch (call->kind) {
    case BG_MK_CONTROL_SOLVE: fn = bg_inspect_control_solve; break;
    case BG_MK_BRIDGE_SOLVE: fn = bg_inspect_bridge_solve; break;
    case BG_MK_NEW_CONTAINER: fn = bg_inspect_new_container; break;
    case BG_MK_EXEC_PROCESS: fn = bg_inspect_exec_process; break;
    case BG_MK_BRIDGE_RETURN: fn = bg_inspect_bridge_return; break;
    case BG_MK_CONTROL_STATUS: fn = bg_isolate_status_request; break;
    case BG_MK_LISTEN_HISTORY: fn = bg_isolate_build_history_request; break;
    case BG_MK_UPDATE_HISTORY: fn = bg_isolate_update_build_history; break;
    default: break;
    }
  } else if (call->kind == BG_MK_LISTEN_HISTORY) {
    fn = bg_isolate_build_history_event;
  }
  if (!fn || !call->prof)
    return;
  run_inspector(call, fn, msg, len, v);
}

/* Run one inspector and fold its result into the call and |v|. */
static void run_inspector(struct bg_call *call, int (*fn)(struct bg_inspect *, const uint8_t *, size_t),
                          const uint8_t *msg, size_t len, struct bg_inspect_verdict *v)
{
  const struct bg_policy *p = call->c->p;
  const char *tenant = p->tenants[call->tenant].name;
  struct bg_inspect r;
  memset(&r, 0, sizeof r);
  bg_inspect_init(&r, call->prof, tenant, p->audit_mode, call->c->facts);
  r.facts_timed_out = call->facts_timed_out;
  fn(&r, msg, len);
  if (r.need_facts) {
    /* nothing of this evaluation counts: it runs again once facts are known */
    v->need_facts = 1;
    bg_inspect_free(&r);
    return;
  }

  /* audit summary: the first message that names a thing wins */
  take_str(&call->ref, &r.ref);
  take_str(&call->session, &r.session);
  take_str(&call->frontend, &r.frontend);
  merge_list(&call->exporters, &call->n_exporters, &r.exporters);
  merge_list(&call->entitlements, &call->n_entitlements, &r.entitlements);
  merge_list(&call->sources, &call->n_sources, &r.sources);
  for (size_t i = 0; i < r.n_rewrites; i++)
    bg_call_add_rewrite(call, r.rewrites[i].field, r.rewrites[i].old_value, r.rewrites[i].new_value);

  int status = p->audit_mode ? (r.would_deny ? (r.would_status ? r.would_status : BG_GRPC_PERMISSION_DENIED) : 0)
                             : r.grpc_status;
  if (!r.rule[0])
    snprintf(v->rule, sizeof v->rule, "profiles.%s", call->prof->name);
  else if (strcmp(r.rule, "decode") == 0)
    snprintf(v->rule, sizeof v->rule, "%s", r.rule);
  else
    snprintf(v->rule, sizeof v->rule, "profiles.%s.%s", call->prof->name, r.rule);
  if (status) {
    v->deny = 1;
    v->grpc_status = status;
    if (status == BG_GRPC_INVALID_ARGUMENT)
      snprintf(v->message, sizeof v->message, "buildgate: %.100s request could not be decoded: %.360s", call->method,
               r.reason[0] ? r.reason : "malformed message");
    else
      snprintf(v->message, sizeof v->message, "buildgate: denied by rule %.100s: %.380s", v->rule,
               r.reason[0] ? r.reason : "(no reason given)");
  } else if (r.drop) {
    v->drop = 1;
    snprintf(v->message, sizeof v->message, "record of another tenant withheld");
  } else if (r.n_rewrites || r.out) {
    v->rewritten = 1;
    if (r.reason[0]) {
      snprintf(v->message, sizeof v->message, "%s", r.reason);
    } else {
      /* "rewrote Ref, Session, FrontendAttrs[attest:provenance]" */
      size_t w = (size_t)snprintf(v->message, sizeof v->message, "rewrote");
      for (size_t i = 0; i < r.n_rewrites && w < sizeof v->message - 1; i++) {
        int k = snprintf(v->message + w, sizeof v->message - w, "%s %s", i ? "," : "", r.rewrites[i].field);
        if (k < 0)
          break;
        w += (size_t)k;
      }
      if (!r.n_rewrites)
        snprintf(v->message, sizeof v->message, "message rewritten by policy");
    }
    if (r.out && !p->audit_mode) {
      v->data = r.out;
      v->len = r.outlen;
      r.out = NULL;
    }
  }
  bg_inspect_free(&r);
}

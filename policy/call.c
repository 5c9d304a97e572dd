/*
 * call.c: the call glue behind policy.h: connections (tenant binding), calls
 * (method rules, header edits, message inspection) and their audit records.
 *
 * Decisions for one call, in order:
 *   1. :path must be exactly /pkg.Service/Method (INVALID_ARGUMENT otherwise;
 *      enforced in audit mode too: no real client sends such a path, and
 *      letting it through would reach methods no rule looked at).
 *   2. The tenant, by the identity rule (tenant.c): every bearer token the
 *      call carries must be valid (UNAUTHENTICATED) and name the connection's
 *      tenant (PERMISSION_DENIED); a native connection not yet identified is
 *      identified here, by its first call's token or else its transport.
 *   3. The profile's method rule (PERMISSION_DENIED naming rule and method).
 *   4. Header edits: "authorization" is always stripped (the backend never sees
 *      tenant credentials); with isolate, the session UUID of Control.Session
 *      and the build ID of LLBBridge calls are namespaced by tenant.
 *   5. Inspected methods get every request message (size limit, gzip, then the
 *      inspectors in inspect_*.c).
 * In audit mode steps 3-5 compute and record would_deny / would_rewrite and
 * change nothing (the authorization strip still happens: it is hygiene, not a
 * policy decision).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "policy/dispatch.h"
#include "policy/inspect.h"
#include "policy/policy_int.h"
#include "proto/grpc_encoding.h"

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

static void bg_call_set_decision(struct bg_call *call, const char *decision, const char *rule, const char *reason);
static int bg_call_add_rewrite(struct bg_call *call, const char *field, const char *old, const char *neu);
static char *bg_call_audit(struct bg_call *call, int grpc_status, uint64_t bytes_in, uint64_t bytes_out);
static void bg_call_free(struct bg_call *call);
static int wants_messages(const struct bg_call *call, int response);

/* ------------------------------------------------------------ policy refs */

struct bg_policy *bg_policy_ref(struct bg_policy *p)
{
  if (p)
    __atomic_add_fetch(&p->refs, 1, __ATOMIC_ACQ_REL);
  return p;
}

void bg_policy_unref(struct bg_policy *p)
{
  if (p && __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) == 0)
    bg_policy_free(p);
}

const char *bg_policy_mode(const struct bg_policy *p) { return p && p->audit_mode ? "audit" : "enforce"; }

/* ------------------------------------------------------------ connections */

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

static char *conn_audit(const struct bg_policy *p, uint64_t conn_id, const char *peer, const char *door,
                        const char *reason)
{
  struct bg_audit a = {0};
  a.conn_id = conn_id;
  a.peer = peer;
  a.door = door;
  a.decision = "deny";
  a.rule = "tenants";
  a.reason = reason;
  a.grpc_status = BG_GRPC_UNAUTHENTICATED;
  a.mode_audit = p ? p->audit_mode : 0;
  const struct bg_env *env = bg_policy_env(p);
  env->now(env->arg, CLOCK_REALTIME, &a.time);
  return bg_audit_line(&a);
}

static struct bg_conn *conn_new(struct bg_policy *p, const char *door, const char *peer, uint64_t conn_id,
                                const struct bg_backend_facts *facts)
{
  struct bg_conn *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->p = bg_policy_ref(p);
  c->tenant = -1;
  c->how = "";
  c->transport = -1;
  c->transport_how = "";
  c->id = conn_id;
  c->facts = facts;
  c->door = xstrdup(door ? door : "");
  c->peer = xstrdup(peer ? peer : "");
  if (!c->door || !c->peer) {
    bg_conn_close(c);
    return NULL;
  }
  return c;
}

struct bg_conn *bg_conn_open(struct bg_policy *p, const struct bg_identity *id, const char *door,
                             uint64_t conn_id, const struct bg_backend_facts *facts, char **refusal,
                             char **audit_line)
{
  if (refusal)
    *refusal = NULL;
  if (audit_line)
    *audit_line = NULL;
  const char *peer = id && id->peer ? id->peer : "";
  const char *thow = "";
  long transport = p ? bg_tenant_by_transport(p, id, &thow) : -1;
  const char *tok = id ? id->bearer_token : NULL;
  /* A native connection's first call may carry a token, and a token wins
   * (tenant.c): identify it then, not now.  The Docker-style doors have had
   * their only chance to present one in the upgrade request. */
  int deferred = p && p->any_tokens && !tok && door && strcmp(door, "grpc") == 0;
  long t = -1;
  const char *how = "";
  char why[320];
  int rc = 0;
  if (!p) {
    snprintf(why, sizeof why, "no policy loaded");
    rc = BG_GRPC_UNAUTHENTICATED;
  } else if (!deferred) {
    rc = bg_identify(p, -1, NULL, transport, thow, tok, tok ? strlen(tok) : 0, &t, &how, why, sizeof why);
    if (rc && !tok)
      snprintf(why, sizeof why,
               "connection refused: no tenant matches this peer (%s) and the policy has no anonymous tenant",
               peer[0] ? peer : "unknown peer");
    else if (rc)
      snprintf(why, sizeof why, "connection refused: the bearer token matches no tenant");
  }
  if (rc) {
    if (refusal)
      *refusal = strdup(why);
    if (audit_line)
      *audit_line = conn_audit(p, conn_id, peer, door, why);
    return NULL;
  }
  struct bg_conn *c = conn_new(p, door, peer, conn_id, facts);
  if (!c)
    return NULL;
  c->tenant = t;
  c->how = t >= 0 ? how : "";
  c->transport = transport;
  c->transport_how = thow;
  return c;
}

struct bg_conn *bg_conn_open_as_tenant(struct bg_policy *p, const char *tenant, const char *door,
                                       uint64_t conn_id, const struct bg_backend_facts *facts)
{
  long t = p ? bg_tenant_by_name(p, tenant) : -1;
  if (t < 0)
    return NULL;
  struct bg_conn *c = conn_new(p, door, "offline", conn_id, facts);
  if (!c)
    return NULL;
  c->tenant = t;
  c->how = "name";
  return c;
}

void bg_conn_close(struct bg_conn *c)
{
  if (!c)
    return;
  bg_policy_unref(c->p);
  free(c->door);
  free(c->peer);
  free(c);
}

const char *bg_conn_tenant(const struct bg_conn *c)
{
  return c && c->tenant >= 0 ? c->p->tenants[c->tenant].name : "";
}

const char *bg_conn_identified_by(const struct bg_conn *c) { return c && c->tenant >= 0 ? c->how : ""; }

const char *bg_call_tenant(const struct bg_call *call)
{
  return call && call->c && call->tenant >= 0 ? call->c->p->tenants[call->tenant].name : "";
}

/* The SETTINGS frame goes out before a native connection's first call can
 * name its tenant, so until then the limit is the strictest of every tenant
 * the connection may still become: the transport's, and every tenant that
 * accepts tokens. */
unsigned bg_conn_max_streams(const struct bg_conn *c)
{
  if (!c)
    return 0;
  const struct bg_policy *p = c->p;
  if (c->tenant >= 0)
    return p->profiles[p->tenants[c->tenant].profile].max_streams;
  unsigned m = 0;
  for (size_t i = 0; i < p->n_tenants; i++) {
    if ((long)i != c->transport && !p->tenants[i].n_tokens)
      continue;
    unsigned v = p->profiles[p->tenants[i].profile].max_streams;
    if (v && (!m || v < m))
      m = v;
  }
  return m;
}

const struct bg_profile *bg_conn_profile(const struct bg_conn *c)
{
  if (!c || c->tenant < 0)
    return NULL;
  return &c->p->profiles[c->p->tenants[c->tenant].profile];
}

/* ------------------------------------------------------------------ calls */

static void strv_free(char **v, size_t n);

static int hname_is(const struct bg_header *h, const char *name)
{
  size_t n = strlen(name);
  return h->namelen == n && strncasecmp(h->name, name, n) == 0;
}

static char *hvalue(const struct bg_header *h)
{
  char *s = malloc(h->valuelen + 1);
  if (s) {
    memcpy(s, h->value, h->valuelen);
    s[h->valuelen] = '\0';
  }
  return s;
}

/* Add a header edit (the call owns everything). */
static int add_edit(struct bg_call *call, const char *name, char **values, size_t n_values)
{
  if (call->n_edits >= BG_CALL_MAX_EDITS)
    return -1;
  struct bg_header_edit *e = &call->edits[call->n_edits];
  e->name = strdup(name);
  e->values = n_values ? values : NULL;
  e->n_values = n_values;
  if (!e->name)
    return -1;
  call->n_edits++;
  return 0;
}

static void bg_call_set_decision(struct bg_call *call, const char *decision, const char *rule, const char *reason)
{
  /* deny beats rewrite beats allow; the first deny's rule and reason stay. */
  static const char *const rank[] = {"allow", "would_rewrite", "rewrite", "would_deny", "deny", NULL};
  int old = 0, neu = 0;
  for (int i = 0; rank[i]; i++) {
    if (strcmp(rank[i], call->decision) == 0)
      old = i;
    if (strcmp(rank[i], decision) == 0)
      neu = i;
  }
  if (neu < old || (neu == old && call->rule[0]))
    return;
  call->decision = rank[neu];
  snprintf(call->rule, sizeof call->rule, "%s", rule ? rule : "");
  snprintf(call->reason, sizeof call->reason, "%s", reason ? reason : "");
}

static void deny_begin(struct bg_call *call, struct bg_call_decision *out, int status, const char *rule,
                       const char *fmt, const char *a1, const char *a2)
{
  char msg[512];
  snprintf(msg, sizeof msg, fmt, a1, a2);
  call->begin_status = status;
  bg_call_set_decision(call, "deny", rule, msg);
  out->grpc_status = status;
  snprintf(out->message, sizeof out->message, "%s", msg);
  out->inspect_requests = out->inspect_responses = 0;
}

/* The bearer token of "authorization" entry |h|, or NULL: another scheme
 * is not a token buildgate knows, so it identifies nobody (and is stripped
 * like every credential). */
static const char *bearer_of(const struct bg_header *h, size_t *toklen)
{
  const char *v = h->value;
  size_t l = h->valuelen;
  if (l <= 7 || strncasecmp(v, "bearer ", 7) != 0)
    return NULL;
  v += 7;
  l -= 7;
  while (l && *v == ' ') {
    v++;
    l--;
  }
  *toklen = l;
  return v;
}

/* Namespace every value of header |name| with the tenant (isolate). */
static void isolate_header(struct bg_call *call, const struct bg_header *hdrs, size_t n_hdrs, const char *name,
                           const char *field)
{
  size_t cnt = 0;
  for (size_t i = 0; i < n_hdrs; i++)
    if (hname_is(&hdrs[i], name))
      cnt++;
  if (!cnt)
    return;
  const char *tenant = call->c->p->tenants[call->tenant].name;
  char **vals = calloc(cnt, sizeof *vals);
  if (!vals) {
    call->oom = 1;
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < n_hdrs; i++) {
    if (!hname_is(&hdrs[i], name))
      continue;
    char *old = hvalue(&hdrs[i]);
    vals[k] = old ? bg_ns_wrap(tenant, old) : NULL;
    if (old && vals[k])
      bg_call_add_rewrite(call, field, old, vals[k]);
    free(old);
    if (!vals[k])
      break;
    k++;
  }
  if (k == 0 || k < cnt) {
    for (size_t i = 0; i < k; i++)
      free(vals[i]);
    free(vals);
    call->oom = 1;
    return;
  }
  /* the audit record names the session as the client sent it */
  if (strcmp(name, "x-docker-expose-session-uuid") == 0 && !call->session) {
    call->session = bg_ns_unwrap_dup(tenant, vals[0]);
  }
  if (call->c->p->audit_mode) {
    for (size_t i = 0; i < k; i++)
      free(vals[i]);
    free(vals);
    bg_call_set_decision(call, "would_rewrite", "isolate", "tenant namespacing");
    return;
  }
  if (add_edit(call, name, vals, k) < 0) {
    for (size_t i = 0; i < k; i++)
      free(vals[i]);
    free(vals);
    call->oom = 1;
    return;
  }
  bg_call_set_decision(call, "rewrite", "isolate", "tenant namespacing");
}

/* The session's shared key, in the tenant's namespace (isolate).
 *
 * BuildKit keys a local source's reusable snapshot by
 *   <name> ":" <local.sharedkeyhint> ":" <the session's shared key>
 * (source/local/local.go) and syncs only the files whose metadata differ from
 * it, so two sessions with one shared key share a snapshot lineage: one can
 * plant files the other's build then picks up.  The name and the hint are the
 * tenant's to choose and may hold ':', so the key itself must keep the
 * tenants apart: "<tenant>." + the client's value with every byte outside
 * [A-Za-z0-9._-] written as %XX.  It holds no ':', so it is everything after
 * the last ':' of BuildKit's key and two tenants' keys never meet; the same
 * client value still finds its own lineage again.  Set on every
 * Control.Session (and /session) even when the client sent none or an empty
 * one, because "" is the value every buildctl shares. */
static char *derive_shared_key(const char *tenant, const char *v, size_t vl)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t tl = strlen(tenant);
  char *out = malloc(tl + 1 + vl * 3 + 1), *w = out;
  if (!out)
    return NULL;
  memcpy(w, tenant, tl);
  w += tl;
  *w++ = '.';
  for (size_t i = 0; i < vl; i++) {
    unsigned char ch = (unsigned char)v[i];
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
        ch == '_' || ch == '-') {
      *w++ = (char)ch;
    } else {
      *w++ = '%';
      *w++ = hex[ch >> 4];
      *w++ = hex[ch & 15];
    }
  }
  *w = '\0';
  return out;
}

static void isolate_shared_key(struct bg_call *call, const struct bg_header *hdrs, size_t n_hdrs, int inject)
{
  static const char name[] = "x-docker-expose-session-sharedkey";
  const struct bg_header *first = NULL;
  for (size_t i = 0; i < n_hdrs && !first; i++)
    if (hname_is(&hdrs[i], name))
      first = &hdrs[i];
  if (!first && !inject)
    return;
  /* BuildKit reads one value (http.Header.Get after canonicalising): the
   * first.  Every entry is replaced by the one derived from it. */
  const char *tenant = call->c->p->tenants[call->tenant].name;
  char *old = first ? hvalue(first) : NULL;
  char *neu = derive_shared_key(tenant, old ? old : "", old ? strlen(old) : 0);
  char **vals = neu ? calloc(1, sizeof *vals) : NULL;
  if (!vals) {
    free(old);
    free(neu);
    call->oom = 1;
    return;
  }
  bg_call_add_rewrite(call, "metadata.x-docker-expose-session-sharedkey", old, neu);
  free(old);
  vals[0] = neu;
  if (call->c->p->audit_mode) {
    strv_free(vals, 1);
    bg_call_set_decision(call, "would_rewrite", "isolate", "tenant namespacing");
    return;
  }
  if (add_edit(call, name, vals, 1) < 0) {
    strv_free(vals, 1);
    call->oom = 1;
    return;
  }
  bg_call_set_decision(call, "rewrite", "isolate", "tenant namespacing");
}

/* Session exposure: keep only the x-docker-expose-session-grpc-method values
 * the profile's session_methods allow (e.g. no SSH agent forwarding).  The
 * daemon then never asks the client for the others. */
static void filter_session_methods(struct bg_call *call, const struct bg_header *hdrs, size_t n_hdrs)
{
  static const char name[] = "x-docker-expose-session-grpc-method";
  const struct bg_strlist *allow = &call->prof->session_methods;
  size_t cnt = 0, kept = 0, removed = 0;
  for (size_t i = 0; i < n_hdrs; i++)
    if (hname_is(&hdrs[i], name))
      cnt++;
  if (!cnt)
    return;
  char **vals = calloc(cnt, sizeof *vals);
  if (!vals)
    return;
  char rule[160];
  snprintf(rule, sizeof rule, "profiles.%s.session_methods", call->prof->name);
  for (size_t i = 0; i < n_hdrs; i++) {
    if (!hname_is(&hdrs[i], name))
      continue;
    char *v = hvalue(&hdrs[i]);
    if (!v)
      continue;
    if (bg_list_glob(allow, v)) {
      vals[kept++] = v;
    } else {
      bg_call_add_rewrite(call, "metadata.x-docker-expose-session-grpc-method", v, NULL);
      removed++;
      free(v);
    }
  }
  int audit = call->c->p->audit_mode;
  if (removed) {
    char why[200];
    snprintf(why, sizeof why, "%zu exposed session method(s) withheld", removed);
    bg_call_set_decision(call, audit ? "would_rewrite" : "rewrite", rule, why);
  }
  if (removed && !audit && kept == 0) {
    free(vals);
    add_edit(call, name, NULL, 0);
  } else if (!removed || audit || add_edit(call, name, vals, kept) < 0) {
    for (size_t i = 0; i < kept; i++)
      free(vals[i]);
    free(vals);
  }
}

static int bg_call_add_rewrite(struct bg_call *call, const char *field, const char *old, const char *neu)
{
  struct bg_rewrite_rec *nv = realloc(call->rewrites, (call->n_rewrites + 1) * sizeof *nv);
  if (!nv)
    return -1;
  call->rewrites = nv;
  struct bg_rewrite_rec *r = &call->rewrites[call->n_rewrites];
  r->field = xstrdup(field ? field : "");
  r->old = xstrdup(old);
  r->new_ = xstrdup(neu);
  call->n_rewrites++;
  return 0;
}

struct bg_call *bg_call_begin(struct bg_conn *c, const char *path, size_t pathlen,
                              const struct bg_header *hdrs, size_t n_hdrs, struct bg_call_decision *out)
{
  memset(out, 0, sizeof *out);
  struct bg_call *call = calloc(1, sizeof *call);
  if (!call)
    return NULL;
  const struct bg_env *env = bg_policy_env(c ? c->p : NULL);
  env->now(env->arg, CLOCK_MONOTONIC, &call->t0);
  call->c = c;
  call->decision = "allow";
  call->tenant = c ? c->tenant : -1;
  call->how = c ? c->how : "";
  call->encoding = BG_GRPC_ENC_IDENTITY;
  size_t plen = pathlen > BG_MAX_PATH_LEN ? BG_MAX_PATH_LEN : pathlen;
  call->method = malloc(plen + 1);
  if (!call->method) {
    free(call);
    return NULL;
  }
  /* Recorded with non-printable bytes replaced so the audit line stays readable. */
  for (size_t i = 0; i < plen; i++) {
    unsigned char ch = (unsigned char)path[i];
    call->method[i] = ch < 0x20 || ch > 0x7e ? '?' : (char)ch;
  }
  call->method[plen] = '\0';
  out->max_message_bytes = BG_DEFAULT_MAX_MESSAGE_BYTES;

  /* The backend never sees tenant credentials. */
  for (size_t i = 0; i < n_hdrs; i++)
    if (hname_is(&hdrs[i], "authorization")) {
      add_edit(call, "authorization", NULL, 0);
      break;
    }

  char why[200];
  if (bg_path_check(path, pathlen, why, sizeof why) < 0) {
    deny_begin(call, out, BG_GRPC_INVALID_ARGUMENT, "path", "buildgate: %s%s", why, "");
    goto done;
  }
  if (!c) {
    deny_begin(call, out, BG_GRPC_UNAUTHENTICATED, "tenants", "%s%s", "no connection", "");
    goto done;
  }

  /* The identity rule (tenant.c): a presented token decides, a connection
   * is identified once (here, by its first call, when it was left open for
   * a token), and a token for another tenant than the connection's is
   * refused.  Enforced in audit mode too: it says who the call is, not
   * what it may do. */
  {
    /* Every token counts: gRPC clients append call credentials to the
     * connection's, so a call may carry several, and all of them must name
     * the one tenant.  The first identifies a connection still open for a
     * token; each next one is checked against that. */
    long t = c->tenant;
    const char *how = c->how;
    int any_tok = 0;
    char idwhy[320];
    for (size_t i = 0; i < n_hdrs; i++) {
      size_t toklen = 0;
      const char *tok = hname_is(&hdrs[i], "authorization") ? bearer_of(&hdrs[i], &toklen) : NULL;
      if (!tok)
        continue;
      any_tok = 1;
      int rc = bg_identify(c->p, t, how, -1, "", tok, toklen, &t, &how, idwhy, sizeof idwhy);
      if (rc) {
        deny_begin(call, out, rc, "tenants", "buildgate: %s%s", idwhy, "");
        goto done;
      }
    }
    if (!any_tok) {
      int rc = bg_identify(c->p, c->tenant, c->how, c->transport, c->transport_how, NULL, 0, &t, &how, idwhy,
                           sizeof idwhy);
      if (rc) {
        deny_begin(call, out, rc, "tenants", "buildgate: %s%s",
                   "no tenant: send \"authorization: Bearer <token>\" metadata", "");
        goto done;
      }
    }
    if (c->tenant < 0) {
      c->tenant = t;
      c->how = how;
    }
    call->tenant = t;
    call->how = how;
  }
  const struct bg_policy *p = c->p;
  const struct bg_profile *prof = &p->profiles[p->tenants[call->tenant].profile];
  call->prof = prof;
  out->max_message_bytes = prof->max_message_bytes;
  call->m = bg_method_lookup(call->method);

  const char *rule = NULL;
  if (!bg_methods_allow(&prof->methods, call->method, &rule)) {
    char rname[200];
    if (rule)
      snprintf(rname, sizeof rname, "profiles.%s.methods \"%s\"", prof->name, rule);
    else
      snprintf(rname, sizeof rname, "profiles.%s.methods", prof->name);
    char msg[512];
    if (rule)
      snprintf(msg, sizeof msg, "buildgate: method %s denied by rule %s (tenant \"%s\")", call->method, rname,
               p->tenants[call->tenant].name);
    else
      snprintf(msg, sizeof msg, "buildgate: method %s is not allowed by %s (tenant \"%s\"%s)", call->method, rname,
               p->tenants[call->tenant].name, call->m ? "" : "; unknown methods need an explicit pattern");
    if (p->audit_mode) {
      bg_call_set_decision(call, "would_deny", rname, msg);
    } else {
      deny_begin(call, out, BG_GRPC_PERMISSION_DENIED, rname, "%s%s", msg, "");
      goto done;
    }
  }

  /* grpc-encoding: decided here, enforced per compressed message. */
  for (size_t i = 0; i < n_hdrs; i++)
    if (hname_is(&hdrs[i], "grpc-encoding")) {
      size_t l = hdrs[i].valuelen < sizeof call->encname - 1 ? hdrs[i].valuelen : sizeof call->encname - 1;
      memcpy(call->encname, hdrs[i].value, l);
      call->encname[l] = '\0';
      call->encoding = bg_grpc_encoding_parse(hdrs[i].value, hdrs[i].valuelen);
    }

  enum bg_mkind kind = call->m ? call->m->kind : BG_MK_PLAIN;
  call->kind = kind;
  if (prof->isolate && kind == BG_MK_CONTROL_SESSION) {
    /* BuildKit registers a session under its UUID as sent, but looks sessions
     * up after dropping everything up to the first ':' (Manager.Get), so a
     * session registered with a ':' can never be used, by anyone.  Refusing it
     * keeps every registered name "<tenant>.<no colon>", which no other
     * tenant's wrapped lookup can produce (docs/session-names.md). */
    for (size_t i = 0; i < n_hdrs; i++)
      if (hname_is(&hdrs[i], "x-docker-expose-session-uuid") && memchr(hdrs[i].value, ':', hdrs[i].valuelen)) {
        static const char msg[] = "buildgate: X-Docker-Expose-Session-Uuid contains ':': BuildKit drops everything "
                                  "up to the first ':' when it looks a session up, so no build could use it";
        if (p->audit_mode) {
          bg_call_set_decision(call, "would_deny", "isolate", msg);
        } else {
          deny_begin(call, out, BG_GRPC_INVALID_ARGUMENT, "isolate", "%s%s", msg, "");
          goto done;
        }
      }
  }
  if (prof->isolate) {
    /* On every call that carries them, not only the catalogued ones: a method
     * the catalogue does not know yet (allowed by "*") must not become a way
     * to name another tenant's session or build. */
    isolate_header(call, hdrs, n_hdrs, "x-docker-expose-session-uuid", "metadata.x-docker-expose-session-uuid");
    isolate_header(call, hdrs, n_hdrs, "buildkit-controlapi-buildid", "metadata.buildkit-controlapi-buildid");
    isolate_shared_key(call, hdrs, n_hdrs, kind == BG_MK_CONTROL_SESSION);
    if (call->oom) {
      /* Forwarding without the namespaced names would fail open. */
      deny_begin(call, out, BG_GRPC_RESOURCE_EXHAUSTED, "isolate", "%s%s", "buildgate: out of memory", "");
      goto done;
    }
  } else if (kind == BG_MK_CONTROL_SESSION) {
    for (size_t i = 0; i < n_hdrs && !call->session; i++)
      if (hname_is(&hdrs[i], "x-docker-expose-session-uuid"))
        call->session = hvalue(&hdrs[i]);
  }
  if (kind == BG_MK_CONTROL_SESSION && !prof->session_methods_any)
    filter_session_methods(call, hdrs, n_hdrs);
  for (size_t i = 0; i < n_hdrs && !call->ref; i++)
      if (hname_is(&hdrs[i], "buildkit-controlapi-buildid"))
        call->ref = hvalue(&hdrs[i]);

  out->inspect_requests = wants_messages(call, 0);
  out->inspect_responses = wants_messages(call, 1);
  call->inspect_requests = out->inspect_requests;
  call->inspect_responses = out->inspect_responses;

done:
  out->edits = call->edits;
  out->n_edits = call->n_edits;
  return call;
}

/* ------------------------------------------------------------- messages */

/* ------------------------------------------------------- inspection */

/* Does a row of the inspector table (dispatch.c) apply to this call's
 * messages in this direction?  Only then does the gateway hand them over. */
static int row_applies(const struct bg_inspector_row *row, const struct bg_call *call, int response)
{
  return row->kind == call->kind && row->response == response && (!row->when || row->when(call->prof));
}

static int wants_messages(const struct bg_call *call, int response)
{
  if (!call->prof)
    return 0;
  size_t n;
  const struct bg_inspector_row *rows = bg_inspectors(&n);
  for (size_t i = 0; i < n; i++)
    if (row_applies(&rows[i], call, response))
      return 1;
  return 0;
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

/* Fold one inspector's audit details into the call: the first message that
 * names a thing wins; every rewrite is listed. */
static void fold_details(struct bg_call *call, struct bg_inspect *r)
{
  take_str(&call->ref, &r->ref);
  take_str(&call->session, &r->session);
  take_str(&call->frontend, &r->frontend);
  merge_list(&call->exporters, &call->n_exporters, &r->exporters);
  merge_list(&call->entitlements, &call->n_entitlements, &r->entitlements);
  merge_list(&call->sources, &call->n_sources, &r->sources);
  for (size_t i = 0; i < r->n_rewrites; i++)
    bg_call_add_rewrite(call, r->rewrites[i].field, r->rewrites[i].old_value, r->rewrites[i].new_value);
}

/* What one inspector's result means for the message: deny, drop, rewrite or
 * pass, with the rule and message the client and the audit record see.  New
 * bytes move from |r| to |v| (enforce mode only). */
static void verdict_of(const struct bg_call *call, struct bg_inspect *r, struct bg_inspect_verdict *v)
{
  const struct bg_policy *p = call->c->p;
  memset(v, 0, sizeof *v);
  int status = p->audit_mode ? (r->would_deny ? (r->would_status ? r->would_status : BG_GRPC_PERMISSION_DENIED) : 0)
                             : r->grpc_status;
  if (!r->rule[0])
    snprintf(v->rule, sizeof v->rule, "profiles.%s", call->prof->name);
  else if (strcmp(r->rule, "decode") == 0)
    snprintf(v->rule, sizeof v->rule, "%s", r->rule);
  else
    snprintf(v->rule, sizeof v->rule, "profiles.%s.%s", call->prof->name, r->rule);
  if (status) {
    v->deny = 1;
    v->grpc_status = status;
    if (status == BG_GRPC_INVALID_ARGUMENT)
      snprintf(v->message, sizeof v->message, "buildgate: %.100s request could not be decoded: %.360s", call->method,
               r->reason[0] ? r->reason : "malformed message");
    else
      snprintf(v->message, sizeof v->message, "buildgate: denied by rule %.100s: %.380s", v->rule,
               r->reason[0] ? r->reason : "(no reason given)");
  } else if (r->drop) {
    v->drop = 1;
    snprintf(v->message, sizeof v->message, "record of another tenant withheld");
  } else if (r->n_rewrites || r->out) {
    v->rewritten = 1;
    if (r->reason[0]) {
      snprintf(v->message, sizeof v->message, "%s", r->reason);
    } else {
      /* "rewrote Ref, Session, FrontendAttrs[attest:provenance]" */
      size_t w = (size_t)snprintf(v->message, sizeof v->message, "rewrote");
      for (size_t i = 0; i < r->n_rewrites && w < sizeof v->message - 1; i++) {
        int k = snprintf(v->message + w, sizeof v->message - w, "%s %s", i ? "," : "", r->rewrites[i].field);
        if (k < 0)
          break;
        w += (size_t)k;
      }
      if (!r->n_rewrites)
        snprintf(v->message, sizeof v->message, "message rewritten by policy");
    }
    if (r->out && !p->audit_mode) {
      v->data = r->out;
      v->len = r->outlen;
      r->out = NULL;
    }
  }
}

/* The most rows of the table that may apply to one message. */
#define MAX_CHAIN 4

/* Run every inspector row that applies to this message, in table order.  The
 * first denial or drop decides; a rewrite hands its bytes to the next row and
 * stands unless a later row rewrites again.  When any row must wait for
 * backend facts nothing of this evaluation is kept (it runs again, whole,
 * once facts are known); otherwise every row's audit details are folded into
 * the call, in order. */
static void inspect_message(struct bg_call *call, int response, const uint8_t *msg, size_t len,
                            struct bg_inspect_verdict *v)
{
  memset(v, 0, sizeof *v);
  const struct bg_policy *p = call->c->p;
  size_t n;
  const struct bg_inspector_row *rows = bg_inspectors(&n);
  struct bg_inspect rs[MAX_CHAIN];
  size_t nr = 0;
  for (size_t i = 0; i < n && nr < MAX_CHAIN; i++) {
    if (!row_applies(&rows[i], call, response))
      continue;
    struct bg_inspect *r = &rs[nr++];
    bg_inspect_init(r, call->prof, p->tenants[call->tenant].name, p->audit_mode, call->c->facts);
    r->facts_timed_out = call->facts_timed_out;
    r->env = bg_policy_env(p);
    rows[i].fn(r, msg, len);
    if (r->need_facts) {
      for (size_t k = 0; k < nr; k++)
        bg_inspect_free(&rs[k]);
      free(v->data);
      memset(v, 0, sizeof *v);
      v->need_facts = 1;
      return;
    }
    struct bg_inspect_verdict one;
    verdict_of(call, r, &one);
    if (one.deny || one.drop) {
      free(v->data);
      *v = one;
      break;
    }
    if (one.rewritten) {
      if (one.data) {
        free(v->data);
        msg = one.data;
        len = one.len;
      } else {
        one.data = v->data;
        one.len = v->len;
      }
      *v = one;
    }
  }
  for (size_t k = 0; k < nr; k++) {
    fold_details(call, &rs[k]);
    bg_inspect_free(&rs[k]);
  }
}

/* Record a message-level denial; in audit mode the message passes. */
static void msg_deny(struct bg_call *call, struct bg_msg_result *out, int status, const char *rule,
                     const char *msg)
{
  if (call->c && call->c->p->audit_mode) {
    bg_call_set_decision(call, "would_deny", rule, msg);
    out->verdict = BG_MSG_PASS;
    return;
  }
  bg_call_set_decision(call, "deny", rule, msg);
  call->msg_denied = 1;
  out->verdict = BG_MSG_DENY;
  out->grpc_status = status;
  snprintf(out->message, sizeof out->message, "%s", msg);
}

static void on_message(struct bg_call *call, int response, const uint8_t *msg, size_t len, int compressed,
                       struct bg_msg_result *out)
{
  memset(out, 0, sizeof *out);
  out->verdict = BG_MSG_PASS;
  if (!call)
    return;
  if (call->begin_status) {
    /* A denied call never reaches the backend; nothing it sends may either. */
    out->verdict = BG_MSG_DENY;
    out->grpc_status = call->begin_status;
    snprintf(out->message, sizeof out->message, "%s", call->reason);
    return;
  }
  if (!call->prof)
    return;
  if (response ? !call->inspect_responses : !call->inspect_requests)
    return;
  if (call->msg_denied) {
    out->verdict = BG_MSG_DENY;
    out->grpc_status = BG_GRPC_PERMISSION_DENIED;
    snprintf(out->message, sizeof out->message, "%s", call->reason);
    return;
  }
  size_t max = call->prof->max_message_bytes;
  char m[512];
  char rule[160];
  snprintf(rule, sizeof rule, "profiles.%s.limits.max_message_bytes", call->prof->name);
  if (len > max) {
    snprintf(m, sizeof m, "buildgate: %s message of %zu bytes exceeds %s (%zu)", call->method, len, rule, max);
    msg_deny(call, out, BG_GRPC_RESOURCE_EXHAUSTED, rule, m);
    return;
  }
  uint8_t *plain = NULL;
  size_t plainlen = len;
  if (compressed) {
    if (call->encoding == BG_GRPC_ENC_IDENTITY) {
      snprintf(m, sizeof m, "buildgate: compressed message on %s without a grpc-encoding", call->method);
      msg_deny(call, out, BG_GRPC_INVALID_ARGUMENT, "grpc-encoding", m);
      return;
    }
    if (call->encoding == BG_GRPC_ENC_OTHER) {
      snprintf(m, sizeof m, "buildgate: grpc-encoding \"%.40s\" is not accepted on inspected method %s (use identity or gzip)",
               call->encname, call->method);
      msg_deny(call, out, BG_GRPC_UNIMPLEMENTED, "grpc-encoding", m);
      return;
    }
    int too_big = 0;
    if (bg_grpc_gunzip(msg, len, max, &plain, &plainlen, &too_big) < 0) {
      if (too_big) {
        snprintf(m, sizeof m, "buildgate: %s message inflates beyond %s (%zu)", call->method, rule, max);
        msg_deny(call, out, BG_GRPC_RESOURCE_EXHAUSTED, rule, m);
      } else {
        snprintf(m, sizeof m, "buildgate: %s message is not valid gzip", call->method);
        msg_deny(call, out, BG_GRPC_INVALID_ARGUMENT, "grpc-encoding", m);
      }
      return;
    }
    msg = plain;
  }
  struct bg_inspect_verdict v;
  memset(&v, 0, sizeof v);
  inspect_message(call, response, msg, plainlen, &v);
  int audit = call->c->p->audit_mode;
  if (v.need_facts) {
    /* Not a decision: the gateway holds the message and asks again. */
    out->verdict = BG_MSG_WAIT_FACTS;
  } else if (v.deny) {
    msg_deny(call, out, v.grpc_status ? v.grpc_status : BG_GRPC_PERMISSION_DENIED, v.rule, v.message);
  } else if (v.drop) {
    if (audit) {
      bg_call_set_decision(call, "would_rewrite", v.rule, v.message);
    } else {
      bg_call_set_decision(call, "rewrite", v.rule, v.message);
      out->verdict = BG_MSG_DROP;
    }
  } else if (v.rewritten) {
    if (audit || !v.data) {
      bg_call_set_decision(call, audit ? "would_rewrite" : "rewrite", v.rule, v.message);
    } else {
      bg_call_set_decision(call, "rewrite", v.rule, v.message);
      out->verdict = BG_MSG_REPLACE;
      out->data = v.data;
      out->len = v.len;
      v.data = NULL;
    }
  }
  free(v.data);
  free(plain);
}

void bg_call_request(struct bg_call *call, const uint8_t *msg, size_t len, int compressed,
                     struct bg_msg_result *out)
{
  on_message(call, 0, msg, len, compressed, out);
  if (call && out->verdict != BG_MSG_WAIT_FACTS)
    call->n_req++;
}

void bg_call_facts_timeout(struct bg_call *call)
{
  if (call)
    call->facts_timed_out = 1;
}

void bg_call_response(struct bg_call *call, const uint8_t *msg, size_t len, int compressed,
                      struct bg_msg_result *out)
{
  on_message(call, 1, msg, len, compressed, out);
  if (call)
    call->n_resp++;
}

static void strv_free(char **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

static void bg_call_free(struct bg_call *call)
{
  if (!call)
    return;
  for (size_t i = 0; i < call->n_edits; i++) {
    free(call->edits[i].name);
    strv_free(call->edits[i].values, call->edits[i].n_values);
  }
  for (size_t i = 0; i < call->n_rewrites; i++) {
    free(call->rewrites[i].field);
    free(call->rewrites[i].old);
    free(call->rewrites[i].new_);
  }
  free(call->rewrites);
  free(call->method);
  free(call->ref);
  free(call->session);
  free(call->frontend);
  strv_free(call->exporters, call->n_exporters);
  strv_free(call->entitlements, call->n_entitlements);
  strv_free(call->sources, call->n_sources);
  free(call);
}

static char *bg_call_audit(struct bg_call *call, int grpc_status, uint64_t bytes_in, uint64_t bytes_out)
{
  struct bg_conn *c = call->c;
  const struct bg_env *env = bg_policy_env(c ? c->p : NULL);
  struct timespec t1;
  env->now(env->arg, CLOCK_MONOTONIC, &t1);
  struct bg_audit a = {0};
  env->now(env->arg, CLOCK_REALTIME, &a.time);
  a.conn_id = c ? c->id : 0;
  a.tenant = c && call->tenant >= 0 ? c->p->tenants[call->tenant].name : NULL;
  a.identified_by = call->tenant >= 0 ? call->how : NULL;
  a.peer = c ? c->peer : NULL;
  a.door = c ? c->door : NULL;
  a.method = call->method;
  a.decision = call->decision;
  a.rule = call->rule[0] ? call->rule : NULL;
  a.reason = call->reason[0] ? call->reason : NULL;
  a.rewrites = call->rewrites;
  a.n_rewrites = call->n_rewrites;
  a.ref = call->ref;
  a.session = call->session;
  a.frontend = call->frontend;
  a.exporters = (const char *const *)call->exporters;
  a.n_exporters = call->n_exporters;
  a.entitlements = (const char *const *)call->entitlements;
  a.n_entitlements = call->n_entitlements;
  a.sources = (const char *const *)call->sources;
  a.n_sources = call->n_sources;
  a.grpc_status = grpc_status;
  a.bytes_in = bytes_in;
  a.bytes_out = bytes_out;
  a.duration_ms = (double)(t1.tv_sec - call->t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - call->t0.tv_nsec) / 1e6;
  a.mode_audit = c ? c->p->audit_mode : 0;
  return bg_audit_line(&a);
}

void bg_call_end(struct bg_call *call, int grpc_status, const char *grpc_message, uint64_t bytes_from_client,
                 uint64_t bytes_from_backend, char **audit_line)
{
  if (audit_line)
    *audit_line = NULL;
  if (!call)
    return;
  if (audit_line)
    *audit_line = bg_call_audit(call, grpc_status, bytes_from_client, bytes_from_backend);
  bg_call_free(call);
}

/*
 * isolate_bridge.c: tenant namespacing of the session names that LLBBridge
 * lookup calls carry inside their request bodies (isolate = true):
 *
 *   ResolveImageConfigRequest.SessionID (6)      the session whose registry
 *                                                credentials resolve the image
 *   ResolveSourceMetaRequest.Op (1) = SourceOp,  attrs (2) "local.session" and
 *                                                "oci.session" (an OCI layout
 *                                                store in a client session)
 *
 * Without this a tenant could name another tenant's session (its namespaced
 * ID is guessable once known) and borrow its credentials or files; and its
 * own un-namespaced session name would no longer resolve.  The message is
 * first validated against its schema (proto/pbcheck.h: no duplicate
 * SessionID or map key, no field number that Go reads as another, no NUL),
 * then walked with the project's one tokenizer: every other field is copied
 * byte for byte, so fields this file does not know survive untouched.
 *
 * Both are ordinary inspectors (inspect.h), two rows of dispatch.c's table:
 * they return their verdict, rewrites and new bytes in struct bg_inspect and
 * call.c folds them into the call like any other inspector's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/inspect_int.h"
#include "proto/gateway.pb-c.h"
#include "proto/pbcheck.h"
#include "proto/pbtok.h"
#include "proto/pbwire.h"

static char *dupn(const uint8_t *p, size_t n)
{
  char *s = malloc(n + 1);
  if (s) {
    memcpy(s, p, n);
    s[n] = '\0';
  }
  return s;
}

struct wctx {
  struct bg_inspect *r;
  const char *tenant;
  int changed;
  int bad;
};

/* Wrap one name; records the rewrite.  NULL on OOM or an embedded NUL. */
static char *wrap(struct wctx *w, const char *field, const uint8_t *val, size_t vlen)
{
  if (memchr(val, 0, vlen)) {
    w->bad = 1;
    return NULL;
  }
  char *old = dupn(val, vlen);
  char *neu = old ? bg_ns_wrap(w->tenant, old) : NULL;
  if (neu) {
    bg_inspect_add_rewrite(w->r, field, old, neu);
    w->changed = 1;
  }
  free(old);
  return neu;
}

/* SourceOp: rewrite attrs (2) entries local.session / oci.session. */
static int source_op(struct wctx *w, const uint8_t *p, size_t len, struct bg_pbuf *o)
{
  struct bg_pbtok t;
  struct bg_pbfield f;
  int rv;
  bg_pbtok_init(&t, p, len);
  while ((rv = bg_pbtok_next(&t, &f)) != 0) {
    if (rv < 0)
      return -1;
    if (f.num != 2 || f.wt != 2) {
      bg_pbuf_put(o, p + f.start, f.end - f.start);
      continue;
    }
    /* map entry: key 1, value 2 */
    const uint8_t *key = NULL, *val = NULL;
    size_t klen = 0, vlen = 0;
    struct bg_pbtok et;
    struct bg_pbfield e;
    bg_pbtok_init(&et, f.val, f.vlen);
    while ((rv = bg_pbtok_next(&et, &e)) != 0) {
      if (rv < 0)
        return -1;
      if (e.num == 1 && e.wt == 2) {
        key = e.val;
        klen = e.vlen;
      } else if (e.num == 2 && e.wt == 2) {
        val = e.val;
        vlen = e.vlen;
      }
    }
    int is_session = key && ((klen == 13 && memcmp(key, "local.session", 13) == 0) ||
                             (klen == 11 && memcmp(key, "oci.session", 11) == 0));
    if (!is_session || !val || vlen == 0) {
      bg_pbuf_put(o, p + f.start, f.end - f.start);
      continue;
    }
    char field[64];
    memcpy(field, "Op.attrs[", 9);
    memcpy(field + 9, key, klen);
    memcpy(field + 9 + klen, "]", 2);
    char *neu = wrap(w, field, val, vlen);
    if (!neu)
      return -1;
    struct bg_pbuf ent = {0};
    bg_pbuf_bytes(&ent, 1, key, klen);
    bg_pbuf_bytes(&ent, 2, neu, strlen(neu));
    free(neu);
    if (ent.oom) {
      free(ent.b);
      return -1;
    }
    bg_pbuf_bytes(o, 2, ent.b, ent.n);
    free(ent.b);
  }
  return 0;
}

/* Unknown fields: the SourceOp and Platform inside are LLB, refused unless
 * the profile leaves LLB unrestricted (as in the inspectors). */
static int llb_unknown(void *arg, const struct bg_pbcheck_unknown *u)
{
  const struct bg_profile *prof = arg;
  return !bg_llb_unknown_allowed(prof) && u->msg->package_name && strcmp(u->msg->package_name, "pb") == 0;
}

/* Refuse the message as undecodable: INVALID_ARGUMENT, rule "decode".  Like
 * every other decode refusal it is recorded as would_deny in audit mode. */
static int undecodable(struct bg_inspect *r, const char *why)
{
  snprintf(r->rule, sizeof r->rule, "decode");
  snprintf(r->reason, sizeof r->reason, "%.199s", why); /* as long as it always was */
  if (r->audit_only) {
    r->would_deny = 1;
    r->would_status = BG_GRPC_INVALID_ARGUMENT;
  } else {
    r->grpc_status = BG_GRPC_INVALID_ARGUMENT;
  }
  return r->grpc_status;
}

/* resolve_source: the message is a ResolveSourceMetaRequest, else a
 * ResolveImageConfigRequest. */
static int isolate_request(struct bg_inspect *r, int resolve_source, const uint8_t *msg, size_t len)
{
  struct bg_pbcheck_opts opts = {.on_unknown = llb_unknown, .arg = (void *)r->prof};
  struct bg_pbcheck_result res;
  if (bg_pbcheck(resolve_source ? &moby__buildkit__v1__frontend__resolve_source_meta_request__descriptor
                                : &moby__buildkit__v1__frontend__resolve_image_config_request__descriptor,
                 msg, len, &opts, &res) != BG_PBCHECK_OK)
    return undecodable(r, res.msg);
  struct wctx w = {r, r->tenant, 0, 0};
  struct bg_pbuf o = {0};
  struct bg_pbtok t;
  struct bg_pbfield f;
  int rv;
  bg_pbtok_init(&t, msg, len);
  while ((rv = bg_pbtok_next(&t, &f)) != 0) {
    if (rv < 0)
      goto bad;
    if (!resolve_source && f.num == 6 && f.wt == 2 && f.vlen) {
      char *neu = wrap(&w, "SessionID", f.val, f.vlen);
      if (!neu)
        goto bad;
      bg_pbuf_bytes(&o, 6, neu, strlen(neu));
      free(neu);
    } else if (resolve_source && f.num == 1 && f.wt == 2) {
      struct bg_pbuf sub = {0};
      if (source_op(&w, f.val, f.vlen, &sub) < 0) {
        free(sub.b);
        goto bad;
      }
      bg_pbuf_bytes(&o, 1, sub.b, sub.n);
      free(sub.b);
    } else {
      bg_pbuf_put(&o, msg + f.start, f.end - f.start);
    }
  }
  if (o.oom)
    goto bad;
  if (!w.changed || r->audit_only) {
    /* audit mode: the rewrites are listed, the message goes as it came */
    free(o.b);
    if (w.changed) {
      snprintf(r->rule, sizeof r->rule, "isolate");
      snprintf(r->reason, sizeof r->reason, "tenant namespacing of session names");
    }
    return 0;
  }
  r->out = o.b ? o.b : calloc(1, 1);
  r->outlen = o.n;
  snprintf(r->rule, sizeof r->rule, "isolate");
  snprintf(r->reason, sizeof r->reason, "tenant namespacing of session names");
  return 0;
bad:
  /* The schema check passed, so only memory (or an embedded NUL the check
   * would have refused first) gets here: forwarding the names unwrapped
   * would fail open. */
  free(o.b);
  return undecodable(r, "");
}

int bg_isolate_resolve_image_config(struct bg_inspect *r, const uint8_t *msg, size_t len)
{
  return isolate_request(r, 0, msg, len);
}

int bg_isolate_resolve_source_meta(struct bg_inspect *r, const uint8_t *msg, size_t len)
{
  return isolate_request(r, 1, msg, len);
}

/*
 * inspect_core.c: arena allocator, decision/rewrite bookkeeping, string map
 * helpers and entitlement matching shared by the inspectors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/inspect_int.h"
#include "proto/pbcheck.h"

/* ---- arena ---------------------------------------------------------------- */

struct bg_arena_chunk {
  struct bg_arena_chunk *next;
  size_t size, used;
  max_align_t data[];
};

#define BG_ARENA_CHUNK (64 * 1024)

static void *pc_alloc(void *data, size_t n) { return bg_arena_alloc(data, n); }
static void pc_free(void *data, void *p) { (void)data, (void)p; }

void bg_arena_init(struct bg_arena *a)
{
  a->head = NULL;
  a->bytes = a->peak = 0;
  a->pc.alloc = pc_alloc;
  a->pc.free = pc_free;
  a->pc.allocator_data = a;
}

void bg_arena_destroy(struct bg_arena *a)
{
  a->bytes = 0;
  while (a->head) {
    struct bg_arena_chunk *n = a->head->next;
    free(a->head);
    a->head = n;
  }
}

void *bg_arena_alloc(struct bg_arena *a, size_t n)
{
  const size_t al = sizeof(max_align_t);
  n = (n + al - 1) / al * al;
  if (n == 0)
    n = al;
  struct bg_arena_chunk *h = a->head;
  if (!h || h->size - h->used < n) {
    size_t sz = n > BG_ARENA_CHUNK / 4 ? n : BG_ARENA_CHUNK;
    struct bg_arena_chunk *c = malloc(sizeof *c + sz);
    if (!c)
      return NULL;
    c->size = sz;
    c->used = 0;
    a->bytes += sz;
    if (a->bytes > a->peak)
      a->peak = a->bytes;
    if (h && n > BG_ARENA_CHUNK / 4) {
      /* big block: keep the current chunk on top for small allocations */
      c->next = h->next;
      h->next = c;
      c->used = n;
      return c->data;
    }
    c->next = h;
    a->head = h = c;
  }
  void *p = (char *)h->data + h->used;
  h->used += n;
  return p;
}

char *bg_arena_strdup(struct bg_arena *a, const char *s)
{
  size_t n = strlen(s) + 1;
  char *d = bg_arena_alloc(a, n);
  if (d)
    memcpy(d, s, n);
  return d;
}

struct bg_arena_mark bg_arena_mark(struct bg_arena *a)
{
  struct bg_arena_mark m = {a->head, a->head ? a->head->used : 0};
  return m;
}

void bg_arena_reset(struct bg_arena *a, struct bg_arena_mark m)
{
  /* Chunks pushed after the mark are freed.  A big block linked below the
   * marked head is freed too if it was added after the mark: we cannot tell,
   * so big blocks simply stay until bg_arena_destroy (they are rare). */
  while (a->head && a->head != m.head) {
    struct bg_arena_chunk *n = a->head->next;
    a->bytes -= a->head->size;
    free(a->head);
    a->head = n;
  }
  if (a->head)
    a->head->used = m.used;
}

/* ---- decisions -------------------------------------------------------------- */

/* ${tenant} in llb.sources: point c->p at a per-call view with the patterns
 * expanded.  A pattern "docker-image://docker.io/${tenant}/..." lets each
 * tenant name its own images (and, with registry patterns, nothing else): the
 * same source rules then hold for LLB sources and for the sources frontend
 * attrs name. */
static void profile_view(struct bg_ictx *c)
{
  const struct bg_profile *p = c->p;
  if (!p || p->llb_any || !c->r->tenant)
    return;
  int templated = 0;
  for (size_t i = 0; i < p->llb_sources.n && !templated; i++)
    templated = strstr(p->llb_sources.v[i], "${tenant}") != NULL;
  if (!templated)
    return;
  char **v = bg_arena_alloc(&c->arena, p->llb_sources.n * sizeof *v);
  if (!v)
    return; /* patterns stay literal: "${tenant}" then matches nothing */
  for (size_t i = 0; i < p->llb_sources.n; i++) {
    char *x = bg_expand_tenant(p->llb_sources.v[i], c->r->tenant);
    v[i] = x ? bg_arena_strdup(&c->arena, x) : NULL;
    free(x);
    if (!v[i])
      return;
  }
  c->pview = *p;
  c->pview.llb_sources.v = v;
  c->pview.llb_sources.n = p->llb_sources.n;
  c->p = &c->pview;
}

void bg_ictx_init(struct bg_ictx *c, struct bg_inspect *r)
{
  memset(c, 0, sizeof *c);
  c->r = r;
  c->p = r->prof;
  bg_arena_init(&c->arena);
  profile_view(c);
  snprintf(c->who, sizeof c->who, "tenant %s (profile %s)", r->tenant ? r->tenant : "?",
           r->prof && r->prof->name ? r->prof->name : "?");
}

void bg_ictx_done(struct bg_ictx *c)
{
  if (c->arena.peak > c->r->decode_peak)
    c->r->decode_peak = c->arena.peak;
  bg_arena_destroy(&c->arena);
}

const char *bg_ictx_who(struct bg_ictx *c) { return c->who; }

int bg_ictx_deny(struct bg_ictx *c, int status, const char *rule, const char *fmt, ...)
{
  struct bg_inspect *r = c->r;
  if (r->grpc_status || r->would_deny)
    return 1; /* first violation wins */
  snprintf(r->rule, sizeof r->rule, "%s", rule);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->reason, sizeof r->reason, fmt, ap);
  va_end(ap);
  if (r->audit_only) {
    r->would_deny = 1;
    r->would_status = status;
  } else {
    r->grpc_status = status;
    c->stop = 1;
  }
  return 1;
}

int bg_ictx_bad(struct bg_ictx *c, const char *what)
{
  /* An undecodable message is refused even in audit mode: it cannot be
   * forwarded as "what the policy saw". */
  struct bg_inspect *r = c->r;
  if (c->stop)
    return 1; /* the verdict (often a more precise bg_ictx_check refusal) stands */
  r->grpc_status = BG_GRPC_INVALID_ARGUMENT;
  r->would_deny = 0;
  snprintf(r->rule, sizeof r->rule, "decode");
  snprintf(r->reason, sizeof r->reason, "cannot decode %s", what);
  c->stop = 1;
  return 1;
}

/* ---- validation before decoding ------------------------------------------------ */

struct unknown_llb {
  int allowed;
  int llb;         /* the first one is in LLB (package pb) */
  char first[240]; /* the first one met, for the denial */
};

/* Messages whose unknown fields the gate must judge: all of LLB (package
 * pb), source policies, and the requests that carry powers next to their
 * LLB.  The schemas in proto/ declare every field BuildKit v0.8..v0.13 gives
 * these, so an unknown one is newer than the gate (SolveRequest 16, 17, ...)
 * and may carry a power it cannot see.  Other messages (history events,
 * InfoResponse) keep their unknown fields: they grant nothing. */
static int unknown_is_judged(const ProtobufCMessageDescriptor *d)
{
  static const char *const judged[] = {
      "moby.buildkit.v1.SolveRequest",          "moby.buildkit.v1.CacheOptions",
      "moby.buildkit.v1.CacheOptionsEntry",     "moby.buildkit.v1.Exporter",
      "moby.buildkit.v1.frontend.SolveRequest", "moby.buildkit.v1.frontend.NewContainerRequest",
      "moby.buildkit.v1.frontend.InitMessage",
  };
  if (!d->package_name)
    return 0;
  if (strcmp(d->package_name, "pb") == 0 || strcmp(d->package_name, "moby.buildkit.v1.sourcepolicy") == 0)
    return 1;
  for (size_t i = 0; i < sizeof judged / sizeof *judged; i++)
    if (strcmp(d->name, judged[i]) == 0)
      return 1;
  return 0;
}

/* Accept every unknown field while walking (the walk must finish: malformed
 * bytes are refused first, and audit mode goes on after a denial) and
 * remember the first one in a judged message. */
static int note_unknown(void *arg, const struct bg_pbcheck_unknown *u)
{
  struct unknown_llb *x = arg;
  if (x->allowed || x->first[0] || !unknown_is_judged(u->msg))
    return 0;
  x->llb = strcmp(u->msg->package_name, "pb") == 0;
  if (u->enum_field)
    snprintf(x->first, sizeof x->first, "%.120s: value %lld of %.40s.%.40s", u->path, (long long)u->value,
             u->msg->name, u->enum_field->name);
  else
    snprintf(x->first, sizeof x->first, "%.160s: field %u of %.60s", u->path, (unsigned)u->num, u->msg->name);
  return 0;
}

int bg_ictx_check(struct bg_ictx *c, const ProtobufCMessageDescriptor *d, const uint8_t *msg, size_t len,
                  const char *where)
{
  if (c->stop)
    return 0;
  struct unknown_llb x = {bg_llb_unknown_allowed(c->p), 0, ""};
  struct bg_pbcheck_opts o = {.on_unknown = note_unknown, .arg = &x};
  struct bg_pbcheck_result res;
  if (bg_pbcheck(d, msg, len, &o, &res) != BG_PBCHECK_OK) {
    struct bg_inspect *r = c->r;
    int oom = res.err == BG_PBCHECK_ENOMEM;
    r->grpc_status = oom ? BG_GRPC_RESOURCE_EXHAUSTED : BG_GRPC_INVALID_ARGUMENT;
    r->would_deny = 0;
    snprintf(r->rule, sizeof r->rule, "%s", oom ? "internal" : "decode");
    snprintf(r->reason, sizeof r->reason, "%.100s%s%.290s", where ? where : "", where ? ": " : "", res.msg);
    c->stop = 1;
    return 0;
  }
  if (x.first[0])
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, x.llb ? "llb_unknown" : "unknown_field",
                 "%s%s%s is unknown to the gateway; not allowed for %s (llb.unknown is \"deny\")", where ? where : "",
                 where ? ": " : "", x.first, bg_ictx_who(c));
  return !c->stop;
}

void *bg_ictx_unpack(struct bg_ictx *c, const ProtobufCMessageDescriptor *d, const uint8_t *msg, size_t len,
                  const char *where)
{
  if (!bg_ictx_check(c, d, msg, len, where))
    return NULL;
  void *m = protobuf_c_message_unpack(d, &c->arena.pc, len, msg);
  if (!m) {
    char what[200];
    snprintf(what, sizeof what, "%.100s%s%s", where ? where : "", where ? ": " : "", d->name);
    bg_ictx_bad(c, what);
  }
  return m;
}

#define BG_MAX_REWRITES 256

void bg_ictx_rewrite(struct bg_ictx *c, const char *field, const char *oldv, const char *newv)
{
  c->changed = 1;
  bg_inspect_add_rewrite(c->r, field, oldv, newv);
}

void bg_inspect_add_rewrite(struct bg_inspect *r, const char *field, const char *oldv, const char *newv)
{
  if (r->n_rewrites >= BG_MAX_REWRITES)
    return;
  if (r->n_rewrites % 16 == 0) {
    struct bg_rewrite *nv = realloc(r->rewrites, (r->n_rewrites + 16) * sizeof *nv);
    if (!nv)
      return;
    r->rewrites = nv;
  }
  struct bg_rewrite *w = &r->rewrites[r->n_rewrites++];
  w->field = strdup(field);
  w->old_value = oldv ? strdup(oldv) : NULL;
  w->new_value = newv ? strdup(newv) : NULL;
}

/* protobuf-c accepts an over-long encoding of field number 0 and keeps it as
 * an unknown field, which it would then re-emit as a bare 0x00 tag that no
 * decoder (Go's included) accepts.  Before re-encoding, walk the decoded tree
 * and refuse such messages as undecodable. */
int bg_msg_valid(const ProtobufCMessage *m, int depth)
{
  if (!m)
    return 1;
  if (depth > 64)
    return 0;
  for (unsigned i = 0; i < m->n_unknown_fields; i++)
    if (m->unknown_fields[i].tag == 0)
      return 0;
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->type != PROTOBUF_C_TYPE_MESSAGE)
      continue;
    const char *base = (const char *)m;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(base + f->quantifier_offset);
      ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)(base + f->offset);
      for (size_t k = 0; k < n; k++)
        if (!bg_msg_valid(v[k], depth + 1))
          return 0;
    } else {
      const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)(base + f->offset);
      if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t cs = *(const uint32_t *)(base + f->quantifier_offset);
        if (cs != f->id)
          continue;
      }
      if (!bg_msg_valid(sub, depth + 1))
        return 0;
    }
  }
  return 1;
}

void bg_ictx_finish(struct bg_ictx *c, const ProtobufCMessage *m)
{
  struct bg_inspect *r = c->r;
  if (!c->changed || r->grpc_status || r->audit_only || r->would_deny)
    return;
  if (!bg_msg_valid(m, 0)) {
    bg_ictx_bad(c, "message (field number 0)");
    return;
  }
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) {
    r->grpc_status = BG_GRPC_RESOURCE_EXHAUSTED;
    snprintf(r->rule, sizeof r->rule, "internal");
    snprintf(r->reason, sizeof r->reason, "out of memory re-encoding the message");
    return;
  }
  r->outlen = protobuf_c_message_pack(m, buf);
  r->out = buf;
}

/* ---- public lifecycle ------------------------------------------------------- */

void bg_inspect_init(struct bg_inspect *r, const struct bg_profile *prof, const char *tenant,
                     int audit_only, const struct bg_backend_facts *facts)
{
  memset(r, 0, sizeof *r);
  r->prof = prof;
  r->tenant = tenant;
  r->audit_only = audit_only;
  r->facts = facts;
}

static void strlist_free(struct bg_strlist *l)
{
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

void bg_inspect_free(struct bg_inspect *r)
{
  for (size_t i = 0; i < r->n_rewrites; i++) {
    free(r->rewrites[i].field);
    free(r->rewrites[i].old_value);
    free(r->rewrites[i].new_value);
  }
  free(r->rewrites);
  r->rewrites = NULL;
  r->n_rewrites = 0;
  free(r->out);
  r->out = NULL;
  r->outlen = 0;
  free(r->ref);
  free(r->session);
  free(r->frontend);
  r->ref = r->session = r->frontend = NULL;
  strlist_free(&r->exporters);
  strlist_free(&r->entitlements);
  strlist_free(&r->sources);
}

/* ---- lists ------------------------------------------------------------------ */

int bg_list_has(const struct bg_strlist *l, const char *s)
{
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->v[i], s) == 0)
      return 1;
  return 0;
}

int bg_list_glob(const struct bg_strlist *l, const char *s)
{
  for (size_t i = 0; i < l->n; i++)
    if (bg_glob_match(l->v[i], s))
      return 1;
  return 0;
}

void bg_strlist_add(struct bg_strlist *l, const char *s, size_t cap)
{
  if (l->n >= cap || bg_list_has(l, s))
    return;
  char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
  if (!nv)
    return;
  l->v = nv;
  if ((l->v[l->n] = strdup(s)))
    l->n++;
}

/* Entitlement names: "network.host", "security.insecure", "device" (all
 * devices) and "device=<name>[,alias=<a>]".  A profile grants with "*", the
 * exact name, a glob over the name ("network.*"), "device" (every device form)
 * or "device=<glob>" (device=<name> forms whose name matches). */
int bg_entitlement_granted(const struct bg_profile *p, const char *ent)
{
  int is_dev = strcmp(ent, "device") == 0 || strncmp(ent, "device=", 7) == 0;
  char name[256] = "";
  if (strncmp(ent, "device=", 7) == 0) {
    size_t n = strcspn(ent + 7, ",");
    if (n >= sizeof name)
      n = sizeof name - 1;
    memcpy(name, ent + 7, n);
    name[n] = 0;
  }
  for (size_t i = 0; i < p->entitlements.n; i++) {
    const char *g = p->entitlements.v[i];
    if (strcmp(g, "*") == 0 || strcmp(g, ent) == 0)
      return 1;
    if (is_dev) {
      if (strcmp(g, "device") == 0)
        return 1;
      if (strncmp(g, "device=", 7) == 0 && name[0] && bg_glob_match(g + 7, name))
        return 1;
    } else if (bg_glob_match(g, ent)) {
      return 1;
    }
  }
  return 0;
}

/* ---- string maps -------------------------------------------------------------- */

const char *bg_smap_get(struct bg_smap m, const char *key)
{
  const char *v = NULL;
  for (size_t i = 0; i < *m.n; i++)
    if ((*m.v)[i]->key && strcmp((*m.v)[i]->key, key) == 0)
      v = (*m.v)[i]->value;
  return v;
}

void bg_smap_remove_at(struct bg_smap m, size_t i)
{
  memmove(&(*m.v)[i], &(*m.v)[i + 1], (*m.n - i - 1) * sizeof **m.v);
  (*m.n)--;
}

void bg_smap_append(struct bg_ictx *c, struct bg_smap m, const char *key, const char *value)
{
  struct bg_kv_entry *e = bg_arena_alloc(&c->arena, m.entry_desc->sizeof_message);
  struct bg_kv_entry **nv = bg_arena_alloc(&c->arena, (*m.n + 1) * sizeof *nv);
  if (!e || !nv)
    return;
  protobuf_c_message_init(m.entry_desc, e);
  e->key = bg_arena_strdup(&c->arena, key);
  e->value = bg_arena_strdup(&c->arena, value);
  if (*m.n)
    memcpy(nv, *m.v, *m.n * sizeof *nv);
  nv[*m.n] = e;
  *m.v = nv;
  (*m.n)++;
}

void bg_smap_set(struct bg_ictx *c, struct bg_smap m, const char *key, const char *value)
{
  for (size_t i = *m.n; i-- > 0;)
    if (strcmp((*m.v)[i]->key, key) == 0)
      bg_smap_remove_at(m, i);
  bg_smap_append(c, m, key, value);
}

/* Entry by entry, in order.  A map compared by lookups is one-sided: with a
 * duplicated key on one side, {name:x, name:x} "equals" {name:x, store:false}
 * when only the first side's keys are looked up in the second.  Equal
 * sequences are equal maps to every reader, Go's last-wins included. */
int bg_smap_equal(struct bg_smap a, struct bg_smap b)
{
  if (*a.n != *b.n)
    return 0;
  for (size_t i = 0; i < *a.n; i++) {
    const struct bg_kv_entry *x = (*a.v)[i], *y = (*b.v)[i];
    if (strcmp(x->key, y->key) != 0 || strcmp(x->value, y->value) != 0)
      return 0;
  }
  return 1;
}

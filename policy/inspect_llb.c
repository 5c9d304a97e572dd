/*
 * inspect_llb.c: LLB checks.  Every Op of a Definition is decoded (arena
 * allocator, reset after each op, so a 10,000-op graph costs no mallocs
 * beyond a few arena chunks) and checked against the profile:
 *
 *   exec   network UNSET/HOST/NONE = sandbox/host/none vs llb.network;
 *          security SANDBOX/INSECURE = sandbox/insecure vs llb.security;
 *          mounts: bind/cache/tmpfs always, secret/ssh only if in llb.mounts
 *          (secretenv, secrets as environment variables, counts as secret);
 *          unknown enum values are refused.  Entitlement consistency, even
 *          with llb_any: host needs network.host, insecure needs
 *          security.insecure, every CDI device needs a device grant.
 *   source identifier vs llb.sources (globs over the whole identifier, e.g.
 *          "docker-image://docker.io/library/" + star); attrs: see
 *          inspect_source_attrs.
 *   build  BuildOp loads an LLB file out of a snapshot at run time, which the
 *          gateway cannot see: refused unless llb_any.
 *   file, merge, diff: no powers of their own.
 *   An op whose kind is unknown to our schema (an unknown field numbered 2..9,
 *   e.g. v0.31 passthrough) is refused unless llb_any.
 *
 * Isolation: local.session / oci.session source attrs are namespaced.  That
 * changes the op's bytes and so its digest, which other ops name in their
 * inputs and Definition.metadata names as keys: the graph is re-keyed
 * (sha256 of the new bytes, inputs and metadata keys updated, repeated until
 * stable so any op order works).  Definition.Source.locations (debug source
 * mapping, undeclared) keeps old digests: only error source-mapping suffers.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/inspect_int.h"

/* "<fld>.def[<idx>]" (idx >= 0) or fld, formatted only when a message needs it. */
const char *bg_op_field(char *buf, size_t n, const char *fld, long idx)
{
  if (idx < 0)
    return fld;
  snprintf(buf, n, "%s.def[%ld]", fld, idx);
  return buf;
}
#define FIELD bg_op_field(fb_, sizeof fb_, fld, idx)

static const char *netname(int m)
{
  switch (m) {
  case PB__NET_MODE__UNSET: return "sandbox";
  case PB__NET_MODE__HOST: return "host";
  case PB__NET_MODE__NONE: return "none";
  default: return NULL;
  }
}

void inspect_network(struct ictx *c, int mode, const char *fld, long idx)
{
  char fb_[340];
  const struct bg_profile *p = c->p;
  const char *n = netname(mode);
  if (!n) {
    ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_network", "%s: unknown network mode %d for %s", FIELD, mode,
              ictx_who(c));
    return;
  }
  if (!p->llb_any && !bg_list_has(&p->llb_network, n)) {
    ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_network", "%s: network mode %s is not allowed for %s", FIELD, n,
              ictx_who(c));
    return;
  }
  if (mode == PB__NET_MODE__HOST && !bg_entitlement_granted(p, "network.host"))
    ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "entitlements",
              "%s: network mode host needs entitlement network.host, which is not granted to %s", FIELD,
              ictx_who(c));
}

void inspect_security(struct ictx *c, int mode, const char *fld, long idx)
{
  char fb_[340];
  const struct bg_profile *p = c->p;
  const char *n = mode == PB__SECURITY_MODE__SANDBOX ? "sandbox" : mode == PB__SECURITY_MODE__INSECURE ? "insecure" : NULL;
  if (!n) {
    ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_security", "%s: unknown security mode %d for %s", FIELD, mode,
              ictx_who(c));
    return;
  }
  if (!p->llb_any && !bg_list_has(&p->llb_security, n)) {
    ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_security", "%s: security mode %s is not allowed for %s", FIELD,
              n, ictx_who(c));
    return;
  }
  if (mode == PB__SECURITY_MODE__INSECURE && !bg_entitlement_granted(p, "security.insecure"))
    ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "entitlements",
              "%s: security mode insecure needs entitlement security.insecure, which is not granted to %s", FIELD,
              ictx_who(c));
}

void inspect_mount_type(struct ictx *c, int type, const char *fld, long idx)
{
  char fb_[340];
  const char *n;
  switch (type) {
  case PB__MOUNT_TYPE__BIND:
  case PB__MOUNT_TYPE__CACHE:
  case PB__MOUNT_TYPE__TMPFS:
    return;
  case PB__MOUNT_TYPE__SECRET: n = "secret"; break;
  case PB__MOUNT_TYPE__SSH: n = "ssh"; break;
  default:
    if (!c->p->llb_any)
      ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_mounts", "%s: unknown mount type %d for %s", FIELD, type,
                ictx_who(c));
    return;
  }
  if (!c->p->llb_any && !bg_list_has(&c->p->llb_mounts, n))
    ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_mounts", "%s: %s mounts are not allowed for %s", FIELD, n,
              ictx_who(c));
}

void inspect_source_ident(struct ictx *c, const char *ident, const char *fld, long idx)
{
  char fb_[340];
  bg_strlist_add(&c->r->sources, ident, 64);
  if (c->p->llb_any)
    return;
  if (!strstr(ident, "://")) {
    ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_sources", "%s: source \"%s\" has no scheme (%s)", FIELD, ident,
              ictx_who(c));
    return;
  }
  if (!bg_list_glob(&c->p->llb_sources, ident))
    ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_sources", "%s: source \"%s\" is not allowed for %s", FIELD, ident,
              ictx_who(c));
}

/* Source attrs that carry power (solver/pb/attr.go):
 *   local.session, oci.session   a session ID: namespaced when isolate (so a
 *                                tenant can only name its own sessions);
 *   git.mountsshsock             forwards the client's SSH agent: needs "ssh"
 *                                in llb.mounts;
 *   git.authtokensecret,
 *   git.authheadersecret         read a secret from the session: need "secret";
 *   http.header.*, oci.store, local.sharedkeyhint, image.resolvemode: allowed —
 *   they only act on the caller's own session/store or its own request.
 * With llb_any only the session namespacing applies. */
int inspect_source_attrs(struct ictx *c, struct bg_smap m, const char *field, int apply)
{
  int ch = 0;
  char f[600];
  for (size_t i = 0; i < *m.n && !c->stop; i++) {
    struct bg_kv_entry *e = (*m.v)[i];
    const char *k = e->key;
    if (strcmp(k, "local.session") == 0 || strcmp(k, "oci.session") == 0) {
      if (!c->p->isolate || !e->value[0])
        continue;
      ch = 1;
      if (!apply)
        continue;
      char *w = bg_ns_wrap(c->r->tenant, e->value);
      if (!w)
        continue;
      snprintf(f, sizeof f, "%s[%s]", field, k);
      ictx_rewrite(c, f, e->value, w);
      e->value = bg_arena_strdup(&c->arena, w);
      free(w);
    } else if (!c->p->llb_any && strcmp(k, "git.mountsshsock") == 0) {
      if (!bg_list_has(&c->p->llb_mounts, "ssh"))
        ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_source_attrs",
                  "%s: source attr %s forwards the SSH agent, and ssh is not allowed for %s", field, k, ictx_who(c));
    } else if (!c->p->llb_any && (strcmp(k, "git.authtokensecret") == 0 || strcmp(k, "git.authheadersecret") == 0)) {
      if (!bg_list_has(&c->p->llb_mounts, "secret"))
        ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_source_attrs",
                  "%s: source attr %s reads a secret, and secrets are not allowed for %s", field, k, ictx_who(c));
    }
  }
  return ch;
}

#define SRC_ATTRS(s) BG_SMAP(&(s)->n_attrs, &(s)->attrs, &pb__source_op__attrs_entry__descriptor)

/* Returns 1 when the op needs a rewrite (session namespacing). */
static int check_op(struct ictx *c, Pb__Op *op, const char *fld, long idx)
{
  const struct bg_profile *p = c->p;
  char fb_[340];
  switch (op->op_case) {
  case PB__OP__OP_EXEC: {
    Pb__ExecOp *e = op->exec;
    inspect_network(c, e->network, fld, idx);
    inspect_security(c, e->security, fld, idx);
    for (size_t i = 0; i < e->n_mounts && !c->stop; i++)
      inspect_mount_type(c, e->mounts[i]->mounttype, fld, idx);
    if (e->n_secretenv && !c->stop) /* secrets as env vars: same power as a secret mount */
      inspect_mount_type(c, PB__MOUNT_TYPE__SECRET, fld, idx);
    for (size_t i = 0; i < e->n_cdidevices && !c->stop; i++) {
      char ent[300];
      snprintf(ent, sizeof ent, "device=%s", e->cdidevices[i]->name);
      if (!bg_entitlement_granted(p, ent))
        ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_devices",
                  "%s: device %s needs entitlement %s, which is not granted to %s", FIELD, e->cdidevices[i]->name, ent,
                  ictx_who(c));
    }
    return 0;
  }
  case PB__OP__OP_SOURCE: {
    inspect_source_ident(c, op->source->identifier, fld, idx);
    if (c->stop || !op->source->n_attrs)
      return 0;
    char af[360];
    snprintf(af, sizeof af, "%s.source.attrs", FIELD);
    return inspect_source_attrs(c, SRC_ATTRS(op->source), af, 0);
  }
  case PB__OP__OP_BUILD:
    if (!p->llb_any) {
      ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_build",
                "%s: BuildOp loads LLB the gateway cannot inspect; not allowed for %s", FIELD, ictx_who(c));
      return 0;
    }
    if (op->build->def) {
      char nf[340];
      snprintf(nf, sizeof nf, "%.280s.build.def", FIELD);
      int saved = c->nested;
      c->nested = 1;
      c->depth++;
      inspect_definition(c, op->build->def, nf);
      c->depth--;
      c->nested = saved;
    }
    return 0;
  case PB__OP__OP__NOT_SET:
    if (!p->llb_any)
      for (unsigned i = 0; i < op->base.n_unknown_fields; i++) {
        uint32_t t = op->base.unknown_fields[i].tag;
        if (t >= 2 && t <= 9) {
          ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_op", "%s: op kind %u is unknown to the gateway; not allowed for %s",
                    FIELD, t, ictx_who(c));
          break;
        }
      }
    return 0;
  default:
    return 0;
  }
}

/* ---- re-keying after a rewrite ------------------------------------------------ */

struct dmap {
  char **k, **v;
  size_t cap;
};

/* Word-at-a-time string hash (all bytes count; digests are 71 characters, so
 * a byte-serial hash dominated the re-keying cost). */
static uint64_t fnv(const char *s)
{
  size_t n = strlen(s);
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, s, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    h ^= h >> 32;
    s += 8;
    n -= 8;
  }
  uint64_t w = 0;
  memcpy(&w, s, n);
  h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 29;
  return h;
}

static const char *dmap_get(struct dmap *m, const char *k)
{
  for (size_t i = fnv(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (!m->k[i])
      return NULL;
    if (strcmp(m->k[i], k) == 0)
      return m->v[i];
  }
}

static void dmap_put(struct dmap *m, char *k, char *v)
{
  for (size_t i = fnv(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (!m->k[i] || strcmp(m->k[i], k) == 0) {
      m->k[i] = k;
      m->v[i] = v;
      return;
    }
  }
}

static const char *dmap_chain(struct dmap *m, const char *k)
{
  const char *last = NULL;
  for (int hops = 0; hops < 128; hops++) {
    const char *n = dmap_get(m, k);
    if (!n)
      break;
    last = k = n;
  }
  return last;
}

static char *digest_of(struct ictx *c, EVP_MD_CTX *ctx, const EVP_MD *alg, const uint8_t *d, size_t n)
{
  unsigned char md[32];
  unsigned int mdlen = 0;
  if (!EVP_DigestInit_ex2(ctx, alg, NULL) || !EVP_DigestUpdate(ctx, d, n) || !EVP_DigestFinal_ex(ctx, md, &mdlen))
    return NULL;
  char *s = bg_arena_alloc(&c->arena, 7 + 64 + 1);
  if (!s)
    return NULL;
  memcpy(s, "sha256:", 7);
  static const char hx[] = "0123456789abcdef";
  for (unsigned i = 0; i < 32; i++) {
    s[7 + 2 * i] = hx[md[i] >> 4];
    s[8 + 2 * i] = hx[md[i] & 15];
  }
  s[71] = 0;
  return s;
}

/* Input digests inside serialized Op bytes without decoding the Op: field 1
 * (inputs, length-delimited) -> field 1 (digest).  Records the offset and
 * length of each digest string; returns the count, or -1 when the bytes are
 * not plain enough (then the caller decodes the op). */
static int rd_varint(const uint8_t *d, size_t n, size_t *pos, uint64_t *v)
{
  *v = 0;
  for (int sh = 0; sh < 64 && *pos < n; sh += 7) {
    uint8_t b = d[(*pos)++];
    *v |= (uint64_t)(b & 0x7f) << sh;
    if (!(b & 0x80))
      return 0;
  }
  return -1;
}

static int skip_field(const uint8_t *d, size_t n, size_t *pos, unsigned wt)
{
  uint64_t v;
  switch (wt) {
  case 0: return rd_varint(d, n, pos, &v);
  case 1: if (n - *pos < 8) return -1; *pos += 8; return 0;
  case 5: if (n - *pos < 4) return -1; *pos += 4; return 0;
  case 2:
    if (rd_varint(d, n, pos, &v) || v > n - *pos)
      return -1;
    *pos += v;
    return 0;
  default: return -1;
  }
}

#define MAX_FAST_INPUTS 64
static int op_input_digests(const uint8_t *d, size_t n, size_t *off, size_t *len)
{
  size_t pos = 0;
  int k = 0;
  while (pos < n) {
    uint64_t key, l;
    if (rd_varint(d, n, &pos, &key))
      return -1;
    if (key != ((1 << 3) | 2)) {
      if (skip_field(d, n, &pos, key & 7))
        return -1;
      continue;
    }
    if (rd_varint(d, n, &pos, &l) || l > n - pos)
      return -1;
    size_t end = pos + l;
    while (pos < end) {
      uint64_t ik, il;
      if (rd_varint(d, end, &pos, &ik))
        return -1;
      if (ik != ((1 << 3) | 2)) {
        if (skip_field(d, end, &pos, ik & 7))
          return -1;
        continue;
      }
      if (rd_varint(d, end, &pos, &il) || il > end - pos || il > 127 || k >= MAX_FAST_INPUTS)
        return -1;
      off[k] = pos;
      len[k++] = il;
      pos += il;
    }
  }
  return k;
}

static void rekey(struct ictx *c, Pb__Definition *def, const unsigned char *need, const char *field)
{
  size_t cap = 16;
  while (cap < def->n_def * 2 + 2)
    cap <<= 1;
  /* m: old digest -> new digest.  seen: digests named as inputs so far in
   * the current pass; a digest remapped after an op already named it means
   * the ops are not in dependency order and another pass is needed (BuildKit
   * marshals inputs first, so normally one pass does it). */
  struct dmap m = {bg_arena_alloc(&c->arena, cap * sizeof(char *)), bg_arena_alloc(&c->arena, cap * sizeof(char *)),
                   cap};
  size_t scap = 16, n_inputs = def->n_def + 16; /* estimate; grown below if needed */
  while (scap < n_inputs * 2 + 2)
    scap <<= 1;
  struct dmap seen = {bg_arena_alloc(&c->arena, scap * sizeof(char *)), bg_arena_alloc(&c->arena, scap * sizeof(char *)),
                      scap};
  size_t n_seen = 0;
  unsigned char *done = calloc(def->n_def ? def->n_def : 1, 1);
  EVP_MD *alg = EVP_MD_fetch(NULL, "SHA256", NULL);
  EVP_MD_CTX *mdc = EVP_MD_CTX_new();
  if (!m.k || !m.v || !seen.k || !seen.v || !done || !alg || !mdc) {
    free(done);
    EVP_MD_free(alg);
    EVP_MD_CTX_free(mdc);
    return;
  }
  memset(m.k, 0, cap * sizeof(char *));
  size_t n_changed = 0;
  int pass, again = 1;
  for (pass = 0; again && pass < 64 && !c->stop; pass++) {
    again = 0;
    memset(seen.k, 0, seen.cap * sizeof(char *));
    n_seen = 0;
    for (size_t i = 0; i < def->n_def && !c->stop; i++) {
      if (!(need[i] && !done[i])) {
        /* fast path: only input digests may change; same length, patch in place */
        size_t off[MAX_FAST_INPUTS], len[MAX_FAST_INPUTS];
        int k = op_input_digests(def->def[i].data, def->def[i].len, off, len);
        if (k >= 0) {
          uint8_t *nb = NULL;
          int ok = 1;
          for (int j = 0; j < k && ok; j++) {
            char dg[128];
            memcpy(dg, def->def[i].data + off[j], len[j]);
            dg[len[j]] = 0;
            const char *to = dmap_chain(&m, dg);
            if (to && strlen(to) != len[j]) {
              ok = 0;
              break;
            }
            if (to) {
              if (!nb && (nb = bg_arena_alloc(&c->arena, def->def[i].len)))
                memcpy(nb, def->def[i].data, def->def[i].len);
              if (!nb) {
                ok = 0;
                break;
              }
              memcpy(nb + off[j], to, len[j]);
            }
            if (!dmap_get(&seen, dg) && n_seen * 2 + 2 <= seen.cap) {
              dmap_put(&seen, bg_arena_strdup(&c->arena, dg), "");
              n_seen++;
            } else if (n_seen * 2 + 2 > seen.cap) {
              ok = 0; /* set full: take the slow path, which grows it */
            }
          }
          if (ok) {
            if (nb) {
              char *oldd = digest_of(c, mdc, alg, def->def[i].data, def->def[i].len);
              char *newd = digest_of(c, mdc, alg, nb, def->def[i].len);
              if (!oldd || !newd)
                break;
              dmap_put(&m, oldd, newd);
              if (dmap_get(&seen, oldd))
                again = 1;
              def->def[i].data = nb;
              n_changed++;
            }
            continue;
          }
        }
      }
      Pb__Op *op = pb__op__unpack(&c->arena.pc, def->def[i].len, def->def[i].data);
      if (!op) {
        ictx_bad(c, "LLB op");
        break;
      }
      int ch = 0;
      if (need[i] && !done[i] && op->op_case == PB__OP__OP_SOURCE) {
        char af[340];
        snprintf(af, sizeof af, "%s.def[%zu].source.attrs", field, i);
        ch |= inspect_source_attrs(c, SRC_ATTRS(op->source), af, 1);
        done[i] = 1;
      }
      for (size_t j = 0; j < op->n_inputs; j++) {
        const char *to = dmap_chain(&m, op->inputs[j]->digest);
        if (to) {
          op->inputs[j]->digest = (char *)to;
          ch = 1;
        }
        if (n_seen * 2 + 2 > seen.cap) { /* grow the set */
          struct dmap ns = {bg_arena_alloc(&c->arena, seen.cap * 2 * sizeof(char *)),
                            bg_arena_alloc(&c->arena, seen.cap * 2 * sizeof(char *)), seen.cap * 2};
          if (!ns.k || !ns.v)
            break;
          memset(ns.k, 0, ns.cap * sizeof(char *));
          for (size_t q = 0; q < seen.cap; q++)
            if (seen.k[q])
              dmap_put(&ns, seen.k[q], seen.v[q]);
          seen = ns;
        }
        if (!dmap_get(&seen, op->inputs[j]->digest)) {
          dmap_put(&seen, op->inputs[j]->digest, op->inputs[j]->digest);
          n_seen++;
        }
      }
      if (!ch)
        continue;
      if (!bg_msg_valid(&op->base, 0)) {
        ictx_bad(c, "LLB op (field number 0)");
        break;
      }
      size_t n = pb__op__get_packed_size(op);
      uint8_t *buf = bg_arena_alloc(&c->arena, n ? n : 1);
      if (!buf)
        break;
      pb__op__pack(op, buf);
      char *oldd = digest_of(c, mdc, alg, def->def[i].data, def->def[i].len);
      char *newd = digest_of(c, mdc, alg, buf, n);
      if (!oldd || !newd)
        break;
      if (strcmp(oldd, newd) != 0) {
        dmap_put(&m, oldd, newd);
        if (dmap_get(&seen, oldd))
          again = 1;
      }
      def->def[i].data = buf;
      def->def[i].len = n;
      n_changed++;
    }
  }
  free(done);
  EVP_MD_free(alg);
  EVP_MD_CTX_free(mdc);
  if (again && !c->stop) {
    ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_op", "%s: definition could not be re-keyed (cyclic inputs?) for %s",
              field, ictx_who(c));
    return;
  }
  for (size_t i = 0; i < def->n_metadata; i++) {
    const char *to = dmap_chain(&m, def->metadata[i]->key);
    if (to)
      def->metadata[i]->key = (char *)to;
  }
  char f[300], o[64], nw[64];
  snprintf(f, sizeof f, "%s.def", field);
  snprintf(o, sizeof o, "%zu ops", def->n_def);
  snprintf(nw, sizeof nw, "%zu ops re-encoded, digests updated", n_changed);
  ictx_rewrite(c, f, o, nw);
}

void inspect_definition(struct ictx *c, Pb__Definition *def, const char *field)
{
  if (!def || c->stop)
    return;
  if (c->depth > 8) {
    ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_op", "%s: nested definitions too deep for %s", field, ictx_who(c));
    return;
  }
  unsigned char *need = NULL;
  size_t n_need = 0;
  char f[300];
  for (size_t i = 0; i < def->n_def && !c->stop; i++) {
    struct bg_arena_mark mk = bg_arena_mark(&c->arena);
    Pb__Op *op = pb__op__unpack(&c->arena.pc, def->def[i].len, def->def[i].data);
    if (!op) {
      snprintf(f, sizeof f, "LLB op %s.def[%zu]", field, i);
      ictx_bad(c, f);
      break;
    }
    c->r->n_ops++;
    int rw = check_op(c, op, field, (long)i);
    bg_arena_reset(&c->arena, mk);
    if (rw) {
      if (c->nested) {
        ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "llb_build",
                  "%s.def[%zu]: a session named inside BuildOp.def cannot be namespaced for %s", field, i,
                  ictx_who(c));
        break;
      }
      if (!need && !(need = calloc(def->n_def, 1)))
        break;
      need[i] = 1;
      n_need++;
    }
  }
  if (n_need && !c->stop)
    rekey(c, def, need, field);
  free(need);
}

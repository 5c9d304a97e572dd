/*
 * dump.c: the policy's view of an inspected message (see dump.h), for the
 * differential oracle in tests/oracle.
 *
 * Why it reads fields by name through the protobuf-c descriptors instead of
 * the generated structs: the schemas in proto/ grow (Meta.ulimit, ...), and a
 * field the schema does not declare is a field the inspectors cannot read.
 * Looking it up by name makes the view follow the schema without an edit
 * here, and a field missing from the schema shows up in the oracle as a
 * field BuildKit reads and the gateway does not.
 *
 * The refusal decision is never re-derived here: the real call path runs
 * first, so whatever validation the inspectors (or anything in front of
 * them) make is what decides.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/attrparse.h"
#include "policy/dump.h"
#include "policy/frontend_attrs.h"
#include "policy/inspect_int.h"

/* ---- values ------------------------------------------------------------------ */

/* Bytes as printable ASCII: see dump.h.  The Go side does the same. */
static char *esc(const char *s, size_t n)
{
  char *o = malloc(n * 4 + 1), *w = o;
  if (!o)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    unsigned char b = (unsigned char)s[i];
    if (b == '\\') {
      *w++ = '\\';
      *w++ = '\\';
    } else if (b >= 0x20 && b < 0x7f) {
      *w++ = (char)b;
    } else {
      w += sprintf(w, "\\x%02x", b);
    }
  }
  *w = 0;
  return o;
}

static char *path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *path(const char *fmt, ...)
{
  char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&s, fmt, ap) < 0)
    s = NULL;
  va_end(ap);
  return s;
}

struct view {
  json_t *o;
  int oom;
};

/* Set (or, for an empty value, clear: a later map entry wins) one path. */
static void put_n(struct view *v, const char *p, const char *s, size_t n)
{
  if (!p) {
    v->oom = 1;
    return;
  }
  if (!n) {
    json_object_del(v->o, p);
    return;
  }
  char *e = esc(s, n);
  if (!e || json_object_set_new(v->o, p, json_string(e)) < 0)
    v->oom = 1;
  free(e);
}
static void put_s(struct view *v, const char *p, const char *s) { put_n(v, p, s ? s : "", s ? strlen(s) : 0); }
static void put_i(struct view *v, const char *p, long long x)
{
  char b[32];
  snprintf(b, sizeof b, "%lld", x);
  put_n(v, p, b, x ? strlen(b) : 0);
}
/* The same with a path made on the fly (freed here). */
#define PUT_S(v, s, ...) do { char *p_ = path(__VA_ARGS__); put_s(v, p_, s); free(p_); } while (0)
#define PUT_I(v, x, ...) do { char *p_ = path(__VA_ARGS__); put_i(v, p_, x); free(p_); } while (0)

/* ---- fields by name ------------------------------------------------------------ */

static const ProtobufCFieldDescriptor *fld(const ProtobufCMessage *m, const char *name)
{
  return m ? protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name) : NULL;
}

static const void *at(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
  return (const char *)m + f->offset;
}

static int oneof_off(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
  return (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id;
}

static const char *g_str(const ProtobufCMessage *m, const char *name)
{
  const ProtobufCFieldDescriptor *f = fld(m, name);
  if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED || oneof_off(m, f))
    return NULL;
  return *(char *const *)at(m, f);
}

static long long g_int(const ProtobufCMessage *m, const char *name)
{
  const ProtobufCFieldDescriptor *f = fld(m, name);
  if (!f || f->label == PROTOBUF_C_LABEL_REPEATED || oneof_off(m, f))
    return 0;
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_ENUM:
    return *(const int32_t *)at(m, f);
  case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
    return *(const uint32_t *)at(m, f);
  case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
    return *(const int64_t *)at(m, f);
  case PROTOBUF_C_TYPE_BOOL:
    return *(const protobuf_c_boolean *)at(m, f) != 0;
  default:
    return 0;
  }
}

static const ProtobufCMessage *g_msg(const ProtobufCMessage *m, const char *name)
{
  const ProtobufCFieldDescriptor *f = fld(m, name);
  if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED || oneof_off(m, f))
    return NULL;
  return *(ProtobufCMessage *const *)at(m, f);
}

/* Count and array of a repeated field (0 when the schema has no such field). */
static size_t g_rep(const ProtobufCMessage *m, const char *name, const void **arr)
{
  const ProtobufCFieldDescriptor *f = fld(m, name);
  *arr = NULL;
  if (!f || f->label != PROTOBUF_C_LABEL_REPEATED)
    return 0;
  *arr = *(const void *const *)at(m, f);
  return *(const size_t *)((const char *)m + f->quantifier_offset);
}

/* ---- views --------------------------------------------------------------------- */

static void v_slist(struct view *v, const char *p, const ProtobufCMessage *m, const char *name)
{
  const void *a;
  size_t n = g_rep(m, name, &a);
  PUT_I(v, (long long)n, "%s#", p);
  for (size_t i = 0; i < n; i++)
    PUT_S(v, ((char *const *)a)[i], "%s[%zu]", p, i);
}

/* A map<string,string>: entries on the wire, the last value of each key. */
static void v_smap(struct view *v, const char *p, const ProtobufCMessage *m, const char *name)
{
  const void *a;
  size_t n = g_rep(m, name, &a);
  PUT_I(v, (long long)n, "%s#", p);
  for (size_t i = 0; i < n; i++) {
    const ProtobufCMessage *e = ((ProtobufCMessage *const *)a)[i];
    char *k = esc(g_str(e, "key") ? g_str(e, "key") : "", g_str(e, "key") ? strlen(g_str(e, "key")) : 0);
    PUT_S(v, g_str(e, "value"), "%s[%s]", p, k ? k : "");
    free(k);
  }
}

static const char *smap_last(const ProtobufCMessage *m, const char *name, const char *key)
{
  const void *a;
  size_t n = g_rep(m, name, &a);
  const char *val = NULL;
  for (size_t i = 0; i < n; i++) {
    const ProtobufCMessage *e = ((ProtobufCMessage *const *)a)[i];
    const char *k = g_str(e, "key");
    if (k && strcmp(k, key) == 0)
      val = g_str(e, "value");
  }
  return val;
}

/* {Type, Attrs} lists: Cache.Exports/Imports, Exporters, CacheImports. */
static void v_typed(struct view *v, const char *p, const ProtobufCMessage *m, const char *name)
{
  const void *a;
  size_t n = g_rep(m, name, &a);
  PUT_I(v, (long long)n, "%s#", p);
  for (size_t i = 0; i < n; i++) {
    const ProtobufCMessage *e = ((ProtobufCMessage *const *)a)[i];
    char *q = path("%s[%zu]", p, i);
    PUT_S(v, g_str(e, "Type"), "%s.Type", q);
    char *qa = path("%s.Attrs", q);
    if (qa)
      v_smap(v, qa, e, "Attrs");
    free(qa);
    free(q);
  }
}

/* Frontend attrs read with the inspectors' own readers (attrparse.c, as
 * inspect_solve.c frontend_cache_attrs and frontend_image_attrs use them):
 * cache-imports through jansson with duplicate keys refused and struct
 * fields matched as encoding/json matches them; BUILDKIT_SYNTAX as
 * strings.SplitN(strings.TrimSpace(v), " ", 2)[0].  A value the inspectors
 * refuse never reaches this view: the call path ran first. */
static void v_attr_readings(struct view *v, const ProtobufCMessage *m, const char *name)
{
  const char *ci = smap_last(m, name, "cache-imports");
  if (ci && ci[0]) {
    json_t *j = json_loads(ci, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (json_is_null(j)) {
      /* Go: a nil slice, no imports (frontend_cache_attrs reads it so too) */
    } else if (!json_is_array(j)) {
      put_s(v, "~cache-imports!", "not a JSON array");
    } else {
      size_t i;
      json_t *it;
      put_i(v, "~cache-imports#", (long long)json_array_size(j));
      json_array_foreach(j, i, it) {
        const char *t = NULL, *why = NULL;
        if (json_is_object(it) && bg_json_struct_keys_ok(it, &why))
          t = json_string_value(bg_json_struct_get(it, "Type"));
        PUT_S(v, t, "~cache-imports[%zu].Type", i);
      }
    }
    json_decref(j);
  }
  const char *sy = smap_last(m, name, "build-arg:BUILDKIT_SYNTAX");
  const char *ref;
  size_t rl;
  if (sy && sy[0] && bg_go_syntax_ref(sy, strlen(sy), &ref, &rl) == 0)
    put_n(v, "~BUILDKIT_SYNTAX", ref, rl);
}

static void v_meta(struct view *v, const char *p, const ProtobufCMessage *m)
{
  if (!m)
    return;
  char *q;
  v_slist(v, (q = path("%s.args", p)) ? q : "", m, "args"), free(q);
  v_slist(v, (q = path("%s.env", p)) ? q : "", m, "env"), free(q);
  PUT_S(v, g_str(m, "cwd"), "%s.cwd", p);
  PUT_S(v, g_str(m, "user"), "%s.user", p);
  PUT_S(v, g_str(m, "hostname"), "%s.hostname", p);
  PUT_S(v, g_str(m, "cgroupParent"), "%s.cgroupParent", p);
  const void *a;
  size_t n = g_rep(m, "extraHosts", &a);
  PUT_I(v, (long long)n, "%s.extraHosts#", p);
  for (size_t i = 0; i < n; i++) {
    const ProtobufCMessage *h = ((ProtobufCMessage *const *)a)[i];
    PUT_S(v, g_str(h, "Host"), "%s.extraHosts[%zu].Host", p, i);
    PUT_S(v, g_str(h, "IP"), "%s.extraHosts[%zu].IP", p, i);
  }
  n = g_rep(m, "ulimit", &a);
  PUT_I(v, (long long)n, "%s.ulimit#", p);
  for (size_t i = 0; i < n; i++) {
    const ProtobufCMessage *u = ((ProtobufCMessage *const *)a)[i];
    PUT_S(v, g_str(u, "Name"), "%s.ulimit[%zu].Name", p, i);
    PUT_I(v, g_int(u, "Soft"), "%s.ulimit[%zu].Soft", p, i);
    PUT_I(v, g_int(u, "Hard"), "%s.ulimit[%zu].Hard", p, i);
  }
}

static void v_mount(struct view *v, const char *p, const ProtobufCMessage *m)
{
  PUT_I(v, g_int(m, "input"), "%s.input", p);
  PUT_S(v, g_str(m, "dest"), "%s.dest", p);
  PUT_I(v, g_int(m, "mountType"), "%s.type", p);
  PUT_I(v, g_int(m, "readonly"), "%s.readonly", p);
  const ProtobufCMessage *c = g_msg(m, "cacheOpt");
  PUT_S(v, g_str(c, "ID"), "%s.cacheOpt.ID", p);
  PUT_I(v, g_int(c, "sharing"), "%s.cacheOpt.sharing", p);
  PUT_S(v, g_str(g_msg(m, "secretOpt"), "ID"), "%s.secretOpt.ID", p);
  PUT_S(v, g_str(g_msg(m, "SSHOpt"), "ID"), "%s.SSHOpt.ID", p);
}

static void v_mounts(struct view *v, const char *p, const ProtobufCMessage *m, const char *name)
{
  const void *a;
  size_t n = g_rep(m, name, &a);
  PUT_I(v, (long long)n, "%s#", p);
  for (size_t i = 0; i < n; i++) {
    char *q = path("%s[%zu]", p, i);
    if (q)
      v_mount(v, q, ((ProtobufCMessage *const *)a)[i]);
    free(q);
  }
}

static void v_secretenv(struct view *v, const char *p, const ProtobufCMessage *m)
{
  const void *a;
  size_t n = g_rep(m, "secretenv", &a);
  PUT_I(v, (long long)n, "%s.secretenv#", p);
  for (size_t i = 0; i < n; i++) {
    const ProtobufCMessage *s = ((ProtobufCMessage *const *)a)[i];
    PUT_S(v, g_str(s, "ID"), "%s.secretenv[%zu].ID", p, i);
    PUT_S(v, g_str(s, "name"), "%s.secretenv[%zu].name", p, i);
  }
}

static void v_definition(struct view *v, const char *p, const ProtobufCMessage *def, int depth);

static void v_op(struct view *v, const char *p, const ProtobufCMessage *op, int depth)
{
  const void *a;
  size_t n = g_rep(op, "inputs", &a);
  PUT_I(v, (long long)n, "%s.inputs#", p);
  for (size_t i = 0; i < n; i++)
    PUT_S(v, g_str(((ProtobufCMessage *const *)a)[i], "digest"), "%s.inputs[%zu]", p, i);
  /* the kind is the name of the oneof member that is set */
  const ProtobufCMessageDescriptor *d = op->descriptor;
  const char *kind = NULL;
  for (unsigned i = 0; i < d->n_fields; i++)
    if ((d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && !oneof_off(op, &d->fields[i]))
      kind = d->fields[i].name;
  PUT_S(v, kind, "%s.kind", p);
  const ProtobufCMessage *x;
  char *q;
  if ((x = g_msg(op, "exec"))) {
    v_meta(v, (q = path("%s.exec.meta", p)) ? q : "", g_msg(x, "meta")), free(q);
    PUT_I(v, g_int(x, "network"), "%s.exec.network", p);
    PUT_I(v, g_int(x, "security"), "%s.exec.security", p);
    v_mounts(v, (q = path("%s.exec.mounts", p)) ? q : "", x, "mounts"), free(q);
    v_secretenv(v, (q = path("%s.exec", p)) ? q : "", x), free(q);
    n = g_rep(x, "cdiDevices", &a);
    PUT_I(v, (long long)n, "%s.exec.cdiDevices#", p);
    for (size_t i = 0; i < n; i++)
      PUT_S(v, g_str(((ProtobufCMessage *const *)a)[i], "name"), "%s.exec.cdiDevices[%zu].name", p, i);
  }
  if ((x = g_msg(op, "source"))) {
    PUT_S(v, g_str(x, "identifier"), "%s.source.identifier", p);
    v_smap(v, (q = path("%s.source.attrs", p)) ? q : "", x, "attrs"), free(q);
  }
  if ((x = g_msg(op, "build"))) {
    PUT_I(v, g_int(x, "builder"), "%s.build.builder", p);
    v_smap(v, (q = path("%s.build.attrs", p)) ? q : "", x, "attrs"), free(q);
    v_definition(v, (q = path("%s.build.def", p)) ? q : "", g_msg(x, "def"), depth + 1), free(q);
  }
}

/* Each op is decoded the way bg_inspect_definition() decodes it. */
static void v_definition(struct view *v, const char *p, const ProtobufCMessage *def, int depth)
{
  if (!def)
    return;
  if (depth > 8) {
    PUT_S(v, "too deep", "%s!", p);
    return;
  }
  const void *a;
  size_t n = g_rep(def, "def", &a);
  PUT_I(v, (long long)n, "%s.def#", p);
  for (size_t i = 0; i < n; i++) {
    const ProtobufCBinaryData *b = &((const ProtobufCBinaryData *)a)[i];
    ProtobufCMessage *op = protobuf_c_message_unpack(&pb__op__descriptor, NULL, b->len, b->data);
    char *q = path("%s.def[%zu]", p, i);
    if (!q)
      v->oom = 1;
    else if (!op)
      PUT_S(v, "undecodable", "%s!", q);
    else
      v_op(v, q, op, depth);
    free(q);
    if (op)
      protobuf_c_message_free_unpacked(op, NULL);
  }
}

static void v_definitions_map(struct view *v, const char *p, const ProtobufCMessage *m, const char *name)
{
  const void *a;
  size_t n = g_rep(m, name, &a);
  PUT_I(v, (long long)n, "%s#", p);
  for (size_t i = 0; i < n; i++) {
    const ProtobufCMessage *e = ((ProtobufCMessage *const *)a)[i];
    const char *k = g_str(e, "key");
    char *ek = esc(k ? k : "", k ? strlen(k) : 0);
    char *q = path("%s[%s]", p, ek ? ek : "");
    free(ek);
    if (q) {
      /* a later entry for the same key replaces the earlier one */
      const char *pre = q;
      size_t pl = strlen(pre);
      void *it = json_object_iter(v->o);
      while (it) {
        const char *key = json_object_iter_key(it);
        it = json_object_iter_next(v->o, it);
        if (strncmp(key, pre, pl) == 0 && (key[pl] == '.' || key[pl] == '!'))
          json_object_del(v->o, key);
      }
      v_definition(v, q, g_msg(e, "value"), 0);
    }
    free(q);
  }
}

static void v_source_policy(struct view *v, const char *p, const ProtobufCMessage *pol)
{
  if (!pol)
    return;
  PUT_I(v, g_int(pol, "version"), "%s.version", p);
  const void *a;
  size_t n = g_rep(pol, "rules", &a);
  PUT_I(v, (long long)n, "%s.rules#", p);
  for (size_t i = 0; i < n; i++) {
    const ProtobufCMessage *r = ((ProtobufCMessage *const *)a)[i];
    PUT_I(v, g_int(r, "action"), "%s.rules[%zu].action", p, i);
    PUT_S(v, g_str(g_msg(r, "selector"), "identifier"), "%s.rules[%zu].selector.identifier", p, i);
    const ProtobufCMessage *u = g_msg(r, "updates");
    PUT_S(v, g_str(u, "identifier"), "%s.rules[%zu].updates.identifier", p, i);
    char *q = path("%s.rules[%zu].updates.attrs", p, i);
    if (q && u)
      v_smap(v, q, u, "attrs");
    free(q);
  }
}

static void view_control_solve(struct view *v, const ProtobufCMessage *m)
{
  put_s(v, "Ref", g_str(m, "Ref"));
  put_s(v, "Session", g_str(m, "Session"));
  put_s(v, "Frontend", g_str(m, "Frontend"));
  put_s(v, "Exporter", g_str(m, "ExporterDeprecated"));
  v_smap(v, "ExporterAttrs", m, "ExporterAttrsDeprecated");
  v_smap(v, "FrontendAttrs", m, "FrontendAttrs");
  v_attr_readings(v, m, "FrontendAttrs");
  v_slist(v, "Entitlements", m, "Entitlements");
  const ProtobufCMessage *c = g_msg(m, "Cache");
  if (c) {
    put_s(v, "Cache.ExportRef", g_str(c, "ExportRefDeprecated"));
    v_slist(v, "Cache.ImportRefs", c, "ImportRefsDeprecated");
    v_typed(v, "Cache.Exports", c, "Exports");
    v_typed(v, "Cache.Imports", c, "Imports");
  }
  v_definition(v, "Definition", g_msg(m, "Definition"), 0);
  v_definitions_map(v, "FrontendInputs", m, "FrontendInputs");
  v_typed(v, "Exporters", m, "Exporters");
  put_i(v, "EnableSessionExporter", g_int(m, "EnableSessionExporter"));
  put_s(v, "SourcePolicySession", g_str(m, "SourcePolicySession"));
  v_source_policy(v, "SourcePolicy", g_msg(m, "SourcePolicy"));
}

static void view_bridge_solve(struct view *v, const ProtobufCMessage *m)
{
  v_definition(v, "Definition", g_msg(m, "Definition"), 0);
  put_s(v, "Frontend", g_str(m, "Frontend"));
  v_smap(v, "FrontendOpt", m, "FrontendOpt");
  v_attr_readings(v, m, "FrontendOpt");
  /* field 4: refs a v0.8 daemon turns into registry cache imports; listed
   * once proto/gateway.proto declares it */
  v_slist(v, "ImportCacheRefs", m, "ImportCacheRefsDeprecated");
  v_typed(v, "CacheImports", m, "CacheImports");
  v_definitions_map(v, "FrontendInputs", m, "FrontendInputs");
  const ProtobufCFieldDescriptor *f = fld(m, "ExporterAttr");
  if (f && f->type == PROTOBUF_C_TYPE_BYTES) {
    const ProtobufCBinaryData *b = at(m, f);
    put_n(v, "ExporterAttr", (const char *)b->data, b->len);
  }
  const void *a;
  size_t n = g_rep(m, "SourcePolicies", &a);
  put_i(v, "SourcePolicies#", (long long)n);
  for (size_t i = 0; i < n; i++) {
    char *q = path("SourcePolicies[%zu]", i);
    if (q)
      v_source_policy(v, q, ((ProtobufCMessage *const *)a)[i]);
    free(q);
  }
}

static void view_new_container(struct view *v, const ProtobufCMessage *m)
{
  put_s(v, "ContainerID", g_str(m, "ContainerID"));
  v_mounts(v, "Mounts", m, "Mounts");
  put_i(v, "Network", g_int(m, "Network"));
  const void *a;
  size_t n = g_rep(m, "extraHosts", &a);
  put_i(v, "extraHosts#", (long long)n);
  for (size_t i = 0; i < n; i++) {
    const ProtobufCMessage *h = ((ProtobufCMessage *const *)a)[i];
    PUT_S(v, g_str(h, "Host"), "extraHosts[%zu].Host", i);
    PUT_S(v, g_str(h, "IP"), "extraHosts[%zu].IP", i);
  }
  put_s(v, "hostname", g_str(m, "hostname"));
}

static void view_exec_message(struct view *v, const ProtobufCMessage *m)
{
  put_s(v, "ProcessID", g_str(m, "ProcessID"));
  const ProtobufCMessage *in = g_msg(m, "Init");
  if (in) {
    put_s(v, "input", "Init");
    put_s(v, "Init.ContainerID", g_str(in, "ContainerID"));
    v_meta(v, "Init.Meta", g_msg(in, "Meta"));
    put_i(v, "Init.Security", g_int(in, "Security"));
    put_i(v, "Init.Tty", g_int(in, "Tty"));
    v_secretenv(v, "Init", in);
  } else {
    /* The other members of the oneof are not declared in proto/gateway.proto
     * and the inspector ignores them; name the last one present so that a
     * message without Init is not reported as a disagreement. */
    static const char *const names[] = {"File", "Resize", "Started", "Exit", "Done", "Signal"};
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
      uint32_t t = m->unknown_fields[i].tag;
      if (t >= 3 && t <= 8)
        put_s(v, "input", names[t - 3]);
    }
  }
}

/* ResolveImageConfigRequest is walked at the wire level by
 * isolate_bridge.c, which namespaces every field whose number (key >> 3, in
 * 64 bits) is 6; the last one is the SessionID it leaves for the daemon. */
static int rd_varint(const uint8_t *d, size_t n, size_t *pos, uint64_t *v)
{
  *v = 0;
  for (int sh = 0; sh < 64; sh += 7) {
    if (*pos >= n)
      return -1;
    uint8_t b = d[(*pos)++];
    *v |= (uint64_t)(b & 0x7f) << sh;
    if (!(b & 0x80))
      return 0;
  }
  return -1;
}

static void view_resolve_image(struct view *v, const uint8_t *d, size_t n)
{
  size_t pos = 0;
  while (pos < n) {
    uint64_t key, x;
    if (rd_varint(d, n, &pos, &key))
      return;
    switch (key & 7) {
    case 0: if (rd_varint(d, n, &pos, &x)) return; break;
    case 1: if (n - pos < 8) return; pos += 8; break;
    case 5: if (n - pos < 4) return; pos += 4; break;
    case 2:
      if (rd_varint(d, n, &pos, &x) || x > n - pos)
        return;
      if (key >> 3 == 6)
        put_n(v, "SessionID", (const char *)d + pos, (size_t)x);
      pos += (size_t)x;
      break;
    default: return;
    }
  }
}

/* ResolveSourceMetaRequest.Source (1) is a SourceOp, also walked at the wire
 * level by isolate_bridge.c: every field numbered 1 (in 64 bits), every attrs
 * entry (2) in it, the last key (1) and the last value (2) of each entry.  The
 * view is the session names the namespacing acts on. */
struct wfield {
  uint64_t num;
  unsigned wt;
  const uint8_t *val;
  size_t vlen;
};

static int next_wfield(const uint8_t *d, size_t n, size_t *pos, struct wfield *f)
{
  uint64_t key, x;
  if (rd_varint(d, n, pos, &key))
    return -1;
  f->num = key >> 3;
  f->wt = (unsigned)(key & 7);
  f->val = NULL;
  f->vlen = 0;
  switch (f->wt) {
  case 0: return rd_varint(d, n, pos, &x);
  case 1: if (n - *pos < 8) return -1; *pos += 8; return 0;
  case 5: if (n - *pos < 4) return -1; *pos += 4; return 0;
  case 2:
    if (rd_varint(d, n, pos, &x) || x > n - *pos)
      return -1;
    f->val = d + *pos;
    f->vlen = (size_t)x;
    *pos += (size_t)x;
    return 0;
  default: return -1;
  }
}

static void view_resolve_source(struct view *v, const uint8_t *d, size_t n)
{
  size_t pos = 0;
  struct wfield f, e, kv;
  while (pos < n && next_wfield(d, n, &pos, &f) == 0) {
    if (f.num != 1 || f.wt != 2)
      continue;
    size_t p2 = 0;
    while (p2 < f.vlen && next_wfield(f.val, f.vlen, &p2, &e) == 0) {
      if (e.num != 2 || e.wt != 2)
        continue;
      const uint8_t *k = NULL, *val = NULL;
      size_t kl = 0, vl = 0, p3 = 0;
      while (p3 < e.vlen && next_wfield(e.val, e.vlen, &p3, &kv) == 0) {
        if (kv.num == 1 && kv.wt == 2)
          k = kv.val, kl = kv.vlen;
        else if (kv.num == 2 && kv.wt == 2)
          val = kv.val, vl = kv.vlen;
      }
      if (k && kl == 13 && memcmp(k, "local.session", 13) == 0)
        put_n(v, "Source.attrs[local.session]", (const char *)val, val ? vl : 0);
      else if (k && kl == 11 && memcmp(k, "oci.session", 11) == 0)
        put_n(v, "Source.attrs[oci.session]", (const char *)val, val ? vl : 0);
    }
  }
}

/* ---- entry points ---------------------------------------------------------------- */

/* frontend_attrs.allow "*": the oracle compares how bytes are read, so the
 * attr allow-list (which refuses unknown keys) must not hide the view. */
static const char dump_policy_json[] =
    "{\"mode\": \"enforce\", \"anonymous\": null,"
    " \"tenants\": [{\"name\": \"oracle\", \"match\": {\"uid\": [4242]}, \"profile\": \"oracle\"}],"
    " \"profiles\": {\"oracle\": {\"methods\": [\"*\"], \"entitlements\": [\"*\"], \"session_exporter\": true,"
    " \"cache\": {\"import\": [\"local\", \"registry\", \"gha\", \"s3\", \"azblob\"],"
    " \"export\": [\"local\", \"registry\", \"inline\", \"gha\", \"s3\", \"azblob\"]},"
    " \"frontend_attrs\": {\"allow\": [\"*\"]},"
    " \"llb\": {}, \"isolate\": true}}}";

struct bg_policy *bg_dump_policy(void)
{
  struct bg_error err;
  return bg_policy_load_string(dump_policy_json, sizeof dump_policy_json - 1, &err);
}

#define CTL "/moby.buildkit.v1.Control/"
#define BR "/moby.buildkit.v1.frontend.LLBBridge/"

static const struct {
  const char *method;
  const ProtobufCMessageDescriptor *desc;
  void (*view)(struct view *, const ProtobufCMessage *);
} kinds[] = {
    {CTL "Solve", &moby__buildkit__v1__solve_request__descriptor, view_control_solve},
    {BR "Solve", &moby__buildkit__v1__frontend__solve_request__descriptor, view_bridge_solve},
    {BR "NewContainer", &moby__buildkit__v1__frontend__new_container_request__descriptor, view_new_container},
    {BR "ExecProcess", &moby__buildkit__v1__frontend__exec_message__descriptor, view_exec_message},
    {CTL "Status", &moby__buildkit__v1__status_request__descriptor, NULL},
    {BR "ResolveImageConfig", NULL, NULL},
    {BR "ResolveSourceMeta", NULL, NULL},
};

/* {"k": "val"}; val is escaped like every value (a refusal reason quotes
 * the offending bytes, which need not be UTF-8). */
static char *one_string(const char *k, const char *val)
{
  char *e = esc(val, strlen(val));
  json_t *o = e ? json_pack("{ss}", k, e) : NULL;
  char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
  json_decref(o);
  free(e);
  return s;
}

char *bg_inspect_dump(struct bg_policy *p, const char *tenant, const char *method, const uint8_t *msg,
                      size_t len)
{
  /* 1: the real call path decides whether the message is refused */
  struct bg_conn *c = bg_conn_open_as_tenant(p, tenant, "grpc", 0, NULL);
  if (!c)
    return one_string("error", "no such tenant");
  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(c, method, strlen(method), NULL, 0, &d);
  if (!call) {
    bg_conn_close(c);
    return NULL;
  }
  char refusal[600] = "";
  int status = d.grpc_status, inspected = d.inspect_requests;
  uint8_t *out = NULL; /* what the gateway would forward instead */
  size_t outlen = 0;
  if (status) {
    snprintf(refusal, sizeof refusal, "%d %s", status, d.message);
  } else if (inspected) {
    struct bg_msg_result r;
    bg_call_request(call, msg, len, 0, &r);
    if (r.verdict == BG_MSG_DENY) {
      status = r.grpc_status;
      snprintf(refusal, sizeof refusal, "%d %s", status, r.message);
    }
    if (r.verdict == BG_MSG_REPLACE) {
      out = r.data;
      outlen = r.len;
    }
  }
  char *audit = NULL;
  bg_call_end(call, status, refusal, len, 0, &audit);
  free(audit);
  bg_conn_close(c);
  if (status || !inspected) {
    free(out);
    return status ? one_string("refused", refusal) : one_string("forwarded", "not inspected");
  }

  /* 2: the fields, from the decoding the inspectors use */
  size_t k;
  for (k = 0; k < sizeof kinds / sizeof *kinds; k++)
    if (strcmp(kinds[k].method, method) == 0)
      break;
  if (k == sizeof kinds / sizeof *kinds) {
    free(out);
    return one_string("forwarded", "no view for this method");
  }
  struct view v = {json_object(), 0};
  if (!v.o) {
    free(out);
    return NULL;
  }
  if (out) {
    /* "^rewritten": the bytes the gateway forwards instead, in hex, so the
     * oracle can check that BuildKit reads them as the gateway meant */
    char *hex = malloc(outlen * 2 + 1);
    if (!hex)
      v.oom = 1;
    else {
      for (size_t i = 0; i < outlen; i++)
        sprintf(hex + 2 * i, "%02x", out[i]);
      hex[2 * outlen] = 0;
      if (json_object_set_new(v.o, "^rewritten", json_string(hex)) < 0)
        v.oom = 1;
      free(hex);
    }
    free(out);
  }
  if (!kinds[k].desc) {
    if (strcmp(method, BR "ResolveSourceMeta") == 0)
      view_resolve_source(&v, msg, len);
    else
      view_resolve_image(&v, msg, len);
  } else {
    ProtobufCMessage *m = protobuf_c_message_unpack(kinds[k].desc, NULL, len, msg);
    if (!m) {
      put_s(&v, "!", "allowed but undecodable");
    } else {
      if (kinds[k].view)
        kinds[k].view(&v, m);
      else
        put_s(&v, "Ref", g_str(m, "Ref"));
      protobuf_c_message_free_unpacked(m, NULL);
    }
  }
  char *s = v.oom ? NULL : json_dumps(v.o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
  json_decref(v.o);
  return s;
}

/* test_inspect_llb.c: the LLB semantics of issue 9, fed with messages built
 * with protobuf-c: Meta powers (llb.extra_hosts, hostname, ulimit,
 * cgroup_parent), fields/op kinds/enum values the gateway does not know
 * (llb.unknown), tenant-scoped cache mounts, other tenants' images on a
 * Docker engine, image.resolvemode, and the same powers in NewContainer and
 * ExecProcess.  Then the rest of policy/inspect_llb.c (moved from
 * test_inspect.c): op and source rules, CDI devices, local-session rekeying
 * of the Definition, FrontendInputs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "tests/unit/inspect_run.h"

static const struct bg_backend_facts facts_v11 = {1, 0, "v0.11.6", 0};
static const struct bg_backend_facts facts_docker = {1, 0, "v0.11.6", 1};

static void run_as(struct bg_inspect *r, const struct bg_profile *p, const char *tenant,
                   const struct bg_backend_facts *fx, inspector fn, const uint8_t *m, size_t n)
{
  bg_inspect_init(r, p, tenant, 0, fx);
  fn(r, m, n);
}

/* Knobs for one ExecOp. */
struct exec_spec {
  int extra_hosts, ulimit;
  const char *hostname, *cgroup;
  const char *cache_id;       /* non-NULL: a cache mount at /cache with this ID */
  int sharing;
  ProtobufCMessageUnknownField *meta_unknown; /* one unknown field in Meta */
  ProtobufCMessageUnknownField *op_unknown;   /* one unknown field in Op */
};

static ProtobufCBinaryData exec_op(const struct exec_spec *s, const char *input)
{
  Pb__Op op = PB__OP__INIT;
  Pb__ExecOp ex = PB__EXEC_OP__INIT;
  Pb__Meta meta = PB__META__INIT;
  char *args[] = {"/bin/sh", "-c", "true"};
  meta.args = args;
  meta.n_args = 3;
  meta.cwd = "/";
  Pb__HostIP h = PB__HOST_IP__INIT;
  Pb__HostIP *hs[] = {&h};
  h.host = "registry.internal";
  h.ip = "10.0.0.1";
  if (s->extra_hosts)
    meta.extrahosts = hs, meta.n_extrahosts = 1;
  Pb__Ulimit u = PB__ULIMIT__INIT;
  Pb__Ulimit *us[] = {&u};
  u.name = "nofile";
  u.soft = u.hard = 1 << 20;
  if (s->ulimit)
    meta.ulimit = us, meta.n_ulimit = 1;
  if (s->hostname)
    meta.hostname = (char *)s->hostname;
  if (s->cgroup)
    meta.cgroupparent = (char *)s->cgroup;
  if (s->meta_unknown)
    meta.base.unknown_fields = s->meta_unknown, meta.base.n_unknown_fields = 1;
  Pb__Mount root = PB__MOUNT__INIT, cm = PB__MOUNT__INIT;
  Pb__CacheOpt co = PB__CACHE_OPT__INIT;
  root.dest = "/";
  cm.dest = "/cache";
  cm.input = -1;
  cm.output = -1;
  cm.mounttype = PB__MOUNT_TYPE__CACHE;
  cm.cacheopt = &co;
  co.id = (char *)(s->cache_id ? s->cache_id : "");
  co.sharing = s->sharing;
  Pb__Mount *ms[] = {&root, &cm};
  ex.meta = &meta;
  ex.mounts = ms;
  ex.n_mounts = s->cache_id ? 2 : 1;
  Pb__Input in = PB__INPUT__INIT;
  Pb__Input *ins[] = {&in};
  if (input) {
    in.digest = (char *)input;
    op.inputs = ins;
    op.n_inputs = 1;
  }
  if (s->op_unknown)
    op.base.unknown_fields = s->op_unknown, op.base.n_unknown_fields = 1;
  op.op_case = PB__OP__OP_EXEC;
  op.exec = &ex;
  ProtobufCBinaryData d;
  d.data = pack_any(&op.base, &d.len);
  return d;
}

/* Control.Solve around [source alpine, exec(spec) <- source, file <- exec]. */
static uint8_t *solve3(const struct exec_spec *s, size_t *len, ProtobufCBinaryData ops[3])
{
  char d0[72], d1[72];
  ops[0] = op_source("docker-image://docker.io/library/alpine:latest", NULL, NULL);
  digest(&ops[0], d0);
  ops[1] = exec_op(s, d0);
  digest(&ops[1], d1);
  ops[2] = op_file(d1);
  return solve_with_def(ops, 3, len);
}

static void free3(ProtobufCBinaryData ops[3], uint8_t *m)
{
  for (int i = 0; i < 3; i++)
    free(ops[i].data);
  free(m);
}

/* Status and rule of a Control.Solve with one ExecOp built from |s|. */
static int exec_status(const struct bg_profile *p, const struct exec_spec *s, char rule[64], char reason[400])
{
  ProtobufCBinaryData ops[3];
  size_t n;
  uint8_t *m = solve3(s, &n, ops);
  struct bg_inspect r;
  run_as(&r, p, "ci", &facts_v11, bg_inspect_control_solve, m, n);
  int st = r.grpc_status;
  strcpy(rule, r.rule);
  if (reason)
    strcpy(reason, r.reason);
  bg_inspect_free(&r);
  free3(ops, m);
  return st;
}

/* Builder profile without isolate and frontend attr rules (their rewrites
 * and denials are tested apart). */
#define PROF_RESTRICTED(p)       \
  PROF_BUILDER(p);               \
  (p).isolate = 0;               \
  (p).frontend_attrs.deny.n = 0; \
  (p).frontend_attrs.set.n = 0

/* ---- Meta powers ---------------------------------------------------------------------------- */

static void test_meta_powers_denied_by_default(void **st)
{
  struct bg_profile p;
  PROF_RESTRICTED(p);
  char rule[64], reason[400];
  struct exec_spec plain = {0};
  assert_int_equal(exec_status(&p, &plain, rule, NULL), 0);

  struct exec_spec cg = {.cgroup = "/system.slice/victim.scope"};
  assert_int_equal(exec_status(&p, &cg, rule, reason), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_cgroup_parent");
  assert_non_null(strstr(reason, "Definition.def[1]"));
  assert_non_null(strstr(reason, "llb.cgroup_parent is false"));
  p.llb_cgroup_parent = 1;
  assert_int_equal(exec_status(&p, &cg, rule, NULL), 0);

  struct exec_spec ul = {.ulimit = 1};
  assert_int_equal(exec_status(&p, &ul, rule, NULL), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_ulimit");
  p.llb_ulimit = 1;
  assert_int_equal(exec_status(&p, &ul, rule, NULL), 0);

  struct exec_spec eh = {.extra_hosts = 1};
  assert_int_equal(exec_status(&p, &eh, rule, NULL), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_extra_hosts");
  p.llb_extra_hosts = 1;
  assert_int_equal(exec_status(&p, &eh, rule, NULL), 0);

  struct exec_spec hn = {.hostname = "buildbox"};
  assert_int_equal(exec_status(&p, &hn, rule, NULL), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_hostname");
  p.llb_hostname = 1;
  assert_int_equal(exec_status(&p, &hn, rule, NULL), 0);
}

static void test_meta_powers_follow_frontend_attr_deny(void **st)
{
  /* no llb section (admin-like): every power passes ... */
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  char rule[64], reason[400];
  struct exec_spec all = {.extra_hosts = 1, .ulimit = 1, .hostname = "h", .cgroup = "/x"};
  assert_int_equal(exec_status(&p, &all, rule, NULL), 0);
  /* ... unless the frontend attr restating the power is denied: denying one denies both */
  p.frontend_attrs.deny = SL("add-hosts");
  assert_int_equal(exec_status(&p, &all, rule, reason), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_extra_hosts");
  assert_non_null(strstr(reason, "frontend attr add-hosts is denied"));
  p.frontend_attrs.deny = SL("cgroup-*");
  assert_int_equal(exec_status(&p, &all, rule, NULL), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_cgroup_parent");
}

/* ---- unknown fields, op kinds, enum values ---------------------------------------------------- */

static void test_unknown_fields_fail_closed(void **st)
{
  struct bg_profile p;
  PROF_RESTRICTED(p);
  char rule[64], reason[400];
  uint8_t one = 1;
  /* Meta 11/12 are BuildKit fields without powers: known by number */
  ProtobufCMessageUnknownField f11 = {11, PROTOBUF_C_WIRE_TYPE_VARINT, 1, &one};
  struct exec_spec s = {.meta_unknown = &f11};
  assert_int_equal(exec_status(&p, &s, rule, NULL), 0);
  /* Meta 13 is not a field the gateway knows */
  ProtobufCMessageUnknownField f13 = {13, PROTOBUF_C_WIRE_TYPE_VARINT, 1, &one};
  s.meta_unknown = &f13;
  assert_int_equal(exec_status(&p, &s, rule, reason), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_unknown");
  assert_non_null(strstr(reason, "field 13 of pb.Meta"));
  p.llb_unknown_allow = 1;
  assert_int_equal(exec_status(&p, &s, rule, NULL), 0);
  p.llb_unknown_allow = 0;
  p.llb_any = 1; /* no llb section: not restricted */
  assert_int_equal(exec_status(&p, &s, rule, NULL), 0);
  p.llb_any = 0;

  /* an op kind the gateway does not know (passthrough 8), riding on an exec op:
   * Go's oneof keeps the last member, so this op is a passthrough op */
  uint8_t empty_msg[1] = {0}; /* protobuf-c keeps a length-prefixed unknown field with its length */
  ProtobufCMessageUnknownField k8 = {8, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, 1, empty_msg};
  struct exec_spec ko = {.op_unknown = &k8};
  assert_int_equal(exec_status(&p, &ko, rule, reason), BG_GRPC_INVALID_ARGUMENT);
  assert_string_equal(rule, "decode"); /* exec and passthrough: two members of one oneof */
  assert_non_null(strstr(reason, "passthrough"));

  /* an enum value outside the schema: CacheOpt.sharing 7 */
  struct exec_spec sh = {.cache_id = "go", .sharing = 7};
  assert_int_equal(exec_status(&p, &sh, rule, reason), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_unknown");
  assert_non_null(strstr(reason, "value 7 of pb.CacheOpt.sharing"));
  sh.sharing = PB__CACHE_SHARING_OPT__LOCKED;
  assert_int_equal(exec_status(&p, &sh, rule, NULL), 0);
}

static void test_unknown_in_op_metadata(void **st)
{
  struct bg_profile p;
  PROF_RESTRICTED(p);
  ProtobufCBinaryData op = op_source("docker-image://docker.io/library/alpine:latest", NULL, NULL);
  char d0[72];
  digest(&op, d0);
  Pb__OpMetadata md = PB__OP_METADATA__INIT;
  uint8_t zero = 0; /* an empty length-prefixed payload: its length byte */
  /* caps (5) is known; linux_resources (7, v0.31) sets resource limits the gateway cannot judge */
  ProtobufCMessageUnknownField f[2] = {{5, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, 1, &zero},
                                       {7, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, 1, &zero}};
  md.base.unknown_fields = f;
  md.base.n_unknown_fields = 1;
  Pb__Definition__MetadataEntry me = PB__DEFINITION__METADATA_ENTRY__INIT;
  Pb__Definition__MetadataEntry *mes[] = {&me};
  me.key = d0;
  me.value = &md;
  Pb__Definition def = PB__DEFINITION__INIT;
  def.def = &op;
  def.n_def = 1;
  def.metadata = mes;
  def.n_metadata = 1;
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  q.ref = "r";
  q.definition = &def;
  size_t n;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run_as(&r, &p, "ci", &facts_v11, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  bg_inspect_free(&r);
  free(m);
  md.base.n_unknown_fields = 2;
  m = pack_any(&q.base, &n);
  run_as(&r, &p, "ci", &facts_v11, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "llb_unknown");
  assert_non_null(strstr(r.reason, "field 7 of pb.OpMetadata"));
  bg_inspect_free(&r);
  free(m);
  free(op.data);
}

/* ---- shared local vertices ------------------------------------------------------------------ */

static Pb__Definition *out_def(const struct bg_inspect *r, Moby__Buildkit__V1__SolveRequest **q);

/* A Solve of one local source (optionally with local.unique) and an exec
 * op reading it; returns the packed request, ops[] owned by the caller. */
static uint8_t *solve_local(const char *unique, size_t *n, ProtobufCBinaryData ops[2])
{
  ops[0] = op_source("local://context", unique ? "local.unique" : NULL, unique);
  char d0[72];
  digest(&ops[0], d0);
  Pb__Input in = PB__INPUT__INIT;
  Pb__Input *ins[] = {&in};
  in.digest = d0;
  Pb__Op op = PB__OP__INIT;
  op.inputs = ins;
  op.n_inputs = 1;
  Pb__FileOp fo = PB__FILE_OP__INIT;
  op.op_case = PB__OP__OP_FILE;
  op.file = &fo;
  ops[1].len = pb__op__get_packed_size(&op);
  ops[1].data = malloc(ops[1].len);
  pb__op__pack(&op, ops[1].data);
  Pb__Definition def = PB__DEFINITION__INIT;
  def.def = ops;
  def.n_def = 2;
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  q.ref = "r";
  q.definition = &def;
  return pack_any(&q.base, n);
}

/* Two tenants sending the same session-less local source at once must not
 * share one solver vertex (it would sync from either tenant's session):
 * under isolate each gets its own local.unique, re-keyed into the graph. */
static void test_local_sources_per_tenant(void **st)
{
  struct bg_profile p;
  PROF_RESTRICTED(p);
  p.isolate = 1;
  char dig[2][72];
  for (int pass = 0; pass < 2; pass++) {
    ProtobufCBinaryData ops[2];
    size_t n;
    uint8_t *m = solve_local(pass ? "abc" : NULL, &n, ops);
    for (int t = 0; t < 2; t++) {
      struct bg_inspect r;
      run_as(&r, &p, t ? "dev" : "ci", &facts_v11, bg_inspect_control_solve, m, n);
      assert_int_equal(r.grpc_status, 0);
      assert_non_null(r.out);
      const char *want = pass ? (t ? "dev.abc" : "ci.abc") : (t ? "dev." : "ci.");
      assert_string_equal(rw_new(&r, "Definition.def[0].source.attrs[local.unique]"), want);
      Moby__Buildkit__V1__SolveRequest *q;
      Pb__Definition *d = out_def(&r, &q);
      Pb__Op *so = pb__op__unpack(NULL, d->def[0].len, d->def[0].data);
      assert_non_null(so);
      int found = 0;
      for (size_t i = 0; i < so->source->n_attrs; i++)
        if (!strcmp(so->source->attrs[i]->key, "local.unique")) {
          assert_string_equal(so->source->attrs[i]->value, want);
          found++;
        }
      assert_int_equal(found, 1);
      digest(&d->def[0], dig[t]);
      Pb__Op *fo = pb__op__unpack(NULL, d->def[1].len, d->def[1].data);
      assert_string_equal(fo->inputs[0]->digest, dig[t]); /* re-keyed */
      pb__op__free_unpacked(fo, NULL);
      pb__op__free_unpacked(so, NULL);
      moby__buildkit__v1__solve_request__free_unpacked(q, NULL);
      bg_inspect_free(&r);
    }
    assert_string_not_equal(dig[0], dig[1]); /* no vertex the two tenants share */
    /* without isolate the request is forwarded as sent */
    p.isolate = 0;
    struct bg_inspect r;
    run_as(&r, &p, "ci", &facts_v11, bg_inspect_control_solve, m, n);
    assert_int_equal(r.grpc_status, 0);
    assert_null(r.out);
    bg_inspect_free(&r);
    p.isolate = 1;
    free(ops[0].data);
    free(ops[1].data);
    free(m);
  }
}

/* ---- cache mounts -------------------------------------------------------------------------- */

static Pb__Definition *out_def(const struct bg_inspect *r, Moby__Buildkit__V1__SolveRequest **q)
{
  *q = moby__buildkit__v1__solve_request__unpack(NULL, r->outlen, r->out);
  assert_non_null(*q);
  return (*q)->definition;
}

static void test_cache_mount_ids_per_tenant(void **st)
{
  struct bg_profile p;
  PROF_RESTRICTED(p);
  p.isolate = 1;
  struct exec_spec s = {.cache_id = "shared", .sharing = PB__CACHE_SHARING_OPT__LOCKED};
  ProtobufCBinaryData ops[3];
  size_t n;
  uint8_t *m = solve3(&s, &n, ops);
  for (int t = 0; t < 2; t++) {
    struct bg_inspect r;
    run_as(&r, &p, t ? "dev" : "ci", &facts_v11, bg_inspect_control_solve, m, n);
    assert_int_equal(r.grpc_status, 0);
    assert_non_null(r.out);
    assert_string_equal(rw_new(&r, "Definition.def[1].exec.mounts[1].cacheOpt.ID"), t ? "dev.shared" : "ci.shared");
    Moby__Buildkit__V1__SolveRequest *q;
    Pb__Definition *d = out_def(&r, &q);
    assert_int_equal(d->n_def, 3);
    Pb__Op *ex = pb__op__unpack(NULL, d->def[1].len, d->def[1].data);
    assert_non_null(ex);
    assert_string_equal(ex->exec->mounts[1]->cacheopt->id, t ? "dev.shared" : "ci.shared");
    assert_int_equal(ex->exec->mounts[1]->cacheopt->sharing, PB__CACHE_SHARING_OPT__LOCKED); /* kept */
    /* re-keyed: the file op now names the rewritten exec op */
    char dnew[72];
    digest(&d->def[1], dnew);
    Pb__Op *fo = pb__op__unpack(NULL, d->def[2].len, d->def[2].data);
    assert_string_equal(fo->inputs[0]->digest, dnew);
    pb__op__free_unpacked(fo, NULL);
    pb__op__free_unpacked(ex, NULL);
    moby__buildkit__v1__solve_request__free_unpacked(q, NULL);
    bg_inspect_free(&r);
  }
  free3(ops, m);

  /* an empty ID is the mount's dest for BuildKit's pruning and "" for its
   * mount manager: both become the tenant's wrap(dest) */
  struct exec_spec e = {.cache_id = ""};
  m = solve3(&e, &n, ops);
  struct bg_inspect r;
  run_as(&r, &p, "ci", &facts_v11, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  assert_string_equal(rw_new(&r, "Definition.def[1].exec.mounts[1].cacheOpt.ID"), "ci./cache");
  bg_inspect_free(&r);
  /* without isolate nothing changes */
  p.isolate = 0;
  run_as(&r, &p, "ci", &facts_v11, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  assert_null(r.out);
  assert_int_equal(r.n_rewrites, 0);
  bg_inspect_free(&r);
  free3(ops, m);
}

/* ---- NewContainer / ExecProcess ------------------------------------------------------------ */

static void test_new_container_powers_and_cache(void **st)
{
  struct bg_profile p;
  PROF_RESTRICTED(p);
  p.isolate = 1;
  Moby__Buildkit__V1__Frontend__NewContainerRequest q = MOBY__BUILDKIT__V1__FRONTEND__NEW_CONTAINER_REQUEST__INIT;
  Pb__Mount cm = PB__MOUNT__INIT;
  Pb__CacheOpt co = PB__CACHE_OPT__INIT;
  cm.dest = "/root/.cache";
  cm.mounttype = PB__MOUNT_TYPE__CACHE;
  cm.cacheopt = &co;
  co.id = "gomod";
  Pb__Mount *ms[] = {&cm};
  q.containerid = "c1";
  q.mounts = ms;
  q.n_mounts = 1;
  size_t n;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run_as(&r, &p, "ci", &facts_v11, bg_inspect_new_container, m, n);
  assert_int_equal(r.grpc_status, 0);
  assert_non_null(r.out);
  Moby__Buildkit__V1__Frontend__NewContainerRequest *o =
      moby__buildkit__v1__frontend__new_container_request__unpack(NULL, r.outlen, r.out);
  assert_string_equal(o->mounts[0]->cacheopt->id, "ci.gomod");
  moby__buildkit__v1__frontend__new_container_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);
  free(m);

  Pb__HostIP h = PB__HOST_IP__INIT;
  Pb__HostIP *hs[] = {&h};
  h.host = "x";
  h.ip = "1.2.3.4";
  q.extrahosts = hs;
  q.n_extrahosts = 1;
  m = pack_any(&q.base, &n);
  run_as(&r, &p, "ci", &facts_v11, bg_inspect_new_container, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "llb_extra_hosts");
  assert_non_null(strstr(r.reason, "NewContainer.extraHosts"));
  bg_inspect_free(&r);
  free(m);
  q.n_extrahosts = 0;
  q.hostname = "box";
  m = pack_any(&q.base, &n);
  run_as(&r, &p, "ci", &facts_v11, bg_inspect_new_container, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "llb_hostname");
  bg_inspect_free(&r);
  free(m);
}

static void test_exec_process_meta(void **st)
{
  struct bg_profile p;
  PROF_RESTRICTED(p);
  Moby__Buildkit__V1__Frontend__ExecMessage q = MOBY__BUILDKIT__V1__FRONTEND__EXEC_MESSAGE__INIT;
  Moby__Buildkit__V1__Frontend__InitMessage in = MOBY__BUILDKIT__V1__FRONTEND__INIT_MESSAGE__INIT;
  Pb__Meta meta = PB__META__INIT;
  meta.cgroupparent = "/kubepods";
  in.containerid = "c1";
  in.meta = &meta;
  q.processid = "p1";
  q.input_case = MOBY__BUILDKIT__V1__FRONTEND__EXEC_MESSAGE__INPUT_INIT;
  q.init = &in;
  size_t n;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run_as(&r, &p, "ci", &facts_v11, bg_inspect_exec_process, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "llb_cgroup_parent");
  assert_non_null(strstr(r.reason, "ExecProcess.Init.Meta"));
  bg_inspect_free(&r);
  free(m);
  meta.cgroupparent = "";
  m = pack_any(&q.base, &n);
  run_as(&r, &p, "ci", &facts_v11, bg_inspect_exec_process, m, n);
  assert_int_equal(r.grpc_status, 0);
  bg_inspect_free(&r);
  free(m);
}

/* ---- images ------------------------------------------------------------------------------------ */

static void test_docker_normalize(void **st)
{
  char o[200];
  static const char *const cases[][3] = {
      {"alpine", "docker.io/library/alpine", "docker.io/library/alpine"},
      {"alpine:3.19", "docker.io/library/alpine", "docker.io/library/alpine:3.19"},
      {"ci/app@sha256:abc", "docker.io/ci/app", "docker.io/ci/app@sha256:abc"},
      {"docker.io/ci/app:1", "docker.io/ci/app", "docker.io/ci/app:1"},
      {"index.docker.io/alpine", "docker.io/library/alpine", "docker.io/library/alpine"},
      {"localhost:5000/x:1", "localhost:5000/x", "localhost:5000/x:1"},
      {"Ci/app", "Ci/app", "Ci/app"}, /* an uppercase first component is a registry host to Docker */
      {"registry.example.com/ci/", "registry.example.com/ci/", "registry.example.com/ci/"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    assert_int_equal(bg_docker_normalize(cases[i][0], strlen(cases[i][0]), 1, o, sizeof o), 0);
    assert_string_equal(o, cases[i][1]);
    assert_int_equal(bg_docker_normalize(cases[i][0], strlen(cases[i][0]), 0, o, sizeof o), 0);
    assert_string_equal(o, cases[i][2]);
  }
  assert_int_equal(bg_docker_normalize("a\0b", 3, 1, o, sizeof o), -1);
}

static int source_status(const struct bg_profile *p, const char *tenant, const struct bg_backend_facts *fx,
                         const char *ident, const char *akey, const char *aval, char rule[64])
{
  ProtobufCBinaryData op = op_source(ident, akey, aval);
  size_t n;
  uint8_t *m = solve_with_def(&op, 1, &n);
  struct bg_inspect r;
  run_as(&r, p, tenant, fx, bg_inspect_control_solve, m, n);
  int s = r.grpc_status;
  strcpy(rule, r.rule);
  bg_inspect_free(&r);
  free(m);
  free(op.data);
  return s;
}

static void test_other_tenants_images(void **st)
{
  /* two tenants with moby prefixes, as a loaded policy links them */
  struct bg_kv pv[] = {{"ci", "docker.io/ci/"}, {"dev", "docker.io/dev/"}, {"dev", "registry.example.com/dev/"}};
  struct bg_kvlist pl = {pv, 3};
  struct bg_profile p;
  PROF_RESTRICTED(p);
  p.isolate = 1;
  p.tenant_image_prefixes = &pl;
  char rule[64];
  assert_int_equal(source_status(&p, "ci", &facts_docker, "docker-image://dev/app:1", NULL, NULL, rule),
                   BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_sources");
  assert_int_equal(source_status(&p, "ci", &facts_docker, "docker-image://docker.io/dev/app@sha256:00", NULL, NULL, rule),
                   BG_GRPC_PERMISSION_DENIED);
  assert_int_equal(source_status(&p, "ci", &facts_docker, "docker-image://registry.example.com/dev/x", NULL, NULL, rule),
                   BG_GRPC_PERMISSION_DENIED);
  /* its own images, and everyone's public ones */
  assert_int_equal(source_status(&p, "ci", &facts_docker, "docker-image://ci/app:1", NULL, NULL, rule), 0);
  assert_int_equal(source_status(&p, "ci", &facts_docker, "docker-image://alpine", NULL, NULL, rule), 0);
  assert_int_equal(source_status(&p, "dev", &facts_docker, "docker-image://dev/app:1", NULL, NULL, rule), 0);
  /* a BuildKit backend has no shared image store; isolate off: no scoping */
  assert_int_equal(source_status(&p, "ci", &facts_v11, "docker-image://dev/app:1", NULL, NULL, rule), 0);
  p.isolate = 0;
  assert_int_equal(source_status(&p, "ci", &facts_docker, "docker-image://dev/app:1", NULL, NULL, rule), 0);
}

static void test_image_resolve_mode(void **st)
{
  struct bg_profile p;
  PROF_RESTRICTED(p);
  p.llb_resolve_modes = SL("default", "pull");
  char rule[64];
  const char *img = "docker-image://docker.io/library/alpine:latest";
  assert_int_equal(source_status(&p, "ci", &facts_v11, img, "image.resolvemode", "pull", rule), 0);
  assert_int_equal(source_status(&p, "ci", &facts_v11, img, "image.resolvemode", "", rule), 0); /* "" is default */
  assert_int_equal(source_status(&p, "ci", &facts_v11, img, "image.resolvemode", "local", rule),
                   BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_image_resolve_mode");
  assert_int_equal(source_status(&p, "ci", &facts_v11, img, "image.resolvemode", "Local", rule),
                   BG_GRPC_PERMISSION_DENIED);
  p.llb_resolve_modes = SL("default", "pull", "local");
  assert_int_equal(source_status(&p, "ci", &facts_v11, img, "image.resolvemode", "local", rule), 0);
}

/* ---- LLB rules, devices, local-session rekeying, FrontendInputs (from test_inspect.c) ---- */

static int llb_status(const struct bg_profile *p, ProtobufCBinaryData *ops, size_t n, char *rule)
{
  size_t len;
  uint8_t *m = solve_with_def(ops, n, &len);
  struct bg_inspect r;
  run(&r, p, 0, bg_inspect_control_solve, m, len);
  int st = r.grpc_status;
  strcpy(rule, r.rule);
  bg_inspect_free(&r);
  free(m);
  return st;
}

static void test_llb_rules(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  p.isolate = 0;
  char rule[64], d0[72];
  ProtobufCBinaryData ops[3];
  ops[0] = op_source("docker-image://docker.io/library/alpine:latest", NULL, NULL);
  digest(&ops[0], d0);
  ops[1] = op_exec(PB__NET_MODE__UNSET, PB__SECURITY_MODE__SANDBOX, PB__MOUNT_TYPE__CACHE, d0);
  ops[2] = op_file(d0);
  assert_int_equal(llb_status(&p, ops, 3, rule), 0);
  free(ops[1].data);

  ops[1] = op_exec(PB__NET_MODE__HOST, PB__SECURITY_MODE__SANDBOX, -1, d0);
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_network");
  p.llb_network = SL("sandbox", "host");
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "entitlements"); /* host needs network.host granted */
  p.entitlements = SL("network.host");
  /* the builder profile denies force-network-mode: the same power in LLB is denied too */
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_network");
  p.frontend_attrs.deny = SL("add-hosts");
  assert_int_equal(llb_status(&p, ops, 3, rule), 0);
  free(ops[1].data);

  ops[1] = op_exec(PB__NET_MODE__UNSET, PB__SECURITY_MODE__INSECURE, -1, d0);
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_security");
  p.llb_security = SL("sandbox", "insecure");
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "entitlements");
  free(ops[1].data);

  ops[1] = op_exec(7, 0, -1, d0);
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_unknown"); /* a value the schema does not declare: unknown LLB */
  free(ops[1].data);

  ops[1] = op_exec(0, 0, PB__MOUNT_TYPE__SECRET, d0);
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_mounts");
  p.llb_mounts = SL("secret");
  assert_int_equal(llb_status(&p, ops, 3, rule), 0);
  free(ops[1].data);
  ops[1] = op_exec(0, 0, PB__MOUNT_TYPE__SSH, d0);
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_mounts");
  free(ops[1].data);
  ops[1] = op_exec(0, 0, -1, d0);

  /* secretenv counts as a secret mount (no block: the SL() literals must
   * live as long as p) */
  Pb__Op seop = PB__OP__INIT;
  Pb__ExecOp seex = PB__EXEC_OP__INIT;
  Pb__SecretEnv se = PB__SECRET_ENV__INIT;
  Pb__SecretEnv *ses[] = {&se};
  se.id = "tok";
  se.name = "TOKEN";
  seex.secretenv = ses;
  seex.n_secretenv = 1;
  seop.op_case = PB__OP__OP_EXEC;
  seop.exec = &seex;
  ProtobufCBinaryData sop;
  sop.data = pack_any(&seop.base, &sop.len);
  p.llb_mounts.n = 0;
  assert_int_equal(llb_status(&p, &sop, 1, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_mounts");
  p.llb_mounts = SL("secret");
  assert_int_equal(llb_status(&p, &sop, 1, rule), 0);
  free(sop.data);

  free(ops[0].data);
  ops[0] = op_source("git://github.com/moby/buildkit", NULL, NULL);
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_sources");
  p.llb_sources = SL("git://github.com/*");
  assert_int_equal(llb_status(&p, ops, 3, rule), 0);
  free(ops[0].data);
  ops[0] = op_source("git://github.com/moby/buildkit", "git.mountsshsock", "default");
  assert_int_equal(llb_status(&p, ops, 3, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_source_attrs");
  p.llb_any = 1; /* llb_any skips the LLB allow-lists */
  assert_int_equal(llb_status(&p, ops, 3, rule), 0);
  p.llb_any = 0;
  free(ops[0].data);

  /* BuildOp: its LLB is invisible */
  Pb__Op b = PB__OP__INIT;
  Pb__BuildOp bo = PB__BUILD_OP__INIT;
  b.op_case = PB__OP__OP_BUILD;
  b.build = &bo;
  ops[0].data = pack_any(&b.base, &ops[0].len);
  assert_int_equal(llb_status(&p, ops, 1, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_build");
  free(ops[0].data);

  /* unknown op kind (v0.31 passthrough = 8) */
  static const uint8_t pass[] = {0x42, 0x00};
  ops[0].data = (uint8_t *)pass;
  ops[0].len = sizeof pass;
  assert_int_equal(llb_status(&p, ops, 1, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_unknown");

  /* undecodable op */
  static const uint8_t bad[] = {0x12, 0x05, 0x01};
  ops[0].data = (uint8_t *)bad;
  ops[0].len = sizeof bad;
  assert_int_equal(llb_status(&p, ops, 1, rule), BG_GRPC_INVALID_ARGUMENT);
  free(ops[1].data);
  free(ops[2].data);
}

static void test_llb_cdi_devices(void **st)
{
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  p.entitlements = SL("device=nvidia.com/gpu=*");
  Pb__Op op = PB__OP__INIT;
  Pb__ExecOp ex = PB__EXEC_OP__INIT;
  Pb__CDIDevice dev = PB__CDIDEVICE__INIT;
  Pb__CDIDevice *devs[] = {&dev};
  dev.name = "vendor.com/fpga=0";
  ex.cdidevices = devs;
  ex.n_cdidevices = 1;
  op.op_case = PB__OP__OP_EXEC;
  op.exec = &ex;
  ProtobufCBinaryData o;
  o.data = pack_any(&op.base, &o.len);
  char rule[64];
  assert_int_equal(llb_status(&p, &o, 1, rule), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "llb_devices");
  free(o.data);
  dev.name = "nvidia.com/gpu=0";
  o.data = pack_any(&op.base, &o.len);
  assert_int_equal(llb_status(&p, &o, 1, rule), 0);
  free(o.data);
}

/* isolate: local.session is namespaced inside the LLB; digests re-keyed */
static void test_llb_local_session_rekey(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  p.frontend_attrs.set.n = 0;
  ProtobufCBinaryData ops[4];
  char d0[72], d1[72], d2[72];
  ops[0] = op_source("local://context", "local.session", "sessX");
  digest(&ops[0], d0);
  ops[1] = op_exec(PB__NET_MODE__NONE, 0, -1, d0);
  digest(&ops[1], d1);
  ops[2] = op_source("docker-image://docker.io/library/busybox:latest", NULL, NULL);
  digest(&ops[2], d2);
  ops[3] = op_file(d1); /* terminal-ish op depending on the exec */
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Pb__Definition def = PB__DEFINITION__INIT;
  Pb__OpMetadata md0 = PB__OP_METADATA__INIT, md2 = PB__OP_METADATA__INIT;
  md0.ignore_cache = 1;
  Pb__Definition__MetadataEntry me0 = PB__DEFINITION__METADATA_ENTRY__INIT, me2 = PB__DEFINITION__METADATA_ENTRY__INIT;
  me0.key = d0;
  me0.value = &md0;
  me2.key = d2;
  me2.value = &md2;
  Pb__Definition__MetadataEntry *mes[] = {&me0, &me2};
  def.metadata = mes;
  def.n_metadata = 2;
  def.def = ops;
  def.n_def = 4;
  q.definition = &def;
  q.ref = "r9";
  q.session = "sessX";
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  assert_non_null(r.out);
  assert_int_equal(r.n_ops, 4);
  assert_string_equal(rw_new(&r, "Definition.def[0].source.attrs[local.session]"), "ci.sessX");
  Moby__Buildkit__V1__SolveRequest *o = moby__buildkit__v1__solve_request__unpack(NULL, r.outlen, r.out);
  assert_non_null(o);
  Pb__Definition *od = o->definition;
  assert_int_equal(od->n_def, 4);
  Pb__Op *s0 = pb__op__unpack(NULL, od->def[0].len, od->def[0].data);
  assert_string_equal(s0->source->attrs[0]->value, "ci.sessX");
  pb__op__free_unpacked(s0, NULL);
  char n0[72], n1[72], n2[72];
  digest(&od->def[0], n0);
  digest(&od->def[1], n1);
  digest(&od->def[2], n2);
  assert_string_not_equal(n0, d0);
  assert_string_equal(n2, d2); /* untouched op keeps its bytes */
  Pb__Op *e1 = pb__op__unpack(NULL, od->def[1].len, od->def[1].data);
  assert_string_equal(e1->inputs[0]->digest, n0);
  pb__op__free_unpacked(e1, NULL);
  Pb__Op *f3 = pb__op__unpack(NULL, od->def[3].len, od->def[3].data);
  assert_string_equal(f3->inputs[0]->digest, n1);
  pb__op__free_unpacked(f3, NULL);
  int found0 = 0, found2 = 0;
  for (size_t i = 0; i < od->n_metadata; i++) {
    found0 |= !strcmp(od->metadata[i]->key, n0) && od->metadata[i]->value->ignore_cache;
    found2 |= !strcmp(od->metadata[i]->key, d2);
  }
  assert_true(found0 && found2);
  assert_string_equal(o->session, "ci.sessX");
  moby__buildkit__v1__solve_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);
  free(m);

  /* same graph in reverse order (not topological): still re-keyed */
  ProtobufCBinaryData rev[4] = {ops[3], ops[2], ops[1], ops[0]};
  def.def = rev;
  m = pack_any(&q.base, &n);
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  o = moby__buildkit__v1__solve_request__unpack(NULL, r.outlen, r.out);
  od = o->definition;
  digest(&od->def[3], n0);
  digest(&od->def[2], n1);
  e1 = pb__op__unpack(NULL, od->def[2].len, od->def[2].data);
  assert_string_equal(e1->inputs[0]->digest, n0);
  pb__op__free_unpacked(e1, NULL);
  f3 = pb__op__unpack(NULL, od->def[0].len, od->def[0].data);
  assert_string_equal(f3->inputs[0]->digest, n1);
  pb__op__free_unpacked(f3, NULL);
  moby__buildkit__v1__solve_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);
  free(m);
  for (int i = 0; i < 4; i++)
    free(ops[i].data);
}

/* isolate, ops listed consumers first and every op also naming the session
 * source: each pass remaps every op again, so re-keying takes as many passes
 * as the chain is long and maps far more digests than there are ops (the
 * string-keyed map of fixed size 2n+2 used to fill up and spin here) */
static void test_llb_rekey_reverse_chain_many_passes(void **st)
{
  enum { K = 24 };
  struct bg_profile p;
  PROF_BUILDER(p);
  p.frontend_attrs.set.n = 0;
  p.llb_any = 1;
  ProtobufCBinaryData ops[K];
  char dg[K][72];
  ops[0] = op_source("local://context", "local.session", "sessR");
  digest(&ops[0], dg[0]);
  for (int i = 1; i < K; i++) {
    Pb__Op op = PB__OP__INIT;
    Pb__FileOp f = PB__FILE_OP__INIT;
    Pb__Input in0 = PB__INPUT__INIT, in1 = PB__INPUT__INIT;
    Pb__Input *ins[] = {&in0, &in1};
    in0.digest = dg[i - 1];
    in1.digest = dg[0];
    op.inputs = ins;
    op.n_inputs = i > 1 ? 2 : 1;
    op.op_case = PB__OP__OP_FILE;
    op.file = &f;
    ops[i].data = pack_any(&op.base, &ops[i].len);
    digest(&ops[i], dg[i]);
  }
  ProtobufCBinaryData rev[K];
  for (int i = 0; i < K; i++)
    rev[i] = ops[K - 1 - i];
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Pb__Definition def = PB__DEFINITION__INIT;
  Pb__OpMetadata md = PB__OP_METADATA__INIT;
  md.ignore_cache = 1;
  Pb__Definition__MetadataEntry me = PB__DEFINITION__METADATA_ENTRY__INIT;
  me.key = dg[K - 1];
  me.value = &md;
  Pb__Definition__MetadataEntry *mes[] = {&me};
  def.metadata = mes;
  def.n_metadata = 1;
  def.def = rev;
  def.n_def = K;
  q.definition = &def;
  q.ref = "r9";
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  assert_non_null(r.out);
  Moby__Buildkit__V1__SolveRequest *o = moby__buildkit__v1__solve_request__unpack(NULL, r.outlen, r.out);
  assert_non_null(o);
  Pb__Definition *od = o->definition;
  assert_int_equal(od->n_def, K);
  char nd[K][72]; /* new digest of op i (listed at K-1-i) */
  for (int i = 0; i < K; i++)
    digest(&od->def[K - 1 - i], nd[i]);
  for (int i = 1; i < K; i++) {
    Pb__Op *x = pb__op__unpack(NULL, od->def[K - 1 - i].len, od->def[K - 1 - i].data);
    assert_non_null(x);
    assert_string_not_equal(nd[i], dg[i]);
    assert_string_equal(x->inputs[0]->digest, nd[i - 1]);
    if (i > 1)
      assert_string_equal(x->inputs[1]->digest, nd[0]);
    pb__op__free_unpacked(x, NULL);
  }
  assert_int_equal(od->n_metadata, 1);
  assert_string_equal(od->metadata[0]->key, nd[K - 1]);
  assert_true(od->metadata[0]->value->ignore_cache);
  moby__buildkit__v1__solve_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);
  free(m);
  for (int i = 0; i < K; i++)
    free(ops[i].data);
}

static void test_llb_frontend_inputs(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  p.isolate = 0;
  ProtobufCBinaryData op = op_exec(PB__NET_MODE__HOST, 0, -1, NULL);
  Pb__Definition def = PB__DEFINITION__INIT;
  def.def = &op;
  def.n_def = 1;
  Moby__Buildkit__V1__Frontend__SolveRequest q = MOBY__BUILDKIT__V1__FRONTEND__SOLVE_REQUEST__INIT;
  Moby__Buildkit__V1__Frontend__SolveRequest__FrontendInputsEntry fi =
      MOBY__BUILDKIT__V1__FRONTEND__SOLVE_REQUEST__FRONTEND_INPUTS_ENTRY__INIT;
  Moby__Buildkit__V1__Frontend__SolveRequest__FrontendInputsEntry *fis[] = {&fi};
  fi.key = "context";
  fi.value = &def;
  q.frontendinputs = fis;
  q.n_frontendinputs = 1;
  q.frontend = "dockerfile.v0";
  size_t n = 0;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run(&r, &p, 0, bg_inspect_bridge_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "llb_network");
  assert_non_null(strstr(r.reason, "FrontendInputs[context].def[0]"));
  bg_inspect_free(&r);
  free(m);

  /* same through Control.Solve field 10 */
  Moby__Buildkit__V1__SolveRequest cq = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Moby__Buildkit__V1__SolveRequest__FrontendInputsEntry cfi = MOBY__BUILDKIT__V1__SOLVE_REQUEST__FRONTEND_INPUTS_ENTRY__INIT;
  Moby__Buildkit__V1__SolveRequest__FrontendInputsEntry *cfis[] = {&cfi};
  cfi.key = "context";
  cfi.value = &def;
  cq.frontendinputs = cfis;
  cq.n_frontendinputs = 1;
  m = pack_any(&cq.base, &n);
  run(&r, &p, 0, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "llb_network");
  bg_inspect_free(&r);
  free(m);
  free(op.data);
}

/* The name every op's checks give it: the index in full, the field cut if
 * the buffer is short, no index at all for a nested view (idx < 0). */
static void test_llb_op_field_name(void **state)
{
  (void)state;
  char b[64];
  assert_string_equal(bg_op_field(b, sizeof b, "Definition", 0), "Definition.def[0]");
  assert_string_equal(bg_op_field(b, sizeof b, "SolveRequest.Definition", 1234567), "SolveRequest.Definition.def[1234567]");
  assert_string_equal(bg_op_field(b, sizeof b, "Definition", -1), "Definition");
  char s[16];
  assert_string_equal(bg_op_field(s, sizeof s, "Definition", 42), "Definit.def[42]"); /* 15 bytes and the NUL */
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_meta_powers_denied_by_default),
      cmocka_unit_test(test_meta_powers_follow_frontend_attr_deny),
      cmocka_unit_test(test_unknown_fields_fail_closed),
      cmocka_unit_test(test_unknown_in_op_metadata),
      cmocka_unit_test(test_cache_mount_ids_per_tenant),
      cmocka_unit_test(test_new_container_powers_and_cache),
      cmocka_unit_test(test_exec_process_meta),
      cmocka_unit_test(test_docker_normalize),
      cmocka_unit_test(test_other_tenants_images),
      cmocka_unit_test(test_image_resolve_mode),
      cmocka_unit_test(test_local_sources_per_tenant),
      cmocka_unit_test(test_llb_rules),
      cmocka_unit_test(test_llb_cdi_devices),
      cmocka_unit_test(test_llb_local_session_rekey),
      cmocka_unit_test(test_llb_rekey_reverse_chain_many_passes),
      cmocka_unit_test(test_llb_frontend_inputs),
      cmocka_unit_test(test_llb_op_field_name),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

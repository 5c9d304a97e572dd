/* inspect_helpers.h: profiles and message builders shared by test_inspect_*.c
 * and tests/bench/bench_inspect.c. */
#ifndef TEST_INSPECT_HELPERS_H
#define TEST_INSPECT_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/inspect.h"
#include "policy/inspect_int.h"
#include "proto/control.pb-c.h"
#include "proto/gateway.pb-c.h"
#include "proto/ops.pb-c.h"
#include "proto/sourcepolicy.pb-c.h"
#include "fixture.h"

#define SL(...) ((struct bg_strlist){(char *[]){__VA_ARGS__}, sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)})
#define KVL(...) ((struct bg_kvlist){(struct bg_kv[]){__VA_ARGS__}, sizeof((struct bg_kv[]){__VA_ARGS__}) / sizeof(struct bg_kv)})

/* Profiles are statement macros (no block) so the compound literals live as long as the calling
 * block (a function returning them would hand out dangling arrays). */
#define PROF_PERMISSIVE(p)                                                         \
    memset(&(p), 0, sizeof(p));                                                    \
    (p).name = "admin";                                                            \
    (p).methods = SL("*");                                                         \
    (p).entitlements = SL("*");                                                    \
    (p).frontends_any = (p).exporters_any = (p).cache_any = (p).llb_any = 1;      \
    (p).session_exporter = 1;                                                      \
    (p).session_methods_any = 1 /* as the loader sets it when the key is absent */

/* The "builder" profile of DESIGN.md. */
__attribute__((unused)) static struct bg_exporter_rule builder_ex[5];
#define PROF_BUILDER(p)                                                            \
    memset(&(p), 0, sizeof(p));                                                    \
    (p).name = "builder";                                                          \
    (p).frontends = SL("dockerfile.v0", "gateway.v0");                             \
    (p).frontend_attrs.deny = SL("force-network-mode", "add-hosts");               \
    (p).frontend_attrs.set = KVL({"attest:provenance", "mode=min"});               \
    memset(builder_ex, 0, sizeof builder_ex);                                                    \
    builder_ex[0].type = "image";                                                         \
    builder_ex[0].attrs.set = KVL({"push", "false"});                                     \
    builder_ex[0].attrs.del = SL("registry.insecure", "unpack");                          \
    builder_ex[0].attrs.name_prefix = "registry.example.com/${tenant}/";                  \
    builder_ex[1].type = "moby";                                                          \
    builder_ex[1].attrs.name_prefix = "${tenant}/";                                       \
    builder_ex[2].type = "local";                                                         \
    builder_ex[3].type = "tar";                                                           \
    builder_ex[4].type = "oci";                                                           \
    (p).exporters = builder_ex;                                                           \
    (p).n_exporters = 5;                                                           \
    (p).cache_import = SL("local", "registry");                                    \
    (p).cache_export = SL("local", "inline");                                      \
    (p).llb_network = SL("sandbox", "none");                                       \
    (p).llb_security = SL("sandbox");                                              \
    (p).llb_sources = SL("docker-image://*", "local://*");                         \
    (p).session_methods_any = 1; /* as the loader sets it when the key is absent */ \
    (p).isolate = 1


static inline uint8_t *pack_any(const ProtobufCMessage *m, size_t *len)
{
  *len = protobuf_c_message_get_packed_size(m);
  uint8_t *b = malloc(*len ? *len : 1);
  protobuf_c_message_pack(m, b);
  return b;
}

/* Op builders: return packed op bytes (malloc'd) */
static inline ProtobufCBinaryData op_exec(int net, int sec, int mount_type, const char *input_digest)
{
  Pb__Op op = PB__OP__INIT;
  Pb__ExecOp ex = PB__EXEC_OP__INIT;
  Pb__Meta meta = PB__META__INIT;
  char *args[] = {"/bin/sh", "-c", "echo hi"};
  meta.args = args;
  meta.n_args = 3;
  meta.cwd = "/";
  Pb__Mount m0 = PB__MOUNT__INIT, m1 = PB__MOUNT__INIT;
  m0.dest = "/";
  m0.input = 0;
  m1.dest = "/run/x";
  m1.mounttype = mount_type;
  m1.input = -1;
  Pb__Mount *ms[] = {&m0, &m1};
  ex.meta = &meta;
  ex.mounts = ms;
  ex.n_mounts = mount_type >= 0 ? 2 : 1;
  ex.network = net;
  ex.security = sec;
  Pb__Input in = PB__INPUT__INIT;
  Pb__Input *ins[] = {&in};
  if (input_digest) {
    in.digest = (char *)input_digest;
    op.inputs = ins;
    op.n_inputs = 1;
  }
  op.op_case = PB__OP__OP_EXEC;
  op.exec = &ex;
  ProtobufCBinaryData d;
  d.data = pack_any(&op.base, &d.len);
  return d;
}

static inline ProtobufCBinaryData op_source(const char *ident, const char *akey, const char *aval)
{
  Pb__Op op = PB__OP__INIT;
  Pb__SourceOp s = PB__SOURCE_OP__INIT;
  Pb__SourceOp__AttrsEntry e = PB__SOURCE_OP__ATTRS_ENTRY__INIT;
  Pb__SourceOp__AttrsEntry *es[] = {&e};
  s.identifier = (char *)ident;
  if (akey) {
    e.key = (char *)akey;
    e.value = (char *)aval;
    s.attrs = es;
    s.n_attrs = 1;
  }
  op.op_case = PB__OP__OP_SOURCE;
  op.source = &s;
  ProtobufCBinaryData d;
  d.data = pack_any(&op.base, &d.len);
  return d;
}

static inline ProtobufCBinaryData op_file(const char *input_digest)
{
  Pb__Op op = PB__OP__INIT;
  Pb__FileOp f = PB__FILE_OP__INIT;
  Pb__Input in = PB__INPUT__INIT;
  Pb__Input *ins[] = {&in};
  in.digest = (char *)input_digest;
  op.inputs = ins;
  op.n_inputs = 1;
  op.op_case = PB__OP__OP_FILE;
  op.file = &f;
  ProtobufCBinaryData d;
  d.data = pack_any(&op.base, &d.len);
  return d;
}

/* A Control.SolveRequest around |def| (ops array, n) with ref/session. */
static inline uint8_t *solve_with_def(ProtobufCBinaryData *ops, size_t n, size_t *len)
{
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Pb__Definition def = PB__DEFINITION__INIT;
  def.def = ops;
  def.n_def = n;
  q.ref = "r1";
  q.session = "s1";
  q.definition = &def;
  return pack_any(&q.base, len);
}

#endif

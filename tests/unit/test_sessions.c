/*
 * test_sessions.c: issue 11, session names and session powers.
 *   - tenant namespacing closed under BuildKit's "prefix:" rule, checked
 *     against a model of the two places BuildKit splits a session name;
 *   - X-Docker-Expose-Session-Sharedkey always in the tenant's namespace;
 *   - session_methods enforced on what makes the daemon call secrets / SSH;
 *   - the identity rule on the Docker-style and the native door.
 * Fixture paths are relative to tests/unit (unit_env.c goes there).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "tests/unit/inspect_helpers.h"
#include "policy/policy_int.h"

/* ------------------------------------------------- BuildKit's two splits */

/* session.Manager.Get: SplitN(id, ":", 2); len(p) == 2 && len(p[1]) > 0 -> p[1]. */
static const char *bk_manager_lookup(const char *id)
{
  const char *c = strchr(id, ':');
  return c && c[1] ? c + 1 : id;
}

/* Local source identifier: SplitN(v, ":", 2); len(p) == 2 -> SessionID = p[1]. */
static const char *bk_local_session(const char *v)
{
  const char *c = strchr(v, ':');
  return c ? c + 1 : v;
}

static int in_ns(const char *tenant, const char *looked_up)
{
  size_t tl = strlen(tenant);
  return strncmp(looked_up, tenant, tl) == 0 && looked_up[tl] == '.';
}

static void check_form(const char *tenant, const char *name, const char *want)
{
  char *w = bg_ns_wrap(tenant, name);
  assert_non_null(w);
  assert_string_equal(w, want);
  assert_true(in_ns(tenant, bk_manager_lookup(w)));
  assert_true(in_ns(tenant, bk_local_session(w)));
  char *u = bg_ns_unwrap_dup(tenant, w);
  assert_non_null(u);
  assert_string_equal(u, name);
  free(u);
  free(w);
}

/* The forms clients send, and the prefix forms BuildKit's comment allows. */
static void test_wrap_forms(void **st)
{
  /* buildctl / BuildKit client/solve.go: identity.NewID(), 25 chars */
  check_form("alice", "q2jnwdkas0i0iu4knchd92jaz", "alice.q2jnwdkas0i0iu4knchd92jaz");
  /* buildx: the local-sessionid:* value of a shared session, same shape */
  check_form("alice", "zz3k0vwfwtk1b1x8bfqmm1k7f", "alice.zz3k0vwfwtk1b1x8bfqmm1k7f");
  /* the prefix form: "<prefix>:<session>", the prefix is kept in front */
  check_form("alice", "ctx:q2jnwdkas0i0iu4knchd92jaz", "ctx:alice.q2jnwdkas0i0iu4knchd92jaz");
  check_form("alice", "p:", "p:alice.");
  check_form("alice", ":abc", ":alice.abc");
  check_form("alice", "a:b:c", "a:alice.b:c");
  /* issue 11: mallory names alice's live session as x:<alice's daemon ID> */
  char *w = bg_ns_wrap("mallory", "x:alice.q2jnwdkas0i0iu4knchd92jaz");
  assert_string_equal(w, "x:mallory.alice.q2jnwdkas0i0iu4knchd92jaz");
  assert_string_equal(bk_manager_lookup(w), "mallory.alice.q2jnwdkas0i0iu4knchd92jaz");
  assert_null(bg_ns_unwrap_dup("alice", w));
  free(w);
}

static void test_unwrap_forms(void **st)
{
  char *u = bg_ns_unwrap_dup("alice", "alice.r1");
  assert_string_equal(u, "r1");
  free(u);
  u = bg_ns_unwrap_dup("alice", "p:alice.r1");
  assert_string_equal(u, "p:r1");
  free(u);
  /* not alice's */
  assert_null(bg_ns_unwrap_dup("alice", "bob.r1"));
  assert_null(bg_ns_unwrap_dup("alice", "alicex.r1"));
  assert_null(bg_ns_unwrap_dup("alice", "alice"));
  assert_null(bg_ns_unwrap_dup("alice", "r1"));
  assert_null(bg_ns_unwrap_dup("alice", "p:bob.r1"));
  /* the old "<tenant>.x:y" is looked up by BuildKit as "y": nobody's */
  assert_null(bg_ns_unwrap_dup("alice", "alice.x:y"));
  /* a tenant's prefix cannot smuggle a name into another namespace */
  assert_null(bg_ns_unwrap_dup("bob", "bob.x:alice.y"));
}

/* Every name up to 5 characters over an alphabet made of the separators and
 * pieces of tenant names: what BuildKit looks up is in the wrapping tenant's
 * namespace, in no other's, and unwrap gives the name back. */
static void test_wrap_closed_exhaustive(void **st)
{
  static const char al[] = ":.ab";
  static const char *const tenants[] = {"a", "b", "ab"};
  char name[8];
  size_t checked = 0;
  for (int len = 1; len <= 5; len++) {
    int total = 1;
    for (int i = 0; i < len; i++)
      total *= 4;
    for (int k = 0; k < total; k++) {
      int x = k;
      for (int i = 0; i < len; i++, x /= 4)
        name[i] = al[x % 4];
      name[len] = '\0';
      for (size_t t = 0; t < 3; t++) {
        char *w = bg_ns_wrap(tenants[t], name);
        assert_true(in_ns(tenants[t], bk_manager_lookup(w)));
        assert_true(in_ns(tenants[t], bk_local_session(w)));
        char *u = bg_ns_unwrap_dup(tenants[t], w);
        assert_non_null(u);
        assert_string_equal(u, name);
        free(u);
        for (size_t o = 0; o < 3; o++) {
          if (o == t)
            continue;
          /* "a" and "ab" differ: "ab.x" is not in "a"'s namespace */
          assert_false(in_ns(tenants[o], bk_manager_lookup(w)));
          assert_false(in_ns(tenants[o], bk_local_session(w)));
          char *uo = bg_ns_unwrap_dup(tenants[o], w);
          assert_null(uo);
        }
        free(w);
        checked++;
      }
    }
  }
  assert_true(checked > 4000);
}

/* ------------------------------------------------------------ policy glue */

#define TOKA "alice-token"
#define TOKB "bob-token"

#define H(n, v) {n, sizeof(n) - 1, v, sizeof(v) - 1}
#define SESSION "/moby.buildkit.v1.Control/Session"
#define LISTW "/moby.buildkit.v1.Control/ListWorkers"

static char toka_hash[65], tokb_hash[65];

static void sha_hex(const char *s, char out[65])
{
  unsigned char h[32];
  unsigned int n = 0;
  EVP_Digest(s, strlen(s), h, &n, EVP_sha256(), NULL);
  for (int i = 0; i < 32; i++)
    sprintf(out + 2 * i, "%02x", h[i]);
}

static struct bg_policy *load(const char *extra_profile_keys, int tokens)
{
  if (!toka_hash[0]) {
    sha_hex(TOKA, toka_hash);
    sha_hex(TOKB, tokb_hash);
  }
  char js[4096];
  snprintf(js, sizeof js,
           "{\"mode\": \"enforce\", \"anonymous\": null,"
           " \"tenants\": ["
           "  {\"name\": \"alice\", \"match\": {\"uid\": [1001]%s%s%s}, \"profile\": \"builder\"},"
           "  {\"name\": \"bob\", \"match\": {\"uid\": [1002]%s%s%s}, \"profile\": \"builder\"},"
           "  {\"name\": \"root\", \"match\": {\"uid\": [0]}, \"profile\": \"admin\"}],"
           " \"profiles\": {"
           "  \"admin\": {\"methods\": [\"*\"], \"entitlements\": [\"*\"], \"isolate\": false},"
           "  \"builder\": {\"methods\": [\"@stable\"], \"entitlements\": [], \"isolate\": true %s}}}",
           tokens ? ", \"token_sha256\": [\"" : "", tokens ? toka_hash : "", tokens ? "\"]" : "",
           tokens ? ", \"token_sha256\": [\"" : "", tokens ? tokb_hash : "", tokens ? "\"]" : "",
           extra_profile_keys ? extra_profile_keys : "");
  struct bg_error err;
  struct bg_policy *p = bg_policy_load_string(js, strlen(js), &err);
  if (!p)
    fail_msg("%s", err.text);
  return p;
}

static struct bg_conn *open_uid(struct bg_policy *p, uid_t uid, const char *tok, const char *door)
{
  struct bg_identity id = {0};
  id.has_peercred = 1;
  id.uid = uid;
  id.gid = uid;
  id.peer = "unix:uid=test";
  id.bearer_token = tok;
  char *refusal = NULL, *audit = NULL;
  struct bg_conn *c = bg_conn_open(p, &id, door, 7, NULL, &refusal, &audit);
  free(refusal);
  free(audit);
  return c;
}

static json_t *end_call(struct bg_call *call, int status)
{
  char *line = NULL;
  bg_call_end(call, status, NULL, 0, 0, &line);
  assert_non_null(line);
  json_t *a = json_loads(line, 0, NULL);
  assert_non_null(a);
  free(line);
  return a;
}

static const char *jget(json_t *a, const char *k)
{
  json_t *v = json_object_get(a, k);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static const struct bg_header_edit *edit(const struct bg_call_decision *d, const char *name)
{
  for (size_t i = 0; i < d->n_edits; i++)
    if (strcmp(d->edits[i].name, name) == 0)
      return &d->edits[i];
  return NULL;
}

/* The shared key and session UUID a Control.Session call is forwarded with. */
static void session_call(struct bg_conn *c, const struct bg_header *h, size_t n, const char *want_key,
                         const char *want_uuid)
{
  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(c, SESSION, strlen(SESSION), h, n, &d);
  assert_int_equal(d.grpc_status, 0);
  const struct bg_header_edit *e = edit(&d, "x-docker-expose-session-sharedkey");
  if (!want_key) {
    assert_null(e);
  } else {
    assert_non_null(e);
    assert_int_equal(e->n_values, 1);
    assert_string_equal(e->values[0], want_key);
  }
  if (want_uuid) {
    e = edit(&d, "x-docker-expose-session-uuid");
    assert_non_null(e);
    assert_string_equal(e->values[0], want_uuid);
  }
  json_decref(end_call(call, 0));
}

static void test_shared_key(void **st)
{
  struct bg_policy *p = load(NULL, 0);
  struct bg_conn *a = open_uid(p, 1001, NULL, "docker-session");
  struct bg_conn *b = open_uid(p, 1002, NULL, "grpc");
  struct bg_conn *r = open_uid(p, 0, NULL, "grpc");
  /* none sent, empty (buildctl), a value, buildx's "<key>:<node>" */
  struct bg_header none[] = {H("x-docker-expose-session-uuid", "s1")};
  session_call(a, none, 1, "alice.", "alice.s1");
  session_call(b, none, 1, "bob.", "bob.s1");
  struct bg_header empty[] = {H("x-docker-expose-session-uuid", "s1"), H("x-docker-expose-session-sharedkey", "")};
  session_call(a, empty, 2, "alice.", NULL);
  session_call(b, empty, 2, "bob.", NULL);
  struct bg_header bx[] = {H("x-docker-expose-session-uuid", "s1"),
                           H("x-docker-expose-session-sharedkey", "app:builder0/node0")};
  session_call(a, bx, 2, "alice.app%3Abuilder0%2Fnode0", NULL);
  /* what bob would need to send to meet alice's lineage is encoded too */
  struct bg_header forge[] = {H("x-docker-expose-session-uuid", "s1"),
                              H("x-docker-expose-session-sharedkey", "x:alice.app")};
  session_call(b, forge, 2, "bob.x%3Aalice.app", NULL);
  /* a session registered with ':' could never be looked up: refused */
  struct bg_header colon[] = {H("x-docker-expose-session-uuid", "x:alice.s1")};
  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(b, SESSION, strlen(SESSION), colon, 1, &d);
  assert_int_equal(d.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  json_decref(end_call(call, d.grpc_status));
  /* on other calls the header is namespaced by the one rule */
  struct bg_header steal[] = {H("x-docker-expose-session-uuid", "x:alice.s1")};
  call = bg_call_begin(b, LISTW, strlen(LISTW), steal, 1, &d);
  assert_int_equal(d.grpc_status, 0);
  assert_string_equal(edit(&d, "x-docker-expose-session-uuid")->values[0], "x:bob.alice.s1");
  /* not isolated: nothing injected */
  session_call(r, none, 1, NULL, NULL);

  json_decref(end_call(call, 0));
  /* the audit record shows the rewrites and the session as the client named it */
  struct bg_header plain[] = {H("x-docker-expose-session-uuid", "s1"), H("x-docker-expose-session-sharedkey", "k")};
  call = bg_call_begin(b, SESSION, strlen(SESSION), plain, 2, &d);
  json_t *j = end_call(call, 0);
  assert_string_equal(jget(j, "decision"), "rewrite");
  assert_string_equal(jget(j, "session"), "s1");
  char *dump = json_dumps(j, JSON_COMPACT);
  assert_non_null(strstr(dump, "\"new\":\"bob.s1\""));
  assert_non_null(strstr(dump, "\"field\":\"metadata.x-docker-expose-session-sharedkey\",\"old\":\"k\",\"new\":\"bob.k\""));
  free(dump);
  json_decref(j);
  bg_conn_close(a);
  bg_conn_close(b);
  bg_conn_close(r);
  bg_policy_unref(p);
}

/* ------------------------------------------------------------ session powers */

static int solve_status(const struct bg_profile *p, ProtobufCBinaryData *ops, size_t n, char *rule,
                        const char *ctx_key, const char *ctx_val)
{
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Pb__Definition def = PB__DEFINITION__INIT;
  Moby__Buildkit__V1__SolveRequest__FrontendAttrsEntry fe = MOBY__BUILDKIT__V1__SOLVE_REQUEST__FRONTEND_ATTRS_ENTRY__INIT;
  Moby__Buildkit__V1__SolveRequest__FrontendAttrsEntry *fes[] = {&fe};
  if (ops) {
    def.def = ops;
    def.n_def = n;
    q.definition = &def;
  }
  if (ctx_key) {
    q.frontend = "dockerfile.v0";
    fe.key = (char *)ctx_key;
    fe.value = (char *)ctx_val;
    q.frontendattrs = fes;
    q.n_frontendattrs = 1;
  }
  q.ref = "r1";
  q.session = "s1";
  size_t len;
  uint8_t *m = pack_any(&q.base, &len);
  struct bg_inspect r;
  bg_inspect_init(&r, p, "alice", 0, NULL);
  bg_inspect_control_solve(&r, m, len);
  int rc = r.grpc_status;
  strcpy(rule, r.rule);
  bg_inspect_free(&r);
  free(m);
  return rc;
}

static ProtobufCBinaryData op_exec_secretenv(void)
{
  Pb__Op op = PB__OP__INIT;
  Pb__ExecOp ex = PB__EXEC_OP__INIT;
  Pb__Meta meta = PB__META__INIT;
  char *args[] = {"/bin/true"};
  meta.args = args;
  meta.n_args = 1;
  Pb__SecretEnv se = PB__SECRET_ENV__INIT;
  Pb__SecretEnv *ses[] = {&se};
  se.id = "tok";
  se.name = "TOKEN";
  ex.meta = &meta;
  ex.secretenv = ses;
  ex.n_secretenv = 1;
  op.op_case = PB__OP__OP_EXEC;
  op.exec = &ex;
  ProtobufCBinaryData d;
  d.data = pack_any(&op.base, &d.len);
  return d;
}

static void test_session_powers(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  p.frontend_attrs.set.n = 0;
  p.llb_sources = SL("*");
  p.llb_mounts = SL("secret", "ssh");
  /* session_methods: file sync only */
  p.session_methods_any = 0;
  p.session_methods = SL("/moby.filesync.v1.FileSync/*");
  char rule[64];
  ProtobufCBinaryData o;

  o = op_exec(0, 0, PB__MOUNT_TYPE__SECRET, NULL);
  assert_int_equal(solve_status(&p, &o, 1, rule, NULL, NULL), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "session_methods");
  free(o.data);
  o = op_exec_secretenv();
  assert_int_equal(solve_status(&p, &o, 1, rule, NULL, NULL), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "session_methods");
  free(o.data);
  o = op_exec(0, 0, PB__MOUNT_TYPE__SSH, NULL);
  assert_int_equal(solve_status(&p, &o, 1, rule, NULL, NULL), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "session_methods");
  free(o.data);
  o = op_source("git://example.com/r.git", "git.mountsshsock", "default");
  assert_int_equal(solve_status(&p, &o, 1, rule, NULL, NULL), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "session_methods");
  free(o.data);
  o = op_source("git://example.com/r.git", "git.authtokensecret", "GIT_AUTH_TOKEN");
  assert_int_equal(solve_status(&p, &o, 1, rule, NULL, NULL), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "session_methods");
  free(o.data);
  /* git build contexts: the frontend's llb.Git asks for GIT_AUTH_TOKEN */
  static const char *const git_ctx[] = {"https://github.com/moby/buildkit.git#v0.11.6", "git://h/r",
                                        "git@github.com:moby/buildkit.git", "github.com/moby/buildkit",
                                        "ssh://git@h/r.git", "example.com/r.git"};
  for (size_t i = 0; i < sizeof git_ctx / sizeof *git_ctx; i++) {
    assert_int_equal(solve_status(&p, NULL, 0, rule, "context", git_ctx[i]), BG_GRPC_PERMISSION_DENIED);
    assert_string_equal(rule, "session_methods");
    assert_int_equal(solve_status(&p, NULL, 0, rule, "context:base", git_ctx[i]), BG_GRPC_PERMISSION_DENIED);
  }
  /* not git: a tarball over http, named contexts of other kinds */
  assert_int_equal(solve_status(&p, NULL, 0, rule, "context", "https://example.com/ctx.tar.gz"), 0);
  assert_int_equal(solve_status(&p, NULL, 0, rule, "context:base", "docker-image://alpine.git"), 0);
  assert_int_equal(solve_status(&p, NULL, 0, rule, "context:base", "local:base"), 0);
  /* a plain bind mount needs no power */
  o = op_exec(0, 0, PB__MOUNT_TYPE__BIND, NULL);
  assert_int_equal(solve_status(&p, &o, 1, rule, NULL, NULL), 0);
  free(o.data);

  /* granted: secrets only */
  p.session_methods = SL("/moby.filesync.v1.FileSync/*", "/moby.buildkit.secrets.v1.Secrets/GetSecret");
  o = op_exec(0, 0, PB__MOUNT_TYPE__SECRET, NULL);
  assert_int_equal(solve_status(&p, &o, 1, rule, NULL, NULL), 0);
  free(o.data);
  assert_int_equal(solve_status(&p, NULL, 0, rule, "context", "https://h/r.git"), 0);
  /* an ssh git context also needs the SSH power */
  assert_int_equal(solve_status(&p, NULL, 0, rule, "context", "git@h:r.git"), BG_GRPC_PERMISSION_DENIED);
  o = op_exec(0, 0, PB__MOUNT_TYPE__SSH, NULL);
  assert_int_equal(solve_status(&p, &o, 1, rule, NULL, NULL), BG_GRPC_PERMISSION_DENIED);
  free(o.data);
  /* "llb" absent (llb_any) does not lift a withheld power */
  p.llb_any = 1;
  o = op_exec(0, 0, PB__MOUNT_TYPE__SSH, NULL);
  assert_int_equal(solve_status(&p, &o, 1, rule, NULL, NULL), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(rule, "session_methods");
  free(o.data);
  /* session_methods absent: every power */
  p.session_methods_any = 1;
  o = op_exec(0, 0, PB__MOUNT_TYPE__SSH, NULL);
  assert_int_equal(solve_status(&p, &o, 1, rule, NULL, NULL), 0);
  free(o.data);
}

static void count_warn(void *arg, const char *msg)
{
  if (strstr(msg, "session_methods") || strstr(msg, "withholds"))
    (*(int *)arg)++;
}

static void test_powers_lint(void **st)
{
  int n = 0;
  struct bg_policy *p = load(", \"session_methods\": [\"/moby.filesync.v1.FileSync/*\", "
                             "\"/moby.filesync.v1.Auth/*\"], \"llb\": {\"mounts\": [\"secret\"]}",
                             0);
  bg_policy_lint(p, count_warn, &n);
  assert_true(n >= 1); /* secret mounts allowed, GetSecret withheld */
  bg_policy_unref(p);
  n = 0;
  p = load(", \"session_methods\": [\"*\"], \"llb\": {\"mounts\": [\"secret\", \"ssh\"]}", 0);
  bg_policy_lint(p, count_warn, &n);
  assert_int_equal(n, 0);
  bg_policy_unref(p);
}

/* ------------------------------------------------------------ identity rule */

static int call_status(struct bg_conn *c, const char *tok, const char **tenant_out, json_t **audit)
{
  struct bg_call_decision d;
  char hv[128];
  snprintf(hv, sizeof hv, "Bearer %s", tok ? tok : "");
  struct bg_header h[] = {{"authorization", 13, hv, strlen(hv)}};
  struct bg_call *call = bg_call_begin(c, LISTW, strlen(LISTW), h, tok ? 1 : 0, &d);
  int rc = d.grpc_status;
  if (tenant_out)
    *tenant_out = bg_call_tenant(call);
  json_t *a = end_call(call, rc);
  if (audit)
    *audit = a;
  else
    json_decref(a);
  return rc;
}

static void test_identity_rule(void **st)
{
  struct bg_policy *p = load(NULL, 1);
  json_t *a;

  /* Docker-style door: the upgrade's token beats the uid */
  struct bg_conn *c = open_uid(p, 1001, TOKB, "docker-grpc");
  assert_non_null(c);
  assert_string_equal(bg_conn_tenant(c), "bob");
  assert_string_equal(bg_conn_identified_by(c), "token");
  assert_int_equal(call_status(c, NULL, NULL, &a), 0);
  assert_string_equal(jget(a, "tenant"), "bob");
  assert_string_equal(jget(a, "identified_by"), "token");
  json_decref(a);
  assert_int_equal(call_status(c, TOKB, NULL, NULL), 0);
  assert_int_equal(call_status(c, TOKA, NULL, &a), BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(jget(a, "rule"), "tenants");
  assert_string_equal(jget(a, "tenant"), "bob");
  json_decref(a);
  assert_int_equal(call_status(c, "nobody", NULL, NULL), BG_GRPC_UNAUTHENTICATED);
  bg_conn_close(c);
  /* an unknown token on the upgrade: refused, not the uid's tenant */
  assert_null(open_uid(p, 1001, "nobody", "docker-grpc"));

  /* native door: the first call's token beats the uid, then the connection is bob's */
  c = open_uid(p, 1001, NULL, "grpc");
  assert_non_null(c);
  assert_string_equal(bg_conn_tenant(c), "");
  const char *t;
  assert_int_equal(call_status(c, TOKB, &t, &a), 0);
  assert_string_equal(jget(a, "tenant"), "bob");
  assert_string_equal(jget(a, "identified_by"), "token");
  json_decref(a);
  assert_string_equal(bg_conn_tenant(c), "bob");
  assert_int_equal(call_status(c, NULL, NULL, &a), 0);
  assert_string_equal(jget(a, "tenant"), "bob");
  json_decref(a);
  assert_int_equal(call_status(c, TOKA, NULL, NULL), BG_GRPC_PERMISSION_DENIED);
  bg_conn_close(c);

  /* native door, first call without a token: the uid; later tokens must agree */
  c = open_uid(p, 1001, NULL, "grpc");
  assert_int_equal(call_status(c, NULL, NULL, &a), 0);
  assert_string_equal(jget(a, "tenant"), "alice");
  assert_string_equal(jget(a, "identified_by"), "uid");
  json_decref(a);
  assert_int_equal(call_status(c, TOKB, NULL, &a), BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(jget(a, "reason"), "never changes tenant"));
  json_decref(a);
  assert_int_equal(call_status(c, TOKA, NULL, NULL), 0);
  bg_conn_close(c);

  /* several authorization entries (grpc-go appends call credentials to the
   * connection's): every token must name the one tenant */
  c = open_uid(p, 1001, NULL, "grpc");
  struct bg_header two[] = {H("authorization", "Bearer " TOKB), H("authorization", "Bearer " TOKA)};
  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(c, LISTW, strlen(LISTW), two, 2, &d);
  assert_int_equal(d.grpc_status, BG_GRPC_PERMISSION_DENIED);
  json_decref(end_call(call, d.grpc_status));
  struct bg_header same[] = {H("authorization", "Bearer " TOKB), H("authorization", "Bearer " TOKB)};
  call = bg_call_begin(c, LISTW, strlen(LISTW), same, 2, &d);
  assert_int_equal(d.grpc_status, 0);
  assert_string_equal(bg_call_tenant(call), "bob");
  json_decref(end_call(call, d.grpc_status));
  struct bg_header bad2[] = {H("authorization", "Bearer " TOKB), H("authorization", "Bearer nobody")};
  call = bg_call_begin(c, LISTW, strlen(LISTW), bad2, 2, &d);
  assert_int_equal(d.grpc_status, BG_GRPC_UNAUTHENTICATED);
  json_decref(end_call(call, d.grpc_status));
  bg_conn_close(c);

  /* the /session door: the Control.Session call carries the upgrade's header */
  c = open_uid(p, 1001, TOKB, "docker-session");
  struct bg_header sess[] = {H("x-docker-expose-session-uuid", "s1"), H("authorization", "Bearer " TOKB)};
  call = bg_call_begin(c, SESSION, strlen(SESSION), sess, 2, &d);
  assert_int_equal(d.grpc_status, 0);
  assert_string_equal(edit(&d, "x-docker-expose-session-uuid")->values[0], "bob.s1");
  assert_non_null(edit(&d, "authorization"));
  json_decref(end_call(call, 0));
  bg_conn_close(c);
  bg_policy_unref(p);

  /* a policy without tokens identifies a native connection when it opens */
  p = load(NULL, 0);
  c = open_uid(p, 1002, NULL, "grpc");
  assert_string_equal(bg_conn_tenant(c), "bob");
  assert_string_equal(bg_conn_identified_by(c), "uid");
  assert_int_equal(call_status(c, "whatever", NULL, NULL), BG_GRPC_UNAUTHENTICATED);
  bg_conn_close(c);
  bg_policy_unref(p);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wrap_forms),        cmocka_unit_test(test_unwrap_forms),
      cmocka_unit_test(test_wrap_closed_exhaustive), cmocka_unit_test(test_shared_key),
      cmocka_unit_test(test_session_powers),    cmocka_unit_test(test_powers_lint),
      cmocka_unit_test(test_identity_rule),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

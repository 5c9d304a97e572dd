/* test_inspect_semantics.c: attrs read as the Go frontend reads them
 * (strings.TrimSpace, encoding/json key folding, context:<name> splitting),
 * frontend attrs restating LLB powers, the dockerfile cache-mount namespace,
 * the Exporter 3/4 vs 13 encodings, empty refs under isolate, and the
 * policy-file keys and lint warning that go with them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "policy/attrparse.h"
#include "policy/policy_int.h"
#include "tests/unit/inspect_helpers.h"

static const struct bg_backend_facts facts_v11 = {1, 0, "v0.11.6", 0};

typedef int (*inspector)(struct bg_inspect *, const uint8_t *, size_t);

static void run(struct bg_inspect *r, const struct bg_profile *p, inspector fn, const uint8_t *m, size_t n)
{
  bg_inspect_init(r, p, "ci", 0, &facts_v11);
  fn(r, m, n);
}

static const char *rw_new(const struct bg_inspect *r, const char *field)
{
  for (size_t i = 0; i < r->n_rewrites; i++)
    if (strcmp(r->rewrites[i].field, field) == 0)
      return r->rewrites[i].new_value ? r->rewrites[i].new_value : "(removed)";
  return NULL;
}

/* A Control.Solve with frontend |fe| and the attrs k0=v0, k1=v1, ... (NULL-terminated). */
static uint8_t *solve_attrs(const char *fe, size_t *n, ...)
{
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Moby__Buildkit__V1__SolveRequest__FrontendAttrsEntry e[8], *ev[8];
  va_list ap;
  va_start(ap, n);
  size_t k = 0;
  const char *key;
  while (k < 8 && (key = va_arg(ap, const char *))) {
    moby__buildkit__v1__solve_request__frontend_attrs_entry__init(&e[k]);
    e[k].key = (char *)key;
    e[k].value = va_arg(ap, char *);
    ev[k] = &e[k];
    k++;
  }
  va_end(ap);
  q.ref = "r";
  q.frontend = (char *)fe;
  q.frontendattrs = ev;
  q.n_frontendattrs = k;
  return pack_any(&q.base, n);
}

#define PROF_SOURCES(p, ...)             \
  PROF_BUILDER(p);                       \
  (p).isolate = 0;                       \
  (p).frontend_attrs.deny.n = 0;         \
  (p).frontend_attrs.set.n = 0;          \
  (p).frontends = SL("dockerfile.v0", "gateway.v0"); \
  (p).llb_sources = SL(__VA_ARGS__)

static int attrs_status(const struct bg_profile *p, char *reason, ...)
{
  /* up to three attrs through solve_attrs */
  va_list ap;
  va_start(ap, reason);
  const char *fe = va_arg(ap, const char *);
  const char *k0 = va_arg(ap, const char *), *v0 = k0 ? va_arg(ap, const char *) : NULL;
  const char *k1 = k0 ? va_arg(ap, const char *) : NULL, *v1 = k1 ? va_arg(ap, const char *) : NULL;
  va_end(ap);
  size_t n;
  uint8_t *m = solve_attrs(fe, &n, k0, v0, k1, v1, (const char *)NULL);
  struct bg_inspect r;
  run(&r, p, bg_inspect_control_solve, m, n);
  int s = r.grpc_status;
  if (reason)
    strcpy(reason, r.reason);
  bg_inspect_free(&r);
  free(m);
  return s;
}

/* ---- strings.TrimSpace / BUILDKIT_SYNTAX ------------------------------------------------------ */

static void test_go_trimspace(void **st)
{
  static const struct {
    const char *in, *out;
  } cases[] = {
      {" \t\n\v\f\rimg\r\n", "img"},
      {"\xc2\xa0img\xc2\x85", "img"},            /* U+00A0, U+0085 */
      {"\xe3\x80\x80img\xe2\x80\x8a", "img"},    /* U+3000, U+200A */
      {"\xe1\x9a\x80\xe2\x80\xa8\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\x9fimg", "img"},
      {"\xe2\x80\x8bimg", "\xe2\x80\x8bimg"},    /* U+200B is not white space */
      {"\x85img\xa0", "\x85img\xa0"},            /* lone continuation bytes: RuneError, kept */
      {"img\xe2\x80", "img\xe2\x80"},            /* truncated sequence: kept */
      {"\x1cimg", "\x1cimg"},                    /* U+001C: Go's IsSpace says no */
      {"   ", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const char *s = cases[i].in;
    size_t n = strlen(s);
    bg_go_trimspace(&s, &n);
    assert_int_equal(n, strlen(cases[i].out));
    assert_memory_equal(s, cases[i].out, n);
  }
  const char *ref;
  size_t rl;
  const char *v = "\xc2\xa0 evil/frontend:1 arg\targ";
  assert_int_equal(bg_go_syntax_ref(v, strlen(v), &ref, &rl), 0);
  assert_int_equal(rl, 15);
  assert_memory_equal(ref, "evil/frontend:1", 15);
  assert_int_equal(bg_go_syntax_ref(" \t ", 3, &ref, &rl), -1);
}

static void test_syntax_and_source_attrs(void **st)
{
  struct bg_profile p;
  PROF_SOURCES(p, "docker-image://docker.io/docker/dockerfile:*");
  char why[400];
  const char *k = "build-arg:BUILDKIT_SYNTAX";
  /* frontend images must be pinned (frontend_attrs.c); the pinned ones are
   * then read as the frontend reads them and checked as sources */
#define PIN "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
  assert_int_equal(attrs_status(&p, why, "dockerfile.v0", k, "docker/dockerfile:1.7" PIN, NULL), 0);
  /* leading white space that a cut at the first space/tab used to read as "" */
  assert_int_equal(attrs_status(&p, why, "dockerfile.v0", k, "\t evil/frontend:1" PIN, NULL), BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(why, "docker-image://docker.io/evil/frontend:1@sha256:"));
  assert_int_equal(attrs_status(&p, why, "dockerfile.v0", k, "\xe3\x80\x80""evil/frontend:1" PIN " x", NULL),
                   BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(why, "docker.io/evil/frontend:1" PIN "\""));
  /* unpinned: refused before any source rule */
  assert_int_equal(attrs_status(&p, why, "dockerfile.v0", k, " docker/dockerfile:1.7", NULL), BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(why, "not pinned by digest"));
  /* gateway.v0 reads "source" as is */
  assert_int_equal(attrs_status(&p, why, "gateway.v0", "source", "docker/dockerfile:1" PIN, NULL), 0);
  assert_int_equal(attrs_status(&p, why, "gateway.v0", "source", "index.docker.io/evil/x" PIN, NULL),
                   BG_GRPC_PERMISSION_DENIED);
#undef PIN
}

static void test_named_context_split(void **st)
{
  struct bg_profile p;
  PROF_SOURCES(p, "docker-image://docker.io/library/*");
  char why[400];
  assert_int_equal(attrs_status(&p, why, "dockerfile.v0", "context:base", "docker-image://alpine:3", NULL), 0);
  /* the frontend splits at the first ':' and trims one "//": no "://" needed */
  assert_int_equal(attrs_status(&p, why, "dockerfile.v0", "context:base", "docker-image:evil/img", NULL),
                   BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(why, "docker-image://docker.io/evil/img"));
  assert_int_equal(attrs_status(&p, why, "dockerfile.v0", "context:base", "git@github.com:evil/repo", NULL),
                   BG_GRPC_PERMISSION_DENIED);
  assert_int_equal(attrs_status(&p, why, "dockerfile.v0", "context:base", "docker-image://scratch", NULL), 0);
  assert_int_equal(attrs_status(&p, why, "dockerfile.v0", "context:base", "local:ctx2", NULL), 0);
}

/* ---- JSON in attrs ----------------------------------------------------------------------------- */

static void test_cache_imports_json_keys(void **st)
{
  struct bg_profile p;
  PROF_SOURCES(p, "*");
  p.cache_import = SL("local");
  char why[400];
  const char *k = "cache-imports";
  assert_int_equal(attrs_status(&p, why, "dockerfile.v0", k, "[{\"Type\":\"local\",\"Attrs\":{\"src\":\"x\"}}]", NULL), 0);
  /* Go folds "type" onto Type: read it */
  assert_int_equal(attrs_status(&p, why, "dockerfile.v0", k, "[{\"tYpE\":\"s3\"}]", NULL), BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(why, "\"s3\""));
  /* two spellings of one field: Go takes the last, refused */
  assert_int_equal(attrs_status(&p, why, "dockerfile.v0", k, "[{\"Type\":\"local\",\"TYPE\":\"s3\"}]", NULL),
                   BG_GRPC_INVALID_ARGUMENT);
  assert_non_null(strstr(why, "FrontendAttrs[cache-imports][0]"));
  assert_non_null(strstr(why, "differ only in case"));
  /* exact duplicates, also through escapes */
  assert_int_equal(attrs_status(&p, why, "dockerfile.v0", k, "[{\"Type\":\"local\",\"\\u0054ype\":\"s3\"}]", NULL),
                   BG_GRPC_INVALID_ARGUMENT);
  assert_non_null(strstr(why, "duplicate"));
  /* non-ASCII keys may fold onto a field ("Attr\u017f" is Attrs to Go) */
  assert_int_equal(attrs_status(&p, why, "dockerfile.v0", k, "[{\"Type\":\"local\",\"Attr\xc5\xbf\":{}}]", NULL),
                   BG_GRPC_INVALID_ARGUMENT);
  assert_non_null(strstr(why, "non-ASCII"));
  assert_int_equal(attrs_status(&p, why, "dockerfile.v0", k, "null", NULL), 0);
}

static void test_bridge_exporter_attr_duplicates(void **st)
{
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  Moby__Buildkit__V1__Frontend__SolveRequest q = MOBY__BUILDKIT__V1__FRONTEND__SOLVE_REQUEST__INIT;
  static const char js[] = "{\"a\":\"eA==\",\"a\":\"eQ==\"}";
  q.exporterattr.data = (uint8_t *)js;
  q.exporterattr.len = sizeof js - 1;
  size_t n;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run(&r, &p, bg_inspect_bridge_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  assert_non_null(strstr(r.reason, "ExporterAttr"));
  bg_inspect_free(&r);
  free(m);
}

/* ---- frontend attrs restating LLB powers -------------------------------------------------------- */

static void test_power_attrs_follow_llb(void **st)
{
  struct bg_profile p;
  PROF_SOURCES(p, "*");
  char why[400];
  const char *fe = "dockerfile.v0";
  assert_int_equal(attrs_status(&p, why, fe, "add-hosts", "h=1.2.3.4", NULL), BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(why, "FrontendAttrs[add-hosts]"));
  assert_non_null(strstr(why, "llb.extra_hosts is false"));
  p.llb_extra_hosts = 1;
  assert_int_equal(attrs_status(&p, why, fe, "add-hosts", "h=1.2.3.4", NULL), 0);
  assert_int_equal(attrs_status(&p, why, fe, "cgroup-parent", "/x", NULL), BG_GRPC_PERMISSION_DENIED);
  assert_int_equal(attrs_status(&p, why, fe, "ulimit", "nofile=1:1", NULL), BG_GRPC_PERMISSION_DENIED);
  assert_int_equal(attrs_status(&p, why, fe, "hostname", "box", NULL), BG_GRPC_PERMISSION_DENIED);
  assert_int_equal(attrs_status(&p, why, fe, "hostname", "", NULL), 0); /* empty: the frontend's default */
  assert_int_equal(attrs_status(&p, why, fe, "build-arg:BUILDKIT_SANDBOX_HOSTNAME", "box", NULL),
                   BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(why, "llb.hostname is false"));
  /* force-network-mode is the ExecOp network: builder allows sandbox and none */
  assert_int_equal(attrs_status(&p, why, fe, "force-network-mode", "none", NULL), 0);
  assert_int_equal(attrs_status(&p, why, fe, "force-network-mode", "host", NULL), BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(why, "network mode host"));
  assert_int_equal(attrs_status(&p, why, fe, "force-network-mode", " host", NULL), BG_GRPC_PERMISSION_DENIED);
  assert_non_null(strstr(why, "unknown network mode"));
  /* the frontend_attrs deny list still works, with its own rule */
  p.frontend_attrs.deny = SL("add-hosts");
  size_t n;
  uint8_t *m = solve_attrs(fe, &n, "add-hosts", "h=1.2.3.4", (const char *)NULL);
  struct bg_inspect r;
  run(&r, &p, bg_inspect_control_solve, m, n);
  assert_string_equal(r.rule, "frontend_attrs");
  bg_inspect_free(&r);
  free(m);
}

static void test_cache_mount_ns_forced(void **st)
{
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  p.isolate = 1;
  size_t n;
  uint8_t *m = solve_attrs("dockerfile.v0", &n, "build-arg:BUILDKIT_CACHE_MOUNT_NS", "dev.", (const char *)NULL);
  struct bg_inspect r;
  run(&r, &p, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  /* the tenant's own value is kept inside its namespace: "dev." cannot reach tenant dev's mounts */
  assert_string_equal(rw_new(&r, "FrontendAttrs[build-arg:BUILDKIT_CACHE_MOUNT_NS]"), "ci.dev.");
  Moby__Buildkit__V1__SolveRequest *o = moby__buildkit__v1__solve_request__unpack(NULL, r.outlen, r.out);
  assert_int_equal(o->n_frontendattrs, 2); /* and image-resolve-mode=pull, forced under isolate */
  int ns = 0;
  for (size_t i = 0; i < o->n_frontendattrs; i++)
    if (!strcmp(o->frontendattrs[i]->key, "build-arg:BUILDKIT_CACHE_MOUNT_NS"))
      assert_string_equal(o->frontendattrs[i]->value, "ci.dev."), ns++;
  assert_int_equal(ns, 1);
  moby__buildkit__v1__solve_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);
  free(m);
  /* no frontend (client-side build): nothing forced in Control.Solve */
  m = solve_attrs("", &n, "build-arg:X", "1", (const char *)NULL);
  run(&r, &p, bg_inspect_control_solve, m, n);
  assert_null(rw_new(&r, "FrontendAttrs[build-arg:BUILDKIT_CACHE_MOUNT_NS]"));
  bg_inspect_free(&r);
  free(m);
}

/* ---- two encodings of the exporter ------------------------------------------------------------- */

static void test_exporter_3_4_copy_of_13(void **st)
{
  /* the attack: a duplicated key in 4 made a one-sided comparison say "equal",
   * and a daemon reading only 3/4 lost the forced store=false */
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  static struct bg_exporter_rule ex[1];
  memset(ex, 0, sizeof ex);
  ex[0].type = "image";
  ex[0].attrs.set = KVL({"store", "false"});
  p.exporters_any = 0;
  p.exporters = ex;
  p.n_exporters = 1;
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Moby__Buildkit__V1__Exporter e0 = MOBY__BUILDKIT__V1__EXPORTER__INIT;
  Moby__Buildkit__V1__Exporter__AttrsEntry a0 = MOBY__BUILDKIT__V1__EXPORTER__ATTRS_ENTRY__INIT;
  Moby__Buildkit__V1__Exporter__AttrsEntry *as[] = {&a0};
  a0.key = "name";
  a0.value = "x";
  e0.type = "image";
  e0.attrs = as;
  e0.n_attrs = 1;
  Moby__Buildkit__V1__Exporter *es[] = {&e0};
  q.exporters = es;
  q.n_exporters = 1;
  q.exporterdeprecated = "image";
  Moby__Buildkit__V1__SolveRequest__ExporterAttrsDeprecatedEntry d0 =
      MOBY__BUILDKIT__V1__SOLVE_REQUEST__EXPORTER_ATTRS_DEPRECATED_ENTRY__INIT;
  d0.key = "name";
  d0.value = "x";
  Moby__Buildkit__V1__SolveRequest__ExporterAttrsDeprecatedEntry *ds[] = {&d0, &d0};
  q.exporterattrsdeprecated = ds;
  q.n_exporterattrsdeprecated = 2; /* {name:x, name:x}: same count as 13[0] after store=false is added */
  q.ref = "r";
  size_t n;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run(&r, &p, bg_inspect_control_solve, m, n);
  /* the duplicated key itself is refused before any comparison (proto/pbcheck) */
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  assert_non_null(strstr(r.reason, "ExporterAttrsDeprecated"));
  bg_inspect_free(&r);
  free(m);
  /* 3/4 that say something else than 13[0] ({name:x, store:true}): the
   * forwarded 3/4 is a copy of the rewritten 13[0], whatever the client put there */
  Moby__Buildkit__V1__SolveRequest__ExporterAttrsDeprecatedEntry d1 =
      MOBY__BUILDKIT__V1__SOLVE_REQUEST__EXPORTER_ATTRS_DEPRECATED_ENTRY__INIT;
  d1.key = "store";
  d1.value = "true";
  ds[1] = &d1;
  m = pack_any(&q.base, &n);
  run(&r, &p, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, 0);
  assert_non_null(r.out);
  Moby__Buildkit__V1__SolveRequest *o = moby__buildkit__v1__solve_request__unpack(NULL, r.outlen, r.out);
  assert_int_equal(o->n_exporterattrsdeprecated, o->exporters[0]->n_attrs);
  for (size_t i = 0; i < o->n_exporterattrsdeprecated; i++) {
    assert_string_equal(o->exporterattrsdeprecated[i]->key, o->exporters[0]->attrs[i]->key);
    assert_string_equal(o->exporterattrsdeprecated[i]->value, o->exporters[0]->attrs[i]->value);
  }
  int store = 0;
  for (size_t i = 0; i < o->n_exporterattrsdeprecated; i++)
    store |= !strcmp(o->exporterattrsdeprecated[i]->key, "store") && !strcmp(o->exporterattrsdeprecated[i]->value, "false");
  assert_true(store);
  moby__buildkit__v1__solve_request__free_unpacked(o, NULL);
  bg_inspect_free(&r);
  free(m);
}

/* The image exporter reads push="" as push=true: the registry rule applies. */
static void test_exporter_empty_push_is_push(void **st)
{
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  static struct bg_exporter_rule ex[1];
  memset(ex, 0, sizeof ex);
  ex[0].type = "image";
  ex[0].attrs.push_registries = SL("registry.example.com");
  p.exporters_any = 0;
  p.exporters = ex;
  p.n_exporters = 1;
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Moby__Buildkit__V1__SolveRequest__ExporterAttrsDeprecatedEntry a0 =
      MOBY__BUILDKIT__V1__SOLVE_REQUEST__EXPORTER_ATTRS_DEPRECATED_ENTRY__INIT,
                                                                 a1 =
      MOBY__BUILDKIT__V1__SOLVE_REQUEST__EXPORTER_ATTRS_DEPRECATED_ENTRY__INIT;
  a0.key = "name";
  a0.value = "evil.example/app:1";
  a1.key = "push";
  Moby__Buildkit__V1__SolveRequest__ExporterAttrsDeprecatedEntry *as[] = {&a0, &a1};
  q.exporterdeprecated = "image";
  q.exporterattrsdeprecated = as;
  q.ref = "r";
  static const char *const values[] = {"", "true", "T", "1", "false", "0"};
  for (size_t i = 0; i < 6; i++) {
    a1.value = (char *)values[i];
    q.n_exporterattrsdeprecated = 2;
    size_t n;
    uint8_t *m = pack_any(&q.base, &n);
    struct bg_inspect r;
    run(&r, &p, bg_inspect_control_solve, m, n);
    if (i < 4) {
      assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
      assert_string_equal(r.rule, "exporter_push");
    } else {
      assert_int_equal(r.grpc_status, 0);
    }
    bg_inspect_free(&r);
    free(m);
  }
}

static void test_cache_deprecated_fields_are_registry_entries(void **st)
{
  /* BuildKit appends ExportRefDeprecated / ImportRefsDeprecated to Exports /
   * Imports as "registry" entries (translateLegacySolveRequest): both count */
  struct bg_profile p;
  PROF_PERMISSIVE(p);
  p.cache_any = 0;
  p.cache_import = SL("local");
  p.cache_export = SL("local");
  Moby__Buildkit__V1__SolveRequest q = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
  Moby__Buildkit__V1__CacheOptions co = MOBY__BUILDKIT__V1__CACHE_OPTIONS__INIT;
  char *refs[] = {"registry.example.com/cache"};
  co.importrefsdeprecated = refs;
  co.n_importrefsdeprecated = 1;
  q.cache = &co;
  q.ref = "r";
  size_t n;
  uint8_t *m = pack_any(&q.base, &n);
  struct bg_inspect r;
  run(&r, &p, bg_inspect_control_solve, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_PERMISSION_DENIED);
  assert_string_equal(r.rule, "cache_import");
  bg_inspect_free(&r);
  free(m);
}

/* ---- empty refs -------------------------------------------------------------------------------------- */

static void test_empty_refs_under_isolate(void **st)
{
  struct bg_profile p;
  PROF_BUILDER(p);
  Moby__Buildkit__V1__StatusRequest s = MOBY__BUILDKIT__V1__STATUS_REQUEST__INIT;
  size_t n;
  uint8_t *m = pack_any(&s.base, &n);
  struct bg_inspect r;
  run(&r, &p, bg_isolate_status_request, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  assert_non_null(strstr(r.reason, "StatusRequest.Ref"));
  bg_inspect_free(&r);
  Moby__Buildkit__V1__UpdateBuildHistoryRequest u = MOBY__BUILDKIT__V1__UPDATE_BUILD_HISTORY_REQUEST__INIT;
  u.delete_ = 1;
  free(m);
  m = pack_any(&u.base, &n);
  run(&r, &p, bg_isolate_update_build_history, m, n);
  assert_int_equal(r.grpc_status, BG_GRPC_INVALID_ARGUMENT);
  bg_inspect_free(&r);
  /* without isolate the daemon gets it as sent */
  p.isolate = 0;
  run(&r, &p, bg_isolate_update_build_history, m, n);
  assert_int_equal(r.grpc_status, 0);
  assert_null(r.out);
  bg_inspect_free(&r);
  free(m);
}

/* ---- policy file and lint ------------------------------------------------------------------------------ */

static void test_policy_llb_keys(void **st)
{
  const char *js = "{\"tenants\": [{\"name\": \"ci\", \"match\": {\"uid\": [5]}, \"profile\": \"b\"},"
                   "               {\"name\": \"dev\", \"match\": {\"uid\": [6]}, \"profile\": \"b\"}],"
                   " \"profiles\": {\"b\": {\"methods\": [\"@stable\"],"
                   "   \"exporters\": {\"moby\": {\"name_prefix\": \"${tenant}/\"}},"
                   "   \"llb\": {\"network\": [\"sandbox\"], \"hostname\": true, \"unknown\": \"allow\"}}}}";
  struct bg_error err;
  struct bg_policy *P = bg_policy_load_string(js, strlen(js), &err);
  assert_non_null(P);
  const struct bg_profile *b = &P->profiles[0];
  assert_int_equal(b->llb_hostname, 1);
  assert_int_equal(b->llb_cgroup_parent, 0); /* absent inside llb: denied */
  assert_int_equal(b->llb_extra_hosts, 0);
  assert_int_equal(b->llb_ulimit, 0);
  assert_int_equal(b->llb_unknown_allow, 1);
  assert_int_equal(b->llb_resolve_modes.n, 2); /* default: all but local */
  assert_non_null(b->tenant_image_prefixes);
  assert_int_equal(b->tenant_image_prefixes->n, 2);
  assert_string_equal(b->tenant_image_prefixes->v[1].key, "dev");
  assert_string_equal(b->tenant_image_prefixes->v[1].value, "docker.io/dev/");
  bg_policy_unref(P);

  static const struct {
    const char *llb, *where;
  } bad[] = {
      {"{\"cgroup_parent\": \"yes\"}", "profiles.b.llb.cgroup_parent: expected a boolean"},
      {"{\"unknown\": \"maybe\"}", "profiles.b.llb.unknown: expected \"deny\" or \"allow\""},
      {"{\"image_resolve_mode\": [\"never\"]}", "profiles.b.llb.image_resolve_mode[0]: unknown image resolve mode"},
      {"{\"ulimits\": true}", "profiles.b.llb.ulimits: unknown key \"ulimits\""},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char doc[400];
    snprintf(doc, sizeof doc, "{\"profiles\": {\"b\": {\n  \"llb\": %s}}}", bad[i].llb);
    P = bg_policy_load_string(doc, strlen(doc), &err);
    assert_null(P);
    if (!strstr(err.text, bad[i].where))
      fail_msg("got \"%s\", want \"%s\"", err.text, bad[i].where);
    assert_int_equal(err.line, 2); /* FILE:LINE:COL points into the llb section */
    assert_true(err.column > 2);
  }
}

static void collect(void *arg, const char *msg)
{
  char *buf = arg;
  strncat(buf, msg, 4000 - strlen(buf));
  strncat(buf, "\n", 4000 - strlen(buf));
}

static void test_lint_frontend_image_choice(void **st)
{
  const char *fmt = "{\"tenants\": [{\"name\": \"ci\", \"match\": {\"uid\": [5]}, \"profile\": \"b\"}],"
                    " \"profiles\": {\"b\": {\"methods\": [\"@stable\"], \"frontends\": [%s], %s \"isolate\": true}}}";
  static const struct {
    const char *fe, *extra;
    int warns;
  } cases[] = {
      {"\"gateway.v0\"", "", 1},
      {"\"dockerfile.v0\"", "", 1},
      {"\"dockerfile.v0\"", "\"frontend_attrs\": {\"deny\": [\"build-arg:BUILDKIT_SYNTAX\"]},", 1}, /* # syntax= */
      {"\"dockerfile.v0\"",
       "\"source_policy\": {\"rules\": [{\"action\": \"CONVERT\", \"selector\": {\"identifier\": \"docker-image://a\"},"
       " \"updates\": {\"identifier\": \"docker-image://b\"}}]},",
       1},
      {"\"dockerfile.v0\"",
       "\"source_policy\": {\"rules\": [{\"action\": \"DENY\", \"selector\": {\"identifier\": \"docker-image://*\"}},"
       " {\"action\": \"ALLOW\", \"selector\": {\"identifier\": \"docker-image://docker.io/docker/dockerfile:1*\"}}]},",
       0},
      {"", "", 0}, /* no server-side frontend */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char doc[1200], buf[4096] = "";
    snprintf(doc, sizeof doc, fmt, cases[i].fe, cases[i].extra);
    struct bg_error err;
    struct bg_policy *P = bg_policy_load_string(doc, strlen(doc), &err);
    if (!P)
      fail_msg("%s: %s", doc, err.text);
    bg_policy_lint(P, collect, buf);
    int warned = strstr(buf, "CVE-2024-23653") != NULL;
    if (warned != cases[i].warns)
      fail_msg("case %zu: %s", i, buf);
    bg_policy_unref(P);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_go_trimspace),
      cmocka_unit_test(test_syntax_and_source_attrs),
      cmocka_unit_test(test_named_context_split),
      cmocka_unit_test(test_cache_imports_json_keys),
      cmocka_unit_test(test_bridge_exporter_attr_duplicates),
      cmocka_unit_test(test_power_attrs_follow_llb),
      cmocka_unit_test(test_cache_mount_ns_forced),
      cmocka_unit_test(test_exporter_3_4_copy_of_13),
      cmocka_unit_test(test_exporter_empty_push_is_push),
      cmocka_unit_test(test_cache_deprecated_fields_are_registry_entries),
      cmocka_unit_test(test_empty_refs_under_isolate),
      cmocka_unit_test(test_policy_llb_keys),
      cmocka_unit_test(test_lint_frontend_image_choice),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

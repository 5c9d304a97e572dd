/*
 * cmd_check.c: `buildgate check`: validate a policy file, and optionally
 * evaluate one captured message offline (for audits and for testing policies
 * in CI).
 *
 *   buildgate check --policy FILE
 *       prints "ok", or "FILE:LINE:COL: error" and exits 1.  Warnings about a
 *       valid policy that probably does not do what was meant (unreachable
 *       tenants, isolation with unscoped methods, ...) go to stderr.
 *   buildgate check --policy FILE --tenant NAME --method /pkg.Service/Method
 *                   [--message FILE] [--out FILE] [--header 'name: value']...
 *                   [--gzip] [--door grpc|docker-grpc|docker-session]
 *       evaluates the call (and the message: raw bytes without the 5-byte gRPC
 *       prefix, as in fixtures/captured/) under that tenant and prints the
 *       decision, rule, reason, rewrites and the audit record.  A rewritten
 *       message goes to --out (or is printed as hex).  --gzip says the message
 *       file is gzip-compressed (sent with grpc-encoding gzip, flag 1).
 *   buildgate check --frontend-attrs [--policy FILE]
 *       prints the catalogue of frontend attrs (policy/frontend_attrs.c) and,
 *       with a policy, which profiles treat them as an allow-list and what
 *       their frontend images must satisfy.
 *   --backend-version VERSION  evaluates as if the backend ran that BuildKit
 *       ("none": Control.Info unimplemented, BuildKit < v0.11); without it a
 *       decision that depends on the backend is shown as the gateway makes it
 *       when Control.Info never answers.
 *   Without --policy the built-in default policy is checked.
 *   buildgate check --dump [--policy FILE --tenant NAME]
 *                   (--method /pkg.Service/Method --message FILE | --batch FILE|-)
 *       prints the policy's view of the message (policy/dump.h) as one JSON
 *       line, or {"refused": ...}.  Without --policy, the oracle policy of
 *       bg_dump_policy() and its tenant "oracle".  --batch reads many
 *       messages, each as a 4-byte big-endian length + method, then a 4-byte
 *       big-endian length + message, and prints one line per message (the
 *       differential oracle in tests/oracle feeds tens of thousands).
 * Exit status: 0 allowed (possibly rewritten), 2 denied, 1 usage/load error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway/alloc.h"
#include "policy/dump.h"
#include "policy/frontend_attrs.h"
#include "policy/policy.h"

int gw_cmd_check(int argc, char **argv);

static void usage_to(FILE *f)
{
  fprintf(f, "usage: buildgate check [--policy FILE] [--tenant NAME --method /pkg.Service/Method\n"
             "                       [--message FILE] [--out FILE] [--header 'name: value']... [--gzip]\n"
             "                       [--door grpc|docker-grpc|docker-session] [--backend-version V]]\n"
             "       buildgate check --frontend-attrs [--policy FILE]\n"
             "       buildgate check --dump [--policy FILE --tenant NAME]\n"
             "                       (--method /pkg.Service/Method --message FILE | --batch FILE|-)\n"
             "\n"
             "  --policy FILE     the policy to load (default: the built-in default policy); alone, prints\n"
             "                    \"ok\" or \"FILE:LINE:COL: error\", warnings on stderr\n"
             "  --tenant NAME     evaluate one call as this tenant (needs --method)\n"
             "  --method PATH     the call's /package.Service/Method\n"
             "  --message FILE    the request message: raw protobuf bytes, without the 5-byte gRPC prefix\n"
             "  --out FILE        write a rewritten message here (default: print it as hex)\n"
             "  --header 'N: V'   a request header (metadata) of the call, repeatable\n"
             "  --gzip            the message file is gzip-compressed (sent with grpc-encoding gzip)\n"
             "  --door DOOR       the door the call came through: grpc (default), docker-grpc, docker-session\n"
             "  --backend-version V  decide as if the backend ran BuildKit V (\"none\": no Control.Info, < v0.11);\n"
             "                    without it, what needs the backend is decided as after a timed-out wait\n"
             "  --frontend-attrs  print the frontend-attr catalogue, and with --policy what each profile makes of it\n"
             "  --dump            print the policy's view of the message as one JSON line (for the\n"
             "                    differential oracle, tests/oracle); default tenant \"oracle\" of a built-in policy\n"
             "  --batch FILE|-    with --dump: many messages, each a 4-byte big-endian length + method,\n"
             "                    then a 4-byte big-endian length + message; one line each\n"
             "  --help            this text\n"
             "exit status: 0 valid / allowed (possibly rewritten), 2 denied, 1 usage or load error\n");
}

static int usage(void)
{
  usage_to(stderr);
  return 1;
}

static uint8_t *read_all(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 65536, n = 0;
  uint8_t *buf = gw_malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap)
      break;
    if (cap >= (size_t)1 << 30) {
      free(buf);
      buf = NULL;
      errno = EFBIG;
      break;
    }
    uint8_t *nb = gw_realloc(buf, cap * 2);
    if (!nb)
      free(buf);
    buf = nb;
    cap *= 2;
  }
  if (buf && ferror(f)) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = n;
  return buf;
}

static void print_str(const char *label, json_t *v)
{
  if (json_is_string(v))
    printf("%s: %s\n", label, json_string_value(v));
}

static void print_warning(void *arg, const char *msg)
{
  fprintf(stderr, "%s: warning: %s\n", (const char *)arg, msg);
}

static void print_hex(const uint8_t *d, size_t n)
{
  for (size_t i = 0; i < n; i += 32) {
    printf("  %06zx ", i);
    for (size_t k = i; k < i + 32 && k < n; k++)
      printf("%02x", d[k]);
    printf("\n");
  }
}

static void print_note(void *arg, const char *msg)
{
  printf("  note: %s\n", msg);
}

static void print_frontend_attrs(const struct bg_policy *p)
{
  size_t n;
  const struct bg_fa_entry *e = bg_fa_catalogue(&n);
  printf("%-40s %-9s %-22s %s\n", "attr", "class", "read by (BuildKit)", "what");
  for (size_t i = 0; i < n; i++) {
    char who[64];
    snprintf(who, sizeof who, "%s%s%s %s", e[i].frontends & BG_FE_DOCKERFILE ? "df" : "",
             e[i].frontends & BG_FE_GATEWAY ? (e[i].frontends & BG_FE_DOCKERFILE ? "+gw" : "gw") : "",
             e[i].frontends & BG_FE_SOLVER ? "+solver" : "", e[i].versions);
    printf("%-40s %-9s %-22s %s\n", e[i].key, bg_fa_class_name(e[i].cls), who, e[i].what);
  }
  printf("(any other key)                          unknown   -                      treated as a power\n");
  printf("\nUnder a restricted profile (methods other than [\"*\"], an \"llb\" section, or frontend_attrs.allow):\n"
         "  power and unknown attrs are denied unless frontend_attrs.allow grants them, except the powers\n"
         "  that restate an LLB power (add-hosts, hostname, BUILDKIT_SANDBOX_HOSTNAME, ulimit, cgroup-parent,\n"
         "  force-network-mode), which the llb keys decide exactly as they decide the LLB itself;\n"
         "  source attrs go through llb.sources (${tenant} expands); frontend images (gateway.v0 source and\n"
         "  cmdline, build-arg:BUILDKIT_SYNTAX) must be pinned by digest: the attrs they read cannot be known,\n"
         "  and a \"# syntax=\" line inside a Dockerfile is pinned only by a source_policy (BuildKit v0.11+).\n"
         "Under isolate, image-resolve-mode is forced to pull for dockerfile.v0 and gateway.v0.\n");
  if (!p)
    return;
  printf("\n");
  size_t n_profiles;
  const struct bg_profile *profiles = bg_policy_profiles(p, &n_profiles);
  for (size_t k = 0; k < n_profiles; k++) {
    const struct bg_profile *pr = &profiles[k];
    printf("profile %s: %s", pr->name, bg_profile_restricted(pr) ? "restricted (allow-list)" : "unrestricted");
    if (pr->frontend_attrs_allow.n) {
      printf("; granted:");
      for (size_t i = 0; i < pr->frontend_attrs_allow.n; i++)
        printf(" %s", pr->frontend_attrs_allow.v[i]);
    }
    printf("%s\n", pr->isolate ? "; image-resolve-mode forced to pull" : "");
    bg_fa_notes(pr, print_note, NULL);
  }
  bg_policy_lint(p, print_warning, (void *)"policy");
}

#define MAX_HDRS 32

static int get_be32(FILE *f, uint32_t *v)
{
  unsigned char b[4];
  size_t n = fread(b, 1, 4, f);
  if (n == 0 && feof(f))
    return 0;
  if (n != 4)
    return -1;
  *v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
  return 1;
}

/* --dump: the policy's view of one message, or of every message of a batch. */
static int cmd_dump(const char *policy, const char *tenant, const char *method, const char *message,
                    const char *batch)
{
  struct bg_error err;
  struct bg_policy *p = policy ? bg_policy_load_file(policy, &err) : bg_dump_policy();
  if (!p) {
    fprintf(stderr, "buildgate check --dump: cannot load %s: %s\n", policy ? policy : "the oracle policy",
            policy ? err.text : "internal error");
    return 1;
  }
  if (!tenant)
    tenant = "oracle";
  int rc = 1;
  if (!batch) {
    size_t len;
    uint8_t *msg = read_all(message, &len);
    if (!msg) {
      fprintf(stderr, "buildgate check: %s: %s\n", message, strerror(errno));
    } else {
      char *s = bg_inspect_dump(p, tenant, method, msg, len);
      if (s) {
        printf("%s\n", s);
        rc = 0;
      }
      free(s);
      free(msg);
    }
    bg_policy_unref(p);
    return rc;
  }
  FILE *f = strcmp(batch, "-") == 0 ? stdin : fopen(batch, "rb");
  if (!f) {
    fprintf(stderr, "buildgate check: %s: %s\n", batch, strerror(errno));
    bg_policy_unref(p);
    return 1;
  }
  char *m = NULL;
  uint8_t *msg = NULL;
  for (;;) {
    uint32_t ml, n;
    int r = get_be32(f, &ml);
    if (r == 0) {
      rc = 0;
      break;
    }
    if (r < 0 || ml > 4096 || !(m = gw_malloc(ml + 1)) || fread(m, 1, ml, f) != ml || get_be32(f, &n) != 1 ||
        n > (1u << 30) || !(msg = gw_malloc(n ? n : 1)) || fread(msg, 1, n, f) != n) {
      fprintf(stderr, "buildgate check --batch: truncated or malformed record\n");
      break;
    }
    m[ml] = 0;
    char *s = bg_inspect_dump(p, tenant, m, msg, n);
    if (!s) {
      fprintf(stderr, "buildgate check --batch: out of memory\n");
      break;
    }
    printf("%s\n", s);
    free(s);
    free(m);
    free(msg);
    m = NULL;
    msg = NULL;
  }
  free(m);
  free(msg);
  if (f != stdin)
    fclose(f);
  fflush(stdout);
  bg_policy_unref(p);
  return rc;
}

int gw_cmd_check(int argc, char **argv)
{
  const char *policy = NULL, *tenant = NULL, *method = NULL, *message = NULL, *outfile = NULL;
  const char *door = "grpc", *batch = NULL, *backend_version = NULL;
  int gz = 0, dump = 0, fa = 0;
  struct bg_header hdrs[MAX_HDRS + 1];
  size_t n_hdrs = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char **dst = NULL;
    if (strcmp(a, "--policy") == 0)
      dst = &policy;
    else if (strcmp(a, "--tenant") == 0)
      dst = &tenant;
    else if (strcmp(a, "--method") == 0)
      dst = &method;
    else if (strcmp(a, "--message") == 0)
      dst = &message;
    else if (strcmp(a, "--out") == 0)
      dst = &outfile;
    else if (strcmp(a, "--door") == 0)
      dst = &door;
    else if (strcmp(a, "--batch") == 0)
      dst = &batch;
    else if (strcmp(a, "--backend-version") == 0)
      dst = &backend_version;
    else if (strcmp(a, "--dump") == 0) {
      dump = 1;
      continue;
    } else if (strcmp(a, "--frontend-attrs") == 0) {
      fa = 1;
      continue;
    } else if (strcmp(a, "--gzip") == 0) {
      gz = 1;
      continue;
    } else if (strcmp(a, "--header") == 0) {
      if (i + 1 >= argc || n_hdrs >= MAX_HDRS)
        return usage();
      const char *h = argv[++i], *colon = strchr(h, ':');
      if (!colon || colon == h) {
        fprintf(stderr, "buildgate check: --header wants 'name: value'\n");
        return 1;
      }
      const char *v = colon + 1;
      while (*v == ' ')
        v++;
      hdrs[n_hdrs++] = (struct bg_header){h, (size_t)(colon - h), v, strlen(v)};
      continue;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage_to(stdout);
      return 0;
    } else {
      fprintf(stderr, "buildgate check: unknown argument \"%s\"\n", a);
      return usage();
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "buildgate check: %s needs a value\n", a);
      return usage();
    }
    *dst = argv[++i];
  }
  if (dump) {
    if (batch ? (method || message) : !(method && message)) {
      fprintf(stderr, "buildgate check --dump: give --method and --message, or --batch\n");
      return usage();
    }
    return cmd_dump(policy, tenant, method, message, batch);
  }
  if (batch) {
    fprintf(stderr, "buildgate check: --batch goes with --dump\n");
    return usage();
  }
  if ((tenant || method || message || outfile) && !(tenant && method)) {
    fprintf(stderr, "buildgate check: --tenant and --method go together (--message needs both)\n");
    return usage();
  }

  struct bg_error err;
  struct bg_policy *p;
  if (policy) {
    p = bg_policy_load_file(policy, &err);
    if (!p) {
      if (err.line > 0)
        printf("%s:%d:%d: %s\n", policy, err.line, err.column, err.text);
      else
        printf("%s: %s\n", policy, err.text);
      return 1;
    }
  } else {
    p = bg_policy_load_default();
    if (!p) {
      printf("(built-in default): failed to load\n");
      return 1;
    }
  }
  if (fa) {
    print_frontend_attrs(policy ? p : NULL);
    bg_policy_unref(p);
    return 0;
  }
  if (!tenant) {
    bg_policy_lint(p, print_warning, (void *)(policy ? policy : "(built-in default)"));
    printf("ok\n");
    bg_policy_unref(p);
    return 0;
  }

  int rc = 1;
  uint8_t *msg = NULL, *replaced = NULL;
  size_t msglen = 0, replacedlen = 0;
  char *audit = NULL;
  struct bg_backend_facts facts = {0};
  if (backend_version) {
    facts.known = 1;
    facts.info_unimplemented = !strcmp(backend_version, "none");
    snprintf(facts.buildkit_version, sizeof facts.buildkit_version, "%s",
             facts.info_unimplemented ? "< v0.11 (no Control.Info)" : backend_version);
  }
  struct bg_conn *c = bg_conn_open_as_tenant(p, tenant, door, 0, &facts);
  if (!c) {
    fprintf(stderr, "buildgate check: no tenant \"%s\" in the policy\n", tenant);
    goto out;
  }
  if (message && !(msg = read_all(message, &msglen))) {
    fprintf(stderr, "buildgate check: %s: %s\n", message, strerror(errno));
    goto out;
  }
  if (gz)
    hdrs[n_hdrs++] = (struct bg_header){"grpc-encoding", 13, "gzip", 4};

  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(c, method, strlen(method), hdrs, n_hdrs, &d);
  if (!call) {
    fprintf(stderr, "buildgate check: out of memory\n");
    goto out;
  }
  int status = d.grpc_status;
  char denial[512] = "";
  if (status)
    snprintf(denial, sizeof denial, "%s", d.message);
  printf("tenant: %s (identified by %s)\n", bg_conn_tenant(c), bg_conn_identified_by(c));
  printf("method: %s\n", method);
  printf("mode: %s\n", bg_policy_mode(p));
  for (size_t i = 0; i < d.n_edits; i++) {
    printf("header edit: %s", d.edits[i].name);
    if (!d.edits[i].n_values)
      printf(" (removed)");
    for (size_t k = 0; k < d.edits[i].n_values; k++)
      printf("%s%s", k ? ", " : " = ", d.edits[i].values[k]);
    printf("\n");
  }
  if (!status && msg) {
    if (!d.inspect_requests) {
      printf("message: not inspected on this method (forwarded unchanged)\n");
    } else {
      struct bg_msg_result r;
      bg_call_request(call, msg, msglen, gz, &r);
      if (r.verdict == BG_MSG_WAIT_FACTS) {
        /* what the gateway does when Control.Info never answers */
        printf("backend facts: needed and unknown (give --backend-version); deciding as after a timed-out wait\n");
        bg_call_facts_timeout(call);
        bg_call_request(call, msg, msglen, gz, &r);
      }
      if (r.verdict == BG_MSG_DENY) {
        status = r.grpc_status;
        snprintf(denial, sizeof denial, "%s", r.message);
      } else if (r.verdict == BG_MSG_REPLACE) {
        replaced = r.data;
        replacedlen = r.len;
      }
    }
  }
  bg_call_end(call, status, denial, msglen, 0, &audit);

  json_t *a = audit ? json_loads(audit, 0, NULL) : NULL;
  if (a) {
    print_str("decision", json_object_get(a, "decision"));
    print_str("rule", json_object_get(a, "rule"));
    print_str("reason", json_object_get(a, "reason"));
    size_t i;
    json_t *rw;
    json_array_foreach(json_object_get(a, "rewrites"), i, rw) {
      json_t *o = json_object_get(rw, "old"), *n = json_object_get(rw, "new");
      printf("rewrite: %s: %s -> %s\n", json_string_value(json_object_get(rw, "field")),
             json_is_string(o) ? json_string_value(o) : "(none)", json_is_string(n) ? json_string_value(n) : "(removed)");
    }
    json_decref(a);
  }
  printf("grpc_status: %d\n", status);
  if (status)
    printf("grpc_message: %s\n", denial);
  if (replaced) {
    if (outfile) {
      FILE *f = fopen(outfile, "wb");
      if (!f || fwrite(replaced, 1, replacedlen, f) != replacedlen || fclose(f) != 0) {
        fprintf(stderr, "buildgate check: %s: %s\n", outfile, strerror(errno));
        goto out;
      }
      printf("rewritten message: %zu bytes written to %s\n", replacedlen, outfile);
    } else {
      printf("rewritten message (%zu bytes, hex; use --out FILE for the raw bytes):\n", replacedlen);
      print_hex(replaced, replacedlen);
    }
  } else if (msg && !status && d.inspect_requests) {
    printf("message: forwarded unchanged\n");
  }
  if (audit)
    printf("audit: %s\n", audit);
  rc = status ? 2 : 0;
out:
  free(audit);
  free(msg);
  free(replaced);
  bg_conn_close(c);
  bg_policy_unref(p);
  return rc;
}

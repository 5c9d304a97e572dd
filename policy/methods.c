/*
 * methods.c: the built-in method catalogue, :path validation and method rules.
 *
 * Classes (usable in a profile's "methods" as @stable, @unstable, @powerful):
 *   stable    the low-power calls a build needs: Control Solve/Status/Session/
 *             ListWorkers/Info, the LLBBridge build calls, health checks.
 *   unstable  calls whose surface or semantics still move upstream and that
 *             expose other builds' metadata: build history listing, Evaluate,
 *             trace export, server reflection.
 *   powerful  calls that read or destroy state beyond the caller's own build
 *             or run interactive processes: Prune, DiskUsage,
 *             UpdateBuildHistory, NewContainer/ExecProcess and the container
 *             file calls, and the whole content store (reads hand out any
 *             blob by digest; writes mutate the store).
 * A method is in exactly one class; a class set never implies another.
 */
#include <stdio.h>
#include <string.h>

#include "policy/policy_int.h"

#define CTL "/moby.buildkit.v1.Control/"
#define BR "/moby.buildkit.v1.frontend.LLBBridge/"
#define CS "/containerd.services.content.v1.Content/"

static const struct bg_method catalogue[] = {
  /* moby.buildkit.v1.Control */
  {CTL "Solve", BG_MC_STABLE, BG_MK_CONTROL_SOLVE},
  {CTL "Status", BG_MC_STABLE, BG_MK_CONTROL_STATUS},
  {CTL "Session", BG_MC_STABLE, BG_MK_CONTROL_SESSION},
  {CTL "ListWorkers", BG_MC_STABLE, BG_MK_PLAIN},
  {CTL "Info", BG_MC_STABLE, BG_MK_PLAIN},
  {CTL "ListenBuildHistory", BG_MC_UNSTABLE, BG_MK_LISTEN_HISTORY},
  {CTL "DiskUsage", BG_MC_POWERFUL, BG_MK_PLAIN},
  {CTL "Prune", BG_MC_POWERFUL, BG_MK_PLAIN},
  {CTL "UpdateBuildHistory", BG_MC_POWERFUL, BG_MK_UPDATE_HISTORY},
  /* moby.buildkit.v1.frontend.LLBBridge */
  {BR "ResolveImageConfig", BG_MC_STABLE, BG_MK_RESOLVE_IMAGE},
  {BR "ResolveSourceMeta", BG_MC_STABLE, BG_MK_RESOLVE_SOURCE},
  {BR "Solve", BG_MC_STABLE, BG_MK_BRIDGE_SOLVE},
  {BR "ReadFile", BG_MC_STABLE, BG_MK_BRIDGE},
  {BR "ReadDir", BG_MC_STABLE, BG_MK_BRIDGE},
  {BR "StatFile", BG_MC_STABLE, BG_MK_BRIDGE},
  {BR "Ping", BG_MC_STABLE, BG_MK_BRIDGE},
  {BR "Return", BG_MC_STABLE, BG_MK_BRIDGE_RETURN},
  {BR "Inputs", BG_MC_STABLE, BG_MK_BRIDGE},
  {BR "Warn", BG_MC_STABLE, BG_MK_BRIDGE},
  {BR "Evaluate", BG_MC_UNSTABLE, BG_MK_BRIDGE},
  {BR "NewContainer", BG_MC_POWERFUL, BG_MK_NEW_CONTAINER},
  {BR "ReleaseContainer", BG_MC_POWERFUL, BG_MK_BRIDGE},
  {BR "ExecProcess", BG_MC_POWERFUL, BG_MK_EXEC_PROCESS},
  {BR "ReadFileContainer", BG_MC_POWERFUL, BG_MK_BRIDGE},
  {BR "ReadDirContainer", BG_MC_POWERFUL, BG_MK_BRIDGE},
  {BR "StatFileContainer", BG_MC_POWERFUL, BG_MK_BRIDGE},
  /* containerd.services.content.v1.Content (read-only in BuildKit) */
  {CS "Info", BG_MC_POWERFUL, BG_MK_PLAIN},
  {CS "Read", BG_MC_POWERFUL, BG_MK_PLAIN},
  {CS "List", BG_MC_POWERFUL, BG_MK_PLAIN},
  {CS "Status", BG_MC_POWERFUL, BG_MK_PLAIN},
  {CS "ListStatuses", BG_MC_POWERFUL, BG_MK_PLAIN},
  {CS "Update", BG_MC_POWERFUL, BG_MK_PLAIN},
  {CS "Delete", BG_MC_POWERFUL, BG_MK_PLAIN},
  {CS "Write", BG_MC_POWERFUL, BG_MK_PLAIN},
  {CS "Abort", BG_MC_POWERFUL, BG_MK_PLAIN},
  /* tracing, health, reflection */
  {"/opentelemetry.proto.collector.trace.v1.TraceService/Export", BG_MC_UNSTABLE, BG_MK_PLAIN},
  {"/grpc.health.v1.Health/Check", BG_MC_STABLE, BG_MK_PLAIN},
  {"/grpc.health.v1.Health/Watch", BG_MC_STABLE, BG_MK_PLAIN},
  {"/grpc.health.v1.Health/List", BG_MC_STABLE, BG_MK_PLAIN},
  {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", BG_MC_UNSTABLE, BG_MK_PLAIN},
  {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", BG_MC_UNSTABLE, BG_MK_PLAIN},
};

const struct bg_method *bg_method_catalogue(size_t *n)
{
  *n = sizeof catalogue / sizeof catalogue[0];
  return catalogue;
}

const struct bg_method *bg_method_lookup(const char *path)
{
  for (size_t i = 0; i < sizeof catalogue / sizeof catalogue[0]; i++)
    if (strcmp(catalogue[i].path, path) == 0)
      return &catalogue[i];
  return NULL;
}

const char *bg_mclass_name(enum bg_mclass c)
{
  switch (c) {
  case BG_MC_STABLE: return "stable";
  case BG_MC_UNSTABLE: return "unstable";
  case BG_MC_POWERFUL: return "powerful";
  }
  return "?";
}

static int ident_char(unsigned char ch)
{
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
}

/* The only accepted form is "/" service "/" method where service is a
 * dot-separated protobuf full name (at least a package and a service) and
 * method an identifier.  Everything else is refused rather than normalised:
 * servers that route "pkg.Svc/M" or "//pkg.Svc/M" would otherwise reach a
 * method that a string-matching rule never saw (GHSA-p77j-4mvh-x3m3). */
int bg_path_check(const char *path, size_t len, char *why, size_t whylen)
{
#define BAD(...) do { snprintf(why, whylen, __VA_ARGS__); return -1; } while (0)
  if (len == 0)
    BAD("empty :path");
  if (len > BG_MAX_PATH_LEN)
    BAD(":path longer than %d bytes", BG_MAX_PATH_LEN);
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)path[i];
    if (ch < 0x21 || ch > 0x7e)
      BAD(":path contains a non-printable or non-ASCII byte at offset %zu", i);
    if (ch == '?' || ch == '#' || ch == '%')
      BAD(":path contains '%c': queries, fragments and escapes are not gRPC method names", ch);
  }
  if (path[0] != '/')
    BAD(":path must start with '/' (got \"%.*s\"): expected /package.Service/Method", (int)(len > 80 ? 80 : len), path);
  size_t slash = 0;
  for (size_t i = 1; i < len; i++)
    if (path[i] == '/') {
      if (slash)
        BAD(":path has more than two '/': expected /package.Service/Method");
      slash = i;
    }
  if (!slash)
    BAD(":path has no method part: expected /package.Service/Method");
  if (slash == 1)
    BAD(":path has an empty service name: expected /package.Service/Method");
  if (slash == len - 1)
    BAD(":path has an empty method name: expected /package.Service/Method");
  /* service: ident ('.' ident)+ */
  int dots = 0;
  size_t seg = 0;
  for (size_t i = 1; i < slash; i++) {
    if (path[i] == '.') {
      if (seg == 0)
        BAD(":path service name has an empty component");
      dots++;
      seg = 0;
    } else if (!ident_char((unsigned char)path[i])) {
      BAD(":path service name contains '%c'", path[i]);
    } else {
      seg++;
    }
  }
  if (seg == 0)
    BAD(":path service name has an empty component");
  if (dots == 0)
    BAD(":path service name lacks a package: expected /package.Service/Method");
  for (size_t i = slash + 1; i < len; i++)
    if (!ident_char((unsigned char)path[i]))
      BAD(":path method name contains '%c'", path[i]);
  return 0;
#undef BAD
}

int bg_method_pattern_check(const char *pat, char *why, size_t whylen)
{
  const char *p = pat;
  if (*p == '!')
    p++;
  if (strcmp(p, "*") == 0 || strcmp(p, "@stable") == 0 || strcmp(p, "@unstable") == 0 ||
      strcmp(p, "@powerful") == 0)
    return 0;
  if (*p == '@') {
    snprintf(why, whylen, "unknown method class \"%s\" (use @stable, @unstable or @powerful)", p);
    return -1;
  }
  if (*p != '/') {
    snprintf(why, whylen, "method pattern \"%s\" must be \"*\", a @class or start with '/'", p);
    return -1;
  }
  if (strlen(p) > BG_MAX_PATH_LEN) {
    snprintf(why, whylen, "method pattern longer than %d bytes", BG_MAX_PATH_LEN);
    return -1;
  }
  for (const char *q = p; *q; q++)
    if ((unsigned char)*q < 0x21 || (unsigned char)*q > 0x7e) {
      snprintf(why, whylen, "method pattern contains a non-printable byte");
      return -1;
    }
  return 0;
}

static int pattern_matches(const char *pat, const char *path, const struct bg_method *m)
{
  if (strcmp(pat, "*") == 0)
    return 1;
  if (pat[0] == '@') {
    if (!m)
      return 0; /* classes name known methods only */
    return strcmp(pat + 1, bg_mclass_name(m->cls)) == 0;
  }
  return bg_glob_match(pat, path);
}

/* Allowed when some positive pattern matches and no "!" pattern does. */
int bg_methods_allow(const struct bg_strlist *pats, const char *path, const char **rule)
{
  const struct bg_method *m = bg_method_lookup(path);
  const char *allow = NULL;
  for (size_t i = 0; i < pats->n; i++) {
    const char *pat = pats->v[i];
    if (pat[0] == '!') {
      if (pattern_matches(pat + 1, path, m)) {
        *rule = pat;
        return 0;
      }
    } else if (!allow && pattern_matches(pat, path, m)) {
      allow = pat;
    }
  }
  *rule = allow;
  return allow != NULL;
}

/*
 * frontend_attrs.c: the catalogue of frontend attrs (what BuildKit's
 * daemon-side frontends read, v0.8 to v0.13), how a profile treats them,
 * and the order analysis of source policies.
 *
 * Sources read: moby/buildkit frontend/dockerfile/builder/build.go (v0.8.3,
 * v0.9.3, v0.10.6, v0.11.6), frontend/dockerui/{config,context,
 * namedcontext,requests}.go (v0.12.5, v0.13.2, where build.go moved),
 * frontend/attestations/parse.go (v0.11.6-v0.13.2), frontend/gateway
 * (gateway.v0: "source", "cmdline"), sourcepolicy/engine.go and
 * solver/llbsolver/solver.go loadSourcePolicy (v0.11.6, v0.12.5, v0.13.2).
 *
 * Under a restricted profile (bg_profile_restricted) every attr of a
 * dockerfile.v0 / gateway.v0 request is classified:
 *   harmless, exporter, cache  pass (cache types go through the cache rules);
 *   power, unknown             denied unless frontend_attrs.allow grants the key;
 *   source                     every source it names goes through the LLB
 *                              source rules (llb.sources), and a frontend
 *                              image must be pinned by digest, because the
 *                              attrs such an image reads cannot be known.
 * Keys the profile forces with frontend_attrs.set are the admin's own and
 * are not classified.  A request without a frontend (the client-side Build
 * flow) runs no daemon-side frontend: its attrs are read by the client and,
 * for attestations, the solver; the LLB the client's frontend produces comes
 * through LLBBridge.Solve, where it is inspected.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/attrparse.h"
#include "policy/frontend_attrs.h"
#include "policy/inspect_int.h"

#define DF (BG_FE_DOCKERFILE | BG_FE_GATEWAY)

/* Exact keys and prefixes (ending in '*').  Lookup takes an exact key
 * first, then the longest prefix, so "build-arg:BUILDKIT_SYNTAX" beats
 * "build-arg:BUILDKIT_*", which beats "build-arg:*". */
static const struct bg_fa_entry catalogue[] = {
    /* harmless: the tenant's own build */
    {"target", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.8-v0.13", "stage to build"},
    {"filename", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.8-v0.13", "Dockerfile name inside the dockerfile local"},
    {"dockerfilekey", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.8-v0.13", "session local dir holding the Dockerfile"},
    {"contextkey", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.8-v0.13",
     "which attr names the build context (that attr is checked as the context)"},
    {"contextsubdir", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.8-v0.13", "subdirectory of a git/http context"},
    {"label:*", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.8-v0.13", "image labels"},
    {"build-arg:*", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.8-v0.13", "build arguments (BUILDKIT_* listed apart)"},
    {"no-cache", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.8-v0.13", "stages not to take from cache"},
    {"platform", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.8-v0.13", "target platforms"},
    {"multi-platform", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.8-v0.13", "force a multi-platform result"},
    {"build-arg:BUILDKIT_MULTI_PLATFORM", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.9-v0.13", "same as multi-platform"},
    {"build-arg:BUILDKIT_CONTEXT_KEEP_GIT_DIR", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.8-v0.13",
     "keep .git of a git context"},
    {"build-arg:SOURCE_DATE_EPOCH", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.11-v0.13", "reproducible timestamps"},
    {"build-arg:BUILDKIT_SBOM_SCAN_CONTEXT", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.11-v0.13",
     "SBOM scan of the context too"},
    {"build-arg:BUILDKIT_SBOM_SCAN_STAGE", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.11-v0.13",
     "SBOM scan of a stage too"},
    {"requestid", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.11-v0.13", "subrequest (outline, targets)"},
    {"frontend.caps", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.8-v0.13", "capabilities needed to forward to # syntax"},
    {"input-metadata:*", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.10-v0.13", "image config of an input: context"},
    {"local-sessionid:*", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.12-v0.13",
     "session of a local dir (namespaced under isolate)"},
    /* exporter and attestations */
    {"build-arg:BUILDKIT_INLINE_CACHE", DF, BG_FA_EXPORTER, BG_FAS_NONE, "v0.8-v0.13", "inline cache metadata"},
    {"attest:provenance", DF | BG_FE_SOLVER, BG_FA_EXPORTER, BG_FAS_NONE, "v0.11-v0.13", "provenance attestation"},
    {"attest:*", DF | BG_FE_SOLVER, BG_FA_EXPORTER, BG_FAS_NONE, "v0.11-v0.13",
     "other attestation types (the frontend refuses them)"},
    {"build-arg:BUILDKIT_ATTEST_*", DF, BG_FA_EXPORTER, BG_FAS_NONE, "v0.11-v0.13",
     "alias of attest:<type> (SBOM as attest:sbom)"},
    /* cache */
    {"cache-from", DF, BG_FA_CACHE, BG_FAS_NONE, "v0.8-v0.13", "registry cache refs (legacy)"},
    {"cache-imports", DF, BG_FA_CACHE, BG_FAS_NONE, "v0.8-v0.13", "JSON cache importers"},
    /* powers: they become container or daemon powers in the LLB the daemon makes */
    {"cgroup-parent", DF, BG_FA_POWER, BG_FAS_NONE, "v0.10-v0.13", "Meta.cgroupParent: cgroup outside the daemon's"},
    {"ulimit", DF, BG_FA_POWER, BG_FAS_NONE, "v0.10-v0.13", "Meta.ulimit of every RUN"},
    {"shm-size", DF, BG_FA_POWER, BG_FAS_NONE, "v0.10-v0.13", "size of /dev/shm (host memory)"},
    {"add-hosts", DF, BG_FA_POWER, BG_FAS_NONE, "v0.8-v0.13", "Meta.extraHosts"},
    {"force-network-mode", DF, BG_FA_POWER, BG_FAS_NONE, "v0.8-v0.13", "network of every RUN (host, none)",
     "none,sandbox"},
    {"hostname", DF, BG_FA_POWER, BG_FAS_NONE, "v0.8-v0.13", "Meta.hostname"},
    {"build-arg:BUILDKIT_SANDBOX_HOSTNAME", DF, BG_FA_POWER, BG_FAS_NONE, "v0.10-v0.13", "same as hostname"},
    {"build-arg:BUILDKIT_CACHE_MOUNT_NS", DF, BG_FA_POWER, BG_FAS_NONE, "v0.8-v0.13",
     "namespace of cache mount IDs, which the daemon shares across builds"},
    {"network", BG_FE_GATEWAY, BG_FA_POWER, BG_FAS_NONE, "(none v0.8-v0.13)", "network mode (other frontends)"},
    {"device", BG_FE_GATEWAY, BG_FA_POWER, BG_FAS_NONE, "(none v0.8-v0.13)", "devices (later frontends)"},
    {"memory", BG_FE_GATEWAY, BG_FA_POWER, BG_FAS_NONE, "(none v0.8-v0.13)", "memory limit (Docker /build)"},
    {"memswap", BG_FE_GATEWAY, BG_FA_POWER, BG_FAS_NONE, "(none v0.8-v0.13)", "swap limit (Docker /build)"},
    {"cpu*", BG_FE_GATEWAY, BG_FA_POWER, BG_FAS_NONE, "(none v0.8-v0.13)", "CPU shares/quota/sets (Docker /build)"},
    {"build-arg:BUILDKIT_*", DF, BG_FA_UNKNOWN, BG_FAS_NONE, "-", "BUILDKIT_ build args not listed here"},
    /* sources */
    {"build-arg:BUILDKIT_SYNTAX", DF, BG_FA_SOURCE, BG_FAS_IMAGE, "v0.8-v0.13",
     "frontend image to forward to (first word)"},
    {"cmdline", DF, BG_FA_HARMLESS, BG_FAS_NONE, "v0.8-v0.13",
     "arguments of a forwarded frontend; dockerfile.v0 v0.12+ then stops forwarding"},
    {"source", BG_FE_GATEWAY, BG_FA_SOURCE, BG_FAS_IMAGE, "v0.8-v0.13", "gateway.v0 frontend image"},
    {"gateway-devel", BG_FE_GATEWAY, BG_FA_POWER, BG_FAS_NONE, "v0.8-v0.13",
     "gateway.v0 builds its frontend image with the frontend named in source"},
    {"gateway-*", BG_FE_GATEWAY, BG_FA_UNKNOWN, BG_FAS_NONE, "v0.8-v0.13",
     "with gateway-devel: passed to that frontend without the prefix"},
    {"context", DF, BG_FA_SOURCE, BG_FAS_CONTEXT_URL, "v0.8-v0.13", "build context: a git or http(s) URL"},
    {"context:*", DF, BG_FA_SOURCE, BG_FAS_NAMED_CONTEXT, "v0.10-v0.13",
     "named context: docker-image:, git:, http(s):, oci-layout:, local:, input:"},
    {"attest:sbom", DF, BG_FA_SOURCE, BG_FAS_SBOM, "v0.11-v0.13",
     "SBOM generator image (generator=, else docker/buildkit-syft-scanner)"},
    {"image-resolve-mode", DF, BG_FA_SOURCE, BG_FAS_RESOLVE_MODE, "v0.8-v0.13",
     "local image store or registry (forced to pull under isolate)"},
    {"override-copy-image", DF, BG_FA_SOURCE, BG_FAS_IMAGE, "v0.8-v0.10", "helper image that runs COPY"},
    {"build-arg:BUILDKIT_DISABLE_FILEOP", DF, BG_FA_SOURCE, BG_FAS_COPY_IMAGE, "v0.8-v0.10",
     "COPY through docker/dockerfile-copy"},
};

const struct bg_fa_entry *bg_fa_catalogue(size_t *n)
{
  *n = sizeof catalogue / sizeof *catalogue;
  return catalogue;
}

const char *bg_fa_class_name(enum bg_fa_class c)
{
  switch (c) {
  case BG_FA_HARMLESS: return "harmless";
  case BG_FA_POWER: return "power";
  case BG_FA_SOURCE: return "source";
  case BG_FA_EXPORTER: return "exporter";
  case BG_FA_CACHE: return "cache";
  case BG_FA_UNKNOWN: return "unknown";
  }
  return "?";
}

const struct bg_fa_entry *bg_fa_lookup(const char *key)
{
  const struct bg_fa_entry *best = NULL;
  size_t bestlen = 0;
  for (size_t i = 0; i < sizeof catalogue / sizeof *catalogue; i++) {
    const char *k = catalogue[i].key;
    size_t kl = strlen(k);
    if (kl && k[kl - 1] == '*') {
      if (strncmp(key, k, kl - 1) == 0 && (!best || kl - 1 > bestlen)) {
        best = &catalogue[i];
        bestlen = kl - 1;
      }
    } else if (strcmp(key, k) == 0) {
      return &catalogue[i];
    }
  }
  return best;
}

int bg_profile_restricted(const struct bg_profile *p)
{
  int methods_all = p->methods.n == 1 && strcmp(p->methods.v[0], "*") == 0;
  return !methods_all || !p->llb_any || p->frontend_attrs_allow_set;
}

/* ---- image references -------------------------------------------------------- */

/* The source identifier BuildKit makes of an image reference, with docker's
 * normalisation (bg_docker_normalize: no domain -> docker.io, one path
 * component -> library/); tag and digest kept.  A reference the normaliser
 * refuses is used as it is, so it can only fail to match an allow pattern. */
void bg_fa_image_ident(const char *ref, size_t reflen, char *ident, size_t n)
{
  char norm[512];
  if (bg_docker_normalize(ref, reflen, 0, norm, sizeof norm) < 0)
    snprintf(norm, sizeof norm, "%.*s", (int)(reflen < 400 ? reflen : 400), ref);
  snprintf(ident, n, "docker-image://%s", norm);
}

int bg_fa_pinned(const char *ref, size_t reflen)
{
  for (size_t i = 0; i + 8 <= reflen; i++) {
    if (memcmp(ref + i, "@sha256:", 8) != 0)
      continue;
    size_t h = i + 8, k = 0;
    while (h + k < reflen && isxdigit((unsigned char)ref[h + k]) && !isupper((unsigned char)ref[h + k]))
      k++;
    return k == 64 && h + k == reflen;
  }
  return 0;
}

/* ---- checks on a request -------------------------------------------------------- */

static int granted(const struct bg_profile *p, const char *key)
{
  return bg_list_glob(&p->frontend_attrs_allow, key);
}

static int safe_value(const char *list, const char *v)
{
  size_t vl = strlen(v);
  for (const char *q = list; q && *q;) {
    size_t n = strcspn(q, ",");
    if (n == vl && !memcmp(q, v, n))
      return 1;
    q += n + (q[n] == ',');
  }
  return 0;
}

static int forced_by_profile(const struct bg_profile *p, const char *key)
{
  for (size_t s = 0; s < p->frontend_attrs.set.n; s++)
    if (strcmp(p->frontend_attrs.set.v[s].key, key) == 0)
      return 1;
  /* Under isolate the gateway writes these itself, whatever the tenant sent:
   * the cache-mount namespace (the tenant's, inspect_solve.c) and the
   * resolve mode (pull, above): the value forwarded is never the tenant's. */
  return p->isolate &&
         (strcmp(key, "build-arg:BUILDKIT_CACHE_MOUNT_NS") == 0 || strcmp(key, "image-resolve-mode") == 0);
}

/* A frontend image: the image the daemon runs as the frontend (or as a
 * helper).  It reads attrs nobody can list, so it must be pinned. */
static void check_image(struct bg_ictx *c, const char *key, const char *value, const char *f)
{
  char ident[700];
  const char *ref = value;
  size_t rl = strlen(value);
  /* BUILDKIT_SYNTAX: strings.SplitN(strings.TrimSpace(v), " ", 2)[0];
   * gateway.v0 source and override-copy-image: the value as it is */
  if (!strcmp(key, "build-arg:BUILDKIT_SYNTAX") && bg_go_syntax_ref(value, rl, &ref, &rl) < 0)
    return; /* only white space: names no image (the frontend fails) */
  if (!rl)
    return;
  if (!bg_fa_pinned(ref, rl)) {
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "frontend_attrs",
                 "%s: frontend image \"%.*s\" is not pinned by digest (@sha256:...); a frontend image reads attrs "
                 "the gateway cannot know, so %s may only run pinned ones",
                 f, (int)(rl > 200 ? 200 : rl), ref, bg_ictx_who(c));
    return;
  }
  bg_fa_image_ident(ref, rl, ident, sizeof ident);
  bg_inspect_source_ident(c, ident, f, -1);
}

/* "git@host:path", "git://...", "github.com/..." -> a git:// identifier. */
static void git_ident(const char *v, char *ident, size_t n)
{
  if (strncmp(v, "git@", 4) == 0) {
    const char *colon = strchr(v + 4, ':');
    if (colon)
      snprintf(ident, n, "git://%.*s/%s", (int)(colon - v - 4), v + 4, colon + 1);
    else
      snprintf(ident, n, "git://%s", v + 4);
  } else if (strstr(v, "://")) {
    snprintf(ident, n, "git://%s", strstr(v, "://") + 3);
  } else {
    snprintf(ident, n, "git://%s", v);
  }
}

/* The build context attr: local unless it is a git or http(s) URL
 * (DetectGitContext / DetectHTTPContext); anything else non-empty that
 * looks like neither is still checked, as a git remote, since the
 * detection rules changed between releases. */
static void check_context_url(struct bg_ictx *c, const char *v, const char *f)
{
  char ident[700];
  if (!v[0])
    return;
  if (strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0) {
    bg_inspect_source_ident(c, v, f, -1);
    const char *frag = strchr(v, '#');
    size_t end = frag ? (size_t)(frag - v) : strlen(v);
    if (!c->stop && end >= 4 && memcmp(v + end - 4, ".git", 4) == 0) {
      git_ident(v, ident, sizeof ident);
      bg_inspect_source_ident(c, ident, f, -1);
    }
    return;
  }
  git_ident(v, ident, sizeof ident);
  bg_inspect_source_ident(c, ident, f, -1);
}

/* context:<name> = <scheme>:<ref> (namedcontext.go: SplitN(v, ":", 2)). */
static void check_named_context(struct bg_ictx *c, const char *v, const char *f)
{
  char ident[700];
  const char *colon = strchr(v, ':');
  if (!colon) {
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "frontend_attrs", "%s: named context \"%.200s\" has no scheme (%s)", f,
                 v, bg_ictx_who(c));
    return;
  }
  size_t sl = (size_t)(colon - v);
  const char *rest = colon + 1;
  if (strncmp(v, "git@", 4) == 0) {
    git_ident(v, ident, sizeof ident);
  } else if (sl == 12 && !memcmp(v, "docker-image", 12)) {
    if (!strncmp(rest, "//", 2))
      rest += 2;
    if (!strcmp(rest, "scratch"))
      return;
    bg_fa_image_ident(rest, strlen(rest), ident, sizeof ident);
  } else if (sl == 3 && !memcmp(v, "git", 3)) {
    git_ident(v, ident, sizeof ident);
  } else if ((sl == 4 && !memcmp(v, "http", 4)) || (sl == 5 && !memcmp(v, "https", 5))) {
    snprintf(ident, sizeof ident, "%s", v);
  } else if (sl == 10 && !memcmp(v, "oci-layout", 10)) {
    snprintf(ident, sizeof ident, "oci-layout://%s", strncmp(rest, "//", 2) ? rest : rest + 2);
  } else if ((sl == 5 && !memcmp(v, "local", 5)) || (sl == 5 && !memcmp(v, "input", 5))) {
    return; /* the caller's own session dir / a FrontendInputs definition (inspected) */
  } else {
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "frontend_attrs", "%s: named context scheme \"%.*s\" is unknown (%s)", f,
                 (int)(sl > 40 ? 40 : sl), v, bg_ictx_who(c));
    return;
  }
  bg_inspect_source_ident(c, ident, f, -1);
}

/* attest:sbom = CSV of k=v; generator=<image> picks the scanner, which runs
 * with the build result mounted.  Without one, the default scanner runs. */
static void check_sbom(struct bg_ictx *c, const char *v, const char *f)
{
  char ident[700];
  if (strchr(v, '"')) {
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "frontend_attrs",
                 "%s: quoted CSV in an attestation attr is not accepted by the gateway (%s)", f, bg_ictx_who(c));
    return;
  }
  int any = 0;
  /* encoding/csv fields, not trimmed; attrs[k] = v, so the last generator wins */
  for (const char *p = v; *p && !c->stop;) {
    size_t n = strcspn(p, ",");
    if (n >= 10 && !strncmp(p, "generator=", 10)) {
      any = 1;
      bg_fa_image_ident(p + 10, n - 10, ident, sizeof ident);
      bg_inspect_source_ident(c, ident, f, -1);
    }
    p += n;
    if (*p == ',')
      p++;
  }
  if (!any && !c->stop) {
    static const char def[] = "docker/buildkit-syft-scanner:stable-1";
    bg_fa_image_ident(def, sizeof def - 1, ident, sizeof ident);
    bg_inspect_source_ident(c, ident, f, -1);
  }
}

/* Key -> catalogue entry, with the aliases BuildKit applies: attestation
 * types are lower-cased (attest:SBOM is attest:sbom), and
 * build-arg:BUILDKIT_ATTEST_<TYPE> is attest:<type>. */
static const struct bg_fa_entry *classify(const char *key, int *is_sbom)
{
  *is_sbom = 0;
  const char *t = NULL;
  if (!strncmp(key, "attest:", 7))
    t = key + 7;
  else if (!strncmp(key, "build-arg:BUILDKIT_ATTEST_", 26))
    t = key + 26;
  if (t && !strcasecmp(t, "sbom")) {
    *is_sbom = 1;
    return bg_fa_lookup("attest:sbom");
  }
  if (t && !strcasecmp(t, "provenance"))
    return bg_fa_lookup("attest:provenance");
  return bg_fa_lookup(key);
}

void bg_inspect_frontend_allowlist(struct bg_ictx *c, const char *frontend, struct bg_smap m, const char *field)
{
  const struct bg_profile *p = c->p;
  int dockerfile = !strcmp(frontend, "dockerfile.v0"), gateway = !strcmp(frontend, "gateway.v0");
  char f[300];
  /* Another tenant's image in the daemon's local store is one FROM away on
   * a Docker engine (and on a containerd worker): the frontends resolve
   * image sources locally first unless told to pull. */
  if (p->isolate && (dockerfile || gateway)) {
    size_t count = 0;
    const char *cur = NULL;
    for (size_t i = 0; i < *m.n; i++)
      if (!strcmp((*m.v)[i]->key, "image-resolve-mode"))
        count++, cur = (*m.v)[i]->value;
    if (!(count == 1 && !strcmp(cur, "pull"))) {
      snprintf(f, sizeof f, "%s[image-resolve-mode]", field);
      bg_ictx_rewrite(c, f, cur, "pull");
      bg_smap_set(c, m, "image-resolve-mode", "pull");
    }
  }
  if (!frontend[0] || !bg_profile_restricted(p))
    return;
  const char *ctxkey = bg_smap_get(m, "contextkey");
  if (!ctxkey)
    ctxkey = "context";
  for (size_t i = 0; i < *m.n && !c->stop; i++) {
    const char *k = (*m.v)[i]->key, *v = (*m.v)[i]->value;
    if (forced_by_profile(p, k))
      continue;
    /* One rule per power: an attr that restates an LLB power is granted by
     * the llb key the LLB itself needs (bg_inspect_power_attrs ran before). */
    if (bg_inspect_power_attr_key(k))
      continue;
    snprintf(f, sizeof f, "%s[%s]", field, k);
    int sbom;
    const struct bg_fa_entry *e = classify(k, &sbom);
    enum bg_fa_class cls = e ? e->cls : BG_FA_UNKNOWN;
    if (!strcmp(k, ctxkey) && cls != BG_FA_POWER && cls != BG_FA_UNKNOWN) {
      check_context_url(c, v, f);
      continue;
    }
    switch (cls) {
    case BG_FA_POWER:
      if (!v[0] || safe_value(e->safe_values, v))
        break;
      /* fall through */
    case BG_FA_UNKNOWN:
      if (!granted(p, k))
        bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "frontend_attrs",
                     "%s: frontend attr %s is %s (%s); not granted to %s (frontend_attrs.allow)", f, k,
                     cls == BG_FA_POWER ? "a power" : "not in the gateway's catalogue",
                     e ? e->what : "the frontend may turn it into anything", bg_ictx_who(c));
      break;
    case BG_FA_SOURCE:
      switch (e->src) {
      case BG_FAS_IMAGE:
        if (!strcmp(k, "source") && !gateway)
          break; /* only gateway.v0 reads "source" as an image */
        check_image(c, k, v, f);
        break;
      case BG_FAS_NAMED_CONTEXT: check_named_context(c, v, f); break;
      case BG_FAS_SBOM: check_sbom(c, v, f); break;
      case BG_FAS_COPY_IMAGE: {
        static const char img[] =
            "docker/dockerfile-copy:v0.1.9@sha256:e8f159d3f00786604b93c675ee2783f8dc194bb565e61ca5788f6a6e9d304061";
        char ident[300];
        bg_fa_image_ident(img, sizeof img - 1, ident, sizeof ident);
        bg_inspect_source_ident(c, ident, f, -1);
        break;
      }
      default: break; /* context handled above; resolve mode forced under isolate */
      }
      break;
    default:
      break;
    }
  }
}

/* ---- source policy order ----------------------------------------------------------- */

int bg_sp_wildcard_match(const char *pat, size_t plen, const char *s, size_t slen)
{
  size_t p = 0, i = 0, star = (size_t)-1, mark = 0;
  while (i < slen) {
    if (p < plen && pat[p] == '*') {
      star = p++;
      mark = i;
    } else if (p < plen && pat[p] == s[i]) {
      p++, i++;
    } else if (star != (size_t)-1) {
      p = star + 1;
      i = ++mark;
    } else {
      return 0;
    }
  }
  while (p < plen && pat[p] == '*')
    p++;
  return p == plen;
}

/* Can two wildcard patterns ('*' only) match one common string?  Dynamic
 * programming over suffix pairs: a star either ends or swallows one
 * character the other side produces. */
static int globs_intersect(const char *a, size_t an, const char *b, size_t bn)
{
  size_t w = bn + 1;
  unsigned char *ok = calloc((an + 1) * w, 1);
  if (!ok)
    return 1; /* cannot decide: assume they overlap */
  ok[an * w + bn] = 1;
  for (size_t i = an + 1; i-- > 0;)
    for (size_t j = bn + 1; j-- > 0;) {
      if (i == an && j == bn)
        continue;
      int r = 0;
      if (i < an && a[i] == '*')
        r |= ok[(i + 1) * w + j] | (j < bn ? ok[i * w + j + 1] : 0);
      if (j < bn && b[j] == '*')
        r |= ok[i * w + j + 1] | (i < an ? ok[(i + 1) * w + j] : 0);
      if (i < an && j < bn && a[i] != '*' && b[j] != '*' && a[i] == b[j])
        r |= ok[(i + 1) * w + j + 1];
      ok[i * w + j] = (unsigned char)r;
    }
  int res = ok[0];
  free(ok);
  return res;
}

int bg_sp_may_overlap(const struct bg_sp_rule *a, const struct bg_sp_rule *b)
{
  /* Attr constraints only narrow a selector: ignoring them over-approximates. */
  if (a->match_type == 2 || b->match_type == 2 || a->match_type > 2 || b->match_type > 2)
    return 1;
  if (a->match_type == 1 && b->match_type == 1)
    return a->ident_len == b->ident_len && !memcmp(a->ident, b->ident, a->ident_len);
  if (a->match_type == 1)
    return bg_sp_wildcard_match(b->ident, b->ident_len, a->ident, a->ident_len);
  if (b->match_type == 1)
    return bg_sp_wildcard_match(a->ident, a->ident_len, b->ident, b->ident_len);
  return globs_intersect(a->ident, a->ident_len, b->ident, b->ident_len);
}

/* sourcepolicy/engine.go (same in v0.11-v0.13): one pass walks the rules;
 * ALLOW/DENY set the verdict, the last match wins; the first matching
 * CONVERT that changes the source ends the pass, and the converted source
 * is evaluated again from the start.  So:
 *   ALLOW and DENY matching one source: the verdict depends on order;
 *   two CONVERTs matching one source with different updates: which one
 *     applies depends on order;
 *   a CONVERT and a DENY (or ALLOW) matching one source: the CONVERT wins
 *     wherever it stands (the pass's verdict is dropped when it converts),
 *     so that pair does not depend on order. */
int bg_sp_order_dependent(const struct bg_sp_rule *r, size_t n, size_t *oi, size_t *oj)
{
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++) {
      const struct bg_sp_rule *a = &r[i], *b = &r[j];
      int conflict = 0;
      if ((a->action == 0 && b->action == 1) || (a->action == 1 && b->action == 0))
        conflict = 1;
      else if (a->action == 2 && b->action == 2)
        conflict = !(a->update_len == b->update_len && !memcmp(a->update, b->update, a->update_len) &&
                     !a->update_attrs && !b->update_attrs);
      else if (a->action > 2 || b->action > 2)
        conflict = 1;
      if (conflict && bg_sp_may_overlap(a, b)) {
        *oi = i;
        *oj = j;
        return 1;
      }
    }
  return 0;
}

struct bg_sp_rule *bg_sp_rules(const Moby__Buildkit__V1__Sourcepolicy__Policy *pol, size_t *n)
{
  *n = 0;
  if (!pol || !pol->n_rules)
    return NULL;
  struct bg_sp_rule *v = calloc(pol->n_rules, sizeof *v);
  if (!v)
    return NULL;
  for (size_t i = 0; i < pol->n_rules; i++) {
    const Moby__Buildkit__V1__Sourcepolicy__Rule *r = pol->rules[i];
    struct bg_sp_rule *o = &v[i];
    o->action = (int)r->action;
    o->ident = "";
    o->update = "";
    if (r->selector) {
      o->match_type = (int)r->selector->match_type;
      o->ident = r->selector->identifier;
    }
    o->ident_len = strlen(o->ident);
    if (r->updates) {
      o->update = r->updates->identifier;
      o->update_attrs = r->updates->n_attrs;
    }
    o->update_len = strlen(o->update);
  }
  *n = pol->n_rules;
  return v;
}

int bg_buildkit_keeps_rule_order(const char *version)
{
  unsigned major, minor;
  if (!version || sscanf(version, "v%u.%u", &major, &minor) != 2)
    return 0;
  return major > 0 || minor >= 12;
}

/* ---- warnings for `buildgate check` ------------------------------------------------ */

size_t bg_fa_lint(const struct bg_profile *pr, void (*warn)(void *arg, const char *msg), void *arg)
{
  char m[600];
  size_t n = 0;
  /* a grant only matters for powers and unknown keys */
  for (size_t i = 0; i < pr->frontend_attrs_allow.n; i++) {
    const char *g = pr->frontend_attrs_allow.v[i];
    const struct bg_fa_entry *e = strpbrk(g, "*?") ? NULL : bg_fa_lookup(g);
    if (e && e->cls != BG_FA_POWER && e->cls != BG_FA_UNKNOWN) {
      snprintf(m, sizeof m,
               "profiles.%s.frontend_attrs.allow: \"%s\" is a %s attr; granting it changes nothing%s", pr->name, g,
               bg_fa_class_name(e->cls), e->cls == BG_FA_SOURCE ? " (its sources still go through llb.sources)" : "");
      warn(arg, m);
      n++;
    }
  }
  if (pr->source_policy_order_dependent) {
    snprintf(m, sizeof m,
             "profiles.%s.source_policy: rules %zu and %zu may match one source and mean different things in "
             "different orders (the last matching ALLOW/DENY wins; the first matching CONVERT applies); BuildKit "
             "v0.11 reads rules in random order, so builds of this profile are refused there (v0.12+ keeps order)",
             pr->name, pr->sp_conflict[0], pr->sp_conflict[1]);
    warn(arg, m);
    n++;
  }
  return n;
}

/* What a restricted profile's frontend images must satisfy: printed by
 * `buildgate check --frontend-attrs` (notes, not defects: every shipped
 * profile that allows the dockerfile frontend gets them). */
size_t bg_fa_notes(const struct bg_profile *pr, void (*warn)(void *arg, const char *msg), void *arg)
{
  char m[600];
  size_t n = 0;
  if (!bg_profile_restricted(pr))
    return n;
  int df = pr->frontends_any || bg_list_glob(&pr->frontends, "dockerfile.v0");
  int gw = pr->frontends_any || bg_list_glob(&pr->frontends, "gateway.v0");
  if (gw) {
    snprintf(m, sizeof m,
             "profiles.%s allows gateway.v0: the frontend image (attrs \"source\"/\"cmdline\") reads attrs the "
             "gateway cannot know, so it must be pinned by digest (@sha256:) and allowed by llb.sources",
             pr->name);
    warn(arg, m);
    n++;
  }
  if (df) {
    snprintf(m, sizeof m,
             "profiles.%s allows dockerfile.v0: build-arg:BUILDKIT_SYNTAX must name a frontend image pinned by "
             "digest, but a \"# syntax=\" line inside the Dockerfile is invisible to the gateway; %s",
             pr->name,
             pr->source_policy ? "the profile's source_policy (enforced by BuildKit v0.11+ only) must pin the "
                                 "frontend images it may run by digest"
                               : "add a source_policy that pins frontend images by digest (enforced by BuildKit "
                                 "v0.11+ only)");
    warn(arg, m);
    n++;
  }
  return n;
}

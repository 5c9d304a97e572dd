/*
 * frontend_attrs.h: what the daemon-side frontends make of frontend attrs
 * (the catalogue), and what a source policy means whatever order the
 * backend reads its rules in.  Internal to policy/ and `buildgate check`.
 *
 * Why a catalogue: `buildctl build --frontend dockerfile.v0 --opt k=v` and
 * buildx send a SolveRequest naming a frontend and its attrs; the daemon
 * runs the frontend and builds the LLB itself, out of the gateway's sight.
 * Whatever power that LLB carries (a cgroup parent, ulimits, /dev/shm size,
 * extra hosts, host networking, a frontend image of the client's choosing)
 * must therefore be decided from the attrs.  Every attr the dockerfile
 * frontend reads from BuildKit v0.8 to v0.13 is listed with its class.
 */
#ifndef BG_FRONTEND_ATTRS_H
#define BG_FRONTEND_ATTRS_H

#include <stddef.h>
#include <stdint.h>

#include "policy/profile.h"
#include "proto/sourcepolicy.pb-c.h"

enum bg_fa_class {
  BG_FA_HARMLESS = 0, /* shapes the tenant's own build only */
  BG_FA_POWER,        /* becomes a container or daemon power: needs a grant */
  BG_FA_SOURCE,       /* names something the daemon fetches or runs: source rules */
  BG_FA_EXPORTER,     /* read by the exporter / attestations */
  BG_FA_CACHE,        /* cache import/export: cache rules */
  BG_FA_UNKNOWN,      /* not in the catalogue: treated like a power */
};

/* How a source-class attr names its source(s). */
enum bg_fa_src {
  BG_FAS_NONE = 0,
  BG_FAS_IMAGE,         /* the value's first word is an image reference (a frontend image) */
  BG_FAS_NAMED_CONTEXT, /* context:<name>=<scheme>:<ref> */
  BG_FAS_CONTEXT_URL,   /* the build context attr: a git or http(s) URL when not local */
  BG_FAS_SBOM,          /* attest:sbom: generator=<image>, or the default scanner image */
  BG_FAS_RESOLVE_MODE,  /* image-resolve-mode: local store vs registry */
  BG_FAS_COPY_IMAGE,    /* v0.8-v0.10: a helper image runs COPY */
};

/* Which frontends read an attr. */
#define BG_FE_DOCKERFILE 1u /* dockerfile.v0, built into the daemon */
#define BG_FE_GATEWAY 2u    /* gateway.v0: the frontend image reads it (the dockerfile frontend, usually) */
#define BG_FE_SOLVER 4u     /* the solver itself, whatever the frontend (v0.11+ attestations) */

struct bg_fa_entry {
  const char *key;      /* exact key, or a prefix when it ends in '*' */
  unsigned frontends;   /* BG_FE_* */
  enum bg_fa_class cls;
  enum bg_fa_src src;
  const char *versions; /* BuildKit releases that read it */
  const char *what;
  /* power: values that ask for no power (comma-separated); an empty value
   * always asks for the frontend's default, which is none */
  const char *safe_values;
};

const struct bg_fa_entry *bg_fa_catalogue(size_t *n);
/* Classify one attr key (exact entries first, then the longest prefix).
 * NULL: unknown. */
const struct bg_fa_entry *bg_fa_lookup(const char *key);
const char *bg_fa_class_name(enum bg_fa_class c);

/* A profile is "restricted" when frontend attrs are an allow-list for it:
 * its methods are not exactly ["*"], or it has an "llb" section, or it
 * names frontend_attrs.allow. */
int bg_profile_restricted(const struct bg_profile *p);

/* Image reference -> source identifier as BuildKit normalises it
 * ("alpine" -> "docker-image://docker.io/library/alpine").  ref is
 * (pointer, length), taken as it is. */
void bg_fa_image_ident(const char *ref, size_t reflen, char *ident, size_t n);
/* 1 when the reference pins a digest (...@sha256:<64 hex>). */
int bg_fa_pinned(const char *ref, size_t reflen);

/* ---- source policy (moby.buildkit.v1.sourcepolicy) ---- */

/* One rule, as the analysis needs it.  Strings are (pointer, length). */
struct bg_sp_rule {
  int action;       /* 0 ALLOW, 1 DENY, 2 CONVERT */
  int match_type;   /* 0 WILDCARD, 1 EXACT, 2 REGEX */
  const char *ident;
  size_t ident_len;
  const char *update; /* CONVERT: new identifier (may be empty) */
  size_t update_len;
  size_t update_attrs; /* CONVERT: how many attrs it sets */
};

/* Could two selectors match the same source?  Decided conservatively: 1
 * unless they provably cannot (REGEX always may). */
int bg_sp_may_overlap(const struct bg_sp_rule *a, const struct bg_sp_rule *b);
/* Does the rule set mean the same in every order?  0 yes; otherwise the
 * indexes of a conflicting pair are stored in *i, *j and 1 is returned. */
int bg_sp_order_dependent(const struct bg_sp_rule *r, size_t n, size_t *i, size_t *j);
/* The rules of a decoded Policy (strings point into it); *n gets the count.
 * malloc'd array, NULL when empty or out of memory. */
struct bg_sp_rule *bg_sp_rules(const Moby__Buildkit__V1__Sourcepolicy__Policy *pol, size_t *n);
/* BuildKit's wildcard match: '*' matches any run (no other metacharacter). */
int bg_sp_wildcard_match(const char *pat, size_t plen, const char *s, size_t slen);
/* Does the backend keep the order of one request's rules?  BuildKit v0.11
 * reads them through a Go map (random order); v0.12 and later keep it.
 * Unparseable or older versions: 0. */
int bg_buildkit_keeps_rule_order(const char *version);

/* `buildgate check` warnings about one profile (returns how many): a
 * source policy whose meaning depends on rule order. */
size_t bg_fa_lint(const struct bg_profile *pr, void (*warn)(void *arg, const char *msg), void *arg);
/* `buildgate check --frontend-attrs` notes: frontend images of a
 * restricted profile must be pinned, "# syntax=" only by a source policy. */
size_t bg_fa_notes(const struct bg_profile *pr, void (*warn)(void *arg, const char *msg), void *arg);

#endif

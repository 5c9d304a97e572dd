/*
 * tenant.c: identity -> tenant.
 *
 * Order (DESIGN.md): verified TLS client certificate (CN, then SANs; cert_cn
 * entries are glob patterns, so "*" is any verified certificate), then a
 * bearer token, then the unix peer uid, then its gid, then "any_local"
 * (any unix-socket peer at all).  Each step scans all
 * tenants in file order and the first match wins; the loader refuses a uid,
 * gid, certificate name or token that two tenants claim, so the order of
 * tenants never silently matters.
 *
 * Tokens are stored only as SHA-256.  The presented token is hashed once and
 * compared with CRYPTO_memcmp against every stored hash, without stopping at
 * the first hit, so timing reveals neither which tenant nor how many bytes
 * matched.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "policy/policy_int.h"

int bg_tenant_name_ok(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > BG_TENANT_NAME_MAX)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

long bg_tenant_by_name(const struct bg_policy *p, const char *name)
{
  for (size_t i = 0; i < p->n_tenants; i++)
    if (p->tenants[i].name && strcmp(p->tenants[i].name, name) == 0)
      return (long)i;
  return -1;
}

long bg_tenant_by_token(const struct bg_policy *p, const char *tok, size_t toklen)
{
  uint8_t h[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)tok, toklen, h);
  long found = -1;
  for (size_t i = 0; i < p->n_tenants; i++)
    for (size_t k = 0; k < p->tenants[i].n_tokens; k++) {
      int eq = CRYPTO_memcmp(h, p->tenants[i].tokens[k], sizeof h) == 0;
      if (eq && found < 0)
        found = (long)i;
    }
  OPENSSL_cleanse(h, sizeof h);
  return found;
}

static int cert_matches(const struct bg_tenant *t, const struct bg_identity *id)
{
  for (size_t k = 0; k < t->cert_cn.n; k++) {
    const char *want = t->cert_cn.v[k];
    if (id->cert_cn && bg_glob_match(want, id->cert_cn))
      return 1;
    for (size_t s = 0; s < id->n_cert_sans; s++)
      if (id->cert_sans[s] && bg_glob_match(want, id->cert_sans[s]))
        return 1;
  }
  return 0;
}

long bg_tenant_resolve(const struct bg_policy *p, const struct bg_identity *id, const char **how,
                       int *token_rejected)
{
  *token_rejected = 0;
  *how = "";
  if (id && (id->cert_cn || id->n_cert_sans)) {
    for (size_t i = 0; i < p->n_tenants; i++)
      if (cert_matches(&p->tenants[i], id)) {
        *how = "cert";
        return (long)i;
      }
  }
  if (id && id->bearer_token) {
    long t = bg_tenant_by_token(p, id->bearer_token, strlen(id->bearer_token));
    if (t >= 0) {
      *how = "token";
      return t;
    }
    *token_rejected = 1;
  }
  if (id && id->has_peercred) {
    for (size_t i = 0; i < p->n_tenants; i++)
      for (size_t k = 0; k < p->tenants[i].n_uids; k++)
        if (p->tenants[i].uids[k] == id->uid) {
          *how = "uid";
          return (long)i;
        }
    for (size_t i = 0; i < p->n_tenants; i++)
      for (size_t k = 0; k < p->tenants[i].n_gids; k++)
        if (p->tenants[i].gids[k] == id->gid) {
          *how = "gid";
          return (long)i;
        }
    for (size_t i = 0; i < p->n_tenants; i++)
      if (p->tenants[i].any_local) {
        *how = "unix";
        return (long)i;
      }
  }
  /* A presented token that matches nobody is a mistake worth reporting, not a
   * reason to fall back to the anonymous tenant. */
  if (!*token_rejected && p->anonymous >= 0) {
    *how = "anonymous";
    return p->anonymous;
  }
  return -1;
}

/*
 * tenant.c: identity -> tenant, and the one identity rule every door and
 * every call goes through (README "Identity"):
 *
 *   1. A bearer token, when one is presented, decides: a valid token names
 *      its tenant, whatever the transport says (TLS certificate, unix uid);
 *      a token that matches no tenant is UNAUTHENTICATED.  A token is the
 *      "Authorization: Bearer" header of an HTTP upgrade, or the
 *      "authorization: Bearer" metadata of a call.
 *   2. Without a token, the transport decides: verified TLS client
 *      certificate (CN, then SANs; cert_cn entries are glob patterns), the
 *      unix peer uid, its gid, "any_local", and last the anonymous tenant.
 *   3. A connection is identified once and never changes tenant.  The
 *      Docker-style doors identify it at the upgrade request.  A native
 *      connection is identified by its first call when the policy accepts
 *      tokens (that call may carry one), else when it opens.
 *   4. A call on an identified connection that presents a token for another
 *      tenant is refused with PERMISSION_DENIED; a token for the same tenant
 *      is accepted (and stripped, like every credential).
 *
 * Each transport step scans all tenants in file order and the first match
 * wins; the loader refuses a uid, gid, certificate name or token that two
 * tenants claim, so the order of tenants never silently matters.
 *
 * Tokens are stored only as SHA-256.  The presented token is hashed once and
 * compared with CRYPTO_memcmp against every stored hash, without stopping at
 * the first hit, so timing reveals neither which tenant nor how many bytes
 * matched.
 */
#include <stdio.h>
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

long bg_tenant_by_transport(const struct bg_policy *p, const struct bg_identity *id, const char **how)
{
  *how = "";
  if (id && (id->cert_cn || id->n_cert_sans)) {
    for (size_t i = 0; i < p->n_tenants; i++)
      if (cert_matches(&p->tenants[i], id)) {
        *how = "cert";
        return (long)i;
      }
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
  if (p->anonymous >= 0) {
    *how = "anonymous";
    return p->anonymous;
  }
  return -1;
}

int bg_identify(const struct bg_policy *p, long conn_tenant, const char *conn_how, long transport,
                const char *transport_how, const char *tok, size_t toklen, long *tenant, const char **how,
                char *why, size_t whylen)
{
  *tenant = -1;
  *how = "";
  why[0] = '\0';
  if (tok) {
    long t = bg_tenant_by_token(p, tok, toklen);
    if (t < 0) {
      snprintf(why, whylen, "the bearer token matches no tenant");
      return BG_GRPC_UNAUTHENTICATED;
    }
    if (conn_tenant >= 0 && t != conn_tenant) {
      snprintf(why, whylen,
               "the bearer token names tenant \"%s\", and this connection is tenant \"%s\" (identified by %s): "
               "a connection never changes tenant",
               p->tenants[t].name, p->tenants[conn_tenant].name, conn_how);
      return BG_GRPC_PERMISSION_DENIED;
    }
    *tenant = t;
    *how = conn_tenant >= 0 ? conn_how : "token";
    return 0;
  }
  if (conn_tenant >= 0) {
    *tenant = conn_tenant;
    *how = conn_how;
    return 0;
  }
  if (transport >= 0) {
    *tenant = transport;
    *how = transport_how;
    return 0;
  }
  snprintf(why, whylen, "no tenant matches this peer and the policy has no anonymous tenant");
  return BG_GRPC_UNAUTHENTICATED;
}

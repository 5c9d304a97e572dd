/*
 * inspect_return.c: what a frontend hands to the exporter besides refs.
 *
 * Result metadata (LLBBridge.Return result.metadata, and ExporterAttr of a
 * final LLBBridge.Solve, which BuildKit merges into the same map) reaches
 * the exporter as exporter.Source.Metadata.  What the exporters read from it
 * (exporter/containerimage, exporter/oci v0.8.3-v0.13.2; moby's builder-next
 * exporter):
 *   image.name              the image name when the "name" attr is "*"
 *                           (image and oci exporters): an exporter attr in
 *                           all but name;
 *   any exporter attr the   the image exporter copies attrs it does not know
 *   exporter does not know  into the metadata map (e.meta) and the two
 *                           meet, so a key the profile's exporter rules
 *                           deny, delete or set is the profile's;
 *   containerimage.config*, refs.platforms, containerimage.inline-cache*,
 *   containerimage.buildinfo*, annotation*, source.date.epoch: the image's
 *                           own content, which the tenant builds anyway.
 * So each key is run through the profile's exporter rules (bg_inspect_exporter,
 * unchanged) as the attr it stands for ("image.name" -> "name"); a key those
 * rules would deny or rewrite is refused: the gateway cannot rewrite what
 * the exporter reads from a result it does not see the exporter for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/inspect_int.h"

/* Run the exporter rules of |type| over a one-entry map {attr: value}, in a
 * scratch inspection; returns 1 (with *why set) when they would deny or
 * change that attr. */
static int exporter_rules_touch(struct bg_ictx *c, const char *type, const char *attr, const char *value, char *why,
                                size_t whylen)
{
  struct bg_inspect r2;
  bg_inspect_init(&r2, c->p, c->r->tenant, 0, c->r->facts);
  struct bg_ictx c2;
  bg_ictx_init(&c2, &r2);
  Moby__Buildkit__V1__Exporter *ex = bg_arena_alloc(&c2.arena, sizeof *ex);
  int touched = 0;
  if (ex) {
    moby__buildkit__v1__exporter__init(ex);
    struct bg_smap m = BG_SMAP(&ex->n_attrs, &ex->attrs, &moby__buildkit__v1__exporter__attrs_entry__descriptor);
    bg_smap_append(&c2, m, attr, value);
    bg_inspect_exporter(&c2, type, m, "metadata", "metadata");
    char want[300];
    snprintf(want, sizeof want, "metadata[%s]", attr);
    if (r2.grpc_status) {
      touched = 1;
      snprintf(why, whylen, "%s", r2.reason);
    }
    for (size_t i = 0; i < r2.n_rewrites && !touched; i++)
      if (!strcmp(r2.rewrites[i].field, want)) {
        touched = 1;
        snprintf(why, whylen, "the %s exporter rules of %s would change %s from \"%.100s\" to \"%.100s\"", type,
                 bg_ictx_who(c), attr, value, r2.rewrites[i].new_value ? r2.rewrites[i].new_value : "(removed)");
      }
  }
  bg_ictx_done(&c2);
  bg_inspect_free(&r2);
  return touched;
}

void bg_inspect_result_metadata(struct bg_ictx *c, const char *key, const uint8_t *value, size_t len, const char *field)
{
  const struct bg_profile *p = c->p;
  if (p->exporters_any)
    return;
  int is_name = !strcmp(key, "image.name");
  const char *attr = is_name ? "name" : key;
  /* An exporter attr value is a Go string: bytes up to a NUL could not be
   * compared as the exporter sees them, so such a value is refused. */
  if (memchr(value, 0, len)) {
    bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "exporter_attrs", "%s[%s]: result metadata with a NUL byte (%s)", field,
                 key, bg_ictx_who(c));
    return;
  }
  char *v = bg_arena_alloc(&c->arena, len + 1);
  if (!v)
    return;
  memcpy(v, value, len);
  v[len] = 0;
  char why[420];
  for (size_t i = 0; i < p->n_exporters && !c->stop; i++) {
    const char *type = p->exporters[i].type;
    /* only the image and oci exporters (and Docker's "docker" alias) read image.name */
    if (is_name && strcmp(type, "image") && strcmp(type, "oci") && strcmp(type, "docker") && strcmp(type, "*"))
      continue;
    if (exporter_rules_touch(c, type, attr, v, why, sizeof why))
      bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "exporter_attrs",
                   "%s[%s]: result metadata the exporter reads as its \"%s\" attr is refused: %s", field, key, attr, why);
  }
}

/* Go's base64.StdEncoding as encoding/json applies it to []byte values:
 * padded, '\r' and '\n' skipped, anything else outside the alphabet is an
 * error.  Returns the decoded length, or -1. */
long bg_base64_std_decode(const char *in, size_t n, uint8_t *out)
{
  uint32_t acc = 0;
  int bits = 0, pad = 0;
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = in[i];
    int v;
    if (ch == '\r' || ch == '\n')
      continue;
    if (ch == '=') {
      pad++;
      continue;
    }
    if (pad)
      return -1; /* data after padding */
    if (ch >= 'A' && ch <= 'Z')
      v = ch - 'A';
    else if (ch >= 'a' && ch <= 'z')
      v = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9')
      v = ch - '0' + 52;
    else if (ch == '+')
      v = 62;
    else if (ch == '/')
      v = 63;
    else
      return -1;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[w++] = (uint8_t)(acc >> bits);
    }
  }
  /* padded to a multiple of 4 characters, no stray bits */
  size_t chars = 0;
  for (size_t i = 0; i < n; i++)
    chars += in[i] != '\r' && in[i] != '\n';
  /* not Strict: Go ignores stray low bits in the last quantum */
  if (chars % 4 || pad > 2)
    return -1;
  return (long)w;
}

int bg_inspect_bridge_return(struct bg_inspect *r, const uint8_t *msg, size_t len)
{
  struct bg_ictx c;
  bg_ictx_init(&c, r);
  Moby__Buildkit__V1__Frontend__ReturnRequest *q =
      bg_ictx_unpack(&c, &moby__buildkit__v1__frontend__return_request__descriptor, msg, len, NULL);
  if (!q)
    goto out;
  if (q->result) {
    Moby__Buildkit__V1__Frontend__Result *res = q->result;
    for (size_t i = 0; i < res->n_metadata && !c.stop; i++)
      bg_inspect_result_metadata(&c, res->metadata[i]->key, res->metadata[i]->value.data, res->metadata[i]->value.len,
                                 "Return.result.metadata");
  }
out:
  bg_ictx_done(&c);
  return r->grpc_status;
}

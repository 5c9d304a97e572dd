/*
 * h2_probe.c: the gateway's own Control.Info call, once per process, for the
 * backend facts (which BuildKit runs behind the backend).
 */
#include <stdio.h>

#include "gateway/h2_int.h"
#include "gateway/log.h"

static int probing; /* a Control.Info probe is in flight */

/* Control.Info answered: remember what BuildKit the backend runs, so the
 * policy can refuse what an old daemon would silently ignore. */
static void probe_end(struct bstream *s, int freed)
{
  if (freed) {
    probing = 0;
    return;
  }
  struct bg_backend_facts *f = &s->b->gw->facts;
  if (s->grpc_status == BG_GRPC_UNIMPLEMENTED) {
    f->known = 1;
    f->info_unimplemented = 1;
    snprintf(f->buildkit_version, sizeof f->buildkit_version, "%s", "< v0.11 (no Control.Info)");
  } else if (s->grpc_status == BG_GRPC_OK) {
    /* The policy decodes it, as it would any message; a version it cannot
     * read leaves the facts unknown (requests waiting for them time out). */
    size_t n = evbuffer_get_length(s->resp);
    const uint8_t *p = evbuffer_pullup(s->resp, -1);
    char ver[sizeof f->buildkit_version];
    if (n > BG_GRPC_PREFIX_LEN &&
        bg_inspect_info_version(p + BG_GRPC_PREFIX_LEN, n - BG_GRPC_PREFIX_LEN, ver, sizeof ver) == 0 && ver[0]) {
      f->known = 1;
      f->info_unimplemented = 0;
      snprintf(f->buildkit_version, sizeof f->buildkit_version, "%s", ver);
    }
  }
  if (f->known) {
    LOG_INFO("backend %s runs BuildKit %s", s->b->gw->backend.text, f->buildkit_version);
    gw_facts_wake();
  }
}

/* Control.Info, once per process: what BuildKit runs behind the backend. */
void gw_probe_start(struct bridge *b, struct bconn *bc)
{
  if (b->gw->facts.known || probing)
    return;
  struct bstream *s = gw_stream_new(b, -1);
  probing = 1;
  s->internal = 1;
  s->on_end = probe_end;
  static const uint8_t empty[BG_GRPC_PREFIX_LEN] = {0};
  evbuffer_add(s->req, empty, sizeof empty);
  s->cst = GW_C_HREM; /* the request is complete: one empty message */
  gw_hdrs_grpc_request(&s->reqh, "/moby.buildkit.v1.Control/Info");
  gw_bside_open(s, bc);
  gw_stream_maybe_free(s);
}



/*
 * isolate_bridge.h: namespacing of session names inside LLBBridge lookup
 * requests (ResolveImageConfig, ResolveSourceMeta).  Internal to policy/.
 */
#ifndef BG_ISOLATE_BRIDGE_H
#define BG_ISOLATE_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

struct bg_call;

/* Returns 1 with *out (malloc'd) when a name was namespaced (rewrites are
 * recorded on the call), 0 when the message needs no change, -1 when the
 * validator (proto/pbcheck.h) refuses it; then why (may be NULL) names the
 * field.  resolve_source: the message is a ResolveSourceMetaRequest, else a
 * ResolveImageConfigRequest. */
int bg_isolate_bridge_request(struct bg_call *call, int resolve_source, const uint8_t *msg, size_t len,
                              uint8_t **out, size_t *outlen, char *why, size_t whylen);

#endif

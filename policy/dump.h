/*
 * dump.h: the policy's view of an inspected message, as flat canonical JSON,
 * for the differential oracle (tests/oracle) and `buildgate check --dump`.
 *
 * The view lists the fields the inspectors read, each as "path": "value":
 *   - values are strings; bytes 0x20..0x7e stand for themselves except the
 *     backslash ("\\"), every other byte is written "\xHH";
 *   - a field is listed only when it is not zero/empty (absent = zero);
 *   - a repeated field or map X lists "X#" (the number of entries the reader
 *     sees) and its entries as "X[i]..." or "X[key]..."; a map whose key
 *     repeats lists the count of wire entries and the last value, which is
 *     the one the inspectors' bg_smap_get() returns;
 *   - strings are what the inspectors read: protobuf-c's C string, up to the
 *     first NUL;
 *   - "~cache-imports..." and "~BUILDKIT_SYNTAX" are the readings of JSON and
 *     text inside frontend attrs.
 * A message the policy refuses prints {"refused": "<status> <reason>"}.  A
 * message it rewrites carries "^rewritten": the new bytes in hex.
 * tests/oracle/bgoracle prints the same form for what BuildKit's Go code reads.
 */
#ifndef BG_DUMP_H
#define BG_DUMP_H

#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The policy the oracle judges under when none is given: one tenant
 * ("oracle") that may call every method and hold every power, whose LLB
 * section is present (so every op is read and checked, unknown op kinds and
 * BuildOp refused) and whose isolate is on (so refs and session names in
 * Status and ResolveImageConfig are read too). */
struct bg_policy *bg_dump_policy(void);

/* The view of one request message of |method| ("/pkg.Service/Method") sent by
 * |tenant| under |p|: first the whole call path runs (bg_call_begin and
 * bg_call_request, so every validation the inspectors make applies), then,
 * when the message was not refused, the fields are read from the same
 * protobuf-c decoding the inspectors use.  Returns a malloc'd JSON object on
 * one line (no newline), or NULL when out of memory. */
char *bg_inspect_dump(struct bg_policy *p, const char *tenant, const char *method, const uint8_t *msg,
                      size_t len);

/* For `buildgate check` (gateway/cmd_check.c), which includes no internal
 * header: the lint warnings (returns how many) and the profiles; both in lint.c. */
struct bg_profile;
size_t bg_policy_lint(const struct bg_policy *p, void (*warn)(void *arg, const char *msg), void *arg);
const struct bg_profile *bg_policy_profiles(const struct bg_policy *p, size_t *n);

#ifdef __cplusplus
}
#endif
#endif

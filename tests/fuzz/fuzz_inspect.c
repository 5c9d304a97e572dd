/*
 * fuzz_inspect.c: every message inspector on arbitrary bytes, with a
 * restrictive (isolate, allow-lists, rewrites, source policy), a
 * permissive and a permissive+isolate profile, in enforce and audit mode.  Checks invariants: no
 * output without a change, no output when denied or audit-only, a rewritten
 * Solve decodes again and a second pass over it is stable for the rules that
 * are idempotent (no further output needed beyond isolation wrapping).
 * Seeds: captured Control.Solve / LLBBridge.Solve messages.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/inspect_helpers.h"

typedef int (*inspector)(struct bg_inspect *, const uint8_t *, size_t);

static uint8_t *policy_blob(size_t *n)
{
  Moby__Buildkit__V1__Sourcepolicy__Policy pol = MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Rule r1 = MOBY__BUILDKIT__V1__SOURCEPOLICY__RULE__INIT;
  Moby__Buildkit__V1__Sourcepolicy__Selector s1 = MOBY__BUILDKIT__V1__SOURCEPOLICY__SELECTOR__INIT;
  s1.identifier = "docker-image://evil.example/*";
  r1.action = MOBY__BUILDKIT__V1__SOURCEPOLICY__POLICY_ACTION__DENY;
  r1.selector = &s1;
  Moby__Buildkit__V1__Sourcepolicy__Rule *rs[] = {&r1};
  pol.version = 1;
  pol.rules = rs;
  pol.n_rules = 1;
  return pack_any(&pol.base, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static uint8_t *blob;
  static size_t blob_len;
  static const struct bg_backend_facts facts = {1, 0, "v0.11.6"};
  if (!blob)
    blob = policy_blob(&blob_len);
  /* built at function scope: the compound literals must outlive the calls */
  struct bg_profile restrictive, permissive;
  PROF_BUILDER(restrictive);
  restrictive.llb_mounts = SL("secret");
  restrictive.source_policy = blob;
  restrictive.source_policy_len = blob_len;
  PROF_PERMISSIVE(permissive);
  struct bg_profile isolated; /* permissive but isolate: exercises the LLB re-keying */
  PROF_PERMISSIVE(isolated);
  isolated.isolate = 1;
  static const inspector fns[] = {bg_inspect_control_solve,     bg_inspect_bridge_solve,
                                  bg_inspect_new_container,     bg_inspect_exec_process,
                                  bg_isolate_status_request,    bg_isolate_build_history_request,
                                  bg_isolate_update_build_history, bg_isolate_build_history_event,
                                  bg_inspect_bridge_return,     bg_inspect_resolve_image_config,
                                  bg_inspect_resolve_source_meta};
  const struct bg_profile *profs[] = {&restrictive, &permissive, &isolated};
  for (size_t f = 0; f < sizeof fns / sizeof *fns; f++)
    for (int pi = 0; pi < 3; pi++)
      for (int audit = 0; audit < 2; audit++) {
        struct bg_inspect r;
        bg_inspect_init(&r, profs[pi], "ci", audit, &facts);
        fns[f](&r, data, size);
        if (r.out && (r.grpc_status || audit))
          abort();
        if (r.grpc_status && !r.rule[0])
          abort();
        if (r.out && f == 0) {
          /* the rewritten request decodes and passes again */
          struct bg_inspect r2;
          bg_inspect_init(&r2, profs[pi], "ci", 0, &facts);
          bg_inspect_control_solve(&r2, r.out, r.outlen);
          if (r2.grpc_status == BG_GRPC_INVALID_ARGUMENT)
            abort();
          bg_inspect_free(&r2);
        }
        bg_inspect_free(&r);
      }
  return 0;
}

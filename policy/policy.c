/*
 * policy.c: the built-in default policy (used when no --policy is given).
 *
 * It is deploy/policies/default.json, byte for byte (a unit test checks that
 * the two stay equal), loaded through the same validating loader.
 *
 * Who: every unix-socket peer (SO_PEERCRED) and every peer with a verified
 * TLS client certificate is tenant "local".  A plain-TCP peer without a
 * certificate matches nothing and, with "anonymous": null, is refused: the
 * default never serves an unauthenticated network client.
 *
 * What: @stable (Solve, Status, Session, ListWorkers, Info, the LLBBridge build
 * calls, health) plus exactly what buildx's docker driver and the usual CLI
 * workflows call on top:
 *   Control/DiskUsage            powerful but read-only: `buildctl du`,
 *                                `docker buildx du`, and the interop tests.
 *   Control/ListenBuildHistory   unstable: buildx probes it (dummy ref) to
 *                                detect the history API; read-only.
 *   LLBBridge/Evaluate           unstable: frontends evaluate their own refs.
 *   TraceService/Export          unstable: buildx sends its client traces.
 *   Content/Info, Content/Read   powerful reads: buildx fetches provenance
 *                                and history blobs after a build.  With one
 *                                tenant there is nobody else's blob to read.
 * Not allowed: Prune and UpdateBuildHistory (destroy state), NewContainer /
 * ExecProcess / the container file calls (interactive containers; BuildKit
 * before v0.12.5 skipped entitlement checks there, CVE-2024-23653), content
 * List/Status/writes, reflection.
 *
 * Powers: no entitlements (no network.host, no security.insecure, no
 * devices); LLB network sandbox or none, security sandbox; any source; secret
 * and ssh mounts (the client decides what its session exposes); exporters
 * local, tar, oci, docker, image, moby with no attribute rewriting (push
 * allowed: the registry credentials are the client's own); no session
 * exporter; isolate off (one tenant: nothing to separate from); 16 MiB
 * messages, as dockerd's own gRPC server limit; gateway default stream limit.
 */
#include <string.h>

#include "policy/policy_int.h"

const char bg_default_policy_json[] =
  "{\n"
  "  \"mode\": \"enforce\",\n"
  "  \"anonymous\": null,\n"
  "  \"tenants\": [\n"
  "    {\"name\": \"local\", \"match\": {\"any_local\": true, \"cert_cn\": [\"*\"]}, \"profile\": \"local\"}\n"
  "  ],\n"
  "  \"profiles\": {\n"
  "    \"local\": {\n"
  "      \"methods\": [\n"
  "        \"@stable\",\n"
  "        \"/moby.buildkit.v1.Control/DiskUsage\",\n"
  "        \"/moby.buildkit.v1.Control/ListenBuildHistory\",\n"
  "        \"/moby.buildkit.v1.frontend.LLBBridge/Evaluate\",\n"
  "        \"/opentelemetry.proto.collector.trace.v1.TraceService/Export\",\n"
  "        \"/containerd.services.content.v1.Content/Info\",\n"
  "        \"/containerd.services.content.v1.Content/Read\"\n"
  "      ],\n"
  "      \"entitlements\": [],\n"
  "      \"frontends\": [\"*\"],\n"
  "      \"exporters\": {\"local\": {}, \"tar\": {}, \"oci\": {}, \"docker\": {}, \"image\": {}, \"moby\": {}},\n"
  "      \"session_exporter\": false,\n"
  "      \"llb\": {\"network\": [\"sandbox\", \"none\"], \"security\": [\"sandbox\"], \"sources\": [\"*\"], \"mounts\": [\"secret\", \"ssh\"]},\n"
  "      \"source_policy\": null,\n"
  "      \"isolate\": false,\n"
  "      \"limits\": {\"max_message_bytes\": 16777216, \"max_streams\": 0}\n"
  "    }\n"
  "  }\n"
  "}\n";

struct bg_policy *bg_policy_load_default(void)
{
  struct bg_error err;
  struct bg_policy *p = bg_policy_load_string(bg_default_policy_json, strlen(bg_default_policy_json), &err);
  if (p)
    p->is_default = 1;
  return p;
}

/*
 * fuzz_policy_call.c: the call glue on arbitrary paths, headers and message
 * bytes: :path validation, gzip inflation (bounded), dispatch to the
 * inspectors, isolation header edits, audit line construction.
 *
 * Input: byte 0 = options (bits 0-1 policy: default / multi-tenant builder /
 * multi-tenant admin / audit; bit 2 compressed flag; bits 3-4 grpc-encoding:
 * none / gzip / identity / snappy; bit 5 response instead of request),
 * byte 1 = method (index into a fixed list; 255 = a raw :path taken from the
 * input up to the first NUL), then the message.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

static const char multi[] =
    "{\"mode\": \"%s\", \"tenants\": ["
    "{\"name\": \"ci\", \"match\": {\"uid\": [1001]}, \"profile\": \"builder\"},"
    "{\"name\": \"admin\", \"match\": {\"uid\": [0]}, \"profile\": \"admin\"}],"
    "\"profiles\": {\"admin\": {\"methods\": [\"*\"], \"entitlements\": [\"*\"], \"isolate\": false},"
    "\"builder\": {\"methods\": [\"@stable\", \"@unstable\", \"@powerful\"], \"frontends\": [\"dockerfile.v0\", \"gateway.v0\"],"
    "\"frontend_attrs\": {\"deny\": [\"force-network-mode\"], \"set\": {\"attest:provenance\": \"mode=min\"}},"
    "\"exporters\": {\"image\": {\"set\": {\"push\": \"false\"}, \"name_prefix\": \"r.example.com/${tenant}/\"}, \"local\": {}},"
    "\"session_methods\": [\"/grpc.health.v1.Health/*\", \"/moby.filesync.v1.*\"],"
    "\"cache\": {\"import\": [\"local\"], \"export\": [\"inline\"]},"
    "\"llb\": {\"network\": [\"sandbox\"], \"security\": [\"sandbox\"], \"sources\": [\"docker-image://*\", \"local://*\"]},"
    "\"isolate\": true, \"limits\": {\"max_message_bytes\": 65536}}}}";

static const char *const methods[] = {
    "/moby.buildkit.v1.Control/Solve",
    "/moby.buildkit.v1.frontend.LLBBridge/Solve",
    "/moby.buildkit.v1.frontend.LLBBridge/NewContainer",
    "/moby.buildkit.v1.frontend.LLBBridge/ExecProcess",
    "/moby.buildkit.v1.Control/Status",
    "/moby.buildkit.v1.Control/ListenBuildHistory",
    "/moby.buildkit.v1.Control/UpdateBuildHistory",
    "/moby.buildkit.v1.Control/Session",
    "/moby.buildkit.v1.frontend.LLBBridge/Ping",
    "/moby.buildkit.v1.Control/Prune",
    "/moby.buildkit.v1.frontend.LLBBridge/ResolveImageConfig",
    "/moby.buildkit.v1.frontend.LLBBridge/ResolveSourceMeta",
};

static struct bg_policy *pols[3];

static void setup(void)
{
  if (pols[0])
    return;
  pols[0] = bg_policy_load_default();
  char buf[4096];
  struct bg_error err;
  int n = snprintf(buf, sizeof buf, multi, "enforce");
  pols[1] = bg_policy_load_string(buf, (size_t)n, &err);
  n = snprintf(buf, sizeof buf, multi, "audit");
  pols[2] = bg_policy_load_string(buf, (size_t)n, &err);
  if (!pols[0] || !pols[1] || !pols[2])
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  setup();
  if (size < 2)
    return 0;
  uint8_t opt = data[0], mi = data[1];
  data += 2;
  size -= 2;
  char rawpath[300];
  const char *path;
  size_t pathlen;
  if (mi == 255) {
    const uint8_t *nul = memchr(data, 0, size < 299 ? size : 299);
    if (!nul)
      return 0;
    pathlen = (size_t)(nul - data);
    memcpy(rawpath, data, pathlen);
    path = rawpath;
    data = nul + 1;
    size -= pathlen + 1;
  } else {
    path = methods[mi % (sizeof methods / sizeof *methods)];
    pathlen = strlen(path);
  }
  int pi = opt & 3;
  struct bg_policy *p = pi == 0 ? pols[0] : pi == 3 ? pols[2] : pols[1];
  struct bg_identity id = {0};
  id.has_peercred = 1;
  id.uid = pi == 2 ? 0 : 1001;
  id.peer = "unix:fuzz";
  char *refusal = NULL, *audit = NULL;
  struct bg_conn *c = bg_conn_open(p, &id, "grpc", 1, NULL, &refusal, &audit);
  free(refusal);
  free(audit);
  if (!c)
    abort();
  static const char *const enc[] = {NULL, "gzip", "identity", "snappy"};
  struct bg_header hdrs[4];
  size_t nh = 0;
  const char *e = enc[(opt >> 3) & 3];
  if (e)
    hdrs[nh++] = (struct bg_header){"grpc-encoding", 13, e, strlen(e)};
  hdrs[nh++] = (struct bg_header){"x-docker-expose-session-uuid", 28, "abcdefghijklmnopqrstuvwxy", 25};
  hdrs[nh++] = (struct bg_header){"buildkit-controlapi-buildid", 27, "t25dknjy427y37n5tocweer3v", 25};
  hdrs[nh++] = (struct bg_header){"x-docker-expose-session-grpc-method", 35, "/moby.sshforward.v1.SSH/ForwardAgent", 36};
  struct bg_call_decision d;
  struct bg_call *call = bg_call_begin(c, path, pathlen, hdrs, nh, &d);
  if (call) {
    struct bg_msg_result r;
    int resp = (opt >> 5) & 1;
    if (resp ? d.inspect_responses : d.inspect_requests || d.grpc_status) {
      if (resp)
        bg_call_response(call, data, size, (opt >> 2) & 1, &r);
      else
        bg_call_request(call, data, size, (opt >> 2) & 1, &r);
      if (r.verdict == BG_MSG_REPLACE && !r.data)
        abort();
      free(r.data);
    }
    char *line = NULL;
    bg_call_end(call, d.grpc_status, NULL, size, 0, &line);
    if (!line)
      abort();
    free(line);
  }
  bg_conn_close(c);
  return 0;
}

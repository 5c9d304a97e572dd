/*
 * fuzz_policy_load.c: the policy loader on arbitrary bytes.  Anything may be
 * refused, nothing may crash or leak; an accepted policy must also survive
 * being used once (a connection and a call), and a refused one must carry an
 * error text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct bg_error err;
  struct bg_policy *p = bg_policy_load_string((const char *)data, size, &err);
  if (!p) {
    if (!err.text[0] || strlen(err.text) >= sizeof err.text)
      abort();
    return 0;
  }
  struct bg_identity id = {0};
  id.has_peercred = 1;
  id.uid = 1001;
  id.gid = 1001;
  id.peer = "unix:fuzz";
  char *refusal = NULL, *audit = NULL;
  struct bg_conn *c = bg_conn_open(p, &id, "grpc", 1, NULL, &refusal, &audit);
  free(refusal);
  free(audit);
  if (c) {
    static const char path[] = "/moby.buildkit.v1.Control/Solve";
    struct bg_call_decision d;
    struct bg_call *call = bg_call_begin(c, path, sizeof path - 1, NULL, 0, &d);
    if (call) {
      static const uint8_t msg[] = {0x0a, 0x03, 'a', 'b', 'c'};
      struct bg_msg_result r;
      if (!d.grpc_status && d.inspect_requests) {
        bg_call_request(call, msg, sizeof msg, 0, &r);
        free(r.data);
      }
      char *line = NULL;
      bg_call_end(call, 0, NULL, 0, 0, &line);
      free(line);
    }
    bg_conn_close(c);
  }
  bg_policy_unref(p);
  return 0;
}

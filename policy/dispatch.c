/*
 * dispatch.c: hand inspected messages to the message inspectors.
 * (Placeholder until policy/inspect.h is published: inspects nothing.)
 */
#include <string.h>

#include "policy/call_int.h"

int bg_inspect_wants_requests(const struct bg_call *call)
{
  switch (call->kind) {
  case BG_MK_CONTROL_SOLVE:
  case BG_MK_BRIDGE_SOLVE:
  case BG_MK_NEW_CONTAINER:
  case BG_MK_EXEC_PROCESS:
    return 1;
  default:
    return 0;
  }
}

int bg_inspect_wants_responses(const struct bg_call *call) { return 0; }

void bg_inspect_dispatch(struct bg_call *call, int response, const uint8_t *msg, size_t len,
                         struct bg_inspect_verdict *v)
{
  memset(v, 0, sizeof *v);
}

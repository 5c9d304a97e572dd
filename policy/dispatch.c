/*
 * dispatch.c: the inspector table (dispatch.h).  Nothing but rows: running
 * them and folding their results into the call is call.c's job.
 *
 * Which messages are inspected:
 *   requests  Control.Solve, LLBBridge.Solve, LLBBridge.NewContainer and every
 *             client message of LLBBridge.ExecProcess (a stream may start
 *             several processes, each with its own Init); LLBBridge.Return
 *             unless the profile allows every exporter; with source_policy,
 *             LLBBridge.ResolveImageConfig / ResolveSourceMeta (their own
 *             source policies); with isolate, those two again (the session
 *             names in their bodies, isolate_bridge.c: after the source-policy
 *             row, so a denial there ends the call first), Control.Status,
 *             Control.ListenBuildHistory and Control.UpdateBuildHistory (their
 *             refs are namespaced).
 *   responses with isolate, Control.ListenBuildHistory events: refs are
 *             restored and other tenants' records are dropped.
 */
#include "policy/dispatch.h"

static int isolates(const struct bg_profile *p) { return p->isolate; }
static int has_source_policy(const struct bg_profile *p) { return p->source_policy != NULL; }
static int exporters_restricted(const struct bg_profile *p) { return !p->exporters_any; }

static const struct bg_inspector_row rows[] = {
    {BG_MK_CONTROL_SOLVE, 0, NULL, bg_inspect_control_solve},
    {BG_MK_BRIDGE_SOLVE, 0, NULL, bg_inspect_bridge_solve},
    {BG_MK_NEW_CONTAINER, 0, NULL, bg_inspect_new_container},
    {BG_MK_EXEC_PROCESS, 0, NULL, bg_inspect_exec_process},
    {BG_MK_BRIDGE_RETURN, 0, exporters_restricted, bg_inspect_bridge_return},
    {BG_MK_RESOLVE_IMAGE, 0, has_source_policy, bg_inspect_resolve_image_config},
    {BG_MK_RESOLVE_IMAGE, 0, isolates, bg_isolate_resolve_image_config},
    {BG_MK_RESOLVE_SOURCE, 0, has_source_policy, bg_inspect_resolve_source_meta},
    {BG_MK_RESOLVE_SOURCE, 0, isolates, bg_isolate_resolve_source_meta},
    {BG_MK_CONTROL_STATUS, 0, isolates, bg_isolate_status_request},
    {BG_MK_LISTEN_HISTORY, 0, isolates, bg_isolate_build_history_request},
    {BG_MK_UPDATE_HISTORY, 0, isolates, bg_isolate_update_build_history},
    {BG_MK_LISTEN_HISTORY, 1, isolates, bg_isolate_build_history_event},
};

const struct bg_inspector_row *bg_inspectors(size_t *n)
{
  *n = sizeof rows / sizeof rows[0];
  return rows;
}

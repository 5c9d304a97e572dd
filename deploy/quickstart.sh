#!/usr/bin/env bash
# buildgate in three acts, on a fresh Debian 12 machine, as root (or with sudo).
#
# It installs the Debian packages it needs, builds buildgate and a BuildKit
# client (tests/interop/client, built from Debian's packaged BuildKit Go
# libraries), starts a private Docker engine (own data root and socket, no
# networking changes) and buildgate in front of it with the example policy
# deploy/policies/quickstart.json (multi-tenant.json without its source
# policy, which the Debian 12 engine cannot enforce).  Two tenants use it:
#   - root (uid 0) is tenant "admin": every method, every entitlement;
#   - uid 1001, run with setpriv, is tenant "ci" (profile "builder"): stable
#     methods only, no entitlements, sandboxed LLB, image names under "ci/".
# The gateway tells them apart by the peer credentials of the unix socket
# (SO_PEERCRED); nobody presents a password or a token.
#
#   Act 1: ci's build runs a command in BuildKit; its output lands on disk.
#   Act 2: ci asks for host networking and for a Prune: refused, and the
#          client prints the rule that refused it.  admin's Prune passes.
#   Act 3: ci exports an image with the moby exporter; dockerd's own image
#          list, read from the engine socket, shows it as ci/hello:1.
# Then the audit records of all three acts, and a cleanup that leaves no
# process, mount or temporary directory behind.  Exit status 0 when every act
# did what it says, 1 otherwise.
#
# Environment: TMPDIR (where the run's directory goes, default /tmp);
# QUICKSTART_UID (the restricted tenant's uid, default 1001: the uid that
# quickstart.json maps to tenant "ci"); QUICKSTART_POLICY (another policy
# file; tests/docs/quickstart.sh uses one that forbids nothing, to see the
# script fail).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "quickstart: needs root, because it starts a private dockerd and runs a client as another uid: run it as root, or prefix it with sudo" >&2
  exit 1
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
POLICY="${QUICKSTART_POLICY:-deploy/policies/quickstart.json}"
CI_UID="${QUICKSTART_UID:-1001}"

t0=$EPOCHREALTIME
elapsed() { awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%5.1fs", b - a }'; }
say() { printf '[%s] %s\n' "$(elapsed)" "$*"; }
show() { sed 's/^/           | /'; }
die() { say "quickstart: FAILED: $*" >&2; exit 1; }

say "installing packages (only what is missing) and building"
deploy/install-deps.sh
make -s -j2 buildgate
tests/interop/build-client.sh

D="$(mktemp -d --tmpdir bgq.XXXXXX)"
dockerd_pid="" gate_pid=""
cleanup() {
  local rc=$? m
  set +e
  trap - EXIT INT TERM
  if [ -n "$gate_pid" ]; then
    kill -TERM "$gate_pid" 2>/dev/null
    wait "$gate_pid" 2>/dev/null
  fi
  if [ -n "$dockerd_pid" ]; then
    kill -TERM "$dockerd_pid" 2>/dev/null
    for _ in $(seq 150); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$dockerd_pid" 2>/dev/null
    wait "$dockerd_pid" 2>/dev/null
  fi
  # dockerd may leave overlay and namespace mounts under its roots; deepest first
  for m in $(awk -v d="$D/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  rm -rf "$D"
  if [ -e "$D" ]; then echo "quickstart: could not remove $D" >&2; rc=1; fi
  say "cleaned up: dockerd and buildgate stopped, no mounts left, $D removed"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# uid $CI_UID must reach the gateway socket and its own directories
chmod 0711 "$D"

say "starting a private Docker engine (dockerd $(dockerd --version | awk '{print $3}' | tr -d ,)) on unix://$D/docker.sock"
dockerd --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/dockerd.pid" -H "unix://$D/docker.sock" \
  --iptables=false --bridge=none --ip-masq=false >"$D/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 300); do
  curl -fsS --unix-socket "$D/docker.sock" http://d/_ping >/dev/null 2>&1 && break
  kill -0 "$dockerd_pid" 2>/dev/null || break
  sleep 0.1
done
curl -fsS --unix-socket "$D/docker.sock" http://d/_ping >/dev/null 2>&1 || { tail -n 20 "$D/dockerd.log" >&2; die "dockerd did not start"; }

say "checking the policy: buildgate check --policy $POLICY"
./buildgate check --policy "$POLICY" 2>&1 | show
say "starting buildgate on unix://$D/gate.sock (socket mode 0666: any local uid may connect, the policy decides what it gets)"
./buildgate --listen "unix://$D/gate.sock" --socket-mode 0666 --backend "docker+unix://$D/docker.sock" \
  --policy "$POLICY" --audit-log "$D/audit.jsonl" >"$D/buildgate.log" 2>&1 &
gate_pid=$!
for _ in $(seq 100); do [ -S "$D/gate.sock" ] && break; sleep 0.1; done
[ -S "$D/gate.sock" ] || { cat "$D/buildgate.log" >&2; die "buildgate did not start"; }

# The client, where uid $CI_UID can run it; ci's context (busybox as the root
# filesystem: nothing can be pulled here) and output directory, owned by ci.
install -d -m 0755 "$D/bin"
install -m 0755 build/bgclient "$D/bin/bgclient"
install -d -o "$CI_UID" -g "$CI_UID" -m 0755 "$D/ci" "$D/ci/context" "$D/ci/context/bin" "$D/ci/out"
install -o "$CI_UID" -g "$CI_UID" -m 0755 /bin/busybox "$D/ci/context/bin/busybox"
GATE="unix://$D/gate.sock"
as_ci() { setpriv --reuid "$CI_UID" --regid "$CI_UID" --clear-groups -- env HOME="$D/ci" "$D/bin/bgclient" --docker "$GATE" "$@"; }
as_admin() { "$D/bin/bgclient" --docker "$GATE" "$@"; }
# run_expect ok|denied LABEL CMD...: run a client, show its output, check its verdict
run_expect() {
  local want="$1" label="$2" rc=0; shift 2
  "$@" >"$D/client.out" 2>&1 || rc=$?
  show <"$D/client.out"
  if [ "$want" = ok ] && [ "$rc" -ne 0 ]; then die "$label failed (exit $rc)"; fi
  if [ "$want" = denied ]; then
    [ "$rc" -ne 0 ] || die "$label succeeded, but the policy forbids it"
    grep -q 'code=PermissionDenied' "$D/client.out" || die "$label failed, but not with PERMISSION_DENIED"
  fi
  return 0
}

echo
say "ACT 1: tenant ci (uid $CI_UID) builds through the gateway"
say "  \$ setpriv --reuid $CI_UID --regid $CI_UID --clear-groups bgclient --docker $GATE solve-exec --context ci/context --out ci/out"
run_expect ok "ci's build" as_ci solve-exec --context "$D/ci/context" --out "$D/ci/out"
[ "$(cat "$D/ci/out/result.txt" 2>/dev/null)" = ran-in-buildkit ] || die "ci's output is not on disk"
say "  the build's output on disk: $(stat -c '%n (owner uid %u): ' "$D/ci/out/result.txt" | sed "s|$D/||")$(cat "$D/ci/out/result.txt")"

echo
say "ACT 2: the same tenant asks for what its profile forbids"
say "  a build step with host networking (LLB network mode host + entitlement network.host):"
run_expect denied "ci's host-network build" as_ci solve-exec-host --context "$D/ci/context" --out "$D/ci/out-host"
say "  Control.Prune (drops every tenant's build cache):"
run_expect denied "ci's Prune" as_ci prune
say "  the same Prune from root (tenant admin, profile admin: every method):"
run_expect ok "admin's Prune" as_admin prune

echo
say "ACT 3: tenant ci exports an image named hello:1 with the moby exporter"
run_expect ok "ci's image export" as_ci moby-export --name hello:1
say "  dockerd's own image list (GET /images/json on $D/docker.sock, not through the gateway):"
curl -fsS --unix-socket "$D/docker.sock" http://d/images/json >"$D/images.json"
jq -r '.[] | "\(.RepoTags // [] | join(", "))  \(.Id[7:19])  \(.Size) bytes"' "$D/images.json" | show
jq -e 'any(.[]; (.RepoTags // []) | index("ci/hello:1"))' "$D/images.json" >/dev/null || die "no ci/hello:1 in dockerd's image list"
jq -e 'any(.[]; (.RepoTags // []) | index("hello:1"))' "$D/images.json" >/dev/null && die "an unprefixed hello:1 exists"
say "  the image is ci/hello:1: the gateway put the tenant's prefix on the name ci asked for"

echo
say "AUDIT: one JSON line per call in $D/audit.jsonl ($(wc -l <"$D/audit.jsonl") records); by tenant and method:"
jq -r '[.tenant, .identified_by, .method, .decision, (.rule // "-"), (.grpc_status | tostring)] | @tsv' "$D/audit.jsonl" |
  awk -F'\t' 'BEGIN { printf "%-6s %-5s %-48s %-8s %-30s %s\n", "tenant", "by", "method", "decision", "rule", "grpc" }
              { printf "%-6s %-5s %-48s %-8s %-30s %s\n", $1, $2, $3, $4, $5, $6 }' | show
say "  the refusals of act 2 and the rewrite of act 3, in full:"
jq 'select(.decision == "deny" or (.decision == "rewrite" and (.exporters | index("moby"))))' "$D/audit.jsonl" | show
[ "$(jq -s '[.[] | select(.tenant == "ci" and .decision == "deny")] | length' "$D/audit.jsonl")" -ge 2 ] ||
  die "the audit log lacks ci's refusals"
grep -q '"new":"ci/hello:1"' "$D/audit.jsonl" || die "the audit log lacks the rewrite of the image name"

echo
say "quickstart: OK (to run buildgate for real: README.md, 'Using it')"

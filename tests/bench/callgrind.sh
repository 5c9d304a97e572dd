#!/usr/bin/env bash
# tests/bench/callgrind.sh: instructions per unary call, counted by callgrind.
#
#   tests/bench/callgrind.sh [BUILDGATE_BINARY]   (default ./buildgate)
#
# Instruction counts do not depend on the machine's load, so two binaries can
# be compared on a busy machine where CPU time cannot.  The daemon runs under
# valgrind --tool=callgrind in front of the native bench server (bgbench
# server) and h2load makes unary Control/ListWorkers calls with an empty
# message at concurrency 1 (-c1 -m1).  Two runs, of N1 and N2 calls, each in a
# fresh daemon: the difference of their totals divided by N2-N1 is the cost of
# one call, without start-up, policy load and exit.  Needs build/bench/bgbench
# (tests/bench/run.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/../.."
BG=${1:-./buildgate}
B=build/bench
N1=${CG_N1:-600}
N2=${CG_N2:-3600}
[ -x "$B/bgbench" ] || { echo "build/bench/bgbench missing: run tests/bench/run.sh once" >&2; exit 1; }
D=$(mktemp -d /tmp/bgcg.XXXX)
SP=""
cleanup() { [ -n "$SP" ] && kill "$SP" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$D"; }
trap cleanup EXIT
wait_sock() { for _ in $(seq 400); do [ -S "$1" ] && return 0; sleep 0.05; done; return 1; }
"$B/bgbench" server -listen "$D/gs.sock" >"$D/gs.log" 2>&1 &
SP=$!
wait_sock "$D/gs.sock"
printf '\0\0\0\0\0' >"$D/e.grpc"
total() { # calls -> Ir of the whole daemon run
  rm -f "$D/bg.sock" "$D/cg.out"
  valgrind --tool=callgrind --callgrind-out-file="$D/cg.out" "$BG" --listen "unix://$D/bg.sock" \
    --backend "unix://$D/gs.sock" --no-sandbox --log-level warn >"$D/bg.log" 2>&1 &
  local p=$!
  wait_sock "$D/bg.sock"
  h2load -B "unix:$D/bg.sock" -c 1 -m 1 -n "$1" -d "$D/e.grpc" -H 'content-type: application/grpc' \
    -H 'te: trailers' "http://bench/moby.buildkit.v1.Control/ListWorkers" >"$D/h2load.$1" 2>&1
  grep -q "succeeded, *0 failed\|$1 succeeded" "$D/h2load.$1" || { cat "$D/h2load.$1" >&2; exit 1; }
  kill -TERM "$p"
  wait "$p" || true
  awk '/^summary:/ {print $2}' "$D/cg.out"
}
t1=$(total "$N1")
t2=$(total "$N2")
echo "$BG: $(( (t2 - t1) / (N2 - N1) )) instructions per call (callgrind, c1 m1, ($t2 - $t1) / ($N2 - $N1))"

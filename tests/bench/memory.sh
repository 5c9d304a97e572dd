#!/usr/bin/env bash
# tests/bench/memory.sh: inspection-memory figures.  Part of `make bench`
# (tests/bench/run.sh calls it; `tests/bench/run.sh --only memory` runs it
# alone), and runnable by itself: it needs no dockerd and no root.
#
#   a. buildgate's RSS growth while 32 Control.Solve streams stall one byte
#      short of a 16 MiB message (bgclient stall, tests/interop/client),
#      spread over 1, 4 and 32 client connections; a fresh buildgate per
#      sample, built-in default policy, --inspect-stall-timeout 3.  The
#      backend address leads nowhere: an inspected request reaches the
#      backend only once its first message is whole and approved, which
#      these never are.  Growth = VmHWM after the streams ended - VmRSS
#      before.  Target: <= 64 MiB.
#   b. Peak RSS of `buildgate check` evaluating an 8 MiB Control.Solve whose
#      one ExecOp has 4,194,304 empty `mounts` (2 bytes each on the wire).
#      Target: <= 96 MiB.
#
# Usage: tests/bench/memory.sh [--raw FILE] [--runs N]
# Prints a short table; with --raw, appends tab-separated samples
# (item, path, conc, JSON) for tests/bench/report.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BG=${BUILDGATE_BIN:-$ROOT/buildgate}
RAW=""
RUNS=3
while [ $# -gt 0 ]; do
  case $1 in
  --raw) RAW=$2; shift 2 ;;
  --runs) RUNS=$2; shift 2 ;;
  *) echo "usage: $0 [--raw FILE] [--runs N]" >&2; exit 2 ;;
  esac
done
log() { printf '[memory %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
record() { [ -z "$RAW" ] || printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RAW"; }
[ -x "$BG" ] || { log "$BG missing: run make first"; exit 1; }

BGCLIENT=$ROOT/build/bgclient
tests/interop/build-client.sh </dev/null >&2 || { log "bgclient did not build"; exit 1; }

D=$(mktemp -d /tmp/bgmem.XXXX)
PID=""
cleanup() {
  [ -z "$PID" ] || { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; }
  rm -rf "$D"
}
trap cleanup EXIT

kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# ---------- a. stalled inspected uploads ----------
printf '| a. 32 stalled 16 MiB Solve streams | baseline VmRSS KiB | VmHWM KiB | growth MiB | streams ended (status) | last ended after |\n'
printf '|---|---:|---:|---:|---|---:|\n'
for run in $(seq "$RUNS"); do
  for conns in 1 4 32; do
    rm -f "$D/m.sock"
    "$BG" --listen "unix://$D/m.sock" --backend "unix://$D/nothing.sock" --no-sandbox --log-level warn \
      --inspect-stall-timeout 3 >"$D/bg.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do [ -S "$D/m.sock" ] && break; sleep 0.05; done
    sleep 0.2
    base=$(kb "$PID" VmRSS)
    "$BGCLIENT" stall --addr "unix://$D/m.sock" --streams 32 --conns "$conns" --declare 16M --timeout 60s \
      >"$D/stall.out" 2>&1 || true
    hwm=$(kb "$PID" VmHWM)
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
    sum=$(tail -n 1 "$D/stall.out")
    ended=$(sed -n 's/.* ended=\([0-9]*\) .*/\1/p' <<<"$sum")
    last=$(sed -n 's/.* last_end=\([0-9.]*\)s.*/\1/p' <<<"$sum")
    st=$(sed -n 's/.* statuses=\(.*\)$/\1/p' <<<"$sum")
    if [ -z "$ended" ]; then
      log "stall over $conns connection(s) failed: $sum"
      record memstall "conns-$conns" 32 '{"failed":1}'
      continue
    fi
    printf '| %s connection(s), run %s | %s | %s | %s | %s (%s) | %s s |\n' "$conns" "$run" "$base" "$hwm" \
      "$(((hwm - base) / 1024))" "$ended" "$st" "$last"
    record memstall "conns-$conns" 32 "{\"base_kb\": $base, \"hwm_kb\": $hwm, \"ended\": $ended, \"last_end_s\": $last, \"statuses\": \"$st\"}"
  done
done

# ---------- b. buildgate check on 4M empty mounts ----------
# SolveRequest{Definition(2): Definition{def(1): Op{exec(2): ExecOp{mounts(2): Mount{} x 4194304}}}}
python3 - "$D/mounts.bin" <<'PY'
import sys
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)
def field(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload
execop = b"\x12\x00" * (4 << 20)
msg = field(2, field(1, field(2, execop)))
open(sys.argv[1], "wb").write(msg)
PY
size=$(stat -c %s "$D/mounts.bin")
printf '\n| b. `buildgate check`, Solve of %s bytes (4,194,304 empty ExecOp mounts) | peak RSS KiB | exit | decision |\n' "$size"
printf '|---|---:|---:|---|\n'
for run in $(seq "$RUNS"); do
  # ru_maxrss of the finished child: its peak RSS, in KiB on Linux.
  read -r peak rc < <(python3 - "$BG" "$D/mounts.bin" "$D/check.out" <<'PY'
import resource, subprocess, sys
bg, msg, out = sys.argv[1:4]
with open(out, "wb") as f:
    p = subprocess.run([bg, "check", "--policy", "deploy/policies/default.json", "--tenant", "local",
                        "--method", "/moby.buildkit.v1.Control/Solve", "--message", msg], stdout=f, stderr=subprocess.STDOUT)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode)
PY
)
  dec=$(grep -m1 -oE '"decision": ?"[a-z]+"' "$D/check.out" | sed 's/.*"\([a-z]*\)"$/\1/' || true)
  [ -n "$dec" ] || dec=$(grep -m1 -iE 'decision|deny|allow|error' "$D/check.out" | cut -c1-80 || true)
  printf '| run %s | %s | %s | %s |\n' "$run" "$peak" "$rc" "${dec:-?}"
  record memcheck mounts-4m 0 "{\"peak_kb\": $peak, \"exit\": $rc, \"bytes\": $size, \"decision\": \"${dec//\"/}\"}"
done

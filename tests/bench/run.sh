#!/usr/bin/env bash
# tests/bench/run.sh: buildgate benchmarks (`make bench`).  Needs root (dockerd).
#
# Starts, in one private directory: a dockerd (real BuildKit behind /grpc and
# /session), a tiny native gRPC Control server (bgbench server), buildgate in
# front of each (built-in default policy; multi-tenant policy + audit log),
# nghttpx in front of the native server, and a byte relay (socat) in front of
# both, the floor that one more process in the path costs.  Then measures,
# interleaving the paths run by run so that machine noise hits every path alike:
#   1. unary gRPC calls/s, p50, p99 at concurrency 1 and 16, every path;
#   2. a 512 MiB local context through a session: direct, via buildgate, via
#      the relay;
#   3. policy evaluation of Solve requests with 100 / 1k / 10k LLB ops;
#   4. buildgate RSS with 1k / 10k idle HTTP/2 connections and during 16
#      concurrent builds; inspection memory (tests/bench/memory.sh: RSS under
#      32 stalled 16 MiB Solve uploads, peak RSS of `buildgate check` on a
#      Solve of 4M empty mounts).
# `tests/bench/run.sh --only memory` runs just the inspection-memory step
# (about 80 s, no dockerd).
# Raw samples go to $BENCH_DIR/raw.tsv; tests/bench/report.py turns them into
# tests/bench/results/latest.md (medians, ratios to the direct path).
#
# Knobs: BENCH_RUNS (samples per figure, default 5), BENCH_SECS (seconds per
# unary sample, default 2), BENCH_CONTEXT_MB (default 512), BENCH_QUICK=1
# (3 runs, 1 s, 64 MiB: a smoke test of the harness itself).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
if [ "${1:-}" = --only ]; then
  case ${2:-} in
  memory) exec tests/bench/memory.sh ;;
  *) echo "usage: $0 [--only memory]" >&2; exit 2 ;;
  esac
fi

STARTED=$(date -u +%FT%TZ)
RUNS=${BENCH_RUNS:-5}
SECS=${BENCH_SECS:-2}
CONTEXT_MB=${BENCH_CONTEXT_MB:-512}
SESSION_RUNS=${BENCH_SESSION_RUNS:-5}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
  RUNS=3 SECS=1 CONTEXT_MB=64 SESSION_RUNS=3
fi
OUT=${BENCH_OUT:-tests/bench/results/latest.md}
BG=${BUILDGATE_BIN:-$ROOT/buildgate}
MT_POLICY_SRC=${BENCH_POLICY:-deploy/policies/multi-tenant.json}
TENANT_UID=1001 # "ci" in the multi-tenant policy: the builder profile, isolation on
B=$ROOT/build/bench

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (starts its own dockerd)"
for t in dockerd nghttpx h2load socat go python3 setpriv; do
  command -v "$t" >/dev/null || die "$t not found (deploy/install-deps.sh installs it)"
done
[ -x "$BG" ] || die "$BG missing: run make first (make bench does)"

# ---------- build the tools ----------
mkdir -p "$B" tests/bench/results "$(dirname "$OUT")"
log "building bgbench (Go, GOPATH mode, offline)"
GO111MODULE=off GOPATH="$B/gopath:/usr/share/gocode" GOCACHE="$B/gocache" GOFLAGS= \
  go build -o "$B/bgbench" ./tests/bench/go/bgbench

BGCLIENT=""
if [ -x tests/interop/build-client.sh ]; then
  log "building bgclient (tests/interop/build-client.sh)"
  if tests/interop/build-client.sh </dev/null >"$B/build-client.log" 2>&1 && [ -x build/bgclient ]; then
    BGCLIENT=$ROOT/build/bgclient
  else
    log "bgclient did not build (see $B/build-client.log): session figures skipped"
  fi
fi

INSPECT=""
if [ -f tests/bench/bench_inspect.c ]; then
  log "building bench_inspect"
  if make -s build/libbuildgate.a >"$B/bench_inspect.log" 2>&1 &&
    cc -O2 -std=c11 -D_GNU_SOURCE -I. -Ibuild/gen tests/bench/bench_inspect.c build/libbuildgate.a \
      $(pkg-config --cflags --libs libprotobuf-c jansson openssl) -o "$B/bench_inspect" >>"$B/bench_inspect.log" 2>&1; then
    INSPECT=$B/bench_inspect
  else
    log "bench_inspect did not build (see $B/bench_inspect.log): policy figures skipped"
  fi
fi

# ---------- private world ----------
D=$(mktemp -d /tmp/bgb.XXXX) # short: unix socket paths are limited to 108 bytes
export BENCH_DIR=$D
chmod 755 "$D" # the tenant uid must reach the sockets
RAW=$D/raw.tsv
# The example multi-tenant policy gives the builder profile a source policy,
# which buildgate refuses to forward to a BuildKit older than v0.11 (it could
# not be enforced): dockerd 20.10 runs v0.8, so every Solve would be denied.
# The bench uses the same file with source_policy set to null, nothing else changed.
MT_POLICY=$D/multi-tenant-bench.json
python3 - "$MT_POLICY_SRC" "$MT_POLICY" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
for prof in p.get("profiles", {}).values():
    if prof.get("source_policy") is not None:
        prof["source_policy"] = None
json.dump(p, open(sys.argv[2], "w"), indent=1)
PY
: >"$RAW"
PIDS=()
DOCKERD_PID=""

cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  if [ -n "$DOCKERD_PID" ]; then
    kill -TERM "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DOCKERD_PID" 2>/dev/null
  fi
  grep " $D/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m"; done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $D"; else rm -rf "$D"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Idle-connection figures need ~10k descriptors in buildgate and in the client.
ulimit -n "$(ulimit -Hn)" || true
NOFILE=$(ulimit -n)

wait_sock() { # path [pid]
  for _ in $(seq 200); do
    [ -S "$1" ] && return 0
    if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then return 1; fi
    sleep 0.05
  done
  return 1
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# record ITEM PATH CONC VALUE-JSON
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RAW"; }

log "workdir $D"
# Other work in the tree may rebuild ./buildgate while this runs: every
# buildgate started below is this one copy.
cp "$BG" "$D/buildgate"
BG=$D/buildgate
echo "$(sha256sum "$BG" | cut -c1-12)" >"$D/buildgate.sha"
# ---------- 3. policy evaluation ----------
# First, before dockerd starts: it is CPU alone, and after the session runs
# dockerd's background work made single invocations twice as slow (two of
# three at 7.9-8.7 ms against 4.3 ms for 10,000 ops in one run).
if [ -n "$INSPECT" ]; then
  log "3. policy evaluation (bench_inspect)"
  for run in 1 2 3; do
    "$INSPECT" >"$D/inspect.$run.out" 2>&1 || log "bench_inspect failed: $(tail -3 "$D/inspect.$run.out")"
    python3 "$ROOT/tests/bench/report.py" --inspect "$D/inspect.$run.out" >>"$RAW"
  done
else
  record meta inspect-skipped 0 '{"value": "tests/bench/bench_inspect.c not present"}'
fi

mkdir -p "$D/data" "$D/exec"
dockerd --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/dockerd.pid" -H "unix://$D/docker.sock" \
  --iptables=false --bridge=none --ip-masq=false >"$D/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 300); do
  [ -S "$D/docker.sock" ] && curl -sf --unix-socket "$D/docker.sock" http://docker/_ping >/dev/null 2>&1 && break
  kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -20 "$D/dockerd.log" >&2; die "dockerd exited"; }
  sleep 0.1
done
DOCKER_VERSION=$(curl -s --unix-socket "$D/docker.sock" http://docker/version |
  python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["Version"])')
log "dockerd $DOCKER_VERSION up"

"$B/bgbench" server -listen "$D/gs.sock" >"$D/gs.log" 2>&1 &
PIDS+=($!)
wait_sock "$D/gs.sock" $! || die "bgbench server did not start"

# start_bg NAME BACKEND [policy args...]: buildgate listening on $D/NAME.sock
start_bg() {
  local name=$1 backend=$2
  shift 2
  rm -f "$D/$name.sock"
  "$BG" --listen "unix://$D/$name.sock" --backend "$backend" --socket-mode 0666 --no-sandbox \
    --log-level warn "$@" >"$D/$name.log" 2>&1 &
  local pid=$!
  PIDS+=($pid)
  wait_sock "$D/$name.sock" $pid || { cat "$D/$name.log" >&2; die "buildgate $name did not start"; }
  eval "PID_$name=$pid"
}
stop_pid() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null || true; }

start_bg bgd "docker+unix://$D/docker.sock"
start_bg bgm "docker+unix://$D/docker.sock" --policy "$MT_POLICY" --audit-log "$D/audit-bgm.log"
start_bg bgg "unix://$D/gs.sock"
start_bg bggm "unix://$D/gs.sock" --policy "$MT_POLICY" --audit-log "$D/audit-bggm.log"

# nghttpx as a generic HTTP/2 reverse proxy: one worker (buildgate has one
# thread), no TLS, no access log, no system config file.
start_nghttpx() { # sockname
  rm -f "$D/$1.sock"
  nghttpx --conf=/dev/null --single-process -n 1 -f "unix:$D/$1.sock;no-tls" -b "unix:$D/gs.sock;;proto=h2" \
    --no-via --errorlog-file="$D/$1.err" --backend-keep-alive-timeout=600 >"$D/$1.log" 2>&1 &
  local pid=$!
  PIDS+=($pid)
  wait_sock "$D/$1.sock" $pid || { cat "$D/$1.err" >&2; die "nghttpx did not start"; }
  chmod 666 "$D/$1.sock"
  eval "PID_$1=$pid"
}
start_nghttpx nx

# A byte relay: the least any proxy process in the path can cost on this
# machine.  socat forwards bytes without parsing them (no HTTP/2, no policy),
# one process per connection, 256 KiB buffers; its default listen backlog of 5
# would refuse some of 16 simultaneous connects.  It sits in front of dockerd
# (rd.sock: /grpc and /session upgrades pass through it untouched) and of the
# native server (rg.sock).  It is not a candidate design (it cannot inspect
# anything); it shows how much of buildgate's cost is the hop itself.
start_relay() { # sockname target-socket
  rm -f "$D/$1.sock"
  socat -b 262144 "UNIX-LISTEN:$D/$1.sock,fork,mode=666,backlog=1024" "UNIX-CONNECT:$2" >"$D/$1.log" 2>&1 &
  local pid=$!
  PIDS+=($pid)
  wait_sock "$D/$1.sock" $pid || { cat "$D/$1.log" >&2; die "socat did not start"; }
  eval "PID_$1=$pid"
}
start_relay rd "$D/docker.sock"
start_relay rg "$D/gs.sock"

as_tenant() { setpriv --reuid=$TENANT_UID --regid=$TENANT_UID --clear-groups "$@"; }

# ---------- 1. unary ----------
# Table A (dockerd): the call is Control.Info: dockerd's BuildKit v0.8 has no
# Info, so its gRPC server answers UNIMPLEMENTED without running any handler;
# buildgate's policy allows Info (@stable) and forwards it.  ListWorkers on
# dockerd runs platform detection (milliseconds), which would hide the path.
# Table B (native server): Control.ListWorkers, answered from memory with a
# 206-byte record shaped like dockerd's.
# Each sample: C connections, one call in flight on each (closed loop).
UNARY_A=(
  "direct|docker+unix://$D/docker.sock|root"
  "bg-default-docker|docker+unix://$D/bgd.sock|root"
  "bg-default-native|unix://$D/bgd.sock|root"
  "bg-tenant-native|unix://$D/bgm.sock|tenant"
  "relay|docker+unix://$D/rd.sock|root"
)
UNARY_B=(
  "direct|unix://$D/gs.sock|root"
  "bg-default|unix://$D/bgg.sock|root"
  "bg-tenant|unix://$D/bggm.sock|tenant"
  "nghttpx|unix://$D/nx.sock|root"
  "relay|unix://$D/rg.sock|root"
)

# The proxy's own CPU per call: where a proxy's cost goes (user time is its
# own work, system time mostly the socket I/O any hop does) is what tells a
# slow design from an expensive hop.  proxy_pid TARGET names the process
# behind a socket: start_bg, start_nghttpx and start_relay record PID_<name>
# for <name>.sock, and the direct paths' sockets (dockerd, the native
# server) have none.  proc_cpu prints its user and system ticks, reaped
# children included (socat forks one child per connection).
proxy_pid() {
  local n=${1##*/}
  n=${n%.sock}
  eval "echo \"\${PID_$n:-}\""
}
proc_cpu() { awk '{print $14 + $16, $15 + $17}' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)
# with_cpu JSON PID BEFORE: JSON plus the proxy's CPU seconds since BEFORE and
# the seconds they cover (warm-up + measured window).
with_cpu() {
  local json=$1 pid=$2 before=$3
  [ -n "$pid" ] || { echo "$json"; return; }
  [ -d "/proc/$pid" ] || { echo "$json"; return; }
  sleep 0.2 # let socat reap the children of the connections just closed
  local after
  after=$(proc_cpu "$pid")
  awk -v j="$json" -v b="$before" -v a="$after" -v hz="$CLK_TCK" -v w="$SECS" 'BEGIN {
    split(b, x, " "); split(a, y, " "); sub(/}$/, "", j)
    printf "%s, \"cpu_user_s\": %.2f, \"cpu_sys_s\": %.2f, \"cpu_wall_s\": %.2f}\n", j, (y[1] - x[1]) / hz, (y[2] - x[2]) / hz, w + 0.5 }'
}

unary_sample() { # table label target who conc method
  local table=$1 label=$2 target=$3 who=$4 conc=$5 method=$6 out pid before=""
  local cmd=("$B/bgbench" unary -target "$target" -c "$conc" -d "${SECS}s" -warmup 500ms -method "$method")
  pid=$(proxy_pid "$target")
  [ -z "$pid" ] || before=$(proc_cpu "$pid")
  if [ "$who" = tenant ]; then out=$(as_tenant "${cmd[@]}" 2>&1) || true; else out=$("${cmd[@]}" 2>&1) || true; fi
  case $out in '{'*) out=$(with_cpu "$out" "$pid" "$before") ;; esac
  case $out in
  '{'*) record "unary-$table" "$label" "$conc" "$out" ;;
  *) log "unary $table $label c=$conc failed: $out"; record "unary-$table" "$label" "$conc" '{"failed":1}' ;;
  esac
}

# h2load (C, much lighter than the Go client) drives the native table too.
printf '\0\0\0\0\0' >"$D/empty.grpc" # one empty gRPC message: ListWorkersRequest{}
h2load_sample() { # label sock conc
  local label=$1 sock=$2 conc=$3 out lf=$D/h2load.$$.log pid before=""
  pid=$(proxy_pid "$sock")
  [ -z "$pid" ] || before=$(proc_cpu "$pid")
  out=$(h2load -B "unix:$sock" -c "$conc" -m 1 -D "$SECS" --warm-up-time=500ms -d "$D/empty.grpc" \
    -H 'content-type: application/grpc' -H 'te: trailers' --log-file="$lf" \
    "http://bench/moby.buildkit.v1.Control/ListWorkers" 2>&1) || true
  local json
  json=$(python3 "$ROOT/tests/bench/report.py" --h2load "$lf" "$SECS" <<<"$out") || true
  rm -f "$lf"
  case $json in '{'*) json=$(with_cpu "$json" "$pid" "$before") ;; esac
  case $json in
  '{'*) record "h2load-B" "$label" "$conc" "$json" ;;
  *) log "h2load $label c=$conc failed: $out"; record "h2load-B" "$label" "$conc" '{"failed":1}' ;;
  esac
}

log "1. unary calls: $RUNS runs x ${SECS}s per path and concurrency"
for run in $(seq "$RUNS"); do
  for conc in 1 16; do
    for p in "${UNARY_A[@]}"; do
      IFS='|' read -r label target who <<<"$p"
      unary_sample A "$label" "$target" "$who" "$conc" info
    done
    for p in "${UNARY_B[@]}"; do
      IFS='|' read -r label target who <<<"$p"
      unary_sample B "$label" "$target" "$who" "$conc" listworkers
    done
    for p in "direct|$D/gs.sock" "bg-default|$D/bgg.sock" "nghttpx|$D/nx.sock" "relay|$D/rg.sock"; do
      IFS='|' read -r label sock <<<"$p"
      h2load_sample "$label" "$sock" "$conc"
    done
  done
  log "  run $run/$RUNS done"
done
# The tenant path really is the tenant (not a local denial): the audit log names it.
AUDIT_TENANT=$(grep -c '"tenant":"ci"' "$D/audit-bggm.log" 2>/dev/null || true)
record meta audit-lines-ci 0 "{\"value\": ${AUDIT_TENANT:-0}}"

# settle: every sample starts from the same state.  Each session run leaves a
# 512 MiB snapshot in dockerd's build cache and dirty pages behind it; without
# a prune and a sync the next run (another path) pays for their writeback.
settle() {
  curl -s -X POST --unix-socket "$D/docker.sock" "http://docker/build/prune?all=1" >/dev/null || true
  sync
}

# ---------- 2. session bulk ----------
# bgclient bigcontext (tests/interop/client): a random file in an llb.Local
# context, copied to scratch, exported with the local exporter: the bytes cross
# the session twice (context up, export down).  bgclient times the solve plus
# its sha256 of the exported file; the hash time is measured right after with
# the same Go sha256 (bgbench hashtime, file still in page cache) and taken off.
if [ -n "$BGCLIENT" ]; then
  # Two transports for the session, each with its own direct baseline:
  # a /session upgrade (what buildx's docker driver does; buildgate splices
  # it) and Control.Session on the gRPC connection (what a native client
  # does; bgclient --session-over-grpc makes dockerd's /grpc carry it).
  log "2. ${CONTEXT_MB} MiB context through a session: $SESSION_RUNS runs per path"
  settle
  for run in $(seq "$SESSION_RUNS"); do
    for p in "direct|--docker|unix://$D/docker.sock|" "bg-docker-session|--docker|unix://$D/bgd.sock|" \
      "direct-grpc-session|--docker|unix://$D/docker.sock|--session-over-grpc" \
      "bg-native-session|--grpc|unix://$D/bgd.sock|" \
      "relay-session|--docker|unix://$D/rd.sock|" \
      "relay-grpc-session|--docker|unix://$D/rd.sock|--session-over-grpc"; do
      IFS='|' read -r label flag target extra <<<"$p"
      ok=0
      for attempt in 1 2 3; do
        rm -rf "$D/bigout"
        if out=$("$BGCLIENT" "$flag" "$target" $extra --timeout 10m bigcontext --size "${CONTEXT_MB}M" --out "$D/bigout" \
          2>"$D/bigcontext.err") && [[ $out == *"ok byte-exact"* ]]; then
          ok=1
          break
        fi
        log "bigcontext $label attempt $attempt failed: $(tail -2 "$D/bigcontext.err" | tr '\n' ' ')"
        record session-failure "$label" 1 '{"failed":1}'
      done
      if [ $ok = 1 ]; then
        secs=$(sed -n 's/^bigcontext: out .*(\([0-9.]*\)s)$/\1/p' <<<"$out")
        hash=$("$B/bgbench" hashtime -file "$D/bigout/big")
        record session "$label" 1 "{\"client_secs\": $secs, \"hash\": $hash, \"mb\": $CONTEXT_MB}"
      else
        record session "$label" 1 '{"failed":1}'
      fi
      rm -rf "$D/bigout"
      settle
    done
  done
else
  record meta session-skipped 0 '{"value": "bgclient (tests/interop/build-client.sh) not available"}'
fi

# ---------- 4. memory ----------
log "4. memory: idle connections (fresh process per sample)"
idle_sample() { # label N  -- starts a fresh proxy, holds N idle conns, records RSS
  local label=$1 n=$2 pid sock base rss
  case $label in
  buildgate) start_bg bgi "docker+unix://$D/docker.sock"; pid=$PID_bgi; sock=$D/bgi.sock ;;
  nghttpx) start_nghttpx nxi; pid=$PID_nxi; sock=$D/nxi.sock ;;
  esac
  sleep 0.2
  base=$(rss_kb "$pid")
  rm -f "$D/idle.in"
  mkfifo "$D/idle.in"
  "$B/bgbench" idle -target "unix://$sock" -n "$n" <"$D/idle.in" >"$D/idle.out" 2>&1 &
  local ipid=$!
  exec 8>"$D/idle.in"
  for _ in $(seq 600); do grep -q ready "$D/idle.out" 2>/dev/null && break; kill -0 $ipid 2>/dev/null || break; sleep 0.05; done
  if grep -q ready "$D/idle.out"; then
    sleep 0.5
    rss=$(rss_kb "$pid")
    record idle "$label" "$n" "{\"base_kb\": $base, \"rss_kb\": $rss, \"per_conn_b\": $(((rss - base) * 1024 / n))}"
  else
    log "idle $label n=$n failed: $(cat "$D/idle.out"); client $(kill -0 $ipid 2>/dev/null && echo running || echo exited)"
    record idle "$label" "$n" '{"failed":1}'
  fi
  exec 8>&-
  wait $ipid 2>/dev/null || true
  stop_pid "$pid"
}
for run in 1 2 3; do
  for n in 1000 10000; do
    if [ "$n" -gt $((NOFILE - 100)) ]; then
      record meta "idle-$n-skipped" 0 "{\"value\": \"ulimit -n is $NOFILE\"}"
      continue
    fi
    idle_sample buildgate "$n"
    idle_sample nghttpx "$n"
  done
done

log "4. memory: 16 concurrent builds (peak RSS, fresh buildgate per sample)"
for run in 1 2 3; do
  for p in "bg-default|" "bg-tenant|--policy $MT_POLICY --audit-log $D/audit-builds.log"; do
    IFS='|' read -r label extra <<<"$p"
    # shellcheck disable=SC2086
    start_bg bgb "docker+unix://$D/docker.sock" $extra
    sleep 0.2
    base=$(rss_kb "$PID_bgb")
    cmd=("$B/bgbench" solve -target "unix://$D/bgb.sock" -c 16 -rounds 2 -files 32)
    if [ "$label" = bg-tenant ]; then out=$(as_tenant "${cmd[@]}" 2>&1) || true; else out=$("${cmd[@]}" 2>&1) || true; fi
    peak=$(hwm_kb "$PID_bgb")
    if [[ $out == '{'* && $out != *'"error"'* ]]; then
      record builds "$label" 16 "{\"base_kb\": $base, \"peak_kb\": $peak, \"run\": $out}"
    else
      log "builds $label failed: $out"
      record builds "$label" 16 '{"failed":1}'
    fi
    stop_pid "$PID_bgb"
  done
done

log "4. memory: inspection memory (tests/bench/memory.sh)"
BUILDGATE_BIN=$BG tests/bench/memory.sh --raw "$RAW" >"$D/memory.out" 2>"$D/memory.err" ||
  log "memory.sh failed: $(tail -3 "$D/memory.err" | tr '\n' ' ')"

# ---------- report ----------
log "writing $OUT"
python3 tests/bench/report.py --report "$RAW" --runs "$RUNS" --secs "$SECS" --context-mb "$CONTEXT_MB" \
  --docker-version "$DOCKER_VERSION" --policy "$MT_POLICY_SRC" --nofile "$NOFILE" --bin "$BG" \
  --started "$STARTED" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cp "$RAW" "${OUT%.md}.raw.tsv"
cat "$OUT"

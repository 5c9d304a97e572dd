#!/usr/bin/env bash
# tests/bench/profile.sh: where a proxy's time goes per unary call.
#
#   tests/bench/profile.sh [NAME=BUILDGATE_BINARY]...
#
# Starts the native bench server (bgbench server), nghttpx and each given
# buildgate binary (default: ./buildgate) in front of it, then for each proxy,
# interleaved, several times:
#   - CPU time per call (utime+stime of the proxy process / calls) under
#     h2load -c16 -m1 (16 connections, 1 stream each; both proxies
#     multiplex them onto a shared backend connection, buildgate per tenant)
#     and -c1 -m16 (one connection with 16 streams);
#   - syscalls per call (strace -c, on a separate, slower pass);
# and prints a markdown table.  Needs build/bench/bgbench (run.sh builds it).
# PERF=1 also records a perf profile (dwarf call graphs) of each buildgate
# under -c16 -m1 into $PROFILE_OUT (default build/bench/profile).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
B=$ROOT/build/bench
OUTDIR=${PROFILE_OUT:-$B/profile}
N=${PROFILE_CALLS:-40000}
REPS=${PROFILE_REPS:-3}
[ -x "$B/bgbench" ] || { echo "build/bench/bgbench missing: run tests/bench/run.sh once" >&2; exit 1; }
VARIANTS=("$@")
[ ${#VARIANTS[@]} -gt 0 ] || VARIANTS=("buildgate=$ROOT/buildgate")
mkdir -p "$OUTDIR"

D=$(mktemp -d /tmp/bgprof.XXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$D"
}
trap cleanup EXIT
wait_sock() { for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done; return 1; }

"$B/bgbench" server -listen "$D/gs.sock" >"$D/gs.log" 2>&1 &
PIDS+=($!)
wait_sock "$D/gs.sock"
declare -A PID SOCK
NAMES=()
for v in "${VARIANTS[@]}"; do
  name=${v%%=*} bin=${v#*=}
  "$bin" --listen "unix://$D/$name.sock" --backend "unix://$D/gs.sock" --no-sandbox --log-level warn >"$D/$name.log" 2>&1 &
  PID[$name]=$! SOCK[$name]=$D/$name.sock
  PIDS+=($!)
  NAMES+=("$name")
  wait_sock "$D/$name.sock"
done
nghttpx --conf=/dev/null --single-process -n 1 -f "unix:$D/nx.sock;no-tls" -b "unix:$D/gs.sock;;proto=h2" \
  --no-via --errorlog-file="$D/nx.err" >"$D/nx.log" 2>&1 &
PID[nghttpx]=$! SOCK[nghttpx]=$D/nx.sock
PIDS+=($!)
NAMES+=(nghttpx)
wait_sock "$D/nx.sock"
printf '\0\0\0\0\0' >"$D/e.grpc"

load() { # sock c m n
  h2load -B "unix:$1" -c "$2" -m "$3" -n "$4" -d "$D/e.grpc" -H 'content-type: application/grpc' \
    -H 'te: trailers' "http://bench/moby.buildkit.v1.Control/ListWorkers" 2>&1
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

declare -A CPU RPS
for shape in "16 1" "1 16"; do
  read -r c m <<<"$shape"
  for rep in $(seq "$REPS"); do
    for n in "${NAMES[@]}"; do
      load "${SOCK[$n]}" "$c" "$m" 2000 >/dev/null # warm
      t0=$(ticks "${PID[$n]}")
      out=$(load "${SOCK[$n]}" "$c" "$m" "$N")
      t1=$(ticks "${PID[$n]}")
      us=$(python3 -c "print('%.1f' % (($t1 - $t0) * 1e6 / $HZ / $N))")
      rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
      CPU[$n,$c,$m]="${CPU[$n,$c,$m]:-} $us"
      RPS[$n,$c,$m]="${RPS[$n,$c,$m]:-} $rps"
    done
  done
done

# Latency at concurrency 1 (one connection, one call at a time), direct too.
declare -A P50
SOCK[_server]=$D/gs.sock
for rep in $(seq "$REPS"); do
  for n in _server "${NAMES[@]}"; do
    rm -f "$D/lat.log"
    out=$(h2load -B "unix:${SOCK[$n]}" -c 1 -m 1 -n 10000 -d "$D/e.grpc" -H 'content-type: application/grpc' \
      -H 'te: trailers' --log-file="$D/lat.log" "http://bench/moby.buildkit.v1.Control/ListWorkers" 2>&1)
    p=$(sort -n -k3 "$D/lat.log" | awk '{a[NR]=$3} END {print a[int((NR+1)/2)]}')
    P50[$n]="${P50[$n]:-} $p"
  done
done

med() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "n/a"}'; }

declare -A SYS
for n in "${NAMES[@]}"; do
  strace -f -c -o "$D/strace.$n" -p "${PID[$n]}" 2>/dev/null &
  sp=$!
  for _ in $(seq 100); do
    [ "$(awk '/^TracerPid:/ {print $2}' "/proc/${PID[$n]}/status")" != 0 ] && break
    sleep 0.05
  done
  sleep 0.2
  load "${SOCK[$n]}" 16 1 10000 >/dev/null
  kill -INT $sp
  wait $sp 2>/dev/null || true
  SYS[$n]=$(awk -v n=10000 '$NF ~ /^(epoll_ctl|epoll_wait|writev|write|readv|read|ioctl|sendmsg|recvmsg)$/ {
      s[$NF] = $4; t += $4 }
    END { printf "%.1f total:", t / n; for (k in s) printf " %s %.1f", k, s[k] / n }' "$D/strace.$n")
done

if [ "${PERF:-0}" = 1 ]; then
  for n in "${NAMES[@]}"; do
    [ "$n" = nghttpx ] && continue
    load "${SOCK[$n]}" 16 1 400000 >/dev/null &
    lp=$!
    sleep 1
    perf record -F 2000 --call-graph dwarf,16384 -p "${PID[$n]}" -o "$OUTDIR/perf.$n.data" -- sleep 3 >/dev/null 2>&1
    kill $lp 2>/dev/null || true
    wait $lp 2>/dev/null || true
    perf report -i "$OUTDIR/perf.$n.data" --children --stdio -g none --percent-limit 1 2>/dev/null |
      grep -v '^#' | grep -v '^$' >"$OUTDIR/perf.$n.children.txt" || true
  done
fi

echo "| proxy | CPU µs/call, 16 conns × 1 stream | calls/s | CPU µs/call, 1 conn × 16 streams | calls/s | p50 µs at conc 1 (direct to the server $(med <<<"${P50[_server]}")) | syscalls/call (16 × 1) |"
echo "|---|---:|---:|---:|---:|---:|---|"
for n in "${NAMES[@]}"; do
  echo "| $n | $(med <<<"${CPU[$n,16,1]}") | $(med <<<"${RPS[$n,16,1]}") | $(med <<<"${CPU[$n,1,16]}") | $(med <<<"${RPS[$n,1,16]}") | $(med <<<"${P50[$n]}") | ${SYS[$n]} |"
done
echo
echo "medians of $REPS runs of $N calls each; $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

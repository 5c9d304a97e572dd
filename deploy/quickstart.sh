#!/usr/bin/env bash
# buildgate's main job, from a fresh Debian 12 machine, as root:
#   1. install the Debian packages, build buildgate and a BuildKit client
#      (Debian's packaged BuildKit Go libraries);
#   2. start a private Docker engine (its own data root and socket, no
#      networking changes), since no image can be pulled here the build's root
#      filesystem is busybox taken from the local build context;
#   3. start buildgate in front of it with the built-in default policy;
#   4. run a real build through the gateway the way `docker buildx` with the
#      docker driver does it (POST /grpc + POST /session upgrades): a command
#      runs inside the build and its output is exported to a local directory;
#   5. show the result, what the gateway logged and audited, then clean up.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
[ "$(id -u)" -eq 0 ] || { echo "quickstart: run as root (it starts a private dockerd)" >&2; exit 1; }

deploy/install-deps.sh
make -s -j2 buildgate
tests/interop/build-client.sh

D="$(mktemp -d /tmp/bgq.XXXXXX)"
dockerd_pid="" gate_pid=""
cleanup() {
  [ -n "$gate_pid" ] && kill -TERM "$gate_pid" 2>/dev/null && wait "$gate_pid" 2>/dev/null || true
  if [ -n "$dockerd_pid" ]; then
    kill -TERM "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
  fi
  # dockerd leaves overlay mounts under its data root
  grep -o " $D/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$D"
}
trap cleanup EXIT

echo "== starting a private Docker engine (dockerd $(dockerd --version | awk '{print $3}' | tr -d ,))"
dockerd --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/dockerd.pid" -H "unix://$D/docker.sock" \
  --iptables=false --bridge=none --ip-masq=false >"$D/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 100); do [ -S "$D/docker.sock" ] && break; sleep 0.1; done
[ -S "$D/docker.sock" ] || { cat "$D/dockerd.log"; echo "dockerd did not start" >&2; exit 1; }

echo "== starting buildgate (built-in default policy) on unix://$D/buildgate.sock"
./buildgate --listen "unix://$D/buildgate.sock" --backend "docker+unix://$D/docker.sock" \
  --audit-log "$D/audit.jsonl" >"$D/buildgate.log" 2>&1 &
gate_pid=$!
for _ in $(seq 50); do [ -S "$D/buildgate.sock" ] && break; sleep 0.1; done

mkdir -p "$D/context/bin" "$D/out"
cp /bin/busybox "$D/context/bin/busybox"
echo "== building through the gateway: busybox from the context runs a command, output exported locally"
build/bgclient --docker "unix://$D/buildgate.sock" solve-exec --context "$D/context" --out "$D/out"
echo
echo "== the build's output ($D/out):"
find "$D/out" -type f | sed "s|$D/out/|  |"
for f in "$D"/out/*; do [ -f "$f" ] && sed 's/^/  | /' "$f"; done
echo
echo "== buildgate log:"
sed 's/^/  /' "$D/buildgate.log"
echo
echo "== audit records (one JSON line per decision):"
if command -v python3 >/dev/null; then
  python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print("  %-45s tenant=%-6s door=%-14s decision=%-6s grpc_status=%s in=%s out=%s" % (
        r.get("method"), r.get("tenant"), r.get("door"), r.get("decision"), r.get("grpc_status"),
        r.get("bytes_in"), r.get("bytes_out")))' "$D/audit.jsonl"
else
  sed 's/^/  /' "$D/audit.jsonl"
fi
echo
echo "quickstart: OK (to use it yourself: DOCKER_HOST=unix:///run/buildgate.sock docker buildx build ... ; see README.md)"

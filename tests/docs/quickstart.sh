#!/usr/bin/env bash
# deploy/quickstart.sh end to end, as a newcomer runs it, with its temporary
# files in a clean directory of our own (TMPDIR) so leftovers can be seen:
#   - run as root: exit 0, the three acts and the audit in its output, under
#     two minutes, and afterwards no process, mount or file that names its
#     directory;
#   - run as an unprivileged uid: non-zero, with one line saying why;
#   - run with a policy that forbids nothing (so act 2 cannot happen): exit
#     1, and still nothing left behind.
# Needs root (the quickstart starts a private dockerd).
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
if [ "$(id -u)" -ne 0 ]; then ko quickstart "needs root"; echo "quickstart: $pass passed, $fail failed"; exit 1; fi

W="$(mktemp -d /tmp/bgqt.XXXXXX)"
chmod 0755 "$W"
trap 'rm -rf "$W"' EXIT

# leftovers DIR: processes, mounts or files that still name DIR
leftovers() {
  local dir="$1" p out=""
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] && continue
    if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF "$dir/"; then
      out="$out process ${p#/proc/}: $(tr '\0' ' ' 2>/dev/null <"$p/cmdline" | cut -c1-80);"
    fi
  done
  awk -v d="$dir/" 'index($2, d) == 1 { printf " mount %s;", $2 }' /proc/self/mounts
  printf '%s' "$out"
  [ -n "$(ls -A "$dir" 2>/dev/null)" ] && printf ' files: %s;' "$(ls -A "$dir" | tr '\n' ' ')"
  return 0
}

# 1. as root, the normal run
T="$W/run"; mkdir -m 0755 "$T"
start=$SECONDS
TMPDIR="$T" deploy/quickstart.sh >"$W/out" 2>&1 </dev/null
rc=$?
secs=$((SECONDS - start))
[ "$rc" -eq 0 ] && ok quickstart-exit-0 || ko quickstart-exit-0 "exit $rc: $(tail -n 5 "$W/out" | tr '\n' ' ')"
# each act, with what it must show
expect() { # NAME ERE
  grep -Eq "$2" "$W/out" && ok "$1" || ko "$1" "no /$2/ in the output"
}
expect quickstart-act1-build-output-on-disk 'ACT 1: .*' 
expect quickstart-act1-result 'output on disk: ci/out/result.txt \(owner uid 1001\): ran-in-buildkit'
expect quickstart-act2-host-network-refused 'ACT 2: .*'
expect quickstart-act2-exact-client-error 'error: code=PermissionDenied desc=buildgate: denied by rule profiles\.builder\.entitlements: entitlement network\.host is not granted to tenant ci'
expect quickstart-act2-prune-refused 'error: code=PermissionDenied desc=buildgate: method /moby\.buildkit\.v1\.Control/Prune is not allowed by profiles\.builder\.methods'
expect quickstart-act2-admin-prune 'prune: [0-9]+ records'
expect quickstart-act3-image-listed 'ACT 3: .*'
expect quickstart-act3-prefixed-in-dockerd '^ +\| ci/hello:1 '
expect quickstart-audit-table 'AUDIT: .*records'
expect quickstart-audit-deny-record '"decision": "deny"'
expect quickstart-audit-rewrite-record '"new": "ci/hello:1"'
expect quickstart-timings '^\[ *[0-9]+\.[0-9]s\] ACT 3'
expect quickstart-ok-line 'quickstart: OK'
expect quickstart-cleanup-line 'cleaned up:'
# acts in order
if [ "$(grep -oE '(ACT [123]|AUDIT|quickstart: OK|cleaned up)' "$W/out" | tr '\n' ,)" = "ACT 1,ACT 2,ACT 3,AUDIT,quickstart: OK,cleaned up," ]; then
  ok quickstart-acts-in-order
else
  ko quickstart-acts-in-order "$(grep -oE '(ACT [123]|AUDIT|quickstart: OK|cleaned up)' "$W/out" | tr '\n' ,)"
fi
((secs < 120)) && ok "quickstart-under-2-minutes (${secs}s)" || ko quickstart-under-2-minutes "${secs}s"
sleep 1 # processes reaped by their parents just now
l="$(leftovers "$T")"
[ -z "$l" ] && ok quickstart-no-leftovers || ko quickstart-no-leftovers "$l"
cp "$W/out" "${QUICKSTART_LOG:-/dev/null}" 2>/dev/null

# 2. not root: one line, non-zero
# (a copy: the checkout itself may not be readable by that uid)
install -m 0755 deploy/quickstart.sh "$W/quickstart.sh"
if setpriv --reuid 65534 --regid 65534 --clear-groups "$W/quickstart.sh" >"$W/out.user" 2>&1; then
  ko quickstart-not-root-refused "exit 0 as uid 65534"
elif [ "$(wc -l <"$W/out.user")" -eq 1 ] && grep -q 'needs root.*run it as root, or prefix it with sudo' "$W/out.user"; then
  ok quickstart-not-root-refused
else
  ko quickstart-not-root-refused "$(head -n 3 "$W/out.user" | tr '\n' ' ')"
fi

# 3. a real failure (a policy under which ci may do everything, so act 2 fails): exit 1, clean
T2="$W/fail"; mkdir -m 0755 "$T2"
cat >"$W/lax.json" <<'EOF'
{"tenants": [{"name": "ci", "match": {"uid": [1001]}, "profile": "all"}, {"name": "admin", "match": {"uid": [0]}, "profile": "all"}],
 "profiles": {"all": {"methods": ["*"], "entitlements": ["*"], "isolate": false}}}
EOF
TMPDIR="$T2" QUICKSTART_POLICY="$W/lax.json" deploy/quickstart.sh >"$W/out.fail" 2>&1 </dev/null
rc=$?
if [ "$rc" -eq 1 ] && grep -q 'quickstart: FAILED: ci.s host-network build succeeded' "$W/out.fail" &&
   ! grep -q 'quickstart: OK' "$W/out.fail"; then
  ok quickstart-failure-exits-1
else
  ko quickstart-failure-exits-1 "exit $rc: $(tail -n 3 "$W/out.fail" | tr '\n' ' ')"
fi
sleep 1
l="$(leftovers "$T2")"
[ -z "$l" ] && ok quickstart-failure-no-leftovers || ko quickstart-failure-no-leftovers "$l"

echo "quickstart: $pass passed, $fail failed"
((fail == 0))

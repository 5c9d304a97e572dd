#!/usr/bin/env bash
# `make install DESTDIR=… PREFIX=…` installs exactly the expected files, with
# the unit pointing at the installed binary; a second install keeps an edited
# /etc/buildgate/policy.json; the installed binary runs and the installed man
# pages render; `make uninstall` removes everything but the policy.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
W="$(mktemp -d /tmp/bginst.XXXXXX)"
trap 'rm -rf "$W"' EXIT
pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

DEST="$W/root"
# The expected list: built from the tree, so a new example policy or unit is
# expected too, but a file installed by mistake is not.
{
  echo ./etc/buildgate/policy.json
  for f in deploy/policies/*.json; do echo "./etc/buildgate/examples/${f##*/}"; done
  for u in deploy/*.service; do echo "./opt/bg/lib/systemd/system/${u##*/}"; done
  echo ./opt/bg/bin/buildgate
  echo ./opt/bg/share/man/man8/buildgate.8
  echo ./opt/bg/share/man/man5/buildgate-policy.5
  echo ./opt/bg/share/doc/buildgate/README.md
  echo ./opt/bg/share/doc/buildgate/audit.md
  echo ./opt/bg/share/doc/buildgate/policy.md
} | sort >"$W/want"

if make -s install DESTDIR="$DEST" PREFIX=/opt/bg >"$W/install.out" 2>&1; then ok install-runs
else ko install-runs "$(tail -n 5 "$W/install.out" | tr '\n' ' ')"; fi
(cd "$DEST" && find . -type f | sort) >"$W/got"
if diff -u "$W/want" "$W/got" >"$W/diff"; then ok install-file-list
else ko install-file-list "$(grep '^[-+]\.' "$W/diff" | tr '\n' ' ')"; fi

# modes: the binary executable, everything else readable, nothing group/world-writable
[ "$(stat -c %a "$DEST/opt/bg/bin/buildgate" 2>/dev/null)" = 755 ] && ok install-binary-mode ||
  ko install-binary-mode "$(stat -c %a "$DEST/opt/bg/bin/buildgate" 2>&1)"
bad="$(cd "$DEST" && find . -type f ! -path ./opt/bg/bin/buildgate ! -perm 644)"
[ -z "$bad" ] && ok install-file-modes || ko install-file-modes "not 0644: $bad"

# the installed files are the tree's
cmp -s deploy/policies/default.json "$DEST/etc/buildgate/policy.json" && ok install-policy-is-default ||
  ko install-policy-is-default "policy.json differs from deploy/policies/default.json"
"$DEST/opt/bg/bin/buildgate" check --policy "$DEST/etc/buildgate/policy.json" >/dev/null 2>&1 &&
  ok install-binary-runs || ko install-binary-runs "the installed buildgate cannot check the installed policy"
unit="$DEST/opt/bg/lib/systemd/system/buildgate.service"
if grep -q '^ExecStart=/opt/bg/bin/buildgate ' "$unit" && grep -q -- '--policy /etc/buildgate/policy.json' "$unit" &&
   ! grep -q /usr/local "$unit"; then ok install-unit-paths
else ko install-unit-paths "$(grep -E 'ExecStart|--policy' "$unit" | tr '\n' ' ')"; fi
if command -v systemd-analyze >/dev/null && [ -d /run/systemd/system ]; then
  # only where systemd runs; the binary path is the staged one, so check syntax only
  systemd-analyze verify "$unit" >"$W/verify" 2>&1 || true
  grep -qi 'unknown\|invalid\|failed to parse' "$W/verify" && ko install-unit-verify "$(head -n 3 "$W/verify")" || ok install-unit-verify
fi
MANWIDTH=80 man --warnings -l "$DEST/opt/bg/share/man/man8/buildgate.8" >/dev/null 2>"$W/man.err" && ! [ -s "$W/man.err" ] &&
  ok install-man-renders || ko install-man-renders "$(head -n 3 "$W/man.err")"

# an operator's policy survives a reinstall; the examples are refreshed
echo '{"mode": "audit"}' >"$DEST/etc/buildgate/policy.json"
echo stale >"$DEST/etc/buildgate/examples/default.json"
make -s install DESTDIR="$DEST" PREFIX=/opt/bg >"$W/install2.out" 2>&1
[ "$(cat "$DEST/etc/buildgate/policy.json")" = '{"mode": "audit"}' ] && grep -q 'keeping the existing' "$W/install2.out" &&
  ok install-keeps-policy || ko install-keeps-policy "policy.json was replaced: $(head -c 80 "$DEST/etc/buildgate/policy.json")"
cmp -s deploy/policies/default.json "$DEST/etc/buildgate/examples/default.json" && ok install-refreshes-examples ||
  ko install-refreshes-examples "examples/default.json was not refreshed"

# default PREFIX is /usr/local
make -s install DESTDIR="$W/root2" >/dev/null 2>&1
[ -x "$W/root2/usr/local/bin/buildgate" ] && [ -f "$W/root2/usr/local/share/man/man8/buildgate.8" ] &&
  [ -f "$W/root2/etc/buildgate/policy.json" ] && ok install-default-prefix ||
  ko install-default-prefix "$(cd "$W/root2" 2>/dev/null && find . -type f | head -n 5 | tr '\n' ' ')"

# uninstall: only the operator's policy is left
make -s uninstall DESTDIR="$DEST" PREFIX=/opt/bg >/dev/null 2>&1
left="$(cd "$DEST" && find . -type f)"
[ "$left" = ./etc/buildgate/policy.json ] && ok uninstall-leaves-policy-only || ko uninstall-leaves-policy-only "left: $(tr '\n' ' ' <<<"$left")"

echo "install: $pass passed, $fail failed"
((fail == 0))

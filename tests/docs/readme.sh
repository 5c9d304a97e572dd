#!/usr/bin/env bash
# Runs the README's runnable code blocks: a fenced block preceded by a
# <!-- runnable --> line is run as one `bash -e` script from the repository
# root (so a block may start a process and stop it again), with a time limit.
# Commands that another test already runs are left out of the script, by
# exact first word: deploy/quickstart.sh (tests/docs/quickstart.sh runs it end
# to end) and ./tests/run.sh (it is what calls this test).
#
#   tests/docs/readme.sh [FILE.md]...  default README.md and deploy/policies/README.md
# Prints PASS/FAIL per block; exit 1 if any block failed or none was found.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
docs=("$@")
((${#docs[@]})) || docs=(README.md deploy/policies/README.md)
SKIP_RE='^(deploy/quickstart\.sh|\./tests/run\.sh)([[:space:]]|$)'
W="$(mktemp -d /tmp/bgrd.XXXXXX)"
trap 'rm -rf "$W"' EXIT

# One file per runnable block: block.N.sh, its file and line in block.N.line.
for doc in "${docs[@]}"; do
  [ -f "$doc" ] || { echo "FAIL readme: no $doc"; exit 1; }
done
awk -v dir="$W" '
  /^<!-- runnable -->$/ { armed = 1; next }
  armed && /^```/ { inb = 1; armed = 0; n++; f = dir "/block." n ".sh"; print FILENAME ":" FNR + 1 > (dir "/block." n ".line"); printf "" > f; next }
  armed { armed = 0 }
  inb && /^```/ { inb = 0; close(f); next }
  inb { print > f }
' "${docs[@]}"

pass=0 fail=0
for f in "$W"/block.*.sh; do
  [ -e "$f" ] || continue
  n="${f##*/block.}"; n="${n%.sh}"
  line="$(cat "$W/block.$n.line")"
  # Join continued lines, then drop the commands run elsewhere.
  sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$f" >"$W/joined"
  grep -Ev "$SKIP_RE" "$W/joined" >"$W/run.$n.sh" || true
  skipped=$(grep -Ec "$SKIP_RE" "$W/joined" || true)
  if ! grep -q '[^[:space:]]' "$W/run.$n.sh"; then
    echo "PASS readme-block-$n ($line: all $skipped command(s) run by other tests)"
    pass=$((pass + 1))
    continue
  fi
  if timeout 300 bash -e "$W/run.$n.sh" >"$W/out.$n" 2>&1; then
    echo "PASS readme-block-$n ($line, $(grep -c . "$W/run.$n.sh") line(s), $skipped skipped)"
    pass=$((pass + 1))
  else
    rc=$?
    echo "FAIL readme-block-$n ($line): exit $rc"
    tail -n 15 "$W/out.$n" | sed 's/^/    /'
    fail=$((fail + 1))
  fi
done
echo "readme: $pass runnable block(s) passed, $fail failed"
((pass > 0 && fail == 0))

#!/usr/bin/env bash
# The policy reference (deploy/policies/README.md) quotes the loader's error
# for a wrong value of each key.  Every block marked <!-- loader-error --> holds
# two lines: a whole policy file, and the exact line `buildgate check --policy
# bad.json` prints for it.  This test feeds each file to the loader and
# compares, so the reference cannot drift from policy/policy_file.c.
#
#   tests/docs/policy_errors.sh            check (exit 1 on any difference)
#   tests/docs/policy_errors.sh --update   rewrite the second lines from the loader
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
doc="$root/deploy/policies/README.md"
bin="${BUILDGATE_BIN:-$root/buildgate}"
update=0
[ "${1:-}" = --update ] && update=1
W="$(mktemp -d /tmp/bgpe.XXXXXX)"
trap 'rm -rf "$W"' EXIT

# Pull out (line number of the expected line, policy text, expected text).
awk '
  /^<!-- loader-error -->$/ { want = 1; next }
  want == 1 && /^```/ { want = 2; n = 0; next }
  want == 2 && /^```/ { if (n != 2) { printf "BAD\t%d\tblock needs exactly 2 lines, has %d\n", start, n }
                        else printf "%d\t%s\t%s\n", eline, policy, expect
                        want = 0; next }
  want == 2 { n++; if (n == 1) { policy = $0; start = NR } else if (n == 2) { expect = $0; eline = NR } next }
  want == 1 { printf "BAD\t%d\t<!-- loader-error --> not followed by a code block\n", NR; want = 0 }
' "$doc" >"$W/cases"

pass=0 fail=0
: >"$W/fixes"
while IFS=$'\t' read -r line policy expect; do
  if [ "$line" = BAD ]; then
    echo "FAIL policy-errors: $doc:$policy: $expect"; fail=$((fail + 1)); continue
  fi
  printf '%s\n' "$policy" >"$W/bad.json"
  got="$(cd "$W" && "$bin" check --policy bad.json 2>/dev/null)" && rc=0 || rc=$?
  if [ "$rc" -ne 1 ]; then
    echo "FAIL policy-errors: $doc:$line: the loader accepted (exit $rc): $policy"; fail=$((fail + 1))
  elif [ "$got" != "$expect" ]; then
    if ((update)); then
      printf '%s\t%s\n' "$line" "$got" >>"$W/fixes"
    else
      echo "FAIL policy-errors: $doc:$line"
      echo "  documented: $expect"
      echo "  loader:     $got"
      fail=$((fail + 1))
    fi
  else
    pass=$((pass + 1))
  fi
done <"$W/cases"

if ((update)) && [ -s "$W/fixes" ]; then
  awk -F'\t' 'NR == FNR { fix[$1] = $2; next } (FNR in fix) { print fix[FNR]; next } { print }' \
    "$W/fixes" "$doc" >"$W/doc" && cat "$W/doc" >"$doc"
  echo "policy-errors: updated $(wc -l <"$W/fixes") line(s) of $doc"
fi
echo "policy-errors: $pass documented loader errors match, $fail differ"
((pass > 0 && fail == 0))

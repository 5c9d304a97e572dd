#!/usr/bin/env bash
# The man pages render without a warning from either of Debian's formatters
# (man-db's groff with --warnings, and mandoc's mdoc linter at level
# "warning"), name the flags the binary accepts, and the policy example in
# buildgate-policy(5) is a policy the loader accepts.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
bin="${BUILDGATE_BIN:-$root/buildgate}"
W="$(mktemp -d /tmp/bgman.XXXXXX)"
trap 'rm -rf "$W"' EXIT
pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

for page in docs/man/buildgate.8 docs/man/buildgate-policy.5; do
  name="${page##*/}"
  # groff's warnings go to stderr; the page itself to a file so it can be read
  if MANWIDTH=80 man --warnings -l "$page" >"$W/$name.txt" 2>"$W/$name.err" && ! [ -s "$W/$name.err" ] &&
     grep -q 'NAME' "$W/$name.txt"; then
    ok "man-warnings-$name"
  else
    ko "man-warnings-$name" "$(head -n 5 "$W/$name.err" | tr '\n' ' ')"
  fi
  if command -v mandoc >/dev/null; then
    if mandoc -T lint -W warning "$page" >"$W/$name.lint" 2>&1; then ok "mandoc-lint-$name"
    else ko "mandoc-lint-$name" "$(head -n 5 "$W/$name.lint" | tr '\n' ' ')"; fi
  else
    ko "mandoc-lint-$name" "mandoc is not installed (deploy/install-deps.sh installs it)"
  fi
done

# Every long option of the daemon and of `check` appears in buildgate(8).
missing=""
for f in $(grep -o '{"[a-z-]*", *\(no\|required\)_argument' gateway/main.c | sed 's/{"\([a-z-]*\)".*/\1/' | sort -u); do
  grep -q -- "--$f\b" "$W/buildgate.8.txt" || missing="$missing --$f"
done
for f in $(grep -o 'strcmp(a, "--[a-z-]*")' gateway/cmd_check.c | sed 's/.*"--\([a-z-]*\)".*/\1/' | sort -u); do
  grep -q -- "--$f\b" "$W/buildgate.8.txt" || missing="$missing check --$f"
done
[ -z "$missing" ] && ok man-lists-every-flag || ko man-lists-every-flag "buildgate(8) lacks:$missing"

# The example of buildgate-policy(5) loads.
awk '/^\.Bd -literal/ { on = 1; next } /^\.Ed/ { if (on) exit } on' docs/man/buildgate-policy.5 >"$W/example.json"
if [ -s "$W/example.json" ] && out="$("$bin" check --policy "$W/example.json" 2>&1)"; then ok man-policy-example-loads
else ko man-policy-example-loads "$out"; fi

echo "man: $pass passed, $fail failed"
((fail == 0))

#!/usr/bin/env bash
# `buildgate --help` and `buildgate check --help` name every option their
# parsers accept (read from gateway/main.c's option table and cmd_check.c's
# comparisons, so a new flag without help text fails here), and
# `buildgate version` prints the version, the git revision the binary was
# built from, and the seven libraries.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
bin="${BUILDGATE_BIN:-$root/buildgate}"
pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

# lists_all NAME HELP-TEXT FLAG...
lists_all() {
  local name="$1" text="$2" missing="" f; shift 2
  for f in "$@"; do grep -q -- "--$f\b" <<<"$text" || missing="$missing --$f"; done
  [ -z "$missing" ] && ok "$name" || ko "$name" "not in the help text:$missing"
}

main_flags=($(grep -o '{"[a-z-]*", *\(no\|required\)_argument' gateway/main.c | sed 's/{"\([a-z-]*\)".*/\1/' | sort -u))
check_flags=($(grep -o 'strcmp(a, "--[a-z-]*")' gateway/cmd_check.c | sed 's/.*"--\([a-z-]*\)".*/\1/' | sort -u))
((${#main_flags[@]} >= 10)) && ok cli-main-flags-found || ko cli-main-flags-found "only ${#main_flags[@]} options found in gateway/main.c"
((${#check_flags[@]} >= 5)) && ok cli-check-flags-found || ko cli-check-flags-found "only ${#check_flags[@]} options found in gateway/cmd_check.c"

if help="$("$bin" --help 2>/dev/null)"; then lists_all cli-help-lists-every-flag "$help" "${main_flags[@]}"
else ko cli-help-lists-every-flag "buildgate --help did not exit 0"; fi
if help="$("$bin" check --help 2>/dev/null)"; then lists_all cli-check-help-lists-every-flag "$help" "${check_flags[@]}"
else ko cli-check-help-lists-every-flag "buildgate check --help did not exit 0"; fi

v="$("$bin" version)" || ko cli-version "exit status $?"
want_ver="$(sed -n 's/^#define BG_VERSION "\(.*\)"/\1/p' gateway/version.h)"
grep -qx "buildgate $want_ver" <<<"$v" && ok cli-version-number || ko cli-version-number "no line 'buildgate $want_ver': $v"
rev="$(sed -n 's/^revision: //p' <<<"$v")"
head="$(git rev-parse --short=12 HEAD 2>/dev/null || true)"
if [ -n "$head" ]; then
  # the binary may be older than the last commit, but it names a real commit of this repository
  [[ -n "$rev" && "$rev" != unknown ]] && git cat-file -e "${rev%-dirty}^{commit}" 2>/dev/null &&
    ok cli-version-revision || ko cli-version-revision "revision '$rev' is not a commit here (HEAD $head)"
else
  [ "$rev" = unknown ] && ok cli-version-revision || ko cli-version-revision "outside git, got '$rev'"
fi
missing=""
for l in libevent nghttp2 OpenSSL protobuf-c jansson libseccomp zlib; do
  grep -Eq "^  $l +.*[0-9]" <<<"$v" || missing="$missing $l"
done
[ -z "$missing" ] && ok cli-version-libraries || ko cli-version-libraries "no version for:$missing"
# the runtime versions are the ones installed on this machine
pc="$(pkg-config --modversion libnghttp2 2>/dev/null)"
[ -z "$pc" ] || grep -q "nghttp2 *$pc" <<<"$v" && ok cli-version-nghttp2-matches-system ||
  ko cli-version-nghttp2-matches-system "pkg-config says $pc: $(grep nghttp2 <<<"$v")"

echo "cli: $pass passed, $fail failed"
((fail == 0))

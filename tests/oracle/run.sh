#!/usr/bin/env bash
# The differential oracle (issue 9): every fixture plus generated and mutated
# messages (ORACLE_N, default 12000, seed ORACLE_SEED) go through
#   - build/bgoracle decode: what BuildKit's own generated Go decoders read
#     (v0.8 as Debian ships it, completed by gogo decoders generated from
#     proto/*.proto for newer fields), and
#   - buildgate check --dump --batch: what the policy reads, after the real
#     call path has had its chance to refuse the message;
# then every field the policy reads is compared.  A disagreement on a message
# the gateway did not refuse fails the test.  ORACLE_ALLOW_DISAGREE=1 reports
# and exits 0 (for developing the oracle itself, never in CI).
# ORACLE_SEEDS=DIR writes up to 48 interesting messages as libFuzzer seeds.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
t0=$SECONDS
tests/oracle/build.sh
[[ -x ./buildgate ]] || make -s -j2 buildgate
w="$root/build/oracle"
mkdir -p "$w"
build/bgoracle gen -n "${ORACLE_N:-12000}" -seed "${ORACLE_SEED:-1}" \
	-fixtures tests/fixtures/grpc -fixtures tests/fixtures/policy \
	$( [[ -d /work/shared/fixtures ]] && echo -fixtures /work/shared/fixtures ) \
	-o "$w/stream" -labels "$w/labels"
build/bgoracle decode <"$w/stream" >"$w/go.jsonl"
./buildgate check --dump --batch "$w/stream" >"$w/gate.jsonl"
rc=0
build/bgoracle compare -stream "$w/stream" -labels "$w/labels" -go "$w/go.jsonl" -gate "$w/gate.jsonl" \
	-show "${ORACLE_SHOW:-5}" ${ORACLE_EXAMPLES:+-examples} ${ORACLE_SEEDS:+-seeds "$ORACLE_SEEDS"} || rc=$?
echo "oracle: $((SECONDS - t0)) s; inputs and both views in $w"
if ((rc == 1)) && [[ "${ORACLE_ALLOW_DISAGREE:-}" == 1 ]]; then
	echo "oracle: ORACLE_ALLOW_DISAGREE=1: disagreements reported, not failed"
	exit 0
fi
exit "$rc"

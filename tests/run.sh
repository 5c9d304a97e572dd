#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the Debian packages it
# needs, builds, then runs unit tests, short fuzz runs, interop tests against a
# real dockerd (started by the tests themselves), the docs tests (the
# quickstart end to end, the README's runnable blocks, the policy reference's
# loader errors, --help/version, make install, the man pages), and the same
# unit + interop suites again under AddressSanitizer/LeakSanitizer.  Needs
# root (dockerd).
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
make -j2 buildgate
make unit
make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-15}"
make interop
tests/docs/cli.sh
tests/docs/policy_errors.sh
tests/docs/man.sh
tests/docs/install.sh
tests/docs/readme.sh
tests/docs/quickstart.sh
make asan
make oracle

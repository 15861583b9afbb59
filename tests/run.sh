#!/usr/bin/env bash
# The README's second command: installs what is missing, builds with AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs every test (unit tests, black-box tests against the real daemons,
# and a replay of each fuzz target's committed corpus). CI runs exactly this (.ci/run).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${IBSOL_TEST_BUILD:-$top/build-test}

"$top/deploy/install-deps.sh" --test
"$top/deploy/build.sh" "$build" -DIBSOL_SANITIZE=ON -DIBSOL_TESTS=ON

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [[ -f "$top/tests/lsan.supp" ]]; then export LSAN_OPTIONS="suppressions=$top/tests/lsan.supp"; fi
export OMP_THREAD_LIMIT=1

cd "$build"
ctest --output-on-failure -j2 --timeout 900

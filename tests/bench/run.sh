#!/usr/bin/env bash
# Benchmarks of the foundation issue (not part of tests/run.sh). Builds a release tree without sanitizers into
# build-bench/, builds the bare civetweb anchor, then runs bench_foundation.py, which starts its own stack on
# scratch addresses with a temporary data root and prints every figure as a ratio against its anchor.
#   tests/bench/run.sh [--runs N] [--wrk-seconds S] [--tries N] [--keep]
# Exits 0 when every figure was measured, whether or not it meets its target; 1 when a step could not run.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
bench="$top/tests/bench"
build="$top/build-bench"

need=()
for tool in zip unzip wrk gcc cmake; do command -v "$tool" >/dev/null || need+=("$tool"); done
/usr/bin/python3 -c 'import requests' 2>/dev/null || need+=(python3-requests)
[[ -f /usr/include/civetweb.h ]] || need+=(libcivetweb-dev)
if ((${#need[@]})); then
  echo "bench: installing ${need[*]}" >&2
  sudo_=""; [[ $(id -u) == 0 ]] || sudo_=sudo
  $sudo_ apt-get install -y "${need[@]}" >&2
fi

echo "bench: building $build (Release, no sanitizers)" >&2
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DIBSOL_SANITIZE=OFF -DIBSOL_TESTS=OFF >/dev/null
# The three daemons measured must build; the runner is only started so /healthz is whole, and the benchmarks
# do without it when it does not build (work in progress elsewhere).
cmake --build "$build" -j2 --target ibsol-gateway ibsol-packager ibsol-marketplace >/dev/null
if ! cmake --build "$build" -j2 --target ibsol-runner >"$build/runner-build.log" 2>&1; then
  echo "bench: the runner does not build (see $build/runner-build.log); running without it" >&2
  rm -f "$build/runner/ibsol-runner"
fi
mkdir -p "$build/bench"
gcc -O2 -Wall -Wextra "$bench/bare_civetweb.c" -lcivetweb -o "$build/bench/bare_civetweb"

exec /usr/bin/python3 "$bench/bench_foundation.py" --bin "$build" --bare "$build/bench/bare_civetweb" "$@"

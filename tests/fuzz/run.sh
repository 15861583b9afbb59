#!/bin/sh
# Builds the libFuzzer targets with clang (build dir: build-fuzz beside the sources, or $IBSOL_FUZZ_BUILD) and
# runs each for $IBSOL_FUZZ_SECONDS (default 20) seconds from its seed corpus. Exits non-zero on any crash,
# leak or sanitizer report. Usage: tests/fuzz/run.sh [fuzzer...]
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${IBSOL_FUZZ_BUILD:-$src/build-fuzz}
secs=${IBSOL_FUZZ_SECONDS:-20}
mkdir -p "$build"
command -v clang >/dev/null || { echo "run.sh: clang is not installed (apt-get install -y clang)" >&2; exit 1; }
cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER=clang -DIBSOL_FUZZ=ON -DIBSOL_TESTS=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/cmake.log" 2>&1 || { cat "$build/cmake.log" >&2; exit 1; }
if [ $# -gt 0 ]; then fuzzers="$*"; else
  fuzzers=$(cd "$src/tests/fuzz" && ls fuzz_*.c | sed 's/\.c$//'); fi
cmake --build "$build" --target $fuzzers -j2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
for f in $fuzzers; do
  mkdir -p "$work/$f"
  # a copy of the committed seeds: the run's own finds never dirty the repository
  [ -d "$src/tests/fuzz/corpus/$f" ] && cp -r "$src/tests/fuzz/corpus/$f/." "$work/$f/" 2>/dev/null || true
  echo "== $f ($secs s)"
  if (cd "$work" && OMP_THREAD_LIMIT=1 "$build/tests/fuzz/$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 "$work/$f" >"$work/$f.log" 2>&1); then
    grep -E '^(stat::number_of_executed_units|Done)' "$work/$f.log" || true
  else
    failed=$((failed + 1))
    tail -60 "$work/$f.log" >&2
    mkdir -p "$build/crashes" && cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$build/crashes/" 2>/dev/null || true
    echo "== $f FAILED (reproducers in $build/crashes)" >&2
  fi
done
n=$(echo $fuzzers | wc -w)
echo "$((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# The libFuzzer targets, built with clang in their own tree ($IBSOL_FUZZ_BUILD, default build-fuzz beside the
# sources).
#
#   tests/fuzz/run.sh [target...]              replays each target's committed corpus (tests/fuzz/corpus/<t>/)
#                                              once: no new inputs, so the same commit always gives the same
#                                              result. This is what the test command runs.
#   tests/fuzz/run.sh --minutes N [target...]  open-ended fuzzing, N minutes per target (targets run at the
#                                              same time). Crashes go to $build/crashes/<t>/, inputs that add
#                                              coverage to $build/finds/<t>/: fix what crashed, then commit
#                                              the reproducer (and any find worth keeping) to the corpus.
#
# Exits non-zero on any crash, leak, timeout or sanitizer report, and ends with 'N passed, N failed'.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${IBSOL_FUZZ_BUILD:-$src/build-fuzz}
minutes=""
if [ "${1:-}" = "--minutes" ]; then
  [ $# -ge 2 ] || { echo "run.sh: --minutes needs a number of minutes" >&2; exit 2; }
  case "$2" in '' | *[!0-9]*) echo "run.sh: --minutes '$2' is not a whole number of minutes" >&2; exit 2 ;; esac
  [ "$2" -ge 1 ] && [ "$2" -le 1440 ] || { echo "run.sh: --minutes $2 is outside 1..1440" >&2; exit 2; }
  minutes=$2
  shift 2
fi
case "${1:-}" in -*) echo "usage: tests/fuzz/run.sh [--minutes N] [target...]" >&2; exit 2 ;; esac
command -v clang >/dev/null || { echo "run.sh: clang is not installed (apt-get install -y clang)" >&2; exit 1; }
if [ $# -gt 0 ]; then fuzzers="$*"; else
  fuzzers=$(cd "$src/tests/fuzz" && ls fuzz_*.c | sed 's/\.c$//'); fi
for f in $fuzzers; do
  [ -f "$src/tests/fuzz/$f.c" ] || { echo "run.sh: no fuzz target '$f' (tests/fuzz/$f.c)" >&2; exit 2; }
done
mkdir -p "$build"
cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER=clang -DIBSOL_FUZZ=ON -DIBSOL_TESTS=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/cmake.log" 2>&1 || { cat "$build/cmake.log" >&2; exit 1; }
cmake --build "$build" --target $fuzzers -j2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
opts="-timeout=10 -rss_limit_mb=2048 -max_len=65536"

# Replays the committed corpus: each file is one run of the target, nothing is mutated.
replay() {
  f=$1
  corpus="$src/tests/fuzz/corpus/$f"
  set -- "$corpus"/*
  if [ ! -f "$1" ]; then echo "== $f: no committed corpus in $corpus" >&2; return 1; fi
  echo "== $f (replaying $# corpus inputs)"
  (cd "$work" && OMP_THREAD_LIMIT=1 "$build/tests/fuzz/$f" $opts "$@" >"$work/$f.log" 2>&1)
}

# Fuzzes from a scratch copy of the committed corpus (the run never dirties the repository), then keeps what
# crashed and what added coverage.
explore() {
  f=$1
  mkdir -p "$work/$f" "$work/$f.crash"
  cp -r "$src/tests/fuzz/corpus/$f/." "$work/$f/" 2>/dev/null || true
  rc=0
  (cd "$work/$f.crash" && OMP_THREAD_LIMIT=1 "$build/tests/fuzz/$f" $opts -max_total_time=$((minutes * 60)) \
      -print_final_stats=1 "$work/$f" >"$work/$f.log" 2>&1) || rc=$?
  if ls "$work/$f.crash"/* >/dev/null 2>&1; then
    mkdir -p "$build/crashes/$f" && cp "$work/$f.crash"/* "$build/crashes/$f/"
  fi
  # New coverage only: merge the run's corpus into one that starts as the committed one.
  rm -rf "$work/$f.merged" "$build/finds/$f"
  mkdir -p "$work/$f.merged" "$build/finds/$f"
  cp -r "$src/tests/fuzz/corpus/$f/." "$work/$f.merged/" 2>/dev/null || true
  ls "$work/$f.merged" >"$work/$f.seeds"
  if (cd "$work/$f.crash" && "$build/tests/fuzz/$f" $opts -merge=1 "$work/$f.merged" "$work/$f" \
        >"$work/$f.merge.log" 2>&1); then
    for g in "$work/$f.merged"/*; do
      grep -qxF "$(basename "$g")" "$work/$f.seeds" || cp "$g" "$build/finds/$f/"
    done
  fi
  return $rc
}

report() {
  f=$1
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$f.log" | tail -1)
  crashes=$(ls "$build/crashes/$f" 2>/dev/null | wc -l)
  finds=$(ls "$build/finds/$f" 2>/dev/null | wc -l)
  echo "== $f: ${runs:-?} executions in $minutes min, $finds inputs with new coverage in $build/finds/$f," \
       "$crashes reproducers in $build/crashes/$f"
}

failed=0
if [ -z "$minutes" ]; then
  for f in $fuzzers; do
    if ! replay "$f"; then
      failed=$((failed + 1))
      tail -60 "$work/$f.log" >&2
      echo "== $f FAILED on its committed corpus" >&2
    fi
  done
else
  rm -rf "$build/crashes"
  for f in $fuzzers; do
    echo "== $f: fuzzing for $minutes min"
    (rc=0; explore "$f" || rc=$?; echo $rc >"$work/$f.rc") &
  done
  wait
  for f in $fuzzers; do
    report "$f"
    if [ "$(cat "$work/$f.rc")" != 0 ]; then
      failed=$((failed + 1))
      tail -60 "$work/$f.log" >&2
      echo "== $f FAILED (reproducers in $build/crashes/$f)" >&2
    fi
  done
fi
n=$(echo $fuzzers | wc -w)
echo "$((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Benchmarks (not part of tests/run.sh). Builds a release tree without sanitizers into build-bench/, builds the
# anchors and helpers (bare civetweb handler, cairo PDF generator), then runs the suites asked for; each starts
# what it measures on scratch addresses with a temporary data root and prints every figure as a ratio against
# an anchor measured side by side in the same run.
#   tests/bench/run.sh [foundation|engine|runner|scale|tables|all] [--runs N] [--wrk-seconds S] [--tries N] [--keep]
#     foundation  solution/create, marketplace/install, marketplace/list   (bench_foundation.py)
#     engine      ibsol-runner --once on 200 invoice PDFs, peak memory on 500 pages   (bench_engine.py)
#     runner      run_sync under wrk against the bare engine (bare_engine.c), jobs/status against a bare civetweb
#                 handler, solution/run on 1,000 PDFs with 1 and 2 runners, on 100 (--floor-files N) against the
#                 engine's document loads alone (floor.c)   (bench_runner.py)
#     scale       solution/run on 1,000 PDFs with 2 runners against 1 runner with 2 workers, and a third runner
#                 on another host (a network namespace with its own CPU quota; needs root)   (bench_scale.py)
#     tables      line items (a TABLE field) on 1,000 invoice PDFs against the header-only run, with peak
#                 memory   (bench_tables.py)
#     all         the five, in that order (default)
# Other options go to every suite. The engine, runner, scale and tables suites share one folder of generated
# invoices, removed at the end. Exits 0 when every figure was measured, whether or not it meets its target; 1 when a
# step could not run.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
bench="$top/tests/bench"
build="$top/build-bench"

suite=all
case "${1:-}" in
  foundation|engine|runner|scale|tables|all) suite=$1; shift ;;
  -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  -*|"") ;;
  *) echo "bench: unknown suite '$1' (foundation, engine, runner, scale, tables or all)" >&2; exit 2 ;;
esac
want() { [[ $suite == all || $suite == "$1" ]]; }

need=()
for tool in zip unzip wrk gcc cmake pkg-config; do command -v "$tool" >/dev/null || need+=("$tool"); done
/usr/bin/python3 -c 'import requests' 2>/dev/null || need+=(python3-requests)
[[ -f /usr/include/civetweb.h ]] || need+=(libcivetweb-dev)
if want engine || want runner || want scale || want tables; then
  command -v pdftotext >/dev/null || need+=(poppler-utils)
  command -v gs >/dev/null || need+=(ghostscript)
  command -v tesseract >/dev/null || need+=(tesseract-ocr)
  [[ -x /usr/bin/time ]] || need+=(time)
  [[ -f /usr/include/cairo/cairo-pdf.h ]] || need+=(libcairo2-dev)
  fc-list 2>/dev/null | grep -q 'DejaVu Sans' || need+=(fonts-dejavu-core)
fi
if ((${#need[@]})); then
  echo "bench: installing ${need[*]}" >&2
  sudo_=""; [[ $(id -u) == 0 ]] || sudo_=sudo
  $sudo_ apt-get install -y "${need[@]}" >&2
fi

echo "bench: building $build (Release, no sanitizers)" >&2
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DIBSOL_SANITIZE=OFF -DIBSOL_TESTS=OFF >/dev/null
if want foundation || want runner || want scale; then
  cmake --build "$build" -j2 --target ibsol-gateway ibsol-packager ibsol-marketplace >/dev/null
fi
# The foundation suite only starts the runner so /healthz is whole, and does without it when it does not build
# (work in progress elsewhere); the engine and runner suites measure it, so there it must build.
if ! cmake --build "$build" -j2 --target ibsol-runner >"$build/runner-build.log" 2>&1; then
  rm -f "$build/runner/ibsol-runner"
  if want engine || want runner || want scale || want tables; then
    echo "bench: the runner does not build (see $build/runner-build.log); if someone is mid-edit, retry in a" \
         "few minutes" >&2
    exit 1
  fi
  echo "bench: the runner does not build (see $build/runner-build.log); running without it" >&2
fi
mkdir -p "$build/bench"
gcc -O2 -Wall -Wextra "$bench/bare_civetweb.c" -lcivetweb -o "$build/bench/bare_civetweb"
if want engine || want runner || want scale || want tables; then
  # shellcheck disable=SC2046
  gcc -O2 -Wall -Wextra "$bench/gen_pdf.c" $(pkg-config --cflags --libs cairo) -o "$build/bench/gen_pdf"
fi
if want runner; then
  # run_sync's anchor: the engine library the runner links (built above with it), in one civetweb process
  # shellcheck disable=SC2046
  gcc -O2 -Wall -Wextra -D_GNU_SOURCE -DPCRE2_CODE_UNIT_WIDTH=8 -I"$top/runner/engine" -I"$top/common" \
    -I"$top/common/flow" -I"$build/common" "$bench/bare_engine.c" \
    "$build/runner/libibsol_engine.a" "$build/common/libibsol_common.a" \
    $(pkg-config --cflags --libs poppler-glib tesseract lept glib-2.0 jansson msgpack libzip libpcre2-8 libcrypto) \
    -lnng -lcivetweb -lm -lpthread -o "$build/bench/bare_engine"
  # solution/run's floor: the engine's document loader alone, on every core
  # shellcheck disable=SC2046
  gcc -O2 -Wall -Wextra -D_GNU_SOURCE -DPCRE2_CODE_UNIT_WIDTH=8 -I"$top/runner/engine" -I"$top/common" \
    -I"$top/common/flow" -I"$build/common" "$bench/floor.c" \
    "$build/runner/libibsol_engine.a" "$build/common/libibsol_common.a" \
    $(pkg-config --cflags --libs poppler-glib tesseract lept glib-2.0 jansson msgpack libzip libpcre2-8 libcrypto) \
    -lnng -lm -lpthread -o "$build/bench/floor"
fi

cache=$(mktemp -d "${IBSOL_BENCH_TMP:-/tmp}/ibsol-bench-invoices-XXXXXX")
trap 'rm -rf "$cache"' EXIT
rc=0
py=/usr/bin/python3
if want foundation; then
  "$py" "$bench/bench_foundation.py" --bin "$build" --bare "$build/bench/bare_civetweb" "$@" || rc=1
fi
if want engine; then
  "$py" "$bench/bench_engine.py" --bin "$build" --gen "$build/bench/gen_pdf" --cache "$cache" "$@" || rc=1
fi
if want runner; then
  "$py" "$bench/bench_runner.py" --bin "$build" --bare "$build/bench/bare_civetweb" --gen "$build/bench/gen_pdf" \
    --engine "$build/bench/bare_engine" --floor "$build/bench/floor" --cache "$cache" "$@" || rc=1
fi
if want scale; then
  "$py" "$bench/bench_scale.py" --bin "$build" --gen "$build/bench/gen_pdf" --cache "$cache" "$@" || rc=1
fi
if want tables; then
  "$py" "$bench/bench_tables.py" --bin "$build" --gen "$build/bench/gen_pdf" --cache "$cache" "$@" || rc=1
fi
exit $rc

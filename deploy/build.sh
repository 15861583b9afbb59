#!/usr/bin/env bash
# Configures and builds ibsol into a build folder: deploy/build.sh [BUILD_DIR] [cmake options...]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build}
shift || true
# Tests are off unless asked for (tests/run.sh does): cmocka is a test-only package.
cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIBSOL_TESTS=OFF "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"

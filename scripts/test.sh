#!/usr/bin/env bash
# Sets everything up, builds, and runs the whole test suite twice: a normal build, then one
# under AddressSanitizer + UndefinedBehaviorSanitizer; then every fuzz target briefly.
# Exit status 0 only if all of it passes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)

run_suite() {  # $1 build dir, rest: cmake options
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  (cd "$dir" && ctest --output-on-failure --timeout 900)
}

echo "== build and test =="
run_suite build
echo "== build and test under ASan+UBSan =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build-asan -DRM_SANITIZE=ON -DRM_BENCH=OFF
echo "== fuzz targets (clang, libFuzzer + ASan/UBSan), 10 s each =="
bash scripts/fuzz.sh 10
echo "== all tests passed (normal and sanitized builds, fuzz targets) =="

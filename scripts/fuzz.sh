#!/usr/bin/env bash
# Builds every libFuzzer target (tests/fuzz/) with clang in build-fuzz/ and runs each one for
# SECONDS (default 20) on a copy of its seed corpus (tests/fuzz/corpus/TARGET, never written).
# Prints one line per target (executions, coverage) and exits non-zero when any target found a
# crash, a broken invariant, a leak, a timeout or an out-of-memory, naming the reproducer.
#   bash scripts/fuzz.sh [SECONDS]          FUZZ_JOBS=N  build jobs (default: nproc)
#   FUZZ_TARGETS="profile_fuzz version_range_fuzz" bash scripts/fuzz.sh 60   only these
#   FUZZ_SEED=N  libFuzzer's seed (default 1: repeatable; 0: a new one each run)
# A reproducer replays with: build-fuzz/fuzz/TARGET PATH
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }
build=build-fuzz
jobs=${FUZZ_JOBS:-$(nproc)}

for tool in clang clang++ cmake; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool is missing (apt-get install clang libclang-rt-14-dev cmake)" >&2; exit 2; }
done

echo "== configuring and building the fuzz targets in $build/ (clang, ASan+UBSan+libFuzzer) =="
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRM_FUZZ=ON \
  -DRM_TESTS=OFF -DRM_BENCH=OFF -DRM_COMPONENTS="common;reports;deployer;agent;fuzz" >/dev/null
cmake --build "$build" --target fuzzers -j"$jobs"

# Corpus copies, crash artifacts and logs of this run; kept (and printed) when something failed.
stamp=$(date +%Y%m%d-%H%M%S)
runs="$PWD/$build/fuzz-runs/$stamp"
mkdir -p "$runs"
# Scratch files and unpack directories of the targets: on a RAM disk when there is one (the
# extractor syncs every file it writes), removed at the end.
scratch_parent=/tmp
[[ -d /dev/shm && -w /dev/shm ]] && scratch_parent=/dev/shm
scratch=$(mktemp -d "$scratch_parent/rm-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

if [[ -n ${FUZZ_TARGETS:-} ]]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  targets=()
  for dir in tests/fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi

echo "== running ${#targets[@]} targets for ${seconds}s each (run files: $runs) =="
failed=0
for target in "${targets[@]}"; do
  binary="$build/fuzz/$target"
  [[ -x $binary ]] || { echo "fuzz.sh: no fuzz target $binary" >&2; exit 2; }
  dir="$runs/$target"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp -R "tests/fuzz/corpus/$target/." "$dir/corpus/"
  # A fixed seed (FUZZ_SEED, default 1) makes a run repeatable; FUZZ_SEED=0 lets libFuzzer pick.
  options=(-seed="${FUZZ_SEED:-1}" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
           -artifact_prefix="$dir/artifacts/")
  # Tokens of the input language (element names, keywords) when the target has them.
  [[ -f tests/fuzz/$target.dict ]] && options+=(-dict="tests/fuzz/$target.dict")
  status=0
  TMPDIR="$scratch" ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    "$binary" "${options[@]}" "$dir/corpus" >"$dir/log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -n 1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$dir/log" | tail -n 1 | cut -d' ' -f2)
  corpus=$(find "$dir/corpus" -type f | wc -l)
  reproducer=$(find "$dir/artifacts" -type f | head -n 1)
  if [[ $status -ne 0 || -n $reproducer ]]; then
    failed=1
    printf '%-22s FAILED  execs=%-9s cov=%-6s (exit %s) reproducer: %s\n' "$target" \
      "${execs:-?}" "${cov:-?}" "$status" "${reproducer:-none, see $dir/log}"
    grep -m 3 -E 'ERROR: |INVARIANT BROKEN|runtime error|terminate called|SUMMARY' "$dir/log" | sed 's/^/    /' || true
  else
    printf '%-22s ok      execs=%-9s cov=%-6s ft=%-6s corpus=%s\n' "$target" "${execs:-?}" \
      "${cov:-?}" "${ft:-?}" "$corpus"
  fi
done

if [[ $failed -ne 0 ]]; then
  echo "== fuzzing found problems; logs and reproducers are in $runs =="
  echo "   replay one with: $build/fuzz/TARGET REPRODUCER"
  exit 1
fi
rm -rf "$runs"
echo "== all fuzz targets ran ${seconds}s without findings =="

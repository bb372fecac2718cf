#!/usr/bin/env bash
# Builds the libFuzzer front-end target in build-fuzz (clang, -DNASC_FUZZ=ON) and fuzzes
# for a given number of seconds, then merges the new interesting inputs into the
# committed corpus (tests/fuzz/corpus) with -merge=1.
#
#   scripts/fuzz.sh [SECONDS] [extra libFuzzer flags...]     (default 600 seconds)
#
# Environment: JOBS (ninja -j, default 2), BUILD_DIR (default <repo>/build-fuzz).
# Crashes, leaks and timeouts are written to tests/fuzz/crashes/ (crash-*, leak-*,
# timeout-*, slow-unit-*); the run stops at the first one.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-600}"
shift || true
build="${BUILD_DIR:-$repo/build-fuzz}"
corpus="$repo/tests/fuzz/corpus"
crashes="$repo/tests/fuzz/crashes"
dict="$repo/tests/fuzz/nas.dict"

CC=clang CXX=clang++ cmake -G Ninja -S "$repo" -B "$build" \
  -DNASC_FUZZ=ON -DNASC_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
ninja -C "$build" -j "${JOBS:-2}" fuzz_frontend
fuzzer="$build/tests/fuzz/fuzz_frontend"

# New inputs go to a scratch corpus first; the committed one stays minimal.
work="$build/fuzz-work"
mkdir -p "$work/new" "$crashes"
cd "$build"  # `import "x.nas"` in an input resolves from here

flags=(-dict="$dict" -max_len=4096 -timeout=10 -rss_limit_mb=4096 -report_slow_units=5
       -print_final_stats=1 -artifact_prefix="$crashes/")
status=0
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}" \
  "$fuzzer" "${flags[@]}" -max_total_time="$seconds" "$@" "$work/new" "$corpus" || status=$?

# Keep only the inputs that add coverage to the committed corpus.
"$fuzzer" -merge=1 -max_len=4096 -timeout=10 -rss_limit_mb=4096 "$corpus" "$work/new"
echo "corpus: $(find "$corpus" -type f | wc -l) files, $(du -sh "$corpus" | cut -f1)"
exit "$status"

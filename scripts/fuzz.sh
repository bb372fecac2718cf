#!/usr/bin/env bash
# Builds one libFuzzer target in build-fuzz (clang, -DNASC_FUZZ=ON), fuzzes it for a given
# number of seconds, then merges the new interesting inputs into its committed corpus
# (tests/fuzz/corpus/TARGET) with -merge=1. See tests/fuzz/README.md.
#
#   scripts/fuzz.sh TARGET [SECONDS] [extra libFuzzer flags...]     (default 600 seconds)
#   scripts/fuzz.sh --list                                          (the targets)
#
# TARGET is one of frontend arch ir config lut idx cifar weights npy images (the binary is
# build-fuzz/tests/fuzz/fuzz_TARGET). Environment: JOBS (ninja -j, default 2), BUILD_DIR
# (default <repo>/build-fuzz), NO_BUILD=1 (use the binary as built), NO_MERGE=1 (leave the
# new inputs in build-fuzz/fuzz-work/TARGET/new). Crashes, leaks, timeouts and
# out-of-memory inputs go to tests/fuzz/crashes/TARGET/ (crash-*, leak-*, timeout-*,
# oom-*, slow-unit-*); the run stops at the first one unless fork-mode flags say otherwise.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
targets="frontend arch ir config lut idx cifar weights npy images"
if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 2
fi
if [[ "$1" == "--list" ]]; then
  echo "$targets"
  exit 0
fi
target="$1"
shift
if [[ " $targets " != *" $target "* ]]; then
  echo "fuzz.sh: unknown target '$target' (one of: $targets)" >&2
  exit 2
fi
seconds=600
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then
  seconds="$1"
  shift
fi

build="${BUILD_DIR:-$repo/build-fuzz}"
corpus="$repo/tests/fuzz/corpus/$target"
crashes="$repo/tests/fuzz/crashes/$target"
dict="$repo/tests/fuzz/dicts/$target.dict"

if [[ -z "${NO_BUILD:-}" ]]; then
  CC=clang CXX=clang++ cmake -G Ninja -S "$repo" -B "$build" \
    -DNASC_FUZZ=ON -DNASC_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  ninja -C "$build" -j "${JOBS:-2}" "fuzz_$target"
fi
fuzzer="$build/tests/fuzz/fuzz_$target"

# The largest input worth trying: binary data sets need a few records.
case "$target" in
  cifar) max_len=16384 ;;
  idx | weights | npy | images) max_len=8192 ;;
  *) max_len=4096 ;;
esac

# New inputs go to a scratch corpus first; the committed one stays minimal.
work="$build/fuzz-work/$target"
mkdir -p "$work/new" "$crashes" "$corpus"
cd "$build"  # the frontend's `import "x.nas"` resolves from here

flags=(-max_len="$max_len" -timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=4096
       -report_slow_units=5 -print_final_stats=1 -artifact_prefix="$crashes/")
[[ -f "$dict" ]] && flags+=(-dict="$dict")
status=0
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}" \
  "$fuzzer" "${flags[@]}" -max_total_time="$seconds" "$@" "$work/new" "$corpus" || status=$?

if [[ -z "${NO_MERGE:-}" ]]; then
  # Keep only the inputs that add coverage to the committed corpus.
  "$fuzzer" -merge=1 -max_len="$max_len" -timeout=10 -rss_limit_mb=4096 "$corpus" "$work/new"
fi
echo "corpus $target: $(find "$corpus" -type f | wc -l) files, $(find "$corpus" -type f -exec cat {} + | wc -c) bytes"
exit "$status"

#!/usr/bin/env bash
# Builds the whole suite (compiler, runtime, CLI, tests, benches) with AddressSanitizer and
# UndefinedBehaviorSanitizer (g++) in build-asan/ (or $BUILD_DIR) and runs every ctest test
# under them. Any report fails the run: the sanitizers stop the process at the first error
# with exit code 86 (ASan, LeakSanitizer) or 87 (UBSan), codes no test expects, so a CLI test
# that expects exit 1 or 2 cannot pass on a sanitizer report. libstdc++'s assertions
# (bounds-checked operator[]) are on too.
#
#   scripts/sanitize.sh            (about 15 minutes to build and 10 to test on 2 cores)
#
# Run scripts/setup.sh first on a new machine. The build is incremental: run it again after
# a change and only what changed is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-asan}
flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -D_GLIBCXX_ASSERTIONS"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined"
cmake --build "$BUILD_DIR" -j "$(nproc)"

export ASAN_OPTIONS="exitcode=86:halt_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1"
export UBSAN_OPTIONS="exitcode=87:halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="exitcode=86"
# Sanitized code runs 2-5x slower; the long CLI tests get room for that.
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" --timeout 3600 "$@"
echo "sanitize: every test passed under ASan + UBSan"

#!/usr/bin/env bash
# The README's test command: installs dependencies, builds from scratch in build-test/
# (or $BUILD_DIR), and runs every test with ctest. This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests  # the build dependencies and the test-only tools
BUILD_DIR=${BUILD_DIR:-build-test}
rm -rf "$BUILD_DIR"
BUILD_DIR="$BUILD_DIR" scripts/build.sh
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)"
# libnasc from an installed prefix: examples/embed built and run against it.
scripts/test_embed.sh "$BUILD_DIR"

#!/usr/bin/env bash
# Configures and builds nasc into build/ (or $BUILD_DIR). Run scripts/setup.sh first.
# BUILD_TARGETS="nasc ..." builds only those targets (the main job builds only the CLI).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "$@"
# shellcheck disable=SC2086 # BUILD_TARGETS is a list of target names
cmake --build "$BUILD_DIR" -j "$(nproc)" ${BUILD_TARGETS:+--target $BUILD_TARGETS}

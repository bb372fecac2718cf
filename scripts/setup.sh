#!/usr/bin/env bash
# Installs nasc's dependencies from Debian's packages: what building and running it needs,
# and with --tests also what only the test suite uses (a browser, protoc, onnxruntime, ...),
# so that the main job (scripts/run_main.sh) installs no test tools. Idempotent: packages
# already present are not downloaded again.
#
#   scripts/setup.sh [--tests]
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  antlr4                 # the parser generator (pulls in Java); grammar/Nas.g4 -> C++
  libantlr4-runtime-dev  # the ANTLR 4.9 C++ runtime the generated parser links against
  libfmt-dev nlohmann-json3-dev zlib1g-dev
  catch2                 # the test suite's framework: configuring the build looks for it
  libpng-dev             # PNG decoding for image-folder data sets (--data images:DIR)
  libjpeg62-turbo-dev    # JPEG decoding for the same (libjpeg-turbo, Debian's libjpeg)
  graphviz               # `dot`, used by `nasc graph -o x.svg`
  libdnnl-dev            # oneDNN: CPU kernels (used by the runtime stages)
  ocl-icd-opencl-dev     # only a Recommends of libdnnl-dev, but its CMake config requires OpenCL
  uuid-dev               # Debian's ANTLR4 runtime CMake target links -luuid without depending on it
  dataset-fashion-mnist  # the default data set, under /usr/share/datasets/fashion-mnist
  llvm-14-dev            # LLVM 14's ORC JIT: the `jit` backend's code generation (runtime/jit/)
  libonnx-dev            # ONNX's protobuf messages and checker: `nasc export` writes ONNX models
  libprotobuf-dev        # the protobuf runtime libonnx-dev's messages are built on
  pybind11-dev           # the Python module `import nasc` (python/, docs/python.md) is built with it
  python3-pybind11       # pybind11's CMake package as Python sees it (pybind11-dev's companion)
  python3-dev            # Python.h for the module (pybind11-dev does not depend on it)
  python3-numpy          # the module's arrays (Model.forward and friends)
  libopenmpi-dev         # Open MPI: data-parallel train and search (mpirun -n N nasc ...)
  openmpi-bin            # mpirun itself
)

# Only the tests use these (scripts/test.sh installs them).
TEST_PACKAGES=(
  python3                # tests/check_docs.py (docs samples are tested)
  llvm-14-tools          # FileCheck, which checks the textual pass tests (tests/filecheck/)
  clang                  # the libFuzzer targets (scripts/fuzz.sh)
  libclang-rt-14-dev     # libFuzzer and the sanitizer runtimes: only a Recommends of clang-14
  python3-pytest         # the Python module's tests, tests/python/test_*.py, run by ctest
  chromium               # report.html opened in a real (headless) browser
  groff-base             # the generated man page (nasc.1) is checked by groff
  protobuf-compiler      # protoc: TensorBoard event files decoded by code it generates
  python3-protobuf       # the runtime of that generated Python code
  python3-onnx           # tests/onnx_check.py: ONNX's own checker and shape inference on exports
)

tests=0
case "${1:-}" in
  "") ;;
  --tests) tests=1; PACKAGES+=("${TEST_PACKAGES[@]}") ;;
  *) echo "setup: unknown argument \"$1\" (usage: scripts/setup.sh [--tests])" >&2; exit 1 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi

# onnxruntime for the ONNX export tests (tests/test_onnx_export.cpp run the exported models
# in it, an inference engine independent of nasc): Microsoft's prebuilt onnxruntime-node
# from npm, into .cache/npm (git-ignored). The package carries its native library;
# --ignore-scripts skips its postinstall, which would download more from GitHub. Node and
# npm come from Debian when the machine has neither command (a machine with NodeSource's
# nodejs has npm inside it, and Debian's npm package would conflict with it).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "$tests" = 0 ]; then
  :  # the main job runs no ONNX model
elif [ ! -f "$ROOT/.cache/npm/node_modules/onnxruntime-node/package.json" ]; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "setup: installing nodejs npm"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
  fi
  echo "setup: installing onnxruntime-node 1.20.1 into .cache/npm"
  npm install --prefix "$ROOT/.cache/npm" --ignore-scripts --no-audit --no-fund \
    onnxruntime-node@1.20.1
else
  echo "setup: onnxruntime-node present"
fi


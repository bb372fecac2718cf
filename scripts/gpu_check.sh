#!/usr/bin/env bash
# The CUDA backend's checks on a GPU machine, in two halves, for a machine that has the GPU
# but no compiler or packages (the device machine lent to some sessions: one H100 or H200,
# CUDA 13 driver, PyTorch with cuDNN and cuBLAS in its Python environment):
#
#   scripts/gpu_check.sh bundle       here, after a build: the binaries and the non-glibc,
#                                     non-CUDA libraries they load, stripped and compressed
#                                     into .gpu/bundle.tar.xz (git ignores .gpu/)
#   scripts/gpu_check.sh run [OUT]    on the GPU machine, from the repository root with .gpu
#                                     carried: unpacks the bundle, finds cuDNN and cuBLAS in
#                                     the Python environment, then runs the backend's tests
#                                     and the DARTS step bench, writing logs to OUT
#
# The binaries hold this checkout's absolute path (the stdlib, the tests' data); `run`
# links it to the checkout it runs in when that path is free.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
BINARIES=(nasc libnasc_cuda.so tests/nas_tests tests/nas_cuda_tests bench/nasc_bench_darts_step
  bench/nasc_bench_mobilenet_infer bench/nasc_bench_pnas_step)

bundle() {
  ninja -C "$BUILD" nasc nasc_cuda nas_tests nas_cuda_tests nasc_bench_darts_step \
    nasc_bench_mobilenet_infer nasc_bench_pnas_step >/dev/null
  local stage=.gpu/stage
  rm -rf .gpu
  mkdir -p "$stage/build/tests" "$stage/build/bench" "$stage/lib"
  for f in "${BINARIES[@]}"; do strip --strip-debug -o "$stage/build/$f" "$BUILD/$f"; done
  # What they load, glibc and its loader included (the GPU machine's may be older than the
  # 2.34 these binaries need), but not CUDA's libraries (its Python environment has cuDNN and
  # cuBLAS; the runtime is linked in statically, the driver is the machine's).
  for f in "${BINARIES[@]}"; do ldd "$BUILD/$f"; done |
    awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}' | sort -u |
    grep -v -E 'libcudnn|libcublas|libcuda' |
    while read -r lib; do cp -L "$lib" "$stage/lib/"; done
  strip --strip-debug "$stage"/lib/*.so* 2>/dev/null || true
  # The executables run under the bundled loader, from where `run` unpacks it (this
  # checkout's path, linked to the checkout there), so that their children do too.
  command -v patchelf >/dev/null || { echo "needs patchelf: apt-get install patchelf" >&2; exit 1; }
  local loader
  loader=$(basename "$(ls "$stage"/lib/ld-linux*)")
  for f in "${BINARIES[@]}"; do
    case $f in *.so) ;; *) patchelf --set-interpreter "$PWD/.gpu/unpacked/lib/$loader" "$stage/build/$f" ;; esac
  done
  echo "$PWD" >"$stage/source_dir"
  tar -C "$stage" -cf - . | xz -T2 -6 >.gpu/bundle.tar.xz
  rm -rf "$stage"
  grep -qxF '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >>.git/info/exclude
  local mib=$(($(stat -c %s .gpu/bundle.tar.xz) / 1048576))
  echo ".gpu/bundle.tar.xz: ${mib} MiB (the device tool carries at most 64 MiB with the tree)"
  [ "$mib" -lt 60 ] || { echo "too large to carry" >&2; exit 1; }
}

# cuDNN's and cuBLAS's folders in the Python environment's nvidia wheels.
nvidia_libraries() {
  local python
  for python in python3 /usr/bin/python3; do
    "$python" - <<'PY' 2>/dev/null && return 0
import glob, os, site
dirs = set()
for base in site.getsitepackages() + [site.getusersitepackages()]:
    for lib in glob.glob(os.path.join(base, "nvidia", "*", "lib")):
        dirs.add(lib)
if not dirs:
    raise SystemExit(1)
print(":".join(sorted(dirs)))
PY
  done
  return 1
}

run() {
  local out=${1:-${OUT:-/tmp/nasc_gpu_check}}
  mkdir -p "$out"
  local source_dir
  source_dir=$(tar -xJOf .gpu/bundle.tar.xz ./source_dir)
  if [ "$source_dir" != "$PWD" ] && [ ! -e "$source_dir" ]; then
    mkdir -p "$(dirname "$source_dir")"
    ln -s "$PWD" "$source_dir"
  fi
  # Where the executables' loader was set to be.
  mkdir -p "$source_dir/.gpu/unpacked"
  tar -C "$source_dir/.gpu/unpacked" -xJf .gpu/bundle.tar.xz
  mkdir -p "$BUILD"
  cp -r "$source_dir/.gpu/unpacked/build/." "$BUILD/"
  # CUDA_LIBS names the folders of cuDNN and cuBLAS where they are not in Python's wheels.
  local cuda_libs=${CUDA_LIBS:-}
  [ -n "$cuda_libs" ] || cuda_libs=$(nvidia_libraries) ||
    { echo "no nvidia wheels (cuDNN, cuBLAS) found; set CUDA_LIBS" >&2; exit 1; }
  export LD_LIBRARY_PATH="$source_dir/.gpu/unpacked/lib:$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export NASC_CACHE_DIR=/tmp/nasc_cache
  nvidia-smi >"$out/nvidia_smi.txt" 2>&1 || true
  "$BUILD/nasc" --version 2>&1 | tee "$out/version.txt"
  local status=0
  timeout 120 "$BUILD/tests/nas_cuda_tests" >"$out/cuda_tests.txt" 2>&1 || status=1
  tail -3 "$out/cuda_tests.txt"
  timeout 300 "$BUILD/tests/nas_tests" "[backend],[conformance],[gpu]" >"$out/backend_tests.txt" 2>&1 ||
    status=1
  tail -3 "$out/backend_tests.txt"
  for backend in cuda jit; do
    timeout 120 "$BUILD/bench/nasc_bench_darts_step" --steps 3 --backend "$backend" \
      >"$out/darts_step_$backend.json" 2>"$out/darts_step_$backend.err" || status=1
    echo "darts step ($backend): $(cat "$out/darts_step_$backend.json")"
  done
  # MobileNetV2 inference at batch 1 and 64, and a PNAS step (a sampled path of the
  # MobileNetV2 space against that path alone).
  for batch in 1 64; do
    timeout 120 "$BUILD/bench/nasc_bench_mobilenet_infer" --backend cuda --batch "$batch" \
      >"$out/mobilenet_b$batch.json" 2>"$out/mobilenet_b$batch.err" || status=1
    timeout 120 python3 bench/peers/mobilenet_infer_torch.py --device cuda --batch "$batch" \
      >"$out/mobilenet_torch_b$batch.json" 2>"$out/mobilenet_torch_b$batch.err" || status=1
    echo "mobilenet b$batch: nasc $(cat "$out/mobilenet_b$batch.json")"
    echo "                 pytorch $(cat "$out/mobilenet_torch_b$batch.json")"
  done
  timeout 120 "$BUILD/bench/nasc_bench_pnas_step" --backend cuda --paths 6 --reps 5 \
    >"$out/pnas_step.txt" 2>&1 || status=1
  tail -3 "$out/pnas_step.txt"
  # The peer, beside it in the same run: PyTorch eager and torch.compile on the GPU.
  for mode in "" --compile; do
    timeout 300 python3 bench/peers/darts_step_torch.py --device cuda --steps 3 $mode \
      >"$out/darts_step_torch$mode.json" 2>"$out/darts_step_torch$mode.err" || status=1
    echo "darts step (pytorch cuda $mode): $(cat "$out/darts_step_torch$mode.json")"
  done
  return $status
}

case "${1:-}" in
  bundle) bundle ;;
  run) shift; run "$@" ;;
  *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac

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
#                                     and the benches beside their PyTorch peers within
#                                     BUDGET seconds (default 540), writing a summary and
#                                     an archive of the logs to OUT
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
  out=${1:-${OUT:-/tmp/nasc_gpu_check}}  # global: the EXIT trap writes there
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
  # The device tool returns at most 8 files from OUT and stops a command after 10 minutes:
  # every log goes to one archive, a summary to stdout and OUT/summary.txt, and each step's
  # timeout is cut to what is left of BUDGET seconds.
  work=$(mktemp -d)
  deadline=$((SECONDS + ${BUDGET:-540}))
  failed=0
  trap 'tar -C "$work" -czf "$out/gpu_check_logs.tar.gz" . ; cp "$work/summary.txt" "$out/" 2>/dev/null' EXIT
  nvidia-smi >"$work/nvidia_smi.txt" 2>&1 || true
  step version 30 "$BUILD/nasc" --version
  step cuda_tests 60 "$BUILD/tests/nas_cuda_tests"
  step backend_tests 240 "$BUILD/tests/nas_tests" "[backend],[conformance],[gpu]"
  for backend in cuda jit; do
    step "darts_step_$backend" 60 "$BUILD/bench/nasc_bench_darts_step" --steps 3 --backend "$backend"
  done
  # The peer, beside it in the same run: PyTorch eager and torch.compile on the GPU.
  step darts_step_torch 90 python3 bench/peers/darts_step_torch.py --device cuda --steps 3
  step darts_step_torch_compile 150 python3 bench/peers/darts_step_torch.py --device cuda \
    --steps 3 --compile
  # MobileNetV2 inference at batch 1 and 64, and a PNAS step (a sampled path of the
  # MobileNetV2 space against that path alone).
  for batch in 1 64; do
    step "mobilenet_b$batch" 60 "$BUILD/bench/nasc_bench_mobilenet_infer" --backend cuda \
      --batch "$batch"
    step "mobilenet_torch_b$batch" 60 python3 bench/peers/mobilenet_infer_torch.py --device cuda \
      --batch "$batch"
  done
  step pnas_step 60 "$BUILD/bench/nasc_bench_pnas_step" --backend cuda --paths 6 --reps 5
  return $failed
}

# step NAME SECONDS COMMAND...: runs COMMAND with its output in NAME.log, for at most
# SECONDS or what is left of the budget, and adds its status and last lines to the summary.
step() {
  local name=$1 seconds=$2
  shift 2
  local left=$((deadline - SECONDS))
  if [ "$left" -lt 10 ]; then
    echo "== $name: skipped, the time budget is spent" | tee -a "$work/summary.txt"
    failed=1
    return
  fi
  [ "$seconds" -le "$left" ] || seconds=$left
  local start=$SECONDS status=0
  timeout "$seconds" "$@" >"$work/$name.log" 2>&1 || status=$?
  {
    echo "== $name: exit $status after $((SECONDS - start)) s"
    tail -4 "$work/$name.log"
  } | tee -a "$work/summary.txt"
  [ "$status" -eq 0 ] || failed=1
}

case "${1:-}" in
  bundle) bundle ;;
  run) shift; run "$@" ;;
  *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# One first-order DARTS step on examples/darts.nas (batch 64, 3x32x32, C=16, 8 cells):
# nasc (bench/darts_step.cpp) beside PyTorch (bench/peers/darts_step_torch.py), measured in
# the same run, printed as ratios.
#
#   bench/darts_step.sh [STEPS] [THREADS] [BACKEND]
#
# BACKEND cuda runs nasc's cuda backend against PyTorch on the GPU and compares the GPU
# memory each held at most (nasc's backend_peak_mb, the peer's peak_gpu_mb); any other
# backend (default: nasc's default) runs on the CPU against PyTorch on the CPU and
# compares peak RSS. PYTHON picks the interpreter with torch (default Debian's).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-3}
THREADS=${2:-2}
BACKEND=${3:-}
BIN=${BUILD_DIR:-build}/bench/nasc_bench_darts_step
PEER=${PEER:-bench/peers/darts_step_torch.py}
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$BIN" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
"$PYTHON" -c "import torch" 2>/dev/null ||
  { echo "the peer needs torch in $PYTHON: sudo apt-get install python3-torch" >&2; exit 1; }
device=()
[ "$BACKEND" = cuda ] && device=(--device cuda)
ours=$("$BIN" --steps "$STEPS" --threads "$THREADS" ${BACKEND:+--backend "$BACKEND"})
peer=$("$PYTHON" "$PEER" --steps "$STEPS" --threads "$THREADS" "${device[@]}")
echo "nasc:    $ours"
echo "pytorch: $peer"
python3 - "$ours" "$peer" "$BACKEND" <<'PY'
import json, sys
a, b, backend = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
gpu = backend == "cuda"
print(f"step time: nasc {a['median_step_s']:.2f} s, pytorch {b['median_step_s']:.2f} s -> "
      f"speedup {b['median_step_s'] / a['median_step_s']:.2f}x (target >= {1.5 if gpu else 3})")
if gpu:
    print(f"peak GPU memory: nasc {a['backend_peak_mb']:.0f} MB, pytorch {b['peak_gpu_mb']:.0f} MB "
          f"-> ratio {a['backend_peak_mb'] / b['peak_gpu_mb']:.2f} (target <= 1)")
else:
    print(f"peak RSS:  nasc {a['peak_rss_mb']:.0f} MB, pytorch {b['peak_rss_mb']:.0f} MB -> "
          f"ratio {a['peak_rss_mb'] / b['peak_rss_mb']:.2f} (target <= 0.33)")
PY

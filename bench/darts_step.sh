#!/usr/bin/env bash
# One first-order DARTS step on examples/darts.nas (batch 64, 3x32x32, C=16, 8 cells):
# nasc (bench/darts_step.cpp) beside PyTorch (bench/peers/darts_step_torch.py), measured in
# the same run, printed as ratios. Usage: bench/darts_step.sh [STEPS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-3}
THREADS=${2:-2}
BIN=${BUILD_DIR:-build}/bench/nasc_bench_darts_step
PEER=${PEER:-bench/peers/darts_step_torch.py}
[ -x "$BIN" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
/usr/bin/python3 -c "import torch" 2>/dev/null ||
  { echo "the peer needs Debian's python3-torch: sudo apt-get install python3-torch" >&2; exit 1; }
ours=$("$BIN" --steps "$STEPS" --threads "$THREADS")
peer=$(/usr/bin/python3 "$PEER" --steps "$STEPS" --threads "$THREADS")
echo "nasc:    $ours"
echo "pytorch: $peer"
python3 - "$ours" "$peer" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"step time: nasc {a['median_step_s']:.2f} s, pytorch {b['median_step_s']:.2f} s -> "
      f"speedup {b['median_step_s'] / a['median_step_s']:.2f}x (target >= 3)")
print(f"peak RSS:  nasc {a['peak_rss_mb']:.0f} MB, pytorch {b['peak_rss_mb']:.0f} MB -> "
      f"ratio {a['peak_rss_mb'] / b['peak_rss_mb']:.2f} (target <= 0.33)")
PY

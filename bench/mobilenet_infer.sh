#!/usr/bin/env bash
# MobileNetV2 inference at batch 1 (examples/mobilenet_v2.nas): nasc
# (bench/mobilenet_infer.cpp) beside PyTorch eager and TorchScript
# (bench/peers/mobilenet_infer_torch.py), each pinned to one core, measured in the same run
# and printed as ratios. Usage: bench/mobilenet_infer.sh [HW] [BACKEND] (defaults 224, cpu)
set -euo pipefail
cd "$(dirname "$0")/.."
HW=${1:-224}
BACKEND=${2:-cpu}
BIN=${BUILD_DIR:-build}/bench/nasc_bench_mobilenet_infer
PEER=bench/peers/mobilenet_infer_torch.py
CORE=${CORE:-0}
[ -x "$BIN" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
/usr/bin/python3 -c "import torch" 2>/dev/null ||
  { echo "the peer needs Debian's python3-torch: sudo apt-get install python3-torch" >&2; exit 1; }
ours=$(taskset -c "$CORE" "$BIN" --hw "$HW" --threads 1 --backend "$BACKEND")
peer=$(taskset -c "$CORE" /usr/bin/python3 "$PEER" --hw "$HW" --threads 1)
echo "nasc:    $ours"
echo "pytorch: $peer"
python3 - "$ours" "$peer" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert a['params'] == b['params'], f"different networks: {a['params']} vs {b['params']} weights"
ms = a['median_ms']
for mode in ('eager', 'torchscript'):
    peer = b[mode]['median_ms']
    print(f"{mode:11s}: nasc {ms:.2f} ms, pytorch {peer:.2f} ms -> nasc/peer {ms / peer:.2f}")
PY

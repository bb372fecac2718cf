#!/usr/bin/env bash
# Latency estimator accuracy on examples/mobilenet.nas (docs/results.md): 100 random
# sub-networks at batch 1, for 3x32x32 and 3x224x224 inputs, estimated from a latency
# table profiled first (every candidate), then compiled on their own and timed whole.
# Prints MAPE, the share within +-10% and Spearman's rank correlation for the accumulated
# and the fusion-aware estimate (raw, calibrated by the table, calibrated in the measuring
# rounds, by 10 networks of their own). The rounds span at least 150 s at 3x32x32 and 450 s at
# 3x224x224, so that both sample the machine's drift and a 224x224 network's fastest time
# comes from about a dozen rounds, not four (a round of 100 networks there takes ~37 s).
# Run on an idle machine; the tables are kept in OUT.
#
#   bench/latency_accuracy.sh [ARCHS] [THREADS] [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
archs=${1:-100}
threads=${2:-1}
out=${3:-out/bench_latency}
bin=${NASC_BUILD:-build}/bench/nasc_bench_latency_accuracy
mkdir -p "$out"
for hw in 32 224; do
  echo "== 3x${hw}x${hw}"
  seconds=150
  [ "$hw" = 224 ] && seconds=450
  "$bin" --set hw=$hw --archs "$archs" --threads "$threads" --lut "$out/lut_hw$hw.json" \
    --min-seconds "$seconds" --table-rounds 5 --calibrate 10 \
    | tee "$out/hw$hw.txt" | grep -v '^arch '
done

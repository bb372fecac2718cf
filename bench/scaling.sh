#!/usr/bin/env bash
# Data-parallel scaling of a first-order DARTS search step on examples/darts.nas (the DARTS
# CIFAR supernet: batch 64, 3x32x32, C=16, 8 cells, 1.93M weights), measured in one run:
#   A  one process, 1 thread
#   B  one process, 2 threads        (the peer: what the same two cores do without MPI)
#   C  mpirun -n 2, 1 thread per rank (each rank half of every batch)
# A step's time is the second epoch's seconds over its steps (the first epoch also builds
# the kernels). Prints the ratios and what one step all-reduces. Only meaningful on an
# otherwise idle machine. Usage: bench/scaling.sh [STEPS_PER_EPOCH]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-3}
NASC=${BUILD_DIR:-build}/nasc
[ -x "$NASC" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "needs mpirun: sudo apt-get install openmpi-bin" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

config() {  # THREADS
  cat > "$tmp/cfg$1.json" <<EOF
{"epochs": 2, "seed": 0, "threads": $1,
 "data": {"name": "synthetic", "limit_train": $((2 * 64 * STEPS)), "train_portion": 0.5,
          "batch_size": 64},
 "train": {"name": "sgd", "lr": 0.025, "momentum": 0.9, "weight_decay": 3e-4},
 "valid": {"name": "adam", "lr": 3e-4, "betas": [0.5, 0.999], "weight_decay": 1e-3}}
EOF
  echo "$tmp/cfg$1.json"
}

step_seconds() {  # RUN_DIR
  python3 - "$1/metrics.jsonl" "$STEPS" <<'PY'
import json, sys
records = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(records[-1]["seconds"] / int(sys.argv[2]))
PY
}

MPI=(mpirun -n 2 --oversubscribe --bind-to none --mca btl_vader_single_copy_mechanism none)
[ "$(id -u)" = 0 ] && MPI+=(--allow-run-as-root)

"$NASC" search examples/darts.nas -c "$(config 1)" -o "$tmp/a" > /dev/null
"$NASC" search examples/darts.nas -c "$(config 2)" -o "$tmp/b" > /dev/null
"${MPI[@]}" "$NASC" search examples/darts.nas -c "$(config 1)" -o "$tmp/c" > "$tmp/c.out"
a=$(step_seconds "$tmp/a")
b=$(step_seconds "$tmp/b")
c=$(step_seconds "$tmp/c")
grep -h "each step all-reduces" "$tmp/c/log.txt" | sed 's/^[^d]*data/data/'
python3 - "$a" "$b" "$c" <<'PY'
import sys
a, b, c = map(float, sys.argv[1:])
print(f"step time: 1 process x 1 thread {a:.2f} s | 1 process x 2 threads {b:.2f} s | "
      f"2 ranks x 1 thread {c:.2f} s")
print(f"2 ranks against 1 rank (1 thread each): speedup {a / c:.2f}x (ideal 2)")
print(f"2 ranks x 1 thread against 1 process x 2 threads: {b / c:.2f}x (> 1: MPI is faster)")
PY

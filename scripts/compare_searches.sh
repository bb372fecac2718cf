#!/usr/bin/env bash
# The search-quality comparison of docs/results.md ("Search methods at equal budget"):
# darts, pnas, evolution and random search on one space, several seeds each, every run the
# same search budget and the same retraining recipe (`nasc search --retrain`), then the
# test accuracy of each found network as mean ± std per method.
#
#   scripts/compare_searches.sh [OUT_DIR]          (default: runs/compare)
#
# Environment: SPACE (examples/convnet_fmnist.nas), CONFIG (examples/compare_convnet_fmnist.json,
# the shared budget and recipe), ALGORITHMS ("darts pnas evolution random"; also "pcdarts":
# darts with PC-DARTS' partial channels, 1/PC_K of them, default 4, and edge
# normalisation; "dartscap": darts with darts.max_param_free = CAP, default 1, per cell),
# SEEDS ("0 1 2"), JOBS (2: runs side by side, each on the config's threads), NASC
# (build/nasc).
#
# The budget is the same number of weight-training images: 4 epochs of the config's
# weight split for darts, pnas (one warm-up epoch each) and evolution's supernet, and
# random search's 4 architectures trained 1 epoch each. Finished runs (with result.json)
# are kept, so a rerun only does what is missing; the summary is OUT_DIR/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/compare}
SPACE=${SPACE:-examples/convnet_fmnist.nas}
CONFIG=${CONFIG:-examples/compare_convnet_fmnist.json}
ALGORITHMS=${ALGORITHMS:-darts pnas evolution random}
SEEDS=${SEEDS:-0 1 2}
JOBS=${JOBS:-2}
NASC=${NASC:-build/nasc}
[ -x "$NASC" ] || { echo "compare_searches.sh: $NASC not found; run scripts/build.sh" >&2; exit 1; }
mkdir -p "$OUT"

# One config per (algorithm, seed): the shared one with the algorithm's few keys.
write_config() {  # ALGORITHM SEED FILE
  python3 - "$CONFIG" "$1" "$2" "$3" "${PC_K:-4}" "${CAP:-1}" <<'EOF'
import json, sys
base, algorithm, seed, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cfg = json.load(open(base))
if algorithm == "pcdarts":  # PC-DARTS: darts on 1/K of the channels, edge normalisation
    algorithm = "darts"
    cfg.setdefault("darts", {})["partial_channels"] = int(sys.argv[5])
if algorithm == "dartscap":  # darts with a cap on parameter-free picks per cell
    algorithm = "darts"
    cfg.setdefault("darts", {})["max_param_free"] = int(sys.argv[6])
cfg["algorithm"] = algorithm
cfg["seed"] = seed
if algorithm in ("darts", "pnas"):
    cfg["warmup_epochs"] = 1
if algorithm == "random":  # the same weight-training images: 4 architectures x 1 epoch
    cfg.setdefault("random", {})["samples"] = cfg["epochs"]
    cfg["epochs"] = 1
json.dump(cfg, open(out, "w"), indent=2)
EOF
}

run_one() {  # ALGORITHM SEED
  local dir="$OUT/$1-seed$2"
  if [ -f "$dir/result.json" ]; then
    echo "== $1 seed $2: done before ($dir/result.json)"
    return
  fi
  rm -rf "$dir"
  mkdir -p "$OUT/configs"
  write_config "$1" "$2" "$OUT/configs/$1-seed$2.json"
  echo "== $1 seed $2 -> $dir"
  "$NASC" search "$SPACE" --retrain -c "$OUT/configs/$1-seed$2.json" -o "$dir" \
    > "$OUT/$1-seed$2.log" 2>&1 || { echo "$1 seed $2 failed: see $OUT/$1-seed$2.log" >&2; return 1; }
  grep "retrained:" "$OUT/$1-seed$2.log" || true
}

pids=()
for seed in $SEEDS; do
  for algorithm in $ALGORITHMS; do
    run_one "$algorithm" "$seed" &
    pids+=($!)
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 2; done
  done
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done

python3 - "$OUT" "$ALGORITHMS" "$SEEDS" <<'EOF' | tee "$OUT/summary.md"
import json, os, statistics, sys
out, algorithms, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
print("| method | test accuracy per seed (%) | mean ± std (%) | params (mean) | MACs (mean) | search s (mean) |")
print("| --- | --- | --- | ---: | ---: | ---: |")
for a in algorithms:
    rows = []
    for s in seeds:
        f = os.path.join(out, f"{a}-seed{s}", "result.json")
        if os.path.exists(f):
            rows.append(json.load(open(f)))
    if not rows:
        print(f"| {a} | (no finished run) | | | | |")
        continue
    acc = [100 * r["test_accuracy"] for r in rows]
    std = statistics.stdev(acc) if len(acc) > 1 else 0.0
    params = statistics.mean(r["params"] for r in rows)
    macs = statistics.mean(r["macs"] for r in rows)
    search = statistics.mean(r["search_seconds"] for r in rows)
    print(f"| {a} | {', '.join(f'{x:.2f}' for x in acc)} | {statistics.mean(acc):.2f} ± {std:.2f} "
          f"| {params:,.0f} | {macs / 1e6:.1f}M | {search:.0f} |")
EOF
exit $failed

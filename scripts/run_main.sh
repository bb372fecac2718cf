#!/usr/bin/env bash
# The README's main job: installs dependencies, builds, checks and draws every shipped
# search space, then runs a short hardware-bounded architecture search (one-shot supernet +
# evolution) of examples/convnet_fmnist.nas on Fashion-MNIST and retrains what it found
# (--retrain: 6 epochs on every training image, then the test split once). Everything goes
# to out/ (or $OUT_DIR); the search's run folder is out/search (arch.json, report.html,
# result.json, retrain/, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_TARGETS=nasc scripts/build.sh  # only the CLI: the tests build in scripts/test.sh
OUT_DIR=${OUT_DIR:-out}
mkdir -p "$OUT_DIR"
for f in examples/*.nas; do
  name=$(basename "$f" .nas)
  echo "== nasc check $f"
  build/nasc check "$f"
  build/nasc graph "$f" -o "$OUT_DIR/$name.svg"
done
echo "== zero_join with the zero candidate selected (only conv3's path is drawn)"
build/nasc graph examples/zero_join.nas --arch examples/zero_join_zero.json -o "$OUT_DIR/zero_join_zero.svg"
echo "graphs written to $OUT_DIR/"
echo "== nasc profile examples/convnet_fmnist.nas --set C=16: this machine's latency table (seconds)"
build/nasc profile examples/convnet_fmnist.nas --set C=16 -o "$OUT_DIR/convnet_fmnist_lut.json"
echo "== nasc search examples/convnet_fmnist.nas --retrain (evolution under a 15M-MAC bound: a" \
  "supernet trained 4 epochs on 3,200 Fashion-MNIST images, 200 candidates scored on 3,200" \
  "others, then the found network trained 6 epochs on all 60,000 and tested; ~7 min on 2 cores)"
rm -rf "$OUT_DIR/search"
build/nasc search examples/convnet_fmnist.nas -c examples/search_convnet_fmnist_short.json --retrain \
  --lut "$OUT_DIR/convnet_fmnist_lut.json" -o "$OUT_DIR/search"
echo "open $OUT_DIR/search/report.html; the full-size run (95% test in about 80 min on 2 cores):"
echo "  build/nasc search examples/convnet_fmnist.nas --retrain -c examples/search_convnet_fmnist.json -o runs/convnet"

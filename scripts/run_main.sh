#!/usr/bin/env bash
# The README's main job: installs dependencies, builds, checks and draws every shipped
# search space, then runs a short architecture search (first-order DARTS) of
# examples/darts_fmnist.nas on Fashion-MNIST and retrains what it found (--retrain: 10
# epochs on the search's images, then the test split once). Everything goes to out/ (or
# $OUT_DIR); the search's run folder is out/search (arch.json, report.html, result.json,
# retrain/, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
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
echo "== nasc profile examples/darts_fmnist.nas: this machine's latency table (a few seconds)"
build/nasc profile examples/darts_fmnist.nas -o "$OUT_DIR/darts_fmnist_lut.json"
echo "== nasc search examples/darts_fmnist.nas --retrain (DARTS, 4 epochs on 6,400 Fashion-MNIST" \
  "images, then the found network trained 10 epochs and tested; ~9 min on 2 cores)"
rm -rf "$OUT_DIR/search"
build/nasc search examples/darts_fmnist.nas -c examples/search_fmnist.json --retrain \
  --lut "$OUT_DIR/darts_fmnist_lut.json" -o "$OUT_DIR/search"
echo "open $OUT_DIR/search/report.html; retrain the found architecture longer, on every image:"
echo "  build/nasc train examples/darts_fmnist.nas --arch $OUT_DIR/search/arch.json -o runs/retrain"

#!/usr/bin/env bash
# The README's main job: installs dependencies, builds, then checks and draws every
# shipped search space. Graphs go to out/ (or $OUT_DIR).
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

#!/usr/bin/env bash
# Front-end speed: how long `nasc check examples/darts.nas` takes as a whole process
# (parse, elaborate 8 DARTS cells, shape-check, DCE, space statistics). The target is
# under 0.5 s. The peer is PyTorch building the same supernet (bench/peers/darts_step_torch.py
# --count-only: import torch, construct the supernet, count its weights), measured in the
# same run; the figure is the ratio nasc / PyTorch. Without python3-torch the peer is
# skipped and only nasc's median is printed.
#
# Usage: bench/check_speed.sh [RUNS]   (after scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-11}
NASC=${NASC:-build/nasc}
PEER=${PEER:-bench/peers/darts_step_torch.py}
[ -x "$NASC" ] || { echo "build nasc first (scripts/build.sh)"; exit 1; }

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_cmd() {  # prints wall seconds of one run of "$@"
  local t0 t1
  t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.6f\n", b - a}'
}

have_peer=0
if /usr/bin/python3 -c "import torch" 2>/dev/null; then have_peer=1; fi
PEER_CMD=(/usr/bin/python3 "$PEER" --count-only --threads 2)

"$NASC" check examples/darts.nas >/dev/null  # warm the page cache
nasc_times=() peer_times=() ratios=()
for _ in $(seq "$RUNS"); do  # interleaved A B A B, so drift hits both alike
  a=$(time_cmd "$NASC" check examples/darts.nas); nasc_times+=("$a")
  if [ $have_peer = 1 ]; then
    b=$(time_cmd "${PEER_CMD[@]}"); peer_times+=("$b")
    ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.6f\n", a / b}')")
  fi
done
nasc_med=$(printf '%s\n' "${nasc_times[@]}" | median)
printf 'nasc check examples/darts.nas: median %.3f s over %d runs (target < 0.5 s)\n' "$nasc_med" "$RUNS"
if [ $have_peer = 1 ]; then
  peer_med=$(printf '%s\n' "${peer_times[@]}" | median)
  ratio_med=$(printf '%s\n' "${ratios[@]}" | median)
  printf 'PyTorch building the same supernet: median %.3f s\n' "$peer_med"
  printf 'ratio nasc / PyTorch: %.3f (median of paired runs)\n' "$ratio_med"
else
  echo "peer skipped: python3-torch not installed (apt-get install python3-torch)"
fi

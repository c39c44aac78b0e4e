#!/usr/bin/env bash
# Re-measure every figure quoted in docs/RESULTS.md (run on an otherwise idle machine).
#   tools/measure_all.sh [OUT_DIR]      (default out/results)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/out/results}"
VENV="${VENV:-$ROOT/.venv}"
mkdir -p "$OUT"
export MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184
B="$VENV/bin"
SHARED="$(cd "$ROOT/.." && pwd)/shared/data"
# PREVIOUS=path/to/older_weights.pth adds them to every comparison (same run, same pairs).
CMP=()
if [[ -n "${PREVIOUS:-}" ]]; then CMP=(--compare-weights "previous=$PREVIOUS"); fi
echo "== superglue-bench"
"$B/superglue-bench" --reps 6 --out "$OUT/bench.json" "${CMP[@]}" | tee "$OUT/bench.txt"
if [[ -d "$SHARED/tum_fr1_rpy" ]]; then
  echo "== superglue-eval tum (real motion, held-out time blocks of tum_fr1_rpy)"
  "$B/superglue-eval" --out "$OUT/tum_val.json" "${CMP[@]}" tum "$SHARED/tum_fr1_rpy" \
    --split val --distributions grid response | tee "$OUT/tum_val.txt"
fi
echo "== superglue-eval homography"
"$B/superglue-eval" --out "$OUT/homography.json" "${CMP[@]}" homography \
  | tee "$OUT/homography.txt"
echo "== superglue-eval pairs (planar-scene pairs with exact poses from held-out photos)"
"$B/python" - "$SHARED/phototourism" "$OUT/pose_pairs" <<'PY'
import sys
from pathlib import Path
from superglue_ros.evaluation.pose import write_synthetic_pairs
imgs = sorted(Path(sys.argv[1]).glob('*.jpg'))
print(write_synthetic_pairs(imgs, Path(sys.argv[2]), seed=11))
PY
"$B/superglue-eval" --out "$OUT/pairs.json" pairs "$OUT/pose_pairs/pairs.txt" \
  --images "$OUT/pose_pairs" | tee "$OUT/pairs.txt"
echo "== superglue-replay (demo bag)"
"$B/superglue-replay" --demo --out "$OUT/replay" --no-progress | tail -5

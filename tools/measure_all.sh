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
echo "== superglue-bench"; "$B/superglue-bench" --reps 6 --out "$OUT/bench.json" | tee "$OUT/bench.txt"
echo "== superglue-eval homography"
"$B/superglue-eval" --out "$OUT/homography.json" homography | tee "$OUT/homography.txt"
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

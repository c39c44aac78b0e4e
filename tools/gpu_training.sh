#!/bin/bash
# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
#
# Training on a lent GPU machine that has torch and OpenCV but neither this venv nor ../shared.
#
#   tools/gpu_training.sh pack [TUM_FOLDER] [PHOTOS]   (here) writes devpack/ (~50 MB): the
#       training frames of the time split (JPEG q95 colour, 16-bit depth, full ground truth),
#       the training/validation photos and the committed model code.
#   tools/gpu_training.sh run OUTDIR HOURS WORKERS BATCH [TRAIN ARGS...]   (there) trains
#       two models side by side on the same recipe (A: the shipped size, B: one more GNN
#       layer pair), both warm-started from the shipped weights, and copies each run's
#       checkpoint.pt, log.csv and log tail into OUTDIR every 10 s, so that a run stopped by
#       the machine's time limit still returns its latest checkpoint.
#
# Measured on an H200 host (16 cores): pair generation is the bottleneck, about 4.5 pairs/s per
# loader worker; with 7 workers per run each run makes 2 steps/s at batch 16.
set -eu
cd "$(dirname "$0")/.."
case "${1:-}" in
pack)
  TUM=${2:-../shared/data/tum_fr1_rpy}
  PHOTOS=${3:-/work/trainset}
  PY=${PY:-.venv/bin/python}
  rm -rf devpack && mkdir -p devpack
  PYTHONPATH=superglue_ros "$PY" - "$TUM" <<'PYEOF'
import shutil
import sys
from pathlib import Path

import cv2
from superglue_ros.datasets.rgbd import load_camera, split_by_time, TumSequence

src, out = Path(sys.argv[1]), Path('devpack/tum_train')
seq = TumSequence(str(src), load_camera('fr1'))
train, _ = split_by_time(seq.stamps, 4.0, guard=1.0)  # the defaults of superglue-train
(out / 'rgb').mkdir(parents=True)
(out / 'depth').mkdir()
rgb, depth = ['# rgb: training frames only'], ['# depth']
for i in train:
    f = seq.frames[int(i)]
    name = f'rgb/{f.rgb.stem}.jpg'
    cv2.imwrite(str(out / name), cv2.imread(str(f.rgb)), [cv2.IMWRITE_JPEG_QUALITY, 95])
    shutil.copy(f.depth, out / 'depth' / f.depth.name)
    rgb.append(f'{f.stamp:.6f} {name}')
    depth.append(f'{f.depth.stem} depth/{f.depth.name}')
(out / 'rgb.txt').write_text('\n'.join(rgb) + '\n')
(out / 'depth.txt').write_text('\n'.join(depth) + '\n')
shutil.copy(src / 'groundtruth.txt', out / 'groundtruth.txt')
print(f'{len(train)} training frames of {len(seq)}')
PYEOF
  cp -rL "$PHOTOS" devpack/photos
  git show HEAD:superglue_ros/superglue_ros/models/superglue.py > devpack/superglue.py
  du -sh devpack
  ;;
run)
  OUTDIR=$2; HOURS=$3; W=$4; B=$5; shift 5
  # A copy of the package with the committed model code (not an edit in progress), so the
  # working tree itself is never changed.
  PKG=$(mktemp -d)
  cp -r superglue_ros/superglue_ros "$PKG/"
  cp devpack/superglue.py "$PKG/superglue_ros/models/superglue.py"
  export PYTHONPATH=$PKG PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
  common=(--images devpack/photos/train --val-images devpack/photos/val
          --rgbd devpack/tum_train --camera fr1 --split-block 0
          --real-fraction 0.4 --novel-fraction 0.3 --num-keypoints 512 1024
          --init superglue_ros/superglue_ros/weights/superglue_orb.pth --batch-size "$B"
          --lr 5e-4 --warmup 100 --curriculum-steps 0 --schedule time --max-hours "$HOURS"
          --steps 1000000 --val-every 100 --workers "$W" --device auto --val-pairs 16 "$@")
  ${PY:-python3} -m superglue_ros.training.train "${common[@]}" --out /tmp/runA >/tmp/runA.log 2>&1 &
  PA=$!
  ${PY:-python3} -m superglue_ros.training.train "${common[@]}" --out /tmp/runB \
    --model '{"gnn_layers": 3}' >/tmp/runB.log 2>&1 &
  PB=$!
  mkdir -p "$OUTDIR/A" "$OUTDIR/B"
  copy() {
    for r in A B; do
      cp /tmp/run$r/checkpoint.pt /tmp/run$r/log.csv "$OUTDIR/$r/" 2>/dev/null || true
      tail -c 3000 /tmp/run$r.log >"$OUTDIR/$r/train.log"
    done
  }
  while kill -0 $PA 2>/dev/null || kill -0 $PB 2>/dev/null; do copy; sleep 10; done
  copy
  ;;
*)
  sed -n '5,18p' "$0"
  exit 2
  ;;
esac

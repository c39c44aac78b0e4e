#!/usr/bin/env bash
# Assemble the training and validation image folders the shipped weights were trained on.
#   tools/make_training_set.sh OUT_DIR [SHARED_DATA_DIR]
# train/: TUM freiburg frames + OpenCV samples (../shared and Debian's opencv-doc, without the
#         graffiti pair, which is kept for evaluation, and without synthetic drawings) +
#         scikit-image and matplotlib sample photos bundled in their wheels.
# val/:   the PhotoTourism photos - held out: never trained on, used for validation and for
#         superglue-eval homography.
set -euo pipefail
OUT="${1:?usage: $0 OUT_DIR [SHARED_DATA_DIR]}"
SHARED="${2:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}"
PY="${PYTHON:-$(dirname "$0")/../.venv/bin/python}"
mkdir -p "$OUT/train" "$OUT/val"
for f in "$SHARED"/tum_freiburg/*.png; do ln -sf "$f" "$OUT/train/tum_$(basename "$f")"; done
for f in "$SHARED"/opencv_samples/*.jpg "$SHARED"/opencv_samples/*.png; do
  b=$(basename "$f"); case $b in graf*) continue;; esac
  ln -sf "$f" "$OUT/train/ocv_$b"
done
TMP=$(mktemp -d)
if (cd "$TMP" && apt-get download opencv-doc >/dev/null 2>&1); then
  dpkg -x "$TMP"/opencv-doc*.deb "$TMP/x"
  find "$TMP/x" -path '*data*' \( -iname '*.jpg' -o -iname '*.png' \) -size +40k | while read -r f; do
    b=$(basename "$f")
    case $b in graf*|digits.png|gradient.png|ellipses.jpg|ml.png|imageTextR.png|chessboard.png|\
      aloeGT.png|pic*.png|cards.png) continue;; esac
    [[ -e "$OUT/train/ocv_$b" ]] || cp "$f" "$OUT/train/ocvdoc_$b"
  done
else
  echo 'warning: apt-get download opencv-doc failed; training set will be smaller' >&2
fi
rm -rf "$TMP"
SK=$("$PY" -c 'import os, skimage; print(os.path.join(os.path.dirname(skimage.__file__), "data"))')
for b in coffee.png camera.png astronaut.png chelsea.png motorcycle_left.png \
    motorcycle_right.png rocket.jpg gravel.png brick.png grass.png coins.png moon.png page.png \
    text.png clock_motion.png hubble_deep_field.jpg color.png retina.jpg; do
  cp "$SK/$b" "$OUT/train/sk_$b"
done
MPL=$("$PY" -c 'import os, matplotlib; print(os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data"))')
cp "$MPL/grace_hopper.jpg" "$OUT/train/mpl_grace_hopper.jpg"
for f in "$SHARED"/phototourism/*.jpg; do ln -sf "$f" "$OUT/val/$(basename "$f")"; done
echo "train: $(ls "$OUT/train" | wc -l) images, val: $(ls "$OUT/val" | wc -l) images in $OUT"

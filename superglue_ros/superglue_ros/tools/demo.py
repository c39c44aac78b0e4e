# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``superglue-demo``: match a bundled real image pair and write a picture + JSON summary."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
from typing import List, Optional, Sequence

import cv2
import numpy as np

from ..geometry import verify_fundamental
from ..weights import default_weights_path, WeightsError

DATA = Path(__file__).resolve().parents[1] / 'data' / 'tum_freiburg'


def bundled_frames() -> List[Path]:
    """Return the bundled TUM frames, oldest first (file name = timestamp in seconds)."""
    frames = sorted(DATA.glob('*.jpg'), key=lambda p: float(p.stem))
    if not frames:
        raise FileNotFoundError(f'bundled TUM frames missing in {DATA}')
    return frames


def bundled_pair(gap: int = 2):
    """Two TUM frames ``gap`` apart from the package data (CC BY 4.0, see data/README.md)."""
    frames = sorted(DATA.glob('*.jpg'))
    if len(frames) <= gap:
        raise FileNotFoundError(f'bundled frames missing in {DATA}')
    return frames[0], frames[gap]


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog='superglue-demo', description=__doc__)
    p.add_argument('image0', nargs='?', help='first image (default: bundled TUM frame)')
    p.add_argument('image1', nargs='?', help='second image (default: bundled TUM frame)')
    p.add_argument('--weights', default=None, help='weights file (default: shipped ORB weights)')
    p.add_argument('--out', default='out/demo', help='output directory')
    p.add_argument('--max-keypoints', type=int, default=1024)
    p.add_argument('--device', default='auto')
    p.add_argument('--no-refine', dest='refine', action='store_false',
                   help='keep the keypoint positions (no sub-pixel refinement of the matches)')
    args = p.parse_args(argv)
    path0, path1 = (Path(args.image0), Path(args.image1)) if args.image0 and args.image1 \
        else bundled_pair()
    weights = Path(args.weights) if args.weights else default_weights_path()
    if not weights.is_file():
        print(f'superglue-demo: no weights at {weights}. The shipped weights are missing from '
              f'this checkout; train them with superglue-train (see the model card) or pass '
              f'--weights PATH. Refusing to show matches from random weights.', file=sys.stderr)
        return 2
    from ..matcher import ImageMatcher
    try:
        matcher = ImageMatcher(weights, features='orb', max_keypoints=args.max_keypoints,
                               device=args.device, refine=args.refine)
    except (WeightsError, ValueError) as exc:
        print(f'superglue-demo: {exc}', file=sys.stderr)
        return 2
    img0, img1 = cv2.imread(str(path0)), cv2.imread(str(path1))
    if img0 is None or img1 is None:
        print(f'superglue-demo: cannot read {path0 if img0 is None else path1}', file=sys.stderr)
        return 2
    res = matcher.match(img0, img1)
    inliers = verify_fundamental(res.points0, res.points1, 1.0)
    from ..viz import draw_matches
    canvas = draw_matches(img0, img1, res.points0, res.points1, res.confidence,
                          res.features0.keypoints, res.features1.keypoints, inliers,
                          text=[f'SuperGlue-ORB: {len(res)} matches, '
                                f'{int(inliers.sum())} RANSAC inliers, '
                                f'{int(res.refined.sum())} refined',
                                f'{len(res.features0)} / {len(res.features1)} keypoints, '
                                f'{res.latency * 1e3:.0f} ms on {matcher.engine.device}'])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out / 'matches.png'), canvas)
    summary = {
        'image0': str(path0), 'image1': str(path1), 'weights': str(weights),
        'device': str(matcher.engine.device),
        'keypoints0': len(res.features0), 'keypoints1': len(res.features1),
        'matches': len(res), 'inliers': int(inliers.sum()),
        'inlier_ratio': float(inliers.mean()) if len(res) else 0.0,
        'mean_confidence': float(np.mean(res.confidence)) if len(res) else 0.0,
        'latency_ms': res.latency * 1e3,
        'refined': int(res.refined.sum()),  # xy1 moved to sub-pixel accuracy
        'matches_list': [{'xy0': [float(a), float(b)], 'xy1': [float(c), float(d)],
                          'confidence': float(s), 'refined': bool(r)}
                         for (a, b), (c, d), s, r in
                         zip(res.points0, res.points1, res.confidence, res.refined)],
    }
    (out / 'summary.json').write_text(json.dumps(summary, indent=1))
    print(f'{len(res)} matches ({int(inliers.sum())} RANSAC inliers) between {path0.name} and '
          f'{path1.name} in {res.latency * 1e3:.0f} ms; wrote {out / "matches.png"} and '
          f'{out / "summary.json"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

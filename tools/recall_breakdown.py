# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Where depth-verified recall is lost: the model's ranking, the mutual check, ORB duplicates.

On the held-out real pairs of a TUM-format RGB-D folder (the pairs of ``superglue-eval tum
--split val``), for every keypoint of image 0 with a depth-verified partner, this reads the
model's log-assignment and reports:
- where the first correct partner (reprojection error below 3 px, as the evaluation) ranks in the
  keypoint's row (dustbin left out): how often the row maximum is right, top-k;
- how many correct row maxima the mutual check drops, and how many of those lose to another
  keypoint of image 0 within 3 px (the same corner at another ORB pyramid level);
- the Hamming distance and pyramid-level difference of found and missed partners.

    .venv/bin/python tools/recall_breakdown.py ../shared/data/tum_fr1_rpy [--weights W]

docs/RESULTS.md ("Where recall is lost") quotes its output for the shipped weights.
"""

import argparse

import numpy as np
import torch

from superglue_ros.datasets.rgbd import (load_camera, OCCLUDED, OUT_OF_VIEW, split_by_time,
                                         TumSequence)
from superglue_ros.engine import MatchingEngine
from superglue_ros.evaluation import motion
from superglue_ros.features import DEFAULT_DISTRIBUTION, OrbExtractor
from superglue_ros.weights import default_weights_path

RADIUS = 3.0  # [px] a partner within this of the reprojection is correct (as the evaluation)
TOP_K = (1, 2, 3, 5, 10)


def pair_breakdown(engine: MatchingEngine, pair: motion.MotionPair) -> dict:
    """Return the counts of one pair (see the module docstring)."""
    f0, f1 = pair.features0, pair.features1
    p0, p1 = engine.prepare(f0), engine.prepare(f1)
    with torch.inference_mode():
        pred = engine.model(engine._inputs(p0, p1))
    scores = pred['log_assignment'][0, :-1, :-1].numpy()
    matches0 = pred['matches0'][0].numpy()
    row_max, col_max = scores.argmax(1), scores.argmax(0)
    k0, k1 = f0.keypoints[p0.index], f1.keypoints[p1.index]
    proj0, proj1 = pair.projections0[p0.index], pair.projections1[p1.index]
    gt = pair.gt_matches0[p0.index]
    gone = np.isin(pair.status0[p0.index], (OUT_OF_VIEW, OCCLUDED))
    bits0, bits1 = np.unpackbits(f0.descriptors, axis=1), np.unpackbits(f1.descriptors, axis=1)
    out = {'gt': 0, 'found': 0, 'ranks': [], 'row_correct': 0, 'not_mutual': 0,
           'duplicate': 0, 'hamming_found': [], 'hamming_missed': [], 'levels_found': [],
           'levels_missed': []}
    for r in np.nonzero(gt >= 0)[0]:
        # As the evaluation judges a match: the larger known reprojection error of the two
        # directions (motion.match_accuracy).
        err = np.fmax(np.linalg.norm(k1 - proj0[r], axis=1),
                      np.linalg.norm(k0[r] - proj1, axis=1))
        correct = np.isfinite(err) & (err < RADIUS) & ~gone[r]
        ranked = np.nonzero(correct[np.argsort(-scores[r])])[0]
        out['gt'] += 1
        out['ranks'].append(int(ranked[0]) if len(ranked) else len(correct))
        j = row_max[r]
        if correct[j]:
            out['row_correct'] += 1
            if col_max[j] != r:
                out['not_mutual'] += 1
                out['duplicate'] += bool(np.linalg.norm(k0[col_max[j]] - k0[r]) < RADIUS)
        hit = matches0[r] >= 0 and correct[matches0[r]]
        out['found'] += bool(hit)
        a, b = p0.index[r], gt[r]
        kind = 'found' if hit else 'missed'
        out[f'hamming_{kind}'].append(int(np.count_nonzero(bits0[a] != bits1[b])))
        if len(f0.octave) and len(f1.octave):
            out[f'levels_{kind}'].append(abs(int(f0.octave[a]) - int(f1.octave[b])))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('folder', help='TUM-format RGB-D folder (rgb.txt, depth.txt, groundtruth.txt)')
    p.add_argument('--camera', default='fr1')
    p.add_argument('--weights', default=None, help='weights file (default: shipped)')
    p.add_argument('--max-keypoints', type=int, default=1024)
    p.add_argument('--gaps', type=float, nargs='+', default=[0.1, 0.3, 0.5, 1.0])
    p.add_argument('--stride', type=int, default=2)
    p.add_argument('--distribution', default=DEFAULT_DISTRIBUTION,
                   choices=OrbExtractor.DISTRIBUTIONS,
                   help='ORB keypoint distribution of the front-end')
    args = p.parse_args()
    engine = MatchingEngine.from_weights(args.weights or default_weights_path(), device='cpu')
    seq = TumSequence(args.folder, load_camera(args.camera))
    frames = split_by_time(seq.stamps)[1]
    chosen = motion.select_pairs(seq, frames, args.gaps, args.stride, min_covisibility=0.3)
    extractor = OrbExtractor(args.max_keypoints, distribution=args.distribution)
    pairs = motion.make_pairs(seq, chosen, extractor)
    total: dict = {}
    for pair in pairs:
        for key, value in pair_breakdown(engine, pair).items():
            total[key] = total.get(key, 0 if isinstance(value, int) else []) + value
    n = max(total['gt'], 1)
    ranks = np.asarray(total['ranks'])
    print(f'{len(pairs)} held-out pairs, {total["gt"]} keypoints of image 0 with a '
          f'depth-verified partner; matched correctly: {100 * total["found"] / n:.1f} %')
    print('first correct partner within the top k of its row: ' + ', '.join(
        f'k={k} {100 * np.mean(ranks < k):.1f} %' for k in TOP_K))
    print(f'correct row maxima {total["row_correct"]}: not mutual {total["not_mutual"]}, of '
          f'which the column prefers a keypoint of image 0 within {RADIUS:g} px (same corner, '
          f'another pyramid level) {total["duplicate"]}')
    for kind in ('found', 'missed'):
        ham, lev = np.asarray(total[f'hamming_{kind}']), np.asarray(total[f'levels_{kind}'])
        print(f'{kind}: Hamming distance to the partner, median {np.median(ham):.0f} bits; '
              f'pyramid levels apart >= 2: '
              f'{100 * np.mean(lev >= 2) if len(lev) else float("nan"):.0f} %')


if __name__ == '__main__':
    main()

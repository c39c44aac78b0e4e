# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``superglue-eval``: our matcher against classical ORB matching, measured in one run.

Usage: ``superglue-eval pairs PAIRS --images DIR`` (relative pose) or
``superglue-eval homography [--images DIR ...] [--graf DIR]``; ``--out FILE`` writes JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import platform
import sys
from typing import Dict, Optional, Sequence

import torch

from ..evaluation import baselines
from ..weights import default_weights_path, WeightsError

SHARED_DATA = Path(__file__).resolve().parents[3].parent / 'shared' / 'data'


def table(results: Dict[str, Dict], columns: Sequence[str], title: str) -> str:
    """Fixed-width text table, one row per method."""
    width = max(len(k) for k in results) + 2
    head = f'{"method":<{width}}' + ''.join(f'{c:>17}' for c in columns)
    lines = [title, head, '-' * len(head)]
    for name, row in results.items():
        cells = []
        for c in columns:
            v = row.get(c, float('nan'))
            pct = c.startswith(('auc', 'precision', 'recall', 'matching_score'))
            cells.append(f'{100 * v:>16.1f}%' if pct else f'{v:>17.1f}')
        lines.append(f'{name:<{width}}' + ''.join(cells))
    return '\n'.join(lines)


def _engine(weights: Optional[str], device: str):
    from ..engine import MatchingEngine
    path = Path(weights) if weights else default_weights_path()
    return MatchingEngine.from_weights(path, device=device)


def machine() -> Dict[str, str]:
    """Describe where the figures were measured."""
    return {'platform': platform.platform(), 'processor': platform.processor(),
            'python': platform.python_version(), 'torch': torch.__version__,
            'threads': str(torch.get_num_threads())}


def cmd_pairs(args: argparse.Namespace) -> Dict:
    from ..evaluation.pose import evaluate, parse_pairs
    pairs = parse_pairs(Path(args.pairs))
    if args.max_pairs:
        pairs = pairs[:args.max_pairs]
    engine = _engine(args.weights, args.device)
    res = evaluate(pairs, Path(args.images), baselines.methods(engine), args.max_keypoints)
    print(table(res, ['auc@5', 'auc@10', 'auc@20', 'precision', 'matching_score',
                      'matches_per_pair', 'ms_per_pair'],
                f'Relative pose on {len(pairs)} pairs ({args.pairs}), ORB {args.max_keypoints}'))
    return {'task': 'pairs', 'pairs_file': str(args.pairs), 'keypoints': args.max_keypoints,
            'results': res}


def cmd_homography(args: argparse.Namespace) -> Dict:
    from ..evaluation import homography as hom
    from ..training.pairs import list_images
    images = list_images(args.images) if args.images else \
        hom.default_heldout_images(SHARED_DATA)
    if not images:
        raise SystemExit('superglue-eval homography: no held-out images; pass --images DIR')
    engine = _engine(args.weights, args.device)
    matchers = baselines.methods(engine)
    out = {'task': 'homography', 'images': [str(p) for p in images], 'seed': args.seed,
           'settings': []}
    cols = ['precision', 'recall', 'auc@3px', 'auc@5px', 'auc@10px', 'matches_per_pair',
            'ms_per_pair']
    graf = hom.graf_pair(Path(args.graf)) if args.graf else hom.graf_pair(
        SHARED_DATA / 'opencv_samples')
    for warp in args.corner_warps:
        pairs = hom.synthetic_pairs(images, args.num_pairs, warp, args.seed)
        for n in args.keypoints:
            res = hom.evaluate_pairs(pairs, matchers, n)
            print(table(res, cols, f'\nHeld-out homographies: {len(pairs)} pairs, '
                                   f'{100 * warp:.0f}% corner warp, ORB {n}'))
            out['settings'].append({'corner_warp': warp, 'keypoints': n, 'results': res})
    if graf is not None:
        for n in args.keypoints:
            res = hom.evaluate_pairs([graf], matchers, n)
            print(table(res, cols, f'\nReal pair graf1 -> graf3 (ground-truth H), ORB {n}'))
            out['settings'].append({'pair': 'graf1->graf3', 'keypoints': n, 'results': res})
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog='superglue-eval', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--weights', default=None, help='weights file (default: shipped)')
    p.add_argument('--device', default='auto')
    p.add_argument('--out', default=None, help='write results JSON here')
    sub = p.add_subparsers(dest='task', required=True)
    sp = sub.add_parser('pairs', help='relative pose AUC on a pairs file')
    sp.add_argument('pairs')
    sp.add_argument('--images', required=True, help='directory holding the images')
    sp.add_argument('--max-keypoints', type=int, default=1024)
    sp.add_argument('--max-pairs', type=int, default=0)
    sh = sub.add_parser('homography', help='held-out homographies + graf1 -> graf3')
    sh.add_argument('--images', nargs='*', default=None,
                    help='held-out images (default: ../shared/data/phototourism)')
    sh.add_argument('--graf', default=None, help='folder with graf1.png, graf3.png, H1to3p.xml')
    sh.add_argument('--num-pairs', type=int, default=100)
    sh.add_argument('--keypoints', type=int, nargs='+', default=[512, 1024])
    sh.add_argument('--corner-warps', type=float, nargs='+', default=[0.1, 0.25])
    sh.add_argument('--seed', type=int, default=2026)
    args = p.parse_args(argv)
    try:
        out = cmd_pairs(args) if args.task == 'pairs' else cmd_homography(args)
    except (WeightsError, FileNotFoundError, ValueError) as exc:
        print(f'superglue-eval: {exc}', file=sys.stderr)
        return 2
    out['machine'] = machine()
    out['weights'] = str(args.weights or default_weights_path())
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1))
        print(f'\nwrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

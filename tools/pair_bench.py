# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Training-pair generation speed: milliseconds per pair, one thread, per kind of pair.

Pair generation runs on the CPU and limits training, on a GPU host too (TRAINING.md). This
prints, for homographic, real RGB-D and rendered pairs at 512 and 1024 keypoints, the time per
pair and the part of it spent labelling (ground_truth / depth_ground_truth).

    PYTHONPATH=superglue_ros python3 tools/pair_bench.py [--rgbd TUM_FOLDER] [--images DIR]

Without --rgbd and --images it uses a synthetic RGB-D sequence and the bundled frames, so it
runs in a fresh clone. To compare two versions, run it from each checkout in turn, alternating
(this machine drifts between runs).
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import tempfile
import time

import cv2
import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rgbd', help='TUM-format folder with depth (default: a synthetic one)')
    p.add_argument('--camera', default='fr1', help='intrinsics of --rgbd (fr1|fr2|fr3|YAML)')
    p.add_argument('--images', help='photo folder for homographic pairs (default: bundled)')
    p.add_argument('--pairs', type=int, default=20, help='pairs per kind and size')
    p.add_argument('--sizes', type=int, nargs='+', default=[512, 1024])
    args = p.parse_args(argv)
    cv2.setNumThreads(0)  # as in a loader worker
    import superglue_ros.datasets.motion as motion
    import superglue_ros.datasets.novel_view as novel_view
    import superglue_ros.datasets.pairs as pairs
    from superglue_ros.datasets.rgbd import load_camera, TumSequence
    from superglue_ros.tools.demo import bundled_frames

    labelling = [0.0]

    def timed(fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                labelling[0] += time.perf_counter() - t
        return wrapper

    # Count the labelling wherever the generators look it up.
    pairs.ground_truth = timed(pairs.ground_truth)
    for module in (motion, novel_view):
        module.depth_ground_truth = timed(module.depth_ground_truth)
    with tempfile.TemporaryDirectory() as tmp:
        if args.rgbd:
            seq = TumSequence(args.rgbd, load_camera(args.camera))
        else:
            from superglue_ros.datasets.synthetic_rgbd import write_sequence
            folder = write_sequence(Path(tmp) / 'seq', frames=30)
            seq = TumSequence(str(folder), load_camera(str(folder / 'camera.yaml')))
        photos = pairs.list_images([args.images]) if args.images else bundled_frames()
        frames = np.arange(len(seq))
        print(f'{len(seq)} RGB-D frames ({args.rgbd or "synthetic"}), {len(photos)} photos, '
              f'{args.pairs} pairs per row, 1 thread')
        print(f'{"pairs":<14}{"keypoints":>10}{"ms/pair":>10}{"labelling ms":>14}')
        for n in args.sizes:
            kinds = {
                'homographic': pairs.PairGenerator(photos, pairs.PairConfig(num_keypoints=n)),
                'real': motion.MotionPairGenerator(
                    [seq], [frames], motion.MotionPairConfig(num_keypoints=n)),
                'rendered': novel_view.NovelViewGenerator(
                    [seq], [frames], novel_view.NovelViewConfig(num_keypoints=n)),
            }
            for name, gen in kinds.items():
                rng = np.random.default_rng(0)
                for _ in range(3):  # image cache and first calls
                    gen.make(rng)
                labelling[0] = 0.0
                t = time.perf_counter()
                for _ in range(args.pairs):
                    gen.make(rng)
                total = (time.perf_counter() - t) / args.pairs * 1e3
                print(f'{name:<14}{n:>10}{total:>10.1f}{labelling[0] / args.pairs * 1e3:>14.1f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Homography benchmark: held-out real images under known warps, plus real graf1 -> graf3."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from .baselines import MatchFn, run_matcher
from ..datasets.homography import (PhotoConfig, photometric, random_crop, sample_homography,
                                   warp_points, WarpConfig)
from ..datasets.pairs import ground_truth, list_images, load_gray
from ..features import OrbExtractor
from ..geometry import error_auc, verify_homography

WIDTH, HEIGHT = 640, 480


@dataclass
class HomographyPair:
    """Two grayscale images and the homography mapping image0 pixels to image1 pixels."""

    name: str
    image0: np.ndarray
    image1: np.ndarray
    homography: np.ndarray


def synthetic_pairs(images: Sequence[Path], count: int, corner_warp: float, seed: int
                    ) -> List[HomographyPair]:
    """Fixed-seed pairs: a 640x480 crop of each image and its perspective warp.

    ``corner_warp`` is the maximum displacement of each corner as a fraction of the image
    size (no extra rotation/scale), the setting the classical baselines are quoted at. Both
    images get independent photometric changes (brightness, contrast, blur, noise), as two
    real exposures would.
    """
    rng = np.random.default_rng(seed)
    warp = WarpConfig(perspective=corner_warp, rotation_deg=0.0, scale=(1.0, 1.0),
                      translation=0.0)
    pairs = []
    for i in range(count):
        path = images[i % len(images)]
        base = random_crop(load_gray(path), WIDTH, HEIGHT, rng)
        hom = sample_homography(WIDTH, HEIGHT, rng, warp, 1.0)
        warped = cv2.warpPerspective(base, hom, (WIDTH, HEIGHT))
        img0 = photometric(base, rng, PhotoConfig())
        img1 = photometric(warped, rng, PhotoConfig())
        pairs.append(HomographyPair(f'{path.stem}#{i}', img0, img1, hom))
    return pairs


def graf_pair(folder: Path) -> Optional[HomographyPair]:
    """Load the real Oxford graffiti pair 1 -> 3 resized to 640x480, with its homography scaled."""
    p0, p1, ph = folder / 'graf1.png', folder / 'graf3.png', folder / 'H1to3p.xml'
    if not (p0.exists() and p1.exists() and ph.exists()):
        return None
    fs = cv2.FileStorage(str(ph), cv2.FILE_STORAGE_READ)
    hom = fs.getFirstTopLevelNode().mat()
    fs.release()
    img0, img1 = load_gray(p0), load_gray(p1)
    s0 = np.diag([WIDTH / img0.shape[1], HEIGHT / img0.shape[0], 1.0])
    s1 = np.diag([WIDTH / img1.shape[1], HEIGHT / img1.shape[0], 1.0])
    hom = s1 @ hom @ np.linalg.inv(s0)
    return HomographyPair('graf1->graf3', cv2.resize(img0, (WIDTH, HEIGHT), cv2.INTER_AREA),
                          cv2.resize(img1, (WIDTH, HEIGHT), cv2.INTER_AREA), hom)


def corner_error(h_est: Optional[np.ndarray], h_gt: np.ndarray) -> float:
    """Mean distance [px] of the four image corners mapped by the estimate vs ground truth."""
    if h_est is None:
        return float('inf')
    corners = np.array([[0, 0], [WIDTH - 1, 0], [WIDTH - 1, HEIGHT - 1], [0, HEIGHT - 1]],
                       np.float64)
    return float(np.linalg.norm(warp_points(corners, h_est) - warp_points(corners, h_gt),
                                axis=1).mean())


def evaluate_pairs(pairs: Sequence[HomographyPair], matchers: Dict[str, MatchFn],
                   num_keypoints: int, px: float = 3.0) -> Dict[str, Dict[str, float]]:
    """Precision/recall at ``px``, corner-error AUC@3/5/10 px, matches and ms per pair."""
    extractor = OrbExtractor(num_keypoints)
    feats = [(extractor(p.image0), extractor(p.image1)) for p in pairs]
    # Ground truth depends on the pair only: computed once, shared by every matcher.
    gts = [ground_truth(f0.keypoints, f1.keypoints, p.homography, px, px)['gt_matches0']
           for p, (f0, f1) in zip(pairs, feats)]
    results = {}
    for name, fn in matchers.items():
        tot = {'pred': 0, 'correct': 0, 'gt': 0, 'hit': 0}
        errors, times, counts = [], [], []
        for p, (f0, f1), gt in zip(pairs, feats, gts):
            m = run_matcher(fn, f0, f1, p.image0, p.image1)  # a Refined matcher refines
            i0, i1 = m.index0, m.index1
            times.append(m.seconds)
            counts.append(len(i0))
            proj = warp_points(f0.keypoints[i0], p.homography)
            err = np.linalg.norm(proj - f1.keypoints[i1], axis=1)
            tot['pred'] += len(i0)
            tot['correct'] += int((err < px).sum())
            tot['gt'] += int((gt >= 0).sum())
            tot['hit'] += int((gt[i0] == i1).sum()) if len(i0) else 0
            h_est, _ = verify_homography(m.points0, m.points1, px)
            errors.append(corner_error(h_est, p.homography))
        aucs = error_auc(errors, (3, 5, 10))
        results[name] = {
            'precision': tot['correct'] / max(tot['pred'], 1),
            'recall': tot['hit'] / max(tot['gt'], 1),
            'auc@3px': aucs[0], 'auc@5px': aucs[1], 'auc@10px': aucs[2],
            'matches_per_pair': float(np.mean(counts)) if counts else 0.0,
            'ms_per_pair': 1e3 * float(np.median(times)) if times else 0.0,
            'pairs': len(pairs),
        }
    return results


def default_heldout_images(shared: Path) -> List[Path]:
    """Held-out photos never used in training (the PhotoTourism set in ../shared/data)."""
    return list_images([shared / 'phototourism'])

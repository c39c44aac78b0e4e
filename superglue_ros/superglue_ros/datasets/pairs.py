# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Training pairs: warp a real image, detect ORB on both, derive ground truth from the warp."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from .assignment import candidate_pairs, IGNORE, mutual_matches, neighbours, UNMATCHED
from .homography import (PhotoConfig, photometric, random_crop, sample_homography,
                         warp_points, WarpConfig)
from ..features import DEFAULT_DISTRIBUTION, Features, OrbExtractor, to_gray

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.ppm', '.pgm')


@dataclass
class PairConfig:
    """How training pairs are made."""

    width: int = 640
    height: int = 480
    num_keypoints: int = 512  # fixed per image; short sets are padded with dustbin points
    distribution: str = DEFAULT_DISTRIBUTION  # ORB keypoint distribution (OrbExtractor)
    match_radius: float = 3.0  # reprojection error [px] below which mutual NNs match
    unmatched_radius: float = 5.0  # no keypoint within this [px] -> dustbin; between: ignored
    warp: WarpConfig = field(default_factory=WarpConfig)
    photo: PhotoConfig = field(default_factory=PhotoConfig)


def list_images(paths: Sequence[str]) -> List[Path]:
    """Image files in the given files/directories (recursive), sorted."""
    out: List[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += [f for f in sorted(p.rglob('*')) if f.suffix.lower() in IMAGE_SUFFIXES]
        elif p.suffix.lower() in IMAGE_SUFFIXES:
            out.append(p)
    return out


def load_gray(path: Path) -> np.ndarray:
    """Read an image as uint8 grayscale; clear error when unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f'cannot read training image {path}')
    return to_gray(img)


def ground_truth(kpts0: np.ndarray, kpts1: np.ndarray, homography: np.ndarray,
                 match_radius: float, unmatched_radius: float,
                 valid0: Optional[np.ndarray] = None,
                 valid1: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """Ground-truth assignment from a known homography (image0 -> image1).

    gt_matches0[i] = j when i and j are mutual nearest neighbours after warping with a
    reprojection error below match_radius; -1 (dustbin) when no keypoint of the other image
    lies within unmatched_radius (both directions); -2 (ignored) otherwise. ``valid`` masks
    mark padding keypoints, which are always dustbin and never matched.
    """
    m, n = len(kpts0), len(kpts1)
    if m == 0 or n == 0:
        return {'gt_matches0': np.full(m, UNMATCHED, np.int64),
                'gt_matches1': np.full(n, UNMATCHED, np.int64)}
    valid0 = np.ones(m, bool) if valid0 is None else valid0
    valid1 = np.ones(n, bool) if valid1 is None else valid1
    proj0 = warp_points(kpts0, homography)  # image0 keypoints in image1
    proj1 = warp_points(kpts1, np.linalg.inv(homography))  # image1 keypoints in image0
    k0, k1 = kpts0.astype(np.float64), kpts1.astype(np.float64)
    i, j, d01, d10 = candidate_pairs(proj0, k1, k0, proj1, max(match_radius, unmatched_radius))
    # Symmetric reprojection error, so both images' scales count.
    gt0, gt1 = mutual_matches(i, j, np.maximum(d01, d10), valid0, valid1, match_radius)
    near0, near1 = neighbours(i, j, d01, d10, valid0, valid1, unmatched_radius)
    ambiguous0 = (gt0 < 0) & near0 & valid0
    ambiguous1 = (gt1 < 0) & near1 & valid1
    gt0[ambiguous0] = IGNORE
    gt1[ambiguous1] = IGNORE
    return {'gt_matches0': gt0, 'gt_matches1': gt1}


def sample_features(f0: Features, f1: Features, valid0: np.ndarray, valid1: np.ndarray
                    ) -> Dict[str, np.ndarray]:
    """Collect the per-image arrays of a training sample (keypoints, ORB bytes, geometry)."""
    return {
        'keypoints0': f0.keypoints, 'keypoints1': f1.keypoints,
        'scores0': f0.scores, 'scores1': f1.scores,
        'orb0': f0.descriptors, 'orb1': f1.descriptors,
        'angles0': f0.angle, 'angles1': f1.angle, 'sizes0': f0.size, 'sizes1': f1.size,
        'valid0': valid0, 'valid1': valid1,
    }


def pad_features(f: Features, n: int, rng: np.random.Generator
                 ) -> tuple[Features, np.ndarray]:
    """Pad to exactly n keypoints with random dustbin points (random bits, low scores)."""
    k = len(f)
    valid = np.zeros(n, bool)
    valid[:min(k, n)] = True
    if k >= n:
        return f.select(np.arange(n)), valid
    w, h = f.image_size
    extra = n - k
    kpts = np.concatenate([f.keypoints, rng.uniform([0, 0], [w - 1, h - 1], (extra, 2))
                           .astype(np.float32)])
    low = float(f.scores.min()) if k else 1e-4
    scores = np.concatenate([f.scores, np.full(extra, low * 0.5, np.float32)])
    desc = np.concatenate([f.descriptors, rng.integers(0, 256, (extra, f.descriptors.shape[1]),
                                                       dtype=np.uint8)])
    # ORB geometry of the padding: random orientation, a random pyramid level's size.
    angle = np.concatenate([f.angle if len(f.angle) == k else np.full(k, -1.0, np.float32),
                            rng.uniform(0, 360, extra).astype(np.float32)])
    size = np.concatenate([f.size if len(f.size) == k else np.full(k, 31.0, np.float32),
                           (31.0 * 1.2 ** rng.integers(0, 8, extra)).astype(np.float32)])
    return Features(kpts, scores, desc, f.descriptor_type, f.image_size, size, angle,
                    np.zeros(n, np.int32)), valid


class PairGenerator:
    """Makes homographic ORB training pairs from a list of real images."""

    def __init__(self, images: Sequence[Path], conf: PairConfig = PairConfig(),
                 cache_images: bool = True):
        if not images:
            raise ValueError('no training images given')
        self.images = list(images)
        self.conf = conf
        self.extractor = OrbExtractor(conf.num_keypoints, distribution=conf.distribution)
        self._cache: Dict[int, np.ndarray] = {}
        self._cache_images = cache_images

    def _image(self, index: int) -> np.ndarray:
        if index not in self._cache:
            img = load_gray(self.images[index])
            if not self._cache_images:
                return img
            self._cache[index] = img
        return self._cache[index]

    def make(self, rng: np.random.Generator, strength: float = 1.0,
             image_index: Optional[int] = None) -> Dict[str, np.ndarray]:
        """One pair: keypoints, scores, ORB bytes, validity and ground truth for both images."""
        c = self.conf
        idx = int(rng.integers(len(self.images))) if image_index is None else image_index
        base = random_crop(self._image(idx), c.width, c.height, rng)
        hom = sample_homography(c.width, c.height, rng, c.warp, strength)
        warped = cv2.warpPerspective(base, hom, (c.width, c.height), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        img0 = photometric(base, rng, c.photo, strength)
        img1 = photometric(warped, rng, c.photo, strength)
        f0, valid0 = pad_features(self.extractor(img0), c.num_keypoints, rng)
        f1, valid1 = pad_features(self.extractor(img1), c.num_keypoints, rng)
        gt = ground_truth(f0.keypoints, f1.keypoints, hom, c.match_radius, c.unmatched_radius,
                          valid0, valid1)
        return {
            **sample_features(f0, f1, valid0, valid1),
            'homography': hom, 'image_index': np.int64(idx),
            'image_size': np.array([c.width, c.height], np.float32),
            **gt,
        }

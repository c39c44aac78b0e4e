# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Training and validation pairs from real camera motion (TUM-format RGB-D sequences).

Two frames a chosen time gap apart, both directions; each image gets photometric changes, the
pair may be mirrored (both images, so the geometry stays real), and the second image gets a
small extra in-plane rotation and scale. Keypoints are detected on the augmented images; the
ground truth is computed in the original frames from depth and the (refined) ground-truth pose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from .homography import PhotoConfig, photometric, warp_points
from .pairs import pad_features, sample_features
from .rgbd import Camera, depth_ground_truth, refine_relative_pose, TumSequence
from ..classical import nn_mutual
from ..features import DEFAULT_DISTRIBUTION, Features, OrbExtractor


@dataclass
class MotionPairConfig:
    """How real-motion pairs are made."""

    num_keypoints: int = 1024  # fixed per image; short sets are padded with dustbin points
    min_gap: float = 0.1  # [s] between the two frames
    max_gap: float = 1.5
    min_matches: int = 25  # resample pairs with fewer ground-truth matches (no overlap)
    match_radius: float = 3.0
    unmatched_radius: float = 5.0
    refine_pose: bool = True  # correct mocap pose error on tentative matches (see rgbd)
    flip: float = 0.5  # probability of mirroring both images
    rotation_deg: float = 10.0  # extra in-plane rotation of image 1 (uniform +-)
    scale: Tuple[float, float] = (0.9, 1.1)  # extra scale of image 1
    photo: PhotoConfig = field(default_factory=PhotoConfig)
    distribution: str = DEFAULT_DISTRIBUTION  # ORB keypoint distribution (OrbExtractor)


def augmentation(width: int, height: int, rng: np.random.Generator, flip: bool,
                 rotation_deg: float, scale: Tuple[float, float]) -> np.ndarray:
    """3x3 homography: optional mirror, then rotation and scale about the image centre."""
    m = np.eye(3)
    if flip:
        m = np.array([[-1, 0, width - 1], [0, 1, 0], [0, 0, 1]], np.float64)
    a = np.deg2rad(rng.uniform(-1, 1) * rotation_deg)
    s = np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1])))
    rot = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), np.degrees(a), s)
    return np.vstack([rot, [0, 0, 1]]) @ m


def refined_ground_truth(f0: Features, f1: Features, kpts0: np.ndarray, kpts1: np.ndarray,
                         depth0: np.ndarray, depth1: np.ndarray, camera: Camera,
                         t_1_0: np.ndarray, refine: bool = True, match_radius: float = 3.0,
                         unmatched_radius: float = 5.0, valid0: Optional[np.ndarray] = None,
                         valid1: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """Depth ground truth on the mocap pose refined on ORB NN + mutual matches (see rgbd).

    ``kpts0/1`` are the keypoints of ``f0/f1`` in the original (unaugmented) frames; padding
    (``valid`` False) takes no part in the refinement. Besides ``depth_ground_truth``'s keys,
    ``pose`` is the relative pose the labels come from (refined, or the mocap one).
    """
    valid0 = np.ones(len(f0), bool) if valid0 is None else valid0
    valid1 = np.ones(len(f1), bool) if valid1 is None else valid1
    if refine:
        v0, v1 = np.nonzero(valid0)[0], np.nonzero(valid1)[0]
        a, b, _ = nn_mutual(f0.select(v0), f1.select(v1))
        t_1_0, _ = refine_relative_pose(kpts0[v0[a]], kpts1[v1[b]], depth0, camera, t_1_0)
    return {**depth_ground_truth(kpts0, kpts1, depth0, depth1, camera, t_1_0, match_radius,
                                 unmatched_radius, valid0, valid1), 'pose': t_1_0}


class MotionPairGenerator:
    """Makes ORB training/validation pairs from frames of TUM-format RGB-D sequences."""

    def __init__(self, sequences: Sequence[TumSequence], frames: Sequence[np.ndarray],
                 conf: MotionPairConfig = MotionPairConfig()):
        if not sequences:
            raise ValueError('no RGB-D sequences given')
        self.sequences = list(sequences)
        self.frames = [np.asarray(f) for f in frames]
        self.conf = conf
        self.extractor = OrbExtractor(conf.num_keypoints, distribution=conf.distribution)
        self._cache: Dict[Tuple[int, int], Tuple[np.ndarray, np.ndarray]] = {}
        self._candidates = [self._pair_candidates(s, f) for s, f in zip(sequences, frames)]
        if not any(len(c) for c in self._candidates):
            raise ValueError('no frame pairs within the gap range in the given frames')

    def _pair_candidates(self, seq: TumSequence, frames: np.ndarray) -> np.ndarray:
        """All ordered (i, j) of the given frames whose gap is in [min_gap, max_gap]."""
        t = seq.stamps[frames]
        gap = np.abs(t[:, None] - t[None])
        i, j = np.nonzero((gap >= self.conf.min_gap - 1e-3) & (gap <= self.conf.max_gap))
        ok = np.array([seq.frames[k].depth is not None for k in frames], bool)
        keep = ok[i] & ok[j]
        return np.stack([frames[i[keep]], frames[j[keep]]], 1)

    def _frame(self, s: int, i: int) -> Tuple[np.ndarray, np.ndarray]:
        key = (s, i)
        if key not in self._cache:
            seq = self.sequences[s]
            self._cache[key] = (seq.image(i), seq.depth(i))
        return self._cache[key]

    def make(self, rng: np.random.Generator, strength: float = 1.0,
             pair: Optional[Tuple[int, int, int]] = None, augment: bool = True,
             tries: int = 8) -> Dict[str, np.ndarray]:
        """One pair with keypoints, ORB bytes, geometry and ground truth for both images.

        A random pair with fewer than ``min_matches`` ground-truth matches is redrawn (up to
        ``tries`` times): frames that do not overlap teach only the dustbin.
        """
        if pair is not None:
            return self._make(rng, strength, *pair, augment)
        drawable = [s for s, c in enumerate(self._candidates) if len(c)]
        for _ in range(tries):
            s = drawable[int(rng.integers(len(drawable)))]
            i, j = self._candidates[s][int(rng.integers(len(self._candidates[s])))]
            out = self._make(rng, strength, s, int(i), int(j), augment)
            if int((out['gt_matches0'] >= 0).sum()) >= self.conf.min_matches:
                break
        return out

    def _make(self, rng: np.random.Generator, strength: float, s: int, i: int, j: int,
              augment: bool) -> Dict[str, np.ndarray]:
        c, seq = self.conf, self.sequences[s]
        (img0, depth0), (img1, depth1) = self._frame(s, i), self._frame(s, j)
        h, w = img0.shape
        if augment:
            flip = bool(rng.random() < c.flip)
            aug0 = augmentation(w, h, rng, flip, 0.0, (1.0, 1.0))
            aug1 = augmentation(w, h, rng, flip, c.rotation_deg * strength, c.scale)
            img0 = photometric(cv2.warpPerspective(img0, aug0, (w, h)), rng, c.photo, strength)
            img1 = photometric(cv2.warpPerspective(img1, aug1, (w, h)), rng, c.photo, strength)
        else:
            aug0 = aug1 = np.eye(3)
        f0, valid0 = pad_features(self.extractor(img0), c.num_keypoints, rng)
        f1, valid1 = pad_features(self.extractor(img1), c.num_keypoints, rng)
        # Ground truth lives in the original frames.
        k0 = warp_points(f0.keypoints, np.linalg.inv(aug0))
        k1 = warp_points(f1.keypoints, np.linalg.inv(aug1))
        gt = refined_ground_truth(f0, f1, k0, k1, depth0, depth1, seq.camera,
                                  seq.relative_pose(i, j), c.refine_pose, c.match_radius,
                                  c.unmatched_radius, valid0, valid1)
        return depth_pair_sample(f0, f1, valid0, valid1, (w, h), (s, i, j), k0, k1, gt)


def depth_pair_sample(f0: Features, f1: Features, valid0: np.ndarray, valid1: np.ndarray,
                      size: Tuple[int, int], pair: Tuple[int, int, int], kpts0: np.ndarray,
                      kpts1: np.ndarray, gt: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """One training/validation sample of a pair with depth ground truth.

    ``kpts0/1`` are the keypoints in the original (unaugmented) frames, where the ground
    truth lives; they, the projections and the statuses serve the evaluation.
    """
    return {
        **sample_features(f0, f1, valid0, valid1),
        'image_size': np.array(size, np.float32),
        'pair': np.array(pair, np.int64),
        'gt_matches0': gt['gt_matches0'], 'gt_matches1': gt['gt_matches1'],
        'original_keypoints0': kpts0, 'original_keypoints1': kpts1,
        'projections0': gt['projections0'], 'projections1': gt['projections1'],
        'status0': gt['status0'],
    }

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Classical matching on the same features: brute-force NN + mutual check, NN + ratio test.

Used as baselines by evaluation and training, and as a matcher mode of its own.
"""

from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np

from .features import Features


def _norm(f: Features) -> int:
    return cv2.NORM_HAMMING if f.descriptors.dtype == np.uint8 else cv2.NORM_L2


def nn_mutual(f0: Features, f1: Features) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brute-force nearest neighbours kept when mutual; returns (idx0, idx1, score)."""
    if len(f0) == 0 or len(f1) == 0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32)
    bf = cv2.BFMatcher(_norm(f0), crossCheck=True)
    ms = bf.match(f0.descriptors, f1.descriptors)
    i0 = np.array([m.queryIdx for m in ms], int)
    i1 = np.array([m.trainIdx for m in ms], int)
    dist = np.array([m.distance for m in ms], np.float32)
    return i0, i1, 1.0 - dist / (256.0 if _norm(f0) == cv2.NORM_HAMMING else max(dist.max(), 1))


def nn_ratio(f0: Features, f1: Features, ratio: float = 0.8
             ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lowe's ratio test on the two nearest neighbours; returns (idx0, idx1, score)."""
    if len(f0) < 2 or len(f1) < 2:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32)
    bf = cv2.BFMatcher(_norm(f0))
    knn = bf.knnMatch(f0.descriptors, f1.descriptors, k=2)
    keep = [(a.queryIdx, a.trainIdx, a.distance / max(b.distance, 1e-9)) for a, b in
            (k for k in knn if len(k) == 2) if a.distance < ratio * b.distance]
    if not keep:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32)
    arr = np.array(keep)
    return arr[:, 0].astype(int), arr[:, 1].astype(int), (1 - arr[:, 2]).astype(np.float32)

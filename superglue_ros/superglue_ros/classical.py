# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Classical matching on the same features: brute-force NN + mutual check, NN + ratio test.

Used as baselines by evaluation and training, and as matcher modes of the node of their own
(``ClassicalEngine``, parameter ``matcher: orb_nn``).
"""

from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Optional, Tuple

import cv2
import numpy as np

from .engine import MatchResult
from .features import Features
from .inputs import check_finite, DESCRIPTOR_MISMATCH, InputError


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


def nn_ratio_mutual(f0: Features, f1: Features, ratio: float = 0.8
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest neighbours that pass Lowe's ratio test and are mutual; (idx0, idx1, score).

    The classical matcher of ORB-SLAM-style front-ends: the ratio test removes ambiguous
    matches on repeated texture, the mutual check the many-to-one ones. Score: 1 - Hamming
    distance / 256 (ORB), 1 - distance / largest kept distance (float descriptors).
    """
    empty = np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32)
    if len(f0) < 2 or len(f1) < 2:
        return empty
    bf = cv2.BFMatcher(_norm(f0))
    forward = bf.knnMatch(f0.descriptors, f1.descriptors, k=2)
    backward = bf.match(f1.descriptors, f0.descriptors)
    best0 = np.full(len(f1), -1, int)
    for m in backward:
        best0[m.queryIdx] = m.trainIdx
    keep = [(a.queryIdx, a.trainIdx, a.distance) for a, b in
            (k for k in forward if len(k) == 2)
            if a.distance < ratio * b.distance and best0[a.trainIdx] == a.queryIdx]
    if not keep:
        return empty
    arr = np.array(keep, np.float64)
    scale = 256.0 if _norm(f0) == cv2.NORM_HAMMING else max(arr[:, 2].max(), 1e-9)
    return (arr[:, 0].astype(int), arr[:, 1].astype(int),
            (1.0 - arr[:, 2] / scale).astype(np.float32))


# Matcher modes of the node besides the learned model (parameter ``matcher``).
CLASSICAL_MATCHERS = ('orb_nn',)


@dataclass
class PreparedKeyframe:
    """One keyframe for ClassicalEngine: the kept keypoints and their original indices."""

    features: Features  # all keypoints, as received
    selected: Features  # the strongest max_keypoints of them
    index: np.ndarray  # [N] indices of ``selected`` into ``features``


class ClassicalEngine:
    """Brute-force descriptor matching behind the interface the matcher node uses.

    The same node, messages, verification and statistics as the learned matcher, so a replay
    compares the two on equal terms. ``orb_nn``: Hamming nearest neighbour, ratio test and
    mutual check on ORB descriptors; runs on the CPU (OpenCV), whatever the device parameter.
    """

    descriptor_type = 'orb'
    input_dim = 256  # ORB descriptor bits, as published
    fp16 = False

    def __init__(self, mode: str = 'orb_nn', max_keypoints: int = 0,
                 match_threshold: float = 0.0, ratio: float = 0.8, device: str = 'auto',
                 fp16: bool = False):
        if mode not in CLASSICAL_MATCHERS:
            raise ValueError(f'classical matcher must be one of {CLASSICAL_MATCHERS}, '
                             f'got {mode!r}')
        self.mode = mode
        self.max_keypoints = int(max_keypoints)
        self.ratio = float(ratio)
        self._threshold = 0.0
        self.match_threshold = match_threshold
        self.device = 'cpu'
        requested = (device or 'auto').strip().lower()
        self.device_warning = (f'device {requested!r} requested: matcher {mode} runs on the cpu'
                               if requested.startswith('cuda') else None)
        self.fp16_ignored = bool(fp16)
        self.metadata = {'path': f'none (matcher {mode})', 'model': mode,
                         'ratio': self.ratio}

    @property
    def match_threshold(self) -> float:
        """Minimum score (1 - Hamming distance / 256) a match needs."""
        return self._threshold

    @match_threshold.setter
    def match_threshold(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f'match_threshold must be in [0, 1], got {value}')
        self._threshold = float(value)

    def check_descriptors(self, descriptor_type: str, dim: Optional[int] = None) -> None:
        """Raise InputError(DESCRIPTOR_MISMATCH) unless these are ORB descriptors of 256 bits."""
        if descriptor_type != self.descriptor_type:
            raise InputError(DESCRIPTOR_MISMATCH,
                             f'descriptor type {descriptor_type!r}: matcher {self.mode} '
                             f'expects {self.descriptor_type!r}')
        if dim is not None and dim != self.input_dim:
            raise InputError(DESCRIPTOR_MISMATCH,
                             f'descriptor_dim {dim}: matcher {self.mode} expects '
                             f'{self.input_dim} bits')

    def prepare(self, features: Features) -> PreparedKeyframe:
        """Validate and keep the strongest max_keypoints (as MatchingEngine.prepare does)."""
        check_finite('keypoints', features.keypoints)
        check_finite('scores', features.scores)
        raw = np.asarray(features.descriptors)
        if len(features):
            dim = raw.shape[1] * 8 if raw.ndim == 2 and raw.dtype == np.uint8 else None
            if dim is None:
                raise InputError(DESCRIPTOR_MISMATCH, f'matcher {self.mode} needs ORB '
                                 f'descriptors as [N x 32] bytes, got {raw.dtype} {raw.shape}')
            self.check_descriptors(features.descriptor_type, dim)
        else:
            self.check_descriptors(features.descriptor_type)
        selected, index = features.top_k(self.max_keypoints)
        return PreparedKeyframe(features, selected, index)

    def match_prepared(self, p0: PreparedKeyframe, p1: PreparedKeyframe) -> MatchResult:
        """Match two prepared keyframes; indices refer to the original keypoint arrays."""
        start = time.perf_counter()
        m0, m1, score = nn_ratio_mutual(p0.selected, p1.selected, self.ratio)
        keep = score >= self._threshold
        idx0, idx1 = p0.index[m0[keep]], p1.index[m1[keep]]
        return MatchResult(
            index0=idx0.astype(np.int64), index1=idx1.astype(np.int64),
            points0=p0.features.keypoints[idx0].astype(np.float32).reshape(-1, 2),
            points1=p1.features.keypoints[idx1].astype(np.float32).reshape(-1, 2),
            confidence=score[keep].astype(np.float32), latency=time.perf_counter() - start)

    def match(self, f0: Features, f1: Features) -> MatchResult:
        """Prepare and match two feature sets."""
        return self.match_prepared(self.prepare(f0), self.prepare(f1))

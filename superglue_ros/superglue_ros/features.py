# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Keypoint sets and the OpenCV front-ends that produce them (ORB first, SIFT too)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np


@dataclass
class Features:
    """Keypoints and raw descriptors of one image.

    keypoints: [N x 2] float32 pixels (x, y); scores: [N] float32;
    descriptors: [N x 32] uint8 for ORB, [N x C] float32 otherwise;
    image_size: (width, height); size/angle/octave: ORB attributes (may be empty).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    descriptors: np.ndarray
    descriptor_type: str
    image_size: Tuple[int, int]
    size: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    angle: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    octave: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    @classmethod
    def from_opencv(cls, keypoints: Sequence, descriptors: Optional[np.ndarray],
                    image_size: Tuple[int, int], descriptor_type: str = 'orb') -> 'Features':
        """Build from OpenCV keypoints (``cv2.KeyPoint``) and their descriptors.

        For a front-end of one's own, e.g. the keypoints of an ORB-SLAM-style extractor:
        ``image_size`` is (width, height); the response becomes the score, and size, angle and
        octave are kept. ValueError naming the argument when the two do not fit together.
        """
        keypoints = list(keypoints)
        if descriptors is not None and len(keypoints):
            descriptors = np.asarray(descriptors)
            if len(descriptors) != len(keypoints):
                raise ValueError(f'descriptors: {len(descriptors)} rows for {len(keypoints)} '
                                 f'keypoints; pass the descriptors OpenCV computed for exactly '
                                 f'these keypoints (compute() may drop some at the border)')
            if descriptor_type == 'orb' and (descriptors.dtype != np.uint8
                                             or descriptors.ndim != 2
                                             or descriptors.shape[1] != 32):
                raise ValueError(f'descriptors: ORB descriptors are [N x 32] uint8, got '
                                 f'{descriptors.dtype} {list(descriptors.shape)}')
        width, height = (int(v) for v in image_size)
        return _from_cv_keypoints(keypoints, descriptors, descriptor_type, (width, height))

    def select(self, index: np.ndarray) -> 'Features':
        """Subset of keypoints (index array or boolean mask)."""
        def pick(a: np.ndarray) -> np.ndarray:
            return a[index] if a.shape[0] == len(self) else a
        return Features(self.keypoints[index], self.scores[index], self.descriptors[index],
                        self.descriptor_type, self.image_size, pick(self.size),
                        pick(self.angle), pick(self.octave))

    def top_k(self, k: int) -> Tuple['Features', np.ndarray]:
        """Keep the k highest-scoring keypoints; returns them and their original indices."""
        if k <= 0 or len(self) <= k:
            return self, np.arange(len(self))
        index = np.sort(np.argsort(-self.scores, kind='stable')[:k])
        return self.select(index), index


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any 2-D or HxWx{1,3,4} uint8/uint16 image (BGR order) -> uint8 grayscale."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def _positions(kps) -> np.ndarray:
    """[N, 2] float32 pixel positions of OpenCV keypoints, converted by OpenCV in one call."""
    if not len(kps):
        return np.zeros((0, 2), np.float32)
    return cv2.KeyPoint_convert(kps).reshape(-1, 2).astype(np.float32, copy=False)


def _cell_keys(points: np.ndarray, cell: int) -> np.ndarray:
    """One integer per cell x cell pixel cell that holds each point (float64 floor division)."""
    cx, cy = (np.floor_divide(points.astype(np.float64), cell).astype(np.int64)).T
    return cx * (1 << 32) + cy


def _from_cv_keypoints(kps, desc: Optional[np.ndarray], descriptor_type: str,
                       image_size: Tuple[int, int]) -> Features:
    if not kps or desc is None:
        width = 32 if descriptor_type == 'orb' else 128
        dtype = np.uint8 if descriptor_type == 'orb' else np.float32
        empty = np.zeros(0, np.float32)
        return Features(np.zeros((0, 2), np.float32), empty, np.zeros((0, width), dtype),
                        descriptor_type, image_size, empty, empty, np.zeros(0, np.int32))
    return Features(
        keypoints=_positions(kps),
        scores=np.array([k.response for k in kps], np.float32),
        descriptors=desc,
        descriptor_type=descriptor_type,
        image_size=image_size,
        size=np.array([k.size for k in kps], np.float32),
        angle=np.array([k.angle for k in kps], np.float32),
        octave=np.array([k.octave for k in kps], np.int32),
    )


def spread_by_cells(points: np.ndarray, responses: np.ndarray, image_size: Tuple[int, int],
                    cell: int, k: int) -> np.ndarray:
    """Pick k keypoints spread over a grid of cell x cell pixel cells; returns indices.

    Round robin over cells: the strongest keypoint of every cell first, then the second
    strongest of every cell, and so on (ties broken by response). Textured regions can no
    longer take the whole budget, which is what ORB-SLAM's quadtree distribution achieves.
    """
    n = len(points)
    if n <= k:
        return np.arange(n)
    cols = max(1, int(np.ceil(image_size[0] / cell)))
    cx = np.clip((points[:, 0] // cell).astype(np.int64), 0, cols - 1)
    cy = np.maximum((points[:, 1] // cell).astype(np.int64), 0)
    cell_id = cy * cols + cx
    order = np.lexsort((-responses, cell_id))  # by cell, strongest first inside a cell
    sorted_cells = cell_id[order]
    starts = np.r_[0, np.nonzero(np.diff(sorted_cells))[0] + 1]
    rank = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    pick = np.lexsort((-responses[order], rank))[:k]
    return np.sort(order[pick])


def suppress_duplicates(points: np.ndarray, responses: np.ndarray, radius: float) -> np.ndarray:
    """Return the indices (ascending) of the points that greedy suppression keeps.

    Strongest first, each kept point removes the weaker points within ``radius`` pixels: one
    keypoint per corner where ORB found it at several pyramid levels.
    """
    from scipy.spatial import cKDTree  # scipy is a dependency; only this path needs it
    n = len(points)
    if n < 2:
        return np.arange(n)
    rank = np.empty(n, np.int64)
    rank[np.argsort(-np.asarray(responses), kind='stable')] = np.arange(n)
    close = cKDTree(np.asarray(points, np.float64)).query_pairs(radius, output_type='ndarray')
    first = rank[close[:, 0]] < rank[close[:, 1]]
    stronger = np.where(first, close[:, 0], close[:, 1])
    weaker = np.where(first, close[:, 1], close[:, 0])
    # Pairs in the order of their stronger point: whether that point survives is settled
    # before its pairs come up, since only stronger points can remove it.
    order = np.argsort(rank[stronger], kind='stable')
    removed = np.zeros(n, bool)
    for s, w in zip(stronger[order].tolist(), weaker[order].tolist()):
        if not removed[s]:
            removed[w] = True
    return np.nonzero(~removed)[0]


DEFAULT_DISTRIBUTION = 'grid'  # of OrbExtractor, the front-end node and ImageMatcher


class OrbExtractor:
    """ORB keypoints + descriptors with OpenCV.

    ``distribution='grid'`` (ORB-SLAM style, the default): FAST at ``fast_threshold`` with
    4x more candidates than needed; cells of ``cell_size`` pixels that find nothing take the
    candidates of a lower ``min_fast_threshold``; then a round robin over cells keeps
    ``max_keypoints``, so low-texture regions still get keypoints. ``'grid_distinct'``: the
    same, but one keypoint per corner: ORB finds a corner again at several pyramid levels
    (three quarters of the grid's 1024 keypoints have another within 2 px on TUM frames), so
    before the cells are filled a candidate within ``DISTINCT_RADIUS`` of a stronger one is
    dropped, and the budget goes to more distinct corners. ``'response'``: the strongest
    keypoints wherever they are (OpenCV's default behaviour).
    """

    DISTRIBUTIONS = ('grid', 'grid_distinct', 'response')
    DISTINCT_RADIUS = 2.0  # px: the same corner found at other pyramid levels lies this close

    def __init__(self, max_keypoints: int = 1024, scale_factor: float = 1.2, n_levels: int = 8,
                 fast_threshold: int = 20, min_fast_threshold: int = 7,
                 distribution: str = DEFAULT_DISTRIBUTION, cell_size: int = 32):
        if distribution not in self.DISTRIBUTIONS:
            raise ValueError(f'distribution must be one of {self.DISTRIBUTIONS}, '
                             f'got {distribution!r}')
        self.max_keypoints = max_keypoints
        self.distribution = distribution
        self.cell_size = int(cell_size)
        oversample = 1 if distribution == 'response' else 4
        self._orb = cv2.ORB_create(nfeatures=max_keypoints * oversample,
                                   scaleFactor=scale_factor, nlevels=n_levels,
                                   fastThreshold=fast_threshold)
        # Lower FAST threshold for low-texture images (response) or empty cells (grid), as
        # ORB-SLAM does per cell.
        self._orb_low = cv2.ORB_create(nfeatures=max_keypoints * oversample,
                                       scaleFactor=scale_factor, nlevels=n_levels,
                                       fastThreshold=min_fast_threshold)

    def __call__(self, image: np.ndarray) -> Features:
        """Detect and describe; image is grayscale or BGR."""
        gray = to_gray(image)
        size = (int(gray.shape[1]), int(gray.shape[0]))
        if self.distribution == 'response':
            kps, desc = self._orb.detectAndCompute(gray, None)
            if len(kps) < self.max_keypoints // 2:
                kps, desc = self._orb_low.detectAndCompute(gray, None)
            features = _from_cv_keypoints(kps, desc, 'orb', size)
            return features.top_k(self.max_keypoints)[0]
        high = self._orb.detect(gray, None)
        low = self._orb_low.detect(gray, None)
        cell = self.cell_size
        # The low-threshold candidates count only in cells the normal threshold left empty.
        # Positions come out of OpenCV in one call, not keypoint by keypoint: Python loops
        # over the 4-8 thousand candidates were 40 % of this front-end's time.
        pts_high, pts_low = _positions(high), _positions(low)
        fill = np.nonzero(~np.isin(_cell_keys(pts_low, cell), _cell_keys(pts_high, cell)))[0]
        kps = list(high) + [low[i] for i in fill.tolist()]
        if kps:
            pts = np.concatenate([pts_high, pts_low[fill]])
            resp = np.array([k.response for k in kps], np.float32)
            if self.distribution == 'grid_distinct':
                distinct = suppress_duplicates(pts, resp, self.DISTINCT_RADIUS)
                kps, pts, resp = [kps[i] for i in distinct], pts[distinct], resp[distinct]
            keep = spread_by_cells(pts, resp, size, cell, self.max_keypoints)
            kps = [kps[i] for i in keep]
        kps, desc = self._orb.compute(gray, kps)
        return _from_cv_keypoints(kps, desc, 'orb', size)


class SiftExtractor:
    """SIFT keypoints + descriptors with OpenCV."""

    def __init__(self, max_keypoints: int = 1024):
        self.max_keypoints = max_keypoints
        self._sift = cv2.SIFT_create(nfeatures=max_keypoints)

    def __call__(self, image: np.ndarray) -> Features:
        """Detect and describe; image is grayscale or BGR."""
        gray = to_gray(image)
        kps, desc = self._sift.detectAndCompute(gray, None)
        features = _from_cv_keypoints(kps, desc, 'sift', (gray.shape[1], gray.shape[0]))
        return features.top_k(self.max_keypoints)[0]


def make_extractor(features: str, max_keypoints: int,
                   distribution: str = DEFAULT_DISTRIBUTION):
    """Front-end by name: 'orb' (``distribution`` as OrbExtractor's) or 'sift'."""
    if features == 'orb':
        return OrbExtractor(max_keypoints, distribution=distribution)
    if features == 'sift':
        return SiftExtractor(max_keypoints)
    raise ValueError(f'unknown features {features!r}: use orb or sift')

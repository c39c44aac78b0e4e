# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Ground-truth partial assignments from reprojection distances (homographic or depth-based).

Only keypoint pairs within a few pixels of each other can be labelled, so the distances are
computed for those pairs alone (found with k-d trees), not as dense M x N matrices: the labels
are the same as the dense definition's (test_rgbd.py checks them against it), and a
1024-keypoint pair is labelled 7-8x faster; the dense version was a third of a training pair's
cost (tools/pair_bench.py).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

UNMATCHED = -1  # dustbin
IGNORE = -2  # neither matched nor surely unmatched: left out of the loss


def pairs_within(a: np.ndarray, b: np.ndarray, radius: float) -> Tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) with |a_i - b_j| <= radius, plus a hair; rows of NaN never pair.

    The hair (1e-6 relative) keeps pairs at the radius itself whatever the tree's rounding:
    callers compare exact squared distances against the radius afterwards.
    """
    from scipy.spatial import cKDTree  # lazily: the training and evaluation paths only
    rows = np.nonzero(np.isfinite(a).all(1))[0]
    if len(rows) == 0 or len(b) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    near = cKDTree(a[rows]).sparse_distance_matrix(
        cKDTree(b), radius * (1.0 + 1e-6), output_type='ndarray')
    return rows[near['i']].astype(np.int64), near['j'].astype(np.int64)


def candidate_pairs(proj0: np.ndarray, kpts1: np.ndarray, kpts0: np.ndarray,
                    proj1: np.ndarray, radius: float
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i, j) within ``radius`` in either image, with both squared reprojection errors.

    ``proj0`` are image-0 keypoints moved into image 1 (NaN where unknown), ``proj1`` image-1
    keypoints moved into image 0. Returns i, j, d01 = |proj0_i - kpts1_j|^2 (measured in
    image 1) and d10 = |kpts0_i - proj1_j|^2 (in image 0), NaN where a projection is unknown.
    Every pair with a known error below ``radius``^2 in either direction is among them.
    """
    n = len(kpts1)
    i01, j01 = pairs_within(proj0, kpts1, radius)
    j10, i10 = pairs_within(proj1, kpts0, radius)
    key = np.unique(np.concatenate([i01 * n + j01, i10 * n + j10]))
    i, j = key // max(n, 1), key % max(n, 1)
    d01 = ((proj0[i] - kpts1[j]) ** 2).sum(1)
    d10 = ((kpts0[i] - proj1[j]) ** 2).sum(1)
    return i, j, d01, d10


def _best_partner(rows: np.ndarray, cols: np.ndarray, dist: np.ndarray, size: int
                  ) -> np.ndarray:
    """Per row, the column of the smallest distance (the lowest column on ties), else -1."""
    best = np.full(size, -1, np.int64)
    if len(rows):
        order = np.lexsort((cols, dist, rows))
        r, c = rows[order], cols[order]
        first = np.r_[True, r[1:] != r[:-1]]
        best[r[first]] = c[first]
    return best


def mutual_matches(i: np.ndarray, j: np.ndarray, dist: np.ndarray, valid0: np.ndarray,
                   valid1: np.ndarray, match_radius: float) -> Tuple[np.ndarray, np.ndarray]:
    """Match mutual nearest neighbours whose squared distance is below match_radius^2.

    ``i``, ``j``, ``dist``: candidate pairs and their squared distances (``candidate_pairs``;
    pairs missing from them are farther than any radius used). Invalid (padding) keypoints
    never match. Mutual nearest over all pairs and over the candidates is the same thing here:
    a pair below the radius is the nearest of its row and column only against pairs below the
    radius. Returns gt_matches0 [M] / gt_matches1 [N] holding the partner index, UNMATCHED
    elsewhere (callers mark what to ignore).
    """
    m, n = len(valid0), len(valid1)
    gt0 = np.full(m, UNMATCHED, np.int64)
    gt1 = np.full(n, UNMATCHED, np.int64)
    with np.errstate(invalid='ignore'):
        keep = (dist < match_radius ** 2) & valid0[i] & valid1[j]
    i, j, dist = i[keep], j[keep], dist[keep]
    nn0 = _best_partner(i, j, dist, m)
    nn1 = _best_partner(j, i, dist, n)
    rows = np.nonzero(nn0 >= 0)[0]
    mutual = rows[nn1[nn0[rows]] == rows]
    gt0[mutual] = nn0[mutual]
    gt1[nn0[mutual]] = mutual
    return gt0, gt1


def neighbours(i: np.ndarray, j: np.ndarray, d01: np.ndarray, d10: np.ndarray,
               valid0: np.ndarray, valid1: np.ndarray, radius: float
               ) -> Tuple[np.ndarray, np.ndarray]:
    """[M], [N] bool: the keypoint has one of the other image within ``radius``.

    Over the candidate pairs (``candidate_pairs``), each side by its own error: d01 (in image
    1) for image-0 keypoints, d10 (in image 0) for image-1 keypoints; NaN never counts.
    Padding is no detection: a pair with a padding keypoint on either side makes nothing near.
    """
    real = valid0[i] & valid1[j]

    def near(rows: np.ndarray, dist: np.ndarray, size: int) -> np.ndarray:
        out = np.zeros(size, bool)
        with np.errstate(invalid='ignore'):
            out[rows[real & (dist < radius ** 2)]] = True
        return out
    return near(i, d01, len(valid0)), near(j, d10, len(valid1))

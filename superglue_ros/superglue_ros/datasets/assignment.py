# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Ground-truth partial assignments from reprojection distances (homographic or depth-based)."""

from __future__ import annotations

from typing import Tuple

import numpy as np

UNMATCHED = -1  # dustbin
IGNORE = -2  # neither matched nor surely unmatched: left out of the loss


def sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise squared distances [M x N] as one matmul (~10x faster than broadcasting)."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def mutual_matches(dist: np.ndarray, valid0: np.ndarray, valid1: np.ndarray,
                   match_radius: float) -> Tuple[np.ndarray, np.ndarray]:
    """Match mutual nearest neighbours of squared distances [M x N] below match_radius^2.

    Invalid (padding) rows and columns never match. Returns gt_matches0 [M] / gt_matches1 [N]
    holding the partner index, UNMATCHED elsewhere (callers mark what to ignore).
    """
    m, n = dist.shape
    gt0 = np.full(m, UNMATCHED, np.int64)
    gt1 = np.full(n, UNMATCHED, np.int64)
    if m == 0 or n == 0:
        return gt0, gt1
    dist = dist.copy()
    dist[~valid0] = np.inf
    dist[:, ~valid1] = np.inf
    nn0, nn1 = dist.argmin(1), dist.argmin(0)
    mutual = nn1[nn0] == np.arange(m)
    close = dist[np.arange(m), nn0] < match_radius ** 2
    matched0 = mutual & close & valid0
    gt0[matched0] = nn0[matched0]
    gt1[nn0[matched0]] = np.nonzero(matched0)[0]
    return gt0, gt1

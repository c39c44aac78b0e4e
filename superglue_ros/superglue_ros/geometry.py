# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Two-view geometry: RANSAC verification of matches and relative-pose errors."""

from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np


def verify_fundamental(points0: np.ndarray, points1: np.ndarray, threshold_px: float = 1.0,
                       confidence: float = 0.999, seed: Optional[int] = 0) -> np.ndarray:
    """Inlier mask [M] of matches under a RANSAC fundamental matrix (needs >= 8 matches).

    ``threshold_px`` is the maximum distance to the epipolar line. With fewer than 8 matches
    no model can be verified and every match is reported as an outlier.
    """
    m = len(points0)
    if m < 8:
        return np.zeros(m, bool)
    if seed is not None:
        cv2.setRNGSeed(int(seed))
    _, mask = cv2.findFundamentalMat(points0.astype(np.float64), points1.astype(np.float64),
                                     cv2.FM_RANSAC, threshold_px, confidence)
    if mask is None:
        return np.zeros(m, bool)
    return mask.ravel().astype(bool)


def verify_homography(points0: np.ndarray, points1: np.ndarray, threshold_px: float = 3.0
                      ) -> Tuple[Optional[np.ndarray], np.ndarray]:
    """RANSAC homography (image0 -> image1) and inlier mask; (None, all False) if < 4."""
    m = len(points0)
    if m < 4:
        return None, np.zeros(m, bool)
    cv2.setRNGSeed(0)
    h, mask = cv2.findHomography(points0.astype(np.float64), points1.astype(np.float64),
                                 cv2.RANSAC, threshold_px, maxIters=2000, confidence=0.9999)
    if h is None:
        return None, np.zeros(m, bool)
    return h, mask.ravel().astype(bool)


def angle_error_mat(r1: np.ndarray, r2: np.ndarray) -> float:
    """Angle of the rotation r1^T r2 in degrees."""
    cos = (np.trace(r1.T @ r2) - 1) / 2
    return float(np.rad2deg(np.abs(np.arccos(np.clip(cos, -1.0, 1.0)))))


def angle_error_vec(v1: np.ndarray, v2: np.ndarray) -> float:
    """Angle between two vectors in degrees."""
    n = np.linalg.norm(v1) * np.linalg.norm(v2)
    return float(np.rad2deg(np.arccos(np.clip(np.dot(v1, v2) / max(n, 1e-12), -1.0, 1.0))))


def relative_pose_error(t_0to1: np.ndarray, r: np.ndarray, t: np.ndarray
                        ) -> Tuple[float, float]:
    """(rotation error, translation direction error) in degrees against a 4x4 ground truth.

    The translation of an essential matrix has no sign or scale, so the direction error is
    min(e, 180 - e).
    """
    t_gt = t_0to1[:3, 3]
    err_t = angle_error_vec(t.ravel(), t_gt)
    err_t = min(err_t, 180 - err_t)
    if np.linalg.norm(t_gt) < 1e-9:
        err_t = 0.0  # pure rotation: direction undefined
    err_r = angle_error_mat(r, t_0to1[:3, :3])
    return err_r, err_t


def estimate_pose(kpts0: np.ndarray, kpts1: np.ndarray, k0: np.ndarray, k1: np.ndarray,
                  threshold_px: float = 1.0, confidence: float = 0.99999
                  ) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Relative pose (R, t, inlier mask) from matches via a RANSAC essential matrix."""
    if len(kpts0) < 5:
        return None
    f_mean = np.mean([k0[0, 0], k1[1, 1], k0[0, 0], k1[1, 1]])
    norm_thresh = threshold_px / f_mean
    p0 = (kpts0 - k0[[0, 1], [2, 2]][None]) / k0[[0, 1], [0, 1]][None]
    p1 = (kpts1 - k1[[0, 1], [2, 2]][None]) / k1[[0, 1], [0, 1]][None]
    cv2.setRNGSeed(0)
    e, mask = cv2.findEssentialMat(p0, p1, np.eye(3), threshold=norm_thresh,
                                   prob=confidence, method=cv2.RANSAC)
    if e is None:
        return None
    best = None
    best_n = 0
    for e_i in np.split(e, len(e) / 3):
        n, r, t, _ = cv2.recoverPose(e_i, p0, p1, np.eye(3), 1e9, mask=mask)
        if n > best_n:
            best_n, best = n, (r, t[:, 0], mask.ravel() > 0)
    return best


def error_auc(errors, thresholds) -> list:
    """Area under the cumulative error curve up to each threshold, in [0, 1].

    Errors are sorted into a recall curve starting at (0, 0), integrated with the trapezoid
    rule up to each threshold (the convention of the SuperGlue paper's pose and homography
    AUCs); infinite errors (failures) never count as recalled.
    """
    errors = np.sort(np.asarray(errors, np.float64))
    recall = (np.arange(len(errors)) + 1) / max(len(errors), 1)
    errors = np.concatenate([[0.0], errors])
    recall = np.concatenate([[0.0], recall])
    aucs = []
    for t in thresholds:
        last = int(np.searchsorted(errors, t))
        r = np.concatenate([recall[:last], [recall[last - 1]]])
        e = np.concatenate([errors[:last], [t]])
        aucs.append(float(np.trapezoid(r, x=e) / t))
    return aucs


def pose_auc(errors: np.ndarray, thresholds=(5, 10, 20)) -> list:
    """Pose AUC at thresholds in degrees (see error_auc)."""
    return error_auc(errors, thresholds)


def epipolar_error(kpts0: np.ndarray, kpts1: np.ndarray, t_0to1: np.ndarray,
                   k0: np.ndarray, k1: np.ndarray) -> np.ndarray:
    """Symmetric epipolar distance in normalised coordinates, per match."""
    def to_h(p: np.ndarray) -> np.ndarray:
        return np.concatenate([p, np.ones((len(p), 1))], 1)
    p0 = (kpts0 - k0[[0, 1], [2, 2]][None]) / k0[[0, 1], [0, 1]][None]
    p1 = (kpts1 - k1[[0, 1], [2, 2]][None]) / k1[[0, 1], [0, 1]][None]
    p0, p1 = to_h(p0), to_h(p1)
    t = t_0to1[:3, 3]
    t_skew = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    e = t_skew @ t_0to1[:3, :3]
    ep0 = p0 @ e.T
    ep1 = p1 @ e
    d = np.sum(p1 * ep0, -1)
    return d ** 2 * (1.0 / (ep0[:, 0] ** 2 + ep0[:, 1] ** 2 + 1e-15)
                     + 1.0 / (ep1[:, 0] ** 2 + ep1[:, 1] ** 2 + 1e-15))

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Two-view geometry: RANSAC verification of matches and relative-pose errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

# Distortion models of sensor_msgs/CameraInfo this module undistorts.
DISTORTION_MODELS = ('plumb_bob', 'rational_polynomial', 'equidistant')
MIN_POSE_INLIERS = 5  # the minimal sample of an essential matrix
# Below this share of the inliers in front of both cameras, cheirality does not tell the
# decompositions apart (too little parallax): rotation_dominant_pose chooses instead.
FRONT_SHARE = 0.5

# Robust estimators of verify_fundamental / verify_essential, by name. 'ransac' is OpenCV's
# classic RANSAC (7-point fundamental / 5-point essential samples, no local optimisation); the
# usac_* names are OpenCV's USAC presets (local optimisation and a final least-squares polish,
# so more of the true matches are kept at the same threshold).
VERIFY_METHODS = {
    'ransac': cv2.RANSAC,
    'usac_default': cv2.USAC_DEFAULT,
    'usac_fm_8pts': cv2.USAC_FM_8PTS,
    'usac_magsac': cv2.USAC_MAGSAC,
    'usac_accurate': cv2.USAC_ACCURATE,
}
ESSENTIAL_ONLY_UNSUPPORTED = ('usac_fm_8pts',)  # an 8-point fundamental solver
# The defaults were chosen on 402 real TUM fr1_rpy pairs of our matcher at 1024 keypoints
# (`superglue-eval verification`, docs/PERFORMANCE.md), against OpenCV's RANSAC with 1000
# iterations (used before):
# - fundamental: RANSAC capped at 200 iterations. 2.0 ms instead of 9.5 ms (median) with the
#   same precision (95.6 % against 95.4 % epipolar-correct) and 2 points less recall. The USAC
#   presets keep 15 points more of the good matches but are 0.4-2 points less precise.
# - essential: USAC_DEFAULT. 3.9 ms instead of 23.6 ms (p95 12 ms instead of 125 ms) with the
#   same precision, 3 points more recall and the same pose accuracy.
FUNDAMENTAL_METHOD = 'ransac'
FUNDAMENTAL_MAX_ITERS = 200
ESSENTIAL_METHOD = 'usac_default'
ESSENTIAL_MAX_ITERS = 1000  # OpenCV's default; USAC stops far earlier on real matches


def _method_flag(method: str, essential: bool) -> int:
    """Return the OpenCV flag of ``method``; ValueError names the valid choices."""
    valid = [m for m in VERIFY_METHODS if not (essential and m in ESSENTIAL_ONLY_UNSUPPORTED)]
    if method not in valid:
        kind = 'essential' if essential else 'fundamental'
        raise ValueError(f'verification method {method!r} is not available for the {kind} '
                         f'matrix: use one of {valid}')
    return VERIFY_METHODS[method]


def verify_fundamental(points0: np.ndarray, points1: np.ndarray, threshold_px: float = 1.0,
                       confidence: float = 0.999, seed: Optional[int] = 0,
                       method: str = FUNDAMENTAL_METHOD,
                       max_iters: int = FUNDAMENTAL_MAX_ITERS) -> np.ndarray:
    """Inlier mask [M] of matches under a robust fundamental matrix (needs >= 8 matches).

    ``threshold_px`` is the maximum distance to the epipolar line; ``method`` is a key of
    VERIFY_METHODS and ``max_iters`` caps its sampling iterations. With fewer than 8 matches
    no model can be verified and every match is reported as an outlier. The result is
    deterministic: OpenCV's estimators draw from a fixed generator state, and ``seed`` (None:
    leave it) also reseeds OpenCV's global generator for any code path that uses it.
    """
    flag = _method_flag(method, essential=False)
    m = len(points0)
    if m < 8:
        return np.zeros(m, bool)
    if seed is not None:
        cv2.setRNGSeed(int(seed))
    _, mask = cv2.findFundamentalMat(points0.astype(np.float64), points1.astype(np.float64),
                                     flag, threshold_px, confidence, int(max_iters))
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


@dataclass(frozen=True)
class Intrinsics:
    """A pinhole camera with lens distortion, as sensor_msgs/CameraInfo describes it.

    ``k``: 3 x 3 camera matrix; ``d``: distortion coefficients of ``model`` (plumb_bob and
    rational_polynomial as OpenCV's calibrateCamera, equidistant as cv2.fisheye); ``size``:
    (width, height) of the calibrated image [px].
    """

    k: np.ndarray
    d: np.ndarray
    model: str
    size: Tuple[int, int]

    @classmethod
    def from_values(cls, k: Sequence[float], d: Sequence[float], model: str,
                    size: Tuple[int, int]) -> 'Intrinsics':
        """Check and build; ValueError names the field that is wrong and how to fix it."""
        k = np.asarray(k, np.float64).reshape(3, 3) if len(k) == 9 else None
        if k is None or not np.all(np.isfinite(k)) or k[0, 0] <= 0 or k[1, 1] <= 0 or \
                k[2, 2] != 1.0:
            raise ValueError('k must be a finite 3 x 3 camera matrix with fx, fy > 0 and '
                             'k[8] = 1 (an uncalibrated camera publishes zeros: calibrate it or '
                             'leave camera_info out)')
        d = np.asarray(d, np.float64).ravel()
        if not np.all(np.isfinite(d)):
            raise ValueError('d (distortion) contains NaN/Inf')
        if not model and not np.any(d):
            model = 'plumb_bob'  # no model named and no distortion: a plain pinhole
        if model not in DISTORTION_MODELS:
            raise ValueError(f'distortion_model {model!r} is not supported: use one of '
                             f'{DISTORTION_MODELS}')
        if model == 'equidistant' and len(d) != 4:
            raise ValueError(f'equidistant distortion needs 4 coefficients, got {len(d)}')
        if model != 'equidistant' and len(d) not in (0, 4, 5, 8, 12, 14):
            raise ValueError(f'{model} distortion needs 4, 5, 8, 12 or 14 coefficients, got '
                             f'{len(d)}')
        return cls(k, d, model, (int(size[0]), int(size[1])))

    @property
    def focal(self) -> float:
        """Return the mean focal length [px]: it converts pixel thresholds to normalised ones."""
        return float((self.k[0, 0] + self.k[1, 1]) / 2)

    def normalize(self, points: np.ndarray) -> np.ndarray:
        """Return the undistorted normalised image coordinates [M, 2] of pixels [M, 2]."""
        p = np.asarray(points, np.float64).reshape(-1, 1, 2)
        if len(p) == 0:
            return np.zeros((0, 2))
        if self.model == 'equidistant':
            out = cv2.fisheye.undistortPoints(p, self.k, self.d)
        else:
            # Iterative undistortion: more iterations than the default 5 keep strong radial
            # distortion near the border below 0.01 px.
            out = cv2.undistortPoints(
                p, self.k, self.d, None, np.eye(3), np.eye(3),
                (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-10))
        return out.reshape(-1, 2)


@dataclass(frozen=True)
class RelativePose:
    """Reference camera -> current camera: X_cur = rotation @ X_ref + translation.

    ``translation`` has unit length (two views do not give the scale); ``inliers`` counts the
    verified matches in front of both cameras under this pose, or all of them when the views
    have too little parallax for that test (``rotation_dominant_pose``); ``parallax`` is the
    median angle [deg] between the inliers' current rays and their rotated reference rays
    (``ray_alignment``): near 0 the translation direction is not determined.
    """

    rotation: np.ndarray
    translation: np.ndarray
    inliers: int
    parallax: float = 0.0  # median angle of the inliers' rays after the rotation [deg]

    def quaternion(self) -> Tuple[float, float, float, float]:
        """Return the rotation as a unit quaternion: x, y, z and w >= 0."""
        return rotation_to_quaternion(self.rotation)


def rotation_to_quaternion(r: np.ndarray) -> Tuple[float, float, float, float]:
    """Return the unit quaternion (x, y, z, w) with w >= 0 of a 3 x 3 rotation matrix."""
    r = np.asarray(r, np.float64)
    # The largest of the four squared components is computed directly; the others follow
    # from it without dividing by a small number.
    trace = np.trace(r)
    candidates = [trace, r[0, 0], r[1, 1], r[2, 2]]
    i = int(np.argmax(candidates))
    if i == 0:
        w = np.sqrt(max(1.0 + trace, 0.0)) / 2
        x, y, z = (r[2, 1] - r[1, 2]) / (4 * w), (r[0, 2] - r[2, 0]) / (4 * w), \
            (r[1, 0] - r[0, 1]) / (4 * w)
    else:
        a = i - 1
        b, c = (a + 1) % 3, (a + 2) % 3
        q = np.zeros(3)
        q[a] = np.sqrt(max(1.0 + r[a, a] - r[b, b] - r[c, c], 0.0)) / 2
        q[b] = (r[b, a] + r[a, b]) / (4 * q[a])
        q[c] = (r[c, a] + r[a, c]) / (4 * q[a])
        w = (r[c, b] - r[b, c]) / (4 * q[a])
        x, y, z = q
    quat = np.array([x, y, z, w]) / np.linalg.norm([x, y, z, w])
    if quat[3] < 0:
        quat = -quat
    return tuple(float(v) for v in quat)


def verify_essential(points0: np.ndarray, points1: np.ndarray, camera0: Intrinsics,
                     camera1: Optional[Intrinsics] = None, threshold_px: float = 1.0,
                     confidence: float = 0.999, seed: Optional[int] = 0,
                     method: str = ESSENTIAL_METHOD, max_iters: int = ESSENTIAL_MAX_ITERS
                     ) -> Tuple[np.ndarray, Optional[RelativePose]]:
    """Inlier mask [M] under a robust essential matrix on undistorted points, and the pose.

    ``points0`` are pixels of the reference view (``camera0``), ``points1`` of the current one
    (``camera1``, default the same camera). ``threshold_px`` is the epipolar distance in
    pixels, applied in normalised coordinates through the mean focal length; ``method``
    (a key of VERIFY_METHODS except usac_fm_8pts), ``max_iters`` and ``seed`` are as in
    verify_fundamental. The pose
    (camera 0 -> camera 1) is the decomposition of the essential matrix with the most matches
    in front of both cameras. When fewer than FRONT_SHARE of the inliers are in front under
    any decomposition (too little parallax: rotation-dominant motion), the rotation that
    aligns the viewing rays is taken instead (``rotation_dominant_pose``). None with fewer than
    MIN_POSE_INLIERS inliers; with fewer than 5 matches every match is an outlier.
    """
    flag = _method_flag(method, essential=True)
    camera1 = camera0 if camera1 is None else camera1
    m = len(points0)
    if m < 5:
        return np.zeros(m, bool), None
    p0, p1 = camera0.normalize(points0), camera1.normalize(points1)
    if seed is not None:
        cv2.setRNGSeed(int(seed))
    focal = (camera0.focal + camera1.focal) / 2
    e, mask = cv2.findEssentialMat(p0, p1, np.eye(3), method=flag, prob=confidence,
                                   threshold=threshold_px / focal, maxIters=int(max_iters))
    if e is None or mask is None:
        return np.zeros(m, bool), None
    inlier = mask.ravel().astype(bool)
    best: Optional[RelativePose] = None
    best_e = e[:3]
    for e_i in np.split(e, len(e) // 3):
        # distanceThresh 1e9: points far away (small parallax) still count as in front.
        n, r, t, _ = cv2.recoverPose(e_i, p0, p1, np.eye(3), 1e9,
                                     mask=inlier.astype(np.uint8).reshape(-1, 1).copy())
        if n >= MIN_POSE_INLIERS and (best is None or n > best.inliers):
            t = t.ravel()
            best = RelativePose(r, t / max(np.linalg.norm(t), 1e-12), int(n),
                                _parallax(ray_alignment(r, p0[inlier], p1[inlier])))
            best_e = e_i
    count = int(inlier.sum())
    if count >= MIN_POSE_INLIERS and (best is None or best.inliers < FRONT_SHARE * count):
        best = rotation_dominant_pose(best_e, p0[inlier], p1[inlier], best)
    return inlier, best


def _parallax(alignment: np.ndarray) -> float:
    """Median angle [deg] of ``ray_alignment`` cosines."""
    return float(np.degrees(np.median(np.arccos(np.clip(alignment, -1.0, 1.0)))))


def ray_alignment(rotation: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """Cosine of the angle between each current ray (normalised ``p1``) and its reference ray.

    The reference ray (normalised ``p0``) is turned by ``rotation`` first; what is left is the
    parallax the translation causes (plus noise).
    """
    rays0 = np.concatenate([p0, np.ones((len(p0), 1))], 1)
    rays1 = np.concatenate([p1, np.ones((len(p1), 1))], 1)
    rays0 /= np.linalg.norm(rays0, axis=1, keepdims=True)
    rays1 /= np.linalg.norm(rays1, axis=1, keepdims=True)
    return np.sum((rays0 @ np.asarray(rotation, np.float64).T) * rays1, 1)


def rotation_dominant_pose(essential: np.ndarray, p0: np.ndarray, p1: np.ndarray,
                           cheirality: Optional[RelativePose]) -> RelativePose:
    """Return the pose of an essential matrix whose inliers ``p0``/``p1`` lack parallax.

    When the camera mostly rotates (a hand-held camera, a robot turning on the spot), the
    inliers triangulate near infinity, in front or behind at random, so counting them in front
    of both cameras (``cv2.recoverPose``) picks among the four decompositions by noise: on
    real rotation-dominant pairs it found a handful of points in front, or none, and the pose
    was lost although the rotation is well determined. Of the two rotations of the
    decomposition, the true one maps the reference viewing rays onto the current ones up to the
    small parallax; the other is turned by 180 degrees about the baseline. So the rotation that
    aligns the rays best (median angle) is taken. The translation direction is ill-defined
    then: ``cheirality``'s when it has this rotation, else the decomposition's. ``inliers`` is
    the number of essential-matrix inliers.
    """
    r1, r2, t = cv2.decomposeEssentialMat(essential)
    alignments = [ray_alignment(r, p0, p1) for r in (r1, r2)]
    k = int(np.argmax([np.median(a) for a in alignments]))
    r = (r1, r2)[k]
    if cheirality is not None and angle_error_mat(cheirality.rotation, r) < 1e-3:
        t = cheirality.translation
    t = np.asarray(t, np.float64).ravel()
    return RelativePose(r, t / max(np.linalg.norm(t), 1e-12), len(p0),
                        _parallax(alignments[k]))

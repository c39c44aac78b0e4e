# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Sub-pixel match refinement: move each matched point of image 1 onto its partner's patch.

ORB keypoints are FAST corners at integer pixels of a pyramid level, so a keypoint found at
level L is only known to about 1.2^L pixels. On rendered views with exact ground truth the
correct matches of any ORB matcher sit about 1 px from the true correspondence (median), where
SIFT's sit at 0.25 px; with a 1-px RANSAC threshold that costs more relative-pose accuracy than
any matcher change (docs/RESULTS.md, "Match refinement").

For each match, a patch around the reference point in image 0 is warped into image 1 by a
local linear map, and normalised cross-correlation (NCC) over a small integer search window
around the matched point finds it; a parabola through the peak and its neighbours gives the
sub-pixel offset. The local map is the Jacobian, at the point, of a RANSAC homography of all
the pair's matches: exact for rotation-only motion and planes, and it carries the scale change
and foreshortening of wider baselines (measured better than the pair's rotation alone and
than per-match affine fits to neighbouring matches, which are noisy). Where no homography fits
(too few inliers) or its Jacobian is degenerate, the pair's rotation is used: the circular
mean of the matches' ORB angle differences. The reference point stays where it is, which is
what a SLAM back-end wants: the keyframe keypoint is the map point's observation, the refined
point its new one.

Pure numpy + OpenCV: no torch, no ROS. Every array is vectorised over the matches (one
``cv2.remap`` for all templates, one batched correlation), a few milliseconds per pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .features import Features, to_gray

__all__ = ['local_warps', 'matched_angles', 'matched_current_points',
           'matched_reference_points', 'MatchRefiner', 'Refinement', 'pair_rotation',
           'refine_matches', 'rotation_matrix', 'WARPS']

WARPS = ('homography', 'rotation')


@dataclass
class Refinement:
    """Refined positions in image 1 of matched points.

    points1: [M x 2] float32, the refined position where ``refined``, else the input point;
    refined: [M] bool; correlation: [M] float32 NCC at the peak (NaN: not evaluated, e.g. the
    patch left the image or had no texture); rotation: the pair's rotation [deg];
    warp: 'homography' when the homography's Jacobians warped the patches, else 'rotation'.
    """

    points1: np.ndarray
    refined: np.ndarray
    correlation: np.ndarray
    rotation: float
    warp: str = 'rotation'

    def __len__(self) -> int:
        """Return the number of matches."""
        return int(self.points1.shape[0])


def pair_rotation(angle0: Optional[np.ndarray], angle1: Optional[np.ndarray],
                  weights: Optional[np.ndarray] = None) -> float:
    """Return the in-plane rotation from image 0 to image 1 [deg].

    The weighted circular mean of the matched keypoints' orientation differences; 0 when the
    front-end publishes no angles.

    One rotation per pair, not per match: single ORB angles are noisy (measured on rendered
    views, per-match angles refined fewer points and less accurately than the pair's mean).
    """
    if angle0 is None or angle1 is None or len(angle0) == 0 or len(angle0) != len(angle1):
        return 0.0
    delta = np.deg2rad(np.asarray(angle1, np.float64) - np.asarray(angle0, np.float64))
    w = np.ones_like(delta) if weights is None else np.asarray(weights, np.float64)
    mean = np.sum(w * np.exp(1j * delta))
    return float(np.rad2deg(np.angle(mean))) if abs(mean) > 1e-9 else 0.0


def rotation_matrix(degrees: float) -> np.ndarray:
    """Return the 2x2 rotation by ``degrees`` in image coordinates (x towards y)."""
    c, s = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
    return np.array([[c, -s], [s, c]])


def local_warps(points0: np.ndarray, points1: np.ndarray, rotation: float = 0.0,
                ransac_px: float = 4.0, min_inliers: float = 0.2
                ) -> Tuple[np.ndarray, bool]:
    """Return the local linear maps image 0 -> image 1 [M x 2 x 2] and if a homography gave them.

    The Jacobian at points0 of a RANSAC homography of the matches, when one has at least 8
    inliers and ``min_inliers`` of the matches; each Jacobian must be orientation-preserving
    with singular values in [0.4, 2.5] (else that match gets the rotation). Without a
    homography, every match gets ``rotation_matrix(rotation)``.
    """
    p0 = np.asarray(points0, np.float64).reshape(-1, 2)
    p1 = np.asarray(points1, np.float64).reshape(-1, 2)
    m = len(p0)
    warps = np.repeat(rotation_matrix(rotation)[None], m, axis=0)
    if m < 8:
        return warps, False
    cv2.setRNGSeed(0)  # the same matches give the same refinement
    hom, mask = cv2.findHomography(p0, p1, cv2.RANSAC, ransac_px, maxIters=2000,
                                   confidence=0.999)
    if hom is None or mask is None or mask.sum() < max(8, min_inliers * m):
        return warps, False
    x, y = p0[:, 0], p0[:, 1]
    w = hom[2, 0] * x + hom[2, 1] * y + hom[2, 2]
    horizon = np.abs(w) <= 1e-9  # mapped to infinity: no Jacobian there
    w = np.where(horizon, 1.0, w)
    u = (hom[0, 0] * x + hom[0, 1] * y + hom[0, 2]) / w
    v = (hom[1, 0] * x + hom[1, 1] * y + hom[1, 2]) / w
    jac = np.stack([np.stack([hom[0, 0] - u * hom[2, 0], hom[0, 1] - u * hom[2, 1]], -1),
                    np.stack([hom[1, 0] - v * hom[2, 0], hom[1, 1] - v * hom[2, 1]], -1)],
                   axis=1) / w[:, None, None]
    finite = np.isfinite(jac).all(axis=(1, 2)) & ~horizon
    jac[~finite] = np.eye(2)  # the SVD must not see inf; these matches keep the rotation
    sv = np.linalg.svd(jac, compute_uv=False)
    sane = finite & (np.linalg.det(jac) > 0) & (sv[:, 1] > 0.4) & (sv[:, 0] < 2.5)
    warps[sane] = jac[sane]
    return warps, True


def _as_gray(image: np.ndarray, name: str) -> np.ndarray:
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(f'{name} must be a grayscale or BGR image, got shape {image.shape}')
    return to_gray(image)


def matched_angles(features: Features, index: np.ndarray) -> Optional[np.ndarray]:
    """Return the orientations [deg] of keypoints ``index``; None where there are none.

    None when the front-end gave no angles, or any of them is -1 (not applicable,
    Keypoints.msg) or not finite: the pair is then taken as unrotated.
    """
    if len(features.angle) != len(features) or not len(index):
        return None
    angles = features.angle[index]
    return angles if np.all(np.isfinite(angles)) and np.all(angles >= 0) else None


def _window_sums(windows: np.ndarray, n: int):
    """Return sums and sums of squares over every n x n window of each [K x S x S] slice.

    One integral image of the slices stacked vertically: each slice's rows continue the
    running sums of the slice above, and the offset cancels in the four-corner difference.
    """
    k, side = windows.shape[0], windows.shape[1]
    total, squares = cv2.integral2(windows.reshape(k * side, side), sdepth=cv2.CV_64F,
                                   sqdepth=cv2.CV_64F)
    rows = np.arange(k)[:, None] * side + np.arange(side + 1)[None]

    def box(integral: np.ndarray) -> np.ndarray:
        i = integral[rows]  # [K x (S + 1) x (S + 1)]: each slice's own integral image
        return i[:, n:, n:] - i[:, :-n, n:] - i[:, n:, :-n] + i[:, :-n, :-n]
    return box(total), box(squares)


def _parabola_peak(left: np.ndarray, centre: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Offset in [-0.5, 0.5] of the vertex of the parabola through three samples."""
    curvature = left - 2 * centre + right
    offset = np.where(curvature < 0, 0.5 * (left - right) / np.where(curvature < 0, curvature,
                                                                     -1.0), 0.0)
    return np.clip(offset, -0.5, 0.5)


def refine_matches(image0: np.ndarray, image1: np.ndarray, points0: np.ndarray,
                   points1: np.ndarray, rotation: float = 0.0, half_window: int = 7,
                   search_radius: int = 3, min_correlation: float = 0.7,
                   warps: Optional[np.ndarray] = None) -> Refinement:
    """Refine ``points1`` (matched to ``points0``) to sub-pixel accuracy by NCC.

    image0/image1: grayscale or BGR; points0/points1: [M x 2] pixels (x, y);
    rotation: in-plane rotation from image 0 to image 1 [deg] (``pair_rotation``), used for
    every match unless ``warps`` [M x 2 x 2] gives each match its own linear map from image 0
    to image 1 (``local_warps``);
    half_window: the template is (2 h + 1)^2 pixels; search_radius: integer offsets tried in
    each direction; min_correlation: NCC below this keeps the input point.
    A point stays unrefined when its peak is on the search border (the partner is farther than
    the radius: a wrong match or a large error), the correlation is too low, the template has
    no texture or either window leaves the image.
    """
    # Templates are interpolated: sample them from float32 so they keep sub-grey-level values.
    g0 = _as_gray(image0, 'image0').astype(np.float32, copy=False)
    g1 = _as_gray(image1, 'image1')
    p0 = np.asarray(points0, np.float64).reshape(-1, 2)
    p1 = np.asarray(points1, np.float64).reshape(-1, 2)
    if len(p0) != len(p1):
        raise ValueError(f'points0 and points1 must have the same length, got {len(p0)} and '
                         f'{len(p1)}')
    m, h, s = len(p0), int(half_window), int(search_radius)
    if h < 1 or s < 1:
        raise ValueError(f'half_window and search_radius must be >= 1, got {h} and {s}')
    if warps is None:
        warps = np.repeat(rotation_matrix(rotation)[None], m, axis=0)
    warps = np.asarray(warps, np.float64)
    if warps.shape != (m, 2, 2):
        raise ValueError(f'warps must be [M x 2 x 2] with M = {m}, got {warps.shape}')
    out = Refinement(p1.astype(np.float32), np.zeros(m, bool), np.full(m, np.nan, np.float32),
                     float(rotation))
    if m == 0:
        return out
    n = 2 * h + 1
    inverse = np.linalg.inv(warps + 1e-12 * np.eye(2))  # image-1 offsets -> image-0 offsets
    reach = h * np.abs(inverse).sum(axis=2).max(axis=1)  # template half-extent in image 0
    # Integer search centres in image 1; both windows must lie inside their images.
    q = np.round(p1).astype(np.int64)
    inside = ((q - h - s >= 0).all(1) & (q[:, 0] + h + s < g1.shape[1]) &
              (q[:, 1] + h + s < g1.shape[0]) & (p0 - reach[:, None] >= 0).all(1) &
              (p0[:, 0] + reach <= g0.shape[1] - 1) & (p0[:, 1] + reach <= g0.shape[0] - 1))
    idx = np.nonzero(inside)[0]
    if len(idx) == 0:
        return out
    # Templates: image 0 sampled at p0 + W^-1 (u, v) for (u, v) in the window of image 1.
    u, v = np.meshgrid(np.arange(-h, h + 1, dtype=np.float64), np.arange(-h, h + 1))
    a = inverse[idx]
    du = a[:, 0, 0, None, None] * u + a[:, 0, 1, None, None] * v
    dv = a[:, 1, 0, None, None] * u + a[:, 1, 1, None, None] * v
    map_x = (p0[idx, 0, None, None] + du).astype(np.float32).reshape(-1, n)
    map_y = (p0[idx, 1, None, None] + dv).astype(np.float32).reshape(-1, n)
    templates = cv2.remap(g0, map_x, map_y, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE).reshape(-1, n, n)
    templates = templates - templates.mean(axis=(1, 2), keepdims=True)
    norm_t = np.sqrt(np.einsum('kij,kij->k', templates, templates))
    # Search windows of image 1 and every (2 s + 1)^2 shifted view of them.
    offs = np.arange(-h - s, h + s + 1)
    windows = g1[(q[idx, 1, None] + offs)[:, :, None],
                 (q[idx, 0, None] + offs)[:, None, :]].astype(np.float32)
    views = sliding_window_view(windows, (n, n), axis=(1, 2))  # [K x S x S x n x n]
    dot = np.einsum('kabij,kij->kab', views, templates)  # templates are zero-mean
    sums, squares = _window_sums(windows, n)  # float64: exact for 8-bit images
    var = np.maximum(squares - sums * sums / (n * n), 0.0)
    ncc = dot / np.maximum(np.sqrt(var) * norm_t[:, None, None], 1e-6)
    textured = (norm_t > 1e-3 * n)[:, None, None] & (var > 1e-3 * n * n)
    ncc = np.where(textured, ncc, -1.0)
    flat = ncc.reshape(len(idx), -1).argmax(axis=1)
    by, bx = np.divmod(flat, 2 * s + 1)
    peak = ncc[np.arange(len(idx)), by, bx]
    interior = (bx > 0) & (bx < 2 * s) & (by > 0) & (by < 2 * s)
    good = interior & (peak >= min_correlation)
    k = np.arange(len(idx))
    bxc, byc = np.clip(bx, 1, 2 * s - 1), np.clip(by, 1, 2 * s - 1)
    dx = _parabola_peak(ncc[k, byc, bxc - 1], ncc[k, byc, bxc], ncc[k, byc, bxc + 1])
    dy = _parabola_peak(ncc[k, byc - 1, bxc], ncc[k, byc, bxc], ncc[k, byc + 1, bxc])
    refined = q[idx] + np.stack([bx - s + dx, by - s + dy], axis=1)
    out.correlation[idx] = np.where(textured[:, 0, 0], peak, np.nan)
    sel = idx[good]
    out.points1[sel] = refined[good]
    out.refined[sel] = True
    return out


class MatchRefiner:
    """The refinement step with its settings, applied to one matched pair.

    ``refiner(image0, image1, points0, points1, angle0, angle1, confidence)`` estimates the
    pair's rotation from the matched ORB angles (weighted by confidence), the local warps
    (``warp='homography'``, the default: ``local_warps``; ``'rotation'``: the rotation alone)
    and refines.
    """

    def __init__(self, half_window: int = 7, search_radius: int = 3,
                 min_correlation: float = 0.7, warp: str = 'homography'):
        """Check and keep the settings (see ``refine_matches``)."""
        if warp not in WARPS:
            raise ValueError(f'warp must be one of {WARPS}, got {warp!r}')
        self.warp = warp
        if not 1 <= int(half_window) <= 32:
            raise ValueError(f'half_window must be in [1, 32], got {half_window}')
        if not 1 <= int(search_radius) <= 16:
            raise ValueError(f'search_radius must be in [1, 16], got {search_radius}')
        if not -1.0 <= float(min_correlation) <= 1.0:
            raise ValueError(f'min_correlation must be in [-1, 1], got {min_correlation}')
        self.half_window = int(half_window)
        self.search_radius = int(search_radius)
        self.min_correlation = float(min_correlation)

    def __call__(self, image0: np.ndarray, image1: np.ndarray, points0: np.ndarray,
                 points1: np.ndarray, angle0: Optional[np.ndarray] = None,
                 angle1: Optional[np.ndarray] = None,
                 confidence: Optional[np.ndarray] = None) -> Refinement:
        """Refine one pair's matched points (angles in degrees, confidence as weights)."""
        rotation = pair_rotation(angle0, angle1, confidence)
        warps, from_homography = None, False
        if self.warp == 'homography':
            warps, from_homography = local_warps(points0, points1, rotation)
        out = refine_matches(image0, image1, points0, points1, rotation, self.half_window,
                             self.search_radius, self.min_correlation, warps)
        out.warp = 'homography' if from_homography else 'rotation'
        return out

    def refine_pair(self, image0: np.ndarray, image1: np.ndarray, features0: Features,
                    features1: Features, index0: np.ndarray, index1: np.ndarray,
                    confidence: np.ndarray, points0: Optional[np.ndarray] = None
                    ) -> Refinement:
        """Refine matches ``index0`` <-> ``index1`` between two keypoint sets.

        ``points0``: where image 0's matched points are, if not its keypoints (a keyframe's
        own refined observations); image 1's start from its keypoints. The angles come from
        the features (``matched_angles``).
        """
        if points0 is None:
            points0 = features0.keypoints[index0]
        return self(image0, image1, points0, features1.keypoints[index1],
                    matched_angles(features0, index0), matched_angles(features1, index1),
                    confidence)


def _message_points(msg, refined: str, plain: str) -> np.ndarray:
    x, y = getattr(msg, f'{refined}_x', ()), getattr(msg, f'{refined}_y', ())
    if not len(x) or len(x) != len(getattr(msg, f'{plain}_x')) or len(y) != len(x):
        x, y = getattr(msg, f'{plain}_x'), getattr(msg, f'{plain}_y')
    return np.stack([np.asarray(x, np.float64), np.asarray(y, np.float64)], 1).reshape(-1, 2)


def matched_current_points(msg) -> np.ndarray:
    """Return a Correspondences' current matched points [M x 2], refined where it has them.

    A consumer computing geometry from a superglue_ros_msgs/Correspondences (rclpy or rosbags
    message alike) wants these: refined_current_x/y when the matcher refined the matches (empty
    otherwise, or in messages from before the field), else current_x/y.
    """
    return _message_points(msg, 'refined_current', 'current')


def matched_reference_points(msg) -> np.ndarray:
    """Return the reference points [M x 2] the current points were refined against.

    refined_reference_x/y when the message has them (the reference keyframe's own refined
    observations), else reference_x/y. Pair them with ``matched_current_points``.
    """
    return _message_points(msg, 'refined_reference', 'reference')

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Real camera motion with ground truth: TUM-format RGB-D sequences and depth-based matches.

A TUM folder holds ``rgb.txt`` (``stamp path`` per line), ``groundtruth.txt`` (``stamp tx ty tz
qx qy qz qw``, camera-to-world) and optionally ``depth.txt`` (16-bit PNGs, ``depth_scale``
units per metre, registered to the colour image). Ground truth for a keypoint pair follows the
ScanNet recipe of the SuperGlue paper: undistort, back-project with depth, move by the relative
pose, project into the other image, check visibility and occlusion against its depth map.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from .assignment import candidate_pairs, IGNORE, mutual_matches, neighbours, UNMATCHED


# Reprojection status of a keypoint into the other image.
VISIBLE, OUT_OF_VIEW, OCCLUDED, UNKNOWN = 0, 1, 2, 3


@dataclass(frozen=True)
class Camera:
    """Pinhole camera with OpenCV radial-tangential distortion (k1, k2, p1, p2, k3)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    dist: Tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    @property
    def k(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], np.float64)

    @property
    def d(self) -> np.ndarray:
        return np.asarray(self.dist, np.float64)

    def undistort(self, points: np.ndarray) -> np.ndarray:
        """Pixels [N x 2] -> normalised image coordinates [N x 2] (distortion removed)."""
        if len(points) == 0:
            return np.zeros((0, 2), np.float64)
        pts = np.asarray(points, np.float64).reshape(-1, 1, 2)
        return cv2.undistortPoints(pts, self.k, self.d).reshape(-1, 2)

    @functools.cached_property
    def normalized_bounds(self) -> Tuple[float, float, float, float]:
        """(x_min, x_max, y_min, y_max) of the undistorted image border, in normalised units.

        Polynomial distortion folds back far outside the field of view, so a point is only
        distorted (projected) when its normalised coordinates lie inside these bounds.
        """
        w, h = self.width - 1, self.height - 1
        t = np.linspace(0, 1, 64)
        border = np.concatenate([np.stack([t * w, 0 * t], 1), np.stack([t * w, h + 0 * t], 1),
                                 np.stack([0 * t, t * h], 1), np.stack([w + 0 * t, t * h], 1)])
        n = self.undistort(border)
        return float(n[:, 0].min()), float(n[:, 0].max()), float(n[:, 1].min()), \
            float(n[:, 1].max())

    def project(self, points: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Camera-frame points [N x 3] -> (pixels [N x 2], inside [N] bool)."""
        pts = np.asarray(points, np.float64).reshape(-1, 3)
        if len(pts) == 0:
            return np.zeros((0, 2)), np.zeros(0, bool)
        z = pts[:, 2]
        front = z > 1e-6
        xn = np.where(front[:, None], pts[:, :2] / np.where(front, z, 1.0)[:, None], 0.0)
        x0, x1, y0, y1 = self.normalized_bounds
        inside = front & (xn[:, 0] >= x0) & (xn[:, 0] <= x1) & (xn[:, 1] >= y0) & \
            (xn[:, 1] <= y1)
        px, _ = cv2.projectPoints(np.concatenate([xn, np.ones((len(xn), 1))], 1),
                                  np.zeros(3), np.zeros(3), self.k, self.d)
        px = px.reshape(-1, 2)
        inside &= (px[:, 0] >= 0) & (px[:, 0] <= self.width - 1) & (px[:, 1] >= 0) & \
            (px[:, 1] <= self.height - 1)
        return px, inside


# Published intrinsics of the TUM RGB-D sensors (640 x 480 colour images).
TUM_CAMERAS = {
    'fr1': Camera(640, 480, 517.3, 516.5, 318.6, 255.3, (0.2624, -0.9531, -0.0054, 0.0026,
                                                         1.1633)),
    'fr2': Camera(640, 480, 520.9, 521.0, 325.1, 249.7, (0.2312, -0.7849, -0.0033, -0.0001,
                                                         0.9172)),
    'fr3': Camera(640, 480, 535.4, 539.2, 320.1, 247.6),
}


def load_camera(spec: str) -> Camera:
    """Build a camera from a preset name (fr1, fr2, fr3) or a YAML file.

    YAML keys: width, height, fx, fy, cx, cy and optionally dist [k1, k2, p1, p2, k3]; a ROS
    CameraInfo dump (``k``/``d`` or ``camera_matrix``/``distortion_coefficients``) works too.
    """
    if spec in TUM_CAMERAS:
        return TUM_CAMERAS[spec]
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f'camera {spec!r} is neither a preset ({", ".join(TUM_CAMERAS)}) nor a '
                         f'YAML file')
    import yaml
    y = yaml.safe_load(path.read_text()) or {}
    w = y.get('width', y.get('image_width'))
    h = y.get('height', y.get('image_height'))
    if 'fx' in y:
        fx, fy, cx, cy = (y[k] for k in ('fx', 'fy', 'cx', 'cy'))
    else:
        k = y.get('k', y.get('K'))
        if k is None and 'camera_matrix' in y:
            k = y['camera_matrix']['data']
        if k is None:
            raise ValueError(f'{path}: needs fx, fy, cx, cy or a 3x3 k / camera_matrix')
        fx, cx, fy, cy = k[0], k[2], k[4], k[5]
    dist = y.get('dist', y.get('d', y.get('D')))
    if dist is None and 'distortion_coefficients' in y:
        dist = y['distortion_coefficients']['data']
    dist = tuple(float(v) for v in (dist or [0.0] * 5))
    if w is None or h is None:
        raise ValueError(f'{path}: needs width and height')
    return Camera(int(w), int(h), float(fx), float(fy), float(cx), float(cy),
                  (dist + (0.0,) * 5)[:5])


def read_stamped_list(path: Path) -> Tuple[np.ndarray, List[str]]:
    """Read a TUM ``stamp value...`` list (comments start with #): (stamps, rest of line)."""
    stamps, rest = [], []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise ValueError(f'{path}:{n}: expected "timestamp value", got {line!r}')
        stamps.append(float(parts[0]))
        rest.append(parts[1])
    return np.array(stamps, np.float64), rest


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Convert a unit quaternion (qx, qy, qz, qw) to a 3x3 rotation."""
    x, y, z, w = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def slerp(q0: np.ndarray, q1: np.ndarray, t: float) -> np.ndarray:
    """Spherical linear interpolation of unit quaternions."""
    q0, q1 = q0 / np.linalg.norm(q0), q1 / np.linalg.norm(q1)
    dot = float(np.dot(q0, q1))
    if dot < 0:
        q1, dot = -q1, -dot
    if dot > 0.9995:
        q = q0 + t * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    return (np.sin((1 - t) * theta) * q0 + np.sin(t * theta) * q1) / np.sin(theta)


class Trajectory:
    """Ground-truth camera-to-world poses, interpolated at any stamp inside the recording.

    Between two poses at most ``max_gap`` apart (motion capture at 100 Hz) the pose is
    interpolated. A stamp within ``same_stamp`` of a listed pose takes that pose as it is, so
    poses given only at the frames' own stamps (a reference SLAM or structure-from-motion run,
    keyframes seconds apart) work too.
    """

    def __init__(self, stamps: np.ndarray, poses: np.ndarray, max_gap: float = 0.05,
                 same_stamp: float = 1e-4):
        order = np.argsort(stamps)
        self.stamps, self.poses = stamps[order], poses[order]  # poses [N x 7]
        self.max_gap = max_gap
        self.same_stamp = same_stamp

    @classmethod
    def from_file(cls, path: Path) -> 'Trajectory':
        stamps, rest = read_stamped_list(path)
        poses = np.array([[float(v) for v in r.split()] for r in rest], np.float64)
        if poses.ndim != 2 or poses.shape[1] != 7:
            raise ValueError(f'{path}: expected "timestamp tx ty tz qx qy qz qw" per line')
        return cls(stamps, poses)

    def at(self, stamp: float) -> Optional[np.ndarray]:
        """4x4 camera-to-world at ``stamp``, or None outside the recording or across a gap."""
        i = int(np.searchsorted(self.stamps, stamp))
        for j in (i - 1, i):
            if 0 <= j < len(self.stamps) and abs(self.stamps[j] - stamp) <= self.same_stamp:
                return self._matrix(self.poses[j])
        if i == 0 or i >= len(self.stamps):
            return None
        t0, t1 = self.stamps[i - 1], self.stamps[i]
        if t1 - t0 > self.max_gap:
            return None
        a = (stamp - t0) / max(t1 - t0, 1e-9)
        p0, p1 = self.poses[i - 1], self.poses[i]
        return self._matrix(np.concatenate([p0[:3] + a * (p1[:3] - p0[:3]),
                                            slerp(p0[3:], p1[3:], a)]))

    @staticmethod
    def _matrix(pose7: np.ndarray) -> np.ndarray:
        """4x4 from ``tx ty tz qx qy qz qw``."""
        pose = np.eye(4)
        pose[:3, :3] = quat_to_matrix(pose7[3:])
        pose[:3, 3] = pose7[:3]
        return pose


@dataclass
class RgbdFrame:
    stamp: float
    rgb: Path
    depth: Optional[Path]
    pose: np.ndarray  # 4x4 camera-to-world


class TumSequence:
    """Frames of a TUM-format folder that have a ground-truth pose (and depth when listed)."""

    def __init__(self, root: str, camera: Camera, depth_scale: float = 5000.0,
                 max_depth_offset: float = 0.02):
        self.root = Path(root)
        self.camera = camera
        self.depth_scale = depth_scale
        for name in ('rgb.txt', 'groundtruth.txt'):
            if not (self.root / name).is_file():
                raise FileNotFoundError(f'{self.root} is not a TUM-format folder: no {name}')
        stamps, names = read_stamped_list(self.root / 'rgb.txt')
        trajectory = Trajectory.from_file(self.root / 'groundtruth.txt')
        depth_stamps, depth_names = (read_stamped_list(self.root / 'depth.txt')
                                     if (self.root / 'depth.txt').is_file() else
                                     (np.zeros(0), []))
        self.frames: List[RgbdFrame] = []
        for stamp, name in zip(stamps, names):
            pose = trajectory.at(stamp)
            if pose is None:
                continue
            depth = None
            if len(depth_stamps):
                j = int(np.abs(depth_stamps - stamp).argmin())
                if abs(depth_stamps[j] - stamp) <= max_depth_offset:
                    depth = self.root / depth_names[j].split()[0]
            self.frames.append(RgbdFrame(float(stamp), self.root / name.split()[0], depth, pose))
        if not self.frames:
            raise ValueError(f'{self.root}: no colour frame has a ground-truth pose')
        self.stamps = np.array([f.stamp for f in self.frames])

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def has_depth(self) -> bool:
        """Return True when any frame has a depth image (depth.txt listed and matched)."""
        return any(f.depth is not None for f in self.frames)

    def image(self, i: int) -> np.ndarray:
        img = cv2.imread(str(self.frames[i].rgb), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise FileNotFoundError(f'cannot read {self.frames[i].rgb}')
        return img

    def depth(self, i: int) -> Optional[np.ndarray]:
        """Depth in metres (0 = missing), or None when the frame has no depth image."""
        path = self.frames[i].depth
        if path is None:
            return None
        d = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH)
        if d is None:
            raise FileNotFoundError(f'cannot read {path}')
        return d.astype(np.float32) / self.depth_scale

    def relative_pose(self, i: int, j: int) -> np.ndarray:
        """T_j<-i: 4x4 transform of camera-i coordinates into camera j."""
        return np.linalg.inv(self.frames[j].pose) @ self.frames[i].pose


def split_by_time(stamps: np.ndarray, block: float = 4.0, val_every: int = 3,
                  val_offset: int = 1, guard: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """Training and validation frame indices from time blocks.

    The sequence is cut into ``block``-second blocks; every ``val_every``-th block (from
    ``val_offset``) is validation. Training frames closer than ``guard`` seconds to any
    validation frame are dropped, so no validation frame lies within ``guard`` of training.
    """
    t = stamps - stamps.min()
    blocks = np.floor(t / block).astype(int)
    val = np.nonzero(blocks % val_every == val_offset % val_every)[0]
    rest = np.setdiff1d(np.arange(len(stamps)), val)
    if len(val):
        near = np.abs(stamps[rest][:, None] - stamps[val][None]).min(1) < guard
        rest = rest[~near]
    return rest, val


def sample_depth(depth: np.ndarray, points: np.ndarray, max_spread: float = 0.05
                 ) -> np.ndarray:
    """Depth [m] at pixel positions [N x 2]; NaN where missing or on a depth discontinuity.

    The 3x3 neighbourhood must be complete and agree to ``max_spread`` (relative): keypoints on
    object boundaries have no reliable depth, and ground truth from them would be noise.
    """
    h, w = depth.shape
    out = np.full(len(points), np.nan)
    if len(points) == 0:
        return out
    x = np.round(points[:, 0]).astype(int)
    y = np.round(points[:, 1]).astype(int)
    ok = (x >= 1) & (x < w - 1) & (y >= 1) & (y < h - 1)
    xs, ys = x[ok], y[ok]
    patch = np.stack([depth[ys + dy, xs + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], 1)
    lo, hi, mid = patch.min(1), patch.max(1), patch[:, 4]
    good = (lo > 0) & ((hi - lo) <= max_spread * mid)
    vals = np.where(good, mid, np.nan)
    out[np.nonzero(ok)[0]] = vals
    return out


def reproject(points: np.ndarray, depth_src: np.ndarray, depth_dst: Optional[np.ndarray],
              camera: Camera, t_dst_src: np.ndarray, occlusion_tol: float = 0.05
              ) -> Tuple[np.ndarray, np.ndarray]:
    """Move source keypoints [N x 2] into the destination image with depth and pose.

    Returns (pixels [N x 2], NaN where unknown; status [N]: VISIBLE, OUT_OF_VIEW, OCCLUDED or
    UNKNOWN). UNKNOWN: no reliable source depth, or no destination depth to check occlusion
    against, or the destination surface lies behind the point (depth inconsistency).
    """
    n = len(points)
    status = np.full(n, UNKNOWN, np.int64)
    proj = np.full((n, 2), np.nan)
    if n == 0:
        return proj, status
    z = sample_depth(depth_src, points)
    has = np.isfinite(z)
    rays = camera.undistort(points)
    xyz = np.concatenate([rays * np.nan_to_num(z)[:, None], np.nan_to_num(z)[:, None]], 1)
    moved = xyz @ t_dst_src[:3, :3].T + t_dst_src[:3, 3]
    px, inside = camera.project(moved)
    status[has & ~inside] = OUT_OF_VIEW
    cand = has & inside
    proj[cand] = px[cand]
    if depth_dst is None:
        return proj, status
    z_dst = sample_depth(depth_dst, px[cand], max_spread=1.0)  # occlusion needs no smoothness
    z_pt = moved[cand, 2]
    tol = occlusion_tol * z_pt + 0.02  # Kinect noise grows with depth; 2 cm floor
    st = np.full(len(z_pt), UNKNOWN)
    known = np.isfinite(z_dst)
    st[known & (np.abs(z_pt - z_dst) <= tol)] = VISIBLE
    st[known & (z_pt - z_dst > tol)] = OCCLUDED
    status[cand] = st
    return proj, status


def depth_ground_truth(kpts0: np.ndarray, kpts1: np.ndarray, depth0: np.ndarray,
                       depth1: np.ndarray, camera: Camera, t_1_0: np.ndarray,
                       match_radius: float = 3.0, unmatched_radius: float = 5.0,
                       valid0: Optional[np.ndarray] = None, valid1: Optional[np.ndarray] = None
                       ) -> Dict[str, np.ndarray]:
    """Ground-truth partial assignment of two keypoint sets from depth and relative pose.

    ``t_1_0`` maps camera-0 coordinates into camera 1. A pair matches when the keypoints are
    mutual nearest neighbours of the symmetric reprojection error (the larger of the two
    directions where both are known) and it is below ``match_radius`` px. A keypoint goes to
    the dustbin (-1) when it projects out of view, is occluded, or is visible with no keypoint
    of the other image within ``unmatched_radius`` px; everything else is ignored (-2).
    ``valid`` masks mark padding keypoints: always dustbin, never matched, and never the reason
    another keypoint is ignored.
    Also returns the projections and statuses (for tests and pictures).
    """
    m, n = len(kpts0), len(kpts1)
    valid0 = np.ones(m, bool) if valid0 is None else valid0
    valid1 = np.ones(n, bool) if valid1 is None else valid1
    k0, k1 = np.asarray(kpts0, np.float64), np.asarray(kpts1, np.float64)
    proj0, st0 = reproject(k0, depth0, depth1, camera, t_1_0)
    proj1, st1 = reproject(k1, depth1, depth0, camera, np.linalg.inv(t_1_0))
    out = {'projections0': proj0, 'projections1': proj1, 'status0': st0, 'status1': st1}
    if m == 0 or n == 0:
        return {**out, 'gt_matches0': np.full(m, UNMATCHED, np.int64),
                'gt_matches1': np.full(n, UNMATCHED, np.int64)}
    # Pairs within the larger radius, with both errors: d01 in image 1, d10 in image 0 (NaN
    # where that projection is unknown). The match uses the larger known one.
    i, j, d01, d10 = candidate_pairs(proj0, k1, k0, proj1, max(match_radius, unmatched_radius))
    gt0, gt1 = mutual_matches(i, j, np.fmax(d01, d10), valid0, valid1, match_radius)
    out.update(gt_matches0=gt0, gt_matches1=gt1)

    def labels(gt: np.ndarray, status: np.ndarray, near: np.ndarray, valid: np.ndarray
               ) -> None:
        free = (gt < 0) & valid
        lonely = (status == VISIBLE) & ~near
        gone = (status == OUT_OF_VIEW) | (status == OCCLUDED)
        gt[free & ~(lonely | gone)] = IGNORE

    near0, near1 = neighbours(i, j, d01, d10, valid0, valid1, unmatched_radius)
    labels(gt0, st0, near0, valid0)
    labels(gt1, st1, near1, valid1)
    return out


def refine_relative_pose(points0: np.ndarray, points1: np.ndarray, depth0: np.ndarray,
                         camera: Camera, t_1_0: np.ndarray, max_residual: float = 40.0,
                         inlier_px: float = 3.0, min_points: int = 15,
                         max_change_deg: float = 6.0, max_change_m: float = 0.10
                         ) -> Tuple[np.ndarray, Dict[str, float]]:
    """Refine a ground-truth relative pose on candidate correspondences (RANSAC PnP, then LM).

    Motion-capture poses of a hand-held camera reproject several pixels off (hand-eye
    calibration, camera/mocap timing, rolling shutter): on TUM fr1_rpy, independent SIFT
    matches that pass an essential-matrix RANSAC lie a median 5 px (0.3 s apart) to 9 px
    (0.5-1 s) from their mocap reprojection, far beyond the 3 px match radius.
    ``points0/1`` are tentative matches (e.g. ORB NN + mutual). Those within
    ``max_residual`` px of the mocap prediction and with reliable depth seed a RANSAC PnP
    started from the mocap pose (``inlier_px`` threshold), refined by Levenberg-Marquardt on
    its inliers; outliers cannot pull the pose. The refined pose is kept when more candidates
    lie within ``inlier_px`` of it than of the mocap pose and it stays within ``max_change``
    of the mocap pose (a wrong consensus cannot move it far); otherwise the mocap pose is
    returned unchanged. ``info``: 'refined' (1/0), 'points' (candidates used), 'inliers',
    median residual of the candidates before and after [px].
    """
    info = {'refined': 0.0, 'points': 0.0, 'inliers': 0.0, 'residual_before': float('nan'),
            'residual_after': float('nan')}
    if len(points0) < min_points:
        return t_1_0, info
    proj, _ = reproject(points0, depth0, None, camera, t_1_0)
    res = np.linalg.norm(proj - points1, axis=1)
    use = np.isfinite(res) & (res < max_residual)
    info['points'] = float(use.sum())
    if use.sum() < min_points:
        return t_1_0, info
    z = sample_depth(depth0, points0[use])
    xyz = np.concatenate([camera.undistort(points0[use]) * z[:, None], z[:, None]], 1)
    img = camera.undistort(points1[use])  # normalised image coordinates: K = I below
    rvec, _ = cv2.Rodrigues(t_1_0[:3, :3])
    tvec = t_1_0[:3, 3].reshape(3, 1).copy()
    ok, rvec, tvec, inliers = cv2.solvePnPRansac(
        xyz, img, np.eye(3), None, rvec.copy(), tvec, useExtrinsicGuess=True,
        iterationsCount=200, reprojectionError=inlier_px / camera.fx, confidence=0.999,
        flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok or inliers is None or len(inliers) < min_points:
        return t_1_0, info
    inliers = inliers.ravel()
    info['inliers'] = float(len(inliers))
    rvec, tvec = cv2.solvePnPRefineLM(xyz[inliers], img[inliers], np.eye(3), None, rvec, tvec)
    refined = np.eye(4)
    refined[:3, :3] = cv2.Rodrigues(rvec)[0]
    refined[:3, 3] = tvec.ravel()
    after_proj, _ = reproject(points0[use], depth0, None, camera, refined)
    after = np.linalg.norm(after_proj - points1[use], axis=1)
    before = res[use]
    info.update(residual_before=float(np.median(before)),
                residual_after=float(np.nanmedian(after)))
    delta = refined @ np.linalg.inv(t_1_0)
    angle = np.degrees(np.arccos(np.clip((np.trace(delta[:3, :3]) - 1) / 2, -1, 1)))
    shift = float(np.linalg.norm(refined[:3, 3] - t_1_0[:3, 3]))
    with np.errstate(invalid='ignore'):
        gained = int((after < inlier_px).sum()) > int((before < inlier_px).sum())
    if gained and angle <= max_change_deg and shift <= max_change_m:
        info['refined'] = 1.0
        return refined, info
    return t_1_0, info

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""REFERENCE RGB-D back-end (example, not the product): sliding-window bundle adjustment.

What a keyframe back-end does with the matcher's ``Correspondences`` and the depth images:

- **Tracks.** A keypoint of the reference keyframe matched into the current keyframe extends
  that keypoint's landmark; an unmatched-before keypoint with valid depth starts a landmark,
  back-projected from the reference keyframe with its depth (depth-initialised).
- **Initial pose.** PnP + RANSAC (OpenCV) of the current keyframe against the landmarks it
  sees; the RANSAC outliers are not added as observations (the back-end's own gating).
- **Sliding-window BA** (GTSAM, Levenberg-Marquardt): the last ``window`` keyframe poses and the
  landmarks they see, with robust (Huber) reprojection factors. Where the observing frame has
  depth, the factor is RGB-D: a stereo reprojection factor with a virtual baseline
  (u_right = u - fx * b / z, as ORB-SLAM2 treats RGB-D), else a monocular one. Keyframes older
  than the window that see those landmarks stay fixed, and so does the oldest one in the
  window (gauge).

Poses are camera-to-world 4x4 (x right, y down, z forward, the first keyframe at the origin).
Pixels are undistorted with the camera model before any factor. No rclpy here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from ..datasets.rgbd import Camera, sample_depth
from ..refinement import matched_current_points, matched_reference_points


@dataclass
class KeyframeMatches:
    """One keyframe pair as the matcher publishes it, with the depth of both images."""

    reference_id: int
    current_id: int
    reference_stamp: float  # [s]
    current_stamp: float  # [s]
    reference_index: np.ndarray  # [M] keypoint indices into the reference Keypoints
    current_index: np.ndarray  # [M] keypoint indices into the current Keypoints
    reference_points: np.ndarray  # [M x 2] pixels
    current_points: np.ndarray  # [M x 2] pixels
    inlier: Optional[np.ndarray]  # [M] bool, None when the matcher did not verify
    reference_depth: Optional[np.ndarray]  # [H x W] metres, 0 = unknown
    current_depth: Optional[np.ndarray]


def _seconds(stamp) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def matches_from_message(msg, reference_depth: Optional[np.ndarray],
                         current_depth: Optional[np.ndarray]) -> KeyframeMatches:
    """Build KeyframeMatches from a superglue_ros_msgs/Correspondences (any deserialiser)."""
    inlier = np.asarray(bytearray(msg.inlier), bool) if msg.verified else None
    return KeyframeMatches(
        int(msg.reference_keyframe_id), int(msg.current_keyframe_id),
        _seconds(msg.reference_stamp), _seconds(msg.current_stamp),
        np.asarray(msg.reference_indices, np.int64), np.asarray(msg.current_indices, np.int64),
        # Sub-pixel refined where the matcher refined: the current points, and the reference
        # observations they were refined against (so tracks follow one physical point).
        matched_reference_points(msg), matched_current_points(msg),
        inlier, reference_depth, current_depth)


@dataclass
class _Observation:
    keyframe: int
    pixel: np.ndarray  # undistorted pixel (u, v)
    depth: float  # metres, NaN when unknown


@dataclass
class _Landmark:
    position: np.ndarray  # world [3]
    observations: List[_Observation] = field(default_factory=list)


class SlidingWindowBA:
    """Keyframe poses from matches and depth: PnP initialisation, sliding-window BA (GTSAM).

    ``add(matches)`` takes one KeyframeMatches and returns the current keyframe's
    camera-to-world pose; ``poses`` holds every keyframe's latest estimate, ``counts`` what
    happened (landmarks made, PnP failures, resets), all by name.

    ``use_inlier_flags``: drop the matches the matcher's verification flagged. Off by default:
    that check is a fundamental matrix on distorted pixels (no intrinsics), which rejects good
    matches near the border of a lens like the Kinect's; the PnP RANSAC on undistorted points
    and the robust factors gate outliers with the full geometry instead.
    """

    def __init__(self, camera: Camera, window: int = 8, pixel_sigma: float = 1.0,
                 virtual_baseline: float = 0.08, depth_range: Tuple[float, float] = (0.1, 6.0),
                 pnp_threshold_px: float = 3.0, min_pnp_points: int = 8, iterations: int = 15,
                 use_inlier_flags: bool = False):
        import gtsam  # optional dependency: only the back-end needs it
        self._gtsam = gtsam
        self.camera = camera
        self.window = int(window)
        self.pixel_sigma = float(pixel_sigma)
        self.baseline = float(virtual_baseline)
        self.depth_range = depth_range
        self.pnp_threshold_px = float(pnp_threshold_px)
        self.min_pnp_points = int(min_pnp_points)
        self.iterations = int(iterations)
        self.use_inlier_flags = bool(use_inlier_flags)
        self.poses: Dict[int, np.ndarray] = {}  # keyframe id -> camera-to-world 4x4
        self.stamps: Dict[int, float] = {}
        self.order: List[int] = []  # keyframe ids in arrival order
        self.landmarks: Dict[int, _Landmark] = {}
        self.tracks: Dict[Tuple[int, int], int] = {}  # (keyframe id, keypoint index) -> landmark
        self.seen: Dict[int, set] = {}  # keyframe id -> landmarks it observes
        self.counts: Counter = Counter()
        self._next_landmark = 0
        self._mono_k = gtsam.Cal3_S2(camera.fx, camera.fy, 0.0, camera.cx, camera.cy)
        self._stereo_k = gtsam.Cal3_S2Stereo(camera.fx, camera.fy, 0.0, camera.cx, camera.cy,
                                             self.baseline)
        huber = gtsam.noiseModel.mEstimator.Huber.Create(1.345)
        self._mono_noise = gtsam.noiseModel.Robust.Create(
            huber, gtsam.noiseModel.Isotropic.Sigma(2, self.pixel_sigma))
        self._stereo_noise = gtsam.noiseModel.Robust.Create(
            huber, gtsam.noiseModel.Isotropic.Sigma(3, self.pixel_sigma))
        self._fixed_noise = gtsam.noiseModel.Isotropic.Sigma(6, 1e-6)

    # -- public ------------------------------------------------------------------------------

    def start(self, keyframe_id: int, stamp: float,
              pose: Optional[np.ndarray] = None) -> np.ndarray:
        """Register a keyframe without matches (the first one, or after the matcher reset)."""
        if pose is None:
            pose = self.poses[self.order[-1]] if self.order else np.eye(4)
        self._register(keyframe_id, stamp, pose)
        return self.poses[keyframe_id]

    def add(self, m: KeyframeMatches) -> np.ndarray:
        """Add the current keyframe of ``m``; returns its camera-to-world pose."""
        if m.reference_id not in self.poses:
            self.counts['unknown_reference'] += 1  # matcher restarted or a keyframe lost
            self.start(m.reference_id, m.reference_stamp)
        if m.current_id in self.poses:
            self.counts['duplicate_keyframe'] += 1
            return self.poses[m.current_id]
        keep = np.ones(len(m.current_index), bool)
        if self.use_inlier_flags and m.inlier is not None and len(m.inlier) == len(keep):
            keep &= m.inlier
        self.counts['matches'] += len(keep)
        self.counts['matches_used'] += int(keep.sum())
        ref_px = self._undistort(m.reference_points[keep])
        cur_px = self._undistort(m.current_points[keep])
        ref_z = self._depth(m.reference_depth, m.reference_points[keep])
        cur_z = self._depth(m.current_depth, m.current_points[keep])
        landmarks = [self._landmark_of(m.reference_id, int(i), px, z)
                     for i, px, z in zip(m.reference_index[keep], ref_px, ref_z)]
        pose, accepted = self._initial_pose(m.reference_id, landmarks, cur_px)
        self._register(m.current_id, m.current_stamp, pose)
        for lm, i, px, z, ok in zip(landmarks, m.current_index[keep], cur_px, cur_z, accepted):
            if lm is None or not ok:
                continue
            self.landmarks[lm].observations.append(_Observation(m.current_id, px, z))
            self.tracks[(m.current_id, int(i))] = lm
            self.seen[m.current_id].add(lm)
            self.counts['observations'] += 1
        self._optimise()
        return self.poses[m.current_id]

    def trajectory(self) -> List[Tuple[float, np.ndarray]]:
        """(stamp [s], camera-to-world 4x4) of every keyframe, in arrival order."""
        return [(self.stamps[k], self.poses[k]) for k in self.order]

    # -- steps -------------------------------------------------------------------------------

    def _register(self, keyframe_id: int, stamp: float, pose: np.ndarray) -> None:
        self.poses[keyframe_id] = np.asarray(pose, np.float64).copy()
        self.stamps[keyframe_id] = float(stamp)
        self.order.append(keyframe_id)
        self.seen[keyframe_id] = set()

    def _undistort(self, points: np.ndarray) -> np.ndarray:
        n = self.camera.undistort(points)
        return n * [self.camera.fx, self.camera.fy] + [self.camera.cx, self.camera.cy]

    def _depth(self, depth: Optional[np.ndarray], points: np.ndarray) -> np.ndarray:
        if depth is None or len(points) == 0:
            return np.full(len(points), np.nan)
        z = sample_depth(depth, points)
        lo, hi = self.depth_range
        return np.where((z >= lo) & (z <= hi), z, np.nan)

    def _landmark_of(self, keyframe_id: int, index: int, pixel: np.ndarray,
                     z: float) -> Optional[int]:
        """Return the landmark of a reference keypoint; make it from depth when it has none."""
        lm = self.tracks.get((keyframe_id, index))
        if lm is not None or not np.isfinite(z):
            return lm
        ray = np.array([(pixel[0] - self.camera.cx) / self.camera.fx,
                        (pixel[1] - self.camera.cy) / self.camera.fy, 1.0])
        pose = self.poses[keyframe_id]
        lm = self._next_landmark
        self._next_landmark += 1
        self.landmarks[lm] = _Landmark(pose[:3, :3] @ (ray * z) + pose[:3, 3],
                                       [_Observation(keyframe_id, pixel, z)])
        self.tracks[(keyframe_id, index)] = lm
        self.seen[keyframe_id].add(lm)
        self.counts['landmarks'] += 1
        return lm

    def _initial_pose(self, reference_id: int, landmarks: List[Optional[int]],
                      pixels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Estimate the pose by PnP + RANSAC on the matched landmarks: (pose, accepted [M]).

        Without enough landmarks or a RANSAC solution: the reference pose, all accepted.
        """
        have = np.array([lm is not None for lm in landmarks], bool)
        accepted = have.copy()
        fallback = self.poses[reference_id]
        if have.sum() < self.min_pnp_points:
            self.counts['pnp_too_few'] += 1
            return fallback, accepted
        world = np.array([self.landmarks[lm].position for lm in landmarks if lm is not None])
        k = self.camera.k.copy()
        k[0, 1] = 0.0
        cv2.setRNGSeed(0)  # the same input gives the same trajectory
        ok, rvec, tvec, inliers = cv2.solvePnPRansac(
            world, pixels[have], k, None, reprojectionError=self.pnp_threshold_px,
            iterationsCount=200, confidence=0.999, flags=cv2.SOLVEPNP_EPNP)
        if not ok or inliers is None or len(inliers) < self.min_pnp_points:
            self.counts['pnp_failed'] += 1
            return fallback, accepted
        inl = inliers.ravel()
        rvec, tvec = cv2.solvePnPRefineLM(world[inl], pixels[have][inl], k, None, rvec, tvec)
        world_to_cam = np.eye(4)
        world_to_cam[:3, :3] = cv2.Rodrigues(rvec)[0]
        world_to_cam[:3, 3] = tvec.ravel()
        mask = np.zeros(int(have.sum()), bool)
        mask[inl] = True
        accepted[np.nonzero(have)[0]] = mask
        self.counts['pnp_outliers'] += int((~mask).sum())
        return np.linalg.inv(world_to_cam), accepted

    def _optimise(self) -> None:
        """Levenberg-Marquardt over the window's poses and landmarks (older poses fixed)."""
        g = self._gtsam
        window = self.order[-self.window:]
        if len(window) < 2:
            return
        in_window = set(window)
        candidates = sorted(set().union(*(self.seen[kf] for kf in window)))
        used = [lm for lm in candidates
                if sum(o.keyframe in in_window for o in self.landmarks[lm].observations) >= 2]
        if not used:
            return
        graph = g.NonlinearFactorGraph()
        values = g.Values()
        fixed = {window[0]}
        keyframes = set(window)
        for lm in used:
            for o in self.landmarks[lm].observations:
                if o.keyframe not in in_window:
                    fixed.add(o.keyframe)
                    keyframes.add(o.keyframe)
        for kf in keyframes:
            values.insert(g.symbol('x', kf), g.Pose3(self.poses[kf]))
            if kf in fixed:
                graph.add(g.PriorFactorPose3(g.symbol('x', kf), g.Pose3(self.poses[kf]),
                                             self._fixed_noise))
        for lm in used:
            land = self.landmarks[lm]
            values.insert(g.symbol('l', lm), g.Point3(*land.position))
            for o in land.observations:
                if o.keyframe not in keyframes:
                    continue
                u, v = float(o.pixel[0]), float(o.pixel[1])
                if np.isfinite(o.depth):
                    measured = g.StereoPoint2(u, u - self.camera.fx * self.baseline / o.depth, v)
                    graph.add(g.GenericStereoFactor3D(measured, self._stereo_noise,
                                                      g.symbol('x', o.keyframe),
                                                      g.symbol('l', lm), self._stereo_k))
                else:
                    graph.add(g.GenericProjectionFactorCal3_S2(
                        np.array([u, v]), self._mono_noise, g.symbol('x', o.keyframe),
                        g.symbol('l', lm), self._mono_k))
        params = g.LevenbergMarquardtParams()
        params.setMaxIterations(self.iterations)
        try:
            result = g.LevenbergMarquardtOptimizer(graph, values, params).optimize()
        except RuntimeError:  # indeterminate system (e.g. a landmark seen edge-on)
            self.counts['optimisation_failed'] += 1
            return
        self.counts['optimisations'] += 1
        for kf in window:
            if kf not in fixed:
                self.poses[kf] = result.atPose3(g.symbol('x', kf)).matrix()
        for lm in used:
            self.landmarks[lm].position = np.asarray(result.atPoint3(g.symbol('l', lm)))

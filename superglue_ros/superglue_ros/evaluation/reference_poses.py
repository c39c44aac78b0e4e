# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Reference poses for a sequence that has no ground truth: SIFT structure from motion.

Most users' sequences have no motion capture. Their camera poses can still be recovered well
enough to score matchers by relative-pose AUC: many SIFT features, matched between frames up to
``max_gap`` apart, verified by an essential-matrix RANSAC, joined into tracks, registered
frame by frame (PnP) and refined together by a robust bundle adjustment. The result is written
as a TUM-format folder that ``superglue-eval tum`` reads as a pose-only sequence.

The poses come from SIFT matches on the same images, so the SIFT baseline is scored against
its own kind of matches and is favoured; the ORB matchers (ours and brute force) are not.
The bundle adjustment's reprojection error says how far the poses can be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .motion import undistorted_pixels
from ..classical import nn_ratio_mutual
from ..datasets.rgbd import Camera
from ..features import Features, SiftExtractor
from ..geometry import rotation_to_quaternion

Tracks = List[Dict[int, int]]  # per track: frame index -> keypoint index
# Verified pairs: (i, j) -> ([M x 2] keypoint indices of the RANSAC inliers, essential matrix).
Verified = Dict[Tuple[int, int], Tuple[np.ndarray, np.ndarray]]


@dataclass
class ReferencePoses:
    """Camera-to-world poses (None: frame not registered) and the reconstruction's quality."""

    poses: List[Optional[np.ndarray]]
    points: int = 0
    observations: int = 0
    median_px: float = float('nan')
    p90_px: float = float('nan')
    within_1px: float = float('nan')
    frame_median_px: List[float] = field(default_factory=list)
    frame_inliers: List[int] = field(default_factory=list)

    def summary(self) -> Dict[str, object]:
        """JSON-ready figures (no poses)."""
        return {'frames': len(self.poses),
                'registered': int(sum(p is not None for p in self.poses)),
                'points': self.points, 'observations': self.observations,
                'median_px': self.median_px, 'p90_px': self.p90_px,
                'within_1px': self.within_1px, 'frame_median_px': self.frame_median_px,
                'frame_inliers': self.frame_inliers}


def root_sift(image: np.ndarray, camera: Camera, max_features: int) -> Features:
    """SIFT features with RootSIFT descriptors, keypoints as undistorted pinhole pixels."""
    f = SiftExtractor(max_features)(image)
    desc = np.sqrt(f.descriptors / (f.descriptors.sum(1, keepdims=True) + 1e-7))
    return replace(f, descriptors=desc.astype(np.float32),
                   keypoints=undistorted_pixels(camera, f.keypoints))


def verified_matches(features: Sequence[Features], k: np.ndarray, max_gap: int,
                     ratio: float = 0.8, ransac_px: float = 1.0, min_inliers: int = 30
                     ) -> Verified:
    """Mutual ratio-test matches of frames up to ``max_gap`` apart, essential-RANSAC inliers.

    Returns the pairs with at least ``min_inliers``, with their essential matrix.
    """
    out = {}
    n = len(features)
    for i in range(n):
        for j in range(i + 1, min(n, i + max_gap + 1)):
            i0, i1, _ = nn_ratio_mutual(features[i], features[j], ratio)
            if len(i0) < min_inliers:
                continue
            e, mask = cv2.findEssentialMat(features[i].keypoints[i0], features[j].keypoints[i1],
                                           k, cv2.RANSAC, 0.9999, ransac_px)
            if e is None or e.shape != (3, 3):
                continue  # None, or several stacked solutions of a degenerate sample
            inliers = np.stack([i0, i1], 1)[mask.ravel().astype(bool)]
            if len(inliers) >= min_inliers:
                out[(i, j)] = (inliers, e)
    return out


def build_tracks(matches: Dict[Tuple[int, int], np.ndarray]) -> Tracks:
    """Join pairwise matches into tracks; drop tracks that hold two keypoints of one frame."""
    parent: Dict[Tuple[int, int], Tuple[int, int]] = {}

    def root(node):
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for (i, j), pairs in matches.items():
        for a, b in pairs:
            ra, rb = root((i, int(a))), root((j, int(b)))
            if ra != rb:
                parent[ra] = rb
    groups: Dict[Tuple[int, int], List[Tuple[int, int]]] = {}
    for node in list(parent):
        groups.setdefault(root(node), []).append(node)
    tracks = []
    for nodes in groups.values():
        frames = [f for f, _ in nodes]
        if len(nodes) >= 2 and len(set(frames)) == len(frames):
            tracks.append(dict(sorted(nodes)))
    return tracks


def _project(r: np.ndarray, t: np.ndarray, k: np.ndarray, x: np.ndarray
             ) -> Tuple[np.ndarray, np.ndarray]:
    """World points [N x 3] -> pixels [N x 2] and depths [N] of a world-to-camera pose."""
    c = x @ r.T + t
    p = c @ k.T
    return p[:, :2] / p[:, 2:3], c[:, 2]


class _Reconstruction:
    """Incremental registration: PnP for each new frame, then triangulation of new tracks."""

    def __init__(self, points: Sequence[np.ndarray], tracks: Tracks, k: np.ndarray,
                 max_px: float, min_angle_deg: float):
        self.kp, self.tracks, self.k = points, tracks, k
        self.max_px, self.min_cos = max_px, np.cos(np.radians(min_angle_deg))
        n = len(points)
        self.r: List[Optional[np.ndarray]] = [None] * n
        self.t: List[Optional[np.ndarray]] = [None] * n
        self.xyz: List[Optional[np.ndarray]] = [None] * len(tracks)
        self.inliers = [0] * n
        self.frame_tracks: List[List[int]] = [[] for _ in range(n)]
        for tid, track in enumerate(tracks):
            for f in track:
                self.frame_tracks[f].append(tid)

    def triangulate(self, frame: int) -> None:
        """Triangulate the tracks of a newly registered frame that have no point yet."""
        for tid in self.frame_tracks[frame]:
            track = self.tracks[tid]
            if self.xyz[tid] is not None:
                continue
            seen = [(f, kp) for f, kp in track.items() if self.r[f] is not None]
            if len(seen) < 2:
                continue
            (fa, ka), (fb, kb) = seen[0], seen[-1]  # the widest baseline of a sequence
            pa = self.k @ np.hstack([self.r[fa], self.t[fa][:, None]])
            pb = self.k @ np.hstack([self.r[fb], self.t[fb][:, None]])
            xh = cv2.triangulatePoints(pa, pb, self.kp[fa][ka][:, None], self.kp[fb][kb][:, None])
            if abs(xh[3, 0]) < 1e-12:
                continue
            x = xh[:3, 0] / xh[3, 0]
            rays = [x + self.r[f].T @ self.t[f] for f in (fa, fb)]  # point minus centre
            cos = rays[0] @ rays[1] / (np.linalg.norm(rays[0]) * np.linalg.norm(rays[1]))
            if cos > self.min_cos:
                continue  # too little parallax for a usable depth
            ok = True
            for f, kp in seen:
                pix, z = _project(self.r[f], self.t[f], self.k, x[None])
                ok &= bool(z[0] > 0 and np.linalg.norm(pix[0] - self.kp[f][kp]) <= self.max_px)
            if ok:
                self.xyz[tid] = x

    def start(self, verified: Verified) -> None:
        """Two-view start: the verified pair whose points show the most parallax."""
        best, best_score = None, -1.0
        for (i, j), (m, e) in verified.items():
            p0, p1 = self.kp[i][m[:, 0]], self.kp[j][m[:, 1]]
            inliers, r, t, _ = cv2.recoverPose(e, p0, p1, self.k)
            score = inliers * min(1.0, float(np.median(np.linalg.norm(p1 - p0, axis=1))) / 40)
            if score > best_score:
                best, best_score = (i, j, r, t.ravel()), score
        if best is None:
            raise ValueError('no two frames share enough verified SIFT matches to start from')
        i, j, r, t = best
        self.r[i], self.t[i] = np.eye(3), np.zeros(3)
        self.r[j], self.t[j] = r, t
        self.inliers[i] = self.inliers[j] = len(verified[(i, j)][0])
        self.triangulate(j)

    def register_all(self, min_inliers: int) -> None:
        """Register the frame with the most 2D-3D matches next, until none can be."""
        while True:
            candidates = []
            for f in range(len(self.kp)):
                if self.r[f] is not None:
                    continue
                ids = [tid for tid in self.frame_tracks[f] if self.xyz[tid] is not None]
                candidates.append((len(ids), f, ids))
            candidates = [c for c in candidates if c[0] >= min_inliers]
            if not candidates:
                return
            for _, f, ids in sorted(candidates, reverse=True):
                x3 = np.array([self.xyz[tid] for tid in ids])
                x2 = np.array([self.kp[f][self.tracks[tid][f]] for tid in ids])
                ok, rvec, tvec, inl = cv2.solvePnPRansac(
                    x3, x2, self.k, None, reprojectionError=self.max_px, iterationsCount=2000,
                    confidence=0.9999)
                if ok and inl is not None and len(inl) >= min_inliers:
                    self.r[f], self.t[f] = cv2.Rodrigues(rvec)[0], tvec.ravel()
                    self.inliers[f] = len(inl)
                    self.triangulate(f)
                    break
            else:
                return


def bundle_adjust(rec: _Reconstruction, loss_scale_px: float = 1.0, max_evaluations: int = 100
                  ) -> np.ndarray:
    """Refine all registered poses (the first one fixed) and points; returns the residuals."""
    from scipy.optimize import least_squares
    from scipy.sparse import lil_matrix
    frames = [f for f in range(len(rec.kp)) if rec.r[f] is not None]
    fixed, free = frames[0], frames[1:]
    slot = {f: s for s, f in enumerate(free)}
    tids = [t for t, x in enumerate(rec.xyz) if x is not None]
    obs_f, obs_p, obs_xy = [], [], []
    for p, tid in enumerate(tids):
        for f, kp in rec.tracks[tid].items():
            if rec.r[f] is not None:
                obs_f.append(f)
                obs_p.append(p)
                obs_xy.append(rec.kp[f][kp])
    obs_f, obs_p, obs_xy = np.array(obs_f), np.array(obs_p), np.array(obs_xy)
    n_pose = 6 * len(free)

    def unpack(x):
        rs, ts = {fixed: rec.r[fixed]}, {fixed: rec.t[fixed]}
        for f, s in slot.items():
            rs[f], ts[f] = cv2.Rodrigues(x[6 * s:6 * s + 3])[0], x[6 * s + 3:6 * s + 6]
        return rs, ts, x[n_pose:].reshape(-1, 3)

    def residuals(x):
        rs, ts, xyz = unpack(x)
        res = np.empty((len(obs_xy), 2))
        for f in frames:
            sel = obs_f == f
            res[sel] = _project(rs[f], ts[f], rec.k, xyz[obs_p[sel]])[0] - obs_xy[sel]
        return res.ravel()

    sparsity = lil_matrix((2 * len(obs_xy), n_pose + 3 * len(tids)), dtype=np.int8)
    for o, (f, p) in enumerate(zip(obs_f, obs_p)):
        if f in slot:
            sparsity[2 * o:2 * o + 2, 6 * slot[f]:6 * slot[f] + 6] = 1
        sparsity[2 * o:2 * o + 2, n_pose + 3 * p:n_pose + 3 * p + 3] = 1
    x0 = np.concatenate([np.concatenate([cv2.Rodrigues(rec.r[f])[0].ravel(), rec.t[f]])
                         for f in free] + [np.array([rec.xyz[t] for t in tids]).ravel()])
    sol = least_squares(residuals, x0, jac_sparsity=sparsity, loss='soft_l1',
                        f_scale=loss_scale_px, x_scale='jac', max_nfev=max_evaluations)
    rs, ts, xyz = unpack(sol.x)
    for f in free:
        rec.r[f], rec.t[f] = rs[f], ts[f]
    for p, tid in enumerate(tids):
        rec.xyz[tid] = xyz[p]
    errors = np.linalg.norm(sol.fun.reshape(-1, 2), axis=1)
    return np.stack([obs_f, errors], 1)


def reference_poses(images: Sequence[np.ndarray], camera: Camera, max_gap: int = 4,
                    max_features: int = 8000, max_px: float = 2.0,
                    min_angle_deg: float = 1.0, min_inliers: int = 20) -> ReferencePoses:
    """Camera-to-world poses of a sequence of images (grey or BGR) of one camera.

    Frames up to ``max_gap`` apart are matched; the gauge is the start pair's first frame,
    the scale is arbitrary (relative-pose AUC uses only the translation's direction). Frames
    that cannot be registered (fewer than ``min_inliers`` PnP inliers) get None.
    """
    if len(images) < 2:
        raise ValueError(f'reference poses need at least 2 images, got {len(images)}')
    feats = [root_sift(image, camera, max_features) for image in images]
    verified = verified_matches(feats, camera.k, max_gap)
    tracks = build_tracks({pair: m for pair, (m, _) in verified.items()})
    points = [f.keypoints.astype(np.float64) for f in feats]
    rec = _Reconstruction(points, tracks, camera.k, max_px, min_angle_deg)
    rec.start(verified)
    rec.register_all(min_inliers)
    residual = bundle_adjust(rec)
    poses: List[Optional[np.ndarray]] = []
    for r, t in zip(rec.r, rec.t):
        if r is None:
            poses.append(None)
            continue
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = r.T, -r.T @ t
        poses.append(pose)
    frames, errors = residual[:, 0].astype(int), residual[:, 1]
    return ReferencePoses(
        poses=poses, points=int(sum(x is not None for x in rec.xyz)),
        observations=int(len(errors)), median_px=float(np.median(errors)),
        p90_px=float(np.percentile(errors, 90)), within_1px=float(100 * np.mean(errors < 1)),
        frame_median_px=[float(np.median(errors[frames == f])) if np.any(frames == f)
                         else float('nan') for f in range(len(images))],
        frame_inliers=list(rec.inliers))


def write_tum_folder(out: Path, stamps: Sequence[float], images: Sequence[Path],
                     poses: Sequence[Optional[np.ndarray]]) -> Path:
    """Write rgb.txt and groundtruth.txt (registered frames only) for ``superglue-eval tum``.

    Images inside ``out`` are written relative to it (the folder can move); others as given,
    so absolute paths keep the images where they are.
    """
    out.mkdir(parents=True, exist_ok=True)
    root = out.resolve()
    rgb = ['# timestamp filename']
    truth = ['# timestamp tx ty tz qx qy qz qw (camera-to-world; reference poses from SIFT '
             'structure from motion, scale arbitrary)']
    for stamp, image, pose in zip(stamps, images, poses):
        image = Path(image)
        inside = image.is_absolute() and root in image.parents
        rgb.append(f'{stamp:.6f} {image.relative_to(root) if inside else image}')
        if pose is not None:
            q, c = rotation_to_quaternion(pose[:3, :3]), pose[:3, 3]
            truth.append(f'{stamp:.6f} ' + ' '.join(f'{v:.9f}' for v in (*c, *q)))
    (out / 'rgb.txt').write_text('\n'.join(rgb) + '\n')
    (out / 'groundtruth.txt').write_text('\n'.join(truth) + '\n')
    return out

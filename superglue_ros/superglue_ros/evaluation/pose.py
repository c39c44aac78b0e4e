# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Relative-pose evaluation on image pairs with ground truth (SuperGlue pairs-file rows).

Row: ``name0 name1 rot0 rot1 K0(9) K1(9) T_0to1(16)``; rot = number of 90-degree
counter-clockwise rotations to apply to the stored image (EXIF-style).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from .baselines import MatchFn, run_matcher
from .motion import undistorted_pixels
from ..features import DEFAULT_DISTRIBUTION, OrbExtractor, to_gray
from ..geometry import epipolar_error, estimate_pose, pose_auc, relative_pose_error

WIDTH, HEIGHT = 640, 480
EPIPOLAR_THRESHOLD = 5e-4


@dataclass
class PosePair:
    name0: str
    name1: str
    rot0: int
    rot1: int
    k0: np.ndarray
    k1: np.ndarray
    t_0to1: np.ndarray


def parse_pairs(path: Path) -> List[PosePair]:
    """Read a pairs file; raises ValueError naming the line for malformed rows."""
    pairs = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith('#'):
            continue
        if len(parts) != 38:
            raise ValueError(f'{path}:{n}: expected 38 fields (name0 name1 rot0 rot1 K0(9) '
                             f'K1(9) T_0to1(16)), got {len(parts)}')
        vals = np.array(parts[4:], np.float64)
        pairs.append(PosePair(parts[0], parts[1], int(parts[2]), int(parts[3]),
                              vals[:9].reshape(3, 3), vals[9:18].reshape(3, 3),
                              vals[18:].reshape(4, 4)))
    return pairs


def rotate_intrinsics(k: np.ndarray, width: int, height: int, rot: int) -> np.ndarray:
    """Intrinsics of the image after np.rot90(image, rot) (counter-clockwise)."""
    k = k.copy()
    for _ in range(rot % 4):
        fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
        k = np.array([[fy, 0, cy], [0, fx, width - 1 - cx], [0, 0, 1]])
        width, height = height, width
    return k


def rotation_z(rot: int) -> np.ndarray:
    """Camera-frame rotation matching np.rot90(image, rot): x' = y, y' = -x per step."""
    r = np.eye(4)
    step = np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]], np.float64)
    for _ in range(rot % 4):
        r[:3, :3] = step @ r[:3, :3]
    return r


def load_rotated(path: Path, rot: int, k: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Read, rotate, resize to 640x480; returns (BGR image, scaled intrinsics)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f'cannot read {path}')
    h, w = img.shape[:2]
    k = rotate_intrinsics(k, w, h, rot)
    img = np.ascontiguousarray(np.rot90(img, rot))
    h, w = img.shape[:2]
    scale = np.diag([WIDTH / w, HEIGHT / h, 1.0])
    return cv2.resize(img, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA), scale @ k


def evaluate(pairs: Sequence[PosePair], image_dir: Path, matchers: Dict[str, MatchFn],
             num_keypoints: int = 1024, ransac_px: float = 1.0,
             distribution: str = DEFAULT_DISTRIBUTION) -> Dict[str, Dict]:
    """AUC@5/10/20 deg, precision, matching score, matches and ms per pair, per matcher."""
    extractor = OrbExtractor(num_keypoints, distribution=distribution)
    prepared = []
    for p in pairs:
        img0, k0 = load_rotated(Path(image_dir) / p.name0, p.rot0, p.k0)
        img1, k1 = load_rotated(Path(image_dir) / p.name1, p.rot1, p.k1)
        t = rotation_z(p.rot1) @ p.t_0to1 @ np.linalg.inv(rotation_z(p.rot0))
        prepared.append((extractor(img0), extractor(img1), k0, k1, t, to_gray(img0),
                         to_gray(img1)))
    results = {}
    for name, fn in matchers.items():
        errors, prec, mscore, counts, times, rows = [], [], [], [], [], []
        for p, (f0, f1, k0, k1, t, g0, g1) in zip(pairs, prepared):
            m = run_matcher(fn, f0, f1, g0, g1)  # a Refined matcher refines points1
            i0, pts0, pts1 = m.index0, m.points0, m.points1
            times.append(m.seconds)
            counts.append(len(i0))
            correct = epipolar_error(pts0, pts1, t, k0, k1) < EPIPOLAR_THRESHOLD \
                if len(i0) else np.zeros(0, bool)
            prec.append(float(correct.mean()) if len(i0) else 0.0)
            mscore.append(float(correct.sum()) / max(len(f0), 1))
            est = estimate_pose(pts0, pts1, k0, k1, ransac_px)
            if est is None:
                err = float('inf')
            else:
                err_r, err_t = relative_pose_error(t, est[0], est[1])
                err = max(err_r, err_t)
            errors.append(err)
            rows.append({'pair': f'{p.name0} {p.name1}', 'pose_error_deg': err,
                         'matches': len(i0), 'precision': prec[-1]})
        auc = pose_auc(np.array(errors), (5, 10, 20))
        results[name] = {
            'auc@5': auc[0], 'auc@10': auc[1], 'auc@20': auc[2],
            'precision': float(np.mean(prec)) if prec else 0.0,
            'matching_score': float(np.mean(mscore)) if mscore else 0.0,
            'matches_per_pair': float(np.mean(counts)) if counts else 0.0,
            'ms_per_pair': 1e3 * float(np.median(times)) if times else 0.0,
            'pairs': len(pairs), 'per_pair': rows,
        }
    return results


def write_synthetic_pairs(image_paths: Sequence[Path], out_dir: Path, seed: int = 0,
                          depth: float = 4.0) -> Path:
    """Build a pairs file with exact relative poses from real images (planar scene model).

    Each image is treated as a fronto-parallel plane at ``depth`` seen by a 640x480 camera;
    a second camera with a known rotation and translation sees it through the induced
    homography H = K (R + t n^T / d) K^-1. Writes images and pairs.txt into out_dir.
    """
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    f = 500.0
    k = np.array([[f, 0, (WIDTH - 1) / 2], [0, f, (HEIGHT - 1) / 2], [0, 0, 1]])
    lines = []
    for i, path in enumerate(image_paths):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f'cannot read {path}')
        img = cv2.resize(img, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        r, _ = cv2.Rodrigues(axis * np.deg2rad(rng.uniform(4, 9)))
        t = rng.normal(size=3)
        t = t / np.linalg.norm(t) * rng.uniform(0.4, 0.8)
        n = np.array([0.0, 0.0, 1.0])
        hom = k @ (r + np.outer(t, n) / depth) @ np.linalg.inv(k)
        warped = cv2.warpPerspective(img, hom, (WIDTH, HEIGHT))
        name0, name1 = f'pair{i}_0.png', f'pair{i}_1.png'
        cv2.imwrite(str(out_dir / name0), img)
        cv2.imwrite(str(out_dir / name1), warped)
        t44 = np.eye(4)
        t44[:3, :3], t44[:3, 3] = r, t
        vals = np.concatenate([k.ravel(), k.ravel(), t44.ravel()])
        lines.append(f'{name0} {name1} 0 0 ' + ' '.join(f'{v:.10g}' for v in vals))
    pairs = out_dir / 'pairs.txt'
    pairs.write_text('\n'.join(lines) + '\n')
    return pairs


def pair_pose_error(points0: np.ndarray, points1: np.ndarray, camera, t_1_0: np.ndarray,
                    ransac_px: float = 1.0) -> Tuple[float, float, int]:
    """(rotation error, translation direction error [deg], essential-matrix inliers).

    Matches in two images of one camera, distortion removed before the RANSAC essential
    matrix; ``t_1_0`` maps camera-0 coordinates into camera 1. Errors are inf when no pose
    can be estimated (fewer than 5 matches, degenerate geometry).
    """
    if len(points0) < 5:
        return float('inf'), float('inf'), 0
    p0, p1 = undistorted_pixels(camera, points0), undistorted_pixels(camera, points1)
    est = estimate_pose(p0, p1, camera.k, camera.k, ransac_px)
    if est is None:
        return float('inf'), float('inf'), 0
    err_r, err_t = relative_pose_error(t_1_0, est[0], est[1])
    return float(err_r), float(err_t), int(np.sum(est[2]))

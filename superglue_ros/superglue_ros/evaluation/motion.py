# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Matching on real camera motion: relative pose, epipolar and depth-verified accuracy.

Pairs come from TUM-format RGB-D folders (``datasets.rgbd``). Per matcher: relative-pose AUC
(essential matrix on undistorted points, error = max of rotation and translation-direction
errors), rotation-error AUC (rotation-dominant motion leaves the translation direction
ill-posed), precision against the ground-truth epipolar geometry, and precision / recall
against the depth ground truth.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .baselines import MatchFn, run_matcher
from ..classical import nn_mutual
from ..datasets.assignment import IGNORE
from ..datasets.motion import refined_ground_truth
from ..datasets.rgbd import (Camera, OCCLUDED, OUT_OF_VIEW, reproject, TumSequence, UNKNOWN,
                             VISIBLE)
from ..features import Features, SiftExtractor, to_gray
from ..geometry import epipolar_error, error_auc, estimate_pose, relative_pose_error

EPIPOLAR_THRESHOLD = 5e-4  # symmetric epipolar distance in normalised coordinates
AUC_THRESHOLDS = (5, 10, 20)


@dataclass
class MotionPair:
    """Two frames of a sequence with their features and ground truth."""

    name: str
    features0: Features
    features1: Features
    camera: Camera
    t_1_0: np.ndarray  # motion-capture relative pose (pose errors are measured against it)
    gt_matches0: np.ndarray  # depth ground truth on the refined pose (-1 dustbin, -2 ignore)
    projections0: np.ndarray  # [M x 2] keypoints0 moved into image 1 (NaN: unknown)
    projections1: np.ndarray  # [N x 2] keypoints1 moved into image 0 (NaN: unknown)
    status0: np.ndarray  # [M] rgbd VISIBLE / OUT_OF_VIEW / OCCLUDED / UNKNOWN
    gap: float
    image0: Optional[np.ndarray] = None  # grayscale, for matchers that refine on the images
    image1: Optional[np.ndarray] = None
    depth_pose: Optional[np.ndarray] = None  # the pose gt_matches0 comes from (refined)
    frames: Optional[Tuple[int, int]] = None  # sequence indices of a real pair


def match_accuracy(index0: np.ndarray, index1: np.ndarray, kpts0: np.ndarray,
                   kpts1: np.ndarray, proj0: np.ndarray, proj1: np.ndarray,
                   status0: np.ndarray, gt_matches0: np.ndarray, radius: float = 3.0
                   ) -> Dict[str, int]:
    """Depth-verified counts for predicted matches (index0[k], index1[k]).

    A prediction is verifiable when its reprojection error is known in either direction or
    when keypoint 0 is known to be out of view or occluded; it is correct when the larger known
    reprojection error is below ``radius`` px. Geometric, not index-based: ORB often detects
    one corner at two pyramid levels a pixel apart, and either is a correct match. Recall
    counts ground-truth matches of keypoints0 whose predicted partner is correct.
    """
    e01 = np.linalg.norm(proj0[index0] - kpts1[index1], axis=1)
    e10 = np.linalg.norm(kpts0[index0] - proj1[index1], axis=1)
    err = np.fmax(e01, e10)  # NaN only when neither direction is known
    gone = np.isin(status0[index0], (OUT_OF_VIEW, OCCLUDED))
    labelled = np.isfinite(err) | gone
    correct = np.isfinite(err) & (err < radius) & ~gone
    has_gt = gt_matches0[index0] >= 0
    return {'depth_labelled': int(labelled.sum()), 'depth_correct': int(correct.sum()),
            'gt_matches': int((gt_matches0 >= 0).sum()),
            'gt_recalled': int((correct & has_gt).sum())}


def covisibility(seq: TumSequence, i: int, j: int, step: int = 32) -> float:
    """Share of frame i's pixels with depth that are visible in frame j (a grid sample).

    A detector-independent overlap measure (ScanNet-style pair selection), so every matcher
    and front-end is evaluated on the same pairs. Without depth in frame i (a pose-only
    sequence) it is the share that stays in view under the relative rotation alone, as for a
    far scene: a proxy that ignores translation.
    """
    h, w = seq.camera.height, seq.camera.width
    xs, ys = np.meshgrid(np.arange(step // 2, w, step), np.arange(step // 2, h, step))
    grid = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    depth_i = seq.depth(i)
    if depth_i is None:
        rays = np.concatenate([seq.camera.undistort(grid), np.ones((len(grid), 1))], 1)
        _, inside = seq.camera.project(rays @ seq.relative_pose(i, j)[:3, :3].T)
        return float(inside.mean())
    _, status = reproject(grid, depth_i, seq.depth(j), seq.camera, seq.relative_pose(i, j))
    known = status != UNKNOWN  # no depth in frame i, or nothing to compare in frame j
    return float((status == VISIBLE).sum() / max(known.sum(), 1))


def select_pairs(seq: TumSequence, frames: np.ndarray, gaps: Sequence[float],
                 stride: int = 1, tolerance: float = 0.04, min_covisibility: float = 0.0
                 ) -> List[Tuple[int, int, float]]:
    """Build (i, j, gap) for every ``stride``-th frame i and each gap; j is nearest t_i + gap.

    Both frames must be in ``frames`` (a split) and have depth, unless the sequence has none
    at all (pose only: no depth metrics, overlap from the rotation, ``covisibility``); j is
    within ``tolerance`` s of the requested gap; with ``min_covisibility`` > 0 pairs that
    overlap less are skipped.
    """
    frames = np.asarray(frames)
    pose_only = not seq.has_depth
    allowed = set(int(f) for f in frames if pose_only or seq.frames[int(f)].depth is not None)
    out = []
    for i in frames[::max(1, stride)]:
        i = int(i)
        if i not in allowed:
            continue
        for gap in gaps:
            j = int(np.abs(seq.stamps - (seq.stamps[i] + gap)).argmin())
            if j in allowed and j != i and abs(seq.stamps[j] - seq.stamps[i] - gap) <= tolerance:
                if min_covisibility <= 0 or covisibility(seq, i, j) >= min_covisibility:
                    out.append((i, j, float(gap)))
    return out


def make_pairs(seq: TumSequence, pairs: Sequence[Tuple[int, int, float]], extractor,
               min_matches: int = 0, refine: bool = True) -> List[MotionPair]:
    """Detect features and build depth ground truth (``min_matches``: drop pairs with fewer).

    A pair without depth (a pose-only sequence) gets no depth ground truth: every keypoint is
    ignored by the depth-verified precision and recall, and the pose and epipolar figures
    stand alone.
    """
    cache: Dict[int, Features] = {}
    grays: Dict[int, np.ndarray] = {}
    depths: Dict[int, np.ndarray] = {}

    def features(i: int) -> Features:
        if i not in cache:
            image = seq.image(i)
            cache[i], grays[i] = extractor(image), to_gray(image)
        return cache[i]

    def depth(i: int) -> np.ndarray:  # each frame is read once, not once per pair
        if i not in depths:
            depths[i] = seq.depth(i)
        return depths[i]

    out = []
    for i, j, gap in pairs:
        f0, f1 = features(i), features(j)
        t_1_0 = seq.relative_pose(i, j)
        if depth(i) is None or depth(j) is None:
            gt = {'pose': None, 'gt_matches0': np.full(len(f0), IGNORE, np.int64),
                  'projections0': np.full((len(f0), 2), np.nan),
                  'projections1': np.full((len(f1), 2), np.nan),
                  'status0': np.full(len(f0), UNKNOWN, np.int64)}
        else:
            gt = refined_ground_truth(f0, f1, f0.keypoints, f1.keypoints, depth(i), depth(j),
                                      seq.camera, t_1_0, refine)
        if min_matches and int((gt['gt_matches0'] >= 0).sum()) < min_matches:
            continue
        out.append(MotionPair(f'{seq.frames[i].rgb.name} {seq.frames[j].rgb.name}', f0, f1,
                              seq.camera, t_1_0, gt['gt_matches0'], gt['projections0'],
                              gt['projections1'], gt['status0'], gap, grays[i], grays[j],
                              gt['pose'], (int(i), int(j))))
    return out


def ground_truth_check(seq: TumSequence, pairs: Sequence[MotionPair], radius: float = 3.0,
                       ransac_px: float = 0.75) -> Dict[str, Dict[str, float]]:
    """Measure how far independent matches lie from the ground truth, by gap (3 px or worse?).

    For each real pair with depth: SIFT mutual nearest neighbours (another detector and
    descriptor than the ORB matches the pose was refined on) that pass an essential-matrix
    RANSAC (``ransac_px``) are moved into image 1 with frame 0's depth, once by the
    motion-capture pose and once by the pose the labels come from. Returns, per gap and
    pose ('mocap', 'labels'): the median distance [px], the share within ``radius`` [%] and
    the number of points. Some RANSAC inliers are wrong matches along their epipolar line, so
    the share is a lower bound. A median near 1 px says the depth-verified figures can be
    trusted; several px say the labels themselves are wrong (calibration, timing). Per gap
    also ``rotation_difference_deg``: the median angle between the two poses' rotations, the
    size of the mocap's own error that pose AUCs (measured against it) cannot resolve.
    """
    sift = SiftExtractor(2048)
    errors: Dict[str, Dict[float, List[np.ndarray]]] = {'mocap': {}, 'labels': {}}
    angles: Dict[float, List[float]] = {}
    for pair in pairs:
        if pair.depth_pose is None or pair.frames is None or pair.image0 is None:
            continue
        angles.setdefault(pair.gap, []).append(relative_pose_error(
            pair.t_1_0, pair.depth_pose[:3, :3], pair.depth_pose[:3, 3])[0])
        f0, f1 = sift(pair.image0), sift(pair.image1)
        i0, i1, _ = nn_mutual(f0, f1)
        if len(i0) < 8:
            continue
        p0, p1 = f0.keypoints[i0].astype(np.float64), f1.keypoints[i1].astype(np.float64)
        _, mask = cv2.findEssentialMat(undistorted_pixels(pair.camera, p0),
                                       undistorted_pixels(pair.camera, p1), pair.camera.k,
                                       cv2.RANSAC, 0.999, ransac_px)
        if mask is None:
            continue
        inlier = mask.ravel().astype(bool)
        depth0 = seq.depth(pair.frames[0])
        for name, pose in (('mocap', pair.t_1_0), ('labels', pair.depth_pose)):
            proj, _ = reproject(p0[inlier], depth0, None, pair.camera, pose)
            e = np.linalg.norm(proj - p1[inlier], axis=1)
            errors[name].setdefault(pair.gap, []).append(e[np.isfinite(e)])
    out: Dict[str, Dict[str, float]] = {}
    for name, by_gap in errors.items():
        for gap, parts in sorted(by_gap.items()):
            e = np.concatenate(parts)
            out.setdefault(f'{gap:g}', {})[name] = {
                'median_px': float(np.median(e)) if len(e) else float('nan'),
                'within_radius': float(100 * np.mean(e < radius)) if len(e) else float('nan'),
                'points': int(len(e))}
    for gap, values in sorted(angles.items()):
        out.setdefault(f'{gap:g}', {})['rotation_difference_deg'] = float(np.median(values))
    return out


@dataclass
class RenderedView:
    """A real frame and a view of it rendered from a new pose (datasets.novel_view)."""

    name: str
    image0: np.ndarray
    image1: np.ndarray
    depth0: np.ndarray
    depth1: np.ndarray
    camera: Camera  # distortion-free: both images share this model
    t_1_0: np.ndarray
    baseline: float  # camera translation as a fraction of the median scene depth


def render_views(seq: TumSequence, frames: Sequence[int], per_frame: int = 1, seed: int = 0,
                 baseline: Optional[Tuple[float, float]] = None) -> List[RenderedView]:
    """Parallax pairs with exact ground truth from held-out RGB-D frames (fixed seed).

    ``baseline``: (min, max) camera translation as a fraction of the scene's median depth;
    training's range (NovelViewConfig) by default.
    """
    from ..datasets.novel_view import draw_view, NovelViewConfig, pinhole
    conf, rng, camera = NovelViewConfig(), np.random.default_rng(seed), pinhole(seq.camera)
    if baseline is not None:
        conf = dataclasses.replace(conf, min_baseline=baseline[0], max_baseline=baseline[1])
    out = []
    for i in frames:
        depth0 = seq.depth(int(i))
        if depth0 is None:
            continue
        image0 = seq.image(int(i))
        valid = depth0[depth0 > 0]
        median = float(np.median(valid)) if len(valid) else 1.0
        for k in range(per_frame):
            view = draw_view(image0, depth0, camera, rng, conf)
            if view is None:  # this frame's depth covers too little of it
                break
            image1, depth1, t_1_0 = view
            baseline = float(np.linalg.norm(np.linalg.inv(t_1_0)[:3, 3])) / median
            out.append(RenderedView(f'{seq.frames[int(i)].rgb.name} view {k}', image0, image1,
                                    depth0, depth1, camera, t_1_0, baseline))
    return out


def make_rendered_pairs(views: Sequence[RenderedView], extractor, bins: Sequence[float]
                        ) -> List[MotionPair]:
    """Features and exact depth ground truth; ``gap`` holds the baseline bin's upper edge."""
    from ..datasets.rgbd import depth_ground_truth
    out = []
    for v in views:
        f0, f1 = extractor(v.image0), extractor(v.image1)
        gt = depth_ground_truth(f0.keypoints, f1.keypoints, v.depth0, v.depth1, v.camera,
                                v.t_1_0)
        edge = next((b for b in bins if v.baseline <= b), bins[-1])
        out.append(MotionPair(v.name, f0, f1, v.camera, v.t_1_0, gt['gt_matches0'],
                              gt['projections0'], gt['projections1'], gt['status0'], edge,
                              to_gray(v.image0), to_gray(v.image1)))
    return out


def undistorted_pixels(camera: Camera, points: np.ndarray) -> np.ndarray:
    """Distorted pixels [N x 2] -> undistorted pixels of the same pinhole camera."""
    if len(points) == 0:
        return np.zeros((0, 2))
    return cv2.undistortPoints(np.asarray(points, np.float64).reshape(-1, 1, 2), camera.k,
                               camera.d, P=camera.k).reshape(-1, 2)


def pair_metrics(pair: MotionPair, index0: np.ndarray, index1: np.ndarray,
                 ransac_px: float = 1.0, points1: Optional[np.ndarray] = None
                 ) -> Dict[str, float]:
    """Pose errors and match accuracy of one matcher's output on one pair.

    ``points1``: the matched points of image 1 if not the keypoints (sub-pixel refined); pose,
    epipolar precision and the localisation error use them, the depth-verified precision and
    recall stay index-based (a 3-px radius that refinement does not change).
    """
    k = pair.camera.k
    if points1 is None:
        points1 = pair.features1.keypoints[index1]
    p0 = undistorted_pixels(pair.camera, pair.features0.keypoints[index0])
    p1 = undistorted_pixels(pair.camera, points1)
    n = len(index0)
    est = estimate_pose(p0, p1, k, k, ransac_px) if n >= 5 else None
    if est is None:
        err_r = err_t = float('inf')
    else:
        err_r, err_t = relative_pose_error(pair.t_1_0, est[0], est[1])
    epi = epipolar_error(p0, p1, pair.t_1_0, k, k) < EPIPOLAR_THRESHOLD if n else \
        np.zeros(0, bool)
    acc = match_accuracy(index0, index1, pair.features0.keypoints, pair.features1.keypoints,
                         pair.projections0, pair.projections1, pair.status0, pair.gt_matches0)
    # Localisation: distance of each correct match's image-1 point from keypoint 0 moved by
    # the depth ground truth (exact on rendered views; on real pairs it includes the pose's
    # own error, so compare methods within one run).
    e01 = np.linalg.norm(pair.projections0[index0] - np.asarray(points1, np.float64), axis=1)
    return {'rotation_error': err_r, 'pose_error': max(err_r, err_t), 'matches': n,
            'epipolar_correct': int(epi.sum()),
            'localisation_errors': e01[np.isfinite(e01) & (e01 < 3.0)].tolist(), **acc}


def summarize(rows: Sequence[Dict[str, float]]) -> Dict[str, float]:
    """Pool pairs: AUCs (in %), precision and recall over all matches."""
    pose = np.array([r['pose_error'] for r in rows])
    rot = np.array([r['rotation_error'] for r in rows])
    auc = error_auc(pose, AUC_THRESHOLDS) if len(rows) else [0.0] * 3
    rauc = error_auc(rot, AUC_THRESHOLDS) if len(rows) else [0.0] * 3
    total = sum(r['matches'] for r in rows)
    out = {f'auc@{t}': 100 * a for t, a in zip(AUC_THRESHOLDS, auc)}
    out.update({f'rot_auc@{t}': 100 * a for t, a in zip(AUC_THRESHOLDS, rauc)})
    labelled = sum(r['depth_labelled'] for r in rows)
    gt_matches = sum(r['gt_matches'] for r in rows)
    # NaN without any depth ground truth (a pose-only sequence), not a 0 that reads as a
    # result; with depth, a matcher that matched nothing scores 0 as before.
    depth_truth = labelled > 0 or gt_matches > 0
    out.update({
        'epipolar_precision': 100 * sum(r['epipolar_correct'] for r in rows) / max(total, 1),
        'depth_precision': (100 * sum(r['depth_correct'] for r in rows) / max(labelled, 1)
                            if depth_truth else float('nan')),
        'depth_recall': (100 * sum(r['gt_recalled'] for r in rows) / max(gt_matches, 1)
                         if depth_truth else float('nan')),
        'matches_per_pair': total / max(len(rows), 1),
        # What a SLAM back-end gets: distinct, depth-verified correct matches. Recall alone
        # does not compare front-ends, since their keypoints differ in how many have a partner.
        'correct_per_pair': (sum(r['depth_correct'] for r in rows) / max(len(rows), 1)
                             if depth_truth else float('nan')),
        'pairs': len(rows),
    })
    errors = [e for r in rows for e in r.get('localisation_errors', [])]
    out['median_error_px'] = float(np.median(errors)) if errors else float('nan')
    out['refined_share'] = 100 * sum(r.get('refined', 0) for r in rows) / max(total, 1)
    return out


def paired_auc_difference(rows_a: Sequence[Dict], rows_b: Sequence[Dict],
                          key: str = 'pose_error', threshold: float = 20.0,
                          samples: int = 2000, seed: int = 0) -> Dict[str, float]:
    """AUC@``threshold`` of matcher a minus matcher b on the same pairs, with a 95 % interval.

    ``rows_a``/``rows_b``: per-pair rows of ``evaluate`` (``pair`` names; ``key`` is
    'pose_error' or 'rotation_error'). The interval is a paired bootstrap over the shared
    pairs (both matchers resampled together), so it shows how far the pairs alone move the
    difference: a few pairs of a rotation-dominant sequence swing a pose AUC by points.
    """
    b_by_pair = {r['pair']: r[key] for r in rows_b}
    shared = [(r[key], b_by_pair[r['pair']]) for r in rows_a if r['pair'] in b_by_pair]
    if not shared:
        return {'difference': float('nan'), 'low': float('nan'), 'high': float('nan'),
                'pairs': 0}
    ea, eb = (np.array(v, np.float64) for v in zip(*shared))

    def diff(index: np.ndarray) -> float:
        return 100 * (error_auc(ea[index], [threshold])[0] - error_auc(eb[index], [threshold])[0])

    rng = np.random.default_rng(seed)
    boot = [diff(rng.integers(0, len(ea), len(ea))) for _ in range(samples)]
    low, high = np.percentile(boot, [2.5, 97.5])
    return {'difference': diff(np.arange(len(ea))), 'low': float(low), 'high': float(high),
            'pairs': len(ea)}


def evaluate(pairs: Sequence[MotionPair], matchers: Dict[str, MatchFn],
             ransac_px: float = 1.0, gaps: Optional[Sequence[float]] = None
             ) -> Dict[str, Dict]:
    """Summary per matcher (and per frame gap), with per-pair rows."""
    results = {}
    for name, fn in matchers.items():
        rows, times = [], []
        for p in pairs:
            m = run_matcher(fn, p.features0, p.features1, p.image0, p.image1)
            times.append(m.seconds)
            r = pair_metrics(p, m.index0, m.index1, ransac_px, m.points1)
            r.update(pair=p.name, gap=p.gap, refined=int(m.refined.sum()))
            rows.append(r)
        summary = summarize(rows)
        summary['ms_per_pair'] = 1e3 * float(np.median(times)) if times else 0.0
        by_gap = {}
        for g in sorted({p.gap for p in pairs}) if gaps is None else gaps:
            sub = [r for r in rows if abs(r['gap'] - g) < 1e-6]
            if sub:
                by_gap[f'{g:g}'] = summarize(sub)
        for r in rows:  # keep the per-pair JSON small: the median is in the summary
            r.pop('localisation_errors', None)
        results[name] = {**summary, 'by_gap': by_gap, 'per_pair': rows}
    return results

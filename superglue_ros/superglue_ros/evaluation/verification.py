# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Geometric verification methods compared on real matches: time, inliers, accuracy.

The matcher node verifies every answer with a robust fundamental matrix on the keypoints as
received (``verify_fundamental``), or with an essential matrix on undistorted points when both
keyframes carry a camera model (``verify_essential``). This module runs each candidate
estimator on the same real matches (our matcher on TUM RGB-D pairs) and measures, per method:

- time per pair (median and p95; every method runs ``repeats`` times per pair, the methods in
  a rotating order so that a change of load on the machine hits all of them alike);
- inliers kept per pair;
- precision of the kept matches and recall of the good ones, against two ground truths: the
  motion-capture epipolar geometry (``epipolar_error`` below EPIPOLAR_THRESHOLD, as
  ``superglue-eval tum``) and the depth-verified reprojection (3 px, ``match_accuracy``);
- for the essential path, the pose error of the verified pose against motion capture;
- determinism: whether repeated calls with the same seed return the same inlier set, and
  whether another seed changes it.
"""

from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from .motion import EPIPOLAR_THRESHOLD, match_accuracy, MotionPair, undistorted_pixels
from ..geometry import (epipolar_error, error_auc, Intrinsics, relative_pose_error,
                        verify_essential, verify_fundamental)


# A pair whose kept matches are less than this share epipolar-correct had a wrong model.
WRONG_MODEL_PRECISION = 0.8


@dataclass(frozen=True)
class Candidate:
    """One estimator setting: ``kind`` is 'fundamental' or 'essential'."""

    name: str
    kind: str
    method: str
    max_iters: int = 1000
    confidence: float = 0.999


def candidates() -> List[Candidate]:
    """Return the compared settings; the first of each kind is the node's behaviour before."""
    out = [Candidate('F ransac (before)', 'fundamental', 'ransac'),
           Candidate('F ransac iters<=300', 'fundamental', 'ransac', max_iters=300),
           Candidate('F ransac iters<=200', 'fundamental', 'ransac', max_iters=200),
           Candidate('F ransac iters<=100', 'fundamental', 'ransac', max_iters=100)]
    out += [Candidate(f'F {m}', 'fundamental', m) for m in
            ('usac_default', 'usac_fm_8pts', 'usac_magsac', 'usac_accurate')]
    out += [Candidate('E ransac (before)', 'essential', 'ransac'),
            Candidate('E ransac iters<=200', 'essential', 'ransac', max_iters=200)]
    out += [Candidate(f'E {m}', 'essential', m) for m in
            ('usac_default', 'usac_magsac', 'usac_accurate')]
    return out


@dataclass
class MatchedPair:
    """A real pair with the matches of the evaluated matcher."""

    pair: MotionPair
    index0: np.ndarray
    index1: np.ndarray


def intrinsics_of(pair: MotionPair) -> Intrinsics:
    """Return the pair's camera as the node would get it from CameraInfo."""
    cam = pair.camera
    return Intrinsics.from_values(cam.k.ravel(), cam.d, 'plumb_bob', (cam.width, cam.height))


def _run(c: Candidate, p0: np.ndarray, p1: np.ndarray, camera: Intrinsics,
         threshold_px: float, seed: Optional[int]):
    if c.kind == 'fundamental':
        return verify_fundamental(p0, p1, threshold_px, c.confidence, seed, c.method,
                                  c.max_iters), None
    return verify_essential(p0, p1, camera, None, threshold_px, c.confidence, seed, c.method,
                            c.max_iters)


def measure(matched: Sequence[MatchedPair], cands: Sequence[Candidate],
            threshold_px: float = 1.0, repeats: int = 3) -> Dict[str, Dict]:
    """Figures per candidate (see the module docstring); pooled over all pairs."""
    names = [c.name for c in cands]
    acc = {n: {'times': [], 'kept': 0, 'epi_kept': 0, 'epi_all': 0, 'depth_correct_kept': 0,
               'depth_labelled_kept': 0, 'depth_correct_all': 0, 'matches': 0,
               'nondeterministic_pairs': 0, 'seed_sensitive_pairs': 0, 'pose_errors': [],
               'rotation_errors': [], 'wrong_model_pairs': 0, 'pair_recalls': []}
           for n in names}
    for k, mp in enumerate(matched):
        pair, i0, i1 = mp.pair, mp.index0, mp.index1
        pts0, pts1 = pair.features0.keypoints[i0], pair.features1.keypoints[i1]
        camera = intrinsics_of(pair)
        kk = pair.camera.k
        u0, u1 = undistorted_pixels(pair.camera, pts0), undistorted_pixels(pair.camera, pts1)
        epi_ok = epipolar_error(u0, u1, pair.t_1_0, kk, kk) < EPIPOLAR_THRESHOLD if len(i0) \
            else np.zeros(0, bool)
        every = match_accuracy(i0, i1, pair.features0.keypoints, pair.features1.keypoints,
                               pair.projections0, pair.projections1, pair.status0,
                               pair.gt_matches0)
        order = list(cands[k % len(cands):]) + list(cands[:k % len(cands)])
        masks: Dict[str, List[np.ndarray]] = {n: [] for n in names}
        poses = {}
        for _ in range(repeats):
            for c in order:
                t = time.perf_counter()
                mask, pose = _run(c, pts0, pts1, camera, threshold_px, 0)
                acc[c.name]['times'].append(time.perf_counter() - t)
                masks[c.name].append(mask)
                poses[c.name] = pose
        for c in cands:
            a, mask = acc[c.name], masks[c.name][0]
            other, _ = _run(c, pts0, pts1, camera, threshold_px, 1)
            a['nondeterministic_pairs'] += int(any(not np.array_equal(mask, m)
                                                   for m in masks[c.name][1:]))
            a['seed_sensitive_pairs'] += int(not np.array_equal(mask, other))
            kept = match_accuracy(
                i0[mask], i1[mask], pair.features0.keypoints, pair.features1.keypoints,
                pair.projections0, pair.projections1, pair.status0, pair.gt_matches0)
            a['matches'] += len(i0)
            a['kept'] += int(mask.sum())
            a['epi_kept'] += int((epi_ok & mask).sum())
            a['epi_all'] += int(epi_ok.sum())
            # A wrong model on one pair hides in pooled figures: count the pairs whose kept
            # set is mostly off the true epipolar geometry, and the spread of per-pair recall.
            if mask.sum() >= 8 and (epi_ok & mask).sum() < WRONG_MODEL_PRECISION * mask.sum():
                a['wrong_model_pairs'] += 1
            if epi_ok.sum():
                a['pair_recalls'].append((epi_ok & mask).sum() / epi_ok.sum())
            a['depth_correct_kept'] += kept['depth_correct']
            a['depth_labelled_kept'] += kept['depth_labelled']
            a['depth_correct_all'] += every['depth_correct']
            if c.kind == 'essential':
                pose = poses[c.name]
                err_r = err_t = float('inf')
                if pose is not None:
                    err_r, err_t = relative_pose_error(pair.t_1_0, pose.rotation,
                                                       pose.translation)
                a['pose_errors'].append(max(err_r, err_t))
                a['rotation_errors'].append(err_r)
    out = {}
    for c in cands:
        a = acc[c.name]
        times = np.asarray(a['times'])
        row = {
            'kind': c.kind, 'method': c.method, 'max_iters': c.max_iters,
            'confidence': c.confidence, 'pairs': len(matched),
            'ms_median': 1e3 * float(np.median(times)) if len(times) else float('nan'),
            'ms_p95': 1e3 * float(np.percentile(times, 95)) if len(times) else float('nan'),
            'inliers_per_pair': a['kept'] / max(len(matched), 1),
            'matches_per_pair': a['matches'] / max(len(matched), 1),
            'epipolar_precision': a['epi_kept'] / max(a['kept'], 1),
            'epipolar_recall': a['epi_kept'] / max(a['epi_all'], 1),
            'depth_precision': a['depth_correct_kept'] / max(a['depth_labelled_kept'], 1),
            'depth_recall': a['depth_correct_kept'] / max(a['depth_correct_all'], 1),
            'nondeterministic_pairs': a['nondeterministic_pairs'],
            'seed_sensitive_pairs': a['seed_sensitive_pairs'],
            'wrong_model_pairs': a['wrong_model_pairs'],
            'epipolar_recall_p5': float(np.percentile(a['pair_recalls'], 5))
            if a['pair_recalls'] else float('nan'),
        }
        if c.kind == 'essential':
            errors = np.asarray(a['pose_errors'])
            row['pose_error_median_deg'] = float(np.median(errors)) if len(errors) else \
                float('nan')
            row['pose_auc@10'] = error_auc(errors, [10])[0] if len(errors) else 0.0
            rotation = np.asarray(a['rotation_errors'])
            row['rotation_error_median_deg'] = float(np.median(rotation)) if len(rotation) \
                else float('nan')
            row['rotation_auc@5'] = error_auc(rotation, [5])[0] if len(rotation) else 0.0
        out[c.name] = row
    return out


def unverified(matched: Sequence[MatchedPair]) -> Dict[str, float]:
    """Precision of all matches before verification (the floor every method must beat)."""
    epi = kept = labelled = correct = 0
    for mp in matched:
        pair, i0, i1 = mp.pair, mp.index0, mp.index1
        if not len(i0):
            continue
        kk = pair.camera.k
        u0 = undistorted_pixels(pair.camera, pair.features0.keypoints[i0])
        u1 = undistorted_pixels(pair.camera, pair.features1.keypoints[i1])
        epi += int((epipolar_error(u0, u1, pair.t_1_0, kk, kk) < EPIPOLAR_THRESHOLD).sum())
        a = match_accuracy(i0, i1, pair.features0.keypoints, pair.features1.keypoints,
                           pair.projections0, pair.projections1, pair.status0,
                           pair.gt_matches0)
        kept += len(i0)
        labelled += a['depth_labelled']
        correct += a['depth_correct']
    return {'matches_per_pair': kept / max(len(matched), 1),
            'epipolar_precision': epi / max(kept, 1),
            'depth_precision': correct / max(labelled, 1)}


COLUMNS = ('ms_median', 'ms_p95', 'inliers_per_pair', 'epipolar_precision', 'epipolar_recall',
           'epipolar_recall_p5', 'depth_precision', 'depth_recall', 'wrong_model_pairs',
           'nondeterministic_pairs', 'seed_sensitive_pairs')


def table(results: Dict[str, Dict], floor: Dict[str, float]) -> str:
    """Return a fixed-width text table, one row per candidate."""
    width = max(len(k) for k in results) + 2
    head = f'{"method":<{width}}' + ''.join(f'{c[:14]:>15}' for c in COLUMNS) + \
        f'{"pose_err_med":>15}{"pose_auc@10":>15}{"rot_err_med":>15}{"rot_auc@5":>15}'
    lines = [head, '-' * len(head)]
    for name, row in results.items():
        cells = []
        for c in COLUMNS:
            v = row[c]
            cells.append(f'{100 * v:>14.1f}%' if 'precision' in c or 'recall' in c else
                         f'{v:>15.1f}' if isinstance(v, float) else f'{v:>15d}')
        if 'pose_auc@10' in row:
            cells.append(f'{row["pose_error_median_deg"]:>15.2f}'
                         f'{100 * row["pose_auc@10"]:>14.1f}%'
                         f'{row["rotation_error_median_deg"]:>15.2f}'
                         f'{100 * row["rotation_auc@5"]:>14.1f}%')
        lines.append(f'{name:<{width}}' + ''.join(cells))
    lines.append(f'{"unverified":<{width}}{"":>30}{floor["matches_per_pair"]:>15.1f}'
                 f'{100 * floor["epipolar_precision"]:>14.1f}%{"":>30}'
                 f'{100 * floor["depth_precision"]:>14.1f}%')
    return '\n'.join(lines)

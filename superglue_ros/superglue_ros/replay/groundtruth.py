# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Ground truth in the replay: camera poses, intrinsics, relative-pose error per keyframe pair.

For each keyframe pair the matcher answered, the relative pose is estimated from the published
correspondences alone (RANSAC essential matrix on undistorted points, as a back-end without
depth would) and compared with the ground-truth relative pose: rotation error and translation
direction error [deg]. Summaries are the SuperGlue paper's pose AUC@5/10/20 (of the larger of
the two errors) and the rotation-error AUC, which stays informative on rotation-only motion.

When the matcher had intrinsics (camera_info) it published its own relative pose per pair
(``pose_valid``, rotation, unit translation): that pose is scored against the same ground
truth as ``node_*`` (a pair whose message has no valid pose counts as a failure), since it is
what a consumer reading the messages' pose gets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from . import ReplayError
from ..datasets.rgbd import Camera, load_camera, Trajectory

THRESHOLDS = (5, 10, 20)  # [deg]
MIN_COVERED = 0.9  # share of the bag's images that must have a ground-truth pose
COVERAGE_SLACK = 0.05  # [s] the ground truth may start/end this much inside the images


def load_groundtruth(path) -> Trajectory:
    """TUM ``timestamp tx ty tz qx qy qz qw`` camera-to-world poses; ReplayError if unusable."""
    path = Path(path)
    if not path.is_file():
        raise ReplayError(f'ground-truth file {path} does not exist')
    try:
        trajectory = Trajectory.from_file(path)
    except (ValueError, IndexError) as exc:
        raise ReplayError(f'ground-truth file {path} is not in TUM format (timestamp tx ty tz '
                          f'qx qy qz qw per line): {exc}') from exc
    if len(trajectory.stamps) < 2:
        raise ReplayError(f'ground-truth file {path} holds fewer than two poses')
    return trajectory


def check_coverage(trajectory: Trajectory, image_stamps_ns: Sequence[int], path) -> float:
    """Share of the bag's images with a ground-truth pose; ReplayError when it does not cover.

    Covering means the poses span the images (within COVERAGE_SLACK) and at least MIN_COVERED
    of them have a pose (TUM ground truth has short gaps where the markers were occluded).
    """
    t = np.asarray(image_stamps_ns, np.float64) * 1e-9
    if not len(t):
        return 0.0
    g0, g1 = float(trajectory.stamps[0]), float(trajectory.stamps[-1])
    covered = float(np.mean([trajectory.at(s) is not None for s in t]))
    if g0 > t.min() + COVERAGE_SLACK or g1 < t.max() - COVERAGE_SLACK \
            or covered < MIN_COVERED:
        raise ReplayError(
            f'ground truth {path} does not cover the bag: poses {g0:.3f}-{g1:.3f} s, images '
            f'{t.min():.3f}-{t.max():.3f} s, {covered:.0%} of the images have a pose (need '
            f'{MIN_COVERED:.0%}): is it the ground truth of this sequence?')
    return covered


def resolve_camera(spec: Optional[str], from_bag: Optional[Camera], why: str) -> Camera:
    """``--camera`` (YAML file or fr1|fr2|fr3) first, else the bag's CameraInfo."""
    if spec is not None:
        try:
            return load_camera(spec)
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise ReplayError(f'--camera {spec}: {exc}') from exc
    if from_bag is None:
        raise ReplayError(f'no camera intrinsics for {why}: the bag has no sensor_msgs/'
                          f'CameraInfo; give --camera FILE (YAML: width, height, fx, fy, cx, '
                          f'cy, dist) or a TUM preset (--camera fr1|fr2|fr3)')
    return from_bag


def keyframe_pose_errors(messages: Dict[int, Any], trajectory: Trajectory, camera: Camera,
                         ransac_px: float = 1.0) -> List[Dict[str, Any]]:
    """Per answered keyframe pair: pose errors of the published matches against ground truth.

    ``messages``: Correspondences (status ok) by current stamp [ns].
    """
    from ..evaluation.pose import pair_pose_error
    from ..refinement import matched_current_points, matched_reference_points
    from ..ros.sync import time_ns

    rows = []
    for stamp in sorted(messages):
        msg = messages[stamp]
        t_ref, t_cur = time_ns(msg.reference_stamp) * 1e-9, stamp * 1e-9
        pose_ref, pose_cur = trajectory.at(t_ref), trajectory.at(t_cur)
        row: Dict[str, Any] = {'current_id': int(msg.current_keyframe_id),
                               'reference_id': int(msg.reference_keyframe_id),
                               'stamp': t_cur, 'matches': len(msg.current_x)}
        if pose_ref is None or pose_cur is None:
            row.update(rotation_error=None, translation_error=None, pose_error=None,
                       gt_rotation_deg=None, gt_translation_m=None, node_rotation_error=None,
                       node_translation_error=None, node_pose_error=None,
                       node_parallax_deg=None)
            rows.append(row)
            continue
        t_1_0 = np.linalg.inv(pose_cur) @ pose_ref
        row.update(node_pose_errors(msg, t_1_0))
        p0 = matched_reference_points(msg)  # what p1 was refined against
        p1 = matched_current_points(msg)  # sub-pixel refined where the matcher refined
        err_r, err_t, inliers = pair_pose_error(p0, p1, camera, t_1_0, ransac_px)
        angle = np.degrees(np.arccos(np.clip((np.trace(t_1_0[:3, :3]) - 1) / 2, -1, 1)))
        row.update(rotation_error=err_r, translation_error=err_t, pose_error=max(err_r, err_t),
                   essential_inliers=inliers, gt_rotation_deg=float(angle),
                   gt_translation_m=float(np.linalg.norm(t_1_0[:3, 3])))
        rows.append(row)
    return rows


def node_pose_errors(msg, t_1_0: np.ndarray) -> Dict[str, Optional[float]]:
    """Errors [deg] of the pose the matcher published in ``msg`` (None: it had no intrinsics).

    The message's pose maps the reference camera into the current one (X_cur = R X_ref + t),
    as ``t_1_0`` does; no valid pose with intrinsics is a failure (inf).
    """
    from ..datasets.rgbd import quat_to_matrix
    from ..geometry import relative_pose_error

    if int(msg.verification) != int(msg.VERIFICATION_ESSENTIAL):
        return {'node_rotation_error': None, 'node_translation_error': None,
                'node_pose_error': None, 'node_parallax_deg': None}
    if not msg.pose_valid:
        inf = float('inf')
        return {'node_rotation_error': inf, 'node_translation_error': inf,
                'node_pose_error': inf, 'node_parallax_deg': None}
    q = msg.rotation
    r = quat_to_matrix(np.array([q.x, q.y, q.z, q.w], np.float64))
    t = np.array([msg.translation.x, msg.translation.y, msg.translation.z], np.float64)
    err_r, err_t = relative_pose_error(t_1_0, r, t)
    return {'node_rotation_error': float(err_r), 'node_translation_error': float(err_t),
            'node_pose_error': float(max(err_r, err_t)),
            'node_parallax_deg': float(getattr(msg, 'pose_parallax', 0.0))}


def summarise(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    """AUC@5/10/20 of the pose error and of the rotation error (in %), medians, counts.

    ``node_*``: the same for the pose the matcher published, over the pairs that have one
    (absent when the matcher had no intrinsics).
    """
    from ..geometry import pose_auc

    known = [r for r in rows if r['pose_error'] is not None]
    pose = np.array([r['pose_error'] for r in known], np.float64)
    rot = np.array([r['rotation_error'] for r in known], np.float64)
    out: Dict[str, Any] = {'pairs': len(rows), 'pairs_with_groundtruth': len(known),
                           'pairs_failed': int(np.sum(~np.isfinite(pose)))}
    series = [('pose', pose), ('rotation', rot)]
    node = [r for r in known if r.get('node_pose_error') is not None]
    if node:
        node_pose = np.array([r['node_pose_error'] for r in node], np.float64)
        parallax = [r['node_parallax_deg'] for r in node if r.get('node_parallax_deg') is not None]
        out.update(node_pairs=len(node), node_pairs_failed=int(np.sum(~np.isfinite(node_pose))),
                   node_parallax_median_deg=float(np.median(parallax)) if parallax else None)
        series += [('node_pose', node_pose),
                   ('node_rotation', np.array([r['node_rotation_error'] for r in node]))]
    for name, errors in series:
        auc = pose_auc(errors, THRESHOLDS) if len(errors) else [0.0] * len(THRESHOLDS)
        for th, a in zip(THRESHOLDS, auc):
            out[f'{name}_auc@{th}'] = 100.0 * float(a)
        finite = errors[np.isfinite(errors)]
        out[f'{name}_error_median'] = float(np.median(errors)) if len(errors) else None
        out[f'{name}_error_median_finite'] = float(np.median(finite)) if len(finite) else None
    return out

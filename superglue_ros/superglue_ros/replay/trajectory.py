# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The reference back-end on a replay's output, and trajectory accuracy with ``evo``.

The recorded Correspondences of one matcher mode and the bag's depth images go through the
reference sliding-window BA (``backend.ba``, the module the reference back-end node runs), in
keyframe order and in this process, so every matcher mode gets the same back-end on the same
input. ATE (SE(3) Umeyama alignment, no scale: RGB-D) and RPE (between consecutive keyframes)
against the ground truth come from ``evo``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import ReplayError
from ..datasets.rgbd import Camera

ASSOCIATION_S = 0.01  # [s] max stamp difference between a keyframe and a ground-truth pose


def require_backend_dependencies() -> None:
    """Raise ReplayError naming what to install when gtsam or evo is missing."""
    missing = []
    for name in ('gtsam', 'evo'):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ReplayError(f'--backend needs {" and ".join(missing)} (optional dependencies): '
                          f'pip install {" ".join(missing)}')


def run_backend(messages: Dict[int, Any], depths: Dict[int, np.ndarray], camera: Camera,
                progress: bool = True, desc: str = 'back-end'
                ) -> Tuple[List[Tuple[float, np.ndarray]], Dict[str, int]]:
    """Feed Correspondences (ok, by current stamp [ns]) and depth to a SlidingWindowBA.

    Returns (trajectory: (stamp [s], camera-to-world) per keyframe, the back-end's counts).
    """
    from tqdm import tqdm

    from ..backend.ba import matches_from_message, SlidingWindowBA
    from ..ros.sync import time_ns

    ba = SlidingWindowBA(camera)
    for stamp in tqdm(sorted(messages), desc=desc, unit='keyframe', disable=not progress,
                      dynamic_ncols=True):
        msg = messages[stamp]
        ref = time_ns(msg.reference_stamp)
        if not ba.order:
            ba.start(int(msg.reference_keyframe_id), ref * 1e-9)
        ba.add(matches_from_message(msg, depths.get(ref), depths.get(stamp)))
    return ba.trajectory(), dict(ba.counts)


def _evo_trajectory(stamps: np.ndarray, poses: np.ndarray):
    from evo.core.trajectory import PoseTrajectory3D
    from evo.core.transformations import quaternion_from_matrix
    quats = np.array([quaternion_from_matrix(p) for p in poses])  # w, x, y, z
    return PoseTrajectory3D(positions_xyz=poses[:, :3, 3], orientations_quat_wxyz=quats,
                            timestamps=stamps)


def evaluate_trajectory(trajectory: List[Tuple[float, np.ndarray]], groundtruth: Path
                        ) -> Dict[str, Any]:
    """ATE and RPE of keyframe poses against a TUM ground-truth file, with evo.

    Returns the figures and, for plotting, the aligned estimate and the associated ground
    truth positions.
    """
    from evo.core import metrics, sync
    from evo.tools import file_interface

    if len(trajectory) < 3:
        raise ReplayError(f'the back-end produced {len(trajectory)} keyframe poses: too few '
                          f'for ATE/RPE')
    ref = file_interface.read_tum_trajectory_file(str(groundtruth))
    est = _evo_trajectory(np.array([t for t, _ in trajectory]),
                          np.array([p for _, p in trajectory]))
    ref, est = sync.associate_trajectories(ref, est, max_diff=ASSOCIATION_S)
    est.align(ref, correct_scale=False)
    ape = metrics.APE(metrics.PoseRelation.translation_part)
    ape.process_data((ref, est))
    rpe_t = metrics.RPE(metrics.PoseRelation.translation_part, delta=1,
                        delta_unit=metrics.Unit.frames, all_pairs=False)
    rpe_t.process_data((ref, est))
    rpe_r = metrics.RPE(metrics.PoseRelation.rotation_angle_deg, delta=1,
                        delta_unit=metrics.Unit.frames, all_pairs=False)
    rpe_r.process_data((ref, est))
    stat = metrics.StatisticsType
    return {
        'keyframes': len(trajectory), 'associated': int(est.num_poses),
        'ate_rmse_m': float(ape.get_statistic(stat.rmse)),
        'ate_mean_m': float(ape.get_statistic(stat.mean)),
        'ate_median_m': float(ape.get_statistic(stat.median)),
        'ate_max_m': float(ape.get_statistic(stat.max)),
        'rpe_trans_rmse_m': float(rpe_t.get_statistic(stat.rmse)),
        'rpe_rot_rmse_deg': float(rpe_r.get_statistic(stat.rmse)),
        'path_length_m': float(ref.path_length),
        'estimate_xyz': est.positions_xyz.tolist(),
        'groundtruth_xyz': ref.positions_xyz.tolist(),
        'ate_per_keyframe_m': [float(v) for v in ape.error],
    }


def plot_trajectories(results: Dict[str, Dict[str, Any]], out: Path,
                      name: str = 'trajectory_top_view.png') -> Optional[str]:
    """Top view (ground-truth x-y) of each matcher's aligned keyframe trajectory, side by side."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    modes = [m for m, r in results.items() if r]
    if not modes:
        return None
    fig, axes = plt.subplots(1, len(modes), figsize=(5.5 * len(modes), 5), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        r = results[mode]
        gt, est = np.array(r['groundtruth_xyz']), np.array(r['estimate_xyz'])
        ax.plot(gt[:, 0], gt[:, 1], '-', color='0.3', lw=2, label='ground truth')
        ax.plot(est[:, 0], est[:, 1], '.-', color='tab:red', lw=1, ms=3,
                label=f'{mode} + reference BA')
        ax.plot(gt[0, 0], gt[0, 1], 'ko', ms=5)
        ax.set_aspect('equal', adjustable='datalim')
        ax.set_xlabel('x [m]')
        ax.set_ylabel('y [m]')
        ax.set_title(f'{mode}: ATE {r["ate_rmse_m"] * 100:.1f} cm RMSE '
                     f'({r["associated"]} keyframes)')
        ax.legend(fontsize=8)
    fig.suptitle('Keyframe trajectories, top view (SE(3)-aligned to the ground truth)')
    fig.tight_layout()
    fig.savefig(out / name, dpi=100)
    plt.close(fig)
    return name

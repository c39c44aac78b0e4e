# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The reference back-end on a replay's output, and trajectory accuracy with ``evo``.

The recorded Correspondences of one matcher mode and the bag's depth images are played over
DDS into the reference back-end node (``nodes/reference_backend_node``: sliding-window BA of
``backend.ba``), one keyframe pair at a time, so every matcher mode gets the same back-end on
the same input whatever the matcher's speed; its published Path is the trajectory. ATE
(SE(3) Umeyama alignment, no scale: RGB-D) and RPE (between consecutive keyframes) against the
ground truth come from ``evo``.
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


class BackendError(ReplayError):
    """The reference back-end node did not answer (start-up, DDS discovery, a timeout)."""


def run_backend(messages: Dict[int, Any], depths: Dict[int, np.ndarray], camera: Camera,
                progress: bool = True, desc: str = 'back-end', domain_id: Optional[int] = None,
                timeout: float = 60.0) -> Tuple[List[Tuple[float, np.ndarray]], Dict[str, int]]:
    """Play Correspondences (ok, by current stamp [ns]) and depth into the back-end node.

    A ReferenceBackendNode runs in its own in-process graph; the camera's CameraInfo, then
    for each keyframe pair in order its depth images (16UC1) and its Correspondences go over
    DDS, the next pair only once the node answered the last (Odometry) or counted it as
    dropped. Returns (the node's last Path as (stamp [s], camera-to-world) per keyframe, the
    node's and its bundle adjustment's counts).
    """
    from builtin_interfaces.msg import Time
    from nav_msgs.msg import Odometry, Path as PathMsg
    from sensor_msgs.msg import Image
    from superglue_ros_msgs.msg import Correspondences
    from tqdm import tqdm

    from ..datasets.rgbd import quat_to_matrix
    from ..nodes.reference_backend_node import ReferenceBackendNode
    from ..ros.conversions import numpy_to_image
    from ..ros.graph import Graph, GraphError, reliable_input_overrides, reliable_qos
    from ..ros.sync import time_ns
    from ..tools.make_bag import camera_info

    answered: List[Any] = []
    last_path: List[Any] = [None]
    qos = reliable_qos(10)
    try:
        with Graph(domain_id, threads=2, name='superglue_replay_backend') as graph:
            node = graph.add(ReferenceBackendNode(
                context=graph.context,
                parameter_overrides=reliable_input_overrides(['/depth', '/camera_info'], 10)))
            driver = graph.create_node('superglue_replay_backend_driver')
            corr_pub = driver.create_publisher(Correspondences, 'correspondences', qos)
            depth_pub = driver.create_publisher(Image, 'depth', qos)
            info_pub = driver.create_publisher(type(camera_info(camera, 0.0)), 'camera_info',
                                               qos)
            driver.create_subscription(Odometry, 'odometry', answered.append, qos)
            driver.create_subscription(PathMsg, 'path',
                                       lambda m: last_path.__setitem__(0, m), qos)
            if not graph.wait_for(lambda: min(p.get_subscription_count() for p in
                                              (corr_pub, depth_pub, info_pub)) >= 1
                                  and driver.count_publishers('path') >= 1, 20.0):
                raise BackendError('DDS discovery between the replay and the back-end node '
                                   'timed out')
            stamps = sorted(messages)
            info_pub.publish(camera_info(camera, stamps[0] * 1e-9 if stamps else 0.0))
            if not graph.wait_for(lambda: node.camera is not None, timeout):
                raise BackendError('the back-end node did not take the CameraInfo')
            sent: set = set()
            dropped = 0
            for stamp in tqdm(stamps, desc=desc, unit='keyframe', disable=not progress,
                              dynamic_ncols=True):
                msg = messages[stamp]
                for s in (time_ns(msg.reference_stamp), stamp):
                    if s in depths and s not in sent:
                        mm = np.clip(np.round(depths[s] * 1000.0), 0, 65535)
                        image = numpy_to_image(mm.astype(np.uint16), '16UC1')
                        image.header.stamp = Time(sec=s // 10**9, nanosec=s % 10**9)
                        depth_pub.publish(image)
                        sent.add(s)
                        if not graph.wait_for(lambda: node.has_depth(s), timeout):
                            raise BackendError(f'the back-end node did not take the depth '
                                               f'image at {s * 1e-9:.3f} s')
                before = len(answered) + node.dropped()
                corr_pub.publish(msg)
                if not graph.wait_for(lambda: len(answered) + node.dropped() > before,
                                      timeout):
                    dropped += 1
            graph.wait_for(lambda: last_path[0] is not None
                           and len(last_path[0].poses) == len(node.backend.order), 2.0)
            counts = {**{f'node_{k}': int(v) for k, v in node.counts.items()},
                      **{k: int(v) for k, v in (node.backend.counts if node.backend else
                                                {}).items()}}
            if dropped:
                counts['not_answered'] = dropped
    except GraphError as exc:
        raise BackendError(f'the back-end graph failed: {exc}') from exc
    path = last_path[0]
    trajectory = []
    for pose in (path.poses if path is not None else []):
        m = np.eye(4)
        o, p = pose.pose.orientation, pose.pose.position
        m[:3, :3] = quat_to_matrix(np.array([o.x, o.y, o.z, o.w]))
        m[:3, 3] = [p.x, p.y, p.z]
        trajectory.append((time_ns(pose.header.stamp) * 1e-9, m))
    return trajectory, counts


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

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Reference back-end (sliding-window BA, GTSAM) on exact synthetic RGB-D keyframes."""

import numpy as np
import pytest

from superglue_ros.backend.ba import KeyframeMatches, SlidingWindowBA
from superglue_ros.datasets.rgbd import sample_depth
from superglue_ros.datasets.synthetic_rgbd import CAMERA, camera_pose, render

gtsam = pytest.importorskip('gtsam', reason='gtsam is not installed (optional: the reference '
                            'back-end; make test installs it from requirements-eval.txt)')


def _texture(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((240, 320)) * 255).astype(np.uint8)


def _keyframes(n, step=0.3):
    texture = _texture()
    frames = []
    for k in range(n):
        pose = camera_pose(k * step)
        _, depth = render(texture, pose)
        frames.append((k * step, pose, depth))
    return frames


class _Scene:
    """Keypoints per frame that persist: frame j's keypoints are frame i's moved into j."""

    def __init__(self, frames, seed=0):
        self.frames, self.rng = frames, np.random.default_rng(seed)
        self.keypoints = {}

    def matches(self, i, j, count=300, outliers=0.0, noise_px=0.5):
        (ti, pi, di), (tj, pj, dj) = self.frames[i], self.frames[j]
        old = self.keypoints.get(i, np.zeros((0, 2)))
        new = self.rng.uniform([20, 20], [620, 460], size=(max(count - len(old), 50), 2))
        pts = self.keypoints[i] = np.concatenate([old, new])
        z = sample_depth(di, pts)
        rays = CAMERA.undistort(pts)
        xyz = np.concatenate([rays * z[:, None], z[:, None]], 1)
        t_j_i = np.linalg.inv(pj) @ pi
        px, inside = CAMERA.project(np.nan_to_num(xyz @ t_j_i[:3, :3].T + t_j_i[:3, 3]))
        ref_idx = np.nonzero(inside & np.isfinite(z))[0]
        cur = px[ref_idx] + self.rng.normal(0, noise_px, (len(ref_idx), 2))
        bad = self.rng.random(len(ref_idx)) < outliers
        cur[bad] = self.rng.uniform([0, 0], [639, 479], size=(int(bad.sum()), 2))
        self.keypoints[j] = cur
        return KeyframeMatches(i, j, ti, tj, ref_idx, np.arange(len(ref_idx)), pts[ref_idx],
                               cur, None, di, dj)


def _ate(ba, frames):
    est = np.array([ba.poses[k][:3, 3] for k in range(len(frames))])
    gt = np.array([np.linalg.inv(frames[0][1]) @ f[1] for f in frames])[:, :3, 3]
    return float(np.sqrt(np.mean(np.sum((est - gt) ** 2, 1))))


@pytest.mark.parametrize('outliers', [0.0, 0.2])
def test_sliding_window_ba_follows_the_exact_trajectory(outliers):
    frames = _keyframes(10)
    scene = _Scene(frames, 1)
    ba = SlidingWindowBA(CAMERA, window=5)
    ba.start(0, frames[0][0])
    for j in range(1, len(frames)):
        pose = ba.add(scene.matches(j - 1, j, outliers=outliers))
        assert pose.shape == (4, 4)
    travelled = np.linalg.norm(frames[-1][1][:3, 3] - frames[0][1][:3, 3])
    assert travelled > 0.1
    # Depth fixes the scale: the first keyframe is the origin, no alignment needed.
    assert _ate(ba, frames) < 0.01
    assert ba.counts['optimisations'] == len(frames) - 1
    assert ba.counts['landmarks'] > 0 and ba.counts['pnp_failed'] == 0
    if outliers:
        assert ba.counts['pnp_outliers'] > 0


def test_inlier_flags_and_missing_depth():
    frames = _keyframes(4)
    scene = _Scene(frames, 2)
    m = scene.matches(0, 1)
    m.inlier = np.zeros(len(m.current_index), bool)  # the matcher rejected everything
    by_default = SlidingWindowBA(CAMERA)  # its own gating instead of the flags
    by_default.start(0, 0.0)
    by_default.add(m)
    assert by_default.counts['matches_used'] == len(m.inlier)
    ba = SlidingWindowBA(CAMERA, window=4, use_inlier_flags=True)
    ba.start(0, 0.0)
    ba.add(m)
    assert ba.counts['matches_used'] == 0 and ba.counts['pnp_too_few'] == 1
    assert np.allclose(ba.poses[1], ba.poses[0])  # no evidence: stays at the reference
    # No depth anywhere: no landmark can be made, the pose is carried over, nothing breaks.
    m = scene.matches(1, 2)
    m.reference_depth = m.current_depth = None
    ba.add(m)
    assert ba.counts['landmarks'] == 0
    ba.add(scene.matches(2, 3))
    assert ba.order == [0, 1, 2, 3] and ba.counts['unknown_reference'] == 0
    # An unknown reference (the matcher restarted) starts over from the last pose.
    m = scene.matches(2, 3)
    m.reference_id, m.current_id = 7, 8
    ba.add(m)
    assert ba.counts['unknown_reference'] == 1 and ba.order[-2:] == [7, 8]


def test_messages_give_the_refined_current_points():
    """The back-end observes the matcher's sub-pixel refined points when it published them."""
    from types import SimpleNamespace
    from superglue_ros.backend.ba import matches_from_message
    stamp = SimpleNamespace(sec=1, nanosec=0)
    msg = SimpleNamespace(
        reference_keyframe_id=0, current_keyframe_id=1, reference_stamp=stamp,
        current_stamp=stamp, reference_indices=[3, 4], current_indices=[5, 6],
        reference_x=[10.0, 20.0], reference_y=[30.0, 40.0], current_x=[11.0, 21.0],
        current_y=[31.0, 41.0], refined_current_x=[11.4, 20.7],
        refined_current_y=[30.8, 41.2], refined_reference_x=[10.2, 20.0],
        refined_reference_y=[29.9, 40.0], verified=False, inlier=b'')
    m = matches_from_message(msg, None, None)
    np.testing.assert_allclose(m.current_points, [[11.4, 30.8], [20.7, 41.2]], atol=1e-6)
    # The reference observations the current points were refined against.
    np.testing.assert_allclose(m.reference_points, [[10.2, 29.9], [20.0, 40.0]], atol=1e-6)
    # Messages without refinement (refinement off, image_input none, older recordings).
    msg.refined_current_x, msg.refined_current_y = [], []
    msg.refined_reference_x, msg.refined_reference_y = [], []
    m = matches_from_message(msg, None, None)
    np.testing.assert_allclose(m.current_points, [[11.0, 31.0], [21.0, 41.0]])
    np.testing.assert_allclose(m.reference_points, [[10.0, 30.0], [20.0, 40.0]])

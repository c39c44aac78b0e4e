# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Real-motion ground truth: camera model, poses, depth reprojection, splits, pair making."""

from pathlib import Path

import numpy as np
import pytest

from superglue_ros.datasets import rgbd
from superglue_ros.datasets.motion import MotionPairConfig, MotionPairGenerator
from superglue_ros.datasets.rgbd import (Camera, depth_ground_truth, IGNORE, load_camera,
                                         OCCLUDED, OUT_OF_VIEW, split_by_time, Trajectory,
                                         TumSequence, UNMATCHED, VISIBLE)
from superglue_ros.datasets.synthetic_rgbd import write_sequence
from superglue_ros.features import OrbExtractor

SHARED_RPY = Path(__file__).resolve().parents[2].parent / 'shared' / 'data' / 'tum_fr1_rpy'
PINHOLE = Camera(640, 480, 500.0, 500.0, 319.5, 239.5)


def plane_depth(z: float = 2.0) -> np.ndarray:
    return np.full((480, 640), z, np.float32)


def random_points(n: int, seed: int = 0, margin: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform([margin, margin], [640 - margin, 480 - margin], (n, 2))


def test_identity_pose_matches_everything():
    pts = random_points(200)
    gt = depth_ground_truth(pts, pts.copy(), plane_depth(), plane_depth(), PINHOLE, np.eye(4))
    assert np.array_equal(gt['gt_matches0'], np.arange(200))
    assert np.array_equal(gt['gt_matches1'], np.arange(200))


def test_identity_pose_with_distortion_matches_everything():
    cam = rgbd.TUM_CAMERAS['fr1']
    pts = random_points(150, seed=1, margin=40)
    gt = depth_ground_truth(pts, pts.copy(), plane_depth(), plane_depth(), cam, np.eye(4))
    assert (gt['gt_matches0'] == np.arange(150)).mean() > 0.99


def test_known_translation_on_a_plane():
    """Camera moves 0.2 m right in front of a plane at 2 m: image shifts by f * 0.2 / 2 px."""
    pts = random_points(100, seed=2, margin=80)
    t_1_0 = np.eye(4)
    t_1_0[0, 3] = -0.2  # a point's x in camera 1 = x in camera 0 - 0.2 (camera moved +x)
    shift = 500.0 * 0.2 / 2.0
    moved = pts - [shift, 0]
    gt = depth_ground_truth(pts, moved, plane_depth(), plane_depth(), PINHOLE, t_1_0)
    assert np.allclose(gt['projections0'], moved, atol=1e-3)
    assert np.array_equal(gt['gt_matches0'], np.arange(100))
    # A keypoint 4 px off is neither matched nor dustbin (ambiguous band); 10 px off: dustbin.
    off = moved.copy()
    off[0] += [4, 0]
    off[1] += [10, 0]
    gt = depth_ground_truth(pts, off, plane_depth(), plane_depth(), PINHOLE, t_1_0)
    assert gt['gt_matches0'][0] == IGNORE
    assert gt['gt_matches0'][1] == UNMATCHED
    assert np.array_equal(gt['gt_matches0'][2:], np.arange(2, 100))


def test_occluded_point_goes_to_the_dustbin():
    pts = np.array([[320.0, 240.0], [100.0, 100.0]])
    d0 = plane_depth(3.0)
    d1 = plane_depth(3.0)
    d1[230:251, 310:331] = 1.0  # something in front of the first point in image 1
    gt = depth_ground_truth(pts, pts[1:].copy(), d0, d1, PINHOLE, np.eye(4))
    assert gt['status0'][0] == OCCLUDED
    assert gt['gt_matches0'][0] == UNMATCHED
    assert gt['gt_matches0'][1] == 0


def test_out_of_view_and_missing_depth():
    pts = np.array([[60.0, 240.0], [300.0, 240.0], [200.0, 200.0]])
    t_1_0 = np.eye(4)
    t_1_0[0, 3] = -0.5  # 125 px shift to the left: the first point leaves the image
    d0 = plane_depth()
    d0[195:206, 195:206] = 0  # no depth under the third keypoint
    gt = depth_ground_truth(pts, np.array([[300.0 - 125.0, 240.0]]), d0, plane_depth(),
                            PINHOLE, t_1_0)
    assert gt['status0'][0] == OUT_OF_VIEW and gt['gt_matches0'][0] == UNMATCHED
    assert gt['gt_matches0'][1] == 0
    assert gt['status0'][2] == rgbd.UNKNOWN and gt['gt_matches0'][2] == IGNORE


def test_padding_is_never_matched():
    pts = random_points(20)
    valid = np.ones(20, bool)
    valid[5] = False
    gt = depth_ground_truth(pts, pts.copy(), plane_depth(), plane_depth(), PINHOLE, np.eye(4),
                            valid0=valid, valid1=valid)
    assert gt['gt_matches0'][5] == UNMATCHED and gt['gt_matches1'][5] == UNMATCHED


def test_padding_makes_no_keypoint_ambiguous():
    """A lonely keypoint stays dustbin even when a padding point lands next to it."""
    pts0 = np.array([[100.0, 100.0], [300.0, 200.0]])
    pts1 = np.array([[300.0, 200.0], [102.0, 100.0]])  # the second is padding, 2 px away
    valid1 = np.array([True, False])
    gt = depth_ground_truth(pts0, pts1, plane_depth(), plane_depth(), PINHOLE, np.eye(4),
                            valid1=valid1)
    assert gt['gt_matches0'].tolist() == [UNMATCHED, 0]
    assert gt['gt_matches1'].tolist() == [1, UNMATCHED]


def test_camera_projection_round_trip_with_distortion():
    cam = rgbd.TUM_CAMERAS['fr1']
    pts = random_points(50, seed=3, margin=30)
    rays = cam.undistort(pts)
    px, inside = cam.project(np.concatenate([rays * 2, np.full((50, 1), 2.0)], 1))
    assert inside.all()
    assert np.abs(px - pts).max() < 0.05
    # Points behind the camera or far outside the view never fold back into the image.
    _, inside = cam.project(np.array([[0, 0, -1.0], [50.0, 0, 1.0]]))
    assert not inside.any()


def test_trajectory_interpolation():
    stamps = np.array([0.0, 0.01, 0.02])
    poses = np.array([[0, 0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 0, 1.0]])
    traj = Trajectory(stamps, poses)
    assert np.allclose(traj.at(0.015)[:3, 3], [1.5, 0, 0])
    assert traj.at(-1.0) is None and traj.at(0.5) is None


def test_trajectory_with_poses_only_at_the_frames_takes_them_as_they_are():
    # A reference SLAM or structure-from-motion run gives poses only at its frames, a second
    # apart: too far apart to interpolate, but each frame's own pose is exact.
    stamps = np.array([10.0, 11.0, 12.5])
    half = np.sqrt(0.5)
    poses = np.array([[0, 0, 0, 0, 0, 0, 1], [1, 2, 3, 0, 0, half, half],
                      [2, 0, 0, 0, 0, 0, 1.0]])
    traj = Trajectory(stamps, poses)
    first, middle = traj.at(10.0), traj.at(11.0 + 5e-5)
    assert np.allclose(first, np.eye(4))
    assert np.allclose(middle[:3, 3], [1, 2, 3])
    assert np.allclose(middle[:3, :3], [[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    assert np.allclose(traj.at(12.5)[:3, 3], [2, 0, 0])
    assert traj.at(10.5) is None  # between them: a second apart, not interpolated


def test_split_keeps_a_guard_between_training_and_validation():
    stamps = 100 + np.arange(0, 24, 0.1)
    train, val = split_by_time(stamps, block=4.0, guard=1.0)
    assert len(train) > 50 and len(val) > 50
    assert not set(train) & set(val)
    gap = np.abs(stamps[train][:, None] - stamps[val][None]).min()
    assert gap >= 1.0 - 1e-9


def test_load_camera_from_yaml_and_presets(tmp_path):
    (tmp_path / 'cam.yaml').write_text('width: 320\nheight: 240\nfx: 300\nfy: 301\ncx: 160\n'
                                       'cy: 120\ndist: [0.1, 0, 0, 0, 0]\n')
    cam = load_camera(str(tmp_path / 'cam.yaml'))
    assert cam.width == 320 and cam.fy == 301 and cam.dist[0] == 0.1
    assert load_camera('fr1').fx == pytest.approx(517.3)
    with pytest.raises(ValueError, match='preset'):
        load_camera('nope')


@pytest.fixture(scope='module')
def synthetic_folder(tmp_path_factory):
    return write_sequence(tmp_path_factory.mktemp('tum') / 'seq', frames=20)


def test_synthetic_sequence_ground_truth_is_exact(synthetic_folder):
    seq = TumSequence(synthetic_folder, load_camera(str(synthetic_folder / 'camera.yaml')))
    assert len(seq) == 20
    ext = OrbExtractor(512)
    f0, f1 = ext(seq.image(2)), ext(seq.image(6))
    gt = depth_ground_truth(f0.keypoints, f1.keypoints, seq.depth(2), seq.depth(6), seq.camera,
                            seq.relative_pose(2, 6))
    m = gt['gt_matches0'] >= 0
    assert m.sum() > 100
    err = np.linalg.norm(gt['projections0'][m] - f1.keypoints[gt['gt_matches0'][m]], axis=1)
    assert np.median(err) < 1.0
    assert (gt['status0'] == VISIBLE).mean() > 0.8


def test_motion_pairs_are_augmented_consistently(synthetic_folder):
    seq = TumSequence(synthetic_folder, load_camera(str(synthetic_folder / 'camera.yaml')))
    train, _ = split_by_time(seq.stamps, block=1.0, val_every=3, guard=0.0)
    gen = MotionPairGenerator([seq], [train], MotionPairConfig(num_keypoints=256, flip=1.0))
    rng = np.random.default_rng(0)
    for _ in range(3):
        p = gen.make(rng)
        for key in ('keypoints0', 'angles0', 'sizes0', 'orb0', 'gt_matches0'):
            assert len(p[key]) == 256
        assert (p['gt_matches0'] >= 0).sum() >= 25
        s, i, j = p['pair']
        assert i in train and j in train
        gap = abs(seq.stamps[i] - seq.stamps[j])
        assert 0.1 - 1e-3 <= gap <= 1.5
        m = np.nonzero(p['gt_matches0'] >= 0)[0]
        assert np.array_equal(p['gt_matches1'][p['gt_matches0'][m]], m)
        assert not (p['gt_matches0'][~p['valid0']] >= 0).any()


@pytest.mark.skipif(not SHARED_RPY.is_dir(), reason='needs ../shared/data/tum_fr1_rpy')
def test_real_sequence_ground_truth_agrees_with_refined_pose():
    seq = TumSequence(SHARED_RPY, rgbd.TUM_CAMERAS['fr1'])
    from superglue_ros.classical import nn_mutual
    ext = OrbExtractor(1024)
    f0, f1 = ext(seq.image(20)), ext(seq.image(21))
    a, b, _ = nn_mutual(f0, f1)
    t, info = rgbd.refine_relative_pose(f0.keypoints[a], f1.keypoints[b], seq.depth(20),
                                        seq.camera, seq.relative_pose(20, 21))
    assert info['refined'] == 1.0 and info['residual_after'] < info['residual_before']
    gt = depth_ground_truth(f0.keypoints, f1.keypoints, seq.depth(20), seq.depth(21),
                            seq.camera, t)
    assert (gt['gt_matches0'] >= 0).sum() > 200


def pose(angle_deg: float, axis, shift) -> np.ndarray:
    """4x4 rotation about ``axis`` by ``angle_deg`` followed by a translation ``shift`` [m]."""
    import cv2
    t = np.eye(4)
    axis = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    t[:3, :3] = cv2.Rodrigues(axis * np.radians(angle_deg))[0]
    t[:3, 3] = shift
    return t


def rotation_error_deg(a: np.ndarray, b: np.ndarray) -> float:
    d = a[:3, :3] @ b[:3, :3].T
    return float(np.degrees(np.arccos(np.clip((np.trace(d) - 1) / 2, -1, 1))))


def pose_refinement_scene(seed: int = 0, outliers: int = 80):
    """Make matches on a 2 m plane under a known pose (0.5 px noise) plus wrong ones."""
    cam = rgbd.TUM_CAMERAS['fr1']
    truth = pose(12.0, [0.3, 1.0, 0.2], [0.04, -0.01, 0.02])
    rng = np.random.default_rng(seed)
    p0 = random_points(300, seed=seed, margin=60)
    z = np.full(len(p0), 2.0)
    xyz = np.concatenate([cam.undistort(p0) * z[:, None], z[:, None]], 1)
    p1, inside = cam.project(xyz @ truth[:3, :3].T + truth[:3, 3])
    p0, p1 = p0[inside], p1[inside] + rng.normal(0, 0.5, (int(inside.sum()), 2))
    p1[:outliers] = random_points(outliers, seed=seed + 1)
    return cam, truth, p0, p1


def test_pose_refinement_recovers_a_mocap_pose_off_by_degrees():
    # A mocap pose 2 deg and 3 cm off (TUM fr1's fast rotations: 5-9 px median) puts the true
    # matches far beyond the 3 px radius; RANSAC PnP on tentative matches, a quarter of them
    # wrong, brings it back.
    cam, truth, p0, p1 = pose_refinement_scene()
    mocap = pose(2.0, [1.0, 0.2, -0.5], [0.02, 0.02, 0.0]) @ truth
    refined, info = rgbd.refine_relative_pose(p0, p1, plane_depth(), cam, mocap)
    assert info['refined'] == 1.0
    # A plane trades a little rotation for translation at the same pixels; the pixels decide.
    assert rotation_error_deg(refined, truth) < 0.3
    assert np.linalg.norm(refined[:3, 3] - truth[:3, 3]) < 0.015
    assert info['residual_after'] < 1.0 < 5.0 < info['residual_before']
    gt = depth_ground_truth(p0, p1, plane_depth(), plane_depth(), cam, refined)
    assert (gt['gt_matches0'][80:] == np.arange(80, len(p0))).mean() > 0.95


def test_pose_refinement_keeps_the_mocap_pose_when_the_matches_disagree_too_much():
    # The refinement may correct calibration and timing, not replace the ground truth: a
    # consensus 10 deg away from the mocap pose is not taken.
    cam, truth, p0, p1 = pose_refinement_scene(seed=2)
    mocap = pose(10.0, [0.0, 1.0, 0.3], [0.0, 0.0, 0.0]) @ truth
    refined, info = rgbd.refine_relative_pose(p0, p1, plane_depth(), cam, mocap)
    assert info['refined'] == 0.0
    assert np.array_equal(refined, mocap)


def _dense_labels(d01, d10, valid0, valid1, match_radius, unmatched_radius, st0=None, st1=None):
    """Label all M x N pairs by the definition (NaN = unknown error): the reference.

    Padding never matches and makes nothing ambiguous. Homographic (no statuses): ambiguous =
    unmatched with a keypoint of the other image within the unmatched radius. Depth-based:
    ignored = unmatched and neither lonely (visible, nothing within the radius) nor gone.
    """
    d01, d10 = d01.copy(), d10.copy()
    both = np.fmax(d01, d10)
    both[np.isnan(both)] = np.inf
    both[~valid0] = np.inf
    both[:, ~valid1] = np.inf
    m, n = both.shape
    gt0, gt1 = np.full(m, UNMATCHED), np.full(n, UNMATCHED)
    nn0, nn1 = both.argmin(1), both.argmin(0)  # first index on ties
    rows = np.nonzero((nn1[nn0] == np.arange(m)) & (both[np.arange(m), nn0] < match_radius ** 2)
                      & valid0)[0]
    gt0[rows], gt1[nn0[rows]] = nn0[rows], rows
    r2 = unmatched_radius ** 2
    d01[:, ~valid1], d10[~valid0] = np.inf, np.inf
    near0 = np.nan_to_num(d01, nan=np.inf).min(1) < r2
    near1 = np.nan_to_num(d10, nan=np.inf).min(0) < r2
    for gt, near, valid, st in ((gt0, near0, valid0, st0), (gt1, near1, valid1, st1)):
        if st is None:
            gt[(gt < 0) & near & valid] = IGNORE
        else:
            lonely = (st == VISIBLE) & ~near
            gone = (st == OUT_OF_VIEW) | (st == OCCLUDED)
            gt[(gt < 0) & valid & ~(lonely | gone)] = IGNORE
    return gt0, gt1


def _sq(a, b):
    return ((a[:, None] - b[None]) ** 2).sum(-1)


def test_labels_equal_the_dense_definition(synthetic_folder):
    """Label only the pairs within a few pixels (k-d trees), as the dense definition does.

    Real ORB keypoints of synthetic frames (projections unknown where depth is missing or out
    of view), padding keypoints, and keypoints repeated at the same position (ties), for the
    depth-based and the homographic ground truth.
    """
    from superglue_ros.datasets.homography import sample_homography, warp_points
    from superglue_ros.datasets.pairs import ground_truth
    seq = TumSequence(synthetic_folder, load_camera(str(synthetic_folder / 'camera.yaml')))
    ext = OrbExtractor(400)
    rng = np.random.default_rng(3)
    checked = 0
    for a, b in ((0, 3), (2, 9), (5, 6), (1, 15)):
        k0 = ext(seq.image(a)).keypoints.astype(np.float64)
        k1 = ext(seq.image(b)).keypoints.astype(np.float64)
        k0 = np.concatenate([k0, k0[:10], rng.uniform([0, 0], [639, 479], (30, 2))])
        k1 = np.concatenate([k1, k1[5:15], rng.uniform([0, 0], [639, 479], (30, 2))])
        valid0, valid1 = np.ones(len(k0), bool), np.ones(len(k1), bool)
        valid0[-30:], valid1[-30:] = False, False
        gt = depth_ground_truth(k0, k1, seq.depth(a), seq.depth(b), seq.camera,
                                seq.relative_pose(a, b), valid0=valid0, valid1=valid1)
        p0, p1 = gt['projections0'], gt['projections1']
        assert np.isnan(p0[:, 0]).any() and np.isfinite(p0[:, 0]).sum() > 100
        ref0, ref1 = _dense_labels(_sq(p0, k1), _sq(k0, p1), valid0, valid1, 3.0, 5.0,
                                   gt['status0'], gt['status1'])
        np.testing.assert_array_equal(gt['gt_matches0'], ref0)
        np.testing.assert_array_equal(gt['gt_matches1'], ref1)
        h = sample_homography(640, 480, rng, strength=0.8)
        k1h = warp_points(k0, h) + rng.normal(0.0, 1.5, k0.shape)  # found again, 1-2 px off
        hom = ground_truth(k0, k1h, h, 3.0, 5.0, valid0, valid0)
        ref0, ref1 = _dense_labels(_sq(warp_points(k0, h), k1h),
                                   _sq(k0, warp_points(k1h, np.linalg.inv(h))), valid0, valid0,
                                   3.0, 5.0)
        np.testing.assert_array_equal(hom['gt_matches0'], ref0)
        np.testing.assert_array_equal(hom['gt_matches1'], ref1)
        checked += int((ref0 >= 0).sum())
    assert checked > 500

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Two-view verification with a camera model: undistortion, essential matrix, pose."""

import cv2
import numpy as np
import pytest

from superglue_ros.geometry import (Intrinsics, MIN_POSE_INLIERS, relative_pose_error,
                                    rotation_to_quaternion, verify_essential, verify_fundamental,
                                    VERIFY_METHODS)

K = np.array([[517.3, 0.0, 318.6], [0.0, 516.5, 255.3], [0.0, 0.0, 1.0]])
# TUM freiburg1's calibration: strong radial distortion.
PLUMB_BOB = np.array([0.2624, -0.9531, -0.0054, 0.0026, 1.1633])
FISHEYE = np.array([0.05, -0.01, 0.002, -0.0005])


def scene(seed=0, n=300):
    rng = np.random.default_rng(seed)
    points = np.c_[rng.uniform(-2, 2, n), rng.uniform(-1.5, 1.5, n), rng.uniform(2, 6, n)]
    r = cv2.Rodrigues(np.array([0.02, np.deg2rad(5), 0.01]))[0]
    t = np.array([0.3, 0.02, 0.05])
    gt = np.eye(4)
    gt[:3, :3], gt[:3, 3] = r, t
    return points, r, t, gt


def project(points, r, t, d, model):
    if model == 'equidistant':
        return cv2.fisheye.projectPoints(points.reshape(-1, 1, 3), cv2.Rodrigues(r)[0], t, K,
                                         d)[0].reshape(-1, 2)
    return cv2.projectPoints(points, cv2.Rodrigues(r)[0], t, K, d)[0].reshape(-1, 2)


@pytest.mark.parametrize('model,d', [('plumb_bob', PLUMB_BOB), ('equidistant', FISHEYE),
                                     ('plumb_bob', np.zeros(5))])
def test_essential_matrix_on_undistorted_points_recovers_the_pose(model, d):
    points, r, t, gt = scene()
    p0 = project(points, np.eye(3), np.zeros(3), d, model)
    p1 = project(points, r, t, d, model)
    camera = Intrinsics.from_values(K.ravel(), d, model, (640, 480))
    assert np.abs(camera.normalize(p0) - points[:, :2] / points[:, 2:]).max() * 517 < 0.01
    inlier, pose = verify_essential(p0, p1, camera, threshold_px=1.0)
    assert inlier.all() and pose is not None and pose.inliers == len(points)
    assert pose.parallax > 2.0  # 31 cm at 2-6 m
    err_r, err_t = relative_pose_error(gt, pose.rotation, pose.translation)
    assert err_r < 0.01 and err_t < 0.05
    assert np.isclose(np.linalg.norm(pose.translation), 1.0) and pose.translation @ t > 0


def test_distortion_left_out_costs_inliers_and_pose_accuracy():
    points, r, t, gt = scene()
    p0 = project(points, np.eye(3), np.zeros(3), PLUMB_BOB, 'plumb_bob')
    p1 = project(points, r, t, PLUMB_BOB, 'plumb_bob')
    pinhole = Intrinsics.from_values(K.ravel(), [], 'plumb_bob', (640, 480))
    inlier, pose = verify_essential(p0, p1, pinhole, threshold_px=1.0)
    err_r, err_t = relative_pose_error(gt, pose.rotation, pose.translation)
    # With the distortion model every match is kept and the pose is exact (test above); the
    # USAC default's polished model still loses about a tenth of them here.
    assert inlier.mean() < 0.95 and (err_r > 0.3 or err_t > 1.0)
    # The fundamental matrix on distorted pixels loses inliers too: it is the fallback only.
    assert verify_fundamental(p0, p1, 1.0).mean() < 0.9


def test_outliers_are_flagged_and_too_few_matches_give_no_pose():
    points, r, t, _ = scene()
    camera = Intrinsics.from_values(K.ravel(), PLUMB_BOB, 'plumb_bob', (640, 480))
    p0 = project(points, np.eye(3), np.zeros(3), PLUMB_BOB, 'plumb_bob')
    p1 = project(points, r, t, PLUMB_BOB, 'plumb_bob')
    rng = np.random.default_rng(1)
    wrong = rng.choice(len(points), 60, replace=False)
    p1[wrong] = rng.uniform([0, 0], [640, 480], (60, 2))
    inlier, pose = verify_essential(p0, p1, camera)
    # A random point can fall within 1 px of its epipolar line by chance: a few may pass.
    assert inlier[wrong].sum() <= 3 and inlier.sum() >= len(points) - 60
    assert pose.inliers <= inlier.sum()
    inlier, pose = verify_essential(p0[:4], p1[:4], camera)
    assert pose is None and not inlier.any() and len(inlier) == 4


@pytest.mark.parametrize('baseline', [0.0, 0.002, 0.01])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_rotation_dominant_motion_keeps_its_rotation(baseline, seed):
    # A hand-held camera turning by 6-9 degrees while moving millimetres (TUM fr1_rpy's
    # keyframes: 0.3-1 cm at 1-5 m): the inliers triangulate near infinity, so counting them in
    # front of both cameras told the decompositions apart by noise, and the node published
    # no pose on half of such real pairs. The rotation is well determined all the same.
    rng = np.random.default_rng(seed)
    points, _, _, _ = scene(seed)
    r = cv2.Rodrigues(rng.normal(0, 1, 3) * np.deg2rad(4.0))[0]
    direction = rng.normal(0, 1, 3)
    t = baseline * direction / np.linalg.norm(direction)
    camera = Intrinsics.from_values(K.ravel(), PLUMB_BOB, 'plumb_bob', (640, 480))
    p0 = project(points, np.eye(3), np.zeros(3), PLUMB_BOB, 'plumb_bob')
    p1 = project(points, cv2.Rodrigues(r)[0].ravel(), t, PLUMB_BOB, 'plumb_bob')
    p0 += rng.normal(0, 0.3, p0.shape)
    p1 += rng.normal(0, 0.3, p1.shape)
    inlier, pose = verify_essential(p0, p1, camera)
    assert inlier.mean() > 0.8
    assert pose is not None, 'no pose for a pure rotation'
    gt = np.eye(4)
    gt[:3, :3], gt[:3, 3] = r, t
    err_r, _ = relative_pose_error(gt, pose.rotation, pose.translation)
    assert err_r < 0.5, err_r
    assert np.isclose(np.linalg.norm(pose.translation), 1.0)
    assert MIN_POSE_INLIERS <= pose.inliers <= inlier.sum()
    # The parallax says so: the noise level without translation, tenths of a degree with a
    # centimetre at 2-6 m.
    assert pose.parallax < (0.1 if baseline == 0 else 0.4), pose.parallax


@pytest.mark.parametrize('rotvec', [[0, 0, 0], [0.1, -0.2, 0.3], [np.pi, 0, 0],
                                    [0, np.pi * 0.999, 0], [1.0, 1.0, -1.0]])
def test_rotation_to_quaternion(rotvec):
    r = cv2.Rodrigues(np.array(rotvec, np.float64))[0]
    x, y, z, w = rotation_to_quaternion(r)
    assert np.isclose(np.linalg.norm([x, y, z, w]), 1.0) and w >= 0
    angle = np.linalg.norm(rotvec)
    assert np.isclose(w, np.cos(angle / 2), atol=1e-9)
    if angle > 0:
        axis = np.array(rotvec) / angle
        assert np.allclose(np.array([x, y, z]), axis * np.sin(angle / 2), atol=1e-9)


@pytest.mark.parametrize('k,d,model,match', [
    ([0.0] * 9, [], 'plumb_bob', 'fx, fy > 0'),
    (K.ravel()[:6], [], 'plumb_bob', '3 x 3'),
    (K.ravel(), [float('nan')] * 5, 'plumb_bob', 'NaN'),
    (K.ravel(), [0.1] * 5, 'equidistant', '4 coefficients'),
    (K.ravel(), [0.1] * 3, 'rational_polynomial', 'coefficients'),
    (K.ravel(), [0.1] * 5, '', 'not supported'),
])
def test_intrinsics_errors_name_the_field(k, d, model, match):
    with pytest.raises(ValueError, match=match):
        Intrinsics.from_values(k, d, model, (640, 480))


def planted_outlier_scene(seed=3, n=400, wrong=120, noise_px=0.3):
    """Return a pinhole two-view scene with pixel noise and ``wrong`` matches moved at random."""
    points, r, t, _ = scene(seed, n)
    p0 = project(points, np.eye(3), np.zeros(3), np.zeros(5), 'plumb_bob')
    p1 = project(points, r, t, np.zeros(5), 'plumb_bob')
    rng = np.random.default_rng(seed)
    p0 += rng.normal(0, noise_px, p0.shape)
    p1 += rng.normal(0, noise_px, p1.shape)
    bad = rng.choice(n, wrong, replace=False)
    p1[bad] = rng.uniform([0, 0], [640, 480], (wrong, 2))
    return p0, p1, bad


def test_default_verification_rejects_planted_outliers_and_is_deterministic():
    p0, p1, bad = planted_outlier_scene()
    good = np.setdiff1d(np.arange(len(p0)), bad)
    camera = Intrinsics.from_values(K.ravel(), np.zeros(5), 'plumb_bob', (640, 480))
    fundamental = verify_fundamental(p0, p1, 1.0)
    essential, pose = verify_essential(p0, p1, camera, threshold_px=1.0)
    for inlier in (fundamental, essential):
        # A random point lands within 1 px of its epipolar line now and then: a few pass.
        assert inlier[bad].sum() <= 6
        # Noise of 0.3 px per coordinate: nearly every true match is within 1 px.
        assert inlier[good].mean() > 0.9
    assert pose is not None and pose.inliers >= 0.9 * len(good)
    for seed in (0, 0, 7):  # same answer every call; the estimators do not drift with seeds
        assert np.array_equal(verify_fundamental(p0, p1, 1.0, seed=seed), fundamental)
        again, _ = verify_essential(p0, p1, camera, threshold_px=1.0, seed=seed)
        assert np.array_equal(again, essential)


@pytest.mark.parametrize('method', sorted(VERIFY_METHODS))
def test_every_verification_method_rejects_planted_outliers(method):
    p0, p1, bad = planted_outlier_scene()
    inlier = verify_fundamental(p0, p1, 1.0, method=method)
    assert inlier[bad].sum() <= 6 and inlier.sum() >= 0.6 * (len(p0) - len(bad))
    if method != 'usac_fm_8pts':
        camera = Intrinsics.from_values(K.ravel(), np.zeros(5), 'plumb_bob', (640, 480))
        inlier, pose = verify_essential(p0, p1, camera, method=method)
        assert inlier[bad].sum() <= 6 and pose is not None


def test_unknown_verification_method_is_a_clear_error():
    p0, p1, _ = planted_outlier_scene()
    with pytest.raises(ValueError, match='usac_magsac'):
        verify_fundamental(p0, p1, method='lmeds')
    camera = Intrinsics.from_values(K.ravel(), np.zeros(5), 'plumb_bob', (640, 480))
    with pytest.raises(ValueError, match='essential'):
        verify_essential(p0, p1, camera, method='usac_fm_8pts')

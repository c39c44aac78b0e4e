# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Sub-pixel match refinement against exactly known warps of a real frame."""

import cv2
import numpy as np
import pytest

from superglue_ros.features import OrbExtractor, to_gray
from superglue_ros.refinement import (local_warps, MatchRefiner, pair_rotation, refine_matches,
                                      rotation_matrix)


def similarity(angle_deg: float, scale: float, shift, centre) -> np.ndarray:
    """2x3 matrix: rotate by angle (image coordinates, x towards y) and scale about centre."""
    c, s = scale * np.cos(np.deg2rad(angle_deg)), scale * np.sin(np.deg2rad(angle_deg))
    a = np.array([[c, -s], [s, c]])
    t = np.asarray(centre) - a @ np.asarray(centre) + np.asarray(shift)
    return np.hstack([a, t[:, None]])


@pytest.fixture
def warped_pair(frames):
    """Return a real frame, its rotated and sub-pixel shifted copy, and its ORB keypoints."""
    image0 = to_gray(cv2.imread(str(frames[0])))
    m = similarity(12.0, 1.0, (0.37, -0.62), (320, 240))
    image1 = cv2.warpAffine(image0, m, (640, 480), flags=cv2.INTER_CUBIC)
    features = OrbExtractor(512)(image0)
    points0 = features.keypoints.astype(np.float64)
    truth = points0 @ m[:, :2].T + m[:, 2]
    return image0, image1, points0, truth, m


def test_refinement_recovers_rotated_subpixel_shift(warped_pair):
    image0, image1, points0, truth, _ = warped_pair
    rng = np.random.default_rng(0)
    # Matched points as a detector would give them: the truth off by up to 1.5 px.
    points1 = truth + rng.uniform(-1.5, 1.5, truth.shape)
    r = refine_matches(image0, image1, points0, points1, rotation=12.0)
    before = np.linalg.norm(points1 - truth, axis=1)
    after = np.linalg.norm(r.points1 - truth, axis=1)
    assert r.refined.mean() > 0.6
    assert np.median(after[r.refined]) < 0.2 < 0.5 * np.median(before[r.refined])
    assert np.array_equal(r.points1[~r.refined], points1[~r.refined].astype(np.float32))
    assert np.all(r.correlation[r.refined] >= 0.7)


def test_rotation_sign_matters(warped_pair):
    """The template is rotated the right way: the opposite rotation refines far fewer points."""
    image0, image1, points0, truth, _ = warped_pair
    right = refine_matches(image0, image1, points0, truth, rotation=12.0)
    wrong = refine_matches(image0, image1, points0, truth, rotation=-12.0)
    assert right.refined.sum() > 1.5 * wrong.refined.sum()


def test_pair_rotation_from_orb_angles(warped_pair):
    image0, image1 = warped_pair[:2]
    f0, f1 = OrbExtractor(512)(image0), OrbExtractor(512)(image1)
    # Pair keypoints by the known warp (nearest within 1.5 px) and read their angles.
    proj = cv2.transform(f0.keypoints[None].astype(np.float64), warped_pair[4])[0]
    d = np.linalg.norm(proj[:, None] - f1.keypoints[None], axis=2)
    j = d.argmin(1)
    near = d[np.arange(len(j)), j] < 1.5
    rotation = pair_rotation(f0.angle[near], f1.angle[j[near]])
    assert abs(rotation - 12.0) < 3.0
    # Wrong matches (random angles) barely move a confidence-weighted estimate.
    junk = np.random.default_rng(1).uniform(0, 360, 50)
    a0 = np.r_[f0.angle[near], junk]
    a1 = np.r_[f1.angle[j[near]], junk[::-1]]
    w = np.r_[np.ones(near.sum()), np.full(50, 0.05)]
    assert abs(pair_rotation(a0, a1, w) - 12.0) < 3.0
    assert pair_rotation(None, None) == 0.0
    assert pair_rotation(np.zeros(0), np.zeros(0)) == 0.0


def test_wrong_matches_and_borders_stay_unrefined(warped_pair):
    image0, image1, points0, truth, _ = warped_pair
    rng = np.random.default_rng(2)
    # Partners 10-20 px away: outside the search radius, so the peak lies on its border or
    # the correlation is low; the input point is kept.
    far = truth + rng.choice([-1, 1], truth.shape) * rng.uniform(10, 20, truth.shape)
    r = refine_matches(image0, image1, points0, far, rotation=12.0)
    assert r.refined.mean() < 0.1
    # Windows that leave either image are never evaluated.
    edge = np.array([[2.0, 2.0], [320.0, 240.0]])
    r = refine_matches(image0, image1, edge, np.array([[320.0, 240.0], [638.0, 478.0]]))
    assert not r.refined.any() and np.isnan(r.correlation).all()


def test_flat_patches_are_not_refined():
    flat = np.full((480, 640), 128, np.uint8)
    r = refine_matches(flat, flat, np.array([[100.0, 100.0]]), np.array([[100.4, 99.7]]))
    assert not r.refined[0]
    np.testing.assert_allclose(r.points1, [[100.4, 99.7]], atol=1e-5)


def test_empty_input_and_argument_errors(warped_pair):
    image0, image1 = warped_pair[:2]
    r = refine_matches(image0, image1, np.zeros((0, 2)), np.zeros((0, 2)))
    assert len(r) == 0 and r.points1.shape == (0, 2)
    with pytest.raises(ValueError, match='same length'):
        refine_matches(image0, image1, np.zeros((2, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match='half_window'):
        MatchRefiner(half_window=0)
    with pytest.raises(ValueError, match='min_correlation'):
        MatchRefiner(min_correlation=2.0)
    with pytest.raises(ValueError, match='image0'):
        refine_matches(np.zeros((4, 4, 4, 4)), image1, np.zeros((1, 2)), np.zeros((1, 2)))


def test_refiner_accepts_bgr_and_uses_angles(warped_pair):
    image0, image1, points0, truth, _ = warped_pair
    bgr0 = cv2.cvtColor(image0, cv2.COLOR_GRAY2BGR)
    bgr1 = cv2.cvtColor(image1, cv2.COLOR_GRAY2BGR)
    angles0 = np.zeros(len(points0))
    r = MatchRefiner()(bgr0, bgr1, points0, truth + 0.8, angles0, angles0 + 12.0)
    assert abs(r.rotation - 12.0) < 1e-9
    err = np.linalg.norm(r.points1 - truth, axis=1)
    assert r.refined.mean() > 0.6 and np.median(err[r.refined]) < 0.2


def test_homography_warps_follow_foreshortening(frames):
    """Check the homography's Jacobians under a strong perspective warp.

    They keep the patches aligned where the rotation alone does not, and equal the rotation
    for a pure rotation.
    """
    image0 = to_gray(cv2.imread(str(frames[0])))
    src = np.float32([[0, 0], [639, 0], [639, 479], [0, 479]])
    dst = np.float32([[60, 30], [600, 0], [639, 479], [10, 420]])
    hom = cv2.getPerspectiveTransform(src, dst)
    image1 = cv2.warpPerspective(image0, hom, (640, 480), flags=cv2.INTER_CUBIC)
    points0 = OrbExtractor(512)(image0).keypoints.astype(np.float64)
    truth = cv2.perspectiveTransform(points0[None], hom)[0]
    keep = (truth > 20).all(1) & (truth < [620, 460]).all(1)
    points0, truth = points0[keep], truth[keep]
    rng = np.random.default_rng(3)
    points1 = truth + rng.uniform(-1.5, 1.5, truth.shape)
    warps, from_homography = local_warps(points0, points1)
    assert from_homography and warps.shape == (len(points0), 2, 2)
    refined = refine_matches(image0, image1, points0, points1, warps=warps)
    rotation_only = refine_matches(image0, image1, points0, points1, 0.0)
    err = np.linalg.norm(refined.points1 - truth, axis=1)
    err_rot = np.linalg.norm(rotation_only.points1 - truth, axis=1)
    assert refined.refined.mean() > 0.6 and np.median(err[refined.refined]) < 0.2
    assert np.median(err) < np.median(err_rot)
    # Pure rotation: the homography's Jacobian is the rotation itself.
    m = np.hstack([rotation_matrix(9.0), [[5.0], [-3.0]]])
    moved = points0 @ m[:, :2].T + m[:, 2]
    warps, from_homography = local_warps(points0, moved)
    assert from_homography
    np.testing.assert_allclose(warps, np.broadcast_to(rotation_matrix(9.0), warps.shape),
                               atol=1e-3)


def test_warps_fall_back_to_the_rotation():
    """Too few matches, or matches no homography explains: every match gets the rotation."""
    rng = np.random.default_rng(4)
    few = rng.uniform(0, 400, (5, 2))
    warps, from_homography = local_warps(few, few + 1.0, rotation=30.0)
    assert not from_homography
    np.testing.assert_allclose(warps, np.broadcast_to(rotation_matrix(30.0), (5, 2, 2)))
    junk0, junk1 = rng.uniform(0, 640, (200, 2)), rng.uniform(0, 640, (200, 2))
    assert not local_warps(junk0, junk1)[1]
    with pytest.raises(ValueError, match='warps'):
        refine_matches(np.zeros((50, 50), np.uint8), np.zeros((50, 50), np.uint8), few, few,
                       warps=np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match='warp must be'):
        MatchRefiner(warp='affine')


def test_points_on_the_homography_horizon_keep_the_rotation(monkeypatch):
    """A homography that sends a matched point to infinity must not break the SVD."""
    rng = np.random.default_rng(5)
    points0 = rng.uniform(50, 400, (40, 2))
    hom = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.001, 0.0, 1.0]])
    points0[0] = (-1000.0, 200.0)  # w = 0 here
    monkeypatch.setattr(cv2, 'findHomography',
                        lambda *a, **k: (hom, np.ones((40, 1), np.uint8)))
    warps, from_homography = local_warps(points0, points0, rotation=10.0)
    assert from_homography and np.isfinite(warps).all()
    np.testing.assert_allclose(warps[0], rotation_matrix(10.0))

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""ImageMatcher on real images: the one-call API users and the tools rely on."""

import cv2
import numpy as np
import pytest

from conftest import shipped_weights_or_skip
from superglue_ros import ImageMatcher
from superglue_ros.evaluation.baselines import nn_mutual
from superglue_ros.geometry import verify_fundamental
from superglue_ros.weights import WeightsError


def test_real_pair_through_image_matcher(frames):
    weights = shipped_weights_or_skip()
    matcher = ImageMatcher(weights, features='orb', max_keypoints=1024, device='cpu')
    res = matcher.match(frames[0], frames[2])
    assert len(res.features0) > 500 and len(res.features1) > 500
    assert res.points0.shape == (len(res), 2) and res.points1.shape == (len(res), 2)
    assert len(res) >= 100, f'only {len(res)} matches on consecutive TUM frames'
    assert np.array_equal(res.points0, res.features0.keypoints[res.index0])
    # points1 are refined where ``refined`` says so, and the keypoints everywhere else.
    keypoints1 = res.features1.keypoints[res.index1]
    assert res.refined.shape == (len(res),) and res.refined.mean() > 0.5
    assert np.array_equal(res.points1[~res.refined], keypoints1[~res.refined])
    assert np.abs(res.points1[res.refined] - keypoints1[res.refined]).max() <= 3.5
    assert len(set(res.index0.tolist())) == len(res), 'a keypoint matched twice'
    assert ((res.confidence > matcher.engine.match_threshold) & (res.confidence <= 1)).all()


def test_real_motion_geometry_beats_orb_nn(frames):
    """Over several real frame pairs, matches agree with epipolar geometry better than NN."""
    weights = shipped_weights_or_skip()
    matcher = ImageMatcher(weights, features='orb', max_keypoints=1024, device='cpu')
    ours, nn = np.zeros(2), np.zeros(2)  # (inliers, matches)
    for i in (0, 5, 10):
        res = matcher.match(frames[i], frames[i + 2])
        inl = verify_fundamental(res.points0, res.points1, 1.0)
        ours += (inl.sum(), len(res))
        i0, i1, _ = nn_mutual(res.features0, res.features1)
        inl = verify_fundamental(res.features0.keypoints[i0], res.features1.keypoints[i1], 1.0)
        nn += (inl.sum(), len(i0))
    assert ours[0] >= 150, f'only {ours[0]} RANSAC inliers over 3 pairs'
    assert ours[0] / ours[1] > nn[0] / nn[1], (ours, nn)


def test_arrays_and_paths_agree(frames):
    weights = shipped_weights_or_skip()
    matcher = ImageMatcher(weights, max_keypoints=512, device='cpu')
    a = matcher.match(frames[3], frames[4])
    b = matcher.match(cv2.imread(str(frames[3])), cv2.imread(str(frames[4])))
    assert np.array_equal(a.index0, b.index0) and np.array_equal(a.index1, b.index1)


def test_own_opencv_keypoints_with_images_are_matched_and_refined(frames):
    # A front-end of one's own (plain cv2.ORB here): Features.from_opencv, then
    # match_features with the images gives the same refinement as match().
    from superglue_ros.features import Features
    weights = shipped_weights_or_skip()
    matcher = ImageMatcher(weights, max_keypoints=1024, device='cpu')
    orb = cv2.ORB_create(1000)
    grays = [cv2.imread(str(frames[i]), cv2.IMREAD_GRAYSCALE) for i in (0, 2)]
    feats = []
    for gray in grays:
        kps, desc = orb.detectAndCompute(gray, None)
        feats.append(Features.from_opencv(kps, desc, (gray.shape[1], gray.shape[0])))
        assert len(feats[-1]) == len(kps) and feats[-1].octave.shape == (len(kps),)
    res = matcher.match_features(feats[0], feats[1], grays[0], grays[1])
    assert len(res) >= 100 and res.refined.mean() > 0.5
    assert verify_fundamental(res.points0, res.points1, 1.0).mean() > 0.8
    plain = matcher.match_features(feats[0], feats[1])  # no images: no refinement
    assert np.array_equal(plain.index0, res.index0) and not plain.refined.any()
    n = len(kps)
    with pytest.raises(ValueError, match=f'descriptors: {n - 1} rows for {n} keypoints'):
        Features.from_opencv(kps, desc[:-1], (640, 480))
    with pytest.raises(ValueError, match=r'descriptors: ORB descriptors are \[N x 32\] uint8'):
        Features.from_opencv(kps, desc.astype(np.float32), (640, 480))


def test_wrong_features_for_weights_rejected(tiny_weights):
    with pytest.raises(ValueError, match="expect 'orb'"):
        ImageMatcher(tiny_weights, features='sift')


def test_missing_weights_named(tmp_path):
    with pytest.raises(WeightsError, match='missing.pth'):
        ImageMatcher(tmp_path / 'missing.pth')


def test_textureless_image_gives_no_matches(tiny_weights):
    matcher = ImageMatcher(tiny_weights, max_keypoints=256, device='cpu')
    blank = np.full((480, 640, 3), 127, np.uint8)
    res = matcher.match(blank, blank)
    assert len(res.features0) == 0 and len(res) == 0
    assert res.points0.shape == (0, 2)


def test_refinement_moves_matches_onto_the_true_subpixel_position(frames):
    """A real frame and its rotated, sub-pixel shifted copy: refined points land on the truth.

    ORB keypoints are integer pixels of a pyramid level, so the unrefined matches are about a
    pixel off; refinement must bring the median error well below that, and ``refine=False``
    must give the keypoints back unchanged with the same matches.
    """
    weights = shipped_weights_or_skip()
    image0 = cv2.imread(str(frames[0]), cv2.IMREAD_GRAYSCALE)
    angle, shift = np.deg2rad(6.0), np.array([0.43, -0.28])
    a = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([320.0, 240.0])
    m = np.hstack([a, (centre - a @ centre + shift)[:, None]])
    image1 = cv2.warpAffine(image0, m, (640, 480), flags=cv2.INTER_CUBIC)
    refined = ImageMatcher(weights, device='cpu').match(image0, image1)
    plain = ImageMatcher(weights, device='cpu', refine=False).match(image0, image1)
    assert np.array_equal(refined.index0, plain.index0)
    assert not plain.refined.any()
    assert np.array_equal(plain.points1, plain.features1.keypoints[plain.index1])
    truth = refined.points0 @ a.T + m[:, 2]
    err_plain = np.linalg.norm(plain.points1 - truth, axis=1)
    err_refined = np.linalg.norm(refined.points1 - truth, axis=1)
    good = err_plain < 3  # correct matches
    assert good.sum() > 200 and refined.refined[good].mean() > 0.7
    assert np.median(err_refined[good]) < 0.25 < 0.5 * np.median(err_plain[good])


def test_demo_writes_refined_matches(tmp_path):
    """superglue-demo on the bundled pair: summary with the refined flags, and --no-refine."""
    import json
    from superglue_ros.tools.demo import main
    shipped_weights_or_skip()
    assert main(['--out', str(tmp_path / 'on'), '--device', 'cpu']) == 0
    on = json.loads((tmp_path / 'on' / 'summary.json').read_text())
    assert (tmp_path / 'on' / 'matches.png').is_file()
    flags = [m['refined'] for m in on['matches_list']]
    assert len(flags) == on['matches'] > 100 and sum(flags) == on['refined'] > on['matches'] / 2
    assert main(['--out', str(tmp_path / 'off'), '--device', 'cpu', '--no-refine']) == 0
    off = json.loads((tmp_path / 'off' / 'summary.json').read_text())
    assert off['refined'] == 0 and off['matches'] == on['matches']

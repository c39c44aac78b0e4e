# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Rendered-view training pairs: rendering against an exact renderer, holes, ground truth."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from superglue_ros.datasets.novel_view import (look_at_pose, NovelViewConfig,
                                               NovelViewGenerator, pinhole, render_view,
                                               sample_view_pose)
from superglue_ros.datasets.rgbd import Camera, depth_ground_truth, split_by_time, TumSequence
from superglue_ros.datasets.synthetic_rgbd import CAMERA, camera_pose, render, write_sequence
from superglue_ros.features import OrbExtractor

DATA = Path(__file__).resolve().parents[1] / 'superglue_ros' / 'data' / 'tum_freiburg'


@pytest.fixture(scope='module')
def texture():
    img = cv2.imread(str(sorted(DATA.glob('*.jpg'))[0]), cv2.IMREAD_GRAYSCALE)
    return cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2))


def test_identity_pose_renders_the_frame_itself(texture):
    image, depth = render(texture, camera_pose(0.0))
    out, out_depth, coverage = render_view(image, depth, CAMERA, np.eye(4), hole_margin=0)
    known = depth > 0
    assert coverage == pytest.approx(known.mean(), abs=1e-3)
    assert np.abs(out.astype(int) - image)[known].max() <= 1
    assert np.allclose(out_depth[known], depth[known], rtol=1e-6)


def test_rendered_view_equals_an_exact_render_of_the_new_pose(texture):
    p0, p1 = camera_pose(0.0), camera_pose(0.8)  # 0.27 m sideways, a few degrees of rotation
    image0, depth0 = render(texture, p0)
    exact1, exact_depth1 = render(texture, p1)
    t_1_0 = np.linalg.inv(p1) @ p0
    out, out_depth, coverage = render_view(image0, depth0, CAMERA, t_1_0, hole_margin=0)
    both = (out_depth > 0) & (exact_depth1 > 0)
    assert coverage > 0.7 and both.mean() > 0.7
    # Depth agrees to splatting precision; grey levels to bilinear resampling.
    rel = np.abs(out_depth[both] - exact_depth1[both]) / exact_depth1[both]
    assert np.median(rel) < 2e-3
    inner = both & (cv2.erode(both.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0)
    diff = np.abs(out.astype(int) - exact1.astype(int))[inner]
    assert np.median(diff) <= 3 and np.percentile(diff, 95) <= 25


def test_ground_truth_of_a_rendered_view_is_exact(texture):
    image0, depth0 = render(texture, camera_pose(0.0))
    t_1_0 = np.linalg.inv(camera_pose(0.8)) @ camera_pose(0.0)
    image1, depth1, _ = render_view(image0, depth0, CAMERA, t_1_0)
    ext = OrbExtractor(512)
    f0, f1 = ext(image0), ext(image1)
    gt = depth_ground_truth(f0.keypoints, f1.keypoints, depth0, depth1, CAMERA, t_1_0)
    m = gt['gt_matches0'] >= 0
    assert m.sum() > 100
    err = np.linalg.norm(gt['projections0'][m] - f1.keypoints[gt['gt_matches0'][m]], axis=1)
    assert np.median(err) < 1.0


def test_disocclusion_leaves_holes_without_depth_near_them():
    # A near box in front of a far wall; moving sideways uncovers wall that frame 0 never saw.
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 255, (480, 640)).astype(np.uint8), (5, 5), 0)
    depth = np.full((480, 640), 3.0, np.float32)
    depth[160:320, 240:400] = 1.0
    t_1_0 = np.eye(4)
    t_1_0[0, 3] = -0.2  # camera moves 0.2 m to the right
    out, out_depth, coverage = render_view(image, depth, CAMERA, t_1_0, hole_margin=4)
    assert 0.5 < coverage < 0.99
    holes = out_depth == 0
    # The box shifts left by f * 0.2 / 1 = 105 px and the wall by 35 px: a 70 px wide gap
    # opens on the box's right; no depth there or within 4 px of it.
    assert holes[240, 400 - 105 + 5:400 - 35 - 5].all()
    # Holes are filled smoothly, so they do not make corners of their own.
    gap = out[170:310, 400 - 105 + 10:400 - 35 - 10].astype(float)
    assert gap.std() < 0.5 * image.astype(float).std()


def test_pinhole_drops_distortion_and_look_at_points_the_camera():
    cam = Camera(640, 480, 517.3, 516.5, 318.6, 255.3, (0.26, -0.95, -0.005, 0.003, 1.16))
    assert pinhole(cam).dist == (0.0,) * 5 and pinhole(cam).fx == cam.fx
    target = np.array([0.1, -0.05, 2.0])
    t = look_at_pose(np.array([0.5, 0.0, 0.1]), target, 0.0, np.zeros(3))
    p = t[:3, :3] @ target + t[:3, 3]
    assert p[0] == pytest.approx(0.0, abs=1e-9) and p[1] == pytest.approx(0.0, abs=1e-9)
    assert np.allclose(t[:3, :3] @ t[:3, :3].T, np.eye(3))
    rng = np.random.default_rng(1)
    depth = np.full((480, 640), 2.0, np.float32)
    conf = NovelViewConfig()
    for _ in range(20):
        pose = sample_view_pose(depth, pinhole(cam), rng, conf)
        baseline = np.linalg.norm(np.linalg.inv(pose)[:3, 3])
        assert conf.min_baseline * 2.0 - 1e-9 <= baseline <= conf.max_baseline * 2.0 + 1e-9


def test_generator_pairs_are_consistent(tmp_path):
    folder = write_sequence(tmp_path / 'seq', frames=12)
    seq = TumSequence(folder, CAMERA)
    train, _ = split_by_time(seq.stamps, block=1.0, val_every=3, guard=0.0)
    gen = NovelViewGenerator([seq], [train], NovelViewConfig(num_keypoints=256, flip=1.0))
    rng = np.random.default_rng(0)
    for _ in range(3):
        p = gen.make(rng)
        for key in ('keypoints0', 'keypoints1', 'orb0', 'orb1', 'gt_matches0', 'gt_matches1'):
            assert len(p[key]) == 256
        s, i, j = p['pair']
        assert i == j and i in train
        m = np.nonzero(p['gt_matches0'] >= 0)[0]
        assert len(m) >= 25
        assert np.array_equal(p['gt_matches1'][p['gt_matches0'][m]], m)
        assert not (p['gt_matches0'][~p['valid0']] >= 0).any()

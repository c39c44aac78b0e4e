# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Reference poses by SIFT structure from motion, for sequences without ground truth."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from superglue_ros.datasets.rgbd import Camera, TumSequence
from superglue_ros.datasets.synthetic_rgbd import CAMERA, camera_pose, render
from superglue_ros.evaluation.reference_poses import build_tracks, reference_poses
from superglue_ros.geometry import relative_pose_error, rotation_to_quaternion

DATA = Path(__file__).resolve().parents[1] / 'superglue_ros' / 'data' / 'tum_freiburg'


def two_plane_sequence(frames: int):
    """Render a wall 2 m away and a picture 1.2 m in front of the camera: real depth.

    (One plane would leave the essential matrix ill-posed.) Returns images and poses.
    """
    textures = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(DATA.glob('*.jpg'))[:2]]
    wall = cv2.resize(textures[0], (textures[0].shape[1] * 2, textures[0].shape[0] * 2))
    images, poses = [], []
    for k in range(frames):
        pose = camera_pose(0.5 * k)
        far, far_depth = render(wall, pose, plane_depth=2.0, plane_width=4.0)
        near, near_depth = render(textures[1], pose, plane_depth=1.2, plane_width=0.9)
        front = (near_depth > 0) & ((far_depth == 0) | (near_depth < far_depth))
        images.append(np.where(front, near, far).astype(np.uint8))
        poses.append(pose)
    return images, poses


@pytest.fixture(scope='module')
def reconstruction():
    images, truth = two_plane_sequence(7)
    return reference_poses(images, CAMERA, max_gap=3, max_features=3000), truth


def test_reference_poses_recover_the_relative_motion(reconstruction):
    ref, truth = reconstruction
    assert all(p is not None for p in ref.poses)
    assert ref.median_px < 0.5 and ref.within_1px > 80
    for i in range(len(truth)):
        for j in range(i + 1, min(len(truth), i + 4)):
            true_1_0 = np.linalg.inv(truth[j]) @ truth[i]
            est_1_0 = np.linalg.inv(ref.poses[j]) @ ref.poses[i]
            r_err, t_err = relative_pose_error(true_1_0, est_1_0[:3, :3], est_1_0[:3, 3])
            assert r_err < 0.2, (i, j, r_err)
            assert t_err < 3.0, (i, j, t_err)


def test_reference_poses_feed_the_tum_evaluation(tmp_path, capsys):
    # The CLI writes a pose-only TUM folder that `superglue-eval tum` reads, in time order,
    # with the images left where they are.
    from superglue_ros.tools.eval import main as eval_main
    images, _ = two_plane_sequence(5)
    src = tmp_path / 'frames'
    src.mkdir()
    for k, image in enumerate(images):
        cv2.imwrite(str(src / f'{100 + 0.5 * k:.6f}.png'), image)
    (tmp_path / 'cam.yaml').write_text(
        f'width: 640\nheight: 480\nfx: {CAMERA.fx}\nfy: {CAMERA.fy}\ncx: {CAMERA.cx}\n'
        f'cy: {CAMERA.cy}\n')
    out = tmp_path / 'seq'
    rc = eval_main(['--out', str(tmp_path / 'ref.json'), 'reference-poses', str(src), str(out),
                    '--camera', str(tmp_path / 'cam.yaml'), '--max-gap', '2',
                    '--max-features', '2000'])
    assert rc == 0
    assert '5 of 5 frames registered' in capsys.readouterr().out
    summary = json.loads((tmp_path / 'ref.json').read_text())
    assert summary['registered'] == 5 and summary['median_px'] < 0.5
    seq = TumSequence(str(out), Camera(640, 480, CAMERA.fx, CAMERA.fy, CAMERA.cx, CAMERA.cy))
    assert len(seq) == 5 and not seq.has_depth
    assert np.allclose(seq.stamps, 100 + 0.5 * np.arange(5))
    assert seq.frames[2].rgb == (src / '101.000000.png').resolve()


def test_reference_poses_refuse_what_they_cannot_reconstruct(tmp_path, capsys):
    from superglue_ros.tools.eval import main as eval_main
    with pytest.raises(ValueError, match='at least 2 images'):
        reference_poses([np.zeros((480, 640), np.uint8)], CAMERA)
    blank = [np.full((480, 640), 128, np.uint8)] * 3
    with pytest.raises(ValueError, match='enough verified SIFT matches'):
        reference_poses(blank, CAMERA)
    # Frames it cannot register are named once per run of consecutive frames.
    images, _ = two_plane_sequence(3)
    src = tmp_path / 'frames'
    src.mkdir()
    for k, image in enumerate(images + [np.full((480, 640), 128, np.uint8)] * 2):
        cv2.imwrite(str(src / f'frame{k}.png'), image)
    assert eval_main(['reference-poses', str(src), str(tmp_path / 'seq'), '--camera', 'fr1',
                      '--max-gap', '2', '--max-features', '2000']) == 0
    printed = capsys.readouterr().out
    assert 'not timestamps' in printed
    assert '2 frames not registered' in printed and 'frame3.png .. frame4.png (2)' in printed
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert eval_main(['reference-poses', str(empty), str(tmp_path / 'out'), '--camera',
                      'fr1']) == 2


def test_tracks_drop_two_keypoints_of_one_frame():
    matches = {(0, 1): np.array([[0, 0], [1, 1]]), (1, 2): np.array([[0, 5], [1, 5]])}
    tracks = build_tracks(matches)
    # Keypoints 0 and 1 of frame 0 would join through frame 2's keypoint 5: ambiguous, dropped.
    assert tracks == []
    assert build_tracks({(0, 1): np.array([[3, 4]]), (1, 2): np.array([[4, 7]])}) == [
        {0: 3, 1: 4, 2: 7}]


@pytest.mark.parametrize('angle', [0.0, 1.0, 2.5, np.pi - 1e-3, np.pi])
def test_quaternion_of_every_rotation_angle(angle):
    axis = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    r = cv2.Rodrigues(axis * angle)[0]
    from superglue_ros.datasets.rgbd import quat_to_matrix
    assert np.allclose(quat_to_matrix(np.array(rotation_to_quaternion(r))), r, atol=1e-9)

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""superglue-replay with ground truth, the reference back-end and --compare orb_nn.

A real TUM sequence (../shared/data/tum_fr1_rpy, its first frames) when present, else a small
sequence rendered by datasets.synthetic_rgbd; both become a rosbag2 with superglue-make-bag
and, for the ROS 1 test, a ``.bag``.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from ros_harness import domain_id, make_weights
from superglue_ros.datasets.synthetic_rgbd import write_sequence
from superglue_ros.replay import ReplayError
from superglue_ros.replay.bag import depth_to_metres, inspect_bag, read_camera_info
from superglue_ros.replay.run import matcher_camera_info, run_replay
from superglue_ros.tools.demo_bag import make_demo_bag
from superglue_ros.tools.make_bag import make_bag
from superglue_ros.tools.replay import main

DOMAIN = domain_id(27)
TUM = Path(__file__).resolve().parents[3] / 'shared' / 'data' / 'tum_fr1_rpy'
FRAMES = 36  # ~3.5 s of the real sequence (every 3rd frame) or of the synthetic one


def _have(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False


needs_backend = pytest.mark.skipif(
    not (_have('gtsam') and _have('evo')),
    reason='gtsam/evo not installed (optional: the reference back-end; make test installs '
           'them from requirements-eval.txt)')


@pytest.fixture(scope='module')
def sequence(tmp_path_factory):
    """(bag, ground-truth file, camera spec) of a real sequence, else of a synthetic one."""
    root = tmp_path_factory.mktemp('seq')
    if TUM.is_dir():
        folder, camera = TUM, 'fr1'
    else:
        print('\n[test_replay_evaluation] ../shared/data/tum_fr1_rpy not found: using a '
              'synthetic sequence (datasets.synthetic_rgbd)')
        folder = write_sequence(root / 'synthetic', frames=FRAMES)
        camera = str(folder / 'camera.yaml')
    bag = make_bag(folder, root / 'bag', camera=camera, max_frames=FRAMES)
    return bag, folder / 'groundtruth.txt', camera


def replay(bag, out, **kwargs):
    return run_replay(bag, out, rate=None, weights=str(make_weights(out.parent)), device='cpu',
                      max_keypoints=512, domain_id=DOMAIN, progress=False, timeout=30.0,
                      visualisations=0, **kwargs)


@pytest.fixture(scope='module')
def compared(sequence, tmp_path_factory):
    bag, gt, _ = sequence
    out = tmp_path_factory.mktemp('cmp') / 'out'
    backend = _have('gtsam') and _have('evo')
    return out, replay(bag, out, groundtruth=str(gt), backend=backend, compare=['orb_nn'])


def test_groundtruth_pose_errors_per_keyframe(compared):
    out, report = compared
    assert set(report['modes']) == {'superglue', 'orb_nn'}
    for mode, rep in report['modes'].items():
        assert rep['matcher'] == mode
        gt = rep['groundtruth']
        rows = gt['per_keyframe']
        assert len(rows) == rep['statuses']['ok'] == gt['pairs'] >= 4
        assert gt['pairs_with_groundtruth'] == len(rows)  # the poses cover the whole bag
        for key in ('pose_auc@5', 'pose_auc@10', 'pose_auc@20', 'rotation_auc@5',
                    'rotation_auc@10', 'rotation_auc@20'):
            assert 0.0 <= gt[key] <= 100.0
        assert gt['pose_auc@5'] <= gt['pose_auc@10'] <= gt['pose_auc@20']
        assert all(r['gt_rotation_deg'] > 0 for r in rows)
        # Real matches on real or rendered motion: most rotations within a few degrees.
        assert gt['rotation_auc@20'] > 50.0, (mode, gt)
        md = (out / mode / 'report.md').read_text()
        assert '## Relative pose against ground truth' in md and 'rotation AUC@5' in md
        # The bag's CameraInfo went to the matcher as a driver's would: every pair verified
        # with the essential matrix, and the pose the matcher published is scored too.
        assert rep['camera_info'] == "the bag's /camera/camera_info"
        assert rep['verification'] == {'essential': len(rows)}
        assert gt['node_pairs'] == len(rows) == rep['pairs_with_pose'] + gt['node_pairs_failed']
        assert gt['node_rotation_auc@20'] > 50.0, (mode, gt)
        for key in ('node_pose_auc@5', 'node_pose_auc@20', 'node_rotation_auc@5'):
            assert 0.0 <= gt[key] <= 100.0
        valid = [r for r in rows if np.isfinite(r['node_pose_error'])]
        assert len(valid) == rep['pairs_with_pose']
        # Hand-held, rotation-dominant motion with 100+ matches per pair: every pair has a
        # pose (half of them had none before rotation_dominant_pose), within a degree or two.
        assert gt['node_pairs_failed'] <= 1, rows
        assert np.median([r['node_rotation_error'] for r in valid]) < 2.0, rows
        assert all(r['node_parallax_deg'] >= 0 for r in valid)
        assert 0 <= gt['node_parallax_median_deg'] < 10
        assert "matcher's published pose AUC@5" in md and 'CameraInfo to the matcher' in md
        assert 'pose_error_per_keyframe.png' in rep['figures']
        assert (out / mode / 'pose_error_per_keyframe.png').is_file()
    # Both modes saw the same keyframes from the same front-end.
    ids = [[r['current_id'] for r in rep['groundtruth']['per_keyframe']]
           for rep in report['modes'].values()]
    assert ids[0] == ids[1]


def test_comparison_report_side_by_side(compared):
    out, report = compared
    md = (out / 'report.md').read_text()
    assert md.startswith('# superglue-replay report: matchers side by side')
    assert '| figure | superglue | orb_nn |' in md
    assert "CameraInfo to the matcher: the bag's /camera/camera_info" in md
    n = report['modes']['superglue']['statuses']['ok']
    assert f'| verification (pairs) / pairs with a published pose | essential {n} / {n} |' in md
    # Paired differences on the same keyframe pairs, re-estimated and published poses.
    assert 'Rotation AUC@5 of superglue minus the other matcher' in md
    summary = json.loads((out / 'report.json').read_text())
    for label in ('re-estimated', 'published'):
        d = summary['rotation_auc5_differences']['orb_nn'][label]
        assert d['pairs'] == n and d['low'] <= d['difference'] <= d['high']
        assert f'- vs orb_nn, {label} pose: ' in md
    summary = json.loads((out / 'report.json').read_text())
    assert summary['matchers'] == ['superglue', 'orb_nn']
    assert summary['orb_nn']['groundtruth']['pairs'] == \
        report['modes']['orb_nn']['groundtruth']['pairs']
    for name in summary['figures']:
        assert (out / name).is_file() and f']({name})' in md
    assert (out / 'superglue' / 'correspondences_bag' / 'metadata.yaml').is_file()
    assert (out / 'orb_nn' / 'correspondences_bag' / 'metadata.yaml').is_file()


@needs_backend
def test_backend_trajectory_accuracy(compared):
    out, report = compared
    md = (out / 'report.md').read_text()
    assert 'reference back-end' in md and 'ATE RMSE [cm]' in md
    assert 'trajectory_top_view.png' in json.loads((out / 'report.json').read_text())['figures']
    for mode, rep in report['modes'].items():
        be = rep['backend']
        assert be['keyframes'] == rep['statuses']['ok'] + 1 == be['associated']
        assert be['keyframes_with_depth'] > 0
        # Short sequences: a working RGB-D back-end stays within centimetres.
        assert 0 < be['ate_rmse_m'] < 0.10, (mode, be)
        assert be['rpe_trans_rmse_m'] < 0.10 and be['rpe_rot_rmse_deg'] < 5.0
        assert len(be['estimate_xyz']) == len(be['groundtruth_xyz']) == be['associated']


def test_bad_evaluation_inputs_are_one_line_errors(sequence, tmp_path, capsys):
    bag, gt, camera = sequence
    out = tmp_path / 'out'

    def fails(args, text):
        assert main([*args, '--out', str(out), '--no-progress']) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and text in err, err
        assert 'Traceback' not in err and not (out / 'report.md').exists()

    # Ground truth of another time span.
    shifted = tmp_path / 'shifted.txt'
    lines = [ln.split() for ln in gt.read_text().splitlines() if not ln.startswith('#')]
    shifted.write_text('\n'.join(' '.join([f'{float(p[0]) + 500:.4f}'] + p[1:])
                                 for p in lines if p) + '\n')
    fails([str(bag), '--groundtruth', str(shifted)], 'does not cover the bag')
    fails([str(bag), '--groundtruth', str(tmp_path / 'none.txt')], 'does not exist')
    (tmp_path / 'bad.txt').write_text('1.0 2.0 3.0\n')
    fails([str(bag), '--groundtruth', str(tmp_path / 'bad.txt')], 'not in TUM format')
    # A bag without CameraInfo or depth: the demo bag (bundled frames, images only).
    demo = make_demo_bag(tmp_path / 'demo', frames=4)
    info = inspect_bag(demo)
    t0, t1 = info.start_ns * 1e-9 - 1, (info.start_ns + info.duration_ns) * 1e-9 + 1
    cover = tmp_path / 'cover.txt'
    cover.write_text(''.join(f'{t:.3f} 0 0 0 0 0 0 1\n' for t in np.arange(t0, t1, 0.01)))
    fails([str(demo), '--groundtruth', str(cover)], 'no camera intrinsics')
    fails([str(demo), '--groundtruth', str(cover), '--camera', 'fr1', '--backend'],
          'needs depth')
    fails([str(bag), '--backend'], '--backend needs --groundtruth')
    fails([str(bag), '--groundtruth', str(gt), '--camera', str(tmp_path / 'x.yaml')],
          '--camera')


def test_camera_info_and_depth_from_the_bag(sequence):
    bag, _, camera = sequence
    info = inspect_bag(bag)
    assert info.image_topic == '/camera/image_raw'
    assert info.depth_topic == '/camera/depth/image_raw'
    assert info.camera_info_topic == '/camera/camera_info'
    from superglue_ros.datasets.rgbd import load_camera
    assert read_camera_info(info) == load_camera(camera)
    # What the replay gives the matcher: the bag's own message, --camera first, or nothing.
    msg, source = matcher_camera_info(info, None)
    assert source == "the bag's /camera/camera_info"
    assert list(msg.k)[0] == pytest.approx(load_camera(camera).fx) and msg.width == 640
    msg, source = matcher_camera_info(info, 'fr2')
    assert source == '--camera fr2' and list(msg.k)[0] == pytest.approx(load_camera('fr2').fx)
    msg, source = matcher_camera_info(info, None, give=False)
    assert msg is None and source.startswith('not given (--no-camera-info)')
    with pytest.raises(ReplayError, match='--camera'):
        matcher_camera_info(info, '/nonexistent/camera.yaml')


def test_depth_encodings():
    from sensor_msgs.msg import Image
    metres = np.array([[0.5, 1.25], [0.0, 3.0]], np.float32)
    f32 = Image(height=2, width=2, encoding='32FC1', step=12,
                data=np.pad(metres, ((0, 0), (0, 1))).tobytes())  # padded rows
    assert np.array_equal(depth_to_metres(f32), metres)
    nan = metres.copy()
    nan[1, 0] = np.nan
    f32.data = np.pad(nan, ((0, 0), (0, 1))).tobytes()
    assert np.array_equal(depth_to_metres(f32), metres)  # NaN = unknown = 0
    mm = Image(height=2, width=2, encoding='16UC1', step=4,
               data=(metres * 1000).astype(np.uint16).tobytes())
    assert np.allclose(depth_to_metres(mm), metres)
    with pytest.raises(ReplayError, match='encoding'):
        depth_to_metres(Image(height=1, width=1, encoding='bgr8', step=3, data=b'abc'))


def test_ros1_bag(sequence, tmp_path):
    """A ROS 1 .bag (as TUM ships them) with 32FC1 depth replays with ground truth."""
    from rosbags.rosbag1 import Writer
    from rosbags.rosbag2 import Reader
    from superglue_ros.replay.bag import typestore
    bag, gt, _ = sequence
    store = typestore()
    ros1 = tmp_path / 'seq.bag'
    topics = {'/camera/image_raw': '/camera/rgb/image_color',
              '/camera/depth/image_raw': '/camera/depth/image',
              '/camera/camera_info': '/camera/rgb/camera_info'}
    with Reader(bag) as reader, Writer(ros1) as writer:
        conns = {}
        for conn, t, raw in reader.messages():
            if conn.topic not in topics:
                continue
            if conn.topic not in conns:
                conns[conn.topic] = writer.add_connection(topics[conn.topic], conn.msgtype,
                                                          typestore=store)
            msg = store.deserialize_cdr(raw, conn.msgtype)
            if conn.topic == '/camera/depth/image_raw':  # as in the TUM ROS 1 bags
                metres = np.frombuffer(msg.data, np.uint16).astype(np.float32) / 1000.0
                metres[metres == 0] = np.nan
                msg.encoding, msg.step = '32FC1', msg.width * 4
                msg.data = metres.view(np.uint8)
            cdr = store.serialize_cdr(msg, conn.msgtype)
            writer.write(conns[conn.topic], t, store.cdr_to_ros1(cdr, conn.msgtype))
    info = inspect_bag(ros1)
    assert info.storage == 'rosbag1' and info.image_topic == '/camera/rgb/image_color'
    assert info.depth_topic == '/camera/depth/image'
    assert info.camera_info_topic == '/camera/rgb/camera_info'
    report = replay(ros1, tmp_path / 'out', groundtruth=str(gt), matcher='orb_nn',
                    backend=_have('gtsam') and _have('evo'))
    assert report['storage'] == 'rosbag1' and report['matcher'] == 'orb_nn'
    assert report['all_keyframes_accounted'] and report['statuses']['ok'] >= 4
    assert report['groundtruth']['rotation_auc@20'] > 50.0
    if report.get('backend'):
        assert report['backend']['keyframes_with_depth'] > 0
        assert report['backend']['ate_rmse_m'] < 0.10

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""superglue-replay: the demo bag through the real nodes over DDS, output bag and report."""

import json

import cv2
import numpy as np
import pytest
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import Image
from superglue_ros_msgs.msg import Keypoints

from ros_harness import domain_id
from superglue_ros.replay.bag import typestore
from superglue_ros.replay.run import OUTPUT_BAG, run_replay
from superglue_ros.ros.topics import CORRESPONDENCES_TOPIC
from superglue_ros.tools.demo_bag import (bundled_frames, IMAGE_TOPIC, KEYPOINTS_TOPIC,
                                          make_demo_bag)
from superglue_ros.tools.replay import main

DOMAIN = domain_id(21)


def replay(bag, out, weights, **kwargs):
    kwargs.setdefault('rate', None)
    return run_replay(bag, out, weights=str(weights), device='cpu', max_keypoints=512,
                      domain_id=DOMAIN, progress=False, timeout=30.0, **kwargs)


def read_correspondences(path):
    store = typestore()
    with Reader(path) as reader:
        conns = [c for c in reader.connections if c.topic == CORRESPONDENCES_TOPIC]
        return [store.deserialize_cdr(raw, c.msgtype)
                for c, _, raw in reader.messages(connections=conns)]


@pytest.fixture(scope='module')
def demo(tmp_path_factory, weights):
    root = tmp_path_factory.mktemp('replay')
    bag = make_demo_bag(root / 'demo_bag')
    return root / 'out', replay(bag, root / 'out', weights)


def test_demo_bag_is_deterministic(tmp_path):
    a = make_demo_bag(tmp_path / 'a', frames=3, keypoints=True, max_keypoints=100)
    b = make_demo_bag(tmp_path / 'b', frames=3, keypoints=True, max_keypoints=100)
    with Reader(a) as ra, Reader(b) as rb:
        assert [(c.topic, c.msgtype, c.msgcount) for c in ra.connections] == \
            [(c.topic, c.msgtype, c.msgcount) for c in rb.connections]
        msgs_a = [(c.topic, t, bytes(raw)) for c, t, raw in ra.messages()]
        msgs_b = [(c.topic, t, bytes(raw)) for c, t, raw in rb.messages()]
    # Compare contents: rclpy leaves CDR alignment padding uninitialised.
    types = {IMAGE_TOPIC: Image, KEYPOINTS_TOPIC: Keypoints}
    assert len(msgs_a) == len(msgs_b) == 6
    for (topic_a, t_a, raw_a), (topic_b, t_b, raw_b) in zip(msgs_a, msgs_b):
        assert (topic_a, t_a) == (topic_b, t_b)
        assert deserialize_message(raw_a, types[topic_a]) == \
            deserialize_message(raw_b, types[topic_b])
    store = typestore()
    image = store.deserialize_cdr(msgs_a[0][2], 'sensor_msgs/msg/Image')
    assert msgs_a[0][0] == IMAGE_TOPIC and image.encoding == 'bgr8'
    assert (image.width, image.height) == (640, 480)
    assert image.header.frame_id == 'camera_optical'
    first = bundled_frames()[0].stem
    assert f'{image.header.stamp.sec}.{image.header.stamp.nanosec:09d}'[:len(first)] == first
    assert msgs_a[0][1] == image.header.stamp.sec * 10**9 + image.header.stamp.nanosec
    assert msgs_a[1][0] == KEYPOINTS_TOPIC


def test_demo_replay_accounts_for_every_keyframe(demo):
    out, report = demo
    assert report['frames_read'] == report['frames_published'] == len(bundled_frames())
    assert report['keypoints_from'] == 'frontend_node'
    assert report['keyframes_in'] == report['frontend_counts']['keyframes'] >= 3
    # Back-pressure: nothing dropped, every keyframe answered exactly once.
    assert report['dropped_total'] == 0 and report['unaccounted'] == 0
    assert report['keyframes_in'] == report['correspondences_out']
    assert report['all_keyframes_accounted']
    frames = report['keyframes']
    assert frames[0]['status'] == 'first_keyframe'
    assert report['statuses'] == {'first_keyframe': 1, 'ok': report['keyframes_in'] - 1}
    assert [f['current_id'] for f in frames] == list(range(1, report['keyframes_in'] + 1))
    assert all(f['reference_id'] == f['current_id'] - 1 for f in frames[1:])
    assert all(f['matches'] >= 0 and f['latency_s'] > 0 for f in frames)
    assert all(0 < f['end_to_end_s'] < 30 for f in frames)
    assert 0 < report['latency_s']['p50'] <= report['latency_s']['p95'] \
        <= report['latency_s']['p99']
    assert report['matches_per_keyframe'] >= 0 and 0 <= report['inlier_ratio'] <= 1
    assert report['inliers_per_keyframe'] == pytest.approx(np.mean(
        [f['inliers'] for f in frames if f['status'] == 'ok']))
    assert report['inliers_per_keyframe'] <= report['matches_per_keyframe']
    assert report['node_stats']['published'] == report['correspondences_out']
    # The demo bag has no CameraInfo: the matcher verifies without intrinsics, no pose.
    assert report['camera_info'].startswith('none (the bag has no sensor_msgs/CameraInfo')
    assert report['verification'] == {'fundamental': report['statuses']['ok']}
    assert report['pairs_with_pose'] == 0


def test_output_bag_reads_back(demo):
    out, report = demo
    msgs = read_correspondences(out / OUTPUT_BAG)
    assert len(msgs) == report['correspondences_out']
    assert [m.current_keyframe_id for m in msgs] == \
        [f['current_id'] for f in report['keyframes']]
    for m, f in zip(msgs, report['keyframes']):
        assert len(m.current_x) == len(m.reference_y) == len(m.confidence) == f['matches']
    with Reader(out / OUTPUT_BAG) as reader:  # the front-end's keypoints are recorded too
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts['/superglue/keypoints'] == report['keyframes_in']


def test_report_files(demo):
    out, report = demo
    assert json.loads((out / 'report.json').read_text())['keyframes_in'] == \
        report['keyframes_in']
    md = (out / 'report.md').read_text()
    assert '| keyframes in / correspondences out |' in md and 'p50' in md
    assert {'matches_per_keyframe.png', 'latency_histogram.png'} <= set(report['figures'])
    assert any(name.startswith('matches_kf') for name in report['figures'])
    for name in report['figures']:
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[0] > 100, name
        assert f']({name})' in md


def test_bag_with_keypoints_mcap_skips_the_frontend(tmp_path, weights):
    bag = make_demo_bag(tmp_path / 'bag', storage='mcap', encoding='rgb8', keypoints=True,
                        max_keypoints=256, frames=5)
    report = replay(bag, tmp_path / 'out', weights, storage='mcap')
    assert report['storage'] == 'mcap' and report['keypoints_from'] == 'bag'
    assert report['keypoints_topic'] == KEYPOINTS_TOPIC and report['frontend_counts'] is None
    assert report['keyframes_in'] == report['correspondences_out'] == 5
    assert report['dropped_total'] == 0 and report['all_keyframes_accounted']
    assert report['statuses'] == {'first_keyframe': 1, 'ok': 4}
    assert len(read_correspondences(tmp_path / 'out' / OUTPUT_BAG)) == 5


def test_recorded_rate_accounts_for_every_keyframe(tmp_path, weights):
    bag = make_demo_bag(tmp_path / 'bag', keypoints=True, max_keypoints=256, frames=4)
    report = replay(bag, tmp_path / 'out', weights, rate=20.0, visualisations=0)
    assert report['mode'] == 'rate x20.0'
    assert report['keyframes_in'] == 4
    assert report['keyframes_in'] == report['correspondences_out'] + report['dropped_total']
    assert report['wall_s'] >= report['bag_duration_s'] / 20.0 * 0.9


def test_cli_errors(tmp_path, capsys):
    assert main([str(tmp_path / 'missing'), '--out', str(tmp_path / 'o')]) == 2
    assert 'does not exist' in capsys.readouterr().err
    (tmp_path / 'junk').mkdir()
    (tmp_path / 'junk' / 'metadata.yaml').write_text('not: [a bag')
    assert main([str(tmp_path / 'junk'), '--out', str(tmp_path / 'o')]) == 2
    assert 'cannot read bag' in capsys.readouterr().err
    bag = make_demo_bag(tmp_path / 'bag', frames=2)
    assert main([str(bag), '--out', str(tmp_path / 'o'), '--weights',
                 str(tmp_path / 'none.pth')]) == 2
    assert 'no weights' in capsys.readouterr().err

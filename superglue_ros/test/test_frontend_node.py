# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Camera images -> ORB front-end -> matcher, over real DDS."""

import array
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from superglue_ros_msgs.msg import Correspondences, Keypoints
import yaml

from ros_harness import (Collector, CONFIG, domain_id, Harness, make_weights, RELIABLE,
                         reliable_inputs, TumFrames, wait_for)
from superglue_ros.features import OrbExtractor
from superglue_ros.nodes.frontend_node import FrontendNode, tracked_overlap
from superglue_ros.nodes.matcher_node import MatcherNode
from superglue_ros.weights import default_weights_path


@pytest.fixture(scope='module')
def harness():
    h = Harness(domain_id(13))
    yield h
    h.close()


def test_tracked_overlap_drops_with_distance():
    frames = TumFrames(count=17, max_keypoints=300)
    first = frames.features[0]
    near = tracked_overlap(first, frames.features[1], 50)
    far = tracked_overlap(first, frames.features[16], 50)
    assert 0 < far < near <= 1
    assert tracked_overlap(first, first, 0) == 1.0
    empty = OrbExtractor(10)(np.zeros((48, 64), np.uint8))
    assert tracked_overlap(first, empty, 50) == 0.0


def test_config_file_matches_the_declared_parameters(harness):
    params = yaml.safe_load(CONFIG.read_text())['/**/superglue_frontend']['ros__parameters']
    node = FrontendNode(context=harness.context,
                        cli_args=['--ros-args', '--params-file', str(CONFIG)])
    try:
        for name, value in params.items():
            assert node.has_parameter(name), f'{name} in the config is not declared'
            assert node.get_parameter(name).value == value
            assert node.describe_parameter(name).description, name
    finally:
        node.destroy_node()


def test_frontend_to_matcher_chain(harness, tmp_path):
    ns = 'cam'
    weights = make_weights(tmp_path)
    frontend = harness.add(FrontendNode(
        context=harness.context, namespace=ns, parameter_overrides=[
            Parameter('max_keypoints', value=512), Parameter('keyframe_interval', value=3),
            Parameter('min_tracked_overlap', value=0.3),
            Parameter('qos_overrides./cam/image.subscription.reliability', value='reliable'),
            Parameter('qos_overrides./cam/image.subscription.depth', value=50)]))
    overrides = [Parameter('weights', value=str(weights)), Parameter('device', value='cpu'),
                 Parameter('queue_policy', value='block')] + reliable_inputs(ns)
    if str(weights) != str(default_weights_path()):
        overrides.append(Parameter('match_threshold', value=0.0))
    matcher = harness.add(MatcherNode(context=harness.context, namespace=ns,
                                      parameter_overrides=overrides))
    node = harness.node
    image_pub = node.create_publisher(Image, f'/{ns}/image', RELIABLE)
    keypoints = Collector()
    correspondences = Collector()
    kp_sub = node.create_subscription(Keypoints, f'/{ns}/keypoints', keypoints, RELIABLE)
    out_sub = node.create_subscription(Correspondences, f'/{ns}/correspondences',
                                       correspondences, RELIABLE)
    assert wait_for(lambda: image_pub.get_subscription_count() >= 2
                    and kp_sub.get_publisher_count() > 0 and out_sub.get_publisher_count() > 0,
                    20)
    frames = TumFrames(count=12)
    for i in range(len(frames)):
        image_pub.publish(frames.image_msg(i, encoding='bgr8'))
        wait_for(lambda: frontend.counts['frames'] > i, 5)
    assert wait_for(lambda: frontend.counts['frames'] == len(frames), 20)
    n = frontend.counts['keyframes']
    assert n >= len(frames) // 3
    kps = keypoints.wait(n)
    msgs = correspondences.wait(n, timeout=60)
    assert wait_for(matcher.is_idle, 20)
    assert len(correspondences) == len(keypoints) == n
    assert [k.keyframe_id for k in kps] == list(range(1, n + 1))
    image_stamps = {(frames.header(i).stamp.sec, frames.header(i).stamp.nanosec)
                    for i in range(len(frames))}
    assert msgs[0].status == Correspondences.STATUS_FIRST_KEYFRAME
    for k, m in enumerate(msgs[1:], start=1):
        assert m.status == Correspondences.STATUS_OK, m.status_message
        assert m.current_keyframe_id == kps[k].keyframe_id
        assert m.reference_keyframe_id == kps[k - 1].keyframe_id
        assert (m.current_stamp.sec, m.current_stamp.nanosec) in image_stamps
        assert len(m.current_indices) > 0
        assert max(m.current_indices) < len(kps[k].x)

    # A bad image is skipped with a warning; the front-end keeps going.
    bad = frames.image_msg(0, offset=100)
    bad.encoding = 'weird'
    image_pub.publish(bad)
    assert wait_for(lambda: frontend.counts['bad_images'] == 1, 10)
    good = frames.image_msg(1, offset=101)
    good.data = array.array('B', cv2.cvtColor(frames.images[1], cv2.COLOR_BGR2GRAY).tobytes())
    image_pub.publish(good)
    assert wait_for(lambda: frontend.counts['frames'] == len(frames) + 2, 10)
    harness.remove(matcher)
    harness.remove(frontend)


def test_keypoint_distribution_parameter(harness):
    for value in ('grid', 'grid_distinct', 'response'):
        node = FrontendNode(context=harness.context, parameter_overrides=[
            Parameter('keypoint_distribution', value=value)])
        try:
            assert node.describe_parameter('keypoint_distribution').read_only
            assert node.extractor.distribution == value
        finally:
            node.destroy_node()
    with pytest.raises(ValueError, match='keypoint_distribution must be one of'):
        FrontendNode(context=harness.context, parameter_overrides=[
            Parameter('keypoint_distribution', value='random')])


def start_frontend_process(namespace: str, **popen_args):
    """Start the front-end as its own process; return it and its output up to DDS start-up."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id(13)))
    proc = subprocess.Popen([sys.executable, '-m', 'superglue_ros.nodes.frontend_node',
                             '--ros-args', '-r', f'__ns:={namespace}'], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **popen_args)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if 'DDS transport' in line:
            break
    return proc, lines


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_console_script_stops_cleanly_on_a_signal(harness, signum):
    proc, lines = start_frontend_process('/stop')
    try:
        image_pub = harness.node.create_publisher(Image, '/stop/image', RELIABLE)
        assert wait_for(lambda: image_pub.get_subscription_count() > 0, 20)
        frames = TumFrames(count=3)
        for i in range(3):
            image_pub.publish(frames.image_msg(i, encoding='bgr8'))
        time.sleep(0.2)
        start = time.monotonic()
        proc.send_signal(signum)
        rest, _ = proc.communicate(timeout=30)
        elapsed = time.monotonic() - start
    finally:
        proc.kill()
    output = ''.join(lines) + rest
    assert proc.returncode == 0, output
    assert 'ERROR' not in output and 'Traceback' not in output, output
    assert elapsed < 2.5, output


def test_ctrl_c_stops_the_node_even_when_started_with_sigint_ignored():
    """Started with SIGINT ignored (nohup, a background job of a script), Ctrl-C still stops."""
    proc, lines = start_frontend_process(
        '/ignored', preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, ''.join(lines) + rest

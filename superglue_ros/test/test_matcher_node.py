# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The matcher node over real DDS: keyframe chain, bad input, drops, debug image, diagnostics."""

import array
import os
import signal
import subprocess
import sys
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from superglue_ros_msgs.msg import Correspondences, Keypoints
import torch
import yaml

from ros_harness import (Collector, CONFIG, domain_id, RELIABLE,
                         reliable_inputs, small_weights, TumFrames, wait_for)
from superglue_ros.nodes.matcher_node import MatcherNode, PARAMETERS
from superglue_ros.weights import default_weights_path, load_weights, WeightsError

DOMAIN = domain_id(12)


@pytest.fixture(scope='module')
def tum():
    return TumFrames(count=8, max_keypoints=512)


def start_matcher(harness, weights, namespace, node_name='superglue_matcher', **params):
    overrides = [Parameter('weights', value=str(weights)),
                 Parameter('device', value='cpu'),
                 Parameter('diagnostics_period', value=0.2)]
    if str(weights) != str(default_weights_path()):
        params.setdefault('match_threshold', 0.0)  # random weights: keep every mutual match
    overrides += [Parameter(k, value=v) for k, v in params.items()]
    overrides += reliable_inputs(namespace)
    node = MatcherNode(node_name, context=harness.context, namespace=namespace,
                       parameter_overrides=overrides)
    return harness.add(node)


class Driver:
    """Publishes image + keypoints pairs into one namespace and collects correspondences."""

    def __init__(self, harness, namespace):
        node = harness.node
        self.image_pub = node.create_publisher(Image, f'/{namespace}/image', RELIABLE)
        self.kp_pub = node.create_publisher(Keypoints, f'/{namespace}/keypoints', RELIABLE)
        self.out = Collector()
        self.sub = node.create_subscription(
            Correspondences, f'/{namespace}/correspondences', self.out, RELIABLE)
        assert wait_for(lambda: (self.image_pub.get_subscription_count() > 0
                                 and self.kp_pub.get_subscription_count() > 0
                                 and self.sub.get_publisher_count() > 0), 20.0), \
            'discovery between the test driver and the matcher timed out'

    def send(self, image, keypoints, wait=True):
        count = len(self.out)
        self.image_pub.publish(image)
        self.kp_pub.publish(keypoints)
        if wait:
            return self.out.wait(count + 1)[count]
        return None


@pytest.fixture(scope='module')
def chain(harness, weights, tum):
    """Consecutive TUM keyframes through one matcher: (published keypoints, correspondences)."""
    node = start_matcher(harness, weights, 'chain', queue_policy='block')
    driver = Driver(harness, 'chain')
    sent = []
    for i in range(len(tum)):
        kp = tum.keypoints_msg(i, keyframe_id=100 + i)
        sent.append(kp)
        driver.send(tum.image_msg(i), kp, wait=False)
    msgs = driver.out.wait(len(tum), timeout=120.0)
    time.sleep(0.3)  # nothing extra may arrive
    assert len(driver.out) == len(tum)
    stats = node.stats()
    harness.remove(node)
    return sent, msgs, stats


def test_one_correspondences_per_keyframe_and_chain(chain):
    sent, msgs, stats = chain
    assert msgs[0].status == Correspondences.STATUS_FIRST_KEYFRAME
    assert msgs[0].current_keyframe_id == 100 and len(msgs[0].current_indices) == 0
    for k in range(1, len(sent)):
        m, cur, ref = msgs[k], sent[k], sent[k - 1]
        assert m.status == Correspondences.STATUS_OK, m.status_message
        assert m.current_keyframe_id == cur.keyframe_id
        assert m.reference_keyframe_id == ref.keyframe_id
        assert m.header.stamp == cur.header.stamp and m.current_stamp == cur.header.stamp
        assert m.reference_stamp == ref.header.stamp
        assert m.header.frame_id == 'camera_optical'
        assert m.verified and m.latency > 0
        n = len(m.current_indices)
        assert n > 0, 'no matches between consecutive TUM keyframes'
        for field in ('reference_indices', 'current_x', 'current_y', 'reference_x',
                      'reference_y', 'confidence', 'inlier'):
            assert len(getattr(m, field)) == n, field
        ci, ri = np.asarray(m.current_indices), np.asarray(m.reference_indices)
        assert ci.max() < len(cur.x) and ri.max() < len(ref.x)
        assert len(set(ci.tolist())) == n and len(set(ri.tolist())) == n  # one-to-one
        np.testing.assert_array_equal(np.asarray(m.current_x), np.asarray(cur.x)[ci])
        np.testing.assert_array_equal(np.asarray(m.current_y), np.asarray(cur.y)[ci])
        np.testing.assert_array_equal(np.asarray(m.reference_x), np.asarray(ref.x)[ri])
        np.testing.assert_array_equal(np.asarray(m.reference_y), np.asarray(ref.y)[ri])
        conf = np.asarray(m.confidence)
        assert np.all((conf >= 0) & (conf <= 1))
    assert stats['published'] == len(sent) and stats['ok'] == len(sent) - 1
    assert stats.get('dropped_queue_full', 0) == 0 and stats.get('debug_images', 0) == 0


def test_matches_are_geometrically_consistent(chain):
    if not default_weights_path().is_file():
        pytest.skip(f'shipped weights absent at {default_weights_path()}: random test weights '
                    f'give no meaningful matches')
    _, msgs, _ = chain
    inlier = np.concatenate([np.asarray(m.inlier) for m in msgs[1:]])
    assert inlier.mean() > 0.5, f'only {inlier.mean():.2f} of the matches are RANSAC inliers'


def test_config_file_parameters_and_runtime_threshold(harness, weights):
    params = yaml.safe_load(CONFIG.read_text())['/**/superglue_matcher']['ros__parameters']
    node = MatcherNode(context=harness.context, cli_args=['--ros-args', '--params-file',
                                                          str(CONFIG)],
                       parameter_overrides=[Parameter('weights', value=str(weights)),
                                            Parameter('device', value='cpu')])
    try:
        for name, value in params.items():
            assert node.has_parameter(name), f'{name} in the config is not declared'
            if name not in ('weights', 'device'):
                assert node.get_parameter(name).value == value, name
        for name in ('weights', 'device', 'descriptor_type', 'fp16', 'max_keypoints'):
            d = node.describe_parameter(name)
            assert d.read_only and d.description, name
        d = node.describe_parameter('match_threshold')
        assert d.floating_point_range[0].to_value == 1.0 and not d.read_only
        # The default (-1) takes the threshold the weights file was trained with (0.15 for the
        # shipped weights), not a node-wide constant.
        own = load_weights(str(weights))[0].conf.match_threshold
        assert params['match_threshold'] < 0
        assert node.engine.match_threshold == pytest.approx(own)
        ok = node.set_parameters([Parameter('match_threshold', value=0.45)])[0]
        assert ok.successful and node.engine.match_threshold == pytest.approx(0.45)
        bad = node.set_parameters([Parameter('match_threshold', value=1.5)])[0]
        assert not bad.successful and node.engine.match_threshold == pytest.approx(0.45)
        back = node.set_parameters([Parameter('match_threshold', value=-1.0)])[0]
        assert back.successful and node.engine.match_threshold == pytest.approx(own)
        ro = node.set_parameters([Parameter('weights', value='/tmp/other.pth')])[0]
        assert not ro.successful
    finally:
        node.destroy_node()


def test_config_file_lists_every_parameter_with_its_default():
    # The node's parameter table is the one place for defaults; the YAML repeats it for users.
    params = yaml.safe_load(CONFIG.read_text())['/**/superglue_matcher']['ros__parameters']
    assert params == {p.name: p.default for p in PARAMETERS}


def test_public_state_is_read_only(harness, weights):
    node = MatcherNode(context=harness.context,
                       parameter_overrides=[Parameter('weights', value=str(weights)),
                                            Parameter('device', value='cpu')])
    try:
        assert node.engine.descriptor_type == 'orb' and node.engine.input_dim == 256
        assert node.engine.metadata['model'] == 'superglue'
        counters = node.sync_counters
        assert counters.received == (0, 0) and counters.dropped == (0, 0)
        assert counters.emitted == 0 and node.is_idle() and not node.debug_image_wanted
        for name in ('engine', 'sync_counters', 'debug_image_wanted'):
            with pytest.raises(AttributeError):
                setattr(node, name, None)
    finally:
        node.destroy_node()


def test_missing_and_corrupt_weights_are_clear_errors(harness, tmp_path):
    missing = tmp_path / 'nope' / 'missing.pth'
    with pytest.raises(WeightsError, match=str(missing)):
        MatcherNode(context=harness.context,
                    parameter_overrides=[Parameter('weights', value=str(missing))])
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(b'not a torch file')
    with pytest.raises(WeightsError, match=str(corrupt)):
        MatcherNode(context=harness.context,
                    parameter_overrides=[Parameter('weights', value=str(corrupt))])
    # The console script: one fatal line naming the path, exit status 1, no traceback.
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN))
    proc = subprocess.run(
        [sys.executable, '-m', 'superglue_ros.nodes.matcher_node', '--ros-args', '-p',
         f'weights:={missing}'], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert str(missing) in proc.stderr + proc.stdout
    assert 'Traceback' not in proc.stderr


def _bad_cases(tum):
    """(name, image, keypoints, expected reason, expected status) with increasing stamps."""
    def kp(i, offset, **changes):
        msg = tum.keypoints_msg(1, keyframe_id=200 + i, offset=offset)
        for key, value in changes.items():
            setattr(msg, key, value)
        return msg

    def img(offset, **changes):
        msg = tum.image_msg(1, offset=offset)
        for key, value in changes.items():
            setattr(msg, key, value)
        return msg

    n = len(tum.features[1])
    x_nan = np.asarray(tum.keypoints_msg(1, 0).x).copy()
    x_nan[3] = np.nan
    x_out = x_nan.copy()
    x_out[3] = 700.0
    score_inf = np.asarray(tum.keypoints_msg(1, 0).score).copy()
    score_inf[0] = np.inf
    f32 = lambda a: array.array('f', np.asarray(a, np.float32).tobytes())  # noqa: E731
    small = tum.image_msg(1)
    small.width, small.height, small.step = 320, 240, 320
    small.data = array.array('B', bytes(320 * 240))
    cases = [
        ('length', img(1), kp(1, 1, y=f32(np.zeros(n - 1))), 'length_mismatch'),
        ('nan', img(2), kp(2, 2, x=f32(x_nan)), 'non_finite'),
        ('inf', img(3), kp(3, 3, score=f32(score_inf)), 'non_finite'),
        ('type', img(4), kp(4, 4, descriptor_type=Keypoints.DESCRIPTOR_SIFT), 'descriptor'),
        ('dim', img(5), kp(5, 5, descriptor_dim=128), 'descriptor_mismatch'),
        ('empty', img(6), kp(6, 6, x=f32([]), y=f32([]), score=f32([]), size=f32([]),
                             angle=f32([]), octave=array.array('i'),
                             descriptors_binary=array.array('B')), 'no_keypoints'),
        ('outside', img(7), kp(7, 7, x=f32(x_out)), 'out_of_image'),
        ('encoding', img(8, encoding='yuv_weird'), kp(8, 8), 'unsupported_encoding'),
        ('truncated', img(9, data=array.array('B', bytes(100))), kp(9, 9), 'bad_image'),
        ('size', None, kp(10, 10), 'size_mismatch'),
        ('duplicate', img(0), kp(11, 0), 'bad_stamp'),
        ('oversized', img(13), None, 'oversized'),
    ]
    out = []
    for name, image, keypoints, reason in cases:
        if name == 'size':
            image = small
            image.header = tum.header(1, 10)
        if name == 'oversized':
            keypoints = kp(13, 13)
            reps = 3
            for field in ('x', 'y', 'score', 'size', 'angle'):
                setattr(keypoints, field, f32(np.tile(np.asarray(getattr(keypoints, field)),
                                                      reps)))
            keypoints.octave = array.array('i', np.tile(np.asarray(keypoints.octave),
                                                        reps).tobytes())
            keypoints.descriptors_binary = array.array(
                'B', np.tile(np.asarray(keypoints.descriptors_binary), reps).tobytes())
        status = (Correspondences.STATUS_NO_KEYPOINTS if reason == 'no_keypoints'
                  else Correspondences.STATUS_REJECTED_INPUT)
        out.append((name, image, keypoints, reason, status))
    return out


def test_bad_inputs_are_rejected_and_the_node_keeps_running(harness, weights, tum):
    node = start_matcher(harness, weights, 'bad', node_name='matcher_bad',
                         max_input_keypoints=1000, log_throttle_period=0.0)
    driver = Driver(harness, 'bad')
    diagnostics = Collector()
    harness.node.create_subscription(DiagnosticArray, '/diagnostics', diagnostics, 10)
    first = driver.send(tum.image_msg(1), tum.keypoints_msg(1, keyframe_id=200))
    assert first.status == Correspondences.STATUS_FIRST_KEYFRAME
    cases = _bad_cases(tum)
    for name, image, keypoints, reason, status in cases:
        msg = driver.send(image, keypoints)
        assert msg.status == status, (name, msg.status_message)
        assert reason in msg.status_message, (name, msg.status_message)
        assert msg.current_keyframe_id == keypoints.keyframe_id, name
        assert msg.reference_keyframe_id == 200, name  # the reference did not change
        assert len(msg.current_indices) == 0
    good = driver.send(tum.image_msg(2, offset=14), tum.keypoints_msg(2, keyframe_id=299,
                                                                      offset=14))
    assert good.status == Correspondences.STATUS_OK and good.reference_keyframe_id == 200
    # Keypoints without an image partner never pair: counted (and warned about), not lost
    # silently. The next complete pair makes them stale.
    driver.kp_pub.publish(tum.keypoints_msg(3, keyframe_id=300, offset=15))
    after = driver.send(tum.image_msg(3, offset=16),
                        tum.keypoints_msg(3, keyframe_id=301, offset=16))
    assert after.status == Correspondences.STATUS_OK and after.reference_keyframe_id == 299
    stats = node.stats()
    assert stats['sync_dropped_keypoints'] == 1
    # The oversized keypoints were answered on arrival; their image found no partner.
    assert node.sync_counters.dropped == (1, 1)
    assert node.sync_counters.received[1] == len(cases) + 4  # + first, good, unpaired, after
    assert stats['rejected'] == len(cases)
    for reason in ('length_mismatch', 'non_finite', 'descriptor_mismatch', 'no_keypoints',
                   'out_of_image', 'unsupported_encoding', 'bad_image', 'size_mismatch',
                   'bad_stamp', 'oversized'):
        assert stats[f'rejected_{reason}'] >= 1, reason

    def reported():
        for arr in diagnostics.msgs[::-1]:
            for status in arr.status:
                if status.name.startswith('matcher_bad'):
                    return {kv.key: kv.value for kv in status.values}
        return None
    assert wait_for(lambda: (reported() or {}).get('sync_dropped_keypoints') == '1', 10)
    values = reported()
    assert values['rejected_total'] == str(len(cases))
    assert values['rejected_bad_stamp'] == '1' and values['rejected_non_finite'] == '2'
    assert values['sync_dropped_keypoints'] == '1'
    harness.remove(node)


def _slow(node, seconds):
    real = node.engine.match_prepared

    def slow_match(p0, p1):
        time.sleep(seconds)
        return real(p0, p1)
    node.engine.match_prepared = slow_match  # on this node's engine object only


@pytest.mark.parametrize('policy', ['drop_oldest', 'block'])
def test_drop_accounting_under_a_slow_matcher(harness, weights, tum, policy):
    ns = f'slow_{policy}'
    node = start_matcher(harness, weights, ns, node_name=f'matcher_{policy}',
                         queue_size=1, queue_policy=policy)
    _slow(node, 0.25)
    driver = Driver(harness, ns)
    diagnostics = Collector()
    harness.node.create_subscription(DiagnosticArray, '/diagnostics', diagnostics, 10)
    n = len(tum)
    for i in range(n):
        driver.send(tum.image_msg(i), tum.keypoints_msg(i, keyframe_id=i + 1), wait=False)
        time.sleep(0.02)
    assert wait_for(lambda: node.stats().get('keyframes_received', 0) == n, 30)
    assert wait_for(lambda: node.is_idle(), 30)
    time.sleep(0.5)
    stats = node.stats()
    dropped = stats.get('dropped_queue_full', 0)
    msgs = driver.out.msgs
    assert len(msgs) == stats['published'] == n - dropped
    ids = [m.current_keyframe_id for m in msgs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for prev, m in zip(msgs, msgs[1:]):
        assert m.reference_keyframe_id == prev.current_keyframe_id
    if policy == 'drop_oldest':
        assert dropped >= 2
    else:
        assert dropped == 0 and len(msgs) == n

    def reported():
        for arr in diagnostics.msgs[::-1]:
            for status in arr.status:
                if status.name.startswith(f'matcher_{policy}'):
                    return {kv.key: kv.value for kv in status.values}
        return None
    assert wait_for(lambda: (reported() or {}).get('correspondences_published') == str(len(msgs)),
                    10)
    values = reported()
    assert values['dropped_queue_full'] == str(dropped)
    assert values['device'] == 'cpu'
    for key in ('latency_p50_ms', 'latency_p95_ms', 'matches_per_keyframe', 'inlier_ratio'):
        assert float(values[key]) >= 0, key
    assert float(values['latency_p95_ms']) >= float(values['latency_p50_ms']) >= 250.0
    harness.remove(node)


def test_max_keypoints_indices_refer_to_the_published_arrays(harness, weights, tum):
    node = start_matcher(harness, weights, 'topk', queue_policy='block', max_keypoints=150)
    driver = Driver(harness, 'topk')
    sent = [tum.keypoints_msg(i, i + 1) for i in range(3)]
    msgs = [driver.send(tum.image_msg(i), sent[i]) for i in range(3)]
    for k in (1, 2):
        m, cur, ref = msgs[k], sent[k], sent[k - 1]
        assert m.status == Correspondences.STATUS_OK and len(m.current_indices) > 0
        ci, ri = np.asarray(m.current_indices), np.asarray(m.reference_indices)
        np.testing.assert_array_equal(np.asarray(m.current_x), np.asarray(cur.x)[ci])
        np.testing.assert_array_equal(np.asarray(m.reference_y), np.asarray(ref.y)[ri])
        strongest = set(np.argsort(-np.asarray(cur.score), kind='stable')[:150].tolist())
        assert set(ci.tolist()) <= strongest  # only the 150 highest-scoring keypoints
        assert ci.max() >= 150  # ... yet indices into the full published arrays
    harness.remove(node)


def test_console_script_starts_and_stops_cleanly(tmp_path):
    weights = small_weights(tmp_path)
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN))
    proc = subprocess.Popen(
        [sys.executable, '-m', 'superglue_ros.nodes.matcher_node', '--ros-args', '-r',
         '__ns:=/script', '-p', f'weights:={weights}', '-p', 'device:=cuda'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if 'matcher ready' in line:
                break
        time.sleep(1.0)  # spinning by now
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    output = ''.join(lines) + rest
    assert proc.returncode == 0, output
    assert 'matcher ready' in output and 'Traceback' not in output
    if not torch.cuda.is_available():  # cuda requested without a GPU: warn, run on cpu
        assert 'falling back to cpu' in output and 'device cpu' in output


def test_debug_image_only_when_subscribed(harness, weights, tum):
    node = start_matcher(harness, weights, 'debug', queue_policy='block')
    driver = Driver(harness, 'debug')
    driver.send(tum.image_msg(0), tum.keypoints_msg(0, 1))
    driver.send(tum.image_msg(1), tum.keypoints_msg(1, 2))
    assert node.stats().get('debug_images', 0) == 0  # nobody listening: nothing drawn
    images = Collector()
    sub = harness.node.create_subscription(Image, '/debug/superglue_matcher/debug_image',
                                           images, RELIABLE)
    assert wait_for(lambda: sub.get_publisher_count() > 0
                    and node.debug_image_wanted, 20)
    driver.send(tum.image_msg(2, encoding='bgr8'), tum.keypoints_msg(2, 3))
    msg = images.wait(1)[0]
    assert (msg.width, msg.height, msg.encoding) == (640 + 10 + 640, 480, 'bgr8')
    assert msg.header.stamp == tum.header(2).stamp
    canvas = np.frombuffer(msg.data, np.uint8).reshape(480, -1, 3)
    margin = canvas[:, 640:650]
    # White margin between the keyframes, crossed by one line per match (hundreds of them).
    assert np.mean(margin == 255) > 0.25
    colour = canvas[:, :640].astype(int)
    assert np.any(colour[..., 1] != colour[..., 2])  # match lines coloured over a grey frame
    harness.remove(node)

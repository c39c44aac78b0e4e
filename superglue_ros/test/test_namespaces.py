# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Namespaces, input QoS and synchroniser settings of the nodes, over real DDS.

Two pipelines (front-end + matcher) in one process, in namespaces robot1 and robot2, wired
like launch/superglue.launch.py (its parameters file, its remappings onto the relative default
topics), each keep their own parameters and topics.
"""

import re

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import pytest
from rclpy.exceptions import InvalidParameterValueException
from rclpy.parameter import Parameter
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image
from superglue_ros_msgs.msg import Correspondences, Keypoints

from ros_harness import (Collector, CONFIG, domain_id, Harness, make_weights, RELIABLE,
                         reliable_inputs, TumFrames, wait_for)
from superglue_ros.nodes import matcher_node as matcher_module
from superglue_ros.nodes.frontend_node import FrontendNode
from superglue_ros.nodes.matcher_node import MatcherNode
from superglue_ros.ros import sync as sync_module
from superglue_ros.ros import topics
from superglue_ros.ros.graph import reliable_input_overrides

NO_MESSAGE_FILTERS = ('message_filters is not installed (pip ROS setup without ../shared/ros_src)'
                      ': the node is tested with the own synchroniser only')


@pytest.fixture(scope='module')
def harness():
    h = Harness(domain_id(36))
    yield h
    h.close()


@pytest.fixture(scope='module')
def frames():
    return TumFrames(count=8)


def params_file(directory, name, **values):
    """Write the shipped config with some values changed (its '/**/node' keys untouched)."""
    text = CONFIG.read_text()
    for key, value in values.items():
        text, n = re.subn(rf'^(\s+{key}:\s*)\S+', rf'\g<1>{value}', text, flags=re.M)
        assert n == 1, key
    path = directory / f'{name}.yaml'
    path.write_text(text)
    return path


def launch_like(harness, ns, params, weights):
    """Front-end + matcher in ``ns`` as the launch file starts them: file + remappings."""
    remap = ['-r', f'image:={topics.IMAGE}', '-r', f'keypoints:={topics.KEYPOINTS}',
             '-r', f'correspondences:={topics.CORRESPONDENCES}']
    args = ['--ros-args', '--params-file', str(params)] + remap
    image = topics.resolve(topics.IMAGE, ns)
    reliable = reliable_input_overrides([image], 50)  # the test must lose no frame
    frontend = harness.add(FrontendNode(context=harness.context, namespace=ns, cli_args=args,
                                        parameter_overrides=reliable))
    matcher = harness.add(MatcherNode(
        context=harness.context, namespace=ns, cli_args=args,
        parameter_overrides=[Parameter('weights', value=str(weights)),
                             Parameter('device', value='cpu'),
                             Parameter('queue_policy', value='block')] + reliable))
    return frontend, matcher


def test_two_namespaced_pipelines_keep_their_parameters_and_topics(harness, frames, tmp_path):
    weights = make_weights(tmp_path)
    files = {'robot1': params_file(tmp_path, 'robot1', match_threshold=0.3,
                                   keyframe_interval=2),
             'robot2': params_file(tmp_path, 'robot2', match_threshold=0.45,
                                   keyframe_interval=3)}
    pipelines = {ns: launch_like(harness, ns, files[ns], weights) for ns in files}
    try:
        # Parameters: each namespace got its own file (keys '/**/superglue_matcher').
        for ns, threshold, interval in (('robot1', 0.3, 2), ('robot2', 0.45, 3)):
            frontend, matcher = pipelines[ns]
            assert matcher.get_namespace() == f'/{ns}'
            assert matcher.get_parameter('match_threshold').value == threshold
            assert matcher.engine.match_threshold == pytest.approx(threshold)
            assert frontend.get_parameter('keyframe_interval').value == interval

        # Topics: relative defaults resolve inside each namespace.
        node = harness.node
        pubs, outs = {}, {}
        for ns in files:
            image = topics.resolve(topics.IMAGE, ns)
            users = {(i.node_namespace, i.node_name)
                     for i in node.get_subscriptions_info_by_topic(image)}
            assert users == {(f'/{ns}', 'superglue_frontend'), (f'/{ns}', 'superglue_matcher')}
            kp = node.get_publishers_info_by_topic(topics.resolve(topics.KEYPOINTS, ns))
            assert [(i.node_namespace, i.node_name) for i in kp] == \
                [(f'/{ns}', 'superglue_frontend')]
            pubs[ns] = node.create_publisher(Image, image, RELIABLE)
            outs[ns] = Collector()
            node.create_subscription(Correspondences,
                                     topics.resolve(topics.CORRESPONDENCES, ns), outs[ns],
                                     RELIABLE)
        assert not node.get_subscriptions_info_by_topic(topics.IMAGE_TOPIC)
        assert wait_for(lambda: all(p.get_subscription_count() == 2 for p in pubs.values()), 20)

        # Data: frames into robot1 come out of robot1 only, then the same for robot2.
        done = {}
        for ns, other in (('robot1', 'robot2'), ('robot2', 'robot1')):
            frontend, matcher = pipelines[ns]
            before = len(outs[other])
            for i in range(len(frames)):
                pubs[ns].publish(frames.image_msg(i, encoding='bgr8'))
                assert wait_for(lambda: frontend.counts['frames'] > i, 10)
            keyframes = frontend.counts['keyframes']
            assert keyframes >= len(frames) // frontend.get_parameter('keyframe_interval').value
            msgs = outs[ns].wait(keyframes, timeout=60)
            assert wait_for(matcher.is_idle, 20)
            assert len(outs[ns]) == keyframes and len(outs[other]) == before
            assert msgs[0].status == Correspondences.STATUS_FIRST_KEYFRAME
            assert all(m.status == Correspondences.STATUS_OK for m in msgs[1:])
            done[ns] = keyframes
        assert pipelines['robot1'][0].counts['frames'] == len(frames)
        assert pipelines['robot2'][0].counts['frames'] == len(frames)
        assert len(outs['robot1']) == done['robot1'] and len(outs['robot2']) == done['robot2']
    finally:
        for frontend, matcher in pipelines.values():
            harness.remove(matcher)
            harness.remove(frontend)


def test_matcher_input_qos_reliable_keypoints_best_effort_images(harness, tmp_path):
    matcher = harness.add(MatcherNode(
        context=harness.context, namespace='qos',
        parameter_overrides=[Parameter('weights', value=str(make_weights(tmp_path))),
                             Parameter('device', value='cpu')]))
    try:
        node = harness.node
        image, = node.get_subscriptions_info_by_topic('/qos/image')
        keypoints, = node.get_subscriptions_info_by_topic('/qos/keypoints')
        assert image.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        assert keypoints.qos_profile.reliability == ReliabilityPolicy.RELIABLE
        # The profiles are also the defaults of the QoS override parameters (YAML can change them).
        prefix = 'qos_overrides./qos/{}.subscription.{}'
        assert matcher.get_parameter(prefix.format('keypoints', 'depth')).value == 10
        assert matcher.get_parameter(prefix.format('image', 'reliability')).value == 'best_effort'
    finally:
        harness.remove(matcher)


def test_sync_slop_must_be_positive(harness, tmp_path):
    weights = make_weights(tmp_path)
    for slop in (0.0, -0.01):
        with pytest.raises(InvalidParameterValueException, match='sync_slop'):
            MatcherNode(context=harness.context,
                        parameter_overrides=[Parameter('weights', value=str(weights)),
                                             Parameter('device', value='cpu'),
                                             Parameter('sync_slop', value=slop)])


@pytest.mark.parametrize('backend', [
    'own', pytest.param('message_filters', marks=pytest.mark.skipif(
        not sync_module.HAVE_MESSAGE_FILTERS, reason=NO_MESSAGE_FILTERS))])
def test_one_unpaired_keypoints_message_is_counted_and_reported(harness, frames, tmp_path,
                                                                monkeypatch, backend):
    for module in (sync_module, matcher_module):  # where the node looks, as it may import it
        monkeypatch.setattr(module, 'HAVE_MESSAGE_FILTERS', backend == 'message_filters',
                            raising=False)
    ns = f'unpaired_{backend}'
    matcher = harness.add(MatcherNode(
        context=harness.context, namespace=ns,
        parameter_overrides=[Parameter('weights', value=str(make_weights(tmp_path))),
                             Parameter('device', value='cpu'),
                             Parameter('diagnostics_period', value=0.1)] + reliable_inputs(ns)))
    node = harness.node
    diagnostics = Collector()
    subs = [node.create_subscription(DiagnosticArray, '/diagnostics', diagnostics, 50)]
    out = Collector()
    subs.append(node.create_subscription(Correspondences, f'/{ns}/correspondences', out,
                                         RELIABLE))
    image_pub = node.create_publisher(Image, f'/{ns}/image', RELIABLE)
    kp_pub = node.create_publisher(Keypoints, f'/{ns}/keypoints', RELIABLE)
    try:
        assert matcher.sync_counters == sync_module.SyncCounters((0, 0), (0, 0), 0)
        assert wait_for(lambda: image_pub.get_subscription_count()
                        and kp_pub.get_subscription_count(), 20)
        kp_pub.publish(frames.keypoints_msg(0, keyframe_id=1))  # its image never comes
        image_pub.publish(frames.image_msg(1))
        kp_pub.publish(frames.keypoints_msg(1, keyframe_id=2))
        out.wait(1)
        # At once, not after sync_queue_size more messages (message_filters' old estimate).
        assert wait_for(lambda: matcher.stats()['sync_dropped_keypoints'] == 1, 5)
        counters = matcher.sync_counters
        assert counters.received == (1, 2) and counters.emitted == 1
        assert counters.dropped == (0, 1)

        def warned():
            return any(s.level == DiagnosticStatus.WARN and s.message == 'unpaired keypoints'
                       and s.name.startswith('superglue_matcher')
                       for m in diagnostics.msgs for s in m.status)
        assert wait_for(warned, 10), [s.message for m in diagnostics.msgs for s in m.status]
    finally:
        for sub in subs:
            node.destroy_subscription(sub)
        node.destroy_publisher(image_pub)
        node.destroy_publisher(kp_pub)
        harness.remove(matcher)

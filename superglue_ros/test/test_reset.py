# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Clock jumps and ~/reset over real DDS: a bag played twice gives the same output twice."""

import numpy as np
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger
from superglue_ros_msgs.msg import Correspondences, Keypoints

from ros_harness import (Collector, CONFIG, domain_id, make_weights, RELIABLE,
                         reliable_inputs, TumFrames)
from superglue_ros.nodes.frontend_node import FrontendNode
from superglue_ros.nodes.matcher_node import MatcherNode
from superglue_ros.replay.bag import inspect_bag, read_inputs
from superglue_ros.tools.demo_bag import make_demo_bag
from superglue_ros.weights import default_weights_path

DOMAIN = domain_id(25)


def frontend(harness, ns, **params):
    overrides = [Parameter(k, value=v) for k, v in params.items()]
    overrides += [Parameter(f'qos_overrides./{ns}/image.subscription.reliability',
                            value='reliable'),
                  Parameter(f'qos_overrides./{ns}/image.subscription.depth', value=50)]
    return harness.add(FrontendNode(context=harness.context, namespace=ns,
                                    cli_args=['--ros-args', '--params-file', str(CONFIG)],
                                    parameter_overrides=overrides))


def call(harness, service: str) -> Trigger.Response:
    client = harness.node.create_client(Trigger, service)
    assert client.wait_for_service(timeout_sec=10.0), f'{service} not offered'
    future = client.call_async(Trigger.Request())
    assert harness.wait_for(future.done, 10.0)
    harness.node.destroy_client(client)
    return future.result()


class Feed:
    """Images into a namespace, one at a time once the nodes have taken the previous one."""

    def __init__(self, harness, ns, front, matcher=None):
        self.harness, self.front, self.matcher = harness, front, matcher
        node = harness.node
        self.image_pub = node.create_publisher(Image, f'/{ns}/image', RELIABLE)
        self.keypoints, self.out = Collector(), Collector()
        self.kp_sub = node.create_subscription(Keypoints, f'/{ns}/keypoints', self.keypoints,
                                               RELIABLE)
        self.out_sub = node.create_subscription(Correspondences, f'/{ns}/correspondences',
                                                self.out, RELIABLE)
        readers = 2 if matcher is not None else 1
        assert harness.wait_for(lambda: self.image_pub.get_subscription_count() >= readers
                                and self.kp_sub.get_publisher_count() > 0
                                and (matcher is None or self.out_sub.get_publisher_count() > 0),
                                20.0)
        self.sent = 0

    def send(self, image) -> None:
        self.image_pub.publish(image)
        self.sent += 1
        assert self.harness.wait_for(lambda: self.front.counts['frames'] >= self.sent, 20.0)
        # Back-pressure as the replay does it: every keyframe answered before the next frame.
        assert self.harness.wait_for(lambda: len(self.keypoints) == self.front.counts['keyframes'],
                                     20.0)
        if self.matcher is not None:
            assert self.harness.wait_for(
                lambda: len(self.out) == len(self.keypoints) and self.matcher.is_idle(), 60.0)


def test_frontend_starts_over_on_a_backwards_stamp_and_skips_a_repeated_one(harness):
    tum = TumFrames(count=4)
    front = frontend(harness, 'jump', keyframe_interval=2, min_tracked_overlap=0.0)
    feed = Feed(harness, 'jump', front)
    for i in range(4):
        feed.send(tum.image_msg(i))
    first = [(k.keyframe_id, k.header.stamp) for k in feed.keypoints.msgs]
    assert [k for k, _ in first] == [1, 2]  # frames 0 and 2 (every second frame)
    feed.send(tum.image_msg(3))  # the same stamp again: skipped, not a jump
    assert front.counts['bad_stamps'] == 1 and front.counts['stamp_resets'] == 0
    for i in range(4):
        feed.send(tum.image_msg(i))
    second = [(k.keyframe_id, k.header.stamp) for k in feed.keypoints.msgs[2:]]
    assert front.counts['stamp_resets'] == 1
    # The same keyframes as the first time, with new ids: a back-end never sees one id twice.
    assert [s for _, s in second] == [s for _, s in first]
    assert [k for k, _ in second] == [3, 4]
    harness.remove(front)


def test_frontend_reset_service(harness):
    tum = TumFrames(count=3)
    front = frontend(harness, 'frontreset', keyframe_interval=0, min_tracked_overlap=0.0)
    feed = Feed(harness, 'frontreset', front)
    feed.send(tum.image_msg(0))
    feed.send(tum.image_msg(1))
    assert front.counts['keyframes'] == 1  # only the first: no interval, no overlap rule
    response = call(harness, '/frontreset/superglue_frontend/reset')
    assert response.success and 'keyframe 2' in response.message
    feed.send(tum.image_msg(2))
    assert front.counts['keyframes'] == 2 and front.counts['reset_requests'] == 1
    assert feed.keypoints.msgs[-1].header.stamp == tum.header(2).stamp
    harness.remove(front)


def summary(msg: Correspondences):
    return (msg.status, msg.current_stamp.sec, msg.current_stamp.nanosec,
            msg.reference_stamp.sec, msg.reference_stamp.nanosec,
            bytes(np.asarray(msg.current_indices, np.uint32)),
            bytes(np.asarray(msg.reference_indices, np.uint32)), bytes(msg.inlier))


def test_demo_bag_played_twice_gives_the_same_correspondences(harness, tmp_path):
    # What `make demo` plays (the bundled TUM frames as a rosbag2), twice in a row into the
    # same nodes, as `ros2 bag play --loop` would.
    info = inspect_bag(make_demo_bag(tmp_path / 'demo_bag'))
    images = [msg for is_image, _, msg in read_inputs(info) if is_image]
    assert len(images) == info.num_images == 17
    ns = 'twice'
    front = frontend(harness, ns)
    weights = make_weights(tmp_path)
    overrides = [Parameter('weights', value=str(weights)), Parameter('device', value='cpu'),
                 Parameter('queue_policy', value='block')] + reliable_inputs(ns)
    if str(weights) != str(default_weights_path()):
        overrides.append(Parameter('match_threshold', value=0.0))
    matcher = harness.add(MatcherNode(context=harness.context, namespace=ns,
                                      cli_args=['--ros-args', '--params-file', str(CONFIG)],
                                      parameter_overrides=overrides))
    feed = Feed(harness, ns, front, matcher)
    for image in images:
        feed.send(image)
    first = list(feed.out.msgs)
    for image in images:
        feed.send(image)
    second = feed.out.msgs[len(first):]
    assert len(first) >= 4 and len(second) == len(first)
    assert first[0].status == second[0].status == Correspondences.STATUS_FIRST_KEYFRAME
    assert all(m.status == Correspondences.STATUS_OK for m in first[1:] + second[1:])
    # Same pairs, matches (indices, order) and inlier flags; the probabilities agree to float
    # precision (the first inference of a process can sum in another order, ~1e-6).
    assert [summary(m) for m in second] == [summary(m) for m in first]
    for a, b in zip(first, second):
        assert np.allclose(a.confidence, b.confidence, rtol=0, atol=1e-5)
    # Ids go on increasing; every pair's ids are those of the second pass's keyframes.
    ids = [k.keyframe_id for k in feed.keypoints.msgs]
    assert ids == list(range(1, 2 * len(first) + 1))
    assert [m.current_keyframe_id for m in second] == ids[len(first):]
    assert front.counts['stamp_resets'] == 1 and matcher.stats()['stamp_resets'] == 1
    stats = matcher.stats()
    assert stats['sync_dropped_keypoints'] == 0 and stats.get('rejected', 0) == 0
    harness.remove(matcher)
    harness.remove(front)

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""superglue_ros_msgs: both messages travel over real DDS between two nodes."""

import numpy as np
import pytest
from superglue_ros_msgs.msg import Correspondences, Keypoints

from ros_harness import Collector, domain_id, Harness, wait_for


def _roundtrip(msg_type, msg, topic):
    """Publish ``msg`` from one node to another of an in-process graph; the received copy."""
    harness = Harness(domain_id(1))
    try:
        received = Collector()
        sub_node = harness.create_node('sg_test_sub')
        sub_node.create_subscription(msg_type, topic, received, 10)
        pub = harness.node.create_publisher(msg_type, topic, 10)
        assert wait_for(lambda: pub.get_subscription_count() > 0, 20.0), 'no discovery'
        for _ in range(200):  # volatile durability: publish until the subscription has one
            pub.publish(msg)
            if wait_for(lambda: len(received) > 0, 0.1):
                return received.msgs[0]
        raise AssertionError(f'no {msg_type.__name__} received over DDS')
    finally:
        harness.close()


def test_keypoints_roundtrip_over_dds():
    rng = np.random.default_rng(0)
    n = 700
    msg = Keypoints()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1341847980, 722988000
    msg.header.frame_id = 'camera_optical'
    msg.keyframe_id = 42
    msg.image_width, msg.image_height = 640, 480
    msg.x = rng.uniform(0, 640, n).astype(np.float32).tolist()
    msg.y = rng.uniform(0, 480, n).astype(np.float32).tolist()
    msg.score = rng.uniform(0, 1, n).astype(np.float32).tolist()
    msg.size = [31.0] * n
    msg.angle = rng.uniform(0, 360, n).astype(np.float32).tolist()
    msg.octave = rng.integers(0, 8, n).astype(np.int32).tolist()
    msg.descriptor_type = Keypoints.DESCRIPTOR_ORB
    msg.descriptor_dim = 256
    desc = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    msg.descriptors_binary = desc.tobytes()
    out = _roundtrip(Keypoints, msg, 'sg_test_keypoints')
    assert out.keyframe_id == 42 and out.header.frame_id == 'camera_optical'
    assert out.header.stamp.nanosec == 722988000
    assert np.array_equal(np.asarray(out.x, np.float32), np.asarray(msg.x, np.float32))
    assert np.array_equal(np.asarray(out.octave), np.asarray(msg.octave))
    got = np.frombuffer(bytes(out.descriptors_binary), np.uint8).reshape(n, 32)
    assert np.array_equal(got, desc)


def test_correspondences_roundtrip_over_dds():
    msg = Correspondences()
    msg.status = Correspondences.STATUS_OK
    msg.status_message = 'ok'
    msg.current_keyframe_id, msg.reference_keyframe_id = 7, 6
    msg.current_stamp.sec, msg.reference_stamp.sec = 11, 10
    msg.current_indices = [0, 5, 9]
    msg.reference_indices = [3, 1, 2]
    msg.current_x, msg.current_y = [1.5, 2.5, 3.5], [4.0, 5.0, 6.0]
    msg.reference_x, msg.reference_y = [1.0, 2.0, 3.0], [4.5, 5.5, 6.5]
    msg.confidence = [0.9, 0.5, 0.25]
    msg.inlier = [1, 0, 1]
    msg.verified = True
    msg.latency = 0.05
    out = _roundtrip(Correspondences, msg, 'sg_test_correspondences')
    assert out.status == Correspondences.STATUS_OK and out.reference_keyframe_id == 6
    assert list(out.current_indices) == [0, 5, 9]
    assert list(out.inlier) == [1, 0, 1] and out.verified
    assert out.latency == pytest.approx(0.05)
    assert Correspondences.STATUS_REJECTED_INPUT != Correspondences.STATUS_FIRST_KEYFRAME

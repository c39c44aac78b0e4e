# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Topic names and input QoS of the nodes, shared by the launch file, the nodes and the tools.

The default names are relative, so a namespace moves them: with ``namespace:=robot1`` the
launch file wires ``/robot1/camera/image_raw`` -> ``/robot1/superglue/keypoints`` ->
``/robot1/superglue/correspondences``, and two pipelines never cross-talk. Every one of them
is a remapping (launch arguments ``image_topic``, ``keypoints_topic``,
``correspondences_topic``); an absolute name there leaves the namespace. The launch file
declares these as the defaults of its arguments (test_launch checks that the two agree).
"""

import copy

from rclpy.qos import (HistoryPolicy, qos_profile_sensor_data, QoSProfile,
                       ReliabilityPolicy)

IMAGE = 'camera/image_raw'
CAMERA_INFO = 'camera/camera_info'
KEYPOINTS = 'superglue/keypoints'
CORRESPONDENCES = 'superglue/correspondences'


# Functions, not constants: with QoSOverridingOptions rclpy writes the overridden policies into
# the profile it is given, so a shared profile would carry one node's YAML overrides into the
# next node of the process (two pipelines in one process, the replay, the tests).
# Frames the subscription may hold while the executor is busy. The sensor-data profile keeps 5,
# and on 2 cores with inference beside it the executor can fall 5 frames (170 ms at 30 Hz)
# behind, so the reader overwrote frames that DDS had delivered. The callbacks only hand frames
# on, so a deeper history costs memory (30 x 0.9 MB at 640x480 bgr8), not latency.
IMAGE_QUEUE_DEPTH = 30


def image_qos() -> QoSProfile:
    """Return the QoS of image inputs: sensor data (best effort), a 1 s history at 30 Hz."""
    qos = copy.copy(qos_profile_sensor_data)
    qos.depth = IMAGE_QUEUE_DEPTH
    return qos


def camera_info_qos() -> QoSProfile:
    """Return the QoS of camera_info: best effort (pairs with any driver), the latest only."""
    qos = copy.copy(qos_profile_sensor_data)
    qos.depth = 1
    return qos


def keypoints_qos() -> QoSProfile:
    """Return the QoS of keypoints inputs: reliable, as losing one loses a keyframe."""
    return QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE)


def resolve(topic: str, namespace: str = '') -> str:
    """Return the fully qualified name of ``topic`` in ``namespace`` (as rcl resolves it).

    Absolute names stay as they are; relative ones are put under the namespace.
    ``resolve('superglue/keypoints', 'robot1') == '/robot1/superglue/keypoints'``.
    """
    if topic.startswith('/'):
        return topic
    ns = '/' + namespace.strip('/') if namespace.strip('/') else ''
    return f'{ns}/{topic}'


# The names in the root namespace: where the replay and the demo bag run the nodes.
IMAGE_TOPIC = resolve(IMAGE)
CAMERA_INFO_TOPIC = resolve(CAMERA_INFO)
KEYPOINTS_TOPIC = resolve(KEYPOINTS)
CORRESPONDENCES_TOPIC = resolve(CORRESPONDENCES)

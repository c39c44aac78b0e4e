# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Reference back-end node over real DDS: Correspondences, depth and CameraInfo in.

Odometry and Path out, following the exact synthetic trajectory.
"""

from nav_msgs.msg import Odometry, Path
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image
from superglue_ros_msgs.msg import Correspondences
from test_reference_backend import _keyframes, _Scene

from ros_harness import Collector, domain_id, Harness, RELIABLE, stamp
from superglue_ros.datasets.synthetic_rgbd import CAMERA
from superglue_ros.nodes.reference_backend_node import ReferenceBackendNode
from superglue_ros.ros.conversions import numpy_to_image

pytest.importorskip('gtsam', reason='gtsam is not installed (optional: the reference back-end; '
                    'make test installs it from requirements-eval.txt)')

DOMAIN = domain_id(28)
T0 = 2000.0


def _correspondences(m, status=Correspondences.STATUS_OK):
    msg = Correspondences(status=status, current_keyframe_id=m.current_id,
                          reference_keyframe_id=m.reference_id,
                          current_stamp=stamp(T0 + m.current_stamp),
                          reference_stamp=stamp(T0 + m.reference_stamp))
    msg.header.stamp, msg.header.frame_id = msg.current_stamp, 'camera_optical'
    msg.current_indices = [int(i) for i in m.current_index]
    msg.reference_indices = [int(i) for i in m.reference_index]
    msg.current_x, msg.current_y = (m.current_points[:, k].astype(float).tolist() for k in (0, 1))
    msg.reference_x, msg.reference_y = (m.reference_points[:, k].astype(float).tolist()
                                        for k in (0, 1))
    msg.confidence = [1.0] * len(m.current_index)
    return msg


def _camera_info():
    c = CAMERA
    return CameraInfo(width=c.width, height=c.height, distortion_model='plumb_bob',
                      d=[0.0] * 5, k=[c.fx, 0.0, c.cx, 0.0, c.fy, c.cy, 0.0, 0.0, 1.0])


def test_node_publishes_odometry_and_path():
    frames = _keyframes(6)
    scene = _Scene(frames, 3)
    with Harness(DOMAIN) as h:
        node = h.add(ReferenceBackendNode(context=h.context, parameter_overrides=[]))
        info_pub = h.node.create_publisher(CameraInfo, 'camera_info', RELIABLE)
        depth_pub = h.node.create_publisher(Image, 'depth', RELIABLE)
        corr_pub = h.node.create_publisher(Correspondences, 'correspondences', RELIABLE)
        odometry, paths = Collector(), Collector()
        h.node.create_subscription(Odometry, 'odometry', odometry, RELIABLE)
        h.node.create_subscription(Path, 'path', paths, RELIABLE)
        assert h.wait_for(lambda: depth_pub.get_subscription_count() == 1
                          and corr_pub.get_subscription_count() == 1
                          and info_pub.get_subscription_count() == 1
                          and h.node.count_publishers('odometry') == 1, 20.0)
        # A keyframe before any intrinsics: dropped and counted, not fatal.
        first = _correspondences(scene.matches(0, 1))
        corr_pub.publish(first)
        assert h.wait_for(lambda: node.counts['dropped_no_intrinsics'] == 1, 10.0)
        scene = _Scene(frames, 3)
        info_pub.publish(_camera_info())
        for t, _, depth in frames:
            mm = np.clip(depth * 1000, 0, 65535).astype(np.uint16)
            msg = numpy_to_image(mm, '16UC1')
            msg.header.stamp = stamp(T0 + t)
            depth_pub.publish(msg)
        assert h.wait_for(lambda: node.buffered_depth_images == len(frames)
                          and node.camera is not None, 10.0)
        start = Correspondences(status=Correspondences.STATUS_FIRST_KEYFRAME,
                                current_keyframe_id=0, current_stamp=stamp(T0))
        corr_pub.publish(start)
        for j in range(1, len(frames)):
            corr_pub.publish(_correspondences(scene.matches(j - 1, j)))
        odoms = odometry.wait(len(frames), 30.0)
        path = paths.wait(len(frames), 30.0)[-1]
    assert node.counts['keyframes'] == len(frames) - 1 and node.counts['missing_depth'] == 0
    assert [o.header.stamp for o in odoms] == [stamp(T0 + f[0]) for f in frames]
    assert odoms[-1].header.frame_id == 'map' and odoms[-1].child_frame_id == 'camera_optical'
    assert len(path.poses) == len(frames)
    origin = np.linalg.inv(frames[0][1])
    for pose, (_, gt, _) in zip(path.poses, frames):
        p = pose.pose.position
        expected = (origin @ gt)[:3, 3]
        assert np.linalg.norm([p.x - expected[0], p.y - expected[1], p.z - expected[2]]) < 0.01

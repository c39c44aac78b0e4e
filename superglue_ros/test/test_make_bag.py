# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""superglue-make-bag: a TUM folder becomes a rosbag2 (images, depth, intrinsics, poses)."""

import numpy as np
import pytest

from superglue_ros.datasets.rgbd import load_camera, TumSequence
from superglue_ros.datasets.synthetic_rgbd import write_sequence
from superglue_ros.tools import make_bag


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_tum_folder_to_bag_round_trip(tmp_path, storage):
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import CameraInfo, Image
    from superglue_ros.ros.conversions import image_to_numpy
    folder = write_sequence(tmp_path / 'seq', frames=5)
    cam = str(folder / 'camera.yaml')
    out = tmp_path / 'bag'
    assert make_bag.main([str(folder), str(out), '--camera', cam, '--storage', storage]) == 0
    assert make_bag.main([str(folder), str(out), '--camera', cam]) == 2  # exists: refused
    seq = TumSequence(folder, load_camera(cam))
    msgs = {}
    with Reader(out) as reader:
        for conn, t, raw in reader.messages():
            cls = {'sensor_msgs/msg/Image': Image, 'sensor_msgs/msg/CameraInfo': CameraInfo,
                   'geometry_msgs/msg/PoseStamped': PoseStamped}[conn.msgtype]
            msgs.setdefault(conn.topic, []).append((t, deserialize_message(raw, cls)))
    assert len(msgs[make_bag.IMAGE_TOPIC]) == 5 and len(msgs[make_bag.DEPTH_TOPIC]) == 5
    assert len(msgs[make_bag.INFO_TOPIC]) == 5 and len(msgs[make_bag.POSE_TOPIC]) > 40
    t, depth = msgs[make_bag.DEPTH_TOPIC][2]
    assert abs(t * 1e-9 - seq.stamps[2]) < 1e-6
    mm = image_to_numpy(depth)
    assert depth.encoding == '16UC1'
    assert np.allclose(mm / 1000.0, seq.depth(2), atol=1.5e-3)
    info = msgs[make_bag.INFO_TOPIC][0][1]
    assert info.k[0] == pytest.approx(seq.camera.fx) and info.distortion_model == 'plumb_bob'
    pose = msgs[make_bag.POSE_TOPIC][10][1]
    assert pose.header.frame_id == 'world' and abs(pose.pose.orientation.w) > 0.9

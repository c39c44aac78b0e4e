# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Helpers of the node tests: an isolated rclpy context, message collectors, TUM fixtures.

Each test module runs its nodes in its own ``rclpy.Context`` on its own DDS domain
(TEST_DOMAIN_BASE + offset), spun by a multi-threaded executor in a background thread.
"""

import os
from pathlib import Path
import threading
import time
from typing import Callable, List

from builtin_interfaces.msg import Time
import cv2
import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from superglue_ros.features import OrbExtractor
from superglue_ros.ros.conversions import keypoints_from_features, numpy_to_image

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
FRAMES = sorted((PACKAGE_ROOT / 'superglue_ros' / 'data' / 'tum_freiburg').glob('*.jpg'))
CONFIG = PACKAGE_ROOT / 'config' / 'superglue.yaml'
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
SMALL_CONF = {'descriptor_dim': 64, 'input_dim': 256, 'descriptor_type': 'orb',
              'keypoint_encoder': [32, 64], 'gnn_layers': 1, 'sinkhorn_iterations': 10}


def domain_id(offset: int) -> int:
    """DDS domain of one test module."""
    return int(os.environ.get('TEST_DOMAIN_BASE', 60)) + offset


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, period: float = 0.01
             ) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(period)
    return bool(predicate())


class Harness:
    """An initialised context plus an executor spinning in a daemon thread."""

    def __init__(self, domain: int, threads: int = 4):
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.executor = MultiThreadedExecutor(num_threads=threads, context=self.context)
        self.nodes: List = []
        self.node = self.add(rclpy.create_node('test_driver', context=self.context))
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def add(self, node):
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def remove(self, node) -> None:
        self.executor.remove_node(node)
        self.nodes.remove(node)
        time.sleep(0.2)  # let callbacks already handed to executor threads finish
        node.destroy_node()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=5.0)
        for node in reversed(self.nodes):
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)


class Collector:
    """Subscription callback that keeps every message."""

    def __init__(self):
        self.msgs: List = []
        self._lock = threading.Lock()

    def __call__(self, msg) -> None:
        with self._lock:
            self.msgs.append(msg)

    def __len__(self) -> int:
        with self._lock:
            return len(self.msgs)

    def wait(self, count: int, timeout: float = 30.0) -> List:
        assert wait_for(lambda: len(self) >= count, timeout), \
            f'timed out waiting for {count} messages, got {len(self)}'
        with self._lock:
            return list(self.msgs)


def reliable_inputs(namespace: str, depth: int = 50) -> List[Parameter]:
    """Build QoS overrides that make the matcher's inputs reliable (tests lose nothing)."""
    params = []
    for topic in ('image', 'keypoints'):
        prefix = f'qos_overrides./{namespace}/{topic}.subscription'
        params += [Parameter(f'{prefix}.reliability', value='reliable'),
                   Parameter(f'{prefix}.depth', value=depth)]
    return params


def stamp(seconds: float) -> Time:
    """Convert seconds to a builtin_interfaces/Time."""
    sec = int(seconds)
    return Time(sec=sec, nanosec=int(round((seconds - sec) * 1e9)))


class TumFrames:
    """Consecutive TUM frames with ORB keypoints, as Image + Keypoints messages."""

    def __init__(self, count: int = len(FRAMES), max_keypoints: int = 512):
        extractor = OrbExtractor(max_keypoints)
        self.images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in FRAMES[:count]]
        self.stamps = [float(p.stem) for p in FRAMES[:count]]
        self.features = [extractor(im) for im in self.images]

    def __len__(self) -> int:
        return len(self.images)

    def header(self, i: int, offset: float = 0.0) -> Header:
        return Header(stamp=stamp(self.stamps[i] + offset), frame_id='camera_optical')

    def image_msg(self, i: int, encoding: str = 'mono8', offset: float = 0.0):
        image = self.images[i]
        if encoding == 'mono8':
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return numpy_to_image(np.ascontiguousarray(image), encoding, self.header(i, offset),
                              use_cv_bridge=False)

    def keypoints_msg(self, i: int, keyframe_id: int, offset: float = 0.0):
        return keypoints_from_features(self.features[i], self.header(i, offset), keyframe_id)


def make_weights(directory: Path) -> Path:
    """Return the shipped weights when present, else small random ones in ``directory``."""
    from superglue_ros.weights import default_weights_path
    shipped = default_weights_path()
    if shipped.is_file():
        return shipped
    return small_weights(directory)


def small_weights(directory: Path) -> Path:
    import torch
    from superglue_ros.models.superglue import SuperGlue
    from superglue_ros.weights import save_weights
    torch.manual_seed(0)
    path = Path(directory) / 'small_orb.pth'
    save_weights(path, SuperGlue(SMALL_CONF), {'note': 'random test weights'})
    return path

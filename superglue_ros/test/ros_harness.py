# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Helpers of the node tests: an isolated rclpy context, message collectors, TUM fixtures.

Each test module runs its nodes in its own ``rclpy.Context`` on its own DDS domain
(TEST_DOMAIN_BASE + offset), spun by a multi-threaded executor in a background thread.
"""

import os
from pathlib import Path
import threading
from typing import List

import cv2
import numpy as np
from std_msgs.msg import Header

from superglue_ros.features import OrbExtractor
from superglue_ros.ros.conversions import keypoints_from_features, numpy_to_image
from superglue_ros.ros.graph import Graph, reliable_input_overrides, reliable_qos, wait_for
from superglue_ros.ros.sync import to_time
from superglue_ros.tools.demo_bag import bundled_frames

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
FRAMES = bundled_frames()
CONFIG = PACKAGE_ROOT / 'config' / 'superglue.yaml'
RELIABLE = reliable_qos(50)
SMALL_CONF = {'descriptor_dim': 64, 'input_dim': 256, 'descriptor_type': 'orb',
              'keypoint_encoder': [32, 64], 'gnn_layers': 1, 'sinkhorn_iterations': 10}

__all__ = ['Collector', 'CONFIG', 'domain_id', 'Harness', 'make_weights', 'RELIABLE',
           'reliable_inputs', 'small_weights', 'stamp', 'TumFrames', 'wait_for']


def domain_id(offset: int) -> int:
    """DDS domain of one test module."""
    return int(os.environ.get('TEST_DOMAIN_BASE', 60)) + offset


class Harness(Graph):
    """The production in-process graph plus a driver node ``node`` for the test's topics."""

    def __init__(self, domain: int, threads: int = 4):
        super().__init__(domain, threads, name='test_executor')
        self.node = self.create_node('test_driver')


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


def reliable_inputs(namespace: str, depth: int = 50):
    """Build QoS overrides that make the matcher's inputs in ``namespace`` reliable."""
    return reliable_input_overrides([f'/{namespace}/image', f'/{namespace}/keypoints'], depth)


stamp = to_time


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
    """Write small random ORB weights into ``directory``; returns their path."""
    import torch
    from superglue_ros.models import get_model
    from superglue_ros.weights import save_weights
    torch.manual_seed(0)
    path = Path(directory) / 'small_orb.pth'
    save_weights(path, get_model('superglue', SMALL_CONF), {'note': 'random test weights'})
    return path

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Keypoints/Image validation: one reason code per kind of bad input."""

import array

import numpy as np
import pytest
from std_msgs.msg import Header
from superglue_ros_msgs.msg import Keypoints

from ros_harness import stamp, TumFrames
from superglue_ros.ros import validation as v
from superglue_ros.ros.conversions import keypoints_from_features, numpy_to_image


@pytest.fixture(scope='module')
def frame():
    return TumFrames(count=1, max_keypoints=200)


def good(frame, t=10.0) -> Keypoints:
    return keypoints_from_features(frame.features[0], Header(stamp=stamp(t)), 1)


def f32(values) -> array.array:
    return array.array('f', np.asarray(values, np.float32).tobytes())


def check(msg, reason, text, **kwargs):
    kwargs = {'descriptor_type': 'orb', 'descriptor_dim': 256, **kwargs}
    rejection = v.validate_keypoints(msg, **kwargs)
    assert rejection is not None and rejection.reason == reason, rejection
    assert text in rejection.message and str(rejection).startswith(reason)


def test_good_message_passes(frame):
    assert v.validate_keypoints(good(frame), 'orb', 256, 1000, stamp_ns_of(5.0)) is None


def stamp_ns_of(t: float) -> int:
    return int(round(t * 1e9))


def test_length_mismatch(frame):
    msg = good(frame)
    msg.score = f32(np.zeros(3))
    check(msg, v.LENGTH_MISMATCH, 'score=3')
    msg = good(frame)
    msg.angle = f32(np.zeros(5))
    check(msg, v.LENGTH_MISMATCH, 'angle=5')
    msg = good(frame)
    msg.descriptors_binary = array.array('B', bytes(31))
    check(msg, v.LENGTH_MISMATCH, 'descriptors_binary has 31')


def test_non_finite(frame):
    for field in ('x', 'y', 'score'):
        msg = good(frame)
        values = np.asarray(getattr(msg, field)).copy()
        values[1] = np.nan if field != 'score' else np.inf
        setattr(msg, field, f32(values))
        check(msg, v.NON_FINITE, f'{field} contains 1 NaN/Inf')


def test_descriptor_type_and_size_against_the_weights(frame):
    check(good(frame), v.DESCRIPTOR_MISMATCH, "expect 'superpoint'",
          descriptor_type='superpoint')
    check(good(frame), v.DESCRIPTOR_MISMATCH, 'expect 128 bits', descriptor_dim=128)
    msg = good(frame)
    msg.descriptor_type = 42
    check(msg, v.DESCRIPTOR_MISMATCH, 'unknown descriptor_type 42')
    msg = good(frame)
    n = len(msg.x)
    msg.descriptor_type, msg.descriptor_dim = Keypoints.DESCRIPTOR_GENERIC, 8
    msg.descriptors_float = f32(np.full(n * 8, np.nan))
    msg.descriptors_binary = array.array('B')
    check(msg, v.NON_FINITE, 'descriptors_float', descriptor_type='generic', descriptor_dim=8)


def test_zero_keypoints():
    msg = Keypoints(image_width=640, image_height=480, descriptor_dim=256)
    check(msg, v.NO_KEYPOINTS, 'zero keypoints')


def test_keypoints_outside_the_image(frame):
    msg = good(frame)
    y = np.asarray(msg.y).copy()
    y[4] = 480.0
    msg.y = f32(y)
    check(msg, v.OUT_OF_IMAGE, '1 keypoints lie outside the 640 x 480 image (first: #4')
    msg = good(frame)
    x = np.asarray(msg.x).copy()
    x[0] = -0.6
    msg.x = f32(x)
    check(msg, v.OUT_OF_IMAGE, 'outside')
    msg = good(frame)
    msg.x = f32(np.clip(np.asarray(msg.x), -0.5, 639.5))  # the border itself is inside
    assert v.validate_keypoints(msg, 'orb', 256) is None


def test_duplicate_and_backwards_stamps(frame):
    check(good(frame, 10.0), v.BAD_STAMP, 'duplicate stamp', previous_stamp=stamp_ns_of(10.0))
    check(good(frame, 9.5), v.BAD_STAMP, 'goes backwards', previous_stamp=stamp_ns_of(10.0))


def test_oversized(frame):
    msg = good(frame)
    check(msg, v.OVERSIZED, 'exceed the cap of 10', max_keypoints=10)
    assert v.validate_keypoints(msg, 'orb', 256, max_keypoints=0) is None  # 0 = no cap


def test_images_and_pairs(frame):
    gray = np.zeros((480, 640), np.uint8)
    image = numpy_to_image(gray, 'mono8', use_cv_bridge=False)
    assert v.validate_image(image) is None
    assert v.validate_image(image, max_pixels=1000).reason == v.OVERSIZED
    image.encoding = 'weird'
    assert v.validate_image(image).reason == v.UNSUPPORTED_ENCODING
    image.encoding = 'mono8'
    image.data = array.array('B', bytes(10))
    assert v.validate_image(image).reason == v.BAD_IMAGE
    small = numpy_to_image(gray[:240, :320].copy(), 'mono8', use_cv_bridge=False)
    rejection = v.validate_pair(small, good(frame))
    assert rejection.reason == v.SIZE_MISMATCH and '640 x 480' in rejection.message
    assert v.validate_pair(numpy_to_image(gray, 'mono8', use_cv_bridge=False),
                           good(frame)) is None
    assert set(v.REASONS) >= {v.OVERSIZED, v.SIZE_MISMATCH, v.BAD_STAMP}

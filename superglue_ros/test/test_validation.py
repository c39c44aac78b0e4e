# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Input validation: one InputError reason per kind of bad input, raised where it is found."""

import array

import numpy as np
import pytest
from std_msgs.msg import Header
from superglue_ros_msgs.msg import Keypoints

from conftest import TINY_CONF
from ros_harness import stamp, TumFrames
from superglue_ros import inputs
from superglue_ros.engine import MatchingEngine
from superglue_ros.inputs import InputError
from superglue_ros.models import get_model
from superglue_ros.ros.conversions import (features_from_keypoints, keypoints_from_features,
                                           numpy_to_image)
from superglue_ros.ros.validation import keyframe_features, validate_image, validate_pair


@pytest.fixture(scope='module')
def frame():
    return TumFrames(count=1, max_keypoints=200)


def engine(descriptor_type='orb', input_dim=256) -> MatchingEngine:
    conf = {**TINY_CONF, 'descriptor_type': descriptor_type, 'input_dim': input_dim}
    return MatchingEngine(get_model('superglue', conf), device='cpu')


@pytest.fixture(scope='module')
def orb_engine():
    return engine()


def good(frame, t=10.0) -> Keypoints:
    return keypoints_from_features(frame.features[0], Header(stamp=stamp(t)), 1)


def image_for(msg):
    gray = np.zeros((msg.image_height, msg.image_width), np.uint8)
    return numpy_to_image(gray, 'mono8', msg.header, use_cv_bridge=False)


def f32(values) -> array.array:
    return array.array('f', np.asarray(values, np.float32).tobytes())


def stamp_ns_of(t: float) -> int:
    return int(round(t * 1e9))


def gate(msg, eng, **kwargs):
    """Run what the matcher node runs on a pair: every check, then prepare."""
    features = keyframe_features(image_for(msg), msg, eng, **kwargs)
    return eng.prepare(features)


def check(msg, reason, text, eng, **kwargs):
    with pytest.raises(InputError) as info:
        gate(msg, eng, **kwargs)
    assert info.value.reason == reason, info.value
    assert text in info.value.message and str(info.value).startswith(f'{reason}: ')


def test_good_message_passes(frame, orb_engine):
    prepared = gate(good(frame), orb_engine, max_keypoints=1000,
                    previous_stamp=stamp_ns_of(5.0))
    assert prepared.keypoints.shape == (1, len(frame.features[0]), 2)


def test_input_error_is_a_value_error_with_a_known_reason():
    err = InputError(inputs.BAD_STAMP, 'late')
    assert isinstance(err, ValueError) and str(err) == 'bad_stamp: late'
    with pytest.raises(ValueError, match='unknown input-error reason'):
        InputError('weird', 'x')


def test_length_mismatch(frame, orb_engine):
    msg = good(frame)
    msg.score = f32(np.zeros(3))
    check(msg, inputs.LENGTH_MISMATCH, 'score=3', orb_engine)
    msg = good(frame)
    msg.angle = f32(np.zeros(5))
    check(msg, inputs.LENGTH_MISMATCH, 'angle=5', orb_engine)
    msg = good(frame)
    msg.descriptors_binary = array.array('B', bytes(31))
    check(msg, inputs.LENGTH_MISMATCH, 'descriptors_binary has 31', orb_engine)


def test_non_finite(frame, orb_engine):
    for field, name in (('x', 'keypoints'), ('y', 'keypoints'), ('score', 'scores')):
        msg = good(frame)
        values = np.asarray(getattr(msg, field)).copy()
        values[1] = np.nan if field != 'score' else np.inf
        setattr(msg, field, f32(values))
        check(msg, inputs.NON_FINITE, f'{name} contains 1 NaN/Inf', orb_engine)
    msg = good(frame)  # an infinite coordinate is non-finite, not outside the image
    x = np.asarray(msg.x).copy()
    x[2] = np.inf
    msg.x = f32(x)
    check(msg, inputs.NON_FINITE, 'keypoints contains 1 NaN/Inf', orb_engine)


def test_descriptor_type_and_size_against_the_weights(frame, orb_engine):
    check(good(frame), inputs.DESCRIPTOR_MISMATCH, "expect 'superpoint'",
          engine('superpoint'))
    check(good(frame), inputs.DESCRIPTOR_MISMATCH, 'expect 128 bits', engine('orb', 128))
    msg = good(frame)
    msg.descriptor_type = 42
    check(msg, inputs.DESCRIPTOR_MISMATCH, 'unknown descriptor_type 42', orb_engine)
    msg = good(frame)  # the type is checked against the weights before the descriptor block
    msg.descriptor_type = Keypoints.DESCRIPTOR_SIFT
    check(msg, inputs.DESCRIPTOR_MISMATCH, "type 'sift'", orb_engine)
    msg = good(frame)
    n = len(msg.x)
    msg.descriptor_type, msg.descriptor_dim = Keypoints.DESCRIPTOR_GENERIC, 8
    msg.descriptors_float = f32(np.full(n * 8, np.nan))
    msg.descriptors_binary = array.array('B')
    check(msg, inputs.NON_FINITE, 'descriptors', engine('generic', 8))


def test_zero_keypoints(orb_engine):
    msg = Keypoints(image_width=640, image_height=480, descriptor_dim=256)
    check(msg, inputs.NO_KEYPOINTS, 'zero keypoints', orb_engine)


def test_keypoints_outside_the_image(frame, orb_engine):
    msg = good(frame)
    y = np.asarray(msg.y).copy()
    y[4] = 480.0
    msg.y = f32(y)
    check(msg, inputs.OUT_OF_IMAGE, '1 keypoints lie outside the 640 x 480 image (first: #4',
          orb_engine)
    msg = good(frame)
    x = np.asarray(msg.x).copy()
    x[0] = -0.6
    msg.x = f32(x)
    check(msg, inputs.OUT_OF_IMAGE, 'outside', orb_engine)
    msg = good(frame)
    msg.x = f32(np.clip(np.asarray(msg.x), -0.5, 639.5))  # the border itself is inside
    gate(msg, orb_engine)


def test_duplicate_and_backwards_stamps(frame, orb_engine):
    check(good(frame, 10.0), inputs.BAD_STAMP, 'duplicate stamp', orb_engine,
          previous_stamp=stamp_ns_of(10.0))
    check(good(frame, 9.5), inputs.BAD_STAMP, 'goes backwards', orb_engine,
          previous_stamp=stamp_ns_of(10.0))


def test_oversized(frame, orb_engine):
    msg = good(frame)
    check(msg, inputs.OVERSIZED, 'exceed the cap of 10', orb_engine, max_keypoints=10)
    gate(msg, orb_engine, max_keypoints=0)  # 0 = no cap


def test_images_and_pairs(frame):
    gray = np.zeros((480, 640), np.uint8)
    image = numpy_to_image(gray, 'mono8', use_cv_bridge=False)
    validate_image(image)

    def reason(fn, *args):
        with pytest.raises(InputError) as info:
            fn(*args)
        return info.value
    assert reason(validate_image, image, 1000).reason == inputs.OVERSIZED
    image.encoding = 'weird'
    assert reason(validate_image, image).reason == inputs.UNSUPPORTED_ENCODING
    image.encoding = 'mono8'
    image.data = array.array('B', bytes(10))
    assert reason(validate_image, image).reason == inputs.BAD_IMAGE
    small = numpy_to_image(gray[:240, :320].copy(), 'mono8', use_cv_bridge=False)
    error = reason(validate_pair, small, good(frame))
    assert error.reason == inputs.SIZE_MISMATCH and '640 x 480' in error.message
    validate_pair(numpy_to_image(gray, 'mono8', use_cv_bridge=False), good(frame))
    assert set(inputs.REASONS) >= {inputs.OVERSIZED, inputs.SIZE_MISMATCH, inputs.BAD_STAMP}


def test_conversion_raises_the_same_typed_errors(frame):
    msg = good(frame)
    msg.y = f32([1.0])
    with pytest.raises(InputError, match='lengths disagree') as info:
        features_from_keypoints(msg)
    assert info.value.reason == inputs.LENGTH_MISMATCH

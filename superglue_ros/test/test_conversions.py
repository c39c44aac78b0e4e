# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Image, Keypoints and Correspondences conversions, on the pip and the cv_bridge install."""

import array
import sys

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from superglue_ros_msgs.msg import Correspondences, Keypoints

from ros_harness import FRAMES, stamp
from superglue_ros.features import Features, OrbExtractor
from superglue_ros.ros import conversions as conv

RNG = np.random.default_rng(0)
CASES = {
    'mono8': RNG.integers(0, 256, (5, 7), dtype=np.uint8),
    'mono16': RNG.integers(0, 65536, (5, 7), dtype=np.uint16),
    'bgr8': RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    'rgb8': RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    'bgra8': RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8),
    'rgba8': RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8),
}


def raw_image(array_: np.ndarray, encoding: str, pad: int = 0, big_endian: bool = False):
    """Image message built by hand: rows padded by ``pad`` bytes, chosen byte order."""
    h, w = array_.shape[:2]
    data = array_.astype(array_.dtype.newbyteorder('>' if big_endian else '<'))
    rows = data.reshape(h, -1).view(np.uint8)
    rows = np.concatenate([rows, np.full((h, pad), 0xAB, np.uint8)], 1)
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=int(big_endian),
                step=rows.shape[1])
    msg.data = array.array('B', rows.tobytes())
    return msg


@pytest.mark.parametrize('encoding', sorted(CASES))
@pytest.mark.parametrize('pad', [0, 3])
def test_own_image_to_numpy_every_encoding_with_padding(encoding, pad):
    expected = CASES[encoding]
    out = conv.image_to_numpy(raw_image(expected, encoding, pad), use_cv_bridge=False)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == expected.dtype


def test_big_endian_mono16():
    expected = CASES['mono16']
    for pad in (0, 2):
        msg = raw_image(expected, 'mono16', pad, big_endian=True)
        out = conv.image_to_numpy(msg, use_cv_bridge=False)
        np.testing.assert_array_equal(out, expected)
        assert out.dtype.isnative


@pytest.mark.parametrize('encoding', sorted(CASES))
def test_numpy_to_image_round_trip(encoding):
    header = Header(stamp=stamp(12.5), frame_id='cam')
    msg = conv.numpy_to_image(CASES[encoding], encoding, header, use_cv_bridge=False)
    assert msg.header.frame_id == 'cam' and msg.encoding == encoding
    assert msg.step == msg.width * CASES[encoding].itemsize * (
        1 if CASES[encoding].ndim == 2 else CASES[encoding].shape[2])
    assert msg.is_bigendian == int(sys.byteorder == 'big' and encoding == 'mono16')
    np.testing.assert_array_equal(conv.image_to_numpy(msg, use_cv_bridge=False),
                                  CASES[encoding])


def test_colour_order_to_bgr_and_gray():
    bgr = CASES['bgr8']
    rgb_msg = conv.numpy_to_image(bgr[..., ::-1].copy(), 'rgb8', use_cv_bridge=False)
    np.testing.assert_array_equal(conv.image_to_bgr(rgb_msg, use_cv_bridge=False), bgr)
    rgba = np.concatenate([bgr[..., ::-1], np.full((5, 7, 1), 255, np.uint8)], 2)
    rgba_msg = conv.numpy_to_image(rgba, 'rgba8', use_cv_bridge=False)
    np.testing.assert_array_equal(conv.image_to_bgr(rgba_msg, use_cv_bridge=False), bgr)
    gray = conv.image_to_gray(rgb_msg, use_cv_bridge=False)
    np.testing.assert_array_equal(gray, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    mono16 = conv.numpy_to_image(CASES['mono16'], 'mono16', use_cv_bridge=False)
    np.testing.assert_array_equal(conv.image_to_gray(mono16, use_cv_bridge=False),
                                  (CASES['mono16'] >> 8).astype(np.uint8))


def test_unsupported_and_inconsistent_images_raise_clear_errors():
    msg = raw_image(CASES['mono8'], 'mono8')
    msg.encoding = 'bayer_rggb8'
    with pytest.raises(ValueError, match="unsupported image encoding 'bayer_rggb8'"):
        conv.image_to_numpy(msg, use_cv_bridge=False)
    with pytest.raises(ValueError, match='unsupported image encoding'):
        conv.numpy_to_image(CASES['mono8'], '32FC1', use_cv_bridge=False)
    short = raw_image(CASES['bgr8'], 'bgr8')
    short.step = 7 * 3 - 1
    with pytest.raises(ValueError, match='step'):
        conv.check_image(short, use_cv_bridge=False)
    truncated = raw_image(CASES['bgr8'], 'bgr8')
    truncated.data = array.array('B', bytes(20))
    with pytest.raises(ValueError, match='data has 20 bytes'):
        conv.image_to_numpy(truncated, use_cv_bridge=False)
    with pytest.raises(ValueError, match='empty image'):
        conv.check_image(Image(encoding='mono8'), use_cv_bridge=False)
    with pytest.raises(ValueError, match='bgr8 needs a uint8 array with 3'):
        conv.numpy_to_image(CASES['mono8'], 'bgr8', use_cv_bridge=False)


class ReplicaCvBridge:
    """Stand-in for cv_bridge.CvBridge (not on PyPI) that reads rows as the real one does.

    The Python imgmsg_to_cv2 of ROS 2 cv_bridge takes ``int(step / itemsize / channels)``
    pixels per row and crops them to the width: right for unpadded rows and for padding of
    whole pixels, garbled otherwise. Knows a few encodings, converts yuv422 to bgr8.
    """

    LAYOUT = {'mono8': (np.uint8, 1), 'bgr8': (np.uint8, 3), 'rgb8': (np.uint8, 3),
              'yuv422': (np.uint8, 2), '32FC1': (np.float32, 1), '32FC3': (np.float32, 3)}

    def encoding_to_dtype_with_channels(self, encoding):
        if encoding not in self.LAYOUT:
            raise TypeError(f'Unrecognized encoding {encoding}')
        dtype, channels = self.LAYOUT[encoding]
        return np.dtype(dtype), channels

    def imgmsg_to_cv2(self, msg, desired_encoding='passthrough'):
        dtype, channels = self.encoding_to_dtype_with_channels(msg.encoding)
        per_row = int(msg.step / dtype.itemsize / channels)
        image = np.ndarray((msg.height, per_row, channels), dtype, buffer=bytes(msg.data))
        image = np.ascontiguousarray(image[:, :msg.width].squeeze(2) if channels == 1
                                     else image[:, :msg.width])
        if desired_encoding == 'passthrough':
            return image
        if (msg.encoding, desired_encoding) == ('yuv422', 'bgr8'):
            return cv2.cvtColor(image, cv2.COLOR_YUV2BGR_UYVY)
        raise TypeError(f'cannot convert {msg.encoding} to {desired_encoding}')


@pytest.fixture
def replica_bridge(monkeypatch):
    monkeypatch.setattr(conv, 'CvBridge', ReplicaCvBridge)
    monkeypatch.setattr(conv, '_bridge', None)
    return ReplicaCvBridge()


@pytest.mark.parametrize('encoding', sorted(CASES))
@pytest.mark.parametrize('pad', [1, 2, 3, 4, 5])
def test_padded_rows_are_exact_on_the_cv_bridge_install(replica_bridge, encoding, pad):
    expected = CASES[encoding]
    msg = raw_image(expected, encoding, pad)
    np.testing.assert_array_equal(conv.image_to_numpy(msg, use_cv_bridge=True), expected)
    np.testing.assert_array_equal(conv.image_to_numpy(msg, use_cv_bridge=False), expected)
    bgr = conv.image_to_bgr(msg, use_cv_bridge=True)
    np.testing.assert_array_equal(bgr, conv.image_to_bgr(raw_image(expected, encoding), False))


def test_the_replica_garbles_padded_colour_rows_like_cv_bridge(replica_bridge):
    # The reason the own path serves these encodings on every install.
    msg = raw_image(CASES['bgr8'], 'bgr8', pad=1)
    assert not np.array_equal(replica_bridge.imgmsg_to_cv2(msg), CASES['bgr8'])
    np.testing.assert_array_equal(replica_bridge.imgmsg_to_cv2(raw_image(CASES['bgr8'], 'bgr8')),
                                  CASES['bgr8'])


@pytest.mark.parametrize('encoding,array_', [
    ('32FC1', RNG.random((5, 7), dtype=np.float32)),
    ('32FC3', RNG.random((5, 7, 3), dtype=np.float32)),
    ('yuv422', RNG.integers(0, 256, (5, 8, 2), dtype=np.uint8))])
@pytest.mark.parametrize('pad', [0, 1, 2, 4, 6])
def test_other_encodings_reach_cv_bridge_without_padding(replica_bridge, encoding, array_, pad):
    msg = raw_image(array_, encoding, pad)
    pixel = array_.itemsize * (array_.shape[2] if array_.ndim == 3 else 1)
    if pad % pixel:  # what cv_bridge alone would make of it: garbled
        assert not np.array_equal(replica_bridge.imgmsg_to_cv2(msg), array_)
    np.testing.assert_array_equal(conv.image_to_numpy(msg, use_cv_bridge=True), array_)
    conv.check_image(msg, use_cv_bridge=True)
    with pytest.raises(ValueError, match=f'unsupported image encoding {encoding!r}'):
        conv.image_to_numpy(msg, use_cv_bridge=False)
    if encoding == 'yuv422':
        expected = cv2.cvtColor(array_, cv2.COLOR_YUV2BGR_UYVY)
        np.testing.assert_array_equal(conv.image_to_bgr(msg, use_cv_bridge=True), expected)
    short = raw_image(array_, encoding, pad)
    short.step = msg.width * array_.itemsize - 1
    with pytest.raises(ValueError, match='step'):
        conv.check_image(short, use_cv_bridge=True)


def test_encodings_cv_bridge_does_not_know_are_rejected(replica_bridge):
    msg = raw_image(CASES['mono8'], 'bayer_rggb8')
    with pytest.raises(conv.InputError, match="cannot convert image with encoding 'bayer_rggb8'"):
        conv.image_to_numpy(msg, use_cv_bridge=True)


@pytest.mark.skipif(not conv.HAVE_CV_BRIDGE,
                    reason='cv_bridge is not installed (pip ROS setup; not in ../shared/ros_src '
                           'either): the real cv_bridge is not compared, ReplicaCvBridge is')
def test_real_cv_bridge_agrees_with_own_path():  # pragma: no cover - needs cv_bridge
    from cv_bridge import CvBridge
    bridge = CvBridge()
    for encoding, expected in CASES.items():
        unpadded = bridge.imgmsg_to_cv2(raw_image(expected, encoding), 'passthrough')
        np.testing.assert_array_equal(unpadded, expected)
        for pad in (1, 4):
            msg = raw_image(expected, encoding, pad)
            np.testing.assert_array_equal(conv.image_to_numpy(msg), expected)
    floats = RNG.random((5, 7, 3), dtype=np.float32)
    np.testing.assert_array_equal(conv.image_to_numpy(raw_image(floats, '32FC3', 4)), floats)


def test_keypoints_round_trip_orb_real_frame():
    image = cv2.imread(str(FRAMES[0]), cv2.IMREAD_GRAYSCALE)
    features = OrbExtractor(300)(image)
    header = Header(stamp=stamp(3.25), frame_id='cam')
    msg = conv.keypoints_from_features(features, header, keyframe_id=7)
    assert isinstance(msg, Keypoints)
    assert (msg.keyframe_id, msg.image_width, msg.image_height) == (7, 640, 480)
    assert msg.descriptor_type == Keypoints.DESCRIPTOR_ORB and msg.descriptor_dim == 256
    assert len(msg.descriptors_binary) == len(features) * 32
    back = conv.features_from_keypoints(msg)
    np.testing.assert_array_equal(back.keypoints, features.keypoints)
    np.testing.assert_array_equal(back.scores, features.scores)
    np.testing.assert_array_equal(back.descriptors, features.descriptors)
    np.testing.assert_array_equal(back.octave, features.octave)
    assert back.descriptor_type == 'orb' and back.image_size == (640, 480)


def test_keypoints_round_trip_float_descriptors_and_optional_fields():
    n = 4
    features = Features(RNG.random((n, 2), dtype=np.float32) * 10,
                        RNG.random(n, dtype=np.float32), RNG.random((n, 128), dtype=np.float32),
                        'sift', (32, 24))
    msg = conv.keypoints_from_features(features, Header(), 1)
    assert msg.descriptor_type == Keypoints.DESCRIPTOR_SIFT and msg.descriptor_dim == 128
    assert len(msg.size) == 0 and len(msg.descriptors_binary) == 0
    back = conv.features_from_keypoints(msg)
    np.testing.assert_array_equal(back.descriptors, features.descriptors)
    assert len(back.size) == 0


def test_features_from_inconsistent_keypoints_raises():
    msg = conv.keypoints_from_features(OrbExtractor(50)(cv2.imread(str(FRAMES[1]), 0)),
                                       Header(), 1)
    msg.y = array.array('f', [1.0])
    with pytest.raises(ValueError, match='lengths disagree'):
        conv.features_from_keypoints(msg)
    msg = conv.keypoints_from_features(OrbExtractor(50)(cv2.imread(str(FRAMES[1]), 0)),
                                       Header(), 1)
    msg.descriptor_type = 9
    with pytest.raises(ValueError, match='unknown descriptor_type 9'):
        conv.features_from_keypoints(msg)


def test_build_correspondences():
    header = Header(stamp=stamp(5.0), frame_id='cam')
    idx = np.array([3, 1])
    msg = conv.build_correspondences(
        header, Correspondences.STATUS_OK, '2 matches', current=(5, stamp(5.0)),
        reference=(4, stamp(4.0)), current_index=idx, reference_index=np.array([0, 2]),
        current_points=np.array([[1, 2], [3, 4]]), reference_points=np.array([[5, 6], [7, 8]]),
        confidence=np.array([0.9, 0.5]), inlier=np.array([True, False]), verified=True,
        latency=0.01)
    assert list(msg.current_indices) == [3, 1] and list(msg.reference_indices) == [0, 2]
    assert list(msg.current_x) == [1, 3] and list(msg.reference_y) == [6, 8]
    assert list(msg.inlier) == [1, 0] and msg.verified
    assert msg.reference_stamp.sec == 4 and msg.current_keyframe_id == 5
    first = conv.build_correspondences(header, Correspondences.STATUS_FIRST_KEYFRAME,
                                       current=(1, stamp(1.0)))
    assert len(first.current_indices) == 0 and first.reference_keyframe_id == 0
    unverified = conv.build_correspondences(
        header, 0, current_index=idx, reference_index=idx, current_points=np.zeros((2, 2)),
        reference_points=np.zeros((2, 2)), confidence=np.ones(2))
    assert list(unverified.inlier) == [1, 1] and not unverified.verified


@pytest.mark.parametrize('ext,channels', [('.jpg', 3), ('.png', 3), ('.png', 1)])
def test_compressed_image_decodes_to_an_image_with_its_header(ext, channels):
    from sensor_msgs.msg import CompressedImage
    bgr = cv2.imread(str(FRAMES[0]), cv2.IMREAD_COLOR)
    pixels = bgr if channels == 3 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    ok, data = cv2.imencode(ext, pixels)
    header = Header(stamp=stamp(12.5), frame_id='cam')
    msg = conv.compressed_to_image(CompressedImage(header=header, format=ext[1:],
                                                   data=data.tobytes()))
    assert msg.header == header and (msg.width, msg.height) == (bgr.shape[1], bgr.shape[0])
    assert msg.encoding == ('bgr8' if channels == 3 else 'mono8')
    decoded = conv.image_to_numpy(msg)
    if ext == '.png':  # lossless
        assert np.array_equal(decoded, pixels)
    else:
        assert np.abs(decoded.astype(int) - pixels).mean() < 3


def test_compressed_image_that_does_not_decode_is_a_bad_image():
    from sensor_msgs.msg import CompressedImage
    for data in (b'', b'\xff\xd8 truncated jpeg'):
        with pytest.raises(conv.InputError, match='bad_image: compressed image') as info:
            conv.compressed_to_image(CompressedImage(format='jpeg', data=data))
        assert info.value.reason == conv.BAD_IMAGE


def test_camera_info_to_intrinsics_and_clear_errors():
    from sensor_msgs.msg import CameraInfo
    info = CameraInfo(width=640, height=480, distortion_model='plumb_bob',
                      k=[520.0, 0.0, 320.0, 0.0, 521.0, 240.0, 0.0, 0.0, 1.0],
                      d=[0.1, -0.2, 0.0, 0.0, 0.05])
    camera = conv.intrinsics_from_camera_info(info)
    assert camera.size == (640, 480) and camera.model == 'plumb_bob'
    assert camera.k[1, 1] == 521.0 and list(camera.d) == [0.1, -0.2, 0.0, 0.0, 0.05]
    pinhole = CameraInfo(width=640, height=480, k=info.k)  # no model, no distortion
    assert conv.intrinsics_from_camera_info(pinhole).model == 'plumb_bob'
    for field, value, match in (('k', [0.0] * 9, 'uncalibrated'),
                                ('distortion_model', 'pinhole_ultra', 'not supported'),
                                ('width', 0, 'no image size'),
                                ('d', [0.1, 0.2], '4, 5, 8, 12 or 14 coefficients')):
        bad = CameraInfo(width=640, height=480, distortion_model='plumb_bob', k=info.k,
                         d=info.d)
        setattr(bad, field, value)
        with pytest.raises(ValueError, match=match):
            conv.intrinsics_from_camera_info(bad)


def test_correspondences_pose_fields():
    from superglue_ros.geometry import RelativePose
    header = Header(stamp=stamp(1.0), frame_id='cam')
    plain = conv.build_correspondences(header, Correspondences.STATUS_OK, verified=True)
    assert plain.verification == Correspondences.VERIFICATION_FUNDAMENTAL
    assert not plain.pose_valid and plain.rotation.w == 1.0
    r = cv2.Rodrigues(np.array([0.0, 0.0, np.pi / 2]))[0]  # 90 degrees about z
    pose = RelativePose(r, np.array([0.0, 0.6, 0.8]), 42, 2.5)
    msg = conv.build_correspondences(header, Correspondences.STATUS_OK, verified=True,
                                     verification=Correspondences.VERIFICATION_ESSENTIAL,
                                     pose=pose)
    assert msg.pose_valid and msg.pose_inliers == 42 and msg.pose_parallax == 2.5
    assert plain.pose_parallax == 0.0
    assert msg.verification == Correspondences.VERIFICATION_ESSENTIAL
    q = msg.rotation
    assert np.allclose([q.x, q.y, q.z, q.w], [0, 0, np.sqrt(0.5), np.sqrt(0.5)])
    assert (msg.translation.x, msg.translation.y, msg.translation.z) == (0.0, 0.6, 0.8)

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Conversions between ROS messages and numpy: images, keypoints, correspondences.

Images in mono8, mono16, bgr8, rgb8, bgra8, rgba8 and their 8UC1/16UC1/8UC3/8UC4 aliases go
through an own numpy path on every install, honouring ``step`` (row padding) and
``is_bigendian``: cv_bridge's Python ``imgmsg_to_cv2`` derives the row length as
``step // itemsize // channels``, which garbles colour images whose padding is not a whole
number of pixels. Other encodings (Bayer, YUV, float, ...) go to cv_bridge where it is
importable (a real ROS 2 install), after the padding has been cut off; without cv_bridge (the
pip setup) they raise an InputError (unsupported_encoding) naming them. An inconsistent message
raises one with reason bad_image.

``features_from_keypoints`` is where a Keypoints message's structure is checked: array
lengths and the descriptor block (InputError length_mismatch / descriptor_mismatch).

sensor_msgs/CompressedImage (the image_transport ``compressed`` transport: JPEG, PNG, ...) is
decoded with OpenCV (``compressed_to_image``); sensor_msgs/CameraInfo becomes the
``geometry.Intrinsics`` that undistort points (``intrinsics_from_camera_info``).

Bulk message arrays are built from bytes (``array.array(typecode, buffer)``): assigning numpy
arrays element by element costs milliseconds per keyframe, and older distributions (Humble)
accept only sequences or array.array there.
"""

from __future__ import annotations

import array
import sys
from typing import Optional, Tuple

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from superglue_ros_msgs.msg import Correspondences, Keypoints

from ..features import Features, to_gray
from ..geometry import Intrinsics, RelativePose
from ..inputs import (BAD_IMAGE, DESCRIPTOR_MISMATCH, InputError, LENGTH_MISMATCH,
                      UNSUPPORTED_ENCODING)

try:  # a real ROS 2 install has cv_bridge; the pip setup does not
    from cv_bridge import CvBridge
except ImportError:  # pragma: no cover - depends on the installation
    CvBridge = None

HAVE_CV_BRIDGE = CvBridge is not None

# encoding -> (dtype, channels, channel order for colour conversion)
ENCODINGS = {
    'mono8': (np.uint8, 1, 'gray'),
    '8UC1': (np.uint8, 1, 'gray'),
    'mono16': (np.uint16, 1, 'gray'),
    '16UC1': (np.uint16, 1, 'gray'),
    'bgr8': (np.uint8, 3, 'bgr'),
    '8UC3': (np.uint8, 3, 'bgr'),
    'rgb8': (np.uint8, 3, 'rgb'),
    'bgra8': (np.uint8, 4, 'bgra'),
    '8UC4': (np.uint8, 4, 'bgra'),
    'rgba8': (np.uint8, 4, 'rgba'),
}

DESCRIPTOR_NAMES = {
    Keypoints.DESCRIPTOR_ORB: 'orb',
    Keypoints.DESCRIPTOR_SIFT: 'sift',
    Keypoints.DESCRIPTOR_SUPERPOINT: 'superpoint',
    Keypoints.DESCRIPTOR_GENERIC: 'generic',
}
DESCRIPTOR_CODES = {name: code for code, name in DESCRIPTOR_NAMES.items()}

_bridge = None


def _get_bridge():
    global _bridge
    if _bridge is None:
        _bridge = CvBridge()
    return _bridge


def _unsupported(encoding: str) -> InputError:
    return InputError(UNSUPPORTED_ENCODING,
                      f'unsupported image encoding {encoding!r}: supported are '
                      f'{", ".join(sorted(ENCODINGS))}'
                      + ('' if HAVE_CV_BRIDGE else ' (cv_bridge is not installed)'))


def check_image(msg: Image, use_cv_bridge: Optional[bool] = None) -> None:
    """Cheap consistency checks of an Image message; raise InputError with the reason.

    Checks the encoding, a non-empty size, ``step`` against the row size and the data length,
    without converting the pixels.
    """
    if msg.encoding not in ENCODINGS:
        bridge = HAVE_CV_BRIDGE if use_cv_bridge is None else use_cv_bridge
        if not bridge:
            raise _unsupported(msg.encoding)
        _check_rows(msg, *_bridge_layout(msg.encoding))
        return
    dtype, channels, _ = ENCODINGS[msg.encoding]
    _check_rows(msg, dtype, channels)


def _check_rows(msg: Image, dtype, channels: int) -> None:
    if msg.width == 0 or msg.height == 0:
        raise InputError(BAD_IMAGE, f'empty image ({msg.width} x {msg.height})')
    row = msg.width * channels * np.dtype(dtype).itemsize
    if msg.step < row:
        raise InputError(BAD_IMAGE, f'image step {msg.step} is smaller than a row of '
                                    f'{msg.width} {msg.encoding} pixels ({row} bytes)')
    if len(msg.data) < msg.step * (msg.height - 1) + row:
        raise InputError(BAD_IMAGE, f'image data has {len(msg.data)} bytes, {msg.height} '
                                    f'rows of step {msg.step} need '
                                    f'{msg.step * (msg.height - 1) + row}')


def _own_image_to_numpy(msg: Image) -> np.ndarray:
    check_image(msg, use_cv_bridge=False)
    dtype, channels, _ = ENCODINGS[msg.encoding]
    dt = np.dtype(dtype).newbyteorder('>' if msg.is_bigendian else '<')
    h, w = int(msg.height), int(msg.width)
    row = w * channels * dt.itemsize
    buf = np.frombuffer(msg.data, np.uint8)
    if msg.step == row:
        rows = buf[:h * row]
    else:  # padded rows: keep the first `row` bytes of each
        padded = np.zeros(h * msg.step, np.uint8)
        padded[:min(buf.size, padded.size)] = buf[:padded.size]
        rows = np.ascontiguousarray(padded.reshape(h, msg.step)[:, :row]).ravel()
    image = rows.view(dt).reshape(h, w, channels)
    if dt.byteorder not in ('=', '|'):  # non-native byte order: swap to native
        image = image.astype(dt.newbyteorder('='))
    return image[..., 0] if channels == 1 else image


def _bridge_layout(encoding: str) -> Tuple[np.dtype, int]:
    """(dtype, channels) of an encoding as cv_bridge knows it; InputError if it does not."""
    try:
        dtype, channels = _get_bridge().encoding_to_dtype_with_channels(encoding)
    except Exception as exc:  # noqa: BLE001 - CvBridgeError, KeyError, TypeError alike
        raise InputError(UNSUPPORTED_ENCODING, f'cannot convert image with encoding '
                                               f'{encoding!r}: {exc}') from exc
    return np.dtype(dtype), int(channels)


def _unpadded(msg: Image) -> Image:
    """``msg`` itself when its rows are unpadded, else a copy without the padding.

    cv_bridge would read padded rows with the wrong length; this hands it exact rows.
    """
    dtype, channels = _bridge_layout(msg.encoding)
    _check_rows(msg, dtype, channels)
    h = int(msg.height)
    row = int(msg.width) * channels * dtype.itemsize
    if msg.step == row and len(msg.data) == h * row:
        return msg
    rows = np.frombuffer(msg.data, np.uint8, count=msg.step * (h - 1) + row)
    rows = np.lib.stride_tricks.as_strided(rows, (h, row), (msg.step, 1))
    out = Image(header=msg.header, height=msg.height, width=msg.width, encoding=msg.encoding,
                is_bigendian=msg.is_bigendian, step=row)
    out.data = array.array('B', np.ascontiguousarray(rows).tobytes())
    return out


def _bridge_convert(msg: Image, desired_encoding: str) -> np.ndarray:
    image = _unpadded(msg)
    try:
        return np.asarray(_get_bridge().imgmsg_to_cv2(image, desired_encoding=desired_encoding))
    except Exception as exc:  # noqa: BLE001 - CvBridgeError and numpy errors alike
        raise InputError(UNSUPPORTED_ENCODING, f'cannot convert image with encoding '
                                               f'{msg.encoding!r} to {desired_encoding}: '
                                               f'{exc}') from exc


def image_to_numpy(msg: Image, use_cv_bridge: Optional[bool] = None) -> np.ndarray:
    """Image message -> HxW or HxWxC array, channels in the message's own order.

    ``use_cv_bridge`` (None = when importable) matters only for encodings the own path does not
    know. Raises InputError for an unsupported encoding or inconsistent size/step/data.
    """
    if msg.encoding in ENCODINGS:
        return _own_image_to_numpy(msg)
    bridge = HAVE_CV_BRIDGE if use_cv_bridge is None else use_cv_bridge
    if not bridge:
        raise _unsupported(msg.encoding)
    return _bridge_convert(msg, 'passthrough')


def image_to_bgr(msg: Image, use_cv_bridge: Optional[bool] = None) -> np.ndarray:
    """Image message -> uint8 BGR (HxWx3) or grayscale (HxW) for drawing and detection."""
    if msg.encoding not in ENCODINGS:
        bridge = HAVE_CV_BRIDGE if use_cv_bridge is None else use_cv_bridge
        if not bridge:
            raise _unsupported(msg.encoding)
        return _bridge_convert(msg, 'bgr8')
    image = image_to_numpy(msg, use_cv_bridge)
    order = ENCODINGS[msg.encoding][2]
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if order == 'rgb':
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if order == 'rgba':
        return cv2.cvtColor(image, cv2.COLOR_RGBA2BGR)
    if order == 'bgra':
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def compressed_to_image(msg: CompressedImage) -> Image:
    """Decode a CompressedImage (any format OpenCV reads) into a bgr8 or mono8 Image.

    The header is kept. Raises InputError(bad_image) when the bytes do not decode.
    """
    data = np.frombuffer(bytes(msg.data), np.uint8)
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if pixels is None:
        raise InputError(BAD_IMAGE, f'compressed image ({msg.format!r}, {data.size} bytes) '
                                    f'does not decode')
    if pixels.dtype != np.uint8:  # 16-bit PNG: keep the high byte, as image_to_bgr does
        pixels = (pixels >> 8).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2BGR)
    encoding = 'mono8' if pixels.ndim == 2 else 'bgr8'
    return numpy_to_image(pixels, encoding, msg.header, use_cv_bridge=False)


def intrinsics_from_camera_info(msg: CameraInfo) -> Intrinsics:
    """Convert a CameraInfo into Intrinsics (k, d, distortion_model, width x height).

    Raises ValueError naming the field when the calibration is missing (k all zero) or not
    supported.
    """
    if msg.width == 0 or msg.height == 0:
        raise ValueError(f'camera_info has no image size ({msg.width} x {msg.height})')
    return Intrinsics.from_values(list(msg.k), list(msg.d), str(msg.distortion_model),
                                  (int(msg.width), int(msg.height)))


def image_to_gray(msg: Image, use_cv_bridge: Optional[bool] = None) -> np.ndarray:
    """Image message -> uint8 grayscale HxW."""
    return to_gray(image_to_bgr(msg, use_cv_bridge))


def numpy_to_image(image: np.ndarray, encoding: str, header: Optional[Header] = None,
                   use_cv_bridge: Optional[bool] = None) -> Image:
    """Convert an HxW or HxWxC array (channels in the order of ``encoding``) to an Image.

    The own path for the encodings it knows, cv_bridge (``use_cv_bridge``) for the others.
    """
    bridge = HAVE_CV_BRIDGE if use_cv_bridge is None else use_cv_bridge
    if bridge and encoding not in ENCODINGS:
        try:
            msg = _get_bridge().cv2_to_imgmsg(np.ascontiguousarray(image), encoding=encoding)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f'cannot convert a {image.dtype} array of shape {image.shape} '
                             f'to {encoding!r}: {exc}') from exc
    else:
        if encoding not in ENCODINGS:
            raise _unsupported(encoding)
        dtype, channels, _ = ENCODINGS[encoding]
        shape_ok = (image.ndim == 2 and channels == 1) or (
            image.ndim == 3 and image.shape[2] == channels)
        if image.dtype != dtype or not shape_ok:
            raise ValueError(f'{encoding} needs a {np.dtype(dtype).name} array with '
                             f'{channels} channel(s), got {image.dtype} of shape {image.shape}')
        image = np.ascontiguousarray(image)
        msg = Image()
        msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
        msg.encoding = encoding
        msg.is_bigendian = int(sys.byteorder == 'big' and image.dtype.itemsize > 1)
        msg.step = int(msg.width * channels * image.dtype.itemsize)
        msg.data = array.array('B', image.tobytes())
    if header is not None:
        msg.header = header
    return msg


def _f32(values: np.ndarray) -> array.array:
    return array.array('f', np.ascontiguousarray(values, np.float32).tobytes())


def _u32(values: np.ndarray) -> array.array:
    return array.array('I', np.ascontiguousarray(values, np.uint32).tobytes())


def as_numpy(field, dtype) -> np.ndarray:
    """Message array field (array.array, bytes, list) -> numpy without copying if possible."""
    try:
        return np.frombuffer(field, dtype)
    except (TypeError, ValueError):
        return np.asarray(field, dtype)


def descriptor_type_name(code: int) -> str:
    """Map a Keypoints.DESCRIPTOR_* constant -> 'orb' | 'sift' | 'superpoint' | 'generic'."""
    try:
        return DESCRIPTOR_NAMES[int(code)]
    except KeyError:
        raise InputError(DESCRIPTOR_MISMATCH, f'unknown descriptor_type {code}: expected one '
                                              f'of {sorted(DESCRIPTOR_NAMES)} '
                                              f'(Keypoints.DESCRIPTOR_*)') from None


def features_from_keypoints(msg: Keypoints) -> Features:
    """Keypoints message -> Features (arrays are copies, safe to keep as a keyframe).

    Checks the structure: per-keypoint arrays of one length (size, angle and octave may be
    empty), a known descriptor type, and a descriptor block of n x descriptor_dim (ORB: bits).
    Raises InputError (length_mismatch, descriptor_mismatch) naming the problem.
    """
    n = len(msg.x)
    lengths = {'x': n, 'y': len(msg.y), 'score': len(msg.score)}
    for name in ('size', 'angle', 'octave'):
        if len(getattr(msg, name)):
            lengths[name] = len(getattr(msg, name))
    if len(set(lengths.values())) > 1:
        detail = ', '.join(f'{k}={v}' for k, v in lengths.items())
        raise InputError(LENGTH_MISMATCH, f'per-keypoint array lengths disagree ({detail})')
    name = descriptor_type_name(msg.descriptor_type)
    dim = int(msg.descriptor_dim)
    if name == 'orb':
        if dim % 8:
            raise InputError(DESCRIPTOR_MISMATCH, f'binary descriptor_dim must be a multiple '
                                                  f'of 8 bits, got {dim}')
        field, width = 'descriptors_binary', dim // 8
        raw = as_numpy(msg.descriptors_binary, np.uint8)
    else:
        field, width = 'descriptors_float', dim
        raw = as_numpy(msg.descriptors_float, np.float32)
    if raw.size != n * width:
        raise InputError(LENGTH_MISMATCH, f'{field} has {raw.size} entries, {n} keypoints x '
                                          f'descriptor_dim {dim} need {n * width}')

    def optional(field, dtype) -> np.ndarray:
        return as_numpy(field, dtype).copy() if len(field) else np.zeros(0, dtype)

    return Features(
        keypoints=np.stack([as_numpy(msg.x, np.float32), as_numpy(msg.y, np.float32)], 1)
        .astype(np.float32),
        scores=as_numpy(msg.score, np.float32).copy(),
        descriptors=raw.reshape(n, width).copy(),
        descriptor_type=name,
        image_size=(int(msg.image_width), int(msg.image_height)),
        size=optional(msg.size, np.float32),
        angle=optional(msg.angle, np.float32),
        octave=optional(msg.octave, np.int32),
    )


def keypoints_from_features(features: Features, header: Header, keyframe_id: int) -> Keypoints:
    """Features -> Keypoints message (descriptor_dim in bits for ORB, values otherwise)."""
    msg = Keypoints()
    msg.header = header
    msg.keyframe_id = int(keyframe_id)
    msg.image_width, msg.image_height = (int(v) for v in features.image_size)
    kpts = np.asarray(features.keypoints, np.float32).reshape(-1, 2)
    msg.x = _f32(kpts[:, 0])
    msg.y = _f32(kpts[:, 1])
    msg.score = _f32(features.scores)
    n = len(kpts)
    if len(features.size) == n:
        msg.size = _f32(features.size)
    if len(features.angle) == n:
        msg.angle = _f32(features.angle)
    if len(features.octave) == n:
        msg.octave = array.array('i', np.ascontiguousarray(features.octave, np.int32).tobytes())
    msg.descriptor_type = DESCRIPTOR_CODES[features.descriptor_type]
    desc = np.asarray(features.descriptors)
    if features.descriptor_type == 'orb':
        desc = np.ascontiguousarray(desc, np.uint8).reshape(n, -1)
        msg.descriptor_dim = int(desc.shape[1] * 8) if n else 256
        msg.descriptors_binary = array.array('B', desc.tobytes())
    else:
        desc = np.ascontiguousarray(desc, np.float32).reshape(n, -1)
        msg.descriptor_dim = int(desc.shape[1]) if desc.ndim == 2 else 0
        msg.descriptors_float = _f32(desc.ravel())
    return msg


def build_correspondences(header: Header, status: int, status_message: str = '',
                          current: Tuple[int, object] = (0, None),
                          reference: Tuple[int, object] = (0, None),
                          current_index: Optional[np.ndarray] = None,
                          reference_index: Optional[np.ndarray] = None,
                          current_points: Optional[np.ndarray] = None,
                          reference_points: Optional[np.ndarray] = None,
                          confidence: Optional[np.ndarray] = None,
                          inlier: Optional[np.ndarray] = None, verified: bool = False,
                          latency: float = 0.0, verification: Optional[int] = None,
                          pose: Optional[RelativePose] = None, window_index: int = 0,
                          last_in_batch: bool = True,
                          refined_points: Optional[np.ndarray] = None,
                          refined: Optional[np.ndarray] = None,
                          refined_reference_points: Optional[np.ndarray] = None
                          ) -> Correspondences:
    """Correspondences message; ``current``/``reference`` are (keyframe id, stamp or None).

    Without matches (first keyframe, rejections, errors) every array stays empty. Without
    ``inlier`` every match is flagged as an inlier (``verified`` says whether that means
    anything). ``verification`` is a Correspondences.VERIFICATION_* value (default:
    fundamental when ``verified``, else none); ``pose`` (reference -> current camera) fills
    the pose fields and sets pose_valid. ``window_index``/``last_in_batch``: the pair's place
    in its keyframe's batch (window matching). ``refined_points`` [M x 2] and ``refined`` [M]
    (bool): the sub-pixel refinement of the current points (refined_current_x/y, refined),
    with ``refined_reference_points`` [M x 2] the reference observations they were refined
    against (refined_reference_x/y; default: the reference keypoints); None leaves those
    arrays empty (not refined).
    """
    msg = Correspondences()
    msg.header = header
    msg.status = int(status)
    msg.status_message = str(status_message)
    msg.current_keyframe_id = int(current[0])
    msg.reference_keyframe_id = int(reference[0])
    if current[1] is not None:
        msg.current_stamp = current[1]
    if reference[1] is not None:
        msg.reference_stamp = reference[1]
    if current_index is not None and len(current_index):
        cur = np.asarray(current_points, np.float32).reshape(-1, 2)
        ref = np.asarray(reference_points, np.float32).reshape(-1, 2)
        msg.current_indices = _u32(current_index)
        msg.reference_indices = _u32(reference_index)
        msg.current_x, msg.current_y = _f32(cur[:, 0]), _f32(cur[:, 1])
        msg.reference_x, msg.reference_y = _f32(ref[:, 0]), _f32(ref[:, 1])
        msg.confidence = _f32(confidence)
        flags = np.ones(len(cur), np.uint8) if inlier is None else np.asarray(inlier, np.uint8)
        msg.inlier = array.array('B', flags.tobytes())
        if refined_points is not None:
            moved = np.asarray(refined_points, np.float32).reshape(-1, 2)
            if len(moved) != len(cur) or refined is None or len(refined) != len(cur):
                raise ValueError(f'refined_points and refined must have one entry per match '
                                 f'({len(cur)}), got {len(moved)} and '
                                 f'{None if refined is None else len(refined)}')
            msg.refined_current_x, msg.refined_current_y = _f32(moved[:, 0]), _f32(moved[:, 1])
            msg.refined = array.array('B', np.asarray(refined, np.uint8).tobytes())
            against = ref if refined_reference_points is None else \
                np.asarray(refined_reference_points, np.float32).reshape(-1, 2)
            if len(against) != len(cur):
                raise ValueError(f'refined_reference_points must have one entry per match '
                                 f'({len(cur)}), got {len(against)}')
            msg.refined_reference_x = _f32(against[:, 0])
            msg.refined_reference_y = _f32(against[:, 1])
    msg.verified = bool(verified)
    if verification is None:
        verification = (Correspondences.VERIFICATION_FUNDAMENTAL if verified
                        else Correspondences.VERIFICATION_NONE)
    msg.verification = int(verification)
    if pose is not None:
        msg.pose_valid = True
        (msg.rotation.x, msg.rotation.y, msg.rotation.z,
         msg.rotation.w) = pose.quaternion()
        msg.translation.x, msg.translation.y, msg.translation.z = (
            float(v) for v in np.asarray(pose.translation, np.float64).ravel())
        msg.pose_inliers = int(pose.inliers)
        msg.pose_parallax = float(getattr(pose, 'parallax', 0.0))
    msg.window_index = int(window_index)
    msg.last_in_batch = bool(last_in_batch)
    msg.latency = float(latency)
    return msg

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Input validation for the matcher node: a reason code and a readable message per rejection.

The checks are cheap (numpy over flat arrays) and run before any tensor is built, so a bad
message costs a log line and a counter, never the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .conversions import as_numpy, check_image, descriptor_type_name
from .sync import stamp_ns

# Reason codes (also the diagnostics key suffixes).
OVERSIZED = 'oversized'
LENGTH_MISMATCH = 'length_mismatch'
DESCRIPTOR_MISMATCH = 'descriptor_mismatch'
NON_FINITE = 'non_finite'
NO_KEYPOINTS = 'no_keypoints'
OUT_OF_IMAGE = 'out_of_image'
BAD_STAMP = 'bad_stamp'
UNSUPPORTED_ENCODING = 'unsupported_encoding'
BAD_IMAGE = 'bad_image'
SIZE_MISMATCH = 'size_mismatch'

REASONS = (OVERSIZED, LENGTH_MISMATCH, DESCRIPTOR_MISMATCH, NON_FINITE, NO_KEYPOINTS,
           OUT_OF_IMAGE, BAD_STAMP, UNSUPPORTED_ENCODING, BAD_IMAGE, SIZE_MISMATCH)


@dataclass(frozen=True)
class Rejection:
    """Why an input was not accepted: ``reason`` is one of REASONS."""

    reason: str
    message: str

    def __str__(self) -> str:
        return f'{self.reason}: {self.message}'


def _nonfinite(field) -> int:
    a = as_numpy(field, np.float32)
    return int(a.size - np.count_nonzero(np.isfinite(a)))


def validate_keypoints(msg, descriptor_type: str, descriptor_dim: int,
                       max_keypoints: int = 0, previous_stamp: Optional[int] = None
                       ) -> Optional[Rejection]:
    """Check a Keypoints message; None when it is usable.

    descriptor_type/descriptor_dim: what the loaded weights expect (ORB: bits);
    max_keypoints: cap on the message size (0 = no cap); previous_stamp: the last accepted
    keyframe's stamp [ns] — the stamp must increase strictly.
    """
    n = len(msg.x)
    if max_keypoints > 0 and n > max_keypoints:
        return Rejection(OVERSIZED, f'{n} keypoints exceed the cap of {max_keypoints} '
                                    f'(parameter max_input_keypoints)')
    if previous_stamp is not None:
        t = stamp_ns(msg)
        if t == previous_stamp:
            return Rejection(BAD_STAMP, f'duplicate stamp {t * 1e-9:.9f} s (same as the '
                                        f'previous keyframe)')
        if t < previous_stamp:
            return Rejection(BAD_STAMP, f'stamp {t * 1e-9:.9f} s goes backwards (previous '
                                        f'keyframe at {previous_stamp * 1e-9:.9f} s)')
    lengths = {'x': n, 'y': len(msg.y), 'score': len(msg.score)}
    for name in ('size', 'angle', 'octave'):
        if len(getattr(msg, name)):
            lengths[name] = len(getattr(msg, name))
    if len(set(lengths.values())) > 1:
        detail = ', '.join(f'{k}={v}' for k, v in lengths.items())
        return Rejection(LENGTH_MISMATCH, f'per-keypoint array lengths disagree ({detail})')
    try:
        name = descriptor_type_name(msg.descriptor_type)
    except ValueError as exc:
        return Rejection(DESCRIPTOR_MISMATCH, str(exc))
    if name != descriptor_type:
        return Rejection(DESCRIPTOR_MISMATCH, f'descriptor type {name!r} does not match the '
                                              f'loaded weights, which expect '
                                              f'{descriptor_type!r}')
    dim = int(msg.descriptor_dim)
    if dim != descriptor_dim:
        unit = 'bits' if name == 'orb' else 'values'
        return Rejection(DESCRIPTOR_MISMATCH, f'descriptor_dim {dim} does not match the loaded '
                                              f'weights, which expect {descriptor_dim} {unit}')
    if name == 'orb':
        have, need = len(msg.descriptors_binary), n * dim // 8
        field = 'descriptors_binary'
    else:
        have, need = len(msg.descriptors_float), n * dim
        field = 'descriptors_float'
    if have != need:
        return Rejection(LENGTH_MISMATCH, f'{field} has {have} entries, {n} keypoints x '
                                          f'descriptor_dim {dim} need {need}')
    for field in ('x', 'y', 'score') + (() if name == 'orb' else ('descriptors_float',)):
        bad = _nonfinite(getattr(msg, field))
        if bad:
            return Rejection(NON_FINITE, f'{field} contains {bad} NaN/Inf values')
    if n == 0:
        return Rejection(NO_KEYPOINTS, 'the keyframe has zero keypoints')
    w, h = int(msg.image_width), int(msg.image_height)
    x = as_numpy(msg.x, np.float32)
    y = as_numpy(msg.y, np.float32)
    # Pixel centres are integers, so the image covers [-0.5, w - 0.5] x [-0.5, h - 0.5].
    outside = (x < -0.5) | (x > w - 0.5) | (y < -0.5) | (y > h - 0.5)
    if np.any(outside):
        i = int(np.argmax(outside))
        return Rejection(OUT_OF_IMAGE, f'{int(outside.sum())} keypoints lie outside the '
                                       f'{w} x {h} image (first: #{i} at ({x[i]:.1f}, '
                                       f'{y[i]:.1f}))')
    return None


def validate_image(msg, max_pixels: int = 0) -> Optional[Rejection]:
    """Check an Image message (encoding, step, data length, size cap); None when usable."""
    if max_pixels > 0 and msg.width * msg.height > max_pixels:
        return Rejection(OVERSIZED, f'image of {msg.width} x {msg.height} pixels exceeds the cap '
                                    f'of {max_pixels} (parameter max_image_pixels)')
    try:
        check_image(msg)
    except ValueError as exc:
        reason = UNSUPPORTED_ENCODING if 'encoding' in str(exc) else BAD_IMAGE
        return Rejection(reason, str(exc))
    return None


def validate_pair(image, keypoints) -> Optional[Rejection]:
    """Check that the keypoints were detected in an image of the paired image's size."""
    if (image.width, image.height) != (keypoints.image_width, keypoints.image_height):
        return Rejection(SIZE_MISMATCH, f'keypoints were detected in a {keypoints.image_width} x '
                                        f'{keypoints.image_height} image, the paired image is '
                                        f'{image.width} x {image.height}')
    return None

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The matcher node's input gate: one stamp-paired (Image, Keypoints) -> Features or InputError.

Each check lives once, where the problem shows: the image's structure in
``conversions.check_image``, the Keypoints message's structure in
``conversions.features_from_keypoints``, what the weights accept in
``MatchingEngine.check_descriptors`` (and, for values, ``MatchingEngine.prepare``), and the
node's own policy here (size caps, stamp order, empty keyframes, keypoints inside the image,
image and keypoints of one size). All raise ``InputError(reason, message)``; the checks are
cheap (numpy over flat arrays) and run before any tensor is built.
"""

from __future__ import annotations

from collections import deque
from typing import Deque, Optional

import numpy as np

from .conversions import check_image, descriptor_type_name, features_from_keypoints
from .sync import stamp_ns
from ..features import Features
from ..inputs import (BAD_STAMP, DEGENERATE, InputError, NO_KEYPOINTS, OUT_OF_IMAGE,
                      OVERSIZED, SIZE_MISMATCH)

SPREAD_GRID = 4  # reference spread: share of the 4 x 4 image cells holding a keypoint


def validate_image(msg, max_pixels: int = 0) -> None:
    """Check an Image message (size cap, encoding, step, data length)."""
    if max_pixels > 0 and msg.width * msg.height > max_pixels:
        raise InputError(OVERSIZED, f'image of {msg.width} x {msg.height} pixels exceeds the '
                                    f'cap of {max_pixels} (parameter max_image_pixels)')
    check_image(msg)


def validate_keypoints_header(msg, max_keypoints: int = 0,
                              previous_stamp: Optional[int] = None) -> None:
    """Check the node's policy on a Keypoints message before it is converted.

    max_keypoints: cap on the message size (0 = no cap); previous_stamp: the last accepted
    keyframe's stamp [ns] — the stamp must increase strictly.
    """
    n = len(msg.x)
    if max_keypoints > 0 and n > max_keypoints:
        raise InputError(OVERSIZED, f'{n} keypoints exceed the cap of {max_keypoints} '
                                    f'(parameter max_input_keypoints)')
    if previous_stamp is not None:
        t = stamp_ns(msg)
        if t == previous_stamp:
            raise InputError(BAD_STAMP, f'duplicate stamp {t * 1e-9:.9f} s (same as the '
                                        f'previous keyframe)')
        if t < previous_stamp:
            raise InputError(BAD_STAMP, f'stamp {t * 1e-9:.9f} s goes backwards (previous '
                                        f'keyframe at {previous_stamp * 1e-9:.9f} s)')


def validate_in_image(features: Features) -> None:
    """Check that a keyframe has keypoints and that the finite ones lie inside its image.

    Non-finite coordinates are left to ``MatchingEngine.prepare``, which names them.
    """
    if len(features) == 0:
        raise InputError(NO_KEYPOINTS, 'the keyframe has zero keypoints')
    w, h = features.image_size
    x, y = features.keypoints[:, 0], features.keypoints[:, 1]
    # Pixel centres are integers, so the image covers [-0.5, w - 0.5] x [-0.5, h - 0.5].
    with np.errstate(invalid='ignore'):
        outside = (x < -0.5) | (x > w - 0.5) | (y < -0.5) | (y > h - 0.5)
    outside &= np.isfinite(x) & np.isfinite(y)
    if np.any(outside):
        i = int(np.argmax(outside))
        raise InputError(OUT_OF_IMAGE, f'{int(outside.sum())} keypoints lie outside the '
                                       f'{w} x {h} image (first: #{i} at ({x[i]:.1f}, '
                                       f'{y[i]:.1f}))')


def validate_pair(image, keypoints) -> None:
    """Check that the keypoints were detected in an image of the paired image's size."""
    if (image.width, image.height) != (keypoints.image_width, keypoints.image_height):
        raise InputError(SIZE_MISMATCH, f'keypoints were detected in a {keypoints.image_width} '
                                        f'x {keypoints.image_height} image, the paired image '
                                        f'is {image.width} x {image.height}')


def keyframe_features(image, keypoints, engine, max_image_pixels: int = 0,
                      max_keypoints: int = 0, previous_stamp: Optional[int] = None
                      ) -> Features:
    """Run every input check on one stamp-paired (Image, Keypoints); return the Features.

    ``image`` None: keypoints-only mode, where the Keypoints message's image size is all the
    network needs (so it must be given). ``engine`` (a MatchingEngine) says which descriptors
    the weights accept. Raises InputError for the first problem found; ``engine.prepare`` of
    the result checks the values.
    """
    if image is not None:
        validate_image(image, max_image_pixels)
    elif keypoints.image_width == 0 or keypoints.image_height == 0:
        raise InputError(SIZE_MISMATCH, f'image_width x image_height is {keypoints.image_width}'
                                        f' x {keypoints.image_height}: without an image input '
                                        f'(image_input none) the Keypoints message must give '
                                        f'the size of the image it was detected in')
    validate_keypoints_header(keypoints, max_keypoints, previous_stamp)
    engine.check_descriptors(descriptor_type_name(keypoints.descriptor_type),
                             int(keypoints.descriptor_dim))
    features = features_from_keypoints(keypoints)
    validate_in_image(features)
    if image is not None:
        validate_pair(image, keypoints)
    return features


class StreamClock:
    """Where the image stream's stamps stand, from the arrival of its recent images.

    The stream's time at ``arrival`` is the stamp of the newest other image plus the time
    that passed since it arrived; so a camera that pauses and resumes is not ahead, and one
    wild image does not move later judgements (the next keyframe is behind it, not ahead).
    """

    def __init__(self, window: int = 4):
        self._recent: Deque = deque(maxlen=window)  # (stamp, arrival) [ns], newest last

    def observe(self, stamp: int, arrival: int) -> None:
        """Record one image stamp [ns] that arrived at ``arrival`` [ns, steady clock]."""
        self._recent.append((stamp, arrival))

    def ahead(self, stamp: int, arrival: int) -> Optional[float]:
        """Seconds by which ``stamp`` lies ahead of the stream; None without another image."""
        for other, at in reversed(self._recent):
            if other != stamp:
                return (stamp - other - (arrival - at)) * 1e-9
        return None


def check_stamp_ahead(stamp: int, tolerance: float, clock_now: Optional[int] = None,
                      stream_ahead: Optional[float] = None) -> None:
    """Raise InputError(BAD_STAMP) for a stamp more than ``tolerance`` [s] in the future.

    ``clock_now`` [ns]: the node clock (None or 0 = not running yet, e.g. sim time before
    /clock); ``stream_ahead`` [s]: from ``StreamClock.ahead``. ``tolerance`` 0 = no check.
    """
    if tolerance <= 0:
        return
    if clock_now and (stamp - clock_now) * 1e-9 > tolerance:
        raise InputError(BAD_STAMP, f'stamp {stamp * 1e-9:.3f} s is '
                                    f'{(stamp - clock_now) * 1e-9:.1f} s ahead of the node '
                                    f'clock (tolerance max_stamp_ahead={tolerance} s)')
    if stream_ahead is not None and stream_ahead > tolerance:
        raise InputError(BAD_STAMP, f'stamp {stamp * 1e-9:.3f} s is {stream_ahead:.1f} s ahead '
                                    f'of the image stream (tolerance max_stamp_ahead='
                                    f'{tolerance} s)')


def check_reference_quality(features: Features, min_keypoints: int, min_spread: float) -> None:
    """Raise InputError(DEGENERATE) unless the keyframe can serve as the reference.

    It needs ``min_keypoints`` keypoints at distinct pixel positions, spread over at least
    ``min_spread`` of the SPREAD_GRID x SPREAD_GRID cells of its image.
    """
    xy = np.asarray(features.keypoints, np.float64).reshape(-1, 2)
    xy = xy[np.all(np.isfinite(xy), axis=1)]
    distinct = len(np.unique(np.round(xy).astype(np.int64), axis=0))
    if distinct < min_keypoints:
        raise InputError(DEGENERATE, f'{distinct} distinct keypoint positions (of {len(xy)}); '
                                     f'a reference needs {min_keypoints} '
                                     f'(parameter min_reference_keypoints)')
    if min_spread > 0:
        w, h = features.image_size
        cx = np.clip((xy[:, 0] + 0.5) * SPREAD_GRID // max(w, 1), 0, SPREAD_GRID - 1)
        cy = np.clip((xy[:, 1] + 0.5) * SPREAD_GRID // max(h, 1), 0, SPREAD_GRID - 1)
        spread = len(set(zip(cx.astype(int).tolist(), cy.astype(int).tolist()))) \
            / SPREAD_GRID ** 2
        if spread < min_spread:
            raise InputError(DEGENERATE, f'keypoints cover {spread:.0%} of the image cells; a '
                                         f'reference needs {min_spread:.0%} (parameter '
                                         f'min_reference_spread)')

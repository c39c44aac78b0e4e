# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Bad input, typed: ``InputError(reason, message)`` and its reason codes.

Every check that refuses an input raises InputError where it finds the problem (message
conversion, the node's input policy, the engine), naming one of REASONS. The matcher node
turns the reason into a Correspondences status and a diagnostics counter; it never reads the
message text. Imports numpy only, so the torch core and the ROS layer both use it.
"""

from __future__ import annotations

import numpy as np

# Reason codes (also the suffixes of the node's rejected_* diagnostics keys).
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
DEGENERATE = 'degenerate'  # too few distinct keypoints, or all in one corner: no reference
DUPLICATE_ID = 'duplicate_id'  # the keyframe id of the current reference again
NO_CAMERA_INFO = 'no_camera_info'  # camera_info_required, and no usable camera_info yet

REASONS = (OVERSIZED, LENGTH_MISMATCH, DESCRIPTOR_MISMATCH, NON_FINITE, NO_KEYPOINTS,
           OUT_OF_IMAGE, BAD_STAMP, UNSUPPORTED_ENCODING, BAD_IMAGE, SIZE_MISMATCH, DEGENERATE,
           DUPLICATE_ID, NO_CAMERA_INFO)


class InputError(ValueError):
    """An input the matcher cannot use: ``reason`` is one of REASONS, ``message`` says why.

    ``str(error)`` is ``'<reason>: <message>'``, the status message the node publishes.
    """

    def __init__(self, reason: str, message: str):
        if reason not in REASONS:
            raise ValueError(f'unknown input-error reason {reason!r}: use one of {REASONS}')
        super().__init__(f'{reason}: {message}')
        self.reason = reason
        self.message = message


def count_nonfinite(values) -> int:
    """Count the NaN/Inf entries in ``values`` (any array-like of numbers)."""
    a = np.asarray(values)
    return int(a.size - np.count_nonzero(np.isfinite(a)))


def check_finite(name: str, values) -> None:
    """Raise InputError(NON_FINITE) naming ``name`` when ``values`` hold NaN or Inf."""
    bad = count_nonfinite(values)
    if bad:
        raise InputError(NON_FINITE, f'{name} contains {bad} NaN/Inf values')

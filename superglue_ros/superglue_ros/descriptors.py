# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Descriptor adapters: turn what real front-ends publish into the model's input space.

Every adapter returns float32 ``[N x C]`` with unit-norm rows, the scale SuperGlue's keypoint
encoder output is added to.
"""

from __future__ import annotations

import numpy as np

ORB_BYTES = 32
ORB_BITS = ORB_BYTES * 8
SIFT_DIM = 128


def orb_to_float(desc: np.ndarray) -> np.ndarray:
    """ORB [N x 32] uint8 -> [N x 256] float32 with bits mapped to +-1/16 (unit norm).

    Bit order is OpenCV's (most significant bit of byte 0 first); Hamming distance between
    two ORB descriptors maps to an affine function of the inner product.
    """
    desc = np.asarray(desc)
    if desc.dtype != np.uint8:
        raise ValueError(f'ORB descriptors must be uint8 bytes, got dtype {desc.dtype}')
    if desc.ndim != 2 or desc.shape[1] != ORB_BYTES:
        raise ValueError(f'ORB descriptors must be [N x {ORB_BYTES}] bytes, got shape '
                         f'{tuple(desc.shape)}')
    bits = np.unpackbits(desc, axis=1).astype(np.float32)
    return (bits * 2.0 - 1.0) / np.sqrt(np.float32(ORB_BITS))


def sift_to_float(desc: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """SIFT [N x 128] -> RootSIFT: L1-normalise, element-wise square root (unit L2 norm)."""
    desc = np.asarray(desc, dtype=np.float32)
    if desc.ndim != 2 or desc.shape[1] != SIFT_DIM:
        raise ValueError(f'SIFT descriptors must be [N x {SIFT_DIM}], got shape '
                         f'{tuple(desc.shape)}')
    if np.any(desc < 0):
        raise ValueError('SIFT descriptors must be non-negative histograms')
    desc = desc / (desc.sum(axis=1, keepdims=True) + eps)
    return np.sqrt(desc)


def float_to_unit(desc: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Normalise SuperPoint / generic float descriptors [N x C] to unit L2 rows."""
    desc = np.asarray(desc, dtype=np.float32)
    if desc.ndim != 2:
        raise ValueError(f'float descriptors must be [N x C], got shape {tuple(desc.shape)}')
    return desc / (np.linalg.norm(desc, axis=1, keepdims=True) + eps)


def adapt_descriptors(desc: np.ndarray, descriptor_type: str) -> np.ndarray:
    """Dispatch to the adapter for ``descriptor_type`` (orb, sift, superpoint, generic)."""
    if descriptor_type == 'orb':
        return orb_to_float(desc)
    if descriptor_type == 'sift':
        return sift_to_float(desc)
    if descriptor_type in ('superpoint', 'generic'):
        return float_to_unit(desc)
    raise ValueError(f'unknown descriptor_type {descriptor_type!r}: use orb, sift, superpoint '
                     f'or generic')


def adapt_scores(scores: np.ndarray, descriptor_type: str) -> np.ndarray:
    """Detector scores in the range the keypoint encoder was trained with.

    ORB/SIFT responses have arbitrary, image-dependent scale (Harris responses ~1e-4), so they
    are divided by the keyframe's maximum; SuperPoint/generic scores are already in [0, 1].
    """
    scores = np.asarray(scores, dtype=np.float32)
    if descriptor_type in ('orb', 'sift') and scores.size:
        top = float(np.max(np.abs(scores)))
        return scores / top if top > 0 else np.ones_like(scores)
    return scores

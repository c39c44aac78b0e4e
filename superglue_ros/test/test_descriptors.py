# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Descriptor adapters for real front-ends."""

import cv2
import numpy as np
import pytest

from superglue_ros.descriptors import (adapt_descriptors, adapt_scores, float_to_unit,
                                       orb_to_float, sift_to_float)
from superglue_ros.features import OrbExtractor


def test_orb_bits_to_unit_vectors_preserve_hamming(frames):
    f = OrbExtractor(200)(cv2.imread(str(frames[0])))
    assert f.descriptors.dtype == np.uint8 and f.descriptors.shape[1] == 32
    x = orb_to_float(f.descriptors)
    assert x.shape == (len(f), 256)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert set(np.unique(np.round(x * 16).astype(int))) <= {-1, 1}
    # inner product = 1 - 2 * hamming / 256
    ham = cv2.norm(f.descriptors[0], f.descriptors[1], cv2.NORM_HAMMING)
    assert x[0] @ x[1] == pytest.approx(1 - 2 * ham / 256, abs=1e-5)


def test_orb_bit_order_msb_first():
    d = np.zeros((1, 32), np.uint8)
    d[0, 0] = 0b10000000
    x = orb_to_float(d) * 16
    assert x[0, 0] == 1 and np.all(x[0, 1:] == -1)


def test_orb_rejects_wrong_input():
    with pytest.raises(ValueError, match='uint8'):
        orb_to_float(np.zeros((3, 32), np.float32))
    with pytest.raises(ValueError, match=r'\[N x 32\]'):
        orb_to_float(np.zeros((3, 16), np.uint8))


def test_rootsift():
    rng = np.random.default_rng(0)
    d = rng.uniform(0, 50, (10, 128)).astype(np.float32)
    x = sift_to_float(d)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-4)
    # Hellinger kernel: <rootsift(a), rootsift(b)> = sum sqrt(a_l1 * b_l1)
    a, b = d[0] / d[0].sum(), d[1] / d[1].sum()
    assert x[0] @ x[1] == pytest.approx(np.sqrt(a * b).sum(), rel=1e-4)
    with pytest.raises(ValueError, match='128'):
        sift_to_float(np.ones((2, 64)))
    with pytest.raises(ValueError, match='non-negative'):
        sift_to_float(-np.ones((2, 128)))


def test_float_descriptors_normalised_and_dispatch():
    d = np.random.default_rng(1).normal(size=(5, 256)).astype(np.float32) * 7
    for kind in ('superpoint', 'generic'):
        x = adapt_descriptors(d, kind)
        assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert np.allclose(float_to_unit(d), adapt_descriptors(d, 'generic'))
    with pytest.raises(ValueError, match='unknown descriptor_type'):
        adapt_descriptors(d, 'brief')


def test_scores_normalised_for_orb_only():
    s = np.array([1e-4, 5e-4, 2e-4], np.float32)
    assert adapt_scores(s, 'orb').max() == pytest.approx(1.0)
    assert np.array_equal(adapt_scores(s, 'superpoint'), s)

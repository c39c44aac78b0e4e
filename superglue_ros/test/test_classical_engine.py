# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""ClassicalEngine (matcher: orb_nn): the interface the matcher node uses, and its matches."""

import cv2
import numpy as np
import pytest

from superglue_ros.classical import ClassicalEngine, nn_ratio_mutual
from superglue_ros.features import Features, OrbExtractor
from superglue_ros.inputs import DESCRIPTOR_MISMATCH, InputError, NON_FINITE
from superglue_ros.tools.demo import bundled_frames


def _features(n=400):
    frames = bundled_frames()
    extract = OrbExtractor(n)
    return [extract(cv2.imread(str(f), cv2.IMREAD_COLOR)) for f in frames[:2]]


def test_ratio_and_mutual_check():
    f0, f1 = _features()
    i0, i1, score = nn_ratio_mutual(f0, f1, ratio=0.8)
    assert len(i0) > 50 and len(set(i0)) == len(i0) and len(set(i1)) == len(i1)
    d = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(f0.descriptors, f1.descriptors, k=2)
    best = {m[0].queryIdx: (m[0].trainIdx, m[0].distance, m[1].distance) for m in d}
    back = {m.queryIdx: m.trainIdx
            for m in cv2.BFMatcher(cv2.NORM_HAMMING).match(f1.descriptors, f0.descriptors)}
    for a, b, s in zip(i0, i1, score):
        train, d0, d1 = best[a]
        assert train == b and d0 < 0.8 * d1 and back[b] == a
        assert s == pytest.approx(1 - d0 / 256)
    # A stricter ratio keeps a subset.
    j0, _, _ = nn_ratio_mutual(f0, f1, ratio=0.6)
    assert set(j0) < set(i0)


def test_engine_interface_and_index_mapping():
    f0, f1 = _features()
    engine = ClassicalEngine('orb_nn', max_keypoints=200, match_threshold=0.0)
    assert (engine.descriptor_type, engine.input_dim, engine.fp16) == ('orb', 256, False)
    assert str(engine.device) == 'cpu' and engine.device_warning is None
    assert engine.metadata['model'] == 'orb_nn'
    p0, p1 = engine.prepare(f0), engine.prepare(f1)
    assert len(p0.selected) == 200
    result = engine.match_prepared(p0, p1)
    assert len(result.index0) > 20 and result.latency > 0
    # Indices refer to the original arrays (as MatchingEngine's do).
    assert np.array_equal(result.points0, f0.keypoints[result.index0])
    assert np.array_equal(result.points1, f1.keypoints[result.index1])
    kept0 = set(np.argsort(-f0.scores, kind='stable')[:200])
    assert set(result.index0) <= kept0
    engine.match_threshold = 0.9  # run-time parameter: fewer, closer matches
    strict = engine.match_prepared(p0, p1)
    assert len(strict.index0) < len(result.index0) and (strict.confidence >= 0.9).all()
    with pytest.raises(ValueError):
        engine.match_threshold = 1.5


def test_bad_input_and_device():
    f0, _ = _features(50)
    engine = ClassicalEngine('orb_nn', device='cuda', fp16=True)
    assert 'cpu' in engine.device_warning and engine.fp16_ignored
    sift = Features(f0.keypoints, f0.scores, np.zeros((len(f0), 128), np.float32), 'sift',
                    f0.image_size)
    with pytest.raises(InputError) as err:
        engine.prepare(sift)
    assert err.value.reason == DESCRIPTOR_MISMATCH
    with pytest.raises(InputError) as err:
        engine.check_descriptors('orb', 512)
    assert err.value.reason == DESCRIPTOR_MISMATCH
    bad = Features(f0.keypoints.copy(), f0.scores, f0.descriptors, 'orb', f0.image_size)
    bad.keypoints[0, 0] = np.nan
    with pytest.raises(InputError) as err:
        engine.prepare(bad)
    assert err.value.reason == NON_FINITE
    empty = engine.prepare(f0.select(np.zeros(0, int)))
    assert len(engine.match_prepared(empty, engine.prepare(f0)).index0) == 0
    with pytest.raises(ValueError, match='orb_nn'):
        ClassicalEngine('sift_nn')

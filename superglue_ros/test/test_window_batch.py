# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""One keyframe against a window of references in one batched pass equals sequential calls."""

import cv2
import numpy as np
import pytest
import torch

from conftest import shipped_weights_or_skip, TINY_CONF
from superglue_ros.engine import MatchingEngine
from superglue_ros.features import OrbExtractor
from superglue_ros.models import get_model
from superglue_ros.tools.bench import random_features


def assert_same(batched, sequential, atol=1e-4):
    assert len(batched) == len(sequential)
    for b, s in zip(batched, sequential):
        assert np.array_equal(b.index0, s.index0) and np.array_equal(b.index1, s.index1)
        assert np.array_equal(b.points0, s.points0) and np.array_equal(b.points1, s.points1)
        np.testing.assert_allclose(b.confidence, s.confidence, atol=atol)


@pytest.mark.parametrize('counts,current', [((50, 80, 65), 70), ((40, 90), 90),
                                            ((120, 30, 120, 77), 64)])
def test_unequal_counts_equal_sequential(counts, current):
    torch.manual_seed(0)
    model = get_model('superglue', {**TINY_CONF, 'match_threshold': 0.0})
    engine = MatchingEngine(model, device='cpu', num_threads=1)
    refs = [engine.prepare(random_features(n, seed=i)) for i, n in enumerate(counts)]
    cur = engine.prepare(random_features(current, seed=99))
    sequential = [engine.match_prepared(r, cur) for r in refs]
    batched = engine.match_window(refs, cur)
    assert sum(len(r.index0) for r in sequential) > 0
    assert_same(batched, sequential)


def test_empty_keyframes_give_empty_results():
    engine = MatchingEngine(get_model('superglue', TINY_CONF), device='cpu', num_threads=1)
    refs = [engine.prepare(random_features(n, seed=n)) for n in (40, 0, 55)]
    cur = engine.prepare(random_features(60, seed=7))
    batched = engine.match_window(refs, cur)
    assert len(batched[1].index0) == 0 and batched[1].points0.shape == (0, 2)
    assert_same([batched[0], batched[2]],
                [engine.match_prepared(refs[0], cur), engine.match_prepared(refs[2], cur)])
    empty = engine.match_window(refs, engine.prepare(random_features(0)))
    assert [len(r.index0) for r in empty] == [0, 0, 0]
    assert engine.match_window([], cur) == []


def test_shipped_weights_on_real_frames(frames):
    """Real ORB keyframes with different keypoint counts: identical matches, same scores."""
    weights = shipped_weights_or_skip()
    engine = MatchingEngine.from_weights(weights, device='cpu', num_threads=1)
    grays = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in frames[:5]]
    refs = [engine.prepare(OrbExtractor(n)(g)) for n, g in zip((700, 1024, 512, 900), grays)]
    cur = engine.prepare(OrbExtractor(1024)(grays[4]))
    assert len({r.keypoints.shape[1] for r in refs}) > 1
    sequential = [engine.match_prepared(r, cur) for r in refs]
    batched = engine.match_window(refs, cur)
    assert all(len(r.index0) > 50 for r in sequential)
    assert_same(batched, sequential)

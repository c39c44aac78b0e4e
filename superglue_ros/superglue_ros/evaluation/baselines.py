# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The matchers compared by the evaluation tools: ours and the classical baselines."""

from __future__ import annotations

import time
from typing import Callable, Dict, Tuple

import numpy as np

from ..classical import nn_mutual, nn_ratio
from ..features import Features

__all__ = ['methods', 'nn_mutual', 'nn_ratio', 'superglue_matcher', 'timed']


MatchFn = Callable[[Features, Features], Tuple[np.ndarray, np.ndarray, np.ndarray]]


def superglue_matcher(engine) -> MatchFn:
    """Wrap a MatchingEngine in the baseline signature."""
    def match(f0: Features, f1: Features):
        r = engine.match(f0, f1)
        return r.index0, r.index1, r.confidence
    return match


def timed(fn: MatchFn, f0: Features, f1: Features) -> Tuple[Tuple, float]:
    """Call a matcher; returns (result, seconds)."""
    t = time.perf_counter()
    out = fn(f0, f1)
    return out, time.perf_counter() - t


def methods(engine=None) -> Dict[str, MatchFn]:
    """Return the compared matchers, ours first when an engine is given."""
    out: Dict[str, MatchFn] = {}
    if engine is not None:
        out['superglue_orb'] = superglue_matcher(engine)
    out['orb_nn_mutual'] = nn_mutual
    out['orb_nn_ratio0.8'] = nn_ratio
    return out

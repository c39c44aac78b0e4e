# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The matchers compared by the evaluation tools: ours and the classical baselines."""

from __future__ import annotations

import time
from typing import Callable, Dict, NamedTuple, Optional, Tuple

import numpy as np

from ..classical import nn_mutual, nn_ratio
from ..features import Features
from ..refinement import MatchRefiner

__all__ = ['MatchedPoints', 'methods', 'nn_mutual', 'nn_ratio', 'Refined', 'run_matcher',
           'superglue_matcher']


MatchFn = Callable[[Features, Features], Tuple[np.ndarray, np.ndarray, np.ndarray]]


class Refined:
    """A matcher followed by sub-pixel refinement of its image-1 points (``refinement``).

    Called on features alone it is the plain matcher; ``run_matcher`` with the pair's images
    refines. The product's default for our matcher (ImageMatcher, the matcher node).
    """

    def __init__(self, match: MatchFn, refiner: Optional[MatchRefiner] = None):
        self.match = match
        self.refiner = refiner or MatchRefiner()

    def __call__(self, f0: Features, f1: Features):
        return self.match(f0, f1)


class MatchedPoints(NamedTuple):
    """One matcher's output on one pair: indices, confidence, the points used for geometry."""

    index0: np.ndarray  # [M] int
    index1: np.ndarray  # [M] int
    confidence: np.ndarray  # [M]
    points0: np.ndarray  # [M x 2] float64, keypoints of image 0
    points1: np.ndarray  # [M x 2] float64, keypoints of image 1, refined for a Refined matcher
    refined: np.ndarray  # [M] bool
    seconds: float  # matching (+ refinement) time


def run_matcher(fn: MatchFn, f0: Features, f1: Features, image0: Optional[np.ndarray] = None,
                image1: Optional[np.ndarray] = None) -> MatchedPoints:
    """Match a pair, timed; a ``Refined`` matcher also refines when both images are given."""
    t = time.perf_counter()
    i0, i1, conf = fn(f0, f1)
    i0, i1 = np.asarray(i0, np.int64), np.asarray(i1, np.int64)
    p0 = f0.keypoints[i0].astype(np.float64)
    p1 = f1.keypoints[i1].astype(np.float64)
    refined = np.zeros(len(i0), bool)
    refiner = getattr(fn, 'refiner', None)
    if refiner is not None and image0 is not None and image1 is not None:
        r = refiner.refine_pair(image0, image1, f0, f1, i0, i1, np.asarray(conf))
        p1, refined = r.points1.astype(np.float64), r.refined
    return MatchedPoints(i0, i1, np.asarray(conf), p0, p1, refined, time.perf_counter() - t)


def superglue_matcher(engine) -> MatchFn:
    """Wrap a MatchingEngine in the baseline signature."""
    def match(f0: Features, f1: Features):
        r = engine.match(f0, f1)
        return r.index0, r.index1, r.confidence
    return match


def methods(engine=None, refine: bool = True,
            others: Optional[Dict[str, object]] = None) -> Dict[str, MatchFn]:
    """Return the compared matchers, ours first when an engine is given.

    With ``refine`` (the product's default) ours is refined, and two attribution rows are
    added: ours unrefined, and ORB NN + mutual with the same refinement. ``others``: more
    engines by name (other weights), run as ours is, right after it.
    """
    out: Dict[str, MatchFn] = {}
    if engine is not None:
        ours = superglue_matcher(engine)
        out['superglue_orb'] = Refined(ours) if refine else ours
        for name, other in (others or {}).items():
            out[name] = Refined(superglue_matcher(other)) if refine else \
                superglue_matcher(other)
        if refine:
            out['superglue_orb_unrefined'] = ours
    out['orb_nn_mutual'] = nn_mutual
    if refine:
        out['orb_nn_mutual+refine'] = Refined(nn_mutual)
    out['orb_nn_ratio0.8'] = nn_ratio
    return out

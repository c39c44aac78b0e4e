# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""One-call Python API: ``ImageMatcher(...).match(image0, image1)``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .engine import MatchingEngine, read_image
from .features import Features, make_extractor

ImageLike = Union[str, Path, np.ndarray]


@dataclass
class ImageMatches:
    """Result of ImageMatcher.match.

    points0/points1: [M x 2] matched pixel coordinates in image0 / image1;
    confidence: [M]; index0/index1: [M] indices into features0/features1;
    features0/features1: all detected keypoints; latency: model seconds.
    """

    points0: np.ndarray
    points1: np.ndarray
    confidence: np.ndarray
    index0: np.ndarray
    index1: np.ndarray
    features0: Features
    features1: Features
    latency: float

    def __len__(self) -> int:
        return int(self.points0.shape[0])


class ImageMatcher:
    """Detect features in two images and match them with SuperGlue.

    weights: file path (default: the shipped ORB weights); features: 'orb' or 'sift' (must
    match the weights); distribution: ORB keypoint spread, 'grid' (ORB-SLAM-style cells, the
    default: measured better for relative pose on real motion) or 'response' (strongest
    anywhere); device: auto | cpu | cuda[:N] (CUDA absent -> CPU with a warning);
    num_threads: CPU threads per match, 0 = automatic (the cores other processes leave idle);
    backend: 'torch' or 'onnxruntime' (see docs/PERFORMANCE.md).
    Raises weights.WeightsError when the weights file is missing or unreadable.
    """

    def __init__(self, weights: Optional[Union[str, Path]] = None, features: str = 'orb',
                 max_keypoints: int = 1024, device: str = 'auto', fp16: bool = False,
                 match_threshold: Optional[float] = None,
                 sinkhorn_iterations: Optional[int] = None, distribution: str = 'grid',
                 num_threads: int = 0, backend: str = 'torch'):
        overrides = {}
        if match_threshold is not None:
            overrides['match_threshold'] = float(match_threshold)
        if sinkhorn_iterations is not None:
            overrides['sinkhorn_iterations'] = int(sinkhorn_iterations)
        self.engine = MatchingEngine.from_weights(weights, device=device, fp16=fp16,
                                                  num_threads=num_threads, backend=backend,
                                                  **overrides)
        expected = self.engine.descriptor_type
        if features != expected:
            raise ValueError(f'features={features!r} but the weights in '
                             f'{self.engine.metadata["path"]} expect {expected!r} descriptors')
        self.extractor = make_extractor(features, max_keypoints, distribution)

    def extract(self, image: ImageLike) -> Features:
        """Detect keypoints and descriptors in an image (path or BGR/gray array)."""
        return self.extractor(read_image(image))

    def match(self, image0: ImageLike, image1: ImageLike) -> ImageMatches:
        """Match two images (file paths or BGR/grayscale arrays)."""
        f0, f1 = self.extract(image0), self.extract(image1)
        return self.match_features(f0, f1)

    def match_features(self, f0: Features, f1: Features) -> ImageMatches:
        """Match two precomputed feature sets."""
        r = self.engine.match(f0, f1)
        return ImageMatches(r.points0, r.points1, r.confidence, r.index0, r.index1, f0, f1,
                            r.latency)

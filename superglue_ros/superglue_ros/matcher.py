# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""One-call Python API: ``ImageMatcher(...).match(image0, image1)``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .engine import MatchingEngine, read_image
from .features import DEFAULT_DISTRIBUTION, Features, make_extractor, to_gray
from .refinement import MatchRefiner

ImageLike = Union[str, Path, np.ndarray]


@dataclass
class ImageMatches:
    """Result of ImageMatcher.match.

    points0/points1: [M x 2] matched pixel coordinates in image0 / image1 (points1 refined
    to sub-pixel accuracy where ``refined``; the keypoints themselves are
    ``features1.keypoints[index1]``); confidence: [M]; index0/index1: [M] indices into
    features0/features1; features0/features1: all detected keypoints; latency: model seconds;
    refined: [M] bool (all False when refinement is off or no images were given).
    """

    points0: np.ndarray
    points1: np.ndarray
    confidence: np.ndarray
    index0: np.ndarray
    index1: np.ndarray
    features0: Features
    features1: Features
    latency: float
    refined: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def __len__(self) -> int:
        return int(self.points0.shape[0])


class ImageMatcher:
    """Detect features in two images and match them with SuperGlue.

    weights: file path (default: the shipped ORB weights); features: 'orb' or 'sift' (must
    match the weights); distribution: ORB keypoint spread, 'grid' (ORB-SLAM-style cells, the
    default: measured better for relative pose on real motion) or 'response' (strongest
    anywhere); device: auto | cpu | cuda[:N] (CUDA absent -> CPU with a warning);
    num_threads: CPU threads per match, 0 = automatic (the cores other processes leave idle);
    backend: 'torch' or 'onnxruntime' (see docs/PERFORMANCE.md);
    refine: move each matched point of image1 onto its partner's patch to sub-pixel accuracy
    (``refinement.MatchRefiner``; True by default: ORB keypoints are only pixel-accurate, and
    that costs more relative-pose accuracy than the matcher does), or a MatchRefiner with
    other settings, or False.
    Raises weights.WeightsError when the weights file is missing or unreadable.
    """

    def __init__(self, weights: Optional[Union[str, Path]] = None, features: str = 'orb',
                 max_keypoints: int = 1024, device: str = 'auto', fp16: bool = False,
                 match_threshold: Optional[float] = None,
                 sinkhorn_iterations: Optional[int] = None,
                 distribution: str = DEFAULT_DISTRIBUTION,
                 num_threads: int = 0, backend: str = 'torch',
                 refine: Union[bool, MatchRefiner] = True):
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
        self.refiner: Optional[MatchRefiner] = (
            refine if isinstance(refine, MatchRefiner) else MatchRefiner() if refine else None)

    def extract(self, image: ImageLike) -> Features:
        """Detect keypoints and descriptors in an image (path or BGR/gray array)."""
        return self.extractor(read_image(image))

    def match(self, image0: ImageLike, image1: ImageLike) -> ImageMatches:
        """Match two images (file paths or BGR/grayscale arrays), refined unless disabled."""
        gray0, gray1 = to_gray(read_image(image0)), to_gray(read_image(image1))
        return self.match_features(self.extractor(gray0), self.extractor(gray1), gray0, gray1)

    def match_features(self, f0: Features, f1: Features, image0: Optional[np.ndarray] = None,
                       image1: Optional[np.ndarray] = None) -> ImageMatches:
        """Match two precomputed feature sets; with both images, refine the matches too."""
        r = self.engine.match(f0, f1)
        points1, refined = r.points1, np.zeros(len(r.index0), bool)
        if self.refiner is not None and image0 is not None and image1 is not None:
            ref = self.refiner.refine_pair(image0, image1, f0, f1, r.index0, r.index1,
                                           r.confidence)
            points1, refined = ref.points1, ref.refined
        return ImageMatches(r.points0, points1, r.confidence, r.index0, r.index1, f0, f1,
                            r.latency, refined)

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The managed matcher's cleanup gives the model's device memory back (CUDA part needs a GPU).

Imports no rclpy: the CUDA test runs on a GPU machine without ROS.
"""

import gc

import numpy as np
import pytest
import torch

from superglue_ros.engine import MatchingEngine
from superglue_ros.features import Features
from superglue_ros.ros.device_memory import release_device_memory


def orb_features(n: int, seed: int) -> Features:
    rng = np.random.default_rng(seed)
    return Features(rng.uniform([0, 0], [639, 479], (n, 2)).astype(np.float32),
                    rng.uniform(0.1, 1.0, n).astype(np.float32),
                    rng.integers(0, 256, (n, 32), dtype=np.uint8), 'orb', (640, 480))


def test_cpu_release_only_collects():
    assert release_device_memory(torch.device('cpu')) is None
    assert release_device_memory(None) is None


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason='no CUDA device: the GPU memory release is checked on a GPU machine')
def test_cuda_memory_is_given_back_after_the_model_is_dropped():
    torch.cuda.empty_cache()
    before = torch.cuda.memory_reserved()
    engine = MatchingEngine.from_weights(None, device='cuda', max_keypoints=1024)
    reference = engine.prepare(orb_features(1024, 0))
    current = engine.prepare(orb_features(1024, 1))
    result = engine.match_prepared(reference, current)
    assert len(result.index0) >= 0
    held = torch.cuda.memory_reserved()
    device = engine.device
    # What MatcherCore._cleanup drops: the engine (model), the reference keyframe's tensors.
    del engine, reference, current, result
    gc.collect()
    left = release_device_memory(device)
    print(f'CUDA reserved: {before / 2**20:.1f} MiB before, {held / 2**20:.1f} MiB with the '
          f'model and one match at 1024 keypoints, {left / 2**20:.1f} MiB after release')
    assert held > before
    # Earlier CUDA tests in the same process may leave cuBLAS workspaces reserved: the release
    # gives those back too, so less than before is fine (seen on an H200: 34 MiB -> 0).
    assert left <= before and torch.cuda.memory_allocated() == 0

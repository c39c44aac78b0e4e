# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""CUDA path (fp32 and fp16): runs only where torch sees a GPU."""

import numpy as np
import pytest
import torch

from conftest import FRAMES, shipped_weights_or_skip
from superglue_ros.engine import MatchingEngine
from superglue_ros.features import OrbExtractor

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(),
                               reason='needs a CUDA GPU (none visible to torch here)')


@needs_gpu
def test_cuda_fp32_and_fp16_agree_with_cpu():
    import cv2
    weights = shipped_weights_or_skip()
    ext = OrbExtractor(1024)
    f0, f1 = (ext(cv2.imread(str(p))) for p in (FRAMES[0], FRAMES[2]))
    cpu = MatchingEngine.from_weights(weights, device='cpu').match(f0, f1)
    gpu = MatchingEngine.from_weights(weights, device='cuda').match(f0, f1)
    half_engine = MatchingEngine.from_weights(weights, device='cuda', fp16=True)
    assert half_engine.fp16 and half_engine.device.type == 'cuda'
    half = half_engine.match(f0, f1)
    pairs = set(zip(cpu.index0.tolist(), cpu.index1.tolist()))
    assert len(pairs ^ set(zip(gpu.index0.tolist(), gpu.index1.tolist()))) <= 0.02 * len(pairs)
    overlap = len(pairs & set(zip(half.index0.tolist(), half.index1.tolist())))
    assert overlap >= 0.9 * len(pairs)
    assert np.all(np.isfinite(half.confidence))


def test_cpu_autocast_keeps_transport_in_fp32(tiny_model):
    from conftest import random_inputs
    with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16):
        out = tiny_model(random_inputs(20, 25, 256))
    assert out['log_assignment'].dtype == torch.float32

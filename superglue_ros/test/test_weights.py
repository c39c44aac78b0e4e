# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Weights files: our layout, errors that name the path, no silent architecture overrides."""

import pytest
import torch

from conftest import TINY_CONF
from superglue_ros.engine import MatchingEngine, resolve_device
from superglue_ros.weights import load_weights, WeightsError


def test_roundtrip_our_format(tiny_weights, tiny_model):
    model, meta = load_weights(tiny_weights)
    assert meta['note'] == 'random test weights'
    assert model.conf.descriptor_type == 'orb' and model.conf.input_dim == 256
    for k, v in tiny_model.state_dict().items():
        assert torch.equal(v, model.state_dict()[k])
    assert not model.training


def test_missing_and_corrupt_files_name_the_path(tmp_path):
    with pytest.raises(WeightsError, match='not found: .*nothing.pth'):
        load_weights(tmp_path / 'nothing.pth')
    bad = tmp_path / 'corrupt.pth'
    bad.write_bytes(b'not a torch file')
    with pytest.raises(WeightsError, match='cannot read weights file .*corrupt.pth'):
        load_weights(bad)
    torch.save({'weight': torch.zeros(3)}, tmp_path / 'other.pth')
    with pytest.raises(WeightsError, match='not a SuperGlue file'):
        load_weights(tmp_path / 'other.pth')


def test_overrides(tiny_weights):
    model, _ = load_weights(tiny_weights, {'match_threshold': 0.5, 'sinkhorn_iterations': 7})
    assert model.conf.match_threshold == 0.5 and model.conf.sinkhorn_iterations == 7
    with pytest.raises(WeightsError, match='descriptor_dim'):
        load_weights(tiny_weights, {'descriptor_dim': TINY_CONF['descriptor_dim'] * 2})


def test_cuda_request_falls_back_to_cpu_with_warning(tiny_weights):
    if torch.cuda.is_available():
        pytest.skip('a GPU is present: the fallback path is not reachable here')
    dev, warning = resolve_device('cuda')
    assert dev.type == 'cpu' and 'falling back to cpu' in warning
    with pytest.warns(RuntimeWarning, match='falling back to cpu'):
        engine = MatchingEngine.from_weights(tiny_weights, device='cuda', fp16=True)
    assert engine.device.type == 'cpu' and not engine.fp16
    assert resolve_device('auto')[0].type == 'cpu'
    with pytest.raises(ValueError, match='device must be'):
        resolve_device('tpu')

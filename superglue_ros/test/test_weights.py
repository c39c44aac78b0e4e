# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Weights files: our layout, the model registry, errors that name the path, safe loading."""

import os
import re
import shlex

import pytest
import torch

from conftest import shipped_weights_or_skip, TINY_CONF
from superglue_ros.engine import MatchingEngine, resolve_device
from superglue_ros.models import available_models, get_model, model_name, register_model
from superglue_ros.models.superglue import SuperGlue
from superglue_ros.weights import FORMAT, load_weights, save_weights, WeightsError


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


def test_registry_builds_models_by_name():
    assert 'superglue' in available_models()
    model = get_model('superglue', TINY_CONF)
    assert isinstance(model, SuperGlue) and model.conf.descriptor_dim == 32
    assert model_name(model) == 'superglue'
    with pytest.raises(ValueError, match="unknown model 'lightglue'.*superglue"):
        get_model('lightglue')
    with pytest.raises(ValueError, match='not a registered model'):
        model_name(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match='already registered'):
        register_model('superglue', torch.nn.Linear)


def test_weights_record_the_model_type_and_load_through_the_registry(tiny_weights):
    blob = torch.load(tiny_weights, weights_only=True)
    assert blob['model'] == 'superglue' and blob['config']['descriptor_dim'] == 32
    model, meta = load_weights(tiny_weights)
    assert isinstance(model, SuperGlue) and meta['model'] == 'superglue'


def test_files_without_a_model_type_are_superglue(tmp_path, tiny_model):
    legacy = tmp_path / 'legacy.pth'  # the layout before the registry: no 'model' key
    torch.save({'format': FORMAT, 'config': dict(vars(tiny_model.conf)),
                'state_dict': tiny_model.state_dict(), 'metadata': {}}, legacy)
    model, meta = load_weights(legacy)
    assert isinstance(model, SuperGlue) and meta['model'] == 'superglue'
    bare = tmp_path / 'official_layout.pth'  # a bare state dict, as the official files
    torch.save(SuperGlue({'descriptor_dim': 64, 'keypoint_encoder': [16, 32],
                          'gnn_layers': 1}).state_dict(), bare)
    model, meta = load_weights(bare)
    assert model.conf.descriptor_type == 'superpoint' and meta['model'] == 'superglue'
    unknown = tmp_path / 'unknown.pth'
    save_weights(unknown, tiny_model)
    blob = torch.load(unknown, weights_only=True)
    torch.save({**blob, 'model': 'lightglue'}, unknown)
    with pytest.raises(WeightsError, match="unknown.pth: unknown model 'lightglue'"):
        load_weights(unknown)


def test_shipped_weights_load_as_superglue():
    path = shipped_weights_or_skip()
    model, meta = load_weights()  # None = the shipped file
    assert isinstance(model, SuperGlue) and meta['model'] == 'superglue'
    assert meta['path'] == str(path)


class _RunsCode:
    """Unpickles into a shell command: what a malicious weights file would hold."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {shlex.quote(str(self.marker))}',)


def test_a_malicious_pickle_is_refused_and_does_not_run(tmp_path, tiny_model):
    marker = tmp_path / 'code_ran'
    path = tmp_path / 'malicious.pth'
    torch.save({'format': FORMAT, 'model': 'superglue', 'config': dict(vars(tiny_model.conf)),
                'state_dict': tiny_model.state_dict(), 'metadata': {'x': _RunsCode(marker)}},
               path)
    with pytest.raises(WeightsError, match='cannot read weights file .*malicious.pth'):
        load_weights(path)
    with pytest.raises(WeightsError):
        MatchingEngine.from_weights(path, device='cpu')
    assert not marker.exists(), 'loading the weights file ran code'
    # Control: the file is really malicious; full unpickling does run its payload.
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize('key, value, allowed', [
    ('sinkhorn_iterations', 10 ** 9, r'int in \[0, 1000\]'),
    ('gnn_layers', 200000, r'int in \[0, 64\]'),
    ('gnn_layers', '9', r'int in \[0, 64\]'),
    ('descriptor_dim', 0, r'int in \[1, 4096\]'),
    ('num_heads', 3, 'a divisor of descriptor_dim=32'),
    ('num_heads', 2.0, r'int in \[1, 64\]'),
    ('match_threshold', 1.5, r'float in \[0.0, 1.0\]'),
    ('keypoint_encoder', [16, -1], 'a list of up to 16 ints'),
    ('keypoint_geometry', 'yes', 'true or false'),
])
def test_weights_config_is_validated_with_one_line_errors(tmp_path, tiny_model, key, value,
                                                          allowed):
    config = dict(vars(tiny_model.conf), **{key: value})
    path = tmp_path / 'bad.pth'
    torch.save({'format': FORMAT, 'model': 'superglue', 'config': config,
                'state_dict': tiny_model.state_dict()}, path)
    with pytest.raises(WeightsError) as info:
        load_weights(path)
    message = str(info.value)
    assert '\n' not in message
    assert f'{key}={value!r} is invalid: allowed' in message and str(path) in message
    assert re.search(allowed, message), message


def test_weights_file_with_missing_or_unknown_entries(tmp_path, tiny_model):
    path = tmp_path / 'bad.pth'
    torch.save({'format': FORMAT, 'model': 'superglue', 'state_dict': tiny_model.state_dict()},
               path)
    with pytest.raises(WeightsError, match="the 'config' entry is missing"):
        load_weights(path)
    torch.save({'format': FORMAT, 'config': dict(vars(tiny_model.conf), layers=3),
                'state_dict': tiny_model.state_dict()}, path)
    with pytest.raises(WeightsError, match='invalid config: unknown SuperGlue config keys'):
        load_weights(path)
    with pytest.raises(WeightsError, match=r'sinkhorn_iterations=5000 is invalid'):
        load_weights(shipped_weights_or_skip(), {'sinkhorn_iterations': 5000})

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures: small seeded models, real frames, a weights file on disk."""

from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

PACKAGE = Path(__file__).resolve().parents[1] / 'superglue_ros'
FRAMES = sorted((PACKAGE / 'data' / 'tum_freiburg').glob('*.jpg'))
SHARED = Path(__file__).resolve().parents[3] / 'shared' / 'data'

TINY_CONF = {'descriptor_dim': 32, 'input_dim': 256, 'descriptor_type': 'orb',
             'keypoint_encoder': [16, 32], 'gnn_layers': 1, 'num_heads': 4,
             'sinkhorn_iterations': 20}


@pytest.fixture
def frames():
    assert len(FRAMES) >= 5, 'bundled TUM frames missing'
    return FRAMES


@pytest.fixture
def tiny_model():
    from superglue_ros.models.superglue import SuperGlue
    torch.manual_seed(0)
    return SuperGlue(TINY_CONF).eval()


@pytest.fixture
def tiny_weights(tmp_path, tiny_model):
    from superglue_ros.weights import save_weights
    path = tmp_path / 'tiny.pth'
    save_weights(path, tiny_model, {'note': 'random test weights'})
    return path


def random_inputs(m: int, n: int, dim: int, seed: int = 0, batch: int = 1):
    """Random keypoints/scores/unit descriptors in a 640x480 image (superglue-bench's pairs)."""
    from superglue_ros.tools.bench import random_pair
    return random_pair(n, dim, torch.device('cpu'), seed, m=m, batch=batch)


def shipped_weights_or_skip():
    from superglue_ros.weights import default_weights_path
    path = default_weights_path()
    if not path.is_file():
        pytest.skip(f'shipped weights missing at {path}: train them with superglue-train')
    return path


def load_state_dict_spec(path=Path(__file__).parent / 'data' / 'superglue_state_dict_spec.txt'):
    """{name: (shape, dtype)} of the official files, expanded over the 18 GNN layers."""
    spec = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith('#'):
            continue
        name, shape, dtype = line.split('\t')
        shape = tuple(int(s) for s in shape.strip('[]').split(',') if s.strip())
        dtype = getattr(torch, dtype.split('.')[-1])
        names = [name.replace('{i}', str(i)) for i in range(18)] if '{i}' in name else [name]
        for n in names:
            spec[n] = (shape, dtype)
    return spec


__all__ = ['random_inputs', 'shipped_weights_or_skip', 'load_state_dict_spec', 'TINY_CONF',
           'FRAMES', 'SHARED', 'np']


@pytest.fixture(scope='module')
def harness(request):
    """Run an in-process ROS graph on the test module's own DDS domain (its ``DOMAIN``)."""
    from ros_harness import Harness  # imported here: the torch-only tests run without rclpy
    h = Harness(request.module.DOMAIN)
    yield h
    h.close()


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """Write a small ORB weights file for node tests (ros_harness.make_weights)."""
    from ros_harness import make_weights
    return make_weights(tmp_path_factory.mktemp('weights'))

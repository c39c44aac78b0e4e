# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The SuperGlue core: optimal transport, invariances, empty input, official-file layout."""

import math

import pytest
import torch

from conftest import load_state_dict_spec, random_inputs, TINY_CONF
from superglue_ros.models.reference import reference_forward
from superglue_ros.models.superglue import (filter_matches, log_optimal_transport,
                                            merge_heads, normalize_keypoints, split_heads,
                                            SuperGlue)


@pytest.mark.parametrize('m,n', [(5, 7), (40, 23), (1, 1)])
def test_sinkhorn_marginals(m, n):
    torch.manual_seed(m * 100 + n)
    scores = torch.randn(2, m, n) * 3
    z = log_optimal_transport(scores, torch.tensor(0.5), iters=500)
    p = z.exp()  # scaled by M + N: real rows/cols carry mass 1
    assert torch.allclose(p[:, :m, :].sum(2), torch.ones(2, m), atol=1e-4)
    assert torch.allclose(p[:, :, :n].sum(1), torch.ones(2, n), atol=1e-4)
    assert torch.allclose(p[:, m, :].sum(1), torch.full((2,), float(n)), atol=1e-3)
    assert torch.allclose(p[:, :, n].sum(1), torch.full((2,), float(m)), atol=1e-3)


def test_sinkhorn_early_stop_matches_fixed_iterations():
    torch.manual_seed(0)
    scores = torch.randn(1, 300, 280) * 4
    fixed = log_optimal_transport(scores, torch.tensor(1.0), iters=100)
    early = log_optimal_transport(scores, torch.tensor(1.0), iters=100, tol=1e-6)
    assert (fixed - early).abs().max() < 1e-4


def test_normalize_keypoints_convention():
    k = torch.tensor([[[0.0, 0.0], [640.0, 480.0], [320.0, 240.0]]])
    out = normalize_keypoints(k, torch.tensor([[640.0, 480.0]]))
    s = 0.7 * 640
    expected = torch.tensor([[[-320 / s, -240 / s], [320 / s, 240 / s], [0.0, 0.0]]])
    assert torch.allclose(out, expected)


def test_interleaved_head_split():
    # Channel c -> head c % H, dimension c // H (official convention).
    x = torch.arange(8.0).view(1, 1, 8)
    heads = split_heads(x, 4)
    assert heads.shape == (1, 4, 1, 2)
    assert heads[0, :, 0].tolist() == [[0, 4], [1, 5], [2, 6], [3, 7]]
    assert torch.equal(merge_heads(heads), x)


def test_forward_shapes_and_mutual_consistency(tiny_model):
    data = random_inputs(50, 60, 256, batch=2)
    tiny_model.conf.match_threshold = 0.0
    with torch.inference_mode():
        out = tiny_model(data)
    assert out['matches0'].shape == (2, 50) and out['matches1'].shape == (2, 60)
    assert out['log_assignment'].shape == (2, 51, 61)
    for b in range(2):
        m0, m1 = out['matches0'][b], out['matches1'][b]
        assert (m0 > -1).sum() > 0
        for i, j in enumerate(m0.tolist()):
            if j > -1:
                assert m1[j] == i
        assert ((m1 > -1).sum() == (m0 > -1).sum())
    s = out['matching_scores0']
    assert ((s >= 0) & (s <= 1)).all()
    assert torch.all((s > 0) == (out['matches0'] > -1))


def test_permutation_equivariance(tiny_model):
    data = random_inputs(40, 45, 256, seed=3)
    tiny_model.conf.match_threshold = 0.0
    p0, p1 = torch.randperm(40), torch.randperm(45)
    perm = dict(data)
    for key in ('keypoints0', 'scores0'):
        perm[key] = data[key][:, p0]
    for key in ('keypoints1', 'scores1'):
        perm[key] = data[key][:, p1]
    perm['descriptors0'] = data['descriptors0'][:, :, p0]
    perm['descriptors1'] = data['descriptors1'][:, :, p1]
    with torch.inference_mode():
        a, b = tiny_model(data), tiny_model(perm)
    inv1 = torch.argsort(p1)
    expected = a['matches0'][0, p0]
    expected = torch.where(expected > -1, inv1[expected.clamp(min=0)], expected)
    assert torch.equal(b['matches0'][0], expected)
    assert torch.allclose(b['log_assignment'][0, :-1, :-1],
                          a['log_assignment'][0, :-1, :-1][p0][:, p1], atol=1e-4)


@pytest.mark.parametrize('m,n', [(0, 10), (10, 0), (0, 0)])
def test_empty_input(tiny_model, m, n):
    data = random_inputs(m, n, 256)
    out = tiny_model(data)
    assert out['matches0'].shape == (1, m) and out['matches1'].shape == (1, n)
    assert out['matching_scores0'].shape == (1, m)
    assert (out['matches0'] == -1).all() and (out['matches1'] == -1).all()


def test_image_tensor_gives_size(tiny_model):
    data = random_inputs(20, 20, 256)
    sized = dict(data)
    del sized['image_size0'], sized['image_size1']
    sized['image0'] = torch.zeros(1, 1, 480, 640)
    sized['image1'] = torch.zeros(1, 1, 480, 640)
    with torch.inference_mode():
        assert torch.allclose(tiny_model(data)['log_assignment'],
                              tiny_model(sized)['log_assignment'])


def test_filter_matches_threshold():
    z = torch.full((1, 3, 3), -10.0)
    z[0, 0, 0], z[0, 1, 1] = math.log(0.9), math.log(0.1)
    m0, m1, s0, s1 = filter_matches(z, 0.2)
    assert m0.tolist() == [[0, -1]] and m1.tolist() == [[0, -1]]  # last row/col = dustbins
    assert s0[0, 0] == pytest.approx(0.9)


def test_official_state_dict_loads_strict():
    spec = load_state_dict_spec()
    assert len(spec) == 339
    torch.manual_seed(0)
    state = {name: (torch.randn(shape) if dtype.is_floating_point
                    else torch.zeros(shape, dtype=dtype)) for name, (shape, dtype) in spec.items()}
    for name in state:
        if name.endswith('running_var'):
            state[name] = state[name].abs() + 0.5
    model = SuperGlue()
    assert set(model.state_dict()) == set(spec)
    for name, t in model.state_dict().items():
        assert tuple(t.shape) == spec[name][0], name
        assert t.dtype == spec[name][1], name
    model.load_state_dict(state, strict=True)
    assert sum(t.numel() for t in model.state_dict().values()) == 12042711


def test_official_file_conventions_match_reference(tmp_path):
    """A spec-shaped file saved as a bare state dict loads and matches the plain forward."""
    from superglue_ros.weights import load_weights
    torch.manual_seed(1)
    conf = {'gnn_layers': 2, 'sinkhorn_iterations': 50}
    src = SuperGlue(conf)
    for mod in src.modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.normal_(0, 0.1)
            mod.running_var.uniform_(0.5, 2.0)
    path = tmp_path / 'superglue_outdoor.pth'
    torch.save(src.state_dict(), path)
    model, meta = load_weights(path, {'sinkhorn_iterations': 50})
    assert model.conf.descriptor_type == 'superpoint' and model.conf.gnn_layers == 2
    data = random_inputs(64, 70, 256, seed=5)
    with torch.inference_mode():
        ours = model(data)
        ref = reference_forward(model, data)
    assert (ours['log_assignment'] - ref['log_assignment']).abs().max() < 1e-4
    assert torch.equal(ours['matches0'], ref['matches0'])


def test_unknown_config_key_rejected():
    with pytest.raises(ValueError, match='unknown SuperGlue config keys'):
        SuperGlue({'descriptor_dims': 3})


def test_descriptor_check_errors(tiny_model):
    with pytest.raises(ValueError, match="expect 'orb'"):
        tiny_model.check_descriptors('sift', 128)
    with pytest.raises(ValueError, match='dimension 128'):
        tiny_model.check_descriptors('orb', 128)
    assert TINY_CONF['input_dim'] == 256


def model_with_large_biases(dim: int, seed: int) -> SuperGlue:
    """Make a 2-layer eval model whose GNN biases and BatchNorm statistics are far from zero.

    With them large, a wrong fold of a bias or of BatchNorm into the composed inference
    weights changes the output visibly.
    """
    torch.manual_seed(seed)
    model = SuperGlue({'descriptor_dim': dim, 'gnn_layers': 2, 'num_heads': 4,
                       'keypoint_encoder': [16, 32], 'sinkhorn_iterations': 50}).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith('bias') and name.startswith('gnn'):
                param.normal_(0, 0.5)
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.normal_(0, 0.3)
                mod.running_var.uniform_(0.5, 2.0)
    return model


@pytest.mark.parametrize('sizes', [(60, 60), (60, 75)])
def test_inference_layers_equal_plain_forward_with_large_biases(sizes):
    """Folded merge, dropped key bias and moved value bias: same output as the plain math.

    Equal sizes run both images batched (self: one QKV GEMM; cross: swapped source),
    unequal ones per image. Biases are made large so that a wrong fold would show.
    """
    model = model_with_large_biases(64, seed=4)
    data = random_inputs(*sizes, 64, seed=6)
    with torch.inference_mode():
        ours = model(data)
        ref = reference_forward(model, data)
        fast_scores = model.score_matrix(data)
    with torch.no_grad():
        torch.set_grad_enabled(True)  # eval with gradients: the unfolded layer path
        try:
            plain_scores = model.score_matrix(data)
        finally:
            torch.set_grad_enabled(False)
    scale = plain_scores.abs().max()
    assert (fast_scores - plain_scores.detach()).abs().max() < 1e-5 * scale
    assert (ours['log_assignment'] - ref['log_assignment']).abs().max() < 1e-4
    assert torch.equal(ours['matches0'], ref['matches0'])


def test_inference_weight_cache_follows_parameter_changes():
    """Cached composed weights never go stale: load_state_dict, in-place edits, .double()."""
    torch.manual_seed(5)
    conf = {'descriptor_dim': 32, 'gnn_layers': 1, 'keypoint_encoder': [16],
            'sinkhorn_iterations': 20}
    model, other = SuperGlue(conf).eval(), SuperGlue(conf).eval()
    data = random_inputs(40, 40, 32, seed=7)

    def plain_scores(m, inputs):
        with torch.no_grad():
            torch.set_grad_enabled(True)  # eval with gradients: the uncached layer path
            try:
                return m.score_matrix(inputs).detach()
            finally:
                torch.set_grad_enabled(False)

    with torch.inference_mode():
        first = model.score_matrix(data)
    model.load_state_dict(other.state_dict())
    with torch.no_grad():
        second = model.score_matrix(data)  # built under inference_mode, used outside it
    assert not torch.allclose(first, second)
    assert torch.allclose(second, plain_scores(other, data), atol=1e-5)
    with torch.no_grad():
        model.gnn.layers[0].attn.merge.bias.add_(1.0)
        model.gnn.layers[0].mlp[1].running_mean.add_(0.5)  # a buffer
        third = model.score_matrix(data)
    assert torch.allclose(third, plain_scores(model, data), atol=1e-5)
    model.double()
    with torch.inference_mode():
        fourth = model.score_matrix({k: v.double() for k, v in data.items()})
    assert fourth.dtype == torch.float64
    assert torch.allclose(fourth.float(), third, atol=1e-4)


def _flat_path(monkeypatch):
    """Route every GNN layer through the flat-QKV inference path (CUDA, autocast, export)."""
    import superglue_ros.models.superglue as superglue_module
    monkeypatch.setattr(superglue_module, 'by_heads', lambda x: False)


@pytest.mark.parametrize('dim,sizes,padded,batch', [
    (64, (60, 60), False, 1),  # D/H = 16: the attention scale is folded into the queries
    (128, (60, 60), True, 2),  # D/H = 32: the scale (not a power of two) stays in the kernel
    (64, (60, 75), False, 1),  # unequal sizes: per-image layers, no pair update
])
def test_cpu_layer_path_equals_flat_path(monkeypatch, dim, sizes, padded, batch):
    """The CPU path (per-head projections, no concat, in-place residual) = the flat path.

    Both images batched (self and cross pair updates) or per image, with padding masks and a
    batch of pairs; biases and BatchNorm statistics made large so that a wrong fold shows.
    """
    model = model_with_large_biases(dim, seed=8)
    data = random_inputs(*sizes, dim, seed=9, batch=batch)
    if padded:
        data['mask0'] = torch.ones(batch, sizes[0], dtype=torch.bool)
        data['mask1'] = torch.ones(batch, sizes[1], dtype=torch.bool)
        data['mask0'][0, 45:] = False
        data['mask1'][-1, 50:] = False
    with torch.inference_mode():
        ours, ours_scores = model(data), model.score_matrix(data)
    with monkeypatch.context() as patch:
        _flat_path(patch)
        with torch.inference_mode():
            flat, flat_scores = model(data), model.score_matrix(data)
    assert (ours_scores - flat_scores).abs().max() < 1e-5 * flat_scores.abs().max()
    real = flat['log_assignment'].isfinite()  # padded rows and columns are -inf in both
    assert torch.equal(ours['log_assignment'].isfinite(), real)
    assert (ours['log_assignment'] - flat['log_assignment'])[real].abs().max() < 1e-4
    assert torch.equal(ours['matches0'], flat['matches0'])
    assert torch.equal(ours['matches1'], flat['matches1'])


def test_query_scale_is_folded_only_where_exact():
    from superglue_ros.models.superglue import folded_query_scale
    assert folded_query_scale(64) == 0.125  # the paper configuration's D/H
    assert folded_query_scale(16) == 0.25 and folded_query_scale(4) == 0.5
    assert folded_query_scale(32) == 1.0 and folded_query_scale(128) == 1.0


def test_model_made_under_inference_mode_runs_uncached():
    """Parameters made under inference_mode have no version counter: no cache, same output."""
    torch.manual_seed(10)
    conf = {'descriptor_dim': 32, 'gnn_layers': 1, 'keypoint_encoder': [16],
            'sinkhorn_iterations': 20}
    model = SuperGlue(conf).eval()
    data = random_inputs(40, 40, 32, seed=11)
    with torch.inference_mode():
        inside = SuperGlue(conf).eval()
        inside.load_state_dict(model.state_dict())
        expected, got = model.score_matrix(data), inside.score_matrix(data)
        with torch.no_grad():
            inside.gnn.layers[0].attn.merge.bias.add_(1.0)  # no version bump in this mode
        changed = inside.score_matrix(data)
    assert torch.equal(got, expected)
    assert not torch.allclose(changed, expected)
    assert all(not layer._inference_cache for layer in inside.gnn.layers)

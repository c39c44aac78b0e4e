# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The inference Sinkhorn (mat-vecs with absorbed potentials) equals the log-domain one.

Also at score magnitudes where a plain exp-domain Sinkhorn under- or overflows (peaky trained
weights, here scaled weights), and for padded batches.
"""

import pytest
import torch

from conftest import random_inputs, TINY_CONF
from superglue_ros.models import get_model, superglue
from superglue_ros.models.superglue import (filter_matches, log_optimal_transport,
                                            log_sinkhorn_matvec)


def float64_reference(scores, bin_score, iters):
    return log_optimal_transport(scores.double(), bin_score.double(), iters, fast=False)


@pytest.mark.parametrize('scale', [1.0, 10.0, 100.0, 1000.0])
def test_fast_equals_log_domain_at_any_magnitude(scale):
    """Closer to the float64 log-domain result than the float32 log-domain loop itself."""
    torch.manual_seed(0)
    scores = torch.randn(2, 150, 170) * scale
    bins = torch.tensor(1.0)
    truth = float64_reference(scores, bins, 100)
    fast = log_optimal_transport(scores, bins, 100, fast=True)
    slow = log_optimal_transport(scores, bins, 100, fast=False)
    assert torch.isfinite(fast).all()
    err_fast = (fast.double() - truth).abs().max().item()
    err_slow = (slow.double() - truth).abs().max().item()
    assert err_fast <= max(2 * err_slow, 1e-4), (err_fast, err_slow)
    if scale <= 100:
        assert torch.equal(filter_matches(fast, 0.2)[0], filter_matches(truth.float(), 0.2)[0])


def test_scaled_weights_model_output_equals_log_domain_reference():
    """A model with peaky scores: inference output (fast path) = float64 log-domain output."""
    torch.manual_seed(0)
    model = get_model('superglue', {**TINY_CONF, 'input_dim': 32, 'descriptor_type': 'generic',
                                    'sinkhorn_iterations': 100}).eval()
    with torch.no_grad():
        model.final_proj.weight.mul_(40.0)
    data = random_inputs(120, 140, 32)
    with torch.inference_mode():
        fast = model(data)
    assert fast['log_assignment'][:, :-1, :-1].abs().max() > 100, 'scores not large'
    reference = model.double()
    with torch.no_grad():  # grad mode picks the plain log-domain loop
        torch.set_grad_enabled(True)
        try:
            slow = reference({k: v.double() for k, v in data.items()})
        finally:
            torch.set_grad_enabled(False)
    z_fast, z_slow = fast['log_assignment'].double(), slow['log_assignment'].detach()
    finite = z_slow > -50  # entries with any probability mass
    assert (z_fast - z_slow)[finite].abs().max() < 1e-3 * max(1.0, z_slow[finite].abs().max())
    assert torch.equal(fast['matches0'], slow['matches0'])


def test_absorption_and_recovery_paths_are_exact():
    """Tiny absorption threshold (absorb every iteration) gives the same result."""
    torch.manual_seed(1)
    scores = torch.randn(1, 80, 90) * 50
    bins = torch.tensor(0.5)
    default = log_optimal_transport(scores, bins, 60, fast=True)
    b, m, n = scores.shape
    couplings = torch.cat([torch.cat([scores, bins.expand(b, m, 1)], -1),
                           bins.expand(b, 1, n + 1)], 1)
    norm = -torch.tensor(float(m + n)).log()
    log_mu = torch.cat([norm.expand(m), (torch.tensor(float(n)).log() + norm)[None]])[None]
    log_nu = torch.cat([norm.expand(n), (torch.tensor(float(m)).log() + norm)[None]])[None]
    every = log_sinkhorn_matvec(couplings, log_mu, log_nu, 60, absorb_above=0.0) - norm
    assert (default - every).abs().max() < 1e-3


def test_padded_batch_equals_each_item_alone():
    torch.manual_seed(2)
    sizes = [(30, 40), (50, 20), (50, 40)]
    scores = torch.full((3, 50, 40), 123.0)  # padding values must not matter
    mask0 = torch.zeros(3, 50, dtype=torch.bool)
    mask1 = torch.zeros(3, 40, dtype=torch.bool)
    alone = []
    for i, (m, n) in enumerate(sizes):
        s = torch.randn(1, m, n) * 5
        scores[i, :m, :n] = s[0]
        mask0[i, :m], mask1[i, :n] = True, True
        alone.append(log_optimal_transport(s, torch.tensor(1.0), 50, fast=True)[0])
    batched = log_optimal_transport(scores, torch.tensor(1.0), 50, mask0=mask0, mask1=mask1)
    for i, (m, n) in enumerate(sizes):
        z = batched[i]
        assert torch.allclose(z[:m, :n], alone[i][:m, :n], atol=1e-4)
        assert torch.allclose(z[:m, -1], alone[i][:m, -1], atol=1e-4)  # dustbin column
        assert torch.allclose(z[-1, :n], alone[i][-1, :n], atol=1e-4)  # dustbin row
        assert torch.isinf(z[m:-1]).all() and torch.isinf(z[:, n:-1]).all()


@pytest.mark.parametrize('blocks', [2, 3, 7])
def test_row_blocks_equal_one_block(monkeypatch, blocks):
    """Column sums over per-thread row blocks (zero-padded rows) = one block, any count."""
    torch.manual_seed(3)
    scores = torch.randn(1, 200, 180) * 4
    bins = torch.tensor(1.0)
    monkeypatch.setattr(superglue, '_row_blocks', lambda *args: 1)
    one = log_optimal_transport(scores, bins, 100, fast=True)
    monkeypatch.setattr(superglue, '_row_blocks', lambda *args: blocks)
    split = log_optimal_transport(scores, bins, 100, fast=True)
    peaky = log_optimal_transport(scores * 40, bins, 100, fast=True)  # absorptions, recoveries
    assert (split - one).abs().max() < 1e-4
    truth = float64_reference(scores * 40, bins, 100)
    assert (peaky.double() - truth)[truth > -50].abs().max() < 1e-3 * truth.abs().max()
    assert torch.equal(filter_matches(split, 0.2)[0], filter_matches(one, 0.2)[0])


def test_zero_iterations_return_the_scores():
    scores = torch.randn(1, 20, 30)
    fast = log_optimal_transport(scores, torch.tensor(1.0), 0, fast=True)
    assert torch.allclose(fast, log_optimal_transport(scores, torch.tensor(1.0), 0))

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""A straightforward channels-first forward pass over a SuperGlue's own modules.

This is the same math written the plain way: Conv1d + BatchNorm1d modules called as such on
[B x C x N] tensors, one einsum attention with the documented interleaved head split
(channels viewed as [D/H x H]), and a fixed number of log-Sinkhorn iterations. It is the
baseline the optimised model is checked against (tests) and timed against (superglue-bench).
"""

from __future__ import annotations

from typing import Dict, Optional

import torch

from .superglue import filter_matches, normalize_keypoints, SuperGlue


def _mlp(seq: torch.nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    for layer in seq:
        x = layer(x)  # Conv1d / BatchNorm1d / ReLU on [B x C x N]
    return x


def _attention(attn, query: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    b, d, _ = query.shape
    h = attn.num_heads
    q, k, v = (layer(x).view(b, d // h, h, -1)
               for layer, x in zip(attn.proj, (query, source, source)))
    prob = torch.softmax(torch.einsum('bdhn,bdhm->bhnm', q, k) / (d // h) ** 0.5, dim=-1)
    x = torch.einsum('bhnm,bdhm->bdhn', prob, v)
    return attn.merge(x.contiguous().view(b, d, -1))


def _sinkhorn(scores: torch.Tensor, alpha: torch.Tensor, iters: int) -> torch.Tensor:
    b, m, n = scores.shape
    one = scores.new_tensor(1)
    ms, ns = m * one, n * one
    couplings = torch.cat([torch.cat([scores, alpha.expand(b, m, 1)], -1),
                           torch.cat([alpha.expand(b, 1, n), alpha.expand(b, 1, 1)], -1)], 1)
    norm = -(ms + ns).log()
    log_mu = torch.cat([norm.expand(m), ns.log()[None] + norm]).expand(b, -1)
    log_nu = torch.cat([norm.expand(n), ms.log()[None] + norm]).expand(b, -1)
    u, v = torch.zeros_like(log_mu), torch.zeros_like(log_nu)
    for _ in range(iters):
        u = log_mu - torch.logsumexp(couplings + v.unsqueeze(1), dim=2)
        v = log_nu - torch.logsumexp(couplings + u.unsqueeze(2), dim=1)
    return couplings + u.unsqueeze(2) + v.unsqueeze(1) - norm


def reference_forward(model: SuperGlue, data: Dict[str, torch.Tensor],
                      iterations: Optional[int] = None) -> Dict[str, torch.Tensor]:
    """Run the plain forward pass; same inputs and outputs as SuperGlue.forward (M, N > 0)."""
    c = model.conf
    desc0, desc1 = data['descriptors0'], data['descriptors1']
    if model.input_proj is not None:
        desc0, desc1 = model.input_proj(desc0), model.input_proj(desc1)
    k0 = normalize_keypoints(data['keypoints0'], data['image_size0'])
    k1 = normalize_keypoints(data['keypoints1'], data['image_size1'])
    enc = model.kenc.encoder
    desc0 = desc0 + _mlp(enc, torch.cat([k0.transpose(1, 2), data['scores0'][:, None]], 1))
    desc1 = desc1 + _mlp(enc, torch.cat([k1.transpose(1, 2), data['scores1'][:, None]], 1))
    for layer, name in zip(model.gnn.layers, model.gnn.names):
        src0, src1 = (desc1, desc0) if name == 'cross' else (desc0, desc1)
        delta0 = _mlp(layer.mlp, torch.cat([desc0, _attention(layer.attn, desc0, src0)], 1))
        delta1 = _mlp(layer.mlp, torch.cat([desc1, _attention(layer.attn, desc1, src1)], 1))
        desc0, desc1 = desc0 + delta0, desc1 + delta1
    mdesc0, mdesc1 = model.final_proj(desc0), model.final_proj(desc1)
    scores = torch.einsum('bdn,bdm->bnm', mdesc0, mdesc1) / c.descriptor_dim ** 0.5
    z = _sinkhorn(scores, model.bin_score, c.sinkhorn_iterations if iterations is None
                  else iterations)
    m0, m1, s0, s1 = filter_matches(z, c.match_threshold)
    return {'matches0': m0, 'matches1': m1, 'matching_scores0': s0, 'matching_scores1': s1,
            'log_assignment': z}

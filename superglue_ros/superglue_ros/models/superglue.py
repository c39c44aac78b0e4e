# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""SuperGlue: learned feature matching with a graph neural network and optimal transport.

Written from the paper (Sarlin et al., "SuperGlue: Learning Feature Matching with Graph Neural
Networks", CVPR 2020) and from the interface facts of the official weight files (parameter
names, shapes and numerical conventions), so that those files load unchanged with
``load_state_dict(strict=True)``.

Layout: pure functions first, then small modules, then the model. Internally every tensor is
token-major ``[B x N x C]`` and every 1x1 convolution of the official layout is applied as a
plain matmul with its squeezed weight; the parameters keep the official Conv1d shapes.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F

# Descriptor types a model can be trained for; the adapters live in superglue_ros.descriptors.
DESCRIPTOR_TYPES = ('orb', 'sift', 'superpoint', 'generic')


def normalize_keypoints(kpts: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Center pixel keypoints [B x N x 2] on the image and scale by 0.7 * max(W, H).

    ``size`` is [B x 2] as (width, height).
    """
    size = size.to(kpts)
    center = size / 2
    scaling = size.max(-1, keepdim=True).values * 0.7
    return (kpts - center[:, None, :]) / scaling[:, None, :]


def keypoint_geometry(angles: torch.Tensor, sizes: torch.Tensor,
                      reference_size: float = 31.0) -> torch.Tensor:
    """ORB-style orientation [deg] and size [px] [B x N] -> [B x N x 3] (cos, sin, log scale).

    A negative angle (OpenCV's "not computed") gives cos = sin = 0. The scale is the natural
    log of size / reference_size: 0 at the finest ORB pyramid level, ~0.18 per 1.2x level.
    """
    rad = angles * (math.pi / 180.0)  # = deg2rad, which ONNX has no operator for
    has = (angles >= 0).to(angles.dtype)
    log_scale = torch.log(sizes.clamp(min=1e-3) / reference_size)
    return torch.stack([torch.cos(rad) * has, torch.sin(rad) * has, log_scale], -1)


def conv1x1(layer: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """Apply a 1x1 Conv1d to token-major x [B x N x C_in] as one matmul -> [B x N x C_out]."""
    return F.linear(x, layer.weight.squeeze(-1), layer.bias)


def batch_norm_tokens(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """BatchNorm1d over token-major x [B x N x C]; statistics over all B * N tokens."""
    b, n, c = x.shape
    return bn(x.reshape(b * n, c)).reshape(b, n, c)


def log_sinkhorn(scores: torch.Tensor, log_mu: torch.Tensor, log_nu: torch.Tensor,
                 iters: int, tol: float = 0.0, check_every: int = 10) -> torch.Tensor:
    """Log-domain Sinkhorn: scaled log transport plan with log-marginals log_mu/log_nu.

    scores: [B x M x N], log_mu: [B x M], log_nu: [B x N]. u and v start at zero; each
    iteration updates u then v. With ``tol > 0`` the loop stops early once the row marginals
    (the only ones not exact right after a v update) deviate from log_mu by less than ``tol``
    in log space, checked every ``check_every`` iterations.
    """
    u = torch.zeros_like(log_mu)
    v = torch.zeros_like(log_nu)
    for it in range(iters):
        u = log_mu - torch.logsumexp(scores + v[:, None, :], dim=2)
        v = log_nu - torch.logsumexp(scores + u[:, :, None], dim=1)
        if tol > 0 and (it + 1) % check_every == 0 and it + 1 < iters:
            row = torch.logsumexp(scores + u[:, :, None] + v[:, None, :], dim=2)
            if (row - log_mu).abs().max() < tol:
                break
    return scores + u[:, :, None] + v[:, None, :]


def log_optimal_transport(scores: torch.Tensor, bin_score: torch.Tensor, iters: int,
                          tol: float = 0.0, fast: bool = False,
                          mask0: Optional[torch.Tensor] = None,
                          mask1: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Partial assignment with dustbins: [B x M x N] scores -> [B x M+1 x N+1] log-plan.

    Real rows/columns carry mass 1, the dustbin row N and the dustbin column M; everything is
    divided by M + N (``norm``) for the iterations and multiplied back at the end, so that
    exp() of the output is a probability per keypoint. ``fast`` (inference only, no
    gradients) evaluates the same iterations with mat-vecs, see log_sinkhorn_matvec.

    mask0 [B x M], mask1 [B x N] (bool, True = real keypoint; inference only) mark padding
    of a batch with unequal keypoint counts: each item is solved with its own M and N, and
    padded rows/columns come out as -inf.
    """
    b, m, n = scores.shape
    couplings = scores.new_empty(b, m + 1, n + 1)
    couplings[:, :m, :n] = scores
    couplings[:, :m, n] = bin_score
    couplings[:, m] = bin_score
    if mask0 is None and mask1 is None:
        one = scores.new_tensor(1)
        ms, ns = (m * one)[None], (n * one)[None]
    else:
        mask0 = scores.new_ones((b, m), dtype=torch.bool) if mask0 is None else mask0
        mask1 = scores.new_ones((b, n), dtype=torch.bool) if mask1 is None else mask1
        ms, ns = mask0.sum(1).to(scores), mask1.sum(1).to(scores)  # [B]
        # The dustbins stay real; padded rows/columns get no mass and no coupling.
        rows = torch.cat([mask0, mask0.new_ones((b, 1))], 1)
        cols = torch.cat([mask1, mask1.new_ones((b, 1))], 1)
        couplings = couplings.masked_fill(~(rows[:, :, None] & cols[:, None, :]),
                                          float('-inf'))
    norm = -(ms + ns).log()  # [B] (or [1])
    log_mu = torch.cat([norm[:, None].expand(b, m), (ns.log() + norm)[:, None].expand(b, 1)], 1)
    log_nu = torch.cat([norm[:, None].expand(b, n), (ms.log() + norm)[:, None].expand(b, 1)], 1)
    valid = None if mask0 is None else (rows, cols)
    # At least fp32, also under CUDA autocast (which would run the mat-vecs in fp16).
    dtype = torch.promote_types(couplings.dtype, torch.float32)
    with torch.autocast(device_type=scores.device.type, enabled=False):
        couplings = couplings.to(dtype)
        log_mu, log_nu = log_mu.to(dtype), log_nu.to(dtype)
        if fast or valid is not None:
            return log_sinkhorn_matvec(couplings, log_mu, log_nu, iters, tol, valid,
                                       offset=-norm.to(dtype))
        z = log_sinkhorn(couplings, log_mu, log_nu, iters, tol)
    return z - norm.to(dtype)[:, None, None]


def _row_blocks(batch: int, rows: int, device: torch.device) -> int:
    """Row blocks of the Sinkhorn kernel for its column sums: one per CPU thread.

    On CPU, both mat-vecs of an iteration then split the kernel by rows the same way (the
    row sums' gemv splits its output rows across threads, the column sums run one block per
    thread), so each core re-reads its own part from its own L2 cache instead of the whole
    kernel from L3: 2.1 MB per core at 1024 keypoints, where a core has 2 MB. A column-sum
    gemv (K^T x) splits the columns instead, which costs 1.5x per iteration (superglue-bench
    --sections sinkhorn). Blocks under 64 rows are not worth their extra reduction. A batch
    (B > 1) keeps one block per item (its column-sum bmm runs over the items).
    """
    if device.type != 'cpu' or batch > 1:
        return 1
    return max(1, min(torch.get_num_threads(), rows // 64))


def log_sinkhorn_matvec(scores: torch.Tensor, log_mu: torch.Tensor, log_nu: torch.Tensor,
                        iters: int, tol: float = 0.0,
                        valid: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
                        absorb_above: float = 30.0, offset: Optional[torch.Tensor] = None
                        ) -> torch.Tensor:
    """Inference Sinkhorn: the log-domain iterations of ``log_sinkhorn`` with mat-vecs.

    Same fixed point, same update order, same iteration count. The potentials are split as
    u = a + log(su), v = b + log(sv): a, b are absorbed into the kernel
    K = exp(scores + a + b), taken once, and the scalings su, sv follow the plain Sinkhorn
    updates su = mu / (K sv), sv = nu / (K^T su), so an iteration costs two [M x N] mat-vecs
    and two divisions instead of two log-sum-exps over exp().

    Stability at any score magnitude (peaky trained attention, scaled weights): a starts as
    minus the row maxima, so K <= 1 with a 1 in every row: the first half-step (v = 0) is
    then exact and no sum can overflow; whenever a scaling leaves
    [exp(-absorb_above), exp(absorb_above)] it is absorbed into a, b (a new K); an
    iteration whose sums under- or overflow all the same is redone in the log domain and
    absorbed. Large magnitudes cost a few extra exp() passes, never a fall-back to the loop.

    ``valid`` = (rows [B x M], cols [B x N]) bool masks of padded batches: padded entries of
    ``scores`` must be -inf; they get no mass and come out as -inf. ``offset`` [B] is added
    to the result (saves the caller a pass over it).
    """
    rows, cols = valid if valid is not None else (None, None)
    bsz, m, n = scores.shape

    def where_valid(x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        return x if mask is None else torch.where(mask, x, x.new_zeros(()))

    def exact_iteration(v_in: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        u_out = where_valid(log_mu - torch.logsumexp(scores + v_in[:, None, :], dim=2), rows)
        v_out = where_valid(log_nu - torch.logsumexp(scores + u_out[:, :, None], dim=1), cols)
        return u_out, v_out

    # Padded rows/columns: no mass, and a sum of 1 in place of their empty one, so their
    # scaling is exactly 0 (not 0/0) and reads as 1 in the range check.
    pad_rows = None if rows is None else (~rows).to(scores.dtype)
    pad_cols = None if cols is None else (~cols).to(scores.dtype)
    mu = where_valid(log_mu.exp(), rows)
    nu = where_valid(log_nu.exp(), cols)

    if iters == 0:
        return scores if offset is None else scores + offset[:, None, None]
    # Preallocated buffers, written with out=: an iteration allocates nothing. The kernel's
    # rows are padded with zero rows to a multiple of the block count (their scaling stays 0).
    blocks = _row_blocks(bsz, m, scores.device)
    block_rows = -(-m // blocks)
    kernel_rows = scores.new_empty(bsz, blocks * block_rows, n)
    kernel_rows[:, m:] = 0.0
    kernel = kernel_rows[:, :m]
    kernel_blocks = kernel_rows.view(bsz * blocks, block_rows, n)
    # Two scaling states [sv | su | padding su = 0], used in turn: an iteration reads the
    # previous one (kept for a recovery) and writes the other; one range check covers both.
    states = scores.new_zeros(2, bsz, n + blocks * block_rows)
    row_sums, column_sums = scores.new_empty(bsz, m), scores.new_empty(bsz, n)
    partial_sums = scores.new_empty(bsz * blocks, 1, n)
    extremes = scores.new_empty(2)
    pad_check = None if valid is None else torch.cat([pad_cols, pad_rows], 1)
    # Views of each state, made once (each slice costs as much as a small op).
    sv_of, su_of = [s[:, :n] for s in states], [s[:, n:n + m] for s in states]
    checked_of = [s[:, :n + m] for s in states]
    su_blocks_of = [s[:, n:].reshape(bsz * blocks, 1, block_rows) if bsz == 1 else None
                    for s in states]
    single_cpu = bsz == 1 and scores.device.type == 'cpu'
    if single_cpu:  # 1-D views for torch.mv, made once
        kernel_2d, row_sums_1d = kernel[0], row_sums[0]
        sv_vectors = [sv[0] for sv in sv_of]
        partial_rows = partial_sums.view(blocks, n)

    def kernel_times(i: int) -> torch.Tensor:  # K sv -> row_sums, sv of state i
        sv = sv_of[i]
        if single_cpu:
            torch.mv(kernel_2d, sv_vectors[i], out=row_sums_1d)
        elif kernel.device.type == 'cpu':
            # CPU bmm of B > 1 mat-vecs takes a batched GEMM path 1.6x slower than B gemv
            # calls (measured at 1025^2, superglue-bench).
            for k, x, out in zip(kernel, sv, row_sums):
                torch.mv(k, x, out=out)
        else:
            torch.bmm(kernel, sv[..., None], out=row_sums[..., None])
        return row_sums

    def times_kernel(i: int) -> torch.Tensor:  # su^T K -> column_sums, su of state i
        su_blocks = su_blocks_of[i]
        if su_blocks is None:
            su_blocks = states[i][:, n:].reshape(bsz * blocks, 1, block_rows)
        if blocks == 1:
            torch.bmm(su_blocks, kernel_blocks, out=column_sums[:, None])
        elif single_cpu and blocks == 2:
            torch.bmm(su_blocks, kernel_blocks, out=partial_sums)
            torch.add(partial_rows[0], partial_rows[1], out=column_sums[0])
        else:
            torch.bmm(su_blocks, kernel_blocks, out=partial_sums)
            torch.sum(partial_sums.view(bsz, blocks, n), 1, out=column_sums)
        return column_sums

    def new_kernel(a: torch.Tensor, b: Optional[torch.Tensor]) -> None:
        torch.add(scores, a[:, :, None], out=kernel)
        if b is not None:
            kernel.add_(b[:, None, :])
        kernel.exp_()

    # a = minus the row maxima (0 for fully padded rows), b = 0, sv = 1: iteration 0's su
    # update is the exact first half-step.
    a = where_valid(scores.amax(2).neg_(), rows)
    b = torch.zeros_like(log_nu)
    new_kernel(a, None)
    previous, current = 0, 1
    states[previous, :, :n + m] = 1.0
    recoveries, log_domain = 0, False
    for it in range(iters):
        if log_domain:  # see below: u, v are a, b (su = sv = 1)
            a, b = exact_iteration(b)
            continue
        sums = kernel_times(previous)
        if pad_rows is not None:
            sums.add_(pad_rows)
        torch.div(mu, sums, out=su_of[current])
        sums = times_kernel(current)
        if pad_cols is not None:
            sums.add_(pad_cols)
        torch.div(nu, sums, out=sv_of[current])
        # One range check per iteration (the only host sync).
        checked = checked_of[current]
        if pad_check is not None:
            checked = checked + pad_check
        torch.aminmax(checked, out=(extremes[0], extremes[1]))
        low, high = extremes.tolist()
        if not (low > 0.0 and high < math.inf):  # a sum under- or overflowed (or NaN)
            a, b = exact_iteration(absorbed_potential(b, sv_of[previous], cols))
            checked_of[current].fill_(1.0)
            recoveries += 1
            # Potentials that outrun float range every few iterations (extreme scores):
            # the rest in the log domain, without kernels that would not survive.
            log_domain = recoveries >= 3 and 4 * recoveries >= it + 1
            if not log_domain:
                new_kernel(a, b)
        elif max(math.log(high), -math.log(low)) > absorb_above and it + 1 < iters:
            a = absorbed_potential(a, su_of[current], rows)
            b = absorbed_potential(b, sv_of[current], cols)
            checked_of[current].fill_(1.0)
            new_kernel(a, b)
        previous, current = current, previous
        if tol > 0 and not log_domain and it + 1 < iters and (it + 1) % 10 == 0:
            # sv was just updated, so columns are exact; rows measure convergence.
            row = su_of[previous] * kernel_times(previous)
            error = where_valid((row / mu).log(), rows).abs().max()
            if error < tol:
                break
    row_potential = absorbed_potential(a, su_of[previous], rows)
    if offset is not None:
        row_potential += offset[:, None]
    # The result goes into the kernel's memory: a fresh 4 MB tensor costs more in page
    # faults than the pass that fills it.
    torch.add(scores, row_potential[:, :, None], out=kernel)
    return kernel.add_(absorbed_potential(b, sv_of[previous], cols)[:, None, :])


def absorbed_potential(potential: torch.Tensor, scale: torch.Tensor,
                       mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Return potential + log(scale), 0 where mask is False (padding)."""
    total = potential + scale.log()
    return total if mask is None else torch.where(mask, total, total.new_zeros(()))


def filter_matches(log_assignment: torch.Tensor, threshold: float
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mutual nearest neighbours over the M x N block whose probability exceeds threshold.

    Returns matches0 [B x M], matches1 [B x N] (-1 = unmatched) and matching_scores0/1.
    """
    scores = log_assignment[:, :-1, :-1]
    max0, max1 = scores.max(2), scores.max(1)
    m0, m1 = max0.indices, max1.indices
    arange0 = torch.arange(m0.shape[1], device=m0.device)[None]
    arange1 = torch.arange(m1.shape[1], device=m1.device)[None]
    mutual0 = arange0 == m1.gather(1, m0)
    mutual1 = arange1 == m0.gather(1, m1)
    zero = scores.new_tensor(0)
    mscores0 = torch.where(mutual0, max0.values.exp(), zero)
    mscores1 = torch.where(mutual1, mscores0.gather(1, m1), zero)
    valid0 = mutual0 & (mscores0 > threshold)
    valid1 = mutual1 & valid0.gather(1, m1)
    matches0 = torch.where(valid0, m0, m0.new_tensor(-1))
    matches1 = torch.where(valid1, m1, m1.new_tensor(-1))
    return matches0, matches1, torch.where(valid0, mscores0, zero), \
        torch.where(valid1, mscores1, zero)


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[B x N x D] -> [B x H x N x D/H] with the official interleaved split.

    Channel c belongs to head c % H and dimension c // H.
    """
    b, n, d = x.shape
    return x.view(b, n, d // heads, heads).permute(0, 3, 1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """Inverse of split_heads: [B x H x N x D/H] -> [B x N x D], interleaved order."""
    b, h, n, dh = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, n, dh * h)


def folded_query_scale(dim_per_head: int) -> float:
    """Share of the attention scale 1 / sqrt(D/H) that may be folded into the queries.

    All of it where multiplying by it is exact (a power of two: D/H = 4^k, as 64 in the paper
    configuration), so that the scores keep their bits; otherwise none (1.0), and the
    attention kernel applies it.
    """
    scale = dim_per_head ** -0.5
    return scale if math.frexp(scale)[0] == 0.5 else 1.0


def by_heads(x: torch.Tensor) -> bool:
    """Whether the GNN layers take their per-head CPU path for x (inference).

    Not under autocast (its out= GEMMs would not autocast), on CUDA (measured there on the
    flat path) or while tracing (the ONNX export).
    """
    return x.device.type == 'cpu' and not torch.is_autocast_enabled('cpu') \
        and not torch.jit.is_tracing()


# ATen's fused add + ReLU (one pass instead of two); absent from some builds.
_FUSED_ADD_RELU = getattr(torch.ops.aten, '_add_relu_', None)


def add_relu_(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Add bias to x and apply ReLU, in place (in one pass where ATen has the fused op)."""
    if _FUSED_ADD_RELU is None:
        return x.add_(bias).relu_()
    return _FUSED_ADD_RELU(x, bias)


def project_heads(x: torch.Tensor, heads: torch.Tensor) -> torch.Tensor:
    """Project tokens x [B x N x D] with K head blocks [K x D x D/H] -> [B x K x N x D/H].

    One batched GEMM per item, whose batch reads the item's tokens K times through a stride-0
    view, so each head's block is written contiguously. The CPU attention kernel reads keys
    and values in this layout 4-7 % faster at 1024-2048 keypoints than as column slices of
    one [N x KD/H] GEMM output (no faster at 512 and below; superglue-bench, stages).
    """
    b, n, d = x.shape
    k, _, dim_per_head = heads.shape
    out = x.new_empty(b, k, n, dim_per_head)
    for i in range(b):
        torch.bmm(x[i].expand(k, n, d), heads, out=out[i])
    return out


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
           source_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Multi-head attention of the CPU path -> messages [B x N x D], head-major channels.

    q [B x H x N x D/H] comes with the attention scale folded in where folded_query_scale
    allows it; k, v [B x H x M x D/H]; source_mask [B x M] (True = real).
    """
    b, h, n, dim_per_head = q.shape
    mask = None if source_mask is None else source_mask[:, None, None, :]
    folded = folded_query_scale(dim_per_head) != 1.0
    message = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                             scale=1.0 if folded else None)
    return message.transpose(1, 2).reshape(b, n, h * dim_per_head)


class MLP(nn.Sequential):
    """Conv1d(1x1) stack with BatchNorm + ReLU between layers, none after the last."""

    def __init__(self, channels: Sequence[int]):
        layers: List[nn.Module] = []
        for i in range(1, len(channels)):
            layers.append(nn.Conv1d(channels[i - 1], channels[i], kernel_size=1, bias=True))
            if i < len(channels) - 1:
                layers.append(nn.BatchNorm1d(channels[i]))
                layers.append(nn.ReLU())
        super().__init__(*layers)

    def folded(self) -> List[Tuple[torch.Tensor, torch.Tensor, bool]]:
        """(weight [out x in], bias, relu) per conv with its BatchNorm folded in (eval only).

        Recomputed per call: it costs O(C^2) against the O(N C^2) matmul it replaces, and it
        can never go stale after load_state_dict or an optimiser step.
        """
        out = []
        layers = list(self)
        for i, layer in enumerate(layers):
            if not isinstance(layer, nn.Conv1d):
                continue
            w, b = layer.weight.squeeze(-1), layer.bias
            bn = layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(bn, nn.BatchNorm1d):
                scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
                w = w * scale[:, None]
                b = (b - bn.running_mean) * scale + bn.bias
                out.append((w, b, True))
            else:
                out.append((w, b, False))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Token-major [B x N x C_in] -> [B x N x C_out]."""
        if not self.training:
            for w, b, relu in self.folded():
                x = F.linear(x, w, b)
                if relu:
                    x = torch.relu_(x)
            return x
        for layer in self:
            if isinstance(layer, nn.Conv1d):
                x = conv1x1(layer, x)
            elif isinstance(layer, nn.BatchNorm1d):
                x = batch_norm_tokens(layer, x)
            else:
                x = layer(x)
        return x


class KeypointEncoder(nn.Module):
    """Lifts (x', y', score) into the descriptor space with an MLP.

    With ``geometry_dim > 0`` the MLP also reads per-keypoint geometry (ORB orientation and
    scale, see keypoint_geometry) after the score.
    """

    def __init__(self, feature_dim: int, channels: Sequence[int], geometry_dim: int = 0):
        super().__init__()
        self.encoder = MLP([3 + geometry_dim, *channels, feature_dim])
        nn.init.constant_(self.encoder[-1].bias, 0.0)

    def forward(self, kpts: torch.Tensor, scores: torch.Tensor,
                geometry: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Encode kpts [B x N x 2] (normalised), scores [B x N], geometry [B x N x G]."""
        inputs = [kpts, scores[..., None]]
        if geometry is not None:
            inputs.append(geometry)
        return self.encoder(torch.cat(inputs, -1))


def head_major_order(feature_dim: int, heads: int) -> torch.Tensor:
    """Channel permutation from the official interleaved head split to head-major order.

    Position j = h * (D/H) + i of the permuted projection output holds channel i * H + h
    (head h, dimension i), so that [B x N x D] views as [B x N x H x D/H] with unit stride in
    the last axis: the fused attention kernels need that (the interleaved view has stride H
    there, and PyTorch then falls back to its unfused math path, 7x slower on CPU at 1024).
    """
    j = torch.arange(feature_dim)
    dim_per_head = feature_dim // heads
    return (j % dim_per_head) * heads + j // dim_per_head


class MultiHeadAttention(nn.Module):
    """Multi-head dot-product attention with query/key/value projections and a merge."""

    def __init__(self, num_heads: int, feature_dim: int):
        super().__init__()
        assert feature_dim % num_heads == 0, 'feature_dim must be divisible by num_heads'
        self.num_heads = num_heads
        self.merge = nn.Conv1d(feature_dim, feature_dim, kernel_size=1)
        self.proj = nn.ModuleList(
            [nn.Conv1d(feature_dim, feature_dim, kernel_size=1) for _ in range(3)])
        # Not part of the state dict: official files load unchanged.
        self.register_buffer('head_major', head_major_order(feature_dim, num_heads),
                             persistent=False)

    def forward(self, query: torch.Tensor, source: torch.Tensor,
                source_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Attend from query [B x N x D] to source [B x M x D] -> message [B x N x D].

        source_mask [B x M] (bool, True = real) leaves padded source tokens out.
        """
        # The projections' output rows and the merge's input columns are permuted to
        # head-major order (an O(D^2) gather per call, like the folded BatchNorm): same
        # math as the official interleaved split, in the layout the fused kernel takes.
        order = self.head_major
        w = [layer.weight.squeeze(-1)[order] for layer in self.proj]
        b = [layer.bias[order] for layer in self.proj]
        d, h = query.shape[-1], self.num_heads
        # One GEMM for all projections that read the same tensor.
        if query is source:
            q, k, v = F.linear(query, torch.cat(w), torch.cat(b)).split(d, -1)
        else:
            q = F.linear(query, w[0], b[0])
            k, v = F.linear(source, torch.cat(w[1:]), torch.cat(b[1:])).split(d, -1)
        q, k, v = (t.unflatten(-1, (h, d // h)).transpose(1, 2) for t in (q, k, v))
        # Fused kernel; scaling is 1/sqrt(D/H) as in the paper.
        mask = None if source_mask is None else source_mask[:, None, None, :]
        message = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        message = message.transpose(1, 2).flatten(2)  # [B x N x D], head-major
        return F.linear(message, self.merge.weight.squeeze(-1)[:, order], self.merge.bias)


class AttentionalPropagation(nn.Module):
    """One GNN layer: x <- x + MLP([x ; attention(x, source)])."""

    def __init__(self, feature_dim: int, num_heads: int):
        super().__init__()
        self.attn = MultiHeadAttention(num_heads, feature_dim)
        self.mlp = MLP([feature_dim * 2, feature_dim * 2, feature_dim])
        nn.init.constant_(self.mlp[-1].bias, 0.0)
        # Per path: (parameters, their keys, composed weights) of inference_weights; no state
        # dict entry.
        self._inference_cache: Dict[bool, Tuple[list, list, Dict[str, torch.Tensor]]] = {}

    def forward(self, x: torch.Tensor, source: torch.Tensor,
                source_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Residual update of x [B x N x D] from source [B x M x D] (mask [B x M])."""
        if not self.training and not torch.is_grad_enabled():
            return self.inference_update(x, source, source_mask)
        message = self.attn(x, source, source_mask)
        return self.mlp(torch.cat([x, message], -1))

    def inference_weights(self, by_heads: bool = False) -> Dict[str, torch.Tensor]:
        """Compose the layer's linear maps for inference (eval, no gradients).

        - The merge projection is folded into the MLP's first layer (a linear map of a linear
          map; BatchNorm is folded too), so it costs no GEMM of its own.
        - The key bias is dropped: it shifts every score of a query by the same q.b_k, which
          softmax cancels. The value bias passes through attention unchanged (each row of
          the attention weights sums to 1), so it joins the MLP's first bias.
        - Weights are transposed to [in x out] (row-major), the layout the GEMM runs
          fastest with, and the projections are in head-major order (see head_major_order).
        - by_heads (the CPU path, _update_by_heads): the MLP's first weight in its x and
          message parts, the query carrying the attention scale where that is exact
          (folded_query_scale), and keys and values as per-head blocks [2H x D x D/H].

        Cached per path: composing them costs 1.5-2 ms per layer at D = 256 (transposed
        copies), as much as a tenth of the layer at 1024 keypoints. The cache is keyed on
        every parameter and buffer of the layer (identity, version counter, storage, dtype,
        device), so load_state_dict, an optimiser step, in-place edits and .to() all
        invalidate it. Parameters made under torch.inference_mode have no version counter:
        their weights are composed on every call instead, never from a stale cache.
        """
        sources = list(self.parameters()) + list(self.buffers())
        if any(t.is_inference() for t in sources):
            return self._compose_inference_weights(by_heads)
        key = [(t._version, t.data_ptr(), t.dtype, t.device) for t in sources]
        cached = self._inference_cache.get(by_heads)
        if cached is not None and cached[1] == key and all(
                a is b for a, b in zip(cached[0], sources)):
            return cached[2]
        weights = self._compose_inference_weights(by_heads)
        self._inference_cache[by_heads] = (sources, key, weights)
        return weights

    def _compose_inference_weights(self, by_heads: bool) -> Dict[str, torch.Tensor]:
        attn, d = self.attn, self.attn.merge.weight.shape[0]
        h = attn.num_heads
        order = attn.head_major
        wq, wk, wv = (layer.weight.squeeze(-1)[order] for layer in attn.proj)
        query_bias, value_bias = attn.proj[0].bias[order], attn.proj[2].bias[order]
        (w1, b1, _), (w2, b2, _) = self.mlp.folded()
        merge = attn.merge.weight.squeeze(-1)[:, order]
        w1_message = w1[:, d:] @ merge
        weights = {
            'mlp1_bias': b1 + w1[:, d:] @ (attn.merge.bias + merge @ value_bias),
            'mlp2': w2.t().contiguous(),
            'mlp2_bias': b2,
        }
        if not by_heads:
            weights.update({
                'qkv': torch.cat([wq, wk, wv]).t().contiguous(),
                'query_bias': query_bias,
                'mlp1': torch.cat([w1[:, :d], w1_message], 1).t().contiguous(),
            })
            return weights
        scale = folded_query_scale(d // h)
        weights.update({
            'query': (wq * scale).t().contiguous(),
            'query_bias': query_bias * scale,
            'mlp1_x': w1[:, :d].t().contiguous(),
            'kv_heads': torch.cat([wk, wv]).view(2 * h, d // h, d).transpose(1, 2).contiguous(),
            'mlp1_message': w1_message.t().contiguous(),
        })
        return weights

    def inference_update(self, x: torch.Tensor, source: torch.Tensor,
                         source_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute forward's result for inference from inference_weights (same math).

        No merge GEMM and no bias pass except the query's; cached weights. On the CPU in the
        model's own dtype the layout is the one measured fastest there (_update_by_heads);
        under autocast, on CUDA and while tracing (ONNX export), one flat QKV GEMM.
        """
        if by_heads(x):
            return self._update_by_heads(x, source, source_mask)
        return self._update_flat(x, source, source_mask)

    def _update_flat(self, x: torch.Tensor, source: torch.Tensor,
                     source_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """inference_update with one flat QKV GEMM (autocast, CUDA, tracing)."""
        weights = self.inference_weights()
        b, n, d = x.shape
        h = self.attn.num_heads
        tokens = x.reshape(b * n, d)
        if source is x:
            q, k, v = torch.mm(tokens, weights['qkv']).view(b, n, 3 * d).split(d, -1)
        else:
            q = torch.mm(tokens, weights['qkv'][:, :d]).view(b, n, d)
            k, v = torch.mm(source.reshape(-1, d), weights['qkv'][:, d:]).view(
                b, -1, 2 * d).split(d, -1)
        q = q + weights['query_bias'].to(q.dtype)  # (autocast: the GEMM's dtype)
        q, k, v = (t.unflatten(-1, (h, d // h)).transpose(1, 2) for t in (q, k, v))
        mask = None if source_mask is None else source_mask[:, None, None, :]
        message = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        message = message.transpose(1, 2).reshape(b * n, d)  # head-major, a view on CPU
        # One GEMM over [x ; message]: two accumulating into one output measured no faster,
        # and an in-place addmm_ would escape autocast (mixed dtypes under fp16/bf16).
        hidden = torch.addmm(weights['mlp1_bias'], torch.cat([tokens, message], 1),
                             weights['mlp1']).relu_()
        return torch.addmm(weights['mlp2_bias'], hidden, weights['mlp2']).view(b, n, d)

    def pair_update_(self, x: torch.Tensor, cross: bool,
                     mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Update both images of a batch in place, for inference: x <- x + forward(x, source).

        x [2B x N x D] holds the images 0 and then the images 1 of B pairs, contiguous; the
        source is x itself (self) or each item's partner (cross). mask [2B x N] marks each
        item's source tokens as real, in the same order as the source.
        """
        if by_heads(x):
            return self._update_by_heads(x, x, mask, cross_pairs=cross, residual=True)
        b = x.shape[0] // 2
        source = torch.cat([x[b:], x[:b]]) if cross else x
        return x.add_(self.inference_update(x, source, mask))

    def _update_by_heads(self, x: torch.Tensor, source: torch.Tensor,
                         source_mask: Optional[torch.Tensor], cross_pairs: bool = False,
                         residual: bool = False) -> torch.Tensor:
        """inference_update (or, with residual, x updated in place) on the CPU.

        Layouts chosen by measurement on this path (superglue-bench, stages):
        - The queries stay token-major [N x D], so the attention output comes out as
          [N x D] too (query-major heads make it [H x N x D/H], and a copy).
        - Keys and values are written as contiguous per-head blocks (project_heads).
        - [x ; message] times the MLP's first weight is two GEMMs into one contiguous
          output, the second in place: no concatenation. (One GEMM for the queries and the
          x part together measured 11-19 % slower over the MLP: the strided output.)
        - cross_pairs (source is x, of 2B items): each half of the batch attends to the
          other half where it lies, in two attention calls, without a swapped copy.
        - The first bias joins the ReLU's pass; with residual, the last GEMM accumulates
          into x itself (no delta tensor, no bias copy, no separate addition).
        """
        weights = self.inference_weights(by_heads=True)
        b, n, d = x.shape
        h = self.attn.num_heads
        # (A view when updating in place: x itself must change.)
        tokens = x.view(b * n, d) if residual else x.reshape(b * n, d)
        q = torch.mm(tokens, weights['query']).add_(weights['query_bias'])
        q = q.view(b, n, h, d // h).transpose(1, 2)
        hidden = torch.mm(tokens, weights['mlp1_x'])
        k, v = project_heads(source, weights['kv_heads']).split(h, 1)
        everything = slice(0, b)
        parts = [(slice(0, b // 2), slice(b // 2, b)), (slice(b // 2, b), slice(0, b // 2))] \
            if cross_pairs else [(everything, everything)]
        for i, j in parts:  # query items, source items
            mask = None if source_mask is None else source_mask[i]
            message = attend(q[i], k[j], v[j], mask)
            hidden[i.start * n:i.stop * n].addmm_(message.view(-1, d), weights['mlp1_message'])
        add_relu_(hidden, weights['mlp1_bias'])
        if residual:
            tokens.addmm_(hidden, weights['mlp2']).add_(weights['mlp2_bias'])
            return x
        return torch.addmm(weights['mlp2_bias'], hidden, weights['mlp2']).view(b, n, d)


class AttentionalGNN(nn.Module):
    """Alternating self- and cross-attention layers (even index = self, odd = cross)."""

    def __init__(self, feature_dim: int, layer_names: Sequence[str], num_heads: int):
        super().__init__()
        self.names = list(layer_names)
        self.layers = nn.ModuleList(
            [AttentionalPropagation(feature_dim, num_heads) for _ in self.names])

    def forward(self, desc0: torch.Tensor, desc1: torch.Tensor,
                mask0: Optional[torch.Tensor] = None, mask1: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Update both images' descriptors [B x N x D] simultaneously in every layer.

        mask0/mask1 [B x M] / [B x N] (bool, True = real keypoint) mark padding; padded
        tokens are never attended to (their own outputs are meaningless).
        """
        b = desc0.shape[0]
        layers = list(zip(self.layers, self.names))
        if desc1.shape[0] != b:
            # One image 1 for a batch of image 0 (a keyframe against a window): its layers
            # before the first cross layer see only itself, so they run once, not B times.
            while layers and layers[0][1] == 'self':
                layer = layers.pop(0)[0]
                desc0 = desc0 + layer(desc0, desc0, mask0)
                desc1 = desc1 + layer(desc1, desc1, mask1)
            desc1 = desc1.expand(b, -1, -1).contiguous()
            mask1 = None if mask1 is None else mask1.expand(b, -1)
        if not self.training and desc0.shape == desc1.shape:
            # Inference with equal keypoint counts: both images in one batch, so every GEMM
            # is twice as large and Python overhead is halved (BatchNorm uses running stats,
            # so batching changes nothing numerically).
            x = torch.cat([desc0, desc1])
            self_mask = cross_mask = None
            if mask0 is not None or mask1 is not None:
                m0 = desc0.new_ones(desc0.shape[:2], dtype=torch.bool) if mask0 is None \
                    else mask0
                m1 = desc1.new_ones(desc1.shape[:2], dtype=torch.bool) if mask1 is None \
                    else mask1
                self_mask, cross_mask = torch.cat([m0, m1]), torch.cat([m1, m0])
            for layer, name in layers:
                mask = cross_mask if name == 'cross' else self_mask
                if not torch.is_grad_enabled():  # x is this loop's own tensor
                    x = layer.pair_update_(x, name == 'cross', mask)
                elif name == 'cross':
                    x = x + layer(x, torch.cat([x[b:], x[:b]]), mask)
                else:
                    x = x + layer(x, x, mask)
            return x[:b], x[b:]
        for layer, name in layers:
            if name == 'cross':
                delta0, delta1 = layer(desc0, desc1, mask1), layer(desc1, desc0, mask0)
            else:
                delta0, delta1 = layer(desc0, desc0, mask0), layer(desc1, desc1, mask1)
            desc0, desc1 = desc0 + delta0, desc1 + delta1
        return desc0, desc1


class SuperGlue(nn.Module):
    """SuperGlue feature matcher (keypoint encoder, attentional GNN, optimal transport)."""

    default_conf = {
        'descriptor_dim': 256,  # D: width of the GNN and of the matching descriptors
        # Raw descriptor dimension after the adapter; None = descriptor_dim. When it differs
        # (e.g. 256 ORB bits into a D=128 model) a learned 1x1 input projection is added.
        'input_dim': None,
        'descriptor_type': 'superpoint',  # orb | sift | superpoint | generic (adapters)
        'keypoint_encoder': [32, 64, 128, 256],  # hidden channels of the keypoint MLP
        # Also encode ORB orientation and scale (needs angles0/1 and sizes0/1 as input).
        'keypoint_geometry': False,
        'gnn_layers': 9,  # number of (self, cross) layer pairs: 9 -> 18 layers
        'num_heads': 4,
        'sinkhorn_iterations': 100,
        'sinkhorn_tolerance': 0.0,  # > 0: stop early once row marginals are this close (log)
        'match_threshold': 0.2,  # minimum assignment probability of a mutual match
    }

    def __init__(self, conf: Optional[Dict] = None):
        super().__init__()
        unknown = set(conf or {}) - set(self.default_conf)
        if unknown:
            raise ValueError(f'unknown SuperGlue config keys: {sorted(unknown)}; '
                             f'valid keys: {sorted(self.default_conf)}')
        self.conf = c = SimpleNamespace(**{**self.default_conf, **(conf or {})})
        if c.descriptor_type not in DESCRIPTOR_TYPES:
            raise ValueError(f'descriptor_type must be one of {DESCRIPTOR_TYPES}, '
                             f'got {c.descriptor_type!r}')
        if c.input_dim is None:
            c.input_dim = c.descriptor_dim
        d = c.descriptor_dim
        if c.input_dim != d:
            self.input_proj = nn.Conv1d(c.input_dim, d, kernel_size=1)
        else:
            self.input_proj = None
        self.kenc = KeypointEncoder(d, c.keypoint_encoder, 3 if c.keypoint_geometry else 0)
        self.gnn = AttentionalGNN(d, ['self', 'cross'] * c.gnn_layers, c.num_heads)
        self.final_proj = nn.Conv1d(d, d, kernel_size=1, bias=True)
        self.register_parameter('bin_score', nn.Parameter(torch.tensor(1.0)))

    def check_descriptors(self, descriptor_type: str, dim: int) -> None:
        """Raise a ValueError naming the mismatch when descriptors don't fit this model."""
        c = self.conf
        if descriptor_type != c.descriptor_type:
            raise ValueError(
                f'descriptor type {descriptor_type!r} does not match the loaded weights, '
                f'which expect {c.descriptor_type!r}: use a front-end that produces '
                f'{c.descriptor_type} descriptors or load weights trained for '
                f'{descriptor_type}')
        if dim != c.input_dim:
            raise ValueError(
                f'descriptor dimension {dim} does not match the loaded weights, which expect '
                f'{c.input_dim} (after the {c.descriptor_type} adapter)')

    @staticmethod
    def _image_size(data: Dict, i: int) -> torch.Tensor:
        key = f'image_size{i}'
        if key in data:
            return torch.as_tensor(data[key]).reshape(-1, 2)
        img = data.get(f'image{i}')
        if img is None:
            raise KeyError(f'SuperGlue input needs {key} [B x 2] (width, height) or image{i}')
        h, w = img.shape[-2:]
        return torch.tensor([[w, h]], dtype=torch.float32).expand(img.shape[0], 2)

    def score_matrix(self, data: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Keypoint encoder, GNN and final projection: matching scores [B x M x N].

        Same inputs as forward (M, N > 0); the part of the model before optimal transport
        (also what the ONNX export traces).
        """
        kpts0, kpts1 = data['keypoints0'], data['keypoints1']
        mask0, mask1 = data.get('mask0'), data.get('mask1')
        desc0 = data['descriptors0'].transpose(1, 2)
        desc1 = data['descriptors1'].transpose(1, 2)
        if self.input_proj is not None:
            desc0, desc1 = conv1x1(self.input_proj, desc0), conv1x1(self.input_proj, desc1)
        k0 = normalize_keypoints(kpts0, self._image_size(data, 0).to(kpts0.device))
        k1 = normalize_keypoints(kpts1, self._image_size(data, 1).to(kpts1.device))
        g0 = g1 = None
        if self.conf.keypoint_geometry:
            for key in ('angles0', 'sizes0', 'angles1', 'sizes1'):
                if key not in data:
                    raise KeyError(f'these weights encode keypoint orientation and scale: the '
                                   f'input needs {key} (ORB angle [deg] / size [px])')
            g0 = keypoint_geometry(data['angles0'].to(k0), data['sizes0'].to(k0))
            g1 = keypoint_geometry(data['angles1'].to(k1), data['sizes1'].to(k1))
        desc0 = desc0 + self.kenc(k0, data['scores0'].to(k0), g0)
        desc1 = desc1 + self.kenc(k1, data['scores1'].to(k1), g1)
        desc0, desc1 = self.gnn(desc0, desc1, mask0, mask1)  # (broadcasts image 1's batch)
        mdesc0, mdesc1 = conv1x1(self.final_proj, desc0), conv1x1(self.final_proj, desc1)
        return torch.einsum('bmd,bnd->bmn', mdesc0, mdesc1) / math.sqrt(
            self.conf.descriptor_dim)

    def forward(self, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Match two sets of keypoints.

        Input:
            keypoints0: [B x M x 2], keypoints1: [B x N x 2] in pixels (x, y)
            scores0: [B x M], scores1: [B x N] detector confidences
            descriptors0: [B x C x M], descriptors1: [B x C x N] adapted descriptors
            image_size0/1: [B x 2] (width, height), or image0/1: [B x 1 x H x W]
            angles0/1, sizes0/1: [B x M] / [B x N] ORB orientation [deg] and size [px]; only
                read when conf.keypoint_geometry
            mask0, mask1 (optional, inference only): [B x M] / [B x N] bool, True = real
                keypoint, for batches padded to a common count; padded ones never match
            Image 1 may have batch size 1 with image 0's B > 1: it is encoded once and
            matched against every image 0 (one keyframe against a window of references).
        Output:
            matches0: [B x M] index into keypoints1 or -1; matches1: [B x N]
            matching_scores0: [B x M], matching_scores1: [B x N] in [0, 1]
            log_assignment: [B x M+1 x N+1] (last row/column = dustbins)
        """
        kpts0, kpts1 = data['keypoints0'], data['keypoints1']
        b, m, n = kpts0.shape[0], kpts0.shape[1], kpts1.shape[1]
        mask0, mask1 = data.get('mask0'), data.get('mask1')
        if (mask0 is not None or mask1 is not None) and torch.is_grad_enabled():
            raise ValueError('mask0/mask1 (padded batches) are supported for inference only '
                             '(torch.inference_mode or torch.no_grad)')
        if m == 0 or n == 0:
            return {
                'matches0': kpts0.new_full((b, m), -1, dtype=torch.long),
                'matches1': kpts1.new_full((b, n), -1, dtype=torch.long),
                'matching_scores0': kpts0.new_zeros((b, m)),
                'matching_scores1': kpts1.new_zeros((b, n)),
                'log_assignment': kpts0.new_zeros((b, m + 1, n + 1)),
            }
        scores = self.score_matrix(data)
        # Optimal transport in fp32 even under autocast: logsumexp over ~1e3 terms in fp16 is
        # too coarse for the 0.2 probability threshold.
        log_assignment = log_optimal_transport(
            scores.float(), self.bin_score.float(), self.conf.sinkhorn_iterations,
            self.conf.sinkhorn_tolerance, fast=not torch.is_grad_enabled(),
            mask0=mask0, mask1=None if mask1 is None else mask1.expand(b, -1))
        matches0, matches1, mscores0, mscores1 = filter_matches(
            log_assignment, self.conf.match_threshold)
        return {
            'matches0': matches0,
            'matches1': matches1,
            'matching_scores0': mscores0,
            'matching_scores1': mscores1,
            'log_assignment': log_assignment,
        }

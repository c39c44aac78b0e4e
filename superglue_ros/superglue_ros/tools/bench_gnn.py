# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Where the GNN's time goes, and the paper configuration at identical output.

Part of ``superglue-bench`` (sections ``stages`` and ``paper``). Every comparison runs
interleaved (A, B, A, B, ...) in one process, since this kind of machine drifts by +-25 %
between runs, and FLOP rates are given against an fp32 matmul peak measured between the same
repetitions.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F


def interleaved(fns: Dict[str, Callable[[], object]], reps: int, warmup: int = 1
                ) -> Dict[str, List[float]]:
    """Seconds per call of each function, called in turn ``reps`` times after a warm-up."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def peak_sampler(n: int = 2048) -> Callable[[], None]:
    """One fp32 matmul of n^3 (2 n^3 FLOP) to sample the machine's peak between reps.

    The peak of a table is the best of these samples (noise only lowers a sample): square
    fp32 torch.mm at the same thread count, in the same run, interleaved with what it rates.
    """
    a, b = torch.randn(n, n), torch.randn(n, n)
    return lambda: torch.mm(a, b)


def layer_flops(n: int, d: int) -> Dict[str, float]:
    """Count the FLOPs of one GNN layer's stages for both images (N keypoints each).

    These are the model's FLOPs (the paper's layer). The inference path folds the merge
    into the MLP, so it executes all but the merge's.
    """
    return {'projections q,k,v': 2 * 3 * 2 * n * d * d, 'attention': 2 * 4 * n * n * d,
            'merge': 2 * 2 * n * d * d, 'message MLP': 2 * 12 * n * d * d}


def stage_table(model, n: int, reps: int = 5) -> List[Dict]:
    """Time each stage of one GNN layer (and the encoder, projection, OT) at N keypoints.

    Both images batched, as the model runs them. Rows marked "now" are what the CPU
    inference path runs (AttentionalPropagation._update_by_heads, in place as the GNN calls
    it), "flat" the flat-QKV inference path it replaced on the CPU (still the path under
    autocast, on CUDA and in the ONNX export), "plain" the unfolded training-time layer. The
    attention rows also time the official interleaved view through SDPA (PyTorch falls back
    to its unfused math path for it) and plain bmm + softmax. The last row bounds the layer:
    its attention as measured now, every other FLOP at the matmul peak.
    """
    from ..models.superglue import (
        add_relu_, attend, log_optimal_transport, merge_heads, project_heads, split_heads)
    c = model.conf
    d, h = c.descriptor_dim, c.num_heads
    layer = model.gnn.layers[0]
    attn = layer.attn
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, n, d, generator=g)
    scratch = x.clone()
    tokens = x.reshape(2 * n, d)
    kpts, scores_in = torch.rand(2, n, 2, generator=g) - 0.5, torch.rand(2, n, generator=g)
    order = attn.head_major
    w = torch.cat([p.weight.squeeze(-1)[order] for p in attn.proj])
    bias = torch.cat([p.bias[order] for p in attn.proj])
    w_sep = [p.weight.squeeze(-1) for p in attn.proj]
    b_sep = [p.bias for p in attn.proj]
    with torch.inference_mode():
        flat = layer.inference_weights()
        heads = layer.inference_weights(by_heads=True)
        q, k, v = (t.unflatten(-1, (h, d // h)).transpose(1, 2)
                   for t in F.linear(x, w, bias).split(d, -1))
        qi, ki, vi = (split_heads(F.linear(x, wi, bi), h) for wi, bi in zip(w_sep, b_sep))
        q_rows = torch.mm(tokens, heads['query']).view(2, n, h, d // h).transpose(1, 2)
        k_heads, v_heads = project_heads(x, heads['kv_heads']).split(h, 1)
        heads_out = F.scaled_dot_product_attention(q, k, v)  # [B x H x N x D/H]
        message = heads_out.transpose(1, 2).flatten(2)
        both = torch.cat([x, message], -1)
        m_scores = torch.randn(1, n, n, generator=g) * 3
        merge_w = attn.merge.weight.squeeze(-1)[:, order]
        flat_message = message.reshape(2 * n, d)
        hidden_now = torch.mm(tokens, heads['mlp1_x'])

        def plain_attention():
            s = torch.matmul(q, k.transpose(-1, -2)) * (d // h) ** -0.5
            return torch.matmul(s.softmax(-1), v)

        def mlp_flat():
            hidden = torch.addmm(flat['mlp1_bias'], torch.cat([tokens, flat_message], 1),
                                 flat['mlp1']).relu_()
            return torch.addmm(flat['mlp2_bias'], hidden, flat['mlp2'])

        def mlp_now():  # the x part came with the query GEMM
            # (Accumulates into hidden_now and scratch call after call: the timing is the
            # same, and a handful of repetitions stays far from overflow.)
            hidden = hidden_now.addmm_(flat_message, heads['mlp1_message'])
            add_relu_(hidden, heads['mlp1_bias'])
            return scratch.view(2 * n, d).addmm_(hidden, heads['mlp2']).add_(
                heads['mlp2_bias'])

        def plain_layer():
            with torch.enable_grad():  # eval with gradients: the plain path
                return x + layer(x, x)

        def final_and_scores():
            md = F.linear(x, model.final_proj.weight.squeeze(-1), model.final_proj.bias)
            return torch.einsum('bmd,bnd->bmn', md[:1], md[1:]) / math.sqrt(d)

        fns = {
            'keypoint encoder': lambda: model.kenc(kpts, scores_in),
            'projections: q, and MLP x part (now)': lambda: (
                torch.mm(tokens, heads['query']), torch.mm(tokens, heads['mlp1_x'])),
            'projections: k, v per head (now)': lambda: project_heads(x, heads['kv_heads']),
            'projections q,k,v: one GEMM (flat)': lambda: torch.mm(tokens, flat['qkv']),
            'projections q,k,v: F.linear': lambda: F.linear(x, w, bias),
            'projections q,k,v: 3 GEMMs': lambda: [F.linear(x, wi, bi)
                                                   for wi, bi in zip(w_sep, b_sep)],
            'attention: SDPA, q rows, k/v per head (now)': lambda: attend(
                q_rows, k_heads, v_heads),
            'attention: SDPA on flat-GEMM slices (flat)': lambda: F.scaled_dot_product_attention(
                q, k, v).transpose(1, 2).reshape(2 * n, d),
            'attention: SDPA on interleaved view': lambda: merge_heads(
                F.scaled_dot_product_attention(qi, ki, vi)),
            'attention: plain bmm + softmax': plain_attention,
            'merge GEMM (folded away)': lambda: F.linear(message, merge_w, attn.merge.bias),
            'concat [x ; message] (flat)': lambda: torch.cat([x, message], -1),
            'message MLP, in place into x (now)': mlp_now,
            'message MLP incl. concat (flat)': mlp_flat,
            'message MLP, BN folded (plain)': lambda: layer.mlp(both),
            'whole layer, in place (now)': lambda: layer.pair_update_(scratch.copy_(x), False),
            'whole layer (flat)': lambda: x + layer._update_flat(x, x),
            'whole layer (plain)': plain_layer,
            'composing the inference weights (now; once, cached)':
                lambda: layer._compose_inference_weights(True),
            'final projection + scores': final_and_scores,
            f'Sinkhorn, {c.sinkhorn_iterations} iterations (mat-vec)':
                lambda: log_optimal_transport(m_scores, model.bin_score,
                                              c.sinkhorn_iterations, fast=True),
            'peak sample (2048^3 matmul)': peak_sampler(),
        }
        times = interleaved(fns, reps)
    peak = 2 * 2048 ** 3 / np.min(times['peak sample (2048^3 matmul)'])
    flops = layer_flops(n, d)
    tokens_flop = 2 * 2 * n * d * d  # one [2N x D] x [D x D] GEMM
    flop_of = {
        'projections: q, and MLP x part (now)': 3 * tokens_flop,
        'projections: k, v per head (now)': 2 * tokens_flop,
        'projections q,k,v: one GEMM (flat)': flops['projections q,k,v'],
        'projections q,k,v: F.linear': flops['projections q,k,v'],
        'projections q,k,v: 3 GEMMs': flops['projections q,k,v'],
        'attention: SDPA, q rows, k/v per head (now)': flops['attention'],
        'attention: SDPA on flat-GEMM slices (flat)': flops['attention'],
        'attention: SDPA on interleaved view': flops['attention'],
        'attention: plain bmm + softmax': flops['attention'],
        'merge GEMM (folded away)': flops['merge'],
        'message MLP, in place into x (now)': 4 * tokens_flop,  # message and second GEMMs
        'message MLP incl. concat (flat)': flops['message MLP'],
        'message MLP, BN folded (plain)': flops['message MLP'],
        # Model FLOPs: the merge's are counted although the inference paths fold it away.
        'whole layer, in place (now)': sum(flops.values()),
        'whole layer (flat)': sum(flops.values()),
        'whole layer (plain)': sum(flops.values()),
        'final projection + scores': 2 * 2 * n * d * d + 2 * n * n * d,
    }
    rows = []
    for name, t in times.items():
        if name.startswith('peak'):
            continue
        ms = float(np.median(t) * 1e3)
        row = {'stage': name, 'keypoints': n, 'median_ms': ms}
        if name in flop_of:
            row['gflops_per_s'] = flop_of[name] / (ms / 1e3) / 1e9
            row['pct_of_peak'] = 100.0 * flop_of[name] / (ms / 1e3) / peak
        rows.append(row)
    # What the layer could reach with this attention kernel if everything else ran at peak.
    attention_s = float(np.median(times['attention: SDPA, q rows, k/v per head (now)']))
    executed_rest = sum(flops.values()) - flops['attention'] - flops['merge']
    bound_s = attention_s + executed_rest / peak
    rows.append({'stage': 'bound: attention (now) as measured, all else at peak',
                 'keypoints': n, 'median_ms': bound_s * 1e3,
                 'gflops_per_s': sum(flops.values()) / bound_s / 1e9,
                 'pct_of_peak': 100.0 * sum(flops.values()) / bound_s / peak})
    rows.append({'stage': 'matmul peak (best interleaved 2048^3 sample)', 'keypoints': n,
                 'gflops_per_s': peak / 1e9})
    return rows


def print_stage_table(rows: List[Dict], label: str) -> None:
    print(f'\nGNN stages, {label} (one layer, both images; interleaved, median):')
    sizes = sorted({r['keypoints'] for r in rows})
    stages = list(dict.fromkeys(r['stage'] for r in rows))
    print(f'{"stage":50}' + ''.join(f'{f"N={n}":>18}' for n in sizes))
    for stage in stages:
        cells = []
        for n in sizes:
            r = next((r for r in rows if r['stage'] == stage and r['keypoints'] == n), None)
            if r is None:
                cells.append(f'{"":>18}')
            elif 'median_ms' not in r:
                cells.append(f'{r["gflops_per_s"]:12.1f} GF/s')
            elif 'pct_of_peak' in r:
                cells.append(f'{r["median_ms"]:8.2f} ms {r["pct_of_peak"]:4.0f}%')
            else:
                cells.append(f'{r["median_ms"]:8.2f} ms      ')
        print(f'{stage:50}' + ''.join(f'{c:>18}' for c in cells))


def paper_comparison(n: int, reps: int) -> Dict:
    """Paper configuration: optimised vs straightforward at identical output (100 iterations).

    Same weights, same inputs, 100 Sinkhorn iterations and no early stop on both sides;
    timed interleaved. GNN FLOP/s against matmul peak samples taken between the same reps.
    The tolerance-based early stop is reported separately with its accuracy cost.
    """
    from ..models import get_model
    from ..models.reference import reference_forward
    from ..models.superglue import filter_matches, normalize_keypoints
    from .bench import gnn_flops, random_pair
    torch.manual_seed(0)
    model = get_model('superglue', {'sinkhorn_iterations': 100}).eval()
    early = get_model('superglue', {'sinkhorn_iterations': 100,
                                    'sinkhorn_tolerance': 1e-5}).eval()
    early.load_state_dict(model.state_dict())
    data = random_pair(n, 256, torch.device('cpu'), seed=1)
    fp = model.final_proj

    def gnn_only():
        k0 = normalize_keypoints(data['keypoints0'], data['image_size0'])
        k1 = normalize_keypoints(data['keypoints1'], data['image_size1'])
        d0 = data['descriptors0'].transpose(1, 2) + model.kenc(k0, data['scores0'])
        d1 = data['descriptors1'].transpose(1, 2) + model.kenc(k1, data['scores1'])
        d0, d1 = model.gnn(d0, d1)
        m0 = F.linear(d0, fp.weight.squeeze(-1), fp.bias)
        m1 = F.linear(d1, fp.weight.squeeze(-1), fp.bias)
        return m0 @ m1.transpose(1, 2)

    with torch.inference_mode():
        fast = model(data)
        plain = reference_forward(model, data, iterations=100)
        stopped = early(data)
        times = interleaved({'optimised': lambda: model(data),
                             'straightforward': lambda: reference_forward(model, data, 100),
                             'early stop': lambda: early(data),
                             'gnn': gnn_only, 'peak': peak_sampler()}, reps)
    any_fast = filter_matches(fast['log_assignment'], 0.0)[0]
    any_plain = filter_matches(plain['log_assignment'], 0.0)[0]
    any_early = filter_matches(stopped['log_assignment'], 0.0)[0]
    peak = 2 * 2048 ** 3 / np.min(times['peak'])  # best sample between the same reps
    flops = gnn_flops(n, 256, 18)
    executed = flops - 18 * 2 * 2 * n * 256 * 256  # the merge GEMMs are folded away
    med = {k: float(np.median(v) * 1e3) for k, v in times.items()}
    return {
        'keypoints': n,
        'optimised_median_ms': med['optimised'],
        'straightforward_median_ms': med['straightforward'],
        'speedup': med['straightforward'] / med['optimised'],
        'per_rep_speedup': [p / o for p, o in zip(times['straightforward'],
                                                  times['optimised'])],
        'max_abs_diff_log_assignment': float(
            (fast['log_assignment'] - plain['log_assignment']).abs().max()),
        'identical_matches_at_threshold': bool(torch.equal(fast['matches0'],
                                                           plain['matches0'])),
        'identical_mutual_argmax': bool(torch.equal(any_fast, any_plain)),
        'mutual_argmax_matches': int((any_fast > -1).sum()),
        'gnn_median_ms': med['gnn'],
        'gnn_gflop': flops / 1e9,
        'gnn_gflops_per_s': flops / (med['gnn'] / 1e3) / 1e9,
        'matmul_peak_gflops_per_s': peak / 1e9,
        'gnn_pct_of_peak': 100.0 * flops / (med['gnn'] / 1e3) / peak,
        'gnn_executed_gflop': executed / 1e9,
        'gnn_executed_pct_of_peak': 100.0 * executed / (med['gnn'] / 1e3) / peak,
        'early_stop_median_ms': med['early stop'],
        'early_stop_max_abs_diff_log_assignment': float(
            (stopped['log_assignment'] - fast['log_assignment']).abs().max()),
        'early_stop_identical_mutual_argmax': bool(torch.equal(any_early, any_fast)),
        'reps': reps,
    }


def sinkhorn_per_iteration(sizes: Sequence[int] = (512, 1024, 2048), reps: int = 5
                           ) -> List[Dict]:
    """Milliseconds per Sinkhorn iteration: (time of 101 - time of 1 iteration) / 100.

    The inference (mat-vec) path against the log-domain loop, interleaved, on random scores
    with a realistic spread (std 3); the whole stage at 100 iterations (the call: kernel,
    iterations, result); the column sums as one block (K^T x split by columns across
    threads, as before the per-thread row blocks); and the fast path on scores 30x larger
    (peaky trained weights), where it stays in the mat-vec loop instead of falling back.
    """
    from ..models import superglue
    from ..models.superglue import log_optimal_transport
    row_blocks = superglue._row_blocks

    def one_block(iters: int) -> Callable[[], object]:
        def run():
            superglue._row_blocks = lambda *args: 1
            try:
                return log_optimal_transport(scores, bins, iters, fast=True)
            finally:
                superglue._row_blocks = row_blocks
        return run

    rows = []
    for n in sizes:
        g = torch.Generator().manual_seed(n)
        scores = torch.randn(1, n, n, generator=g) * 3
        peaky = scores * 30
        bins = torch.tensor(1.0)
        with torch.inference_mode():
            fns = {
                'fast1': lambda: log_optimal_transport(scores, bins, 1, fast=True),
                'fast100': lambda: log_optimal_transport(scores, bins, 100, fast=True),
                'fast101': lambda: log_optimal_transport(scores, bins, 101, fast=True),
                'one_block1': one_block(1),
                'one_block101': one_block(101),
                'peaky1': lambda: log_optimal_transport(peaky, bins, 1, fast=True),
                'peaky101': lambda: log_optimal_transport(peaky, bins, 101, fast=True),
                'log1': lambda: log_optimal_transport(scores, bins, 1),
                'log11': lambda: log_optimal_transport(scores, bins, 11),
            }
            times = interleaved(fns, reps if n < 2048 else max(2, reps // 2))
            fast = log_optimal_transport(scores, bins, 100, fast=True)
            slow = log_optimal_transport(scores, bins, 100)
        med = {k: float(np.median(v) * 1e3) for k, v in times.items()}
        rows.append({
            'keypoints': n,
            'threads': torch.get_num_threads(),
            'fast_ms_per_iteration': (med['fast101'] - med['fast1']) / 100,
            'fast_100_iterations_call_ms': med['fast100'],
            'one_block_ms_per_iteration': (med['one_block101'] - med['one_block1']) / 100,
            'peaky_fast_ms_per_iteration': (med['peaky101'] - med['peaky1']) / 100,
            'log_domain_ms_per_iteration': (med['log11'] - med['log1']) / 10,
            'max_abs_diff_fast_vs_log_domain': float((fast - slow).abs().max()),
        })
    return rows


def baseline_comparison(baseline: str, sizes: Sequence[int], reps: int,
                        weights: Optional[str] = None, threads: int = 0) -> List[Dict]:
    """Time this checkout's model against another version of models/superglue.py.

    ``baseline`` is the path of that file (e.g. from ``git show REV:superglue_ros/
    superglue_ros/models/superglue.py``), imported as its own module. Both sides get the same
    state dict and inputs and run in turn, call by call: the shipped weights on real ORB
    features of the bundled frames (through the engine, as the node runs them), and the
    paper configuration on random inputs (full forward at 100 iterations, and the GNN +
    final projection alone, rated against matmul peak samples between the same reps).
    Matches must be identical (also the mutual argmax without threshold). ``threads``: the
    engines' num_threads (0 = automatic; the engine sets this process's torch threads).
    """
    import importlib.util
    from ..engine import MatchingEngine
    from ..models.superglue import filter_matches
    from ..weights import weights_path, WeightsError
    from .bench import gnn_flops, paper_model, random_pair, real_features
    spec = importlib.util.spec_from_file_location('baseline_superglue', baseline)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)

    def twin(model):
        other = old.SuperGlue(dict(vars(model.conf))).eval()
        other.load_state_dict(model.state_dict())
        return other

    def compare(label: str, n: int, new_fn, old_fn, flops: float = 0.0) -> Dict:
        fns = {'now': new_fn, 'baseline': old_fn}
        if flops:
            fns['peak'] = peak_sampler()
        times = interleaved(fns, reps)
        med = {k: float(np.median(v) * 1e3) for k, v in times.items()}
        row = {'case': label, 'keypoints': n, 'now_median_ms': med['now'],
               'baseline_median_ms': med['baseline'],
               'speedup': med['baseline'] / med['now'],
               'per_rep_speedup': [b / a for a, b in zip(times['now'], times['baseline'])]}
        if flops:
            peak = 2 * 2048 ** 3 / np.min(times['peak'])
            row.update(matmul_peak_gflops_per_s=peak / 1e9, model_gflop=flops / 1e9,
                       now_pct_of_peak=100.0 * flops / (med['now'] / 1e3) / peak,
                       baseline_pct_of_peak=100.0 * flops / (med['baseline'] / 1e3) / peak)
        return row

    rows = []
    try:
        engine = MatchingEngine.from_weights(weights_path(weights), device='cpu',
                                             num_threads=threads)
    except WeightsError:
        engine = None
    paper = paper_model()
    old_paper = twin(paper)
    if engine is not None:
        baseline_engine = MatchingEngine.from_weights(
            weights_path(weights), device='cpu', num_threads=threads)
        baseline_engine.model = twin(engine.model)
    with torch.inference_mode():
        for n in sizes:
            if engine is not None:
                p0, p1 = (engine.prepare(f) for f in real_features(n))
                a, b = engine.match_prepared(p0, p1), baseline_engine.match_prepared(p0, p1)
                row = compare('shipped, real ORB', n,
                              lambda: engine.match_prepared(p0, p1),
                              lambda: baseline_engine.match_prepared(p0, p1))
                row.update(identical_matches=bool(np.array_equal(a.index0, b.index0)
                                                  and np.array_equal(a.index1, b.index1)),
                           matches=int(len(a.index0)),
                           max_confidence_diff=float(np.abs(a.confidence - b.confidence).max())
                           if len(a.confidence) else 0.0)
                rows.append(row)
            data = random_pair(n, 256, torch.device('cpu'), seed=1)
            a, b = paper(data), old_paper(data)
            argmax_a = filter_matches(a['log_assignment'], 0.0)[0]
            argmax_b = filter_matches(b['log_assignment'], 0.0)[0]
            row = compare('paper, 100 iterations', n, lambda: paper(data),
                          lambda: old_paper(data))
            row.update(identical_matches=bool(torch.equal(a['matches0'], b['matches0'])),
                       identical_mutual_argmax=bool(torch.equal(argmax_a, argmax_b)),
                       mutual_argmax_matches=int((argmax_a > -1).sum()),
                       max_abs_diff_log_assignment=float(
                           (a['log_assignment'] - b['log_assignment']).abs().max()))
            rows.append(row)
            rows.append(compare('paper, GNN + final projection', n,
                                lambda: paper.score_matrix(data),
                                lambda: old_paper.score_matrix(data),
                                flops=gnn_flops(n, 256, 18)))
    return rows

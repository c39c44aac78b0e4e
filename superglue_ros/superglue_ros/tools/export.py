# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``superglue-export --onnx OUT``: a SuperGlue weights file as an ONNX model.

Our weights files and the official-format state dicts export alike (the model config is read
from the file). The graph takes one pair with 1..--max-keypoints keypoints per image (dynamic
axes) and returns the log-assignment [1 x M+1 x N+1]; the mutual-match filter with its
threshold stays with the caller. Sinkhorn runs the file's iteration count (or
--sinkhorn-iterations) in the log domain, unrolled. --check runs ONNX Runtime against torch
on random inputs of a few sizes and fails unless the matches are identical and the
log-assignments agree to 1e-4.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time
from typing import Dict, Optional, Sequence

import torch

TOLERANCE = 1e-4  # max |d log-assignment| between ONNX Runtime and torch


def compare_with_torch(model, onnx_model: bytes, sizes: Sequence[Sequence[int]],
                       max_keypoints: Optional[int] = None) -> Dict[str, float]:
    """ONNX Runtime (CPU) against torch on random pairs of the given (M, N); returns figures."""
    from ..models.superglue import filter_matches
    from ..onnx_backend import OnnxRuntimeSession
    from .bench import random_pair
    session = OnnxRuntimeSession(onnx_model, max_keypoints=max_keypoints)
    worst, identical, count = 0.0, True, 0
    for seed, (m, n) in enumerate(sizes):
        data = random_pair(n, model.conf.input_dim, torch.device('cpu'), seed=seed, m=m)
        if model.conf.keypoint_geometry:
            g = torch.Generator().manual_seed(seed)
            for i, k in ((0, m), (1, n)):
                data[f'angles{i}'] = torch.rand(1, k, generator=g) * 360
                data[f'sizes{i}'] = torch.rand(1, k, generator=g) * 60 + 31
        with torch.inference_mode():
            expected = model(data)
        got = session.run(data)
        worst = max(worst, float((got - expected['log_assignment']).abs().max()))
        matches0 = filter_matches(got, model.conf.match_threshold)[0]
        identical &= bool(torch.equal(matches0, expected['matches0']))
        count += int((matches0 > -1).sum())
    return {'max_abs_diff_log_assignment': worst, 'identical_matches': identical,
            'matches': count}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='superglue-export', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--onnx', required=True, metavar='OUT.onnx', help='ONNX file to write')
    parser.add_argument('--weights', default=None,
                        help='weights file, ours or official format (default: shipped)')
    parser.add_argument('--max-keypoints', type=int, default=4096,
                        help='largest keypoint count per image the backend accepts')
    parser.add_argument('--sinkhorn-iterations', type=int, default=None,
                        help="Sinkhorn iterations baked into the graph (default: the file's)")
    parser.add_argument('--no-sinkhorn', action='store_true',
                        help='end the graph at the score matrix [1 x M x N] (optimal transport '
                             'left to the caller, as the onnxruntime backend does)')
    parser.add_argument('--check', action='store_true',
                        help='compare ONNX Runtime with torch on random pairs after exporting')
    args = parser.parse_args(argv)

    from ..onnx_backend import export_onnx
    from ..weights import load_weights, WeightsError
    overrides = {}
    if args.sinkhorn_iterations is not None:
        overrides['sinkhorn_iterations'] = args.sinkhorn_iterations
    try:
        model, metadata = load_weights(args.weights, overrides or None)
    except WeightsError as exc:
        print(f'superglue-export: {exc}', file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        data = export_onnx(model.eval(), args.onnx, args.max_keypoints,
                           {'superglue_ros.weights': str(metadata.get('path', ''))},
                           with_sinkhorn=not args.no_sinkhorn)
    except (RuntimeError, ValueError) as exc:
        print(f'superglue-export: {exc}', file=sys.stderr)
        return 2
    c = model.conf
    print(f'wrote {args.onnx} ({len(data) / 1e6:.1f} MB, {time.perf_counter() - start:.1f} s): '
          f'D={c.descriptor_dim}, {2 * c.gnn_layers} GNN layers, {c.sinkhorn_iterations} '
          f'Sinkhorn iterations, {c.descriptor_type} descriptors ({c.input_dim} inputs), '
          f'1..{args.max_keypoints} keypoints per image')
    if args.check and args.no_sinkhorn:
        print('superglue-export: --check compares log-assignments; drop --no-sinkhorn',
              file=sys.stderr)
        return 2
    if args.check:
        sizes = [(1, 1), (37, 52), (256, 256), (min(700, args.max_keypoints), 512)]
        result = compare_with_torch(model, Path(args.onnx).read_bytes(), sizes,
                                    args.max_keypoints)
        ok = result['identical_matches'] and \
            result['max_abs_diff_log_assignment'] <= TOLERANCE
        print(f'check (onnxruntime CPU vs torch, sizes {sizes}): max |d log-assignment| '
              f'{result["max_abs_diff_log_assignment"]:.2e} (limit {TOLERANCE:.0e}), '
              f'identical matches {result["identical_matches"]} ({result["matches"]})')
        return 0 if ok else 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

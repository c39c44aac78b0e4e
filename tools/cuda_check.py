# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""CUDA check of the torch core, for a machine with a GPU and no ROS (torch, numpy, cv2).

Run from the repository root:
    PYTHONPATH=superglue_ros python3 tools/cuda_check.py --out OUT_DIR

What it measures, all in one run so the figures compare:
- agreement of CUDA fp32 and fp16 with the CPU on real ORB features of the bundled frames;
- latency (median, p95) of the shipped model and of the paper configuration (D=256, 9+9
  layers, 100 Sinkhorn iterations, random weights, no early stop) at 512/1024/2048 keypoints,
  on the CPU and on CUDA in fp32 and fp16, through MatchingEngine.match_prepared (so the
  read-back of the matches is included);
- window matching (``MatchingEngine.match_window``, K references in one batch) against K
  sequential calls, when the engine has it;
- peak CUDA memory per configuration; the execution providers onnxruntime offers there.
Writes cuda_check.json and cuda_check.md into --out.
"""

from __future__ import annotations

import argparse
from functools import partial
import json
from pathlib import Path
import sys

import numpy as np
import torch

from superglue_ros.engine import MatchingEngine
from superglue_ros.features import Features
from superglue_ros.models import get_model
from superglue_ros.tools.bench import summarize, time_calls
from superglue_ros.weights import load_weights

FRAMES = sorted((Path(__file__).resolve().parents[1] / 'superglue_ros' / 'superglue_ros' /
                 'data' / 'tum_freiburg').glob('*.jpg'))


def orb_features(n: int, index: int) -> Features:
    import cv2
    from superglue_ros.features import OrbExtractor
    return OrbExtractor(n)(cv2.imread(str(FRAMES[index])))


def random_features(n: int, seed: int) -> Features:
    """Random keypoints with random binary ORB descriptors (for paper-config timing)."""
    rng = np.random.default_rng(seed)
    kp = rng.uniform([0, 0], [640, 480], (n, 2)).astype(np.float32)
    desc = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    return Features(kp, rng.uniform(0, 1, n).astype(np.float32), desc, 'orb', (640, 480))


def timed(fn, device: torch.device, reps: int) -> dict:
    """Median and p95 [ms] of ``reps`` calls after warm-up (superglue-bench's timer)."""
    return summarize(time_calls(fn, device, reps, warmup=3))


def engines(model_factory, fp16_too: bool = True):
    yield 'cpu fp32', MatchingEngine(model_factory(), device='cpu')
    yield 'cuda fp32', MatchingEngine(model_factory(), device='cuda')
    if fp16_too:
        yield 'cuda fp16', MatchingEngine(model_factory(), device='cuda', fp16=True)


def pair_set(r):
    return set(zip(r.index0.tolist(), r.index1.tolist()))


def agreement(report: dict) -> None:
    """CUDA fp32/fp16 against the CPU on real frames, shipped weights."""
    model, _ = load_weights(None)
    state = model.state_dict()

    def factory():
        m, _ = load_weights(None)
        m.load_state_dict(state)
        return m
    rows = []
    for gap in (1, 2, 4):
        f0, f1 = orb_features(1024, 0), orb_features(1024, gap)
        results = {name: eng.match(f0, f1) for name, eng in engines(factory)}
        ref = pair_set(results['cpu fp32'])
        for name in ('cuda fp32', 'cuda fp16'):
            got = pair_set(results[name])
            rows.append({'gap': gap, 'engine': name, 'cpu_matches': len(ref),
                         'matches': len(got), 'common': len(ref & got),
                         'jaccard': len(ref & got) / max(1, len(ref | got))})
    report['agreement'] = rows


def latency(report: dict, sizes, reps: int) -> None:
    """Shipped and paper configuration, CPU vs CUDA fp32 vs fp16, same run."""
    shipped, _ = load_weights(None)
    shipped_state = shipped.state_dict()

    def shipped_factory():
        m, _ = load_weights(None)
        m.load_state_dict(shipped_state)
        return m

    def paper_factory():
        torch.manual_seed(0)
        return get_model('superglue', {'sinkhorn_iterations': 100, 'sinkhorn_tolerance': 0.0,
                                       'descriptor_type': 'orb', 'input_dim': 256})
    rows = []
    for model_name, factory in (('shipped', shipped_factory), ('paper', paper_factory)):
        for name, eng in engines(factory):
            for n in sizes:
                if name == 'cpu fp32' and n > 1024:
                    continue  # minutes on the CPU; the CPU figures live in docs/PERFORMANCE
                p0 = eng.prepare(random_features(n, 0) if model_name == 'paper'
                                 else orb_features(n, 0))
                p1 = eng.prepare(random_features(n, 1) if model_name == 'paper'
                                 else orb_features(n, 2))
                if eng.device.type == 'cuda':
                    torch.cuda.reset_peak_memory_stats()
                t = timed(partial(eng.match_prepared, p0, p1), eng.device,
                          reps if name != 'cpu fp32' else max(3, reps // 4))
                t.update(model=model_name, engine=name, keypoints=n)
                if eng.device.type == 'cuda':
                    t['peak_mib'] = torch.cuda.max_memory_allocated() / 2 ** 20
                rows.append(t)
                print(json.dumps(t), flush=True)
            del eng
            torch.cuda.empty_cache()
    report['latency'] = rows


def window(report: dict, sizes, reps: int, k: int = 4) -> None:
    """K references in one batch against K sequential calls, shipped weights."""
    if not hasattr(MatchingEngine, 'match_window'):
        report['window'] = 'MatchingEngine.match_window not present in this build'
        return
    rows = []
    for name, eng in engines(lambda: load_weights(None)[0]):
        for n in sizes:
            refs = [eng.prepare(orb_features(n, i)) for i in range(k)]
            cur = eng.prepare(orb_features(n, k + 1))
            batched = eng.match_window(refs, cur)
            sequential = [eng.match_prepared(r, cur) for r in refs]
            same = all(pair_set(a) == pair_set(b) for a, b in zip(batched, sequential))
            r = max(3, reps // 4) if name == 'cpu fp32' else reps
            tb = timed(lambda: eng.match_window(refs, cur), eng.device, r)
            ts = timed(lambda: [eng.match_prepared(x, cur) for x in refs], eng.device, r)
            row = {'engine': name, 'keypoints': n, 'k': k, 'identical_matches': same,
                   'batched_ms': tb['median_ms'], 'sequential_ms': ts['median_ms'],
                   'speedup': ts['median_ms'] / tb['median_ms']}
            rows.append(row)
            print(json.dumps(row), flush=True)
    report['window'] = rows


def providers(report: dict) -> None:
    try:
        import onnxruntime
        report['onnxruntime'] = {'version': onnxruntime.__version__,
                                 'providers': onnxruntime.get_available_providers()}
    except ImportError as exc:
        report['onnxruntime'] = f'not importable: {exc}'


def markdown(report: dict) -> str:
    lines = [f"# CUDA check: {report['gpu']}, torch {report['torch']}", '']
    lines += ['## Agreement with the CPU (shipped weights, 1024 ORB keypoints, real frames)', '',
              '| gap | engine | CPU matches | matches | common | Jaccard |',
              '| --- | --- | --- | --- | --- | --- |']
    for r in report['agreement']:
        lines.append(f"| {r['gap']} | {r['engine']} | {r['cpu_matches']} | {r['matches']} | "
                     f"{r['common']} | {r['jaccard']:.3f} |")
    lines += ['', '## Latency per pair (match_prepared, read-back included)', '',
              '| model | engine | keypoints | median ms | p95 ms | peak MiB |',
              '| --- | --- | --- | --- | --- | --- |']
    for r in report['latency']:
        lines.append(f"| {r['model']} | {r['engine']} | {r['keypoints']} | "
                     f"{r['median_ms']:.2f} | {r['p95_ms']:.2f} | "
                     f"{r.get('peak_mib', float('nan')):.0f} |")
    lines += ['', '## Window matching, K = 4 (shipped weights)', '']
    if isinstance(report['window'], str):
        lines.append(report['window'])
    else:
        lines += ['| engine | keypoints | identical matches | batched ms | sequential ms | '
                  'speed-up |', '| --- | --- | --- | --- | --- | --- |']
        for r in report['window']:
            lines.append(f"| {r['engine']} | {r['keypoints']} | {r['identical_matches']} | "
                         f"{r['batched_ms']:.2f} | {r['sequential_ms']:.2f} | "
                         f"{r['speedup']:.2f}x |")
    lines += ['', f"onnxruntime: {report['onnxruntime']}", '']
    return '\n'.join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default='out')
    p.add_argument('--sizes', type=int, nargs='+', default=[512, 1024, 2048])
    p.add_argument('--reps', type=int, default=20)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print('cuda_check: torch sees no CUDA GPU', file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 in this comparison
    report = {'gpu': torch.cuda.get_device_name(0), 'torch': torch.__version__,
              'cpu_threads': torch.get_num_threads()}
    for step in (agreement, providers):
        step(report)
    latency(report, args.sizes, args.reps)
    window(report, [512, 1024], args.reps)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'cuda_check.json').write_text(json.dumps(report, indent=2))
    (out / 'cuda_check.md').write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

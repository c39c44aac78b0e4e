# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Latency beside other processes: thread settings, OpenMP wait policy and backends.

``superglue-bench --load N`` (see bench.py). A robot's matcher shares the CPU with the
SLAM back-end, drivers and planners, so the figures that matter are the ones under load.
For 0..N bounded busy processes (pure-Python spin loops that end by themselves after a
deadline, in case the benchmark dies) each configuration runs in a fresh worker process, so
that the OpenMP wait policy, read once when the OpenMP runtime starts, can differ between
configurations. Configurations are run round-robin and the whole sweep is repeated, so that
the machine's drift spreads evenly; each figure is reported against the same
configuration's no-load figure from the same run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

BUSY_LOOP = 'import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n'

# (name, backend, num_threads, OMP_WAIT_POLICY or None = the runtime's default)
CONFIGS = (
    ('torch-1', 'torch', 1, None),
    ('torch-2', 'torch', 2, None),
    ('torch-2-passive', 'torch', 2, 'PASSIVE'),
    ('torch-auto', 'torch', 0, None),
    ('torch-auto-passive', 'torch', 0, 'PASSIVE'),
    ('onnxruntime-1', 'onnxruntime', 1, None),
    ('onnxruntime-auto', 'onnxruntime', 0, None),
)


def worker(backend: str, threads: int, keypoints: int, reps: int,
           weights: Optional[str]) -> Dict:
    """Time ``reps`` shipped-model matches of two real frames in this process."""
    import numpy as np

    from ..engine import MatchingEngine
    from .bench import real_features
    engine = MatchingEngine.from_weights(weights, device='cpu', num_threads=threads,
                                         backend=backend)
    f0, f1 = real_features(keypoints)
    p0, p1 = engine.prepare(f0), engine.prepare(f1)
    for _ in range(2):
        engine.match_prepared(p0, p1)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        engine.match_prepared(p0, p1)
        times.append(time.perf_counter() - start)
    return {'times_ms': [t * 1e3 for t in times], 'p50_ms': float(np.median(times) * 1e3),
            'p95_ms': float(np.percentile(times, 95) * 1e3)}


def _run_worker(config, keypoints: int, reps: int, weights: Optional[str]) -> Dict:
    name, backend, threads, policy = config
    env = {k: v for k, v in os.environ.items()
           if k not in ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'MKL_NUM_THREADS')}
    if policy:
        env['OMP_WAIT_POLICY'] = policy
    code = ('import json, sys; from superglue_ros.tools.bench_load import worker; '
            f'print(json.dumps(worker({backend!r}, {threads}, {keypoints}, {reps}, '
            f'{weights!r})))')
    res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         env=env, timeout=1800)
    if res.returncode != 0:
        return {'error': res.stderr.strip().splitlines()[-1] if res.stderr.strip() else
                f'exit {res.returncode}'}
    return json.loads(res.stdout.strip().splitlines()[-1])


def start_busy(count: int, seconds: float) -> List[subprocess.Popen]:
    """``count`` single-threaded spin loops that stop by themselves after ``seconds``."""
    return [subprocess.Popen([sys.executable, '-c', BUSY_LOOP.format(seconds=seconds)])
            for _ in range(count)]


def stop_busy(processes: Sequence[subprocess.Popen]) -> None:
    for proc in processes:
        proc.kill()
    for proc in processes:
        proc.wait()


def load_benchmark(max_load: int, keypoints: int = 1024, reps: int = 8, rounds: int = 2,
                   weights: Optional[str] = None, configs: Sequence = CONFIGS) -> Dict:
    """Latency p50/p95 per configuration with 0..max_load busy processes beside it."""
    if importlib.util.find_spec('onnxruntime') is None:  # optional dependency
        configs = [c for c in configs if c[1] != 'onnxruntime']
        print('  (onnxruntime not installed: its configurations are skipped)')
    results: Dict[str, Dict[int, List[Dict]]] = {c[0]: {} for c in configs}
    for load in range(max_load + 1):
        busy = start_busy(load, 3600)
        try:
            time.sleep(0.5)
            for _ in range(rounds):
                for config in configs:
                    out = _run_worker(config, keypoints, reps, weights)
                    results[config[0]].setdefault(load, []).append(out)
        finally:
            stop_busy(busy)
    import numpy as np
    table = []
    for name, by_load in results.items():
        idle = None
        for load, runs in sorted(by_load.items()):
            ok = [r for r in runs if 'times_ms' in r]
            if not ok:
                table.append({'config': name, 'load': load,
                              'error': runs[0].get('error', '?')})
                continue
            times = np.concatenate([r['times_ms'] for r in ok])
            row = {'config': name, 'load': load, 'p50_ms': float(np.median(times)),
                   'p95_ms': float(np.percentile(times, 95)), 'samples': int(len(times)),
                   'per_round_p50_ms': [r['p50_ms'] for r in ok]}
            if load == 0:
                idle = row['p50_ms']
            row['vs_no_load'] = row['p50_ms'] / idle if idle else float('nan')
            table.append(row)
    best = {}
    for row in table:
        if 'p50_ms' in row and (row['load'] not in best or row['p50_ms'] <
                                best[row['load']]['p50_ms']):
            best[row['load']] = row
    return {'keypoints': keypoints, 'reps_per_round': reps, 'rounds': rounds,
            'rows': table, 'best_per_load': {k: v['config'] for k, v in best.items()}}


def print_load_table(result: Dict) -> None:
    print(f'\nlatency beside N busy processes (shipped model, {result["keypoints"]} keypoints, '
          f'{result["rounds"]} rounds x {result["reps_per_round"]} calls per configuration)')
    head = f'{"configuration":20} {"load":>4} {"p50 ms":>8} {"p95 ms":>8} {"vs no load":>10}'
    print(head + '\n' + '-' * len(head))
    for row in result['rows']:
        if 'error' in row:
            print(f'{row["config"]:20} {row["load"]:4d}  error: {row["error"][:60]}')
            continue
        print(f'{row["config"]:20} {row["load"]:4d} {row["p50_ms"]:8.0f} {row["p95_ms"]:8.0f} '
              f'{row["vs_no_load"]:9.2f}x')
    print('fastest per load: ' + ', '.join(f'{k} busy: {v}'
                                           for k, v in result['best_per_load'].items()))

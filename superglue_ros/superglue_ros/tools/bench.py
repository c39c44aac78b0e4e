# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``superglue-bench``: latency, throughput and memory versus keypoint count, in one run.

Sections (``--sections``, all by default), each measured interleaved within this run:
- ``latency``: the shipped ORB model on real ORB features of the bundled TUM frames (alone,
  and followed by the sub-pixel match refinement the product runs on CPU), the
  paper configuration (D=256, 9+9 layers, 100 Sinkhorn iterations, random weights) through
  the optimised path and through the straightforward one (Conv1d + BatchNorm modules, einsum
  attention, log-domain Sinkhorn: models/reference.py), and OpenCV brute-force Hamming
  matching; per keypoint count, on the CPU or ``--device cuda`` (``--fp16`` adds autocast);
- ``paper``: optimised vs straightforward paper configuration at identical output (same
  iterations, no early stop), GNN FLOP/s against matmul peak samples of the same run; the
  early stop apart, with its accuracy cost;
- ``stages``: where one GNN layer's time goes (projections, attention layouts, merge, MLP,
  copies), for the paper configuration and the shipped model;
- ``sinkhorn``: milliseconds per Sinkhorn iteration at 512/1024/2048 keypoints;
- ``window``: K references against one keyframe in one batch vs K sequential calls;
- ``load``: with ``--load N``, latency p50/p95 per thread setting, OpenMP wait policy and
  backend (torch, onnxruntime) beside 0..N busy processes (bench_load.py);
- ``node``: the node's end-to-end latency against the bare call (node_bench.py, needs ROS);
- ``malloc``: glibc malloc thresholds probe;
- ``baseline``: with ``--baseline-module FILE`` (another version of models/superglue.py, e.g.
  from ``git show REV:...``), this checkout's model against it, same weights, interleaved:
  the shipped model on real ORB features and the paper configuration (bench_gnn.py).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from pathlib import Path
import platform
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

MALLOC_ENV = {'MALLOC_MMAP_THRESHOLD_': '33554432', 'MALLOC_TRIM_THRESHOLD_': '17179869184'}


def machine_description() -> Dict[str, str]:
    """CPU model, cores, torch build and threads, GPU when present."""
    cpu = platform.processor()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    out = {'cpu': cpu, 'cores': str(os.cpu_count()), 'torch': torch.__version__,
           'torch_threads': str(torch.get_num_threads()), 'python': platform.python_version(),
           'platform': platform.platform(),
           'omp_wait_policy': os.environ.get('OMP_WAIT_POLICY', 'default'),
           'malloc_env': ' '.join(f'{k}={os.environ[k]}' for k in MALLOC_ENV
                                  if k in os.environ) or 'default'}
    if torch.cuda.is_available():
        out['gpu'] = torch.cuda.get_device_name(0)
    return out


def matmul_peak(device: torch.device, dtype=torch.float32, n: int = 2048, reps: int = 10
                ) -> float:
    """Achieved FLOP/s of a large square matmul (best of ``reps``)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float('inf')
    for _ in range(reps):
        _sync(device)
        t = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize()


class PeakMemory:
    """Peak resident memory growth of this process over a block (Linux VmHWM; CUDA allocator)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_mb = float('nan')

    @staticmethod
    def _status(key: str) -> Optional[float]:
        try:
            for line in Path('/proc/self/status').read_text().splitlines():
                if line.startswith(key):
                    return float(line.split()[1]) / 1024.0
        except OSError:
            return None
        return None

    def __enter__(self) -> 'PeakMemory':
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated() / 2 ** 20
        else:
            try:  # '5' resets the peak RSS counter (Linux >= 4.0)
                Path('/proc/self/clear_refs').write_text('5')
            except OSError:
                pass
            self._base = self._status('VmRSS:') or 0.0
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == 'cuda':
            self.peak_mb = torch.cuda.max_memory_allocated() / 2 ** 20 - self._base
        else:
            hwm = self._status('VmHWM:')
            self.peak_mb = (hwm - self._base) if hwm is not None else float('nan')


def time_calls(fn: Callable[[], object], device: torch.device, reps: int, warmup: int = 1
               ) -> List[float]:
    """Wall times of ``reps`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return times


def random_pair(n: int, dim: int, device: torch.device, seed: int = 0,
                m: Optional[int] = None, batch: int = 1) -> Dict[str, torch.Tensor]:
    """Random keypoints/scores/unit descriptors in a 640x480 image: M (default N) and N of them.

    Shapes as the model's input: keypoints0 [B x M x 2], scores0 [B x M],
    descriptors0 [B x dim x M], image_size0 [B x 2]; likewise for image 1 with N.
    """
    m = n if m is None else m
    g = torch.Generator().manual_seed(seed)
    size = torch.tensor([[640.0, 480.0]]).expand(batch, 2)

    def desc(k):
        return torch.nn.functional.normalize(torch.randn(batch, dim, k, generator=g), dim=1)
    data = {'keypoints0': torch.rand(batch, m, 2, generator=g) * size[:, None],
            'keypoints1': torch.rand(batch, n, 2, generator=g) * size[:, None],
            'scores0': torch.rand(batch, m, generator=g),
            'scores1': torch.rand(batch, n, generator=g),
            'descriptors0': desc(m), 'descriptors1': desc(n),
            'image_size0': size, 'image_size1': size}
    return {k: v.to(device) for k, v in data.items()}


def random_features(n: int, seed: int = 0, size=(640, 480)):
    """Random ORB-like Features: n keypoints in a 640x480 image, random 256-bit descriptors."""
    from ..features import Features
    rng = np.random.default_rng(seed)
    return Features(
        keypoints=(rng.random((n, 2)) * np.asarray(size)).astype(np.float32),
        scores=rng.random(n).astype(np.float32),
        descriptors=rng.integers(0, 256, (n, 32), dtype=np.uint8),
        descriptor_type='orb', image_size=tuple(size))


def gnn_flops(n: int, d: int, layers: int) -> float:
    """Count the FLOPs of the GNN + final projection + score matrix for N keypoints in both images.

    Per image and layer: q/k/v/merge projections 8ND^2, attention 4N^2D, MLP 12ND^2.
    """
    per_layer = 2 * (8 * n * d * d + 4 * n * n * d + 12 * n * d * d)
    return layers * per_layer + 2 * 2 * n * d * d + 2 * n * n * d


def summarize(times: Sequence[float]) -> Dict[str, float]:
    t = np.asarray(times)
    return {'median_ms': float(np.median(t) * 1e3), 'p95_ms': float(np.percentile(t, 95) * 1e3),
            'max_ms': float(t.max() * 1e3), 'pairs_per_s': float(1.0 / np.median(t)),
            'reps': int(len(t))}


@functools.lru_cache(maxsize=1)  # every size and case reuses the two frames
def real_images():
    """Two bundled TUM frames two apart, grayscale."""
    import cv2
    from .demo import bundled_pair
    return tuple(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in bundled_pair(2))


def real_features(n: int):
    """ORB features (up to n) of two bundled TUM frames two apart."""
    from ..features import OrbExtractor
    ext = OrbExtractor(n)
    return tuple(ext(image) for image in real_images())


def bench_sizes(sizes: Sequence[int], device: torch.device, fp16: bool, reps: int,
                weights: Optional[str], include_plain: bool,
                compare: Sequence[str] = (), threads: int = 0) -> List[Dict]:
    """Latency/throughput/memory rows for every method and size on one device.

    ``threads``: the engines' num_threads (0 = automatic).
    """
    import cv2
    from ..engine import MatchingEngine
    from ..models.reference import reference_forward
    from ..refinement import MatchRefiner
    from ..weights import weights_path, WeightsError
    rows = []
    paper = paper_model(device)
    try:
        wpath = weights_path(weights)
    except WeightsError:  # no weights file (e.g. none shipped in this checkout): paper rows
        wpath = None
    engine = MatchingEngine.from_weights(wpath, device=str(device), fp16=fp16,
                                         num_threads=threads) if wpath \
        else None
    others = {}
    for spec in compare:  # NAME=PATH: more weights, timed interleaved with the shipped ones
        name, _, path = spec.partition('=')
        others[name] = MatchingEngine.from_weights(path, device=str(device), fp16=fp16,
                                                   num_threads=threads)
    dtype = torch.float16 if fp16 else torch.float32
    tag = f'{device.type}-{"fp16" if fp16 else "fp32"}'
    for n in sizes:
        r = max(2, reps if n <= 1024 else reps // 2)
        data = random_pair(n, 256, device)
        cases = []
        if engine is not None:
            f0, f1 = real_features(n)
            p0, p1 = engine.prepare(f0), engine.prepare(f1)
            cases.append(('shipped', lambda: engine.match_prepared(p0, p1), len(f0)))
            if device.type == 'cpu':  # the product's pipeline: the match, then its refinement
                refiner, (g0, g1) = MatchRefiner(), real_images()

                def run_refined():
                    m = engine.match_prepared(p0, p1)
                    return refiner.refine_pair(g0, g1, f0, f1, m.index0, m.index1,
                                               m.confidence)
                cases.append(('shipped+refine', run_refined, len(f0)))
            for name, other in others.items():
                q0, q1 = other.prepare(f0), other.prepare(f1)
                run = (lambda o=other, a=q0, b=q1: o.match_prepared(a, b))
                cases.append((name, run, len(f0)))

        def run_paper():
            with torch.inference_mode(), \
                    torch.autocast(device.type, dtype=dtype, enabled=fp16):
                return paper(data)
        cases.append(('paper', run_paper, n))
        if include_plain and not fp16:
            def run_plain():
                with torch.inference_mode():
                    return reference_forward(paper, data, iterations=100)
            cases.append(('paper_plain', run_plain, n))
        if device.type == 'cpu' and not fp16 and engine is not None:
            bf = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
            cases.append(('orb_bf', lambda: bf.match(f0.descriptors, f1.descriptors), len(f0)))
        for name, fn, actual in cases:
            plain_reps = max(2, r // 3) if name == 'paper_plain' else r
            with PeakMemory(device) as mem:
                times = time_calls(fn, device, plain_reps)
            row = {'method': name, 'device': tag, 'keypoints': n, 'actual_keypoints': actual,
                   **summarize(times), 'peak_mem_mb': mem.peak_mb}
            rows.append(row)
            print(f'  {tag:10} {name:14} N={n:5d} median {row["median_ms"]:9.1f} ms  '
                  f'p95 {row["p95_ms"]:9.1f} ms  {row["pairs_per_s"]:7.2f} pairs/s  '
                  f'peak +{row["peak_mem_mb"]:.0f} MB', flush=True)
    return rows


def window_features(n: int, count: int):
    """ORB features (up to n) of ``count`` consecutive bundled TUM frames."""
    import cv2
    from ..features import OrbExtractor
    from .demo import bundled_frames  # rclpy-free: the bench runs without ROS
    ext = OrbExtractor(n)
    return [ext(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)) for p in bundled_frames()[:count]]


def window_benchmark(engine, sizes: Sequence[int] = (512, 1024), window: int = 4,
                     reps: int = 6) -> List[Dict]:
    """K references against one keyframe: one batched ``match_window`` vs K sequential calls.

    Real ORB features of K + 1 consecutive bundled frames (unequal counts, so the batch is
    padded). The two ways alternate call by call (the machine's load drifts); results are
    checked equal. Throughput = pairs per second from the median times.
    """
    rows = []
    for n in sizes:
        feats = window_features(n, window + 1)
        refs = [engine.prepare(f) for f in feats[:window]]
        cur = engine.prepare(feats[window])
        sequential = [engine.match_prepared(r, cur) for r in refs]
        batched = engine.match_window(refs, cur)
        same = all(np.array_equal(a.index0, b.index0) and np.array_equal(a.index1, b.index1)
                   for a, b in zip(sequential, batched))
        diff = max((float(np.abs(a.confidence - b.confidence).max()) if len(a.confidence)
                    else 0.0) for a, b in zip(sequential, batched))
        t_seq, t_batch = [], []
        for _ in range(reps):
            t_seq += time_calls(lambda: [engine.match_prepared(r, cur) for r in refs],
                                engine.device, 1, warmup=0)
            t_batch += time_calls(lambda: engine.match_window(refs, cur), engine.device, 1,
                                  warmup=0)
        seq_ms, batch_ms = np.median(t_seq) * 1e3, np.median(t_batch) * 1e3
        row = {'keypoints': n, 'window': window,
               'reference_keypoints': [int(r.keypoints.shape[1]) for r in refs],
               'current_keypoints': int(cur.keypoints.shape[1]),
               'device': str(engine.device), 'threads': torch.get_num_threads(),
               'sequential_ms': float(seq_ms), 'batched_ms': float(batch_ms),
               'sequential_pairs_per_s': window / seq_ms * 1e3,
               'batched_pairs_per_s': window / batch_ms * 1e3,
               'throughput_ratio': float(seq_ms / batch_ms),
               'per_rep_ratios': [float(a / b) for a, b in zip(t_seq, t_batch)],
               'identical_matches': bool(same), 'max_confidence_diff': diff, 'reps': reps}
        rows.append(row)
        print(f'  window K={window} N={n}: {window} sequential {seq_ms:.0f} ms, one batch '
              f'{batch_ms:.0f} ms -> {row["throughput_ratio"]:.2f}x throughput; identical '
              f'matches {same}, max |d confidence| {diff:.1e}', flush=True)
    return rows


def malloc_probe(n: int, reps: int) -> Dict:
    """Paper config at N in fresh processes with default vs raised glibc malloc thresholds."""
    out = {}
    code = ('import json; from superglue_ros.tools.bench import malloc_worker; '
            f'print(json.dumps(malloc_worker({n}, {reps})))')
    for label, extra in (('default', {}), ('raised_thresholds', MALLOC_ENV)):
        env = {k: v for k, v in os.environ.items() if k not in MALLOC_ENV}
        env.update(extra)
        res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                             env=env, timeout=1800)
        if res.returncode != 0:
            out[label] = {'error': res.stderr[-500:]}
            continue
        out[label] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def paper_model(device: torch.device = torch.device('cpu')) -> torch.nn.Module:
    """Build the paper configuration (D=256, 9+9 layers), seeded random weights, eval mode."""
    from ..models import get_model
    torch.manual_seed(0)
    return get_model('superglue', {'sinkhorn_iterations': 100}).eval().to(device)


def malloc_worker(n: int, reps: int) -> Dict:
    """Time the paper configuration at N keypoints in this process (run by malloc_probe)."""
    model = paper_model()
    data = random_pair(n, 256, torch.device('cpu'))
    with torch.inference_mode():
        times = time_calls(lambda: model(data), torch.device('cpu'), reps)
    return summarize(times)


def print_table(rows: List[Dict]) -> None:
    head = (f'{"device":10} {"method":14} {"N":>5} {"median ms":>10} {"p95 ms":>9} '
            f'{"pairs/s":>8} {"peak MB":>8}')
    print('\n' + head + '\n' + '-' * len(head))
    for r in rows:
        print(f'{r["device"]:10} {r["method"]:14} {r["keypoints"]:5d} {r["median_ms"]:10.1f} '
              f'{r["p95_ms"]:9.1f} {r["pairs_per_s"]:8.2f} {r["peak_mem_mb"]:8.0f}')


SECTIONS = ('latency', 'paper', 'stages', 'sinkhorn', 'window', 'load', 'node', 'malloc',
            'baseline')


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog='superglue-bench', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--sections', nargs='+', default=list(SECTIONS), choices=SECTIONS,
                   help='what to measure (default: all; load only with --load N > 0)')
    p.add_argument('--device', default='cpu', help='cpu | cuda | cuda:N (latency, window)')
    p.add_argument('--fp16', action='store_true', help='also time fp16 autocast on CUDA')
    p.add_argument('--threads', type=int, default=0,
                   help='torch threads of this process and its engines (0 = automatic)')
    p.add_argument('--sizes', type=int, nargs='+', default=[256, 512, 1024, 2048])
    p.add_argument('--reps', type=int, default=10)
    p.add_argument('--weights', default=None, help='weights file (default: shipped)')
    p.add_argument('--compare-weights', nargs='*', default=[], metavar='NAME=PATH',
                   help='more weights files timed in the same run (e.g. previous=old.pth)')
    p.add_argument('--out', default='out/bench.json')
    p.add_argument('--no-plain', action='store_true', help='skip the straightforward version')
    p.add_argument('--speedup-size', type=int, default=1024)
    p.add_argument('--load', type=int, default=0, metavar='N',
                   help='latency per thread setting and backend beside 0..N busy processes')
    p.add_argument('--window', type=int, default=4, help='references per batch (window)')
    p.add_argument('--node-frames', type=int, default=20)
    p.add_argument('--baseline-module', default=None, metavar='FILE',
                   help='models/superglue.py of another version to time against (baseline)')
    # Kept for old command lines: same as leaving the section out.
    p.add_argument('--skip-malloc-probe', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--skip-node', action='store_true', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sections = set(args.sections)
    if args.skip_malloc_probe:
        sections.discard('malloc')
    if args.skip_node:
        sections.discard('node')
    if args.threads:
        torch.set_num_threads(args.threads)
    from ..engine import resolve_device
    device, warning = resolve_device(args.device)
    if warning:
        print(f'warning: {warning}')
    report: Dict = {'machine': machine_description(), 'rows': [], 'sections': sorted(sections)}
    cpu = torch.device('cpu')
    peak = matmul_peak(cpu)
    report['cpu_fp32_matmul_peak_gflops'] = peak / 1e9
    print(f'machine: {report["machine"]}\nfp32 matmul peak (2048^3): {peak / 1e9:.1f} GFLOP/s')
    devices = [(cpu, False)] if device.type == 'cpu' else [(device, False)]
    if device.type == 'cuda':
        if args.fp16:
            devices.append((device, True))
        report['cuda_fp32_matmul_peak_tflops'] = matmul_peak(device) / 1e12
        report['cuda_fp16_matmul_peak_tflops'] = matmul_peak(device, torch.float16,
                                                             4096) / 1e12
        print(f'{report["machine"].get("gpu", "cuda")}: fp32 peak '
              f'{report["cuda_fp32_matmul_peak_tflops"]:.1f} TFLOP/s, fp16 peak '
              f'{report["cuda_fp16_matmul_peak_tflops"]:.1f} TFLOP/s')
    if 'latency' in sections:
        for dev, fp16 in devices:
            print(f'\n{dev.type} {"fp16" if fp16 else "fp32"}:')
            report['rows'] += bench_sizes(args.sizes, dev, fp16, args.reps, args.weights,
                                          not args.no_plain and dev.type == 'cpu',
                                          args.compare_weights, args.threads)
        print_table(report['rows'])
    if 'paper' in sections:
        from .bench_gnn import paper_comparison
        eq = paper_comparison(args.speedup_size, max(3, args.reps // 2))
        report['paper_config_optimisation'] = eq
        print(f'\npaper config at N={eq["keypoints"]} (CPU, 100 Sinkhorn iterations both, no '
              f'early stop, interleaved x{eq["reps"]}): optimised '
              f'{eq["optimised_median_ms"]:.0f} ms vs straightforward '
              f'{eq["straightforward_median_ms"]:.0f} ms -> {eq["speedup"]:.2f}x (per rep '
              f'{min(eq["per_rep_speedup"]):.2f}-{max(eq["per_rep_speedup"]):.2f}x); max |d '
              f'log-assignment| {eq["max_abs_diff_log_assignment"]:.1e}; identical matches '
              f'{eq["identical_matches_at_threshold"]}, identical mutual argmax '
              f'{eq["identical_mutual_argmax"]} ({eq["mutual_argmax_matches"]})')
        print(f'GNN: {eq["gnn_gflop"]:.1f} GFLOP in {eq["gnn_median_ms"]:.0f} ms = '
              f'{eq["gnn_gflops_per_s"]:.0f} GFLOP/s = {eq["gnn_pct_of_peak"]:.0f} % of the '
              f'best matmul peak sample (2048^3) between the same reps '
              f'({eq["matmul_peak_gflops_per_s"]:.0f} GFLOP/s); executed FLOPs (merge '
              f'folded away) {eq["gnn_executed_gflop"]:.1f} GFLOP = '
              f'{eq["gnn_executed_pct_of_peak"]:.0f} %')
        print(f'early stop (tolerance 1e-5), reported apart: {eq["early_stop_median_ms"]:.0f} '
              f'ms, max |d log-assignment| vs 100 iterations '
              f'{eq["early_stop_max_abs_diff_log_assignment"]:.1e}, identical mutual argmax '
              f'{eq["early_stop_identical_mutual_argmax"]}')
    if 'stages' in sections:
        from ..engine import MatchingEngine
        from .bench_gnn import print_stage_table, stage_table
        report['stages'] = {}
        models = {'paper (D=256, 18 layers)': paper_model(cpu)}
        try:
            models['shipped'] = MatchingEngine.from_weights(args.weights, device='cpu').model
        except Exception as exc:  # noqa: BLE001 - no shipped weights: paper only
            print(f'(shipped weights unavailable: {exc})')
        for label, model in models.items():
            rows = []
            for n in args.sizes:
                rows += stage_table(model, n, max(3, args.reps // 2))
            report['stages'][label] = rows
            print_stage_table(rows, label)
    if 'sinkhorn' in sections:
        from .bench_gnn import sinkhorn_per_iteration
        rows = sinkhorn_per_iteration([n for n in args.sizes if n >= 512] or args.sizes,
                                      max(3, args.reps // 2))
        report['sinkhorn'] = rows
        print('\nSinkhorn per iteration (interleaved; (t101 - t1) / 100):')
        for r in rows:
            print(f'  N={r["keypoints"]:5d}: mat-vec {r["fast_ms_per_iteration"]:.3f} ms '
                  f'(whole stage at 100 iterations {r["fast_100_iterations_call_ms"]:.1f} '
                  f'ms; column sums as one block {r["one_block_ms_per_iteration"]:.3f} ms), '
                  f'peaky scores '
                  f'x30 {r["peaky_fast_ms_per_iteration"]:.3f} ms, log-domain '
                  f'{r["log_domain_ms_per_iteration"]:.3f} ms; max |d| fast vs log-domain '
                  f'{r["max_abs_diff_fast_vs_log_domain"]:.1e}')
    if 'baseline' in sections and args.baseline_module:
        from .bench_gnn import baseline_comparison
        rows = baseline_comparison(args.baseline_module, args.sizes, max(3, args.reps // 2),
                                   args.weights, args.threads)
        report['baseline_threads'] = torch.get_num_threads()
        report['baseline'] = {'module': args.baseline_module, 'rows': rows}
        print(f'\nthis checkout vs {args.baseline_module} (same weights, interleaved, median, '
              f'{torch.get_num_threads()} threads):')
        for r in rows:
            line = (f'  {r["case"]:30} N={r["keypoints"]:5d}: {r["baseline_median_ms"]:8.1f} -> '
                    f'{r["now_median_ms"]:8.1f} ms = {r["speedup"]:.2f}x (per rep '
                    f'{min(r["per_rep_speedup"]):.2f}-{max(r["per_rep_speedup"]):.2f}x)')
            if 'now_pct_of_peak' in r:
                line += (f'; {r["baseline_pct_of_peak"]:.0f} -> {r["now_pct_of_peak"]:.0f} % of '
                         f'peak ({r["matmul_peak_gflops_per_s"]:.0f} GFLOP/s)')
            if 'identical_matches' in r:
                line += f'; identical matches {r["identical_matches"]}'
            if 'identical_mutual_argmax' in r:
                line += (f', mutual argmax {r["identical_mutual_argmax"]} '
                         f'({r["mutual_argmax_matches"]}), max |d log-assignment| '
                         f'{r["max_abs_diff_log_assignment"]:.1e}')
            elif 'matches' in r:
                line += f' ({r["matches"]}), max |d confidence| {r["max_confidence_diff"]:.1e}'
            print(line, flush=True)
    if 'window' in sections:
        from ..engine import MatchingEngine
        print(f'\nwindow: K={args.window} references in one batch vs sequential calls '
              f'({device}):')
        engine = MatchingEngine.from_weights(args.weights, device=str(device),
                                             num_threads=args.threads)
        sizes = [n for n in args.sizes if n in (512, 1024)] or [min(args.sizes)]
        report['window'] = window_benchmark(engine, sizes, args.window,
                                            max(4, args.reps // 2))
    if 'load' in sections and args.load > 0:
        from .bench_load import load_benchmark, print_load_table
        report['load'] = load_benchmark(args.load, 1024, max(4, args.reps // 2), 2,
                                        args.weights)
        print_load_table(report['load'])
    if 'malloc' in sections:
        report['malloc_probe'] = malloc_probe(args.speedup_size, max(6, args.reps))
        for k, v in report['malloc_probe'].items():
            if 'median_ms' in v:
                print(f'malloc {k:18}: median {v["median_ms"]:.0f} ms, p95 {v["p95_ms"]:.0f} ms, '
                      f'max {v["max_ms"]:.0f} ms')
    if 'node' in sections:
        try:
            from .node_bench import run_node_benchmark
        except ImportError as exc:  # torch-only install: no rclpy
            print(f'\nnode section skipped: {exc}')
        else:
            node = run_node_benchmark(num_keypoints=1024, frames=args.node_frames,
                                      weights=args.weights, device='cpu')
            report['node'] = node
            print(f'node end-to-end @1024: {json.dumps(node)[:600]}')
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f'\nwrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

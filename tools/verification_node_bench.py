# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""node_bench with the node's fundamental verification set and timed inside the node.

Usage: ``python tools/verification_node_bench.py METHOD:MAX_ITERS --json FILE [node_bench
options]``, e.g. ``ransac:1000`` (the node before issue 11's verification change) against
``ransac:200`` (the default now). The node calls ``geometry.verify_fundamental`` without a
method, so the setting is applied by replacing the function the node module imported; each
call is timed, and verify_p50_ms / verify_p95_ms plus node_vs_own_model_pct (the node's
end-to-end p50 over its own model-call p50) are added to the JSON node_bench writes.
"""

import functools
import json
import sys
import time

import numpy as np

import superglue_ros.geometry as geometry
from superglue_ros.threads import prefer_passive_waiting


def run(argv):
    if len(argv) < 1 or ':' not in argv[0] or '--json' not in argv:
        raise SystemExit(__doc__)
    prefer_passive_waiting()  # before torch loads (the node module imports it), as node_bench
    import superglue_ros.nodes.matcher_node as matcher_node
    from superglue_ros.tools.node_bench import main as node_bench
    method, iters = argv[0].split(':')
    verify = functools.partial(geometry.verify_fundamental, method=method,
                               max_iters=int(iters))
    times = []

    def timed_verify(*args, **kwargs):
        start = time.perf_counter()
        out = verify(*args, **kwargs)
        times.append(time.perf_counter() - start)
        return out

    matcher_node.verify_fundamental = timed_verify
    print(f'fundamental verification: {method}, max_iters {iters}')
    rc = node_bench(argv[1:])
    path = argv[argv.index('--json') + 1]
    with open(path) as f:
        result = json.load(f)
    result.update(
        verify_method=argv[0], verify_calls=len(times),
        verify_p50_ms=float(np.median(times) * 1e3) if times else float('nan'),
        verify_p95_ms=float(np.percentile(times, 95) * 1e3) if times else float('nan'),
        node_vs_own_model_pct=100 * (result['end_to_end_p50_ms'] - result['node_model_p50_ms'])
        / result['node_model_p50_ms'])
    with open(path, 'w') as f:
        json.dump(result, f, indent=2)
    for key in ('verify_p50_ms', 'verify_p95_ms', 'node_vs_own_model_pct'):
        print(f'{key:>24}: {result[key]:.2f}')
    return rc


if __name__ == '__main__':
    sys.exit(run(sys.argv[1:]))

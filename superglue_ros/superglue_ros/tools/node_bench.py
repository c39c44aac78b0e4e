# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Benchmark of the matcher node's overhead over the bare matcher call.

Runs a MatcherNode in-process over real DDS, feeds it consecutive TUM frames with ORB
keypoints one keyframe at a time (so nothing queues), and measures per keyframe:

- ``end_to_end``: keypoints received -> correspondences published, as the node stamps it into
  ``Correspondences.latency`` (stamp pairing, validation, conversion, prepare, match, RANSAC,
  message building);
- ``round_trip``: publish of the keypoints -> reception of the correspondences by the
  benchmark's own subscriber (adds DDS transport both ways);
- ``bare``: ``engine.match_prepared`` on the same two prepared keyframes, called directly by
  the benchmark right after the node answered, with the node's own engine (same run, same
  device, same load).

overhead_pct = (median end_to_end - median bare) / median bare * 100.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any, Dict, List, Optional

import numpy as np


def _median_ms(values: List[float]) -> float:
    return float(np.median(values) * 1e3) if values else float('nan')


def _p95_ms(values: List[float]) -> float:
    return float(np.percentile(values, 95) * 1e3) if values else float('nan')


def _feed(graph, ns: str, frames: List, features: List, count: int, timeout: float):
    """Publish ``count`` keyframes one at a time; yield (keypoints msg, correspondences, s)."""
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header
    from superglue_ros_msgs.msg import Correspondences, Keypoints

    from ..ros.conversions import keypoints_from_features, numpy_to_image
    from ..ros.graph import reliable_qos
    from ..ros.sync import to_time

    received: List[Any] = []
    arrived = threading.Event()

    def on_correspondences(msg) -> None:
        received.append((time.perf_counter(), msg))
        arrived.set()

    driver = graph.create_node('superglue_bench_driver')
    image_pub = driver.create_publisher(Image, f'/{ns}/image', reliable_qos(10))
    kp_pub = driver.create_publisher(Keypoints, f'/{ns}/keypoints', reliable_qos(10))
    sub = driver.create_subscription(Correspondences, f'/{ns}/correspondences',
                                     on_correspondences, reliable_qos(10))
    if not graph.wait_for(lambda: (image_pub.get_subscription_count()
                                   and kp_pub.get_subscription_count()
                                   and sub.get_publisher_count()), 20.0):
        raise RuntimeError('discovery between the benchmark and the node timed out')
    for k in range(count):
        i = k % len(frames)
        header = Header(stamp=to_time(1000.0 + 0.1 * k), frame_id='camera')
        kp_msg = keypoints_from_features(features[i], header, k + 1)
        image_pub.publish(numpy_to_image(frames[i], 'mono8', header, use_cv_bridge=False))
        arrived.clear()
        sent = time.perf_counter()
        kp_pub.publish(kp_msg)
        if not arrived.wait(timeout):
            raise RuntimeError(f'no correspondences for keyframe {k + 1} in {timeout} s')
        got, msg = received[-1]
        yield kp_msg, msg, got - sent


def run_node_benchmark(num_keypoints: int = 1024, frames: int = 30, weights: Optional[str] = None,
                       device: str = 'cpu', warmup: int = 3, verify: bool = True,
                       domain_id: Optional[int] = None, timeout: float = 60.0
                       ) -> Dict[str, Any]:
    """Measure the node's end-to-end latency against the bare matcher call; returns a dict."""
    import cv2
    from rclpy.parameter import Parameter
    from superglue_ros_msgs.msg import Correspondences

    from ..features import OrbExtractor
    from ..nodes.matcher_node import MatcherNode
    from ..ros.conversions import features_from_keypoints
    from ..ros.graph import Graph, reliable_input_overrides
    from ..weights import weights_path
    from .demo_bag import bundled_frames

    extractor = OrbExtractor(num_keypoints)
    grays = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in bundled_frames()]
    features = [extractor(g) for g in grays]
    weights = str(weights_path(weights))
    ns = 'superglue_bench'
    overrides = [Parameter('weights', value=weights), Parameter('device', value=device),
                 Parameter('max_keypoints', value=0), Parameter('queue_policy', value='block'),
                 Parameter('verify', value=bool(verify))]
    overrides += reliable_input_overrides([f'/{ns}/image', f'/{ns}/keypoints'], 10)
    end_to_end, round_trip, bare, matches, sizes = [], [], [], [], []
    with Graph(domain_id, threads=2, name='superglue_bench_executor') as graph:
        matcher = graph.add(MatcherNode(context=graph.context, namespace=ns,
                                        parameter_overrides=overrides))
        engine = matcher.engine
        previous = None
        for k, (kp_msg, msg, rtt) in enumerate(_feed(graph, ns, grays, features,
                                                     frames + warmup + 1, timeout)):
            # The same pair, matched directly with the node's engine.
            current = engine.prepare(features_from_keypoints(kp_msg))
            if previous is not None:
                start = time.perf_counter()
                engine.match_prepared(previous, current)
                bare_s = time.perf_counter() - start
            previous = current
            if msg.status != Correspondences.STATUS_OK or k <= warmup:
                continue
            end_to_end.append(float(msg.latency))
            round_trip.append(rtt)
            bare.append(bare_s)
            matches.append(len(msg.current_indices))
            sizes.append(len(kp_msg.x))
        node_model = matcher.stats()['match_time_p50']

    e2e, base = _median_ms(end_to_end), _median_ms(bare)
    return {
        'num_keypoints': float(np.mean(sizes)) if sizes else 0.0,
        'frames': len(end_to_end),
        'device': str(engine.device),
        'weights': weights,
        'verify': bool(verify),
        'end_to_end_p50_ms': e2e,
        'end_to_end_p95_ms': _p95_ms(end_to_end),
        'round_trip_p50_ms': _median_ms(round_trip),
        'bare_match_p50_ms': base,
        'bare_match_p95_ms': _p95_ms(bare),
        'node_model_p50_ms': float(node_model * 1e3),
        'overhead_pct': (e2e - base) / base * 100.0,
        'round_trip_overhead_pct': (_median_ms(round_trip) - base) / base * 100.0,
        'matches_mean': float(np.mean(matches)) if matches else 0.0,
        'torch_threads': _torch_threads(),
    }


def _torch_threads() -> int:
    import torch
    return int(torch.get_num_threads())


def main(argv=None) -> int:
    """Command line: print the benchmark figures (and optionally write them as JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--keypoints', type=int, default=1024, help='ORB keypoints per frame')
    parser.add_argument('--frames', type=int, default=30, help='measured keyframes')
    parser.add_argument('--warmup', type=int, default=3, help='keyframes not measured')
    parser.add_argument('--weights', default=None, help='weights file (default: shipped)')
    parser.add_argument('--device', default='cpu', help='auto | cpu | cuda')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0 = default)')
    parser.add_argument('--no-verify', action='store_true', help='disable RANSAC')
    parser.add_argument('--domain-id', type=int, default=None, help='ROS domain id')
    parser.add_argument('--json', default=None, help='also write the results to this file')
    parser.add_argument('--load', type=int, default=0, metavar='N',
                        help='run N busy processes beside the benchmark (bounded, see '
                             'bench_load.py)')
    args = parser.parse_args(argv)
    from ..threads import prefer_passive_waiting
    prefer_passive_waiting()  # as the node's own entry point does (before torch loads)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    from .bench_load import start_busy, stop_busy
    busy = start_busy(args.load, 3600)
    try:
        result = run_node_benchmark(args.keypoints, args.frames, args.weights, args.device,
                                    args.warmup, not args.no_verify, args.domain_id)
    finally:
        stop_busy(busy)
    result['busy_processes'] = args.load
    for key, value in result.items():
        print(f'{key:>24}: {value:.2f}' if isinstance(value, float) else f'{key:>24}: {value}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

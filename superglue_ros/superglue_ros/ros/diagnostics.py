# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The matcher node's /diagnostics status, built from its statistics."""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from .stats import refinement_summary
from ..inputs import REASONS


def matcher_status(name: str, device: str, stats: Dict[str, Any], match_threshold: float,
                   reported: Counter, camera_model: str = 'none') -> DiagnosticStatus:
    """Build the status of one report; ``reported`` holds the previous report's counts.

    ``camera_model``: the distortion model of the camera_info in use, 'none' without one.

    The level is ERROR when matcher errors or watchdog overruns (a match past
    match_deadline) grew since the last report, WARN when drops, rejections, malformed
    messages, unpaired keypoints or match refinement failures (pairs published unrefined)
    grew, else OK. ``reported`` is updated in place.
    """
    s = stats
    status = DiagnosticStatus(name=name, hardware_id=device)
    problems = sum(s.get(k, 0) for k in ('dropped_queue_full', 'rejected', 'malformed_image',
                                         'malformed_keypoints'))
    errors = s.get('matcher_errors', 0) + s.get('internal_errors', 0)
    overruns = s.get('watchdog_overruns', 0)
    unpaired = s['sync_dropped_keypoints']
    refine_failures = s.get('refine_failures', 0)
    if overruns > reported['overruns']:
        status.level, status.message = DiagnosticStatus.ERROR, 'match past its deadline'
    elif errors > reported['errors']:
        status.level, status.message = DiagnosticStatus.ERROR, 'matcher errors'
    elif problems > reported['problems']:
        status.level, status.message = DiagnosticStatus.WARN, 'dropped or rejected input'
    elif unpaired > reported['unpaired']:
        # Images without keypoints are normal (not every frame is a keyframe); keypoints
        # without an image are lost keyframes.
        status.level, status.message = DiagnosticStatus.WARN, 'unpaired keypoints'
    elif refine_failures > reported['refine_failures']:
        status.level, status.message = DiagnosticStatus.WARN, 'match refinement failed'
    else:
        status.level, status.message = DiagnosticStatus.OK, 'ok'
    reported['errors'], reported['problems'], reported['unpaired'] = errors, problems, unpaired
    reported['overruns'], reported['refine_failures'] = overruns, refine_failures
    refinement = refinement_summary(s)
    values = {
        'device': device,
        'keyframes_received': s.get('keyframes_received', 0),
        'correspondences_published': s.get('published', 0),
        'latency_p50_ms': f'{s["latency_p50"] * 1e3:.2f}',
        'latency_p95_ms': f'{s["latency_p95"] * 1e3:.2f}',
        'model_time_p50_ms': f'{s["match_time_p50"] * 1e3:.2f}',
        'matches_per_keyframe': f'{s["matches_per_keyframe"]:.1f}',
        'inlier_ratio': f'{s["inlier_ratio"]:.3f}',
        'match_threshold': f'{match_threshold:.3f}',
        'dropped_queue_full': s.get('dropped_queue_full', 0),
        'sync_dropped_images': s['sync_dropped_images'],
        'sync_dropped_keypoints': s['sync_dropped_keypoints'],
        'matcher_errors': s.get('matcher_errors', 0),
        'internal_errors': s.get('internal_errors', 0),
        'rejected_total': s.get('rejected', 0),
        'watchdog_overruns': overruns,
        'malformed_images': s.get('malformed_image', 0),
        'malformed_keypoints': s.get('malformed_keypoints', 0),
        'oversized_on_arrival': s.get('oversized_on_arrival', 0),
        'stamp_resets': s.get('stamp_resets', 0),
        'reset_requests': s.get('reset_requests', 0),
        'camera_model': camera_model,
        'pose_estimates': s.get('pose_estimates', 0),
        'pose_failures': s.get('pose_failures', 0),
        'bad_camera_info': s.get('bad_camera_info', 0),
        'camera_info_size_mismatch': s.get('camera_info_size_mismatch', 0),
        'keyframes_stored': s.get('keyframes_stored', 0),
        'store_mib': f'{s.get("store_bytes", 0) / 2**20:.1f}',
        'evicted_by_count': s.get('evicted_count', 0),
        'evicted_by_memory': s.get('evicted_memory', 0),
        'evicted_by_reset': s.get('evicted_reset', 0),
        'window_batches': s.get('window_batches', 0),
        'match_keyframes_requests': s.get('match_keyframes_requests', 0),
        'refined_pairs': refinement['pairs'],
        'refined_points': refinement['points'],
        'refined_share': f'{refinement["share"]:.3f}',
        'refine_ms_mean': f'{refinement["ms_per_pair"]:.2f}',
        'refine_failures': refine_failures,
    }
    for reason in REASONS:
        values[f'rejected_{reason}'] = s.get(f'rejected_{reason}', 0)
    status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
    return status

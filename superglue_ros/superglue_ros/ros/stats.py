# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Counters and latency windows of the matcher node, shared by its threads."""

from __future__ import annotations

from collections import Counter, deque
import threading
from typing import Any, Deque, Dict, Optional, Sequence

import numpy as np


def percentile(values: Sequence[float], q: float) -> float:
    """q-th percentile of ``values``; 0.0 when there are none."""
    return float(np.percentile(np.asarray(values, np.float64), q)) if len(values) else 0.0


class MatcherStats:
    """Event counters plus sliding windows over the last ``window`` matched keyframes."""

    def __init__(self, window: int = 200):
        self._lock = threading.Lock()
        self._counts: Counter = Counter()
        self._latencies: Deque[float] = deque(maxlen=window)
        self._match_times: Deque[float] = deque(maxlen=window)
        self._num_matches: Deque[int] = deque(maxlen=window)
        self._inlier_ratios: Deque[float] = deque(maxlen=window)

    def count(self, key: str, n: int = 1) -> int:
        """Add ``n`` to counter ``key``; returns its new value."""
        with self._lock:
            self._counts[key] += n
            return self._counts[key]

    def add_match(self, latency: float, match_time: float, matches: int,
                  inlier_ratio: Optional[float]) -> None:
        """Record one matched keyframe (counted as 'ok')."""
        with self._lock:
            self._counts['ok'] += 1
            self._latencies.append(latency)
            self._match_times.append(match_time)
            self._num_matches.append(matches)
            if inlier_ratio is not None:
                self._inlier_ratios.append(inlier_ratio)

    def snapshot(self) -> Dict[str, Any]:
        """Counters plus latency percentiles and window means [s], as a new dict."""
        with self._lock:
            lat, mt = list(self._latencies), list(self._match_times)
            out: Dict[str, Any] = dict(self._counts)
            out.update({
                'latency_p50': percentile(lat, 50), 'latency_p95': percentile(lat, 95),
                'match_time_p50': percentile(mt, 50), 'match_time_p95': percentile(mt, 95),
                'matches_per_keyframe': float(np.mean(self._num_matches))
                if self._num_matches else 0.0,
                'inlier_ratio': float(np.mean(self._inlier_ratios))
                if self._inlier_ratios else 0.0,
            })
        return out


def refinement_summary(stats: Dict[str, Any]) -> Dict[str, Any]:
    """Summarise the sub-pixel refinement from the matcher's counters: pairs, share, time."""
    pairs, candidates = int(stats.get('refined_pairs', 0)), int(stats.get('refine_candidates', 0))
    return {'pairs': pairs, 'points': int(stats.get('refined_points', 0)),
            'share': stats.get('refined_points', 0) / candidates if candidates else 0.0,
            'ms_per_pair': stats.get('refine_time_us', 0) * 1e-3 / pairs if pairs else 0.0,
            'failures': int(stats.get('refine_failures', 0))}

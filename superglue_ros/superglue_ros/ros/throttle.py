# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Repeated warnings at most once per period and kind, with a count of what was held back."""

from __future__ import annotations

from collections import Counter
import threading
import time
from typing import Callable, Dict, Union


class ThrottledLogger:
    """Log through an rclpy logger at most once per ``period`` seconds for each ``key``.

    ``period`` is a number or a callable returning one (e.g. a node parameter read at each
    call, so that changing the parameter takes effect at once). When messages were held back,
    the next one that goes out says how many.
    """

    def __init__(self, logger, period: Union[float, Callable[[], float]]):
        self._logger = logger
        self._period = period if callable(period) else (lambda: float(period))
        self._last: Dict[str, float] = {}
        self._suppressed: Counter = Counter()
        self._lock = threading.Lock()

    def warning(self, key: str, text: str) -> None:
        """Log ``text`` as a warning unless ``key`` was logged less than a period ago."""
        text = self._admit(key, text)
        if text is not None:
            self._logger.warning(text)

    def error(self, key: str, text: str) -> None:
        """Log ``text`` as an error unless ``key`` was logged less than a period ago."""
        # One call site per severity: rclpy refuses to change the severity of a call site.
        text = self._admit(key, text)
        if text is not None:
            self._logger.error(text)

    def _admit(self, key: str, text: str):
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._period():
                self._suppressed[key] += 1
                return None
            suppressed = self._suppressed.pop(key, 0)
            self._last[key] = now
        if suppressed:
            text += f' ({suppressed} more like this in the last {now - last:.1f} s)'
        return text

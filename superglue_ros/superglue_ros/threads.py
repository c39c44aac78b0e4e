# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""How many CPU threads one match may use, fixed or chosen per call from the machine's load.

A matcher on a robot shares the CPU with the SLAM back-end, drivers and planners. Measured on
a 2-core machine beside busy processes (docs/PERFORMANCE.md): with OpenMP's default wait
policy, idle worker threads spin, and two torch threads were 2.7-10x slower than one as soon
as another process wanted a core (each parallel operation waits for its slowest thread, and
the spinning one holds the core that thread needs). With ``OMP_WAIT_POLICY=PASSIVE`` (set by
the node's entry point) waiting threads sleep, and all cores were the fastest choice at every
load measured.

``num_threads = 0`` (automatic) therefore means: all usable cores when OpenMP waits
passively; otherwise only the cores that other processes left idle since the previous call
(at least one).
"""

from __future__ import annotations

import os
import time
from typing import Optional, Tuple


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _machine_busy_seconds() -> Optional[float]:
    """CPU seconds all processes spent busy since boot (/proc/stat), None off Linux."""
    try:
        with open('/proc/stat') as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != 'cpu':
        return None
    # user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
    ticks = [int(v) for v in fields[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf('SC_CLK_TCK')


def _own_busy_seconds() -> float:
    """CPU seconds this process (all its threads) has used."""
    t = os.times()
    return t.user + t.system


def passive_waiting() -> bool:
    """Whether OpenMP threads sleep while waiting (OMP_WAIT_POLICY=PASSIVE at start-up)."""
    return os.environ.get('OMP_WAIT_POLICY', '').strip().upper() == 'PASSIVE'


def prefer_passive_waiting() -> None:
    """Make OpenMP threads sleep while waiting, unless the user chose a policy.

    Effective only before the OpenMP runtime starts (before torch is imported): entry points
    call it first thing.
    """
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')


class LoadMonitor:
    """Cores kept busy by other processes, averaged over windows of at least ``min_window`` s.

    Reads /proc/stat and this process's own CPU time (about 20 us); other processes' use is
    the machine's busy time minus ours, so our own thread count does not feed back into it.
    Off Linux the load reads as 0 (automatic = all usable cores).
    """

    def __init__(self, min_window: float = 0.5):
        self.min_window = float(min_window)
        self.other_busy_cores = 0.0
        self._last = self._sample()

    @staticmethod
    def _sample() -> Optional[Tuple[float, float, float]]:
        busy = _machine_busy_seconds()
        if busy is None:
            return None
        return time.monotonic(), busy, _own_busy_seconds()

    def update(self) -> float:
        """Refresh the estimate when a window has passed; return other processes' busy cores."""
        now = self._sample()
        if now is None or self._last is None:
            return 0.0
        wall = now[0] - self._last[0]
        if wall >= self.min_window:
            other = (now[1] - self._last[1]) - (now[2] - self._last[2])
            self.other_busy_cores = max(0.0, other / wall)
            self._last = now
        return self.other_busy_cores


class ThreadPolicy:
    """Threads for the next call: ``num_threads`` when > 0, else the cores left idle (>= 1)."""

    def __init__(self, num_threads: int = 0, monitor: Optional[LoadMonitor] = None):
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) \
                or num_threads < 0:
            raise ValueError(f'num_threads must be an integer >= 0 (0 = automatic), got '
                             f'{num_threads!r}')
        self.requested = num_threads
        self.cores = usable_cores()
        self.monitor = monitor if monitor is not None or num_threads else LoadMonitor()

    @property
    def automatic(self) -> bool:
        return self.requested == 0

    def threads(self) -> int:
        """Thread count for the call about to run."""
        if self.requested:
            return self.requested
        if passive_waiting():
            return self.cores
        busy = self.monitor.update()
        return max(1, min(self.cores, self.cores - int(round(busy))))

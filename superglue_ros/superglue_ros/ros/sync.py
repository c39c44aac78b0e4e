# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Pairing messages of several topics by header stamp.

``StampSynchronizer`` uses message_filters' ``ApproximateTimeSynchronizer`` when it is
importable (a real ROS 2 install) and ``ApproximateTimeSync`` otherwise (the pip setup, where
message_filters does not exist). Both keep a queue of ``queue_size`` messages per input and
emit one tuple, in input order, as soon as every input holds a message whose stamp lies within
``slop`` seconds of the others.

``ApproximateTimeSync`` also counts what it throws away: messages pushed out of a full queue
(``overflow``), messages older than an emitted set that can no longer be paired (``stale``)
and messages replaced by a later one with the same stamp (``replaced``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
import math
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

try:  # a real ROS 2 install has message_filters; the pip setup does not
    import message_filters
except ImportError:  # pragma: no cover - depends on the installation
    message_filters = None

HAVE_MESSAGE_FILTERS = message_filters is not None


def time_ns(t: Any) -> int:
    """builtin_interfaces/Time (anything with sec and nanosec) in integer nanoseconds."""
    return int(t.sec) * 1_000_000_000 + int(t.nanosec)


def stamp_ns(msg: Any) -> int:
    """header.stamp of a message in integer nanoseconds."""
    return time_ns(msg.header.stamp)


def to_time(seconds: float):
    """Seconds -> builtin_interfaces/Time (rounded to the nanosecond)."""
    from builtin_interfaces.msg import Time
    sec = math.floor(seconds)
    nanosec = int(round((seconds - sec) * 1e9))  # the fraction alone keeps the precision
    sec, nanosec = sec + nanosec // 1_000_000_000, nanosec % 1_000_000_000
    return Time(sec=int(sec), nanosec=nanosec)


@dataclass(frozen=True)
class SyncCounters:
    """What a StampSynchronizer has seen, per input in topic order."""

    received: Tuple[int, ...]  # messages that reached the synchronizer
    dropped: Tuple[int, ...]  # messages thrown away without a partner
    emitted: int  # complete sets passed to the callback


class ApproximateTimeSync:
    """Approximate-time synchronizer for ``num_inputs`` inputs, without rclpy.

    ``add(index, msg)`` inserts a message into the queue of input ``index``. The newest
    message is the pivot: every other input contributes its message closest in time to it,
    and when all stamps lie within ``slop`` seconds of each other the set is removed from the
    queues and passed to ``callback(*msgs)``. Messages older than the emitted ones are then
    discarded as stale (they could only produce out-of-order sets). Thread-safe; the callback
    runs under the lock, so emitted sets are delivered in order.
    """

    def __init__(self, num_inputs: int, queue_size: int, slop: float,
                 callback: Callable[..., None]):
        if num_inputs < 1:
            raise ValueError(f'num_inputs must be >= 1, got {num_inputs}')
        if queue_size < 1:
            raise ValueError(f'queue_size must be >= 1, got {queue_size}')
        if slop < 0:
            raise ValueError(f'slop must be >= 0 s, got {slop}')
        self.queue_size = int(queue_size)
        self.slop_ns = int(round(slop * 1e9))
        self._callback = callback
        self._queues: List[Dict[int, Any]] = [{} for _ in range(num_inputs)]
        self._lock = threading.Lock()
        self.received = [0] * num_inputs
        self.overflow = [0] * num_inputs
        self.stale = [0] * num_inputs
        self.replaced = [0] * num_inputs
        self.emitted = 0

    def dropped(self) -> List[int]:
        """Messages per input thrown away without being emitted."""
        return [o + s + r for o, s, r in zip(self.overflow, self.stale, self.replaced)]

    def queued(self) -> List[int]:
        """Messages per input waiting for a partner."""
        with self._lock:
            return [len(q) for q in self._queues]

    def add(self, index: int, msg: Any) -> None:
        """Insert ``msg`` (anything with header.stamp) for input ``index``; maybe emit."""
        t = stamp_ns(msg)
        with self._lock:
            self.received[index] += 1
            queue = self._queues[index]
            if t in queue:
                self.replaced[index] += 1
            queue[t] = msg
            while len(queue) > self.queue_size:
                del queue[min(queue)]
                self.overflow[index] += 1
            chosen: List[int] = []
            for j, other in enumerate(self._queues):
                if j == index:
                    chosen.append(t)
                    continue
                if not other:
                    return
                chosen.append(min(other, key=lambda s: abs(s - t)))
            if max(chosen) - min(chosen) > self.slop_ns:
                return
            msgs = tuple(q.pop(s) for q, s in zip(self._queues, chosen))
            for j, (q, s) in enumerate(zip(self._queues, chosen)):
                old = [k for k in q if k < s]
                for k in old:
                    del q[k]
                self.stale[j] += len(old)
            self.emitted += 1
            self._callback(*msgs)


class StampSynchronizer:
    """Subscribe to several topics and call ``callback(*msgs)`` with stamp-paired messages.

    ``topics`` is a sequence of (message type, topic name). The subscription keyword arguments
    (qos_profile, callback_group, qos_overriding_options) are passed to every subscription.
    ``use_message_filters`` None = use it when importable.
    """

    def __init__(self, node, topics: Sequence[Tuple[type, str]], queue_size: int, slop: float,
                 callback: Callable[..., None], use_message_filters: Optional[bool] = None,
                 **subscription_kwargs):
        self._callback = callback
        self.queue_size = int(queue_size)
        self.received = [0] * len(topics)
        self.emitted = 0
        use_mf = HAVE_MESSAGE_FILTERS if use_message_filters is None else use_message_filters
        self.backend = 'message_filters' if use_mf else 'own'
        if use_mf:
            self._filters = []
            for k, (msg_type, topic) in enumerate(topics):
                sub = message_filters.Subscriber(node, msg_type, topic, **subscription_kwargs)
                sub.registerCallback(partial(self._count, k))
                self._filters.append(sub)
            self._sync = message_filters.ApproximateTimeSynchronizer(
                self._filters, self.queue_size, slop)
            self._sync.registerCallback(self._emit)
        else:
            self._sync = ApproximateTimeSync(len(topics), self.queue_size, slop, self._emit)
            for k, (msg_type, topic) in enumerate(topics):
                # The node keeps the subscription alive; nothing else needs it.
                node.create_subscription(msg_type, topic, partial(self._add, k),
                                         **subscription_kwargs)

    def _count(self, index: int, msg: Any) -> None:
        self.received[index] += 1

    def _add(self, index: int, msg: Any) -> None:
        self.received[index] += 1
        self._sync.add(index, msg)

    def _emit(self, *msgs: Any) -> None:
        self.emitted += 1
        self._callback(*msgs)

    def dropped(self) -> List[int]:
        """Messages per input never paired (message_filters: estimate, queue excluded)."""
        if isinstance(self._sync, ApproximateTimeSync):
            return self._sync.dropped()
        return [max(0, r - self.emitted - self.queue_size) for r in self.received]

    def counters(self) -> SyncCounters:
        """Received, dropped and emitted counts (a snapshot)."""
        return SyncCounters(tuple(self.received), tuple(self.dropped()), self.emitted)

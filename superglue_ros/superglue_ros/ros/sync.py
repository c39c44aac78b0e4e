# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Pairing messages of several topics by header stamp.

``StampSynchronizer`` pairs with message_filters' ``ApproximateTimeSynchronizer`` when it is
importable (a real ROS 2 install; ``MessageFiltersSync``) and with ``ApproximateTimeSync``
otherwise (the pip setup, where message_filters does not exist). Both keep a queue of
``queue_size`` messages per input and emit one tuple, in input order, as soon as every input
holds a message whose stamp lies within ``slop`` seconds (> 0) of the others; after an emitted
set, older queued messages are discarded (they could only give out-of-order sets). When one
input's stamps go back (a bag played again, a simulation reset), queued messages stamped after
the new one belong to the stream before the jump: they are discarded (counted as dropped), so
they neither pair with nor push out the new stream's messages. Both count
exactly, per input, the messages received and those dropped without a partner, so the node's
"unpaired keypoints" counter and warning are the same on either install.

``ApproximateTimeSync`` also says why it dropped them: pushed out of a full queue
(``overflow``), older than an emitted set (``stale``), replaced by a later message with the
same stamp (``replaced``) or thrown away by ``reset()`` (``flushed``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import partial
import math
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

try:  # a real ROS 2 install has message_filters; the pip setup does not
    import message_filters
except ImportError:  # pragma: no cover - depends on the installation
    message_filters = None

HAVE_MESSAGE_FILTERS = message_filters is not None
BACKENDS = ('own', 'message_filters')


def check_slop(slop: float) -> float:
    """Return ``slop`` [s] as a float; raise ValueError unless it is finite and > 0.

    message_filters pairs only stamps strictly closer than the slop, so 0 would never pair.
    """
    slop = float(slop)
    if not (math.isfinite(slop) and slop > 0.0):
        raise ValueError(f'sync_slop must be > 0 s (stamps closer than it are paired), got '
                         f'{slop}')
    return slop


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
        self.queue_size = int(queue_size)
        self.slop_ns = int(round(check_slop(slop) * 1e9))
        self._callback = callback
        self._queues: List[Dict[int, Any]] = [{} for _ in range(num_inputs)]
        self._lock = threading.Lock()
        self.received = [0] * num_inputs
        self.overflow = [0] * num_inputs
        self.stale = [0] * num_inputs
        self.replaced = [0] * num_inputs
        self.flushed = [0] * num_inputs
        self.emitted = 0
        self._last = [None] * num_inputs  # newest stamp per input [ns]

    def dropped(self) -> List[int]:
        """Messages per input thrown away without being emitted."""
        return [o + s + r + f for o, s, r, f in zip(self.overflow, self.stale, self.replaced,
                                                    self.flushed)]

    def reset(self) -> List[int]:
        """Drop every queued message (counted as ``flushed``); returns how many per input.

        After the stream's clock went back, messages queued before the jump would otherwise
        pair with, or push out, the new ones.
        """
        with self._lock:
            flushed = [len(q) for q in self._queues]
            for j, q in enumerate(self._queues):
                self.flushed[j] += len(q)
                q.clear()
            self._last = [None] * len(self._queues)
            return flushed

    def queued(self) -> List[int]:
        """Messages per input waiting for a partner."""
        with self._lock:
            return [len(q) for q in self._queues]

    def add(self, index: int, msg: Any) -> None:
        """Insert ``msg`` (anything with header.stamp) for input ``index``; maybe emit."""
        t = stamp_ns(msg)
        with self._lock:
            self.received[index] += 1
            if self._last[index] is not None and t < self._last[index]:
                for j, q in enumerate(self._queues):
                    self.flushed[j] += _discard_after(q, t)
            self._last[index] = t
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


class MessageFiltersSync:
    """message_filters' ``ApproximateTimeSynchronizer`` behind ``ApproximateTimeSync``'s API.

    ``add(index, msg)`` feeds input ``index`` (a ``message_filters.SimpleFilter`` in front of
    the real synchronizer). On top of message_filters it discards queued messages older than an
    emitted set, as ``ApproximateTimeSync`` does, and counts exactly: every message received
    is emitted, still queued or dropped (``dropped = received - emitted - queued``, read under
    the lock the pairing runs in, so a count never includes a message in flight).
    """

    def __init__(self, num_inputs: int, queue_size: int, slop: float,
                 callback: Callable[..., None]):
        if message_filters is None:
            raise RuntimeError('message_filters is not installed')
        if num_inputs < 1:
            raise ValueError(f'num_inputs must be >= 1, got {num_inputs}')
        if queue_size < 1:
            raise ValueError(f'queue_size must be >= 1, got {queue_size}')
        self.queue_size = int(queue_size)
        self._callback = callback
        self._lock = threading.RLock()  # the callback may read the counters
        self._inputs = [message_filters.SimpleFilter() for _ in range(num_inputs)]
        self._sync = message_filters.ApproximateTimeSynchronizer(
            self._inputs, self.queue_size, check_slop(slop))
        self._sync.registerCallback(self._emit)
        self.received = [0] * num_inputs
        self.emitted = 0
        self._last = [None] * num_inputs  # newest stamp per input [ns]

    def add(self, index: int, msg: Any) -> None:
        """Insert ``msg`` (anything with header.stamp) for input ``index``; maybe emit."""
        t = stamp_ns(msg)
        with self._lock:
            self.received[index] += 1
            if self._last[index] is not None and t < self._last[index]:
                with self._sync.lock:  # message_filters' own lock over its queues
                    for q in self._sync.queues:
                        _discard_after(q, t)  # counted: dropped = received - emitted - queued
            self._last[index] = t
            self._inputs[index].signalMessage(msg)

    def _emit(self, *msgs: Any) -> None:
        # Runs inside message_filters' add(), under its lock; it removes the emitted messages
        # from its queues when this returns.
        for queue, msg in zip(self._sync.queues, msgs):
            t = stamp_ns(msg)
            for k in [k for k in queue if k < t]:
                del queue[k]
        self.emitted += 1
        self._callback(*msgs)

    def queued(self) -> List[int]:
        """Messages per input waiting for a partner."""
        with self._lock:
            return [len(q) for q in self._sync.queues]

    def dropped(self) -> List[int]:
        """Messages per input thrown away without being emitted."""
        with self._lock:
            return [r - self.emitted - len(q) for r, q in zip(self.received, self._sync.queues)]

    def reset(self) -> List[int]:
        """Drop every queued message (then counted as dropped); returns how many per input."""
        with self._lock:
            flushed = [len(q) for q in self._sync.queues]
            for q in self._sync.queues:
                q.clear()
            self._last = [None] * len(self._inputs)
            return flushed


def _discard_after(queue: Dict[int, Any], t: int) -> int:
    """Remove the entries of a stamp-keyed queue stamped after ``t`` [ns]; return how many."""
    later = [k for k in queue if k > t]
    for k in later:
        del queue[k]
    return len(later)


def make_sync(backend: str, num_inputs: int, queue_size: int, slop: float,
              callback: Callable[..., None]) -> Union[ApproximateTimeSync, MessageFiltersSync]:
    """Build the pairing core of ``backend`` ('own' or 'message_filters')."""
    if backend == 'own':
        return ApproximateTimeSync(num_inputs, queue_size, slop, callback)
    if backend == 'message_filters':
        return MessageFiltersSync(num_inputs, queue_size, slop, callback)
    raise ValueError(f'unknown synchronizer backend {backend!r}: one of {BACKENDS}')


class StampSynchronizer:
    """Subscribe to several topics and call ``callback(*msgs)`` with stamp-paired messages.

    ``topics`` is a sequence of (message type, topic name) or (message type, topic name, QoS
    profile). The subscription keyword arguments (qos_profile, callback_group,
    qos_overriding_options) are passed to every subscription; a per-topic QoS profile wins
    over ``qos_profile``. ``use_message_filters`` None = use it when importable; then the
    subscriptions are ``message_filters.Subscriber``s too.
    """

    def __init__(self, node, topics: Sequence[Tuple[Any, ...]], queue_size: int, slop: float,
                 callback: Callable[..., None], use_message_filters: Optional[bool] = None,
                 **subscription_kwargs):
        from rclpy.qos import QoSProfile
        self._callback = callback
        self.queue_size = int(queue_size)
        use_mf = HAVE_MESSAGE_FILTERS if use_message_filters is None else use_message_filters
        self.backend = 'message_filters' if use_mf else 'own'
        self._sync = make_sync(self.backend, len(topics), self.queue_size, slop, callback)
        self._filters = []  # message_filters.Subscriber keeps no reference of its own
        for k, (msg_type, topic, *qos) in enumerate(topics):
            kwargs = dict(subscription_kwargs)
            if qos:
                kwargs['qos_profile'] = qos[0]
            if isinstance(kwargs.get('qos_profile'), QoSProfile):
                # QoS overrides are written into the profile: one copy per subscription.
                kwargs['qos_profile'] = copy.copy(kwargs['qos_profile'])
            if use_mf:
                sub = message_filters.Subscriber(node, msg_type, topic, **kwargs)
                sub.registerCallback(partial(self._sync.add, k))
                self._filters.append(sub)
            else:
                # The node keeps the subscription alive; nothing else needs it.
                node.create_subscription(msg_type, topic, partial(self._sync.add, k), **kwargs)

    @property
    def received(self) -> List[int]:
        """Messages per input that reached the synchronizer."""
        return list(self._sync.received)

    @property
    def emitted(self) -> int:
        """Complete sets passed to the callback."""
        return self._sync.emitted

    def dropped(self) -> List[int]:
        """Messages per input thrown away without a partner (exact on both backends)."""
        return self._sync.dropped()

    def counters(self) -> SyncCounters:
        """Received, dropped and emitted counts (a snapshot)."""
        return SyncCounters(tuple(self.received), tuple(self.dropped()), self.emitted)

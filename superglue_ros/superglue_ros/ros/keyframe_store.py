# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The matcher's keyframe store: the last accepted keyframes, prepared, bounded twice.

It keeps keyframes in the form the network takes (so a window match or a loop-closure request
re-encodes nothing), newest last, bounded by a count and by memory; the oldest go first, the
newest always stays. It remembers which ids it evicted (a bounded record), so a request for one
can say "evicted" rather than "unknown". Not thread-safe: the node holds its state lock.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Any, Callable, Generic, List, Optional, Tuple, TypeVar

K = TypeVar('K')

HELD, EVICTED, UNKNOWN = 'held', 'evicted', 'unknown'


class KeyframeStore(Generic[K]):
    """Keyframes by id, oldest first, within ``max_keyframes`` and ``max_bytes``.

    ``size_of(keyframe)`` gives a keyframe's bytes. ``counts`` holds the evictions by cause
    (``evicted_count``, ``evicted_memory``, ``evicted_reset``).
    """

    def __init__(self, max_keyframes: int, max_bytes: int, size_of: Callable[[K], int],
                 remember_evicted: int = 100_000):
        if max_keyframes < 1:
            raise ValueError(f'max_keyframes must be >= 1, got {max_keyframes}')
        if max_bytes <= 0:
            raise ValueError(f'the memory bound must be > 0 bytes, got {max_bytes}')
        self.max_keyframes = int(max_keyframes)
        self.max_bytes = int(max_bytes)
        self._size_of = size_of
        self._items: 'OrderedDict[int, Tuple[K, int]]' = OrderedDict()
        self._evicted: 'OrderedDict[int, str]' = OrderedDict()  # id -> cause, bounded
        self._remember = int(remember_evicted)
        self.bytes = 0
        self.counts: Counter = Counter()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, keyframe_id: int, keyframe: K) -> List[int]:
        """Store ``keyframe`` as the newest; return the ids evicted to make room."""
        keyframe_id = int(keyframe_id)
        if keyframe_id in self._items:  # the same id again replaces the stored one
            self.bytes -= self._items.pop(keyframe_id)[1]
        size = int(self._size_of(keyframe))
        self._items[keyframe_id] = (keyframe, size)
        self._evicted.pop(keyframe_id, None)
        self.bytes += size
        evicted = []
        while len(self._items) > 1 and (len(self._items) > self.max_keyframes
                                        or self.bytes > self.max_bytes):
            cause = 'count' if len(self._items) > self.max_keyframes else 'memory'
            evicted.append(self._drop_oldest(cause))
        return evicted

    def _drop_oldest(self, cause: str) -> int:
        old_id, (_, size) = self._items.popitem(last=False)
        self.bytes -= size
        self.counts[f'evicted_{cause}'] += 1
        self._evicted[old_id] = cause
        while len(self._evicted) > self._remember:
            self._evicted.popitem(last=False)
        return old_id

    def newest(self, k: int = 1) -> List[K]:
        """Return the ``k`` newest keyframes, newest first."""
        out = []
        for _, (keyframe, _) in reversed(self._items.items()):
            if len(out) == k:
                break
            out.append(keyframe)
        return out

    def lookup(self, keyframe_id: int) -> Tuple[Optional[K], str]:
        """Return (keyframe, HELD), (None, EVICTED) or (None, UNKNOWN)."""
        item = self._items.get(int(keyframe_id))
        if item is not None:
            return item[0], HELD
        return None, EVICTED if int(keyframe_id) in self._evicted else UNKNOWN

    def evicted_cause(self, keyframe_id: int) -> Optional[str]:
        """Return why an evicted id went ('count', 'memory', 'reset'); None if not evicted."""
        return self._evicted.get(int(keyframe_id))

    def clear(self, cause: str = 'reset') -> int:
        """Evict everything (counted under ``cause``); return how many keyframes went."""
        n = len(self._items)
        while self._items:
            self._drop_oldest(cause)
        return n

    def ids(self) -> List[int]:
        """Return the stored ids, oldest first."""
        return list(self._items)

    def stats(self) -> dict:
        """Return stored keyframes and bytes plus the eviction counters."""
        out: dict = {'keyframes_stored': len(self._items), 'store_bytes': self.bytes}
        out.update(self.counts)
        return out


def tensor_bytes(*values: Any) -> int:
    """Bytes of the numpy arrays, torch tensors and bytes-like values given (None = 0)."""
    total = 0
    for v in values:
        if v is None:
            continue
        if hasattr(v, 'element_size') and hasattr(v, 'nelement'):  # torch.Tensor
            total += int(v.element_size() * v.nelement())
        elif hasattr(v, 'nbytes'):  # numpy
            total += int(v.nbytes)
        else:
            total += len(v)
    return total

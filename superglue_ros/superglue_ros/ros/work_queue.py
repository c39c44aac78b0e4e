# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""A bounded FIFO between subscription callbacks and one worker thread.

Kept outside the node class (as image_pipeline keeps its buffer queue) so that it can be
tested on its own. The queue also knows whether the worker holds an item: ``get`` marks it
taken and ``task_done`` releases it under the same lock, so ``idle`` never reports idle while
an item is between the two.
"""

from __future__ import annotations

from collections import deque
import threading
from typing import Any, Deque, Optional

QUEUE_POLICIES = ('drop_oldest', 'block')


class WorkQueue:
    """Bounded FIFO; ``put`` with policy 'drop_oldest' evicts, with 'block' waits for space.

    ``put`` returns the item it evicted (or None); with 'block' it waits until there is space
    (or until ``close``) and returns None.
    """

    def __init__(self, maxsize: int, policy: str):
        if policy not in QUEUE_POLICIES:
            raise ValueError(f'queue_policy must be one of {QUEUE_POLICIES}, got {policy!r}')
        self.maxsize = max(1, int(maxsize))
        self.policy = policy
        self._items: Deque[Any] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._in_hand = 0  # items taken by get() and not yet marked done

    def put(self, item: Any) -> Optional[Any]:
        """Enqueue ``item``; see the class docstring for what happens when full."""
        with self._cond:
            evicted = None
            if self.policy == 'block':
                while len(self._items) >= self.maxsize and not self._closed:
                    self._cond.wait(0.1)
            elif len(self._items) >= self.maxsize:
                evicted = self._items.popleft()
            self._items.append(item)
            self._cond.notify_all()
            return evicted

    def get(self, timeout: float) -> Optional[Any]:
        """Take the oldest item (call ``task_done`` when finished with it).

        Returns None after ``timeout`` seconds, or at once when closed and empty.
        """
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if not self._items:
                return None
            self._in_hand += 1
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def wake(self) -> None:
        """Wake a ``get`` that is waiting: it returns None now if nothing is queued."""
        with self._cond:
            self._cond.notify_all()

    def task_done(self) -> None:
        """Mark the item of the last ``get`` as finished."""
        with self._cond:
            self._in_hand = max(0, self._in_hand - 1)

    def idle(self) -> bool:
        """Return True when nothing is queued and no taken item is unfinished."""
        with self._cond:
            return not self._items and self._in_hand == 0

    def close(self) -> int:
        """Wake every waiter; later ``get`` calls drain what is left, then return None.

        Returns the number of items still waiting (not yet taken by ``get``).
        """
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            return len(self._items)

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

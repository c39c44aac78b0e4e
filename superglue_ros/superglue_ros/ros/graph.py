# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""An in-process ROS 2 graph: its own rclpy context, the real nodes, an executor thread.

The replay, the node benchmark and the node tests all run the nodes this way: an isolated
``rclpy.Context`` (on its own DDS domain when asked), a multi-threaded executor spinning in a
daemon thread, and the calling thread free to publish, wait and read the nodes' public state.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, Iterable, List, Optional

import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy

from .dds import use_large_image_transport


class GraphError(RuntimeError):
    """The executor of a Graph stopped with an exception."""


def wait_for(predicate: Callable[[], bool], timeout: float, period: float = 0.01,
             check: Optional[Callable[[], None]] = None) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed.

    ``check`` runs on every poll and may raise to stop waiting (e.g. ``Graph.check``).
    """
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if check is not None:
            check()
        time.sleep(period)
    return bool(predicate())


def reliable_qos(depth: int = 10) -> QoSProfile:
    """Reliable QoS of the given history depth (what a recorder or a test wants)."""
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)


def reliable_input_overrides(topics: Iterable[str], depth: int) -> List[Parameter]:
    """Build parameter overrides that make a node's subscriptions to ``topics`` reliable.

    The nodes subscribe with the sensor-data profile (best effort) and accept QoS overrides;
    a replay or a test that must lose nothing turns them reliable. ``topics`` are resolved
    names (``/ns/image``).
    """
    params = []
    for topic in topics:
        prefix = f'qos_overrides.{topic}.subscription'
        params += [Parameter(f'{prefix}.reliability', value='reliable'),
                   Parameter(f'{prefix}.depth', value=int(depth))]
    return params


class Graph:
    """An initialised context plus a multi-threaded executor spinning in a daemon thread.

    Nodes are created with ``context=graph.context`` and handed to ``add``; ``close`` (or the
    ``with`` block) shuts the executor down, destroys the nodes and the context.
    """

    def __init__(self, domain_id: Optional[int] = None, threads: int = 4,
                 name: str = 'superglue_graph'):
        # The nodes' DDS transport, as their console scripts set it (before any participant).
        self.dds_note = use_large_image_transport()
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.executor = MultiThreadedExecutor(num_threads=threads, context=self.context)
        self.nodes: List[Any] = []
        self._failure: List[BaseException] = []
        self._thread = threading.Thread(target=self._spin, name=name, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception as exc:  # noqa: BLE001 - reported by check()
            self._failure.append(exc)

    def check(self) -> None:
        """Raise GraphError when the executor has stopped with an exception."""
        if self._failure:
            raise GraphError(f'the ROS executor stopped: {self._failure[0]!r}')

    def add(self, node):
        """Spin ``node`` (created in this graph's context); returns it."""
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def create_node(self, name: str, **kwargs):
        """Create a plain rclpy node in this graph (a driver or a recorder) and spin it."""
        return self.add(rclpy.create_node(name, context=self.context, **kwargs))

    def remove(self, node, timeout: float = 5.0) -> None:
        """Stop spinning ``node`` and destroy it once its running callbacks have finished."""
        self.executor.remove_node(node)
        self.nodes.remove(node)
        self._drain(timeout)
        node.destroy_node()

    def _drain(self, timeout: float) -> bool:
        """Wait until the callbacks already handed to the executor's threads have finished.

        rclpy's ``MultiThreadedExecutor`` gives each ready callback to a thread pool and keeps
        its task in ``_futures``; neither ``remove_node`` nor ``shutdown`` waits for them (in
        Jazzy ``shutdown`` returns at once). A callback that starts or runs after its node is
        destroyed, or after ``shutdown`` destroyed the executor's guard condition (each
        callback triggers it), fails with "cannot use Destroyable", printed as "exception was
        never retrieved". Waits twice: the spin thread may still hand out callbacks of the
        last wait it returned from. Returns False when some are still running after
        ``timeout`` seconds.
        """
        tasks = getattr(self.executor, '_futures', None)
        if tasks is None:  # an executor without that list: give running callbacks a moment
            time.sleep(min(timeout, 0.2))
            return True
        end = time.monotonic() + timeout

        def finished() -> bool:
            return all(task.done() for task in list(tasks))
        if not wait_for(finished, max(end - time.monotonic(), 0.0)):
            return False
        time.sleep(0.05)
        return wait_for(finished, max(end - time.monotonic(), 0.0))

    def wait_for(self, predicate: Callable[[], bool], timeout: float,
                 period: float = 0.01) -> bool:
        """Wait as ``wait_for`` does; raise GraphError if the executor stops meanwhile."""
        return wait_for(predicate, timeout, period, check=self.check)

    def close(self) -> None:
        """Stop spinning, let handed-out callbacks finish, destroy every node and the context."""
        # Order matters (see _drain): first no new callbacks, then the running ones finish while
        # the nodes and the executor's guard condition still exist, then shutdown and destroy.
        for node in self.nodes:
            self.executor.remove_node(node)
        if not self._drain(5.0):
            print(f'{self._thread.name}: a callback was still running 5 s after the graph '
                  'closed; destroying its node anyway', file=sys.stderr)
        self.executor.shutdown(timeout_sec=5.0)
        self._thread.join(timeout=5.0)
        for node in reversed(self.nodes):
            node.destroy_node()
        self.nodes.clear()
        rclpy.try_shutdown(context=self.context)

    def __enter__(self) -> 'Graph':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The pieces the matcher node is built from: work queue, throttled logger, stats, graph."""

import threading
import time

import pytest

from ros_harness import domain_id
from superglue_ros.ros.graph import Graph, GraphError, wait_for
from superglue_ros.ros.stats import MatcherStats
from superglue_ros.ros.throttle import ThrottledLogger
from superglue_ros.ros.work_queue import WorkQueue


def test_drop_oldest_evicts_and_block_waits():
    q = WorkQueue(2, 'drop_oldest')
    assert q.put(1) is None and q.put(2) is None
    assert q.put(3) == 1 and len(q) == 2
    b = WorkQueue(1, 'block')
    b.put('a')
    done = threading.Event()
    threading.Thread(target=lambda: (b.put('b'), done.set()), daemon=True).start()
    assert not done.wait(0.2)  # full: the producer waits
    assert b.get(0.1) == 'a'
    assert done.wait(2.0) and b.get(0.1) == 'b'
    with pytest.raises(ValueError, match='queue_policy'):
        WorkQueue(1, 'newest')


def test_an_item_in_hand_is_not_idle():
    q = WorkQueue(2, 'drop_oldest')
    assert q.idle()
    q.put('job')
    assert not q.idle()
    assert q.get(0.1) == 'job'
    assert len(q) == 0 and not q.idle()  # the worker holds it: the race the node had
    q.task_done()
    assert q.idle()
    assert q.get(0.01) is None and q.idle()


def test_close_wakes_the_worker_and_drains():
    q = WorkQueue(4, 'block')
    q.put(1)
    q.close()
    assert q.get(5.0) == 1
    start = time.monotonic()
    assert q.get(5.0) is None and time.monotonic() - start < 1.0


class _Logger:
    def __init__(self):
        self.lines = []

    def warning(self, text):
        self.lines.append(('warning', text))

    def error(self, text):
        self.lines.append(('error', text))


def test_throttled_logger_counts_what_it_held_back():
    logger, period = _Logger(), [10.0]
    log = ThrottledLogger(logger, lambda: period[0])
    log.warning('a', 'first')
    log.warning('a', 'second')
    log.error('b', 'other kind')
    assert logger.lines == [('warning', 'first'), ('error', 'other kind')]
    period[0] = 0.0  # the period is read at every call
    log.warning('a', 'third')
    assert logger.lines[-1][1].startswith('third (1 more like this in the last')


def test_matcher_stats_snapshot():
    stats = MatcherStats(window=2)
    assert stats.count('published') == 1 and stats.count('published', 2) == 3
    for latency in (0.1, 0.2, 0.3):
        stats.add_match(latency, latency / 2, 10, 0.5)
    stats.add_match(0.4, 0.2, 20, None)
    s = stats.snapshot()
    assert s['ok'] == 4 and s['published'] == 3
    assert s['latency_p50'] == pytest.approx(0.35)  # the window keeps the last two
    assert s['matches_per_keyframe'] == 15.0 and s['inlier_ratio'] == 0.5


def test_graph_reports_a_stopped_executor():
    with Graph(domain_id(30), threads=2) as graph:
        node = graph.create_node('sg_graph_test')
        graph.check()

        def boom():
            raise RuntimeError('boom')
        node.create_timer(0.01, boom)
        with pytest.raises(GraphError, match='boom'):
            graph.wait_for(lambda: False, 10.0)
    assert not wait_for(lambda: False, 0.05)


def test_graph_close_waits_for_running_callbacks(capfd):
    # A callback still running when the graph closes must finish against a live node: before,
    # rclpy's executor shutdown returned at once and the node was destroyed under it ("cannot
    # use Destroyable", printed as "exception was never retrieved").
    from std_msgs.msg import String
    entered, outcome = threading.Event(), []
    with Graph(domain_id(31), threads=2) as graph:
        node = graph.create_node('sg_graph_close_test')
        publisher = node.create_publisher(String, 'sg_graph_close_topic', 1)

        def slow_callback():
            if entered.is_set():
                return
            entered.set()
            time.sleep(0.5)
            try:
                publisher.publish(String(data='late'))
                outcome.append('published')
            except Exception as exc:  # noqa: BLE001 - the failure this test is about
                outcome.append(repr(exc))
        node.create_timer(0.01, slow_callback)
        assert entered.wait(10.0)
    assert outcome == ['published']
    import gc
    gc.collect()
    assert 'never retrieved' not in capfd.readouterr().err


def test_graph_close_with_callbacks_queued_in_the_executor(capfd):
    # Callbacks still queued in the executor's thread pool when the graph closes: rclpy's
    # shutdown destroys the guard condition they trigger when they start, so each failed with
    # "cannot use Destroyable" ("exception was never retrieved") unless they ran first.
    from rclpy.callback_groups import ReentrantCallbackGroup
    ran = []
    with Graph(domain_id(32), threads=2) as graph:
        node = graph.create_node('sg_graph_queue_test')
        group = ReentrantCallbackGroup()

        def busy():
            ran.append(1)
            time.sleep(0.02)
        for _ in range(8):
            node.create_timer(0.001, busy, callback_group=group)
        assert graph.wait_for(lambda: len(ran) > 20, 10.0)
    time.sleep(0.3)  # the queued callbacks run (or fail) on the pool's threads
    del graph, node, busy  # the executor holds the tasks: a failed one reports when freed
    import gc
    gc.collect()
    err = capfd.readouterr().err
    assert 'never retrieved' not in err and 'Destroyable' not in err, err

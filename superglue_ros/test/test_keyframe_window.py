# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Keyframe store, window matching and ~/match_keyframes over real DDS (issue 9).

The streams here are keypoints only (``image_input: none``): the window and the service do not
depend on images, and the tests stay fast.
"""

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from rclpy.parameter import Parameter
from superglue_ros_msgs.msg import Correspondences, Keypoints
from superglue_ros_msgs.srv import MatchKeyframes

from ros_harness import Collector, domain_id, RELIABLE, TumFrames
from superglue_ros.geometry import verify_fundamental
from superglue_ros.nodes.matcher_node import MatcherNode
from superglue_ros.ros.conversions import features_from_keypoints
from superglue_ros.ros.graph import reliable_input_overrides
from superglue_ros.ros.keyframe_store import EVICTED, HELD, KeyframeStore, UNKNOWN

DOMAIN = domain_id(27)
OK = Correspondences.STATUS_OK


def test_store_bounds_by_count_and_memory_and_remembers_evictions():
    store = KeyframeStore(3, 100, size_of=len)
    for i in range(1, 5):
        store.add(i, 'x' * 20)
    assert store.ids() == [2, 3, 4] and store.counts['evicted_count'] == 1
    assert store.newest(2) == ['x' * 20] * 2 and len(store.newest(10)) == 3
    assert store.lookup(3) == ('x' * 20, HELD)
    assert store.lookup(1) == (None, EVICTED) and store.evicted_cause(1) == 'count'
    assert store.lookup(99) == (None, UNKNOWN)
    store.add(5, 'y' * 70)  # 4 > 3 keyframes, then 20 + 20 + 70 > 100 bytes
    assert store.ids() == [4, 5] and store.bytes == 90
    assert store.evicted_cause(2) == 'count' and store.evicted_cause(3) == 'memory'
    store.add(6, 'z' * 500)  # larger than the bound alone: the newest always stays
    assert store.ids() == [6] and store.bytes == 500
    assert store.clear() == 1 and store.lookup(6) == (None, EVICTED)
    assert store.stats() == {'keyframes_stored': 0, 'store_bytes': 0, 'evicted_count': 2,
                             'evicted_memory': 3, 'evicted_reset': 1}
    with pytest.raises(ValueError, match='max_keyframes'):
        KeyframeStore(0, 10, len)


def test_store_forgets_old_evictions_beyond_its_record():
    store = KeyframeStore(1, 10**6, size_of=len, remember_evicted=2)
    for i in range(5):
        store.add(i, 'a')
    assert [store.lookup(i)[1] for i in range(5)] == [UNKNOWN, UNKNOWN, EVICTED, EVICTED, HELD]


@pytest.fixture(scope='module')
def tum():
    return TumFrames(count=10, max_keypoints=512)


def start(harness, weights, ns, **params):
    overrides = [Parameter('weights', value=str(weights)), Parameter('device', value='cpu'),
                 Parameter('queue_policy', value='block'), Parameter('queue_size', value=50),
                 Parameter('image_input', value='none'),
                 Parameter('diagnostics_period', value=0.2)]
    overrides += [Parameter(k, value=v) for k, v in params.items()]
    overrides += reliable_input_overrides([f'/{ns}/keypoints'], 50)
    return harness.add(MatcherNode(context=harness.context, namespace=ns,
                                   parameter_overrides=overrides))


class Stream:
    """Keypoints publisher and correspondences collector of one namespace."""

    def __init__(self, harness, ns, tum):
        node = harness.node
        self.harness, self.tum = harness, tum
        self.pub = node.create_publisher(Keypoints, f'/{ns}/keypoints', RELIABLE)
        self.out = Collector()
        self.sub = node.create_subscription(Correspondences, f'/{ns}/correspondences',
                                            self.out, RELIABLE)
        self.client = node.create_client(MatchKeyframes, f'/{ns}/superglue_matcher/'
                                                         'match_keyframes')
        assert harness.wait_for(lambda: self.pub.get_subscription_count() > 0
                                and self.sub.get_publisher_count() > 0, 20.0)
        assert self.client.wait_for_service(timeout_sec=20.0)
        self.sent = []

    def send(self, i: int, keyframe_id: int, offset: float = 0.0):
        msg = self.tum.keypoints_msg(i, keyframe_id, offset=offset)
        self.sent.append(msg)
        self.pub.publish(msg)
        return msg

    def batch_of(self, keyframe_id: int):
        return [m for m in self.out.msgs if m.current_keyframe_id == keyframe_id]

    def call(self, query: int, candidates, timeout: float = 120.0):
        request = MatchKeyframes.Request(query_keyframe_id=query,
                                         candidate_keyframe_ids=list(candidates))
        start = time.perf_counter()
        future = self.client.call_async(request)
        assert self.harness.wait_for(future.done, timeout), 'match_keyframes did not answer'
        return future.result(), time.perf_counter() - start


def expected_messages(count: int, window: int) -> int:
    return sum(max(1, min(k, window)) for k in range(count))


def test_window_matching_one_message_per_pair_ids_right_and_equal_to_sequential(
        harness, weights, tum):
    window = 3
    node = start(harness, weights, 'window', window_size=window)
    stream = Stream(harness, 'window', tum)
    for i in range(6):
        stream.send(i, 10 + i)
    total = expected_messages(6, window)
    stream.out.wait(total, timeout=120.0)
    time.sleep(0.3)
    assert len(stream.out) == total, 'more messages than pairs'
    for k, kp in enumerate(stream.sent):
        batch = stream.batch_of(kp.keyframe_id)
        if k == 0:
            assert [m.status for m in batch] == [Correspondences.STATUS_FIRST_KEYFRAME]
            assert batch[0].last_in_batch
            continue
        refs = stream.sent[max(0, k - window):k][::-1]  # newest first
        assert [m.reference_keyframe_id for m in batch] == [r.keyframe_id for r in refs]
        assert [m.reference_stamp for m in batch] == [r.header.stamp for r in refs]
        assert [m.window_index for m in batch] == list(range(len(refs)))
        assert [m.last_in_batch for m in batch] == [False] * (len(refs) - 1) + [True]
        assert all(m.status == OK and m.current_stamp == kp.header.stamp for m in batch)
        # Every pair as a sequential match_prepared of the same engine would give it.
        engine = node.engine
        current = engine.prepare(features_from_keypoints(kp))
        for m, ref in zip(batch, refs):
            alone = engine.match_prepared(engine.prepare(features_from_keypoints(ref)), current)
            assert np.array_equal(np.asarray(m.reference_indices), alone.index0)
            assert np.array_equal(np.asarray(m.current_indices), alone.index1)
            assert np.allclose(np.asarray(m.confidence), alone.confidence, atol=1e-4)
            inlier = verify_fundamental(alone.points0, alone.points1, 1.0)
            assert np.array_equal(np.asarray(m.inlier, bool), inlier)
    # Matches thin out with the keyframe distance.
    by_distance = {d: [len(m.current_indices) for m in stream.out.msgs
                       if m.status == OK and m.window_index == d - 1] for d in (1, 2, 3)}
    assert np.mean(by_distance[1]) > np.mean(by_distance[3]) > 0
    stats = node.stats()
    assert stats['window_batches'] == 4 and stats['keyframes_stored'] == 6
    assert stats.get('internal_errors', 0) == 0
    harness.remove(node)


def test_memory_bound_evicts_oldest_counts_it_in_diagnostics(harness, weights, tum):
    node = start(harness, weights, 'memory', window_size=2, max_keyframe_memory=1.5)
    stream = Stream(harness, 'memory', tum)
    diagnostics = Collector()
    harness.node.create_subscription(DiagnosticArray, '/diagnostics', diagnostics, 10)
    for i in range(5):
        stream.send(i, 20 + i)
    stream.out.wait(expected_messages(5, 2), timeout=120.0)
    stats = node.stats()
    assert stats['store_bytes'] <= 1.5 * 2**20 and stats['keyframes_stored'] >= 2
    held = stats['keyframes_stored']
    assert stats['evicted_memory'] == 5 - held and stats.get('evicted_count', 0) == 0
    assert stats.get('internal_errors', 0) == 0

    def report():
        for msg in reversed(diagnostics.msgs):
            for status in msg.status:
                if status.name.startswith('/memory/superglue_matcher') or \
                        status.name.startswith('superglue_matcher'):
                    values = {kv.key: kv.value for kv in status.values}
                    if values.get('evicted_by_memory') == str(5 - held):
                        return values
        return None
    assert harness.wait_for(lambda: report() is not None, 10.0)
    assert report()['keyframes_stored'] == str(held)
    response, _ = stream.call(24, [20, 23, 77])
    assert response.success
    assert [m.status for m in response.correspondences] == [
        Correspondences.STATUS_REFERENCE_EVICTED, OK, Correspondences.STATUS_REFERENCE_UNKNOWN]
    assert 'memory' in response.correspondences[0].status_message
    harness.remove(node)


def test_match_keyframes_known_evicted_and_unknown_ids(harness, weights, tum):
    node = start(harness, weights, 'loop', max_keyframes=4)
    stream = Stream(harness, 'loop', tum)
    for i in range(6):
        stream.send(i, 30 + i)
    stream.out.wait(6, timeout=120.0)
    stats = node.stats()
    assert stats['keyframes_stored'] == 4  # 32..35; 30 and 31 evicted by count
    assert stats['evicted_count'] == 2 and stats.get('internal_errors', 0) == 0
    response, _ = stream.call(35, [33, 30, 99, 32])
    assert response.success, response.message
    msgs = response.correspondences
    assert [m.status for m in msgs] == [OK, Correspondences.STATUS_REFERENCE_EVICTED,
                                        Correspondences.STATUS_REFERENCE_UNKNOWN, OK]
    assert [m.reference_keyframe_id for m in msgs] == [33, 30, 99, 32]
    assert all(m.current_keyframe_id == 35 for m in msgs)
    assert [m.last_in_batch for m in msgs] == [False, False, False, True]
    assert 'evicted' in msgs[1].status_message and 'count' in msgs[1].status_message
    assert 'never stored' in msgs[2].status_message
    assert all(len(m.current_indices) == 0 for m in msgs[1:3])
    ok = msgs[0]
    assert ok.verified and len(ok.current_indices) > 20
    assert ok.current_stamp == stream.sent[5].header.stamp
    assert ok.reference_stamp == stream.sent[3].header.stamp
    # The same pair as the streaming path would give it (query = current).
    engine = node.engine
    alone = engine.match_prepared(engine.prepare(features_from_keypoints(stream.sent[3])),
                                  engine.prepare(features_from_keypoints(stream.sent[5])))
    assert np.array_equal(np.asarray(ok.reference_indices), alone.index0)
    for query in (30, 123):
        response, _ = stream.call(query, [33])
        assert not response.success and not response.correspondences
        assert ('evicted' if query == 30 else 'never stored') in response.message
    harness.remove(node)


def test_match_keyframes_during_streaming_delays_a_keyframe_by_at_most_one_match(
        harness, weights, tum):
    node = start(harness, weights, 'busy', max_keyframes=20)
    stream = Stream(harness, 'busy', tum)
    for i in range(4):
        stream.send(i, 40 + i)
    stream.out.wait(4, timeout=120.0)
    # Alone: one keyframe's latency and one match.
    quiet = []
    for k in range(3):
        count = len(stream.out)
        stream.send(4 + k, 44 + k)
        quiet.append(stream.out.wait(count + 1)[count].latency)
    match_time = node.stats()['match_time_p50']
    # A long request (12 candidates) while the stream goes on.
    result = {}
    caller = threading.Thread(target=lambda: result.update(
        zip(('response', 'elapsed'), stream.call(46, [40, 41, 42, 43, 44, 45] * 2))))
    caller.start()
    assert harness.wait_for(lambda: node.stats().get('match_keyframes_matches', 0) >= 1, 20.0)
    busy = []
    for k in range(3):
        count = len(stream.out)
        stream.send(7 + k, 47 + k, offset=0.0)
        busy.append(stream.out.wait(count + 1, timeout=60.0)[count].latency)
    caller.join(120.0)
    response, elapsed = result['response'], result['elapsed']
    assert response.success and len(response.correspondences) == 12
    assert all(m.status == OK for m in response.correspondences)
    print(f'\nmatch_keyframes: 12 candidates in {elapsed * 1e3:.0f} ms '
          f'({elapsed / 12 * 1e3:.0f} ms each, one match p50 {match_time * 1e3:.0f} ms); '
          f'keyframe latency alone {np.median(quiet) * 1e3:.0f} ms, during the request '
          f'max {max(busy) * 1e3:.0f} ms')
    # A keyframe waits for the candidate in hand at most: one match, plus scheduling slack.
    assert max(busy) <= max(quiet) + 2.0 * match_time + 0.25, (quiet, busy, match_time)
    harness.remove(node)


def test_window_size_needs_the_store_to_hold_it(harness, weights):
    with pytest.raises(ValueError, match='window_size 4 needs max_keyframes >= 4'):
        start(harness, weights, 'badwindow', window_size=4, max_keyframes=3)

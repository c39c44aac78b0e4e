# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Stamp synchronisation on both backends (own and message_filters), alone and over DDS."""

import pytest
from rclpy.qos import qos_profile_sensor_data, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from superglue_ros_msgs.msg import Keypoints

from ros_harness import Collector, domain_id, Harness, RELIABLE, stamp, wait_for
from superglue_ros.ros import sync as sync_module
from superglue_ros.ros.graph import reliable_qos
from superglue_ros.ros.sync import (ApproximateTimeSync, check_slop, make_sync,
                                    StampSynchronizer)


class Msg:
    def __init__(self, t: float, tag: str = ''):
        self.header = Header(stamp=stamp(t))
        self.t, self.tag = t, tag

    def __repr__(self) -> str:
        return f'{self.tag}{self.t}'


NO_MESSAGE_FILTERS = ('message_filters is not installed (pip ROS setup without ../shared/ros_src)'
                      ': the message_filters backend is not tested')
# Every pairing test runs on both backends: the in-package synchroniser and the real
# message_filters.ApproximateTimeSynchronizer (installed from ../shared/ros_src in CI).
backends = pytest.mark.parametrize('backend', [
    'own', pytest.param('message_filters', marks=pytest.mark.skipif(
        not sync_module.HAVE_MESSAGE_FILTERS, reason=NO_MESSAGE_FILTERS))])


@pytest.fixture
def make(backend):
    def build(n=2, queue_size=3, slop=0.01):
        out = []
        return make_sync(backend, n, queue_size, slop, lambda *m: out.append(m)), out
    return build


@backends
def test_pairs_equal_and_close_stamps_in_input_order(make):
    sync, out = make()
    sync.add(0, Msg(1.0, 'a'))
    assert not out
    sync.add(1, Msg(1.0, 'b'))
    assert [(a.t, b.t) for a, b in out] == [(1.0, 1.0)]
    sync.add(1, Msg(2.005, 'b'))
    sync.add(0, Msg(2.0, 'a'))
    assert [(a.tag, b.tag) for a, b in out] == [('a', 'b'), ('a', 'b')]
    assert out[1][0].t == 2.0 and out[1][1].t == 2.005
    assert sync.emitted == 2 and sync.queued() == [0, 0] and sync.dropped() == [0, 0]


@backends
def test_outside_slop_is_not_paired(make):
    sync, out = make(slop=0.01)
    sync.add(0, Msg(1.0))
    sync.add(1, Msg(1.02))
    assert not out and sync.queued() == [1, 1] and sync.dropped() == [0, 0]


@backends
def test_picks_the_closest_partner_and_discards_older_ones_as_stale(make):
    sync, out = make(queue_size=5, slop=0.05)
    for t in (1.0, 1.1, 1.2):
        sync.add(0, Msg(t))  # images without keypoints (not keyframes)
    sync.add(1, Msg(1.19))
    assert [(a.t, b.t) for a, b in out] == [(1.2, 1.19)]
    assert sync.dropped() == [2, 0] and sync.queued() == [0, 0]
    sync.add(1, Msg(1.1))  # its image went stale: never paired out of order
    sync.add(0, Msg(1.3))
    assert len(out) == 1 and sync.dropped() == [2, 0] and sync.queued() == [1, 1]


def test_own_backend_says_why_it_dropped():
    sync = ApproximateTimeSync(2, 2, 0.05, lambda *m: None)
    for t in (1.0, 1.1, 1.2):
        sync.add(0, Msg(t))
    sync.add(0, Msg(1.2, 'again'))
    sync.add(1, Msg(1.19))
    assert sync.overflow == [1, 0] and sync.replaced == [1, 0] and sync.stale == [1, 0]
    assert sync.dropped() == [3, 0]


@backends
def test_queue_overflow_and_replacement_are_counted(make):
    sync, out = make(queue_size=2)
    for t in (1.0, 2.0, 3.0, 4.0):
        sync.add(0, Msg(t))
    assert sync.dropped() == [2, 0] and sync.queued() == [2, 0]
    sync.add(0, Msg(4.0, 'again'))
    assert sync.dropped() == [3, 0]
    sync.add(1, Msg(1.0))  # its partner was pushed out: no pair
    assert not out
    sync.add(1, Msg(4.0))
    assert out[0][0].tag == 'again'
    assert sync.received == [5, 2] and sync.dropped() == [4, 1] and sync.queued() == [0, 0]


@backends
def test_reset_flushes_queued_messages_and_counts_them(make):
    # After a clock jump back, messages queued before it must neither pair with nor push out
    # the new ones.
    sync, out = make(queue_size=3)
    sync.add(0, Msg(10.0))
    sync.add(0, Msg(11.0))
    sync.add(1, Msg(12.0))
    assert sync.reset() == [2, 1]
    assert sync.queued() == [0, 0] and sync.dropped() == [2, 1]
    sync.add(0, Msg(1.0))
    sync.add(1, Msg(1.0))
    assert [(a.t, b.t) for a, b in out] == [(1.0, 1.0)]
    assert sync.reset() == [0, 0] and sync.dropped() == [2, 1]


@backends
def test_a_jump_back_discards_what_was_queued_after_it(make):
    # A bag played a second time: images of the first pass that never became keyframes are
    # still queued. They must not take the queue's places from the second pass's messages.
    sync, out = make(queue_size=3)
    for t in (10.0, 10.1, 10.2):
        sync.add(0, Msg(t))
    sync.add(0, Msg(1.0))  # the stream went back
    assert sync.queued() == [1, 0] and sync.dropped() == [3, 0]
    for t in (1.1, 1.2):
        sync.add(0, Msg(t))
    sync.add(1, Msg(1.0))  # its image is still there: paired
    assert [(a.t, b.t) for a, b in out] == [(1.0, 1.0)]
    sync.add(1, Msg(1.2))
    assert [b.t for _, b in out] == [1.0, 1.2] and sync.dropped() == [4, 0]


@backends
def test_three_inputs_and_late_messages(make):
    sync, out = make(n=3, slop=0.02)
    sync.add(0, Msg(1.0))
    sync.add(2, Msg(1.01))
    assert not out
    sync.add(1, Msg(0.995))
    assert len(out) == 1 and [m.t for m in out[0]] == [1.0, 0.995, 1.01]
    # A late message older than the emitted set is still paired if its partner comes.
    sync.add(0, Msg(0.5))
    sync.add(1, Msg(0.5))
    sync.add(2, Msg(0.5))
    assert len(out) == 2 and sync.dropped() == [0, 0, 0]


@backends
def test_invalid_arguments(backend):
    # sync_slop 0 would never pair with message_filters (it pairs only |dt| < slop).
    for args in ((0, 1, 0.1), (1, 0, 0.1), (1, 1, -1.0), (2, 1, 0.0), (2, 1, float('nan'))):
        with pytest.raises(ValueError):
            make_sync(backend, *args, callback=print)
    with pytest.raises(ValueError, match='sync_slop must be > 0'):
        check_slop(0)
    assert check_slop(0.01) == 0.01


def test_unknown_backend():
    with pytest.raises(ValueError, match='unknown synchronizer backend'):
        make_sync('tf2', 2, 1, 0.1, print)


@pytest.fixture(scope='module')
def harness():
    h = Harness(domain_id(11), threads=2)
    yield h
    h.close()


@backends
def test_stamp_synchronizer_over_dds(harness, backend):
    node = harness.node
    out = Collector()
    sync = StampSynchronizer(node, [(Image, f'/{backend}/image'), (Keypoints, f'/{backend}/kp')],
                             5, 0.01, lambda a, b: out((a, b)),
                             use_message_filters=backend == 'message_filters',
                             qos_profile=RELIABLE)
    assert sync.backend == backend
    pubs = [node.create_publisher(Image, f'/{backend}/image', RELIABLE),
            node.create_publisher(Keypoints, f'/{backend}/kp', RELIABLE)]
    assert wait_for(lambda: all(p.get_subscription_count() for p in pubs), 20)
    for k in range(4):
        pubs[0].publish(Image(header=Header(stamp=stamp(10.0 + k))))
        if k != 2:  # frame 2 is not a keyframe: its image waits, then goes stale
            pubs[1].publish(Keypoints(header=Header(stamp=stamp(10.0 + k + 0.001))))
    pairs = out.wait(3)
    assert [p[0].header.stamp.sec for p in pairs] == [10, 11, 13]
    assert wait_for(lambda: sync.received == [4, 3], 5)
    assert sync.emitted == 3 and sync.dropped() == [1, 0]
    # A keypoints message without an image is counted at once (not after sync_queue_size more).
    pubs[1].publish(Keypoints(header=Header(stamp=stamp(14.0))))
    pubs[0].publish(Image(header=Header(stamp=stamp(15.0))))
    pubs[1].publish(Keypoints(header=Header(stamp=stamp(15.0))))
    out.wait(4)
    counters = sync.counters()
    assert counters.received == (5, 5) and counters.emitted == 4
    assert counters.dropped == (1, 1)


@backends
def test_per_topic_qos(harness, backend):
    node = harness.node
    StampSynchronizer(node, [(Image, f'/{backend}/qos/image', qos_profile_sensor_data),
                             (Keypoints, f'/{backend}/qos/kp')], 5, 0.01, print,
                      use_message_filters=backend == 'message_filters',
                      qos_profile=reliable_qos(7))
    image, = node.get_subscriptions_info_by_topic(f'/{backend}/qos/image')
    kp, = node.get_subscriptions_info_by_topic(f'/{backend}/qos/kp')
    assert image.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
    assert kp.qos_profile.reliability == ReliabilityPolicy.RELIABLE

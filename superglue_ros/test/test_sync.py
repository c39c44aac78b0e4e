# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Stamp synchronisation: the own ApproximateTimeSync and StampSynchronizer over DDS."""

import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from superglue_ros_msgs.msg import Keypoints

from ros_harness import Collector, domain_id, Harness, RELIABLE, stamp, wait_for
from superglue_ros.ros import sync as sync_module
from superglue_ros.ros.sync import ApproximateTimeSync, StampSynchronizer


class Msg:
    def __init__(self, t: float, tag: str = ''):
        self.header = Header(stamp=stamp(t))
        self.t, self.tag = t, tag

    def __repr__(self) -> str:
        return f'{self.tag}{self.t}'


def make(n=2, queue_size=3, slop=0.01):
    out = []
    sync = ApproximateTimeSync(n, queue_size, slop, lambda *m: out.append(m))
    return sync, out


def test_pairs_equal_and_close_stamps_in_input_order():
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


def test_outside_slop_is_not_paired():
    sync, out = make(slop=0.01)
    sync.add(0, Msg(1.0))
    sync.add(1, Msg(1.02))
    assert not out and sync.queued() == [1, 1]


def test_picks_the_closest_partner_and_discards_older_ones_as_stale():
    sync, out = make(queue_size=5, slop=0.05)
    for t in (1.0, 1.1, 1.2):
        sync.add(0, Msg(t))  # images without keypoints (not keyframes)
    sync.add(1, Msg(1.19))
    assert [(a.t, b.t) for a, b in out] == [(1.2, 1.19)]
    assert sync.stale == [2, 0] and sync.dropped() == [2, 0]


def test_queue_overflow_and_replacement_are_counted():
    sync, out = make(queue_size=2)
    for t in (1.0, 2.0, 3.0, 4.0):
        sync.add(0, Msg(t))
    assert sync.overflow == [2, 0] and sync.queued() == [2, 0]
    sync.add(0, Msg(4.0, 'again'))
    assert sync.replaced == [1, 0]
    sync.add(1, Msg(1.0))  # its partner was pushed out: no pair
    assert not out
    sync.add(1, Msg(4.0))
    assert out[0][0].tag == 'again'
    assert sync.received == [5, 2]


def test_three_inputs_and_late_messages():
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
    assert len(out) == 2


def test_invalid_arguments():
    for args in ((0, 1, 0.1), (1, 0, 0.1), (1, 1, -1.0)):
        with pytest.raises(ValueError):
            ApproximateTimeSync(*args, callback=print)


@pytest.fixture(scope='module')
def harness():
    h = Harness(domain_id(11), threads=2)
    yield h
    h.close()


def _pairs_over_dds(harness, use_message_filters):
    ns = 'mf' if use_message_filters else 'own'
    node = harness.node
    out = Collector()
    sync = StampSynchronizer(node, [(Image, f'/{ns}/image'), (Keypoints, f'/{ns}/kp')], 5,
                             0.01, lambda a, b: out((a, b)),
                             use_message_filters=use_message_filters, qos_profile=RELIABLE)
    pubs = [node.create_publisher(Image, f'/{ns}/image', RELIABLE),
            node.create_publisher(Keypoints, f'/{ns}/kp', RELIABLE)]
    assert wait_for(lambda: all(p.get_subscription_count() for p in pubs), 20)
    for k in range(4):
        pubs[0].publish(Image(header=Header(stamp=stamp(10.0 + k))))
        if k != 2:  # frame 2 is not a keyframe: its image waits, then goes stale
            pubs[1].publish(Keypoints(header=Header(stamp=stamp(10.0 + k + 0.001))))
    pairs = out.wait(3)
    assert [p[0].header.stamp.sec for p in pairs] == [10, 11, 13]
    assert sync.received == [4, 3] and sync.emitted == 3
    return sync


def test_stamp_synchronizer_own_backend_over_dds(harness):
    sync = _pairs_over_dds(harness, use_message_filters=False)
    assert sync.backend == 'own' and sync.dropped() == [1, 0]


@pytest.mark.skipif(not sync_module.HAVE_MESSAGE_FILTERS,
                    reason='message_filters is not installed (pip ROS setup): own backend only')
def test_stamp_synchronizer_message_filters_backend(harness):  # pragma: no cover
    sync = _pairs_over_dds(harness, use_message_filters=True)
    assert sync.backend == 'message_filters'

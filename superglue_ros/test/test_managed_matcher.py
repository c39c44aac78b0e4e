# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The managed (lifecycle) matcher, driven through the lifecycle_msgs services over real DDS."""

import gc
import os
import signal
import subprocess
import sys
import weakref

from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from superglue_ros_msgs.msg import Correspondences, Keypoints
from superglue_ros_msgs.srv import MatchKeyframes

from ros_harness import (Collector, domain_id, RELIABLE,
                         reliable_inputs, TumFrames, wait_for)
from superglue_ros.nodes.managed_matcher_node import ManagedMatcherNode
from superglue_ros.nodes.matcher_node import MatcherCore, MatcherNode

DOMAIN = domain_id(26)


class Lifecycle:
    """Client of a managed node's ~/get_state and ~/change_state services."""

    def __init__(self, harness, node_path):
        self.harness = harness
        self.get = harness.node.create_client(GetState, f'{node_path}/get_state')
        self.change = harness.node.create_client(ChangeState, f'{node_path}/change_state')
        # A node in its own process imports torch first: under load that takes well over 20 s.
        assert self.get.wait_for_service(timeout_sec=60.0)
        assert self.change.wait_for_service(timeout_sec=60.0)

    def _call(self, client, request):
        future = client.call_async(request)
        assert self.harness.wait_for(future.done, 60.0), 'lifecycle service did not answer'
        return future.result()

    def state(self) -> int:
        return self._call(self.get, GetState.Request()).current_state.id

    def transition(self, transition_id: int) -> bool:
        request = ChangeState.Request()
        request.transition.id = transition_id
        return self._call(self.change, request).success


class Traffic:
    """Keypoints + images into a namespace; correspondences collected."""

    def __init__(self, harness, ns):
        node = harness.node
        self.harness, self.ns = harness, ns
        self.image_pub = node.create_publisher(Image, f'/{ns}/image', RELIABLE)
        self.kp_pub = node.create_publisher(Keypoints, f'/{ns}/keypoints', RELIABLE)
        self.out = Collector()
        node.create_subscription(Correspondences, f'/{ns}/correspondences', self.out, RELIABLE)
        self.tum = TumFrames(count=4)
        self.next_id = 1

    def subscribed(self) -> bool:
        return (self.kp_pub.get_subscription_count() > 0
                and self.image_pub.get_subscription_count() > 0)

    def send(self, i: int, offset: float = 0.0) -> None:
        self.image_pub.publish(self.tum.image_msg(i, offset=offset))
        self.kp_pub.publish(self.tum.keypoints_msg(i, self.next_id, offset=offset))
        self.next_id += 1


def test_lifecycle_through_the_lifecycle_services(harness, weights):
    ns = 'managed'
    node = harness.add(ManagedMatcherNode(
        context=harness.context, namespace=ns,
        parameter_overrides=[Parameter('weights', value=str(weights)),
                             Parameter('device', value='cpu'),
                             Parameter('queue_policy', value='block')] + reliable_inputs(ns)))
    lifecycle = Lifecycle(harness, f'/{ns}/superglue_matcher')
    traffic = Traffic(harness, ns)
    graph = harness.node

    # Unconfigured: parameters declared, no weights, nothing published or subscribed.
    assert lifecycle.state() == State.PRIMARY_STATE_UNCONFIGURED
    assert node.engine is None and node.has_parameter('match_threshold')
    assert graph.count_publishers(f'/{ns}/correspondences') == 0
    assert graph.count_subscribers(f'/{ns}/keypoints') == 0

    # configure: weights loaded, publishers up, still no subscription.
    assert lifecycle.transition(Transition.TRANSITION_CONFIGURE)
    assert lifecycle.state() == State.PRIMARY_STATE_INACTIVE
    assert node.engine is not None
    model = weakref.ref(node.engine.model)
    assert wait_for(lambda: graph.count_publishers(f'/{ns}/correspondences') == 1, 10.0)
    assert graph.count_subscribers(f'/{ns}/keypoints') == 0

    # activate: keyframes are matched.
    assert lifecycle.transition(Transition.TRANSITION_ACTIVATE)
    assert lifecycle.state() == State.PRIMARY_STATE_ACTIVE
    assert wait_for(traffic.subscribed, 20.0)
    for i in range(3):
        traffic.send(i)
    msgs = traffic.out.wait(3, timeout=60.0)
    assert [m.status for m in msgs] == [Correspondences.STATUS_FIRST_KEYFRAME] + \
        [Correspondences.STATUS_OK] * 2

    # deactivate: unsubscribed; what is sent now is not taken.
    assert lifecycle.transition(Transition.TRANSITION_DEACTIVATE)
    assert lifecycle.state() == State.PRIMARY_STATE_INACTIVE
    assert wait_for(lambda: graph.count_subscribers(f'/{ns}/keypoints') == 0, 10.0)
    received = node.sync_counters.received
    traffic.send(3)
    assert not wait_for(lambda: len(traffic.out) > 3, 1.0)
    assert node.sync_counters.received == received

    # cleanup: the model is freed, publishers gone.
    assert lifecycle.transition(Transition.TRANSITION_CLEANUP)
    assert lifecycle.state() == State.PRIMARY_STATE_UNCONFIGURED
    assert node.engine is None
    gc.collect()
    assert model() is None, 'the model is still referenced after cleanup'
    assert wait_for(lambda: graph.count_publishers(f'/{ns}/correspondences') == 0, 10.0)

    # And up again: a fresh sequence.
    assert lifecycle.transition(Transition.TRANSITION_CONFIGURE)
    assert lifecycle.transition(Transition.TRANSITION_ACTIVATE)
    assert wait_for(traffic.subscribed, 20.0)
    traffic.send(0, offset=100.0)
    traffic.send(1, offset=100.0)
    msgs = traffic.out.wait(5, timeout=60.0)
    assert [m.status for m in msgs[3:]] == [Correspondences.STATUS_FIRST_KEYFRAME,
                                            Correspondences.STATUS_OK]

    # shutdown from active: finalized, everything released.
    assert lifecycle.transition(Transition.TRANSITION_ACTIVE_SHUTDOWN)
    assert lifecycle.state() == State.PRIMARY_STATE_FINALIZED
    assert node.engine is None and node.is_idle()
    harness.remove(node)


def test_failed_configure_leaves_it_unconfigured_and_says_why(harness, tmp_path):
    ns = 'managedbad'
    node = harness.add(ManagedMatcherNode(
        context=harness.context, namespace=ns,
        parameter_overrides=[Parameter('weights', value=str(tmp_path / 'missing.pth')),
                             Parameter('device', value='cpu')]))
    lifecycle = Lifecycle(harness, f'/{ns}/superglue_matcher')
    assert not lifecycle.transition(Transition.TRANSITION_CONFIGURE)
    assert lifecycle.state() == State.PRIMARY_STATE_UNCONFIGURED
    assert node.engine is None and node.is_idle()
    assert harness.node.count_publishers(f'/{ns}/correspondences') == 0
    harness.remove(node)


def test_both_variants_share_the_core():
    # One implementation: the managed node adds transitions, not a second matcher.
    assert issubclass(MatcherNode, MatcherCore) and issubclass(ManagedMatcherNode, MatcherCore)
    own = set(vars(ManagedMatcherNode)) - {'__module__', '__doc__', '__init__'}
    assert own <= {'_transition', 'on_configure', 'on_activate', 'on_deactivate', 'on_cleanup',
                   'on_shutdown', 'on_error', 'destroy_node'}


def test_console_script_runs_and_stops_cleanly(harness, weights):
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN), PYTHONUNBUFFERED='1')
    proc = subprocess.Popen(
        [sys.executable, '-c', 'from superglue_ros.torch_version import managed_matcher_main;'
         ' raise SystemExit(managed_matcher_main())', '--ros-args', '-r', '__ns:=/script',
         '-p', f'weights:={weights}', '-p', 'device:=cpu'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lifecycle = Lifecycle(harness, '/script/superglue_matcher')
        assert lifecycle.transition(Transition.TRANSITION_CONFIGURE)
        assert lifecycle.transition(Transition.TRANSITION_ACTIVATE)
        assert lifecycle.state() == State.PRIMARY_STATE_ACTIVE
        # The asynchronous ~/match_keyframes answers under the script's single-threaded
        # executor too.
        client = harness.node.create_client(MatchKeyframes, '/script/superglue_matcher/'
                                                            'match_keyframes')
        assert client.wait_for_service(timeout_sec=60.0)
        future = client.call_async(MatchKeyframes.Request(query_keyframe_id=5,
                                                          candidate_keyframe_ids=[1]))
        assert harness.wait_for(future.done, 20.0)
        assert not future.result().success and 'unknown' in future.result().message
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, output
    assert 'configure: done' in output and 'activate: done' in output, output
    assert 'Traceback' not in output and 'ERROR' not in output, output

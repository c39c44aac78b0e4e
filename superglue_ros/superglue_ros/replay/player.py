# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Playback: the launch file's nodes in an in-process graph, fed from a bag, recorded.

A MatcherNode (and a FrontendNode when the bag has no keypoints) run in a ``ros.graph.Graph``
with the parameters file and the topic names of ``ros2 launch superglue_ros
superglue.launch.py``. The bag's messages are published over real DDS, either at the recorded
stamps (``rate`` factor) or as fast as the matcher allows: the next possible keyframe leaves
only once every keyframe sent so far has been answered, so none is dropped. Every
Correspondences message (and every Keypoints message of the front-end) is recorded.

With ``window`` K > 1 (the matcher's ``window_size``) a keyframe is answered with up to K
messages, one per (current, reference) pair; the keyframe counts as answered once, on the
message that carries ``last_in_batch``, so back-pressure and the drop accounting stay per
keyframe.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
import threading
import time
from typing import Any, Dict, List, Optional

import numpy as np

from . import ReplayError
from .bag import BagInfo, BagWriter, read_inputs
from ..ros.graph import Graph, GraphError, reliable_input_overrides, reliable_qos, wait_for
from ..ros.sync import stamp_ns, time_ns
from ..ros.topics import CAMERA_INFO_TOPIC, CORRESPONDENCES_TOPIC, KEYPOINTS_TOPIC

QUEUE_DEPTH = 100  # reliable QoS depth between the replay and the nodes [messages]
# Correspondences.verification values (VERIFICATION_FUNDAMENTAL, VERIFICATION_ESSENTIAL).
VERIFICATIONS = {1: 'fundamental', 2: 'essential'}


@dataclass
class Record:
    """One received Correspondences message, summarised."""

    status: int
    current_id: int
    reference_id: int
    current_stamp_ns: int
    reference_stamp_ns: int
    matches: int
    inliers: int
    verified: bool
    latency: float  # node: keypoints received -> published [s]
    end_to_end: Optional[float]  # replay: frame published -> correspondences received [s]
    message: str
    window_index: int = 0  # keyframe distance - 1 (0 = the previous keyframe)
    last_in_batch: bool = True  # the keyframe's last message: it is answered
    verification: str = ''  # 'fundamental' | 'essential' (with camera_info) | '' (none)
    pose_valid: bool = False  # the message carries a relative pose

    @property
    def distance(self) -> int:
        """Keyframe distance between current and reference: 1 = the previous keyframe."""
        return self.window_index + 1


class Recorder:
    """Keep a summary of every Correspondences message and pass it on to the bag writer."""

    def __init__(self, writer: BagWriter):
        self.writer = writer
        self.sent_at: Dict[int, float] = {}  # stamp [ns] -> perf_counter() when published
        self.records: List[Record] = []
        self.answered_keyframes = 0  # messages with last_in_batch: one per answered keyframe
        self.keypoints = 0
        self.errors = 0
        self.lock = threading.Lock()

    def on_correspondences(self, msg) -> None:
        try:
            received = time.perf_counter()
            self.writer.write_message(CORRESPONDENCES_TOPIC, msg)
            record = self._summarise(msg, received)
            with self.lock:
                self.records.append(record)
                self.answered_keyframes += record.last_in_batch
        except Exception:  # noqa: BLE001 - an exception here would stop the executor
            with self.lock:
                self.errors += 1

    def _summarise(self, msg, received: float) -> Record:
        cur = time_ns(msg.current_stamp)
        sent = self.sent_at.get(cur)
        inlier = np.frombuffer(bytes(msg.inlier), np.uint8) if len(msg.inlier) else []
        return Record(
            status=int(msg.status), current_id=int(msg.current_keyframe_id),
            reference_id=int(msg.reference_keyframe_id), current_stamp_ns=cur,
            reference_stamp_ns=time_ns(msg.reference_stamp),
            matches=len(msg.current_indices), inliers=int(np.sum(inlier)),
            verified=bool(msg.verified), latency=float(msg.latency),
            end_to_end=received - sent if sent is not None else None,
            message=str(msg.status_message), window_index=int(msg.window_index),
            last_in_batch=bool(msg.last_in_batch),
            verification=VERIFICATIONS.get(int(msg.verification), ''),
            pose_valid=bool(msg.pose_valid))

    def on_keypoints(self, msg) -> None:
        try:
            self.writer.write_message(KEYPOINTS_TOPIC, msg)
            with self.lock:
                self.keypoints += 1
        except Exception:  # noqa: BLE001 - an exception here would stop the executor
            with self.lock:
                self.errors += 1

    def __len__(self) -> int:
        with self.lock:
            return len(self.records)

    def answered(self) -> int:
        """Keyframes answered: their last (or only) message has arrived."""
        with self.lock:
            return self.answered_keyframes


class Player:
    """The nodes of the launch file in ``graph``, a driver node publishing the bag's messages."""

    def __init__(self, graph: Graph, info: BagInfo, recorder: Recorder, weights: Path,
                 device: str, params: Optional[Path], max_keypoints: int,
                 matcher: str = 'superglue', window: Optional[int] = None,
                 camera_info=None):
        from rclpy.parameter import Parameter
        from sensor_msgs.msg import CameraInfo, Image
        from superglue_ros_msgs.msg import Correspondences, Keypoints

        from ..nodes.frontend_node import FrontendNode
        from ..nodes.matcher_node import MatcherNode

        self.graph, self.info, self.recorder = graph, info, recorder
        use_frontend = info.keypoints_topic is None
        kp_topic = KEYPOINTS_TOPIC if use_frontend else info.keypoints_topic
        # As `ros2 launch`: the parameters file plus remappings onto the topics.
        ros_args = ['--ros-args', '-r', f'image:={info.image_topic}', '-r',
                    f'keypoints:={kp_topic}', '-r', f'correspondences:={CORRESPONDENCES_TOPIC}']
        # The camera's CameraInfo (the bag's, or built from --camera), as its driver publishes
        # it beside the images: the matcher then verifies with the essential matrix and
        # publishes the relative pose, as deployed.
        self.camera_info = camera_info
        info_topic = info.camera_info_topic or CAMERA_INFO_TOPIC
        if camera_info is not None:
            ros_args += ['-r', f'camera_info:={info_topic}']
        if params is not None:
            ros_args += ['--params-file', str(params)]
        keypoint_cap = ([Parameter('max_keypoints', value=int(max_keypoints))]
                        if max_keypoints > 0 else [])
        overrides = [Parameter('matcher', value=matcher), Parameter('weights', value=str(weights)),
                     Parameter('device', value=device)] + keypoint_cap
        if window is not None:  # else the parameters file decides, as under ros2 launch
            overrides.append(Parameter('window_size', value=int(window)))
        overrides += reliable_input_overrides([info.image_topic, kp_topic], QUEUE_DEPTH)
        try:
            self.matcher = graph.add(MatcherNode(context=graph.context, cli_args=ros_args,
                                                 parameter_overrides=overrides))
        except Exception as exc:  # noqa: BLE001 - e.g. unreadable weights
            raise ReplayError(f'the matcher node did not start: {exc}') from exc
        self.frontend = None
        if use_frontend:
            self.frontend = graph.add(FrontendNode(
                context=graph.context, cli_args=ros_args,
                parameter_overrides=keypoint_cap + reliable_input_overrides(
                    [info.image_topic], QUEUE_DEPTH)))
        driver = graph.create_node('superglue_replay')
        self.log = driver.get_logger()
        qos = reliable_qos(QUEUE_DEPTH)
        self.image_pub = driver.create_publisher(Image, info.image_topic, qos)
        self.info_pub = (driver.create_publisher(CameraInfo, info_topic, qos)
                         if camera_info is not None else None)
        self.kp_pub = None if use_frontend else driver.create_publisher(Keypoints, kp_topic, qos)
        self.out_sub = driver.create_subscription(Correspondences, CORRESPONDENCES_TOPIC,
                                                  recorder.on_correspondences, qos)
        self.kp_sub = (driver.create_subscription(Keypoints, kp_topic, recorder.on_keypoints,
                                                  qos) if use_frontend else None)
        self.driver = driver
        self.sent: Counter = Counter()
        self.read: Counter = Counter()  # messages read from the bag (and how many malformed)
        self.wall_start: Optional[float] = None
        self.bag_times: Dict[int, int] = {}  # image header stamp -> bag time

    def discover(self, timeout: float = 20.0) -> None:
        """Wait until the driver and the nodes see each other; warn about foreign publishers."""
        def discovered() -> bool:
            return (self.image_pub.get_subscription_count() >= (2 if self.frontend else 1)
                    and (self.kp_pub is None or self.kp_pub.get_subscription_count() >= 1)
                    and (self.info_pub is None or self.info_pub.get_subscription_count() >= 1)
                    and (self.kp_sub is None or self.kp_sub.get_publisher_count() >= 1)
                    and self.out_sub.get_publisher_count() >= 1)
        if not self.graph.wait_for(discovered, timeout):
            raise ReplayError('DDS discovery between the replay and the nodes timed out')
        foreign = self.driver.count_publishers(self.info.image_topic) - 1
        if foreign > 0:
            self.log.warning(f'{foreign} other publisher(s) on {self.info.image_topic} in this '
                             f'ROS domain: their frames reach the nodes too (use --domain-id)')

    def give_camera_info(self, timeout: float) -> bool:
        """Publish the CameraInfo until the matcher holds a camera model (False: it did not).

        The matcher subscribes best effort with depth 1, as to a camera driver, so one message
        may be lost: it is sent again every 50 ms, as a driver sends one per frame.
        """
        if self.info_pub is None:
            return False
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.info_pub.publish(self.camera_info)
            if wait_for(lambda: self.matcher.camera is not None, 0.05, 0.005):
                return True
            self.graph.check()
        self.log.warning(f'the matcher did not take the CameraInfo in {timeout} s (see its '
                         f'log): its matches are verified without intrinsics, no pose')
        return False

    def keyframes_sent(self) -> int:
        """Keyframes that went to the matcher (made by the front-end or read from the bag)."""
        return self.frontend.counts['keyframes'] if self.frontend else self.sent['keypoints']

    def lost(self) -> int:
        """Keyframes the matcher counted as dropped (queue full, or keypoints never paired)."""
        s = self.matcher.stats()
        return int(s.get('dropped_queue_full', 0) + s.get('sync_dropped_keypoints', 0))

    def settled(self, target: int, limit: float) -> bool:
        """Wait until ``target`` keyframes are answered or counted as dropped."""
        end = time.monotonic() + limit
        quiet_since = None
        while self.recorder.answered() + self.lost() < target:
            self.graph.check()
            if time.monotonic() > end:
                return False
            # Keypoints that reached the matcher but found no image never come out:
            # stop waiting once the matcher has everything and sits idle for a while.
            if self.matcher.sync_counters.received[1] >= target and self.matcher.is_idle():
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 2.0:
                    return False
            else:
                quiet_since = None
            time.sleep(0.002)
        return True

    def _frontend_took(self, frames: int, timeout: float) -> bool:
        return self.frontend is None or self.graph.wait_for(
            lambda: self.frontend.counts['frames'] >= frames, timeout, 0.002)

    def play(self, rate: Optional[float], timeout: float, progress: bool) -> float:
        """Publish the bag's messages; returns the wall time [s] until all were answered."""
        from tqdm import tqdm
        bar = tqdm(total=self.info.num_images, unit='frame', disable=not progress,
                   desc='replay', dynamic_ncols=True)
        wall_start = time.perf_counter()
        first_t = None
        self.wall_start = wall_start
        for is_image, t, msg in read_inputs(self.info):
            self.read['images' if is_image else 'keypoints'] += 1
            if msg is None:
                self.read['malformed'] += 1
                self.log.warning(f'skipping a malformed message in the bag at {t * 1e-9:.3f} s')
                continue
            first_t = t if first_t is None else first_t
            if rate is not None:
                delay = wall_start + (t - first_t) * 1e-9 / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            elif is_image == (self.frontend is not None):
                # Back-pressure: the next possible keyframe leaves only when every keyframe so
                # far is answered (or counted as dropped by the node).
                target = self.keyframes_sent()
                if not self.settled(target, timeout):
                    missing = target - self.recorder.answered() - self.lost()
                    self.log.warning(f'{missing} keyframe(s) not answered in {timeout} s')
            self._publish(is_image, t, msg)
            if is_image:
                if rate is None and not self._frontend_took(self.sent['images'], timeout):
                    self.log.warning(f'front-end did not take frame {self.sent["images"]} in '
                                     f'{timeout} s')
                bar.update(1)
                bar.set_postfix(keyframes=self.keyframes_sent(), out=self.recorder.answered())
        self._frontend_took(self.sent['images'], timeout)  # it may still be on the last frames
        self.settled(self.keyframes_sent(), timeout)
        wall = time.perf_counter() - wall_start
        bar.set_postfix(keyframes=self.keyframes_sent(), out=self.recorder.answered())
        bar.close()
        # Late messages: let the output subscription catch what is already on its way.
        wait_for(lambda: self.recorder.answered() + self.lost() >= self.keyframes_sent(), 1.0,
                 0.002)
        return wall

    def _publish(self, is_image: bool, t: int, msg) -> None:
        now = time.perf_counter()
        s = stamp_ns(msg)
        if is_image:
            self.bag_times[s] = t
            self.recorder.sent_at.setdefault(s, now)
            self.image_pub.publish(msg)
            self.sent['images'] += 1
        else:
            self.recorder.sent_at[s] = now
            self.kp_pub.publish(msg)
            self.sent['keypoints'] += 1

    def result(self, wall: float) -> Dict[str, Any]:
        """Return what the report needs: counts, node statistics, engine, parameters."""
        stats = self.matcher.stats()
        engine = self.matcher.engine
        return {
            'matcher': self.matcher.get_parameter('matcher').value,
            'wall_s': wall,
            'frames_read_back': self.read['images'],
            'keypoints_read_back': self.read['keypoints'],
            'malformed_in_bag': self.read['malformed'],
            'frames_published': self.sent['images'],
            'keyframes_in': self.keyframes_sent(),
            'keypoints_reaching_matcher': int(self.matcher.sync_counters.received[1]),
            'bag_times': dict(self.bag_times),
            'node_stats': {k: (float(v) if isinstance(v, (float, np.floating)) else int(v))
                           for k, v in stats.items()},
            'frontend_counts': dict(self.frontend.counts) if self.frontend else None,
            'device': str(engine.device),
            'weights_metadata': {k: v for k, v in engine.metadata.items()
                                 if isinstance(v, (str, int, float, bool))},
            'max_keypoints': int(self.matcher.get_parameter('max_keypoints').value),
            'match_threshold': float(engine.match_threshold),
            'queue_policy': self.matcher.get_parameter('queue_policy').value,
            'window_size': int(self.matcher.get_parameter('window_size').value),
            'camera_info_taken': self.matcher.camera is not None,
        }


def play(info: BagInfo, recorder: Recorder, rate: Optional[float], weights: Path, device: str,
         params: Optional[Path], max_keypoints: int, domain_id: Optional[int], progress: bool,
         timeout: float, matcher: str = 'superglue', window: Optional[int] = None,
         camera_info=None) -> Dict[str, Any]:
    """Run the nodes in a fresh graph, play the bag into them; returns ``Player.result``.

    ``camera_info``: a sensor_msgs/CameraInfo given to the matcher before the first frame.

    ``result['interrupted']`` names what stopped the replay early (Ctrl-C, SIGTERM, the ROS
    executor failing), with everything answered until then; None for a complete run.
    """
    try:
        with Graph(domain_id, threads=4, name='superglue_replay_executor') as graph:
            player = Player(graph, info, recorder, weights, device, params, max_keypoints,
                            matcher, window, camera_info)
            interrupted = None
            try:
                player.discover()
                player.give_camera_info(min(timeout, 10.0))
                wall = player.play(rate, timeout, progress)
            except KeyboardInterrupt as exc:
                interrupted = getattr(exc, 'reason', None) or 'interrupted (SIGINT)'
            except GraphError as exc:
                interrupted = f'the ROS executor stopped: {exc}'
            if interrupted is not None:
                start = player.wall_start
                wall = time.perf_counter() - start if start is not None else 0.0
            result = player.result(wall)
            result['interrupted'] = interrupted
            return result
    except GraphError as exc:
        raise ReplayError(str(exc)) from exc

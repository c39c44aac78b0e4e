# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""ORB front-end for camera-only setups: camera ``image`` -> keyframe ``keypoints``.

Every frame is described with OpenCV ORB; a frame becomes a keyframe (and is published as
superglue_ros_msgs/Keypoints with the image's stamp) when it is the first, when
``keyframe_interval`` frames have passed since the last keyframe, or when the share of the
last keyframe's keypoints still tracked in it (mutual Hamming matches) drops below
``min_tracked_overlap``.

The subscription callback only takes the frame (so DDS never backs up behind ORB); one
worker thread describes frames from a queue of two, newest kept. Frames that arrive while the
worker is busy with older ones are skipped and counted (``counts['skipped_busy']``).

A frame stamped before the previous one (a bag played again, ``--loop``, a simulation reset)
starts the keyframe sequence over: it becomes a keyframe (counted in
``counts['stamp_resets']``, one warning per jump). The ``~/reset`` service (std_srvs/Trigger)
does the same on request. Keyframe ids keep increasing across resets, so a back-end never sees
one id twice.
"""

from __future__ import annotations

from collections import Counter
import signal
import threading
from typing import Optional

import cv2
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger
from superglue_ros_msgs.msg import Keypoints

from ..features import DEFAULT_DISTRIBUTION, Features, OrbExtractor
from ..ros.conversions import image_to_gray, keypoints_from_features
from ..ros.dds import transport_note, use_large_image_transport
from ..ros.graph import reliable_qos
from ..ros.sync import stamp_ns
from ..ros.throttle import ThrottledLogger
from ..ros.topics import image_qos
from ..ros.work_queue import WorkQueue

NODE_NAME = 'superglue_frontend'
WARNING_PERIOD = 5.0  # [s] between repeated warnings of one kind
FRAME_QUEUE = 2  # frames waiting for the worker; older ones are skipped (counted)


def tracked_overlap(reference: Features, current: Features, max_distance: int) -> float:
    """Share of the reference keypoints with a mutual ORB match in ``current`` (in [0, 1])."""
    if len(reference) == 0 or len(current) == 0:
        return 0.0
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
    matches = matcher.match(reference.descriptors, current.descriptors)
    good = sum(1 for m in matches if m.distance <= max_distance)
    return good / len(reference)


class FrontendNode(Node):
    """ORB keypoints + descriptors on keyframes of a camera stream."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, **kwargs)
        self.declare_parameters('', [
            ('max_keypoints', 1024, ParameterDescriptor(
                description='ORB keypoints per frame (the strongest are kept)', read_only=True,
                integer_range=[IntegerRange(from_value=1, to_value=100000, step=1)])),
            ('fast_threshold', 20, ParameterDescriptor(
                description='ORB FAST threshold (lowered automatically on low texture)',
                read_only=True,
                integer_range=[IntegerRange(from_value=1, to_value=255, step=1)])),
            ('keyframe_interval', 5, ParameterDescriptor(
                description='A keyframe every N frames at the latest (0 = only by overlap)',
                integer_range=[IntegerRange(from_value=0, to_value=100000, step=1)])),
            ('min_tracked_overlap', 0.5, ParameterDescriptor(
                description="New keyframe when fewer than this share of the last keyframe's "
                            'keypoints is tracked (0 = only by interval)',
                floating_point_range=[FloatingPointRange(from_value=0.0, to_value=1.0,
                                                         step=0.0)])),
            ('max_descriptor_distance', 50, ParameterDescriptor(
                description='Hamming distance up to which an ORB match counts as tracked',
                integer_range=[IntegerRange(from_value=0, to_value=256, step=1)])),
            ('keypoint_distribution', DEFAULT_DISTRIBUTION, ParameterDescriptor(
                description='Which ORB keypoints are kept: grid (spread over the image, '
                            'ORB-SLAM style) | grid_distinct (the same, one keypoint per '
                            'corner across pyramid levels) | response (the strongest, '
                            'wherever they are)',
                read_only=True)),
        ])
        distribution = self._param('keypoint_distribution')
        if distribution not in OrbExtractor.DISTRIBUTIONS:
            self.destroy_node()
            raise ValueError(f'keypoint_distribution must be one of '
                             f'{OrbExtractor.DISTRIBUTIONS}, got {distribution!r}')
        self._extractor = OrbExtractor(self._param('max_keypoints'),
                                       fast_threshold=self._param('fast_threshold'),
                                       distribution=distribution)
        self._keyframe: Optional[Features] = None
        self._last_stamp: Optional[int] = None
        self._state_lock = threading.Lock()  # keyframe state: worker vs ~/reset
        self._next_id = 1
        self._frames_since_keyframe = 0
        self.counts: Counter = Counter()
        self._counts_lock = threading.Lock()
        self._queue = WorkQueue(FRAME_QUEUE, 'drop_oldest')
        self._running = True
        self._worker = threading.Thread(target=self._work, name='superglue_frontend_worker',
                                        daemon=True)
        self._worker.start()
        self._log = ThrottledLogger(self.get_logger(), WARNING_PERIOD)
        self._publisher = self.create_publisher(
            Keypoints, 'keypoints', reliable_qos(10),
            qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self._subscription = self.create_subscription(
            Image, 'image', self._on_image, image_qos(),
            qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self._reset_service = self.create_service(Trigger, '~/reset', self._on_reset)
        self.get_logger().info(
            f'ORB front-end ready: {self._param("max_keypoints")} keypoints ({distribution}), '
            f'keyframe every '
            f'{self._param("keyframe_interval")} frames or below '
            f'{self._param("min_tracked_overlap"):.2f} tracked overlap')

    @property
    def extractor(self) -> OrbExtractor:
        """Return the ORB extractor in use, read-only: max_keypoints, distribution."""
        return self._extractor

    def _param(self, name: str):
        return self.get_parameter(name).value

    def _keyframe_reason(self, features: Features) -> Optional[str]:
        if self._keyframe is None:
            return 'first'
        interval = self._param('keyframe_interval')
        if interval > 0 and self._frames_since_keyframe >= interval:
            return 'interval'
        threshold = self._param('min_tracked_overlap')
        if threshold > 0:
            overlap = tracked_overlap(self._keyframe, features,
                                      self._param('max_descriptor_distance'))
            if overlap < threshold:
                return f'overlap {overlap:.2f}'
        return None

    def _count(self, key: str) -> int:
        with self._counts_lock:
            self.counts[key] += 1
            return self.counts[key]

    def is_idle(self) -> bool:
        """Return True when no frame is queued or being described."""
        return self._queue.idle()

    def reset(self) -> None:
        """Forget the last keyframe and stamp: the next frame becomes a keyframe."""
        with self._state_lock:
            self._forget()

    def _forget(self) -> None:
        self._keyframe = None
        self._last_stamp = None
        self._frames_since_keyframe = 0

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response
                  ) -> Trigger.Response:
        self.reset()
        n = self._count('reset_requests')
        self.get_logger().info(f'reset on request ({n} so far): the next frame becomes a '
                               f'keyframe (id {self._next_id})')
        response.success = True
        response.message = f'front-end reset: the next frame becomes keyframe {self._next_id}'
        return response

    def _on_image(self, msg: Image) -> None:
        self._count('received')
        skipped = self._queue.put(msg)
        if skipped is not None:
            n = self._count('skipped_busy')
            self._count('frames')
            self._log.warning('busy', f'front-end busy: skipped a frame ({n} so far)')

    def _work(self) -> None:
        while self._running:
            msg = self._queue.get(timeout=0.1)
            if msg is None:
                continue
            try:
                self._handle(msg)
            except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the worker
                self._count('internal_errors')
                self._log.error('internal', f'unexpected error on a frame: {exc!r}')
            finally:
                # Counted once handled: whoever sees the count also sees the frame's keyframe.
                self._count('frames')
                self._queue.task_done()

    def destroy_node(self) -> None:
        """Stop the worker (it finishes the frame in hand), then destroy the node."""
        if getattr(self, '_worker', None) is not None:
            self._running = False
            self._queue.close()
            self._worker.join(timeout=2.0)
        super().destroy_node()

    def _handle(self, msg: Image) -> None:
        try:
            gray = image_to_gray(msg)
        except ValueError as exc:
            n = self._count('bad_images')
            self._log.warning('bad_image', f'skipping image: {exc} ({n} so far)')
            return
        with self._state_lock:
            self._describe(msg, gray)

    def _describe(self, msg: Image, gray) -> None:
        """ORB on one frame; publish it when it is a keyframe (under the state lock)."""
        t = stamp_ns(msg)
        if self._last_stamp is not None and t == self._last_stamp:
            n = self._count('bad_stamps')
            self._log.warning('bad_stamp', f'skipping a frame stamped {t * 1e-9:.6f} s like the '
                                           f'previous one ({n} so far)')
            return
        if self._last_stamp is not None and t < self._last_stamp:
            # Not throttled: each jump is one event worth a line.
            n = self._count('stamp_resets')
            self.get_logger().warning(
                f'frame stamped {(self._last_stamp - t) * 1e-9:.3f} s before the previous one: '
                f'the stream went back (bag loop, clock reset); starting over with a new '
                f'keyframe ({n} resets so far)')
            self._forget()
        self._last_stamp = t
        features = self._extractor(gray)
        self._frames_since_keyframe += 1
        if len(features) == 0:
            self._count('empty_frames')
            self._log.warning('empty', 'no ORB keypoints in this frame (texture-less view?)')
            return
        reason = self._keyframe_reason(features)
        if reason is None:
            return
        self._publisher.publish(keypoints_from_features(features, msg.header, self._next_id))
        self.get_logger().debug(f'keyframe {self._next_id} ({reason}): {len(features)} '
                                f'keypoints')
        self._count('keyframes')
        self._next_id += 1
        self._keyframe = features
        self._frames_since_keyframe = 0


class _Terminated(Exception):
    """SIGTERM: shut down as on Ctrl-C."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated()


def main(args=None) -> int:
    """Console script ``frontend_node``.

    Ctrl-C and SIGTERM let the worker publish the frame in hand before the context goes down
    (rclpy's own handler would shut it down first and make that publish an error).
    """
    dds = use_large_image_transport()  # before rclpy.init creates the DDS participant
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    # Started in the background by a non-interactive shell (nohup, some supervisors), the
    # process inherits SIGINT ignored and Python never raises KeyboardInterrupt: launch's
    # SIGINT and Ctrl-C would be lost. Take SIGINT back explicitly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        node = FrontendNode()
    except (KeyboardInterrupt, ExternalShutdownException, _Terminated):
        rclpy.try_shutdown()
        return 0
    except Exception as exc:  # noqa: BLE001 - a clear one-line start-up error, no traceback
        rclpy.logging.get_logger(NODE_NAME).fatal(f'cannot start: {exc}')
        rclpy.try_shutdown()
        return 1
    try:  # from here on a signal, even one arriving during this log line, stops cleanly
        node.get_logger().info(f'DDS transport: {transport_note(dds)}')
        while rclpy.ok():  # short waits: Python's signal handlers run between them
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException, _Terminated):
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

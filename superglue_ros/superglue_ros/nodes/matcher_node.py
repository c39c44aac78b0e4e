# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The middle-end node: match each new keyframe against the previous one with SuperGlue.

Subscribes to ``image`` (sensor_msgs/Image) and ``keypoints`` (superglue_ros_msgs/Keypoints),
pairs them by stamp and publishes exactly one ``correspondences`` message
(superglue_ros_msgs/Correspondences) per keyframe it accepts, plus ``~/debug_image`` (only when
someone subscribes) and ``/diagnostics``.

Threads: the subscription callbacks only pair messages and enqueue them; one worker thread
validates, runs the model, verifies and publishes. The queue between them is bounded; when
the matcher falls behind, ``queue_policy`` drops the oldest waiting keyframe (counted and
logged) or blocks the subscription callback.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import partial
import os
import signal
import sys
import threading
import time
from typing import Any, List, Optional, Tuple
import warnings

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.serialization import deserialize_message
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from superglue_ros_msgs.msg import Correspondences, Keypoints

from ..engine import MatchingEngine, MatchResult, PreparedFeatures
from ..geometry import verify_fundamental
from ..inputs import BAD_STAMP, DUPLICATE_ID, InputError, NO_KEYPOINTS, OVERSIZED
from ..ros.conversions import build_correspondences, image_to_bgr, numpy_to_image
from ..ros.dds import transport_note, use_large_image_transport
from ..ros.diagnostics import matcher_status
from ..ros.graph import reliable_qos
from ..ros.stats import MatcherStats
from ..ros.sync import HAVE_MESSAGE_FILTERS, make_sync, stamp_ns, SyncCounters
from ..ros.throttle import ThrottledLogger
from ..ros.topics import image_qos, keypoints_qos
from ..ros.validation import (check_reference_quality, check_stamp_ahead, keyframe_features,
                              StreamClock)
from ..ros.work_queue import QUEUE_POLICIES, WorkQueue
from ..torch_version import require_torch
from ..viz import draw_matches

NODE_NAME = 'superglue_matcher'


@dataclass(frozen=True)
class Param:
    """One declared parameter: name, default, description and allowed range."""

    name: str
    default: Any
    description: str
    read_only: bool = True
    frange: Optional[Tuple[float, float]] = None
    irange: Optional[Tuple[int, int]] = None

    def descriptor(self) -> ParameterDescriptor:
        d = ParameterDescriptor(description=self.description, read_only=self.read_only)
        if self.frange is not None:
            d.floating_point_range = [FloatingPointRange(
                from_value=float(self.frange[0]), to_value=float(self.frange[1]), step=0.0)]
        if self.irange is not None:
            d.integer_range = [IntegerRange(from_value=int(self.irange[0]),
                                            to_value=int(self.irange[1]), step=1)]
        return d


# Every parameter with its default, in one place; config/superglue.yaml lists the same values
# for users (test_matcher_node checks that the two agree).
PARAMETERS = (
    Param('weights', '', 'Weights file; empty = the shipped ORB weights'),
    Param('device', 'auto', 'auto | cpu | cuda | cuda:N (no CUDA -> warn, use cpu)'),
    Param('fp16', False, 'Half-precision inference on CUDA (ignored on cpu)'),
    Param('num_threads', 0, 'CPU threads per match; 0 = automatic: the cores other processes '
          'leave idle (measured faster under load, docs/PERFORMANCE.md)', irange=(0, 1024)),
    Param('backend', 'torch', 'Inference backend: torch | onnxruntime'),
    Param('descriptor_type', 'orb', 'Descriptor type expected from the front-end; must match '
          'the weights: orb | sift | superpoint | generic'),
    Param('match_threshold', 0.1, 'Minimum matching probability; changeable at run time',
          read_only=False, frange=(0.0, 1.0)),
    Param('sinkhorn_iterations', 0, 'Sinkhorn iterations; 0 = the value stored with the '
          'weights', irange=(0, 1000)),
    Param('max_keypoints', 1024, 'Keep the highest-scoring N keypoints per keyframe; 0 = all',
          irange=(0, 100000)),
    Param('max_input_keypoints', 20000, 'Reject Keypoints messages with more keypoints '
          '(0 = no cap)', irange=(0, 10000000)),
    Param('max_image_pixels', 33554432, 'Reject images with more pixels (0 = no cap)',
          irange=(0, 1 << 30)),
    Param('sync_slop', 0.01, 'Max stamp difference between image and keypoints [s], > 0',
          frange=(1e-6, 10.0)),
    Param('sync_queue_size', 10, 'Per-input queue of the stamp synchronizer',
          irange=(1, 1000)),
    Param('queue_size', 2, 'Keyframes waiting for the matcher', irange=(1, 1000)),
    Param('queue_policy', 'drop_oldest', 'When the matcher falls behind: drop_oldest (count and '
          'log) | block'),
    Param('verify', True, 'RANSAC fundamental-matrix verification fills the inlier flags',
          read_only=False),
    Param('verify_threshold_px', 1.0, 'RANSAC epipolar distance threshold [px]',
          read_only=False, frange=(0.01, 100.0)),
    Param('diagnostics_period', 1.0, 'Period of /diagnostics [s]', frange=(0.01, 3600.0)),
    Param('log_throttle_period', 5.0, 'Minimum interval between repeated warnings of one kind '
          '[s]', read_only=False, frange=(0.0, 3600.0)),
    Param('max_stamp_ahead', 10.0, 'Reject keyframes stamped more than this ahead of the node '
          'clock or of the image stream [s]; 0 = no check', read_only=False,
          frange=(0.0, 1e6)),
    Param('min_reference_keypoints', 20, 'Keypoints at distinct positions a keyframe needs to '
          'become the reference', read_only=False, irange=(1, 100000)),
    Param('min_reference_spread', 0.25, 'Share of the 4 x 4 image cells the keypoints of a '
          'reference must cover', read_only=False, frange=(0.0, 1.0)),
    Param('match_deadline', 5.0, 'A match running longer is reported as ERROR in diagnostics '
          'and counted (watchdog_overruns) [s]; 0 = no watchdog', read_only=False,
          frange=(0.0, 3600.0)),
)

SHUTDOWN_GRACE = 1.5  # [s] the worker may take to finish the keyframe in hand at shutdown

# Rejection reasons answered with a status other than STATUS_REJECTED_INPUT.
REJECTION_STATUS = {NO_KEYPOINTS: Correspondences.STATUS_NO_KEYPOINTS}


@dataclass
class Keyframe:
    """The reference keyframe: its prepared tensors are reused for the next match."""

    keyframe_id: int
    stamp: Time
    stamp_ns: int
    prepared: PreparedFeatures
    image: Image
    bgr: Optional[np.ndarray] = None  # converted lazily, only for the debug image


@dataclass
class Job:
    """A stamp-paired (image, keypoints) waiting for the worker."""

    image: Image
    keypoints: Keypoints
    received: float  # time.perf_counter() when the pair was complete
    arrival_ns: int = 0  # time.monotonic_ns() then (for StreamClock)


class MatcherNode(Node):
    """SuperGlue keyframe-to-keyframe matcher for a bundle-adjustment back-end.

    Public, read-only: ``engine`` (the loaded MatchingEngine), ``stats()``,
    ``sync_counters``, ``is_idle()`` and ``debug_image_wanted``.
    """

    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, **kwargs)
        try:
            self.declare_parameters('', [(p.name, p.default, p.descriptor())
                                         for p in PARAMETERS])
            self._engine = self._load_engine()
        except Exception:
            self.destroy_node()
            raise
        self._reference: Optional[Keyframe] = None
        self._stats = MatcherStats()
        self._reported: Counter = Counter()  # counts at the last /diagnostics report
        self._log = ThrottledLogger(self.get_logger(),
                                    lambda: self._param('log_throttle_period'))

        self._correspondences_pub = self.create_publisher(
            Correspondences, 'correspondences', reliable_qos(10),
            qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self._debug_pub = self.create_publisher(Image, '~/debug_image', reliable_qos(10))
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)

        self._queue = WorkQueue(self._param('queue_size'), self._param('queue_policy'))
        self._running = True
        self._worker = threading.Thread(target=self._work, name='superglue_matcher_worker',
                                        daemon=True)
        self._worker.start()

        self._stream = StreamClock()
        self._stream_lock = threading.Lock()
        self._busy: Optional[Tuple[float, int]] = None  # (start, keyframe id) of the match
        self._overrun_counted = False
        self._arrived = [0, 0]  # image, keypoints messages that reached the node
        # Messages are taken serialised and checked as they arrive (malformed ones counted,
        # size caps applied) before the stamp pairing holds them.
        self._sync_backend = 'message_filters' if HAVE_MESSAGE_FILTERS else 'own'
        self._sync = make_sync(self._sync_backend, 2, self._param('sync_queue_size'),
                               self._param('sync_slop'), self._on_pair)
        inputs = MutuallyExclusiveCallbackGroup()
        topics = ((Image, 'image', image_qos()), (Keypoints, 'keypoints', keypoints_qos()))
        for k, (msg_type, topic, qos) in enumerate(topics):
            self.create_subscription(
                msg_type, topic, partial(self._on_message, k, msg_type), qos, raw=True,
                callback_group=inputs,
                qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self._diagnostics_timer = self.create_timer(
            self._param('diagnostics_period'), self._on_diagnostics_timer,
            callback_group=MutuallyExclusiveCallbackGroup())
        self.add_on_set_parameters_callback(self._on_set_parameters)

        engine = self._engine
        self.get_logger().info(
            f'matcher ready: weights {engine.metadata.get("path")} '
            f'({engine.metadata.get("model")}), device {engine.device}'
            f'{" (fp16)" if engine.fp16 else ""}, descriptors {engine.descriptor_type} '
            f'({engine.input_dim}), match_threshold {engine.match_threshold:.3f}, '
            f'max_keypoints {engine.max_keypoints}, queue {self._queue.maxsize} '
            f'{self._queue.policy}, sync {self._sync_backend} '
            f'(slop {self._param("sync_slop")} s, queue {self._param("sync_queue_size")}), '
            f'verification {"on" if self._param("verify") else "off"}')

    # -- public, read-only -----------------------------------------------------------------

    @property
    def engine(self) -> MatchingEngine:
        """Return the loaded MatchingEngine: model, device, descriptor type, threshold."""
        return self._engine

    @property
    def sync_counters(self) -> SyncCounters:
        """Return the image/keypoints messages received and dropped unpaired, pairs emitted."""
        return SyncCounters(tuple(self._arrived), tuple(self._sync.dropped()),
                            self._sync.emitted)

    @property
    def debug_image_wanted(self) -> bool:
        """Return True while someone subscribes to ~/debug_image (drawn only then)."""
        return self._debug_pub.get_subscription_count() > 0

    def stats(self) -> dict:
        """Counters and latency statistics (what /diagnostics reports), as a dict."""
        out = self._stats.snapshot()
        dropped = self._sync.dropped()
        out['sync_dropped_images'] = dropped[0]
        out['sync_dropped_keypoints'] = dropped[1]
        out['queued'] = len(self._queue)
        return out

    def is_idle(self) -> bool:
        """Return True when no keyframe is queued or being processed."""
        return self._queue.idle()

    # -- parameters ------------------------------------------------------------------------

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _load_engine(self) -> MatchingEngine:
        policy = self._param('queue_policy')
        if policy not in QUEUE_POLICIES:
            raise ValueError(f'queue_policy must be one of {QUEUE_POLICIES}, got {policy!r}')
        overrides = {'match_threshold': float(self._param('match_threshold'))}
        if self._param('sinkhorn_iterations') > 0:
            overrides['sinkhorn_iterations'] = int(self._param('sinkhorn_iterations'))
        with warnings.catch_warnings():  # the device fallback is logged below instead
            warnings.simplefilter('ignore', RuntimeWarning)
            engine = MatchingEngine.from_weights(
                self._param('weights') or None, device=self._param('device'),
                fp16=self._param('fp16'), max_keypoints=self._param('max_keypoints'),
                num_threads=self._param('num_threads'), backend=self._param('backend'),
                **overrides)
        if engine.device_warning:
            self.get_logger().warning(engine.device_warning)
        if engine.fp16_ignored:
            self.get_logger().warning('fp16 requested but the device is not CUDA: using fp32')
        expected = self._param('descriptor_type')
        if engine.descriptor_type != expected:
            raise ValueError(f'parameter descriptor_type={expected!r} but the weights '
                             f'{engine.metadata["path"]} were trained for '
                             f'{engine.descriptor_type!r} descriptors')
        return engine

    def _on_set_parameters(self, params: List[Parameter]) -> SetParametersResult:
        for p in params:
            if p.name == 'match_threshold':
                if p.type_ != Parameter.Type.DOUBLE or not 0.0 <= p.value <= 1.0:
                    return SetParametersResult(
                        successful=False,
                        reason=f'match_threshold must be a double in [0, 1], got {p.value!r}')
            elif p.name == 'verify_threshold_px':
                if p.type_ != Parameter.Type.DOUBLE or not p.value > 0.0:
                    return SetParametersResult(
                        successful=False, reason='verify_threshold_px must be a double > 0')
        for p in params:
            if p.name == 'match_threshold':
                self._engine.match_threshold = p.value
                self.get_logger().info(f'match_threshold set to {p.value:.3f}')
        return SetParametersResult(successful=True)

    # -- input -----------------------------------------------------------------------------

    def _on_message(self, index: int, msg_type: type, data: bytes) -> None:
        """One serialised image (index 0) or keypoints (1) message: check, then pair."""
        arrival = time.monotonic_ns()
        self._arrived[index] += 1
        kind = 'image' if index == 0 else 'keypoints'
        try:
            msg = deserialize_message(data, msg_type)
        except Exception as exc:  # noqa: BLE001 - whatever a broken publisher sends
            n = self._stats.count(f'malformed_{kind}')
            self._log.warning(f'malformed_{kind}', f'dropped a malformed serialised {kind} '
                              f'message of {len(data)} bytes ({exc}); {n} so far')
            return
        if index == 0:
            with self._stream_lock:
                self._stream.observe(stamp_ns(msg), arrival)
            cap = self._param('max_image_pixels')
            if cap > 0 and msg.width * msg.height > cap:
                # Free the pixels now; the pair is still answered (oversized) when it forms.
                self._stats.count('oversized_on_arrival')
                msg = Image(header=msg.header, width=msg.width, height=msg.height,
                            encoding=msg.encoding)
        else:
            cap = self._param('max_input_keypoints')
            if cap > 0 and len(msg.x) > cap:
                self._stats.count('oversized_on_arrival')
                self._stats.count('keyframes_received')
                stub = Keypoints(header=msg.header, keyframe_id=msg.keyframe_id)
                self._reject(Job(Image(header=msg.header), stub, time.perf_counter()),
                             InputError(OVERSIZED, f'{len(msg.x)} keypoints exceed the cap '
                                                   f'of {cap} (parameter max_input_keypoints)'))
                return
        self._sync.add(index, msg)

    def _on_pair(self, image: Image, keypoints: Keypoints) -> None:
        received = time.perf_counter()
        self._stats.count('keyframes_received')
        evicted = self._queue.put(Job(image, keypoints, received, time.monotonic_ns()))
        if evicted is not None:
            dropped = self._stats.count('dropped_queue_full')
            self._log.warning('queue_full',
                              f'matcher falling behind: dropped keyframe '
                              f'{evicted.keypoints.keyframe_id} (queue of '
                              f'{self._queue.maxsize}, {dropped} dropped so far)')

    # -- worker ----------------------------------------------------------------------------

    def _work(self) -> None:
        while self._running:
            job = self._queue.get(timeout=0.1)
            if job is None:
                continue
            try:
                self._process(job)
            except Exception as exc:  # noqa: BLE001 - the node must outlive any bad input
                self._stats.count('internal_errors')
                self._log.error('internal', f'unexpected error on keyframe '
                                f'{job.keypoints.keyframe_id}: {exc!r}')
            finally:
                self._queue.task_done()

    def _publish(self, job: Job, status: int, text: str = '', **fields) -> Correspondences:
        kp = job.keypoints
        header = Header(stamp=kp.header.stamp,
                        frame_id=kp.header.frame_id or job.image.header.frame_id)
        ref = self._reference
        msg = build_correspondences(
            header, status, text, current=(kp.keyframe_id, kp.header.stamp),
            reference=(ref.keyframe_id, ref.stamp) if ref else (0, None),
            latency=time.perf_counter() - job.received, **fields)
        self._correspondences_pub.publish(msg)
        self._stats.count('published')
        return msg

    def _reject(self, job: Job, error: InputError) -> None:
        self._stats.count(f'rejected_{error.reason}')
        self._stats.count('rejected')
        self._log.error(f'reject_{error.reason}',
                        f'rejected keyframe {job.keypoints.keyframe_id} ({error.reason}): '
                        f'{error.message}')
        status = REJECTION_STATUS.get(error.reason, Correspondences.STATUS_REJECTED_INPUT)
        self._publish(job, status, str(error))

    def _check_stamp(self, job: Job) -> None:
        """Apply the stamp policy; InputError rejects, a backwards jump resets the reference.

        Rejected: the reference's stamp or keyframe id again, or a stamp more than
        max_stamp_ahead in the future of the node clock or of the image stream (it must not
        become the reference: every later keyframe would look backwards).
        """
        kp, ref = job.keypoints, self._reference
        t = stamp_ns(kp)
        if ref is not None and t == ref.stamp_ns:
            raise InputError(BAD_STAMP, f'duplicate stamp {t * 1e-9:.9f} s (same as the '
                                        f'reference keyframe {ref.keyframe_id})')
        if ref is not None and int(kp.keyframe_id) == ref.keyframe_id:
            raise InputError(DUPLICATE_ID, f'keyframe id {kp.keyframe_id} is the id of the '
                                           f'reference (stamped {ref.stamp_ns * 1e-9:.3f} s)')
        with self._stream_lock:
            stream_ahead = self._stream.ahead(t, job.arrival_ns) if job.arrival_ns else None
        check_stamp_ahead(t, self._param('max_stamp_ahead'),
                          self.get_clock().now().nanoseconds, stream_ahead)
        if ref is not None and t < ref.stamp_ns:
            n = self._stats.count('stamp_resets')
            self._log.warning('stamp_reset', f'keyframe {kp.keyframe_id} is stamped '
                              f'{(ref.stamp_ns - t) * 1e-9:.3f} s before the reference '
                              f'{ref.keyframe_id}: the stream went back (bag loop, clock '
                              f'reset); starting over with it ({n} resets so far)')
            self._reference = None

    def _accept(self, job: Job) -> Optional[Keyframe]:
        """Validate and prepare the job's keyframe; None (and answered) when rejected."""
        image, kp = job.image, job.keypoints
        try:
            self._check_stamp(job)
            features = keyframe_features(
                image, kp, self._engine, self._param('max_image_pixels'),
                self._param('max_input_keypoints'))
            check_reference_quality(features, self._param('min_reference_keypoints'),
                                    self._param('min_reference_spread'))
            prepared = self._engine.prepare(features)
        except InputError as exc:
            self._reject(job, exc)
            return None
        return Keyframe(int(kp.keyframe_id), kp.header.stamp, stamp_ns(kp), prepared, image)

    def _process(self, job: Job) -> None:
        current = self._accept(job)
        if current is None:
            return
        ref = self._reference
        if ref is None:
            self._publish(job, Correspondences.STATUS_FIRST_KEYFRAME,
                          'first keyframe: it becomes the reference')
            self._stats.count('first_keyframe')
            self._reference = current
            return
        start = time.perf_counter()
        self._busy, self._overrun_counted = (start, current.keyframe_id), False
        try:
            result = self._engine.match_prepared(ref.prepared, current.prepared)
        except Exception as exc:  # noqa: BLE001 - e.g. CUDA out of memory
            self._busy = None
            self._stats.count('matcher_errors')
            self._log.error('matcher_error', f'matcher failed on keyframe '
                            f'{current.keyframe_id}: {exc!r}')
            self._publish(job, Correspondences.STATUS_MATCHER_ERROR, f'matcher error: {exc!r}')
            self._reference = current
            return
        match_time = time.perf_counter() - start
        self._busy = None
        self._watchdog(current.keyframe_id, match_time)
        self._answer(job, ref, current, result, match_time)
        self._reference = current

    def _answer(self, job: Job, ref: Keyframe, current: Keyframe, result: MatchResult,
                match_time: float) -> None:
        """Verify the matches, publish them, record the statistics, draw the debug image."""
        n = len(result.index0)
        inlier, verified = None, False
        if self._param('verify'):
            inlier = verify_fundamental(result.points0, result.points1,
                                        self._param('verify_threshold_px'))
            verified = True
        msg = self._publish(
            job, Correspondences.STATUS_OK, f'{n} matches',
            current_index=result.index1, reference_index=result.index0,
            current_points=result.points1, reference_points=result.points0,
            confidence=result.confidence, inlier=inlier, verified=verified)
        self._stats.add_match(msg.latency, match_time, n,
                              float(np.mean(inlier)) if verified and n else None)
        self.get_logger().debug(
            f'keyframe {current.keyframe_id} vs {ref.keyframe_id}: {n} matches, '
            f'model {match_time * 1e3:.1f} ms, total {msg.latency * 1e3:.1f} ms')
        if self.debug_image_wanted:
            self._publish_debug(ref, current, result, inlier, msg.header)

    def _publish_debug(self, ref: Keyframe, current: Keyframe, result: MatchResult, inlier,
                       header: Header) -> None:
        try:
            for kf in (ref, current):
                if kf.bgr is None:
                    kf.bgr = image_to_bgr(kf.image)
            n_in = int(np.sum(inlier)) if inlier is not None else len(result.index0)
            canvas = draw_matches(
                ref.bgr, current.bgr, result.points0, result.points1, result.confidence,
                inliers=inlier,
                text=[f'keyframe {ref.keyframe_id} -> {current.keyframe_id}',
                      f'{len(result.index0)} matches, {n_in} inliers'])
            self._debug_pub.publish(numpy_to_image(canvas, 'bgr8', header))
            self._stats.count('debug_images')
        except Exception as exc:  # noqa: BLE001 - the debug view must never stop matching
            self._log.warning('debug', f'debug image failed: {exc!r}')

    # -- diagnostics -----------------------------------------------------------------------

    def _watchdog(self, keyframe_id: int, elapsed: float) -> None:
        """Count (once) and log a match running past match_deadline."""
        deadline = self._param('match_deadline')
        if deadline <= 0 or elapsed <= deadline or self._overrun_counted:
            return
        self._overrun_counted = True
        n = self._stats.count('watchdog_overruns')
        self._log.error('watchdog', f'match of keyframe {keyframe_id} has run {elapsed:.1f} s, '
                        f'past match_deadline={deadline} s ({n} overruns so far)')

    def _on_diagnostics_timer(self) -> None:
        try:
            busy = self._busy
            if busy is not None:
                self._watchdog(busy[1], time.perf_counter() - busy[0])
            stats = self.stats()
            unpaired = stats['sync_dropped_keypoints']
            if unpaired > self._reported['unpaired']:
                self._log.warning('sync', f'{unpaired} keypoints messages found no image '
                                  f'within sync_slop={self._param("sync_slop")} s and were '
                                  f'dropped (check stamps, sync_slop and sync_queue_size)')
            msg = DiagnosticArray()
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.status = [matcher_status(f'{self.get_name()}: keyframe matcher',
                                         str(self._engine.device), stats,
                                         self._engine.match_threshold, self._reported)]
            self._diagnostics_pub.publish(msg)
        except Exception as exc:  # noqa: BLE001 - an exception here would stop the executor
            self._log.error('diagnostics', f'diagnostics failed: {exc!r}')

    # -- shutdown --------------------------------------------------------------------------

    def destroy_node(self) -> None:
        """Stop the worker, then destroy the node.

        The worker finishes and answers the keyframe in hand if it can within SHUTDOWN_GRACE;
        keyframes still waiting, or a match that takes longer, are counted and logged
        (``dropped_at_shutdown``), never lost silently.
        """
        if getattr(self, '_worker', None) is not None:
            self._running = False
            waiting = self._queue.close()
            self._worker.join(timeout=SHUTDOWN_GRACE)
            unfinished = waiting + (1 if self._worker.is_alive() else 0)
            if unfinished:
                self._stats.count('dropped_at_shutdown', unfinished)
                self.get_logger().warning(f'shutting down: {unfinished} keyframe(s) not '
                                          f'answered (still queued or being matched)')
            self._worker = None
        super().destroy_node()


class _Terminated(Exception):
    """SIGTERM: shut down as on Ctrl-C."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated()


def main(args=None) -> int:
    """Console script ``matcher_node``: exit status 1 on a start-up error.

    Ctrl-C and SIGTERM stop intake, let the worker answer the keyframe in hand (up to
    SHUTDOWN_GRACE), then shut down: rclpy's own signal handler would invalidate the context
    first and turn that last answer into an error, so Python's handlers are used instead.
    """
    dds = use_large_image_transport()  # before rclpy.init creates the DDS participant
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        require_torch()  # one clear line below the minimum version
        node = MatcherNode()
    except (KeyboardInterrupt, ExternalShutdownException, _Terminated):
        rclpy.try_shutdown()
        return 0
    except Exception as exc:  # noqa: BLE001 - a clear one-line start-up error, no traceback
        rclpy.logging.get_logger(NODE_NAME).fatal(f'cannot start: {exc}')
        rclpy.try_shutdown()
        return 1
    node.get_logger().info(f'DDS transport: {transport_note(dds)}')
    # Inference runs on the node's own worker thread, so one executor thread is enough; it also
    # leaves no thread pool behind to keep the process alive after Ctrl-C.
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while rclpy.ok():  # short waits: Python's signal handlers run between them
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException, _Terminated):
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        started = time.monotonic()
        executor.remove_node(node)
        node.destroy_node()
        executor.shutdown(timeout_sec=0.5)
        rclpy.try_shutdown()
        rclpy.logging.get_logger(NODE_NAME).info(
            f'shut down in {time.monotonic() - started:.2f} s')
    _exit_after_clean_shutdown(0)
    return 0


def _exit_after_clean_shutdown(code: int) -> None:
    """End the console-script process once the node is down and its worker joined.

    Interpreter teardown with torch's OpenMP pool and the DDS threads still loaded crashed or
    hung about once in ten Ctrl-C's in our tests; everything worth keeping is already done
    here, so skip teardown after flushing the logs.
    """
    if threading.current_thread() is threading.main_thread() and \
            os.environ.get('SUPERGLUE_ROS_SOFT_EXIT') != '1':
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == '__main__':
    raise SystemExit(main())

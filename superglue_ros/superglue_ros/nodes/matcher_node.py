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

from collections import Counter, deque
from dataclasses import dataclass
import os
import sys
import threading
import time
from typing import Any, Deque, Dict, List, Optional
import warnings

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from superglue_ros_msgs.msg import Correspondences, Keypoints

from ..engine import MatchingEngine, PreparedFeatures
from ..geometry import verify_fundamental
from ..ros.conversions import (build_correspondences, features_from_keypoints, image_to_bgr,
                               numpy_to_image)
from ..ros.sync import stamp_ns, StampSynchronizer
from ..ros.validation import (DESCRIPTOR_MISMATCH, NO_KEYPOINTS, NON_FINITE, REASONS,
                              Rejection, validate_image, validate_keypoints, validate_pair)
from ..viz import draw_matches
from ..weights import default_weights_path

NODE_NAME = 'superglue_matcher'
QUEUE_POLICIES = ('drop_oldest', 'block')


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


class WorkQueue:
    """Bounded FIFO between the subscription callbacks and the worker thread.

    ``put`` with policy 'drop_oldest' never blocks and returns the item it evicted (or None);
    with 'block' it waits for space (or until ``close``) and returns None.
    """

    def __init__(self, maxsize: int, policy: str):
        if policy not in QUEUE_POLICIES:
            raise ValueError(f'queue_policy must be one of {QUEUE_POLICIES}, got {policy!r}')
        self.maxsize = max(1, int(maxsize))
        self.policy = policy
        self._items: Deque[Any] = deque()
        self._cond = threading.Condition()
        self._closed = False

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
        """Oldest item, or None after ``timeout`` seconds or once closed and empty."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if not self._items:
                return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """Wake every waiter; later ``get`` calls drain what is left, then return None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


def _percentile(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, np.float64), q)) if len(values) else 0.0


class MatcherNode(Node):
    """SuperGlue keyframe-to-keyframe matcher for a bundle-adjustment back-end."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, **kwargs)
        try:
            self._declare_parameters()
            self._engine = self._load_engine()
        except Exception:
            self.destroy_node()
            raise
        self._descriptor_dim = int(self._engine.model.conf.input_dim)
        self._reference: Optional[Keyframe] = None
        self._stats_lock = threading.Lock()
        window = 200
        self._latencies: Deque[float] = deque(maxlen=window)
        self._match_times: Deque[float] = deque(maxlen=window)
        self._num_matches: Deque[int] = deque(maxlen=window)
        self._inlier_ratios: Deque[float] = deque(maxlen=window)
        self._counts: Counter = Counter()
        self._last_reported: Counter = Counter()
        self._log_times: Dict[str, float] = {}
        self._log_suppressed: Counter = Counter()

        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        overrides = QoSOverridingOptions.with_default_policies()
        self._correspondences_pub = self.create_publisher(
            Correspondences, 'correspondences', reliable, qos_overriding_options=overrides)
        self._debug_pub = self.create_publisher(Image, '~/debug_image', reliable)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)

        self._queue = WorkQueue(self._param('queue_size'), self._param('queue_policy'))
        self._running = True
        self._busy = False
        self._worker = threading.Thread(target=self._work, name='superglue_matcher_worker',
                                        daemon=True)
        self._worker.start()

        self._input_group = MutuallyExclusiveCallbackGroup()
        self._sync = StampSynchronizer(
            self, [(Image, 'image'), (Keypoints, 'keypoints')],
            queue_size=self._param('sync_queue_size'), slop=self._param('sync_slop'),
            callback=self._on_pair, qos_profile=qos_profile_sensor_data,
            qos_overriding_options=QoSOverridingOptions.with_default_policies(),
            callback_group=self._input_group)
        self._diagnostics_timer = self.create_timer(
            self._param('diagnostics_period'), self._on_diagnostics_timer,
            callback_group=MutuallyExclusiveCallbackGroup())
        self.add_on_set_parameters_callback(self._on_set_parameters)

        engine = self._engine
        self.get_logger().info(
            f'matcher ready: weights {engine.metadata.get("path")}, device {engine.device}'
            f'{" (fp16)" if engine.fp16 else ""}, descriptors {engine.descriptor_type} '
            f'({self._descriptor_dim}), match_threshold {engine.match_threshold:.3f}, '
            f'max_keypoints {engine.max_keypoints}, queue {self._queue.maxsize} '
            f'{self._queue.policy}, sync {self._sync.backend} '
            f'(slop {self._param("sync_slop")} s, queue {self._param("sync_queue_size")}), '
            f'verification {"on" if self._param("verify") else "off"}')

    # -- parameters ------------------------------------------------------------------------

    def _declare_parameters(self) -> None:
        def desc(text: str, read_only: bool = False, frange=None, irange=None):
            d = ParameterDescriptor(description=text, read_only=read_only)
            if frange is not None:
                d.floating_point_range = [FloatingPointRange(
                    from_value=float(frange[0]), to_value=float(frange[1]), step=0.0)]
            if irange is not None:
                d.integer_range = [IntegerRange(from_value=int(irange[0]),
                                                to_value=int(irange[1]), step=1)]
            return d

        self.declare_parameters('', [
            ('weights', '', desc('Weights file; empty = the shipped ORB weights', True)),
            ('device', 'auto', desc('auto | cpu | cuda | cuda:N (no CUDA -> warn, use cpu)',
                                    True)),
            ('fp16', False, desc('Half-precision inference on CUDA (ignored on cpu)', True)),
            ('descriptor_type', 'orb', desc('Descriptor type expected from the front-end; must '
                                            'match the weights: orb | sift | superpoint | '
                                            'generic', True)),
            ('match_threshold', 0.2, desc('Minimum matching probability; changeable at run '
                                          'time', frange=(0.0, 1.0))),
            ('sinkhorn_iterations', 0, desc('Sinkhorn iterations; 0 = the value stored with '
                                            'the weights', True, irange=(0, 1000))),
            ('max_keypoints', 1024, desc('Keep the highest-scoring N keypoints per keyframe; '
                                         '0 = all', True, irange=(0, 100000))),
            ('max_input_keypoints', 20000, desc('Reject Keypoints messages with more keypoints '
                                                '(0 = no cap)', True, irange=(0, 10000000))),
            ('max_image_pixels', 33554432, desc('Reject images with more pixels (0 = no cap)',
                                                True, irange=(0, 1 << 30))),
            ('sync_slop', 0.01, desc('Max stamp difference between image and keypoints [s]',
                                     True, frange=(0.0, 10.0))),
            ('sync_queue_size', 10, desc('Per-input queue of the stamp synchronizer', True,
                                         irange=(1, 1000))),
            ('queue_size', 2, desc('Keyframes waiting for the matcher', True,
                                   irange=(1, 1000))),
            ('queue_policy', 'drop_oldest', desc('When the matcher falls behind: drop_oldest '
                                                 '(count and log) | block', True)),
            ('verify', True, desc('RANSAC fundamental-matrix verification fills the inlier '
                                  'flags')),
            ('verify_threshold_px', 1.0, desc('RANSAC epipolar distance threshold [px]',
                                              frange=(0.01, 100.0))),
            ('diagnostics_period', 1.0, desc('Period of /diagnostics [s]', True,
                                             frange=(0.01, 3600.0))),
            ('log_throttle_period', 5.0, desc('Minimum interval between repeated warnings of '
                                              'one kind [s]', frange=(0.0, 3600.0))),
        ])
        policy = self._param('queue_policy')
        if policy not in QUEUE_POLICIES:
            raise ValueError(f'queue_policy must be one of {QUEUE_POLICIES}, got {policy!r}')

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _load_engine(self) -> MatchingEngine:
        path = self._param('weights') or str(default_weights_path())
        overrides = {'match_threshold': float(self._param('match_threshold'))}
        if self._param('sinkhorn_iterations') > 0:
            overrides['sinkhorn_iterations'] = int(self._param('sinkhorn_iterations'))
        device = self._param('device')
        with warnings.catch_warnings():  # the device fallback is logged below instead
            warnings.simplefilter('ignore', RuntimeWarning)
            engine = MatchingEngine.from_weights(path, device=device, fp16=self._param('fp16'),
                                                 max_keypoints=self._param('max_keypoints'),
                                                 **overrides)
        if engine.device_warning:
            self.get_logger().warning(engine.device_warning)
        if engine.fp16_ignored:
            self.get_logger().warning('fp16 requested but the device is not CUDA: using fp32')
        expected = self._param('descriptor_type')
        if engine.descriptor_type != expected:
            raise ValueError(f'parameter descriptor_type={expected!r} but the weights {path} '
                             f'were trained for {engine.descriptor_type!r} descriptors')
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

    # -- logging and statistics ------------------------------------------------------------

    def _throttled(self, key: str, text: str, level: str = 'warning') -> None:
        """Log ``text`` at most once per log_throttle_period for each ``key``."""
        now = time.monotonic()
        period = self._param('log_throttle_period')
        last = self._log_times.get(key)
        if last is not None and now - last < period:
            self._log_suppressed[key] += 1
            return
        suppressed = self._log_suppressed.pop(key, 0)
        self._log_times[key] = now
        if suppressed:
            text += f' ({suppressed} more like this in the last {now - last:.1f} s)'
        # One call site per severity: rclpy refuses to change the severity of a call site.
        if level == 'error':
            self.get_logger().error(text)
        else:
            self.get_logger().warning(text)

    def _count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self._counts[key] += n

    def stats(self) -> Dict[str, Any]:
        """Counters and latency statistics (what /diagnostics reports), as a dict."""
        with self._stats_lock:
            lat = list(self._latencies)
            mt = list(self._match_times)
            out: Dict[str, Any] = dict(self._counts)
            out.update({
                'latency_p50': _percentile(lat, 50), 'latency_p95': _percentile(lat, 95),
                'match_time_p50': _percentile(mt, 50), 'match_time_p95': _percentile(mt, 95),
                'matches_per_keyframe': float(np.mean(self._num_matches))
                if self._num_matches else 0.0,
                'inlier_ratio': float(np.mean(self._inlier_ratios))
                if self._inlier_ratios else 0.0,
            })
        dropped = self._sync.dropped()
        out['sync_dropped_images'] = dropped[0]
        out['sync_dropped_keypoints'] = dropped[1]
        out['queued'] = len(self._queue)
        return out

    def is_idle(self) -> bool:
        """Return True when no keyframe is queued or being processed."""
        return not self._busy and len(self._queue) == 0

    def reset_stats(self) -> None:
        """Forget the latency windows (the benchmark calls this after its warm-up)."""
        with self._stats_lock:
            for window in (self._latencies, self._match_times, self._num_matches,
                           self._inlier_ratios):
                window.clear()

    # -- input -----------------------------------------------------------------------------

    def _on_pair(self, image: Image, keypoints: Keypoints) -> None:
        received = time.perf_counter()
        self._count('keyframes_received')
        evicted = self._queue.put(Job(image, keypoints, received))
        if evicted is not None:
            self._count('dropped_queue_full')
            self._throttled('queue_full',
                            f'matcher falling behind: dropped keyframe '
                            f'{evicted.keypoints.keyframe_id} (queue of {self._queue.maxsize}, '
                            f'{self._counts["dropped_queue_full"]} dropped so far)')

    # -- worker ----------------------------------------------------------------------------

    def _work(self) -> None:
        while self._running:
            job = self._queue.get(timeout=0.1)
            if job is None:
                continue
            self._busy = True
            try:
                self._process(job)
            except Exception as exc:  # noqa: BLE001 - the node must outlive any bad input
                self._count('internal_errors')
                self._throttled('internal', f'unexpected error on keyframe '
                                f'{job.keypoints.keyframe_id}: {exc!r}', 'error')
            finally:
                self._busy = False

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
        self._count('published')
        return msg

    def _reject(self, job: Job, rejection: Rejection) -> None:
        self._count(f'rejected_{rejection.reason}')
        self._count('rejected')
        self._throttled(f'reject_{rejection.reason}',
                        f'rejected keyframe {job.keypoints.keyframe_id} '
                        f'({rejection.reason}): {rejection.message}', 'error')
        status = (Correspondences.STATUS_NO_KEYPOINTS if rejection.reason == NO_KEYPOINTS
                  else Correspondences.STATUS_REJECTED_INPUT)
        self._publish(job, status, str(rejection))

    def _process(self, job: Job) -> None:
        image, kp = job.image, job.keypoints
        ref = self._reference
        rejection = (validate_image(image, self._param('max_image_pixels'))
                     or validate_keypoints(kp, self._engine.descriptor_type,
                                           self._descriptor_dim,
                                           self._param('max_input_keypoints'),
                                           ref.stamp_ns if ref else None)
                     or validate_pair(image, kp))
        if rejection is not None:
            self._reject(job, rejection)
            return
        try:
            prepared = self._engine.prepare(features_from_keypoints(kp))
        except ValueError as exc:
            reason = NON_FINITE if 'NaN' in str(exc) else DESCRIPTOR_MISMATCH
            self._reject(job, Rejection(reason, str(exc)))
            return
        current = Keyframe(int(kp.keyframe_id), kp.header.stamp, stamp_ns(kp), prepared, image)
        if ref is None:
            self._publish(job, Correspondences.STATUS_FIRST_KEYFRAME,
                          'first keyframe: it becomes the reference')
            self._count('first_keyframe')
            self._reference = current
            return
        start = time.perf_counter()
        try:
            result = self._engine.match_prepared(ref.prepared, current.prepared)
        except Exception as exc:  # noqa: BLE001 - e.g. CUDA out of memory
            self._count('matcher_errors')
            self._throttled('matcher_error', f'matcher failed on keyframe {kp.keyframe_id}: '
                            f'{exc!r}', 'error')
            self._publish(job, Correspondences.STATUS_MATCHER_ERROR, f'matcher error: {exc!r}')
            self._reference = current
            return
        match_time = time.perf_counter() - start
        inlier, verified = None, False
        if self._param('verify'):
            inlier = verify_fundamental(result.points0, result.points1,
                                        self._param('verify_threshold_px'))
            verified = True
        msg = self._publish(
            job, Correspondences.STATUS_OK, f'{len(result.index0)} matches',
            current_index=result.index1, reference_index=result.index0,
            current_points=result.points1, reference_points=result.points0,
            confidence=result.confidence, inlier=inlier, verified=verified)
        with self._stats_lock:
            self._counts['ok'] += 1
            self._latencies.append(msg.latency)
            self._match_times.append(match_time)
            self._num_matches.append(len(result.index0))
            if verified and len(result.index0):
                self._inlier_ratios.append(float(np.mean(inlier)))
        self.get_logger().debug(
            f'keyframe {kp.keyframe_id} vs {ref.keyframe_id}: {len(result.index0)} matches, '
            f'model {match_time * 1e3:.1f} ms, total {msg.latency * 1e3:.1f} ms')
        if self._debug_pub.get_subscription_count() > 0:
            self._publish_debug(ref, current, result, inlier, msg.header)
        self._reference = current

    def _publish_debug(self, ref: Keyframe, current: Keyframe, result, inlier,
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
            self._count('debug_images')
        except Exception as exc:  # noqa: BLE001 - the debug view must never stop matching
            self._throttled('debug', f'debug image failed: {exc!r}')

    # -- diagnostics -----------------------------------------------------------------------

    def _on_diagnostics_timer(self) -> None:
        try:
            self._publish_diagnostics()
        except Exception as exc:  # noqa: BLE001 - an exception here would stop the executor
            self._throttled('diagnostics', f'diagnostics failed: {exc!r}', 'error')

    def _publish_diagnostics(self) -> None:
        s = self.stats()
        status = DiagnosticStatus()
        status.name = f'{self.get_name()}: keyframe matcher'
        status.hardware_id = str(self._engine.device)
        problems = sum(s.get(k, 0) for k in ('dropped_queue_full', 'rejected'))
        errors = s.get('matcher_errors', 0) + s.get('internal_errors', 0)
        if errors > self._last_reported['errors']:
            status.level, status.message = DiagnosticStatus.ERROR, 'matcher errors'
        elif problems > self._last_reported['problems']:
            status.level, status.message = DiagnosticStatus.WARN, 'dropped or rejected input'
        else:
            status.level, status.message = DiagnosticStatus.OK, 'ok'
        self._last_reported['errors'], self._last_reported['problems'] = errors, problems
        unpaired = s['sync_dropped_keypoints']
        if unpaired > self._last_reported['unpaired']:
            # Images without keypoints are normal (not every frame is a keyframe); keypoints
            # without an image are lost keyframes.
            self._throttled('sync', f'{unpaired} keypoints messages found no image within '
                            f'sync_slop={self._param("sync_slop")} s and were dropped '
                            f'(check stamps, sync_slop and sync_queue_size)')
            if status.level == DiagnosticStatus.OK:
                status.level, status.message = DiagnosticStatus.WARN, 'unpaired keypoints'
        self._last_reported['unpaired'] = unpaired
        values = {
            'device': str(self._engine.device),
            'keyframes_received': s.get('keyframes_received', 0),
            'correspondences_published': s.get('published', 0),
            'latency_p50_ms': f'{s["latency_p50"] * 1e3:.2f}',
            'latency_p95_ms': f'{s["latency_p95"] * 1e3:.2f}',
            'model_time_p50_ms': f'{s["match_time_p50"] * 1e3:.2f}',
            'matches_per_keyframe': f'{s["matches_per_keyframe"]:.1f}',
            'inlier_ratio': f'{s["inlier_ratio"]:.3f}',
            'match_threshold': f'{self._engine.match_threshold:.3f}',
            'dropped_queue_full': s.get('dropped_queue_full', 0),
            'sync_dropped_images': s['sync_dropped_images'],
            'sync_dropped_keypoints': s['sync_dropped_keypoints'],
            'matcher_errors': s.get('matcher_errors', 0),
            'internal_errors': s.get('internal_errors', 0),
            'rejected_total': s.get('rejected', 0),
        }
        for reason in REASONS:
            values[f'rejected_{reason}'] = s.get(f'rejected_{reason}', 0)
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [status]
        self._diagnostics_pub.publish(msg)

    # -- shutdown --------------------------------------------------------------------------

    def destroy_node(self) -> None:
        """Stop the worker (it finishes the keyframe in hand), then destroy the node."""
        if getattr(self, '_worker', None) is not None:
            self._running = False
            self._queue.close()
            self._worker.join(timeout=10.0)
        super().destroy_node()


def main(args=None) -> int:
    """Console script ``matcher_node``: exit status 1 on a start-up error."""
    rclpy.init(args=args)
    try:
        node = MatcherNode()
    except (KeyboardInterrupt, ExternalShutdownException):
        rclpy.try_shutdown()
        return 0
    except Exception as exc:  # noqa: BLE001 - a clear one-line start-up error, no traceback
        rclpy.logging.get_logger(NODE_NAME).fatal(f'cannot start: {exc}')
        rclpy.try_shutdown()
        return 1
    # Inference runs on the node's own worker thread, so one executor thread is enough; it also
    # leaves no thread pool behind to keep the process alive after Ctrl-C.
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown(timeout_sec=5.0)
        node.destroy_node()
        rclpy.try_shutdown()
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

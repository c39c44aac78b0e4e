# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The middle-end node: match each new keyframe against the previous one with SuperGlue.

Subscribes to ``keypoints`` (superglue_ros_msgs/Keypoints) and, depending on ``image_input``,
to ``image`` (sensor_msgs/Image, ``raw``), to ``image/compressed`` (sensor_msgs/CompressedImage,
``compressed``, the image_transport name) or to no image at all (``none``: the keypoints carry
the image size the network needs; ``~/debug_image`` is then not offered). It pairs image and
keypoints by stamp and publishes exactly one ``correspondences`` message
(superglue_ros_msgs/Correspondences) per keyframe it accepts, plus ``~/debug_image`` (only when
someone subscribes) and ``/diagnostics``.

``camera_info`` (sensor_msgs/CameraInfo, optional unless ``camera_info_required``): with
intrinsics the matches are verified by a RANSAC essential matrix on undistorted points and
the message carries the relative pose (rotation, unit translation, inliers); without them, by
a RANSAC fundamental matrix on the pixels.

Accepted keyframes are kept, prepared, in a store bounded by ``max_keyframes`` and
``max_keyframe_memory`` (evictions counted). With ``window_size`` K > 1 a new keyframe is
matched against the K newest stored ones in one batched forward pass, answered with one
Correspondences per pair (``window_index``, ``last_in_batch``). ``~/match_keyframes``
(superglue_ros_msgs/MatchKeyframes) matches a stored query keyframe against stored candidates
(loop-closure verification) on the worker, one candidate at a time between keyframes, so the
stream waits at most one match.

With images (``image_input`` raw or compressed) and ``refine_matches``, each pair's matched
points of the current keyframe are refined to sub-pixel accuracy against the reference
keyframe's image (``refinement.MatchRefiner``): published as ``refined_current_x/y`` beside
the keypoint positions, and what the RANSAC verification and the pose are computed from.

A keyframe stamped before the reference (a bag played again, a simulation reset) starts the
sequence over; ``~/reset`` (std_srvs/Trigger) does the same on request.

Threads: the subscription callbacks only pair messages and enqueue them; one worker thread
validates, runs the model, verifies and publishes. The queue between them is bounded; when
the matcher falls behind, ``queue_policy`` drops the oldest waiting keyframe (counted and
logged) or blocks the subscription callback.

``MatcherCore`` holds all of it, in phases (declare, configure, activate, deactivate,
cleanup); ``MatcherNode`` runs them all at construction, the managed node
(``managed_matcher_node``) from its lifecycle transitions.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from functools import partial
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Deque, List, Optional, Tuple, Union
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
from rclpy.task import Future
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger
from superglue_ros_msgs.msg import Correspondences, Keypoints
from superglue_ros_msgs.srv import MatchKeyframes

from ..engine import MatchingEngine, MatchResult, PreparedFeatures
from ..geometry import Intrinsics, verify_essential, verify_fundamental
from ..inputs import (BAD_STAMP, DUPLICATE_ID, InputError, NO_CAMERA_INFO, NO_KEYPOINTS,
                      OVERSIZED)
from ..refinement import MatchRefiner, Refinement, WARPS
from ..ros.conversions import (build_correspondences, compressed_to_image, image_to_bgr,
                               image_to_gray, intrinsics_from_camera_info, numpy_to_image)
from ..ros.dds import transport_note, use_large_image_transport
from ..ros.device_memory import release_device_memory
from ..ros.diagnostics import matcher_status
from ..ros.graph import reliable_qos
from ..ros.keyframe_store import EVICTED, KeyframeStore, tensor_bytes
from ..ros.stats import MatcherStats
from ..ros.sync import HAVE_MESSAGE_FILTERS, make_sync, stamp_ns, SyncCounters
from ..ros.throttle import ThrottledLogger
from ..ros.topics import camera_info_qos, image_qos, keypoints_qos
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
    Param('matcher', 'superglue', 'superglue (the learned model, weights below) | orb_nn '
          '(brute-force Hamming, ratio and mutual check: the classical baseline)'),
    Param('weights', '', 'Weights file; empty = the shipped ORB weights'),
    Param('device', 'auto', 'auto | cpu | cuda | cuda:N (no CUDA -> warn, use cpu)'),
    Param('fp16', False, 'Half-precision inference on CUDA (ignored on cpu)'),
    Param('num_threads', 0, 'CPU threads per match; 0 = automatic: the cores other processes '
          'leave idle (measured faster under load, docs/PERFORMANCE.md)', irange=(0, 1024)),
    Param('backend', 'torch', 'Inference backend: torch | onnxruntime'),
    Param('descriptor_type', 'orb', 'Descriptor type expected from the front-end; must match '
          'the weights: orb | sift | superpoint | generic'),
    Param('match_threshold', -1.0, 'Minimum matching probability in [0, 1]; negative = the '
          'threshold stored with the weights (0.15 for the shipped ones); changeable at run '
          'time', read_only=False, frange=(-1.0, 1.0)),
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
    Param('verify', True, 'RANSAC verification fills the inlier flags: essential matrix with '
          'camera_info, else fundamental matrix', read_only=False),
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
    Param('image_input', 'raw', 'Image input: raw (sensor_msgs/Image on image) | compressed '
          '(sensor_msgs/CompressedImage on image/compressed) | none (keypoints only: no '
          'image subscription, no debug image)'),
    Param('camera_info_required', False, 'Reject keyframes until a usable camera_info has '
          'arrived; false = verify with a fundamental matrix while there is none'),
    Param('window_size', 1, 'Match each keyframe against this many newest stored keyframes '
          'in one batch, one Correspondences per pair (1 = the previous keyframe only)',
          irange=(1, 64)),
    Param('max_keyframes', 50, 'Accepted keyframes kept (prepared) for the window and '
          '~/match_keyframes, oldest evicted first; at least window_size',
          irange=(1, 1000000)),
    Param('max_keyframe_memory', 256.0, 'Memory bound of the stored keyframes [MiB]: their '
          'tensors, keypoints and images; oldest evicted first', frange=(1.0, 1e6)),
    Param('refine_matches', True, 'Sub-pixel refinement: move each matched point of the '
          'current keyframe onto the patch of its partner in the reference keyframe '
          '(refined_current_x/y); needs images (no effect with image_input none); changeable '
          'at run time', read_only=False),
    Param('refine_min_correlation', 0.7, 'Normalised cross-correlation a refined point needs; '
          'below it the keypoint position is kept; changeable at run time', read_only=False,
          frange=(-1.0, 1.0)),
    Param('refine_half_window', 7, 'Half width of the refinement template [px]: '
          '(2 h + 1)^2 pixels', irange=(1, 32)),
    Param('refine_search_radius', 3, 'Integer offsets searched around each matched point in '
          'each direction [px]; a partner farther away stays unrefined', irange=(1, 16)),
    Param('refine_warp', 'homography', 'How the reference patch is warped into the current '
          'image: homography (the Jacobian of a RANSAC homography of the matches of the pair; '
          'the mean ORB rotation of the pair where none fits) | rotation (that rotation only)'),
)

SHUTDOWN_GRACE = 1.5  # [s] the worker may take to finish the keyframe in hand at shutdown
IMAGE_INPUTS = ('raw', 'compressed', 'none')

# Rejection reasons answered with a status other than STATUS_REJECTED_INPUT.
REJECTION_STATUS = {NO_KEYPOINTS: Correspondences.STATUS_NO_KEYPOINTS}


@dataclass
class Keyframe:
    """A stored keyframe: its prepared tensors are reused for every later match."""

    keyframe_id: int
    stamp: Time
    stamp_ns: int
    prepared: PreparedFeatures
    image: Optional[Image]  # None in keypoints-only mode
    camera: Optional[Intrinsics] = None  # the camera model when the keyframe was taken
    frame_id: str = ''
    bgr: Optional[np.ndarray] = None  # converted lazily, only for the debug image
    # For match refinement, converted once when the keyframe is accepted; for an unpadded
    # mono8 image a view on the message's pixels (no copy).
    gray: Optional[np.ndarray] = None
    # [N x 2] its keypoints' refined positions (NaN: never refined), per original keypoint
    # index: where later keyframes refine against, so that a track follows one point.
    observations: Optional[np.ndarray] = None

    def nbytes(self) -> int:
        """Return the memory the keyframe holds: tensors, keypoint arrays, image pixels."""
        p = self.prepared  # engine-specific: tensors (MatchingEngine) or arrays (classical)
        arrays = [getattr(p, name, None) for name in
                  ('keypoints', 'scores', 'descriptors', 'angles', 'sizes')]
        for f in (getattr(p, 'features', None), getattr(p, 'selected', None)):
            if f is not None:
                arrays += [f.keypoints, f.scores, f.descriptors, f.size, f.angle, f.octave]
        pixels = self.image.data if self.image is not None else None
        gray = self.gray
        if gray is not None and pixels is not None and len(pixels) and \
                np.may_share_memory(gray, np.frombuffer(pixels, np.uint8)):
            gray = None  # a view on the message's pixels, already counted
        return tensor_bytes(*arrays, pixels, self.bgr, gray, self.observations)

    def observed(self, index: np.ndarray) -> np.ndarray:
        """Return this keyframe's observations of keypoints ``index`` [M x 2].

        Its refined position where it was refined as a current keyframe, else the keypoint
        position.
        """
        keypoints = self.prepared.features.keypoints[index].astype(np.float64).reshape(-1, 2)
        if self.observations is None or not len(index):
            return keypoints
        known = self.observations[index]
        return np.where(np.isfinite(known), known, keypoints)

    def record(self, index: np.ndarray, points: np.ndarray, refined: np.ndarray) -> None:
        """Keep refined positions of keypoints ``index``; the first recorded one stays.

        A keyframe is matched against its newest reference first (window_index 0), so that
        reference's refinement is the one later keyframes refine against.
        """
        if not np.any(refined):
            return
        if self.observations is None:
            self.observations = np.full((len(self.prepared.features), 2), np.nan, np.float32)
        index = np.asarray(index)[refined]
        fresh = np.isnan(self.observations[index, 0])
        self.observations[index[fresh]] = np.asarray(points, np.float32)[refined][fresh]


@dataclass
class LoopRequest:
    """A ~/match_keyframes call, served one candidate at a time by the worker."""

    request: Any  # MatchKeyframes.Request
    future: Future
    received: float  # time.perf_counter()
    results: List[Correspondences] = field(default_factory=list)


@dataclass
class Job:
    """A stamp-paired (image, keypoints) waiting for the worker."""

    image: Union[Image, CompressedImage, None]  # None in keypoints-only mode
    keypoints: Keypoints
    received: float  # time.perf_counter() when the pair was complete
    arrival_ns: int = 0  # time.monotonic_ns() then (for StreamClock)


class MatcherCore:
    """SuperGlue keyframe-to-keyframe matcher for a bundle-adjustment back-end.

    The behaviour of the node, for an rclpy ``Node`` or ``LifecycleNode`` it is mixed into,
    in phases: ``_declare`` (parameters, ~/reset), ``_configure`` (weights, publishers,
    worker), ``_activate`` (subscriptions), ``_deactivate`` and ``_cleanup`` (the model freed).

    Public, read-only: ``engine`` (the loaded MatchingEngine, None before configure),
    ``stats()``, ``sync_counters``, ``is_idle()``, ``debug_image_wanted``, ``camera``; and
    ``reset()``.
    """

    # -- phases ----------------------------------------------------------------------------

    def _declare(self) -> None:
        """Declare the parameters and the ~/reset service; no weights are loaded yet."""
        self.declare_parameters('', [(p.name, p.default, p.descriptor())
                                     for p in PARAMETERS])
        self._engine = None
        self._weights_threshold = 0.0  # the loaded weights' own match_threshold
        self._worker: Optional[threading.Thread] = None
        self._store: Optional[KeyframeStore] = None
        self._state_lock = threading.Lock()  # the store: worker vs ~/reset and configure
        self._requests: Deque[LoopRequest] = deque()  # ~/match_keyframes calls in progress
        self._stats = MatcherStats()
        self._reported: Counter = Counter()  # counts at the last /diagnostics report
        self._log = ThrottledLogger(self.get_logger(),
                                    lambda: self._param('log_throttle_period'))
        self._image_input = self._param('image_input')
        if self._image_input not in IMAGE_INPUTS:
            raise ValueError(f'image_input must be one of {IMAGE_INPUTS}, got '
                             f'{self._image_input!r}')
        self._camera: Optional[Intrinsics] = None
        self._stream = StreamClock()
        self._stream_lock = threading.Lock()
        self._arrived = [0, 0]  # image, keypoints messages that reached the node
        self._sync = None
        self._sync_backend = 'none'
        self._input_subs: List[Any] = []
        self._own_pubs: List[Any] = []
        self._own_timers: List[Any] = []
        self._debug_pub = None
        self._busy: Optional[Tuple[float, int]] = None  # (start, keyframe id) of the match
        if self._param('refine_warp') not in WARPS:
            raise ValueError(f'refine_warp must be one of {WARPS}, got '
                             f'{self._param("refine_warp")!r}')
        self._refiner = MatchRefiner(self._param('refine_half_window'),
                                     self._param('refine_search_radius'),
                                     self._param('refine_min_correlation'),
                                     self._param('refine_warp'))
        self._overrun_counted = False
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._reset_service = self.create_service(Trigger, '~/reset', self._on_reset)
        self._match_keyframes_service = self.create_service(
            MatchKeyframes, '~/match_keyframes', self._on_match_keyframes,
            callback_group=MutuallyExclusiveCallbackGroup())

    def _configure(self) -> None:
        """Load the weights; create the keyframe store, the publishers, the worker, the pairing."""
        window, count = self._param('window_size'), self._param('max_keyframes')
        if window > count:
            raise ValueError(f'window_size {window} needs max_keyframes >= {window}, got '
                             f'{count}')
        self._engine = self._load_engine()
        with self._state_lock:
            self._store = KeyframeStore(count, int(self._param('max_keyframe_memory') * 2**20),
                                        Keyframe.nbytes)
        self._correspondences_pub = self.create_publisher(
            Correspondences, 'correspondences', reliable_qos(10),
            qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._own_pubs = [self._correspondences_pub, self._diagnostics_pub]
        if self._image_input != 'none':
            self._debug_pub = self.create_publisher(Image, '~/debug_image', reliable_qos(10))
            self._own_pubs.append(self._debug_pub)

        self._queue = WorkQueue(self._param('queue_size'), self._param('queue_policy'))
        self._running = True
        self._worker = threading.Thread(target=self._work, name='superglue_matcher_worker',
                                        daemon=True)
        self._worker.start()
        # Messages are taken serialised and checked as they arrive (malformed ones counted,
        # size caps applied) before the stamp pairing holds them. Keypoints alone need none.
        if self._image_input != 'none':
            self._sync_backend = 'message_filters' if HAVE_MESSAGE_FILTERS else 'own'
            self._sync = make_sync(self._sync_backend, 2, self._param('sync_queue_size'),
                                   self._param('sync_slop'), self._on_pair)
        self._own_timers = [self.create_timer(
            self._param('diagnostics_period'), self._on_diagnostics_timer,
            callback_group=MutuallyExclusiveCallbackGroup())]

        engine = self._engine
        image = {'raw': 'image (raw)', 'compressed': 'image/compressed',
                 'none': 'none (keypoints only, no debug image)'}[self._image_input]
        self.get_logger().info(
            f'matcher ready: weights {engine.metadata.get("path")} '
            f'({engine.metadata.get("model")}), device {engine.device}'
            f'{" (fp16)" if engine.fp16 else ""}, descriptors {engine.descriptor_type} '
            f'({engine.input_dim}), match_threshold {engine.match_threshold:.3f}, '
            f'max_keypoints {engine.max_keypoints}, queue {self._queue.maxsize} '
            f'{self._queue.policy}, image input {image}, sync {self._sync_backend} '
            f'(slop {self._param("sync_slop")} s, queue {self._param("sync_queue_size")}), '
            f'camera_info {"required" if self._param("camera_info_required") else "optional"}'
            f', window {window} (store of {count} keyframes, '
            f'{self._param("max_keyframe_memory"):g} MiB), '
            f'verification {"on" if self._param("verify") else "off"}, '
            f'refinement {self._refinement_note()}')

    def _refinement_note(self) -> str:
        if self._image_input == 'none':
            return 'off (image_input none: no images, refined_current_x/y stay empty)'
        if not self._param('refine_matches'):
            return 'off'
        r = self._refiner
        return (f'on (window {2 * r.half_window + 1} px, search +-{r.search_radius} px, '
                f'min correlation {r.min_correlation:g})')

    def _activate(self) -> None:
        """Subscribe to the inputs: keyframes flow from now on."""
        with self._stream_lock:  # what the stream did before a pause says nothing now
            self._stream = StreamClock()
        inputs = MutuallyExclusiveCallbackGroup()
        topics = [(Keypoints, 'keypoints', keypoints_qos(), 1)]
        if self._image_input == 'raw':
            topics.append((Image, 'image', image_qos(), 0))
        elif self._image_input == 'compressed':
            topics.append((CompressedImage, 'image/compressed', image_qos(), 0))
        for msg_type, topic, qos, k in topics:
            self._input_subs.append(self.create_subscription(
                msg_type, topic, partial(self._on_message, k, msg_type), qos, raw=True,
                callback_group=inputs,
                qos_overriding_options=QoSOverridingOptions.with_default_policies()))
        self._input_subs.append(self.create_subscription(
            CameraInfo, 'camera_info', self._on_camera_info, camera_info_qos(),
            callback_group=inputs))

    def _deactivate(self) -> None:
        """Unsubscribe; keyframes already queued are still answered."""
        for sub in self._input_subs:
            self.destroy_subscription(sub)
        self._input_subs = []

    def _cleanup(self) -> None:
        """Stop the worker, destroy the publishers and free the model (and its GPU memory)."""
        self._stop_worker()
        for timer in self._own_timers:
            self.destroy_timer(timer)
        for pub in self._own_pubs:
            self.destroy_publisher(pub)
        self._own_timers, self._own_pubs, self._debug_pub = [], [], None
        with self._state_lock:
            self._store = None  # the stored keyframes' tensors go before the model
        self._sync = None
        device = getattr(self._engine, 'device', None)
        self._engine = None  # the last reference: the model and its tensors go
        reserved = release_device_memory(device)
        if reserved is not None:
            self.get_logger().info(f'model freed; {reserved / 2**20:.1f} MiB still reserved '
                                   f'on {device}')

    def _stop_worker(self) -> None:
        """Stop the worker; it answers the keyframe in hand if it can within SHUTDOWN_GRACE.

        Keyframes still waiting, or a match that takes longer, are counted and logged
        (``dropped_at_shutdown``), never lost silently.
        """
        if self._worker is None:
            return
        self._running = False
        while self._requests:  # answered, never left hanging
            self._finish(self._requests.popleft(), False, 'the matcher is stopping')
        waiting = self._queue.close()
        self._worker.join(timeout=SHUTDOWN_GRACE)
        unfinished = waiting + (1 if self._worker.is_alive() else 0)
        if unfinished:
            self._stats.count('dropped_at_shutdown', unfinished)
            self.get_logger().warning(f'stopping: {unfinished} keyframe(s) not answered '
                                      f'(still queued or being matched)')
        self._worker = None

    # -- public, read-only -----------------------------------------------------------------

    @property
    def engine(self) -> Optional[MatchingEngine]:
        """Return the loaded MatchingEngine (None before configure and after cleanup)."""
        return self._engine

    @property
    def camera(self) -> Optional[Intrinsics]:
        """Return the camera model from the last usable camera_info (None without one)."""
        return self._camera

    @property
    def sync_counters(self) -> SyncCounters:
        """Return the image/keypoints messages received and dropped unpaired, pairs emitted."""
        return SyncCounters(tuple(self._arrived), tuple(self._sync_dropped()),
                            self._sync.emitted if self._sync is not None else
                            self._arrived[1])

    @property
    def debug_image_wanted(self) -> bool:
        """Return True while someone subscribes to ~/debug_image (drawn only then)."""
        return self._debug_pub is not None and self._debug_pub.get_subscription_count() > 0

    def stats(self) -> dict:
        """Counters and latency statistics (what /diagnostics reports), as a dict."""
        out = self._stats.snapshot()
        dropped = self._sync_dropped()
        out['sync_dropped_images'] = dropped[0]
        out['sync_dropped_keypoints'] = dropped[1]
        out['queued'] = len(self._queue) if self._worker is not None else 0
        store = self._store
        if store is not None:
            out.update(store.stats())
        return out

    def is_idle(self) -> bool:
        """Return True when no keyframe is queued or being processed."""
        return self._worker is None or self._queue.idle()

    def reset(self) -> str:
        """Forget the reference keyframe and the messages waiting for a partner.

        The next keyframe becomes the reference (STATUS_FIRST_KEYFRAME). Returns what was
        dropped, in words. A match in progress finishes first.
        """
        with self._state_lock:
            newest = self._store.newest() if self._store is not None else []
            ref = newest[0] if newest else None
            if self._store is not None:
                self._store.clear('reset')
            flushed = self._sync.reset() if self._sync is not None else [0, 0]
        with self._stream_lock:
            self._stream = StreamClock()
        return (f'reference keyframe {ref.keyframe_id if ref else "(none)"} dropped (the store '
                f'emptied), {flushed[0]} image(s) and {flushed[1]} keypoints message(s) waiting '
                f'for a partner flushed; the next keyframe becomes the reference')

    def _sync_dropped(self) -> List[int]:
        return list(self._sync.dropped()) if self._sync is not None else [0, 0]

    # -- parameters ------------------------------------------------------------------------

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _load_engine(self) -> MatchingEngine:
        policy = self._param('queue_policy')
        if policy not in QUEUE_POLICIES:
            raise ValueError(f'queue_policy must be one of {QUEUE_POLICIES}, got {policy!r}')
        matcher = self._param('matcher')
        threshold = float(self._param('match_threshold'))
        from ..classical import CLASSICAL_MATCHERS, ClassicalEngine
        if matcher in CLASSICAL_MATCHERS:  # same messages, verification and statistics
            engine = ClassicalEngine(matcher, self._param('max_keypoints'),
                                     max(threshold, 0.0),
                                     device=self._param('device'), fp16=self._param('fp16'))
            if engine.device_warning:
                self.get_logger().warning(engine.device_warning)
            if self._param('descriptor_type') != engine.descriptor_type:
                raise ValueError(f'parameter descriptor_type='
                                 f'{self._param("descriptor_type")!r}: matcher {matcher} '
                                 f'matches {engine.descriptor_type!r} descriptors only')
            return engine
        if matcher != 'superglue':
            raise ValueError(f'matcher must be superglue or one of {CLASSICAL_MATCHERS}, got '
                             f'{matcher!r}')
        overrides = {}
        if self._param('sinkhorn_iterations') > 0:
            overrides['sinkhorn_iterations'] = int(self._param('sinkhorn_iterations'))
        with warnings.catch_warnings():  # the device fallback is logged below instead
            warnings.simplefilter('ignore', RuntimeWarning)
            engine = MatchingEngine.from_weights(
                self._param('weights') or None, device=self._param('device'),
                fp16=self._param('fp16'), max_keypoints=self._param('max_keypoints'),
                num_threads=self._param('num_threads'), backend=self._param('backend'),
                **overrides)
        # The weights file carries the threshold its training chose; a non-negative parameter
        # overrides it (and a negative one at run time goes back to it).
        self._weights_threshold = engine.match_threshold
        if threshold >= 0:
            engine.match_threshold = threshold
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
                if p.type_ != Parameter.Type.DOUBLE or not -1.0 <= p.value <= 1.0:
                    return SetParametersResult(
                        successful=False,
                        reason=f'match_threshold must be a double in [0, 1] (or negative for '
                               f'the threshold stored with the weights), got {p.value!r}')
            elif p.name == 'verify_threshold_px':
                if p.type_ != Parameter.Type.DOUBLE or not p.value > 0.0:
                    return SetParametersResult(
                        successful=False, reason='verify_threshold_px must be a double > 0')
            elif p.name == 'refine_min_correlation':
                if p.type_ != Parameter.Type.DOUBLE or not -1.0 <= p.value <= 1.0:
                    return SetParametersResult(
                        successful=False, reason=f'refine_min_correlation must be a double in '
                                                 f'[-1, 1], got {p.value!r}')
        for p in params:
            if p.name == 'match_threshold' and self._engine is not None:
                value = p.value if p.value >= 0 else self._weights_threshold
                self._engine.match_threshold = value
                self.get_logger().info(f'match_threshold set to {value:.3f}'
                                       + ('' if p.value >= 0 else ' (from the weights file)'))
            elif p.name == 'refine_min_correlation':
                self._refiner.min_correlation = float(p.value)
                self.get_logger().info(f'refine_min_correlation set to {p.value:.3f}')
        return SetParametersResult(successful=True)

    # -- services --------------------------------------------------------------------------

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response
                  ) -> Trigger.Response:
        what = self.reset()
        n = self._stats.count('reset_requests')
        self.get_logger().info(f'reset on request ({n} so far): {what}')
        response.success = True
        response.message = f'matcher reset: {what}'
        return response

    async def _on_match_keyframes(self, request: MatchKeyframes.Request,
                                  response: MatchKeyframes.Response) -> MatchKeyframes.Response:
        """Hand the request to the worker and wait (without holding the executor) for it."""
        self._stats.count('match_keyframes_requests')
        if self._worker is None:
            response.success, response.message = False, 'the matcher is not configured'
            return response
        future = Future(executor=self.executor)
        future.add_done_callback(lambda _: None)  # its scheduling wakes the executor
        self._requests.append(LoopRequest(request, future, time.perf_counter()))
        self._queue.wake()
        await future
        success, message, results = future.result()
        response.success, response.message = success, message
        response.correspondences = results
        return response

    # -- input -----------------------------------------------------------------------------

    def _on_camera_info(self, msg: CameraInfo) -> None:
        """Keep the camera model of the latest usable camera_info (bad ones counted)."""
        try:
            camera = intrinsics_from_camera_info(msg)
        except ValueError as exc:
            n = self._stats.count('bad_camera_info')
            self._log.warning('camera_info', f'ignoring camera_info: {exc} ({n} so far)')
            return
        previous, self._camera = self._camera, camera
        if previous is None:
            self.get_logger().info(
                f'camera model from camera_info: {camera.size[0]} x {camera.size[1]}, '
                f'fx {camera.k[0, 0]:.1f} fy {camera.k[1, 1]:.1f}, {camera.model} distortion '
                f'({len(camera.d)} coefficients): verifying with the essential matrix')

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
            if msg_type is Image and cap > 0 and msg.width * msg.height > cap:
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
                self._reject(Job(None, stub, time.perf_counter()),
                             InputError(OVERSIZED, f'{len(msg.x)} keypoints exceed the cap '
                                                   f'of {cap} (parameter max_input_keypoints)'))
                return
            if self._sync is None:  # keypoints only: nothing to pair with
                self._on_pair(None, msg, arrival)
                return
        self._sync.add(index, msg)

    def _on_pair(self, image: Union[Image, CompressedImage, None], keypoints: Keypoints,
                 arrival_ns: Optional[int] = None) -> None:
        received = time.perf_counter()
        self._stats.count('keyframes_received')
        evicted = self._queue.put(Job(image, keypoints, received,
                                      arrival_ns or time.monotonic_ns()))
        if evicted is not None:
            dropped = self._stats.count('dropped_queue_full')
            self._log.warning('queue_full',
                              f'matcher falling behind: dropped keyframe '
                              f'{evicted.keypoints.keyframe_id} (queue of '
                              f'{self._queue.maxsize}, {dropped} dropped so far)')

    # -- worker ----------------------------------------------------------------------------

    def _work(self) -> None:
        while self._running:
            # Keyframes first; a ~/match_keyframes call advances by one candidate whenever no
            # keyframe waits, so the stream waits at most one match for it.
            job = self._queue.get(timeout=0.0 if self._requests else 0.1)
            if job is None:
                if self._requests:
                    self._serve_step()
                continue
            try:
                with self._state_lock:
                    self._process(job)
            except Exception as exc:  # noqa: BLE001 - the node must outlive any bad input
                self._stats.count('internal_errors')
                self._log.error('internal', f'unexpected error on keyframe '
                                f'{job.keypoints.keyframe_id}: {exc!r}')
            finally:
                self._queue.task_done()

    def _finish(self, work: LoopRequest, success: bool, message: str) -> None:
        if not work.future.done():
            work.future.set_result((success, message, work.results))

    def _serve_step(self) -> None:
        """Match the next candidate of the oldest ~/match_keyframes call (or finish it)."""
        work = self._requests[0]
        request = work.request
        try:
            with self._state_lock:
                store = self._store
                query, held = store.lookup(request.query_keyframe_id)
                if query is None:
                    why = (f'evicted ({store.evicted_cause(request.query_keyframe_id)})'
                           if held == EVICTED else 'unknown: never stored (or evicted too '
                           'long ago to be remembered)')
                    done, success = True, False
                    message = f'query keyframe {request.query_keyframe_id} is {why}'
                else:
                    k = len(work.results)
                    if k < len(request.candidate_keyframe_ids):
                        work.results.append(self._match_candidate(
                            work, query, int(request.candidate_keyframe_ids[k])))
                    done = len(work.results) == len(request.candidate_keyframe_ids)
                    success = True
                    ok = sum(m.status == Correspondences.STATUS_OK for m in work.results)
                    message = (f'{ok} of {len(work.results)} candidates matched against '
                               f'keyframe {query.keyframe_id}')
        except Exception as exc:  # noqa: BLE001 - answered, never left hanging
            self._stats.count('internal_errors')
            self._log.error('match_keyframes', f'~/match_keyframes failed: {exc!r}')
            done, success, message = True, False, f'matcher error: {exc!r}'
        if done:
            self._requests.popleft()
            if work.results:
                work.results[-1].last_in_batch = True
            self._finish(work, success, message)

    def _match_candidate(self, work: LoopRequest, query: Keyframe, candidate_id: int
                         ) -> Correspondences:
        """One verified Correspondences: current = the query, reference = the candidate."""
        header = Header(stamp=query.stamp, frame_id=query.frame_id)
        candidate, held = self._store.lookup(candidate_id)
        current = (query.keyframe_id, query.stamp)
        if candidate is None:
            if held == EVICTED:
                status = Correspondences.STATUS_REFERENCE_EVICTED
                text = (f'keyframe {candidate_id} was evicted from the store '
                        f'({self._store.evicted_cause(candidate_id)})')
            else:
                status = Correspondences.STATUS_REFERENCE_UNKNOWN
                text = (f'keyframe {candidate_id} is unknown: never stored (or evicted too '
                        f'long ago to be remembered)')
            return build_correspondences(header, status, text, current=current,
                                         reference=(candidate_id, None), last_in_batch=False)
        result = self._engine.match_prepared(candidate.prepared, query.prepared)
        self._stats.count('match_keyframes_matches')
        n = len(result.index0)
        fields = self._checked_pair(candidate, query, result, record=False)
        return build_correspondences(
            header, Correspondences.STATUS_OK, f'{n} matches', current=current,
            reference=(candidate.keyframe_id, candidate.stamp),
            latency=time.perf_counter() - work.received, last_in_batch=False, **fields)

    def _publish(self, job: Job, status: int, text: str = '', ref: Optional[Keyframe] = None,
                 **fields) -> Correspondences:
        """Publish the answer about ``job``'s keyframe; ``ref`` None = the newest stored one."""
        kp = job.keypoints
        frame_id = kp.header.frame_id or (job.image.header.frame_id if job.image else '')
        header = Header(stamp=kp.header.stamp, frame_id=frame_id)
        if ref is None and self._store is not None:
            newest = self._store.newest()
            ref = newest[0] if newest else None
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
        kp = job.keypoints
        newest = self._store.newest()
        ref = newest[0] if newest else None
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
            self._store.clear('reset')

    def _camera_for(self, size: Tuple[int, int]) -> Optional[Intrinsics]:
        """Return the camera model for a keyframe of ``size``; InputError if required and none."""
        camera = self._camera
        if camera is not None and tuple(camera.size) != tuple(size):
            n = self._stats.count('camera_info_size_mismatch')
            self._log.warning('camera_info_size',
                              f'camera_info is for {camera.size[0]} x {camera.size[1]} images, '
                              f'the keyframe is {size[0]} x {size[1]}: not used ({n} so far)')
            camera = None
        if camera is None and self._param('camera_info_required'):
            raise InputError(NO_CAMERA_INFO, 'no usable camera_info for this keyframe yet '
                                             '(parameter camera_info_required): publish '
                                             'sensor_msgs/CameraInfo on camera_info')
        return camera

    def _accept(self, job: Job) -> Optional[Keyframe]:
        """Validate and prepare the job's keyframe; None (and answered) when rejected."""
        kp = job.keypoints
        try:
            self._check_stamp(job)
            image = job.image
            if isinstance(image, CompressedImage):
                image = compressed_to_image(image)
            features = keyframe_features(
                image, kp, self._engine, self._param('max_image_pixels'),
                self._param('max_input_keypoints'))
            camera = self._camera_for(features.image_size)
            check_reference_quality(features, self._param('min_reference_keypoints'),
                                    self._param('min_reference_spread'))
            prepared = self._engine.prepare(features)
        except InputError as exc:
            self._reject(job, exc)
            return None
        frame_id = kp.header.frame_id or (image.header.frame_id if image is not None else '')
        return Keyframe(int(kp.keyframe_id), kp.header.stamp, stamp_ns(kp), prepared, image,
                        camera, frame_id, gray=self._gray(image, int(kp.keyframe_id)))

    def _gray(self, image: Optional[Image], keyframe_id: int) -> Optional[np.ndarray]:
        """Return the grayscale pixels for refinement (None: no image, or unconvertible).

        Kept whatever refine_matches says now, so that switching it on at run time refines
        the pairs with keyframes already stored.
        """
        if image is None:
            return None
        try:
            return image_to_gray(image)
        except Exception as exc:  # noqa: BLE001 - its pairs are published unrefined
            n = self._stats.count('refine_failures')
            self._log.warning('refine', f'keyframe {keyframe_id}: no grayscale image for match '
                              f'refinement ({exc!r}); its pairs are published unrefined '
                              f'({n} refinement failures so far)')
            return None

    def _process(self, job: Job) -> None:
        current = self._accept(job)
        if current is None:
            return
        refs = self._store.newest(self._param('window_size'))
        if not refs:
            self._publish(job, Correspondences.STATUS_FIRST_KEYFRAME,
                          'first keyframe: it becomes the reference')
            self._stats.count('first_keyframe')
            self._keep(current)
            return
        start = time.perf_counter()
        self._busy, self._overrun_counted = (start, current.keyframe_id), False
        try:
            results = self._match_window(refs, current)
        except Exception as exc:  # noqa: BLE001 - e.g. CUDA out of memory
            self._busy = None
            self._stats.count('matcher_errors')
            self._log.error('matcher_error', f'matcher failed on keyframe '
                            f'{current.keyframe_id}: {exc!r}')
            self._publish(job, Correspondences.STATUS_MATCHER_ERROR, f'matcher error: {exc!r}',
                          refs[0])
            self._keep(current)
            return
        match_time = time.perf_counter() - start
        self._busy = None
        self._watchdog(current.keyframe_id, match_time)
        for k, (ref, result) in enumerate(zip(refs, results)):
            self._answer(job, ref, current, result, match_time, k, k == len(refs) - 1)
        if len(refs) > 1:
            self._stats.count('window_batches')
        self._keep(current)

    def _match_window(self, refs: List[Keyframe], current: Keyframe) -> List[MatchResult]:
        """Match ``current`` against ``refs``: one batched forward pass where it exists."""
        batched = getattr(self._engine, 'match_window', None)
        if len(refs) > 1 and batched is not None:
            return batched([r.prepared for r in refs], current.prepared)
        # One reference, or an engine without batching (the classical matcher): in turn.
        return [self._engine.match_prepared(r.prepared, current.prepared) for r in refs]

    def _keep(self, keyframe: Keyframe) -> None:
        """Store ``keyframe`` as the newest; count and log the evictions it causes."""
        evicted = self._store.add(keyframe.keyframe_id, keyframe)
        if evicted:  # routine once the store is full: counted in diagnostics, logged at debug
            self.get_logger().debug(f'keyframe store full ({len(self._store)} keyframes, '
                                    f'{self._store.bytes / 2**20:.1f} MiB): evicted {evicted}')

    def _refine(self, ref: Keyframe, current: Keyframe, result: MatchResult,
                points0: np.ndarray) -> Optional[Refinement]:
        """Sub-pixel positions of the current keyframe's matched points; None: not refined.

        The reference keyframe is image 0 of the pair, as in the MatchResult; ``points0`` are
        its observations of the matched keypoints (``Keyframe.observed``). A failure is
        counted and logged, and the pair goes out unrefined: refinement never costs a match.
        """
        if (not self._param('refine_matches') or ref.gray is None or current.gray is None
                or not len(result.index0)):
            return None
        start = time.perf_counter()
        try:
            refinement = self._refiner.refine_pair(
                ref.gray, current.gray, ref.prepared.features, current.prepared.features,
                result.index0, result.index1, result.confidence, points0)
        except Exception as exc:  # noqa: BLE001 - published unrefined, never lost
            n = self._stats.count('refine_failures')
            self._log.warning('refine', f'match refinement failed for keyframe '
                              f'{current.keyframe_id} vs {ref.keyframe_id}: {exc!r}; published '
                              f'unrefined ({n} refinement failures so far)')
            return None
        self._stats.count('refine_time_us', int((time.perf_counter() - start) * 1e6))
        self._stats.count('refined_pairs')
        self._stats.count('refine_candidates', len(refinement))
        self._stats.count('refined_points', int(np.count_nonzero(refinement.refined)))
        return refinement

    def _verify(self, ref: Keyframe, current: Keyframe, result: MatchResult,
                refinement: Optional[Refinement] = None,
                points0: Optional[np.ndarray] = None) -> dict:
        """Inlier flags (and the pose with a camera model) as build_correspondences fields.

        With a ``refinement`` the current keyframe's refined points are verified against the
        reference observations they were refined against (``points0``): that is where their
        accuracy reaches the pose. The flags index the same matches either way.
        """
        if not self._param('verify'):
            return {'inlier': None, 'verified': False}
        threshold = self._param('verify_threshold_px')
        points1 = result.points1 if refinement is None else refinement.points1
        if refinement is None or points0 is None:
            points0 = result.points0
        if ref.camera is not None and current.camera is not None:
            inlier, pose = verify_essential(points0, points1, ref.camera,
                                            current.camera, threshold)
            self._stats.count('pose_estimates' if pose is not None else 'pose_failures')
            return {'inlier': inlier, 'verified': True, 'pose': pose,
                    'verification': Correspondences.VERIFICATION_ESSENTIAL}
        inlier = verify_fundamental(points0, points1, threshold)
        return {'inlier': inlier, 'verified': True,
                'verification': Correspondences.VERIFICATION_FUNDAMENTAL}

    def _checked_pair(self, ref: Keyframe, current: Keyframe, result: MatchResult,
                      record: bool = True) -> dict:
        """Refine, then verify, one matched pair: its build_correspondences fields.

        The current points are refined against the reference keyframe's own refined
        observations, so a track keeps following one physical point. ``record``: keep the
        refined points as the current keyframe's observations (streaming pairs; not for
        ~/match_keyframes, which only looks).
        """
        points0 = ref.observed(result.index0)
        refinement = self._refine(ref, current, result, points0)
        fields = self._verify(ref, current, result, refinement, points0)
        fields.update(current_index=result.index1, reference_index=result.index0,
                      current_points=result.points1, reference_points=result.points0,
                      confidence=result.confidence)
        if refinement is not None:
            fields.update(refined_points=refinement.points1, refined=refinement.refined,
                          refined_reference_points=points0)
            if record:
                current.record(result.index1, refinement.points1, refinement.refined)
        return fields

    def _answer(self, job: Job, ref: Keyframe, current: Keyframe, result: MatchResult,
                match_time: float, window_index: int = 0, last: bool = True) -> None:
        """Refine and verify the matches, publish them, record the statistics, debug image."""
        n = len(result.index0)
        fields = self._checked_pair(ref, current, result)
        inlier = fields['inlier']
        msg = self._publish(job, Correspondences.STATUS_OK, f'{n} matches', ref,
                            window_index=window_index, last_in_batch=last, **fields)
        self._stats.add_match(msg.latency, match_time, n,
                              float(np.mean(inlier)) if inlier is not None and n else None)
        self.get_logger().debug(
            f'keyframe {current.keyframe_id} vs {ref.keyframe_id}: {n} matches, '
            f'model {match_time * 1e3:.1f} ms, total {msg.latency * 1e3:.1f} ms')
        if window_index == 0 and self.debug_image_wanted:
            self._publish_debug(ref, current, fields, msg.header)

    def _publish_debug(self, ref: Keyframe, current: Keyframe, fields: dict,
                       header: Header) -> None:
        """Draw the pair as published: refined points where refined, inliers as verified."""
        try:
            for kf in (ref, current):
                if kf.bgr is None:
                    kf.bgr = image_to_bgr(kf.image)
            inlier, n = fields['inlier'], len(fields['confidence'])
            refined = fields.get('refined')
            n_in = int(np.sum(inlier)) if inlier is not None else n
            lines = [f'keyframe {ref.keyframe_id} -> {current.keyframe_id}',
                     f'{n} matches, {n_in} inliers'
                     + (f', {int(np.sum(refined))} refined' if refined is not None else '')]
            canvas = draw_matches(
                ref.bgr, current.bgr, fields.get('refined_reference_points',
                                                 fields['reference_points']),
                fields.get('refined_points', fields['current_points']), fields['confidence'],
                inliers=inlier, text=lines)
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
            engine = self._engine
            if engine is None:
                return
            busy = self._busy
            if busy is not None:
                self._watchdog(busy[1], time.perf_counter() - busy[0])
            stats = self.stats()
            unpaired = stats['sync_dropped_keypoints']
            if unpaired > self._reported['unpaired']:
                self._log.warning('sync', f'{unpaired} keypoints messages found no image '
                                  f'within sync_slop={self._param("sync_slop")} s and were '
                                  f'dropped (check stamps, sync_slop and sync_queue_size)')
            camera = self._camera
            msg = DiagnosticArray()
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.status = [matcher_status(f'{self.get_name()}: keyframe matcher',
                                         str(engine.device), stats, engine.match_threshold,
                                         self._reported,
                                         camera.model if camera is not None else 'none')]
            self._diagnostics_pub.publish(msg)
        except Exception as exc:  # noqa: BLE001 - an exception here would stop the executor
            self._log.error('diagnostics', f'diagnostics failed: {exc!r}')


class MatcherNode(MatcherCore, Node):
    """The matcher as a plain node: configured and active from construction on."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        Node.__init__(self, node_name, **kwargs)
        try:
            self._declare()
            self._configure()
            self._activate()
        except Exception:
            self.destroy_node()
            raise

    def destroy_node(self) -> None:
        """Stop the worker (see ``_stop_worker``), then destroy the node."""
        if getattr(self, '_worker', None) is not None:
            self._stop_worker()
        super().destroy_node()


class _Terminated(Exception):
    """SIGTERM: shut down as on Ctrl-C."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated()


def main(args=None) -> int:
    """Console script ``matcher_node``: exit status 1 on a start-up error."""
    return run(MatcherNode, args)


def run(make_node: Callable[[], Node], args=None) -> int:
    """Run the node ``make_node()`` builds until Ctrl-C or SIGTERM; 1 on a start-up error.

    Ctrl-C and SIGTERM stop intake, let the worker answer the keyframe in hand (up to
    SHUTDOWN_GRACE), then shut down: rclpy's own signal handler would invalidate the context
    first and turn that last answer into an error, so Python's handlers are used instead.
    """
    dds = use_large_image_transport()  # before rclpy.init creates the DDS participant
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    # Started in the background by a non-interactive shell (nohup, some supervisors), the
    # process inherits SIGINT ignored and Python never raises KeyboardInterrupt: launch's
    # SIGINT and Ctrl-C would be lost. Take SIGINT back explicitly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        require_torch()  # one clear line below the minimum version
        node = make_node()
    except (KeyboardInterrupt, ExternalShutdownException, _Terminated):
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
    try:  # from here on a signal, even one arriving during this log line, stops cleanly
        node.get_logger().info(f'DDS transport: {transport_note(dds)}')
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

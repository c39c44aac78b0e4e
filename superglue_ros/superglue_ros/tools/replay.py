# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``superglue-replay``: replay a rosbag2 through the real nodes and report on the matches.

The bag's sensor_msgs/Image messages (and superglue_ros_msgs/Keypoints, when it has them) are
published over real DDS to a MatcherNode, and to a FrontendNode when the bag has no keypoints,
running in this process on a MultiThreadedExecutor: the same classes, parameters file and topic
names as ``ros2 launch superglue_ros superglue.launch.py``. Playback follows the recorded
stamps (``--rate`` factor) or goes as fast as the matcher allows: the next frame leaves only
once every keyframe sent so far has been answered, so none is dropped. Every Correspondences
message is recorded into a rosbag2 in the output directory, next to report.json, report.md
and PNG plots.

Without a BAG (or with ``--demo``) a bag of the bundled TUM frames is generated in
OUT/demo_bag and replayed as fast as possible.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import queue
import shutil
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .demo_bag import (CORRESPONDENCES_TYPE, IMAGE_TYPE, KEYPOINTS_TYPE, make_demo_bag,
                       storage_plugin, STORAGES, typestore)

# Topic names of launch/superglue.launch.py (its defaults).
LAUNCH_IMAGE_TOPIC = '/camera/image_raw'
LAUNCH_KEYPOINTS_TOPIC = '/superglue/keypoints'
CORRESPONDENCES_TOPIC = '/superglue/correspondences'
OUTPUT_BAG = 'correspondences_bag'
STATUS_NAMES = {0: 'ok', 1: 'first_keyframe', 2: 'no_keypoints', 3: 'rejected_input',
                4: 'matcher_error'}


class ReplayError(RuntimeError):
    """A problem with the inputs (bag, weights, parameters file) or the ROS set-up."""


@dataclass
class BagInfo:
    """What the replay needs to know about an input bag."""

    path: Path
    storage: str
    image_topic: str
    keypoints_topic: Optional[str]
    num_images: int
    num_keypoints: int
    start_ns: int
    duration_ns: int


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


class BagWriter:
    """A rosbags Writer owned by one thread (sqlite3 objects must stay in their thread).

    ``write`` may be called from any thread: messages are queued and written in order.
    """

    def __init__(self, path: Path, storage: str, topics: Sequence[Tuple[str, str]]):
        self._queue: 'queue.Queue' = queue.Queue()
        self._error: Optional[BaseException] = None
        self._ready = threading.Event()
        self.counts: Counter = Counter()
        self._thread = threading.Thread(target=self._run, args=(path, storage, topics),
                                        name='superglue_replay_writer', daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise ReplayError(f'cannot create the output bag {path}: {self._error}')

    def _run(self, path: Path, storage: str, topics: Sequence[Tuple[str, str]]) -> None:
        from rosbags.rosbag2 import Writer
        try:
            store = typestore()
            writer = Writer(path, version=9, storage_plugin=storage_plugin(storage))
            writer.open()
            conns = {topic: writer.add_connection(topic, msgtype, typestore=store)
                     for topic, msgtype in topics}
        except Exception as exc:  # noqa: BLE001 - reported by the constructor
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                topic, t, data = item
                writer.write(conns[topic], t, data)
                self.counts[topic] += 1
        except Exception as exc:  # noqa: BLE001 - reported by close()
            self._error = exc
        finally:
            writer.close()

    def write(self, topic: str, t: int, data: bytes) -> None:
        self._queue.put((topic, t, data))

    def close(self) -> None:
        """Write what is queued, close the bag; raise ReplayError if writing failed."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise ReplayError(f'writing the output bag failed: {self._error}')


@dataclass
class Recorder:
    """Keep a summary of every Correspondences message and pass it on to the bag writer."""

    writer: BagWriter
    sent_at: Dict[int, float]
    records: List[Record] = field(default_factory=list)
    keypoints: int = 0
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _write(self, topic: str, msg) -> None:
        from rclpy.serialization import serialize_message
        from ..ros.sync import stamp_ns
        self.writer.write(topic, stamp_ns(msg), serialize_message(msg))

    def on_correspondences(self, msg) -> None:
        try:
            self._on_correspondences(msg)
        except Exception:  # noqa: BLE001 - an exception here would stop the executor
            with self.lock:
                self.errors += 1

    def _on_correspondences(self, msg) -> None:
        received = time.perf_counter()
        self._write(CORRESPONDENCES_TOPIC, msg)
        cur = _ns(msg.current_stamp)
        sent = self.sent_at.get(cur)
        inlier = np.frombuffer(bytes(msg.inlier), np.uint8) if len(msg.inlier) else []
        record = Record(
            status=int(msg.status), current_id=int(msg.current_keyframe_id),
            reference_id=int(msg.reference_keyframe_id), current_stamp_ns=cur,
            reference_stamp_ns=_ns(msg.reference_stamp), matches=len(msg.current_indices),
            inliers=int(np.sum(inlier)), verified=bool(msg.verified),
            latency=float(msg.latency),
            end_to_end=received - sent if sent is not None else None,
            message=str(msg.status_message))
        with self.lock:
            self.records.append(record)

    def on_keypoints(self, msg) -> None:
        try:
            self._write(LAUNCH_KEYPOINTS_TOPIC, msg)
            with self.lock:
                self.keypoints += 1
        except Exception:  # noqa: BLE001 - an exception here would stop the executor
            with self.lock:
                self.errors += 1

    def __len__(self) -> int:
        with self.lock:
            return len(self.records)


def _ns(t) -> int:
    return int(t.sec) * 1_000_000_000 + int(t.nanosec)


def _percentiles(values: Sequence[float]) -> Dict[str, float]:
    if not len(values):
        return {'p50': 0.0, 'p95': 0.0, 'p99': 0.0, 'mean': 0.0, 'max': 0.0}
    a = np.asarray(values, np.float64)
    return {'p50': float(np.percentile(a, 50)), 'p95': float(np.percentile(a, 95)),
            'p99': float(np.percentile(a, 99)), 'mean': float(a.mean()), 'max': float(a.max())}


def inspect_bag(path, image_topic: Optional[str] = None,
                keypoints_topic: Optional[str] = None) -> BagInfo:
    """Open the bag (sqlite3 or mcap, detected by rosbags) and pick its topics."""
    from rosbags.rosbag2 import Reader
    path = Path(path)
    if not path.exists():
        raise ReplayError(f'bag {path} does not exist')
    try:
        with Reader(path) as reader:
            conns = list(reader.connections)
            start, duration = reader.start_time, reader.duration
    except ReplayError:
        raise
    except Exception as exc:  # noqa: BLE001 - rosbags raises several kinds
        raise ReplayError(f'cannot read bag {path}: {exc}') from exc
    mcap = path.suffix == '.mcap' or (path.is_dir() and any(path.glob('*.mcap')))
    storage = 'mcap' if mcap else 'sqlite3'

    def pick(msgtype: str, wanted: Optional[str], required: bool) -> Optional[str]:
        topics = sorted({c.topic for c in conns if c.msgtype == msgtype})
        if wanted is not None:
            if wanted not in topics:
                raise ReplayError(f'bag {path} has no {msgtype} topic {wanted!r} '
                                  f'(it has: {", ".join(topics) or "none"})')
            return wanted
        if not topics:
            if required:
                raise ReplayError(f'bag {path} has no {msgtype} topic')
            return None
        if len(topics) > 1:
            raise ReplayError(f'bag {path} has several {msgtype} topics '
                              f'({", ".join(topics)}): choose one with --'
                              f'{"image" if msgtype == IMAGE_TYPE else "keypoints"}-topic')
        return topics[0]

    image = pick(IMAGE_TYPE, image_topic, True)
    keypoints = pick(KEYPOINTS_TYPE, keypoints_topic, False)

    def count(topic):
        return sum(c.msgcount for c in conns if c.topic == topic) if topic else 0
    if count(image) == 0:
        raise ReplayError(f'bag {path}: topic {image} holds no messages')
    return BagInfo(path, storage, image, keypoints, count(image), count(keypoints), start,
                   duration)


def default_params_file() -> Optional[Path]:
    """config/superglue.yaml from the installed share directory, else from the source tree."""
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory('superglue_ros')))
    except Exception:  # noqa: BLE001 - no ament index in the pip setup
        pass
    candidates += [Path(sys.prefix) / 'share' / 'superglue_ros',
                   Path(__file__).resolve().parents[2]]
    for base in candidates:
        path = base / 'config' / 'superglue.yaml'
        if path.is_file():
            return path
    return None


def _reliable_input(topic: str, depth: int):
    from rclpy.parameter import Parameter
    prefix = f'qos_overrides.{topic}.subscription'
    return [Parameter(f'{prefix}.reliability', value='reliable'),
            Parameter(f'{prefix}.depth', value=depth)]


def _wait(predicate, timeout: float, period: float = 0.002, check=None) -> bool:
    end = time.monotonic() + timeout
    while not predicate():
        if check is not None:
            check()
        if time.monotonic() > end:
            return False
        time.sleep(period)
    return True


def run_replay(bag, out, rate: Optional[float] = 1.0, weights: Optional[str] = None,
               device: str = 'auto', image_topic: Optional[str] = None,
               keypoints_topic: Optional[str] = None, params_file: Optional[str] = None,
               max_keypoints: int = 0, domain_id: Optional[int] = None,
               storage: str = 'sqlite3', progress: bool = True, timeout: float = 60.0,
               visualisations: int = 3) -> Dict[str, Any]:
    """Replay ``bag`` into the nodes; write the output bag and report into ``out``.

    ``rate`` None = as fast as possible with back-pressure. ``max_keypoints`` > 0 overrides
    the parameter of both nodes. Returns the report dict (also written as report.json).
    """
    from ..weights import default_weights_path
    info = inspect_bag(bag, image_topic, keypoints_topic)
    weights_path = Path(weights) if weights else default_weights_path()
    if not weights_path.is_file():
        hint = ('' if weights else ': the shipped weights are missing from this checkout; '
                'train them with superglue-train or pass --weights PATH')
        raise ReplayError(f'no weights at {weights_path}{hint}')
    if params_file is None:
        params = default_params_file()
    else:
        params = Path(params_file)
        if not params.is_file():
            raise ReplayError(f'parameters file {params} does not exist')
    if rate is not None and not rate > 0:
        raise ReplayError(f'--rate must be > 0, got {rate}')
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    out_bag = out / OUTPUT_BAG
    if out_bag.exists():
        if not (out_bag / 'metadata.yaml').is_file():
            raise ReplayError(f'{out_bag} exists and is not a bag from an earlier replay')
        shutil.rmtree(out_bag)

    topics = [(CORRESPONDENCES_TOPIC, CORRESPONDENCES_TYPE)]
    if info.keypoints_topic is None:  # record what the front-end makes
        topics.append((LAUNCH_KEYPOINTS_TOPIC, KEYPOINTS_TYPE))
    writer = BagWriter(out_bag, storage, topics)
    recorder = Recorder(writer, {})
    try:
        result = _replay(info, recorder, rate, weights_path, device, params, max_keypoints,
                         domain_id, progress, timeout)
    finally:
        writer.close()
    result['recorded'] = dict(writer.counts)
    result['recorder_errors'] = recorder.errors
    result['output_bag'] = str(out_bag)
    result['rate'] = rate
    report = _report(info, recorder, result, out, visualisations)
    return report


def _replay(info: BagInfo, recorder: Recorder, rate: Optional[float], weights: Path,
            device: str, params: Optional[Path], max_keypoints: int,
            domain_id: Optional[int], progress: bool, timeout: float) -> Dict[str, Any]:
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from sensor_msgs.msg import Image
    from superglue_ros_msgs.msg import Correspondences, Keypoints
    from tqdm import tqdm

    from ..nodes.frontend_node import FrontendNode
    from ..nodes.matcher_node import MatcherNode
    from ..ros.sync import stamp_ns

    use_frontend = info.keypoints_topic is None
    kp_topic = LAUNCH_KEYPOINTS_TOPIC if use_frontend else info.keypoints_topic
    depth = 100
    reliable = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
    # As `ros2 launch`: the parameters file plus remappings onto the topics.
    ros_args = ['--ros-args', '-r', f'image:={info.image_topic}', '-r',
                f'keypoints:={kp_topic}', '-r', f'correspondences:={CORRESPONDENCES_TOPIC}']
    if params is not None:
        ros_args += ['--params-file', str(params)]

    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    nodes: List[Any] = []
    executor = None
    try:
        overrides = [Parameter('weights', value=str(weights)),
                     Parameter('device', value=device)]
        overrides += _reliable_input(info.image_topic, depth) + _reliable_input(kp_topic, depth)
        if max_keypoints > 0:
            overrides.append(Parameter('max_keypoints', value=int(max_keypoints)))
        try:
            matcher = MatcherNode(context=context, cli_args=ros_args,
                                  parameter_overrides=overrides)
        except Exception as exc:  # noqa: BLE001 - e.g. unreadable weights
            raise ReplayError(f'the matcher node did not start: {exc}') from exc
        nodes.append(matcher)
        frontend = None
        if use_frontend:
            fe_overrides = _reliable_input(info.image_topic, depth)
            if max_keypoints > 0:
                fe_overrides.append(Parameter('max_keypoints', value=int(max_keypoints)))
            frontend = FrontendNode(context=context, cli_args=ros_args,
                                    parameter_overrides=fe_overrides)
            nodes.append(frontend)
        driver = rclpy.create_node('superglue_replay', context=context)
        nodes.append(driver)
        image_pub = driver.create_publisher(Image, info.image_topic, reliable)
        kp_pub = None if use_frontend else driver.create_publisher(Keypoints, kp_topic,
                                                                   reliable)
        out_sub = driver.create_subscription(Correspondences, CORRESPONDENCES_TOPIC,
                                             recorder.on_correspondences, reliable)
        kp_sub = (driver.create_subscription(Keypoints, kp_topic, recorder.on_keypoints,
                                             reliable) if use_frontend else None)
        executor = MultiThreadedExecutor(num_threads=4, context=context)
        for node in nodes:
            executor.add_node(node)
        failure: List[BaseException] = []

        def spin() -> None:
            try:
                executor.spin()
            except Exception as exc:  # noqa: BLE001 - reported by check()
                failure.append(exc)

        def check() -> None:
            if failure:
                raise ReplayError(f'the ROS executor stopped: {failure[0]!r}')
        spinner = threading.Thread(target=spin, name='superglue_replay_executor', daemon=True)
        spinner.start()

        def discovered() -> bool:
            return (image_pub.get_subscription_count() >= (2 if use_frontend else 1)
                    and (kp_pub is None or kp_pub.get_subscription_count() >= 1)
                    and (kp_sub is None or kp_sub.get_publisher_count() >= 1)
                    and out_sub.get_publisher_count() >= 1)
        if not _wait(discovered, 20.0, 0.01, check):
            raise ReplayError('DDS discovery between the replay and the nodes timed out')
        log = driver.get_logger()
        foreign = driver.count_publishers(info.image_topic) - 1
        if foreign > 0:
            log.warning(f'{foreign} other publisher(s) on {info.image_topic} in this ROS '
                        f'domain: their frames reach the nodes too (use --domain-id)')

        sync = matcher._sync  # in-process: how many keypoints messages reached the matcher

        def keyframes_sent() -> int:
            return frontend.counts['keyframes'] if frontend is not None else sent['keypoints']

        def lost() -> int:
            s = matcher.stats()
            return int(s.get('dropped_queue_full', 0) + s.get('sync_dropped_keypoints', 0))

        def settled(target: int, limit: float) -> bool:
            """Wait until ``target`` keyframes are answered or counted as dropped."""
            end = time.monotonic() + limit
            quiet_since = None
            while len(recorder) + lost() < target:
                check()
                if time.monotonic() > end:
                    return False
                # Keypoints that reached the matcher but found no image never come out:
                # stop waiting once the matcher has everything and sits idle for a while.
                if sync.received[1] >= target and matcher.is_idle():
                    quiet_since = quiet_since or time.monotonic()
                    if time.monotonic() - quiet_since > 2.0:
                        return False
                else:
                    quiet_since = None
                time.sleep(0.002)
            return True

        sent = Counter()
        bar = tqdm(total=info.num_images, unit='frame', disable=not progress,
                   desc='replay', dynamic_ncols=True)
        stamps: Dict[int, int] = {}  # image header stamp -> bag timestamp
        wall_start = time.perf_counter()
        first_t = None
        with Reader(info.path) as reader:
            conns = [c for c in reader.connections
                     if c.topic in (info.image_topic, info.keypoints_topic)]
            for conn, t, raw in reader.messages(connections=conns):
                is_image = conn.topic == info.image_topic
                msg = deserialize_message(bytes(raw), Image if is_image else Keypoints)
                first_t = t if first_t is None else first_t
                if rate is not None:
                    delay = wall_start + (t - first_t) * 1e-9 / rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                elif is_image == use_frontend:
                    # Back-pressure: the next possible keyframe leaves only when every
                    # keyframe so far is answered (or counted as dropped by the node).
                    target = keyframes_sent()
                    if not settled(target, timeout):
                        log.warning(f'{target - len(recorder) - lost()} keyframe(s) not '
                                    f'answered in {timeout} s')
                now = time.perf_counter()
                if is_image:
                    stamps[stamp_ns(msg)] = t
                    recorder.sent_at.setdefault(stamp_ns(msg), now)
                    image_pub.publish(msg)
                    sent['images'] += 1
                    if rate is None and frontend is not None:
                        n = sent['images']
                        if not _wait(lambda: frontend.counts['frames'] >= n, timeout,
                                     check=check):
                            log.warning(f'front-end did not take frame {n} in {timeout} s')
                    bar.update(1)
                    bar.set_postfix(keyframes=keyframes_sent(), out=len(recorder))
                else:
                    recorder.sent_at[stamp_ns(msg)] = now
                    kp_pub.publish(msg)
                    sent['keypoints'] += 1
            if frontend is not None:  # the front-end may still be on the last frames
                _wait(lambda: frontend.counts['frames'] >= sent['images'], timeout,
                      check=check)
            settled(keyframes_sent(), timeout)
            wall = time.perf_counter() - wall_start
        bar.set_postfix(keyframes=keyframes_sent(), out=len(recorder))
        bar.close()
        # Late messages: let the output subscription catch what is already on its way.
        _wait(lambda: len(recorder) + lost() >= keyframes_sent(), 1.0)
        stats = matcher.stats()
        engine = matcher._engine
        result = {
            'wall_s': wall,
            'frames_published': sent['images'],
            'keyframes_in': keyframes_sent(),
            'keypoints_reaching_matcher': int(sync.received[1]),
            'stamps': stamps,
            'node_stats': {k: (float(v) if isinstance(v, (float, np.floating)) else int(v))
                           for k, v in stats.items()},
            'frontend_counts': dict(frontend.counts) if frontend is not None else None,
            'device': str(engine.device),
            'weights': str(weights),
            'weights_metadata': {k: v for k, v in engine.metadata.items()
                                 if isinstance(v, (str, int, float, bool))},
            'max_keypoints': int(matcher.get_parameter('max_keypoints').value),
            'match_threshold': float(engine.match_threshold),
            'queue_policy': matcher.get_parameter('queue_policy').value,
            'params_file': str(params) if params else None,
        }
        return result
    finally:
        if executor is not None:
            executor.shutdown(timeout_sec=5.0)
        for node in reversed(nodes):
            node.destroy_node()
        rclpy.try_shutdown(context=context)


# -- report ----------------------------------------------------------------------------------

def _report(info: BagInfo, recorder: Recorder, result: Dict[str, Any], out: Path,
            visualisations: int) -> Dict[str, Any]:
    records = sorted(recorder.records, key=lambda r: r.current_stamp_ns)
    ok = [r for r in records if r.status == 0]
    statuses = Counter(STATUS_NAMES.get(r.status, str(r.status)) for r in records)
    stats = result['node_stats']
    drops = {
        'queue_full': int(stats.get('dropped_queue_full', 0)),
        'unpaired_keypoints': int(stats.get('sync_dropped_keypoints', 0)),
        'lost_in_transport': max(0, result['keyframes_in']
                                 - result['keypoints_reaching_matcher']),
    }
    rejections = {k[len('rejected_'):]: int(v) for k, v in stats.items()
                  if k.startswith('rejected_') and v}
    ratios = [r.inliers / r.matches for r in ok if r.verified and r.matches]
    latency = [r.latency for r in ok]
    e2e = [r.end_to_end for r in ok if r.end_to_end is not None]
    kin, kout = result['keyframes_in'], len(records)
    report: Dict[str, Any] = {
        'bag': str(info.path), 'storage': info.storage, 'image_topic': info.image_topic,
        'keypoints_topic': info.keypoints_topic,
        'keypoints_from': 'bag' if info.keypoints_topic else 'frontend_node',
        'mode': 'as_fast_as_possible' if result.get('rate') is None
        else f'rate x{result["rate"]}',
        'bag_duration_s': info.duration_ns * 1e-9, 'wall_s': result['wall_s'],
        'frames_read': info.num_images, 'frames_published': result['frames_published'],
        'keyframes_in': kin, 'correspondences_out': kout,
        # Every keyframe sent is answered or counted as dropped by name.
        'unaccounted': kin - kout - sum(drops.values()),
        'all_keyframes_accounted': kin == kout + sum(drops.values()),
        'statuses': dict(statuses), 'drops': drops, 'dropped_total': sum(drops.values()),
        'rejections': rejections,
        'matches_per_keyframe': float(np.mean([r.matches for r in ok])) if ok else 0.0,
        'matches_median': float(np.median([r.matches for r in ok])) if ok else 0.0,
        'inlier_ratio': float(np.mean(ratios)) if ratios else 0.0,
        'latency_s': _percentiles(latency), 'end_to_end_s': _percentiles(e2e),
        'keyframes_per_s': kout / result['wall_s'] if result['wall_s'] > 0 else 0.0,
        'output_bag': result['output_bag'], 'output_topic': CORRESPONDENCES_TOPIC,
    }
    for key in ('device', 'weights', 'weights_metadata', 'max_keypoints', 'match_threshold',
                'queue_policy', 'params_file', 'node_stats', 'frontend_counts'):
        report[key] = result[key]
    report['keyframes'] = [
        {'current_id': r.current_id, 'reference_id': r.reference_id,
         'stamp': r.current_stamp_ns * 1e-9, 'status': STATUS_NAMES.get(r.status, r.status),
         'matches': r.matches, 'inliers': r.inliers,
         'inlier_ratio': r.inliers / r.matches if r.matches and r.verified else None,
         'latency_s': r.latency, 'end_to_end_s': r.end_to_end, 'message': r.message}
        for r in records]
    report['figures'] = _plots(records, out)
    report['figures'] += _visualise(info, ok, result['stamps'], out, visualisations)
    (out / 'report.json').write_text(json.dumps(report, indent=2) + '\n')
    (out / 'report.md').write_text(_markdown(report))
    return report


def _plots(records: List[Record], out: Path) -> List[str]:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    ok = [r for r in records if r.status == 0]
    fig, ax = plt.subplots(figsize=(9, 4))
    ids = [r.current_id for r in records]
    ax.bar(ids, [r.matches for r in records], color='tab:blue', label='matches')
    for r in records:
        if r.status not in (0, 1):
            ax.axvline(r.current_id, color='tab:red', lw=1, ls=':')
    ax.set_xlabel('keyframe id')
    ax.set_ylabel('matches', color='tab:blue')
    twin = ax.twinx()
    pts = [(r.current_id, r.inliers / r.matches) for r in ok if r.verified and r.matches]
    if pts:
        twin.plot(*zip(*pts), 'o-', color='tab:orange', label='inlier ratio')
    twin.set_ylim(0, 1.05)
    twin.set_ylabel('inlier ratio (RANSAC)', color='tab:orange')
    ax.set_title('Matches and inlier ratio per keyframe (red: rejected / error)')
    fig.tight_layout()
    fig.savefig(out / 'matches_per_keyframe.png', dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    lat = np.array([r.latency for r in ok]) * 1e3
    e2e = np.array([r.end_to_end for r in ok if r.end_to_end is not None]) * 1e3
    if len(lat):
        bins = np.linspace(0, max(lat.max(), e2e.max() if len(e2e) else 0) * 1.05 + 1e-3, 30)
        ax.hist(lat, bins=bins, alpha=0.7, label='node latency')
        if len(e2e):
            ax.hist(e2e, bins=bins, alpha=0.4, label='replay end-to-end')
        for q, ls in ((50, '-'), (95, '--'), (99, ':')):
            v = np.percentile(lat, q)
            ax.axvline(v, color='k', ls=ls, lw=1, label=f'p{q} {v:.0f} ms')
    ax.set_xlabel('latency [ms]')
    ax.set_ylabel('keyframes')
    ax.set_title('Matcher latency (keypoints in -> correspondences out)')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / 'latency_histogram.png', dpi=100)
    plt.close(fig)
    return ['matches_per_keyframe.png', 'latency_histogram.png']


def _visualise(info: BagInfo, ok: List[Record], stamps: Dict[int, int], out: Path,
               count: int) -> List[str]:
    """Draw a few keyframe pairs from the bag's images and the recorded coordinates."""
    import cv2
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from sensor_msgs.msg import Image
    from superglue_ros_msgs.msg import Correspondences

    from ..ros.conversions import image_to_bgr
    from ..viz import draw_matches

    if not ok or count <= 0:
        return []
    picks = sorted({int(i) for i in np.linspace(0, len(ok) - 1, min(count, len(ok)))})
    chosen = [ok[i] for i in picks]
    # The coordinates live in the output bag; read them back from there.
    wanted = {r.current_stamp_ns for r in chosen}
    matches: Dict[int, Any] = {}
    with Reader(out / OUTPUT_BAG) as reader:
        conns = [c for c in reader.connections if c.topic == CORRESPONDENCES_TOPIC]
        for _, t, raw in reader.messages(connections=conns):
            msg = deserialize_message(bytes(raw), Correspondences)
            if msg.status == 0 and _ns(msg.current_stamp) in wanted:
                matches[_ns(msg.current_stamp)] = msg
    images: Dict[int, np.ndarray] = {}
    needed = {s for r in chosen for s in (r.current_stamp_ns, r.reference_stamp_ns)}
    with Reader(info.path) as reader:
        conns = [c for c in reader.connections if c.topic == info.image_topic]
        for s in sorted(needed):
            if s not in stamps:
                continue
            for _, t, raw in reader.messages(connections=conns, start=stamps[s],
                                             stop=stamps[s] + 1):
                msg = deserialize_message(bytes(raw), Image)
                if _ns(msg.header.stamp) == s:
                    images[s] = image_to_bgr(msg)
    names = []
    for r in chosen:
        msg = matches.get(r.current_stamp_ns)
        im0, im1 = images.get(r.reference_stamp_ns), images.get(r.current_stamp_ns)
        if msg is None or im0 is None or im1 is None:
            continue
        p0 = np.stack([np.asarray(msg.reference_x), np.asarray(msg.reference_y)], 1)
        p1 = np.stack([np.asarray(msg.current_x), np.asarray(msg.current_y)], 1)
        inlier = np.asarray(msg.inlier, bool) if msg.verified else None
        canvas = draw_matches(im0, im1, p0, p1, np.asarray(msg.confidence), inliers=inlier,
                              text=[f'keyframe {r.reference_id} -> {r.current_id}',
                                    f'{r.matches} matches, {r.inliers} inliers, '
                                    f'{r.latency * 1e3:.0f} ms'])
        name = f'matches_kf{r.reference_id:04d}_kf{r.current_id:04d}.png'
        cv2.imwrite(str(out / name), canvas)
        names.append(name)
    return names


def _markdown(rep: Dict[str, Any]) -> str:
    lat, e2e = rep['latency_s'], rep['end_to_end_s']
    kp_topic = f' `{rep["keypoints_topic"]}`' if rep['keypoints_topic'] else ''
    lines = [
        '# superglue-replay report', '',
        f'Bag `{rep["bag"]}` ({rep["storage"]}), images `{rep["image_topic"]}`, keypoints from '
        f'{rep["keypoints_from"]}{kp_topic}'
        f'; replay {rep["mode"]}; device {rep["device"]}; weights `{rep["weights"]}`; '
        f'max_keypoints {rep["max_keypoints"]}, match_threshold {rep["match_threshold"]:.2f}.',
        '', '| figure | value |', '|---|---|',
        f'| frames read / published | {rep["frames_read"]} / {rep["frames_published"]} |',
        f'| keyframes in / correspondences out | {rep["keyframes_in"]} / '
        f'{rep["correspondences_out"]} |',
        f'| all keyframes accounted for | {"yes" if rep["all_keyframes_accounted"] else "NO"}'
        f' ({rep["unaccounted"]} unaccounted) |',
        f'| drops | {rep["dropped_total"]} ('
        + ', '.join(f'{k} {v}' for k, v in rep['drops'].items()) + ') |',
        f'| rejections | {sum(rep["rejections"].values())} '
        + (('(' + ', '.join(f'{k} {v}' for k, v in rep['rejections'].items()) + ')')
           if rep['rejections'] else '') + ' |',
        '| statuses | ' + ', '.join(f'{k} {v}' for k, v in sorted(rep['statuses'].items()))
        + ' |',
        f'| matches per keyframe (mean / median) | {rep["matches_per_keyframe"]:.1f} / '
        f'{rep["matches_median"]:.0f} |',
        f'| inlier ratio (mean, RANSAC F) | {rep["inlier_ratio"]:.3f} |',
        f'| node latency p50 / p95 / p99 | {lat["p50"] * 1e3:.1f} / {lat["p95"] * 1e3:.1f} / '
        f'{lat["p99"] * 1e3:.1f} ms |',
        f'| replay end-to-end p50 / p95 / p99 | {e2e["p50"] * 1e3:.1f} / '
        f'{e2e["p95"] * 1e3:.1f} / {e2e["p99"] * 1e3:.1f} ms |',
        f'| keyframes per second (wall) | {rep["keyframes_per_s"]:.2f} |',
        f'| wall time / bag duration | {rep["wall_s"]:.1f} s / {rep["bag_duration_s"]:.1f} s |',
        '',
        f'Output: `{rep["output_bag"]}` (topic `{rep["output_topic"]}`). Node latency is '
        'keypoints received -> correspondences published, as the node stamps it; end-to-end '
        'is frame published by the replay -> correspondences received (front-end and DDS '
        'included).', '',
    ]
    lines += [f'![{name}]({name})' for name in rep['figures']]
    return '\n'.join(lines) + '\n'


# -- command line ----------------------------------------------------------------------------

def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(
        prog='superglue-replay', description=__doc__.split('\n\n')[0],
        epilog='Without BAG (or with --demo) the bundled TUM demo bag is generated in '
               'OUT/demo_bag and replayed as fast as possible.')
    p.add_argument('bag', nargs='?', help='rosbag2 directory or .db3/.mcap file')
    p.add_argument('--out', default='out/replay', help='output directory')
    p.add_argument('--demo', action='store_true', help='replay the bundled TUM demo bag')
    mode = p.add_mutually_exclusive_group()
    mode.add_argument('--rate', type=float, default=None,
                      help='playback speed factor on the recorded stamps (default 1.0)')
    mode.add_argument('--as-fast-as-possible', action='store_true',
                      help='no timing: next keyframe as soon as the matcher answered the last')
    p.add_argument('--weights', default=None, help='weights file (default: shipped weights)')
    p.add_argument('--device', default='auto', help='auto | cpu | cuda | cuda:N')
    p.add_argument('--image-topic', default=None, help='Image topic in the bag (default: the '
                   'only one)')
    p.add_argument('--keypoints-topic', default=None, help='Keypoints topic in the bag '
                   '(default: the only one; none = the ORB front-end node makes them)')
    p.add_argument('--params-file', default=None,
                   help='parameters YAML of the nodes (default: config/superglue.yaml)')
    p.add_argument('--max-keypoints', type=int, default=0,
                   help='override max_keypoints of both nodes (0 = from the parameters file)')
    p.add_argument('--domain-id', type=int, default=None,
                   help='ROS domain id (default: ROS_DOMAIN_ID or 0)')
    p.add_argument('--storage', choices=STORAGES, default='sqlite3',
                   help='storage of the output bag')
    p.add_argument('--timeout', type=float, default=60.0,
                   help='seconds to wait for one keyframe before giving up on it')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = p.parse_args(argv)
    out = Path(args.out)
    demo = args.demo or args.bag is None
    if args.demo and args.bag is not None:
        p.error('give either BAG or --demo')
    if args.as_fast_as_possible or (demo and args.rate is None):
        rate = None
    else:
        rate = 1.0 if args.rate is None else args.rate
    try:
        if demo:
            bag = out / 'demo_bag'
            if not (bag / 'metadata.yaml').is_file():
                if bag.exists():
                    shutil.rmtree(bag)
                print(f'superglue-replay: generating the demo bag {bag} from the bundled TUM '
                      f'frames (CC BY 4.0)', file=sys.stderr)
                make_demo_bag(bag)
        else:
            bag = Path(args.bag)
        report = run_replay(bag, out, rate, args.weights, args.device, args.image_topic,
                            args.keypoints_topic, args.params_file, args.max_keypoints,
                            args.domain_id, args.storage, not args.no_progress, args.timeout)
    except ReplayError as exc:
        print(f'superglue-replay: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('superglue-replay: interrupted', file=sys.stderr)
        return 130
    lat = report['latency_s']
    print(f'{report["keyframes_in"]} keyframes in, {report["correspondences_out"]} '
          f'correspondences out, {report["dropped_total"]} dropped, '
          f'{sum(report["rejections"].values())} rejected; '
          f'{report["matches_per_keyframe"]:.1f} matches/keyframe, inlier ratio '
          f'{report["inlier_ratio"]:.3f}, latency p50 {lat["p50"] * 1e3:.0f} ms, '
          f'p95 {lat["p95"] * 1e3:.0f} ms')
    print(f'report: {os.path.abspath(out / "report.md")} (and report.json, PNGs, '
          f'{report["output_bag"]})')
    if not report['all_keyframes_accounted']:
        print('superglue-replay: some keyframes were neither answered nor counted as dropped',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

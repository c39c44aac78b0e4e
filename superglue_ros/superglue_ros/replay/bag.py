# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Bag I/O of the replay: inspect and read the input bag, write the output bag, read back.

Bags are read with ``rosbags``: rosbag2 (sqlite3 or mcap, detected on reading) and ROS 1
``.bag`` files (as the TUM RGB-D benchmark ships them; their messages are converted to CDR).
Messages are (de)serialised with rclpy, exactly what travels over DDS. Output bags are rosbag2.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
import os
from pathlib import Path
import queue
import shutil
import sys
import threading
import time
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import ReplayError
from ..ros.sync import stamp_ns, time_ns

IMAGE_TYPE = 'sensor_msgs/msg/Image'
KEYPOINTS_TYPE = 'superglue_ros_msgs/msg/Keypoints'
CORRESPONDENCES_TYPE = 'superglue_ros_msgs/msg/Correspondences'
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
POSE_TYPE = 'geometry_msgs/msg/PoseStamped'
DEPTH_ENCODINGS = {'16UC1': 1e-3, 'mono16': 1e-3, '32FC1': 1.0}  # -> metres (REP 118)
STORAGES = ('sqlite3', 'mcap')


def msg_dirs() -> List[Path]:
    """Directories that may hold the superglue_ros_msgs .msg files, most specific first."""
    dirs = []
    try:
        from ament_index_python.packages import get_package_share_directory
        dirs.append(Path(get_package_share_directory('superglue_ros_msgs')) / 'msg')
    except Exception:  # noqa: BLE001 - no ament index (pip setup without AMENT_PREFIX_PATH)
        pass
    dirs.append(Path(sys.prefix) / 'share' / 'superglue_ros_msgs' / 'msg')
    dirs.append(Path(__file__).resolve().parents[3] / 'superglue_ros_msgs' / 'msg')
    return dirs


def typestore():
    """Return a rosbags Jazzy typestore with the superglue_ros_msgs types registered."""
    from rosbags.typesys import get_types_from_msg, get_typestore, Stores
    store = get_typestore(Stores.ROS2_JAZZY)
    for directory in msg_dirs():
        files = [directory / 'Keypoints.msg', directory / 'Correspondences.msg']
        if all(f.is_file() for f in files):
            types: Dict = {}
            for f in files:
                types.update(get_types_from_msg(f.read_text(),
                                                f'superglue_ros_msgs/msg/{f.stem}'))
            store.register(types)
            return store
    raise FileNotFoundError('superglue_ros_msgs .msg files not found in: '
                            + ', '.join(str(d) for d in msg_dirs()))


def storage_plugin(name: str):
    """Return the rosbags StoragePlugin for 'sqlite3' or 'mcap'."""
    from rosbags.rosbag2 import StoragePlugin
    if name not in STORAGES:
        raise ValueError(f'storage must be one of {STORAGES}, got {name!r}')
    return StoragePlugin.MCAP if name == 'mcap' else StoragePlugin.SQLITE3


def is_ros1(path: Path) -> bool:
    """Tell a ROS 1 bag (one ``.bag`` file) from rosbag2 (a directory, .db3 or .mcap)."""
    return Path(path).is_file() and Path(path).suffix == '.bag'


def open_reader(path: Path):
    """Return a rosbags reader (not yet opened) for a rosbag2 or a ROS 1 bag."""
    if is_ros1(path):
        from rosbags.rosbag1 import Reader as Ros1Reader
        return Ros1Reader(path)
    from rosbags.rosbag2 import Reader
    return Reader(path)


class Deserializer:
    """Raw bag message -> rclpy message; ROS 1 data is converted to CDR first."""

    def __init__(self, ros1: bool):
        self.store = typestore() if ros1 else None

    def __call__(self, raw, msgtype: str, cls):
        from rclpy.serialization import deserialize_message
        data = bytes(raw)
        if self.store is not None:
            data = bytes(self.store.ros1_to_cdr(data, msgtype))
        return deserialize_message(data, cls)


@dataclass
class BagInfo:
    """What the replay needs to know about an input bag."""

    path: Path
    storage: str  # sqlite3 | mcap | rosbag1
    image_topic: str
    keypoints_topic: Optional[str]
    num_images: int
    num_keypoints: int
    start_ns: int
    duration_ns: int
    depth_topic: Optional[str] = None  # registered depth (16UC1 mm or 32FC1 m)
    camera_info_topic: Optional[str] = None

    @property
    def ros1(self) -> bool:
        return self.storage == 'rosbag1'


def _is_depth(topic: str) -> bool:
    return 'depth' in topic.lower()


def _namespace(topic: str) -> str:
    return topic.rsplit('/', 1)[0]


def inspect_bag(path, image_topic: Optional[str] = None,
                keypoints_topic: Optional[str] = None, depth_topic: Optional[str] = None
                ) -> BagInfo:
    """Open the bag (rosbag2 sqlite3/mcap or ROS 1, detected) and pick its topics.

    Image topics named like depth (``.../depth/...``) are depth candidates, the others colour
    candidates; CameraInfo is taken from the colour image's namespace when there are several.
    """
    path = Path(path)
    if not path.exists():
        raise ReplayError(f'bag {path} does not exist')
    try:
        with open_reader(path) as reader:
            conns = list(reader.connections)
            start, duration = reader.start_time, reader.duration
    except Exception as exc:  # noqa: BLE001 - rosbags raises several kinds
        raise ReplayError(f'cannot read bag {path}: {exc}') from exc
    if is_ros1(path):
        storage = 'rosbag1'
    elif path.suffix == '.mcap' or (path.is_dir() and any(path.glob('*.mcap'))):
        storage = 'mcap'
    else:
        storage = 'sqlite3'

    def pick(msgtype: str, wanted: Optional[str], required: bool, depth: bool = False
             ) -> Optional[str]:
        topics = sorted({c.topic for c in conns if c.msgtype == msgtype})
        if msgtype == IMAGE_TYPE and wanted is None:
            topics = [t for t in topics if _is_depth(t) == depth] or ([] if depth else topics)
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
            option = 'keypoints' if msgtype == KEYPOINTS_TYPE else 'depth' if depth else 'image'
            raise ReplayError(f'bag {path} has several {msgtype} topics '
                              f'({", ".join(topics)}): choose one with --{option}-topic')
        return topics[0]

    image = pick(IMAGE_TYPE, image_topic, True)
    keypoints = pick(KEYPOINTS_TYPE, keypoints_topic, False)
    depth = pick(IMAGE_TYPE, depth_topic, False, depth=True)
    if depth == image:
        depth = None
    infos = sorted({c.topic for c in conns if c.msgtype == CAMERA_INFO_TYPE})
    near = [t for t in infos if _namespace(t) == _namespace(image)]
    camera_info = near[0] if near else (infos[0] if len(infos) == 1 else None)

    def count(topic):
        return sum(c.msgcount for c in conns if c.topic == topic) if topic else 0
    if count(image) == 0:
        raise ReplayError(f'bag {path}: topic {image} holds no messages')
    return BagInfo(path, storage, image, keypoints, count(image), count(keypoints), start,
                   duration, depth, camera_info)


def read_inputs(info: BagInfo) -> Iterator[Tuple[bool, int, object]]:
    """Yield (is_image, bag time [ns], message) for the image and keypoints topics, in order.

    ``message`` is None for a message that does not deserialise; ReplayError when the bag
    cannot be read on.
    """
    from sensor_msgs.msg import Image
    from superglue_ros_msgs.msg import Keypoints

    read = 0
    deserialize = Deserializer(info.ros1)
    try:
        with open_reader(info.path) as reader:
            conns = [c for c in reader.connections
                     if c.topic in (info.image_topic, info.keypoints_topic)]
            for conn, t, raw in reader.messages(connections=conns):
                read += 1
                is_image = conn.topic == info.image_topic
                try:
                    msg = deserialize(raw, conn.msgtype, Image if is_image else Keypoints)
                except Exception:  # noqa: BLE001 - a malformed message: skipped, counted
                    yield is_image, t, None
                    continue
                yield is_image, t, msg
    except ReplayError:
        raise
    except Exception as exc:  # noqa: BLE001 - rosbags raises several kinds on damaged files
        raise ReplayError(f'bag {info.path} is damaged: reading failed after {read} '
                          f'messages: {exc}') from exc


def read_images(info: BagInfo, bag_times: Dict[int, int], wanted: Iterable[int]
                ) -> Dict[int, np.ndarray]:
    """BGR images of the input bag by header stamp [ns]; ``bag_times`` maps stamp -> bag time."""
    from sensor_msgs.msg import Image

    from ..ros.conversions import image_to_bgr

    images: Dict[int, np.ndarray] = {}
    deserialize = Deserializer(info.ros1)
    with open_reader(info.path) as reader:
        conns = [c for c in reader.connections if c.topic == info.image_topic]
        for s in sorted(set(wanted)):
            if s not in bag_times:
                continue
            t = bag_times[s]
            for conn, _, raw in reader.messages(connections=conns, start=t, stop=t + 1):
                msg = deserialize(raw, conn.msgtype, Image)
                if stamp_ns(msg) == s:
                    images[s] = image_to_bgr(msg)
    return images


def read_correspondences(path: Path, topic: str, wanted: Optional[Iterable[int]] = None
                         ) -> Dict[int, object]:
    """Correspondences messages of status ok in an output bag, by current keyframe stamp.

    Only the pairs with the previous keyframe (``window_index`` 0: every pair under
    ``window_size`` 1); ``read_window_correspondences`` gives every pair of a window.
    ``wanted``: only these current stamps [ns]; None = all.
    """
    return {stamp: msg for (stamp, index), msg in
            read_window_correspondences(path, topic, wanted).items() if index == 0}


def read_window_correspondences(path: Path, topic: str, wanted: Optional[Iterable[int]] = None
                                ) -> Dict[Tuple[int, int], object]:
    """Correspondences of status ok by (current keyframe stamp [ns], ``window_index``).

    ``window_index`` + 1 is the keyframe distance of the pair (1 = the previous keyframe).
    ``wanted``: only these current stamps [ns]; None = all.
    """
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from superglue_ros_msgs.msg import Correspondences

    wanted = None if wanted is None else set(wanted)
    found: Dict[Tuple[int, int], object] = {}
    with Reader(path) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        for _, _, raw in reader.messages(connections=conns):
            msg = deserialize_message(bytes(raw), Correspondences)
            stamp = time_ns(msg.current_stamp)
            if msg.status == Correspondences.STATUS_OK and (wanted is None or stamp in wanted):
                found[(stamp, int(msg.window_index))] = msg
    return found


def image_bag_times(info: BagInfo) -> List[int]:
    """Bag times [ns] of the colour images (cheap: no message is deserialised)."""
    with open_reader(info.path) as reader:
        conns = [c for c in reader.connections if c.topic == info.image_topic]
        return [t for _, t, _ in reader.messages(connections=conns)]


def read_camera_info_message(info: BagInfo):
    """Return the colour camera's first sensor_msgs/CameraInfo in the bag (None: none)."""
    from sensor_msgs.msg import CameraInfo

    if info.camera_info_topic is None:
        return None
    deserialize = Deserializer(info.ros1)
    with open_reader(info.path) as reader:
        conns = [c for c in reader.connections if c.topic == info.camera_info_topic]
        for conn, _, raw in reader.messages(connections=conns):
            return deserialize(raw, conn.msgtype, CameraInfo)
    return None


def read_camera_info(info: BagInfo):
    """Read the colour camera's first CameraInfo as a datasets.rgbd.Camera (None: none).

    ReplayError for a CameraInfo that cannot serve (no focal length, unknown distortion).
    """
    from ..datasets.rgbd import Camera

    msg = read_camera_info_message(info)
    if msg is None:
        return None
    k = list(msg.k)
    if not (k[0] > 0 and k[4] > 0):
        raise ReplayError(f'CameraInfo on {info.camera_info_topic} has no focal length '
                          f'(k = {k}): give the intrinsics with --camera FILE')
    model = msg.distortion_model or 'plumb_bob'
    d = [float(v) for v in msg.d]
    if any(d) and model not in ('plumb_bob', 'rational_polynomial'):
        raise ReplayError(f'CameraInfo on {info.camera_info_topic}: distortion model {model!r} '
                          f'is not supported (plumb_bob, rational_polynomial): give the '
                          f'intrinsics with --camera FILE')
    return Camera(int(msg.width), int(msg.height), float(k[0]), float(k[4]), float(k[2]),
                  float(k[5]), tuple((d + [0.0] * 5)[:5]))


def depth_to_metres(msg) -> np.ndarray:
    """16UC1/mono16 [mm] or 32FC1 [m] depth Image -> float32 metres, 0 where unknown."""
    scale = DEPTH_ENCODINGS.get(msg.encoding)
    if scale is None:
        raise ReplayError(f'depth image encoding {msg.encoding!r} is not supported '
                          f'({", ".join(DEPTH_ENCODINGS)})')
    dtype = np.dtype(np.float32 if msg.encoding == '32FC1' else np.uint16)
    dtype = dtype.newbyteorder('>' if msg.is_bigendian else '<')
    rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
    depth = rows[:, :msg.width * dtype.itemsize].copy().view(dtype).reshape(
        msg.height, msg.width)
    depth = depth.astype(np.float32) * np.float32(scale)
    depth[~np.isfinite(depth)] = 0.0
    return depth


def read_depths(info: BagInfo, stamps: Iterable[int], max_offset_ns: int = 20_000_000
                ) -> Dict[int, np.ndarray]:
    """Depth [m] nearest (within ``max_offset_ns``) to each colour stamp [ns], by that stamp."""
    from sensor_msgs.msg import Image

    wanted = np.array(sorted(set(stamps)), np.int64)
    if info.depth_topic is None or not len(wanted):
        return {}
    best: Dict[int, Tuple[int, object]] = {}
    deserialize = Deserializer(info.ros1)
    with open_reader(info.path) as reader:
        conns = [c for c in reader.connections if c.topic == info.depth_topic]
        for conn, t, raw in reader.messages(connections=conns):
            j = int(np.searchsorted(wanted, t))
            near = [i for i in (j - 1, j) if 0 <= i < len(wanted)
                    and abs(int(wanted[i]) - t) <= 5 * max_offset_ns]
            if not near:  # bag time far from every wanted stamp: skip deserialising
                continue
            msg = deserialize(raw, conn.msgtype, Image)
            s = stamp_ns(msg)
            j = int(np.searchsorted(wanted, s))
            for i in (j - 1, j):
                if 0 <= i < len(wanted):
                    off = abs(int(wanted[i]) - s)
                    if off <= max_offset_ns and off < best.get(int(wanted[i]), (off + 1,))[0]:
                        best[int(wanted[i])] = (off, msg)
    return {s: depth_to_metres(msg) for s, (_, msg) in best.items()}


FLUSH_PERIOD = 1.0  # [s] at most this much of the output is lost when the replay is killed


def _merge_metadata(total: Optional[dict], part: dict, name: str) -> dict:
    """Add one closed segment (its rosbag2_bagfile_information) as file ``name`` of ``total``."""
    part = dict(part)
    files = [dict(part['files'][0], path=name)] if part.get('files') else []
    if total is None:
        total = dict(part, relative_file_paths=[name], files=files)
        total['ros_distro'] = 'rosbags (superglue-replay, segmented)'
        return total
    total['relative_file_paths'] = total['relative_file_paths'] + [name]
    total['files'] = total.get('files', []) + files
    counts = {t['topic_metadata']['name']: t['message_count']
              for t in part['topics_with_message_count']}
    for t in total['topics_with_message_count']:
        t['message_count'] += counts.get(t['topic_metadata']['name'], 0)
    if part['message_count']:
        start = part['starting_time']['nanoseconds_since_epoch']
        end = start + part['duration']['nanoseconds']
        if total['message_count']:
            t0 = total['starting_time']['nanoseconds_since_epoch']
            t1 = t0 + total['duration']['nanoseconds']
            start, end = min(start, t0), max(end, t1)
        total['starting_time'] = {'nanoseconds_since_epoch': start}
        total['duration'] = {'nanoseconds': end - start}
    total['message_count'] += part['message_count']
    return total


class BagWriter:
    """The output bag, written so that a killed replay leaves a readable bag behind.

    One thread owns the writing (sqlite3 objects must stay in their thread); ``write`` may be
    called from any thread. Every FLUSH_PERIOD seconds the messages received meanwhile are
    written as one more closed storage file of the bag (``<name>_<k>.db3`` or ``.mcap``) and
    metadata.yaml is replaced atomically to list it, so after SIGKILL or a crash the bag reads
    back (rosbags, ``ros2 bag``) with everything up to the last flush. The first file, written
    at once, holds no messages but every topic.
    """

    def __init__(self, path: Path, storage: str, topics: Sequence[Tuple[str, str]],
                 flush_period: float = FLUSH_PERIOD):
        self.path = Path(path)
        self.storage = storage
        self.topics = list(topics)
        self.flush_period = float(flush_period)
        self._queue: 'queue.Queue' = queue.Queue()
        self._error: Optional[BaseException] = None
        self._metadata: Optional[dict] = None
        self._segments = 0
        self.counts: Counter = Counter()
        self.flushed: Counter = Counter()  # messages already safe on disk, per topic
        try:
            self._store = typestore()
            self.path.mkdir(parents=True)
            self._write_segment([])
        except Exception as exc:  # noqa: BLE001 - rosbags and the file system raise many kinds
            raise ReplayError(f'cannot create the output bag {path}: {exc}') from exc
        self._thread = threading.Thread(target=self._run, name='superglue_replay_writer',
                                        daemon=True)
        self._thread.start()

    def _write_segment(self, items: List[Tuple[str, int, bytes]]) -> None:
        """Write ``items`` as one closed storage file, then list it in metadata.yaml."""
        import yaml
        from rosbags.rosbag2 import Writer
        name = f'{self.path.name}_{self._segments}'
        staging = self.path.parent / f'.{self.path.name}.staging'
        if staging.exists():
            shutil.rmtree(staging)
        writer = Writer(staging / name, version=9, storage_plugin=storage_plugin(self.storage))
        writer.open()
        conns = {topic: writer.add_connection(topic, msgtype, typestore=self._store)
                 for topic, msgtype in self.topics}
        for topic, t, data in items:
            writer.write(conns[topic], t, data)
        writer.close()
        part = yaml.safe_load((staging / name / 'metadata.yaml').read_text())
        files = [f for f in (staging / name).iterdir() if f.name != 'metadata.yaml']
        if len(files) != 1:
            raise ReplayError(f'unexpected segment files: {[f.name for f in files]}')
        os.replace(files[0], self.path / files[0].name)
        shutil.rmtree(staging)
        self._metadata = _merge_metadata(self._metadata, part['rosbag2_bagfile_information'],
                                         files[0].name)
        tmp = self.path / 'metadata.yaml.tmp'
        tmp.write_text(yaml.safe_dump({'rosbag2_bagfile_information': self._metadata},
                                      sort_keys=False))
        os.replace(tmp, self.path / 'metadata.yaml')
        self._segments += 1
        for topic, _, _ in items:
            self.flushed[topic] += 1

    def _run(self) -> None:
        pending: List[Tuple[str, int, bytes]] = []
        last = time.monotonic()
        done = False
        while not done:
            try:
                item = self._queue.get(timeout=max(0.0, last + self.flush_period
                                                   - time.monotonic()))
                if item is None:
                    done = True
                else:
                    pending.append(item)
                    self.counts[item[0]] += 1
            except queue.Empty:
                pass
            if pending and (done or time.monotonic() >= last + self.flush_period):
                try:
                    self._write_segment(pending)
                except Exception as exc:  # noqa: BLE001 - reported by close()
                    self._error = exc
                    return
                pending = []
            if time.monotonic() >= last + self.flush_period:
                last = time.monotonic()

    def write(self, topic: str, t: int, data: bytes) -> None:
        self._queue.put((topic, t, data))

    def write_message(self, topic: str, msg) -> None:
        """Serialise a ROS message and write it at its header stamp."""
        from rclpy.serialization import serialize_message
        self.write(topic, stamp_ns(msg), serialize_message(msg))

    def close(self) -> None:
        """Write what is queued, close the bag; raise ReplayError if writing failed."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise ReplayError(f'writing the output bag failed: {self._error}')


def check_depth(info: BagInfo) -> None:
    """Decode the first depth image; ReplayError naming the topic when it cannot serve."""
    from sensor_msgs.msg import Image

    deserialize = Deserializer(info.ros1)
    with open_reader(info.path) as reader:
        conns = [c for c in reader.connections if c.topic == info.depth_topic]
        for conn, _, raw in reader.messages(connections=conns):
            try:
                depth = depth_to_metres(deserialize(raw, conn.msgtype, Image))
            except ReplayError as exc:
                raise ReplayError(f'depth topic {info.depth_topic}: {exc}') from exc
            except Exception as exc:  # noqa: BLE001 - malformed message or layout
                raise ReplayError(f'depth topic {info.depth_topic}: the first image does not '
                                  f'decode: {exc}') from exc
            if not (depth > 0).any():
                raise ReplayError(f'depth topic {info.depth_topic}: the first image holds no '
                                  f'valid depth')
            return
    raise ReplayError(f'depth topic {info.depth_topic} holds no messages')

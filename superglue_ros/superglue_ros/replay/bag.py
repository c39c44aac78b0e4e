# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Bag I/O of the replay: inspect and read the input bag, write the output bag, read back.

Bags are read and written with ``rosbags`` (sqlite3 or mcap, detected on reading); messages
are (de)serialised with rclpy, exactly what travels over DDS.
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
    except Exception as exc:  # noqa: BLE001 - rosbags raises several kinds
        raise ReplayError(f'cannot read bag {path}: {exc}') from exc
    mcap = path.suffix == '.mcap' or (path.is_dir() and any(path.glob('*.mcap')))

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
    return BagInfo(path, 'mcap' if mcap else 'sqlite3', image, keypoints, count(image),
                   count(keypoints), start, duration)


def read_inputs(info: BagInfo) -> Iterator[Tuple[bool, int, object]]:
    """Yield (is_image, bag time [ns], message) for the image and keypoints topics, in order.

    ``message`` is None for a message that does not deserialise; ReplayError when the bag
    cannot be read on.
    """
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from sensor_msgs.msg import Image
    from superglue_ros_msgs.msg import Keypoints

    read = 0
    try:
        with Reader(info.path) as reader:
            conns = [c for c in reader.connections
                     if c.topic in (info.image_topic, info.keypoints_topic)]
            for conn, t, raw in reader.messages(connections=conns):
                read += 1
                is_image = conn.topic == info.image_topic
                try:
                    msg = deserialize_message(bytes(raw), Image if is_image else Keypoints)
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
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from sensor_msgs.msg import Image

    from ..ros.conversions import image_to_bgr

    images: Dict[int, np.ndarray] = {}
    with Reader(info.path) as reader:
        conns = [c for c in reader.connections if c.topic == info.image_topic]
        for s in sorted(set(wanted)):
            if s not in bag_times:
                continue
            t = bag_times[s]
            for _, _, raw in reader.messages(connections=conns, start=t, stop=t + 1):
                msg = deserialize_message(bytes(raw), Image)
                if stamp_ns(msg) == s:
                    images[s] = image_to_bgr(msg)
    return images


def read_correspondences(path: Path, topic: str, wanted: Iterable[int]) -> Dict[int, object]:
    """Correspondences messages of status ok in an output bag, by current keyframe stamp."""
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from superglue_ros_msgs.msg import Correspondences

    wanted = set(wanted)
    found: Dict[int, object] = {}
    with Reader(path) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        for _, _, raw in reader.messages(connections=conns):
            msg = deserialize_message(bytes(raw), Correspondences)
            if msg.status == Correspondences.STATUS_OK and time_ns(msg.current_stamp) in wanted:
                found[time_ns(msg.current_stamp)] = msg
    return found


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

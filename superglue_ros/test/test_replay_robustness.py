# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""superglue-replay when things go wrong: killed runs, damaged bags, nothing usable."""

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
import zlib

import pytest
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import Reader, Writer
from sensor_msgs.msg import Image
import yaml

from ros_harness import domain_id, small_weights
from superglue_ros.replay.bag import IMAGE_TYPE, storage_plugin
from superglue_ros.replay.run import OUTPUT_BAG
from superglue_ros.ros.sync import to_time
from superglue_ros.tools.demo_bag import make_demo_bag

DOMAIN = domain_id(38)


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    return small_weights(tmp_path_factory.mktemp('weights'))


def cli(args, **kwargs):
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN), PYTHONUNBUFFERED='1')
    return subprocess.Popen([sys.executable, '-m', 'superglue_ros.tools.replay', *map(str, args),
                             '--no-progress', '--device', 'cpu'], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def listed(bag: Path) -> int:
    """Messages the output bag's metadata.yaml lists (0 while there is none)."""
    try:
        meta = yaml.safe_load((bag / 'metadata.yaml').read_text())
    except (OSError, yaml.YAMLError):
        return 0
    return int(meta['rosbag2_bagfile_information']['message_count'])


def read_back(bag: Path) -> int:
    with Reader(bag) as reader:
        return sum(1 for _ in reader.messages())


@pytest.mark.parametrize('signum, storage', [(signal.SIGKILL, 'sqlite3'), (signal.SIGKILL, 'mcap'),
                                             (signal.SIGTERM, 'sqlite3')])
def test_a_killed_replay_leaves_a_readable_bag(tmp_path, weights, storage, signum):
    bag = make_demo_bag(tmp_path / 'bag', keypoints=True, max_keypoints=128)
    out = tmp_path / 'out'
    # 17 keyframes over 0.56 s of stamps, played 10x slower: one keyframe every ~0.3 s.
    proc = cli([bag, '--out', out, '--rate', '0.1', '--weights', weights,
                '--storage', storage])
    try:
        deadline = time.monotonic() + 120
        while listed(out / OUTPUT_BAG) < 3 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        assert listed(out / OUTPUT_BAG) >= 3, 'the replay did not record 3 keyframes in 120 s'
        killed_at = time.monotonic()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
        stopped_in = time.monotonic() - killed_at
    finally:
        if proc.poll() is None:
            proc.kill()
    recovered = read_back(out / OUTPUT_BAG)
    print(f'{signal.Signals(signum).name} {storage}: {recovered} correspondences read back '
          f'(metadata listed {listed(out / OUTPUT_BAG)}), stopped in {stopped_in:.1f} s')
    assert recovered >= 3
    assert 'Traceback' not in err and 'never retrieved' not in err, err
    if signum == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM
        assert 'the report is partial' in err
        report = json.loads((out / 'report.json').read_text())
        assert report['partial'] and report['interrupted'] == 'interrupted (SIGTERM)'
        assert report['correspondences_out'] >= recovered
        assert report['frames_published'] < report['frames_read']
        assert (out / 'report.md').read_text().count('PARTIAL REPORT') == 1
    else:
        assert proc.returncode == -signal.SIGKILL


def write_images(path: Path, encoding: str, count: int = 3) -> Path:
    writer = Writer(path, version=9, storage_plugin=storage_plugin('sqlite3'))
    writer.open()
    from superglue_ros.replay.bag import typestore
    conn = writer.add_connection('/camera/image_raw', IMAGE_TYPE, typestore=typestore())
    for i in range(count):
        msg = Image(width=4, height=2, encoding=encoding, step=4)
        msg.header.stamp = to_time(100.0 + i)
        msg.data = bytes(8)
        writer.write(conn, 100_000_000_000 + i, serialize_message(msg))
    writer.close()
    return path


def test_a_bag_without_usable_input_exits_non_zero(tmp_path, weights):
    bag = write_images(tmp_path / 'bag', 'weird')
    proc = cli([bag, '--out', tmp_path / 'out', '--weights', weights])
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert 'no usable input: 3 frames, 0 keyframes' in err
    assert "'bad_images': 3" in err


def add_chunk_crcs(path: Path) -> None:
    """Fill in the chunk CRCs of an mcap file, as ros2 bag's writer does (rosbags writes 0)."""
    raw = bytearray(path.read_bytes())
    pos = 8  # magic
    while pos + 9 <= len(raw):
        opcode, length = raw[pos], int.from_bytes(raw[pos + 1:pos + 9], 'little')
        if opcode == 0x06:  # chunk: start, end, uncompressed size, crc, compression, records
            body = pos + 9
            name_len = int.from_bytes(raw[body + 28:body + 32], 'little')
            assert name_len == 0, 'compressed chunk'
            records = body + 32 + 8
            size = int.from_bytes(raw[body + 32:body + 40], 'little')
            raw[body + 24:body + 28] = zlib.crc32(raw[records:records + size]).to_bytes(
                4, 'little')
        pos += 9 + length
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize('storage, damage', [('sqlite3', 'overwritten'), ('mcap', 'overwritten'),
                                             ('mcap', 'truncated')])
def test_a_damaged_bag_is_a_clear_error(tmp_path, weights, storage, damage):
    bag = make_demo_bag(tmp_path / 'bag', storage=storage, frames=6)
    data = next(f for f in bag.iterdir() if f.suffix in ('.db3', '.mcap'))
    if storage == 'mcap':
        add_chunk_crcs(data)
    raw = bytearray(data.read_bytes())
    if damage == 'truncated':
        del raw[len(raw) // 2:]  # a recorder killed half-way
    else:
        raw[len(raw) // 3:len(raw) // 3 + 4096] = b'\xff' * 4096  # overwritten blocks
    data.write_bytes(bytes(raw))
    proc = cli([bag, '--out', tmp_path / 'out', '--weights', weights])
    _, err = proc.communicate(timeout=120)
    print(storage, proc.returncode, err.strip().splitlines()[-1:])
    assert proc.returncode in (1, 2), err
    assert 'Traceback' not in err and 'never retrieved' not in err, err
    assert 'damaged' in err or 'cannot read bag' in err, err

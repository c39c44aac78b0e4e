# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``superglue-make-bag``: a rosbag2 from a TUM-format RGB-D folder, ready for the replay.

Topics (stamps = the dataset's timestamps):
- ``/camera/image_raw``: sensor_msgs/Image, bgr8;
- ``/camera/depth/image_raw``: sensor_msgs/Image, 16UC1 in millimetres (REP 118), registered
  to the colour camera as in the TUM folders;
- ``/camera/camera_info``: sensor_msgs/CameraInfo (plumb_bob), one per colour frame;
- ``/groundtruth/pose``: geometry_msgs/PoseStamped, camera-to-world (frame ``world``), every
  ground-truth sample inside the recording.
Messages are serialised with rclpy (CDR) and written with ``rosbags``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
from typing import Optional, Sequence

IMAGE_TOPIC = '/camera/image_raw'
DEPTH_TOPIC = '/camera/depth/image_raw'
INFO_TOPIC = '/camera/camera_info'
POSE_TOPIC = '/groundtruth/pose'
FRAME_ID = 'camera_optical'


def _stamp(t: float):
    from builtin_interfaces.msg import Time
    sec = int(t)
    return Time(sec=sec, nanosec=int(round((t - sec) * 1e9)) % 1_000_000_000)


def camera_info(camera, stamp: float):
    """Build the CameraInfo (plumb_bob) of a datasets.rgbd.Camera."""
    from sensor_msgs.msg import CameraInfo
    msg = CameraInfo()
    msg.header.stamp = _stamp(stamp)
    msg.header.frame_id = FRAME_ID
    msg.width, msg.height = camera.width, camera.height
    msg.distortion_model = 'plumb_bob'
    msg.d = [float(v) for v in camera.dist]
    msg.k = [float(v) for v in camera.k.ravel()]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [camera.fx, 0.0, camera.cx, 0.0, 0.0, camera.fy, camera.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def make_bag(folder, out, camera: str = 'fr1', storage: str = 'sqlite3',
             max_frames: Optional[int] = None) -> Path:
    """Write the bag to the new directory ``out``; return it."""
    import cv2
    import numpy as np
    from geometry_msgs.msg import PoseStamped
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import Writer

    from ..datasets.rgbd import load_camera, read_stamped_list, TumSequence
    from ..replay.bag import storage_plugin, typestore
    from ..ros.conversions import numpy_to_image

    seq = TumSequence(folder, load_camera(camera))
    frames = seq.frames[:max_frames] if max_frames else seq.frames
    out = Path(out)
    store = typestore()
    image_type = 'sensor_msgs/msg/Image'
    with Writer(out, version=9, storage_plugin=storage_plugin(storage)) as writer:
        conns = {topic: writer.add_connection(topic, msgtype, typestore=store)
                 for topic, msgtype in ((IMAGE_TOPIC, image_type), (DEPTH_TOPIC, image_type),
                                        (INFO_TOPIC, 'sensor_msgs/msg/CameraInfo'),
                                        (POSE_TOPIC, 'geometry_msgs/msg/PoseStamped'))}

        def write(topic: str, t: float, msg) -> None:
            writer.write(conns[topic], int(round(t * 1e9)), serialize_message(msg))

        for frame in frames:
            bgr = cv2.imread(str(frame.rgb), cv2.IMREAD_COLOR)
            if bgr is None:
                raise FileNotFoundError(f'cannot read {frame.rgb}')
            image = numpy_to_image(bgr, 'bgr8')
            image.header.stamp = _stamp(frame.stamp)
            image.header.frame_id = FRAME_ID
            write(IMAGE_TOPIC, frame.stamp, image)
            write(INFO_TOPIC, frame.stamp, camera_info(seq.camera, frame.stamp))
            if frame.depth is not None:
                raw = cv2.imread(str(frame.depth), cv2.IMREAD_ANYDEPTH)
                if raw is None:
                    raise FileNotFoundError(f'cannot read {frame.depth}')
                mm = np.round(raw.astype(np.float64) * 1000.0 / seq.depth_scale)
                depth = numpy_to_image(np.clip(mm, 0, 65535).astype(np.uint16), '16UC1')
                depth.header.stamp = _stamp(frame.stamp)
                depth.header.frame_id = FRAME_ID
                write(DEPTH_TOPIC, frame.stamp, depth)
        stamps, rows = read_stamped_list(seq.root / 'groundtruth.txt')
        first, last = frames[0].stamp, frames[-1].stamp
        for t, row in zip(stamps, rows):
            if not first - 0.05 <= t <= last + 0.05:
                continue
            v = [float(x) for x in row.split()]
            pose = PoseStamped()
            pose.header.stamp = _stamp(t)
            pose.header.frame_id = 'world'
            pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = v[:3]
            (pose.pose.orientation.x, pose.pose.orientation.y, pose.pose.orientation.z,
             pose.pose.orientation.w) = v[3:]
            write(POSE_TOPIC, t, pose)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog='superglue-make-bag', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('folder', help='TUM-format folder (rgb.txt, depth.txt, groundtruth.txt)')
    p.add_argument('out', help='output bag directory (must not exist)')
    p.add_argument('--camera', default='fr1', help='fr1|fr2|fr3 intrinsics or a YAML file')
    p.add_argument('--storage', default='sqlite3', choices=['sqlite3', 'mcap'])
    p.add_argument('--max-frames', type=int, default=0, help='only the first N frames')
    args = p.parse_args(argv)
    if Path(args.out).exists():
        print(f'superglue-make-bag: {args.out} exists; choose a new directory', file=sys.stderr)
        return 2
    try:
        out = make_bag(args.folder, args.out, args.camera, args.storage, args.max_frames or None)
    except (FileNotFoundError, ValueError) as exc:
        print(f'superglue-make-bag: {exc}', file=sys.stderr)
        return 2
    print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

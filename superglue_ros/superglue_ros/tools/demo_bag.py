# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``superglue-make-demo-bag``: a rosbag2 of the bundled TUM frames for the replay.

The 17 bundled frames (TUM RGB-D freiburg, CC BY 4.0, see data/README.md) go into a rosbag2
as sensor_msgs/msg/Image on ``/camera/image_raw`` with their recorded timestamps (the file
names), frame_id ``camera_optical``; optionally also superglue_ros_msgs/msg/Keypoints on
``/keypoints`` (ORB, as the front-end node would publish them for every frame). Messages are
serialised with rclpy (CDR, exactly what travels over DDS) and written with ``rosbags``; the
output depends only on the frames and the options.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
from typing import Optional, Sequence

from .demo import bundled_frames  # noqa: F401 - re-exported: tests and tools use it here
from ..replay.bag import (IMAGE_TYPE, KEYPOINTS_TYPE, storage_plugin, STORAGES,
                          typestore)
from ..ros.topics import IMAGE_TOPIC

DATA = Path(__file__).resolve().parents[1] / 'data' / 'tum_freiburg'
KEYPOINTS_TOPIC = '/keypoints'
FRAME_ID = 'camera_optical'
ENCODINGS = ('bgr8', 'rgb8')


def make_demo_bag(path, storage: str = 'sqlite3', encoding: str = 'bgr8',
                  keypoints: bool = False, max_keypoints: int = 1024,
                  frames: Optional[int] = None) -> Path:
    """Write the demo bag to the new directory ``path``; return it.

    ``frames`` limits the bag to the first N bundled frames (None = all 17).
    """
    import cv2
    import numpy as np
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import Writer
    from std_msgs.msg import Header

    from ..features import OrbExtractor
    from ..ros.conversions import keypoints_from_features, numpy_to_image

    if encoding not in ENCODINGS:
        raise ValueError(f'encoding must be one of {ENCODINGS}, got {encoding!r}')
    path = Path(path)
    paths = bundled_frames()[:frames]
    store = typestore()
    extractor = OrbExtractor(max_keypoints) if keypoints else None
    with Writer(path, version=9, storage_plugin=storage_plugin(storage)) as writer:
        image_conn = writer.add_connection(IMAGE_TOPIC, IMAGE_TYPE, typestore=store)
        kp_conn = (writer.add_connection(KEYPOINTS_TOPIC, KEYPOINTS_TYPE, typestore=store)
                   if keypoints else None)
        for k, frame in enumerate(paths):
            bgr = cv2.imread(str(frame), cv2.IMREAD_COLOR)
            if bgr is None:
                raise OSError(f'cannot read bundled frame {frame}')
            # Stamps from the decimal file name, without a float round trip.
            sec, _, frac = frame.stem.partition('.')
            t_ns = int(sec) * 1_000_000_000 + int((frac + '000000000')[:9])
            header = Header(frame_id=FRAME_ID)
            header.stamp.sec, header.stamp.nanosec = divmod(t_ns, 1_000_000_000)
            pixels = bgr if encoding == 'bgr8' else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            image = numpy_to_image(np.ascontiguousarray(pixels), encoding, header,
                                   use_cv_bridge=False)
            writer.write(image_conn, t_ns, serialize_message(image))
            if extractor is not None:
                msg = keypoints_from_features(extractor(bgr), header, k + 1)
                writer.write(kp_conn, t_ns, serialize_message(msg))
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog='superglue-make-demo-bag',
                                description=__doc__.splitlines()[0])
    p.add_argument('out', nargs='?', default='out/demo_bag',
                   help='bag directory to create (must not exist)')
    p.add_argument('--storage', choices=STORAGES, default='sqlite3', help='rosbag2 storage')
    p.add_argument('--mcap', dest='storage', action='store_const', const='mcap',
                   help='same as --storage mcap')
    p.add_argument('--encoding', choices=ENCODINGS, default='bgr8', help='image encoding')
    p.add_argument('--keypoints', action='store_true',
                   help=f'also write ORB Keypoints for every frame on {KEYPOINTS_TOPIC}')
    p.add_argument('--max-keypoints', type=int, default=1024, help='ORB keypoints per frame')
    p.add_argument('--frames', type=int, default=None, help='only the first N frames')
    args = p.parse_args(argv)
    if Path(args.out).exists():
        print(f'superglue-make-demo-bag: {args.out} exists already; not overwriting',
              file=sys.stderr)
        return 2
    path = make_demo_bag(args.out, args.storage, args.encoding, args.keypoints,
                         args.max_keypoints, args.frames)
    print(f'wrote {path} ({args.storage})')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

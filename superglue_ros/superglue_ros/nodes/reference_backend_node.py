# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""REFERENCE back-end node: an example consumer of the matcher's output, not the product.

Subscribes to ``correspondences`` (superglue_ros_msgs/Correspondences), ``depth``
(sensor_msgs/Image, 16UC1 mm or 32FC1 m, registered to the colour camera) and
``camera_info`` (sensor_msgs/CameraInfo of the colour camera), runs the sliding-window RGB-D
bundle adjustment of ``superglue_ros.backend.ba`` (GTSAM) on every answered keyframe, and
publishes ``odometry`` (nav_msgs/Odometry, the newest keyframe) and ``path`` (nav_msgs/Path,
every keyframe's latest estimate). Keypoints messages are not needed: Correspondences carry
the matched pixels and the keypoint indices that make the tracks.

Poses are camera-to-``map_frame`` with the first keyframe at the origin (optical axes).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Optional

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry, Path
import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, Image
from superglue_ros_msgs.msg import Correspondences

from ..backend.ba import matches_from_message, SlidingWindowBA
from ..datasets.rgbd import Camera, load_camera
from ..geometry import rotation_to_quaternion
from ..ros.graph import reliable_qos
from ..ros.sync import stamp_ns, time_ns, to_time
from ..ros.throttle import ThrottledLogger
from ..ros.topics import image_qos

NODE_NAME = 'reference_backend'
DEPTH_SLOP_NS = 20_000_000  # depth image at most this far from a keyframe stamp


def pose_message(pose: np.ndarray, stamp, frame_id: str) -> PoseStamped:
    """Convert a camera-to-map 4x4 to geometry_msgs/PoseStamped."""
    msg = PoseStamped()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    p = msg.pose.position
    p.x, p.y, p.z = (float(v) for v in pose[:3, 3])
    q = msg.pose.orientation
    q.x, q.y, q.z, q.w = rotation_to_quaternion(pose[:3, :3])
    return msg


class ReferenceBackendNode(Node):
    """Sliding-window RGB-D BA on the matcher's correspondences (reference example)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, **kwargs)
        self.declare_parameters('', [
            ('map_frame', 'map', ParameterDescriptor(
                description='Frame of the published poses', read_only=True)),
            ('camera', '', ParameterDescriptor(
                description='Intrinsics YAML or fr1|fr2|fr3; empty = from camera_info',
                read_only=True)),
            ('window', 8, ParameterDescriptor(
                description='Keyframes optimised together', read_only=True)),
            ('depth_buffer', 60, ParameterDescriptor(
                description='Depth images kept while their keyframe may still come',
                read_only=True)),
        ])
        self._map_frame = self.get_parameter('map_frame').value
        self._window = int(self.get_parameter('window').value)
        spec = self.get_parameter('camera').value
        self._camera: Optional[Camera] = load_camera(spec) if spec else None
        self._ba: Optional[SlidingWindowBA] = None
        self._depths: OrderedDict = OrderedDict()  # stamp [ns] -> metres
        self._depth_cap = int(self.get_parameter('depth_buffer').value)
        self._stamps = {}  # keyframe id -> builtin_interfaces/Time
        self.counts: Counter = Counter()
        self._log = ThrottledLogger(self.get_logger(), lambda: 5.0)
        self._odometry_pub = self.create_publisher(Odometry, 'odometry', reliable_qos(10))
        self._path_pub = self.create_publisher(Path, 'path', reliable_qos(10))
        self.create_subscription(Correspondences, 'correspondences', self._on_correspondences,
                                 reliable_qos(100))
        # Sensor-data QoS like the camera's other subscribers, overridable from YAML.
        overridable = QoSOverridingOptions.with_default_policies()
        self.create_subscription(Image, 'depth', self._on_depth, image_qos(),
                                 qos_overriding_options=overridable)
        self.create_subscription(CameraInfo, 'camera_info', self._on_camera_info, image_qos(),
                                 qos_overriding_options=overridable)
        self.get_logger().info(
            'REFERENCE back-end (example consumer, not the product): sliding-window RGB-D BA, '
            f'window {self._window}, camera '
            f'{"from " + spec if spec else "from camera_info"}')

    @property
    def backend(self) -> Optional[SlidingWindowBA]:
        """Return the running SlidingWindowBA (None until the first keyframe)."""
        return self._ba

    @property
    def camera(self) -> Optional[Camera]:
        """Return the intrinsics in use (None until camera_info arrives)."""
        return self._camera

    @property
    def buffered_depth_images(self) -> int:
        """Return how many depth images wait for their keyframe."""
        return len(self._depths)

    def has_depth(self, stamp: int) -> bool:
        """Return True when a depth image stamped ``stamp`` [ns] is buffered."""
        return stamp in self._depths

    def dropped(self) -> int:
        """Return the Correspondences taken but not answered with Odometry (all reasons)."""
        return sum(self.counts[k] for k in ('errors', 'not_ok', 'dropped_no_intrinsics'))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        if self._camera is not None:
            return
        k, d = list(msg.k), [float(v) for v in msg.d]
        if not (k[0] > 0 and k[4] > 0):
            n = self._count('bad_camera_info')
            self._log.warning('camera_info', f'camera_info without focal length ignored ({n})')
            return
        self._camera = Camera(int(msg.width), int(msg.height), k[0], k[4], k[2], k[5],
                              tuple((d + [0.0] * 5)[:5]))
        self.get_logger().info(f'intrinsics from camera_info: fx {k[0]:.1f} fy {k[4]:.1f}')

    def _on_depth(self, msg: Image) -> None:
        from ..replay.bag import depth_to_metres
        try:
            self._depths[stamp_ns(msg)] = depth_to_metres(msg)
        except Exception as exc:  # noqa: BLE001 - a bad message must not stop the node
            n = self._count('bad_depth')
            self._log.warning('depth', f'depth image dropped ({exc}); {n} so far')
            return
        while len(self._depths) > self._depth_cap:
            self._depths.popitem(last=False)

    def _depth_at(self, stamp: int) -> Optional[np.ndarray]:
        best = min(self._depths, key=lambda s: abs(s - stamp), default=None)
        if best is None or abs(best - stamp) > DEPTH_SLOP_NS:
            return None
        return self._depths[best]

    def _count(self, name: str) -> int:
        self.counts[name] += 1
        return self.counts[name]

    def _on_correspondences(self, msg: Correspondences) -> None:
        try:
            self._process(msg)
        except Exception as exc:  # noqa: BLE001 - the node must outlive any bad input
            n = self._count('errors')
            self._log.error('error', f'keyframe {msg.current_keyframe_id} dropped: {exc!r} '
                            f'({n} so far)')

    def _process(self, msg: Correspondences) -> None:
        if msg.status not in (Correspondences.STATUS_OK, Correspondences.STATUS_FIRST_KEYFRAME):
            self._count('not_ok')
            return
        if self._camera is None:
            n = self._count('dropped_no_intrinsics')
            self._log.warning('intrinsics', f'keyframe {msg.current_keyframe_id} dropped: no '
                              f'camera_info yet and no camera parameter ({n} so far)')
            return
        if self._ba is None:
            self._ba = SlidingWindowBA(self._camera, window=self._window)
        cur = time_ns(msg.current_stamp)
        self._stamps[int(msg.current_keyframe_id)] = msg.current_stamp
        if msg.status == Correspondences.STATUS_FIRST_KEYFRAME or not self._ba.order:
            if msg.status == Correspondences.STATUS_FIRST_KEYFRAME:
                pose = self._ba.start(int(msg.current_keyframe_id), cur * 1e-9)
                self._publish(msg, pose)
                return
            self._stamps[int(msg.reference_keyframe_id)] = msg.reference_stamp
            self._ba.start(int(msg.reference_keyframe_id), time_ns(msg.reference_stamp) * 1e-9)
        ref_depth = self._depth_at(time_ns(msg.reference_stamp))
        cur_depth = self._depth_at(cur)
        if ref_depth is None or cur_depth is None:
            n = self._count('missing_depth')
            self._log.warning('depth', f'keyframe {msg.current_keyframe_id}: no depth image '
                              f'within 20 ms; tracked without it ({n} so far)')
        pose = self._ba.add(matches_from_message(msg, ref_depth, cur_depth))
        self._count('keyframes')
        self._publish(msg, pose)

    def _publish(self, msg: Correspondences, pose: np.ndarray) -> None:
        odom = Odometry()
        odom.header.stamp, odom.header.frame_id = msg.current_stamp, self._map_frame
        odom.child_frame_id = msg.header.frame_id
        odom.pose.pose = pose_message(pose, msg.current_stamp, self._map_frame).pose
        self._odometry_pub.publish(odom)
        path = Path()
        path.header.stamp, path.header.frame_id = msg.current_stamp, self._map_frame
        path.poses = [pose_message(p, self._stamps.get(k, to_time(t)),
                                   self._map_frame)
                      for k, (t, p) in zip(self._ba.order, self._ba.trajectory())]
        self._path_pub.publish(path)


def main(args=None) -> int:
    """Console script ``reference_backend_node``."""
    rclpy.init(args=args)
    try:
        node = ReferenceBackendNode()
    except (KeyboardInterrupt, ExternalShutdownException):
        rclpy.try_shutdown()
        return 0
    except Exception as exc:  # noqa: BLE001 - a clear one-line start-up error, no traceback
        rclpy.logging.get_logger(NODE_NAME).fatal(f'cannot start: {exc}')
        rclpy.try_shutdown()
        return 1
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

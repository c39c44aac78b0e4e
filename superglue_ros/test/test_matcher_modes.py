# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The matcher over real DDS: camera model and pose, keypoints-only and compressed input, reset.

The camera tests use a synthetic scene with a known pose: 3D points seen by a distorted camera
from two poses, the same random ORB descriptor for a point in both views. The network matches
them, so what is checked is the verification and the pose the node publishes.
"""

import time

import cv2
import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger
from superglue_ros_msgs.msg import Correspondences, Keypoints

from ros_harness import (Collector, domain_id, RELIABLE, stamp,
                         TumFrames, wait_for)
from superglue_ros.features import Features
from superglue_ros.geometry import Intrinsics, relative_pose_error, verify_essential
from superglue_ros.nodes.matcher_node import MatcherNode
from superglue_ros.ros.conversions import keypoints_from_features
from superglue_ros.ros.graph import reliable_input_overrides

DOMAIN = domain_id(24)
SIZE = (640, 480)
K = np.array([[520.0, 0.0, 320.0], [0.0, 520.0, 240.0], [0.0, 0.0, 1.0]])
# Strong barrel distortion (a wide-angle lens): up to ~20 px at the image corners.
DISTORTION = np.array([-0.28, 0.09, 0.001, -0.0005, 0.0])
ROTATION = cv2.Rodrigues(np.array([0.03, -0.08, 0.02]))[0]  # about 5 degrees
TRANSLATION = np.array([0.4, 0.05, 0.1])


def synthetic_views(seed: int = 0, n: int = 500):
    """Two keyframes of one 3D scene: (reference Features, current Features), pixels distorted.

    X_cur = ROTATION @ X_ref + TRANSLATION. Points outside either image are left out.
    """
    rng = np.random.default_rng(seed)
    points = np.c_[rng.uniform(-3, 3, n), rng.uniform(-2.2, 2.2, n), rng.uniform(3, 8, n)]
    p0 = cv2.projectPoints(points, np.zeros(3), np.zeros(3), K, DISTORTION)[0].reshape(-1, 2)
    p1 = cv2.projectPoints(points, cv2.Rodrigues(ROTATION)[0], TRANSLATION, K,
                           DISTORTION)[0].reshape(-1, 2)
    inside = np.all((p0 > 5) & (p0 < np.array(SIZE) - 5) & (p1 > 5)
                    & (p1 < np.array(SIZE) - 5), axis=1)
    keep = np.flatnonzero(inside)
    descriptors = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    scores = rng.uniform(0.3, 1.0, n).astype(np.float32)

    def view(pixels):
        m = len(keep)
        return Features(pixels[keep].astype(np.float32), scores[keep], descriptors[keep], 'orb',
                        SIZE, np.full(m, 31, np.float32),
                        rng.uniform(0, 360, m).astype(np.float32), np.zeros(m, np.int32))
    return view(p0), view(p1)


def camera_info(distortion=DISTORTION, model='plumb_bob') -> CameraInfo:
    msg = CameraInfo(width=SIZE[0], height=SIZE[1], distortion_model=model)
    msg.k = [float(v) for v in K.ravel()]
    msg.d = [float(v) for v in distortion]
    msg.header.frame_id = 'camera_optical'
    return msg


def ground_truth() -> np.ndarray:
    t = np.eye(4)
    t[:3, :3], t[:3, 3] = ROTATION, TRANSLATION
    return t


def quaternion_to_matrix(q) -> np.ndarray:
    x, y, z, w = q.x, q.y, q.z, q.w
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


@pytest.fixture(scope='module')
def views():
    return synthetic_views()


def start(harness, weights, namespace, **params):
    overrides = [Parameter('weights', value=str(weights)), Parameter('device', value='cpu'),
                 Parameter('queue_policy', value='block')]
    overrides += [Parameter(k, value=v) for k, v in params.items()]
    overrides += reliable_input_overrides([f'/{namespace}/image', f'/{namespace}/keypoints',
                                           f'/{namespace}/image/compressed'], 50)
    return harness.add(MatcherNode(context=harness.context, namespace=namespace,
                                   parameter_overrides=overrides))


class Driver:
    """Publishers into one namespace, the correspondences collected."""

    def __init__(self, harness, namespace, image_type=None):
        node = harness.node
        self.kp_pub = node.create_publisher(Keypoints, f'/{namespace}/keypoints', RELIABLE)
        self.info_pub = node.create_publisher(CameraInfo, f'/{namespace}/camera_info', RELIABLE)
        topic = {Image: 'image', CompressedImage: 'image/compressed'}.get(image_type)
        self.image_pub = (node.create_publisher(image_type, f'/{namespace}/{topic}', RELIABLE)
                          if image_type else None)
        self.out = Collector()
        self.sub = node.create_subscription(Correspondences, f'/{namespace}/correspondences',
                                            self.out, RELIABLE)
        assert wait_for(lambda: (self.kp_pub.get_subscription_count() > 0
                                 and self.info_pub.get_subscription_count() > 0
                                 and self.sub.get_publisher_count() > 0
                                 and (self.image_pub is None
                                      or self.image_pub.get_subscription_count() > 0)), 20.0)

    def send_keypoints(self, features, keyframe_id, t):
        count = len(self.out)
        header = Header(stamp=stamp(t), frame_id='camera_optical')
        self.kp_pub.publish(keypoints_from_features(features, header, keyframe_id))
        return self.out.wait(count + 1)[count]


def send_info_until_used(harness, node, driver, info):
    assert harness.wait_for(lambda: (driver.info_pub.publish(info), node.camera)[1] is not None,
                            10.0, 0.05), 'camera_info never reached the node'


def test_with_intrinsics_essential_matrix_on_undistorted_points_gives_the_pose(
        harness, weights, views):
    node = start(harness, weights, 'intrinsics', image_input='none')
    driver = Driver(harness, 'intrinsics')
    send_info_until_used(harness, node, driver, camera_info())
    assert node.camera.model == 'plumb_bob' and node.camera.size == SIZE
    first = driver.send_keypoints(views[0], 1, 100.0)
    assert first.status == Correspondences.STATUS_FIRST_KEYFRAME and not first.pose_valid
    m = driver.send_keypoints(views[1], 2, 100.5)
    assert m.status == Correspondences.STATUS_OK, m.status_message
    assert m.verified and m.verification == Correspondences.VERIFICATION_ESSENTIAL
    n = len(m.current_indices)
    inlier = np.asarray(m.inlier, bool)
    assert n > 100 and inlier.mean() > 0.95
    assert m.pose_valid and m.pose_inliers >= 0.9 * inlier.sum()
    assert m.pose_parallax > 1.0  # a translating pair: the baseline is seen
    t = np.array([m.translation.x, m.translation.y, m.translation.z])
    assert abs(np.linalg.norm(t) - 1.0) < 1e-6
    q = m.rotation
    assert abs(np.linalg.norm([q.x, q.y, q.z, q.w]) - 1.0) < 1e-6 and q.w >= 0
    err_r, err_t = relative_pose_error(ground_truth(), quaternion_to_matrix(q), t)
    assert err_r < 0.1 and err_t < 0.5, (err_r, err_t)
    assert np.dot(t, TRANSLATION) > 0  # the direction, not only the line
    stats = node.stats()
    assert stats['pose_estimates'] == 1
    harness.remove(node)


def test_a_distorted_camera_needs_its_distortion(harness, weights, views):
    # The same matches with the distortion left out of camera_info: the pose is worse and
    # fewer matches pass at 1 px. This is why camera_info's d is used, not only k.
    node = start(harness, weights, 'nodistortion', image_input='none')
    driver = Driver(harness, 'nodistortion')
    send_info_until_used(harness, node, driver, camera_info(distortion=np.zeros(5)))
    driver.send_keypoints(views[0], 1, 100.0)
    m = driver.send_keypoints(views[1], 2, 100.5)
    assert m.status == Correspondences.STATUS_OK and m.pose_valid
    t = np.array([m.translation.x, m.translation.y, m.translation.z])
    err_r, err_t = relative_pose_error(ground_truth(), quaternion_to_matrix(m.rotation), t)
    assert err_r > 0.2 or err_t > 1.0, (err_r, err_t)
    # The same matches verified with the distortion model keep clearly more.
    reference = np.c_[m.reference_x, m.reference_y]
    current = np.c_[m.current_x, m.current_y]
    camera = Intrinsics.from_values(K.ravel(), DISTORTION, 'plumb_bob', SIZE)
    with_model, _ = verify_essential(reference, current, camera)
    assert np.asarray(m.inlier, bool).mean() < with_model.mean() - 0.02
    harness.remove(node)


def test_without_intrinsics_fundamental_matrix_and_no_pose(harness, weights, views):
    node = start(harness, weights, 'nointrinsics', image_input='none')
    driver = Driver(harness, 'nointrinsics')
    driver.send_keypoints(views[0], 1, 100.0)
    m = driver.send_keypoints(views[1], 2, 100.5)
    assert m.status == Correspondences.STATUS_OK and m.verified
    assert m.verification == Correspondences.VERIFICATION_FUNDAMENTAL
    assert not m.pose_valid and m.pose_inliers == 0
    assert (m.rotation.x, m.rotation.y, m.rotation.z, m.rotation.w) == (0.0, 0.0, 0.0, 1.0)
    assert (m.translation.x, m.translation.y, m.translation.z) == (0.0, 0.0, 0.0)
    assert node.camera is None and len(m.inlier) == len(m.current_indices) > 100
    harness.remove(node)


def test_verification_off_says_none(harness, weights, views):
    node = start(harness, weights, 'noverify', image_input='none', verify=False)
    driver = Driver(harness, 'noverify')
    send_info_until_used(harness, node, driver, camera_info())
    driver.send_keypoints(views[0], 1, 100.0)
    m = driver.send_keypoints(views[1], 2, 100.5)
    assert not m.verified and m.verification == Correspondences.VERIFICATION_NONE
    assert not m.pose_valid and all(np.asarray(m.inlier) == 1)
    harness.remove(node)


def test_camera_info_required(harness, weights, views):
    node = start(harness, weights, 'required', image_input='none', camera_info_required=True)
    driver = Driver(harness, 'required')
    m = driver.send_keypoints(views[0], 1, 100.0)
    assert m.status == Correspondences.STATUS_REJECTED_INPUT
    assert m.status_message.startswith('no_camera_info:') and 'camera_info' in m.status_message
    # An uncalibrated camera (k all zero) and one of another resolution do not count.
    bad = camera_info()
    bad.k = [0.0] * 9
    other = camera_info()
    other.width, other.height = 1280, 960
    # camera_info keeps the latest message only: one at a time.
    assert harness.wait_for(lambda: (driver.info_pub.publish(bad),
                                     node.stats().get('bad_camera_info', 0))[1] >= 1, 5.0, 0.05)
    assert node.camera is None
    send_info_until_used(harness, node, driver, other)
    m = driver.send_keypoints(views[0], 2, 101.0)
    assert m.status == Correspondences.STATUS_REJECTED_INPUT, 'camera_info for 1280 x 960 used'
    send_info_until_used(harness, node, driver, camera_info())
    assert harness.wait_for(lambda: node.camera.size == SIZE, 5.0)
    assert driver.send_keypoints(views[0], 3, 102.0).status == \
        Correspondences.STATUS_FIRST_KEYFRAME
    m = driver.send_keypoints(views[1], 4, 102.5)
    assert m.status == Correspondences.STATUS_OK and m.pose_valid
    stats = node.stats()
    assert stats['rejected_no_camera_info'] == 2 and stats['camera_info_size_mismatch'] >= 1
    harness.remove(node)


def test_keypoints_only_mode_matches_without_images_and_offers_no_debug_image(
        harness, weights):
    tum = TumFrames(count=4)
    node = start(harness, weights, 'kponly', image_input='none')
    driver = Driver(harness, 'kponly')
    debug = Collector()
    harness.node.create_subscription(Image, '/kponly/superglue_matcher/debug_image', debug,
                                     RELIABLE)
    assert not node.debug_image_wanted
    assert harness.node.count_publishers('/kponly/superglue_matcher/debug_image') == 0
    assert harness.node.count_subscribers('/kponly/image') == 0
    out = []
    for i in range(len(tum)):
        count = len(driver.out)
        driver.kp_pub.publish(tum.keypoints_msg(i, keyframe_id=i + 1))
        out.append(driver.out.wait(count + 1)[count])
    assert [m.status for m in out] == [Correspondences.STATUS_FIRST_KEYFRAME] + \
        [Correspondences.STATUS_OK] * 3
    assert all(len(m.current_indices) > 50 for m in out[1:])
    assert all(m.header.frame_id == 'camera_optical' for m in out)
    # Without an image, the keypoints must say how large their image was.
    no_size = tum.keypoints_msg(0, keyframe_id=9, offset=10.0)
    no_size.image_width = 0
    count = len(driver.out)
    driver.kp_pub.publish(no_size)
    m = driver.out.wait(count + 1)[count]
    assert m.status == Correspondences.STATUS_REJECTED_INPUT
    assert 'image_width' in m.status_message and 'image_input none' in m.status_message
    time.sleep(0.3)
    assert len(debug) == 0
    counters = node.sync_counters
    assert counters.received == (0, len(tum) + 1) and counters.dropped == (0, 0)
    harness.remove(node)


def test_compressed_images_are_decoded_for_pairing_and_the_debug_image(harness, weights):
    tum = TumFrames(count=3)
    node = start(harness, weights, 'compressed', image_input='compressed')
    driver = Driver(harness, 'compressed', CompressedImage)
    assert harness.node.count_subscribers('/compressed/image') == 0
    debug = Collector()
    harness.node.create_subscription(Image, '/compressed/superglue_matcher/debug_image', debug,
                                     RELIABLE)
    assert harness.wait_for(lambda: node.debug_image_wanted, 10.0)
    out = []
    for i in range(len(tum)):
        ok, jpeg = cv2.imencode('.jpg', tum.images[i], [cv2.IMWRITE_JPEG_QUALITY, 95])
        image = CompressedImage(header=tum.header(i), format='jpeg', data=jpeg.tobytes())
        count = len(driver.out)
        driver.image_pub.publish(image)
        driver.kp_pub.publish(tum.keypoints_msg(i, keyframe_id=i + 1))
        out.append(driver.out.wait(count + 1)[count])
    assert [m.status for m in out] == [Correspondences.STATUS_FIRST_KEYFRAME] + \
        [Correspondences.STATUS_OK] * 2
    frames = debug.wait(2)
    h, w = tum.images[0].shape[:2]
    assert frames[0].encoding == 'bgr8' and frames[0].height >= h and frames[0].width >= 2 * w
    # Bytes that are no image: rejected as bad_image, named.
    count = len(driver.out)
    driver.image_pub.publish(CompressedImage(header=tum.header(0, 5.0), format='jpeg',
                                             data=b'not a jpeg'))
    driver.kp_pub.publish(tum.keypoints_msg(0, keyframe_id=7, offset=5.0))
    m = driver.out.wait(count + 1)[count]
    assert m.status == Correspondences.STATUS_REJECTED_INPUT
    assert m.status_message.startswith('bad_image:') and 'does not decode' in m.status_message
    harness.remove(node)


def test_reset_service_starts_the_sequence_over(harness, weights):
    tum = TumFrames(count=3)
    node = start(harness, weights, 'reset', image_input='none')
    driver = Driver(harness, 'reset')
    client = harness.node.create_client(Trigger, '/reset/superglue_matcher/reset')
    assert client.wait_for_service(timeout_sec=10.0)
    statuses = []
    for i, kf in ((0, 1), (1, 2)):
        count = len(driver.out)
        driver.kp_pub.publish(tum.keypoints_msg(i, keyframe_id=kf))
        statuses.append(driver.out.wait(count + 1)[count].status)
    future = client.call_async(Trigger.Request())
    assert harness.wait_for(future.done, 10.0)
    response = future.result()
    assert response.success and 'reference keyframe 2 dropped' in response.message
    count = len(driver.out)
    driver.kp_pub.publish(tum.keypoints_msg(2, keyframe_id=3))
    m = driver.out.wait(count + 1)[count]
    assert statuses == [Correspondences.STATUS_FIRST_KEYFRAME, Correspondences.STATUS_OK]
    assert m.status == Correspondences.STATUS_FIRST_KEYFRAME, 'no reset: matched keyframe 2'
    assert node.stats()['reset_requests'] == 1
    harness.remove(node)


def test_image_input_is_checked(harness, weights):
    with pytest.raises(ValueError, match='image_input must be one of'):
        start(harness, weights, 'badinput', image_input='h264')

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Sub-pixel match refinement in the matcher node, over real DDS.

A bundled real frame and a copy of it rotated by 8 degrees and shifted by a known sub-pixel
amount (cubic interpolation) are published as two keyframes with the front-end's ORB
keypoints. The true position of every reference keypoint in the copy is known exactly, so
the published refined points are checked against it, next to the keypoint positions.
"""

import cv2
import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from superglue_ros_msgs.msg import Correspondences, Keypoints
from superglue_ros_msgs.srv import MatchKeyframes

from ros_harness import Collector, domain_id, FRAMES, RELIABLE, reliable_inputs, stamp, wait_for
from superglue_ros.engine import MatchResult
from superglue_ros.features import Features, OrbExtractor
from superglue_ros.nodes.matcher_node import Keyframe, MatcherNode
from superglue_ros.refinement import (matched_angles, matched_current_points,
                                      matched_reference_points, Refinement)
from superglue_ros.ros.conversions import (build_correspondences, keypoints_from_features,
                                           numpy_to_image)
from superglue_ros.weights import default_weights_path

DOMAIN = domain_id(53)
ANGLE, SHIFT, CENTRE = 8.0, (0.37, -0.62), (320.0, 240.0)
T0 = 1341847980.0  # stamps of the published keyframes: T0 + 1, T0 + 2, ...


def similarity(angle_deg: float, shift, centre) -> np.ndarray:
    """2 x 3 matrix: rotate by ``angle_deg`` about ``centre`` (x towards y), then shift."""
    c, s = np.cos(np.deg2rad(angle_deg)), np.sin(np.deg2rad(angle_deg))
    a = np.array([[c, -s], [s, c]])
    t = np.asarray(centre) - a @ np.asarray(centre) + np.asarray(shift)
    return np.hstack([a, t[:, None]])


@pytest.fixture(scope='module')
def pair():
    """Return (reference gray, current gray, warp, ORB features of both as the front-end's)."""
    image0 = cv2.imread(str(FRAMES[0]), cv2.IMREAD_GRAYSCALE)
    warp = similarity(ANGLE, SHIFT, CENTRE)
    image1 = cv2.warpAffine(image0, warp, (image0.shape[1], image0.shape[0]),
                            flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    extractor = OrbExtractor(1024)  # the front-end's default extractor
    return image0, image1, warp, extractor(image0), extractor(image1)


class Driver:
    """Publishes keyframes (image + keypoints) into one namespace; collects the answers."""

    def __init__(self, harness, namespace, images=True):
        node = harness.node
        self.image_pub = (node.create_publisher(Image, f'/{namespace}/image', RELIABLE)
                          if images else None)
        self.kp_pub = node.create_publisher(Keypoints, f'/{namespace}/keypoints', RELIABLE)
        self.out = Collector()
        self.sub = node.create_subscription(Correspondences, f'/{namespace}/correspondences',
                                            self.out, RELIABLE)
        assert wait_for(lambda: (self.kp_pub.get_subscription_count() > 0
                                 and self.sub.get_publisher_count() > 0
                                 and (self.image_pub is None
                                      or self.image_pub.get_subscription_count() > 0)), 20.0), \
            'discovery between the test driver and the matcher timed out'
        self.sent = 0

    def send(self, image, features, answers: int = 1):
        """Publish keyframe ``self.sent + 1``; return its first answer (all of ``answers``)."""
        self.sent += 1
        header = Header(stamp=stamp(T0 + self.sent), frame_id='camera_optical')
        count = len(self.out)
        if self.image_pub is not None:
            self.image_pub.publish(numpy_to_image(image, 'mono8', header, use_cv_bridge=False))
        self.kp_pub.publish(keypoints_from_features(features, header, self.sent))
        got = self.out.wait(count + answers, timeout=60.0)[count:]
        return got[0] if answers == 1 else got


def start(harness, namespace, **params):
    weights = default_weights_path()
    if not weights.is_file():
        pytest.skip(f'shipped weights absent at {weights}: random weights give no matches '
                    f'worth refining')
    overrides = [Parameter('weights', value=str(weights)), Parameter('device', value='cpu'),
                 Parameter('queue_policy', value='block')]
    overrides += [Parameter(k, value=v) for k, v in params.items()]
    overrides += reliable_inputs(namespace)
    return harness.add(MatcherNode(context=harness.context, namespace=namespace,
                                   parameter_overrides=overrides))


def errors(msg: Correspondences, warp: np.ndarray):
    """Distances [px] of the keypoint and of the refined positions to the true ones."""
    reference = np.stack([np.asarray(msg.reference_x), np.asarray(msg.reference_y)], 1)
    truth = reference @ warp[:, :2].T + warp[:, 2]
    keypoint = np.stack([np.asarray(msg.current_x), np.asarray(msg.current_y)], 1)
    refined = np.stack([np.asarray(msg.refined_current_x), np.asarray(msg.refined_current_y)],
                       1)
    return (np.linalg.norm(keypoint - truth, axis=1), np.linalg.norm(refined - truth, axis=1))


@pytest.fixture(scope='module')
def toggled(harness, pair):
    """Send the same pair through one node, refined, then with refine_matches off."""
    image0, image1, warp, f0, f1 = pair
    node = start(harness, 'refine')
    driver = Driver(harness, 'refine')
    assert driver.send(image0, f0).status == Correspondences.STATUS_FIRST_KEYFRAME
    refined = driver.send(image1, f1)
    stats_on = node.stats()
    result = node.set_parameters([Parameter('refine_matches', value=False)])[0]
    assert result.successful, result.reason
    driver.send(image0, f0)  # the pair (rotated copy -> original), not looked at
    plain = driver.send(image1, f1)
    stats = node.stats()
    harness.remove(node)
    return refined, plain, stats_on, stats


def test_refined_points_are_much_closer_to_the_truth(toggled, pair):
    msg = toggled[0]
    assert msg.status == Correspondences.STATUS_OK, msg.status_message
    n = len(msg.current_x)
    assert n > 200, f'only {n} matches on a real frame and its rotated copy'
    assert len(msg.refined_current_x) == len(msg.refined_current_y) == len(msg.refined) == n
    moved = np.asarray(msg.refined, bool)
    keypoint, refined = errors(msg, pair[2])
    correct = keypoint < 3.0  # the matches a refinement can be judged on
    assert correct.mean() > 0.8
    assert moved[correct].mean() > 0.6, f'only {moved[correct].mean():.2f} refined'
    before, after = np.median(keypoint[correct & moved]), np.median(refined[correct & moved])
    print(f'{n} matches, {moved.mean():.2f} refined; median error of the correct ones: '
          f'keypoints {before:.3f} px, refined {after:.3f} px')
    assert after < 0.25 and before > 0.4 and after < before / 2
    # A point not moved is its keypoint position, exactly.
    np.testing.assert_array_equal(np.asarray(msg.refined_current_x)[~moved],
                                  np.asarray(msg.current_x)[~moved])
    # current_x/y stay the keypoint positions (consumers index keypoints by them).
    extractor_points = pair[4].keypoints[np.asarray(msg.current_indices)]
    np.testing.assert_array_equal(np.asarray(msg.current_x), extractor_points[:, 0])


def test_refinement_is_counted_in_stats_and_diagnostics(toggled):
    stats_on = toggled[2]
    assert stats_on['refined_pairs'] == 1 and stats_on.get('refine_failures', 0) == 0
    assert stats_on['refine_candidates'] == len(toggled[0].current_x)
    assert stats_on['refined_points'] == int(np.sum(np.asarray(toggled[0].refined)))
    assert stats_on['refine_time_us'] > 0
    print(f'refinement: {stats_on["refine_time_us"] / 1e3:.1f} ms for '
          f'{stats_on["refine_candidates"]} matches')


def test_refine_matches_off_gives_empty_arrays_and_the_same_matches(toggled):
    refined, plain, _, stats = toggled
    assert plain.status == Correspondences.STATUS_OK, plain.status_message
    assert len(plain.refined_current_x) == len(plain.refined_current_y) == 0
    assert len(plain.refined) == 0
    for name in ('current_indices', 'reference_indices', 'current_x', 'current_y',
                 'reference_x', 'reference_y'):
        np.testing.assert_array_equal(np.asarray(getattr(plain, name)),
                                      np.asarray(getattr(refined, name)), name)
    # The model's output, to float rounding (thread scheduling orders the sums).
    np.testing.assert_allclose(plain.confidence, refined.confidence, atol=1e-4)
    assert stats['refined_pairs'] == 1  # none after it was switched off


def test_verification_uses_the_refined_points(toggled, pair):
    """Same matches, 1-px RANSAC: the refined points make more of the correct ones inliers."""
    refined, plain = toggled[:2]
    keypoint, _ = errors(refined, pair[2])
    correct = keypoint < 3.0
    inl_refined = np.asarray(refined.inlier, bool)
    inl_plain = np.asarray(plain.inlier, bool)
    print(f'inliers among correct matches: {inl_refined[correct].mean():.3f} refined, '
          f'{inl_plain[correct].mean():.3f} keypoints')
    assert inl_refined[correct].mean() >= inl_plain[correct].mean() + 0.05
    assert inl_refined[correct].mean() > 0.9


def test_keypoints_only_input_publishes_empty_refined_arrays(harness, pair):
    _, _, _, f0, f1 = pair
    node = start(harness, 'refine_kponly', image_input='none')
    driver = Driver(harness, 'refine_kponly', images=False)
    driver.send(None, f0)
    msg = driver.send(None, f1)
    stats = node.stats()
    harness.remove(node)
    assert msg.status == Correspondences.STATUS_OK and len(msg.current_x) > 200
    assert len(msg.refined_current_x) == len(msg.refined_current_y) == len(msg.refined) == 0
    assert stats.get('refined_pairs', 0) == 0 and stats.get('refine_failures', 0) == 0


def test_tracks_follow_one_point_from_keyframe_to_keyframe(harness, pair):
    """Keyframe 3 is refined against keyframe 2's refined observations, not its keypoints.

    Keyframes: a real frame, its rotated + shifted copy (warp A) and a second copy (warp B)
    of the frame. Keyframe 2's refined points are the exact images of keyframe 1's keypoints;
    the pair (2, 3) must refine against those (refined_reference_x/y, the earlier messages'
    refined_current_x/y), so keyframe 3's refined points are the images of keyframe 1's
    keypoints too. Refining against keyframe 2's own keypoints instead would shift every
    track by keyframe 2's keypoint rounding, a drift a bundle adjustment cannot undo.
    """
    image0, image1, warp_a, f0, f1 = pair
    warp_b = similarity(-5.0, (-0.21, 0.44), CENTRE)
    image2 = cv2.warpAffine(image0, warp_b, (image0.shape[1], image0.shape[0]),
                            flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    f2 = OrbExtractor(1024)(image2)
    node = start(harness, 'refine_chain')
    driver = Driver(harness, 'refine_chain')
    driver.send(image0, f0)
    first = driver.send(image1, f1)
    second = driver.send(image2, f2)
    harness.remove(node)
    assert first.status == second.status == Correspondences.STATUS_OK
    n = len(second.current_x)
    assert len(second.refined_reference_x) == len(second.refined_reference_y) == n
    # The reference observations are keyframe 2's refined points from the first pair.
    observed = {int(i): (x, y) for i, x, y, moved in zip(
        first.current_indices, first.refined_current_x, first.refined_current_y,
        first.refined) if moved}
    ref_index = np.asarray(second.reference_indices)
    tracked = np.array([int(i) in observed for i in ref_index])
    assert tracked.mean() > 0.5, f'only {tracked.mean():.2f} of the matches continue a track'
    expected = np.array([observed[int(i)] for i in ref_index[tracked]])
    against = np.stack([second.refined_reference_x, second.refined_reference_y], 1)
    np.testing.assert_allclose(against[tracked], expected, atol=1e-4)
    untracked = ~tracked  # never refined in keyframe 2: its keypoint positions
    np.testing.assert_array_equal(np.asarray(second.refined_reference_x)[untracked],
                                  np.asarray(second.reference_x)[untracked])
    # Keyframe 3's refined points are the images of keyframe 1's keypoints: no drift.
    a = np.vstack([warp_a, [0, 0, 1]])
    origin = (against[tracked] - warp_a[:, 2]) @ np.linalg.inv(a[:2, :2]).T
    truth = origin @ warp_b[:, :2].T + warp_b[:, 2]
    refined = np.stack([second.refined_current_x, second.refined_current_y], 1)[tracked]
    moved = np.asarray(second.refined, bool)[tracked]
    err = np.linalg.norm(refined - truth, axis=1)
    good = err < 3.0
    assert moved[good].mean() > 0.6
    print(f'{tracked.sum()} tracked matches; median error against the points of keyframe 1: '
          f'{np.median(err[good & moved]):.3f} px')
    assert np.median(err[good & moved]) < 0.25


def test_window_pairs_and_match_keyframes_are_refined(harness, pair):
    image0, image1, warp, f0, f1 = pair
    node = start(harness, 'refine_window', window_size=2)
    driver = Driver(harness, 'refine_window')
    driver.send(image0, f0)
    driver.send(image1, f1)
    batch = driver.send(image0, f0, answers=2)  # keyframe 3 against 2 (rotated) and 1 (same)
    client = harness.node.create_client(MatchKeyframes,
                                        '/refine_window/superglue_matcher/match_keyframes')
    assert client.wait_for_service(timeout_sec=20.0)
    future = client.call_async(MatchKeyframes.Request(query_keyframe_id=2,
                                                      candidate_keyframe_ids=[1]))
    assert harness.wait_for(future.done, 60.0), 'match_keyframes did not answer'
    stats = node.stats()
    harness.remove(node)
    assert [m.reference_keyframe_id for m in batch] == [2, 1]
    for msg in batch:
        assert msg.status == Correspondences.STATUS_OK and len(msg.current_x) > 200
        assert len(msg.refined_current_x) == len(msg.refined) == len(msg.current_x)
        assert np.mean(np.asarray(msg.refined, bool)) > 0.6
    # Keyframe 3 against its own image (same keypoints): refinement leaves the points in
    # place, to its own accuracy (a keypoint of a coarse pyramid level is not on a pixel of
    # the search grid; the sub-pixel peak of an interpolated template is off by ~0.1 px).
    same = batch[1]
    moved = np.asarray(same.refined, bool)
    shift = np.hypot(np.asarray(same.refined_current_x) - np.asarray(same.current_x),
                     np.asarray(same.refined_current_y) - np.asarray(same.current_y))
    assert np.median(shift[moved]) < 0.15
    # The service's answer for the rotated pair: refined like the stream's.
    loop = future.result().correspondences[0]
    assert loop.status == Correspondences.STATUS_OK and loop.current_keyframe_id == 2
    assert len(loop.refined_current_x) == len(loop.current_x) > 200
    keypoint, refined = errors(loop, warp)
    good = (keypoint < 3.0) & np.asarray(loop.refined, bool)
    assert np.median(refined[good]) < 0.25 < np.median(keypoint[good])
    assert stats['refined_pairs'] == 4 and stats.get('refine_failures', 0) == 0


class BrokenRefiner:
    min_correlation = 0.7

    def __call__(self, *args, **kwargs):
        raise RuntimeError('refinement broke')


def test_a_failing_refinement_publishes_unrefined_and_the_node_goes_on(harness, pair):
    image0, image1, _, f0, f1 = pair
    node = start(harness, 'refine_broken')
    driver = Driver(harness, 'refine_broken')
    healthy = node._refiner
    node._refiner = BrokenRefiner()  # what an unforeseen input would do to the real one
    driver.send(image0, f0)
    broken = driver.send(image1, f1)
    node._refiner = healthy
    after = driver.send(image0, f0)
    stats = node.stats()
    harness.remove(node)
    assert broken.status == Correspondences.STATUS_OK and len(broken.current_x) > 200
    assert broken.verified and len(broken.inlier) == len(broken.current_x)
    assert len(broken.refined_current_x) == len(broken.refined) == 0
    assert stats['refine_failures'] == 1 and stats['refined_pairs'] == 1
    assert after.status == Correspondences.STATUS_OK
    assert len(after.refined_current_x) == len(after.current_x) > 200


def test_refinement_parameters_are_declared_with_ranges(harness):
    node = start(harness, 'refine_params', refine_half_window=5, refine_search_radius=2)
    try:
        for name, read_only in (('refine_matches', False), ('refine_min_correlation', False),
                                ('refine_half_window', True), ('refine_search_radius', True),
                                ('refine_warp', True)):
            descriptor = node.describe_parameter(name)
            assert descriptor.read_only == read_only, name
        assert node.describe_parameter('refine_half_window').integer_range[0].to_value == 32
        assert node.describe_parameter('refine_search_radius').integer_range[0].to_value == 16
        rng = node.describe_parameter('refine_min_correlation').floating_point_range[0]
        assert (rng.from_value, rng.to_value) == (-1.0, 1.0)
        assert (node._refiner.half_window, node._refiner.search_radius) == (5, 2)
        assert not node.set_parameters([Parameter('refine_min_correlation',
                                                  value=1.5)])[0].successful
        assert not node.set_parameters([Parameter('refine_half_window', value=3)])[0].successful
        assert node.set_parameters([Parameter('refine_min_correlation',
                                              value=0.5)])[0].successful
        assert node._refiner.min_correlation == 0.5
        assert node._refiner.warp == 'homography'
    finally:
        harness.remove(node)
    with pytest.raises(ValueError, match="refine_warp must be one of .*got 'affine'"):
        start(harness, 'refine_bad_warp', refine_warp='affine')


# -- the parts, without DDS ------------------------------------------------------------------


def test_build_correspondences_fills_or_leaves_the_refined_arrays():
    header = Header(frame_id='camera_optical')
    points = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    fields = dict(current_index=np.array([0, 1]), reference_index=np.array([1, 0]),
                  current_points=points, reference_points=points[::-1],
                  confidence=np.array([0.9, 0.8], np.float32))
    plain = build_correspondences(header, Correspondences.STATUS_OK, **fields)
    assert len(plain.refined_current_x) == len(plain.refined) == 0
    np.testing.assert_array_equal(matched_current_points(plain), points)
    moved = points + np.array([[0.25, -0.5], [0.0, 0.0]], np.float32)
    msg = build_correspondences(header, Correspondences.STATUS_OK, refined_points=moved,
                                refined=np.array([True, False]), **fields)
    np.testing.assert_array_equal(np.asarray(msg.refined_current_x), moved[:, 0])
    np.testing.assert_array_equal(np.asarray(msg.refined_current_y), moved[:, 1])
    assert list(msg.refined) == [1, 0]
    np.testing.assert_array_equal(np.asarray(msg.current_x), points[:, 0])
    np.testing.assert_array_equal(matched_current_points(msg), moved)
    with pytest.raises(ValueError, match='one entry per match'):
        build_correspondences(header, Correspondences.STATUS_OK, refined_points=moved[:1],
                              refined=np.array([True]), **fields)
    # Refined against: the reference keypoints by default, else the given observations.
    np.testing.assert_array_equal(matched_reference_points(msg), points[::-1])
    np.testing.assert_array_equal(matched_reference_points(plain), points[::-1])
    against = points[::-1] + 0.3
    msg = build_correspondences(header, Correspondences.STATUS_OK, refined_points=moved,
                                refined=np.array([True, False]),
                                refined_reference_points=against, **fields)
    np.testing.assert_allclose(matched_reference_points(msg), against, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(msg.reference_x), points[::-1, 0])
    with pytest.raises(ValueError, match='refined_reference_points'):
        build_correspondences(header, Correspondences.STATUS_OK, refined_points=moved,
                              refined=np.array([True, False]),
                              refined_reference_points=against[:1], **fields)


def test_keyframe_observations_keep_the_newest_reference_refinement():
    """The first recorded refinement (the newest reference's) is the keyframe's observation."""
    kf = keyframe(None, n=4)
    keypoints = np.arange(8, dtype=np.float64).reshape(4, 2)
    kf.prepared.features.keypoints = keypoints.astype(np.float32)
    np.testing.assert_array_equal(kf.observed(np.array([0, 2])), keypoints[[0, 2]])
    kf.record(np.array([2, 1]), np.array([[10.5, 11.5], [20.5, 21.5]]),
              np.array([True, False]))
    kf.record(np.array([2, 3]), np.array([[99.0, 99.0], [30.25, 31.25]]),
              np.array([True, True]))  # an older reference: 2 keeps its first observation
    np.testing.assert_allclose(kf.observed(np.arange(4)),
                               [[0, 1], [2, 3], [10.5, 11.5], [30.25, 31.25]])
    assert kf.nbytes() >= kf.observations.nbytes


def keyframe(image, angles=None, n=3):
    features = Features(np.zeros((n, 2), np.float32), np.ones(n, np.float32),
                        np.zeros((n, 32), np.uint8), 'orb', (640, 480),
                        angle=np.zeros(0, np.float32) if angles is None else angles)

    class Prepared:  # the keyframe's engine-specific form, reduced to what is read here
        pass
    prepared = Prepared()
    prepared.features = features
    gray = None
    if image is not None:
        from superglue_ros.ros.conversions import image_to_gray
        gray = image_to_gray(image)
    return Keyframe(1, stamp(T0), 0, prepared, image, gray=gray)


def test_keyframe_memory_counts_the_gray_copy_once():
    mono = numpy_to_image(np.zeros((480, 640), np.uint8), 'mono8', use_cv_bridge=False)
    colour = numpy_to_image(np.zeros((480, 640, 3), np.uint8), 'bgr8', use_cv_bridge=False)
    base = keyframe(None).nbytes()
    assert keyframe(mono).nbytes() - base == 640 * 480  # the gray image is the message's
    assert keyframe(colour).nbytes() - base == 640 * 480 * 4  # pixels + a gray copy


def test_matched_angles_none_where_not_applicable():
    def angles(kf, index):
        return matched_angles(kf.prepared.features, index)
    assert angles(keyframe(None), np.array([0, 1])) is None  # no angles published
    with_angles = keyframe(None, np.array([10.0, -1.0, 30.0], np.float32))
    np.testing.assert_array_equal(angles(with_angles, np.array([2, 0])), [30.0, 10.0])
    assert angles(with_angles, np.array([0, 1])) is None  # -1: not applicable


def test_verify_takes_the_refined_points_when_given(harness):
    """_verify's input: the refinement's points replace the matched keypoint positions."""
    node = start(harness, 'refine_verify', verify_threshold_px=1.0)
    try:
        rng = np.random.default_rng(0)
        points0 = rng.uniform(20, 600, (60, 2)).astype(np.float32)
        truth = points0 + np.float32([5.0, 0.0])  # a pure x translation: y1 = y0
        noisy = truth + rng.uniform(-3, 3, truth.shape).astype(np.float32)
        result = MatchResult(np.arange(60), np.arange(60), points0, noisy,
                             np.ones(60, np.float32), 0.0)
        ref, cur = keyframe(None), keyframe(None)
        refinement = Refinement(truth, np.ones(60, bool), np.ones(60, np.float32), 0.0)
        exact = node._verify(ref, cur, result, refinement)['inlier']
        raw = node._verify(ref, cur, result)['inlier']
        assert np.mean(exact) > 0.95 > np.mean(raw) + 0.2
    finally:
        harness.remove(node)


def test_replay_pose_errors_use_the_refined_points():
    """superglue-replay's per-pair pose error is computed from refined_current_x/y if given."""
    from superglue_ros.datasets.rgbd import Camera, Trajectory
    from superglue_ros.replay.groundtruth import keyframe_pose_errors
    from superglue_ros.ros.sync import to_time

    camera = Camera(640, 480, 520.0, 520.0, 320.0, 240.0)
    rng = np.random.default_rng(3)
    points = np.c_[rng.uniform(-3, 3, 400), rng.uniform(-2, 2, 400), rng.uniform(3, 8, 400)]
    rotvec, translation = np.array([0.02, -0.05, 0.01]), np.array([0.3, 0.05, 0.05])
    rotation = cv2.Rodrigues(rotvec)[0]
    p0 = points[:, :2] / points[:, 2:] * 520.0 + [320.0, 240.0]
    moved = points @ rotation.T + translation  # X_cur = R X_ref + t
    p1 = moved[:, :2] / moved[:, 2:] * 520.0 + [320.0, 240.0]
    noisy = p1 + rng.uniform(-3, 3, p1.shape)
    # Camera-to-world poses (TUM order x y z qx qy qz qw): the reference at the origin.
    pose_cur = np.linalg.inv(np.vstack([np.c_[rotation, translation], [0, 0, 0, 1]]))
    angle = np.linalg.norm(rotvec)
    axis = -rotvec / angle  # the inverse rotation
    q = np.r_[pose_cur[:3, 3], axis * np.sin(angle / 2), np.cos(angle / 2)]
    identity = np.r_[np.zeros(6), 1.0]
    trajectory = Trajectory(np.array([0.99, 1.0, 1.01, 1.99, 2.0, 2.01]),
                            np.array([identity] * 3 + [q] * 3))
    fields = dict(current=(2, to_time(2.0)), reference=(1, to_time(1.0)),
                  current_index=np.arange(400), reference_index=np.arange(400),
                  current_points=noisy, reference_points=p0,
                  confidence=np.ones(400, np.float32))
    plain = build_correspondences(Header(), Correspondences.STATUS_OK, **fields)
    refined = build_correspondences(Header(), Correspondences.STATUS_OK, refined_points=p1,
                                    refined=np.ones(400, bool), **fields)
    error_plain = keyframe_pose_errors({2_000_000_000: plain}, trajectory, camera)[0]
    error_refined = keyframe_pose_errors({2_000_000_000: refined}, trajectory, camera)[0]
    print(f'pose error: keypoints {error_plain["pose_error"]:.3f} deg, refined '
          f'{error_refined["pose_error"]:.3f} deg')
    assert error_refined['pose_error'] < 0.2
    assert error_refined['pose_error'] < error_plain['pose_error'] / 3
    assert error_refined['essential_inliers'] > 390 > error_plain['essential_inliers']


def test_replay_report_summarises_the_refinement():
    from superglue_ros.replay.report import _refinement_row
    from superglue_ros.ros.stats import refinement_summary

    summary = refinement_summary({'refined_pairs': 4, 'refine_candidates': 1000,
                                  'refined_points': 750, 'refine_time_us': 48000})
    assert summary == {'pairs': 4, 'points': 750, 'share': 0.75, 'ms_per_pair': 12.0,
                       'failures': 0}
    assert '4 pairs, 75 % of the matched points moved, 12.0 ms per pair' in \
        _refinement_row({'refinement': summary})[0]
    assert 'off' in _refinement_row({'refinement': refinement_summary({})})[0]

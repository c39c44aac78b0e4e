# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``run_replay``: check the inputs, play the bag through the nodes, write bag and report.

With ground truth, each matcher mode's correspondences are scored per keyframe pair and,
when asked, fed to the reference back-end for ATE/RPE (``groundtruth``, ``trajectory``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import shutil
import sys
import time
from typing import Any, Dict, Optional, Sequence, Tuple

from . import ReplayError
from .bag import (BagInfo, BagWriter, check_depth, CORRESPONDENCES_TYPE, image_bag_times,
                  inspect_bag, KEYPOINTS_TYPE, read_camera_info, read_camera_info_message,
                  read_depths, read_window_correspondences)
from .groundtruth import (check_coverage, keyframe_pose_errors, load_groundtruth,
                          resolve_camera, summarise)
from .player import play, Recorder
from .report import (plot_pose_errors, plot_window, write_comparison, write_files,
                     write_report)
from .trajectory import (evaluate_trajectory, plot_trajectories, require_backend_dependencies,
                         run_backend)
from ..ros.sync import time_ns
from ..ros.topics import CORRESPONDENCES_TOPIC, KEYPOINTS_TOPIC

OUTPUT_BAG = 'correspondences_bag'


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


def _output_bag(out: Path) -> Path:
    """OUT/correspondences_bag, cleared when it is a bag of an earlier replay."""
    out.mkdir(parents=True, exist_ok=True)
    out_bag = out / OUTPUT_BAG
    staging = out / f'.{OUTPUT_BAG}.staging'  # left behind by a killed replay
    if staging.exists():
        shutil.rmtree(staging)
    if out_bag.exists():
        if not (out_bag / 'metadata.yaml').is_file():
            raise ReplayError(f'{out_bag} exists and is not a bag from an earlier replay')
        shutil.rmtree(out_bag)
    for name in ('report.json', 'report.md'):  # never leave an earlier run's report behind
        (out / name).unlink(missing_ok=True)
    return out_bag


MATCHERS = ('superglue', 'orb_nn')  # values of the matcher node's parameter ``matcher``


def check_window(window: Optional[int]) -> None:
    """``--window`` within the matcher's ``window_size`` range; ReplayError naming the fix."""
    if window is None:
        return
    from ..nodes.matcher_node import PARAMETERS
    low, high = next(p.irange for p in PARAMETERS if p.name == 'window_size')
    if isinstance(window, bool) or not isinstance(window, int) or not low <= window <= high:
        raise ReplayError(f'--window must be an integer from {low} to {high} (the matcher '
                          f'parameter window_size), got {window!r}')


@dataclass
class Evaluation:
    """What the replay measures against, checked before any node starts."""

    camera: Optional[Any] = None  # datasets.rgbd.Camera
    groundtruth: Optional[Path] = None
    trajectory: Optional[Any] = None  # datasets.rgbd.Trajectory
    backend: bool = False
    depths: Optional[Dict[int, Any]] = None  # read once, shared by the matcher modes


def prepare_evaluation(info: BagInfo, groundtruth: Optional[str], camera: Optional[str],
                       backend: bool) -> Evaluation:
    """Check ground truth, intrinsics and depth up front: one-line ReplayError, no report."""
    ev = Evaluation(backend=backend)
    if groundtruth is None and not backend:
        return ev
    if backend:
        if groundtruth is None:
            raise ReplayError('--backend needs --groundtruth FILE (its report is ATE/RPE '
                              'against ground truth)')
        if info.depth_topic is None:
            raise ReplayError(f'--backend needs depth: bag {info.path} has no depth image topic '
                              f'(a sensor_msgs/Image topic named .../depth/...; choose one '
                              f'with --depth-topic)')
        require_backend_dependencies()
        check_depth(info)
    what = 'the ground-truth evaluation' + (' and the back-end' if backend else '')
    ev.camera = resolve_camera(camera, read_camera_info(info), what)
    ev.groundtruth = Path(groundtruth)
    ev.trajectory = load_groundtruth(ev.groundtruth)
    check_coverage(ev.trajectory, image_bag_times(info), ev.groundtruth)
    return ev


def matcher_camera_info(info: BagInfo, camera: Optional[str], give: bool = True
                        ) -> Tuple[Any, str]:
    """Return the CameraInfo the replay gives the matcher node, and a line for the report.

    As deployed, where a camera driver publishes CameraInfo beside the images: the intrinsics
    of ``--camera`` when given, else the bag's own first CameraInfo, unchanged (the node judges
    it as it would the driver's). None without either, or with ``give`` False.
    """
    if not give:
        return None, ('not given (--no-camera-info): matches verified by a fundamental matrix, '
                      'no pose published')
    if camera is not None:
        from ..tools.make_bag import camera_info
        return (camera_info(resolve_camera(camera, None, 'the matcher'), 0.0),
                f'--camera {camera}')
    msg = read_camera_info_message(info)
    if msg is None:
        return None, ('none (the bag has no sensor_msgs/CameraInfo; give --camera): matches '
                      'verified by a fundamental matrix, no pose published')
    return msg, f"the bag's {info.camera_info_topic}"


def evaluate_mode(info: BagInfo, report: Dict[str, Any], ev: Evaluation, out: Path,
                  progress: bool, domain_id: Optional[int] = None, timeout: float = 60.0,
                  ransac_px: float = 1.0) -> None:
    """Add ground-truth pose errors and the back-end's trajectory figures to ``report``."""
    if ev.trajectory is None or report.get('partial'):
        return
    pairs = read_window_correspondences(Path(report['output_bag']), CORRESPONDENCES_TOPIC)
    # The headline (and the back-end) take the pairs with the previous keyframe: all of them
    # with window_size 1.
    messages = {stamp: msg for (stamp, index), msg in pairs.items() if index == 0}
    rows = keyframe_pose_errors(messages, ev.trajectory, ev.camera, ransac_px)
    if report.get('window'):
        for entry in report['window']['by_distance']:
            d = entry['distance']
            at_d = rows if d == 1 else keyframe_pose_errors(
                {stamp: msg for (stamp, index), msg in pairs.items() if index == d - 1},
                ev.trajectory, ev.camera, ransac_px)
            entry['groundtruth'] = summarise(at_d)
    c = ev.camera
    report['groundtruth'] = {
        'file': str(ev.groundtruth), 'ransac_px': ransac_px,
        'camera': f'{c.width}x{c.height} fx {c.fx:.1f} fy {c.fy:.1f} cx {c.cx:.1f} '
                  f'cy {c.cy:.1f} dist {list(c.dist)}',
        **summarise(rows), 'per_keyframe': rows}
    mode = report.get('matcher', 'superglue')
    figures = [plot_pose_errors({mode: report}, out)]
    if report.get('window'):
        plot_window({mode: report}, out)  # again, now with the rotation AUC by distance
    if ev.backend:
        if ev.depths is None:
            ev.depths = {}
        stamps = {s for m in messages.values()
                  for s in (time_ns(m.reference_stamp), time_ns(m.current_stamp))}
        missing = stamps - set(ev.depths)
        if missing:
            ev.depths.update(read_depths(info, missing))
        start = time.perf_counter()
        trajectory, counts = run_backend(messages, ev.depths, ev.camera, progress,
                                         f'back-end ({mode})', domain_id, timeout)
        seconds = time.perf_counter() - start
        report['backend'] = {**evaluate_trajectory(trajectory, ev.groundtruth),
                             'counts': counts, 'seconds': seconds,
                             'keyframes_with_depth': sum(s in ev.depths for s in stamps)}
        figures.append(plot_trajectories({mode: report['backend']}, out))
    report['figures'] = [f for f in figures if f] + report['figures']
    write_files(report, out)


def run_replay(bag, out, rate: Optional[float] = 1.0, weights: Optional[str] = None,
               device: str = 'auto', image_topic: Optional[str] = None,
               keypoints_topic: Optional[str] = None, params_file: Optional[str] = None,
               max_keypoints: int = 0, domain_id: Optional[int] = None,
               storage: str = 'sqlite3', progress: bool = True, timeout: float = 60.0,
               visualisations: int = 3, groundtruth: Optional[str] = None,
               camera: Optional[str] = None, backend: bool = False,
               matcher: str = 'superglue', compare: Sequence[str] = (),
               depth_topic: Optional[str] = None, window: Optional[int] = None,
               camera_info: bool = True) -> Dict[str, Any]:
    """Replay ``bag`` into the nodes; write the output bag and report into ``out``.

    ``rate`` None = as fast as possible with back-pressure. ``max_keypoints`` > 0 overrides
    the parameter of both nodes. ``groundtruth`` (TUM file) adds relative-pose errors per
    keyframe pair, ``backend`` the reference back-end's ATE/RPE (needs depth in the bag).
    ``compare`` replays the bag again with each other matcher mode: one sub-directory per
    mode and a side-by-side report in ``out``. ``window`` K sets the matcher's
    ``window_size`` (None = the parameters file's): every mode matches each keyframe against
    the K newest, and the report adds matches, inlier ratio (and pose AUC) by keyframe
    distance. ``camera_info``: give the matcher the camera's CameraInfo (``--camera``, else
    the bag's) as a driver would, so that it verifies with the essential matrix and publishes
    the pose, which the report scores too. Returns the report dict of ``matcher`` (also
    written as report.json), with ``modes`` holding every mode's report when comparing. An
    interrupted replay (Ctrl-C, SIGTERM) still closes the bag and writes the report, marked
    ``partial``; the output bag survives a killed replay up to its last second.
    """
    modes = [matcher] + [m for m in compare if m != matcher]
    for m in modes:
        if m not in MATCHERS:
            raise ReplayError(f'unknown matcher {m!r}: choose from {", ".join(MATCHERS)}')
    check_window(window)
    info = inspect_bag(bag, image_topic, keypoints_topic, depth_topic)
    ev = prepare_evaluation(info, groundtruth, camera, backend)
    given = matcher_camera_info(info, camera, camera_info)
    out = Path(out)
    if len(modes) == 1:
        return _run_mode(info, out, modes[0], ev, rate, weights, device, params_file,
                         max_keypoints, domain_id, storage, progress, timeout, visualisations,
                         window, given)
    out.mkdir(parents=True, exist_ok=True)
    for name in ('report.json', 'report.md'):  # never leave an earlier run's report behind
        (out / name).unlink(missing_ok=True)
    reports: Dict[str, Dict[str, Any]] = {}
    for m in modes:
        if progress:
            print(f'superglue-replay: matcher {m} ({modes.index(m) + 1} of {len(modes)})',
                  file=sys.stderr)
        reports[m] = _run_mode(info, out / m, m, ev, rate, weights, device, params_file,
                               max_keypoints, domain_id, storage, progress, timeout,
                               visualisations, window, given)
        if reports[m].get('partial'):
            break
    figures = [plot_pose_errors(reports, out), plot_window(reports, out)]
    if ev.backend:
        figures.append(plot_trajectories({m: r.get('backend') for m, r in reports.items()}, out))
    summary = write_comparison(reports, out, [f for f in figures if f])
    result = dict(reports[modes[0]])
    result.update(modes=reports, comparison=summary, comparison_report=str(out / 'report.md'))
    return result


def _run_mode(info: BagInfo, out: Path, matcher: str, ev: Evaluation, rate, weights, device,
              params_file, max_keypoints, domain_id, storage, progress, timeout,
              visualisations, window: Optional[int] = None,
              camera_info: Tuple[Any, str] = (None, 'not given')) -> Dict[str, Any]:
    """One replay of the bag with one matcher mode into ``out``; returns its report.

    ``camera_info``: (CameraInfo or None, where it came from), from ``matcher_camera_info``.
    """
    from ..weights import weights_path, WeightsError  # torch: only once a replay starts
    try:
        weights_file = weights_path(weights)
    except WeightsError as exc:
        raise ReplayError(f'no weights: {exc}') from exc
    params = default_params_file() if params_file is None else Path(params_file)
    if params is not None and not params.is_file():
        raise ReplayError(f'parameters file {params} does not exist')
    if rate is not None and not rate > 0:
        raise ReplayError(f'--rate must be > 0, got {rate}')
    out_bag = _output_bag(out)
    topics = [(CORRESPONDENCES_TOPIC, CORRESPONDENCES_TYPE)]
    if info.keypoints_topic is None:  # record what the front-end makes
        topics.append((KEYPOINTS_TOPIC, KEYPOINTS_TYPE))
    writer = BagWriter(out_bag, storage, topics)
    recorder = Recorder(writer)
    try:
        result = play(info, recorder, rate, weights_file, device, params, max_keypoints,
                      domain_id, progress, timeout, matcher, window, camera_info[0])
    finally:
        writer.close()
    result.update(recorded=dict(writer.counts), recorder_errors=recorder.errors,
                  output_bag=str(out_bag), rate=rate, weights=str(weights_file),
                  params_file=str(params) if params else None,
                  camera_info=camera_info[1] if camera_info[0] is None or
                  result.get('camera_info_taken') else
                  f'{camera_info[1]}: refused by the matcher (see its log)')
    report = write_report(info, recorder.records, result, out,
                          0 if result.get('interrupted') else visualisations)
    evaluate_mode(info, report, ev, out, progress, domain_id, timeout)
    return report

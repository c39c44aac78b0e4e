# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``superglue-replay``: replay a rosbag2 through the real nodes and report on the matches.

The bag's sensor_msgs/Image messages (and superglue_ros_msgs/Keypoints, when it has them) are
published over real DDS to a MatcherNode, and to a FrontendNode when the bag has no keypoints,
running in this process: the same classes, parameters file and topic names as
``ros2 launch superglue_ros superglue.launch.py``. Playback follows the recorded stamps
(``--rate`` factor) or goes as fast as the matcher allows without dropping a keyframe. Every
Correspondences message is recorded into a rosbag2 in the output directory, next to
report.json, report.md and PNG plots (see ``superglue_ros.replay``).

Without a BAG (or with ``--demo``) a bag of the bundled TUM frames is generated in
OUT/demo_bag and replayed as fast as possible, and scored against the frames' bundled reference
poses (SIFT structure from motion, camera fr3) unless ``--groundtruth`` is given.

The camera's CameraInfo (``--camera``, else the bag's) goes to the matcher before the first
frame, as a camera driver publishes it: the matcher verifies with the essential matrix and
publishes the relative pose (``--no-camera-info``: without intrinsics, as before).

Evaluation: ``--groundtruth FILE`` (TUM format) adds the relative-pose error of every keyframe
pair (AUC@5/10/20, rotation AUC, plots; intrinsics from the bag's CameraInfo or ``--camera``)
and of the pose the matcher published,
``--backend`` runs the reference RGB-D bundle-adjustment back-end on the matches and the bag's
depth (ATE/RPE with evo, trajectory plot), and ``--compare orb_nn`` replays the bag again with
classical matching and puts both side by side. ROS 1 ``.bag`` files are read too.

``--window K`` sets the matcher's ``window_size``: each keyframe is matched against the K
newest stored keyframes in one batch, and the report adds pairs, matches, inlier ratio (and
pose AUC with ground truth) by keyframe distance 1..K.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import shutil
import signal
import sys
from typing import Optional, Sequence

from .demo_bag import DATA as DEMO_FRAMES, make_demo_bag
from ..replay import ReplayError, ReplayInterrupted
from ..replay.bag import STORAGES
from ..replay.run import check_window, MATCHERS, run_replay


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='superglue-replay', description=__doc__.split('\n\n')[0],
        epilog='Without BAG (or with --demo) the bundled TUM demo bag is generated in '
               'OUT/demo_bag and replayed as fast as possible.')
    p.add_argument('bag', nargs='?', help='rosbag2 directory, .db3/.mcap file or ROS 1 .bag')
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
    p.add_argument('--window', type=int, default=None, metavar='K',
                   help='match each keyframe against the K newest keyframes (the matcher '
                        "parameter window_size; default: the parameters file's, 1); the "
                        'report adds figures by keyframe distance 1..K')
    p.add_argument('--timeout', type=float, default=60.0,
                   help='seconds to wait for one keyframe before giving up on it')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    e = p.add_argument_group('evaluation')
    e.add_argument('--groundtruth', default=None, metavar='FILE',
                   help='TUM ground truth (timestamp tx ty tz qx qy qz qw, camera-to-world): '
                        'relative-pose error per keyframe pair, AUC, plots')
    e.add_argument('--camera', default=None, metavar='FILE',
                   help='intrinsics YAML (width, height, fx, fy, cx, cy, dist) or fr1|fr2|fr3 '
                        "(default: the bag's CameraInfo)")
    e.add_argument('--no-camera-info', action='store_true',
                   help="don't give the matcher the camera's CameraInfo (given by default, from "
                        '--camera or the bag, as a camera driver would: essential-matrix '
                        'verification and a published pose, scored with --groundtruth)')
    e.add_argument('--backend', action='store_true',
                   help="run the reference RGB-D back-end (GTSAM) on each matcher's output: "
                        'ATE/RPE with evo (needs depth in the bag and --groundtruth)')
    e.add_argument('--depth-topic', default=None,
                   help='depth Image topic (default: the only Image topic named .../depth/...)')
    e.add_argument('--matcher', default='superglue', choices=MATCHERS,
                   help='matcher mode of the node (parameter matcher)')
    e.add_argument('--compare', nargs='+', default=[], choices=MATCHERS, metavar='MATCHER',
                   help='also replay with these matcher modes (e.g. orb_nn): one report, side '
                        'by side')
    return p


def _on_signal(signum, frame) -> None:
    """SIGTERM (and SIGHUP) end the replay as Ctrl-C does: bag closed, partial report."""
    raise ReplayInterrupted(signal.Signals(signum).name)


def _exit_status(exc: KeyboardInterrupt) -> int:
    """128 + the signal number, as a shell reports a process ended by that signal."""
    name = getattr(exc, 'signame', 'SIGINT')
    return 128 + int(getattr(signal, name, signal.SIGINT))


def _summary_line(mode: str, report: dict) -> None:
    lat = report['latency_s']
    line = (f'{mode}: {report["keyframes_in"]} keyframes in, {report["correspondences_out"]} '
            f'correspondences out, {report["dropped_total"]} dropped, '
            f'{sum(report["rejections"].values())} rejected; '
            f'{report["matches_per_keyframe"]:.1f} matches/keyframe, inlier ratio '
            f'{report["inlier_ratio"]:.3f}'
            + (f' ({report["inliers_per_keyframe"]:.1f} inliers/keyframe)'
               if report.get('inliers_per_keyframe') is not None else '')
            + f', latency p50 {lat["p50"] * 1e3:.0f} ms, '
            f'p95 {lat["p95"] * 1e3:.0f} ms')
    window = report.get('window')
    if window:
        line += '; matches by distance ' + '/'.join(
            '-' if row['matches_mean'] is None else f'{row["matches_mean"]:.0f}'
            for row in window['by_distance']) + f' (window {window["size"]})'
    gt, be = report.get('groundtruth'), report.get('backend')
    if gt:
        line += (f'; pose AUC@5/10/20 {gt["pose_auc@5"]:.1f}/{gt["pose_auc@10"]:.1f}/'
                 f'{gt["pose_auc@20"]:.1f}, rotation AUC@5 {gt["rotation_auc@5"]:.1f}')
        if gt.get('node_pairs'):
            line += (f'; published pose AUC@20 {gt["node_pose_auc@20"]:.1f}, rotation AUC@5 '
                     f'{gt["node_rotation_auc@5"]:.1f}')
    if be:
        line += (f'; back-end ATE {be["ate_rmse_m"] * 100:.2f} cm, RPE '
                 f'{be["rpe_trans_rmse_m"] * 100:.2f} cm / {be["rpe_rot_rmse_deg"]:.2f} deg')
    print(line)


def main(argv: Optional[Sequence[str]] = None) -> int:
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    p = _parser()
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
        check_window(args.window)  # before generating a demo bag
        if demo and args.groundtruth is None:
            # The bundled frames come with reference poses (SIFT structure from motion), so
            # the demo scores the relative pose too, on real camera motion.
            args.groundtruth = str(DEMO_FRAMES / 'groundtruth.txt')
            args.camera = args.camera or 'fr3'
            print('superglue-replay: scoring the demo against the bundled reference poses '
                  '(SIFT structure from motion, data/README.md), camera fr3', file=sys.stderr)
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
                            args.domain_id, args.storage, not args.no_progress, args.timeout,
                            groundtruth=args.groundtruth, camera=args.camera,
                            backend=args.backend, matcher=args.matcher, compare=args.compare,
                            depth_topic=args.depth_topic, window=args.window,
                            camera_info=not args.no_camera_info)
    except ReplayError as exc:
        print(f'superglue-replay: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # before the nodes ran, or while the report was written
        print(f'superglue-replay: {getattr(exc, "reason", "interrupted (SIGINT)")}',
              file=sys.stderr)
        return _exit_status(exc)
    for mode, rep in report.get('modes', {report.get('matcher', 'superglue'): report}).items():
        _summary_line(mode, rep)
    print(f'report: {os.path.abspath(out / "report.md")} (and report.json, PNGs, '
          f'{"one folder per matcher" if "modes" in report else report["output_bag"]})')
    if report['partial']:
        print(f'superglue-replay: {report["interrupted"]}: the report is partial, the output '
              f'bag holds everything recorded until then', file=sys.stderr)
        signame = report['interrupted'].partition('(')[2].rstrip(')')
        return 128 + int(getattr(signal, signame, signal.SIGINT)) \
            if signame.startswith('SIG') else 1
    if report['bag_damaged']:
        print(f'superglue-replay: the input bag is damaged: {report["bag_damaged"]}',
              file=sys.stderr)
        return 1
    if report['usable_keyframes'] == 0:
        print(f'superglue-replay: no usable input: {report["frames_published"]} frames, '
              f'{report["keyframes_in"]} keyframes, none accepted by the matcher '
              f'(rejections: {report["rejections"] or "none"}, front-end: '
              f'{report["frontend_counts"]})', file=sys.stderr)
        return 1
    if not report['all_keyframes_accounted']:
        print('superglue-replay: some keyframes were neither answered nor counted as dropped',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

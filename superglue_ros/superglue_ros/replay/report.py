# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The replay's report: figures (report.json), a table (report.md), plots and match pictures.

With a keyframe window (``window_size`` K > 1) a keyframe has up to K pairs. The headline match
figures stay those of the pairs with the previous keyframe (comparable with K = 1), latency is
per keyframe up to its last message, and ``report['window']`` adds the figures by keyframe
distance 1..K; with K = 1 the report is what it always was.
"""

from __future__ import annotations

from collections import Counter
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .bag import BagInfo, read_correspondences, read_images
from .player import Record
from ..ros.stats import refinement_summary
from ..ros.topics import CORRESPONDENCES_TOPIC


def status_names() -> Dict[int, str]:
    """Correspondences.STATUS_* values -> 'ok', 'first_keyframe', ... (from the message)."""
    from superglue_ros_msgs.msg import Correspondences
    return {getattr(Correspondences, name): name[len('STATUS_'):].lower()
            for name in dir(Correspondences) if name.startswith('STATUS_')}


def percentiles(values: Sequence[float]) -> Dict[str, float]:
    """p50/p95/p99/mean/max of ``values`` (all 0.0 when empty)."""
    if not len(values):
        return {'p50': 0.0, 'p95': 0.0, 'p99': 0.0, 'mean': 0.0, 'max': 0.0}
    a = np.asarray(values, np.float64)
    return {'p50': float(np.percentile(a, 50)), 'p95': float(np.percentile(a, 95)),
            'p99': float(np.percentile(a, 99)), 'mean': float(a.mean()), 'max': float(a.max())}


def _ratio(r: Record):
    return r.inliers / r.matches if r.verified and r.matches else None


def _window_size(result: Dict[str, Any]) -> int:
    return int(result.get('window_size', 1))


def build_report(info: BagInfo, records: List[Record], result: Dict[str, Any]) -> Dict[str, Any]:
    """Every figure of the report from the recorded messages and the run's ``result``."""
    names = status_names()
    records = sorted(records, key=lambda r: (r.current_stamp_ns, r.window_index))
    window = _window_size(result)
    ok_pairs = [r for r in records if names.get(r.status) == 'ok']
    # Headline match figures: pairs with the previous keyframe (all pairs when K = 1);
    # latencies: a keyframe is done with its last message (every message when K = 1).
    ok = [r for r in ok_pairs if r.window_index == 0]
    done = [r for r in ok_pairs if r.last_in_batch]
    stats = result['node_stats']
    drops = {
        'queue_full': int(stats.get('dropped_queue_full', 0)),
        'unpaired_keypoints': int(stats.get('sync_dropped_keypoints', 0)),
        'lost_in_transport': max(0, result['keyframes_in']
                                 - result['keypoints_reaching_matcher']),
    }
    ratios = [_ratio(r) for r in ok if _ratio(r) is not None]
    kin, kout = result['keyframes_in'], len(records)
    answered = sum(r.last_in_batch for r in records)  # one per keyframe, whatever K
    report: Dict[str, Any] = {
        'bag': str(info.path), 'storage': info.storage, 'image_topic': info.image_topic,
        'keypoints_topic': info.keypoints_topic,
        'keypoints_from': 'bag' if info.keypoints_topic else 'frontend_node',
        'mode': 'as_fast_as_possible' if result.get('rate') is None
        else f'rate x{result["rate"]}',
        'bag_duration_s': info.duration_ns * 1e-9, 'wall_s': result['wall_s'],
        'frames_read': info.num_images, 'frames_published': result['frames_published'],
        'keyframes_in': kin, 'correspondences_out': kout,
        # Every keyframe sent is answered or counted as dropped by name.
        'unaccounted': kin - answered - sum(drops.values()),
        'all_keyframes_accounted': kin == answered + sum(drops.values()),
        'statuses': dict(Counter(names.get(r.status, str(r.status)) for r in records)),
        'drops': drops, 'dropped_total': sum(drops.values()),
        'rejections': {k[len('rejected_'):]: int(v) for k, v in stats.items()
                       if k.startswith('rejected_') and v},
        'matches_per_keyframe': float(np.mean([r.matches for r in ok])) if ok else 0.0,
        'matches_median': float(np.median([r.matches for r in ok])) if ok else 0.0,
        'inlier_ratio': float(np.mean(ratios)) if ratios else 0.0,
        # What a back-end gets: a matcher keeping more matches at a lower ratio can still
        # hand over more verified ones.
        'inliers_per_keyframe': float(np.mean([r.inliers for r in ok if r.verified]))
        if any(r.verified for r in ok) else None,
        'latency_s': percentiles([r.latency for r in done]),
        'end_to_end_s': percentiles([r.end_to_end for r in done if r.end_to_end is not None]),
        'keyframes_per_s': answered / result['wall_s'] if result['wall_s'] > 0 else 0.0,
        'output_bag': result['output_bag'], 'output_topic': CORRESPONDENCES_TOPIC,
        'refinement': refinement_summary(stats),
    }
    interrupted = result.get('interrupted')
    report['partial'] = interrupted is not None
    report['interrupted'] = interrupted
    report['malformed_in_bag'] = int(result.get('malformed_in_bag', 0))
    read_back = int(result.get('frames_read_back', info.num_images))
    # A complete replay reads every image the bag's index lists; fewer means a damaged file.
    report['bag_damaged'] = (
        None if interrupted is not None or (read_back >= info.num_images
                                            and not report['malformed_in_bag'])
        else f'the bag lists {info.num_images} images, {read_back} could be read back, '
             f'{report["malformed_in_bag"]} messages did not deserialise')
    report['usable_keyframes'] = sum(names.get(r.status) in ('ok', 'first_keyframe')
                                     for r in records)
    for key in ('matcher', 'device', 'weights', 'weights_metadata', 'max_keypoints',
                'match_threshold', 'queue_policy', 'params_file', 'node_stats', 'frontend_counts'):
        report[key] = result[key]
    report['camera_info'] = result.get('camera_info', 'not given')
    report['verification'] = dict(Counter(r.verification for r in records if r.verification))
    report['pairs_with_pose'] = sum(r.pose_valid for r in records)
    report['keyframes'] = [
        {'current_id': r.current_id, 'reference_id': r.reference_id,
         'stamp': r.current_stamp_ns * 1e-9, 'status': names.get(r.status, r.status),
         'matches': r.matches, 'inliers': r.inliers, 'inlier_ratio': _ratio(r),
         'latency_s': r.latency, 'end_to_end_s': r.end_to_end, 'message': r.message,
         # Keyframe distance of a matched pair (None: no pair, e.g. the first keyframe).
         **({'distance': r.distance if names.get(r.status) == 'ok' else None}
            if window > 1 else {})}
        for r in records]
    if window > 1:
        report['window'] = window_figures(ok_pairs, window, answered)
    return report


def window_figures(ok_pairs: List[Record], window: int, answered: int) -> Dict[str, Any]:
    """Pairs, matches and inlier ratio by keyframe distance 1..``window`` (status ok pairs)."""
    per_keyframe = Counter(r.current_stamp_ns for r in ok_pairs)
    rows = []
    for d in range(1, window + 1):
        pairs = [r for r in ok_pairs if r.distance == d]
        ratios = [_ratio(r) for r in pairs if _ratio(r) is not None]
        matches = [r.matches for r in pairs]
        rows.append({'distance': d, 'pairs': len(pairs),
                     'matches_mean': float(np.mean(matches)) if pairs else None,
                     'matches_median': float(np.median(matches)) if pairs else None,
                     'inlier_ratio': float(np.mean(ratios)) if ratios else None,
                     'inliers_mean': float(np.mean([r.inliers for r in pairs]))
                     if pairs else None})
    return {'size': window, 'keyframes_answered': answered, 'pairs': len(ok_pairs),
            'keyframes_with_full_window': sum(n == window for n in per_keyframe.values()),
            'by_distance': rows}


def write_report(info: BagInfo, records: List[Record], result: Dict[str, Any], out: Path,
                 visualisations: int) -> Dict[str, Any]:
    """Build the report, draw its figures into ``out``, write report.json and report.md."""
    report = build_report(info, records, result)
    names = status_names()
    # Per-keyframe plots and pictures: the pairs with the previous keyframe (all when K = 1).
    records = sorted((r for r in records if r.window_index == 0),
                     key=lambda r: r.current_stamp_ns)
    ok = [r for r in records if names.get(r.status) == 'ok']
    report['figures'] = plot_figures(records, out)
    if report.get('window'):
        report['figures'].append(plot_window({report['matcher']: report}, out))
    report['figures'] += match_pictures(info, ok, result['bag_times'],
                                        Path(result['output_bag']), out, visualisations)
    write_files(report, out)
    return report


def write_files(report: Dict[str, Any], out: Path) -> None:
    """report.json and report.md of one matcher mode."""
    (out / 'report.json').write_text(json.dumps(report, indent=2) + '\n')
    (out / 'report.md').write_text(markdown(report))


def plot_figures(records: List[Record], out: Path) -> List[str]:
    """Plot matches and inlier ratio per keyframe, and latencies; returns the file names."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    names = status_names()
    ok = [r for r in records if names.get(r.status) == 'ok']
    fig, ax = plt.subplots(figsize=(9, 4))
    ids = [r.current_id for r in records]
    ax.bar(ids, [r.matches for r in records], color='tab:blue', label='matches')
    for r in records:
        if names.get(r.status) not in ('ok', 'first_keyframe'):
            ax.axvline(r.current_id, color='tab:red', lw=1, ls=':')
    ax.set_xlabel('keyframe id')
    ax.set_ylabel('matches', color='tab:blue')
    twin = ax.twinx()
    pts = [(r.current_id, _ratio(r)) for r in ok if _ratio(r) is not None]
    if pts:
        twin.plot(*zip(*pts), 'o-', color='tab:orange', label='inlier ratio')
    twin.set_ylim(0, 1.05)
    twin.set_ylabel('inlier ratio (RANSAC)', color='tab:orange')
    ax.set_title('Matches and inlier ratio per keyframe (red: rejected / error)')
    fig.tight_layout()
    fig.savefig(out / 'matches_per_keyframe.png', dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    lat = np.array([r.latency for r in ok]) * 1e3
    e2e = np.array([r.end_to_end for r in ok if r.end_to_end is not None]) * 1e3
    if len(lat):
        bins = np.linspace(0, max(lat.max(), e2e.max() if len(e2e) else 0) * 1.05 + 1e-3, 30)
        ax.hist(lat, bins=bins, alpha=0.7, label='node latency')
        if len(e2e):
            ax.hist(e2e, bins=bins, alpha=0.4, label='replay end-to-end')
        for q, ls in ((50, '-'), (95, '--'), (99, ':')):
            v = np.percentile(lat, q)
            ax.axvline(v, color='k', ls=ls, lw=1, label=f'p{q} {v:.0f} ms')
    ax.set_xlabel('latency [ms]')
    ax.set_ylabel('keyframes')
    ax.set_title('Matcher latency (keypoints in -> correspondences out)')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / 'latency_histogram.png', dpi=100)
    plt.close(fig)
    return ['matches_per_keyframe.png', 'latency_histogram.png']


def plot_window(reports: Dict[str, Dict[str, Any]], out: Path,
                name: str = 'matches_by_distance.png') -> Optional[str]:
    """Plot matches, inlier ratio (and rotation AUC@20, with ground truth) by distance."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    modes = [m for m, r in reports.items() if r.get('window')]
    if not modes:
        return None
    with_gt = any('groundtruth' in row for m in modes
                  for row in reports[m]['window']['by_distance'])
    panels = [('matches_mean', 'matches per pair (mean)', (0, None)),
              ('inlier_ratio', 'inlier ratio (mean)', (0, 1.05))]
    if with_gt:
        panels.append(('rotation_auc@20', 'rotation AUC@20 [%]', (0, 100)))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
    for ax, (key, label, ylim) in zip(axes[0], panels):
        for mode in modes:
            rows = reports[mode]['window']['by_distance']
            pts = [(row['distance'], row[key] if key in row
                    else (row.get('groundtruth') or {}).get(key)) for row in rows]
            pts = [(d, v) for d, v in pts if v is not None]
            if pts:
                ax.plot(*zip(*pts), 'o-', label=mode)
        ax.set(xlabel='keyframe distance (1 = previous keyframe)', ylabel=label)
        ax.set_xticks(range(1, max(reports[m]['window']['size'] for m in modes) + 1))
        if ylim:
            ax.set_ylim(*ylim)
        ax.legend(fontsize=8)
    fig.suptitle('By keyframe distance (window_size '
                 f'{reports[modes[0]]["window"]["size"]})')
    fig.tight_layout()
    fig.savefig(out / name, dpi=100)
    plt.close(fig)
    return name


def match_pictures(info: BagInfo, ok: List[Record], bag_times: Dict[int, int],
                   output_bag: Path, out: Path, count: int) -> List[str]:
    """Draw a few keyframe pairs from the bag's images and the recorded coordinates."""
    import cv2

    from ..refinement import matched_current_points, matched_reference_points
    from ..viz import draw_matches

    if not ok or count <= 0:
        return []
    picks = sorted({int(i) for i in np.linspace(0, len(ok) - 1, min(count, len(ok)))})
    chosen = [ok[i] for i in picks]
    # The coordinates live in the output bag; read them back from there.
    matches = read_correspondences(output_bag, CORRESPONDENCES_TOPIC,
                                   [r.current_stamp_ns for r in chosen])
    images = read_images(info, bag_times, [s for r in chosen
                                           for s in (r.current_stamp_ns, r.reference_stamp_ns)])
    names = []
    for r in chosen:
        msg = matches.get(r.current_stamp_ns)
        im0, im1 = images.get(r.reference_stamp_ns), images.get(r.current_stamp_ns)
        if msg is None or im0 is None or im1 is None:
            continue
        p0 = matched_reference_points(msg)  # where verification put them (refined)
        p1 = matched_current_points(msg)
        inlier = np.asarray(msg.inlier, bool) if msg.verified else None
        canvas = draw_matches(im0, im1, p0, p1, np.asarray(msg.confidence), inliers=inlier,
                              text=[f'keyframe {r.reference_id} -> {r.current_id}',
                                    f'{r.matches} matches, {r.inliers} inliers, '
                                    f'{r.latency * 1e3:.0f} ms'])
        name = f'matches_kf{r.reference_id:04d}_kf{r.current_id:04d}.png'
        cv2.imwrite(str(out / name), canvas)
        names.append(name)
    return names


def _listing(counts: Dict[str, int]) -> str:
    return ', '.join(f'{k} {v}' for k, v in counts.items())


def _refinement_row(rep: Dict[str, Any]) -> List[str]:
    r = rep.get('refinement')
    if not r or not (r['pairs'] or r['failures']):
        return ['| sub-pixel refinement | off (no images or refine_matches false) |']
    return [f'| sub-pixel refinement | {r["pairs"]} pairs, {100 * r["share"]:.0f} % of the '
            f'matched points moved, {r["ms_per_pair"]:.1f} ms per pair, {r["failures"]} '
            f'failures |']


def markdown(rep: Dict[str, Any]) -> str:
    """report.md: one table of the headline figures, then the figures."""
    lat, e2e = rep['latency_s'], rep['end_to_end_s']
    kp_topic = f' `{rep["keypoints_topic"]}`' if rep['keypoints_topic'] else ''
    rejections = sum(rep['rejections'].values())
    ms = '{:.1f} / {:.1f} / {:.1f} ms'.format
    lines = ['# superglue-replay report', '']
    if rep.get('partial'):
        lines += [f'**PARTIAL REPORT: the replay was {rep["interrupted"]}** after '
                  f'{rep["frames_published"]} of {rep["frames_read"]} frames; the figures '
                  'cover what was answered until then.', '']
    if rep.get('bag_damaged'):
        lines += [f'**The input bag is damaged:** {rep["bag_damaged"]}.', '']
    lines += [
        f'Bag `{rep["bag"]}` ({rep["storage"]}), images `{rep["image_topic"]}`, keypoints from '
        f'{rep["keypoints_from"]}{kp_topic}'
        f'; replay {rep["mode"]}; matcher {rep.get("matcher", "superglue")}; device '
        f'{rep["device"]}; weights `{rep["weights"]}`; '
        f'max_keypoints {rep["max_keypoints"]}, match_threshold {rep["match_threshold"]:.2f}; '
        f'CameraInfo to the matcher: {rep.get("camera_info", "not given")}.',
        '', '| figure | value |', '|---|---|',
        f'| frames read / published | {rep["frames_read"]} / {rep["frames_published"]} |',
        f'| keyframes in / correspondences out | {rep["keyframes_in"]} / '
        f'{rep["correspondences_out"]} |',
        f'| all keyframes accounted for | {"yes" if rep["all_keyframes_accounted"] else "NO"}'
        f' ({rep["unaccounted"]} unaccounted) |',
        f'| drops | {rep["dropped_total"]} ({_listing(rep["drops"])}) |',
        f'| rejections | {rejections} '
        + (f'({_listing(rep["rejections"])})' if rep['rejections'] else '') + ' |',
        f'| statuses | {_listing(dict(sorted(rep["statuses"].items())))} |',
        f'| matches per keyframe (mean / median) | {rep["matches_per_keyframe"]:.1f} / '
        f'{rep["matches_median"]:.0f} |',
        f'| inlier ratio (mean, RANSAC) | {rep["inlier_ratio"]:.3f} |',
        f'| inliers per keyframe (mean) | {_cell(rep.get("inliers_per_keyframe"))} |',
        f'| verification (pairs) / pairs with a published pose | '
        f'{_listing(rep.get("verification", {})) or "none"} / {rep.get("pairs_with_pose", 0)} |',
        *_refinement_row(rep),
        f'| node latency p50 / p95 / p99 | '
        f'{ms(lat["p50"] * 1e3, lat["p95"] * 1e3, lat["p99"] * 1e3)} |',
        f'| replay end-to-end p50 / p95 / p99 | '
        f'{ms(e2e["p50"] * 1e3, e2e["p95"] * 1e3, e2e["p99"] * 1e3)} |',
        f'| keyframes per second (wall) | {rep["keyframes_per_s"]:.2f} |',
        f'| wall time / bag duration | {rep["wall_s"]:.1f} s / {rep["bag_duration_s"]:.1f} s |',
        '',
        f'Output: `{rep["output_bag"]}` (topic `{rep["output_topic"]}`). Node latency is '
        'keypoints received -> correspondences published, as the node stamps it; end-to-end '
        'is frame published by the replay -> correspondences received (front-end and DDS '
        'included).', '',
    ]
    if rep.get('window'):
        w = rep['window']
        lines += [
            f'Window of {w["size"]} keyframes (parameter window_size): '
            f'{w["keyframes_answered"]} keyframes answered with {rep["correspondences_out"]} '
            f'messages, {w["pairs"]} matched pairs. The match figures in this table and the '
            'ground-truth section are those of the pairs with the previous keyframe (as with '
            'a window of 1), the table by distance has every pair; latencies run to the '
            "keyframe's last message.", '']
    lines += window_markdown({rep.get('matcher', 'superglue'): rep})
    lines += groundtruth_markdown({rep.get('matcher', 'superglue'): rep})
    lines += backend_markdown({rep.get('matcher', 'superglue'): rep})
    lines += [f'![{name}]({name})' for name in rep['figures']]
    return '\n'.join(lines) + '\n'


def window_markdown(reports: Dict[str, Dict[str, Any]]) -> List[str]:
    """Table by keyframe distance 1..K, one row per (matcher,) distance (empty for K = 1)."""
    modes = [m for m, r in reports.items() if r.get('window')]
    if not modes:
        return []
    several = len(reports) > 1
    with_gt = any('groundtruth' in row for m in modes
                  for row in reports[m]['window']['by_distance'])
    head = (['matcher'] if several else []) + [
        'distance', 'pairs', 'matches per pair (mean)', 'inlier ratio (mean)']
    if with_gt:
        head += ['rotation AUC@20 [%]', 'pose AUC@20 [%]', 'pose not estimated']
    size = reports[modes[0]]['window']['size']
    lines = [f'## By keyframe distance (window of {size})', '',
             f'Each keyframe is matched against the {size} newest stored keyframes (one '
             'batched forward pass with the learned matcher, in turn with the classical one); '
             'distance 1 is the previous keyframe. The first keyframes have fewer references: '
             + '; '.join(f'{m + ": " if several else ""}'
                         f'{reports[m]["window"]["keyframes_with_full_window"]} of '
                         f'{reports[m]["window"]["keyframes_answered"]} keyframes with all '
                         f'{size}' for m in modes) + '.', '',
             '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for m in modes:
        for row in reports[m]['window']['by_distance']:
            cells = ([m] if several else []) + [
                str(row['distance']), str(row['pairs']), _cell(row['matches_mean']),
                _cell(row['inlier_ratio'], '{:.3f}')]
            if with_gt:
                gt = row.get('groundtruth') or {}
                cells += [_cell(gt.get('rotation_auc@20')), _cell(gt.get('pose_auc@20')),
                          _cell(gt.get('pairs_failed'), '{:d}')]
            lines.append('| ' + ' | '.join(cells) + ' |')
    return lines + ['']


def _cell(value, fmt: str = '{:.1f}') -> str:
    return '-' if value is None else fmt.format(value)


def groundtruth_markdown(reports: Dict[str, Dict[str, Any]]) -> List[str]:
    """Table of the ground-truth figures, one column per matcher mode (empty without them)."""
    modes = [m for m, r in reports.items() if r.get('groundtruth')]
    if not modes:
        return []
    gts = [reports[m]['groundtruth'] for m in modes]
    rows = [('keyframe pairs with ground truth', 'pairs_with_groundtruth', '{:d}'),
            ('pose not estimated (too few / degenerate matches)', 'pairs_failed', '{:d}')]
    rows += [(f'pose AUC@{t} deg [%]', f'pose_auc@{t}', '{:.1f}') for t in (5, 10, 20)]
    rows += [(f'rotation AUC@{t} deg [%]', f'rotation_auc@{t}', '{:.1f}') for t in (5, 10, 20)]
    rows += [('median rotation error [deg]', 'rotation_error_median', '{:.2f}'),
             ('median pose error [deg]', 'pose_error_median', '{:.2f}')]
    node = any(g.get('node_pairs') for g in gts)
    if node:  # the matcher had intrinsics: the pose it published, as a consumer reads it
        rows += [("matcher's published pose: pairs / without a pose", None, None)]
        rows += [(f"matcher's published pose AUC@{t} deg [%]", f'node_pose_auc@{t}', '{:.1f}')
                 for t in (5, 10, 20)]
        rows += [(f"matcher's published rotation AUC@{t} deg [%]", f'node_rotation_auc@{t}',
                  '{:.1f}') for t in (5, 10, 20)]
        rows += [("matcher's published parallax, median [deg]", 'node_parallax_median_deg',
                  '{:.2f}')]
    lines = ['## Relative pose against ground truth', '',
             f'Ground truth `{gts[0]["file"]}`; camera {gts[0]["camera"]}. Per keyframe pair, '
             'the relative pose from the published correspondences alone (RANSAC essential '
             f'matrix on undistorted points, {gts[0]["ransac_px"]} px), against the ground-'
             'truth relative pose. Pose error = max(rotation, translation direction) error; '
             'translation direction is ill-defined when the camera barely translates, the '
             'rotation AUC is not.' + (
                 " The matcher's published pose (it had the camera's CameraInfo) is scored "
                 'too: the RANSAC essential matrix it ran on its own (refined) matches; a '
                 'pair without a valid pose counts as a failure.' if node else ''), '',
             '| figure | ' + ' | '.join(modes) + ' |', '|---|' + '---|' * len(modes)]
    for label, key, fmt in rows:
        if key is None:
            cells = [f'{g["node_pairs"]} / {g["node_pairs_failed"]}' if g.get('node_pairs')
                     else '-' for g in gts]
        else:
            cells = [_cell(g.get(key), fmt) for g in gts]
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    return lines + ['']


def backend_markdown(reports: Dict[str, Dict[str, Any]]) -> List[str]:
    """Table of the reference back-end's trajectory figures, one column per matcher mode."""
    modes = [m for m, r in reports.items() if r.get('backend')]
    if not modes:
        return []
    bes = [reports[m]['backend'] for m in modes]
    rows = [('keyframes (associated with ground truth)', None, None),
            ('ATE RMSE [cm]', 'ate_rmse_m', 100.0), ('ATE median [cm]', 'ate_median_m', 100.0),
            ('ATE max [cm]', 'ate_max_m', 100.0),
            ('RPE translation RMSE per keyframe [cm]', 'rpe_trans_rmse_m', 100.0),
            ('RPE rotation RMSE per keyframe [deg]', 'rpe_rot_rmse_deg', 1.0),
            ('back-end time [s]', 'seconds', 1.0)]
    lines = ['## Trajectory: reference back-end (an example consumer, not the product)', '',
             "Each matcher's recorded correspondences and the bag's depth go through the same "
             'reference RGB-D sliding-window bundle adjustment (GTSAM; superglue_ros.backend). '
             'ATE after SE(3) alignment (no scale) and RPE between consecutive keyframes, '
             'both from evo, against the ground truth.', '',
             '| figure | ' + ' | '.join(modes) + ' |', '|---|' + '---|' * len(modes)]
    for label, key, scale in rows:
        if key is None:
            cells = [f'{b["keyframes"]} ({b["associated"]})' for b in bes]
        else:
            cells = [_cell(b.get(key) * scale if b.get(key) is not None else None, '{:.2f}')
                     for b in bes]
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    counts = '; '.join(f'{m}: {_listing(b["counts"])}' for m, b in zip(modes, bes))
    return lines + ['', f'Back-end counts: {counts}.', '']


def plot_pose_errors(reports: Dict[str, Dict[str, Any]], out: Path,
                     name: str = 'pose_error_per_keyframe.png') -> Optional[str]:
    """Rotation and translation-direction error per keyframe, and the cumulative pose error."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    modes = [m for m, r in reports.items() if r.get('groundtruth')]
    if not modes:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for mode in modes:
        rows = [r for r in reports[mode]['groundtruth']['per_keyframe']
                if r['pose_error'] is not None]
        ids = [r['current_id'] for r in rows]
        cap = 90.0  # failed estimates (inf) drawn at the top
        axes[0].plot(ids, [min(r['rotation_error'], cap) for r in rows], '.-', ms=3, lw=0.8,
                     label=mode)
        axes[1].plot(ids, [min(r['translation_error'], cap) for r in rows], '.-', ms=3,
                     lw=0.8, label=mode)
        err = np.sort([r['pose_error'] for r in rows])
        axes[2].plot(np.concatenate([[0], err]), np.arange(len(err) + 1) / max(len(err), 1),
                     label=mode)
    axes[0].set(xlabel='keyframe id', ylabel='rotation error [deg]', yscale='log',
                title='Rotation error per keyframe pair (no pose: 90)')
    axes[1].set(xlabel='keyframe id', ylabel='translation direction error [deg]',
                title='Translation direction error (no pose: 90)')
    axes[2].set(xlabel='pose error [deg]', ylabel='share of pairs', xlim=(0, 20), ylim=(0, 1),
                title='Cumulative pose error (AUC up to 5/10/20 deg)')
    for th in (5, 10, 20):
        axes[2].axvline(th, color='0.7', lw=0.8, ls=':')
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / name, dpi=100)
    plt.close(fig)
    return name


def paired_differences(reports: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Rotation AUC@5 of the first mode minus each other mode on the same keyframe pairs.

    With a 95 % paired bootstrap interval (``evaluation.motion.paired_auc_difference``), for
    the pose re-estimated from the published points and for the pose the matcher published.
    Every mode saw the same front-end keyframes, so the pairs are the same.
    """
    from ..evaluation.motion import paired_auc_difference

    def rows(report: Dict[str, Any], key: str) -> List[Dict[str, Any]]:
        out = []
        for r in report.get('groundtruth', {}).get('per_keyframe', []):
            if r.get(key) is not None:
                out.append({'pair': (r['reference_id'], r['current_id']), key: r[key]})
        return out

    modes = list(reports)
    result: Dict[str, Dict[str, Any]] = {}
    for other in modes[1:]:
        result[other] = {}
        for label, key in (('re-estimated', 'rotation_error'),
                           ('published', 'node_rotation_error')):
            a, b = rows(reports[modes[0]], key), rows(reports[other], key)
            if a and b:
                result[other][label] = paired_auc_difference(a, b, key, threshold=5.0)
    return result


def comparison_markdown(reports: Dict[str, Dict[str, Any]], figures: List[str],
                        differences: Dict[str, Dict[str, Any]]) -> str:
    """report.md of a --compare run: the matcher modes side by side.

    ``differences``: ``paired_differences(reports)``, computed once by ``write_comparison``.
    """
    modes = list(reports)
    first = reports[modes[0]]
    lines = ['# superglue-replay report: matchers side by side', '',
             f'Bag `{first["bag"]}` ({first["storage"]}), images `{first["image_topic"]}`, '
             f'keypoints from {first["keypoints_from"]}; replay {first["mode"]}; the same '
             'front-end, node, messages and verification for every matcher (parameter '
             '`matcher`). CameraInfo to the matcher: '
             f'{first.get("camera_info", "not given")}. Full report and output bag per '
             'matcher: ' + ', '.join(f'[{m}]({m}/report.md)' for m in modes) + '.', '']
    if any(r.get('partial') for r in reports.values()):
        lines += ["**PARTIAL: a replay was interrupted; see the matchers' reports.**", '']
    rows = [('keyframes in / correspondences out',
             lambda r: f'{r["keyframes_in"]} / {r["correspondences_out"]}'),
            ('all keyframes accounted for',
             lambda r: 'yes' if r['all_keyframes_accounted'] else 'NO'),
            ('matches per keyframe (mean)', lambda r: f'{r["matches_per_keyframe"]:.1f}'),
            ('inlier ratio (RANSAC)', lambda r: f'{r["inlier_ratio"]:.3f}'),
            ('inliers per keyframe (mean)', lambda r: _cell(r.get('inliers_per_keyframe'))),
            ('verification (pairs) / pairs with a published pose',
             lambda r: f'{_listing(r.get("verification", {})) or "none"} / '
                       f'{r.get("pairs_with_pose", 0)}'),
            ('node latency p50 / p95 [ms]', lambda r: f'{r["latency_s"]["p50"] * 1e3:.0f} / '
                                                      f'{r["latency_s"]["p95"] * 1e3:.0f}'),
            ('replay wall time [s]', lambda r: f'{r["wall_s"]:.1f}')]
    lines += ['## Matching', '', '| figure | ' + ' | '.join(modes) + ' |',
              '|---|' + '---|' * len(modes)]
    lines += [f'| {label} | ' + ' | '.join(fn(reports[m]) for m in modes) + ' |'
              for label, fn in rows]
    lines += ['']
    lines += window_markdown(reports)
    lines += groundtruth_markdown(reports)
    if any(differences.values()):
        lines += [f'Rotation AUC@5 of {modes[0]} minus the other matcher on the same keyframe '
                  'pairs, with a 95 % paired bootstrap interval over the pairs (an interval '
                  'containing 0: these pairs cannot tell them apart):', '']
        for other, by_pose in differences.items():
            for label, d in by_pose.items():
                lines.append(f'- vs {other}, {label} pose: {d["difference"]:+.1f} '
                             f'[{d["low"]:+.1f}, {d["high"]:+.1f}] ({d["pairs"]} pairs)')
        lines += ['']
    lines += backend_markdown(reports)
    lines += [f'![{name}]({name})' for name in figures]
    return '\n'.join(lines) + '\n'


def write_comparison(reports: Dict[str, Dict[str, Any]], out: Path,
                     figures: List[str]) -> Dict[str, Any]:
    """report.json / report.md of a --compare run into ``out``; returns the summary."""
    differences = paired_differences(reports)
    summary = {'matchers': list(reports), 'figures': figures,
               'reports': {m: f'{m}/report.json' for m in reports},
               'rotation_auc5_differences': differences}
    for m, r in reports.items():
        summary[m] = {k: r.get(k) for k in (
            'keyframes_in', 'correspondences_out', 'all_keyframes_accounted',
            'matches_per_keyframe', 'inlier_ratio', 'inliers_per_keyframe', 'latency_s',
            'wall_s', 'partial',
            'camera_info', 'verification', 'pairs_with_pose')}
        if r.get('groundtruth'):
            summary[m]['groundtruth'] = {k: v for k, v in r['groundtruth'].items()
                                         if k != 'per_keyframe'}
        if r.get('window'):
            summary[m]['window'] = r['window']
        if r.get('backend'):
            summary[m]['backend'] = {k: v for k, v in r['backend'].items()
                                     if not k.endswith('_xyz')}
    (out / 'report.json').write_text(json.dumps(summary, indent=2) + '\n')
    (out / 'report.md').write_text(comparison_markdown(reports, figures, differences))
    return summary

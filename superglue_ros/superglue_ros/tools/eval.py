# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``superglue-eval``: our matcher against classical ORB matching, measured in one run.

Usage: ``superglue-eval tum FOLDER`` (real camera motion with RGB-D ground truth),
``superglue-eval pairs PAIRS --images DIR`` (relative pose),
``superglue-eval homography [--images DIR ...] [--graf DIR]``,
``superglue-eval verification FOLDER`` (RANSAC / USAC verification of real matches) or
``superglue-eval reference-poses IMAGES FOLDER --camera CAM`` (poses for a sequence without
ground truth, by SIFT structure from motion, for ``tum``);
``--out FILE`` writes JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import platform
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..evaluation import baselines
from ..features import DEFAULT_DISTRIBUTION, OrbExtractor
from ..weights import default_weights_path, WeightsError

SHARED_DATA = Path(__file__).resolve().parents[3].parent / 'shared' / 'data'


def table(results: Dict[str, Dict], columns: Sequence[str], title: str) -> str:
    """Fixed-width text table, one row per method."""
    width = max(len(k) for k in results) + 2
    cw = [max(17, len(c) + 2) for c in columns]  # long names stay apart
    head = f'{"method":<{width}}' + ''.join(f'{c:>{w}}' for c, w in zip(columns, cw))
    lines = [title, head, '-' * len(head)]
    for name, row in results.items():
        cells = []
        for c, w in zip(columns, cw):
            v = row.get(c, float('nan'))
            pct = c.startswith(('auc', 'rot_auc', 'precision', 'recall', 'matching_score',
                                'epipolar', 'depth'))
            if v is None or v != v:  # not measured (e.g. depth figures without depth)
                cells.append(f'{"-":>{w}}')
                continue
            cells.append(f'{100 * v:>{w - 1}.1f}%' if pct else
                         f'{v:>{w}.2f}' if c.endswith('_px') else f'{v:>{w}.1f}')
        lines.append(f'{name:<{width}}' + ''.join(cells))
    return '\n'.join(lines)


def _engine(weights: Optional[str], device: str):
    from ..engine import MatchingEngine
    path = Path(weights) if weights else default_weights_path()
    return MatchingEngine.from_weights(path, device=device)


def _engines(args: argparse.Namespace) -> Dict[str, object]:
    """Our weights as 'superglue_orb', plus every --compare-weights NAME=PATH."""
    engines = {'superglue_orb': _engine(args.weights, args.device)}
    for spec in args.compare_weights:
        name, _, path = spec.partition('=')
        if not path:
            raise ValueError(f'--compare-weights expects NAME=PATH, got {spec!r}')
        engines[name] = _engine(path, args.device)
    return engines


def machine() -> Dict[str, str]:
    """Describe where the figures were measured."""
    return {'platform': platform.platform(), 'processor': platform.processor(),
            'python': platform.python_version(), 'torch': torch.__version__,
            'threads': str(torch.get_num_threads())}


def cmd_pairs(args: argparse.Namespace) -> Dict:
    from ..evaluation.pose import evaluate, parse_pairs
    pairs = parse_pairs(Path(args.pairs))
    if args.max_pairs:
        pairs = pairs[:args.max_pairs]
    engines = _engines(args)
    res = evaluate(pairs, Path(args.images),
                   baselines.methods(engines.pop('superglue_orb'), args.refine, engines),
                   args.max_keypoints)
    print(table(res, ['auc@5', 'auc@10', 'auc@20', 'precision', 'matching_score',
                      'matches_per_pair', 'ms_per_pair'],
                f'Relative pose on {len(pairs)} pairs ({args.pairs}), ORB {args.max_keypoints}'))
    return {'task': 'pairs', 'pairs_file': str(args.pairs), 'keypoints': args.max_keypoints,
            'results': res}


TUM_COLUMNS = ['auc@5', 'auc@10', 'auc@20', 'rot_auc@20', 'epipolar_precision',
               'depth_precision', 'depth_recall', 'median_error_px', 'matches_per_pair',
               'correct_per_pair', 'ms_per_pair']
BASELINE_BINS = (0.1, 0.2, 0.35)  # rendered views: camera translation / median scene depth


def baseline_bins(widest: float) -> Tuple[float, ...]:
    """Return the bins of the rendered views' baselines, up to ``widest``.

    BASELINE_BINS, then steps of about 0.15 when views are drawn wider than training's range.
    """
    if widest <= BASELINE_BINS[-1]:
        return BASELINE_BINS
    steps = int(np.ceil((widest - BASELINE_BINS[-1]) / 0.15))
    return BASELINE_BINS + tuple(float(round(BASELINE_BINS[-1] + (widest - BASELINE_BINS[-1])
                                             * (k + 1) / steps, 3)) for k in range(steps))


def cmd_tum(args: argparse.Namespace) -> Dict:
    """Real motion: pose / rotation AUC, epipolar and depth precision, depth recall."""
    from ..datasets.rgbd import load_camera, split_by_time, TumSequence
    from ..evaluation import motion
    low, high = args.rendered_baseline
    if not 0.0 <= low < high <= 2.0:
        raise ValueError(f'--rendered-baseline MIN MAX: need 0 <= MIN < MAX <= 2 (camera '
                         f'translation / median scene depth), got {low:g} {high:g}')
    seq = TumSequence(args.folder, load_camera(args.camera))
    if not seq.has_depth:
        if args.rendered_views:
            raise ValueError(f'--rendered-views needs depth: {args.folder} has no depth.txt '
                             f'(or none of its depth images matches a colour frame)')
        print(f'{args.folder}: no depth (depth.txt), so pose, rotation and epipolar figures '
              f'only: depth-verified precision and recall are "-", and pairs are chosen by '
              f'the overlap the rotation leaves (--min-covisibility)')
    frames = np.arange(len(seq))
    if args.split == 'val':
        frames = split_by_time(seq.stamps)[1]
    elif args.split == 'train':
        frames = split_by_time(seq.stamps)[0]
    chosen = motion.select_pairs(seq, frames, args.gaps, args.stride,
                                 min_covisibility=args.min_covisibility)
    if not chosen:
        raise ValueError(f'no frame pairs at gaps {args.gaps} s in {args.folder} '
                         f'({args.split} split, covisibility >= {args.min_covisibility})')
    engines = _engines(args)
    check: Dict[str, Dict] = {}
    results = _motion_results(args, engines, lambda ext: motion.make_pairs(seq, chosen, ext),
                              inspect_pairs=lambda pairs: check.update(
                                  motion.ground_truth_check(seq, pairs)))
    rendered = {}
    bins = baseline_bins(high)
    if args.rendered_views:
        views = motion.render_views(seq, frames[::args.stride], args.rendered_views,
                                    baseline=tuple(args.rendered_baseline))
        if not views:
            raise ValueError(f'no view could be rendered at baselines {args.rendered_baseline} '
                             f'(each must still see half the frame): try a narrower '
                             f'--rendered-baseline')
        rendered = {'pairs': len(views), 'baseline_range': list(args.rendered_baseline),
                    'baseline_bins': list(bins),
                    'results': _motion_results(args, engines, lambda ext: motion.
                                               make_rendered_pairs(views, ext, bins), bins)}
    print(_motion_tables(results, f'Real motion, {seq.root.name} ({args.split} split): '
                                  f'{len(chosen)} pairs at gaps {args.gaps} s, '
                                  f'{args.max_keypoints} keypoints',
                         args.gaps, '  gap {:g} s'))
    print(_paired_table(results))
    if check:
        print(_ground_truth_table(check))
    if rendered:
        print(_motion_tables(rendered['results'],
                             f'\nRendered views (parallax, exact ground truth) of the same '
                             f'{args.split} frames: {rendered["pairs"]} pairs, baseline '
                             f'{args.rendered_baseline[0]:g}-{args.rendered_baseline[1]:g} x '
                             f'scene depth', bins, '  baseline <= {:g} x depth'))
        print(_paired_table(rendered['results']))
    return {'task': 'tum', 'folder': str(args.folder), 'split': args.split,
            'gaps': args.gaps, 'keypoints': args.max_keypoints, 'pairs': len(chosen),
            'results': results, 'ground_truth_check': check,
            **({'rendered_views': rendered} if rendered else {})}


def _image_sequence(source: Path) -> Tuple[List[float], List[Path]]:
    """Read the stamps and image paths of a TUM folder (rgb.txt) or of a folder of images.

    A folder of images is taken in name order; names that are numbers (TUM style) are the
    stamps in seconds, otherwise the frame index is (gaps then count frames).
    """
    from ..datasets.rgbd import read_stamped_list
    if (source / 'rgb.txt').is_file():
        stamps, names = read_stamped_list(source / 'rgb.txt')
        return list(stamps), [(source / n.split()[0]).resolve() for n in names]
    files = sorted(f.resolve() for f in source.iterdir()
                   if f.suffix.lower() in ('.png', '.jpg', '.jpeg', '.bmp', '.ppm', '.pgm'))
    if not files:
        raise ValueError(f'{source}: no rgb.txt and no images (.png, .jpg, ...)')
    try:
        stamps = [float(f.stem) for f in files]
    except ValueError:
        print(f'{source}: image names are not timestamps; frame k gets stamp k s, so '
              f'`superglue-eval tum --gaps` count frames')
        stamps = [float(k) for k in range(len(files))]
    return stamps, files


def cmd_reference_poses(args: argparse.Namespace) -> Dict:
    """Build reference poses by SIFT structure from motion; write them as a TUM folder."""
    import cv2
    from ..datasets.rgbd import load_camera
    from ..evaluation.reference_poses import reference_poses, write_tum_folder
    stamps, files = _image_sequence(Path(args.images))
    images = []
    for f in files:
        image = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ValueError(f'{f}: not a readable image')
        images.append(image)
    ref = reference_poses(images, load_camera(args.camera), max_gap=args.max_gap,
                          max_features=args.max_features)
    folder = write_tum_folder(Path(args.folder), stamps, files, ref.poses)
    info = ref.summary()
    print(f'{info["registered"]} of {info["frames"]} frames registered, {info["points"]} '
          f'points, {info["observations"]} observations; reprojection error after bundle '
          f'adjustment: median {info["median_px"]:.2f} px, 90 % {info["p90_px"]:.2f} px, '
          f'{info["within_1px"]:.1f} % within 1 px')
    lost = [k for k, p in enumerate(ref.poses) if p is None]
    if lost:
        # Runs of consecutive frames, so a long sequence prints a few lines, not hundreds.
        runs = [[lost[0], lost[0]]]
        for k in lost[1:]:
            if k == runs[-1][1] + 1:
                runs[-1][1] = k
            else:
                runs.append([k, k])
        spans = [files[a].name if a == b else f'{files[a].name} .. {files[b].name} ({b - a + 1})'
                 for a, b in runs]
        print(f'{len(lost)} frames not registered (left out of groundtruth.txt; too little '
              f'parallax to triangulate, as under pure rotation, or no verified matches): '
              f'{", ".join(spans)}')
    print(f'wrote {folder}/rgb.txt and groundtruth.txt: score matchers with '
          f'`superglue-eval tum {folder} --camera {args.camera} --gaps ...`. The poses come '
          f'from SIFT matches, so the SIFT baseline is favoured against them; the ORB '
          f'matchers are not.')
    return {'task': 'reference-poses', 'images': str(args.images), 'folder': str(folder),
            'camera': args.camera, 'max_gap': args.max_gap, **info}


def _ground_truth_table(check: Dict[str, Dict]) -> str:
    """Format the ground-truth check (``motion.ground_truth_check``), a row per gap."""
    lines = ['\nGround-truth check: SIFT matches that pass an essential-matrix RANSAC, moved '
             'into image 1 by depth and pose (median distance; share within 3 px, a lower '
             'bound)',
             f'{"gap [s]":>8}  {"motion capture":>22}  {"labels (refined pose)":>22}  '
             f'{"points":>7}  {"rotation apart":>14}']
    for gap, row in check.items():
        if 'labels' not in row:  # no SIFT matches survived on this gap's pairs
            continue
        cells = [f'{row[k]["median_px"]:6.2f} px {row[k]["within_radius"]:5.1f} %'
                 for k in ('mocap', 'labels')]
        lines.append(f'{gap:>8}  {cells[0]:>22}  {cells[1]:>22}  {row["labels"]["points"]:>7}  '
                     f'{row["rotation_difference_deg"]:>12.2f} deg')
    lines.append('Pose AUCs are measured against the motion capture: rotation errors below '
                 '"rotation apart" are within its own error.')
    return '\n'.join(lines)


def _motion_results(args: argparse.Namespace, engines: Dict, make_pairs,
                    groups: Optional[Sequence[float]] = None,
                    inspect_pairs=None) -> Dict[str, Dict]:
    """Every matcher on the pairs ``make_pairs(extractor)`` builds, per ORB distribution.

    ``groups``: the pairs' ``gap`` values to summarise apart (default: those present).
    ``inspect_pairs``: called once with the first distribution's pairs.
    """
    from ..classical import nn_ratio
    from ..evaluation import motion
    from ..features import SiftExtractor
    results: Dict[str, Dict] = {}
    for dist in args.distributions:
        pairs = make_pairs(OrbExtractor(args.max_keypoints, distribution=dist))
        if inspect_pairs is not None and dist == args.distributions[0]:
            inspect_pairs(pairs)
        others = {name: e for name, e in engines.items() if name != 'superglue_orb'}
        matchers = baselines.methods(engines['superglue_orb'], args.refine, others)
        tag = f' [{dist}]' if len(args.distributions) > 1 else ''
        for name, res in motion.evaluate(pairs, matchers, gaps=groups).items():
            results[name + tag] = res
    if args.sift:
        pairs = make_pairs(SiftExtractor(args.max_keypoints))
        results.update(motion.evaluate(pairs, {'sift_nn_ratio0.8': nn_ratio}, gaps=groups))
    _add_paired_differences(results)
    return results


def _add_paired_differences(results: Dict[str, Dict], ours: str = 'superglue_orb') -> None:
    """Add ``vs_ours`` to each other method: paired bootstrap AUC@20 differences to ours.

    Each method is compared with ours on the same front-end (the same ``[distribution]``
    tag), SIFT with ours on the first one.
    """
    from ..evaluation.motion import paired_auc_difference
    mine = [k for k in results if k == ours or k.startswith(f'{ours} [')]
    for name, res in results.items():
        if not mine or name in mine:
            continue
        tag = name[name.index(' ['):] if ' [' in name else ''
        base = results[ours + tag if ours + tag in results else mine[0]]
        res['vs_ours'] = {label: paired_auc_difference(base['per_pair'], res['per_pair'], key)
                          for label, key in (('pose', 'pose_error'),
                                             ('rotation', 'rotation_error'))}


def _paired_table(results: Dict[str, Dict], ours: str = 'superglue_orb') -> str:
    """Format the ``vs_ours`` differences (empty without them)."""
    rows = {name: res['vs_ours'] for name, res in results.items() if 'vs_ours' in res}
    if not rows:
        return ''
    lines = [f'\nAUC@20 of {ours} minus each method on the same pairs, with a 95 % paired '
             f'bootstrap interval over the pairs (how far the choice of pairs alone moves it):',
             f'{"method":<34}{"pose AUC@20":>28}{"rotation AUC@20":>28}']
    for name, vs in rows.items():
        cells = [f'{d["difference"]:+.1f} [{d["low"]:+.1f}, {d["high"]:+.1f}]'
                 for d in vs.values()]
        lines.append(f'{name:<34}' + ''.join(f'{c:>28}' for c in cells))
    return '\n'.join(lines)


def _motion_tables(results: Dict[str, Dict], title: str, groups: Sequence[float],
                   group_title: str) -> str:
    """Format the summary table, then one per group of pairs (percentages as such)."""
    def scaled(row: Dict, cols: Sequence[str]) -> Dict:
        return {c: (row[c] / 100 if c[0] in 'aerd' else row[c]) for c in cols}

    text = table({k: scaled(v, TUM_COLUMNS) for k, v in results.items()}, TUM_COLUMNS, title)
    for g in groups:
        rows = {k: scaled(v['by_gap'][f'{g:g}'], TUM_COLUMNS[:-1])
                for k, v in results.items() if f'{g:g}' in v['by_gap']}
        if rows:
            text += '\n' + table(rows, TUM_COLUMNS[:-1], '\n' + group_title.format(g))
    return text


def cmd_verification(args: argparse.Namespace) -> Dict:
    """Verification estimators (node's RANSAC and USAC presets) on our real TUM matches."""
    if args.compare_weights:
        raise ValueError('--compare-weights does not apply to verification (it compares '
                         "estimators on one matcher's matches): drop it, or use --weights")
    from ..datasets.rgbd import load_camera, TumSequence
    from ..evaluation import motion, verification
    seq = TumSequence(args.folder, load_camera(args.camera))
    chosen = motion.select_pairs(seq, np.arange(len(seq)), args.gaps, args.stride,
                                 min_covisibility=args.min_covisibility)
    if args.max_pairs:
        chosen = chosen[:args.max_pairs]
    if not chosen:
        raise ValueError(f'no frame pairs at gaps {args.gaps} s in {args.folder}')
    engine = _engine(args.weights, args.device)
    pairs = motion.make_pairs(seq, chosen, OrbExtractor(args.max_keypoints))
    matched = []
    for pair in pairs:
        r = engine.match(pair.features0, pair.features1)
        matched.append(verification.MatchedPair(pair, np.asarray(r.index0, int),
                                                np.asarray(r.index1, int)))
    res = verification.measure(matched, verification.candidates(), args.threshold_px,
                               args.repeats)
    floor = verification.unverified(matched)
    print(f'Verification on {len(matched)} real pairs of {seq.root.name} (gaps {args.gaps} s, '
          f'{args.max_keypoints} keypoints, threshold {args.threshold_px} px, '
          f'{args.repeats} timed calls per pair and method)')
    print(verification.table(res, floor))
    return {'task': 'verification', 'folder': str(args.folder), 'pairs': len(matched),
            'keypoints': args.max_keypoints, 'threshold_px': args.threshold_px,
            'unverified': floor, 'results': res}


def cmd_homography(args: argparse.Namespace) -> Dict:
    from ..evaluation import homography as hom
    from ..datasets.pairs import list_images
    images = list_images(args.images) if args.images else \
        hom.default_heldout_images(SHARED_DATA)
    if not images:
        raise SystemExit('superglue-eval homography: no held-out images; pass --images DIR')
    engines = _engines(args)
    matchers = baselines.methods(engines.pop('superglue_orb'), args.refine, engines)
    out = {'task': 'homography', 'images': [str(p) for p in images], 'seed': args.seed,
           'settings': []}
    cols = ['precision', 'recall', 'auc@3px', 'auc@5px', 'auc@10px', 'matches_per_pair',
            'ms_per_pair']
    graf = hom.graf_pair(Path(args.graf)) if args.graf else hom.graf_pair(
        SHARED_DATA / 'opencv_samples')
    for warp in args.corner_warps:
        pairs = hom.synthetic_pairs(images, args.num_pairs, warp, args.seed)
        for n in args.keypoints:
            res = hom.evaluate_pairs(pairs, matchers, n)
            print(table(res, cols, f'\nHeld-out homographies: {len(pairs)} pairs, '
                                   f'{100 * warp:.0f}% corner warp, ORB {n}'))
            out['settings'].append({'corner_warp': warp, 'keypoints': n, 'results': res})
    if graf is not None:
        for n in args.keypoints:
            res = hom.evaluate_pairs([graf], matchers, n)
            print(table(res, cols, f'\nReal pair graf1 -> graf3 (ground-truth H), ORB {n}'))
            out['settings'].append({'pair': 'graf1->graf3', 'keypoints': n, 'results': res})
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog='superglue-eval', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--weights', default=None, help='weights file (default: shipped)')
    p.add_argument('--device', default='auto')
    p.add_argument('--out', default=None, help='write results JSON here')
    # One NAME=PATH per flag, repeated: a list option would swallow the subcommand after it.
    p.add_argument('--compare-weights', action='append', default=[], metavar='NAME=PATH',
                   help='one more weights file in the same run (e.g. previous=old.pth); '
                   'repeat the option for more')
    p.add_argument('--no-refine', dest='refine', action='store_false',
                   help='report our matcher without sub-pixel match refinement (the product '
                   'refines by default; with refinement the tables also show ours unrefined '
                   'and ORB NN + mutual refined, to attribute the gain)')
    sub = p.add_subparsers(dest='task', required=True)
    st = sub.add_parser('tum', help='real motion: a TUM-format RGB-D folder with ground truth')
    st.add_argument('folder', help='folder with rgb.txt, groundtruth.txt and optionally '
                    'depth.txt (without it: no depth-verified precision/recall)')
    st.add_argument('--camera', default='fr1', help='fr1|fr2|fr3 intrinsics or a YAML file')
    st.add_argument('--gaps', type=float, nargs='+', default=[0.1, 0.3, 0.5, 1.0],
                    help='[s] frame gaps of the pairs')
    st.add_argument('--stride', type=int, default=2, help='every n-th frame starts pairs')
    st.add_argument('--split', choices=['all', 'val', 'train'], default='all',
                    help='time-block split of superglue-train (val: held out from training)')
    st.add_argument('--min-covisibility', type=float, default=0.3,
                    help='skip pairs whose frames overlap less (depth + pose)')
    st.add_argument('--max-keypoints', type=int, default=1024)
    st.add_argument('--distributions', nargs='+', default=[DEFAULT_DISTRIBUTION],
                    choices=list(OrbExtractor.DISTRIBUTIONS),
                    help='ORB keypoint distributions to compare')
    st.add_argument('--no-sift', dest='sift', action='store_false',
                    help='skip the SIFT NN + ratio baseline')
    st.add_argument('--rendered-views', type=int, default=0, metavar='N',
                    help='also N views per chosen frame rendered from new poses with its depth: '
                    'parallax with exact ground truth (the sequence may have little)')
    from ..datasets.novel_view import NovelViewConfig
    training_views = NovelViewConfig()  # the rendered views' default range is training's
    st.add_argument('--rendered-baseline', type=float, nargs=2,
                    default=[training_views.min_baseline, training_views.max_baseline],
                    metavar=('MIN', 'MAX'),
                    help='camera translation of the rendered views, as a fraction of the '
                    'median scene depth (default: the range training draws; wider tests '
                    'wide baselines)')
    sv = sub.add_parser('verification', help='RANSAC / USAC verification of real matches: '
                        'time, inliers, precision and recall against TUM ground truth')
    sv.add_argument('folder', help='folder with rgb.txt, depth.txt, groundtruth.txt')
    sv.add_argument('--camera', default='fr1', help='fr1|fr2|fr3 intrinsics or a YAML file')
    sv.add_argument('--gaps', type=float, nargs='+', default=[0.1, 0.3, 0.5, 1.0],
                    help='[s] frame gaps of the pairs')
    sv.add_argument('--stride', type=int, default=2, help='every n-th frame starts pairs')
    sv.add_argument('--min-covisibility', type=float, default=0.3)
    sv.add_argument('--max-keypoints', type=int, default=1024)
    sv.add_argument('--max-pairs', type=int, default=0, help='0: all selected pairs')
    sv.add_argument('--threshold-px', type=float, default=1.0,
                    help='epipolar threshold (the node parameter verify_threshold_px)')
    sv.add_argument('--repeats', type=int, default=3, help='timed calls per pair and method')
    sr = sub.add_parser('reference-poses', help='no ground truth? reference poses by SIFT '
                        'structure from motion, written as a TUM folder for `tum`')
    sr.add_argument('images', help='folder of images in time order, or a TUM folder (rgb.txt)')
    sr.add_argument('folder', help='output folder: rgb.txt and groundtruth.txt')
    sr.add_argument('--camera', required=True, help='fr1|fr2|fr3 intrinsics or a YAML file')
    sr.add_argument('--max-gap', type=int, default=4,
                    help='match each frame with the next N frames')
    sr.add_argument('--max-features', type=int, default=8000, help='SIFT features per image')
    sp = sub.add_parser('pairs', help='relative pose AUC on a pairs file')
    sp.add_argument('pairs')
    sp.add_argument('--images', required=True, help='directory holding the images')
    sp.add_argument('--max-keypoints', type=int, default=1024)
    sp.add_argument('--max-pairs', type=int, default=0)
    sh = sub.add_parser('homography', help='held-out homographies + graf1 -> graf3')
    sh.add_argument('--images', nargs='*', default=None,
                    help='held-out images (default: ../shared/data/phototourism)')
    sh.add_argument('--graf', default=None, help='folder with graf1.png, graf3.png, H1to3p.xml')
    sh.add_argument('--num-pairs', type=int, default=100)
    sh.add_argument('--keypoints', type=int, nargs='+', default=[512, 1024])
    sh.add_argument('--corner-warps', type=float, nargs='+', default=[0.1, 0.25])
    sh.add_argument('--seed', type=int, default=2026)
    args = p.parse_args(argv)
    try:
        out = {'pairs': cmd_pairs, 'homography': cmd_homography, 'tum': cmd_tum,
               'verification': cmd_verification,
               'reference-poses': cmd_reference_poses}[args.task](args)
    except (WeightsError, FileNotFoundError, ValueError) as exc:
        print(f'superglue-eval: {exc}', file=sys.stderr)
        return 2
    out['machine'] = machine()
    if args.task != 'reference-poses':
        out['weights'] = str(args.weights or default_weights_path())
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1))
        print(f'\nwrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

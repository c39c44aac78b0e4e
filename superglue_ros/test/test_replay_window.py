# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""superglue-replay --window K: the matcher's keyframe window through the replay, over DDS.

The demo bag (bundled TUM frames, ORB front-end) replayed with window_size 3 and 1; a real TUM
sequence (../shared/data/tum_fr1_rpy) or a synthetic one with ground truth and --compare
orb_nn at window 2; the keyframe accounting on recorded messages with a missing answer.
"""

from contextlib import nullcontext
import json
from pathlib import Path
import re

import pytest
from rosbags.rosbag2 import Reader

from ros_harness import domain_id
from superglue_ros.datasets.synthetic_rgbd import write_sequence
from superglue_ros.replay.bag import typestore
from superglue_ros.replay.player import Record
from superglue_ros.replay.report import build_report
from superglue_ros.replay.run import OUTPUT_BAG, run_replay
from superglue_ros.ros.topics import CORRESPONDENCES_TOPIC
from superglue_ros.tools.demo_bag import make_demo_bag
from superglue_ros.tools.make_bag import make_bag
from superglue_ros.tools.replay import main
from superglue_ros.weights import default_weights_path

DOMAIN = domain_id(44)
WINDOW = 3
TUM = Path(__file__).resolve().parents[3] / 'shared' / 'data' / 'tum_fr1_rpy'


def replay(bag, out, weights, **kwargs):
    return run_replay(bag, out, rate=None, weights=str(weights), device='cpu',
                      max_keypoints=512, domain_id=DOMAIN, progress=False, timeout=30.0,
                      **kwargs)


@pytest.fixture(scope='module')
def demo_bag(tmp_path_factory):
    return make_demo_bag(tmp_path_factory.mktemp('bag') / 'demo_bag')


@pytest.fixture(scope='module')
def windowed(demo_bag, weights, tmp_path_factory):
    out = tmp_path_factory.mktemp('window') / 'out'
    return out, replay(demo_bag, out, weights, window=WINDOW, visualisations=1)


@pytest.fixture(scope='module')
def single(demo_bag, weights, tmp_path_factory):
    out = tmp_path_factory.mktemp('single') / 'out'
    return out, replay(demo_bag, out, weights, visualisations=1)


def test_every_keyframe_has_its_window(windowed):
    out, report = windowed
    n = report['keyframes_in']
    assert n >= WINDOW + 3
    # Every keyframe answered once, whatever its number of messages; nothing dropped.
    assert report['window']['keyframes_answered'] == n and report['dropped_total'] == 0
    assert report['all_keyframes_accounted'] and report['unaccounted'] == 0
    assert report['correspondences_out'] == 1 + sum(min(k - 1, WINDOW)
                                                    for k in range(2, n + 1))
    assert report['node_stats']['published'] == report['correspondences_out']
    rows = report['keyframes']
    assert rows[0]['status'] == 'first_keyframe' and rows[0]['current_id'] == 1
    by_current = {}
    for row in rows[1:]:
        assert row['status'] == 'ok'
        by_current.setdefault(row['current_id'], []).append(row)
    assert sorted(by_current) == list(range(2, n + 1))
    for current, pairs in by_current.items():
        # The K previous keyframes (fewer at the start), newest first, distance = id gap.
        assert [p['reference_id'] for p in pairs] == \
            [current - d for d in range(1, min(current - 1, WINDOW) + 1)]
        assert [p['distance'] for p in pairs] == list(range(1, len(pairs) + 1))
    assert sum(len(p) == WINDOW for p in by_current.values()) == n - WINDOW == \
        report['window']['keyframes_with_full_window']


def test_recorded_messages_carry_the_window(windowed):
    out, report = windowed
    store = typestore()
    with Reader(out / OUTPUT_BAG) as reader:
        conns = [c for c in reader.connections if c.topic == CORRESPONDENCES_TOPIC]
        msgs = [store.deserialize_cdr(raw, c.msgtype)
                for c, _, raw in reader.messages(connections=conns)]
    assert len(msgs) == report['correspondences_out']
    assert sum(m.last_in_batch for m in msgs) == report['keyframes_in']
    for m in msgs:
        later = [o for o in msgs if o.current_keyframe_id == m.current_keyframe_id
                 and o.window_index > m.window_index]
        assert m.last_in_batch == (not later)  # the marker sits on the keyframe's last pair
        assert m.reference_keyframe_id == max(0, m.current_keyframe_id - 1 - m.window_index)


def test_report_by_distance(windowed, weights):
    out, report = windowed
    window = report['window']
    n = report['keyframes_in']
    assert window['size'] == WINDOW
    rows = window['by_distance']
    assert [r['distance'] for r in rows] == [1, 2, 3]
    # Keyframe k has a pair at distance d when k > d: the counts add up.
    assert [r['pairs'] for r in rows] == [n - d for d in (1, 2, 3)]
    assert sum(r['pairs'] for r in rows) == window['pairs'] == report['statuses']['ok']
    for r in rows:
        assert r['matches_mean'] >= 0 and 0 <= r['inlier_ratio'] <= 1
    # The headline figures are those of the previous keyframe (as with a window of 1).
    assert report['matches_per_keyframe'] == pytest.approx(rows[0]['matches_mean'])
    assert report['inlier_ratio'] == pytest.approx(rows[0]['inlier_ratio'])
    if weights == default_weights_path():  # trained weights: less overlap, fewer matches
        assert rows[0]['matches_mean'] > rows[1]['matches_mean'] > rows[2]['matches_mean']
        assert rows[0]['inlier_ratio'] > rows[2]['inlier_ratio']
    md = (out / 'report.md').read_text()
    assert '## By keyframe distance (window of 3)' in md
    assert '| distance | pairs | matches per pair (mean) | inlier ratio (mean) |' in md
    for r in rows:
        assert f'| {r["distance"]} | {r["pairs"]} | {r["matches_mean"]:.1f} | ' in md
    assert json.loads((out / 'report.json').read_text())['window'] == window
    assert 'matches_by_distance.png' in report['figures']
    assert (out / 'matches_by_distance.png').is_file()
    # Pictures and the per-keyframe plot stay on the pairs with the previous keyframe.
    pictures = [re.fullmatch(r'matches_kf(\d+)_kf(\d+)\.png', f) for f in report['figures']]
    assert any(pictures)
    assert all(int(p[1]) + 1 == int(p[2]) for p in pictures if p)


def test_window_of_one_report_is_unchanged(single, windowed):
    out, report = single
    assert 'window' not in report
    assert all('distance' not in row for row in report['keyframes'])
    assert report['correspondences_out'] == report['keyframes_in']
    md = (out / 'report.md').read_text()
    assert 'keyframe distance' not in md and 'Window of' not in md
    assert 'matches_by_distance.png' not in report['figures']
    # Same matches as the window's distance-1 pairs (batched = sequential in the node).
    near = [(r['current_id'], r['matches']) for r in windowed[1]['keyframes']
            if r.get('distance') == 1]
    assert near == [(r['current_id'], r['matches']) for r in report['keyframes'][1:]]


def _record(current, window_index, last, status=0, matches=100):
    return Record(status=status, current_id=current,
                  reference_id=current - 1 - window_index if status == 0 else current - 1,
                  current_stamp_ns=current * 10**9,
                  reference_stamp_ns=(current - 1 - window_index) * 10**9, matches=matches,
                  inliers=matches // 2, verified=True, latency=0.1, end_to_end=0.2,
                  message='', window_index=window_index, last_in_batch=last)


def test_a_missing_last_message_is_not_an_answer(tmp_path):
    # Keyframe 3's last pair never arrived: 3 keyframes in, 2 answered, none dropped by the
    # node: one unaccounted, not counted twice nor as answered.
    records = [_record(1, 0, True, status=1, matches=0), _record(2, 0, True),
               _record(3, 0, False), _record(3, 1, False)]
    result = {'keyframes_in': 3, 'keypoints_reaching_matcher': 3, 'wall_s': 1.0,
              'frames_published': 3, 'output_bag': str(tmp_path), 'rate': None,
              'node_stats': {'dropped_queue_full': 0, 'sync_dropped_keypoints': 0},
              'window_size': 3, 'matcher': 'superglue', 'device': 'cpu', 'weights': 'w',
              'weights_metadata': {}, 'max_keypoints': 0, 'match_threshold': 0.2,
              'queue_policy': 'drop_oldest', 'params_file': None, 'frontend_counts': None}
    report = build_report(type('Info', (), {'path': tmp_path, 'storage': 'sqlite3',
                                            'image_topic': '/i', 'keypoints_topic': None,
                                            'duration_ns': 10**9, 'num_images': 3})(),
                          records, result)
    assert report['window']['keyframes_answered'] == 2
    assert report['unaccounted'] == 1 and not report['all_keyframes_accounted']
    assert [r['pairs'] for r in report['window']['by_distance']] == [2, 1, 0]
    assert report['window']['by_distance'][2]['matches_mean'] is None


@pytest.fixture(scope='module')
def sequence(tmp_path_factory):
    """(bag, ground-truth file, camera) of the real TUM fr1_rpy start, else a synthetic one."""
    root = tmp_path_factory.mktemp('seq')
    if TUM.is_dir():
        folder, camera = TUM, 'fr1'
    else:
        print('\n[test_replay_window] ../shared/data/tum_fr1_rpy not found: using a synthetic '
              'sequence (datasets.synthetic_rgbd)')
        folder = write_sequence(root / 'synthetic', frames=24)
        camera = str(folder / 'camera.yaml')
    return make_bag(folder, root / 'bag', camera=camera, max_frames=24), \
        folder / 'groundtruth.txt', camera


def test_window_with_groundtruth_and_compare(sequence, weights, tmp_path):
    bag, gt, _ = sequence
    out = tmp_path / 'out'
    report = replay(bag, out, weights, window=2, groundtruth=str(gt), compare=['orb_nn'],
                    visualisations=0)
    assert set(report['modes']) == {'superglue', 'orb_nn'}
    for mode, rep in report['modes'].items():
        rows = rep['window']['by_distance']
        assert rep['window']['size'] == 2 and [r['distance'] for r in rows] == [1, 2]
        assert rows[0]['pairs'] == rep['keyframes_in'] - 1 >= 3
        assert rows[1]['pairs'] == rep['keyframes_in'] - 2
        assert rep['all_keyframes_accounted'] and rep['dropped_total'] == 0
        for r in rows:  # the existing per-pair pose error, one summary per distance
            g = r['groundtruth']
            assert g['pairs'] == r['pairs'] and 0 <= g['rotation_auc@20'] <= 100
            assert 0 <= g['pose_auc@20'] <= 100
        # The headline ground truth is the distance-1 pairs, as with a window of 1.
        assert rows[0]['groundtruth']['rotation_auc@20'] == \
            pytest.approx(rep['groundtruth']['rotation_auc@20'])
        assert rep['groundtruth']['pairs'] == rows[0]['pairs']
        md = (out / mode / 'report.md').read_text()
        assert '| distance | pairs | matches per pair (mean) | inlier ratio (mean) | ' \
               'rotation AUC@20 [%] | pose AUC@20 [%] |' in md
    md = (out / 'report.md').read_text()
    assert '## By keyframe distance (window of 2)' in md
    assert '| matcher | distance | pairs |' in md
    for mode in ('superglue', 'orb_nn'):
        assert f'| {mode} | 1 | ' in md and f'| {mode} | 2 | ' in md
    summary = json.loads((out / 'report.json').read_text())
    assert summary['orb_nn']['window'] == report['modes']['orb_nn']['window']
    assert 'matches_by_distance.png' in summary['figures']
    assert (out / 'matches_by_distance.png').is_file()


@pytest.mark.parametrize('window', ['0', '65', 'two'])
def test_bad_window_is_a_one_line_error(window, tmp_path, capsys):
    with pytest.raises(SystemExit) if window == 'two' else nullcontext():
        code = main(['--demo', '--window', window, '--out', str(tmp_path / 'o'),
                     '--no-progress'])
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert '--window' in err and 'Traceback' not in err
    if window != 'two':
        assert len(err.splitlines()) == 1 and 'from 1 to 64' in err, err
        assert not (tmp_path / 'o' / 'demo_bag').exists()  # checked before any work

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""superglue-eval verification: every estimator measured on the same matches."""

import json

from superglue_ros.evaluation.verification import candidates


def test_verification_task_on_a_synthetic_sequence(tmp_path, tiny_weights):
    from superglue_ros.datasets.synthetic_rgbd import write_sequence
    from superglue_ros.tools.eval import main as eval_main
    folder = write_sequence(tmp_path / 'seq', frames=12)
    out = tmp_path / 'verification.json'
    rc = eval_main(['--weights', str(tiny_weights), '--device', 'cpu', '--out', str(out),
                    'verification', str(folder), '--camera', str(folder / 'camera.yaml'),
                    '--gaps', '0.1', '0.3', '--stride', '3', '--max-keypoints', '300',
                    '--repeats', '2'])
    assert rc == 0
    res = json.loads(out.read_text())
    assert set(res['results']) == {c.name for c in candidates()}
    assert res['pairs'] >= 4
    for name, row in res['results'].items():
        assert row['ms_median'] > 0 and row['ms_p95'] >= row['ms_median'], name
        assert row['inliers_per_pair'] <= row['matches_per_pair'], name
        for key in ('epipolar_precision', 'epipolar_recall', 'depth_precision',
                    'depth_recall'):
            assert 0 <= row[key] <= 1, (name, key)
        assert row['nondeterministic_pairs'] == 0, name  # same seed, same inliers
        assert ('pose_auc@10' in row) == (row['kind'] == 'essential'), name

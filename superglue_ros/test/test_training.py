# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Training pipeline: ground truth from warps, loss, and a short run that learns."""

import csv
import json

import numpy as np
import pytest
import torch

from conftest import FRAMES
from superglue_ros.datasets.homography import sample_homography, warp_points
from superglue_ros.datasets.pairs import ground_truth, IGNORE, PairConfig, PairGenerator
from superglue_ros.training.train import load_checkpoint, main as train_main, nll_loss

# A model small enough for a few training steps in a test.
SMALL_MODEL = {'descriptor_dim': 32, 'input_dim': 256, 'descriptor_type': 'orb',
               'keypoint_encoder': [16, 32], 'gnn_layers': 1, 'num_heads': 4,
               'sinkhorn_iterations': 10}


def rgbd_run(seq, out, *flags, model=SMALL_MODEL):
    """superglue-train arguments for a short run on the RGB-D sequence ``seq``, into ``out``.

    The flags every such test shares, then ``flags``: what the test itself is about.
    """
    return ['--rgbd', str(seq), '--camera', str(seq / 'camera.yaml'), '--out', str(out),
            '--batch-size', '2', *flags, '--model', json.dumps(model)]


def test_identity_warp_matches_everything():
    rng = np.random.default_rng(0)
    k = rng.uniform(0, 640, (100, 2))
    gt = ground_truth(k, k.copy(), np.eye(3), 3.0, 5.0)
    assert np.array_equal(gt['gt_matches0'], np.arange(100))
    assert np.array_equal(gt['gt_matches1'], np.arange(100))


def test_disjoint_sets_go_to_dustbin():
    rng = np.random.default_rng(1)
    k0 = rng.uniform(0, 100, (50, 2))
    k1 = rng.uniform(300, 400, (60, 2))
    gt = ground_truth(k0, k1, np.eye(3), 3.0, 5.0)
    assert (gt['gt_matches0'] == -1).all() and (gt['gt_matches1'] == -1).all()


def test_ambiguous_band_is_ignored_and_padding_never_matches():
    k0 = np.array([[10.0, 10.0], [100.0, 100.0], [200.0, 200.0]])
    k1 = np.array([[10.5, 10.0], [104.0, 100.0], [200.0, 200.0]])
    gt = ground_truth(k0, k1, np.eye(3), 3.0, 5.0, valid1=np.array([True, True, False]))
    assert gt['gt_matches0'].tolist() == [0, IGNORE, -1]
    assert gt['gt_matches1'].tolist() == [0, IGNORE, -1]


def test_warped_pair_ground_truth_is_consistent():
    gen = PairGenerator(FRAMES[:2], PairConfig(num_keypoints=256))
    pair = gen.make(np.random.default_rng(3), strength=0.5)
    gt0, gt1 = pair['gt_matches0'], pair['gt_matches1']
    matched = np.nonzero(gt0 >= 0)[0]
    assert len(matched) > 30, 'a mild warp of a real frame keeps many ORB keypoints'
    assert np.array_equal(gt1[gt0[matched]], matched)
    err = np.linalg.norm(warp_points(pair['keypoints0'][matched], pair['homography'])
                         - pair['keypoints1'][gt0[matched]], axis=1)
    assert err.max() < 3.0 * 2  # symmetric error bound in either image


def test_homography_strength_zero_is_identity():
    h = sample_homography(640, 480, np.random.default_rng(0), strength=0.0)
    assert np.allclose(h / h[2, 2], np.eye(3), atol=1e-6)


def test_nll_loss_prefers_the_ground_truth():
    gt0 = torch.tensor([[1, -1, -2]])
    gt1 = torch.tensor([[-1, 0]])
    good = torch.full((1, 4, 3), -20.0)
    good[0, 0, 1] = 0.0
    good[0, 1, 2] = 0.0
    good[0, 3, 0] = 0.0
    bad = torch.zeros((1, 4, 3)) - 1.0
    assert nll_loss(good, gt0, gt1).item() < 1e-6
    assert nll_loss(bad, gt0, gt1).item() > 0.9


def test_training_smoke_loss_decreases(tmp_path):
    torch.manual_seed(0)
    out = tmp_path / 'run'
    train_dir, val_dir = tmp_path / 'train', tmp_path / 'val'
    train_dir.mkdir()
    val_dir.mkdir()
    for f in FRAMES[:6]:
        (train_dir / f.name).symlink_to(f)
    (val_dir / FRAMES[10].name).symlink_to(FRAMES[10])
    args = ['--images', str(train_dir), '--val-images', str(val_dir), '--out', str(out),
            '--steps', '40', '--batch-size', '2', '--num-keypoints', '128', '--val-every', '20',
            '--val-pairs', '4', '--workers', '0', '--warmup', '5', '--lr', '3e-3',
            '--min-strength', '0.2', '--curriculum-steps', '0',
            '--model', '{"descriptor_dim": 32, "gnn_layers": 1, "keypoint_encoder": [16, 32]}']
    assert train_main(args) == 0
    rows = list(csv.DictReader(open(out / 'log.csv')))
    assert len(rows) == 2
    assert float(rows[1]['train_loss']) < float(rows[0]['train_loss'])
    assert (out / 'curve.png').stat().st_size > 1000
    assert (out / 'best.pt').exists()
    # Resume continues from the checkpoint instead of starting over.
    assert train_main(args[:-2] + ['--steps', '41']) == 0
    rows = list(csv.DictReader(open(out / 'log.csv')))
    assert rows[-1]['step'] == '41'
    dest = tmp_path / 'exported.pth'
    assert train_main(['--out', str(out), '--export', str(dest)]) == 0
    from superglue_ros.weights import load_weights
    model, meta = load_weights(dest)
    assert meta['licence'] == 'Apache-2.0' and model.conf.descriptor_dim == 32


def test_real_motion_training_with_geometry_and_warm_start(tmp_path):
    from superglue_ros.datasets.synthetic_rgbd import write_sequence
    from superglue_ros.models.superglue import SuperGlue
    from superglue_ros.weights import load_weights, save_weights
    torch.manual_seed(0)
    init = tmp_path / 'init.pth'
    save_weights(init, SuperGlue(SMALL_MODEL))
    seq = write_sequence(tmp_path / 'seq', frames=40)
    out = tmp_path / 'run'
    args = rgbd_run(seq, out, '--steps', '6', '--num-keypoints', '96', '128',
                    '--val-every', '3', '--val-gaps', '0.2', '--val-stride', '4',
                    '--workers', '0', '--split-block', '1.0', '--split-guard', '0.2',
                    '--init', str(init), model={**SMALL_MODEL, 'keypoint_geometry': True})
    assert train_main(args) == 0
    rows = list(csv.DictReader(open(out / 'log.csv')))
    assert len(rows) == 2 and rows[0]['real_f1'] and rows[0]['nn_real_precision']
    assert not rows[0]['val_f1']  # no homographic validation images were given
    cfg = json.loads((out / 'config.json').read_text())
    train_names, val_names = cfg['rgbd_train_frames'][0], cfg['rgbd_val_frames'][0]
    assert train_names and val_names and not set(train_names) & set(val_names)
    dest = tmp_path / 'geo.pth'
    assert train_main(['--out', str(out), '--export', str(dest)]) == 0
    model, _ = load_weights(dest)
    assert model.conf.keypoint_geometry is True


def test_a_malicious_checkpoint_is_refused_without_running_code(tmp_path):
    import os
    marker = tmp_path / 'pwned'

    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))

    out = tmp_path / 'run'
    out.mkdir()
    torch.save({'model': Payload()}, out / 'checkpoint.pt')
    from superglue_ros.training.train import load_checkpoint
    with pytest.raises(Exception):
        load_checkpoint(out / 'checkpoint.pt')
    assert not marker.exists()


def test_pair_stream_cycles_every_count_through_every_distribution(monkeypatch):
    """--distribution grid grid response: each keypoint count meets each front-end in turn."""
    from superglue_ros.training import train

    class Recorder:
        def __init__(self, images, conf):
            self.conf = conf

        def make(self, rng, strength):
            return (self.conf.num_keypoints, self.conf.distribution)

    monkeypatch.setattr(train, 'PairGenerator', Recorder)
    stream = train.PairStream(FRAMES[:2], PairConfig(), seed=0, start_step=0, batch_size=2,
                              curriculum_steps=0, min_strength=1.0, num_keypoints=(512, 1024),
                              distributions=('grid', 'grid', 'response'))
    it = iter(stream)
    batches = [[next(it) for _ in range(2)] for _ in range(6)]
    assert all(b[0] == b[1] for b in batches)  # one kind per batch
    assert [b[0] for b in batches] == [(512, 'grid'), (1024, 'grid'), (512, 'grid'),
                                       (1024, 'grid'), (512, 'response'), (1024, 'response')]


def test_deeper_model_warm_starts_as_the_same_function(tmp_path):
    from superglue_ros.models.superglue import SuperGlue
    from superglue_ros.training.train import warm_start
    from superglue_ros.weights import save_weights
    torch.manual_seed(0)
    old = SuperGlue(SMALL_MODEL).eval()
    init = tmp_path / 'init.pth'
    save_weights(init, old)
    deeper = SuperGlue({**SMALL_MODEL, 'gnn_layers': 3})
    assert warm_start(deeper, str(init)) == []
    deeper.eval()
    n = 64
    data = {'keypoints0': torch.rand(1, n, 2) * 400, 'keypoints1': torch.rand(1, n, 2) * 400,
            'scores0': torch.rand(1, n), 'scores1': torch.rand(1, n),
            'descriptors0': torch.randn(1, 256, n).sign() / 16,
            'descriptors1': torch.randn(1, 256, n).sign() / 16,
            'image_size0': torch.tensor([[640., 480.]]),
            'image_size1': torch.tensor([[640., 480.]])}
    with torch.no_grad():
        a, b = old(data), deeper(data)
    assert torch.allclose(a['log_assignment'], b['log_assignment'], atol=1e-6)
    # The new layers still learn: their last MLP layer gets a gradient.
    deeper.train()
    loss = deeper(data)['log_assignment'].logsumexp(-1).sum()
    loss.backward()
    assert deeper.gnn.layers[-1].mlp[-1].weight.grad.abs().sum() > 0
    shallower = SuperGlue({**SMALL_MODEL, 'gnn_layers': 1, 'descriptor_dim': 64,
                           'keypoint_encoder': [16, 64]})
    assert 'gnn.layers.0.attn.merge.weight' in warm_start(shallower, str(init))


def test_rendered_view_pairs_train(tmp_path):
    from superglue_ros.datasets.synthetic_rgbd import write_sequence
    seq = write_sequence(tmp_path / 'seq', frames=30)
    out = tmp_path / 'run'
    args = rgbd_run(seq, out, '--steps', '4', '--num-keypoints', '96',
                    '--val-every', '4', '--workers', '0', '--split-block', '0',
                    '--real-fraction', '0.0', '--novel-fraction', '1.0', '--device', 'cpu',
                    '--schedule', 'time', '--max-hours', '1', '--warmup', '1')
    assert train_main(args) == 0
    rows = list(csv.DictReader(open(out / 'log.csv')))
    assert len(rows) == 1 and float(rows[0]['train_loss']) > 0
    # The wall-time schedule has barely started after 4 steps: the rate is near its peak.
    assert float(rows[0]['lr']) > 0.9e-3
    # Every frame trained (--split-block 0) and there were no photos: without validation pairs
    # the latest checkpoint is the best one.
    cfg = json.loads((out / 'config.json').read_text())
    assert len(cfg['rgbd_train_frames'][0]) == 30 and not cfg['rgbd_val_frames'][0]
    assert load_checkpoint(out / 'best.pt')['step'] == 4


def test_loader_workers_train_and_exit_cleanly(tmp_path):
    """Spawned loader workers (the GPU recipe's path) deliver RGB-D pairs and leave quietly.

    A subprocess, as a real run: the workers' exit and whatever native code prints on the way
    out are part of what is checked.
    """
    import os
    import subprocess
    import sys
    from superglue_ros.datasets.synthetic_rgbd import write_sequence
    seq = write_sequence(tmp_path / 'seq', frames=30)
    out = tmp_path / 'run'
    args = rgbd_run(seq, out, '--steps', '6', '--num-keypoints', '96',
                    '--val-every', '3', '--workers', '2', '--split-block', '0',
                    '--real-fraction', '0.5', '--novel-fraction', '0.5', '--device', 'cpu',
                    '--threads', '1')
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    run = subprocess.run([sys.executable, '-m', 'superglue_ros.training.train', *args],
                         capture_output=True, text=True, timeout=300, env=env)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    assert 'finished at step 6' in log
    assert 'terminate called' not in log and 'killed by signal' not in log, log[-3000:]
    rows = list(csv.DictReader(open(out / 'log.csv')))
    assert [r['step'] for r in rows] == ['3', '6']


def test_pair_generation_benchmark_runs_in_a_fresh_clone():
    """tools/pair_bench.py needs no data beside the repository: a synthetic sequence."""
    import os
    from pathlib import Path
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, 'PYTHONPATH': str(root / 'superglue_ros'), 'OMP_NUM_THREADS': '1'}
    run = subprocess.run([sys.executable, str(root / 'tools' / 'pair_bench.py'), '--pairs', '1',
                          '--sizes', '128'], capture_output=True, text=True, timeout=300,
                         env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [line.split() for line in run.stdout.splitlines()[2:]]
    assert [r[:2] for r in rows] == [['homographic', '128'], ['real', '128'],
                                     ['rendered', '128']]
    assert all(float(r[2]) >= float(r[3]) > 0 for r in rows)  # labelling is part of a pair

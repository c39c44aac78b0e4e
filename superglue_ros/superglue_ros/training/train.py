# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``superglue-train``: training of SuperGlue on ORB, resumable, on CPU or GPU.

Two kinds of pairs, mixed per batch: real camera motion from TUM-format RGB-D folders
(``--rgbd``; ground truth from depth and pose) and homographies of any photos (``--images``;
scene diversity). Validation runs on held-out time blocks of the RGB-D folders and on
held-out photos. Writes into --out: checkpoint.pt (resume), best.pt (best validation F1),
log.csv, curve.png, config.json; ``--export PATH`` writes the shippable weights file.
"""

from __future__ import annotations

import argparse
import atexit
import csv
import dataclasses
import json
import math
import os
from pathlib import Path
import sys
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from ..classical import nn_mutual
from ..datasets.homography import PhotoConfig, WarpConfig
from ..datasets.motion import MotionPairConfig, MotionPairGenerator
from ..datasets.novel_view import NovelViewConfig, NovelViewGenerator
from ..datasets.pairs import IGNORE, list_images, PairConfig, PairGenerator
from ..datasets.rgbd import load_camera, split_by_time, TumSequence
from ..descriptors import adapt_scores, orb_to_float
from ..engine import resolve_device
from ..evaluation.motion import match_accuracy, select_pairs, summarize, undistorted_pixels
from ..features import DEFAULT_DISTRIBUTION, Features, OrbExtractor
from ..geometry import estimate_pose, relative_pose_error
from ..models import DEFAULT_MODEL, get_model, model_name
from ..models.superglue import SuperGlue
from ..weights import load_weights, save_weights

# The shipped model, chosen from measurements on 2 CPU cores (see the model card).
SHIPPED_MODEL = {
    'descriptor_dim': 128, 'input_dim': 256, 'descriptor_type': 'orb',
    'keypoint_encoder': [32, 64, 128], 'gnn_layers': 2, 'num_heads': 4,
    'sinkhorn_iterations': 20, 'match_threshold': 0.2,
}


def load_checkpoint(path: Path) -> Dict:
    """Read a training checkpoint without unpickling code (weights_only=True).

    Checkpoints hold only tensors, numbers, strings, lists and dicts, so a file from elsewhere
    cannot run code when it is loaded.
    """
    return torch.load(path, map_location='cpu', weights_only=True)


def warm_start(model: SuperGlue, path: str) -> List[str]:
    """Copy the parameters of a weights file into ``model`` where they fit.

    The first keypoint-encoder layer may gain inputs (keypoint_geometry): its old columns are
    copied and the new ones start at zero. A deeper model keeps the old layers first; each
    extra GNN layer starts as the identity (the last layer of its message MLP is zero, so its
    residual update is zero). Either way the warm-started model computes exactly what the old
    one did. Returns the names of parameters that could not be copied.
    """
    source, _ = load_weights(path)
    src = source.state_dict()
    own = model.state_dict()
    skipped = []
    old_layers = len(source.gnn.layers)
    if len(model.gnn.layers) > old_layers:
        if list(model.gnn.names[:old_layers]) != list(source.gnn.names):
            raise ValueError(f'{path}: its GNN layers {source.gnn.names} are not the first '
                             f'layers of the new model ({model.gnn.names})')
        for layer in model.gnn.layers[old_layers:]:
            last = layer.mlp[-1]
            with torch.no_grad():
                last.weight.zero_()
                last.bias.zero_()
        own = model.state_dict()
        extra = {n for n in own
                 if n.startswith('gnn.layers.') and int(n.split('.')[2]) >= old_layers}
    else:
        extra = set()
    for name, value in own.items():
        old = src.get(name)
        if old is None:
            if name not in extra:
                skipped.append(name)
        elif old.shape == value.shape:
            own[name] = old.clone()
        elif name == 'kenc.encoder.0.weight' and old.shape[1] < value.shape[1]:
            new = torch.zeros_like(value)
            new[:, :old.shape[1]] = old
            own[name] = new
        else:
            skipped.append(name)
    model.load_state_dict(own)
    return skipped


def nll_loss(log_assignment: torch.Tensor, gt0: torch.Tensor, gt1: torch.Tensor
             ) -> torch.Tensor:
    """Negative log-likelihood of the ground-truth partial assignment, per pair [B].

    log_assignment [B x M+1 x N+1]; gt0 [B x M] / gt1 [B x N] hold the matched index, -1 for
    the dustbin or -2 to ignore. Matches and the two dustbin sides are averaged separately and
    combined as match + (dustbin0 + dustbin1) / 2, so that neither dominates when the ratio of
    matched to unmatched keypoints varies.
    """
    b, m1, n1 = log_assignment.shape
    m, n = m1 - 1, n1 - 1
    matched = gt0 >= 0
    j = gt0.clamp(min=0)
    pos = log_assignment[:, :m, :].gather(2, j[..., None]).squeeze(-1)
    pos_loss = -(pos * matched).sum(1) / matched.sum(1).clamp(min=1)
    un0 = gt0 == -1
    un1 = gt1 == -1
    neg0 = -(log_assignment[:, :m, n] * un0).sum(1) / un0.sum(1).clamp(min=1)
    neg1 = -(log_assignment[:, m, :n] * un1).sum(1) / un1.sum(1).clamp(min=1)
    return pos_loss + 0.5 * (neg0 + neg1)


def match_counts(matches0: torch.Tensor, gt0: torch.Tensor) -> Dict[str, int]:
    """Count matches for precision/recall; predictions on ignored keypoints do not count."""
    pred = (matches0 > -1) & (gt0 != IGNORE)
    correct = pred & (matches0 == gt0)
    return {'predicted': int(pred.sum()), 'correct': int(correct.sum()),
            'gt': int((gt0 >= 0).sum())}


def collate(samples: Sequence[Dict[str, np.ndarray]]) -> Dict[str, torch.Tensor]:
    """Stack fixed-size pairs into a batch with adapted ORB descriptors [B x 256 x N]."""
    def stack(key: str, fn=None) -> torch.Tensor:
        return torch.from_numpy(np.stack([fn(s[key]) if fn else s[key] for s in samples]))

    def desc(d: np.ndarray) -> np.ndarray:
        return orb_to_float(d).T.copy()

    def score(s: np.ndarray) -> np.ndarray:
        return adapt_scores(s, 'orb')

    batch = {
        'keypoints0': stack('keypoints0'), 'keypoints1': stack('keypoints1'),
        'scores0': stack('scores0', score), 'scores1': stack('scores1', score),
        'descriptors0': stack('orb0', desc), 'descriptors1': stack('orb1', desc),
        'gt_matches0': stack('gt_matches0'), 'gt_matches1': stack('gt_matches1'),
        'angles0': stack('angles0'), 'angles1': stack('angles1'),
        'sizes0': stack('sizes0'), 'sizes1': stack('sizes1'),
    }
    batch['image_size0'] = batch['image_size1'] = stack('image_size').float()
    return batch


def to_device(batch: Dict[str, torch.Tensor], device: torch.device) -> Dict[str, torch.Tensor]:
    """Move a collated batch to the training device (no copy on the CPU)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def single_threaded_worker(worker_id: int) -> None:
    """Data-loader workers are the parallelism: OpenCV inside each runs sequentially.

    0, not 1: with a one-thread pool the worker aborted at exit (a joinable pool thread);
    torch already runs one thread per worker.
    """
    import cv2
    cv2.setNumThreads(0)
    # A worker that exits through the interpreter's full teardown sometimes aborts ("terminate
    # called without an active exception", seen once or twice per run with RGB-D pairs, here
    # and on an H100 host), and the loader then reports it as a crashed worker. Its work is
    # done by then: leave without running the native libraries' exit-time destructors.
    atexit.register(_leave_worker)


def _leave_worker() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class PairStream(IterableDataset):
    """Endless stream of random pairs (real motion, rendered views or homographic).

    Every batch has one keypoint count (cycling through ``num_keypoints``), one front-end
    keypoint distribution (cycling through ``distributions`` once per count cycle, so every
    count meets every distribution) and one kind of pair: real with probability
    ``real_fraction``, a rendered view of a real RGB-D frame with probability
    ``novel_fraction`` (parallax, datasets/novel_view.py), homographic otherwise. The
    homographic warp strength follows a curriculum by step.
    """

    def __init__(self, images: Sequence[Path], conf: PairConfig, seed: int, start_step: int,
                 batch_size: int, curriculum_steps: int, min_strength: float,
                 num_keypoints: Sequence[int] = (512,),
                 motion: Optional[Tuple[List[TumSequence], List[np.ndarray],
                                        MotionPairConfig]] = None,
                 real_fraction: float = 0.0, distributions: Sequence[str] = (),
                 novel_fraction: float = 0.0):
        super().__init__()
        self.images, self.conf, self.seed = list(images), conf, seed
        self.start_step, self.batch_size = start_step, batch_size
        self.curriculum_steps, self.min_strength = curriculum_steps, min_strength
        self.num_keypoints = list(num_keypoints)
        self.distributions = list(distributions) or [conf.distribution]
        self.motion = motion
        self.real_fraction = real_fraction if motion is not None else 0.0
        self.novel_fraction = novel_fraction if motion is not None else 0.0
        if not self.images:  # no photos: everything comes from the RGB-D frames
            total = self.real_fraction + self.novel_fraction
            self.real_fraction = self.real_fraction / total if total > 0 else 1.0
            self.novel_fraction = 1.0 - self.real_fraction

    def strength(self, step: int) -> float:
        if self.curriculum_steps <= 0:
            return 1.0
        t = min(1.0, step / self.curriculum_steps)
        return self.min_strength + (1.0 - self.min_strength) * t

    def __iter__(self) -> Iterator[Dict[str, np.ndarray]]:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info else 0
        kinds = [(n, d) for n in self.num_keypoints for d in self.distributions]
        homographic = {}
        for n, d in kinds if self.images else ():
            homographic[n, d] = PairGenerator(self.images, dataclasses.replace(
                self.conf, num_keypoints=n, distribution=d))
        real, novel = {}, {}
        if self.motion is not None:
            seqs, frames, mconf = self.motion
            real = {(n, d): MotionPairGenerator(seqs, frames, dataclasses.replace(
                mconf, num_keypoints=n, distribution=d)) for n, d in kinds}
            if self.novel_fraction > 0:
                novel = {(n, d): NovelViewGenerator(seqs, frames, NovelViewConfig(
                    num_keypoints=n, distribution=d, photo=mconf.photo)) for n, d in kinds}
        # Seeded by (seed, start step, worker) so a resumed run does not replay old pairs.
        rng = np.random.default_rng([self.seed, self.start_step, worker])
        step = self.start_step
        while True:
            counts = len(self.num_keypoints)
            kind = (self.num_keypoints[step % counts],
                    self.distributions[(step // counts) % len(self.distributions)])
            draw = rng.random()
            source = (real[kind] if draw < self.real_fraction else
                      novel[kind] if draw < self.real_fraction + self.novel_fraction else None)
            for _ in range(self.batch_size):
                if source is not None:
                    yield source.make(rng)
                else:
                    yield homographic[kind].make(rng, self.strength(step))
            step += 1


def make_validation_set(images: Sequence[Path], conf: PairConfig, count: int, seed: int,
                        strength: float) -> List[Dict[str, np.ndarray]]:
    """Make fixed held-out pairs (fixed seed, fixed warp strength)."""
    gen = PairGenerator(images, conf)
    rng = np.random.default_rng(seed)
    return [gen.make(rng, strength, image_index=i % len(images)) for i in range(count)]


def nn_mutual_matches0(p: Dict[str, np.ndarray]) -> np.ndarray:
    """ORB brute-force Hamming NN with mutual check on a sample: matches0 [M], -1 unmatched."""
    # Padding keypoints are not real detections: the baseline never sees them.
    v0, v1 = np.nonzero(p['valid0'])[0], np.nonzero(p['valid1'])[0]
    size = tuple(int(v) for v in p['image_size'])
    f0, f1 = (Features(p[f'keypoints{i}'][v], p[f'scores{i}'][v], p[f'orb{i}'][v], 'orb', size)
              for i, v in ((0, v0), (1, v1)))
    i0, i1, _ = nn_mutual(f0, f1)
    m0 = np.full(len(p['valid0']), -1)
    m0[v0[i0]] = v1[i1]
    return m0


def nn_mutual_counts(pairs: Sequence[Dict[str, np.ndarray]]) -> Dict[str, int]:
    """ORB brute-force Hamming NN with mutual check on the same pairs (baseline)."""
    tot = {'predicted': 0, 'correct': 0, 'gt': 0}
    for p in pairs:
        m0 = nn_mutual_matches0(p)
        c = match_counts(torch.from_numpy(m0), torch.from_numpy(p['gt_matches0']))
        for k in tot:
            tot[k] += c[k]
    return tot


@torch.no_grad()
def evaluate(model: SuperGlue, pairs: Sequence[Dict[str, np.ndarray]], batch_size: int = 8
             ) -> Dict[str, float]:
    """Compute validation loss, precision and recall on fixed pairs (eval mode)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    losses, tot = [], {'predicted': 0, 'correct': 0, 'gt': 0}
    for i in range(0, len(pairs), batch_size):
        batch = to_device(collate(pairs[i:i + batch_size]), device)
        pred = model(batch)
        losses.append(nll_loss(pred['log_assignment'], batch['gt_matches0'],
                               batch['gt_matches1']).mean().item())
        c = match_counts(pred['matches0'], batch['gt_matches0'])
        for k in tot:
            tot[k] += c[k]
    model.train(was_training)
    return {'loss': float(np.mean(losses)), **prf(tot)}


def make_real_validation(seqs: Sequence[TumSequence], frames: Sequence[np.ndarray],
                         conf: MotionPairConfig, gaps: Sequence[float], stride: int
                         ) -> List[Dict[str, np.ndarray]]:
    """Build fixed held-out real pairs (no augmentation) at the given frame gaps."""
    gen = MotionPairGenerator(seqs, frames, conf)
    rng = np.random.default_rng(1234)
    out = []
    for s, (seq, f) in enumerate(zip(seqs, frames)):
        for i, j, _ in select_pairs(seq, f, gaps, stride):
            sample = gen.make(rng, pair=(s, i, j), augment=False)
            if int((sample['gt_matches0'] >= 0).sum()) >= conf.min_matches:
                out.append(sample)
    return out


def real_pair_metrics(sample: Dict[str, np.ndarray], matches0: np.ndarray,
                      seqs: Sequence[TumSequence]) -> Dict[str, float]:
    """Pose error of predicted matches (padding excluded) against the mocap pose."""
    s, i, j = (int(v) for v in sample['pair'])
    seq = seqs[s]
    m0 = np.where(sample['valid0'], matches0, -1)
    i0 = np.nonzero(m0 > -1)[0]
    i1 = m0[i0]
    keep = sample['valid1'][i1]
    i0, i1 = i0[keep], i1[keep]
    k = seq.camera.k
    p0 = undistorted_pixels(seq.camera, sample['original_keypoints0'][i0])
    p1 = undistorted_pixels(seq.camera, sample['original_keypoints1'][i1])
    est = estimate_pose(p0, p1, k, k, 1.0) if len(i0) >= 5 else None
    t = seq.relative_pose(i, j)
    if est is None:
        err_r = err_t = float('inf')
    else:
        err_r, err_t = relative_pose_error(t, est[0], est[1])
    acc = match_accuracy(i0, i1, sample['original_keypoints0'], sample['original_keypoints1'],
                         sample['projections0'], sample['projections1'], sample['status0'],
                         sample['gt_matches0'])
    return {'rotation_error': err_r, 'pose_error': max(err_r, err_t), 'matches': len(i0),
            'epipolar_correct': 0, **acc}


@torch.no_grad()
def evaluate_real(model: SuperGlue, samples: Sequence[Dict[str, np.ndarray]],
                  seqs: Sequence[TumSequence], batch_size: int = 8) -> Dict[str, float]:
    """Loss, depth-verified precision/recall and pose AUC on fixed real pairs."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    losses, rows = [], []
    for k in range(0, len(samples), batch_size):
        chunk = samples[k:k + batch_size]
        batch = to_device(collate(chunk), device)
        pred = model(batch)
        losses.append(nll_loss(pred['log_assignment'], batch['gt_matches0'],
                               batch['gt_matches1']).mean().item())
        for sample, m0 in zip(chunk, pred['matches0'].cpu().numpy()):
            rows.append(real_pair_metrics(sample, m0, seqs))
    model.train(was_training)
    return {'loss': float(np.mean(losses)), **real_summary(rows)}


def real_summary(rows: Sequence[Dict[str, float]]) -> Dict[str, float]:
    """precision/recall/f1 in [0, 1] and AUC@20 in % from per-pair rows."""
    s = summarize(rows)
    p, r = s['depth_precision'] / 100, s['depth_recall'] / 100
    return {'precision': p, 'recall': r, 'f1': 2 * p * r / max(p + r, 1e-9),
            'auc@20': s['auc@20'], 'rot_auc@20': s['rot_auc@20'],
            'matches': s['matches_per_pair']}


def nn_mutual_real(samples: Sequence[Dict[str, np.ndarray]], seqs: Sequence[TumSequence]
                   ) -> Dict[str, float]:
    """ORB NN + mutual on the real validation pairs (baseline)."""
    return real_summary([real_pair_metrics(p, nn_mutual_matches0(p), seqs) for p in samples])


def prf(c: Dict[str, int]) -> Dict[str, float]:
    """Precision, recall and F1 from counts."""
    p = c['correct'] / max(c['predicted'], 1)
    r = c['correct'] / max(c['gt'], 1)
    return {'precision': p, 'recall': r, 'f1': 2 * p * r / max(p + r, 1e-9)}


def plot_curve(log_path: Path, out_png: Path) -> None:
    """Training and validation curves from log.csv: loss, then homographic and real P/R."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = list(csv.DictReader(open(log_path)))
    if not rows:
        return

    def series(key: str):
        return [(int(r['step']), float(r[key])) for r in rows if r.get(key)]

    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    for key, label in (('train_loss', 'train'), ('val_loss', 'homographic validation'),
                       ('real_loss', 'real validation')):
        pts = series(key)
        if pts:
            axes[0].plot(*zip(*pts), 'o-' if key != 'train_loss' else '-', label=label)
    axes[0].set_xlabel('step')
    axes[0].set_ylabel('NLL loss')
    axes[0].legend()
    for ax, prefix, base, title in ((axes[1], 'val_', 'nn_', 'homographic validation'),
                                    (axes[2], 'real_', 'nn_real_', 'real validation (depth)')):
        for key, style in (('precision', 'o-'), ('recall', 's-')):
            pts = series(prefix + key)
            if pts:
                ax.plot(*zip(*pts), style, label=f'ours {key}')
            ref = series(base + key)
            if ref:
                ax.axhline(ref[-1][1], ls='--' if key == 'precision' else ':', c='gray',
                           label=f'ORB NN+mutual {key}')
        ax.set_title(title)
        ax.set_xlabel('step')
        ax.set_ylim(0, 1)
        if ax.get_legend_handles_labels()[0]:  # a run without that validation has no curves
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    plt.close(fig)


def lr_at(step: int, base: float, warmup: int, total: int, final_ratio: float,
          progress: Optional[float] = None) -> float:
    """Linear warm-up, then cosine decay to base * final_ratio.

    ``progress`` in [0, 1] replaces the step count in the decay (a schedule by wall time,
    for runs whose step rate is not known in advance).
    """
    if step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup)) if progress is None else \
        min(1.0, progress)
    return base * (final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog='superglue-train', description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--images', nargs='+', default=[],
                   help='photos for homographic pairs (files/directories)')
    p.add_argument('--val-images', nargs='+', default=[],
                   help='held-out photos for homographic validation (never trained)')
    p.add_argument('--rgbd', nargs='+', default=[],
                   help='TUM-format RGB-D folders for real-motion pairs; split by time blocks '
                        'into training and validation')
    p.add_argument('--camera', default='fr1',
                   help='intrinsics of the --rgbd folders: fr1|fr2|fr3 or a YAML file')
    p.add_argument('--novel-fraction', type=float, default=0.0,
                   help='share of batches that pair an RGB-D frame with a view of it rendered '
                   'from a new pose (real parallax, exact ground truth)')
    p.add_argument('--real-fraction', type=float, default=0.5,
                   help='share of batches made of real-motion pairs (with --rgbd)')
    p.add_argument('--split-block', type=float, default=4.0,
                   help='[s] time blocks of the train/validation split (every 3rd: validation; '
                   '0: every frame trains, for a folder of training frames only)')
    p.add_argument('--split-guard', type=float, default=1.0,
                   help='[s] no training frame this close to a validation frame')
    p.add_argument('--min-gap', type=float, default=0.1, help='[s] real pairs: smallest gap')
    p.add_argument('--max-gap', type=float, default=1.5, help='[s] real pairs: largest gap')
    p.add_argument('--val-gaps', type=float, nargs='+', default=[0.1, 0.3, 0.5, 1.0],
                   help='[s] frame gaps of the real validation pairs')
    p.add_argument('--val-stride', type=int, default=3,
                   help='every n-th validation frame starts real validation pairs')
    p.add_argument('--distribution', nargs='+', default=[DEFAULT_DISTRIBUTION],
                   choices=list(OrbExtractor.DISTRIBUTIONS),
                   help='ORB keypoint distribution(s) of the training front-end; several '
                        'alternate by batch (validation uses the first)')
    p.add_argument('--init', default='',
                   help='warm start from this weights file (new inputs start at zero)')
    p.add_argument('--out', required=True, help='run directory (resumes when it has a checkpoint)')
    p.add_argument('--steps', type=int, default=20000)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--warmup', type=int, default=300)
    p.add_argument('--final-lr-ratio', type=float, default=0.05)
    p.add_argument('--num-keypoints', type=int, nargs='+', default=[512, 1024],
                   help='keypoints per image; batches cycle through the values')
    p.add_argument('--max-hours', type=float, default=0.0, help='stop after this (0 = no limit)')
    p.add_argument('--schedule', choices=['steps', 'time'], default='steps',
                   help='learning-rate decay over --steps, or over --max-hours of wall time')
    p.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    p.add_argument('--curriculum-steps', type=int, default=3000,
                   help='steps to ramp the warp strength from --min-strength to 1')
    p.add_argument('--min-strength', type=float, default=0.4)
    p.add_argument('--perspective', type=float, default=0.2)
    p.add_argument('--rotation', type=float, default=25.0)
    p.add_argument('--val-pairs', type=int, default=64)
    p.add_argument('--val-strength', type=float, default=0.8)
    p.add_argument('--val-every', type=int, default=250)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--workers', type=int, default=1)
    p.add_argument('--threads', type=int, default=0, help='torch threads (0 = default)')
    p.add_argument('--arch', default=DEFAULT_MODEL, help='registered model name (models)')
    p.add_argument('--model', type=str, default='',
                   help='JSON dict of model config overrides of the shipped model')
    p.add_argument('--export', type=str, default='',
                   help='write best.pt of --out as a shippable weights file to this path, exit')
    p.add_argument('--threshold', type=float, default=None,
                   help='with --export: match_threshold stored in the shipped config')
    p.add_argument('--sweep-threshold', action='store_true',
                   help='evaluate best.pt on the validation pairs over match thresholds, exit')
    return p.parse_args(argv)


def sweep_thresholds(out: Path, args: argparse.Namespace) -> Dict[str, Dict[str, float]]:
    """Precision/recall of best.pt on the validation pairs for a range of match thresholds."""
    ckpt = load_checkpoint(out / 'best.pt')
    model = get_model(ckpt.get('model_name', DEFAULT_MODEL), ckpt['config'])
    model.load_state_dict(ckpt['model'])
    model.eval()
    a = ckpt['args']
    if not a.get('val_images'):
        raise SystemExit('--sweep-threshold needs a run trained with --val-images')
    conf = PairConfig(num_keypoints=max(np.atleast_1d(a['num_keypoints'])),
                      warp=WarpConfig(perspective=a['perspective'], rotation_deg=a['rotation']))
    pairs = make_validation_set(list_images(a['val_images']), conf, a['val_pairs'], 1234,
                                a['val_strength'])
    rows = {}
    for t in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        model.conf.match_threshold = t
        rows[f'{t:.2f}'] = evaluate(model, pairs)
        r = rows[f'{t:.2f}']
        print(f'threshold {t:.2f}: precision {r["precision"]:.3f} recall {r["recall"]:.3f} '
              f'F1 {r["f1"]:.3f}')
    (out / 'threshold_sweep.json').write_text(json.dumps(rows, indent=1))
    return rows


def export(out: Path, dest: Path, threshold: Optional[float] = None) -> None:
    """Turn the best checkpoint into the shippable weights file (state dict + config + meta)."""
    ckpt = load_checkpoint(out / 'best.pt')
    config = dict(ckpt['config'])
    if threshold is not None:
        config['match_threshold'] = float(threshold)
    model = get_model(ckpt.get('model_name', DEFAULT_MODEL), config)
    model.load_state_dict(ckpt['model'])
    meta = {'trained_by': 'superglue_ros superglue-train', 'licence': 'Apache-2.0',
            'step': ckpt['step'], 'pairs_seen': ckpt['step'] * ckpt['args']['batch_size'],
            'validation': ckpt.get('val', {}), 'baseline_nn_mutual': ckpt.get('nn', {}),
            'train_args': ckpt['args'], 'train_seconds': ckpt.get('elapsed', 0.0)}
    save_weights(dest, model, meta)
    print(f'wrote {dest} ({dest.stat().st_size / 1e6:.2f} MB) from step {ckpt["step"]}')


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    if args.sweep_threshold:
        sweep_thresholds(out, args)
        return 0
    if args.export:
        export(out, Path(args.export), args.threshold)
        return 0
    if not (args.images or args.rgbd):
        print('superglue-train: give --images and/or --rgbd', file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    device, warning = resolve_device(args.device)  # CUDA without a GPU: the CPU, aloud
    if warning:
        print(f'superglue-train: {warning}', file=sys.stderr)
    if device.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = True  # training only; inference stays fp32
    train_images = list_images(args.images)
    val_images = list_images(args.val_images)
    overlap = {p.resolve() for p in train_images} & {p.resolve() for p in val_images}
    if overlap:
        print(f'superglue-train: validation images also in training: {sorted(overlap)[:3]}',
              file=sys.stderr)
        return 2
    warp = WarpConfig(perspective=args.perspective, rotation_deg=args.rotation)
    pair_conf = PairConfig(num_keypoints=max(args.num_keypoints), warp=warp,
                           photo=PhotoConfig(), distribution=args.distribution[0])
    motion_conf = MotionPairConfig(num_keypoints=max(args.num_keypoints), min_gap=args.min_gap,
                                   max_gap=args.max_gap, distribution=args.distribution[0])
    seqs, train_frames, val_frames = [], [], []
    if args.rgbd:
        camera = load_camera(args.camera)
        for folder in args.rgbd:
            seq = TumSequence(folder, camera)
            if args.split_block > 0:
                tr, va = split_by_time(seq.stamps, args.split_block, guard=args.split_guard)
            else:  # a folder of training frames only (validated elsewhere)
                tr, va = np.arange(len(seq)), np.zeros(0, int)
            seqs.append(seq)
            train_frames.append(tr)
            val_frames.append(va)
            print(f'{folder}: {len(tr)} training and {len(va)} validation frames '
                  f'({args.split_block:g} s time blocks, {args.split_guard:g} s guard)')
            if len(tr) < 2:
                print(f'superglue-train: {folder} leaves no training frames with this split',
                      file=sys.stderr)
                return 2
    model_conf = {**SHIPPED_MODEL, **(json.loads(args.model) if args.model else {})}
    torch.manual_seed(args.seed)
    model = get_model(args.arch, model_conf)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    step, elapsed, best_f1 = 0, 0.0, -1.0
    ckpt_path = out / 'checkpoint.pt'
    if ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        model = get_model(ckpt.get('model_name', DEFAULT_MODEL), ckpt['config'])
        model.load_state_dict(ckpt['model'])
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        step, elapsed, best_f1 = ckpt['step'], ckpt['elapsed'], ckpt['best_f1']
        print(f'resumed from {ckpt_path} at step {step}')
    elif args.init:
        skipped = warm_start(model, args.init)
        print(f'warm start from {args.init}' + (f'; not copied: {skipped}' if skipped else ''))
    model.to(device)
    if ckpt_path.exists():  # the optimiser state follows its parameters' device
        opt.load_state_dict(ckpt['optimizer'])
    model.train()
    (out / 'config.json').write_text(json.dumps(
        {'model': dict(vars(model.conf)), 'args': vars(args),
         'pairs': dataclasses.asdict(pair_conf), 'motion_pairs': dataclasses.asdict(motion_conf),
         'train_images': [str(p) for p in train_images],
         'val_images': [str(p) for p in val_images],
         'rgbd_train_frames': [[seq.frames[int(i)].rgb.name for i in f]
                               for seq, f in zip(seqs, train_frames)],
         'rgbd_val_frames': [[seq.frames[int(i)].rgb.name for i in f]
                             for seq, f in zip(seqs, val_frames)]}, indent=2, default=str))
    print(f'{len(train_images)} training images, {len(val_images)} validation images; '
          f'model {vars(model.conf)}; '
          f'{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters; '
          f'device {device}')
    val_pairs = make_validation_set(val_images, dataclasses.replace(
        pair_conf, num_keypoints=min(args.num_keypoints)), args.val_pairs, 1234,
        args.val_strength) if val_images else []
    nn = prf(nn_mutual_counts(val_pairs)) if val_pairs else {}
    real_val = make_real_validation(seqs, val_frames, motion_conf, args.val_gaps,
                                    args.val_stride) if any(len(v) for v in val_frames) else []
    nn_real = nn_mutual_real(real_val, seqs) if real_val else {}
    if nn:
        print(f'homographic validation, ORB NN+mutual: precision {nn["precision"]:.3f} '
              f'recall {nn["recall"]:.3f}')
    if nn_real:
        print(f'real validation ({len(real_val)} pairs), ORB NN+mutual: precision '
              f'{nn_real["precision"]:.3f} recall {nn_real["recall"]:.3f} '
              f'AUC@20 {nn_real["auc@20"]:.1f}')
    stream = PairStream(train_images, pair_conf, args.seed, step, args.batch_size,
                        args.curriculum_steps, args.min_strength, args.num_keypoints,
                        (seqs, train_frames, motion_conf) if seqs else None, args.real_fraction,
                        args.distribution, args.novel_fraction)
    loader = DataLoader(stream, batch_size=args.batch_size, collate_fn=collate,
                        num_workers=args.workers, prefetch_factor=4 if args.workers else None,
                        persistent_workers=bool(args.workers),
                        worker_init_fn=single_threaded_worker if args.workers else None,
                        # Forked workers inherit the thread pools of OpenCV (used here for the
                        # validation pairs) and CUDA in a state that deadlocked them, on this
                        # CPU and on an H200: workers are spawned.
                        multiprocessing_context='spawn' if args.workers else None,
                        pin_memory=device.type == 'cuda')
    log_path = out / 'log.csv'
    fields = ['step', 'elapsed_s', 'lr', 'strength', 'train_loss', 'train_precision',
              'train_recall', 'val_loss', 'val_precision', 'val_recall', 'val_f1',
              'nn_precision', 'nn_recall', 'real_loss', 'real_precision', 'real_recall',
              'real_f1', 'real_auc20', 'real_rot_auc20', 'real_matches', 'nn_real_precision',
              'nn_real_recall', 'nn_real_auc20']
    new_log = not log_path.exists()
    log_file = open(log_path, 'a', newline='')
    writer = csv.DictWriter(log_file, fieldnames=fields)
    if new_log:
        writer.writeheader()
    try:
        from tqdm import tqdm
        bar = tqdm(total=args.steps, initial=step, dynamic_ncols=True, mininterval=30)
    except ImportError:  # pragma: no cover
        bar = None
    run_loss, counts = [], {'predicted': 0, 'correct': 0, 'gt': 0}
    t_start = time.time() - elapsed

    def save(path: Path, val: Optional[Dict[str, float]] = None) -> None:
        torch.save({'model': model.state_dict(), 'model_name': model_name(model),
                    'optimizer': opt.state_dict(),
                    'config': dict(vars(model.conf)), 'step': step,
                    'elapsed': time.time() - t_start, 'best_f1': best_f1, 'args': vars(args),
                    'val': val or {}, 'nn': nn, 'nn_real': nn_real}, path.with_suffix('.tmp'))
        path.with_suffix('.tmp').replace(path)

    def fmt(d: Dict[str, float], key: str, pattern: str = '{:.4f}') -> str:
        return pattern.format(d[key]) if key in d else ''

    batch, batches = None, iter(loader)
    for batch in batches:
        if step >= args.steps:
            break
        if args.max_hours and time.time() - t_start > args.max_hours * 3600:
            print('time budget reached')
            break
        progress = ((time.time() - t_start) / (args.max_hours * 3600)
                    if args.schedule == 'time' and args.max_hours else None)
        lr = lr_at(step, args.lr, args.warmup, args.steps, args.final_lr_ratio, progress)
        for g in opt.param_groups:
            g['lr'] = lr
        batch = to_device(batch, device)
        pred = model(batch)
        loss = nll_loss(pred['log_assignment'], batch['gt_matches0'],
                        batch['gt_matches1']).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        run_loss.append(loss.item())
        c = match_counts(pred['matches0'], batch['gt_matches0'])
        for k in counts:
            counts[k] += c[k]
        if bar is not None:
            tr = prf(counts)
            bar.set_postfix(loss=f'{np.mean(run_loss[-50:]):.3f}', p=f'{tr["precision"]:.2f}',
                            r=f'{tr["recall"]:.2f}', lr=f'{lr:.1e}', refresh=False)
            bar.update(1)
        if step % args.val_every == 0 or step == args.steps:
            val = evaluate(model, val_pairs) if val_pairs else {}
            real = evaluate_real(model, real_val, seqs) if real_val else {}
            tr = prf(counts)
            writer.writerow({
                'step': step, 'elapsed_s': f'{time.time() - t_start:.0f}', 'lr': f'{lr:.3e}',
                'strength': f'{stream.strength(step):.2f}',
                'train_loss': f'{np.mean(run_loss):.4f}',
                'train_precision': f'{tr["precision"]:.4f}', 'train_recall': f'{tr["recall"]:.4f}',
                'val_loss': fmt(val, 'loss'), 'val_precision': fmt(val, 'precision'),
                'val_recall': fmt(val, 'recall'), 'val_f1': fmt(val, 'f1'),
                'nn_precision': fmt(nn, 'precision'), 'nn_recall': fmt(nn, 'recall'),
                'real_loss': fmt(real, 'loss'), 'real_precision': fmt(real, 'precision'),
                'real_recall': fmt(real, 'recall'), 'real_f1': fmt(real, 'f1'),
                'real_auc20': fmt(real, 'auc@20', '{:.2f}'),
                'real_rot_auc20': fmt(real, 'rot_auc@20', '{:.2f}'),
                'real_matches': fmt(real, 'matches', '{:.1f}'),
                'nn_real_precision': fmt(nn_real, 'precision'),
                'nn_real_recall': fmt(nn_real, 'recall'),
                'nn_real_auc20': fmt(nn_real, 'auc@20', '{:.2f}')})
            log_file.flush()
            run_loss, counts = [], {'predicted': 0, 'correct': 0, 'gt': 0}
            msg = f'step {step}:'
            if val:
                msg += (f' homographic loss {val["loss"]:.3f} P {val["precision"]:.3f} '
                        f'R {val["recall"]:.3f};')
            if real:
                msg += (f' real loss {real["loss"]:.3f} P {real["precision"]:.3f} '
                        f'R {real["recall"]:.3f} AUC@20 {real["auc@20"]:.1f}')
            (bar.write if bar is not None else print)(msg)
            # Model selection on real motion when there is any: it is what users run.
            # Without any validation pairs the latest checkpoint is the best one.
            score = real['f1'] if real else val.get('f1', float(step))
            if score > best_f1:
                best_f1 = score
                save(out / 'best.pt', {**val, **{f'real_{k}': v for k, v in real.items()}})
            save(ckpt_path, {**val, **{f'real_{k}': v for k, v in real.items()}})
            plot_curve(log_path, out / 'curve.png')
    save(ckpt_path)
    # Stop the loader workers now: left to interpreter shutdown, spawned workers are killed
    # mid-batch and abort noisily.
    del batch, batches
    log_file.close()
    if bar is not None:
        bar.close()
    print(f'finished at step {step}; best validation F1 {best_f1:.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

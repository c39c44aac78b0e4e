# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``superglue-train``: homographic training of SuperGlue on ORB, resumable, on CPU or GPU.

Writes into --out: checkpoint.pt (resume), best.pt (best validation F1), log.csv,
curve.png, config.json; ``--export PATH`` writes the shippable weights file.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
from pathlib import Path
import sys
import time
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from .homography import PhotoConfig, WarpConfig
from .pairs import IGNORE, list_images, PairConfig, PairGenerator
from ..descriptors import adapt_scores, orb_to_float
from ..evaluation.baselines import nn_mutual
from ..features import Features
from ..models.superglue import SuperGlue
from ..weights import save_weights

# The shipped model, chosen from measurements on 2 CPU cores (see the model card).
SHIPPED_MODEL = {
    'descriptor_dim': 128, 'input_dim': 256, 'descriptor_type': 'orb',
    'keypoint_encoder': [32, 64, 128], 'gnn_layers': 2, 'num_heads': 4,
    'sinkhorn_iterations': 20, 'match_threshold': 0.2,
}


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
    }
    batch['image_size0'] = batch['image_size1'] = stack('image_size').float()
    return batch


class PairStream(IterableDataset):
    """Endless stream of random pairs; the warp strength follows a curriculum by step."""

    def __init__(self, images: Sequence[Path], conf: PairConfig, seed: int, start_step: int,
                 batch_size: int, curriculum_steps: int, min_strength: float):
        super().__init__()
        self.images, self.conf, self.seed = list(images), conf, seed
        self.start_step, self.batch_size = start_step, batch_size
        self.curriculum_steps, self.min_strength = curriculum_steps, min_strength

    def strength(self, step: int) -> float:
        if self.curriculum_steps <= 0:
            return 1.0
        t = min(1.0, step / self.curriculum_steps)
        return self.min_strength + (1.0 - self.min_strength) * t

    def __iter__(self) -> Iterator[Dict[str, np.ndarray]]:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info else 0
        gen = PairGenerator(self.images, self.conf)
        # Seeded by (seed, start step, worker) so a resumed run does not replay old pairs.
        rng = np.random.default_rng([self.seed, self.start_step, worker])
        i = 0
        while True:
            step = self.start_step + i // self.batch_size
            yield gen.make(rng, self.strength(step))
            i += 1


def make_validation_set(images: Sequence[Path], conf: PairConfig, count: int, seed: int,
                        strength: float) -> List[Dict[str, np.ndarray]]:
    """Make fixed held-out pairs (fixed seed, fixed warp strength)."""
    gen = PairGenerator(images, conf)
    rng = np.random.default_rng(seed)
    return [gen.make(rng, strength, image_index=i % len(images)) for i in range(count)]


def nn_mutual_counts(pairs: Sequence[Dict[str, np.ndarray]]) -> Dict[str, int]:
    """ORB brute-force Hamming NN with mutual check on the same pairs (baseline)."""
    tot = {'predicted': 0, 'correct': 0, 'gt': 0}
    for p in pairs:
        # Padding keypoints are not real detections: the baseline never sees them.
        v0, v1 = np.nonzero(p['valid0'])[0], np.nonzero(p['valid1'])[0]
        size = tuple(int(v) for v in p['image_size'])
        f0, f1 = (Features(p[f'keypoints{i}'][v], p[f'scores{i}'][v], p[f'orb{i}'][v], 'orb',
                           size) for i, v in ((0, v0), (1, v1)))
        i0, i1, _ = nn_mutual(f0, f1)
        m0 = np.full(len(p['valid0']), -1)
        m0[v0[i0]] = v1[i1]
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
    losses, tot = [], {'predicted': 0, 'correct': 0, 'gt': 0}
    for i in range(0, len(pairs), batch_size):
        batch = collate(pairs[i:i + batch_size])
        pred = model(batch)
        losses.append(nll_loss(pred['log_assignment'], batch['gt_matches0'],
                               batch['gt_matches1']).mean().item())
        c = match_counts(pred['matches0'], batch['gt_matches0'])
        for k in tot:
            tot[k] += c[k]
    model.train(was_training)
    return {'loss': float(np.mean(losses)), **prf(tot)}


def prf(c: Dict[str, int]) -> Dict[str, float]:
    """Precision, recall and F1 from counts."""
    p = c['correct'] / max(c['predicted'], 1)
    r = c['correct'] / max(c['gt'], 1)
    return {'precision': p, 'recall': r, 'f1': 2 * p * r / max(p + r, 1e-9)}


def plot_curve(log_path: Path, out_png: Path) -> None:
    """Training/validation curves from log.csv."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = list(csv.DictReader(open(log_path)))
    if not rows:
        return
    step = [int(r['step']) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].plot(step, [float(r['train_loss']) for r in rows], label='train')
    val = [(int(r['step']), float(r['val_loss'])) for r in rows if r['val_loss']]
    if val:
        axes[0].plot(*zip(*val), 'o-', label='validation')
    axes[0].set_xlabel('step')
    axes[0].set_ylabel('NLL loss')
    axes[0].legend()
    for key, style in (('val_precision', 'o-'), ('val_recall', 's-')):
        pts = [(int(r['step']), float(r[key])) for r in rows if r[key]]
        if pts:
            axes[1].plot(*zip(*pts), style, label=key.replace('val_', 'validation '))
    base = [r for r in rows if r.get('nn_precision')]
    if base:
        axes[1].axhline(float(base[-1]['nn_precision']), ls='--', c='gray',
                        label='ORB NN+mutual precision')
        axes[1].axhline(float(base[-1]['nn_recall']), ls=':', c='gray',
                        label='ORB NN+mutual recall')
    axes[1].set_xlabel('step')
    axes[1].set_ylim(0, 1)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    plt.close(fig)


def lr_at(step: int, base: float, warmup: int, total: int, final_ratio: float) -> float:
    """Linear warm-up, then cosine decay to base * final_ratio."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog='superglue-train', description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--images', nargs='+', help='training image files/directories')
    p.add_argument('--val-images', nargs='+', help='held-out validation images (never trained)')
    p.add_argument('--out', required=True, help='run directory (resumes when it has a checkpoint)')
    p.add_argument('--steps', type=int, default=20000)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--warmup', type=int, default=300)
    p.add_argument('--final-lr-ratio', type=float, default=0.05)
    p.add_argument('--num-keypoints', type=int, default=512)
    p.add_argument('--max-hours', type=float, default=0.0, help='stop after this (0 = no limit)')
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
    p.add_argument('--model', type=str, default='',
                   help='JSON dict of SuperGlue config overrides of the shipped model')
    p.add_argument('--export', type=str, default='',
                   help='write best.pt of --out as a shippable weights file to this path, exit')
    p.add_argument('--threshold', type=float, default=None,
                   help='with --export: match_threshold stored in the shipped config')
    p.add_argument('--sweep-threshold', action='store_true',
                   help='evaluate best.pt on the validation pairs over match thresholds, exit')
    return p.parse_args(argv)


def sweep_thresholds(out: Path, args: argparse.Namespace) -> Dict[str, Dict[str, float]]:
    """Precision/recall of best.pt on the validation pairs for a range of match thresholds."""
    ckpt = torch.load(out / 'best.pt', map_location='cpu', weights_only=False)
    model = SuperGlue(ckpt['config'])
    model.load_state_dict(ckpt['model'])
    model.eval()
    a = ckpt['args']
    conf = PairConfig(num_keypoints=a['num_keypoints'],
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
    ckpt = torch.load(out / 'best.pt', map_location='cpu', weights_only=False)
    config = dict(ckpt['config'])
    if threshold is not None:
        config['match_threshold'] = float(threshold)
    model = SuperGlue(config)
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
    if not args.images or not args.val_images:
        print('superglue-train: --images and --val-images are required', file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    train_images = list_images(args.images)
    val_images = list_images(args.val_images)
    overlap = {p.resolve() for p in train_images} & {p.resolve() for p in val_images}
    if overlap:
        print(f'superglue-train: validation images also in training: {sorted(overlap)[:3]}',
              file=sys.stderr)
        return 2
    warp = WarpConfig(perspective=args.perspective, rotation_deg=args.rotation)
    pair_conf = PairConfig(num_keypoints=args.num_keypoints, warp=warp, photo=PhotoConfig())
    model_conf = {**SHIPPED_MODEL, **(json.loads(args.model) if args.model else {})}
    torch.manual_seed(args.seed)
    model = SuperGlue(model_conf)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    step, elapsed, best_f1 = 0, 0.0, -1.0
    ckpt_path = out / 'checkpoint.pt'
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=False)
        model = SuperGlue(ckpt['config'])
        model.load_state_dict(ckpt['model'])
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        opt.load_state_dict(ckpt['optimizer'])
        step, elapsed, best_f1 = ckpt['step'], ckpt['elapsed'], ckpt['best_f1']
        print(f'resumed from {ckpt_path} at step {step}')
    model.train()
    (out / 'config.json').write_text(json.dumps(
        {'model': dict(vars(model.conf)), 'args': vars(args),
         'pairs': dataclasses.asdict(pair_conf), 'train_images': [str(p) for p in train_images],
         'val_images': [str(p) for p in val_images]}, indent=2, default=str))
    print(f'{len(train_images)} training images, {len(val_images)} validation images; '
          f'model {vars(model.conf)}; '
          f'{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters')
    val_pairs = make_validation_set(val_images, pair_conf, args.val_pairs, 1234,
                                    args.val_strength)
    nn = prf(nn_mutual_counts(val_pairs))
    print(f'validation ORB NN+mutual: precision {nn["precision"]:.3f} recall {nn["recall"]:.3f}')
    stream = PairStream(train_images, pair_conf, args.seed, step, args.batch_size,
                        args.curriculum_steps, args.min_strength)
    loader = DataLoader(stream, batch_size=args.batch_size, collate_fn=collate,
                        num_workers=args.workers, prefetch_factor=4 if args.workers else None,
                        persistent_workers=bool(args.workers))
    log_path = out / 'log.csv'
    fields = ['step', 'elapsed_s', 'lr', 'strength', 'train_loss', 'train_precision',
              'train_recall', 'val_loss', 'val_precision', 'val_recall', 'val_f1',
              'nn_precision', 'nn_recall']
    new_log = not log_path.exists()
    log_file = open(log_path, 'a', newline='')
    writer = csv.DictWriter(log_file, fieldnames=fields)
    if new_log:
        writer.writeheader()
    try:
        from tqdm import tqdm
        bar = tqdm(total=args.steps, initial=step, dynamic_ncols=True, mininterval=5)
    except ImportError:  # pragma: no cover
        bar = None
    run_loss, counts = [], {'predicted': 0, 'correct': 0, 'gt': 0}
    t_start = time.time() - elapsed

    def save(path: Path, val: Optional[Dict[str, float]] = None) -> None:
        torch.save({'model': model.state_dict(), 'optimizer': opt.state_dict(),
                    'config': dict(vars(model.conf)), 'step': step,
                    'elapsed': time.time() - t_start, 'best_f1': best_f1, 'args': vars(args),
                    'val': val or {}, 'nn': nn}, path.with_suffix('.tmp'))
        path.with_suffix('.tmp').replace(path)

    for batch in loader:
        if step >= args.steps:
            break
        if args.max_hours and time.time() - t_start > args.max_hours * 3600:
            print('time budget reached')
            break
        lr = lr_at(step, args.lr, args.warmup, args.steps, args.final_lr_ratio)
        for g in opt.param_groups:
            g['lr'] = lr
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
            val = evaluate(model, val_pairs)
            tr = prf(counts)
            writer.writerow({
                'step': step, 'elapsed_s': f'{time.time() - t_start:.0f}', 'lr': f'{lr:.3e}',
                'strength': f'{stream.strength(step):.2f}',
                'train_loss': f'{np.mean(run_loss):.4f}',
                'train_precision': f'{tr["precision"]:.4f}', 'train_recall': f'{tr["recall"]:.4f}',
                'val_loss': f'{val["loss"]:.4f}', 'val_precision': f'{val["precision"]:.4f}',
                'val_recall': f'{val["recall"]:.4f}', 'val_f1': f'{val["f1"]:.4f}',
                'nn_precision': f'{nn["precision"]:.4f}', 'nn_recall': f'{nn["recall"]:.4f}'})
            log_file.flush()
            run_loss, counts = [], {'predicted': 0, 'correct': 0, 'gt': 0}
            msg = (f'step {step}: val loss {val["loss"]:.3f} precision {val["precision"]:.3f} '
                   f'recall {val["recall"]:.3f}')
            (bar.write if bar is not None else print)(msg)
            if val['f1'] > best_f1:
                best_f1 = val['f1']
                save(out / 'best.pt', val)
            save(ckpt_path, val)
            plot_curve(log_path, out / 'curve.png')
    save(ckpt_path)
    log_file.close()
    if bar is not None:
        bar.close()
    print(f'finished at step {step}; best validation F1 {best_f1:.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

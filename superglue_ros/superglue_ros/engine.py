# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The matching engine shared by the ROS node, ImageMatcher, replay and evaluation tools.

It owns the model and its device, turns ``Features`` into device tensors once per keyframe
(``prepare``), matches two prepared keyframes (``match_prepared``) or one keyframe against a
window of references in one batch (``match_window``). Per call it sets the CPU threads
(``num_threads``, threads.py). ``backend='onnxruntime'`` runs the GNN through ONNX Runtime
(onnx_backend.py). Imports torch, never rclpy.
"""

from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union
import warnings

import numpy as np
import torch
from torch import nn

from .descriptors import adapt_descriptors, adapt_scores
from .features import Features
from .inputs import check_finite, DESCRIPTOR_MISMATCH, InputError
from .models.superglue import filter_matches, log_optimal_transport
from .threads import ThreadPolicy
from .weights import load_weights

# Inference backends: torch runs the model directly; onnxruntime runs its ONNX export.
BACKENDS = ('torch', 'onnxruntime')


def check_backend(backend: str) -> str:
    """Return ``backend`` when it is a known one; ValueError naming the choices otherwise."""
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {", ".join(BACKENDS)}, got {backend!r}')
    return backend


def resolve_device(requested: str) -> Tuple[torch.device, Optional[str]]:
    """Map 'auto' | 'cuda' | 'cuda:N' | 'cpu' to a device; returns (device, warning or None).

    A CUDA request without a usable GPU falls back to the CPU with a warning, never an error:
    the same launch file must run on a robot with a GPU and on a laptop without one.
    """
    requested = (requested or 'auto').strip().lower()
    if requested == 'cpu':
        return torch.device('cpu'), None
    if requested == 'auto':
        return (torch.device('cuda') if torch.cuda.is_available() else torch.device('cpu')), None
    if requested.startswith('cuda'):
        if torch.cuda.is_available():
            dev = torch.device(requested)
            if dev.index is None or dev.index < torch.cuda.device_count():
                return dev, None
            return torch.device('cuda'), (f'{requested} does not exist '
                                          f'({torch.cuda.device_count()} GPUs): using cuda:0')
        return torch.device('cpu'), f'device {requested!r} requested but CUDA is not ' \
            'available (no GPU or a CPU-only torch build): falling back to cpu'
    raise ValueError(f'device must be auto, cpu, cuda or cuda:N, got {requested!r}')


@dataclass
class PreparedFeatures:
    """Device tensors of one keyframe, built once and reused while it is the reference."""

    keypoints: torch.Tensor  # [1 x N x 2]
    scores: torch.Tensor  # [1 x N]
    descriptors: torch.Tensor  # [1 x C x N]
    image_size: torch.Tensor  # [1 x 2] (width, height)
    angles: Optional[torch.Tensor]  # [1 x N] ORB orientation [deg], when the model reads it
    sizes: Optional[torch.Tensor]  # [1 x N] ORB keypoint size [px], when the model reads it
    index: np.ndarray  # [N] indices into the original keypoint arrays
    features: Features


@dataclass
class MatchResult:
    """Matches between two keyframes, as indices into their original keypoint arrays."""

    index0: np.ndarray  # [M] int
    index1: np.ndarray  # [M] int
    points0: np.ndarray  # [M x 2] float32
    points1: np.ndarray  # [M x 2] float32
    confidence: np.ndarray  # [M] float32
    latency: float  # seconds spent in the model (transfer + forward + read-back)


class MatchingEngine:
    """A matcher model on a device, with the descriptor adapter its weights expect.

    The model comes from the registry (``from_weights`` -> ``weights.load_weights`` ->
    ``models.get_model``); the engine reads its ``conf`` and calls it with the usual
    SuperGlue/LightGlue keys.
    """

    def __init__(self, model: nn.Module, device: str = 'auto', fp16: bool = False,
                 max_keypoints: int = 0, metadata: Optional[Dict[str, Any]] = None,
                 num_threads: int = 0, backend: str = 'torch'):
        self.backend = check_backend(backend)
        # CPU threads per call; 0 = the cores other processes left idle (see threads.py).
        self.threads = ThreadPolicy(num_threads)
        self.device, warning = resolve_device(device)
        if warning:
            warnings.warn(warning, RuntimeWarning, stacklevel=2)
        self.device_warning = warning
        self.max_keypoints = int(max_keypoints)
        self.metadata = dict(metadata or {})
        self.onnx: Optional[Any] = None
        if self.backend == 'onnxruntime':
            self._start_onnxruntime(model)
        self.fp16 = bool(fp16) and self.device.type == 'cuda' and self.backend == 'torch'
        self.fp16_ignored = bool(fp16) and not self.fp16
        self.model = model.eval().to(self.device)

    def _start_onnxruntime(self, model: nn.Module) -> None:
        """Export the model to ONNX in memory and open it in ONNX Runtime.

        CPU by default; with a CUDA device, ONNX Runtime's CUDA provider when the installed
        onnxruntime has it (onnxruntime-gpu; untested here), else the CPU with a warning.
        Inputs are prepared on the CPU either way (ONNX Runtime takes host arrays).
        """
        from .onnx_backend import DEFAULT_MAX_KEYPOINTS, export_onnx, OnnxRuntimeSession, \
            require
        ort = require('onnxruntime')
        providers = ['CPUExecutionProvider']
        if self.device.type == 'cuda':
            if 'CUDAExecutionProvider' in ort.get_available_providers():
                providers.insert(0, 'CUDAExecutionProvider')
            else:
                self.device_warning = (f'backend onnxruntime on {self.device}: the installed '
                                       f'onnxruntime has no CUDA provider (install '
                                       f'onnxruntime-gpu): using the CPU')
                warnings.warn(self.device_warning, RuntimeWarning, stacklevel=3)
        self.device = torch.device('cpu')
        limit = self.max_keypoints or DEFAULT_MAX_KEYPOINTS
        # The graph ends at the score matrix: optimal transport runs in torch (below).
        self.onnx = OnnxRuntimeSession(
            export_onnx(model, max_keypoints=limit, with_sinkhorn=False), providers)

    @classmethod
    def from_weights(cls, path=None, device: str = 'auto', fp16: bool = False,
                     max_keypoints: int = 0, num_threads: int = 0, backend: str = 'torch',
                     **overrides) -> 'MatchingEngine':
        """Load a weights file (ours or the official layout; None = shipped) onto ``device``.

        num_threads: CPU threads per match, 0 = automatic (the cores other processes leave
        idle); backend: one of BACKENDS; overrides: model config values (match_threshold,
        sinkhorn_iterations, ...).
        """
        check_backend(backend)
        model, metadata = load_weights(path, overrides or None)
        return cls(model, device, fp16, max_keypoints, metadata, num_threads, backend)

    @property
    def num_threads(self) -> int:
        """Requested CPU threads per match (0 = automatic)."""
        return self.threads.requested

    @property
    def descriptor_type(self) -> str:
        """Descriptor type the weights were trained for (orb | sift | superpoint | generic)."""
        return self.model.conf.descriptor_type

    @property
    def input_dim(self) -> int:
        """Descriptor dimension the weights expect, as published (ORB: bits)."""
        return int(self.model.conf.input_dim)

    @property
    def match_threshold(self) -> float:
        return float(self.model.conf.match_threshold)

    @match_threshold.setter
    def match_threshold(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f'match_threshold must be in [0, 1], got {value}')
        self.model.conf.match_threshold = float(value)

    def check_descriptors(self, descriptor_type: str, dim: Optional[int] = None) -> None:
        """Raise InputError(DESCRIPTOR_MISMATCH) unless such descriptors fit the weights.

        ``dim`` is the descriptor dimension as published (ORB: bits); None skips that check.
        """
        if descriptor_type != self.descriptor_type:
            raise InputError(DESCRIPTOR_MISMATCH,
                             f'descriptor type {descriptor_type!r} does not match the loaded '
                             f'weights, which expect {self.descriptor_type!r}')
        if dim is not None and dim != self.input_dim:
            unit = 'bits' if descriptor_type == 'orb' else 'values'
            raise InputError(DESCRIPTOR_MISMATCH,
                             f'descriptor_dim {dim} does not match the loaded weights, which '
                             f'expect {self.input_dim} {unit}')

    def prepare(self, features: Features) -> PreparedFeatures:
        """Validate, keep the strongest max_keypoints, adapt descriptors, move to the device.

        Raises InputError (non_finite, descriptor_mismatch) for features the weights cannot use.
        """
        check_finite('keypoints', features.keypoints)
        check_finite('scores', features.scores)
        if features.descriptors.dtype != np.uint8:
            check_finite('descriptors', features.descriptors)
        selected, index = features.top_k(self.max_keypoints)
        n = len(selected)
        if n:
            raw = np.asarray(selected.descriptors)
            bits = 8 if raw.dtype == np.uint8 else 1
            self.check_descriptors(features.descriptor_type,
                                   raw.shape[1] * bits if raw.ndim == 2 else None)
            try:
                desc = adapt_descriptors(raw, features.descriptor_type)
            except ValueError as exc:  # wrong dtype or shape for the adapter
                raise InputError(DESCRIPTOR_MISMATCH, str(exc)) from exc
        else:
            self.check_descriptors(features.descriptor_type)
            desc = np.zeros((0, self.input_dim), np.float32)
        dev = self.device
        angles, sizes = self._geometry(selected)
        return PreparedFeatures(
            keypoints=torch.from_numpy(np.ascontiguousarray(selected.keypoints, np.float32))
            .to(dev)[None],
            scores=torch.from_numpy(adapt_scores(selected.scores, features.descriptor_type))
            .to(dev)[None],
            descriptors=torch.from_numpy(np.ascontiguousarray(desc.T)).to(dev)[None],
            image_size=torch.tensor([features.image_size], dtype=torch.float32, device=dev),
            angles=angles, sizes=sizes,
            index=index,
            features=features,
        )

    def _geometry(self, selected: Features
                  ) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """ORB angles and sizes [1 x N] on the device when the model reads them, else None."""
        if not getattr(self.model.conf, 'keypoint_geometry', False):
            return None, None
        n = len(selected)
        if len(selected.angle) != n or len(selected.size) != n:
            raise InputError(
                DESCRIPTOR_MISMATCH,
                'these weights encode ORB keypoint orientation and scale, but the keypoints '
                'have no angle/size: publish them (Keypoints.angle, Keypoints.size) or use '
                'weights without keypoint_geometry')
        check_finite('angle', selected.angle)
        check_finite('size', selected.size)
        angles = torch.from_numpy(np.ascontiguousarray(selected.angle, np.float32))
        sizes = torch.from_numpy(np.ascontiguousarray(selected.size, np.float32))
        return angles.to(self.device)[None], sizes.to(self.device)[None]

    @staticmethod
    def _inputs(p0: PreparedFeatures, p1: PreparedFeatures) -> Dict[str, torch.Tensor]:
        data = {'keypoints0': p0.keypoints, 'keypoints1': p1.keypoints,
                'scores0': p0.scores, 'scores1': p1.scores,
                'descriptors0': p0.descriptors, 'descriptors1': p1.descriptors,
                'image_size0': p0.image_size, 'image_size1': p1.image_size}
        if p0.angles is not None and p1.angles is not None:
            data.update(angles0=p0.angles, angles1=p1.angles, sizes0=p0.sizes, sizes1=p1.sizes)
        return data

    def _forward(self, data: Dict[str, torch.Tensor]) -> Tuple[np.ndarray, np.ndarray]:
        """Run the model; matches0 [B x M] and matching_scores0 [B x M] on the host."""
        if self.onnx is not None:
            m, n = data['keypoints0'].shape[1], data['keypoints1'].shape[1]
            if m == 0 or n == 0:
                return np.full((1, m), -1, np.int64), np.zeros((1, m), np.float32)
            scores = self.onnx.run(data, self.threads.threads())
            c = self.model.conf
            with torch.inference_mode():
                log_assignment = log_optimal_transport(
                    scores, self.model.bin_score.detach(), c.sinkhorn_iterations,
                    c.sinkhorn_tolerance, fast=True)
                matches0, _, mscores0, _ = filter_matches(log_assignment, self.match_threshold)
            return matches0.numpy(), mscores0.numpy()
        with torch.autocast('cuda', dtype=torch.float16, enabled=self.fp16):
            pred = self.model(data)
        return pred['matches0'].cpu().numpy(), pred['matching_scores0'].float().cpu().numpy()

    @staticmethod
    def _result(p0: PreparedFeatures, p1: PreparedFeatures, matches0: np.ndarray,
                mscores0: np.ndarray, latency: float) -> MatchResult:
        """Turn matches0 [M] (-1 = none) into a MatchResult with original indices."""
        valid = matches0 > -1
        local0 = np.nonzero(valid)[0]
        local1 = matches0[valid]
        idx0, idx1 = p0.index[local0], p1.index[local1]
        return MatchResult(
            index0=idx0.astype(np.int64), index1=idx1.astype(np.int64),
            points0=p0.features.keypoints[idx0].astype(np.float32).reshape(-1, 2),
            points1=p1.features.keypoints[idx1].astype(np.float32).reshape(-1, 2),
            confidence=mscores0[valid].astype(np.float32), latency=latency)

    @torch.inference_mode()
    def match_prepared(self, p0: PreparedFeatures, p1: PreparedFeatures) -> MatchResult:
        """Match two prepared keyframes; indices refer to the original keypoint arrays."""
        start = time.perf_counter()
        self._set_threads()
        matches0, mscores0 = self._forward(self._inputs(p0, p1))
        return self._result(p0, p1, matches0[0], mscores0[0], time.perf_counter() - start)

    @torch.inference_mode()
    def match_window(self, references: Sequence[PreparedFeatures], current: PreparedFeatures
                     ) -> List[MatchResult]:
        """Match ``current`` against every reference in one batched forward pass.

        Returns one MatchResult per reference, in order, equal to
        ``match_prepared(reference, current)`` up to float rounding (the references are
        padded to a common keypoint count and the padding is masked out; the current
        keyframe is encoded once for the whole batch). Each result's ``latency`` is the
        whole batched call.
        """
        references = list(references)
        start = time.perf_counter()
        self._set_threads()
        results: List[Optional[MatchResult]] = [None] * len(references)
        # Empty keyframes match nothing; they stay out of the batch (a reference without
        # keypoints would leave the current one nothing to attend to).
        batch = [i for i, r in enumerate(references)
                 if r.keypoints.shape[1] and current.keypoints.shape[1]]
        if len(batch) == 1 or self.onnx is not None:  # the ONNX graph takes one pair
            for i in batch:
                matches0, mscores0 = self._forward(self._inputs(references[i], current))
                results[i] = self._result(references[i], current, matches0[0], mscores0[0],
                                          0.0)
        elif batch:
            padded, mask = _pad_batch([references[i] for i in batch])
            data = self._inputs(padded, current)
            if not bool(mask.all()):  # no padding, no mask: the unmasked kernels
                data['mask0'] = mask
            matches0, mscores0 = self._forward(data)
            for row, i in enumerate(batch):
                m = references[i].keypoints.shape[1]
                results[i] = self._result(references[i], current, matches0[row, :m],
                                          mscores0[row, :m], 0.0)
        latency = time.perf_counter() - start
        out = []
        for i, r in enumerate(results):
            if r is None:
                empty = np.zeros(0, np.int64)
                r = MatchResult(empty, empty, np.zeros((0, 2), np.float32),
                                np.zeros((0, 2), np.float32), np.zeros(0, np.float32), 0.0)
            r.latency = latency
            out.append(r)
        return out

    def _set_threads(self) -> None:
        """Give torch this call's thread count (cheap: about 0.1 us when unchanged)."""
        if self.device.type != 'cpu':
            return
        n = self.threads.threads()
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)

    def match(self, f0: Features, f1: Features) -> MatchResult:
        """Prepare and match two feature sets."""
        return self.match_prepared(self.prepare(f0), self.prepare(f1))


def _pad_batch(items: Sequence[PreparedFeatures]) -> Tuple[PreparedFeatures, torch.Tensor]:
    """Stack keyframes into one batch padded to the largest keypoint count.

    Returns the batch (index and features are not batched: None) and its mask [B x M],
    True for real keypoints. Padding is zeros; the model never attends to it.
    """
    m = max(p.keypoints.shape[1] for p in items)

    def stack(name: str) -> Optional[torch.Tensor]:
        tensors = [getattr(p, name) for p in items]
        if any(t is None for t in tensors):
            return None
        # the keypoint axis is the last one of descriptors [1 x C x N], else axis 1
        axis = 2 if name == 'descriptors' else 1
        padded = []
        for t in tensors:
            shape = list(t.shape)
            shape[axis] = m - t.shape[axis]
            padded.append(torch.cat([t, t.new_zeros(shape)], axis) if shape[axis] else t)
        return torch.cat(padded)

    first = items[0]
    mask = torch.zeros((len(items), m), dtype=torch.bool, device=first.keypoints.device)
    for i, p in enumerate(items):
        mask[i, :p.keypoints.shape[1]] = True
    batch = PreparedFeatures(
        keypoints=stack('keypoints'), scores=stack('scores'),
        descriptors=stack('descriptors'),
        image_size=torch.cat([p.image_size for p in items]),
        angles=stack('angles'), sizes=stack('sizes'), index=None, features=None)
    return batch, mask


def read_image(path: Union[str, 'np.ndarray']) -> np.ndarray:
    """Read an image file as BGR uint8 (or pass an array through); clear error if unreadable."""
    if isinstance(path, np.ndarray):
        return path
    import cv2
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f'cannot read image {path}')
    return image

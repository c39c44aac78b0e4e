# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""ONNX export of a SuperGlue model and its ONNX Runtime backend.

The exported graph takes one image pair (batch 1) with any keypoint counts in
[1, max_keypoints] (dynamic axes) and returns the log-assignment [1 x M+1 x N+1]; the
mutual-match filter stays outside the graph, so match_threshold can change at run time.
Optimal transport is the plain log-domain Sinkhorn with the model's iteration count unrolled
(static control flow, as ONNX and TensorRT want it; no early stop). With
``with_sinkhorn=False`` the graph ends at the score matrix [1 x M x N] instead: the engine's
onnxruntime backend runs that part in ONNX Runtime and optimal transport with torch's
mat-vec Sinkhorn (the unrolled log-domain loop took 2/3 of ONNX Runtime's time at 1024).

onnx and onnxruntime are optional: importing this module works without them; using it
raises a RuntimeError that says what to install.
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union
import warnings

import numpy as np
import torch
from torch import nn

from .models.superglue import log_sinkhorn, SuperGlue

OPSET = 17
DEFAULT_MAX_KEYPOINTS = 4096
INPUTS = ('keypoints0', 'scores0', 'descriptors0', 'image_size0',
          'keypoints1', 'scores1', 'descriptors1', 'image_size1')
GEOMETRY_INPUTS = ('angles0', 'sizes0', 'angles1', 'sizes1')
OUTPUT = 'log_assignment'
SCORES_OUTPUT = 'scores'
META_CONF = 'superglue_ros.conf'
META_MAX_KEYPOINTS = 'superglue_ros.max_keypoints'
INSTALL = 'pip install onnx==1.23.2 onnxruntime==1.32.0 (optional dependencies of superglue_ros)'


def require(module: str):
    """Import onnx / onnxruntime, or raise a RuntimeError that says how to install them."""
    try:
        return __import__(module)
    except ImportError as exc:
        raise RuntimeError(f'{module} is not installed; the ONNX export and the onnxruntime '
                           f'backend need it: {INSTALL}') from exc


def input_names(model: SuperGlue) -> List[str]:
    """Graph input names, in order (ORB orientation/size only for keypoint_geometry)."""
    return list(INPUTS) + (list(GEOMETRY_INPUTS) if model.conf.keypoint_geometry else [])


class _ExportedSuperGlue(nn.Module):
    """Positional-input wrapper traced by the exporter: inputs -> log-assignment."""

    def __init__(self, model: SuperGlue, with_sinkhorn: bool = True):
        super().__init__()
        self.model = model
        self.names = input_names(model)
        self.with_sinkhorn = with_sinkhorn

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        data = dict(zip(self.names, tensors))
        scores = self.model.score_matrix(data)
        if not self.with_sinkhorn:
            return scores
        return log_optimal_transport_static(scores, self.model.bin_score,
                                            self.model.conf.sinkhorn_iterations)


def log_optimal_transport_static(scores: torch.Tensor, bin_score: torch.Tensor,
                                 iters: int) -> torch.Tensor:
    """models.superglue.log_optimal_transport (no masks, no early stop) for tracing.

    The keypoint counts are taken from tensors, not Python ints, so that the traced graph
    stays valid for every M and N (a Python int would be frozen into the graph).
    """
    row = torch.ones_like(scores[:, :, :1])  # [B x M x 1]
    col = torch.ones_like(scores[:, :1, :])  # [B x 1 x N]
    corner = torch.ones_like(scores[:, :1, :1])
    couplings = torch.cat([torch.cat([scores, row * bin_score], 2),
                           torch.cat([col * bin_score, corner * bin_score], 2)], 1)
    ms, ns = row.sum(1), col.sum(2)  # [B x 1]
    norm = -(ms + ns).log()  # [B x 1]
    log_mu = torch.cat([row[..., 0] * norm, ns.log() + norm], 1)
    log_nu = torch.cat([col[:, 0] * norm, ms.log() + norm], 1)
    return log_sinkhorn(couplings, log_mu, log_nu, iters) - norm[:, :, None]


def _example_inputs(model: SuperGlue, m: int = 48, n: int = 64) -> List[torch.Tensor]:
    # M != N: the traced GNN takes its general path (valid for every M, N), not the path
    # that batches two equally sized images.
    g = torch.Generator().manual_seed(0)
    size = torch.tensor([[640.0, 480.0]])
    out = []
    for count in (m, n):
        out += [torch.rand(1, count, 2, generator=g) * size[:, None],
                torch.rand(1, count, generator=g),
                torch.randn(1, model.conf.input_dim, count, generator=g), size.clone()]
    if model.conf.keypoint_geometry:
        for count in (m, n):
            out += [torch.rand(1, count, generator=g) * 360, torch.rand(1, count,
                                                                        generator=g) * 60 + 31]
    return out


def export_onnx(model: SuperGlue, target: Union[str, Path, None] = None,
                max_keypoints: int = DEFAULT_MAX_KEYPOINTS,
                metadata: Optional[Dict[str, str]] = None, with_sinkhorn: bool = True) -> bytes:
    """Export ``model`` (eval, CPU, fp32) to ONNX; write it to ``target`` when given.

    Returns the serialised model. ``max_keypoints`` is recorded in the file: the backend
    refuses larger inputs with a clear error (memory grows with M x N). Output
    ``log_assignment``, or ``scores`` [1 x M x N] with ``with_sinkhorn=False``.
    """
    onnx = require('onnx')
    if not isinstance(model, SuperGlue):
        raise TypeError(f'only SuperGlue models export to ONNX, got {type(model).__name__}')
    if max_keypoints < 1:
        raise ValueError(f'max_keypoints must be >= 1, got {max_keypoints}')
    # A copy: the caller's model keeps its device and dtype (and the exporter resets the
    # training flag of every submodule to the wrapper's when it is done).
    model = copy.deepcopy(model).eval().float().cpu()
    names = input_names(model)
    dynamic = {}
    for name in names:
        axis = 2 if name.startswith('descriptors') else 1
        if name.startswith('image_size'):
            continue
        dynamic[name] = {axis: 'num_keypoints' + name[-1]}
    output = OUTPUT if with_sinkhorn else SCORES_OUTPUT
    dynamic[output] = {1: 'num_keypoints0_plus_1', 2: 'num_keypoints1_plus_1'} \
        if with_sinkhorn else {1: 'num_keypoints0', 2: 'num_keypoints1'}
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about the model's shape branches (empty input, equal counts):
        # the example pair has M != N > 0, so the traced path is the general one, valid for
        # every size in range. The TorchScript exporter is used because the dynamo one
        # needs onnxscript; its deprecation notice is not the user's concern.
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', FutureWarning)
        torch.onnx.export(_ExportedSuperGlue(model, with_sinkhorn).eval(),
                          tuple(_example_inputs(model)), buffer,
                          input_names=names, output_names=[output], dynamic_axes=dynamic,
                          opset_version=OPSET, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    conf = {k: v for k, v in vars(model.conf).items()}
    props = {META_CONF: json.dumps(conf), META_MAX_KEYPOINTS: str(int(max_keypoints)),
             **(metadata or {})}
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    data = proto.SerializeToString()
    if target is not None:
        Path(target).write_bytes(data)
    return data


def read_metadata(onnx_model: Union[bytes, str, Path]) -> Dict[str, str]:
    """Return the metadata_props of an exported file (conf JSON, max_keypoints, source)."""
    onnx = require('onnx')
    proto = onnx.load_from_string(onnx_model) if isinstance(onnx_model, bytes) \
        else onnx.load(str(onnx_model))
    return {p.key: p.value for p in proto.metadata_props}


class OnnxRuntimeSession:
    """An exported SuperGlue in ONNX Runtime: numpy inputs -> log-assignment (torch, CPU).

    One InferenceSession per intra-op thread count, created on first use, so that the
    engine's automatic thread choice works as with torch. Spinning threads are switched
    off: on a loaded machine a spinning worker takes the core from the thread it waits for.
    """

    def __init__(self, onnx_model: bytes, providers: Sequence[str] = ('CPUExecutionProvider',),
                 max_keypoints: Optional[int] = None):
        self.ort = require('onnxruntime')
        self.onnx_model = onnx_model
        self.providers = list(providers)
        meta = read_metadata(onnx_model)
        limit = max_keypoints or meta.get(META_MAX_KEYPOINTS, DEFAULT_MAX_KEYPOINTS)
        self.max_keypoints = int(limit)
        self._sessions: Dict[int, object] = {}
        self.input_names = [i.name for i in self._session(1).get_inputs()]
        self.output_name = self._session(1).get_outputs()[0].name  # log_assignment | scores

    def _session(self, threads: int):
        session = self._sessions.get(threads)
        if session is None:
            options = self.ort.SessionOptions()
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
            options.add_session_config_entry('session.intra_op.allow_spinning', '0')
            options.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = self.ort.InferenceSession(self.onnx_model, options,
                                                providers=self.providers)
            self._sessions[threads] = session
        return session

    def check_sizes(self, m: int, n: int) -> None:
        """Raise a ValueError naming the input and the exported range if M or N is outside."""
        for name, count in (('keypoints0', m), ('keypoints1', n)):
            if not 1 <= count <= self.max_keypoints:
                raise ValueError(
                    f'{name} has {count} keypoints; the ONNX model accepts 1..'
                    f'{self.max_keypoints} per image (re-export with superglue-export '
                    f'--max-keypoints, or set the engine/node max_keypoints to at most '
                    f'{self.max_keypoints})')

    def run(self, data: Dict[str, torch.Tensor], threads: int = 1) -> torch.Tensor:
        """Run the graph on ``data`` (the model's input dict, batch 1): its one output."""
        m, n = data['keypoints0'].shape[1], data['keypoints1'].shape[1]
        self.check_sizes(m, n)
        feeds = {name: np.ascontiguousarray(data[name].detach().cpu().float().numpy())
                 for name in self.input_names}
        (out,) = self._session(threads).run([self.output_name], feeds)
        return torch.from_numpy(out)

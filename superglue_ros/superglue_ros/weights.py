# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Loading and saving matcher weights: only from explicit file paths, never from a network.

Two file layouts load:
- ours: ``{'format': 'superglue_ros', 'config': {...}, 'state_dict': {...}, 'metadata': {...}}``
  (written by the training pipeline; config says the descriptor type and dimensions);
- the official SuperGlue files (superglue_indoor.pth / superglue_outdoor.pth): a bare state
  dict, loaded unchanged with strict=True as a SuperPoint-descriptor model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch

from .models.superglue import SuperGlue

FORMAT = 'superglue_ros'
PACKAGE_WEIGHTS = Path(__file__).resolve().parent / 'weights'
DEFAULT_WEIGHTS_NAME = 'superglue_orb.pth'


class WeightsError(RuntimeError):
    """A weights file is missing, unreadable or does not fit the model."""


def default_weights_path() -> Path:
    """Return the path of the shipped ORB weights inside the installed package."""
    return PACKAGE_WEIGHTS / DEFAULT_WEIGHTS_NAME


def infer_official_config(state_dict: Dict[str, torch.Tensor]) -> Dict[str, Any]:
    """Model config of a bare official-style state dict, read off its shapes."""
    try:
        dim = int(state_dict['final_proj.weight'].shape[0])
    except KeyError as exc:
        raise WeightsError('state dict has no final_proj.weight: not a SuperGlue file') from exc
    layer_ids = {int(k.split('.')[2]) for k in state_dict if k.startswith('gnn.layers.')}
    kenc = sorted({int(k.split('.')[2]) for k in state_dict
                   if k.startswith('kenc.encoder.') and k.endswith('.weight')
                   and state_dict[k].dim() == 3})
    channels = [int(state_dict[f'kenc.encoder.{i}.weight'].shape[0]) for i in kenc[:-1]]
    return {'descriptor_dim': dim, 'descriptor_type': 'superpoint', 'keypoint_encoder': channels,
            'gnn_layers': len(layer_ids) // 2}


def load_weights(path: Union[str, Path], overrides: Optional[Dict[str, Any]] = None,
                 device: Union[str, torch.device] = 'cpu') -> Tuple[SuperGlue, Dict[str, Any]]:
    """Build a SuperGlue from a weights file; returns (model in eval mode, metadata).

    ``overrides`` changes run-time keys (match_threshold, sinkhorn_iterations, ...); keys that
    define the architecture cannot be overridden.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f'weights file not found: {path}')
    try:
        blob = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise WeightsError(f'cannot read weights file {path}: {exc}') from exc
    if isinstance(blob, dict) and blob.get('format') == FORMAT:
        config, state_dict = dict(blob['config']), blob['state_dict']
        metadata = dict(blob.get('metadata', {}))
    elif isinstance(blob, dict) and all(isinstance(v, torch.Tensor) for v in blob.values()):
        state_dict, metadata = blob, {'source': 'official-format state dict'}
        config = infer_official_config(state_dict)
    else:
        raise WeightsError(f'{path} is neither a superglue_ros weights file nor a SuperGlue '
                           f'state dict')
    structural = {'descriptor_dim', 'input_dim', 'descriptor_type', 'keypoint_encoder',
                  'gnn_layers', 'num_heads', 'keypoint_geometry'}
    for key, value in (overrides or {}).items():
        stored = config.get(key, SuperGlue.default_conf.get(key))
        if key in structural and stored is not None and stored != value:
            raise WeightsError(f'{key}={value!r} conflicts with the weights in {path} '
                               f'({key}={stored!r})')
        config[key] = value
    model = SuperGlue(config)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f'weights in {path} do not fit the model: {exc}') from exc
    metadata['path'] = str(path)
    return model.eval().to(device), metadata


def save_weights(path: Union[str, Path], model: SuperGlue,
                 metadata: Optional[Dict[str, Any]] = None) -> None:
    """Write our weights layout (state dict + config + metadata)."""
    config = dict(vars(model.conf))
    blob = {'format': FORMAT, 'config': config,
            'state_dict': {k: v.detach().cpu() for k, v in model.state_dict().items()},
            'metadata': metadata or {}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(blob, path)

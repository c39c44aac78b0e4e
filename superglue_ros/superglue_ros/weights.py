# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Loading and saving matcher weights: only from explicit file paths, never from a network.

Two file layouts load:
- ours: ``{'format': 'superglue_ros', 'model': 'superglue', 'config': {...},
  'state_dict': {...}, 'metadata': {...}}`` (written by ``save_weights``; ``model`` is the
  registry name, see ``models.get_model``; files written before it existed have none and are
  SuperGlue);
- the official SuperGlue files (superglue_indoor.pth / superglue_outdoor.pth): a bare state
  dict, loaded unchanged with strict=True as a SuperPoint-descriptor SuperGlue.

Files are read with ``torch.load(weights_only=True)``: tensors and plain containers only, so a
file from elsewhere cannot run code when it is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from .models import DEFAULT_MODEL, model_entry, model_name

FORMAT = 'superglue_ros'
PACKAGE_WEIGHTS = Path(__file__).resolve().parent / 'weights'
DEFAULT_WEIGHTS_NAME = 'superglue_orb.pth'


class WeightsError(RuntimeError):
    """A weights file is missing, unreadable or does not fit the model."""


# Allowed values of the SuperGlue config keys: (kind, lowest, highest). The ranges bound what a
# weights file (or an override) can make the matcher do: beyond them a match takes minutes or
# more memory than a robot has (e.g. 10^9 Sinkhorn iterations hang, 200000 layers exhaust RAM).
CONFIG_RANGES = {
    'descriptor_dim': ('int', 1, 4096),
    'input_dim': ('int', 1, 65536),  # or None (= descriptor_dim)
    'gnn_layers': ('int', 0, 64),
    'num_heads': ('int', 1, 64),
    'sinkhorn_iterations': ('int', 0, 1000),
    'sinkhorn_tolerance': ('float', 0.0, 1.0),
    'match_threshold': ('float', 0.0, 1.0),
    'keypoint_geometry': ('bool', None, None),
}
ENCODER_RANGE = (1, 4096)  # channels of each keypoint_encoder layer
ENCODER_MAX_LAYERS = 16


def _bad(where: str, key: str, value: Any, allowed: str) -> WeightsError:
    return WeightsError(f'{where}: {key}={value!r} is invalid: allowed {allowed}')


def validate_config(config: Mapping[str, Any], where: str = 'weights config') -> None:
    """Check the types and ranges of a SuperGlue config; raise a one-line WeightsError.

    The message names the key and the allowed range. Keys not listed in CONFIG_RANGES
    (descriptor_type, unknown keys) are left to the model, which names them.
    """
    for key, (kind, low, high) in CONFIG_RANGES.items():
        if key not in config or (key == 'input_dim' and config[key] is None):
            continue
        value = config[key]
        if kind == 'bool':
            if not isinstance(value, bool):
                raise _bad(where, key, value, 'true or false')
            continue
        number_types = (int,) if kind == 'int' else (int, float)
        if isinstance(value, bool) or not isinstance(value, number_types) or \
                not low <= value <= high:
            raise _bad(where, key, value, f'{kind} in [{low}, {high}]')
    encoder = config.get('keypoint_encoder')
    if encoder is not None:
        low, high = ENCODER_RANGE
        if not isinstance(encoder, (list, tuple)) or len(encoder) > ENCODER_MAX_LAYERS or \
                not all(isinstance(c, int) and not isinstance(c, bool) and low <= c <= high
                        for c in encoder):
            raise _bad(where, 'keypoint_encoder', encoder, f'a list of up to '
                       f'{ENCODER_MAX_LAYERS} ints in [{low}, {high}]')
    dim, heads = config.get('descriptor_dim'), config.get('num_heads')
    if isinstance(dim, int) and isinstance(heads, int) and heads and dim % heads:
        raise _bad(where, 'num_heads', heads, f'a divisor of descriptor_dim={dim}')


def default_weights_path() -> Path:
    """Return the path of the shipped ORB weights inside the installed package."""
    return PACKAGE_WEIGHTS / DEFAULT_WEIGHTS_NAME


def weights_path(path: Union[str, Path, None] = None) -> Path:
    """Return ``path`` as a Path (None/empty: the shipped weights); WeightsError if missing."""
    resolved = Path(path).expanduser() if path else default_weights_path()
    if not resolved.is_file():
        hint = '' if path else (' (the shipped weights are missing from this installation: '
                                'train them with superglue-train or give a weights file)')
        raise WeightsError(f'weights file not found: {resolved}{hint}')
    return resolved


def infer_official_config(state_dict: Dict[str, torch.Tensor]) -> Dict[str, Any]:
    """Model config of a bare official-style SuperGlue state dict, read off its shapes."""
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


def _unpack(blob: Any, path: Path) -> Tuple[str, Dict[str, Any], Dict, Dict[str, Any]]:
    """(model name, config, state dict, metadata) of a loaded file of either layout."""
    if isinstance(blob, dict) and blob.get('format') == FORMAT:
        for key, kind in (('config', dict), ('state_dict', dict)):
            if not isinstance(blob.get(key), kind):
                raise WeightsError(f'{path}: the {key!r} entry is missing or not a '
                                   f'{kind.__name__}')
        metadata = blob.get('metadata', {})
        return (str(blob.get('model', DEFAULT_MODEL)), dict(blob['config']), blob['state_dict'],
                dict(metadata) if isinstance(metadata, dict) else {})
    if isinstance(blob, dict) and all(isinstance(v, torch.Tensor) for v in blob.values()):
        return (DEFAULT_MODEL, infer_official_config(blob), blob,
                {'source': 'official-format state dict'})
    raise WeightsError(f'{path} is neither a superglue_ros weights file nor a SuperGlue '
                       f'state dict')


def load_weights(path: Union[str, Path, None] = None,
                 overrides: Optional[Mapping[str, Any]] = None
                 ) -> Tuple[nn.Module, Dict[str, Any]]:
    """Build the model a weights file holds; returns (model in eval mode on the CPU, metadata).

    ``path`` None = the shipped weights. ``overrides`` changes run-time keys
    (match_threshold, sinkhorn_iterations, ...); keys that define the architecture cannot be
    overridden. The metadata gains ``path`` and ``model`` (the registry name).
    """
    path = weights_path(path)
    try:
        blob = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise WeightsError(f'cannot read weights file {path}: {exc}') from exc
    name, config, state_dict, metadata = _unpack(blob, path)
    try:
        entry = model_entry(name)
    except ValueError as exc:
        raise WeightsError(f'weights file {path}: {exc}') from exc
    for key, value in (overrides or {}).items():
        stored = config.get(key, entry.cls.default_conf.get(key))
        if key in entry.structural and stored is not None and stored != value:
            raise WeightsError(f'{key}={value!r} conflicts with the weights in {path} '
                               f'({key}={stored!r})')
        config[key] = value
    if name == DEFAULT_MODEL:
        validate_config(config, f'weights file {path}')
    try:
        model = entry.cls(config)
    except (TypeError, ValueError, KeyError) as exc:
        raise WeightsError(f'weights file {path}: invalid config: {exc}') from exc
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f'weights in {path} do not fit the model: {exc}') from exc
    metadata.update(path=str(path), model=name)
    return model.eval(), metadata


def save_weights(path: Union[str, Path], model: nn.Module,
                 metadata: Optional[Dict[str, Any]] = None) -> None:
    """Write our weights layout (model name + config + state dict + metadata)."""
    blob = {'format': FORMAT, 'model': model_name(model), 'config': dict(vars(model.conf)),
            'state_dict': {k: v.detach().cpu() for k, v in model.state_dict().items()},
            'metadata': metadata or {}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(blob, path)

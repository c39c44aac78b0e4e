# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Torch models, built by name through a small registry (as glue-factory's ``get_model``).

A weights file records the name its model is registered under (``'model': 'superglue'``) next
to its config; ``weights.load_weights`` builds it with ``get_model(name, config)``. Files
without a name (older files, the official state dicts) are ``DEFAULT_MODEL``.

A model class takes one config dict, has a class-level ``default_conf`` and keeps the merged
config as ``self.conf``. The matching engine reads ``conf.descriptor_type``,
``conf.input_dim``, ``conf.match_threshold`` and ``conf.keypoint_geometry`` and calls the
model with the SuperGlue/LightGlue input and output keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Iterable, Mapping, Optional, Tuple

from torch import nn

from .superglue import SuperGlue

DEFAULT_MODEL = 'superglue'


@dataclass(frozen=True)
class ModelEntry:
    """A registered model class and the config keys that define its architecture."""

    cls: type
    structural: FrozenSet[str]  # a weights file's value of these keys cannot be overridden


_REGISTRY: Dict[str, ModelEntry] = {}


def register_model(name: str, cls: type, structural: Iterable[str] = ()) -> None:
    """Make ``cls`` buildable as ``get_model(name, conf)``."""
    if name in _REGISTRY and _REGISTRY[name].cls is not cls:
        raise ValueError(f'model name {name!r} is already registered for '
                         f'{_REGISTRY[name].cls.__name__}')
    _REGISTRY[name] = ModelEntry(cls, frozenset(structural))


def available_models() -> Tuple[str, ...]:
    """Names ``get_model`` knows, sorted."""
    return tuple(sorted(_REGISTRY))


def model_entry(name: str) -> ModelEntry:
    """Registry entry of ``name``; ValueError naming the known models if there is none."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f'unknown model {name!r}: known models are '
                         f'{", ".join(available_models())}') from None


def get_model(name: str, conf: Optional[Mapping[str, Any]] = None) -> nn.Module:
    """Build the model registered as ``name`` with ``conf`` (merged over its default_conf)."""
    return model_entry(name).cls(dict(conf or {}))


def model_name(model: nn.Module) -> str:
    """Name under which the class of ``model`` is registered (what a weights file records)."""
    for name, entry in _REGISTRY.items():
        if type(model) is entry.cls:
            return name
    raise ValueError(f'{type(model).__name__} is not a registered model: register it with '
                     f'register_model(name, cls)')


register_model('superglue', SuperGlue, structural=(
    'descriptor_dim', 'input_dim', 'descriptor_type', 'keypoint_encoder', 'gnn_layers',
    'num_heads', 'keypoint_geometry'))

__all__ = ['available_models', 'DEFAULT_MODEL', 'get_model', 'model_entry', 'model_name',
           'ModelEntry', 'register_model', 'SuperGlue']

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Torch models."""

from .superglue import SuperGlue

__all__ = ['SuperGlue']

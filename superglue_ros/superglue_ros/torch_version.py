# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The minimum torch version, checked before the matcher imports torch.

The model needs torch >= 2.0 (``scaled_dot_product_attention``, ``inference_mode``,
``torch.load(weights_only=True)``). Distribution packages can be older: rosdep's
``python3-torch`` is 1.8 on Ubuntu 22.04 (Humble) and 1.13 on Debian 12. An older torch would
fail somewhere inside the model, or already at import; ``require_torch`` turns that into one
line that says what to install.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
from typing import Optional, Tuple

from .threads import prefer_passive_waiting

MIN_TORCH = (2, 0)
HOW_TO_INSTALL = ('install torch >= {need} with pip into the Python that ROS uses, e.g. '
                  'python3 -m pip install "torch>={need}" (or a venv created with '
                  '--system-site-packages); see the README, "On a real ROS 2 install"')


def installed_torch_version() -> Optional[str]:
    """Return the version of the installed torch without importing it; None when absent."""
    try:
        return importlib.metadata.version('torch')
    except importlib.metadata.PackageNotFoundError:
        if importlib.util.find_spec('torch') is None:
            return None
        import torch  # installed without metadata (a source build on the path)
        return str(torch.__version__)


def version_tuple(version: str) -> Tuple[int, int]:
    """'2.13.0+cpu' -> (2, 13); raise ValueError when there is no major.minor."""
    match = re.match(r'\s*(\d+)\.(\d+)', version)
    if match is None:
        raise ValueError(f'cannot read the torch version {version!r}')
    return int(match.group(1)), int(match.group(2))


def require_torch(minimum: Tuple[int, int] = MIN_TORCH) -> str:
    """Return the installed torch version; raise RuntimeError when it is missing or too old."""
    need = '.'.join(str(v) for v in minimum)
    how = HOW_TO_INSTALL.format(need=need)
    version = installed_torch_version()
    if version is None:
        raise RuntimeError(f'torch is not installed; superglue_ros needs torch >= {need}: {how}')
    if version_tuple(version) < tuple(minimum):
        raise RuntimeError(f'torch {version} is too old; superglue_ros needs torch >= {need}: '
                           f'{how}')
    return version


def matcher_main(args=None) -> int:
    """Console script ``matcher_node``: check torch, then run the matcher node's main.

    The check runs before the matcher's modules are imported, since an old torch can already
    fail there. OpenMP's wait policy is chosen here too, before torch loads it (threads.py).
    """
    prefer_passive_waiting()
    try:
        require_torch()
    except RuntimeError as exc:
        print(f'[FATAL] [superglue_matcher]: cannot start: {exc}', file=sys.stderr)
        return 1
    from .nodes.matcher_node import main
    return main(args)


def managed_matcher_main(args=None) -> int:
    """Console script ``managed_matcher_node``: the lifecycle variant, same torch check."""
    prefer_passive_waiting()
    try:
        require_torch()
    except RuntimeError as exc:
        print(f'[FATAL] [superglue_matcher]: cannot start: {exc}', file=sys.stderr)
        return 1
    from .nodes.managed_matcher_node import main
    return main(args)

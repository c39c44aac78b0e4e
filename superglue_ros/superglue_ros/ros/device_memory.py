# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Giving a freed model's device memory back, for the managed matcher's cleanup transition.

Torch's CUDA allocator keeps freed blocks cached for the process; a node that lets its model
go, so that another process can use the GPU, must also empty that cache. Imports torch only
when the device is CUDA (and no rclpy), so the check runs on a GPU machine without ROS.
"""

from __future__ import annotations

import gc
from typing import Any, Optional


def release_device_memory(device: Any) -> Optional[int]:
    """Collect garbage and, on CUDA, return the allocator's cached blocks to the driver.

    Call it after the last reference to the model (and its prepared keyframes) is gone.
    Returns the bytes torch still reserves on that CUDA device afterwards (0 when everything
    was freed), None for other devices.
    """
    gc.collect()  # reference cycles holding tensors go now, not at some later collection
    if getattr(device, 'type', None) != 'cuda':
        return None
    import torch
    torch.cuda.synchronize(device)
    # cuBLAS keeps a workspace per handle and stream (32 MiB on an H100) in the caching
    # allocator, alive after every tensor is gone: measured 33 of 34 MiB left without this.
    clear_workspaces = getattr(torch._C, '_cuda_clearCublasWorkspaces', None)
    if clear_workspaces is not None:
        clear_workspaces()
    torch.cuda.empty_cache()
    return int(torch.cuda.memory_reserved(device))

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""DDS transport of the nodes: camera images of any size at the sensor-data (best-effort) QoS.

Fast DDS on one host sends through shared memory, in a 512 KiB segment per publisher. Samples
larger than that (640x480 bgr8: 900 KiB) are fragmented inside the segment and the fragments
of one frame overwrite each other before a busy reader has copied them; a best-effort reader
cannot ask again, so most colour frames never arrive (measured: 31 of 90 at 640x480 bgr8,
15 of 90 at 1280x720, from a publisher at its defaults). The fix is on the receiving side,
since a camera driver runs with its own settings: the nodes' participant receives over UDP
only, into a socket buffer that holds several whole frames (``fastdds_large_images.xml``).

``use_large_image_transport`` points Fast DDS at that profile through the environment; it must
run before the process creates its first participant (``rclpy.init``), and it leaves alone a
process whose user chose another RMW or their own Fast DDS profile.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import MutableMapping, Optional

PROFILE = Path(__file__).resolve().parent / 'fastdds_large_images.xml'
# Fast DDS 2.x (Humble, Jazzy) reads the first, Fast DDS 3.x (Kilted) the second.
PROFILE_VARIABLES = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')
OPT_OUT = 'SUPERGLUE_ROS_DDS_PROFILE'  # '0' = keep Fast DDS at its defaults


def use_large_image_transport(environ: Optional[MutableMapping[str, str]] = None
                              ) -> Optional[str]:
    """Select the large-image Fast DDS profile for this process; returns what was done.

    Returns None when the profile was applied, else the reason it was not (for the log).
    """
    env = os.environ if environ is None else environ
    rmw = env.get('RMW_IMPLEMENTATION', '')
    if rmw and not rmw.startswith('rmw_fastrtps'):
        return f'RMW_IMPLEMENTATION={rmw}: DDS transport left at its settings'
    if env.get(OPT_OUT, '1') == '0':
        return f'{OPT_OUT}=0: Fast DDS left at its defaults'
    for name in PROFILE_VARIABLES:
        if env.get(name):
            return f'{name}={env[name]} is used (superglue_ros profile not applied)'
    if not PROFILE.is_file():
        return f'profile {PROFILE} is missing from this installation'
    for name in PROFILE_VARIABLES:
        env[name] = str(PROFILE)
    return None


def transport_note(reason: Optional[str]) -> str:
    """One line for the startup log about the DDS transport."""
    if reason is None:
        return f'Fast DDS profile {PROFILE.name} (UDP, large receive buffers)'
    return reason

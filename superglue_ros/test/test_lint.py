# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""ROS lint style: flake8 at 99 columns, single quotes, pep257 docstrings (as ament_flake8)."""

from pathlib import Path
import subprocess
import sys

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def test_flake8_ros_style():
    cmd = [sys.executable, '-m', 'flake8', '--config', str(PACKAGE_ROOT / 'setup.cfg'),
           str(PACKAGE_ROOT)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f'flake8 found problems:\n{res.stdout}{res.stderr}'

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""colcon (from PyPI) discovers and builds both packages against the venv's ROS prefix.

colcon is taken from the running interpreter's bin/ (the venv, as `make test` runs it without
activating it), else from PATH.
"""

import os
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COLCON = shutil.which('colcon', path=str(BIN)) or shutil.which('colcon')


@pytest.mark.skipif(COLCON is None, reason=f'colcon is not installed (not in {BIN}, not on '
                                           f'PATH): requirements.txt installs it into the venv')
def test_colcon_builds_both_packages(tmp_path):
    prefix = sys.prefix  # the venv is the ROS prefix in the pip setup
    # The venv's bin/ first, as if activated: colcon's build steps run python and cmake tools.
    env = dict(os.environ, AMENT_PREFIX_PATH=prefix, CMAKE_PREFIX_PATH=prefix,
               PATH=f'{BIN}{os.pathsep}{os.environ.get("PATH", "")}')
    listing = subprocess.run([COLCON, 'list', '--names-only', '--base-paths', str(REPO)],
                             capture_output=True, text=True, env=env, check=True)
    assert sorted(listing.stdout.split()) == ['superglue_ros', 'superglue_ros_msgs']
    cmd = [COLCON, '--log-base', str(tmp_path / 'log'), 'build', '--base-paths', str(REPO),
           '--build-base', str(tmp_path / 'build'), '--install-base', str(tmp_path / 'install'),
           '--event-handlers', 'console_cohesion-', '--cmake-args',
           f'-DPython3_EXECUTABLE={sys.executable}', '-DBUILD_TESTING=OFF', '-Wno-dev']
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert 'Summary: 2 packages finished' in res.stdout
    install = tmp_path / 'install'
    msgs = list((install / 'superglue_ros_msgs').rglob('superglue_ros_msgs/msg/_keypoints.py'))
    assert msgs, 'generated Python message module missing'
    lib = install / 'superglue_ros' / 'lib' / 'superglue_ros'
    for exe in ('matcher_node', 'frontend_node'):
        assert (lib / exe).exists(), f'{exe} not installed where ros2 run looks for it'
    share = install / 'superglue_ros' / 'share' / 'superglue_ros'
    assert (share / 'launch' / 'superglue.launch.py').exists()
    assert (share / 'config' / 'superglue.yaml').exists()
    assert (install / 'superglue_ros' / 'share' / 'ament_index' / 'resource_index' / 'packages'
            / 'superglue_ros').exists()

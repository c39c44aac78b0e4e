# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""package.xml declares what the code imports; the matcher refuses a torch below 2.0."""

import ast
import os
from pathlib import Path
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
import torch

from superglue_ros import torch_version

ROOT = Path(__file__).resolve().parents[1]
# Top-level modules imported by the package -> the rosdep key that provides them.
ROSDEP_KEYS = {
    'numpy': 'python3-numpy', 'cv2': 'python3-opencv', 'torch': 'python3-torch',
    'yaml': 'python3-yaml', 'matplotlib': 'python3-matplotlib', 'tqdm': 'python3-tqdm',
    'scipy': 'python3-scipy',
    'rosbags': 'python3-rosbags-pip', 'rclpy': 'rclpy', 'message_filters': 'message_filters',
    'cv_bridge': 'cv_bridge', 'ament_index_python': 'ament_index_python',
    'launch': 'launch', 'launch_ros': 'launch_ros', 'sensor_msgs': 'sensor_msgs',
    'geometry_msgs': 'geometry_msgs',
    'std_msgs': 'std_msgs', 'builtin_interfaces': 'builtin_interfaces',
    'diagnostic_msgs': 'diagnostic_msgs', 'rcl_interfaces': 'rcl_interfaces',
    'superglue_ros_msgs': 'superglue_ros_msgs', 'std_srvs': 'std_srvs',
    'lifecycle_msgs': 'lifecycle_msgs', 'nav_msgs': 'nav_msgs',
}
# Optional PyPI-only modules, imported only by the reference back-end (replay --backend).
OPTIONAL = {'gtsam', 'evo'}


def imported_modules():
    found = set()
    files = list((ROOT / 'superglue_ros').rglob('*.py')) + list((ROOT / 'launch').glob('*.py'))
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split('.')[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split('.')[0])
    return found - set(sys.stdlib_module_names) - {'superglue_ros', '__future__'} - OPTIONAL


def test_package_xml_declares_every_import():
    root = ET.parse(ROOT / 'package.xml').getroot()
    declared = {e.text for e in root if e.tag in ('depend', 'exec_depend')}
    modules = imported_modules()
    unknown = modules - set(ROSDEP_KEYS)
    assert not unknown, f'imported but not mapped to a rosdep key here: {unknown}'
    missing = {ROSDEP_KEYS[m] for m in modules} - declared
    assert not missing, f'not declared in package.xml: {missing}'
    assert 'python3-rosbags-pip' in declared  # superglue-replay after a plain rosdep install


def test_installed_torch_passes_the_check():
    assert torch_version.installed_torch_version().split('+')[0] == \
        torch.__version__.split('+')[0]
    assert torch_version.require_torch() == torch_version.installed_torch_version()


@pytest.mark.parametrize('version,ok', [('1.8.1', False), ('1.13.1+dfsg', False),
                                        ('2.0.0', True), ('2.13.0+cpu', True),
                                        ('10.1', True)])
def test_minimum_torch_version(monkeypatch, version, ok):
    monkeypatch.setattr(torch_version, 'installed_torch_version', lambda: version)
    if ok:
        assert torch_version.require_torch() == version
    else:
        expected = rf'torch {re.escape(version)} is too old; superglue_ros needs torch >= 2\.0'
        with pytest.raises(RuntimeError, match=expected):
            torch_version.require_torch()


def test_missing_torch(monkeypatch):
    monkeypatch.setattr(torch_version, 'installed_torch_version', lambda: None)
    with pytest.raises(RuntimeError, match='torch is not installed'):
        torch_version.require_torch()
    with pytest.raises(ValueError):
        torch_version.version_tuple('unknown')


@pytest.mark.parametrize('entry', ['console_script', 'node_main'])
def test_matcher_refuses_an_old_torch_with_one_line(entry):
    # What `ros2 run superglue_ros matcher_node` (the console script) and the module's own main
    # do when the installed torch is 1.8.1 (Ubuntu 22.04's python3-torch).
    call = ('torch_version.matcher_main([])' if entry == 'console_script' else
            '__import__("superglue_ros.nodes.matcher_node").nodes.matcher_node.main([])')
    code = ('from superglue_ros import torch_version\n'
            'torch_version.installed_torch_version = lambda: "1.8.1"\n'
            f'raise SystemExit({call})\n')
    env = dict(os.environ, ROS_DOMAIN_ID='99', SUPERGLUE_ROS_SOFT_EXIT='1')
    proc = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                          text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert 'cannot start: torch 1.8.1 is too old; superglue_ros needs torch >= 2.0' in out
    assert 'Traceback' not in out
    setup = (ROOT / 'setup.py').read_text()
    assert "'matcher_node = superglue_ros.torch_version:matcher_main'" in setup

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Launch file and config checks that need no launch/launch_ros (test_launch_service runs it).

The launch file must compile; every DeclareLaunchArgument has a description; every
superglue_ros executable it starts is a console script of setup.py; the config it defaults to
exists, is installed by setup.py and names the nodes the launch file starts.
"""

import ast
from pathlib import Path
import re

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / 'launch' / 'superglue.launch.py'
CONFIG = ROOT / 'config' / 'superglue.yaml'
EXPECTED_ARGUMENTS = {'params_file', 'namespace', 'use_frontend', 'camera', 'video_device',
                      'image_topic', 'keypoints_topic', 'correspondences_topic', 'log_level',
                      'use_sim_time', 'camera_info_topic', 'managed', 'autostart'}
EXTERNAL_EXECUTABLES = {('v4l2_camera', 'v4l2_camera_node'), ('usb_cam', 'usb_cam_node_exe')}


def _calls(tree, name):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, 'id', getattr(n.func, 'attr', None)) == name]


def _kwargs(call):
    return {k.arg: k.value for k in call.keywords}


def _const(node):
    return node.value if isinstance(node, ast.Constant) else None


@pytest.fixture(scope='module')
def tree():
    source = LAUNCH.read_text()
    compile(source, str(LAUNCH), 'exec')
    return ast.parse(source)


def test_launch_file_compiles_and_defines_generate_launch_description(tree):
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert 'generate_launch_description' in names


def test_every_argument_is_declared_with_a_description(tree):
    declared = {}
    for call in _calls(tree, 'DeclareLaunchArgument'):
        name = _const(call.args[0])
        description = _kwargs(call).get('description')
        assert description is not None, f'{name} has no description'
        text = _const(description) if not isinstance(description, ast.BinOp) else 'x'
        assert text, f'{name} has an empty description'
        declared[name] = call
    assert set(declared) == EXPECTED_ARGUMENTS
    used = {_const(c.args[0]) for c in _calls(tree, 'LaunchConfiguration')}
    assert used <= set(declared), f'undeclared: {used - set(declared)}'
    assert used == set(declared), f'declared but unused: {set(declared) - used}'


def test_executables_exist(tree):
    setup = (ROOT / 'setup.py').read_text()
    scripts = set(re.findall(r"'([\w-]+) = superglue_ros\.[\w.]+:\w+'", setup))
    started = set()
    for call in _calls(tree, 'Node') + _calls(tree, 'LifecycleNode'):
        kw = _kwargs(call)
        started.add((_const(kw['package']), _const(kw['executable'])))
    ours = {e for p, e in started if p == 'superglue_ros'}
    assert ours == {'matcher_node', 'frontend_node', 'managed_matcher_node'}
    assert ours <= scripts, f'not console scripts in setup.py: {ours - scripts}'
    assert started - {('superglue_ros', e) for e in ours} == EXTERNAL_EXECUTABLES
    for module in ours:
        assert (ROOT / 'superglue_ros' / 'nodes' / f'{module}.py').is_file()


def test_default_params_file_is_installed_and_names_the_nodes(tree):
    source = LAUNCH.read_text()
    assert "'config'" in source and "'superglue.yaml'" in source
    setup = (ROOT / 'setup.py').read_text()
    assert "glob('config/*.yaml')" in setup and "glob('launch/*.launch.py')" in setup
    config = yaml.safe_load(CONFIG.read_text())
    nodes = _calls(tree, 'Node') + _calls(tree, 'LifecycleNode')
    names = {_const(_kwargs(c)['name']) for c in nodes
             if _const(_kwargs(c)['package']) == 'superglue_ros'}
    # '/**/name' matches the node in any namespace: namespace:=robot1 keeps the parameters.
    assert set(config) == {f'/**/{name}' for name in names}
    for node in config.values():
        assert set(node) == {'ros__parameters'}


def test_config_has_one_comment_per_key():
    for line in CONFIG.read_text().splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith('#') and not stripped.endswith(':'):
            assert '#' in line, f'no comment: {line}'


def test_topic_defaults_match_the_tools(tree):
    # The replay and the demo bag wire the nodes as the launch file does (ros/topics.py); the
    # defaults are relative, so a namespace moves the whole pipeline.
    from superglue_ros.ros import topics
    defaults = {_const(c.args[0]): _const(_kwargs(c)['default_value'])
                for c in _calls(tree, 'DeclareLaunchArgument')}
    assert defaults['image_topic'] == topics.IMAGE
    assert defaults['keypoints_topic'] == topics.KEYPOINTS
    assert defaults['correspondences_topic'] == topics.CORRESPONDENCES
    relative = (topics.IMAGE, topics.KEYPOINTS, topics.CORRESPONDENCES)
    assert not any(t.startswith('/') for t in relative)
    assert topics.resolve(topics.KEYPOINTS, 'robot1') == '/robot1/superglue/keypoints'
    assert topics.resolve(topics.KEYPOINTS, '/a/b/') == '/a/b/superglue/keypoints'
    assert topics.resolve('/abs/x', 'robot1') == '/abs/x'
    assert topics.CORRESPONDENCES_TOPIC == '/superglue/correspondences'


def test_use_sim_time_reaches_every_node(tree):
    source = LAUNCH.read_text()
    assert source.count('parameters=[params_file, use_sim_time]') == 3  # managed matcher too
    assert "camera_params = [{'video_device': LaunchConfiguration('video_device')}, " \
           'use_sim_time]' in source
    assert "ParameterValue(LaunchConfiguration('use_sim_time')" in source

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Launch the SuperGlue matcher, optionally the ORB front-end and a camera driver.

Topic names are relative: ``namespace:=robot1`` puts the whole pipeline under ``/robot1``
(parameters included: the config keys match the nodes in any namespace).

``managed:=true`` starts the matcher as a managed (lifecycle) node; with ``autostart:=true``
(the default) the launch configures and activates it, with ``autostart:=false`` a lifecycle
manager or ``ros2 lifecycle set`` does.

Examples:
  ros2 launch superglue_ros superglue.launch.py camera:=v4l2_camera
  ros2 launch superglue_ros superglue.launch.py namespace:=robot1 use_sim_time:=true
  ros2 launch superglue_ros superglue.launch.py use_frontend:=false
      keypoints_topic:=/orb_slam/keypoints image_topic:=/camera/image_raw
  ros2 launch superglue_ros superglue.launch.py managed:=true autostart:=false
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.conditions import IfCondition, UnlessCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.parameter_descriptions import ParameterValue
from lifecycle_msgs.msg import Transition


def generate_launch_description() -> LaunchDescription:
    """Matcher + optional front-end + optional camera driver, wired by remappings."""
    default_params = os.path.join(get_package_share_directory('superglue_ros'), 'config',
                                  'superglue.yaml')
    params_file = LaunchConfiguration('params_file')
    namespace = LaunchConfiguration('namespace')
    camera = LaunchConfiguration('camera')
    image_topic = LaunchConfiguration('image_topic')
    keypoints_topic = LaunchConfiguration('keypoints_topic')
    correspondences_topic = LaunchConfiguration('correspondences_topic')
    camera_info_topic = LaunchConfiguration('camera_info_topic')
    managed = LaunchConfiguration('managed')
    autostart = LaunchConfiguration('autostart')
    log_level = LaunchConfiguration('log_level')
    use_sim_time = {'use_sim_time': ParameterValue(LaunchConfiguration('use_sim_time'),
                                                   value_type=bool)}

    arguments = [
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='YAML file with the parameters of both nodes'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of every node and of the default '
                                          '(relative) topics'),
        DeclareLaunchArgument('use_sim_time', default_value='false', choices=['true', 'false'],
                              description='Use the /clock topic (simulation, bag replay with '
                                          '--clock) as the time source of every node'),
        DeclareLaunchArgument('use_frontend', default_value='true',
                              description='Start the ORB front-end (false when the SLAM '
                                          'system publishes its own keypoints)'),
        DeclareLaunchArgument('camera', default_value='none',
                              choices=['none', 'v4l2_camera', 'usb_cam'],
                              description='Camera driver to start: none, v4l2_camera or '
                                          'usb_cam'),
        DeclareLaunchArgument('video_device', default_value='/dev/video0',
                              description='Video device of the camera driver'),
        DeclareLaunchArgument('image_topic', default_value='camera/image_raw',
                              description='Camera image topic (sensor_msgs/Image); relative '
                                          'names are inside the namespace'),
        DeclareLaunchArgument('keypoints_topic', default_value='superglue/keypoints',
                              description='Keyframe keypoints topic '
                                          '(superglue_ros_msgs/Keypoints); relative names are '
                                          'inside the namespace'),
        DeclareLaunchArgument('correspondences_topic',
                              default_value='superglue/correspondences',
                              description='Output topic (superglue_ros_msgs/Correspondences); '
                                          'relative names are inside the namespace'),
        DeclareLaunchArgument('camera_info_topic', default_value='camera/camera_info',
                              description='Camera calibration topic (sensor_msgs/CameraInfo), '
                                          'optional: with it the matcher verifies on '
                                          'undistorted points and estimates the relative pose'),
        DeclareLaunchArgument('managed', default_value='false', choices=['true', 'false'],
                              description='Start the matcher as a managed (lifecycle) node'),
        DeclareLaunchArgument('autostart', default_value='true', choices=['true', 'false'],
                              description='With managed:=true, configure and activate the '
                                          'matcher at start (false: leave it unconfigured)'),
        DeclareLaunchArgument('log_level', default_value='info',
                              description='Log level of the superglue nodes'),
    ]

    def camera_is(name: str) -> IfCondition:
        return IfCondition(PythonExpression(["'", camera, "' == '", name, "'"]))

    camera_remap = [('image_raw', image_topic), ('camera_info', camera_info_topic)]
    matcher_remap = [('image', image_topic), ('keypoints', keypoints_topic),
                     ('correspondences', correspondences_topic),
                     ('camera_info', camera_info_topic)]
    matcher_args = ['--ros-args', '--log-level', log_level]
    camera_params = [{'video_device': LaunchConfiguration('video_device')}, use_sim_time]
    nodes = [
        Node(package='v4l2_camera', executable='v4l2_camera_node', name='camera',
             namespace=namespace, parameters=camera_params, remappings=camera_remap,
             condition=camera_is('v4l2_camera'), output='screen'),
        Node(package='usb_cam', executable='usb_cam_node_exe', name='camera',
             namespace=namespace, parameters=camera_params, remappings=camera_remap,
             condition=camera_is('usb_cam'), output='screen'),
        Node(package='superglue_ros', executable='frontend_node', name='superglue_frontend',
             namespace=namespace, parameters=[params_file, use_sim_time],
             remappings=[('image', image_topic), ('keypoints', keypoints_topic)],
             arguments=['--ros-args', '--log-level', log_level],
             condition=IfCondition(LaunchConfiguration('use_frontend')), output='screen'),
        Node(package='superglue_ros', executable='matcher_node', name='superglue_matcher',
             namespace=namespace, parameters=[params_file, use_sim_time],
             remappings=matcher_remap, arguments=matcher_args,
             condition=UnlessCondition(managed), output='screen'),
    ]
    managed_matcher = LifecycleNode(
        package='superglue_ros', executable='managed_matcher_node', name='superglue_matcher',
        namespace=namespace, parameters=[params_file, use_sim_time],
        remappings=matcher_remap, arguments=matcher_args, condition=IfCondition(managed),
        output='screen')

    def transition(transition_id: int, **kwargs) -> EmitEvent:
        return EmitEvent(event=ChangeState(
            lifecycle_node_matcher=matches_action(managed_matcher),
            transition_id=transition_id), **kwargs)
    start_managed = IfCondition(PythonExpression(
        ["'", managed, "' == 'true' and '", autostart, "' == 'true'"]))
    autostart_actions = [
        transition(Transition.TRANSITION_CONFIGURE, condition=start_managed),
        # Activate once configured (the weights are loaded), not before; once only, so a
        # later deactivate is not undone.
        RegisterEventHandler(OnStateTransition(
            target_lifecycle_node=managed_matcher, goal_state='inactive',
            entities=[transition(Transition.TRANSITION_ACTIVATE)], handle_once=True),
            condition=start_managed),
    ]
    return LaunchDescription(arguments + nodes + [managed_matcher] + autostart_actions)

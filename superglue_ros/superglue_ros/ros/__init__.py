# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""ROS 2 glue: message conversions, stamp synchronisation and input validation.

These modules import rclpy message types; the torch core (engine, models) never imports them.
"""

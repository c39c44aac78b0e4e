# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""ROS 2 nodes: the matcher (middle-end) and the ORB front-end."""

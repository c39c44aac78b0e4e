# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""A REFERENCE back-end, an example consumer of the matcher's output: not the product.

It shows what a bundle-adjustment back-end does with ``Correspondences`` and depth, and lets
the replay measure trajectory accuracy (ATE/RPE) per matcher. ``ba`` holds the sliding-window
bundle adjustment (GTSAM, no rclpy); ``nodes/reference_backend_node.py`` is its thin ROS node.
"""

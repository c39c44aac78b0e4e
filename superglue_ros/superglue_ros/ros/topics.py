# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Default topic names of launch/superglue.launch.py, for tools that wire the nodes alike.

The launch file declares them as the defaults of its arguments; test_launch checks that the two
agree.
"""

IMAGE_TOPIC = '/camera/image_raw'
KEYPOINTS_TOPIC = '/superglue/keypoints'
CORRESPONDENCES_TOPIC = '/superglue/correspondences'

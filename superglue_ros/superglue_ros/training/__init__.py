# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Homographic training of SuperGlue on front-end descriptors (ORB first)."""

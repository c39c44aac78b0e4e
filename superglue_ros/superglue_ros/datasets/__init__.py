# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Training and evaluation data, shared by both: homographic pairs and real RGB-D pairs."""

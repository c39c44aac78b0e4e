# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Evaluation against classical matching: homographies, relative pose, baselines."""

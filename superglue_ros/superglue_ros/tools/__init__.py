# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Command-line tools: demo, replay, evaluation, benchmarks."""

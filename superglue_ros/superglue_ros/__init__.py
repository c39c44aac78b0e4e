# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""superglue_ros: a learned feature-matching middle-end for ROS 2 SLAM.

The torch core (models, engine, ImageMatcher) imports without rclpy; the ROS nodes live in
``superglue_ros.nodes``.
"""

__version__ = '0.3.0'
__all__ = ['ImageMatcher', 'ImageMatches', 'MatchingEngine', 'SuperGlue', '__version__']


def __getattr__(name):
    # Lazy imports keep `import superglue_ros` cheap (no torch/OpenCV until needed).
    if name in ('ImageMatcher', 'ImageMatches'):
        from . import matcher
        return getattr(matcher, name)
    if name == 'MatchingEngine':
        from .engine import MatchingEngine
        return MatchingEngine
    if name == 'SuperGlue':
        from .models.superglue import SuperGlue
        return SuperGlue
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')

# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Match visualisation with OpenCV only (used by the demo, the debug image and the replay)."""

from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np


def _bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image.copy()


def confidence_colors(confidence: np.ndarray) -> np.ndarray:
    """BGR colours from red (low) through yellow to green (high confidence) [M x 3] uint8."""
    c = np.clip(np.asarray(confidence, np.float32), 0, 1)
    red = np.clip(2 * (1 - c), 0, 1)
    green = np.clip(2 * c, 0, 1)
    return (np.stack([np.zeros_like(c), green, red], 1) * 255).astype(np.uint8)


def draw_matches(image0: np.ndarray, image1: np.ndarray, points0: np.ndarray,
                 points1: np.ndarray, confidence: np.ndarray,
                 keypoints0: Optional[np.ndarray] = None,
                 keypoints1: Optional[np.ndarray] = None,
                 inliers: Optional[np.ndarray] = None,
                 text: Sequence[str] = (), margin: int = 10) -> np.ndarray:
    """Side-by-side BGR image with match lines coloured by confidence.

    With ``inliers`` given, outliers are drawn thin in grey-blue. Keypoints are small dots.
    """
    a, b = _bgr(image0), _bgr(image1)
    h = max(a.shape[0], b.shape[0])
    canvas = np.full((h, a.shape[1] + margin + b.shape[1], 3), 255, np.uint8)
    canvas[:a.shape[0], :a.shape[1]] = a
    x1 = a.shape[1] + margin
    canvas[:b.shape[0], x1:] = b
    for kpts, dx in ((keypoints0, 0), (keypoints1, x1)):
        if kpts is not None:
            for x, y in np.round(kpts).astype(int):
                cv2.circle(canvas, (x + dx, y), 1, (200, 200, 200), -1, cv2.LINE_AA)
    colors = confidence_colors(confidence)
    order = np.argsort(confidence)  # draw confident matches last, on top
    for i in order:
        p0 = tuple(np.round(points0[i]).astype(int))
        p1 = tuple(np.round(points1[i]).astype(int) + np.array([x1, 0]))
        if inliers is not None and not inliers[i]:
            cv2.line(canvas, p0, p1, (160, 80, 40), 1, cv2.LINE_AA)
            continue
        color = tuple(int(v) for v in colors[i])
        cv2.line(canvas, p0, p1, color, 1, cv2.LINE_AA)
        cv2.circle(canvas, p0, 2, color, -1, cv2.LINE_AA)
        cv2.circle(canvas, p1, 2, color, -1, cv2.LINE_AA)
    for k, line in enumerate(text):
        org = (8, 22 + 22 * k)
        cv2.putText(canvas, line, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, line, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return canvas

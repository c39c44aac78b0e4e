# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Random homographies and photometric augmentation (the paper's homographic set-up)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np


@dataclass
class WarpConfig:
    """Ranges of a random homography; ``strength`` in [0, 1] scales all of them."""

    perspective: float = 0.2  # max corner displacement as a fraction of width/height
    rotation_deg: float = 25.0  # max in-plane rotation
    scale: Tuple[float, float] = (0.75, 1.33)  # min/max isotropic scale (log-uniform)
    translation: float = 0.15  # max shift as a fraction of width/height


@dataclass
class PhotoConfig:
    """Photometric augmentation, applied independently to each image of a pair."""

    brightness: float = 40.0  # max additive change [grey levels]
    contrast: Tuple[float, float] = (0.7, 1.3)
    blur_sigma: float = 1.2  # max Gaussian blur sigma (applied with probability 0.5)
    noise_std: float = 6.0  # max Gaussian noise std [grey levels]


def sample_homography(width: int, height: int, rng: np.random.Generator,
                      conf: WarpConfig = WarpConfig(), strength: float = 1.0) -> np.ndarray:
    """Random 3x3 homography mapping image0 pixels to image1 pixels.

    Built as the perspective transform of the four image corners moved by a rotation + scale
    about the centre, a translation and an independent jitter of each corner.
    """
    w, h = float(width), float(height)
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    center = np.array([w / 2, h / 2], np.float32)
    angle = np.deg2rad(rng.uniform(-1, 1) * conf.rotation_deg * strength)
    lo, hi = np.log(conf.scale[0]), np.log(conf.scale[1])
    scale = np.exp(rng.uniform(lo, hi) * strength)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    moved = (corners - center) @ (rot.T * scale) + center
    moved += rng.uniform(-1, 1, size=2).astype(np.float32) * conf.translation * strength \
        * np.array([w, h], np.float32)
    moved += rng.uniform(-1, 1, size=(4, 2)).astype(np.float32) * conf.perspective * strength \
        * np.array([w, h], np.float32)
    return cv2.getPerspectiveTransform(corners, moved.astype(np.float32)).astype(np.float64)


def warp_points(points: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """Apply a 3x3 homography to [N x 2] points."""
    if len(points) == 0:
        return points.reshape(0, 2).astype(np.float64)
    p = np.concatenate([points, np.ones((len(points), 1))], 1) @ homography.T
    return p[:, :2] / p[:, 2:3]


def photometric(image: np.ndarray, rng: np.random.Generator,
                conf: PhotoConfig = PhotoConfig(), strength: float = 1.0) -> np.ndarray:
    """Brightness, contrast, blur and noise on a uint8 grayscale image."""
    img = image.astype(np.float32)
    c = rng.uniform(*conf.contrast)
    c = 1.0 + (c - 1.0) * strength
    img = (img - img.mean()) * c + img.mean() + rng.uniform(-1, 1) * conf.brightness * strength
    if rng.random() < 0.5 and conf.blur_sigma > 0:
        sigma = rng.uniform(0.1, conf.blur_sigma * max(strength, 0.1))
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    if conf.noise_std > 0:
        img += rng.normal(0, rng.uniform(0, conf.noise_std * strength), img.shape).astype(
            np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def random_crop(image: np.ndarray, width: int, height: int,
                rng: np.random.Generator) -> np.ndarray:
    """Random-scale crop of a grayscale image resized to width x height (aspect kept)."""
    ih, iw = image.shape[:2]
    target = width / height
    # Largest crop with the target aspect, then a random fraction of it.
    cw, ch = (iw, iw / target) if iw / ih < target else (ih * target, ih)
    frac = rng.uniform(0.6, 1.0)
    cw, ch = cw * frac, ch * frac
    x0 = rng.uniform(0, iw - cw)
    y0 = rng.uniform(0, ih - ch)
    crop = image[int(y0):int(y0 + ch), int(x0):int(x0 + cw)]
    interp = cv2.INTER_AREA if cw > width else cv2.INTER_LINEAR
    return cv2.resize(crop, (width, height), interpolation=interp)

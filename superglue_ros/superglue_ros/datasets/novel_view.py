# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Training pairs with real parallax: a real RGB-D frame and a view of it rendered from a new pose.

Homographic pairs never show parallax, and a hand-held rotation sequence shows little. Here
the second image is rendered from the first frame's own depth: each pixel is moved in 3D to a
virtual camera that orbits the scene (translation of up to a fraction of the scene depth,
looking back at it, with roll), so near and far surfaces move differently and some of the
scene is disoccluded, as when a robot walks or a camera orbits an object. The ground truth
is exact, since both images share one pinhole model and the rendered depth.

Rendering: forward-splat the depth with a z-buffer, close one-pixel cracks, then sample the
colour backwards (bilinear). Disoccluded pixels get a smooth fill (normalised blur) so that
their borders make no strong corners, and keypoints within a few pixels of a hole have no
depth, so the ground truth ignores them instead of teaching a match to a rendering artefact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from .homography import PhotoConfig, photometric, warp_points
from .motion import augmentation, depth_pair_sample
from .pairs import pad_features
from .rgbd import Camera, depth_ground_truth, TumSequence
from ..features import DEFAULT_DISTRIBUTION, OrbExtractor


@dataclass
class NovelViewConfig:
    """How rendered-view pairs are made."""

    num_keypoints: int = 1024  # fixed per image; short sets are padded with dustbin points
    max_baseline: float = 0.3  # largest camera translation, as a fraction of the median depth
    min_baseline: float = 0.03
    max_roll_deg: float = 20.0  # rotation about the new optical axis
    jitter_deg: float = 6.0  # off-target look direction (random axis)
    min_matches: int = 25  # resample views with fewer ground-truth matches
    min_coverage: float = 0.5  # resample views whose rendered depth covers less of the image
    hole_margin: int = 4  # [px] keypoints this close to a hole get no depth (ignored)
    match_radius: float = 3.0
    unmatched_radius: float = 5.0
    flip: float = 0.5  # probability of mirroring both images
    photo: PhotoConfig = field(default_factory=PhotoConfig)
    distribution: str = DEFAULT_DISTRIBUTION  # ORB keypoint distribution (OrbExtractor)


def pinhole(camera: Camera) -> Camera:
    """Drop the distortion of a camera: both images of a rendered pair use this model."""
    return Camera(camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy)


def look_at_pose(center: np.ndarray, target: np.ndarray, roll: float, jitter: np.ndarray
                 ) -> np.ndarray:
    """T_1<-0 of a camera at ``center`` (camera-0 coordinates) looking at ``target``.

    The new x axis stays close to camera 0's (no flip), ``roll`` [rad] turns about the new
    optical axis, ``jitter`` is a small extra rotation vector [rad] applied last.
    """
    z = target - center
    z = z / np.linalg.norm(z)
    x = np.array([1.0, 0.0, 0.0]) - z * z[0]
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    rot = np.stack([x, y, z])  # rows: new axes in camera-0 coordinates
    c, s = np.cos(roll), np.sin(roll)
    rot = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]]) @ rot
    rot = cv2.Rodrigues(jitter.reshape(3, 1))[0] @ rot
    t = np.eye(4)
    t[:3, :3] = rot
    t[:3, 3] = -rot @ center
    return t


def sample_view_pose(depth: np.ndarray, camera: Camera, rng: np.random.Generator,
                     conf: NovelViewConfig, strength: float = 1.0) -> np.ndarray:
    """Draw an orbit-like T_1<-0 around the median depth of the central image region."""
    h, w = depth.shape
    centre = depth[h // 4:3 * h // 4, w // 4:3 * w // 4]
    valid = centre[centre > 0]
    median = float(np.median(valid)) if len(valid) else 1.0
    # Look at a point near the image centre at the median depth (what an orbit keeps in view).
    u = camera.cx + rng.uniform(-0.15, 0.15) * w
    v = camera.cy + rng.uniform(-0.15, 0.15) * h
    target = np.array([(u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy, 1.0]) * median
    direction = rng.normal(size=3) * np.array([1.0, 0.6, 0.5])  # mostly sideways
    direction /= np.linalg.norm(direction)
    low, high = conf.min_baseline, conf.min_baseline + (conf.max_baseline - conf.min_baseline) \
        * strength
    center = direction * rng.uniform(low, high) * median
    roll = np.deg2rad(rng.uniform(-1, 1) * conf.max_roll_deg * strength)
    axis = rng.normal(size=3)
    jitter = axis / np.linalg.norm(axis) * np.deg2rad(rng.uniform(0, conf.jitter_deg))
    return look_at_pose(center, target, roll, jitter)


def _fill_holes(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Smooth fill of unknown pixels (normalised box blur at two scales), known ones kept."""
    img = image.astype(np.float32)
    mask = known.astype(np.float32)
    out = img.copy()
    todo = ~known
    for k in (15, 61):
        if not todo.any():
            break
        num = cv2.blur(img * mask, (k, k))
        den = cv2.blur(mask, (k, k))
        ok = todo & (den > 1e-3)
        out[ok] = num[ok] / den[ok]
        todo &= ~ok
    out[todo] = float(img[known].mean()) if known.any() else 127.0
    return np.clip(out, 0, 255).astype(np.uint8)


def render_view(image: np.ndarray, depth: np.ndarray, camera: Camera, t_1_0: np.ndarray,
                hole_margin: int = 4) -> Tuple[np.ndarray, np.ndarray, float]:
    """Render a grey image and its depth [m, 0 = none] from the pose ``t_1_0``.

    ``camera`` must be distortion-free (see ``pinhole``). Returns (image, depth, coverage):
    coverage is the fraction of pixels that see rendered surface.
    """
    h, w = depth.shape
    v, u = np.nonzero(depth > 0)
    z = depth[v, u].astype(np.float64)
    pts = np.stack([(u - camera.cx) / camera.fx * z, (v - camera.cy) / camera.fy * z, z], 1)
    pts = pts @ t_1_0[:3, :3].T + t_1_0[:3, 3]
    z1 = pts[:, 2]
    front = z1 > 0.05
    with np.errstate(divide='ignore', invalid='ignore'):
        u1 = np.round(camera.fx * pts[:, 0] / z1 + camera.cx)
        v1 = np.round(camera.fy * pts[:, 1] / z1 + camera.cy)
    inside = front & (u1 >= 0) & (u1 < w) & (v1 >= 0) & (v1 < h)
    flat = np.full(h * w, np.inf, np.float32)
    np.minimum.at(flat, (v1[inside] * w + u1[inside]).astype(np.int64),
                  z1[inside].astype(np.float32))
    rendered = flat.reshape(h, w)
    # One-pixel cracks where the view magnifies: take the nearest surface around them.
    closed = cv2.erode(rendered, np.ones((3, 3), np.uint8))
    empty = ~np.isfinite(rendered)
    rendered[empty] = closed[empty]
    known = np.isfinite(rendered)
    # Colour backwards: target pixel -> 3D in camera 1 -> camera 0 -> source pixel.
    vv, uu = np.nonzero(known)
    zz = rendered[vv, uu].astype(np.float64)
    p1 = np.stack([(uu - camera.cx) / camera.fx * zz, (vv - camera.cy) / camera.fy * zz, zz], 1)
    inv = np.linalg.inv(t_1_0)
    p0 = p1 @ inv[:3, :3].T + inv[:3, 3]
    map_x = np.full((h, w), -10.0, np.float32)
    map_y = np.full((h, w), -10.0, np.float32)
    map_x[vv, uu] = camera.fx * p0[:, 0] / p0[:, 2] + camera.cx
    map_y[vv, uu] = camera.fy * p0[:, 1] / p0[:, 2] + camera.cy
    colour = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    # Crack filling can give border pixels a surface that maps outside the source image.
    known &= (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    colour = _fill_holes(colour, known)
    out_depth = np.where(known, rendered, 0.0).astype(np.float32)
    if hole_margin > 0:
        near_hole = cv2.dilate((~known).astype(np.uint8),
                               np.ones((2 * hole_margin + 1,) * 2, np.uint8)) > 0
        out_depth[near_hole] = 0.0
    return colour, out_depth, float(known.mean())


def draw_view(image: np.ndarray, depth: np.ndarray, camera: Camera, rng: np.random.Generator,
              conf: NovelViewConfig, strength: float = 1.0, tries: int = 8
              ) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Render (image, depth, T_1<-0) of a random pose that sees at least ``min_coverage``.

    ``camera`` is distortion-free. None when no pose in ``tries`` draws does.
    """
    for _ in range(tries):
        t_1_0 = sample_view_pose(depth, camera, rng, conf, strength)
        image1, depth1, coverage = render_view(image, depth, camera, t_1_0, conf.hole_margin)
        if coverage >= conf.min_coverage:
            return image1, depth1, t_1_0
    return None


class NovelViewGenerator:
    """Makes ORB pairs of a real RGB-D frame and a rendered view of it from a new pose."""

    def __init__(self, sequences: Sequence[TumSequence], frames: Sequence[np.ndarray],
                 conf: NovelViewConfig = NovelViewConfig()):
        self.sequences = list(sequences)
        self.frames = [np.asarray([i for i in f if s.frames[int(i)].depth is not None], int)
                       for s, f in zip(self.sequences, frames)]
        if not any(len(f) for f in self.frames):
            raise ValueError('no RGB-D frames with depth given')
        self.conf = conf
        self.extractor = OrbExtractor(conf.num_keypoints, distribution=conf.distribution)
        self._cache: Dict[Tuple[int, int], Tuple[np.ndarray, np.ndarray]] = {}

    def _frame(self, s: int, i: int) -> Tuple[np.ndarray, np.ndarray]:
        if (s, i) not in self._cache:
            seq = self.sequences[s]
            self._cache[s, i] = (seq.image(i), seq.depth(i))
        return self._cache[s, i]

    def make(self, rng: np.random.Generator, strength: float = 1.0, tries: int = 8
             ) -> Dict[str, np.ndarray]:
        """One pair (frame, rendered view); views with too little overlap are redrawn."""
        drawable = [s for s, f in enumerate(self.frames) if len(f)]
        out = None
        for _ in range(tries):
            s = drawable[int(rng.integers(len(drawable)))]
            i = int(self.frames[s][int(rng.integers(len(self.frames[s])))])
            out = self._make(rng, strength, s, i) or out
            if out is not None and int((out['gt_matches0'] >= 0).sum()) >= self.conf.min_matches:
                return out
        if out is None:  # no draw saw enough of its frame: the smallest baseline always does
            out = self._make(rng, 0.0, s, i)
        return out

    def _make(self, rng: np.random.Generator, strength: float, s: int, i: int
              ) -> Optional[Dict[str, np.ndarray]]:
        c = self.conf
        img0, depth0 = self._frame(s, i)
        camera = pinhole(self.sequences[s].camera)
        view = draw_view(img0, depth0, camera, rng, c, strength, tries=1 if strength else 8)
        if view is None:
            return None
        img1, depth1, t_1_0 = view
        h, w = img0.shape
        flip = bool(rng.random() < c.flip)
        aug = augmentation(w, h, rng, flip, 0.0, (1.0, 1.0))
        a0 = photometric(cv2.warpPerspective(img0, aug, (w, h)), rng, c.photo, strength)
        a1 = photometric(cv2.warpPerspective(img1, aug, (w, h)), rng, c.photo, strength)
        f0, valid0 = pad_features(self.extractor(a0), c.num_keypoints, rng)
        f1, valid1 = pad_features(self.extractor(a1), c.num_keypoints, rng)
        back = np.linalg.inv(aug)
        k0, k1 = warp_points(f0.keypoints, back), warp_points(f1.keypoints, back)
        gt = depth_ground_truth(k0, k1, depth0, depth1, camera, t_1_0, c.match_radius,
                                c.unmatched_radius, valid0, valid1)
        return depth_pair_sample(f0, f1, valid0, valid1, (w, h), (s, i, i), k0, k1, gt)

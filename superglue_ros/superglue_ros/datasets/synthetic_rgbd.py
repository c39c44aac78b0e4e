# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""A small TUM-format RGB-D sequence rendered from a real photo: exact poses and depth.

The photo is a textured plane in front of a moving pinhole camera (no distortion), so
ground truth is exact. Tests and demos use it where no real sequence is at hand (a fresh
clone has no ../shared); it is no substitute for real motion when measuring quality.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from .rgbd import Camera
from ..geometry import rotation_to_quaternion

CAMERA = Camera(640, 480, 525.0, 525.0, 319.5, 239.5)


def camera_pose(t: float) -> np.ndarray:
    """Camera-to-world pose at time t [s]: a slow sway and a yaw/pitch oscillation."""
    pose = np.eye(4)
    yaw, pitch, roll = 0.12 * np.sin(0.9 * t), 0.06 * np.sin(1.3 * t + 0.5), 0.05 * t
    r, _ = cv2.Rodrigues(np.array([pitch, yaw, roll]))
    pose[:3, :3] = r
    pose[:3, 3] = [0.25 * np.sin(0.7 * t), 0.1 * np.sin(1.1 * t), 0.15 * np.sin(0.5 * t)]
    return pose


def render(texture: np.ndarray, pose: np.ndarray, camera: Camera = CAMERA,
           plane_depth: float = 2.0, plane_width: float = 4.0):
    """Render the textured plane z = plane_depth (world) -> (gray uint8, depth float32 [m])."""
    th, tw = texture.shape[:2]
    s = plane_width / tw
    # World point of texture pixel (a, b): M @ [a, b, 1].
    m = np.array([[s, 0, -s * tw / 2], [0, s, -s * th / 2], [0, 0, plane_depth]])
    r, t = pose[:3, :3], pose[:3, 3]
    cam_from_tex = r.T @ (m - np.outer(t, [0, 0, 1]))
    hom = camera.k @ cam_from_tex
    image = cv2.warpPerspective(texture, hom, (camera.width, camera.height),
                                flags=cv2.INTER_LINEAR, borderValue=0)
    xs, ys = np.meshgrid(np.arange(camera.width), np.arange(camera.height))
    pix = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    tex = np.linalg.inv(hom) @ pix
    tex = tex / tex[2:3]
    z = (cam_from_tex @ tex)[2].reshape(xs.shape)
    inside = (tex[0] >= 0) & (tex[0] < tw - 1) & (tex[1] >= 0) & (tex[1] < th - 1)
    depth = np.where(inside.reshape(xs.shape) & (z > 0), z, 0.0).astype(np.float32)
    return image, depth


def write_sequence(out: Path, texture_path: Optional[Path] = None, frames: int = 30,
                   rate: float = 10.0, depth_scale: float = 5000.0) -> Path:
    """Write rgb/, depth/, rgb.txt, depth.txt, groundtruth.txt and camera.yaml into out."""
    if texture_path is None:
        data = Path(__file__).resolve().parents[1] / 'data' / 'tum_freiburg'
        texture_path = sorted(data.glob('*.jpg'))[0]
    texture = cv2.imread(str(texture_path), cv2.IMREAD_GRAYSCALE)
    if texture is None:
        raise FileNotFoundError(f'cannot read texture {texture_path}')
    texture = cv2.resize(texture, (texture.shape[1] * 2, texture.shape[0] * 2))
    out = Path(out)
    (out / 'rgb').mkdir(parents=True, exist_ok=True)
    (out / 'depth').mkdir(parents=True, exist_ok=True)
    t0 = 1000.0
    rgb_lines = ['# color images', '# timestamp filename']
    depth_lines = ['# depth images', '# timestamp filename']
    for k in range(frames):
        t = k / rate
        image, depth = render(texture, camera_pose(t))
        name = f'{t0 + t:.6f}.png'
        cv2.imwrite(str(out / 'rgb' / name), cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
        cv2.imwrite(str(out / 'depth' / name),
                    np.clip(depth * depth_scale, 0, 65535).astype(np.uint16))
        rgb_lines.append(f'{t0 + t:.6f} rgb/{name}')
        depth_lines.append(f'{t0 + t:.6f} depth/{name}')
    gt_lines = ['# ground truth trajectory', '# timestamp tx ty tz qx qy qz qw']
    for t in np.arange(-0.05, frames / rate + 0.05, 0.01):
        pose = camera_pose(t)
        q = rotation_to_quaternion(pose[:3, :3])
        gt_lines.append(f'{t0 + t:.4f} ' + ' '.join(f'{v:.6f}' for v in [*pose[:3, 3], *q]))
    (out / 'rgb.txt').write_text('\n'.join(rgb_lines) + '\n')
    (out / 'depth.txt').write_text('\n'.join(depth_lines) + '\n')
    (out / 'groundtruth.txt').write_text('\n'.join(gt_lines) + '\n')
    c = CAMERA
    (out / 'camera.yaml').write_text(
        f'width: {c.width}\nheight: {c.height}\nfx: {c.fx}\nfy: {c.fy}\ncx: {c.cx}\n'
        f'cy: {c.cy}\ndist: [0.0, 0.0, 0.0, 0.0, 0.0]\n')
    return out

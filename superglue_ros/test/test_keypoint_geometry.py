# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""ORB orientation/scale as model input, warm starts, and the ORB-SLAM-style extractor."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from superglue_ros.engine import MatchingEngine
from superglue_ros.features import (Features, OrbExtractor, spread_by_cells,
                                    suppress_duplicates)
from superglue_ros.models.superglue import keypoint_geometry, SuperGlue
from superglue_ros.training.train import warm_start
from superglue_ros.weights import default_weights_path, load_weights, save_weights

FRAMES = sorted((Path(__file__).resolve().parents[1] / 'superglue_ros' / 'data' /
                 'tum_freiburg').glob('*.jpg'))
SMALL = {'descriptor_dim': 32, 'input_dim': 256, 'descriptor_type': 'orb',
         'keypoint_encoder': [16, 32], 'gnn_layers': 1, 'num_heads': 4,
         'sinkhorn_iterations': 10}


def batch(n: int = 40, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    data = {}
    for i in (0, 1):
        data[f'keypoints{i}'] = torch.rand(1, n, 2, generator=g) * 400
        data[f'scores{i}'] = torch.rand(1, n, generator=g)
        data[f'descriptors{i}'] = torch.sign(torch.randn(1, 256, n, generator=g)) / 16
        data[f'angles{i}'] = torch.rand(1, n, generator=g) * 360
        data[f'sizes{i}'] = 31 * 1.2 ** torch.randint(0, 8, (1, n), generator=g).float()
        data[f'image_size{i}'] = torch.tensor([[640.0, 480.0]])
    return data


def test_geometry_features():
    g = keypoint_geometry(torch.tensor([[0.0, 90.0, -1.0]]), torch.tensor([[31.0, 31.0, 62.0]]))
    assert torch.allclose(g[0, 0], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)
    assert torch.allclose(g[0, 1, :2], torch.tensor([0.0, 1.0]), atol=1e-6)
    assert torch.allclose(g[0, 2], torch.tensor([0.0, 0.0, float(np.log(2))]), atol=1e-6)


def test_warm_start_adds_geometry_without_changing_outputs(tmp_path):
    torch.manual_seed(0)
    old = SuperGlue(SMALL).eval()
    path = tmp_path / 'old.pth'
    save_weights(path, old)
    new = SuperGlue({**SMALL, 'keypoint_geometry': True})
    assert warm_start(new, str(path)) == []
    new.eval()
    data = batch()
    with torch.no_grad():
        a, b = old(data), new(data)
    assert torch.allclose(a['log_assignment'], b['log_assignment'], atol=1e-5)
    # The geometry columns are live: changing an angle changes the result once they are set.
    with torch.no_grad():
        new.kenc.encoder[0].weight[:, 3:] = 1.0
        c = new(data)
        data['angles0'] = data['angles0'] + 90
        d = new(data)
    assert not torch.allclose(c['log_assignment'], d['log_assignment'])


def test_geometry_model_needs_angles_and_names_them():
    model = SuperGlue({**SMALL, 'keypoint_geometry': True}).eval()
    data = batch()
    del data['angles1']
    with pytest.raises(KeyError, match='angles1'):
        model(data)


def test_geometry_weights_round_trip_and_engine_checks(tmp_path):
    torch.manual_seed(1)
    model = SuperGlue({**SMALL, 'keypoint_geometry': True}).eval()
    path = tmp_path / 'geo.pth'
    save_weights(path, model)
    loaded, _ = load_weights(path)
    assert loaded.conf.keypoint_geometry is True
    engine = MatchingEngine(loaded, device='cpu')
    f = OrbExtractor(100)(cv2.imread(str(FRAMES[0])))
    assert len(f.angle) == len(f)
    result = engine.match(f, f)
    assert result.index0.shape == result.index1.shape == result.confidence.shape
    bare = Features(f.keypoints, f.scores, f.descriptors, 'orb', f.image_size)
    with pytest.raises(ValueError, match='angle/size'):
        engine.prepare(bare)


def test_shipped_weights_keep_loading_and_know_their_inputs():
    model, _ = load_weights(default_weights_path())
    assert isinstance(model.conf.keypoint_geometry, bool)


def test_spread_by_cells_round_robin():
    pts = np.array([[5, 5], [6, 6], [7, 7], [50, 5]], np.float32)
    resp = np.array([3.0, 2.0, 1.0, 0.5], np.float32)
    # Two cells of 32 px: the weak keypoint of the second cell beats the 2nd of the first.
    assert list(spread_by_cells(pts, resp, (64, 32), 32, 2)) == [0, 3]
    assert list(spread_by_cells(pts, resp, (64, 32), 32, 3)) == [0, 1, 3]


def test_grid_distribution_covers_low_texture_regions():
    rng = np.random.default_rng(0)
    img = np.full((480, 640), 128, np.uint8)
    img[:, :320] = rng.integers(0, 255, (480, 320)).astype(np.uint8)  # rich texture left
    blocks = rng.integers(100, 156, (60, 40)).astype(np.uint8)  # low-contrast blocks right
    img[:, 320:] = cv2.resize(blocks, (320, 480), interpolation=cv2.INTER_NEAREST)
    grid = OrbExtractor(500, distribution='grid')(img)
    resp = OrbExtractor(500, distribution='response')(img)
    right = lambda f: int((f.keypoints[:, 0] > 340).sum())  # noqa: E731
    assert len(grid) == 500
    assert right(grid) > 2 * right(resp)


def test_suppress_duplicates_is_greedy_by_response():
    pts = np.array([[0, 0], [1.5, 0], [3, 0], [10, 10], [10, 11.9], [30, 30]], np.float32)
    resp = np.array([1.0, 3.0, 2.0, 1.0, 0.5, 0.1], np.float32)
    # 1 (strongest) removes 0 and 2 (both within 2 px); 0 being gone, nothing else removes 2
    # twice; 3 removes 4; 5 stands alone.
    assert list(suppress_duplicates(pts, resp, 2.0)) == [1, 3, 5]
    # A chain: 2 is 1.5 px from 1 only, so once 1 is removed by 0, 2 survives.
    chain = np.array([[0, 0], [1.5, 0], [3, 0]], np.float32)
    assert list(suppress_duplicates(chain, np.array([3.0, 2.0, 1.0]), 2.0)) == [0, 2]
    assert list(suppress_duplicates(pts[:1], resp[:1], 2.0)) == [0]
    assert len(suppress_duplicates(np.zeros((0, 2)), np.zeros(0), 2.0)) == 0


def test_grid_distinct_keeps_one_keypoint_per_corner(frames):
    gray = cv2.imread(str(frames[0]), cv2.IMREAD_GRAYSCALE)
    grid = OrbExtractor(1024, distribution='grid')(gray)
    distinct = OrbExtractor(1024, distribution='grid_distinct')(gray)
    assert len(distinct) == len(grid) == 1024

    def close_pairs(f):
        d = np.linalg.norm(f.keypoints[:, None] - f.keypoints[None], axis=2)
        return int((d[np.triu_indices(len(f), 1)] <= 2.0).sum())
    # ORB finds most corners again at other levels: the grid has hundreds of such pairs.
    assert close_pairs(grid) > 200
    assert close_pairs(distinct) == 0
    # The freed budget goes to other corners: more of the image is covered.
    cells = lambda f: len({(int(x) // 16, int(y) // 16) for x, y in f.keypoints})  # noqa: E731
    assert cells(distinct) > cells(grid)


def test_unknown_distribution_is_refused():
    with pytest.raises(ValueError, match='distribution'):
        OrbExtractor(100, distribution='quad')


def test_grid_candidates_equal_the_per_keypoint_definition():
    """Cells are filled from OpenCV's positions in bulk: the same keypoints as one by one."""
    ext = OrbExtractor(1024)
    cell = ext.cell_size
    for path in FRAMES[:3]:
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        high, low = ext._orb.detect(gray, None), ext._orb_low.detect(gray, None)
        taken = {(int(k.pt[0] // cell), int(k.pt[1] // cell)) for k in high}
        kps = list(high) + [k for k in low
                            if (int(k.pt[0] // cell), int(k.pt[1] // cell)) not in taken]
        pts = np.array([k.pt for k in kps], np.float32)
        keep = spread_by_cells(pts, np.array([k.response for k in kps], np.float32),
                               (gray.shape[1], gray.shape[0]), cell, 1024)
        kps, desc = ext._orb.compute(gray, [kps[i] for i in keep])
        f = ext(gray)
        np.testing.assert_array_equal(f.keypoints, np.array([k.pt for k in kps], np.float32))
        np.testing.assert_array_equal(f.descriptors, desc)
        assert len(low) > len(high) and len(f) == 1024

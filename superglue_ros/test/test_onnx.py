# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""ONNX export and the onnxruntime backend against torch: same inputs, same matches.

Needs the optional onnx and onnxruntime packages (``make test`` installs them); without them
the module is skipped, saying so.
"""

import time

import numpy as np
import pytest
import torch

pytest.importorskip('onnx', reason='onnx not installed: pip install onnx (optional extra)')
pytest.importorskip('onnxruntime',
                    reason='onnxruntime not installed: pip install onnxruntime (optional extra)')

from conftest import shipped_weights_or_skip, TINY_CONF  # noqa: E402
from superglue_ros.engine import MatchingEngine  # noqa: E402
from superglue_ros.models import get_model  # noqa: E402
from superglue_ros.onnx_backend import (export_onnx, META_CONF, OnnxRuntimeSession,  # noqa: E402
                                        read_metadata)
from superglue_ros.tools.bench import random_features  # noqa: E402
from superglue_ros.tools.export import compare_with_torch, main as export_main  # noqa: E402

SIZES = [(1, 1), (1, 40), (37, 52), (64, 64), (300, 211)]


def test_shipped_weights_export_and_agree(tmp_path):
    """superglue-export --onnx --check on the shipped weights: identical matches, 1e-4."""
    weights = shipped_weights_or_skip()
    out = tmp_path / 'shipped.onnx'
    assert export_main(['--onnx', str(out), '--weights', str(weights), '--check']) == 0
    meta = read_metadata(out)
    assert '"descriptor_type": "orb"' in meta[META_CONF]
    model = MatchingEngine.from_weights(weights, device='cpu').model
    result = compare_with_torch(model, out.read_bytes(), SIZES)
    assert result['identical_matches'] and result['matches'] > 0
    assert result['max_abs_diff_log_assignment'] <= 1e-4


def test_official_format_state_dict_exports(tmp_path):
    """A bare state dict in the official layout (SuperPoint-style, D=256) exports alike."""
    torch.manual_seed(3)
    official = get_model('superglue', {'gnn_layers': 2})
    for module in official.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    path = tmp_path / 'superglue_indoor.pth'
    torch.save(official.state_dict(), path)
    out = tmp_path / 'official.onnx'
    assert export_main(['--onnx', str(out), '--weights', str(path), '--max-keypoints', '512',
                        '--sinkhorn-iterations', '100', '--check']) == 0
    from superglue_ros.weights import load_weights
    model, _ = load_weights(path, {'sinkhorn_iterations': 100, 'match_threshold': 0.0})
    result = compare_with_torch(model.eval(), out.read_bytes(), SIZES, 512)
    assert result['identical_matches'] and result['matches'] > 0
    assert result['max_abs_diff_log_assignment'] <= 1e-4


def test_keypoint_geometry_model_exports():
    torch.manual_seed(4)
    model = get_model('superglue', {**TINY_CONF, 'keypoint_geometry': True,
                                    'match_threshold': 0.0}).eval()
    result = compare_with_torch(model, export_onnx(model, max_keypoints=400), SIZES, 400)
    assert result['identical_matches'] and result['max_abs_diff_log_assignment'] <= 1e-4


def test_inputs_outside_the_exported_range_are_clear_errors():
    torch.manual_seed(5)
    model = get_model('superglue', TINY_CONF).eval()
    session = OnnxRuntimeSession(export_onnx(model, max_keypoints=64))
    engine = MatchingEngine(model, device='cpu', backend='onnxruntime', max_keypoints=0)
    engine.onnx = session
    big, ok = engine.prepare(random_features(65, seed=1)), engine.prepare(random_features(64))
    with pytest.raises(ValueError, match=r'keypoints0 has 65 keypoints; the ONNX model '
                                         r'accepts 1\.\.64 per image'):
        engine.match_prepared(big, ok)
    with pytest.raises(ValueError, match='keypoints1 has 65 keypoints'):
        engine.match_prepared(ok, big)
    # Empty keyframes never reach the graph: no matches, no error.
    empty = engine.prepare(random_features(0))
    assert len(engine.match_prepared(empty, ok).index0) == 0


def test_engine_backends_agree_on_real_frames(frames):
    """The onnxruntime engine gives the torch engine's matches on real ORB keyframes."""
    import cv2
    from superglue_ros.features import OrbExtractor
    weights = shipped_weights_or_skip()
    torch_engine = MatchingEngine.from_weights(weights, device='cpu', num_threads=1)
    ort_engine = MatchingEngine.from_weights(weights, device='cpu', num_threads=1,
                                             backend='onnxruntime')
    assert ort_engine.backend == 'onnxruntime' and ort_engine.onnx is not None
    extract = OrbExtractor(1024)
    feats = [extract(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)) for p in frames[:4]]
    for f0, f1 in zip(feats, feats[1:]):
        a = torch_engine.match(f0, f1)
        b = ort_engine.match(f0, f1)
        assert len(a.index0) > 100
        assert np.array_equal(a.index0, b.index0) and np.array_equal(a.index1, b.index1)
        np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-4)
    # A window through the onnxruntime engine: one pair at a time, same results.
    refs = [ort_engine.prepare(f) for f in feats[:3]]
    cur = ort_engine.prepare(feats[3])
    for r, w in zip(refs, ort_engine.match_window(refs, cur)):
        s = torch_engine.match_prepared(r, cur)
        assert np.array_equal(s.index0, w.index0) and np.array_equal(s.index1, w.index1)
    # The match threshold stays a run-time setting (the filter is outside the graph).
    ort_engine.match_threshold = 0.9
    assert len(ort_engine.match(feats[0], feats[1]).index0) < len(b.index0)


def test_matcher_node_with_onnxruntime_backend(tmp_path):
    """Over real DDS: backend=onnxruntime publishes the torch backend's correspondences."""
    pytest.importorskip('rclpy', reason='rclpy not installed')
    from rclpy.parameter import Parameter
    from ros_harness import (Collector, domain_id, Harness, RELIABLE, reliable_inputs,
                             TumFrames, wait_for)
    from sensor_msgs.msg import Image
    from superglue_ros_msgs.msg import Correspondences, Keypoints
    from superglue_ros.nodes.matcher_node import MatcherNode
    weights = shipped_weights_or_skip()
    tum = TumFrames(count=4, max_keypoints=512)
    harness = Harness(domain_id(47))
    try:
        received = {}
        for backend in ('torch', 'onnxruntime'):
            ns = f'onnx_{backend}'
            params = [Parameter('weights', value=str(weights)),
                      Parameter('device', value='cpu'), Parameter('backend', value=backend),
                      Parameter('num_threads', value=1),
                      Parameter('queue_policy', value='block')]
            node = harness.add(MatcherNode(context=harness.context, namespace=ns,
                                           parameter_overrides=params + reliable_inputs(ns)))
            assert node.engine.backend == backend
            image_pub = harness.node.create_publisher(Image, f'/{ns}/image', RELIABLE)
            kp_pub = harness.node.create_publisher(Keypoints, f'/{ns}/keypoints', RELIABLE)
            out = Collector()
            sub = harness.node.create_subscription(Correspondences, f'/{ns}/correspondences',
                                                   out, RELIABLE)
            assert wait_for(lambda: (image_pub.get_subscription_count() > 0
                                     and kp_pub.get_subscription_count() > 0
                                     and sub.get_publisher_count() > 0), 20.0)
            for i in range(len(tum)):
                image_pub.publish(tum.image_msg(i))
                kp_pub.publish(tum.keypoints_msg(i, keyframe_id=10 + i))
                time.sleep(0.05)
            received[backend] = out.wait(len(tum), timeout=120.0)
            harness.remove(node)
        for a, b in zip(received['torch'], received['onnxruntime']):
            assert a.status == b.status
            assert list(a.current_indices) == list(b.current_indices)
            assert list(a.reference_indices) == list(b.reference_indices)
        assert sum(len(m.current_indices) for m in received['onnxruntime']) > 100
    finally:
        harness.close()

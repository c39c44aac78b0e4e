# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``run_replay``: check the inputs, play the bag through the nodes, write bag and report."""

from __future__ import annotations

from pathlib import Path
import shutil
import sys
from typing import Any, Dict, Optional

from . import ReplayError
from .bag import BagWriter, CORRESPONDENCES_TYPE, inspect_bag, KEYPOINTS_TYPE
from .player import play, Recorder
from .report import write_report
from ..ros.topics import CORRESPONDENCES_TOPIC, KEYPOINTS_TOPIC

OUTPUT_BAG = 'correspondences_bag'


def default_params_file() -> Optional[Path]:
    """config/superglue.yaml from the installed share directory, else from the source tree."""
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory('superglue_ros')))
    except Exception:  # noqa: BLE001 - no ament index in the pip setup
        pass
    candidates += [Path(sys.prefix) / 'share' / 'superglue_ros',
                   Path(__file__).resolve().parents[2]]
    for base in candidates:
        path = base / 'config' / 'superglue.yaml'
        if path.is_file():
            return path
    return None


def _output_bag(out: Path) -> Path:
    """OUT/correspondences_bag, cleared when it is a bag of an earlier replay."""
    out.mkdir(parents=True, exist_ok=True)
    out_bag = out / OUTPUT_BAG
    staging = out / f'.{OUTPUT_BAG}.staging'  # left behind by a killed replay
    if staging.exists():
        shutil.rmtree(staging)
    if out_bag.exists():
        if not (out_bag / 'metadata.yaml').is_file():
            raise ReplayError(f'{out_bag} exists and is not a bag from an earlier replay')
        shutil.rmtree(out_bag)
    for name in ('report.json', 'report.md'):  # never leave an earlier run's report behind
        (out / name).unlink(missing_ok=True)
    return out_bag


def run_replay(bag, out, rate: Optional[float] = 1.0, weights: Optional[str] = None,
               device: str = 'auto', image_topic: Optional[str] = None,
               keypoints_topic: Optional[str] = None, params_file: Optional[str] = None,
               max_keypoints: int = 0, domain_id: Optional[int] = None,
               storage: str = 'sqlite3', progress: bool = True, timeout: float = 60.0,
               visualisations: int = 3) -> Dict[str, Any]:
    """Replay ``bag`` into the nodes; write the output bag and report into ``out``.

    ``rate`` None = as fast as possible with back-pressure. ``max_keypoints`` > 0 overrides
    the parameter of both nodes. Returns the report dict (also written as report.json). An
    interrupted replay (Ctrl-C, SIGTERM) still closes the bag and writes the report, marked
    ``partial``; the output bag survives a killed replay up to its last second.
    """
    from ..weights import weights_path, WeightsError  # torch: only once a replay starts
    info = inspect_bag(bag, image_topic, keypoints_topic)
    try:
        weights_file = weights_path(weights)
    except WeightsError as exc:
        raise ReplayError(f'no weights: {exc}') from exc
    params = default_params_file() if params_file is None else Path(params_file)
    if params is not None and not params.is_file():
        raise ReplayError(f'parameters file {params} does not exist')
    if rate is not None and not rate > 0:
        raise ReplayError(f'--rate must be > 0, got {rate}')
    out = Path(out)
    out_bag = _output_bag(out)
    topics = [(CORRESPONDENCES_TOPIC, CORRESPONDENCES_TYPE)]
    if info.keypoints_topic is None:  # record what the front-end makes
        topics.append((KEYPOINTS_TOPIC, KEYPOINTS_TYPE))
    writer = BagWriter(out_bag, storage, topics)
    recorder = Recorder(writer)
    try:
        result = play(info, recorder, rate, weights_file, device, params, max_keypoints,
                      domain_id, progress, timeout)
    finally:
        writer.close()
    result.update(recorded=dict(writer.counts), recorder_errors=recorder.errors,
                  output_bag=str(out_bag), rate=rate, weights=str(weights_file),
                  params_file=str(params) if params else None)
    return write_report(info, recorder.records, result, out,
                        0 if result.get('interrupted') else visualisations)

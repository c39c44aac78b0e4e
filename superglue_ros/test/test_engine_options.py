# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Engine options: CPU threads per match (fixed or automatic from the load) and the backend."""

import os
from pathlib import Path
import subprocess
import sys
import time

import pytest
import torch

from conftest import TINY_CONF
from superglue_ros import ImageMatcher
from superglue_ros.engine import MatchingEngine
from superglue_ros.models import get_model
from superglue_ros.threads import LoadMonitor, ThreadPolicy, usable_cores
from superglue_ros.tools.bench import random_features


def test_fixed_threads_are_used_for_the_match(tiny_weights):
    engine = MatchingEngine.from_weights(tiny_weights, device='cpu', num_threads=1)
    assert engine.num_threads == 1
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(max(2, usable_cores()))
        f0, f1 = random_features(64, seed=0), random_features(80, seed=1)
        engine.match(f0, f1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_automatic_threads_stay_within_the_usable_cores():
    policy = ThreadPolicy(0, LoadMonitor(min_window=0.0))
    assert policy.automatic
    for _ in range(3):
        assert 1 <= policy.threads() <= usable_cores()


@pytest.mark.skipif(not Path('/proc/stat').exists(), reason='needs Linux /proc')
def test_load_monitor_counts_other_processes_not_this_one():
    """A busy child process shows up in the estimate (its CPU time over the window)."""
    monitor = LoadMonitor(min_window=0.0)
    child = subprocess.Popen([sys.executable, '-c', 'while True: pass'])
    try:
        time.sleep(0.2)
        monitor.update()
        start, cpu0 = time.monotonic(), _process_cpu_seconds(child.pid)
        time.sleep(1.0)
        busy = monitor.update()
        child_cores = (_process_cpu_seconds(child.pid) - cpu0) / (time.monotonic() - start)
    finally:
        child.kill()
        child.wait()
    assert child_cores > 0.2, 'the child did not get the CPU at all'
    assert busy >= child_cores - 0.15, (busy, child_cores)


def _process_cpu_seconds(pid: int) -> float:
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


@pytest.mark.parametrize('bad', [-1, 1.5, '2', True])
def test_bad_num_threads_is_a_clear_error(bad):
    with pytest.raises(ValueError, match='num_threads must be an integer >= 0'):
        MatchingEngine(get_model('superglue', TINY_CONF), device='cpu', num_threads=bad)


def test_unknown_backend_names_the_parameter_and_the_choices(tiny_weights):
    with pytest.raises(ValueError, match=r"backend must be one of torch.*got 'tensorflow'"):
        MatchingEngine.from_weights(tiny_weights, device='cpu', backend='tensorflow')
    with pytest.raises(ValueError, match='backend must be one of'):
        ImageMatcher(tiny_weights, device='cpu', backend='tensorflow')


def test_image_matcher_passes_threads_on(tiny_weights):
    matcher = ImageMatcher(tiny_weights, device='cpu', num_threads=2)
    assert matcher.engine.num_threads == 2


def test_automatic_uses_every_core_when_openmp_waits_passively(monkeypatch):
    """PASSIVE (set by the node's entry point): all cores; else the cores left idle."""
    from superglue_ros.threads import prefer_passive_waiting
    monkeypatch.delenv('OMP_WAIT_POLICY', raising=False)
    prefer_passive_waiting()
    assert os.environ['OMP_WAIT_POLICY'] == 'PASSIVE'
    assert ThreadPolicy(0).threads() == usable_cores()
    monkeypatch.setenv('OMP_WAIT_POLICY', 'ACTIVE')
    prefer_passive_waiting()  # a user's choice stays
    assert os.environ['OMP_WAIT_POLICY'] == 'ACTIVE'

    class Busy(LoadMonitor):
        def update(self):
            return float(usable_cores())  # every core taken by others
    assert ThreadPolicy(0, Busy()).threads() == 1

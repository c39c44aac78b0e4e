# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Replay of a rosbag2 through the real nodes, and the report on what came out.

- ``bag``: reading the input bag, writing the output bag, reading pictures back;
- ``player``: the nodes in an in-process graph (``ros.graph.Graph``), playback with
  back-pressure or at the recorded rate, and the recorder of every Correspondences message;
- ``report``: figures, tables (report.json / report.md), plots and match pictures;
- ``run``: ``run_replay``, which ties them together (``superglue-replay`` is its command line).
"""


class ReplayError(RuntimeError):
    """A problem with the inputs (bag, weights, parameters file) or the ROS set-up."""


class ReplayInterrupted(KeyboardInterrupt):
    """A signal (SIGTERM, SIGHUP) stopping a replay, handled as Ctrl-C is: partial report."""

    def __init__(self, signame: str):
        super().__init__(signame)
        self.signame = signame
        self.reason = f'interrupted ({signame})'

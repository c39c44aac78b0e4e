# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The matcher as a managed (lifecycle) node: bring the heavy part up when the system says so.

Same parameters, topics, services and behaviour as ``matcher_node`` (they share
``MatcherCore``), driven by the lifecycle_msgs services of a managed node
(``~/change_state``, ``~/get_state``, ...; ``ros2 lifecycle set /superglue_matcher configure``):

- configure: load the weights onto the device, create the publishers and the worker;
- activate: subscribe to the inputs, keyframes are matched from now on;
- deactivate: unsubscribe; keyframes already queued are still answered;
- cleanup: stop the worker, destroy the publishers, free the model (and the CUDA cache);
- shutdown: all of the above from any state.

Parameters are declared at construction, so they can be set while unconfigured; the
read-only ones take effect at the next configure. ``~/reset`` works in every state.
"""

from __future__ import annotations

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from .matcher_node import MatcherCore, NODE_NAME, run


class ManagedMatcherNode(MatcherCore, LifecycleNode):
    """SuperGlue keyframe matcher whose weights, worker and subscriptions follow its state."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        LifecycleNode.__init__(self, node_name, **kwargs)
        try:
            self._declare()
        except Exception:
            self.destroy_node()
            raise
        self.get_logger().info('managed matcher waiting for configure (weights not loaded)')

    def _transition(self, name: str, step, state: LifecycleState) -> TransitionCallbackReturn:
        """Run one phase; a failure is logged in one line and reported as FAILURE."""
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - the node stays up in its previous state
            self.get_logger().error(f'{name} failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f'{name}: done (from {state.label})')
        return TransitionCallbackReturn.SUCCESS

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the weights; create the publishers and the worker."""
        def configure() -> None:
            try:
                self._configure()
            except Exception:
                self._cleanup()  # a half-made configuration would leak the worker
                raise
        return self._transition('configure', configure, state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the inputs."""
        result = self._transition('activate', self._activate, state)
        if result != TransitionCallbackReturn.SUCCESS:
            return result
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe from the inputs."""
        result = self._transition('deactivate', self._deactivate, state)
        if result != TransitionCallbackReturn.SUCCESS:
            return result
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the worker and free the model."""
        return self._transition('cleanup', self._cleanup, state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Whatever the state: unsubscribe, stop the worker, free the model."""
        def shutdown() -> None:
            self._deactivate()
            self._cleanup()
        return self._transition('shutdown', shutdown, state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Back to unconfigured after an error in a transition: release everything."""
        return self.on_shutdown(state)

    def destroy_node(self) -> None:
        """Stop the worker if it runs, then destroy the node."""
        if getattr(self, '_worker', None) is not None:
            self._stop_worker()
        super().destroy_node()


def main(args=None) -> int:
    """Console script ``managed_matcher_node``: exit status 1 on a start-up error."""
    return run(ManagedMatcherNode, args)


if __name__ == '__main__':
    raise SystemExit(main())

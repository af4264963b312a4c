"""SIGTERM, the multi-host preemption sync point and train.time_limit_s, checked once
per step by the loop."""

from __future__ import annotations

import logging
import signal
import threading
import time

import jax

from attn_jax.train import mesh as mesh_lib


class Preemption:
    """Set by SIGTERM; checked once per step.

    One process: a Python SIGTERM handler (installed only in the main thread)
    sets an event. Several processes (jax.distributed): SIGTERM is left to the
    preemption notifier that `jax.distributed.initialize` installs, which tells
    every process; each stops at the same step, the sync point
    (`multihost_utils.reached_preemption_sync_point`), so all of them save that
    step's checkpoint together. A Python handler here would replace JAX's, and a
    signalled process would then stop alone while the others wait for it in
    their next collective.
    """

    def __init__(self):
        self.event = threading.Event()
        self._previous = None
        self._sync_error: Exception | None = None

    def __enter__(self):
        if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, lambda *_: self.event.set())
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
        return False

    def requested(self, step: int) -> bool:
        if jax.process_count() > 1 and self._sync_error is None:
            # All hosts must agree on the step at which they stop and save.
            from jax.experimental import multihost_utils

            try:
                if multihost_utils.reached_preemption_sync_point(step):
                    return True
            except Exception as e:  # e.g. no preemption sync manager in this runtime
                # Said once, then not asked again: a silent failure every step would
                # leave the run without preemption handling and nobody the wiser.
                self._sync_error = e
                logging.warning(
                    "Preemption sync point unavailable (%s: %s): a SIGTERM will not stop "
                    "this multi-process run at a common step.",
                    type(e).__name__,
                    e,
                )
        return self.event.is_set()

    def past_time_limit(self, step: int, start: float, limit_s: float, every: int) -> bool:
        """`limit_s` seconds since `start` have passed (limit 0: never).

        Several processes: process 0's clock decides, at steps that are multiples of
        `every` (the log steps): the broadcast is a collective, so only at steps
        every process shares; a process deciding from its own clock would stop
        alone and leave the others waiting in their next collective.
        """
        if not limit_s:
            return False
        if jax.process_count() == 1:
            return time.time() - start > limit_s
        if step % max(every, 1):
            return False
        return bool(mesh_lib.process0_value(time.time() - start > limit_s))

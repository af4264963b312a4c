"""Where trials run: `EXECUTORS` = inline | local | ray.

Each executor has `capacity` (trials in flight at once), `submit(task) ->
concurrent.futures.Future` of `worker.execute_trial(task)`, and `shutdown()`.
- inline: in this process, one after another (what a Colab notebook uses).
- local: a pool of spawned processes on this host, a fresh one per trial (JAX
  state and XLA caches don't leak between trials, and a segfault costs one trial).
- ray: each trial a Ray task with its resource request, on a running cluster
  (`address`, or RAY_ADDRESS) or a local one started for the sweep and stopped
  after it. Ray is the optional extra `pip install -e '.[ray]'`. On a cluster
  of several hosts the sweep directory must be on a filesystem every host
  mounts (trials lock, checkpoint and append there).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Mapping
from typing import Any

from attn_jax.sweep import worker


class InlineExecutor:
    """Runs each trial in this process when it is submitted."""

    def __init__(self, workers: int = 1, **unused: Any):
        del workers, unused
        self.capacity = 1

    def submit(self, task: worker.TrialTask) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            outcome = worker.execute_trial(task)
        except Exception as e:  # as a pool reports a worker's error
            future.set_exception(e)
        else:
            future.set_result(outcome)
        return future

    def shutdown(self) -> None:
        pass


class LocalExecutor:
    """A pool of `workers` spawned processes, one fresh process per trial."""

    def __init__(self, workers: int = 1, **unused: Any):
        del unused
        self.capacity = max(1, workers)
        self._pool = self._new_pool()

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        # spawn, not fork: forking a process that has started JAX's threads can deadlock.
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self.capacity,
            mp_context=multiprocessing.get_context("spawn"),
            max_tasks_per_child=1,
        )

    def submit(self, task: worker.TrialTask) -> concurrent.futures.Future:
        try:
            return self._pool.submit(worker.execute_trial, task)
        except concurrent.futures.process.BrokenProcessPool:
            # A worker died hard (OOM kill, segfault); its trial is retried by the
            # runner, and the others need a pool that works.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(worker.execute_trial, task)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Each trial a Ray task; `resources` is its request (num_cpus, num_gpus, resources)."""

    def __init__(
        self,
        workers: int = 0,
        *,
        address: str | None = None,
        resources: Mapping[str, Any] | None = None,
        **unused: Any,
    ):
        del unused
        try:
            import ray
        except ImportError as e:
            raise ImportError(
                "The ray executor needs Ray: pip install -e '.[ray]' (or use --executor local)."
            ) from e
        self._ray = ray
        self._started = False
        address = address or os.environ.get("RAY_ADDRESS")
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:  # a private local cluster for this sweep, on loopback
                ray.init(
                    num_cpus=max(1, workers or os.cpu_count() or 1),
                    include_dashboard=False,
                    log_to_driver=False,
                )
            self._started = True
        request = {"num_cpus": 1, **dict(resources or {})}
        # max_calls=1: a fresh worker process per trial, as in LocalExecutor.
        self._remote = ray.remote(max_calls=1, max_retries=0, **request)(worker.execute_trial)
        self.capacity = workers if workers > 0 else 1 << 20  # else Ray queues by resources

    def submit(self, task: worker.TrialTask) -> concurrent.futures.Future:
        return self._remote.remote(task).future()

    def shutdown(self) -> None:
        if self._started:
            self._ray.shutdown()


EXECUTORS = {"inline": InlineExecutor, "local": LocalExecutor, "ray": RayExecutor}


def make_executor(name: str, workers: int = 1, **options: Any):
    """Builds an executor by registry key; unknown keys raise naming the valid ones."""
    if name not in EXECUTORS:
        raise ValueError(f"Unknown executor {name!r}; valid: {', '.join(EXECUTORS)}.")
    return EXECUTORS[name](workers, **options)

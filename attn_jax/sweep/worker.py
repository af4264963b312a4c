"""One trial, run where an executor puts it: in this process, a child, or a Ray task.

`execute_trial(task)` is the unit every executor runs. It takes the trial's
lock (so a trial never runs twice at once, even across sweep invocations),
trains or resumes in the trial's stable workdir, and appends the run record to
results.jsonl itself before letting go of the lock: a sweep driver killed while
its workers run loses nothing, and a rerun finds every finished record.

This module imports no JAX: a spawned worker pays for JAX only in the trainer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import ml_collections

from attn_jax import runtime  # imports JAX only when the cache is turned on
from attn_jax.sweep import store

DEFAULT_TRAINER = "attn_jax.train.loop:train_and_evaluate"
Trainer = Callable[[ml_collections.ConfigDict, str], Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class TrialTask:
    """Everything a worker needs; plain data so it pickles for any executor."""

    run_id: str
    out: str  # the sweep directory, absolute
    config: dict[str, Any]  # the resolved config, as ConfigDict.to_dict()
    trainer: str  # "module:function" with the train_and_evaluate signature
    sweep: dict[str, Any]  # name, trial index, arg, overrides, tags, experiment
    max_attempts: int = 2
    # JAX's persistent compilation cache for the trial (the sweep's <out>/.jax_cache):
    # a second trial of a shape loads its programs instead of compiling them.
    compilation_cache: str | None = None

    @property
    def workdir(self) -> str:
        return store.trial_dir(self.out, self.run_id)


def import_trainer(path: str) -> Trainer:
    """Imports "package.module:function"."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        raise ValueError(f"Trainer {path!r} must look like 'package.module:function'.")
    return getattr(importlib.import_module(module_name), attr)


def _attempts_path(task: TrialTask) -> str:
    return os.path.join(task.workdir, "attempts.json")


def attempts(out: str, run_id: str) -> int:
    """Attempts started so far for a trial (crashed, killed or running)."""
    data = store.read_json(os.path.join(store.trial_dir(out, run_id), "attempts.json"), {})
    return int(data.get("attempts", 0))


def reset_attempts(out: str, run_id: str) -> None:
    path = os.path.join(store.trial_dir(out, run_id), "attempts.json")
    if os.path.exists(path):
        store.write_json_atomic(path, {"attempts": 0, "errors": []})


def _annotate(task: TrialTask, record: Mapping[str, Any], attempt: int) -> dict[str, Any]:
    record = dict(record)
    trainer_id = record.get("run_id")
    if trainer_id is not None and trainer_id != task.run_id:
        record["trainer_run_id"] = trainer_id  # kept, but the sweep's id is the key
    record["run_id"] = task.run_id
    record["sweep"] = dict(task.sweep, workdir=os.path.relpath(task.workdir, task.out))
    record["attempt"] = attempt
    return record


def failed_record(task: TrialTask, error: str, attempt: int) -> dict[str, Any]:
    """The record of a trial that crashed on its last allowed attempt."""
    from attn_jax import configs  # light: ml_collections only

    record = {
        "run_id": task.run_id,
        "experiment": task.sweep.get("experiment"),
        "config": configs.flatten(task.config),
        "seed": task.config.get("seed"),
        "status": "failed",
        "error": error,
    }
    return _annotate(task, record, attempt)


def _finished_summary(task: TrialTask) -> dict[str, Any] | None:
    """A summary.json the trainer finished but whose record never reached results.jsonl."""
    summary = store.read_json(os.path.join(task.workdir, "summary.json"))
    if isinstance(summary, dict) and summary.get("status") in ("done", "diverged"):
        return summary
    return None


@contextlib.contextmanager
def _compilation_cache(task: TrialTask):
    """Turns the task's compilation cache on and yields its counters (None when off)."""
    if not task.compilation_cache or not runtime.enable_compilation_cache(task.compilation_cache):
        yield None
        return
    with runtime.compile_counters() as counts:
        yield counts


def execute_trial(task: TrialTask) -> dict[str, Any]:
    """Runs (or resumes) one trial and records it.

    Returns:
      An outcome dict: `status` is a record status (done, diverged, failed),
      "retry" (crashed, attempts left), "preempted" (resumable, not recorded),
      "busy" (another live process holds the trial) or "skipped" (already
      recorded); `record` is the appended record if any, `error` a traceback tail.
    """
    lock = store.TrialLock(os.path.join(task.workdir, "lock"))
    if not lock.acquire():
        return {"run_id": task.run_id, "status": "busy"}
    try:
        previous = store.latest_results(task.out).get(task.run_id)
        attempt = attempts(task.out, task.run_id)
        # Someone else finished it meanwhile (a failure counts unless reset for a retry).
        if previous is not None and (
            previous.get("status") in ("done", "diverged") or attempt >= task.max_attempts
        ):
            return {"run_id": task.run_id, "status": "skipped", "record": previous}
        summary = _finished_summary(task)
        if summary is not None:  # killed between summary.json and the append
            record = _annotate(task, summary, max(attempt, 1))
            store.append_result(task.out, record)
            return {"run_id": task.run_id, "status": record["status"], "record": record}

        attempt += 1
        state = store.read_json(_attempts_path(task), {"errors": []})
        store.write_json_atomic(
            _attempts_path(task), {"attempts": attempt, "errors": state.get("errors", [])}
        )
        store.write_json_atomic(os.path.join(task.workdir, "trial.json"), dataclasses.asdict(task))
        start = time.time()
        error = None
        try:
            config = ml_collections.ConfigDict(task.config)
            config.lock()
            with _compilation_cache(task) as compiles:
                result = dict(import_trainer(task.trainer)(config, task.workdir))
            if compiles is not None:  # e.g. {"requests": 9, "hits": 9, "writes": 0, ...}
                result["compilation_cache"] = dict(compiles)
            status = result.get("status", "done")
            if status == "failed":
                error = str(result.get("error", "the trainer reported status 'failed'"))
        except Exception:  # a crashing trial must not stop the sweep
            error = traceback.format_exc(limit=8)[-4000:]
            status = "failed"
        if status == "preempted":
            return {"run_id": task.run_id, "status": "preempted"}
        if status == "failed":
            errors = [*state.get("errors", []), error][-5:]
            store.write_json_atomic(_attempts_path(task), {"attempts": attempt, "errors": errors})
            if attempt < task.max_attempts:
                return {"run_id": task.run_id, "status": "retry", "error": error}
            record = failed_record(task, error, attempt)
            record["wall_seconds"] = time.time() - start
        else:
            record = _annotate(task, result, attempt)
        store.append_result(task.out, record)
        return {"run_id": task.run_id, "status": record["status"], "record": record}
    finally:
        lock.release()

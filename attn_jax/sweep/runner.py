"""Runs a sweep: resolve and validate, skip what is done, run the rest, record.

Rerunning the same command is the normal way to finish a sweep: trials with a
record are skipped, partial ones resume from the last checkpoint in their
stable workdir (out/trials/<run_id>, the trainer resumes on its own), crashed
ones are retried up to `max_attempts`, and a trial held by another live process
is waited for, never run twice at once. Diverged and failed trials are
recorded and the sweep goes on.

Branches (a trial with a parent, e.g. a WSD cooldown from
`designs.wsd_branches`) wait until their parent is recorded as done, then
queue: a branch only needs the parent's checkpoint at its step, but waiting
for the whole parent keeps one rule for every executor and for reruns
(parents of different sizes still run side by side). A parent that ends
failed or diverged records its branches as failed, with a note naming it;
`--retry-failed` reruns both.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections.abc import Mapping
from typing import Any

from tqdm.auto import tqdm

from attn_jax import families
from attn_jax.sweep import executors, store, worker
from attn_jax.sweep.spec import ResolvedTrial, Sweep, load_sweep, resolve
from attn_jax.train.budget import total_steps

POLL_SECONDS = 2.0  # how often to look at trials another process is running


def planned_steps(trial: ResolvedTrial) -> int | None:
    """Optimizer steps a trial runs (a budget `train.<unit>` > 0 overrides `train.steps`).

    The unit and units per step are the family's (attn_jax.families). A branch runs
    only the steps after its parent's checkpoint.
    """
    config = trial.config
    try:
        unit = families.unit_of(config)
        steps = total_steps(config.train, unit, families.units_per_step(config))
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    if trial.parent_run_id is not None:
        steps -= int(trial.trial.branch_step)
    return steps


def planned_flops(trial: ResolvedTrial) -> float | None:
    """Analytic training FLOPs of a trial: its `flops` tag, else the family's counts."""
    if "flops" in trial.trial.tags:
        return float(trial.trial.tags["flops"])
    config, steps = trial.config, planned_steps(trial)
    if steps is None:
        return None
    try:
        counts = families.counts(config)
        if counts is None:
            return None  # the family registers no analytic counts
        return float(counts["flops_per_unit"]) * steps * families.units_per_step(config)
    except (ImportError, AttributeError, KeyError, TypeError, ValueError):
        return None


def write_manifest(out: str, sweep: Sweep, trials: list[ResolvedTrial]) -> dict[str, Any]:
    """out/sweep.json: the resolved trials, so `status` and `results` need no spec."""
    manifest = {
        "name": sweep.name,
        "experiment": sweep.experiment,
        "description": sweep.description,
        "metadata": dict(sweep.metadata),
        "trials": [
            {
                "index": t.index,
                "run_id": t.run_id,
                "label": t.label(),
                "experiment": t.experiment,
                "arg": t.trial.arg,
                "overrides": dict(t.trial.overrides),
                "tags": dict(t.trial.tags),
                "planned_flops": planned_flops(t),
                "planned_steps": planned_steps(t),
                "parent_run_id": t.parent_run_id,
            }
            for t in trials
        ],
    }
    store.write_json_atomic(os.path.join(out, store.MANIFEST), manifest)
    return manifest


def _task(
    out: str, sweep: Sweep, t: ResolvedTrial, trainer: str, max_attempts: int, cache: str | None
):
    info = {
        "name": sweep.name,
        "index": t.index,
        "experiment": t.experiment,
        "arg": t.trial.arg,
        "overrides": dict(t.trial.overrides),
        "tags": dict(t.trial.tags),
    }
    return worker.TrialTask(
        t.run_id, out, t.config.to_dict(), trainer, info, max_attempts, compilation_cache=cache
    )


def _line(status: str, t: ResolvedTrial, record: Mapping[str, Any] | None, note: str = "") -> str:
    parts = [f"{status:9s}", t.run_id, t.label()]
    record = record or {}
    for key, name in (("final_train_loss", "loss"), ("best_eval_loss", "eval")):
        if isinstance(record.get(key), int | float):
            parts.append(f"{name}={record[key]:.4f}")
    if isinstance(record.get("wall_seconds"), int | float):
        parts.append(f"{record['wall_seconds']:.1f}s")
    if note:
        parts.append(note)
    return "  ".join(parts)


def run_sweep(
    sweep: Sweep | str,
    out: str,
    *,
    executor: str = "inline",
    workers: int = 1,
    trainer: str = worker.DEFAULT_TRAINER,
    max_attempts: int = 2,
    retry_failed: bool = False,
    wait: bool = True,
    progress: bool = True,
    sizes: Mapping[str, Any] | None = None,
    executor_options: Mapping[str, Any] | None = None,
    compilation_cache: bool | None = None,
) -> list[dict[str, Any]]:
    """Runs every trial of a sweep that has no record yet.

    Args:
      sweep: a Sweep, or the path of a sweep file.
      out: the sweep directory (created).
      executor: "inline", "local" or "ray" (see executors.EXECUTORS).
      workers: trials at once (local, ray); inline runs one.
      trainer: "module:function" with train_and_evaluate's signature.
      max_attempts: attempts per trial before it is recorded as failed.
      retry_failed: give trials recorded as failed a fresh set of attempts.
      wait: wait for trials that another live process is running.
      progress: show the tqdm bar and per-trial lines.
      sizes: valid size names (default: attn_jax.models SIZES).
      executor_options: extra executor args (ray: address, resources).
      compilation_cache: JAX's persistent compilation cache in `<out>/.jax_cache`,
        so trials of one shape compile once (each record's `compilation_cache`
        counts its hits). None: on for the default (JAX) trainer only.

    Returns:
      The latest record of every trial, in spec order (missing only for trials
      left running elsewhere when `wait` is False, or preempted).

    Raises:
      SweepSpecError: before anything runs, if the spec is bad.
    """
    if isinstance(sweep, str):
        sweep = load_sweep(sweep)
    trials = resolve(sweep, sizes=sizes)  # validates everything before any training
    out = os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    manifest = write_manifest(out, sweep, trials)
    if compilation_cache is None:
        compilation_cache = trainer == worker.DEFAULT_TRAINER
    cache = os.path.join(out, ".jax_cache") if compilation_cache else None
    run = _SweepRun(sweep, out, trials, manifest, trainer, max_attempts, progress, cache)
    run.plan(retry_failed)
    pool = executors.make_executor(executor, workers, **dict(executor_options or {}))
    run.note(
        f"sweep {sweep.name!r}: {len(trials)} trials, {len(run.done_ids)} recorded, "
        f"{len(run.queue) + sum(map(len, run.blocked.values()))} to run on {executor} -> {out}"
    )
    try:
        run.loop(pool, wait)
    finally:
        for future in run.inflight:
            future.cancel()
        pool.shutdown()
        run.bar.close()
    latest = store.latest_results(out)
    return [latest[t.run_id] for t in trials if t.run_id in latest]


class _SweepRun:
    """The state of one `run_sweep` call: what is queued, blocked, in flight, done."""

    def __init__(self, sweep, out, trials, manifest, trainer, max_attempts, progress, cache):
        self.sweep, self.out, self.trials = sweep, out, trials
        self.trainer, self.max_attempts, self.progress = trainer, max_attempts, progress
        self.cache = cache
        self.flops = {m["run_id"]: m["planned_flops"] for m in manifest["trials"]}
        self.use_flops = all(f is not None for f in self.flops.values())
        self.queue: list[ResolvedTrial] = []
        self.blocked: dict[str, list[ResolvedTrial]] = {}  # parent run id -> its branches
        self.inflight: dict[concurrent.futures.Future, ResolvedTrial] = {}
        self.waiting: list[ResolvedTrial] = []  # held by another live process
        self.deaths: dict[str, int] = {}  # worker processes lost per trial
        self.done_ids: set[str] = set()
        self.bar = None

    def note(self, message: str) -> None:
        if self.progress:
            tqdm.write(message)

    def task(self, t: ResolvedTrial) -> worker.TrialTask:
        return _task(self.out, self.sweep, t, self.trainer, self.max_attempts, self.cache)

    def plan(self, retry_failed: bool) -> None:
        """Sorts trials into recorded, queued, and branches blocked on their parent."""
        latest = store.latest_results(self.out)
        todo = []
        for t in self.trials:
            record = latest.get(t.run_id)
            if record is None or (retry_failed and record.get("status") == "failed"):
                if record is not None:
                    worker.reset_attempts(self.out, t.run_id)
                todo.append(t)
        self.done_ids = {t.run_id for t in self.trials} - {t.run_id for t in todo}
        pending = {t.run_id for t in todo}
        orphans = []
        for t in todo:
            parent = t.parent_run_id
            if parent is None or (
                parent not in pending and _can_branch_from(latest.get(parent), t)
            ):
                self.queue.append(t)
            elif parent in pending:
                self.blocked.setdefault(parent, []).append(t)
            else:  # the parent ended failed or diverged and is not being retried
                orphans.append((t, _status(latest, parent)))
        self._sort()
        unit_total = sum(self.flops.values()) if self.use_flops else len(self.trials)
        done = self.done_ids
        self.bar = tqdm(
            total=unit_total,
            initial=sum(self.flops[i] for i in done) if self.use_flops else len(done),
            unit="FLOP" if self.use_flops else "trial",
            unit_scale=self.use_flops,
            desc=f"{self.sweep.name}",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        self.bar.set_postfix_str(f"trials {len(done)}/{len(self.trials)}")
        for t, status in orphans:
            self._fail_branch(t, t.parent_run_id, status)

    def _sort(self) -> None:
        if self.use_flops:  # longest first: the shortest makespan, and no big run last
            self.queue.sort(key=lambda t: -self.flops[t.run_id])

    def finish(self, t: ResolvedTrial, status: str, record, extra: str = "") -> None:
        """Counts a recorded trial and releases (or fails) the branches waiting on it."""
        self.done_ids.add(t.run_id)
        self.bar.update(self.flops[t.run_id] if self.use_flops else 1)
        self.bar.set_postfix_str(f"trials {len(self.done_ids)}/{len(self.trials)}")
        self.note(_line(status, t, record, extra))
        children = self.blocked.pop(t.run_id, [])
        parent = {**(record or {}), "status": status}
        for child in children:
            if _can_branch_from(parent, child):
                self.queue.append(child)
            else:
                self._fail_branch(child, t.run_id, status)
        self._sort()

    def _fail_branch(self, t: ResolvedTrial, parent: str, status: str | None) -> None:
        where = (
            f"at or before step {t.trial.branch_step}"
            if status == "diverged"
            else status or "without a record"
        )
        error = (
            f"not run: its parent trial {parent} ended {where}, so there is no checkpoint "
            "to branch from; fix the parent and rerun with --retry-failed."
        )
        record = worker.failed_record(self.task(t), error, 0)
        store.append_result(self.out, record)
        self.finish(t, "failed", record, f"parent {parent} {status}")

    def launch(self, pool) -> None:
        while self.queue and len(self.inflight) < pool.capacity:
            t = self.queue.pop(0)
            if store.running_pid(self.out, t.run_id) is not None:
                self.waiting.append(t)
                continue
            attempt = worker.attempts(self.out, t.run_id) + 1
            self.note(_line("start", t, None, f"attempt {attempt}"))
            self.inflight[pool.submit(self.task(t))] = t

    def loop(self, pool, wait: bool) -> None:
        while self.queue or self.inflight or (self.waiting and wait):
            self.launch(pool)
            if not self.inflight:
                if self.waiting and wait:
                    time.sleep(POLL_SECONDS)
                    self.poll_waiting()
                continue
            ready, _ = concurrent.futures.wait(
                self.inflight, timeout=POLL_SECONDS, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in ready:
                t = self.inflight.pop(future)
                self.handle(t, self.outcome(t, future))
            self.poll_waiting()

    def outcome(self, t: ResolvedTrial, future) -> dict[str, Any]:
        try:
            return future.result()
        except Exception as e:  # the worker process itself died
            outcome = {"status": "retry", "error": f"{type(e).__name__}: {e}"}
            # Counted here too: a worker may die before it counts its attempt.
            self.deaths[t.run_id] = self.deaths.get(t.run_id, 0) + 1
            tries = max(worker.attempts(self.out, t.run_id), self.deaths[t.run_id])
            if tries >= self.max_attempts:
                record = worker.failed_record(self.task(t), outcome["error"], tries)
                store.append_result(self.out, record)
                outcome = {"status": "failed", "record": record}
            return outcome

    def handle(self, t: ResolvedTrial, outcome: Mapping[str, Any]) -> None:
        status = outcome["status"]
        if status in store.TERMINAL or status == "skipped":
            record = outcome.get("record")
            self.finish(t, record.get("status", status) if record else status, record)
        elif status == "retry":
            error = (outcome.get("error") or "").strip().splitlines()
            self.note(_line("crashed", t, None, (error[-1] if error else "") + " (will retry)"))
            self.queue.append(t)
        elif status == "busy":
            self.waiting.append(t)
        elif status == "preempted":  # asked to stop (SIGTERM, time limit): launch nothing new
            self.note(_line("preempted", t, None, "stopping; rerun the sweep to resume"))
            self.queue.clear()

    def poll_waiting(self) -> None:
        """Trials another process held: recorded now, freed (run them here), or still held."""
        if not self.waiting:
            return
        latest = store.latest_results(self.out)
        still = []
        for t in self.waiting:
            record = latest.get(t.run_id)
            if record is not None and record.get("status") in store.TERMINAL:
                self.finish(t, record["status"], record, "(ran elsewhere)")
            elif store.running_pid(self.out, t.run_id) is None:
                self.queue.append(t)
            else:
                still.append(t)
        self.waiting = still


def _can_branch_from(parent: Mapping[str, Any] | None, t: ResolvedTrial) -> bool:
    """Whether branch `t` can start from its parent's record `parent`.

    A done parent, yes. A diverged one too when it diverged after the branch's step:
    the loop checks each step's loss before saving and saves every branch step
    it passes (train.keep_steps), so that checkpoint exists and precedes the NaN;
    the record's `steps` is where the run stopped.
    """
    if parent is None:
        return False
    if parent.get("status") == "done":
        return True
    return parent.get("status") == "diverged" and t.trial.branch_step < int(
        parent.get("steps") or 0
    )


def _status(latest: Mapping[str, Mapping[str, Any]], run_id: str) -> str | None:
    return (latest.get(run_id) or {}).get("status")

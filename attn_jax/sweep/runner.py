"""Runs a sweep: resolve and validate, skip what is done, run the rest, record.

Rerunning the same command is the normal way to finish a sweep: trials with a
record are skipped, partial ones resume from the last checkpoint in their
stable workdir (out/trials/<run_id>, the trainer resumes on its own), crashed
ones are retried up to `max_attempts`, and a trial held by another live process
is waited for, never run twice at once. Diverged and failed trials are
recorded and the sweep goes on.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections.abc import Mapping
from typing import Any

from tqdm.auto import tqdm

from attn_jax.sweep import executors, store, worker
from attn_jax.sweep.spec import ResolvedTrial, Sweep, load_sweep, resolve

POLL_SECONDS = 2.0  # how often to look at trials another process is running


def planned_steps(trial: ResolvedTrial) -> int | None:
    """Optimizer steps of a trial (`train.tokens` > 0 overrides `train.steps`)."""
    train = trial.config.get("train")
    try:
        tokens = int(train.get("tokens", 0) or 0)
        if tokens > 0:
            return -(-tokens // (int(train.batch_size) * int(train.seq_len)))
        return int(train.steps)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def planned_flops(trial: ResolvedTrial) -> float | None:
    """Analytic training FLOPs of a trial: its `flops` tag, else from the model config."""
    if "flops" in trial.trial.tags:
        return float(trial.trial.tags["flops"])
    config, steps = trial.config, planned_steps(trial)
    model = config.get("model")
    if steps is None or model is None or model.get("family") != "lm":
        return None  # train.flops counts the LM family
    try:
        from attn_jax.train import flops

        seq_len = int(config.train.seq_len)
        tokens = steps * int(config.train.batch_size) * seq_len
        return float(flops.flops_per_token(model, seq_len)) * tokens
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
            }
            for t in trials
        ],
    }
    store.write_json_atomic(os.path.join(out, store.MANIFEST), manifest)
    return manifest


def _task(out: str, sweep: Sweep, t: ResolvedTrial, trainer: str, max_attempts: int):
    info = {
        "name": sweep.name,
        "index": t.index,
        "experiment": t.experiment,
        "arg": t.trial.arg,
        "overrides": dict(t.trial.overrides),
        "tags": dict(t.trial.tags),
    }
    return worker.TrialTask(t.run_id, out, t.config.to_dict(), trainer, info, max_attempts)


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
    by_id = {t.run_id: t for t in trials}
    flops = {m["run_id"]: m["planned_flops"] for m in manifest["trials"]}
    use_flops = all(f is not None for f in flops.values())

    latest = store.latest_results(out)
    queue: list[ResolvedTrial] = []
    for t in trials:
        record = latest.get(t.run_id)
        if record is None or (retry_failed and record.get("status") == "failed"):
            if record is not None:
                worker.reset_attempts(out, t.run_id)
            queue.append(t)
    done_ids = {t.run_id for t in trials} - {t.run_id for t in queue}
    if use_flops:  # longest first: the shortest makespan on parallel workers, and no big run last
        queue.sort(key=lambda t: -flops[t.run_id])

    unit_total = sum(flops.values()) if use_flops else len(trials)
    bar = tqdm(
        total=unit_total,
        initial=sum(flops[i] for i in done_ids) if use_flops else len(done_ids),
        unit="FLOP" if use_flops else "trial",
        unit_scale=use_flops,
        desc=f"{sweep.name}",
        disable=not progress,
        dynamic_ncols=True,
    )

    def note(message: str) -> None:
        if progress:
            tqdm.write(message)

    def finish(t: ResolvedTrial, status: str, record: Mapping | None, extra: str = "") -> None:
        done_ids.add(t.run_id)
        bar.update(flops[t.run_id] if use_flops else 1)
        bar.set_postfix_str(f"trials {len(done_ids)}/{len(trials)}")
        note(_line(status, t, record, extra))

    bar.set_postfix_str(f"trials {len(done_ids)}/{len(trials)}")
    note(
        f"sweep {sweep.name!r}: {len(trials)} trials, {len(done_ids)} recorded, "
        f"{len(queue)} to run on {executor} -> {out}"
    )
    pool = executors.make_executor(executor, workers, **dict(executor_options or {}))
    inflight: dict[concurrent.futures.Future, ResolvedTrial] = {}
    waiting: list[ResolvedTrial] = []  # held by another live process
    deaths: dict[str, int] = {}  # worker processes lost per trial
    try:
        while queue or inflight or (waiting and wait):
            while queue and len(inflight) < pool.capacity:
                t = queue.pop(0)
                if store.running_pid(out, t.run_id) is not None:
                    waiting.append(t)
                    continue
                note(_line("start", t, None, f"attempt {worker.attempts(out, t.run_id) + 1}"))
                task = _task(out, sweep, t, trainer, max_attempts)
                inflight[pool.submit(task)] = t
            if not inflight:
                if waiting and wait:
                    time.sleep(POLL_SECONDS)
                    waiting = _poll_waiting(out, waiting, queue, finish)
                continue
            ready, _ = concurrent.futures.wait(
                inflight, timeout=POLL_SECONDS, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in ready:
                t = inflight.pop(future)
                try:
                    outcome = future.result()
                except Exception as e:  # the worker process itself died
                    outcome = {"status": "retry", "error": f"{type(e).__name__}: {e}"}
                    # Counted here too: a worker may die before it counts its attempt.
                    deaths[t.run_id] = deaths.get(t.run_id, 0) + 1
                    tries = max(worker.attempts(out, t.run_id), deaths[t.run_id])
                    if tries >= max_attempts:
                        record = worker.failed_record(
                            _task(out, sweep, t, trainer, max_attempts), outcome["error"], tries
                        )
                        store.append_result(out, record)
                        outcome = {"status": "failed", "record": record}
                _handle(t, outcome, queue, waiting, finish, note)
            waiting = _poll_waiting(out, waiting, queue, finish)
    finally:
        for future in inflight:
            future.cancel()
        pool.shutdown()
        bar.close()

    latest = store.latest_results(out)
    return [latest[t.run_id] for t in trials if t.run_id in latest and t.run_id in by_id]


def _handle(t, outcome, queue, waiting, finish, note) -> None:
    status = outcome["status"]
    if status in store.TERMINAL or status == "skipped":
        record = outcome.get("record")
        finish(t, record.get("status", status) if record else status, record)
    elif status == "retry":
        error = (outcome.get("error") or "").strip().splitlines()
        note(_line("crashed", t, None, (error[-1] if error else "") + " (will retry)"))
        queue.append(t)
    elif status == "busy":
        waiting.append(t)
    elif status == "preempted":  # asked to stop (SIGTERM, time limit): launch nothing new
        note(_line("preempted", t, None, "stopping; rerun the sweep to resume"))
        queue.clear()


def _poll_waiting(out, waiting, queue, finish) -> list[ResolvedTrial]:
    """Trials another process held: recorded now, freed (run them here), or still held."""
    if not waiting:
        return waiting
    latest = store.latest_results(out)
    still = []
    for t in waiting:
        record = latest.get(t.run_id)
        if record is not None and record.get("status") in store.TERMINAL:
            finish(t, record["status"], record, "(ran elsewhere)")
        elif store.running_pid(out, t.run_id) is None:
            queue.append(t)
        else:
            still.append(t)
    return still

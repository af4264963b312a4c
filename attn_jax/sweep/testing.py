"""A fake trainer for testing sweeps without JAX: fast, deterministic, resumable.

`fake_train(config, workdir)` has `train_and_evaluate`'s contract: it resumes
from workdir/checkpoints, writes workdir/summary.json atomically, and returns a
run record. Its loss is a Chinchilla-shaped law of `config.model.d_model` and
the step count, so a sweep of it gives a clean trend. `config.fake` drives the
failure modes the runner must survive:
  step_seconds: simulated compute per step (so a test can kill it mid-trial)
  crash_attempts: raise on the first this-many attempts (counts starts)
  diverge: report status "diverged" with a NaN loss
  diverge_at_step: stop at this step as diverged (its checkpoint is the step before)
  hard_exit: kill the process outright (as an OOM kill or a segfault would)
  pause_at_step, notify_fifo: on its first start, after checkpointing step
    `pause_at_step`, write "paused" to the FIFO `notify_fifo` and block until
    killed (so a test kills mid-trial on an event, not after a guessed time)
  pause_env: pause only in a process whose environment names this variable
    (a test sets it on one Ray node, so only the trial placed there pauses)
A branch (`train.init_from`, a sibling run id, and `train.init_from_step`)
starts at that step when its own checkpoint is missing, after checking the
parent got there; its record names the parent, as the real loop's does.
It appends one line per start to workdir/starts.log ("<resumed-from-step>").
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import ml_collections

from attn_jax import configs
from attn_jax.sweep import store


def fake_loss(d_model: int, step: int, lr: float = 1e-3) -> float:
    """L = E + A / N^0.34 + B / D^0.28 with a mild LR penalty (Hoffmann et al. 2022 shape)."""
    n = 12.0 * d_model * d_model
    lr_penalty = 0.05 * (lr / 1e-3 - 1.0) ** 2
    return 1.7 + 40.0 / n**0.34 + 8.0 / max(step, 1) ** 0.28 + lr_penalty


def _branch_start(train: ml_collections.ConfigDict, workdir: str) -> dict[str, int]:
    parent = str(train.get("init_from", "") or "")
    if not parent:
        return {"step": 0}
    step = int(train.init_from_step)
    parent_ckpt = os.path.join(os.path.dirname(workdir), parent, "checkpoints", "state.json")
    if store.read_json(parent_ckpt, {"step": -1})["step"] < step:
        raise FileNotFoundError(f"fake branch: parent {parent} never reached step {step}")
    return {"step": step}


def _branch_fields(train: ml_collections.ConfigDict, diverged: bool) -> dict[str, Any]:
    schedule = str(train.get("schedule", "cosine"))
    decayed = schedule == "cosine" or (schedule == "wsd" and float(train.decay_fraction) > 0)
    parent = str(train.get("init_from", "") or "") or None
    return {
        "schedule": schedule,
        "schedule_final": decayed and not diverged,
        "parent_run_id": parent,
        "init_from_step": int(train.init_from_step) if parent else None,
    }


def _pause(fifo: str) -> None:
    with open(fifo, "w") as f:  # the test holds the read end open
        f.write("paused\n")
    threading.Event().wait()  # until the test kills the process


def fake_train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains nothing, convincingly; see the module docstring."""
    fake = config.get("fake", ml_collections.ConfigDict())
    tokens_per_step = int(config.train.batch_size) * int(config.train.seq_len)
    budget = int(config.train.get("tokens", 0) or 0)
    steps = -(-budget // tokens_per_step) if budget > 0 else int(config.train.steps)
    d_model = int(config.model.d_model)
    lr = float(config.train.lr)
    ckpt = os.path.join(workdir, "checkpoints", "state.json")
    state = store.read_json(ckpt, None) or _branch_start(config.train, workdir)
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "starts.log"), "a") as f:
        f.write(f"{state['step']}\n")
    with open(os.path.join(workdir, "starts.log")) as f:
        starts = len(f.read().split())
    if fake.get("hard_exit", False):
        os._exit(3)
    if starts <= int(fake.get("crash_attempts", 0)):
        raise RuntimeError(f"fake crash on start {starts}")

    begin = time.time()
    step_seconds = float(fake.get("step_seconds", 0.0))
    diverge_at = int(fake.get("diverge_at_step", 0) or 0)
    while state["step"] < steps:
        if diverge_at and state["step"] + 1 >= diverge_at:
            break  # this step's loss is NaN: not checkpointed, as the real loop does
        if step_seconds:
            time.sleep(step_seconds)  # stands in for a train step
        state = {"step": state["step"] + 1}
        store.write_json_atomic(ckpt, state)
        with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
            loss = fake_loss(d_model, state["step"], lr)
            f.write(json.dumps({"step": state["step"], "train_loss": loss}) + "\n")
        pause_env = str(fake.get("pause_env", "") or "")
        if starts == 1 and state["step"] == int(fake.get("pause_at_step", 0) or 0):
            if not pause_env or os.environ.get(pause_env):
                _pause(str(fake.notify_fifo))

    params = 12 * d_model * d_model * int(config.model.num_layers)
    if 0 < diverge_at <= steps:
        steps = diverge_at  # where the run stopped, as the real record's `steps`
    diverged = bool(fake.get("diverge", False)) or 0 < diverge_at == steps
    loss = None if diverged else fake_loss(d_model, steps, lr)
    tokens = steps * tokens_per_step
    record = {
        "run_id": configs.config_hash(config),
        "experiment": config.get("experiment", ""),
        "family": "fake",
        "config": configs.flatten(config),
        "seed": int(config.get("seed", 0)),
        "params_total": params + 256 * d_model,
        "params_embedding": 256 * d_model,
        "params_non_embedding": params,
        "tokens_seen": tokens,
        "flops_per_token": 6.0 * params,
        "train_flops": 6.0 * params * tokens,
        "train_flops_6nd": 6.0 * params * tokens,
        "status": "diverged" if diverged else "done",
        "steps": steps,
        "final_train_loss": loss,
        "eval": {"loss": None if diverged else loss + 0.05},
        "best_eval_loss": None if diverged else loss + 0.05,
        "wall_seconds": time.time() - begin,
        "evals_at_budget": [],
        "history": os.path.join(workdir, "metrics.jsonl"),
        **_branch_fields(config.train, diverged),
    }
    store.write_json_atomic(os.path.join(workdir, "summary.json"), record)
    return record

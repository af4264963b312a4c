"""Cooldown branches: a run that starts from another run's checkpoint.

Warmup-stable-decay (optim.SCHEDULES["wsd"], Hagele et al. 2024, arXiv
2405.18392) gives several schedule-final points per model size cheaply: one
stable-phase run (decay_fraction 0) and, from its checkpoint at each budget's
cooldown start, a short decay. The branch's learning rate up to that step
equals the parent's, so a branch is the same run as WSD to its budget from
scratch (tests/train/test_branch.py checks the losses agree).

Config (config.train):
  init_from: the parent: a workdir path, or a run id, resolved as a sibling
    of this run's workdir (sweep trials live in out/trials/<run_id>).
  init_from_step: the parent's checkpoint step to start from.
  keep_steps: steps whose checkpoints this run keeps forever (a parent keeps
    its branch steps; saved there even off the checkpoint_every grid).

`init_from` applies only when the run's own workdir has no checkpoint, so a
killed branch resumes from its own checkpoint, never from the parent again.
"""

from __future__ import annotations

import json
import os
from typing import Any

import ml_collections

from attn_jax.train import checkpoint as ckpt_lib
from attn_jax.train.state import TrainState


def keep_steps(train_config: ml_collections.ConfigDict) -> tuple[int, ...]:
    """`train.keep_steps` as sorted ints (empty when the config has none)."""
    return tuple(sorted(int(s) for s in (train_config.get("keep_steps") or ())))


def parent_dir(train_config: ml_collections.ConfigDict, workdir: str) -> str | None:
    """The parent's workdir named by `train.init_from`, or None for a run from scratch."""
    name = str(train_config.get("init_from", "") or "")
    if not name:
        return None
    candidates = (
        [name]
        if os.path.isabs(name)
        else [
            os.path.join(os.path.dirname(os.path.abspath(workdir)), name),
            os.path.abspath(name),
        ]
    )
    for path in candidates:
        if os.path.isdir(path):
            return path
    raise FileNotFoundError(
        f"train.init_from={name!r}: no parent workdir at {' or '.join(candidates)}; run the "
        "parent first (a sweep does, see attn_jax.sweep.designs.wsd_branches) or give its path."
    )


def parent_run_id(train_config: ml_collections.ConfigDict, workdir: str) -> str | None:
    """The parent's run id: its summary.json's, else the workdir's name."""
    path = parent_dir(train_config, workdir)
    if path is None:
        return None
    summary = _read_json(os.path.join(path, "summary.json"))
    return str(summary.get("run_id") or os.path.basename(path))


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def restore_parent(
    train_config: ml_collections.ConfigDict, workdir: str, state: TrainState
) -> tuple[TrainState, dict | None] | None:
    """The parent's checkpoint at exactly `train.init_from_step`, or None without a parent.

    Args:
      train_config: config.train (init_from, init_from_step).
      workdir: this run's workdir (a run id in init_from is its sibling).
      state: a freshly initialised state: tree, shapes, dtypes and shardings.

    Returns:
      (state, extra) as `Checkpointer.restore_latest` returns them: params, opt
      state, step, rng, and in extra the data position and the loop state.

    Raises:
      FileNotFoundError: the parent, or its checkpoint at that step, is missing
        (the message lists the steps it has).
    """
    path = parent_dir(train_config, workdir)
    if path is None:
        return None
    step = int(train_config.get("init_from_step", 0) or 0)
    directory = os.path.join(path, "checkpoints")
    steps: list[int] = []
    if os.path.isdir(directory):
        # read_only: never touch the parent's files (another branch may read them too).
        parent = ckpt_lib.Checkpointer(directory, read_only=True, async_save=False)
        try:
            steps = parent.all_steps()
            if step in steps:
                return parent.restore_step(step, state)
        finally:
            parent.close()
    raise FileNotFoundError(
        f"train.init_from: parent {path} has checkpoints at steps {steps or 'none'}, "
        f"not at init_from_step={step}; the parent must keep it (train.keep_steps, "
        "set by designs.wsd_branches) and rerunning the parent does not recreate it."
    )


def record_fields(train_config: ml_collections.ConfigDict, workdir: str, *, final: bool):
    """schedule, schedule_final, parent_run_id, init_from_step for the run record."""
    from attn_jax.train import optim

    has_parent = bool(train_config.get("init_from", ""))
    return {
        "schedule": str(train_config.schedule),
        "schedule_final": bool(final and optim.is_schedule_final(train_config)),
        "parent_run_id": parent_run_id(train_config, workdir) if has_parent else None,
        "init_from_step": int(train_config.get("init_from_step", 0)) if has_parent else None,
    }

"""Budgets (tokens or examples) -> optimizer steps, and the WSD cooldown's first step: no JAX.

The one place these rules live (attn_jax.train.optim re-exports them); the sweep
designs and runner import it to plan trials without importing JAX.
"""

from __future__ import annotations

import math
import os


def steps_from_tokens(tokens: int, batch_size: int, seq_len: int) -> int:
    """Optimizer steps needed to see at least `tokens` tokens (rounded up, >= 1)."""
    per_step = batch_size * seq_len
    if per_step <= 0:
        raise ValueError(f"batch_size * seq_len must be positive, got {batch_size} * {seq_len}.")
    return max(1, math.ceil(tokens / per_step))


def steps_from_units(budget: float, units_per_step: float) -> int:
    """Optimizer steps needed to see at least `budget` units (rounded up, >= 1)."""
    if units_per_step <= 0:
        raise ValueError(f"units per step must be positive, got {units_per_step}.")
    return max(1, math.ceil(budget / units_per_step - 1e-9))


def total_steps(train_config, unit: str = "tokens", units_per_step: float | None = None) -> int:
    """Training steps of a run: a budget `train.<unit>` > 0 overrides `train.steps`.

    Args:
      train_config: config.train.
      unit: the family's unit, "tokens" or "examples" (attn_jax.families.unit_of).
      units_per_step: planned units per step (attn_jax.families.units_per_step);
        default batch_size * seq_len for tokens, batch_size for examples.
    """
    budget = float(train_config.get(unit, 0) or 0)
    if budget > 0 and float(train_config.get("time_budget_s", 0) or 0) > 0:
        raise ValueError(
            f"Set one budget: train.{unit}={budget:g} or train.time_budget_s="
            f"{train_config.time_budget_s:g}, not both."
        )
    if budget > 0:
        if units_per_step is None:
            units_per_step = train_config.batch_size * (
                train_config.seq_len if unit == "tokens" else 1
            )
        return steps_from_units(budget, units_per_step)
    steps = int(train_config.steps)
    if steps <= 0:
        raise ValueError(f"Set train.steps > 0 or a budget train.{unit} > 0.")
    return steps


def wsd_decay_start(steps: int, decay_fraction: float) -> int:
    """First step of a WSD cooldown over the last `decay_fraction` of `steps` steps.

    The one rounding rule shared by the schedule and by the sweep designs that
    branch a cooldown off a stable-phase run (attn_jax.sweep.designs.wsd_branches).
    """
    if not 0.0 <= decay_fraction <= 1.0:
        raise ValueError(f"train.decay_fraction must be in [0, 1], got {decay_fraction}.")
    return steps - int(math.floor(decay_fraction * steps + 0.5))


# ---------------------------------------------------------------- time budgets
def process_elapsed_seconds() -> float | None:
    """Seconds since this process started (Linux /proc; None elsewhere).

    A time budget counts the whole process, imports and data building included;
    attn_jax.main's allocator re-exec keeps the PID, so it counts from the first exec.
    """
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def plan_steps(
    budget_s: float,
    elapsed_s: float,
    step: int,
    step_s: float,
    *,
    evals_left: int = 1,
    eval_s: float = 0.0,
    tail_s: float = 0.0,
    margin: float = 0.03,
) -> int:
    """Total optimizer steps that end the run, final evaluation included, by `budget_s`.

    Args:
      budget_s: the deadline in seconds of process wall time (train.time_budget_s).
      elapsed_s: process seconds spent so far (process_elapsed_seconds).
      step: optimizer steps already taken.
      step_s: measured seconds per step (steady state, compile excluded).
      evals_left: evaluations still to run, the final one included.
      eval_s: measured seconds of one evaluation.
      tail_s: seconds after the last step and eval: the final save, the record, exit.
      margin: fraction of the budget held back for noise (step times vary by a few %).

    Returns:
      The planned total, at least `step + 1`: a budget already spent still ends
      with one more step (and the evaluation), which the record then shows as late.
    """
    if budget_s <= 0:
        raise ValueError(f"train.time_budget_s must be positive, got {budget_s}.")
    if step_s <= 0:
        raise ValueError(f"The measured step time must be positive, got {step_s}.")
    left = budget_s * (1.0 - margin) - elapsed_s - evals_left * eval_s - tail_s
    return step + max(1, int(left // step_s))

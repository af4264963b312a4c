"""Budgets (tokens or examples) -> optimizer steps, and the WSD cooldown's first step: no JAX.

The one place these rules live (attn_jax.train.optim re-exports them); the sweep
designs and runner import it to plan trials without importing JAX.
"""

from __future__ import annotations

import math


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

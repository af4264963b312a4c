"""Token budgets -> optimizer steps, and the WSD cooldown's first step: no JAX.

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


def total_steps(train_config) -> int:
    """Training steps of a run: `train.tokens` when > 0 overrides `train.steps`."""
    tokens = int(train_config.get("tokens", 0) or 0)
    if tokens > 0:
        return steps_from_tokens(tokens, train_config.batch_size, train_config.seq_len)
    steps = int(train_config.steps)
    if steps <= 0:
        raise ValueError("Set train.steps > 0 or a token budget train.tokens > 0.")
    return steps


def wsd_decay_start(steps: int, decay_fraction: float) -> int:
    """First step of a WSD cooldown over the last `decay_fraction` of `steps` steps.

    The one rounding rule shared by the schedule and by the sweep designs that
    branch a cooldown off a stable-phase run (attn_jax.sweep.designs.wsd_branches).
    """
    if not 0.0 <= decay_fraction <= 1.0:
        raise ValueError(f"train.decay_fraction must be in [0, 1], got {decay_fraction}.")
    return steps - int(math.floor(decay_fraction * steps + 0.5))

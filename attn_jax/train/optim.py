"""Optimizer, learning-rate schedules and the token budget -> steps rule.

All budgets in this codebase are stated in tokens (what scaling laws count) and
turned into optimizer steps in exactly one place, `total_steps` (in
attn_jax.train.budget, JAX-free so that sweep planning shares it; re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

# Re-exported: callers say optim.total_steps, as before the rules moved to budget.
from attn_jax.train.budget import steps_from_tokens as steps_from_tokens
from attn_jax.train.budget import total_steps as total_steps
from attn_jax.train.budget import wsd_decay_start as wsd_decay_start


def _warmup_cosine(lr: float, warmup: int, steps: int, min_ratio: float) -> optax.Schedule:
    # Linear warmup then a half-cosine to min_ratio * lr at the last step
    # (Loshchilov & Hutter 2017, as used by Chinchilla, Hoffmann et al. 2022).
    warmup = min(warmup, max(steps - 1, 0))
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=lr,
        warmup_steps=warmup,
        decay_steps=max(steps, warmup + 1),
        end_value=lr * min_ratio,
    )


DECAY_SHAPES = ("linear", "sqrt")


def _wsd(
    lr: float,
    warmup: int,
    steps: int,
    min_ratio: float,
    *,
    decay_fraction: float = 0.2,
    decay_shape: str = "sqrt",
) -> optax.Schedule:
    """Warmup-stable-decay: linear warmup, constant `lr`, then a cooldown to min_ratio * lr.

    Hagele et al. 2024 (arXiv 2405.18392, sec. 3-4): a cooldown over the last
    10-20% of steps matches a cosine run of the same length, and the shape
    1 - sqrt(x) beats a linear one. Before the cooldown the LR does not depend
    on `steps`, so a run with decay_fraction 0 (the stable phase) is the same
    run as any WSD run up to that run's cooldown start: a cooldown branched off
    its checkpoint there is a full WSD run (attn_jax.train.branch).
    """
    if decay_shape not in DECAY_SHAPES:
        raise ValueError(
            f"Unknown train.decay_shape {decay_shape!r}; valid: {', '.join(DECAY_SHAPES)}."
        )
    start = wsd_decay_start(steps, decay_fraction)
    warmup = max(min(warmup, start), 0)
    length = max(steps - start, 1)
    end = lr * min_ratio

    def schedule(count):
        count = jnp.asarray(count, jnp.float32)
        # Same formula as optax.linear_schedule(0, lr, warmup): count / warmup * lr.
        ramp = lr * count / warmup if warmup > 0 else jnp.float32(lr)
        x = jnp.clip((count - start) / length, 0.0, 1.0)
        fall = 1.0 - (jnp.sqrt(x) if decay_shape == "sqrt" else x)
        decayed = end + (lr - end) * fall
        return jnp.where(count < warmup, ramp, jnp.where(count < start, lr, decayed))

    return schedule


def _rsqrt(lr: float, warmup: int, steps: int, min_ratio: float) -> optax.Schedule:
    """Vaswani et al. 2017, eq. 3, normalised so the peak (at `warmup`) equals `lr`."""
    del steps, min_ratio
    warmup = max(warmup, 1)

    def schedule(step):
        step = jnp.asarray(step, jnp.float32) + 1.0
        return lr * jnp.minimum(step / warmup, jnp.sqrt(warmup / step))

    return schedule


def _constant(lr: float, warmup: int, steps: int, min_ratio: float) -> optax.Schedule:
    del steps, min_ratio
    if warmup <= 0:
        return optax.constant_schedule(lr)
    return optax.linear_schedule(0.0, lr, warmup)


SCHEDULES: dict[str, Callable[[float, int, int, float], optax.Schedule]] = {
    "cosine": _warmup_cosine,
    "rsqrt": _rsqrt,
    "constant": _constant,
    "wsd": _wsd,
}
# Schedules that end their run decayed: the loss at their last step is the loss of
# a model trained for that many tokens (Hoffmann et al. 2022, sec. 3.1, fig. A1).
DECAYED = {"cosine": lambda tc: True, "wsd": lambda tc: _decay_fraction(tc) > 0}


def _decay_fraction(train_config: ml_collections.ConfigDict) -> float:
    return float(train_config.get("decay_fraction", 0.2))


def is_schedule_final(train_config: ml_collections.ConfigDict) -> bool:
    """Whether a run's last step is the end of a decayed schedule (`DECAYED`)."""
    decayed = DECAYED.get(train_config.schedule)
    return bool(decayed and decayed(train_config))


def make_schedule(train_config: ml_collections.ConfigDict, steps: int) -> optax.Schedule:
    """The learning-rate schedule named by `train.schedule` (see `SCHEDULES`)."""
    name = train_config.schedule
    if name not in SCHEDULES:
        raise ValueError(f"Unknown schedule {name!r}; valid: {', '.join(sorted(SCHEDULES))}.")
    args = (float(train_config.lr), int(train_config.warmup_steps), steps)
    args += (float(train_config.min_lr_ratio),)
    if name == "wsd":
        return _wsd(
            *args,
            decay_fraction=_decay_fraction(train_config),
            decay_shape=str(train_config.get("decay_shape", "sqrt")),
        )
    return SCHEDULES[name](*args)


def _decay_mask(params):
    # No weight decay on gains and biases (vectors); matrices and embeddings decay.
    return jax.tree.map(lambda x: x.ndim >= 2, params)


def make_optimizer(
    train_config: ml_collections.ConfigDict, steps: int
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """AdamW (Loshchilov & Hutter 2019) with global-norm clipping.

    Args:
      train_config: `config.train` (lr, schedule, warmup_steps, min_lr_ratio,
        weight_decay, b1, b2, eps, grad_clip).
      steps: total optimizer steps, from `total_steps`.

    Returns:
      (optimizer, schedule); the schedule is returned so the step can log the lr.
    """
    schedule = make_schedule(train_config, steps)
    parts = []
    if train_config.grad_clip and train_config.grad_clip > 0:
        parts.append(optax.clip_by_global_norm(float(train_config.grad_clip)))
    parts.append(
        optax.adamw(
            schedule,
            b1=float(train_config.b1),
            b2=float(train_config.b2),
            eps=float(train_config.get("eps", 1e-8)),
            weight_decay=float(train_config.weight_decay),
            mask=_decay_mask,
        )
    )
    return optax.chain(*parts), schedule

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

# Every schedule is `lr(count, args)`: a pure function of the step and a few
# numbers (`schedule_args`), so the train step can take the numbers as jit
# arguments. Trials of one shape at different budgets or learning rates then run
# the same program (one compile, shared through the persistent compilation cache),
# and a re-planned time budget changes numbers, not the program.
ScheduleArgs = dict  # str -> float (on the host) or f32 scalar (traced)


def _ramp(c, a):
    # optax.linear_schedule(0, lr, warmup)'s formula: (0 - lr) * (1 - c / warmup) + lr.
    frac = 1.0 - jnp.clip(c, 0.0, a["warmup"]) / jnp.maximum(a["warmup"], 1.0)
    return -a["lr"] * frac + a["lr"]


def _warmup_cosine(c, a):
    # Linear warmup then a half-cosine to min_ratio * lr at the last step
    # (Loshchilov & Hutter 2017, as used by Chinchilla, Hoffmann et al. 2022);
    # optax.warmup_cosine_decay_schedule's formulas.
    k = jnp.minimum(c - a["warmup"], a["decay"])
    cosine = 0.5 * (1.0 + jnp.cos(jnp.pi * k / a["decay"]))
    alpha = a["min_ratio"]
    decayed = a["lr"] * ((1.0 - alpha) * cosine + alpha)
    return jnp.where(c < a["warmup"], _ramp(c, a), decayed)


def _cosine_args(lr: float, warmup: int, steps: int, min_ratio: float) -> ScheduleArgs:
    warmup = min(warmup, max(steps - 1, 0))
    decay_steps = max(steps, warmup + 1)
    return {"lr": lr, "warmup": warmup, "decay": decay_steps - warmup, "min_ratio": min_ratio}


DECAY_SHAPES = ("linear", "sqrt")


def _wsd(c, a, *, decay_shape: str = "sqrt"):
    """Warmup-stable-decay: linear warmup, constant `lr`, then a cooldown to min_ratio * lr.

    Hagele et al. 2024 (arXiv 2405.18392, sec. 3-4): a cooldown over the last
    10-20% of steps matches a cosine run of the same length, and the shape
    1 - sqrt(x) beats a linear one. Before the cooldown the LR does not depend
    on `steps`, so a run with decay_fraction 0 (the stable phase) is the same
    run as any WSD run up to that run's cooldown start: a cooldown branched off
    its checkpoint there is a full WSD run (attn_jax.train.branch).
    """
    lr, end = a["lr"], a["lr"] * a["min_ratio"]
    # Same formula as optax.linear_schedule(0, lr, warmup): count / warmup * lr.
    ramp = lr * c / jnp.maximum(a["warmup"], 1.0)
    x = jnp.clip((c - a["start"]) / a["length"], 0.0, 1.0)
    fall = 1.0 - (jnp.sqrt(x) if decay_shape == "sqrt" else x)
    decayed = end + (lr - end) * fall
    return jnp.where(c < a["warmup"], ramp, jnp.where(c < a["start"], lr, decayed))


def _wsd_args(
    lr: float, warmup: int, steps: int, min_ratio: float, decay_fraction: float = 0.2
) -> ScheduleArgs:
    start = wsd_decay_start(steps, decay_fraction)
    return {
        "lr": lr,
        "warmup": max(min(warmup, start), 0),
        "start": start,
        "length": max(steps - start, 1),
        "min_ratio": min_ratio,
    }


def _rsqrt(c, a):
    """Vaswani et al. 2017, eq. 3, normalised so the peak (at `warmup`) equals `lr`."""
    step = c + 1.0
    return a["lr"] * jnp.minimum(step / a["warmup"], jnp.sqrt(a["warmup"] / step))


def _rsqrt_args(lr: float, warmup: int, steps: int, min_ratio: float) -> ScheduleArgs:
    del steps, min_ratio
    return {"lr": lr, "warmup": max(warmup, 1)}


def _constant(c, a):
    return jnp.where(a["warmup"] > 0, _ramp(c, a), a["lr"])


def _constant_args(lr: float, warmup: int, steps: int, min_ratio: float) -> ScheduleArgs:
    del steps, min_ratio
    return {"lr": lr, "warmup": max(warmup, 0)}


# name -> (lr(count, args), args(lr, warmup, steps, min_ratio))
SCHEDULES: dict[str, tuple[Callable, Callable[..., ScheduleArgs]]] = {
    "cosine": (_warmup_cosine, _cosine_args),
    "rsqrt": (_rsqrt, _rsqrt_args),
    "constant": (_constant, _constant_args),
    "wsd": (_wsd, _wsd_args),
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


def _schedule_name(train_config: ml_collections.ConfigDict) -> str:
    name = train_config.schedule
    if name not in SCHEDULES:
        raise ValueError(f"Unknown schedule {name!r}; valid: {', '.join(sorted(SCHEDULES))}.")
    if name == "wsd":
        shape = str(train_config.get("decay_shape", "sqrt"))
        if shape not in DECAY_SHAPES:
            raise ValueError(
                f"Unknown train.decay_shape {shape!r}; valid: {', '.join(DECAY_SHAPES)}."
            )
    return name


def schedule_args(train_config: ml_collections.ConfigDict, steps: int) -> ScheduleArgs:
    """The numbers `train.schedule` reads for a run of `steps` steps (floats)."""
    name = _schedule_name(train_config)
    args = (float(train_config.lr), int(train_config.warmup_steps), steps)
    args += (float(train_config.min_lr_ratio),)
    kwargs = {"decay_fraction": _decay_fraction(train_config)} if name == "wsd" else {}
    return {k: float(v) for k, v in SCHEDULES[name][1](*args, **kwargs).items()}


def schedule_fn(train_config: ml_collections.ConfigDict) -> Callable:
    """lr(count, args): the shape of `train.schedule`, its numbers left as arguments."""
    name = _schedule_name(train_config)
    fn = SCHEDULES[name][0]
    if name == "wsd":
        shape = str(train_config.get("decay_shape", "sqrt"))
        return lambda count, args: _wsd(count, args, decay_shape=shape)
    return fn


def bind_schedule(fn: Callable, args: ScheduleArgs) -> optax.Schedule:
    """schedule(count) = fn(count, args), with the count as f32 (optax calls it with int32)."""

    def schedule(count):
        a = {k: jnp.asarray(v, jnp.float32) for k, v in args.items()}
        return fn(jnp.asarray(count, jnp.float32), a)

    return schedule


def make_schedule(train_config: ml_collections.ConfigDict, steps: int) -> optax.Schedule:
    """The learning-rate schedule named by `train.schedule` (see `SCHEDULES`)."""
    return bind_schedule(schedule_fn(train_config), schedule_args(train_config, steps))


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
    return adamw_with_schedule(train_config, schedule), schedule


def adamw_with_schedule(
    train_config: ml_collections.ConfigDict, schedule: optax.Schedule
) -> optax.GradientTransformation:
    """make_optimizer's AdamW and clipping around any schedule (its state does not
    depend on the schedule's numbers)."""
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
    return optax.chain(*parts)


class ScheduledOptimizer:
    """make_optimizer with the schedule's numbers as arguments of the train step.

    `build(args) -> (tx, schedule)` inside the jitted step; `args(steps)` on the
    host gives the numbers for a run of `steps` steps. The jitted program depends
    only on the schedule's name and shape and on the optimizer's other settings.
    """

    def __init__(self, train_config: ml_collections.ConfigDict):
        self.train_config = train_config
        self._fn = schedule_fn(train_config)

    def args(self, steps: int) -> ScheduleArgs:
        return schedule_args(self.train_config, steps)

    def build(self, args: ScheduleArgs) -> tuple[optax.GradientTransformation, optax.Schedule]:
        schedule = bind_schedule(self._fn, args)
        return adamw_with_schedule(self.train_config, schedule), schedule

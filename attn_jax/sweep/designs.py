"""The common sweep designs, as lists of `Trial`s to put in a `Sweep`.

- `grid`: SIZES x token budgets (x seeds): the Kaplan et al. (2020) style grid,
  and Chinchilla's Approach 1 (Hoffmann et al. 2022, sec. 3.1) when `nested`
  gives one run per size that logs eval loss at every budget.
- `isoflop`: Chinchilla's Approach 2 (sec. 3.2): for each FLOP budget C, every
  size whose analytic FLOPs at the implied token count D = C / flops_per_token
  (rounded to whole steps) lands within `tolerance` of C.
- `wsd_branches`: sizes x token budgets through warmup-stable-decay (Hagele et
  al. 2024, arXiv 2405.18392): per size one stable-phase run and, from its
  checkpoint at each budget's cooldown start, a short cooldown branch. Every
  branch ends a decayed schedule, so each is a schedule-final point for
  Approaches 2 and 3 at a fraction of a separate run's cost. `isoflop_tokens`
  picks each size's budgets D = C / (6 N) for FLOP budgets C.
- `lr_grid`: learning rates per size. The optimal LR shrinks with width; a
  sweep at one LR for all sizes biases the fitted exponent (Kaplan et al. 2020,
  sec. 6.1 and App. D.6), so tune per scale first.

Key names default to experiments/lm.py's (`train.tokens`, `train.lr`, `seed`,
`train.eval_at_tokens`); pass others for other experiments. Designs combine
with `+`; an empty design raises `SweepSpecError` naming what was empty.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from attn_jax.sweep.spec import SweepSpecError, Trial
from attn_jax.train.budget import wsd_decay_start

TOKENS_KEY = "train.tokens"
LR_KEY = "train.lr"
SEED_KEY = "seed"
EVAL_AT_KEY = "train.eval_at_tokens"

Overrides = Mapping[str, Any] | Callable[[str], Mapping[str, Any]] | None


def _nonempty(name: str, values: Iterable[Any], design: str) -> list[Any]:
    values = list(values)
    if not values:
        raise SweepSpecError(f"{design}: `{name}` is empty, so the design has no trials.")
    return values


def _unit(tokens_key: str) -> str:
    """The tag naming a trial's budget: "tokens", or "examples" for `train.examples`."""
    return tokens_key.rsplit(".", 1)[-1]


def _extra(overrides: Overrides, size: str) -> dict[str, Any]:
    if overrides is None:
        return {}
    return dict(overrides(size) if callable(overrides) else overrides)


def grid(
    sizes: Sequence[str],
    token_budgets: Sequence[float],
    seeds: Sequence[int] = (0,),
    *,
    nested: bool = False,
    overrides: Overrides = None,
    tokens_key: str = TOKENS_KEY,
    seed_key: str = SEED_KEY,
    eval_at_key: str = EVAL_AT_KEY,
) -> list[Trial]:
    """Every size x token budget x seed.

    Args:
      sizes: names from the model SIZES table.
      token_budgets: training tokens per run.
      seeds: seeds per point (several give error bars on the fit).
      nested: one run per size and seed at the largest budget that logs eval loss
        at every budget (`eval_at_key`): fewer runs, but the smaller budgets are
        read off a schedule tuned for the largest (Hoffmann et al. 2022 fit
        Approach 1 on such curves; a separate run per budget is cleaner).
      overrides: extra config overrides, or size -> overrides.
      tokens_key, seed_key, eval_at_key: config keys of the experiment.

    Returns:
      Trials tagged with size, tokens and seed.
    """
    sizes = _nonempty("sizes", sizes, "grid")
    budgets = sorted(int(b) for b in _nonempty("token_budgets", token_budgets, "grid"))
    seeds = _nonempty("seeds", seeds, "grid")
    trials = []
    for size, seed in itertools.product(sizes, seeds):
        points = [budgets[-1]] if nested else budgets
        for tokens in points:
            over = {**_extra(overrides, size), tokens_key: tokens, seed_key: int(seed)}
            tags = {"size": size, _unit(tokens_key): tokens, "seed": int(seed)}
            if nested:
                over[eval_at_key] = tuple(budgets)
                tags["eval_at_tokens"] = list(budgets)
            trials.append(Trial(arg=f"size={size}", overrides=over, tags=tags))
    return trials


def isoflop(
    flop_budgets: Sequence[float],
    sizes: Sequence[str],
    tolerance: float,
    flops_fn: Callable[[str], float],
    *,
    tokens_per_step: int = 1,
    min_tokens: float = 0,
    max_tokens: float = math.inf,
    tokens_per_param: tuple[float, float] | None = None,
    params_fn: Callable[[str], float] | None = None,
    min_sizes_per_budget: int = 1,
    seeds: Sequence[int] = (0,),
    overrides: Overrides = None,
    tokens_key: str = TOKENS_KEY,
    seed_key: str = SEED_KEY,
) -> list[Trial]:
    """IsoFLOP profiles: per FLOP budget, the sizes that can spend it.

    Args:
      flop_budgets: training FLOPs per profile.
      sizes: candidate size names.
      tolerance: keep a size when |flops_fn(size) * D - C| <= tolerance * C, D the
        token count rounded to whole steps (small models at small budgets can't
        hit C exactly).
      flops_fn: size -> analytic training FLOPs per token (e.g. `experiment_flops`).
      tokens_per_step: batch_size * seq_len; token counts are whole steps.
      min_tokens, max_tokens: drop sizes outside this token range (runs too short
        to leave warmup; more epochs than the data set bears).
      tokens_per_param: (low, high): drop sizes whose D / N falls outside, N from
        `params_fn` (Chinchilla's optimum is near 20; profiles span it).
      params_fn: size -> parameter count, for `tokens_per_param`.
      min_sizes_per_budget: raise if a budget keeps fewer sizes (3 to fit a parabola).
      seeds, overrides, tokens_key, seed_key: as in `grid`.

    Returns:
      Trials tagged with size, tokens, flop_budget, flops (planned) and seed.
    """
    budgets = _nonempty("flop_budgets", flop_budgets, "isoflop")
    sizes = _nonempty("sizes", sizes, "isoflop")
    seeds = _nonempty("seeds", seeds, "isoflop")
    if not tolerance >= 0:
        raise SweepSpecError(f"isoflop: tolerance must be >= 0, got {tolerance}.")
    if tokens_per_param is not None and params_fn is None:
        raise SweepSpecError("isoflop: tokens_per_param needs params_fn (size -> params).")
    lo, hi = tokens_per_param or (0.0, math.inf)

    def point(size: str, budget: float) -> tuple[str, int, float] | None:
        per_token = float(flops_fn(size))
        tokens = max(1, round(budget / per_token / tokens_per_step)) * tokens_per_step
        ratio = tokens / float(params_fn(size)) if params_fn else None
        fits = abs(per_token * tokens - budget) <= tolerance * budget
        fits = fits and min_tokens <= tokens <= max_tokens and (ratio is None or lo <= ratio <= hi)
        return (size, tokens, per_token * tokens) if fits else None

    trials = []
    for budget in budgets:
        kept = [p for p in (point(size, budget) for size in sizes) if p is not None]
        if len(kept) < min_sizes_per_budget:
            raise SweepSpecError(
                f"isoflop: budget {budget:.3g} FLOPs keeps {len(kept)} of sizes {list(sizes)} "
                f"(need {min_sizes_per_budget}); widen the tolerance or the token range, "
                "or change the budget."
            )
        for (size, tokens, flops), seed in itertools.product(kept, seeds):
            over = {**_extra(overrides, size), tokens_key: int(tokens), seed_key: int(seed)}
            tags = {
                "size": size,
                _unit(tokens_key): int(tokens),
                "flop_budget": float(budget),
                "flops": flops,
                "seed": int(seed),
            }
            trials.append(Trial(arg=f"size={size}", overrides=over, tags=tags))
    if not trials:
        raise SweepSpecError(
            f"isoflop: no size of {list(sizes)} lands within {tolerance:.0%} of any budget "
            f"in {list(budgets)}."
        )
    return trials


def isoflop_tokens(
    flop_budgets: Sequence[float],
    params_fn: Callable[[str], float],
    *,
    tokens_per_step: int = 1,
    k_flops: float = 6.0,
) -> Callable[[str], list[int]]:
    """size -> token budgets D = C / (k N) for each FLOP budget C, in whole steps.

    With `wsd_branches`, every size then has a point at every C: IsoFLOP
    profiles (Hoffmann et al. 2022, Approach 2) with as many sizes as the sweep.
    """
    budgets = _nonempty("flop_budgets", flop_budgets, "isoflop_tokens")

    def tokens(size: str) -> list[int]:
        n = float(params_fn(size))
        steps = [max(1, round(c / (k_flops * n) / tokens_per_step)) for c in budgets]
        return [s * tokens_per_step for s in steps]

    return tokens


def wsd_branches(
    sizes: Sequence[str],
    token_budgets: Sequence[float] | Callable[[str], Sequence[float]],
    *,
    tokens_per_step: int,
    decay_fraction: float = 0.2,
    seeds: Sequence[int] = (0,),
    overrides: Overrides = None,
    flop_budgets: Sequence[float] | None = None,
    parent_evals: bool = True,
    extra_tags: Mapping[str, Any] | None = None,
    tokens_key: str = TOKENS_KEY,
    seed_key: str = SEED_KEY,
    eval_at_key: str = EVAL_AT_KEY,
) -> list[Trial]:
    """Per size and seed: a stable WSD run, and a cooldown branch per token budget.

    The parent runs `train.schedule=wsd` with decay_fraction 0 to the largest
    branch step, keeping its checkpoint at each. The branch for D tokens (S
    steps) runs wsd with `decay_fraction` f from the parent's step S - round(f S):
    the same run as WSD to D from scratch (same LR up to there), for f S steps.

    Args:
      sizes: names from the SIZES table.
      token_budgets: tokens per branch, the same for every size, or size -> tokens
        (e.g. `isoflop_tokens`); rounded up to whole steps.
      tokens_per_step: batch_size * seq_len of the trials.
      decay_fraction: the cooldown's share of each branch's steps (Hagele et al.
        2024: 10-20% matches a cosine run of the same length).
      seeds, overrides, tokens_key, seed_key: as in `grid`.
      flop_budgets: when the budgets came from `isoflop_tokens(flop_budgets, ...)`,
        the same list: each branch is tagged with its `flop_budget`.
      parent_evals: the parent evaluates at each branch step (`eval_at_key`): mid-run
        points of its learning curve (Approach 1), which its branches inherit.
      eval_at_key: the experiment's key for evals at token budgets.
      extra_tags: tags added to every trial (e.g. {"mechanism": "performer"}).

    Returns:
      The parents, each followed by its branches. Tags: size, tokens, seed, role
      ("stable" or "branch"), and a branch's branch_step (and flop_budget).
    """
    sizes = _nonempty("sizes", sizes, "wsd_branches")
    seeds = _nonempty("seeds", seeds, "wsd_branches")
    if not 0 < decay_fraction < 1:
        raise SweepSpecError(
            f"wsd_branches: decay_fraction must be in (0, 1), got {decay_fraction}."
        )
    trials = []
    for size, seed in itertools.product(sizes, seeds):
        budgets = token_budgets(size) if callable(token_budgets) else token_budgets
        budgets = [float(b) for b in _nonempty(f"token_budgets[{size!r}]", budgets, "wsd_branches")]
        steps = [max(1, math.ceil(b / tokens_per_step)) for b in budgets]
        starts = [wsd_decay_start(s, decay_fraction) for s in steps]
        # Each branch needs a parent step to start from and at least one cooldown step.
        if min(starts) < 1 or any(st >= n for n, st in zip(steps, starts, strict=True)):
            raise SweepSpecError(
                f"wsd_branches: size {size!r}: a budget of {min(budgets):.3g} tokens is "
                f"{min(steps)} steps, too short to branch; raise the smallest budget."
            )
        base = {**_extra(overrides, size), seed_key: int(seed), "train.schedule": "wsd"}
        keep = sorted(set(starts))
        parent_over = {
            **base,
            tokens_key: keep[-1] * tokens_per_step,
            "train.decay_fraction": 0.0,
            "train.keep_steps": tuple(keep),
        }
        if parent_evals:
            parent_over[eval_at_key] = tuple(s * tokens_per_step for s in keep)
        unit = _unit(tokens_key)
        tags = {"size": size, unit: keep[-1] * tokens_per_step, "seed": int(seed)}
        tags.update(extra_tags or {})
        parent = Trial(f"size={size}", parent_over, {**tags, "role": "stable"})
        trials.append(parent)
        tagged = zip(steps, starts, flop_budgets or [None] * len(steps), strict=True)
        for n_steps, start, flop_budget in sorted(tagged, key=lambda x: x[0]):
            over = {**base, tokens_key: n_steps * tokens_per_step}
            over["train.decay_fraction"] = float(decay_fraction)
            tags = {**tags, unit: n_steps * tokens_per_step, "role": "branch"}
            tags["branch_step"] = start
            if flop_budget is not None:
                tags["flop_budget"] = float(flop_budget)
            trials.append(Trial(f"size={size}", over, tags, parent=parent, branch_step=start))
    return trials


def lr_grid(
    sizes: Sequence[str],
    lrs: Sequence[float] | Mapping[str, Sequence[float]] | Callable[[str], Sequence[float]],
    *,
    overrides: Overrides = None,
    lr_key: str = LR_KEY,
) -> list[Trial]:
    """Learning rates per size.

    Args:
      sizes: size names.
      lrs: the same LRs for every size, a dict size -> LRs, or size -> LRs (e.g. a
        range centred on a guess that shrinks with width).
      overrides: extra overrides (e.g. a short token budget), or size -> overrides.
      lr_key: the experiment's LR key.

    Returns:
      Trials tagged with size and lr.
    """
    sizes = _nonempty("sizes", sizes, "lr_grid")
    trials = []
    for size in sizes:
        if callable(lrs):
            values = lrs(size)
        elif isinstance(lrs, Mapping):
            if size not in lrs:
                raise SweepSpecError(f"lr_grid: no learning rates given for size {size!r}.")
            values = lrs[size]
        else:
            values = lrs
        for lr in _nonempty(f"lrs[{size!r}]", values, "lr_grid"):
            over = {**_extra(overrides, size), lr_key: float(lr)}
            trials.append(
                Trial(arg=f"size={size}", overrides=over, tags={"size": size, "lr": float(lr)})
            )
    return trials


def best_lr(
    records: Iterable[Mapping[str, Any]], metric: str = "best_eval_loss"
) -> dict[str, float]:
    """size -> the LR with the lowest `metric` among finished records of an `lr_grid`."""
    best: dict[str, tuple[float, float]] = {}
    for record in records:
        tags = record.get("sweep", {}).get("tags", {})
        value = record.get(metric)
        if record.get("status") != "done" or value is None or "lr" not in tags:
            continue
        size = tags.get("size")
        if size not in best or value < best[size][0]:
            best[size] = (value, tags["lr"])
    return {size: lr for size, (_, lr) in best.items()}


def experiment_flops(
    experiment: str, overrides: Mapping[str, Any] | None = None
) -> tuple[Callable[[str], float], Callable[[str], float], int]:
    """Analytic counts of an experiment's sizes, from its family (attn_jax.families).

    Args:
      experiment: "path.py[:arg]"; `size=<name>` is appended to the arg.
      overrides: config overrides the trials will apply (seq_len, batch_size, ...).

    Returns:
      (size -> training FLOPs per unit, size -> non-embedding params, units per
      step), the unit being the family's: tokens for the LM, so the designs'
      `tokens_per_step` and token budgets are in it (for an examples family pass
      tokens_key="train.examples" and eval_at_key="train.eval_at_examples").
    """
    from attn_jax import configs, families
    from attn_jax.sweep.spec import find_file, merge_args

    path, _, arg = experiment.partition(":")
    path = find_file(path)
    overrides = dict(overrides or {})
    base = configs.apply_overrides(configs.load_config(f"{path}:{arg}"), overrides)

    def counts(size: str) -> dict:
        config = configs.load_config(f"{path}:{merge_args(arg, f'size={size}')}")
        out = families.counts(configs.apply_overrides(config, overrides))
        if out is None:
            raise SweepSpecError(
                f"{experiment}: family {families.family_name(config)!r} registers no analytic "
                "counts (FamilyEntry.counts), so FLOP-based designs cannot plan it."
            )
        return out

    def per_unit(size: str) -> float:
        return float(counts(size)["flops_per_unit"])

    def params(size: str) -> float:
        return float(counts(size)["params_non_embedding"])

    return per_unit, params, int(families.units_per_step(base))

"""Sweep specs: what a sweep file declares, and how it resolves into trials.

A sweep file (sweeps/*.py) has `get_sweep() -> Sweep`. A `Sweep` names a base
experiment (`"experiments/lm.py:smoke"`) and a list of `Trial`s. A trial is
an experiment arg merged after the base arg (`"size=xs"`: the experiment applies
its SIZES table at config time, so sizes go through the arg, never as raw model
dims) plus dotted config overrides (`{"train.tokens": 2e5, "seed": 1}`).

`resolve` turns a sweep into `ResolvedTrial`s: the locked config of each trial
and its run id, `attn_jax.configs.config_hash` of that resolved config, so the
same spec resolves to the same ids on any machine. Every mistake a person can
make in a spec (no trials, unknown size, unknown config key, a base experiment
that does not exist) raises `SweepSpecError` here, before anything trains.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ml_collections

from attn_jax import configs


class SweepSpecError(ValueError):
    """A sweep spec that cannot run; the message names the trial and the fix."""


@dataclasses.dataclass(frozen=True)
class Trial:
    """One point of a sweep.

    Attributes:
      arg: experiment arg merged after the base experiment's arg, e.g. "size=xs".
      overrides: dotted config keys -> values, applied after `get_config(arg)`.
      tags: labels for tables and analysis (size, tokens, flop_budget, lr, ...);
        they do not enter the run id.
      parent: makes this trial a branch: it starts from `parent`'s checkpoint at
        `branch_step` (a WSD cooldown, attn_jax.train.branch). The parent must
        be a trial of the same sweep, listed before it; `resolve` puts the
        parent's run id and the step into `branch_keys` (so they enter the run id).
      branch_step: the parent's step this branch starts from.
      branch_keys: the experiment's config keys for the parent and the step.
    """

    arg: str = ""
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    tags: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    parent: Trial | None = None
    branch_step: int = 0
    branch_keys: tuple[str, str] = ("train.init_from", "train.init_from_step")


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A named family of trials over one base experiment.

    Attributes:
      name: short name, shown in progress bars and stored in each record.
      experiment: "path/to/experiment.py[:arg]" (relative paths are resolved
        against the current directory, then the repository root).
      trials: the trials; see attn_jax.sweep.designs for grids, IsoFLOP and LR grids.
      description: one paragraph for the status table.
      metadata: anything else worth keeping beside the results (JSON-friendly).
    """

    name: str
    experiment: str
    trials: Sequence[Trial]
    description: str = ""
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ResolvedTrial:
    """A trial with its resolved config and run id (see `resolve`)."""

    index: int
    run_id: str
    trial: Trial
    experiment: str  # "path:arg" actually loaded
    config: ml_collections.ConfigDict
    parent_run_id: str | None = None  # a branch's parent (see Trial.parent)

    def label(self) -> str:
        """A short human label from the tags, e.g. "size=xs tokens=2e+05"."""
        parts = []
        for key, value in self.trial.tags.items():
            shown = f"{value:.3g}" if isinstance(value, float) else str(value)
            parts.append(f"{key}={shown}")
        return " ".join(parts) or self.trial.arg or self.run_id


def _repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def find_file(path: str) -> str:
    """Resolves a relative path against the cwd, then the repository root."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    candidate = os.path.join(_repo_root(), path)
    return candidate if os.path.exists(candidate) else path


def load_sweep(spec: str) -> Sweep:
    """Imports a sweep file "path.py[:arg]" and returns `get_sweep()` or `get_sweep(arg)`.

    A sweep file that takes an arg (e.g. `stage=lr`) declares `get_sweep(arg=None)`,
    as experiments declare `get_config(arg)`.
    """
    path, _, arg = spec.partition(":")
    path = find_file(path)
    if not os.path.exists(path):
        raise SweepSpecError(f"No sweep file {path!r} (expected e.g. sweeps/demo.py).")
    module = configs.import_file(path, "attn_jax_sweep_")
    if not hasattr(module, "get_sweep"):
        raise SweepSpecError(f"{path} has no get_sweep() function returning a Sweep.")
    takes_arg = bool(inspect.signature(module.get_sweep).parameters)
    if arg and not takes_arg:
        raise SweepSpecError(f"{path}: get_sweep() takes no arg, but {arg!r} was given.")
    sweep = module.get_sweep(arg or None) if takes_arg else module.get_sweep()
    if not isinstance(sweep, Sweep):
        raise SweepSpecError(f"{path}: get_sweep() returned {type(sweep).__name__}, not a Sweep.")
    return sweep


def merge_args(*args: str | None) -> str:
    """Joins experiment arg strings; later items win (parse_arg reads left to right)."""
    return ",".join(a.strip(",") for a in args if a and a.strip(","))


def _arg_items(arg: str) -> dict[str, str]:
    items = {}
    for item in arg.split(","):
        key, _, value = item.partition("=")
        if key.strip():
            items[key.strip()] = value.strip()
    return items


def default_sizes(experiment_path: str | None = None) -> Mapping[str, Any] | None:
    """The SIZES table size names are checked against, or None if there is none.

    The experiment file's own `SIZES` when it has one, else attn_jax.models'.
    """
    if experiment_path is not None:
        try:
            sizes = getattr(configs.import_file(experiment_path, "attn_jax_sizes_"), "SIZES", None)
        except Exception:  # a broken experiment fails, with its own message, in load_config
            sizes = None
        if sizes is not None:
            return sizes
    try:
        from attn_jax import models
    except ImportError:
        return None
    sizes = getattr(models, "SIZES", None)
    if sizes is None:
        try:
            from attn_jax.models import lm
        except ImportError:
            return None
        sizes = getattr(lm, "SIZES", None)
    return sizes


def resolve(
    sweep: Sweep,
    *,
    sizes: Mapping[str, Any] | None = None,
    load: Callable[[str], ml_collections.ConfigDict] = configs.load_config,
) -> list[ResolvedTrial]:
    """Resolves every trial's config and run id, validating the whole spec first.

    Args:
      sweep: the sweep.
      sizes: valid size names for `size=` args (default: `default_sizes`).
      load: loads "path:arg" into a locked config (injectable for tests).

    Returns:
      The trials in spec order, duplicates (same run id) dropped.

    Raises:
      SweepSpecError: no trials, an unknown size, an unknown config key, a
        missing experiment file, or an experiment arg it rejects.
    """
    if not sweep.trials:
        raise SweepSpecError(
            f"Sweep {sweep.name!r} has no trials (an empty grid?): check the sizes, "
            "budgets and tolerances in its get_sweep()."
        )
    path, _, base_arg = sweep.experiment.partition(":")
    path = find_file(path)
    if not os.path.exists(path):
        raise SweepSpecError(f"Sweep {sweep.name!r}: base experiment file {path!r} does not exist.")
    sizes = default_sizes(path) if sizes is None else sizes
    out: list[ResolvedTrial] = []
    seen: dict[str, int] = {}
    resolved: list[tuple[Trial, str]] = []  # (trial, run id): a branch finds its parent here
    for index, trial in enumerate(sweep.trials):
        if not isinstance(trial, Trial):
            raise SweepSpecError(
                f"Sweep {sweep.name!r}, trial {index}: expected a Trial, got {type(trial).__name__}."
            )
        where = f"Sweep {sweep.name!r}, trial {index} ({trial.arg or 'no arg'}, {dict(trial.overrides)})"
        size = _arg_items(trial.arg).get("size", _arg_items(base_arg).get("size"))
        if size is not None and sizes is not None and size not in sizes:
            raise SweepSpecError(
                f"{where}: unknown size {size!r}; valid sizes: {', '.join(sizes)}."
            )
        experiment = f"{path}:{merge_args(base_arg, trial.arg)}"
        overrides, parent_id = dict(trial.overrides), None
        if trial.parent is not None:
            parent_id = next((i for t, i in resolved if t == trial.parent), None)
            if parent_id is None:
                raise SweepSpecError(
                    f"{where}: its parent ({trial.parent.arg}, {dict(trial.parent.overrides)}) "
                    "is not a trial listed before it; add the parent to the sweep first."
                )
            init_key, step_key = trial.branch_keys
            overrides.update({init_key: parent_id, step_key: int(trial.branch_step)})
        try:
            config = load(experiment)
            config = configs.apply_overrides(config, overrides)
        except KeyError as e:  # apply_overrides names the key and its valid siblings
            raise SweepSpecError(f"{where}: {e.args[0] if e.args else e}") from e
        except (ValueError, TypeError, AttributeError) as e:
            raise SweepSpecError(f"{where}: {e}") from e
        run_id = configs.config_hash(config)
        resolved.append((trial, run_id))
        if run_id in seen:
            continue  # e.g. a grid and an IsoFLOP design that share a point
        seen[run_id] = index
        out.append(ResolvedTrial(len(out), run_id, trial, experiment, config, parent_id))
    return out

"""Config helpers: `path.py:arg` loading, `k=v` arg strings, overrides, hashing.

Experiments are ml_collections files with `get_config(arg: str | None)` (as in
big_vision); `arg` is a comma list like `size=s,smoke` parsed by `parse_arg`.
Every config is locked, so an override naming a key that does not exist fails
before anything compiles; `load_config` and `apply_overrides` also check every
registry choice (`attn_jax.validate.check_config`), so a mistyped kernel or data
name fails before a corpus is built or a tokenizer trained. Fields:
docs/CONTRACTS.md.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

import ml_collections

from attn_jax import validate


def parse_arg(arg: str | None, **defaults: Any) -> ml_collections.ConfigDict:
    """Parses `"size=s,smoke,lr=3e-4"` into a ConfigDict over `defaults`.

    A bare word is a boolean flag set to True. Values are cast to the type of the
    default when there is one, else read as int, float, bool or left a string.
    Unknown keys raise, naming the valid ones.
    """
    out = ml_collections.ConfigDict(dict(defaults))
    if not arg:
        return out
    for item in arg.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, raw = item.partition("=")
        key = key.strip()
        if key not in defaults:
            raise ValueError(
                f"Unknown config arg {key!r}; valid args: {', '.join(sorted(defaults))}."
            )
        if not sep:
            out[key] = True
            continue
        default = defaults[key]
        out[key] = _cast(raw.strip(), default)
    return out


def _cast(raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"Cannot read {raw!r} as a boolean.")
    if isinstance(default, int):
        value = float(raw)  # accepts 1e6 for token budgets
        if value != int(value):
            raise ValueError(f"Expected an integer, got {raw!r}.")
        return int(value)
    if isinstance(default, float):
        return float(raw)
    if default is None:
        for cast in (int, float):
            try:
                return cast(raw)
            except ValueError:
                pass
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
    return raw


def import_file(path: str, prefix: str = "attn_jax_file_", *, register: bool = False):
    """Imports a Python file that is not in a package (an experiment, sweep or script).

    The module is named `prefix` + a hash of the absolute path, so two files of one
    name do not collide; `register` puts it in sys.modules (dataclasses and pickle
    look modules up there).
    """
    name = prefix + hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:8]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    if register:
        sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module


def load_config(spec: str) -> ml_collections.ConfigDict:
    """Loads `path/to/experiment.py[:arg]` and returns its locked config."""
    path, _, arg = spec.partition(":")
    if not os.path.exists(path):
        raise FileNotFoundError(f"No experiment file {path!r} (expected e.g. experiments/lm.py).")
    module = import_file(path, "attn_jax_experiment_")
    if not hasattr(module, "get_config"):
        raise AttributeError(f"{path} has no get_config(arg) function.")
    config = module.get_config(arg or None)
    config.lock()
    validate.check_config(config, path)
    return config


def apply_overrides(
    config: ml_collections.ConfigDict, overrides: Mapping[str, Any]
) -> ml_collections.ConfigDict:
    """Returns a copy of `config` with dotted-key overrides applied.

    Raises KeyError naming the key (and its valid siblings) when a key does not
    exist, so a typo in a sweep or on the command line fails before training, and
    ValueError naming the valid keys when a registry choice is unknown.
    """
    config = ml_collections.ConfigDict(config.to_dict())
    for dotted, value in overrides.items():
        node = config
        parts = dotted.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, ml_collections.ConfigDict) or part not in node:
                where = ".".join(parts[:i]) or "<root>"
                valid = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
                raise KeyError(
                    f"Unknown config key {dotted!r}: {where} has no {part!r} "
                    f"(valid: {', '.join(valid)})."
                )
            if i == len(parts) - 1:
                node[part] = value
            else:
                node = node[part]
    config.lock()
    validate.check_config(config)
    return config


def flatten(config: ml_collections.ConfigDict | Mapping, prefix: str = "") -> dict[str, Any]:
    """Flattens a nested config into {"a.b": value} with JSON-friendly leaves."""
    items = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else config
    out: dict[str, Any] = {}
    for key, value in items.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping | ml_collections.ConfigDict):
            out.update(flatten(value, name + "."))
        elif isinstance(value, tuple):
            out[name] = list(value)
        else:
            out[name] = value
    return out


_NOT_HASHED = frozenset({"train.restart"})


def config_hash(config: ml_collections.ConfigDict | Mapping, length: int = 12) -> str:
    """A stable hash of the resolved config: the run id of a trial.

    `train.restart` is left out: it says what to do with a workdir's old files, not
    what to train, so a restarted run keeps the run id of the same config.
    """
    flat = {k: v for k, v in flatten(config).items() if k not in _NOT_HASHED}
    payload = json.dumps(flat, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:length]


def train_config(unit: str = "tokens", **overrides) -> ml_collections.ConfigDict:
    """config.train defaults of every family (fields: docs/CONTRACTS.md; read by attn_jax/train/loop.py).

    Budgets are in the family's unit: `tokens` for token families, `examples` for
    example families (`attn_jax.families.unit_of`); `eval_at_tokens` /
    `eval_at_examples` likewise; `unit` picks which pair the config carries.
    """
    train = dict(
        batch_size=32,
        seq_len=256,
        steps=1000,
        # `tokens` (or `examples`) > 0 overrides steps: steps = ceil(budget / units per step)
        lr=1e-3,
        schedule="cosine",  # cosine | rsqrt | constant | wsd (attn_jax.train.optim.SCHEDULES)
        decay_fraction=0.2,  # wsd: cooldown over the last 20% of steps (Hagele et al. 2024)
        decay_shape="sqrt",  # wsd: "sqrt" (1 - sqrt(x)) | "linear"
        warmup_steps=100,
        min_lr_ratio=0.1,
        weight_decay=0.1,
        b1=0.9,
        b2=0.95,
        eps=1e-8,
        grad_clip=1.0,
        label_smoothing=0.0,
        log_every=50,
        eval_every=0,  # 0 = only at eval_at_tokens budgets and at the end
        checkpoint_every=1000,
        keep_checkpoints=2,
        keep_steps=(),  # checkpoints kept forever (a WSD parent's branch steps)
        init_from="",  # a cooldown branch: parent workdir or run id (attn_jax.train.branch)
        init_from_step=0,  # the parent's checkpoint step the branch starts from
        async_checkpoint=True,
        mesh_fsdp=1,  # size of the "fsdp" mesh axis (1 = pure data parallel)
        num_devices=0,  # use the first n devices (0 = all; e.g. 1 to compare with 8)
        distributed=False,  # jax.distributed.initialize() (also when JAX_COORDINATOR_ADDRESS is set)
        max_loss=20.0,  # a train loss above this (or NaN) stops the run as diverged
        # > 0: stop as preempted (checkpointed) after this many seconds (multi-process:
        # on process 0's clock, checked at log steps)
        time_limit_s=0.0,
        # > 0: plan the step count so the schedule and the final eval end by this many
        # seconds of process wall time (attn_jax.train.time_budget); train.steps is
        # then ignored (multi-process: every process runs process 0's plan)
        time_budget_s=0.0,
        stop_after_steps=0,  # > 0: stop as preempted after this many steps of this process
        progress_bar=True,
        tensorboard=True,
        report_mfu=True,
        # True: move this workdir's previous run (config.json, metrics, checkpoints) to
        # previous-<n>/ and train from scratch; rerunning the same command then resumes
        restart=False,
    )
    if unit not in ("tokens", "examples"):
        raise ValueError(f"Unknown unit {unit!r}; valid: tokens, examples.")
    train[unit] = 0
    train[f"eval_at_{unit}"] = ()  # evaluate when this many units have been seen
    train.update(overrides)
    return ml_collections.ConfigDict(train)

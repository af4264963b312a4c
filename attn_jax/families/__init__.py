"""The one registry of model families (JAX-free to import).

A family is what the loop, the run record and the sweep ask about a model:
its model, data, loss, evaluator, parameter/FLOP counts and its unit
("tokens" or "examples"). `FAMILIES` maps `config.family` to a `FamilyEntry`:
the unit and a "module:function" factory, `factory(config) -> Family`
(attn_jax.families.base), imported only when a run needs it, so planning a
sweep (budgets -> steps) imports no JAX.

    from attn_jax import families
    family = families.get_family(config)        # a Family, built for this config
    families.unit_of(config)                    # "tokens"
    families.units_per_step(config)             # planned units per optimizer step

A test or a user project adds a family with `register(name, unit, factory)`.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

UNITS = ("tokens", "examples")


@dataclasses.dataclass(frozen=True)
class FamilyEntry:
    """A registered family.

    Attributes:
      unit: "tokens" or "examples": what budgets (`train.<unit>`), throughput and
        FLOPs per unit count.
      factory: "module:function" or a callable, `factory(config) -> Family`.
      units_per_step: JAX-free `config -> planned units per optimizer step`
        (default: batch_size * seq_len for tokens, batch_size for examples).
        Budgets become steps through it; the record's `<unit>_seen` counts the
        units that actually carried loss.
      counts: "module:function" or a callable, `counts(config) -> {params_total,
        params_embedding, params_non_embedding, flops_per_unit}` from the config
        alone (no model built): what the sweep plans FLOPs with. The family's
        `sizes(params)` returns the same numbers, checked against the model.
    """

    unit: str
    factory: str | Callable[[Any], Any]
    units_per_step: Callable[[Any], float] | None = None
    counts: str | Callable[[Any], dict] | None = None


def _mlm_units(config) -> float:
    """Masked positions per step: the tokens an MLM's loss is taken on."""
    rate = float(config.data.get("mask_rate", 0.15)) if "data" in config else 0.15
    return float(config.train.batch_size) * float(config.train.seq_len) * rate


FAMILIES: dict[str, FamilyEntry] = {
    "lm": FamilyEntry("tokens", "attn_jax.families.lm:make", counts="attn_jax.families.lm:counts"),
    "mlm": FamilyEntry(
        "tokens", "attn_jax.families.mlm:make", _mlm_units, "attn_jax.families.mlm:counts"
    ),
    "seq2seq": FamilyEntry(
        "tokens", "attn_jax.families.seq2seq:make", counts="attn_jax.families.seq2seq:counts"
    ),
    "vit": FamilyEntry(
        "examples", "attn_jax.families.vit:make", counts="attn_jax.families.vit:counts"
    ),
    "cnn": FamilyEntry(
        "examples", "attn_jax.families.vit:make_cnn", counts="attn_jax.families.vit:counts_cnn"
    ),
    "vqa": FamilyEntry(
        "examples", "attn_jax.families.vqa:make", counts="attn_jax.families.vqa:counts"
    ),
    "clip": FamilyEntry(
        "examples", "attn_jax.families.clip:make", counts="attn_jax.families.clip:counts"
    ),
}


def register(
    name: str,
    unit: str,
    factory: str | Callable[[Any], Any],
    units_per_step: Callable[[Any], float] | None = None,
    counts: str | Callable[[Any], dict] | None = None,
) -> None:
    """Adds (or replaces) family `name`; `factory(config) -> Family` (see FamilyEntry)."""
    if unit not in UNITS:
        raise ValueError(f"Unknown unit {unit!r} for family {name!r}; valid: {', '.join(UNITS)}.")
    FAMILIES[name] = FamilyEntry(unit, factory, units_per_step, counts)


def _load(ref):
    if isinstance(ref, str):
        module, _, fn = ref.partition(":")
        return getattr(importlib.import_module(module), fn)
    return ref


def family_name(config) -> str:
    """`config.family` (default "lm"), checked against the registry."""
    name = config.get("family", "lm") if hasattr(config, "get") else "lm"
    if name not in FAMILIES:
        raise ValueError(f"Unknown family {name!r}; valid: {', '.join(sorted(FAMILIES))}.")
    return name


def entry(config) -> FamilyEntry:
    return FAMILIES[family_name(config)]


def unit_of(config) -> str:
    """The unit of `config`'s family: "tokens" or "examples"."""
    return entry(config).unit


def default_units_per_step(unit: str, train_config) -> float:
    """batch_size * seq_len for tokens, batch_size for examples."""
    batch = int(train_config.batch_size)
    return float(batch * int(train_config.seq_len)) if unit == "tokens" else float(batch)


def units_per_step(config) -> float:
    """Planned units per optimizer step of `config` (JAX-free)."""
    e = entry(config)
    if e.units_per_step is not None:
        return float(e.units_per_step(config))
    return default_units_per_step(e.unit, config.train)


def get_family(config):
    """Builds the `Family` of `config.family` for `config`."""
    e = entry(config)
    family = _load(e.factory)(config)
    if family.unit != e.unit:
        raise ValueError(
            f"Family {family_name(config)!r} is registered with unit {e.unit!r} "
            f"but its factory built one with unit {family.unit!r}."
        )
    return family


def counts(config) -> dict | None:
    """Analytic {params_*, flops_per_unit} of `config` without a model; None if the
    family registers no `counts`."""
    e = entry(config)
    return None if e.counts is None else dict(_load(e.counts)(config))


__all__ = [
    "counts",
    "FAMILIES",
    "UNITS",
    "FamilyEntry",
    "default_units_per_step",
    "family_name",
    "get_family",
    "register",
    "unit_of",
    "units_per_step",
]

"""What the loop needs from a model family: model builder, data, sizes, dropout.

The loop is family-agnostic; each family (only "lm" so far) registers how to
build its model and its data and how to count its parameters and FLOPs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np


@dataclasses.dataclass(frozen=True)
class FamilyFns:
    """Attributes:
    model: rngs -> nnx.Module.
    data: (config, *, batch_size (global), seq_len, seed, process_index,
      process_count) -> (train_iter, eval_batches_fn).
    sizes: (config, params) -> {params_total, params_embedding,
      params_non_embedding, flops_per_token}.
    uses_dropout: config -> bool (the step then passes a dropout rng).
    """

    model: Callable
    data: Callable
    sizes: Callable[[ml_collections.ConfigDict, Any], dict]
    uses_dropout: Callable[[ml_collections.ConfigDict], bool]


def _lm(config: ml_collections.ConfigDict) -> FamilyFns:
    from attn_jax.data import make_lm_data
    from attn_jax.models import build_model
    from attn_jax.models import flops

    def model(rngs):
        return build_model(config.model, rngs=rngs)

    def data(config, **kwargs):
        return make_lm_data(config.data, **kwargs)

    def sizes(config, params):
        counts = flops.param_counts(config.model)
        actual = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
        if actual != counts["total"]:
            raise AssertionError(
                f"param_counts says {counts['total']} but the model has {actual} parameters; "
                "attn_jax.models.flops.py is out of date with the model."
            )
        return {
            "params_total": counts["total"],
            "params_embedding": counts["embedding"],
            "params_non_embedding": counts["non_embedding"],
            "flops_per_token": flops.flops_per_token(config.model, int(config.train.seq_len)),
        }

    def uses_dropout(config):
        return bool(config.model.get("dropout", 0.0) or config.model.get("attn_dropout", 0.0))

    return FamilyFns(model=model, data=data, sizes=sizes, uses_dropout=uses_dropout)


FAMILIES: dict[str, Callable[[ml_collections.ConfigDict], FamilyFns]] = {"lm": _lm}


def family_fns(config: ml_collections.ConfigDict) -> FamilyFns:
    """The FamilyFns of `config.family`; raises naming the valid families."""
    name = config.get("family", "lm")
    if name not in FAMILIES:
        raise ValueError(f"Unknown family {name!r}; valid: {', '.join(sorted(FAMILIES))}.")
    return FAMILIES[name](config)

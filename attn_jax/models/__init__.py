"""Models built from attn_jax.nn.

The families that train them (and the one registry of families) are in
attn_jax.families; `build_model` here builds the decoder LM from a `config.model`.
"""

from __future__ import annotations

from typing import Any

from flax import nnx

from attn_jax.models.generate import generate, sample_logits
from attn_jax.models.lm import SIZES, DecoderLM, LMConfig, lm_config


def build_model(model_config: Any, *, rngs: nnx.Rngs) -> nnx.Module:
    """Builds the decoder LM of an LM `config.model` (a ConfigDict or mapping).

    Other families' models: `attn_jax.families.get_family(config).model(rngs)`.

    Raises:
      ValueError: `model_config.family` names another family.
    """
    family = model_config.get("family", "lm") if hasattr(model_config, "get") else "lm"
    if family != "lm":
        raise ValueError(
            f"build_model builds the 'lm' family's model, not {family!r}; use "
            "attn_jax.families.get_family(config).model(rngs) for the others."
        )
    return DecoderLM(LMConfig.from_config(model_config), rngs=rngs)


__all__ = [
    "SIZES",
    "DecoderLM",
    "LMConfig",
    "build_model",
    "generate",
    "lm_config",
    "sample_logits",
]

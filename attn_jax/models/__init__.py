"""Models built from attn_jax.nn, and `build_model` over the FAMILIES registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flax import nnx

from attn_jax.models.generate import generate, sample_logits
from attn_jax.models.lm import SIZES, DecoderLM, LMConfig, lm_config


def _build_lm(model_config: Any, *, rngs: nnx.Rngs) -> nnx.Module:
    return DecoderLM(LMConfig.from_config(model_config), rngs=rngs)


# family name -> builder(model_config, *, rngs) -> nnx.Module
FAMILIES: dict[str, Callable[..., nnx.Module]] = {"lm": _build_lm}


def build_model(model_config: Any, *, rngs: nnx.Rngs) -> nnx.Module:
    """Builds the model of `model_config.family` (a ConfigDict or mapping).

    Args:
      model_config: `config.model`; its `family` picks the builder ("lm" by default).
      rngs: NNX rngs for parameter init.

    Returns:
      The NNX module.
    """
    family = model_config.get("family", "lm") if hasattr(model_config, "get") else "lm"
    if family not in FAMILIES:
        raise ValueError(f"Unknown model family {family!r}; valid families: {sorted(FAMILIES)}.")
    return FAMILIES[family](model_config, rngs=rngs)


__all__ = [
    "FAMILIES",
    "SIZES",
    "DecoderLM",
    "LMConfig",
    "build_model",
    "generate",
    "lm_config",
    "sample_logits",
]

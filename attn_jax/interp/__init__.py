"""Attention interpretability: extraction (capture), per-head measures, rollout, induction.

from attn_jax import interp
logits, cache = interp.run_with_cache(model, tokens_BT, what=("weights", "resid_post"))
stats = interp.head_stats(cache["blocks.0.attn.weights"], causal=True)
types = interp.classify_heads(stats)
"""

from attn_jax.interp.capture import WHAT, capture, dense_weights, module_paths, run_with_cache
from attn_jax.interp.induction import (
    induction_score,
    model_induction_scores,
    repeated_random_tokens,
)
from attn_jax.interp.measures import (
    HEAD_TYPES,
    THRESHOLDS,
    classify_heads,
    delimiter_score,
    diagonal_score,
    entropy,
    first_token_score,
    head_stats,
    mean_attention_distance,
    normalized_entropy,
    patch_coordinates,
    previous_token_score,
)
from attn_jax.interp.rollout import attention_rollout

__all__ = [
    "HEAD_TYPES",
    "THRESHOLDS",
    "WHAT",
    "attention_rollout",
    "capture",
    "classify_heads",
    "delimiter_score",
    "dense_weights",
    "diagonal_score",
    "entropy",
    "first_token_score",
    "head_stats",
    "induction_score",
    "mean_attention_distance",
    "model_induction_scores",
    "module_paths",
    "normalized_entropy",
    "patch_coordinates",
    "previous_token_score",
    "repeated_random_tokens",
    "run_with_cache",
]

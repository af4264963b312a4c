"""Pure attention functions (no Flax): scores, masks, softmax attention, positions, KV cache.

Kernels (efficient attention implementations) live in `attn_jax.ops.kernels`.
"""

from attn_jax.ops.attention import attention_weights, dot_product_attention, masked_softmax
from attn_jax.ops.kv_cache import (
    KVCache,
    cached_self_attention,
    cross_cache,
    decode_mask,
    decode_positions,
    init_cache,
    update_cache,
)
from attn_jax.ops.masks import (
    MaskSpec,
    causal_mask,
    combine_masks,
    expand_key_mask,
    padding_mask,
    prefix_lm_mask,
    sliding_window_mask,
    strided_mask,
    token_padding_mask,
)
from attn_jax.ops.positions import (
    alibi_bias,
    alibi_bias_fn,
    alibi_slopes,
    apply_rope,
    relative_bucket,
    sinusoidal,
    t5_bias_fn,
    t5_relative_bias,
)
from attn_jax.ops.scores import SCORES, get_score, init_score_params

__all__ = [
    "SCORES",
    "KVCache",
    "MaskSpec",
    "alibi_bias",
    "alibi_bias_fn",
    "alibi_slopes",
    "apply_rope",
    "attention_weights",
    "cached_self_attention",
    "causal_mask",
    "combine_masks",
    "cross_cache",
    "decode_mask",
    "decode_positions",
    "dot_product_attention",
    "expand_key_mask",
    "get_score",
    "init_cache",
    "init_score_params",
    "masked_softmax",
    "padding_mask",
    "prefix_lm_mask",
    "relative_bucket",
    "sinusoidal",
    "sliding_window_mask",
    "strided_mask",
    "t5_bias_fn",
    "t5_relative_bias",
    "token_padding_mask",
    "update_cache",
]

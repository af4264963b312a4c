"""Key/value caches for incremental decoding.

Dimension key: B batch, T new (query) tokens, S cache length (max), K key/value
heads, N query heads, H head dim.

A self-attention cache has a fixed maximum length S and an `index`: the number
of positions written so far, which is also the absolute position of the next
token. A decode step with T new tokens writes them at [index, index + T) with
`lax.dynamic_update_slice`, and its queries (at positions index + i) may see
keys j <= index + i: that one causal mask with `q_offset=index` also hides the
unwritten tail of the cache. Shapes never change, so a jitted step compiles once.

Writing past S is not checked inside jit (dynamic_update_slice clamps the start
index): callers size S to prompt + generated tokens.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from attn_jax.ops.attention import dot_product_attention
from attn_jax.ops.masks import causal_mask, combine_masks


class KVCache(NamedTuple):
    """Cached keys/values (a pytree).

    Attributes:
      k_BSKH: keys, S = max length.
      v_BSKH: values.
      index: int32 scalar, positions filled so far (next write position).
    """

    k_BSKH: jax.Array
    v_BSKH: jax.Array
    index: jax.Array


def init_cache(B: int, S: int, K: int, H: int, dtype=jnp.float32) -> KVCache:
    """An empty self-attention cache of max length S."""
    zeros = jnp.zeros((B, S, K, H), dtype)
    return KVCache(zeros, zeros, jnp.zeros((), jnp.int32))


def update_cache(cache: KVCache, k_BTKH, v_BTKH) -> KVCache:
    """Write T new keys/values at `cache.index` and advance the index by T."""
    start = (0, cache.index, 0, 0)
    k = jax.lax.dynamic_update_slice(cache.k_BSKH, k_BTKH.astype(cache.k_BSKH.dtype), start)
    v = jax.lax.dynamic_update_slice(cache.v_BSKH, v_BTKH.astype(cache.v_BSKH.dtype), start)
    return KVCache(k, v, cache.index + k_BTKH.shape[1])


def decode_mask(index, T: int, S: int):
    """bool_TS for T queries at positions index..index+T-1 over an S-slot cache.

    Key j is visible iff j <= index + i: causal, and so also j < index + T (only
    written slots).
    """
    return causal_mask(T, S, q_offset=index)


def decode_positions(index, T: int):
    """Absolute positions int32[T] of T new tokens written at `index`."""
    return jnp.arange(T, dtype=jnp.int32) + jnp.asarray(index, jnp.int32)


def cached_self_attention(
    q_BTNH, k_BTKH, v_BTKH, cache: KVCache, *, mask=None, bias_fn=None, window=None, **kwargs
):
    """One decode step of causal self-attention through a cache.

    Args:
      q_BTNH: queries of the T new tokens (positions already applied, e.g. RoPE
        at `decode_positions(cache.index, T)`).
      k_BTKH: their keys.
      v_BTKH: their values.
      cache: the cache before this step.
      mask: optional extra mask broadcastable to [B,N,T,S] (e.g. key padding).
      bias_fn: optional bias_fn(q_pos_T, k_pos_S) -> bias_NTS (ALiBi, T5).
      window: optional sliding-window size (keys with q_pos - k_pos < window).
      **kwargs: passed to `dot_product_attention` (scale, score, ...).

    Returns:
      (out_BTNH, new_cache), or ((out_BTNH, weights_BNTS), new_cache) with
      return_weights=True.
    """
    T, S = q_BTNH.shape[1], cache.k_BSKH.shape[1]
    index = cache.index
    new_cache = update_cache(cache, k_BTKH, v_BTKH)
    step_mask = decode_mask(index, T, S)
    if window is not None:
        q_pos, k_pos = decode_positions(index, T)[:, None], jnp.arange(S)[None, :]
        step_mask = step_mask & (q_pos - k_pos < window)
    bias = None
    if bias_fn is not None:
        bias = bias_fn(decode_positions(index, T), jnp.arange(S, dtype=jnp.int32))
    out = dot_product_attention(
        q_BTNH,
        new_cache.k_BSKH,
        new_cache.v_BSKH,
        mask=combine_masks(step_mask, mask),
        bias=bias,
        **kwargs,
    )
    return out, new_cache


def cross_cache(k_BSKH, v_BSKH) -> KVCache:
    """Cache of projected encoder keys/values for cross-attention, computed once.

    The index is S (full); attend with `dot_product_attention(q, cache.k_BSKH,
    cache.v_BSKH, mask=<encoder padding>)` at every decode step.
    """
    return KVCache(k_BSKH, v_BSKH, jnp.asarray(k_BSKH.shape[1], jnp.int32))

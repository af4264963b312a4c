"""Softmax attention, the dense reference path for every layer and kernel.

Dimension key (used across attn_jax as array-name suffixes and einsum letters):
  B batch, T query length, S key/value length, D model width, N query heads,
  K key/value heads, G = N/K query heads per key/value head, H head dim,
  F MLP width, V vocabulary, L layers.

One function covers multi-head (K = N), grouped-query (N % K == 0) and
multi-query (K = 1) attention: query head n reads key/value head n // G.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attn_jax.ops.scores import F32, get_score


def _to_rank4(x, name: str):
    """Prepend unit axes to broadcast a mask/bias against [B,N,T,S] (no silent promotion)."""
    x = jnp.asarray(x)
    if x.ndim > 4:
        raise ValueError(f"{name} has rank {x.ndim}; it must broadcast to [B,N,T,S]")
    return x.reshape((1,) * (4 - x.ndim) + x.shape)


def masked_softmax(logits_BNTS, mask_BNTS=None):
    """Softmax over keys in float32; rows with no allowed key give all zeros.

    Masked logits become -inf and the row maximum is taken over finite values
    only, so a fully masked row has numerator and denominator 0 and returns
    zeros (not NaN) with zero gradient.
    """
    logits = logits_BNTS.astype(F32)
    if mask_BNTS is not None:
        logits = jnp.where(mask_BNTS, logits, -jnp.inf)
    row_max = jnp.max(logits, axis=-1, keepdims=True)
    # Softmax is shift-invariant: the shift needs no gradient.
    row_max = jax.lax.stop_gradient(jnp.where(jnp.isfinite(row_max), row_max, 0.0))
    unnorm = jnp.exp(logits - row_max)
    denom = jnp.sum(unnorm, axis=-1, keepdims=True)
    return unnorm / jnp.where(denom > 0, denom, 1.0)


def attention_weights(
    q_BTNH,
    k_BSKH,
    *,
    mask=None,
    bias=None,
    scale=None,
    score="scaled_dot",
    score_params=None,
):
    """Attention probabilities weights_BNTS (float32), before dropout."""
    logits_BNTS = get_score(score)(q_BTNH, k_BSKH, score_params, scale).astype(F32)
    if bias is not None:
        logits_BNTS = logits_BNTS + _to_rank4(bias, "bias").astype(F32)
    if mask is not None:
        mask = _to_rank4(mask, "mask").astype(jnp.bool_)
    return masked_softmax(logits_BNTS, mask)


def apply_dropout(weights_BNTS, rate: float, rng):
    """Inverted dropout on attention weights (Vaswani et al. 2017, §5.4)."""
    if rate <= 0.0:
        return weights_BNTS
    if rate >= 1.0:
        return jnp.zeros_like(weights_BNTS)
    if rng is None:
        raise ValueError("dropout_rate > 0 needs a dropout_rng (or pass dropout_rate=0.0)")
    keep = jax.random.bernoulli(rng, 1.0 - rate, weights_BNTS.shape)
    return jnp.where(keep, weights_BNTS / (1.0 - rate), 0.0)


def weighted_values(weights_BNTS, v_BSKH):
    """out_BTNH = sum_s weights[b,n,t,s] v[b,s,n//G,:] (in v's dtype, f32 accumulation)."""
    B, N, T, S = weights_BNTS.shape
    K, H = v_BSKH.shape[2], v_BSKH.shape[3]
    w_BKGTS = weights_BNTS.astype(v_BSKH.dtype).reshape(B, K, N // K, T, S)
    out_BTKGH = jnp.einsum("BKGTS,BSKH->BTKGH", w_BKGTS, v_BSKH, preferred_element_type=F32)
    return out_BTKGH.reshape(B, T, N, H).astype(v_BSKH.dtype)


def dot_product_attention(
    q_BTNH,
    k_BSKH,
    v_BSKH,
    *,
    mask=None,
    bias=None,
    scale=None,
    score="scaled_dot",
    score_params=None,
    dropout_rate: float = 0.0,
    dropout_rng=None,
    return_weights: bool = False,
):
    """Softmax attention for MHA, GQA and MQA (Vaswani et al. 2017, eq. 1).

    Args:
      q_BTNH: queries.
      k_BSKH: keys; N must be a multiple of K (query head n reads kv head n // G).
      v_BSKH: values (B, S, K as the keys; their head dim may differ from q's).
      mask: bool broadcastable to [B,N,T,S] (numpy rules; e.g. TS, B1TS, B11S);
        True = may attend. A query with no allowed key outputs zeros.
      bias: float broadcastable to [B,N,T,S], added to the logits (ALiBi,
        relative-position bias, ...).
      scale: logit multiplier; None = the score's default (1/sqrt(H) for "scaled_dot").
      score: a key of `scores.SCORES` or a score callable.
      score_params: parameters of a parameterized score (see `init_score_params`).
      dropout_rate: dropout on the attention weights; needs `dropout_rng` when > 0.
      dropout_rng: PRNG key for dropout.
      return_weights: also return the softmax weights.

    Returns:
      out_BTNH in v's dtype (head dim of v), or (out_BTNH, weights_BNTS) with the float32
      weights before dropout.
    """
    if k_BSKH.shape[:3] != v_BSKH.shape[:3]:
        raise ValueError(f"k {k_BSKH.shape} and v {v_BSKH.shape} must have the same B, S, K")
    weights_BNTS = attention_weights(
        q_BTNH,
        k_BSKH,
        mask=mask,
        bias=bias,
        scale=scale,
        score=score,
        score_params=score_params,
    )
    dropped_BNTS = apply_dropout(weights_BNTS, dropout_rate, dropout_rng)
    out_BTNH = weighted_values(dropped_BNTS, v_BSKH)
    if return_weights:
        return out_BTNH, weights_BNTS
    return out_BTNH

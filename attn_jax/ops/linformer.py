"""Linformer attention (Wang et al. 2020, "Linformer: Self-Attention with Linear Complexity").

Dimension key: B batch, T query length, S key length, N query heads, K kv heads,
H head dim, R projected key length.

Keys and values are projected along the sequence axis by learned matrices
E, F [R, S] (eq. 7): softmax(q (E k)^T * scale) (F v), O(T R) instead of
O(T S). With S < max_len only the first S columns are used, and projected rows
that no position feeds are masked, so they take no softmax mass. Projections
are shared across heads and layers' calls (the paper's "headwise sharing"). Mixing positions along S breaks causality, so only
non-causal specs are accepted.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attn_jax.ops.attention import dot_product_attention
from attn_jax.ops.masks import padding_mask


def init_params(key, max_len: int, proj_len: int = 64, init: str = "pool"):
    """Linformer params {"proj_k_RS", "proj_v_RS"} for keys up to `max_len`.

    Args:
      key: PRNG key.
      max_len: longest S the projections cover (shorter inputs use the first S columns).
      proj_len: R.
      init: "pool" (mean over R contiguous segments, a good starting point that
        learning refines) or "gaussian" (N(0, 1/R) entries, the paper's random
        projection view, Thm. 1).
    """
    if init == "pool":
        seg_S = jnp.arange(max_len) * proj_len // max_len
        onehot_RS = (seg_S[None, :] == jnp.arange(proj_len)[:, None]).astype(jnp.float32)
        proj = onehot_RS / jnp.maximum(onehot_RS.sum(-1, keepdims=True), 1.0)
        return {"proj_k_RS": proj, "proj_v_RS": proj}
    if init == "gaussian":
        kk, kv = jax.random.split(key)
        std = proj_len**-0.5
        return {
            "proj_k_RS": jax.random.normal(kk, (proj_len, max_len)) * std,
            "proj_v_RS": jax.random.normal(kv, (proj_len, max_len)) * std,
        }
    raise ValueError(f"unknown linformer init {init!r}; valid: ['gaussian', 'pool']")


def linformer_attention(
    q_BTNH,
    k_BSKH,
    v_BSKH,
    *,
    spec=None,
    bias_fn=None,
    scale=None,
    q_offset=0,
    kv_lengths_B=None,
    params=None,
    proj_len: int = 64,
):
    """Softmax attention over R learned projections of the keys and values.

    Args:
      q_BTNH, k_BSKH, v_BSKH: queries, keys, values (N % K == 0).
      spec: must be None or full (Linformer is non-causal); else ValueError.
      bias_fn: must be None (positions are mixed by the projection).
      scale: logit scale, default 1/sqrt(H).
      q_offset: ignored (no mask depends on it).
      kv_lengths_B: padded keys are zeroed before the projection; projected rows
        that only padding (or positions >= S) feeds are masked out.
      params: {"proj_k_RS", "proj_v_RS"} from `init_params`; if None, the "pool"
        projections with R = proj_len (no learned state).
      proj_len: R when params is None.

    Returns:
      out_BTNH in q's dtype.
    """
    del q_offset
    if spec is not None and not spec.is_full:
        raise ValueError(f"linformer attention is non-causal and unmasked, got {spec}")
    if bias_fn is not None:
        raise ValueError("linformer attention does not take a position bias")
    S = k_BSKH.shape[1]
    if params is None:
        params = init_params(None, S, proj_len)
    e_RS, f_RS = params["proj_k_RS"], params["proj_v_RS"]
    if e_RS.shape[1] < S:
        raise ValueError(f"linformer projections cover {e_RS.shape[1]} keys, got S={S}")
    e_RS, f_RS = e_RS[:, :S], f_RS[:, :S]
    k, v = k_BSKH, v_BSKH
    valid_BS = jnp.ones((1, S), jnp.bool_)
    if kv_lengths_B is not None:
        valid_BS = padding_mask(kv_lengths_B, S)
        k = jnp.where(valid_BS[..., None, None], k, 0)
        v = jnp.where(valid_BS[..., None, None], v, 0)
    k_BRKH = jnp.einsum("RS,BSKH->BRKH", e_RS.astype(k.dtype), k)
    v_BRKH = jnp.einsum("RS,BSKH->BRKH", f_RS.astype(v.dtype), v)
    # A projected key that no valid position feeds (S < max_len leaves most pooled
    # rows empty; so does padding) is a zero key with logit 0: it would still take
    # softmax mass and dilute the real ones, so it is masked out.
    filled_BR = (
        jnp.einsum("RS,BS->BR", jnp.abs(e_RS).astype(jnp.float32), valid_BS.astype(jnp.float32)) > 0
    )
    mask_B11R = filled_BR[:, None, None, :]
    out = dot_product_attention(q_BTNH, k_BRKH, v_BRKH, mask=mask_B11R, scale=scale)
    return out.astype(q_BTNH.dtype)

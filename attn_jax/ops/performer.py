"""Performer FAVOR+ attention (Choromanski et al. 2021, "Rethinking Attention with Performers").

Dimension key: B batch, T query length, S key length, N query heads, K kv heads,
H head dim, M random features.

exp(q . k) = E_w[phi(q) . phi(k)] with the positive random features
phi(x) = exp(W x - |x|^2 / 2) / sqrt(M) (Lemma 1, eq. 7), W's rows drawn as
blocks of orthogonal Gaussian directions with chi(H)-distributed norms (§2.4,
"ORFs"), which lowers the estimator's variance. Softmax attention with scale s is
exp((sqrt(s) q) . (sqrt(s) k)), so queries and keys are scaled by s^(1/2) first.
The features then go through linear attention (ops/linear.py), including its
chunked causal form. M (`num_features`) is the accuracy/cost knob: the error
against exact softmax attention falls as M grows (tested).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attn_jax.ops.linear import check_spec, linear_attention_features


def orthogonal_random_features(key, num_features: int, head_dim: int):
    """W [M, H]: stacked blocks of orthogonal rows with chi(H) norms (FAVOR+, §2.4)."""
    n_blocks = -(-num_features // head_dim)
    keys = jax.random.split(key, n_blocks + 1)
    blocks = []
    for b in range(n_blocks):
        g_HH = jax.random.normal(keys[b], (head_dim, head_dim), jnp.float32)
        q_HH, _ = jnp.linalg.qr(g_HH)
        blocks.append(q_HH.T)
    w_MH = jnp.concatenate(blocks, axis=0)[:num_features]
    # Row norms distributed like those of Gaussian vectors, so each row is marginally N(0, I).
    norms_M = jnp.linalg.norm(
        jax.random.normal(keys[-1], (num_features, head_dim), jnp.float32), axis=-1
    )
    return w_MH * norms_M[:, None]


def init_params(key, head_dim: int, num_features: int = 256):
    """Performer params: {"features_MH": W}."""
    return {"features_MH": orthogonal_random_features(key, num_features, head_dim)}


def favor_features(x_BTNH, w_MH, *, is_query: bool):
    """Positive random features phi(x) [B, T, N, M] (x already scaled by sqrt(scale)).

    A max is subtracted inside the exp for stability (as the reference
    implementation): per row for queries, over all keys and features for keys;
    both are constants of the softmax normalisation, so they cancel.
    """
    x = x_BTNH.astype(jnp.float32)
    wx = jnp.einsum("BTNH,MH->BTNM", x, w_MH)
    sq = 0.5 * jnp.sum(x * x, axis=-1, keepdims=True)
    if is_query:
        shift = jnp.max(wx, axis=-1, keepdims=True)
    else:
        shift = jnp.max(wx, axis=(1, 3), keepdims=True)
    shift = jax.lax.stop_gradient(shift)
    return jnp.exp(wx - sq - shift) / jnp.sqrt(jnp.float32(w_MH.shape[0])) + 1e-6


def performer_attention(
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
    num_features: int = 256,
    seed: int = 0,
    chunk: int = 64,
):
    """FAVOR+ approximation of softmax attention.

    Args:
      q_BTNH, k_BSKH, v_BSKH: queries, keys, values (N % K == 0).
      spec: None/full or causal MaskSpec; anything else raises ValueError.
      bias_fn: must be None.
      scale: softmax temperature approximated, default 1/sqrt(H).
      q_offset: must be 0.
      kv_lengths_B: optional key padding.
      params: {"features_MH": W} from `init_params`; if None, W is drawn from
        PRNGKey(seed) with `num_features` rows (fixed, so the call is deterministic).
      num_features: M when params is None.
      seed: PRNG seed when params is None.
      chunk: chunk length of the causal prefix sum.

    Returns:
      out_BTNH in q's dtype.
    """
    causal = check_spec(spec, bias_fn, "performer")
    if not (isinstance(q_offset, int) and q_offset == 0):
        raise ValueError("performer attention needs q_offset=0 (decode with the 'xla' kernel)")
    H = q_BTNH.shape[-1]
    if params is None:
        w_MH = orthogonal_random_features(jax.random.PRNGKey(seed), num_features, H)
    else:
        w_MH = params["features_MH"]
    scale = H**-0.5 if scale is None else scale
    root = jnp.float32(scale) ** 0.5
    phi_q = favor_features(q_BTNH * root, w_MH, is_query=True)
    phi_k = favor_features(k_BSKH * root, w_MH, is_query=False)
    out = linear_attention_features(
        phi_q, phi_k, v_BSKH, causal=causal, kv_lengths_B=kv_lengths_B, chunk=chunk
    )
    return out.astype(q_BTNH.dtype)

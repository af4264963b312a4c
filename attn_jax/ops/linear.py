"""Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs").

Dimension key: B batch, T query length, S key length, N query heads, K kv heads,
G = N / K, H head dim, F feature dim of the feature map (H for elu+1, M random
features for Performer), C chunk length, Q number of chunks.

softmax(q k^T) is replaced by a kernel phi(q) . phi(k) (eq. 4-6), so
out_i = phi(q_i)^T sum_j phi(k_j) v_j^T / phi(q_i)^T sum_j phi(k_j): O(T F H).
The causal form sums over j <= i. It is computed chunk by chunk (as in
"Transformers are RNNs" §3.3 and later chunked forms, e.g. Hua et al. 2022):
inside a chunk the C x C masked kernel matrix, across chunks an exclusive prefix
sum (cumsum) of the per-chunk states sum phi(k) v^T [F, H] -- never a T x T matrix.
`linear_attention_features` is the core shared with Performer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attn_jax.ops.masks import padding_mask

_EPS = 1e-6


def elu_feature_map(x):
    """phi(x) = elu(x) + 1 > 0 (Katharopoulos et al. 2020, eq. 7)."""
    return jax.nn.elu(x) + 1.0


def check_spec(spec, bias_fn, name: str) -> bool:
    """Validate a spec for a kernelized (linear) kernel; returns whether it is causal."""
    if bias_fn is not None:
        raise ValueError(f"{name} attention has no logits to add a bias to; use position='rope'")
    if spec is None:
        return False
    if spec.window is not None or spec.block is not None or spec.stride is not None:
        raise ValueError(f"{name} attention supports only full or causal masks, got {spec}")
    if spec.prefix_len:
        raise ValueError(f"{name} attention does not support prefix_len")
    return bool(spec.causal)


def linear_attention_features(
    phi_q_BTNF, phi_k_BSKF, v_BSKH, *, causal: bool, kv_lengths_B=None, chunk: int = 64
):
    """Attention with kernel phi(q) . phi(k) given the (positive) features.

    Args:
      phi_q_BTNF: query features.
      phi_k_BSKF: key features.
      v_BSKH: values.
      causal: sum only over keys j <= i (requires T == S).
      kv_lengths_B: optional valid key lengths (padded keys get zero features).
      chunk: chunk length C of the causal form.

    Returns:
      out_BTNH (float32).
    """
    B, T, N, F = phi_q_BTNF.shape
    S, K, H = v_BSKH.shape[1], v_BSKH.shape[2], v_BSKH.shape[3]
    G = N // K
    phi_q = phi_q_BTNF.astype(jnp.float32).reshape(B, T, K, G, F)
    phi_k = phi_k_BSKF.astype(jnp.float32)
    v = v_BSKH.astype(jnp.float32)
    if kv_lengths_B is not None:
        valid_BS = padding_mask(kv_lengths_B, S)
        phi_k = phi_k * valid_BS[:, :, None, None]
    if not causal:
        kv_BKFH = jnp.einsum("BSKF,BSKH->BKFH", phi_k, v)
        z_BKF = phi_k.sum(1)
        num = jnp.einsum("BTKGF,BKFH->BTKGH", phi_q, kv_BKFH)
        den = jnp.einsum("BTKGF,BKF->BTKG", phi_q, z_BKF)
        return (num / (den[..., None] + _EPS)).reshape(B, T, N, H)
    if T != S:
        raise ValueError(f"causal linear attention needs T == S, got T={T}, S={S}")
    C = min(chunk, T)
    Tp = -(-T // C) * C
    Q = Tp // C
    pad = ((0, 0), (0, Tp - T), (0, 0), (0, 0))
    phi_q = jnp.pad(phi_q.reshape(B, T, N, F), pad).reshape(B, Q, C, K, G, F)
    phi_k = jnp.pad(phi_k, pad).reshape(B, Q, C, K, F)
    v = jnp.pad(v, pad).reshape(B, Q, C, K, H)
    # Inside a chunk: the masked C x C kernel matrix (diagonal included).
    a = jnp.einsum("BQUKGF,BQWKF->BQKGUW", phi_q, phi_k)
    a = jnp.where(jnp.tril(jnp.ones((C, C), jnp.bool_))[None, None, None, None], a, 0.0)
    num = jnp.einsum("BQKGUW,BQWKH->BQUKGH", a, v)
    den = a.sum(-1).transpose(0, 1, 4, 2, 3)
    # Across chunks: exclusive prefix sums of the chunk states sum_j phi(k_j) v_j^T.
    kv_BQKFH = jnp.einsum("BQWKF,BQWKH->BQKFH", phi_k, v)
    z_BQKF = phi_k.sum(2)
    kv_prev = jnp.cumsum(kv_BQKFH, axis=1) - kv_BQKFH
    z_prev = jnp.cumsum(z_BQKF, axis=1) - z_BQKF
    num = num + jnp.einsum("BQUKGF,BQKFH->BQUKGH", phi_q, kv_prev)
    den = den + jnp.einsum("BQUKGF,BQKF->BQUKG", phi_q, z_prev)
    out = num / (den[..., None] + _EPS)
    return out.reshape(B, Tp, N, H)[:, :T]


def linear_attention(
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
    chunk: int = 64,
):
    """Linear attention with the elu+1 feature map (Katharopoulos et al. 2020).

    Args:
      q_BTNH, k_BSKH, v_BSKH: queries, keys, values (N % K == 0).
      spec: None/full or causal MaskSpec; anything else raises ValueError.
      bias_fn: must be None (no logits to bias).
      scale: ignored (the feature map has no temperature).
      q_offset: must be 0 (no cache-based decoding in this form).
      kv_lengths_B: optional key padding.
      params: unused.
      chunk: chunk length of the causal prefix sum.

    Returns:
      out_BTNH in q's dtype.
    """
    del scale, params
    causal = check_spec(spec, bias_fn, "linear")
    if not (isinstance(q_offset, int) and q_offset == 0):
        raise ValueError("linear attention needs q_offset=0 (decode with the 'xla' kernel)")
    out = linear_attention_features(
        elu_feature_map(q_BTNH.astype(jnp.float32)),
        elu_feature_map(k_BSKH.astype(jnp.float32)),
        v_BSKH,
        causal=causal,
        kv_lengths_B=kv_lengths_B,
        chunk=chunk,
    )
    return out.astype(q_BTNH.dtype)

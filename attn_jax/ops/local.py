"""Local (banded, sliding-window) attention in O(T w) time and memory.

Dimension key: B batch, T query length, S key length, N query heads, K kv heads,
G = N / K, H head dim, Q chunks, U query rows per chunk, W keys per chunk.

The sequence is cut into chunks of C = window positions. A query at position
q needs keys with |q - k| < window (and k <= q when causal), which all lie in
its own chunk and the previous one (and the next one when not causal), so each
chunk attends to a [2C or 3C]-key strip: O(T w) logits instead of O(T S), no
loop, and exact for the mask, which is evaluated per position (Beltagy et al.
2020, Longformer §3.1, "sliding window"; Child et al. 2019 use the same chunk
trick for their local pattern). Everything is plain autodiff: forward+backward
memory is O(T w).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attn_jax.ops.attention import masked_softmax
from attn_jax.ops.blockwise import blockwise_attention, position_mask


def _shift_chunks(x_BQC, shift: int):
    """x[:, i - shift] along the chunk axis, zero-filled at the ends."""
    if shift > 0:
        return jnp.pad(x_BQC, ((0, 0), (shift, 0)) + ((0, 0),) * (x_BQC.ndim - 2))[:, :-shift]
    return jnp.pad(x_BQC, ((0, 0), (0, -shift)) + ((0, 0),) * (x_BQC.ndim - 2))[:, -shift:]


def _chunk_mask(spec, q_pos_QU, k_pos_QW, S: int, kv_lengths_B):
    """bool [B|1, 1, 1, Q, U, W]: the spec's mask on each chunk's window, real keys only."""
    mask_QUW = jax.vmap(lambda qp, kp: position_mask(spec, qp, kp))(q_pos_QU, k_pos_QW)
    mask_QUW = mask_QUW & ((k_pos_QW >= 0) & (k_pos_QW < S))[:, None, :]
    mask = mask_QUW[None, None, None]
    if kv_lengths_B is not None:
        lengths_B = jnp.asarray(kv_lengths_B, jnp.int32)
        valid_BQW = k_pos_QW[None] < lengths_B[:, None, None]
        mask = mask & valid_BQW[:, None, None, :, None, :]
    return mask


def _chunk_bias(bias_fn, q_pos_QU, k_pos_QW, K: int, G: int):
    """float32 [1, K|1, G|1, Q, U, W]: bias_fn evaluated on each chunk's window."""
    Q, C = q_pos_QU.shape
    W = k_pos_QW.shape[1]
    bias = jax.vmap(bias_fn)(q_pos_QU, jnp.maximum(k_pos_QW, 0)).astype(jnp.float32)
    if bias.ndim == 3:
        bias = bias[:, None]
    if bias.shape[1] == 1:
        return bias.reshape(1, 1, 1, Q, C, W)
    return bias.reshape(Q, K, G, C, W).transpose(1, 2, 0, 3, 4)[None]


def local_attention(
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
):
    """Exact attention under a sliding-window MaskSpec in O(T w).

    Args:
      q_BTNH, k_BSKH, v_BSKH: queries, keys, values (N % K == 0).
      spec: MaskSpec with `window` set (causal or not; prefix/block/stride are
        applied exactly as extra masks).
      bias_fn: optional `bias_fn(q_pos, k_pos) -> [N|1, U, W]`, evaluated per chunk.
      scale: logit scale, default 1/sqrt(H).
      q_offset: query position offset. When it is not the static 0 or T != S
        (decoding with a cache), the call goes to the blockwise kernel, which
        visits only the key blocks inside the window: also O(T w), also exact.
      kv_lengths_B: optional valid key lengths.
      params: unused.

    Returns:
      out_BTNH in q's dtype.
    """
    del params
    if spec is None or spec.window is None:
        raise ValueError("local attention needs MaskSpec(window=...); got no window")
    B, T, N, H = q_BTNH.shape
    S, K = k_BSKH.shape[1], k_BSKH.shape[2]
    if T != S or not (isinstance(q_offset, int) and q_offset == 0):
        return blockwise_attention(
            q_BTNH,
            k_BSKH,
            v_BSKH,
            spec=spec,
            bias_fn=bias_fn,
            scale=scale,
            q_offset=q_offset,
            kv_lengths_B=kv_lengths_B,
            block_q=min(512, max(spec.window, 64)),
            block_k=min(512, max(spec.window, 64)),
        )
    G = N // K
    scale = H**-0.5 if scale is None else scale
    C = min(spec.window, T)
    Tp = -(-T // C) * C
    Q = Tp // C
    pad = ((0, 0), (0, Tp - T), (0, 0), (0, 0))
    q = jnp.pad(q_BTNH, pad).reshape(B, Q, C, K, G, H)
    k = jnp.pad(k_BSKH, pad).reshape(B, Q, C, K, H)
    v = jnp.pad(v_BSKH, pad).reshape(B, Q, C, K, H)
    shifts = (1, 0) if spec.causal else (1, 0, -1)
    k_ext = jnp.concatenate([_shift_chunks(k, s) for s in shifts], axis=2)
    v_ext = jnp.concatenate([_shift_chunks(v, s) for s in shifts], axis=2)
    W = k_ext.shape[2]

    q_pos_QU = jnp.arange(Tp, dtype=jnp.int32).reshape(Q, C)
    k_pos_QW = (jnp.arange(Q, dtype=jnp.int32)[:, None] - 1) * C + jnp.arange(W, dtype=jnp.int32)[
        None, :
    ]
    logits = jnp.einsum(
        "BQUKGH,BQWKH->BKGQUW", q, k_ext, preferred_element_type=jnp.float32
    ) * jnp.float32(scale)
    if bias_fn is not None:
        logits = logits + _chunk_bias(bias_fn, q_pos_QU, k_pos_QW, K, G)
    mask = _chunk_mask(spec, q_pos_QU, k_pos_QW, S, kv_lengths_B)
    weights = masked_softmax(logits, mask)
    out = jnp.einsum("BKGQUW,BQWKH->BQUKGH", weights.astype(v.dtype), v_ext)
    return out.reshape(B, Tp, N, H)[:, :T].astype(q_BTNH.dtype)

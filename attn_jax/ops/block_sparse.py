"""Block-sparse strided attention (Child et al. 2019, "Generating Long Sequences
with Sparse Transformers", §4.2), exact for its mask.

Dimension key: B batch, T query length, S key length, N query heads, K kv heads,
H head dim.

The mask is `MaskSpec(block=b, stride=s[, causal])`: with d = query block - key
block, a query sees a key when |d| < s (local part) or d % s == 0 (strided
part); see `masks.strided_mask`. With T / b blocks, each query block touches
about s local + T / (b s) strided key blocks, so cost is O(T (b s + T / s)),
O(T^1.5) at s ~ sqrt(T / b). The kernel is the blockwise (FlashAttention-style)
kernel of ops/blockwise.py driven by a static table of the visited key blocks
per query block (and its transpose for the backward pass), computed with NumPy
at trace time; the mask is then applied per position, so the result is exact.
"""

from __future__ import annotations

import numpy as np

from attn_jax.ops.blockwise import blockwise_attention, flash_attention


def visible_blocks(spec, T: int, S: int, q_offset: int, bq: int, bk: int):
    """bool [nq, nk]: may any query of block r see any key of block c (a superset)."""
    nq, nk = -(-T // bq), -(-S // bk)
    r = np.arange(nq)[:, None]
    c = np.arange(nk)[None, :]
    q_lo = q_offset + r * bq
    q_hi = np.minimum(q_lo + bq - 1, q_offset + T - 1)
    k_lo = c * bk
    k_hi = np.minimum(k_lo + bk - 1, S - 1)
    vis = np.ones((nq, nk), bool)
    if spec.causal:
        reach = k_lo <= q_hi
        if spec.prefix_len:
            reach = reach | (k_lo < spec.prefix_len)
        vis &= reach
    if spec.window is not None:
        gap = np.maximum(0, np.maximum(k_lo - q_hi, q_lo - k_hi))
        vis &= gap < spec.window
    if spec.block is not None or spec.stride is not None:
        b = spec.block or 1
        d_min = q_lo // b - k_hi // b
        d_max = q_hi // b - k_lo // b
        if spec.stride is None:
            vis &= (d_min <= 0) & (d_max >= 0)
        else:
            s = spec.stride
            local = (d_min < s) & (d_max > -s)
            strided = (d_max // s) * s >= d_min
            vis &= local | strided
    return vis


def block_tables(vis):
    """(kv_idx [nq, M], kv_count [nq], q_idx [nk, M'], q_count [nk]) from a visibility table."""

    def rows(v):
        count = v.sum(1)
        width = max(int(count.max()), 1)
        idx = np.argsort(~v, axis=1, kind="stable")[:, :width]
        return idx.astype(np.int32), count.astype(np.int32)

    kv_idx, kv_count = rows(vis)
    q_idx, q_count = rows(vis.T)
    return kv_idx, kv_count, q_idx, q_count


def block_sparse_attention(
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
    block_q: int | None = None,
    block_k: int | None = None,
):
    """Exact attention under a strided / block-local MaskSpec, visiting only its blocks.

    Args:
      q_BTNH, k_BSKH, v_BSKH: queries, keys, values (N % K == 0).
      spec: MaskSpec with `block` and/or `stride` (plus optional causal/window/prefix).
      bias_fn: optional per-block `bias_fn(q_pos, k_pos) -> [N|1, U, W]`.
      scale: logit scale, default 1/sqrt(H).
      q_offset: must be a Python int for the static block table; a traced offset
        (cache decoding) goes to the blockwise kernel (same result, no skipping).
      kv_lengths_B: optional valid key lengths.
      params: unused.
      block_q, block_k: kernel block sizes; default the smallest multiple of
        spec.block that is >= 64 (small blocks waste the matmul units).

    Returns:
      out_BTNH in q's dtype.
    """
    del params
    if spec is None or (spec.block is None and spec.stride is None):
        raise ValueError("block_sparse attention needs MaskSpec(block=..., stride=...)")
    kwargs = dict(spec=spec, bias_fn=bias_fn, scale=scale, kv_lengths_B=kv_lengths_B)
    if not isinstance(q_offset, int):
        return blockwise_attention(q_BTNH, k_BSKH, v_BSKH, q_offset=q_offset, **kwargs)
    b = spec.block or 1
    default = b * -(-64 // b)
    bq, bk = block_q or default, block_k or default
    T, S = q_BTNH.shape[1], k_BSKH.shape[1]

    def tables(nq, nk, bq_, bk_):
        vis = visible_blocks(spec, T, S, q_offset, bq_, bk_)
        assert vis.shape == (nq, nk), (vis.shape, nq, nk)
        return block_tables(vis)

    return flash_attention(
        q_BTNH, k_BSKH, v_BSKH, q_offset=q_offset, block_q=bq, block_k=bk, tables=tables, **kwargs
    )

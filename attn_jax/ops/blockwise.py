"""Blockwise exact attention with linear memory (FlashAttention style).

Dimension key: B batch, T query length, S key length, N query heads, K key/value
heads, G = N / K query heads per kv head, H head dim. Inside this file arrays
are "blocked": a leading block index Q (query blocks) or C (key blocks), and
per-block lengths bq / bk written as U (queries in a block) and W (keys in a
block). The G query heads sharing a kv head are stacked as rows, R = G x U
(G-major), so each block product is one plain batched matmul over (B, K)
with no transposes in the loop: `q_QBKRH`, `k_CBKWH`.

Forward: online softmax over key blocks (Milakov & Gimelshein 2018; Dao et al.
2022, FlashAttention; Dao 2023, FlashAttention-2). For each query block a
`fori_loop` runs over exactly the key blocks its mask can reach: the trip count
is computed from the causal / sliding-window band, the prefix length and the
key lengths, so a causal mask skips the fully masked blocks instead of masking
them. Only the log-sum-exp per row is saved for the backward pass.

Backward (a `jax.custom_vjp`, FlashAttention-2 Algorithm 2): for each key block,
loop over the query blocks that reach it, recompute P = exp(S - lse) and
accumulate dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dO * O)),
dK = dS^T Q, dQ += dS K (dQ is a loop-carried buffer updated in place). Forward
plus backward memory is O(T) beyond the O(bq * bk) working blocks.

Additive position biases arrive as `bias_fn(q_pos_T, k_pos_S) -> bias_NTS` and
are evaluated per block, so no T x S array is ever built; their closed-over
parameters (a learned T5 table, learned ALiBi slopes) get gradients through
`jax.closure_convert` and a per-block VJP of `bias_fn`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from attn_jax.ops.masks import MaskSpec

# Blocks strictly inside the causal/window band run without computing a mask; the
# switch exists to measure that (it was within noise at T=4096 on 2 cores).
_SKIP_INTERIOR_MASK = True


@dataclasses.dataclass(frozen=True)
class _Static:
    """Static configuration of one blockwise call."""

    T: int
    S: int
    block_q: int
    block_k: int
    causal: bool
    window: int | None
    prefix_len: int | None
    block: int | None  # strided / block-local pattern (MaskSpec.block, .stride)
    stride: int | None
    num_heads: int  # N
    num_kv_heads: int  # K
    bias_fn: Callable[..., Any] | None = dataclasses.field(default=None, compare=False)


def position_mask(spec, q_pos_U, k_pos_W):
    """bool [U, W]: may query at position q attend key at position k under `spec`.

    Mirrors `MaskSpec.dense` position by position, so kernels can evaluate the mask
    on one block at a time: (causal: k <= q, or k < prefix_len) AND (window:
    |q - k| < window) AND (block/stride: the strided pattern of `masks.strided_mask`).
    """
    q = q_pos_U[:, None]
    k = k_pos_W[None, :]
    mask = jnp.ones((q_pos_U.shape[0], k_pos_W.shape[0]), jnp.bool_)
    if spec.causal:
        allowed = k <= q
        if spec.prefix_len:
            allowed = allowed | (k < spec.prefix_len)
        mask = mask & allowed
    if spec.window is not None:
        mask = mask & (jnp.abs(q - k) < spec.window)
    if spec.block is not None or spec.stride is not None:
        block = spec.block or 1
        d = q // block - k // block
        if spec.stride is None:
            mask = mask & (d == 0)
        else:
            mask = mask & ((jnp.abs(d) < spec.stride) | (d % spec.stride == 0))
    return mask


def _block_mask(st: _Static, q_pos_R, k_pos_W, lengths_B):
    """bool [B|1, 1, R, W] for one (query block, key block) pair."""
    mask_RW = position_mask(st, q_pos_R, k_pos_W) & (k_pos_W[None, :] < st.S)
    mask_BRW = mask_RW[None]
    if lengths_B is not None:
        mask_BRW = mask_BRW & (k_pos_W[None, None, :] < lengths_B[:, None, None])
    return mask_BRW[:, None]


def _kv_block_range(st: _Static, nk, q_lo, q_hi, lengths_B):
    """Key blocks [lo, hi) that queries at positions [q_lo, q_hi] can reach."""
    lo, hi = jnp.int32(0), jnp.int32(nk)
    if st.causal:
        hi = q_hi // st.block_k + 1
        if st.prefix_len:
            hi = jnp.maximum(hi, -(-st.prefix_len // st.block_k))
    if st.window is not None:
        lo = jnp.maximum(lo, (q_lo - st.window + 1) // st.block_k)
        hi = jnp.minimum(hi, (q_hi + st.window - 1) // st.block_k + 1)
    hi = jnp.minimum(hi, nk)
    if lengths_B is not None:
        hi = jnp.minimum(hi, (jnp.max(lengths_B) + st.block_k - 1) // st.block_k)
    return lo, hi


def _q_block_range(st: _Static, nq, k_lo, k_hi, q_offset, lengths_B):
    """Query blocks [lo, hi) whose queries can reach keys at positions [k_lo, k_hi]."""
    lo, hi = jnp.int32(0), jnp.int32(nq)
    if st.causal:
        lo = (k_lo - q_offset) // st.block_q
        if st.prefix_len:
            lo = jnp.where(k_lo < st.prefix_len, 0, lo)
    if st.window is not None:
        lo = jnp.maximum(lo, (k_lo - st.window + 1 - q_offset) // st.block_q)
        hi = jnp.minimum(hi, (k_hi + st.window - 1 - q_offset) // st.block_q + 1)
    lo = jnp.maximum(lo, 0)
    if lengths_B is not None:
        hi = jnp.where(k_lo < jnp.max(lengths_B), hi, 0)
    return lo, hi


def _cdiv(a, b):
    return -((-a) // b)


def _full_kv_range(st: _Static, nk, q_lo, q_hi, lengths_B):
    """Key blocks [flo, fhi) where every pair is allowed, so no mask is computed; or None."""
    if st.block is not None or st.stride is not None or st.prefix_len:
        return None
    flo, fhi = jnp.int32(0), jnp.int32(min(nk, st.S // st.block_k))
    if st.causal:
        fhi = jnp.minimum(fhi, (q_lo + 1) // st.block_k)
    if st.window is not None:
        flo = _cdiv(q_hi - st.window + 1, st.block_k)
        if not st.causal:
            fhi = jnp.minimum(fhi, (q_lo + st.window) // st.block_k)
    if lengths_B is not None:
        fhi = jnp.minimum(fhi, jnp.min(lengths_B) // st.block_k)
    return flo, fhi


def _full_q_range(st: _Static, nq, k_lo, k_hi, q_offset, lengths_B):
    """Query blocks [flo, fhi) where every pair with this key block is allowed; or None."""
    if st.block is not None or st.stride is not None or st.prefix_len:
        return None
    flo, fhi = jnp.int32(0), jnp.int32(nq)
    if st.causal:
        flo = _cdiv(k_hi - q_offset, st.block_q)
    if st.window is not None:
        fhi = (k_lo + st.window - q_offset) // st.block_q
        if not st.causal:
            flo = jnp.maximum(flo, _cdiv(k_hi - st.window + 1 - q_offset, st.block_q))
    none_full = k_hi >= st.S
    if lengths_B is not None:
        none_full = none_full | (k_hi >= jnp.min(lengths_B))
    return flo, jnp.where(none_full, flo, fhi)


def _run_blocks(body, init, rng, full, table_row):
    """Run body(j, carry, masked) over the visited blocks.

    Band masks: blocks [lo, hi), the fully visible middle [flo, fhi) without a mask.
    Block tables (block-sparse): the listed blocks, all masked.
    """
    if table_row is not None:
        count, row = table_row
        return lax.fori_loop(0, count, lambda t, c: body(row[t], c, True), init)
    lo, hi = rng
    if full is None or not _SKIP_INTERIOR_MASK:
        return lax.fori_loop(lo, hi, lambda j, c: body(j, c, True), init)
    flo = jnp.clip(full[0], lo, hi)
    fhi = jnp.clip(full[1], flo, hi)
    carry = lax.fori_loop(lo, flo, lambda j, c: body(j, c, True), init)
    carry = lax.fori_loop(flo, fhi, lambda j, c: body(j, c, False), carry)
    return lax.fori_loop(fhi, hi, lambda j, c: body(j, c, True), carry)


def _bias_block(st: _Static, consts, q_pos_U, k_pos_W):
    """bias_fn on one block, as [1, K|1, R, W] float32 (rows R = G x U, G-major)."""
    bias = jnp.asarray(st.bias_fn(q_pos_U, k_pos_W, *consts), jnp.float32)
    if bias.ndim == 2:
        bias = bias[None]
    G = st.num_heads // st.num_kv_heads
    U, W = bias.shape[1:]
    if bias.shape[0] == 1:
        return jnp.tile(bias, (1, G, 1))[None]
    return bias.reshape(1, st.num_kv_heads, G * U, W)


def _logits(st, consts, q_BKRH, k_BKWH, q_pos_U, k_pos_W, lengths_B, masked=True):
    """(Masked) logits of one block pair (q is already scaled), float32 [B,K,R,W]."""
    s = jnp.einsum("BKRH,BKWH->BKRW", q_BKRH, k_BKWH, preferred_element_type=jnp.float32)
    if st.bias_fn is not None:
        s = s + _bias_block(st, consts, q_pos_U, k_pos_W)
    if not masked:
        return s
    q_pos_R = jnp.tile(q_pos_U, st.num_heads // st.num_kv_heads)
    return jnp.where(_block_mask(st, q_pos_R, k_pos_W, lengths_B), s, -jnp.inf)


def _forward(st: _Static, q_QBKRH, k_CBKWH, v_CBKWH, q_offset, lengths_B, consts, tables):
    nq, nk = q_QBKRH.shape[0], k_CBKWH.shape[0]
    bq, bk = st.block_q, st.block_k

    def one_q_block(args):
        i, q_BKRH = args
        q_pos_U = q_offset + i * bq + jnp.arange(bq)
        q_lo, q_hi = q_pos_U[0], q_pos_U[-1]
        rng = _kv_block_range(st, nk, q_lo, q_hi, lengths_B)
        full = _full_kv_range(st, nk, q_lo, q_hi, lengths_B)
        table_row = None if tables is None else (tables[1][i], tables[0][i])

        def body(j, carry, masked):
            o_BKRH, m_BKR, l_BKR = carry
            k_pos_W = j * bk + jnp.arange(bk)
            s = _logits(st, consts, q_BKRH, k_CBKWH[j], q_pos_U, k_pos_W, lengths_B, masked)
            m_new = jnp.maximum(m_BKR, s.max(-1))
            # A row with no visible key yet has m = -inf; shift by 0 so exp gives 0, not NaN.
            m_safe = jnp.where(jnp.isneginf(m_new), 0.0, m_new)
            p = jnp.exp(s - m_safe[..., None])
            alpha = jnp.exp(m_BKR - m_safe)
            l_BKR = alpha * l_BKR + p.sum(-1)
            pv = jnp.einsum(
                "BKRW,BKWH->BKRH",
                p.astype(v_CBKWH.dtype),
                v_CBKWH[j],
                preferred_element_type=jnp.float32,
            )
            return alpha[..., None] * o_BKRH + pv, m_new, l_BKR

        shape = q_BKRH.shape
        init = (
            jnp.zeros(shape, jnp.float32),
            jnp.full(shape[:-1], -jnp.inf, jnp.float32),
            jnp.zeros(shape[:-1], jnp.float32),
        )
        o, m, l = _run_blocks(body, init, rng, full, table_row)
        empty = l == 0.0
        # Fully masked rows give zeros (not NaN); their lse is +inf so P = 0 in backward.
        o = o / jnp.where(empty, 1.0, l)[..., None]
        lse = jnp.where(empty, jnp.inf, m + jnp.log(jnp.where(empty, 1.0, l)))
        return o.astype(q_BKRH.dtype), lse

    return lax.map(one_q_block, (jnp.arange(nq), q_QBKRH))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _flash(st, q_QBKRH, k_CBKWH, v_CBKWH, q_offset, lengths_B, consts, tables):
    o, _ = _forward(st, q_QBKRH, k_CBKWH, v_CBKWH, q_offset, lengths_B, consts, tables)
    return o


def _flash_fwd(st, q_QBKRH, k_CBKWH, v_CBKWH, q_offset, lengths_B, consts, tables):
    o, lse = _forward(st, q_QBKRH, k_CBKWH, v_CBKWH, q_offset, lengths_B, consts, tables)
    return o, (q_QBKRH, k_CBKWH, v_CBKWH, o, lse, q_offset, lengths_B, consts, tables)


def _flash_bwd(st, res, do_QBKRH):
    q_QBKRH, k_CBKWH, v_CBKWH, o, lse_QBKR, q_offset, lengths_B, consts, tables = res
    nq, nk = q_QBKRH.shape[0], k_CBKWH.shape[0]
    bq, bk = st.block_q, st.block_k
    # D_i = rowsum(dO_i * O_i) (FlashAttention-2, Alg. 2 line 4).
    delta_QBKR = jnp.sum(do_QBKRH.astype(jnp.float32) * o.astype(jnp.float32), axis=-1)
    float_consts = [jnp.issubdtype(c.dtype, jnp.inexact) for c in consts]

    def one_k_block(carry, args):
        dq_QBKRH, dconsts = carry
        j, k_BKWH, v_BKWH = args
        k_pos_W = j * bk + jnp.arange(bk)
        k_lo, k_hi = k_pos_W[0], k_pos_W[-1]
        rng = _q_block_range(st, nq, k_lo, k_hi, q_offset, lengths_B)
        full = _full_q_range(st, nq, k_lo, k_hi, q_offset, lengths_B)
        table_row = None if tables is None else (tables[3][j], tables[2][j])

        def body(i, inner, masked):
            dk, dv, dq_all, dc = inner
            q_BKRH, do_BKRH = q_QBKRH[i], do_QBKRH[i]
            q_pos_U = q_offset + i * bq + jnp.arange(bq)
            s = _logits(st, consts, q_BKRH, k_BKWH, q_pos_U, k_pos_W, lengths_B, masked)
            p = jnp.exp(s - lse_QBKR[i][..., None])
            dv = dv + jnp.einsum(
                "BKRW,BKRH->BKWH",
                p.astype(do_BKRH.dtype),
                do_BKRH,
                preferred_element_type=jnp.float32,
            )
            dp = jnp.einsum("BKRH,BKWH->BKRW", do_BKRH, v_BKWH, preferred_element_type=jnp.float32)
            ds = p * (dp - delta_QBKR[i][..., None])
            ds_c = ds.astype(q_BKRH.dtype)
            dk = dk + jnp.einsum(
                "BKRW,BKRH->BKWH", ds_c, q_BKRH, preferred_element_type=jnp.float32
            )
            dq_i = jnp.einsum("BKRW,BKWH->BKRH", ds_c, k_BKWH, preferred_element_type=jnp.float32)
            dq_all = dq_all.at[i].add(dq_i)
            if st.bias_fn is not None and any(float_consts):
                dc = _bias_const_grads(st, consts, float_consts, dc, ds, q_pos_U, k_pos_W)
            return dk, dv, dq_all, dc

        zeros_kv = jnp.zeros(k_BKWH.shape, jnp.float32)
        dk, dv, dq_QBKRH, dconsts = _run_blocks(
            body, (zeros_kv, zeros_kv, dq_QBKRH, dconsts), rng, full, table_row
        )
        return (dq_QBKRH, dconsts), (dk, dv)

    dq0 = jnp.zeros(q_QBKRH.shape, jnp.float32)
    dc0 = [jnp.zeros(c.shape, c.dtype) if f else None for c, f in zip(consts, float_consts)]
    (dq, dconsts), (dk, dv) = lax.scan(one_k_block, (dq0, dc0), (jnp.arange(nk), k_CBKWH, v_CBKWH))
    # q was pre-scaled by `scale` outside, so dS K here is already d(scaled q).
    return (
        dq.astype(q_QBKRH.dtype),
        dk.astype(k_CBKWH.dtype),
        dv.astype(v_CBKWH.dtype),
        None,
        None,
        dconsts,
        None,
    )


def _bias_const_grads(st, consts, float_consts, dc, ds, q_pos_U, k_pos_W):
    """Accumulate d(bias params) = VJP of bias_fn on this block with dBias = dS."""
    diff_idx = [n for n, f in enumerate(float_consts) if f]

    def f(*diff_consts):
        full = list(consts)
        for n, c in zip(diff_idx, diff_consts):
            full[n] = c
        return _bias_block(st, full, q_pos_U, k_pos_W)

    bias, vjp = jax.vjp(f, *[consts[n] for n in diff_idx])
    # dBias summed over the axes the bias was broadcast along (batch; heads if shared).
    axes = (0,) + tuple(a for a in (1,) if bias.shape[a] == 1)
    grads = vjp(ds.sum(axis=axes, keepdims=True).astype(bias.dtype))
    out = list(dc)
    for n, gn in zip(diff_idx, grads):
        out[n] = out[n] + gn
    return out


_flash.defvjp(_flash_fwd, _flash_bwd)


def _round_up(x: int, m: int) -> int:
    return -(-x // m) * m


def flash_attention(
    q_BTNH,
    k_BSKH,
    v_BSKH,
    *,
    spec,
    bias_fn=None,
    scale=None,
    q_offset=0,
    kv_lengths_B=None,
    block_q: int = 512,
    block_k: int = 512,
    tables=None,
):
    """Shared driver of the blockwise and block-sparse kernels (see `blockwise_attention`).

    `tables`, when given, is a callable (nq, nk, bq, bk) -> numpy (kv_idx[nq, M],
    kv_count[nq], q_idx[nk, M'], q_count[nk]) listing the visited blocks, which
    replaces the band ranges derived from causal/window.
    """
    B, T, N, H = q_BTNH.shape
    S, K = k_BSKH.shape[1], k_BSKH.shape[2]
    if N % K:
        raise ValueError(f"query heads N={N} must be a multiple of kv heads K={K}")
    if k_BSKH.shape != v_BSKH.shape:
        raise ValueError(f"k {k_BSKH.shape} and v {v_BSKH.shape} must have the same shape")
    G = N // K
    scale = H**-0.5 if scale is None else scale
    bq = min(block_q, _round_up(T, 8))
    bk = min(block_k, _round_up(S, 8))
    Tp, Sp = _round_up(T, bq), _round_up(S, bk)
    nq, nk = Tp // bq, Sp // bk
    lengths_B = None if kv_lengths_B is None else jnp.asarray(kv_lengths_B, jnp.int32)

    consts: list = []
    conv_fn = None
    if bias_fn is not None:
        ex_q, ex_k = jnp.arange(bq, dtype=jnp.int32), jnp.arange(bk, dtype=jnp.int32)
        conv_fn, consts = jax.closure_convert(bias_fn, ex_q, ex_k)
        out_shape = jax.eval_shape(bias_fn, ex_q, ex_k).shape
        if len(out_shape) not in (2, 3) or (len(out_shape) == 3 and out_shape[0] not in (1, N)):
            raise ValueError(f"bias_fn returned shape {out_shape}; expected [N|1, T, S], N={N}")
    st = _Static(
        T=T,
        S=S,
        block_q=bq,
        block_k=bk,
        causal=bool(spec.causal),
        window=spec.window,
        prefix_len=spec.prefix_len if spec.causal else None,
        block=spec.block,
        stride=spec.stride,
        num_heads=N,
        num_kv_heads=K,
        bias_fn=conv_fn,
    )
    if tables is not None:
        tables = tuple(jnp.asarray(t, jnp.int32) for t in tables(nq, nk, bq, bk))

    # Heads-major blocked layouts: q [Q, B, K, G, U, H], k/v [C, B, K, W, H].
    q = q_BTNH * jnp.asarray(scale, q_BTNH.dtype)
    q = jnp.pad(q, ((0, 0), (0, Tp - T), (0, 0), (0, 0)))
    q_QBKRH = q.reshape(B, nq, bq, K, G, H).transpose(1, 0, 3, 4, 2, 5).reshape(nq, B, K, G * bq, H)
    pad_kv = ((0, 0), (0, Sp - S), (0, 0), (0, 0))
    k_CBKWH = jnp.pad(k_BSKH, pad_kv).reshape(B, nk, bk, K, H).transpose(1, 0, 3, 2, 4)
    v_CBKWH = jnp.pad(v_BSKH, pad_kv).reshape(B, nk, bk, K, H).transpose(1, 0, 3, 2, 4)
    q_offset = jnp.asarray(q_offset, jnp.int32)

    o_QBKRH = _flash(st, q_QBKRH, k_CBKWH, v_CBKWH, q_offset, lengths_B, list(consts), tables)
    out = o_QBKRH.reshape(nq, B, K, G, bq, H).transpose(1, 0, 4, 2, 3, 5).reshape(B, Tp, N, H)
    return out[:, :T]


def blockwise_attention(
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
    block_q: int = 512,
    block_k: int = 512,
):
    """Exact softmax attention in O(T) memory, skipping fully masked key blocks.

    Args:
      q_BTNH: queries [B, T, N, H].
      k_BSKH: keys [B, S, K, H], N % K == 0 (MHA, GQA, MQA).
      v_BSKH: values [B, S, K, H].
      spec: MaskSpec; None = no mask. Causal, window and prefix_len set which key
        blocks each query block visits; block/stride are applied as a mask (exact,
        but without block skipping: kernel="block_sparse" skips them).
      bias_fn: optional `bias_fn(q_pos_T, k_pos_S) -> bias [N|1, T, S]` evaluated per
        block (ALiBi, T5 relative bias); its closed-over float arrays get gradients.
      scale: logit scale, default 1/sqrt(H).
      q_offset: position of the first query (decoding with a cache); may be traced.
      kv_lengths_B: optional valid key lengths per batch row (key padding).
      params: unused (uniform kernel signature).
      block_q: query rows per block (clipped to T rounded up to 8).
      block_k: key columns per block (clipped to S rounded up to 8).

    Returns:
      out [B, T, N, H] in q's dtype; rows with no visible key are zero.
    """
    del params
    return flash_attention(
        q_BTNH,
        k_BSKH,
        v_BSKH,
        spec=_as_spec(spec),
        bias_fn=bias_fn,
        scale=scale,
        q_offset=q_offset,
        kv_lengths_B=kv_lengths_B,
        block_q=block_q,
        block_k=block_k,
    )


def _as_spec(spec):
    """None -> the empty MaskSpec."""
    return MaskSpec() if spec is None else spec

"""Attention kernels by registry key: one signature, many algorithms.

Dimension key: B batch, T query length, S key length, N query heads, K kv heads,
H head dim (see attn_jax/ops/attention.py).

Every kernel is called as

    fn(q_BTNH, k_BSKH, v_BSKH, *, spec: MaskSpec, bias_fn=None, scale=None,
       q_offset=0, kv_lengths_B=None, params=None, **options) -> out_BTNH

so a model switches algorithm with one config field (`kernel`). Exact kernels
("xla", "blockwise", "local", "block_sparse", "auto"/"cudnn") agree with dense
softmax attention under `spec.dense(T, S, q_offset)`; approximate ones
("linear", "performer", "linformer") say in their docstrings what they
approximate and which masks they accept (others raise ValueError).

| key          | time       | memory (fwd+bwd) | masks                               |
|--------------|------------|------------------|-------------------------------------|
| xla          | O(T S)     | O(T S)           | any MaskSpec, bias_fn               |
| blockwise    | O(T S)*    | O(T + S)         | any (*skips blocks outside causal/window) |
| local        | O(T w)     | O(T w)           | needs spec.window                   |
| block_sparse | O(T (b s + T / s)) | O(T + S) | needs spec.block and/or spec.stride |
| linear       | O(T H^2)   | O(T H^2 / C)     | none or causal                      |
| performer    | O(T M H)   | O(T M H / C)     | none or causal                      |
| linformer    | O(T R)     | O(T R)           | none (non-causal by construction)   |
| auto, cudnn  | backend dispatch: cuDNN on NVIDIA GPU, Pallas flash on TPU, blockwise on CPU |
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import jax.numpy as jnp

from attn_jax.ops import block_sparse, blockwise, dispatch, linear, linformer, local, performer
from attn_jax.ops.attention import apply_dropout, dot_product_attention, masked_softmax
from attn_jax.ops.masks import MaskSpec, combine_masks, expand_key_mask, padding_mask


def dense_bias(bias_fn, T: int, S: int, q_offset=0):
    """Evaluate bias_fn on all positions: bias [1, N|1, T, S] (float32), or None."""
    if bias_fn is None:
        return None
    q_pos_T = jnp.asarray(q_offset, jnp.int32) + jnp.arange(T, dtype=jnp.int32)
    bias = jnp.asarray(bias_fn(q_pos_T, jnp.arange(S, dtype=jnp.int32)), jnp.float32)
    return bias.reshape((1,) * (4 - bias.ndim) + bias.shape)


def dense_mask(spec, T: int, S: int, q_offset=0, kv_lengths_B=None, mask=None):
    """The dense bool mask (rank 4, or None = attend everywhere) of a kernel call.

    The AND of `spec.dense(T, S, q_offset)`, key padding from `kv_lengths_B` and an
    extra `mask` broadcastable to [B,N,T,S].
    """
    spec = MaskSpec() if spec is None else spec
    spec_TS = None if spec.is_full and not spec.prefix_len else spec.dense(T, S, q_offset)
    valid_B11S = None if kv_lengths_B is None else expand_key_mask(padding_mask(kv_lengths_B, S))
    combined = combine_masks(spec_TS, mask, valid_B11S)
    return (
        None if combined is None else combined.reshape((1,) * (4 - combined.ndim) + combined.shape)
    )


# The scores every kernel computes (q.k, scaled by `scale` or 1/sqrt(H)); the
# parameterized ones (attn_jax.ops.scores) only the dense "xla" kernel takes.
KERNEL_SCORES = ("scaled_dot", "dot")

# Layouts of the "xla" kernel's dot-product scores. XLA:CPU wraps token-major
# batched dots in transposes of q, k, v and the [B,N,T,S] weights (5-D ones for
# GQA); heads-major operands make both dots plain batched matmuls.
# `benchmarks/train_lm.py --compare`, reference LM shape (D 256, L 4, T 256,
# B 32), 3 interleaved rounds, 2026-12-02, 2-core CPU shared at load 6-11:
# heads-major 1.064x the token-major speed in process CPU time per step
# (1595 vs 1697 ms; per round 1.064, 1.067, 1.058, spread 0.009). Rerun on the
# quiet machine (load 1.8-2.0), 2026-12-02 03:17: 1.111x in wall time (1772 vs
# 1969 ms; per round 1.129, 1.079, 1.146) and 1.077x in CPU time, so it is the default.
# Parameterized scores stay token-major (their score functions are).
XLA_LAYOUTS = ("heads_major", "token_major")


def _heads_major(q_BTNH, k_BSKH, v_BSKH, *, mask, bias, scale, dropout_rate, dropout_rng):
    """(out_BTNH, weights_BNTS) of q.k attention with heads-major dots.

    Query head n reads kv head n // G: a group's G query heads fold into the
    query axis, [B,K,G,T,H] -> [B,K,X=G*T,H] (a free reshape), so MHA, GQA and
    MQA are the same rank-4 dots. Same maths as `dot_product_attention`.
    """
    B, T, N, H = q_BTNH.shape
    S, K, Hv = k_BSKH.shape[1], k_BSKH.shape[2], v_BSKH.shape[3]
    X = (N // K) * T
    q_BKXH = q_BTNH.swapaxes(1, 2).reshape(B, K, X, H)
    logits_BKXS = jnp.einsum(
        "BKXH,BKSH->BKXS", q_BKXH, k_BSKH.swapaxes(1, 2), preferred_element_type=jnp.float32
    )
    logits_BNTS = logits_BKXS.reshape(B, N, T, S) * jnp.asarray(scale, jnp.float32)
    if bias is not None:
        logits_BNTS = logits_BNTS + bias
    weights_BNTS = masked_softmax(logits_BNTS, mask)
    dropped_BNTS = apply_dropout(weights_BNTS, dropout_rate, dropout_rng)
    w_BKXS = dropped_BNTS.astype(v_BSKH.dtype).reshape(B, K, X, S)
    out_BKXH = jnp.einsum(
        "BKXS,BKSH->BKXH", w_BKXS, v_BSKH.swapaxes(1, 2), preferred_element_type=jnp.float32
    )
    out_BTNH = out_BKXH.reshape(B, N, T, Hv).swapaxes(1, 2).astype(v_BSKH.dtype)
    return out_BTNH, weights_BNTS


def xla_attention(
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
    mask=None,
    score="scaled_dot",
    score_params=None,
    dropout_rate: float = 0.0,
    dropout_rng=None,
    return_weights: bool = False,
    layout: str = "heads_major",
):
    """Dense softmax attention under `spec.dense` and the full bias.

    O(T S) memory; the one every other exact kernel is tested against, and the
    `Attention` layer's default. Beyond the common signature it takes what only a
    dense kernel can: an extra bool `mask` broadcastable to [B,N,T,S], a
    parameterized `score` with its `score_params`, attention dropout
    (`dropout_rate`, `dropout_rng`) and `return_weights` (then it returns
    (out_BTNH, weights_BNTS), the float32 weights before dropout). `layout`
    (a key of XLA_LAYOUTS) picks how the "dot" and "scaled_dot" scores are
    computed; "token_major" is `ops.attention.dot_product_attention` itself.
    """
    del params
    if layout not in XLA_LAYOUTS:
        raise ValueError(f"Unknown xla layout {layout!r}; valid: {', '.join(XLA_LAYOUTS)}.")
    T, S = q_BTNH.shape[1], k_BSKH.shape[1]
    mask = dense_mask(spec, T, S, q_offset, kv_lengths_B, mask)
    bias = dense_bias(bias_fn, T, S, q_offset)
    if layout == "heads_major" and score in KERNEL_SCORES:
        if scale is None:
            scale = q_BTNH.shape[-1] ** -0.5 if score == "scaled_dot" else 1.0
        out_BTNH, weights_BNTS = _heads_major(
            q_BTNH,
            k_BSKH,
            v_BSKH,
            mask=mask,
            bias=bias,
            scale=scale,
            dropout_rate=dropout_rate,
            dropout_rng=dropout_rng,
        )
        return (out_BTNH, weights_BNTS) if return_weights else out_BTNH
    return dot_product_attention(
        q_BTNH,
        k_BSKH,
        v_BSKH,
        mask=mask,
        bias=bias,
        scale=scale,
        score=score,
        score_params=score_params,
        dropout_rate=dropout_rate,
        dropout_rng=dropout_rng,
        return_weights=return_weights,
    )


KERNELS: dict[str, Callable] = {
    "xla": xla_attention,
    "blockwise": blockwise.blockwise_attention,
    "local": local.local_attention,
    "block_sparse": block_sparse.block_sparse_attention,
    "linear": linear.linear_attention,
    "performer": performer.performer_attention,
    "linformer": linformer.linformer_attention,
    "auto": dispatch.auto_attention,
    "cudnn": dispatch.auto_attention,
}

EXACT_KERNELS = ("xla", "blockwise", "local", "block_sparse", "auto", "cudnn")


def get_kernel(name: str) -> Callable:
    """The kernel registered under `name`; ValueError naming the valid keys otherwise."""
    try:
        return KERNELS[name]
    except KeyError:
        raise ValueError(
            f"unknown attention kernel {name!r}; valid kernels: {sorted(KERNELS)}"
        ) from None


def init_kernel_params(name: str, key, *, head_dim: int, max_len: int | None = None, **options):
    """Extra parameters a kernel needs (passed back as `params=`), or None.

    Args:
      name: kernel key.
      key: PRNG key.
      head_dim: H.
      max_len: longest key length S the kernel will see (Linformer's projections).
      **options: kernel-specific, e.g. `num_features` (Performer, M),
        `proj_len` (Linformer, R), `init` (Linformer: "pool" or "gaussian");
        options the kernel's init does not take are ignored.

    Returns:
      A dict of arrays, or None for kernels without parameters.
    """
    get_kernel(name)

    def accepted(fn):
        names = inspect.signature(fn).parameters
        return {k: v for k, v in options.items() if k in names}

    if name == "performer":
        return performer.init_params(key, head_dim, **accepted(performer.init_params))
    if name == "linformer":
        if max_len is None:
            raise ValueError("linformer needs max_len (the longest key length) for its projections")
        return linformer.init_params(key, max_len, **accepted(linformer.init_params))
    return None

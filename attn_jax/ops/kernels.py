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
from attn_jax.ops.attention import dot_product_attention
from attn_jax.ops.masks import MaskSpec


def dense_bias(bias_fn, T: int, S: int, q_offset=0):
    """Evaluate bias_fn on all positions: bias [1, N|1, T, S] (float32), or None."""
    if bias_fn is None:
        return None
    q_pos_T = jnp.asarray(q_offset, jnp.int32) + jnp.arange(T, dtype=jnp.int32)
    bias = jnp.asarray(bias_fn(q_pos_T, jnp.arange(S, dtype=jnp.int32)), jnp.float32)
    return bias.reshape((1,) * (4 - bias.ndim) + bias.shape)


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
):
    """Dense reference kernel: `dot_product_attention` with `spec.dense` and the full bias.

    O(T S) memory; the one every other exact kernel is tested against.
    """
    del params
    spec = MaskSpec() if spec is None else spec
    T, S = q_BTNH.shape[1], k_BSKH.shape[1]
    mask = None if spec.is_full and not spec.prefix_len else spec.dense(T, S, q_offset)[None, None]
    if kv_lengths_B is not None:
        valid_B11S = (
            jnp.arange(S, dtype=jnp.int32)[None, :] < jnp.asarray(kv_lengths_B, jnp.int32)[:, None]
        )[:, None, None, :]
        mask = valid_B11S if mask is None else mask & valid_B11S
    return dot_product_attention(
        q_BTNH,
        k_BSKH,
        v_BSKH,
        mask=mask,
        bias=dense_bias(bias_fn, T, S, q_offset),
        scale=scale,
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

"""Backend dispatch for exact attention: the fastest exact kernel each backend has.

Dimension key: B batch, T query length, S key length, N query heads, K kv heads,
H head dim.

- NVIDIA GPU: `jax.nn.dot_product_attention(implementation="cudnn")` (cuDNN's
  fused flash attention) when its constraints hold: float16/bfloat16, H <= 128
  and a multiple of 8, no strided/prefix mask, queries starting at position 0.
- TPU: the Pallas TPU flash kernel shipped with JAX
  (`jax.experimental.pallas.ops.tpu.flash_attention`) when T and S are
  multiples of 128, there is no window/prefix/strided mask, no key padding and
  queries start at position 0.
- Everything else (CPU, or a case a fused kernel does not cover): the blockwise
  kernel compiled by XLA (ops/blockwise.py), with the reason logged once.

`choose_implementation` is a pure function of shapes and flags, so the decision
is testable on a CPU-only machine.
"""

from __future__ import annotations

import functools
import logging

import jax
import jax.numpy as jnp

from attn_jax.ops.blockwise import blockwise_attention

logger = logging.getLogger(__name__)

_GPU_PLATFORMS = ("gpu", "cuda")


def choose_implementation(
    platform: str,
    *,
    dtype,
    T: int,
    S: int,
    head_dim: int,
    spec,
    has_bias: bool = False,
    has_kv_lengths: bool = False,
    q_offset_is_zero: bool = True,
) -> tuple[str, str]:
    """Pick "cudnn", "pallas_tpu" or "blockwise" for one call.

    Returns:
      (implementation, reason): the reason says why a fused kernel was or was not used.
    """
    strided = spec is not None and (spec.block is not None or spec.stride is not None)
    prefix = spec is not None and bool(spec.prefix_len)
    window = spec is not None and spec.window is not None
    if platform in _GPU_PLATFORMS:
        if jnp.dtype(dtype) not in (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16)):
            return "blockwise", f"cuDNN attention needs float16/bfloat16, got {jnp.dtype(dtype)}"
        if head_dim > 128 or head_dim % 8:
            return (
                "blockwise",
                f"cuDNN attention needs head_dim <= 128 and % 8 == 0, got {head_dim}",
            )
        if strided or prefix:
            return "blockwise", "cuDNN attention has no strided or prefix-LM mask"
        if not q_offset_is_zero:
            return "blockwise", "cuDNN causal mask assumes queries start at position 0"
        return "cudnn", "cuDNN fused attention applies"
    if platform == "tpu":
        if T % 128 or S % 128:
            return "blockwise", f"Pallas TPU flash needs T, S multiples of 128, got {T}, {S}"
        if strided or prefix or window:
            return "blockwise", "Pallas TPU flash has no window, prefix-LM or strided mask"
        if has_kv_lengths:
            return "blockwise", "Pallas TPU flash path here takes no key lengths"
        if not q_offset_is_zero:
            return "blockwise", "Pallas TPU flash causal mask assumes queries start at 0"
        return "pallas_tpu", "Pallas TPU flash attention applies"
    return "blockwise", f"XLA blockwise kernel on {platform}"


@functools.lru_cache(maxsize=64)
def _log_once(impl: str, reason: str) -> None:
    log = logger.info if impl != "blockwise" else logger.debug
    log("attention dispatch: %s (%s)", impl, reason)


def _dense_bias(bias_fn, T, S, B, N):
    """bias_fn on all positions, as [B, N, T, S] for the fused kernels."""
    bias = jnp.asarray(bias_fn(jnp.arange(T), jnp.arange(S)), jnp.float32)
    bias = bias.reshape((1,) * (3 - bias.ndim) + bias.shape)
    return jnp.broadcast_to(bias[None], (B, N, T, S))


def _cudnn(q, k, v, *, spec, bias_fn, scale, kv_lengths_B):
    B, T, N, _ = q.shape
    S = k.shape[1]
    causal = spec is not None and spec.causal
    window = None
    if spec is not None and spec.window is not None:
        window = (spec.window - 1, 0 if causal else spec.window - 1)
    bias = None if bias_fn is None else _dense_bias(bias_fn, T, S, B, N).astype(q.dtype)
    return jax.nn.dot_product_attention(
        q,
        k,
        v,
        bias=bias,
        scale=scale,
        is_causal=causal,
        key_value_seq_lengths=kv_lengths_B,
        local_window_size=window,
        implementation="cudnn",
    )


def _pallas_tpu(q, k, v, *, spec, bias_fn, scale):
    from jax.experimental.pallas.ops.tpu import flash_attention as pallas_flash

    B, T, N, H = q.shape
    S, K = k.shape[1], k.shape[2]
    # The Pallas kernel wants [B, N, T, H] and one kv head per query head.
    k = jnp.repeat(k, N // K, axis=2).transpose(0, 2, 1, 3)
    v = jnp.repeat(v, N // K, axis=2).transpose(0, 2, 1, 3)
    ab = None if bias_fn is None else _dense_bias(bias_fn, T, S, B, N)
    out = pallas_flash.flash_attention(
        q.transpose(0, 2, 1, 3),
        k,
        v,
        ab=ab,
        causal=spec is not None and spec.causal,
        sm_scale=H**-0.5 if scale is None else scale,
    )
    return out.transpose(0, 2, 1, 3)


def auto_attention(
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
    platform: str | None = None,
):
    """Exact attention on the best kernel for the backend (see module docstring).

    Args are those of every kernel (ops/kernels.py); `platform` overrides
    `jax.default_backend()` (for tests).
    """
    del params
    platform = platform or jax.default_backend()
    B, T, N, H = q_BTNH.shape
    impl, reason = choose_implementation(
        platform,
        dtype=q_BTNH.dtype,
        T=T,
        S=k_BSKH.shape[1],
        head_dim=H,
        spec=spec,
        has_bias=bias_fn is not None,
        has_kv_lengths=kv_lengths_B is not None,
        q_offset_is_zero=isinstance(q_offset, int) and q_offset == 0,
    )
    _log_once(impl, reason)
    if impl == "cudnn":
        return _cudnn(
            q_BTNH,
            k_BSKH,
            v_BSKH,
            spec=spec,
            bias_fn=bias_fn,
            scale=scale,
            kv_lengths_B=kv_lengths_B,
        )
    if impl == "pallas_tpu":
        return _pallas_tpu(q_BTNH, k_BSKH, v_BSKH, spec=spec, bias_fn=bias_fn, scale=scale)
    return blockwise_attention(
        q_BTNH,
        k_BSKH,
        v_BSKH,
        spec=spec,
        bias_fn=bias_fn,
        scale=scale,
        q_offset=q_offset,
        kv_lengths_B=kv_lengths_B,
    )

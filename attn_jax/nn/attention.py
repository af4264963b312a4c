"""Multi-head attention layer: self or cross, MHA/GQA/MQA, any score, position and kernel.

Dimension key: B batch, T query length, S key/value length, D model width,
N query heads, K key/value heads (G = N/K per group), H head dim, M = N + 2K
fused projection heads.

Self-attention projects q, k and v with one fused einsum "BTD,DMH->BTMH" (one
matmul instead of three; shared/PERFORMANCE.md). Relative position schemes are
applied here: RoPE rotates q and k (Su et al. 2021); ALiBi (Press et al. 2022)
and the T5 bias (Raffel et al. 2020) are `bias_fn(q_pos_T, k_pos_S)` callables,
so blockwise kernels evaluate them per block. Absolute positions live in `Embed`.

Every call goes through `attn_jax.ops.kernels.KERNELS[kernel]`, "xla" (dense
softmax attention, the default) included; a KV cache is the keys written so far
(passed as `kv_lengths_B`), cross-attention a different source of k and v.
"xla" alone also takes the dense-only options: an extra `mask`, parameterized
scores, attention dropout and `return_weights`; other kernels raise a ValueError
naming the option when given one.

`CAPTURE` is an inference-time hook for attn_jax.interp.capture: None (the
default) adds nothing to the traced computation; set, it is called with this
layer's q, k, v and output after the kernel, so the attention weights can be
recomputed densely for the heads asked while the kernel's output stays as it is.
"""

from __future__ import annotations

import contextvars
import inspect

import jax
import jax.numpy as jnp
from flax import nnx

from attn_jax.ops import kernels as kernel_ops
from attn_jax.ops import kv_cache as kv_ops
from attn_jax.ops import positions as pos_ops
from attn_jax.ops.masks import MaskSpec
from attn_jax.ops.scores import SCORES, init_score_params

POSITIONS = ("none", "rope", "alibi", "relative")
# Options consumed when a kernel's state is initialized (the rest go to the call).
_KERNEL_INIT_OPTIONS = ("num_features", "proj_len", "init")
# Kernels whose state is fixed, not trained (Performer's random features).
_FIXED_KERNEL_STATE = ("performer",)


# Read at trace time: None traces exactly the layer without capture (attn_jax.interp).
CAPTURE: contextvars.ContextVar = contextvars.ContextVar("attn_jax_capture", default=None)


class KernelState(nnx.Variable):
    """Non-trainable kernel state (e.g. Performer random features): not an nnx.Param."""


def kernel_names() -> list[str]:
    """Valid kernel keys: those of `attn_jax.ops.kernels.KERNELS`."""
    return sorted(kernel_ops.KERNELS)


def _check_choices(N, K, *, score, position, kernel, cross, causal) -> None:
    """Raises at construction, naming the valid keys, for a choice no registry serves."""
    if N % K:
        raise ValueError(f"num_heads={N} must be a multiple of num_kv_heads={K}.")
    if score not in SCORES:
        raise ValueError(f"Unknown attention score {score!r}; valid scores: {sorted(SCORES)}.")
    if position not in POSITIONS:
        raise ValueError(f"Unknown attention position {position!r}; valid: {list(POSITIONS)}.")
    if cross and (causal or position != "none"):
        raise ValueError("Cross-attention takes no causal mask and no relative positions.")
    if kernel not in kernel_ops.KERNELS:
        raise ValueError(f"Unknown attention kernel {kernel!r}; valid kernels: {kernel_names()}.")
    if kernel != "xla" and score not in kernel_ops.KERNEL_SCORES:
        raise ValueError(
            f"Kernel {kernel!r} supports scores 'scaled_dot' and 'dot' only; "
            f"score={score!r} needs kernel='xla'."
        )


class Attention(nnx.Module):
    """Softmax attention with N query heads over K key/value heads.

    Args:
      d_model: D, input and output width.
      num_heads: N query heads.
      num_kv_heads: K key/value heads (0 = N: MHA; 1: MQA, Shazeer 2019; else GQA,
        Ainslie et al. 2023); N must be a multiple of K.
      head_dim: H (0 = D // N).
      cross: cross-attention (queries from x, keys/values from `context_BSD`).
      causal: autoregressive mask (self-attention only).
      window: sliding-window size (0 = none).
      sparse_block: block size of a Sparse-Transformer pattern (`MaskSpec.block`; 0 = none).
      sparse_stride: stride in blocks of that pattern (`MaskSpec.stride`; 0 = none).
      score: a key of `ops.scores.SCORES`.
      position: "none", "rope", "alibi" or "relative" (T5 buckets).
      kernel: a key of `ops.kernels.KERNELS`; unknown keys raise here.
      kernel_options: extra keyword arguments for the kernel (and its state init:
        num_features, proj_len, init).
      max_len: longest key length (Linformer's projection size); 0 = unknown.
      rope_base: RoPE frequency base.
      relative_buckets: R, buckets of the T5 bias table.
      relative_max_distance: distance at which the T5 buckets stop growing.
      attn_dropout: dropout rate on the attention weights ("xla" kernel only).
      out_init_scale: multiplies the output projection's init std.
      bias: zero-initialized biases on the projections: b_qkv [M, H] (self) or b_q
        [N, H] and b_kv [2K, H] (cross), and b_out [D] (GPT-2, BERT, ViT have them).
      dtype: compute dtype (params stay float32); None = the input's.
      rngs: NNX rngs.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        *,
        num_kv_heads: int = 0,
        head_dim: int = 0,
        cross: bool = False,
        causal: bool = False,
        window: int = 0,
        sparse_block: int = 0,
        sparse_stride: int = 0,
        score: str = "scaled_dot",
        position: str = "none",
        kernel: str = "xla",
        kernel_options: dict | None = None,
        max_len: int = 0,
        rope_base: float = 1e4,
        relative_buckets: int = 32,
        relative_max_distance: int = 128,
        attn_dropout: float = 0.0,
        out_init_scale: float = 1.0,
        bias: bool = False,
        dtype=None,
        rngs: nnx.Rngs,
    ):
        N, K = num_heads, num_kv_heads or num_heads
        H = head_dim or d_model // num_heads
        _check_choices(
            N, K, score=score, position=position, kernel=kernel, cross=cross, causal=causal
        )
        self.d_model, self.num_heads, self.num_kv_heads, self.head_dim = d_model, N, K, H
        self.cross, self.score, self.position, self.kernel = cross, score, position, kernel
        # A sorted tuple, not a dict: static module attributes must be hashable for jit.
        self.kernel_options = tuple(sorted((kernel_options or {}).items()))
        self.spec = MaskSpec(
            causal=causal,
            window=window or None,
            block=sparse_block or None,
            stride=sparse_stride or None,
        )
        self.rope_base = rope_base
        self.relative_max_distance = relative_max_distance
        self.attn_dropout = attn_dropout
        self.dtype = dtype

        normal = jax.nn.initializers.normal
        in_init = normal(d_model**-0.5)
        if cross:
            self.w_q = nnx.Param(in_init(rngs.params(), (d_model, N, H), jnp.float32))
            self.w_kv = nnx.Param(in_init(rngs.params(), (d_model, 2 * K, H), jnp.float32))
        else:
            self.w_qkv = nnx.Param(in_init(rngs.params(), (d_model, N + 2 * K, H), jnp.float32))
        self.w_out = nnx.Param(
            normal(out_init_scale * (N * H) ** -0.5)(rngs.params(), (N, H, d_model), jnp.float32)
        )

        def zeros(*shape):  # a zero-initialized bias, or none without `bias`
            return nnx.Param(jnp.zeros(shape, jnp.float32)) if bias else None

        self.b_q, self.b_kv = (zeros(N, H), zeros(2 * K, H)) if cross else (None, None)
        self.b_qkv = None if cross else zeros(N + 2 * K, H)
        self.b_out = zeros(d_model)
        self.score_params = nnx.Dict(
            {
                k: nnx.Param(v)
                for k, v in init_score_params(score, rngs.params(), H, num_heads=N).items()
            }
        )
        self.rel_table = (
            nnx.Param(pos_ops.init_t5_table(rngs.params(), relative_buckets, N))
            if position == "relative"
            else None
        )
        self.kernel_params = self._init_kernel_params(kernel, rngs, max_len)

    def _init_kernel_params(self, kernel: str, rngs: nnx.Rngs, max_len: int):
        """Kernel state: learned (Linformer projections) as Param, fixed (Performer) not."""
        options = {k: v for k, v in self.kernel_options if k in _KERNEL_INIT_OPTIONS}
        params = kernel_ops.init_kernel_params(
            kernel, rngs.params(), head_dim=self.head_dim, max_len=max_len or None, **options
        )
        if not params:
            return None
        var = KernelState if kernel in _FIXED_KERNEL_STATE else nnx.Param
        return nnx.Dict({k: var(v) for k, v in params.items()})

    def _cast(self, w, dtype):
        return w[...].astype(dtype)

    def _biased(self, y_BTMH, b, dtype):
        """y + b broadcast over batch and time (y_BTMH + b_MH, or y_BTD + b_D) when the
        layer has that bias (`bias=True`), else y."""
        return y_BTMH if b is None else y_BTMH + self._cast(b, dtype)[None, None]

    def project_kv(self, context_BSD: jnp.ndarray):
        """Cross-attention keys and values (k_BSKH, v_BSKH) of the context."""
        dtype = self.dtype or context_BSD.dtype
        kv_BSMH = jnp.einsum(
            "BSD,DMH->BSMH", context_BSD.astype(dtype), self._cast(self.w_kv, dtype)
        )
        kv_BSMH = self._biased(kv_BSMH, self.b_kv, dtype)
        return kv_BSMH[:, :, : self.num_kv_heads], kv_BSMH[:, :, self.num_kv_heads :]

    def init_cache(self, batch_size: int, max_len: int, dtype=jnp.float32) -> kv_ops.KVCache:
        """An empty self-attention KV cache of `max_len` positions."""
        return kv_ops.init_cache(batch_size, max_len, self.num_kv_heads, self.head_dim, dtype)

    def init_cross_cache(self, context_BSD: jnp.ndarray) -> kv_ops.KVCache:
        """Projects the encoder output once; pass the result as `cache=` at every step."""
        return kv_ops.cross_cache(*self.project_kv(context_BSD))

    def _bias_fn(self):
        if self.position == "alibi":
            return pos_ops.alibi_bias_fn(pos_ops.alibi_slopes(self.num_heads))
        if self.position == "relative":
            return pos_ops.t5_bias_fn(
                self.rel_table[...], not self.spec.causal, self.relative_max_distance
            )
        return None

    def _self_qkv(self, x_BTD, positions_BT, cache, dtype):
        """Self-attention q, k, v (RoPE applied; keys written to `cache` when given).

        Returns (q_BTNH, k_BSKH, v_BSKH, q_offset, new_cache, cache_len): the
        queries' first position and, when decoding, how many cache slots are valid.
        """
        T, N, K = x_BTD.shape[1], self.num_heads, self.num_kv_heads
        # One fused projection, token-major: a plain [B*T, D] x [D, M*H] matmul.
        qkv_BTMH = jnp.einsum("BTD,DMH->BTMH", x_BTD, self._cast(self.w_qkv, dtype))
        qkv_BTMH = self._biased(qkv_BTMH, self.b_qkv, dtype)
        q_BTNH, k_BSKH, v_BSKH = jnp.split(qkv_BTMH, [N, N + K], axis=2)
        q_offset = 0 if cache is None else cache.index
        if self.position == "rope":
            if positions_BT is None:
                positions_BT = kv_ops.decode_positions(q_offset, T)[None, :]
            q_BTNH = pos_ops.apply_rope(q_BTNH, positions_BT, self.rope_base)
            k_BSKH = pos_ops.apply_rope(k_BSKH, positions_BT, self.rope_base)
        if cache is None:
            return q_BTNH, k_BSKH, v_BSKH, q_offset, None, None
        new_cache = kv_ops.update_cache(cache, k_BSKH, v_BSKH)
        k_BSKH, v_BSKH = new_cache.k_BSKH.astype(dtype), new_cache.v_BSKH.astype(dtype)
        return q_BTNH, k_BSKH, v_BSKH, q_offset, new_cache, q_offset + T

    def _cross_qkv(self, x_BTD, context_BSD, cache, dtype):
        """Cross-attention q, k, v: keys and values from the context or a cross cache."""
        q_BTNH = jnp.einsum("BTD,DNH->BTNH", x_BTD, self._cast(self.w_q, dtype))
        q_BTNH = self._biased(q_BTNH, self.b_q, dtype)
        if cache is not None:
            return q_BTNH, cache.k_BSKH.astype(dtype), cache.v_BSKH.astype(dtype)
        if context_BSD is None:
            raise ValueError("Cross-attention needs context_BSD or a cross cache.")
        return (q_BTNH, *self.project_kv(context_BSD))

    def _kernel_kwargs(self, mask, rate, dropout_rng, return_weights) -> dict:
        """The kernel call's options: this kernel's, plus the dense-only extras in use.

        Extras (an extra mask, attention dropout, returned weights, a parameterized
        score) are passed only when used, so a kernel that lacks one fails here,
        before tracing, with the fix in the message.
        """
        fn = kernel_ops.get_kernel(self.kernel)
        accepted = inspect.signature(fn).parameters
        kwargs = {k: v for k, v in self.kernel_options if k in accepted}
        if self.kernel_params:
            kwargs["params"] = {k: v[...] for k, v in self.kernel_params.items()}
        extras = {}
        if mask is not None:
            extras["mask"] = mask
        if rate > 0.0:
            extras.update(dropout_rate=rate, dropout_rng=dropout_rng)
        if return_weights:
            extras["return_weights"] = True
        if self.score not in kernel_ops.KERNEL_SCORES:
            extras["score"] = self.score
            extras["score_params"] = {k: v[...] for k, v in self.score_params.items()}
        missing = [k for k in extras if k not in accepted]
        if missing:
            raise ValueError(
                f"Kernel {self.kernel!r} takes no {', '.join(missing)} (a dense mask, attention "
                "dropout, return_weights or a parameterized score); use kernel='xla' "
                "(padding: pass kv_lengths_B)."
            )
        return {**kwargs, **extras}

    def __call__(
        self,
        x_BTD: jnp.ndarray,
        context_BSD: jnp.ndarray | None = None,
        *,
        mask: jnp.ndarray | None = None,
        kv_lengths_B: jnp.ndarray | None = None,
        positions_BT: jnp.ndarray | None = None,
        cache: kv_ops.KVCache | None = None,
        deterministic: bool = True,
        dropout_rng: jax.Array | None = None,
        return_weights: bool = False,
    ):
        """Attends from x_BTD to itself (or to `context_BSD` / a cross cache).

        Args:
          x_BTD: queries' input.
          context_BSD: keys' and values' input for cross-attention.
          mask: extra bool mask broadcastable to [B,N,T,S], True = may attend
            ("xla" kernel only; other kernels take `kv_lengths_B`).
          kv_lengths_B: int[B] valid (leading) keys per example, for padding.
          positions_BT: int positions for RoPE (default: cache index + arange(T)).
          cache: self-attention: a KVCache to write this step's keys into (decode);
            cross-attention: the cache from `init_cross_cache` (context unused).
          deterministic: no attention dropout when True.
          dropout_rng: PRNG key for attention dropout.
          return_weights: also return the softmax weights_BNTS ("xla" kernel only).

        Returns:
          out_BTD, or a tuple (out_BTD, new_cache) when `cache` is given,
          (out_BTD, weights_BNTS) with `return_weights`, (out_BTD, new_cache,
          weights_BNTS) with both.
        """
        dtype = self.dtype or x_BTD.dtype
        x_BTD = x_BTD.astype(dtype)
        if self.cross:
            q_BTNH, k_BSKH, v_BSKH = self._cross_qkv(x_BTD, context_BSD, cache, dtype)
            q_offset, new_cache, cache_len = 0, cache, None
        elif context_BSD is not None:
            raise ValueError("Self-attention got context_BSD; build it with cross=True.")
        else:
            q_BTNH, k_BSKH, v_BSKH, q_offset, new_cache, cache_len = self._self_qkv(
                x_BTD, positions_BT, cache, dtype
            )
        if cache_len is not None:  # decoding: only the cache slots written so far
            cache_len_B = jnp.full((x_BTD.shape[0],), cache_len, jnp.int32)
            kv_lengths_B = (
                cache_len_B if kv_lengths_B is None else jnp.minimum(kv_lengths_B, cache_len_B)
            )
        rate = 0.0 if deterministic else self.attn_dropout
        result = kernel_ops.get_kernel(self.kernel)(
            q_BTNH,
            k_BSKH,
            v_BSKH,
            spec=self.spec,
            bias_fn=self._bias_fn(),
            scale=1.0 if self.score == "dot" else None,
            q_offset=q_offset,
            kv_lengths_B=kv_lengths_B,
            **self._kernel_kwargs(mask, rate, dropout_rng, return_weights),
        )
        out_BTNH, weights_BNTS = result if return_weights else (result, None)
        hook = CAPTURE.get()
        if hook is not None:  # inference-time capture only (attn_jax.interp.capture)
            hook(
                self,
                q_BTNH=q_BTNH,
                k_BSKH=k_BSKH,
                v_BSKH=v_BSKH,
                out_BTNH=out_BTNH,
                q_offset=q_offset,
                kv_lengths_B=kv_lengths_B,
                mask=mask,
            )
        out_BTD = jnp.einsum("BTNH,NHD->BTD", out_BTNH.astype(dtype), self._cast(self.w_out, dtype))
        out_BTD = self._biased(out_BTD, self.b_out, dtype)
        extras = (new_cache,) if cache is not None else ()
        if return_weights:
            extras += (weights_BNTS,)
        return (out_BTD, *extras) if extras else out_BTD

"""Transformer block: attention and MLP sublayers with residuals, pre- or post-norm.

Post-norm is the original Transformer (Vaswani et al. 2017): x = Norm(x + f(x)).
Pre-norm (Xiong et al. 2020; GPT-2) normalizes each sublayer's input,
x = x + f(Norm(x)), and needs a final norm after the last block (the model's job).
An optional cross-attention sublayer between them makes the decoder block of an
encoder-decoder model.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from attn_jax.nn.attention import Attention
from attn_jax.nn.mlp import MLP
from attn_jax.nn.norm import Norm

NORM_PLACEMENTS = ("pre", "post")


def dropout(x, rate: float, rng, deterministic: bool):
    """Inverted dropout with an explicit key (a no-op when deterministic or rate == 0)."""
    if deterministic or rate <= 0.0:
        return x
    if rng is None:
        raise ValueError("Dropout is on (deterministic=False, rate > 0) but no dropout_rng given.")
    keep = jax.random.bernoulli(rng, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


class Block(nnx.Module):
    """Self-attention (+ optional cross-attention) + MLP, each with a residual.

    Args:
      d_model: D.
      num_heads: N.
      d_ff: F.
      norm: "pre" or "post".
      norm_type: "layernorm" or "rmsnorm".
      dropout: residual dropout rate (on each sublayer's output).
      cross_attention: add a cross-attention sublayer (encoder-decoder decoders).
      rngs: NNX rngs.
      dtype: compute dtype; None = the input's.
      out_init_scale: init scale of the residual output projections (e.g. 1/sqrt(2L)).
      norm_eps: the norms' epsilon (GPT-2: 1e-5, BERT/ViT: 1e-12).
      bias: biases on every projection (attention q/k/v and output, MLP fc and proj).
      activation: the MLP's GELU, "gelu_tanh" or "gelu_erf" (`attn_jax.nn.mlp.ACTIVATIONS`).
      **attn_kwargs: passed to the self-`Attention` (num_kv_heads, head_dim, causal,
        window, score, position, kernel, attn_dropout, ...).
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        *,
        norm: str = "pre",
        norm_type: str = "layernorm",
        dropout: float = 0.0,
        cross_attention: bool = False,
        rngs: nnx.Rngs,
        dtype=None,
        out_init_scale: float = 1.0,
        norm_eps: float = 1e-6,
        bias: bool = False,
        activation: str = "gelu_tanh",
        **attn_kwargs,
    ):
        if norm not in NORM_PLACEMENTS:
            raise ValueError(f"Unknown norm placement {norm!r}; valid: {list(NORM_PLACEMENTS)}.")
        self.norm, self.dropout = norm, dropout
        self.attn_norm = Norm(d_model, norm_type, eps=norm_eps)
        self.attn = Attention(
            d_model,
            num_heads,
            rngs=rngs,
            dtype=dtype,
            out_init_scale=out_init_scale,
            bias=bias,
            **attn_kwargs,
        )
        cross_kwargs = {
            k: v
            for k, v in attn_kwargs.items()
            if k in ("num_kv_heads", "head_dim", "score", "kernel", "attn_dropout")
        }
        self.cross_norm = Norm(d_model, norm_type, eps=norm_eps) if cross_attention else None
        self.cross_attn = (
            Attention(
                d_model,
                num_heads,
                cross=True,
                rngs=rngs,
                dtype=dtype,
                out_init_scale=out_init_scale,
                bias=bias,
                **cross_kwargs,
            )
            if cross_attention
            else None
        )
        self.mlp_norm = Norm(d_model, norm_type, eps=norm_eps)
        self.mlp = MLP(
            d_model,
            d_ff,
            rngs=rngs,
            dtype=dtype,
            proj_init_scale=out_init_scale,
            bias=bias,
            activation=activation,
        )

    def _sublayer(self, x, norm, fn, rng, deterministic):
        """Residual around fn with this block's norm placement; fn may return (y, extra)."""
        out = fn(norm(x) if self.norm == "pre" else x)
        y, extra = out if isinstance(out, tuple) else (out, None)
        x = x + dropout(y, self.dropout, rng, deterministic)
        return (x if self.norm == "pre" else norm(x)), extra

    def __call__(
        self,
        x_BTD: jnp.ndarray,
        *,
        mask: jnp.ndarray | None = None,
        kv_lengths_B: jnp.ndarray | None = None,
        positions_BT: jnp.ndarray | None = None,
        cache=None,
        context_BSD: jnp.ndarray | None = None,
        context_mask: jnp.ndarray | None = None,
        context_lengths_B: jnp.ndarray | None = None,
        cross_cache=None,
        deterministic: bool = True,
        dropout_rng: jax.Array | None = None,
    ):
        """Applies the block.

        Args:
          x_BTD: input.
          mask: extra self-attention mask (broadcastable to [B,N,T,S]).
          kv_lengths_B: valid self-attention keys per example.
          positions_BT: positions for RoPE.
          cache: self-attention KVCache (decode); returned updated.
          context_BSD: encoder output for the cross-attention sublayer.
          context_mask: mask for cross-attention (e.g. encoder padding, B11S; "xla" only).
          context_lengths_B: valid (leading) context positions per example: the
            encoder padding for every kernel.
          cross_cache: a cross-attention cache (`attn.init_cross_cache`) instead of context.
          deterministic: no dropout when True.
          dropout_rng: PRNG key, split here over the sublayers.

        Returns:
          out_BTD, or (out_BTD, new_cache) when `cache` is given.
        """
        rngs = [None] * 6 if dropout_rng is None else list(jax.random.split(dropout_rng, 6))
        attn_kwargs = dict(
            mask=mask,
            kv_lengths_B=kv_lengths_B,
            positions_BT=positions_BT,
            cache=cache,
            deterministic=deterministic,
            dropout_rng=rngs[0],
        )
        x_BTD, new_cache = self._sublayer(
            x_BTD, self.attn_norm, lambda h: self.attn(h, **attn_kwargs), rngs[1], deterministic
        )
        if self.cross_attn is not None:
            cross_kwargs = dict(
                mask=context_mask,
                kv_lengths_B=context_lengths_B,
                cache=cross_cache,
                deterministic=deterministic,
                dropout_rng=rngs[2],
            )

            def cross(h):
                out = self.cross_attn(h, context_BSD, **cross_kwargs)
                return out[0] if cross_cache is not None else out

            x_BTD, _ = self._sublayer(x_BTD, self.cross_norm, cross, rngs[3], deterministic)
        x_BTD, _ = self._sublayer(x_BTD, self.mlp_norm, self.mlp, rngs[4], deterministic)
        return (x_BTD, new_cache) if cache is not None else x_BTD

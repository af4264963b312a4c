"""Normalization layers: LayerNorm (Ba et al. 2016) and RMSNorm (Zhang & Sennrich 2019).

Statistics are computed in float32 whatever the activation dtype, since bfloat16
sums of squares over D lose the small variances that normalization divides by.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

NORM_TYPES = ("layernorm", "rmsnorm")


class Norm(nnx.Module):
    """LayerNorm (scale and bias) or RMSNorm (scale only) over the last axis.

    Args:
      d_model: size of the normalized (last) axis, D.
      kind: "layernorm" or "rmsnorm".
      eps: added to the variance before the square root.
      dtype: output dtype; None keeps the input's.
    """

    def __init__(self, d_model: int, kind: str = "layernorm", *, eps: float = 1e-6, dtype=None):
        if kind not in NORM_TYPES:
            raise ValueError(f"Unknown norm type {kind!r}; valid: {', '.join(NORM_TYPES)}.")
        self.kind = kind
        self.eps = eps
        self.dtype = dtype
        self.scale = nnx.Param(jnp.ones((d_model,), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((d_model,), jnp.float32)) if kind == "layernorm" else None

    def __call__(self, x_BTD: jnp.ndarray) -> jnp.ndarray:
        x = x_BTD.astype(jnp.float32)
        if self.kind == "layernorm":
            x = x - jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
        lead = (1,) * (x.ndim - 1)  # explicit broadcast: rank promotion is an error here
        y = x * jax.lax.rsqrt(var + self.eps) * self.scale[...].reshape(*lead, -1)
        if self.bias is not None:
            y = y + self.bias[...].reshape(*lead, -1)
        return y.astype(self.dtype or x_BTD.dtype)

"""Position-wise feed-forward layer: fc -> GELU -> proj (Vaswani et al. 2017, sec. 3.3).

Plain composition, differentiated by autodiff. The custom-VJP version this file
used to hold (saving the pre-activation, contracting the token axis in both
weight-gradient dots) did not beat it: `benchmarks/train_lm.py --compare` at the
reference LM shape, 3 interleaved rounds, 2026-12-02, 2-core CPU at load 6-11:
1.000x in process CPU time per step (per round 1.000, 0.995, 1.002) and 0.99x
wall (spread 0.10); rerun at load 1.8-2.0 the same day: 1.004x wall (per round
1.031, 0.988, 0.988) and 0.983x CPU time; on 2026-12-01 it measured 0.93x. The
candidate lives on in that benchmark.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

# "gelu_tanh": Hendrycks & Gimpel's tanh approximation (GPT-2's "gelu_new"); "gelu_erf":
# the exact erf form (BERT's and ViT's "gelu").
ACTIVATIONS = {
    "gelu_tanh": functools.partial(jax.nn.gelu, approximate=True),
    "gelu_erf": functools.partial(jax.nn.gelu, approximate=False),
}


def gelu_mlp(x_MD: jnp.ndarray, w_fc_DF: jnp.ndarray, w_proj_FD: jnp.ndarray) -> jnp.ndarray:
    """`gelu(x @ w_fc) @ w_proj` over flattened tokens M (tanh-approximate GELU).

    Args:
      x_MD: inputs, tokens flattened to one axis M.
      w_fc_DF: first weight matrix.
      w_proj_FD: second weight matrix.

    Returns:
      y_MD.
    """
    return jax.nn.gelu(x_MD @ w_fc_DF, approximate=True) @ w_proj_FD


class MLP(nnx.Module):
    """fc (D->F) -> GELU -> proj (F->D), biases optional (none by default).

    Args:
      d_model: D.
      d_ff: F (4 D in the SIZES tables).
      rngs: NNX rngs; `rngs.params()` initializes the weights.
      dtype: compute dtype (params stay float32); None = float32.
      proj_init_scale: multiplies the proj init std (GPT-2 style 1/sqrt(2L) residual scaling).
      bias: add b_fc [F] and b_proj [D] (zero-initialized), as GPT-2, BERT and ViT do.
      activation: a key of `ACTIVATIONS` ("gelu_tanh", the default, or "gelu_erf").
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        *,
        rngs: nnx.Rngs,
        dtype=None,
        proj_init_scale: float = 1.0,
        bias: bool = False,
        activation: str = "gelu_tanh",
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {activation!r}; valid: {sorted(ACTIVATIONS)}.")
        self.dtype, self.activation = dtype, activation
        init = jax.nn.initializers.normal
        self.w_fc = nnx.Param(init(d_model**-0.5)(rngs.params(), (d_model, d_ff), jnp.float32))
        self.w_proj = nnx.Param(
            init(proj_init_scale * d_ff**-0.5)(rngs.params(), (d_ff, d_model), jnp.float32)
        )
        self.b_fc = nnx.Param(jnp.zeros((d_ff,), jnp.float32)) if bias else None
        self.b_proj = nnx.Param(jnp.zeros((d_model,), jnp.float32)) if bias else None

    def __call__(self, x_BTD: jnp.ndarray) -> jnp.ndarray:
        dtype = self.dtype or x_BTD.dtype
        *lead, d = x_BTD.shape
        w_fc, w_proj = self.w_fc[...].astype(dtype), self.w_proj[...].astype(dtype)
        x_MD = x_BTD.reshape(-1, d).astype(dtype)
        if self.b_fc is None and self.activation == "gelu_tanh":
            # gelu_mlp is looked up at call time: benchmarks/train_lm.py swaps in candidates.
            return gelu_mlp(x_MD, w_fc, w_proj).reshape(*lead, d)
        h_MF = x_MD @ w_fc
        if self.b_fc is not None:
            h_MF = h_MF + self.b_fc[...].astype(dtype)[None, :]
        y_MD = ACTIVATIONS[self.activation](h_MF) @ w_proj
        if self.b_proj is not None:
            y_MD = y_MD + self.b_proj[...].astype(dtype)[None, :]
        return y_MD.reshape(*lead, d)

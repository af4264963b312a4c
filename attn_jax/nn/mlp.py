"""Position-wise feed-forward layer: fc -> GELU -> proj (Vaswani et al. 2017, sec. 3.3).

fc, GELU and proj form one `jax.custom_vjp` (`gelu_mlp`). Autodiff of the plain
composition on XLA:CPU fused the GELU backward with a transposed [F, M] write of
the activation gradient for the weight-gradient dot (one 32 MB copy per layer at
the reference shape, 29% of the step; shared/PERFORMANCE.md). The custom backward
saves only the input and the pre-activation, recomputes GELU, and contracts the
token axis M directly in `dot_general` for both weight gradients, so no [F, M]
buffer is ever materialized.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715

# dot_general dimension numbers contracting axis 0 of both operands (the token axis M).
_CONTRACT_TOKENS = (((0,), (0,)), ((), ()))


def _gelu_and_grad(h):
    """tanh-approximate GELU (Hendrycks & Gimpel 2016) and its derivative."""
    u = _SQRT_2_OVER_PI * (h + _GELU_C * h * h * h)
    t = jnp.tanh(u)
    act = 0.5 * h * (1.0 + t)
    du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_C * h * h)
    grad = 0.5 * (1.0 + t) + 0.5 * h * (1.0 - t * t) * du
    return act, grad


def _gelu(h):
    return 0.5 * h * (1.0 + jnp.tanh(_SQRT_2_OVER_PI * (h + _GELU_C * h * h * h)))


@jax.custom_vjp
def gelu_mlp(x_MD: jnp.ndarray, w_fc_DF: jnp.ndarray, w_proj_FD: jnp.ndarray) -> jnp.ndarray:
    """`gelu(x @ w_fc) @ w_proj` over flattened tokens M, with a lean custom backward.

    Args:
      x_MD: inputs, tokens flattened to one axis M.
      w_fc_DF: first weight matrix.
      w_proj_FD: second weight matrix.

    Returns:
      y_MD, equal (to float rounding) to the autodiff composition, gradients included.
    """
    return _gelu(x_MD @ w_fc_DF) @ w_proj_FD


def _gelu_mlp_fwd(x_MD, w_fc_DF, w_proj_FD):
    h_MF = x_MD @ w_fc_DF
    y_MD = _gelu(h_MF) @ w_proj_FD
    return y_MD, (x_MD, h_MF, w_fc_DF, w_proj_FD)


def _gelu_mlp_bwd(res, dy_MD):
    x_MD, h_MF, w_fc_DF, w_proj_FD = res
    a_MF, da_dh_MF = _gelu_and_grad(h_MF)
    # Weight gradients contract the token axis in place; the [D, F] / [F, D] results
    # are small, so transposing them is cheap, unlike transposing [M, F].
    dw_proj_FD = jax.lax.dot_general(a_MF, dy_MD.astype(a_MF.dtype), _CONTRACT_TOKENS)
    dh_MF = (dy_MD @ w_proj_FD.T.astype(dy_MD.dtype)) * da_dh_MF
    dw_fc_DF = jax.lax.dot_general(dh_MF, x_MD, _CONTRACT_TOKENS).T
    dx_MD = dh_MF @ w_fc_DF.T
    return (
        dx_MD.astype(x_MD.dtype),
        dw_fc_DF.astype(w_fc_DF.dtype),
        dw_proj_FD.astype(w_proj_FD.dtype),
    )


gelu_mlp.defvjp(_gelu_mlp_fwd, _gelu_mlp_bwd)


class MLP(nnx.Module):
    """fc (D->F) -> GELU -> proj (F->D), no biases, via the custom-VJP `gelu_mlp`.

    Args:
      d_model: D.
      d_ff: F (4 D in the SIZES tables).
      rngs: NNX rngs; `rngs.params()` initializes the weights.
      dtype: compute dtype (params stay float32); None = float32.
      proj_init_scale: multiplies the proj init std (GPT-2 style 1/sqrt(2L) residual scaling).
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        *,
        rngs: nnx.Rngs,
        dtype=None,
        proj_init_scale: float = 1.0,
    ):
        self.dtype = dtype
        init = jax.nn.initializers.normal
        self.w_fc = nnx.Param(init(d_model**-0.5)(rngs.params(), (d_model, d_ff), jnp.float32))
        self.w_proj = nnx.Param(
            init(proj_init_scale * d_ff**-0.5)(rngs.params(), (d_ff, d_model), jnp.float32)
        )

    def __call__(self, x_BTD: jnp.ndarray) -> jnp.ndarray:
        dtype = self.dtype or x_BTD.dtype
        *lead, d = x_BTD.shape
        w_fc, w_proj = self.w_fc[...].astype(dtype), self.w_proj[...].astype(dtype)
        y_MD = gelu_mlp(x_BTD.reshape(-1, d).astype(dtype), w_fc, w_proj)
        return y_MD.reshape(*lead, d)

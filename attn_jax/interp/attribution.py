"""Attention weights against a gradient attribution: the monograph's caveat, measured.

Dimension key: B batch, T tokens, D model width, S keys (= T), L layers.

Jain & Wallace 2019 ("Attention is not Explanation") found attention weights
weakly rank-correlated with gradient-based importance. Here, per layer l: the
attention of one query position (mean over heads) over that layer's input
tokens, against the input x gradient attribution of those same tokens,
|sum_D x_l[s] * d target / d x_l[s]| (Shrikumar et al. 2016; Simonyan et al.
2014 for the gradient), where x_l is the residual stream entering block l;
Spearman's rho (scipy) per layer and example.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from scipy import stats

from attn_jax.interp.capture import _caller, capture, run_with_cache


def spearman(a_S, b_S) -> float:
    """Spearman's rho of two score vectors (NaN when either is constant)."""
    a, b = np.asarray(a_S, np.float64), np.asarray(b_S, np.float64)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def spearman_by_layer(attention_LBS, attribution_LBS) -> np.ndarray:
    """rho [L, B]: per layer and example, attention vs attribution over the keys."""
    att, attr = np.asarray(attention_LBS), np.asarray(attribution_LBS)
    if att.shape != attr.shape or att.ndim != 3:
        raise ValueError(f"need two [L, B, S] arrays, got {att.shape} and {attr.shape}.")
    return np.array([[spearman(x, y) for x, y in zip(a, b)] for a, b in zip(att, attr)])


def input_x_gradient(
    model: nnx.Module, *inputs, target_fn: Callable, method=None, **kwargs
) -> tuple[dict, dict]:
    """(attribution, cache): |sum_D x * grad| [B, T] per block input, and the weights.

    Args:
      model: an NNX module built on `attn_jax.nn.Block`.
      *inputs: its positional inputs.
      target_fn: outputs -> the scalar to explain (e.g. a logit at one position).
      method, **kwargs: as `run_with_cache`.

    Returns:
      {block path: attribution_BT} and the capture {key: array} (weights and resid_pre).
    """
    call = _caller(method)
    _, first = run_with_cache(model, *inputs, what=("resid_pre",), method=method, **kwargs)
    zeros = {k[: -len(".resid_pre")]: jnp.zeros_like(v) for k, v in first.items()}
    graphdef, state = nnx.split(model)

    @jax.jit
    def grads(state, zeros, inputs):
        def f(deltas):
            m = nnx.merge(graphdef, state)
            with capture(m, what=("weights", "resid_pre"), perturb=deltas) as cache:
                out = call(m, *inputs, **kwargs)
            return target_fn(out), dict(cache)

        return jax.grad(f, has_aux=True)(zeros)

    g, cache = grads(state, zeros, inputs)
    attribution = {
        path: np.abs(np.einsum("BTD,BTD->BT", cache[f"{path}.resid_pre"], g[path])) for path in g
    }
    return attribution, cache


def attention_vs_attribution(
    model: nnx.Module, *inputs, query: int, target_fn: Callable, method=None, **kwargs
) -> dict[str, dict]:
    """Per block: the head-mean attention of `query`, its attribution, and rho [B].

    The attention keys are the block's input tokens, as the attribution's are;
    rho is over the keys the query attends to (weight > 0: not masked, not padded).
    """
    attribution, cache = input_x_gradient(
        model, *inputs, target_fn=target_fn, method=method, **kwargs
    )
    out = {}
    for path, attr_BT in attribution.items():
        att_BS = np.asarray(cache[f"{path}.attn.weights"])[:, :, query, :].mean(axis=1)
        # over the keys the query may attend to (weight > 0): masked keys would be ties
        rho_B = np.array(
            [spearman(a[a > 0], g[a > 0]) for a, g in zip(att_BS, np.asarray(attr_BT))]
        )
        out[path] = {"attention": att_BS, "attribution": attr_BT, "rho": rho_B}
    return out

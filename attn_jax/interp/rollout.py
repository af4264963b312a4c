"""Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers").

Dimension key: B batch, N heads, T tokens (self-attention: S = T), L layers.

Per layer, the heads are averaged, the identity is added for the residual
connection and the rows are renormalized: A_l = norm(mean_n W_l + I), which is
the paper's 0.5 W + 0.5 I when the rows of W sum to 1. Rollout multiplies
through the layers, later layers on the left: R_l = A_l R_{l-1}, R_1 = A_1.
R_L[t, s] is how much of token s reaches token t's output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

HEAD_FUSIONS = ("mean", "max", "min")


def layer_matrix(weights_BNTS, *, residual: bool = True, head_fusion: str = "mean") -> np.ndarray:
    """A_l [B, T, T]: heads fused, identity added (when `residual`), rows renormalized."""
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"Unknown head_fusion {head_fusion!r}; valid: {', '.join(HEAD_FUSIONS)}.")
    w = np.asarray(weights_BNTS, np.float64)
    if w.ndim != 4 or w.shape[2] != w.shape[3]:
        raise ValueError(f"rollout needs self-attention weights [B, N, T, T], got {w.shape}.")
    a = getattr(np, head_fusion)(w, axis=1)
    if residual:
        a = a + np.eye(a.shape[-1])[None]
    row = a.sum(-1, keepdims=True)
    return a / np.where(row > 0, row, 1.0)


def attention_rollout(
    weights: Sequence, *, residual: bool = True, head_fusion: str = "mean", all_layers=False
):
    """Rollout of a stack of self-attention weights (first layer first).

    Args:
      weights: L arrays weights_BNTS, in layer order.
      residual: add the identity for the residual connection (the paper does).
      head_fusion: "mean" (the paper), "max" or "min" over heads.
      all_layers: also return every partial product.

    Returns:
      R_L [B, T, T], or the list [R_1, ..., R_L] with `all_layers`.
    """
    if not len(weights):
        raise ValueError("attention_rollout needs at least one layer of weights.")
    out, r = [], None
    for w in weights:
        a = layer_matrix(w, residual=residual, head_fusion=head_fusion)
        r = a if r is None else np.einsum("BTU,BUS->BTS", a, r)
        out.append(r)
    return out if all_layers else out[-1]

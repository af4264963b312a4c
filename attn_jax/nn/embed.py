"""Token embedding with optional absolute positions, and the tied output head.

Absolute schemes live here ("sinusoidal", Vaswani et al. 2017 §3.5; "learned",
GPT-2); relative ones ("rope", "alibi", "relative") live in `Attention`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from attn_jax.ops import positions as pos_ops

ABSOLUTE_POSITIONS = ("none", "sinusoidal", "learned")


class Embed(nnx.Module):
    """Token embedding [V, D] plus absolute positions; `attend` gives tied logits.

    Args:
      vocab_size: V.
      d_model: D.
      position: "none", "sinusoidal" or "learned".
      max_len: P, rows of the learned position table (required for "learned").
      rngs: NNX rngs.
      init_std: std of the token (and learned position) tables (GPT-2: 0.02).
      dtype: compute dtype of the output; None = float32.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        *,
        position: str = "none",
        max_len: int = 0,
        rngs: nnx.Rngs,
        init_std: float = 0.02,
        dtype=None,
    ):
        if position not in ABSOLUTE_POSITIONS:
            raise ValueError(
                f"Unknown absolute position {position!r}; valid: {', '.join(ABSOLUTE_POSITIONS)}."
            )
        if position == "learned" and max_len < 1:
            raise ValueError("Learned positions need max_len >= 1 (the table length).")
        self.vocab_size, self.d_model = vocab_size, d_model
        self.position, self.max_len = position, max_len
        self.dtype = dtype
        init = jax.nn.initializers.normal(init_std)
        self.embedding = nnx.Param(init(rngs.params(), (vocab_size, d_model), jnp.float32))
        self.pos_table = (
            nnx.Param(init(rngs.params(), (max_len, d_model), jnp.float32))
            if position == "learned"
            else None
        )

    def __call__(self, tokens_BT: jnp.ndarray, positions_BT: jnp.ndarray | None = None):
        """Embeds tokens; `positions_BT` (int, default arange(T)) drives absolute positions."""
        x_BTD = jnp.take(self.embedding[...], tokens_BT, axis=0)
        if self.position != "none":
            if positions_BT is None:
                positions_BT = jnp.arange(tokens_BT.shape[-1], dtype=jnp.int32)[None, :]
            if self.position == "sinusoidal":
                x_BTD = x_BTD + pos_ops.sinusoidal(positions_BT, self.d_model)
            else:
                x_BTD = x_BTD + pos_ops.learned_positions(self.pos_table[...], positions_BT)
        return x_BTD.astype(self.dtype or jnp.float32)

    def attend(self, x_BTD: jnp.ndarray) -> jnp.ndarray:
        """Tied output head: logits_BTV = x_BTD @ embedding.T, accumulated in float32."""
        w_VD = self.embedding[...].astype(x_BTD.dtype)
        return jnp.einsum("BTD,VD->BTV", x_BTD, w_VD, preferred_element_type=jnp.float32)

"""Flax NNX layers built on attn_jax.ops: Attention, MLP, Norm, Block, Embed."""

from attn_jax.nn.attention import POSITIONS, Attention, kernel_names
from attn_jax.nn.block import Block, dropout
from attn_jax.nn.embed import ABSOLUTE_POSITIONS, Embed
from attn_jax.nn.mlp import MLP, gelu_mlp
from attn_jax.nn.norm import NORM_TYPES, Norm

__all__ = [
    "ABSOLUTE_POSITIONS",
    "Attention",
    "Block",
    "Embed",
    "MLP",
    "NORM_TYPES",
    "Norm",
    "POSITIONS",
    "dropout",
    "gelu_mlp",
    "kernel_names",
]

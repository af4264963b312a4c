"""attn_jax: attention mechanisms, the models built on them, and how they scale."""

__version__ = "0.1.0"

"""Norm, Embed and Block."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from attn_jax.nn import Block, Embed, Norm
from attn_jax.ops.positions import sinusoidal


def test_layernorm_and_rmsnorm_statistics():
    x = jax.random.normal(jax.random.key(0), (3, 5, 16)) * 4.0 + 2.0
    y = Norm(16, "layernorm")(x)
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(-1), 1.0, atol=1e-3)
    z = Norm(16, "rmsnorm")(x)
    np.testing.assert_allclose(jnp.mean(z**2, -1), 1.0, atol=1e-3)
    with pytest.raises(ValueError, match="rmsnorm"):
        Norm(16, "batchnorm")


def test_embed_positions_and_tied_head():
    tokens = jnp.array([[1, 2, 3, 4]])
    plain = Embed(10, 8, rngs=nnx.Rngs(0))
    sin = Embed(10, 8, position="sinusoidal", rngs=nnx.Rngs(0))
    np.testing.assert_allclose(
        sin(tokens) - plain(tokens), sinusoidal(jnp.arange(4), 8)[None], atol=1e-6
    )
    learned = Embed(10, 8, position="learned", max_len=6, rngs=nnx.Rngs(0))
    assert learned.pos_table[...].shape == (6, 8)
    x = jax.random.normal(jax.random.key(1), (1, 4, 8))
    np.testing.assert_allclose(plain.attend(x), x @ plain.embedding[...].T, atol=1e-6)
    with pytest.raises(ValueError, match="sinusoidal"):
        Embed(10, 8, position="rope", rngs=nnx.Rngs(0))


def test_pre_and_post_norm_blocks():
    x = jax.random.normal(jax.random.key(0), (2, 6, 16))
    for norm in ("pre", "post"):
        block = Block(16, 2, 32, norm=norm, causal=True, rngs=nnx.Rngs(0))
        y = nnx.jit(lambda m, x: m(x))(block, x)
        assert y.shape == x.shape
        if norm == "post":  # post-norm output is normalized
            np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-5)


def test_block_with_cross_attention():
    block = Block(16, 2, 32, cross_attention=True, causal=True, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(0), (2, 6, 16))
    context = jax.random.normal(jax.random.key(1), (2, 9, 16))
    y = nnx.jit(lambda m, x, c: m(x, context_BSD=c))(block, x, context)
    cache = block.cross_attn.init_cross_cache(context)
    cached = nnx.jit(lambda m, x, c: m(x, cross_cache=c))(block, x, cache)
    np.testing.assert_allclose(cached, y, atol=1e-6)

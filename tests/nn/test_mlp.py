"""MLP: the custom-VJP fc -> GELU -> proj equals autodiff of the plain composition."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from attn_jax.nn import MLP, gelu_mlp


def _plain(x, w_fc, w_proj):
    return jax.nn.gelu(x @ w_fc, approximate=True) @ w_proj


def test_gelu_mlp_value_and_grads_equal_autodiff(float64):
    keys = jax.random.split(jax.random.key(0), 4)
    x = jax.random.normal(keys[0], (24, 8), jnp.float64)
    w_fc = jax.random.normal(keys[1], (8, 32), jnp.float64) * 0.5
    w_proj = jax.random.normal(keys[2], (32, 8), jnp.float64) * 0.5
    dy = jax.random.normal(keys[3], (24, 8), jnp.float64)
    np.testing.assert_allclose(gelu_mlp(x, w_fc, w_proj), _plain(x, w_fc, w_proj), rtol=1e-12)
    loss = lambda f: lambda *a: jnp.sum(f(*a) * dy)
    got = jax.jit(jax.grad(loss(gelu_mlp), argnums=(0, 1, 2)))(x, w_fc, w_proj)
    want = jax.jit(jax.grad(loss(_plain), argnums=(0, 1, 2)))(x, w_fc, w_proj)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_mlp_module_shapes_and_no_biases():
    mlp = MLP(16, 64, rngs=nnx.Rngs(0))
    x = jnp.ones((2, 3, 16))
    assert mlp(x).shape == (2, 3, 16)
    sizes = [p.size for p in jax.tree.leaves(nnx.state(mlp, nnx.Param))]
    assert sum(sizes) == 2 * 16 * 64
    np.testing.assert_allclose(mlp(x), _plain(x, mlp.w_fc[...], mlp.w_proj[...]), atol=1e-5)

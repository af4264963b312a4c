"""MLP: fc -> tanh-GELU -> proj without biases, equal to a float64 reference."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from attn_jax.nn import MLP, gelu_mlp


def _reference(x, w_fc, w_proj):
    """tanh-approximate GELU (Hendrycks & Gimpel 2016) in float64 numpy."""
    h = np.asarray(x, np.float64) @ np.asarray(w_fc, np.float64)
    a = 0.5 * h * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (h + 0.044715 * h**3)))
    return a @ np.asarray(w_proj, np.float64)


def test_gelu_mlp_matches_float64_reference(float64):
    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(keys[0], (24, 8), jnp.float64)
    w_fc = jax.random.normal(keys[1], (8, 32), jnp.float64) * 0.5
    w_proj = jax.random.normal(keys[2], (32, 8), jnp.float64) * 0.5
    np.testing.assert_allclose(gelu_mlp(x, w_fc, w_proj), _reference(x, w_fc, w_proj), rtol=1e-12)


def test_mlp_module_shapes_and_no_biases():
    mlp = MLP(16, 64, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (2, 3, 16))
    assert mlp(x).shape == (2, 3, 16)
    sizes = [p.size for p in jax.tree.leaves(nnx.state(mlp, nnx.Param))]
    assert sum(sizes) == 2 * 16 * 64
    want = _reference(x.reshape(6, 16), mlp.w_fc[...], mlp.w_proj[...]).reshape(2, 3, 16)
    np.testing.assert_allclose(mlp(x), want, atol=1e-5)

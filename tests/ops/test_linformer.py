"""Linformer: exact when the projections are the identity; non-causal only."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_jax.ops.kernels import get_kernel, init_kernel_params
from attn_jax.ops.masks import MaskSpec


def test_identity_projection_is_exact_attention():
    B, S, N, K, H = 2, 24, 4, 2, 8
    kq, kk, kv = jax.random.split(jax.random.PRNGKey(0), 3)
    q = jax.random.normal(kq, (B, S, N, H))
    k = jax.random.normal(kk, (B, S, K, H))
    v = jax.random.normal(kv, (B, S, K, H))
    eye = {"proj_k_RS": jnp.eye(S), "proj_v_RS": jnp.eye(S)}
    got = get_kernel("linformer")(q, k, v, spec=MaskSpec(), params=eye)
    want = get_kernel("xla")(q, k, v, spec=MaskSpec())
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)


def test_linformer_params_shapes_and_rejects_causal():
    params = init_kernel_params(
        "linformer", jax.random.PRNGKey(0), head_dim=8, max_len=32, proj_len=8
    )
    assert params["proj_k_RS"].shape == (8, 32)
    np.testing.assert_allclose(np.asarray(params["proj_k_RS"].sum(-1)), 1.0, rtol=1e-6)
    x = jnp.ones((1, 16, 2, 8))
    out = get_kernel("linformer")(x, x, x, spec=MaskSpec(), params=params)
    assert out.shape == x.shape
    with pytest.raises(ValueError, match="non-causal"):
        get_kernel("linformer")(x, x, x, spec=MaskSpec(causal=True), params=params)

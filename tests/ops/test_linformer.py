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


@pytest.mark.parametrize("lengths", [None, (40, 128)])
def test_empty_projected_rows_take_no_softmax_mass(lengths):
    """S < max_len: the pooled rows no position feeds are masked, not zero keys in the softmax.

    With "pool" projections for max_len 1024, R 64, a sequence of S 128 fills rows
    0..7 only; the output must equal attention over those rows alone (and with
    padding, over the rows the valid keys feed).
    """
    B, S, N, H = 2, 128, 2, 8
    kq, kk, kv = jax.random.split(jax.random.PRNGKey(3), 3)
    q = 3.0 * jax.random.normal(kq, (B, S, N, H))
    k = jax.random.normal(kk, (B, S, N, H))
    v = jax.random.normal(kv, (B, S, N, H)) + 2.0  # away from 0: a zero value would show
    params = init_kernel_params("linformer", None, head_dim=H, max_len=1024, proj_len=64)
    kv_lengths_B = None if lengths is None else jnp.asarray(lengths)
    got = get_kernel("linformer")(
        q, k, v, spec=MaskSpec(), params=params, kv_lengths_B=kv_lengths_B
    )
    fn = get_kernel("linformer")
    for b in range(B):
        length = S if lengths is None else lengths[b]
        rows = -(-length * 64 // 1024)  # the pooled rows that positions < length feed
        filled = {name: p[:rows, :S] for name, p in params.items()}
        want = fn(
            q[b : b + 1],
            k[b : b + 1],
            v[b : b + 1],
            spec=MaskSpec(),
            params=filled,
            kv_lengths_B=None if lengths is None else jnp.asarray([length]),
        )
        np.testing.assert_allclose(
            np.asarray(got[b : b + 1]), np.asarray(want), rtol=1e-5, atol=1e-5
        )

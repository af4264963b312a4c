"""Linear attention equals its naive quadratic kernel form (causal and not)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_jax.ops.kernels import get_kernel
from attn_jax.ops.masks import MaskSpec


def _naive(q, k, v, causal, lengths=None):
    """out_i = sum_j phi(q_i).phi(k_j) v_j / sum_j phi(q_i).phi(k_j) with a T x S matrix, f64."""
    phi = lambda x: np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    N, K = q.shape[2], k.shape[2]
    k, v = np.repeat(k, N // K, axis=2), np.repeat(v, N // K, axis=2)
    a = np.einsum("btnf,bsnf->bnts", phi(q), phi(k))
    T, S = a.shape[-2:]
    if causal:
        a = a * np.tril(np.ones((T, S)))
    if lengths is not None:
        a = a * (np.arange(S)[None, :] < np.asarray(lengths)[:, None])[:, None, None, :]
    return np.einsum("bnts,bsnh->btnh", a, v) / (a.sum(-1).transpose(0, 2, 1)[..., None] + 1e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_linear_matches_quadratic_form(causal):
    B, T, N, K, H = 2, 50, 4, 2, 8
    kq, kk, kv = jax.random.split(jax.random.PRNGKey(0), 3)
    q = jax.random.normal(kq, (B, T, N, H))
    k = jax.random.normal(kk, (B, T, K, H))
    v = jax.random.normal(kv, (B, T, K, H))
    lengths = jnp.array([50, 37])
    call = lambda q, k, v: get_kernel("linear")(
        q, k, v, spec=MaskSpec(causal=causal), kv_lengths_B=lengths, chunk=16
    )
    fn = jax.jit(call, compiler_options={"xla_backend_optimization_level": 0})
    np.testing.assert_allclose(
        np.asarray(fn(q, k, v)), _naive(q, k, v, causal, lengths), rtol=1e-5, atol=1e-5
    )
    # Causality through gradients: the first output does not depend on later keys.
    if causal:
        g = jax.grad(lambda k: call(q, k, v)[:, 0].sum())(k)
        assert np.all(np.asarray(g[:, 1:]) == 0.0)


def test_linear_rejects_unsupported_masks():
    x = jnp.ones((1, 8, 2, 4))
    with pytest.raises(ValueError, match="causal"):
        get_kernel("linear")(x, x, x, spec=MaskSpec(window=3))
    with pytest.raises(ValueError, match="bias"):
        get_kernel("linear")(x, x, x, spec=MaskSpec(), bias_fn=lambda q, k: 0.0)
